//! The tracker's per-message work without sockets, on one thread: parse a
//! realistic announce (5 offers of ~700-byte SDP), let the tracker decide,
//! serialize what it sends, and do the same for the answers the chosen peers
//! send back. Shows what one core can do before the WebSocket and the
//! scheduler take their share.
//!
//! `cargo run --release -p fanswarm-tracker --example corebench -- [announces] [peers] [swarms]`
#![allow(clippy::unwrap_used)]

use std::time::Instant;

use fanswarm_tracker::{ConnectionId, Limits, OutMessage, Tracker};
use swarm::time::Time;
use swarm::tracker::parse_client_message;

fn main() {
    let mut args = std::env::args()
        .skip(1)
        .map(|a| a.parse::<usize>().unwrap());
    let announces = args.next().unwrap_or(200_000).min(10_000_000);
    let peers = args.next().unwrap_or(1_000).max(2);
    let swarms = args.next().unwrap_or(100).max(1);
    // One clock reading for the whole run, so the per-connection rate limit
    // (which would refuse nearly everything at a frozen clock) is lifted.
    let mut tracker = Tracker::new(Limits {
        messages_per_second: u32::MAX,
        message_burst: u32::MAX,
        ..Limits::default()
    });
    let mut rng = fastrand::Rng::with_seed(1);
    let mut out = Vec::new();
    let now = Time(1_000);
    // Everyone joins first.
    for p in 0..peers {
        let frame = announce(p, swarms, 0, &mut rng);
        let req = parse_client_message(frame.as_bytes());
        tracker.handle(now, &mut rng, ConnectionId(p as u64), req, &mut out);
    }
    out.clear();
    // (sender, frame) pairs, reused round-robin.
    let frames: Vec<(usize, String)> = (0..1_000)
        .map(|i| (i % peers, announce(i % peers, swarms, 5, &mut rng)))
        .collect();
    let answer_sdp = sdp(&mut rng);

    let start = Instant::now();
    let (mut bytes_out, mut answers) = (0usize, 0usize);
    for i in 0..announces {
        let (sender, frame) = &frames[i % frames.len()];
        let req = parse_client_message(frame.as_bytes());
        tracker.handle(now, &mut rng, ConnectionId(*sender as u64), req, &mut out);
        for (to, msg) in std::mem::take(&mut out) {
            if let OutMessage::Offer(o) = &msg {
                // The chosen peer answers, as a browser would.
                let reply = serde_json::json!({
                    "action": "announce",
                    "info_hash": swarm::tracker::id_to_string(&o.info_hash.0),
                    "peer_id": swarm::tracker::id_to_string(&peer_id(to.0 as usize)),
                    "to_peer_id": swarm::tracker::id_to_string(&o.peer_id.0),
                    "offer_id": swarm::tracker::id_to_string(&o.offer_id.0),
                    "answer": {"type": "answer", "sdp": answer_sdp},
                })
                .to_string();
                let req = parse_client_message(reply.as_bytes());
                let mut routed = Vec::new();
                tracker.handle(now, &mut rng, to, req, &mut routed);
                for (_, m) in routed {
                    answers += usize::from(matches!(m, OutMessage::Answer(_)));
                    bytes_out += serde_json::to_string(&m.into_server_message())
                        .unwrap()
                        .len();
                }
            }
            bytes_out += serde_json::to_string(&msg.into_server_message())
                .unwrap()
                .len();
        }
    }
    let elapsed = start.elapsed().as_secs_f64();
    println!(
        "announces={announces} peers={peers} swarms={swarms} answers_routed={answers} \
         seconds={elapsed:.2} announces_per_second={:.0} mib_out={:.0}",
        announces as f64 / elapsed,
        bytes_out as f64 / (1024.0 * 1024.0)
    );
}

fn peer_id(p: usize) -> [u8; 20] {
    let mut id = *b"-WW0300-000000000000";
    let digits = format!("{p:012}");
    id[8..].copy_from_slice(digits.as_bytes());
    id
}

fn announce(p: usize, swarms: usize, offers: usize, rng: &mut fastrand::Rng) -> String {
    let info_hash = format!("{:0>20}", format!("swarm{}", p % swarms));
    let offers: Vec<serde_json::Value> = (0..offers)
        .map(|_| {
            let offer_id: String = (0..20).map(|_| rng.alphanumeric()).collect();
            serde_json::json!({"offer": {"type": "offer", "sdp": sdp(rng)}, "offer_id": offer_id})
        })
        .collect();
    serde_json::json!({
        "action": "announce",
        "info_hash": info_hash,
        "peer_id": String::from_utf8(peer_id(p).to_vec()).unwrap(),
        "numwant": 50, "uploaded": 0, "downloaded": 0, "left": 7_938_044,
        "offers": offers,
    })
    .to_string()
}

fn sdp(rng: &mut fastrand::Rng) -> String {
    let mut s = format!(
        "v=0\r\no=- {} 2 IN IP4 127.0.0.1\r\ns=-\r\nt=0 0\r\na=group:BUNDLE 0\r\n\
         m=application 50000 UDP/DTLS/SCTP webrtc-datachannel\r\nc=IN IP4 198.51.100.7\r\n\
         a=ice-ufrag:abcd\r\na=ice-pwd:abcdefghijklmnopqrstuvwx\r\na=setup:actpass\r\n\
         a=mid:0\r\na=sctp-port:5000\r\na=max-message-size:262144\r\n",
        rng.u64(..)
    );
    while s.len() < 700 {
        s.push_str("a=candidate:1 1 udp 2122260223 198.51.100.7 50000 typ host generation 0\r\n");
    }
    s
}
