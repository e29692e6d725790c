//! The tracker core (`fanswarm_tracker::Tracker::handle`, sans-IO) fed frames
//! from four connections: mostly WebTorrent-shaped announces, answers and
//! scrapes over a few swarms, peer ids and offer ids (so ids collide, answers
//! match offers and limits bite), sometimes raw bytes; plus disconnects and
//! expiry as time passes.
//!
//! Beyond "no panic": every reply goes to a connection that is open, every
//! reply serializes, and the tracker's counts stay within its limits.
#![no_main]

use std::collections::BTreeSet;
use std::time::Duration;

use arbitrary::Arbitrary;
use fanswarm_tracker::{ConnectionId, Limits, Outbox, Tracker};
use libfuzzer_sys::fuzz_target;
use serde_json::json;
use swarm::time::Time;
use swarm::tracker::{id_to_string, parse_client_message};

#[derive(Debug, Arbitrary)]
enum Op {
    Announce {
        conn: u8,
        swarm: u8,
        peer: u8,
        event: Option<u8>,
        offers: u8,
        numwant: Option<u8>,
    },
    Answer {
        conn: u8,
        swarm: u8,
        peer: u8,
        to_peer: u8,
        offer: u8,
    },
    Scrape {
        conn: u8,
        swarms: Vec<u8>,
    },
    Raw {
        conn: u8,
        bytes: Vec<u8>,
    },
    Disconnect {
        conn: u8,
    },
    Expire {
        secs: u16,
    },
}

fuzz_target!(|input: (u64, bool, Vec<Op>)| {
    let (seed, tight, ops) = input;
    let mut limits = Limits::default();
    if tight {
        limits.max_offers_per_announce = 2;
        limits.max_scrape_hashes = 2;
        limits.max_swarms_per_connection = 2;
        limits.max_peers_per_swarm = 3;
        limits.max_swarms = 3;
        limits.max_pending_offers_per_connection = 2;
        limits.message_burst = 5;
    }
    let mut tracker = Tracker::new(limits.clone());
    let mut rng = fastrand::Rng::with_seed(seed);
    let mut now = Time(0);
    let mut open: BTreeSet<u64> = BTreeSet::new();
    let mut out = Outbox::new();
    for op in &ops {
        now = now + Duration::from_millis(10);
        let (conn, frame) = match op {
            Op::Announce {
                conn,
                swarm,
                peer,
                event,
                offers,
                numwant,
            } => {
                let mut m = json!({
                    "action": "announce",
                    "info_hash": id(b'h', *swarm),
                    "peer_id": id(b'p', *peer),
                    "uploaded": 0, "downloaded": 0, "left": 100,
                });
                if let Some(e) = event {
                    m["event"] = json!(
                        ["started", "stopped", "completed", "update", "paused"]
                            [usize::from(*e) % 5]
                    );
                }
                if let Some(n) = numwant {
                    m["numwant"] = json!(n);
                }
                let offers: Vec<_> = (0..offers % 12)
                    .map(|i| json!({"offer": {"type": "offer", "sdp": "v=0\r\n"}, "offer_id": id(b'o', i)}))
                    .collect();
                if !offers.is_empty() {
                    m["offers"] = json!(offers);
                }
                (*conn, m.to_string().into_bytes())
            }
            Op::Answer {
                conn,
                swarm,
                peer,
                to_peer,
                offer,
            } => {
                let m = json!({
                    "action": "announce",
                    "info_hash": id(b'h', *swarm),
                    "peer_id": id(b'p', *peer),
                    "to_peer_id": id(b'p', *to_peer),
                    "offer_id": id(b'o', *offer),
                    "answer": {"type": "answer", "sdp": "v=0\r\n"},
                });
                (*conn, m.to_string().into_bytes())
            }
            Op::Scrape { conn, swarms } => {
                let hashes: Vec<String> = swarms.iter().map(|s| id(b'h', *s)).collect();
                (
                    *conn,
                    json!({"action": "scrape", "info_hash": hashes})
                        .to_string()
                        .into_bytes(),
                )
            }
            Op::Raw { conn, bytes } => (*conn, bytes.clone()),
            Op::Disconnect { conn } => {
                let c = u64::from(conn % 4);
                tracker.disconnect(ConnectionId(c));
                open.remove(&c);
                continue;
            }
            Op::Expire { secs } => {
                now = now + Duration::from_secs(u64::from(*secs));
                tracker.expire(now);
                continue;
            }
        };
        let c = u64::from(conn % 4);
        open.insert(c);
        tracker.handle(
            now,
            &mut rng,
            ConnectionId(c),
            parse_client_message(&frame),
            &mut out,
        );
        for (to, message) in out.drain(..) {
            assert!(open.contains(&to.0), "reply to closed connection {to:?}");
            serde_json::to_string(&message.into_server_message()).expect("replies serialize");
        }
        assert!(
            tracker.swarm_count() <= limits.max_swarms,
            "swarms over the limit"
        );
        assert!(
            tracker.connection_count() == open.len(),
            "connections miscounted"
        );
    }
});

/// A 20-byte id of a few distinct values per `kind`, as a tracker id string.
fn id(kind: u8, n: u8) -> String {
    let mut bytes = [kind; 20];
    bytes[19] = n % 5;
    id_to_string(&bytes)
}
