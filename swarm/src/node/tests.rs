#![allow(clippy::unwrap_used)]

use super::*;
use crate::metainfo::TorrentBuilder;
use crate::tracker::{
    ClientMessage, OfferRelay, SdpKind, ServerMessage, SessionDescription, parse_client_message,
};
use crate::wire::{Handshake, Reserved};

const TRACKER: TrackerIndex = TrackerIndex(0);
const PIECE: u32 = 16 * 1024;

fn content() -> Vec<u8> {
    (0..PIECE as usize * 8)
        .map(|i| (i * 13 % 251) as u8)
        .collect()
}

fn meta() -> Metainfo {
    let data = content();
    let hashes = crate::metainfo::hash_pieces(&data, PIECE).unwrap();
    TorrentBuilder::single_file("track.wav", data.len() as u64)
        .piece_length(PIECE)
        .tracker("ws://tracker.invalid/announce")
        .web_seed("http://origin.invalid/media/track.wav")
        .build(&hashes)
        .unwrap()
}

fn node(config: NodeConfig) -> Node {
    Node::new(
        config,
        Source::Torrent(Box::new(meta())),
        vec!["ws://tracker.invalid/announce".into()],
        PeerId::generate([5; 12]),
        7,
        Time(0),
    )
    .unwrap()
}

fn drain(node: &mut Node) -> Vec<Output> {
    let mut out = Vec::new();
    loop {
        match node.poll() {
            Output::Timeout(_) => return out,
            o => out.push(o),
        }
    }
}

fn offers(out: &[Output]) -> Vec<PeerKey> {
    out.iter()
        .filter_map(|o| match o {
            Output::CreateOffer { conn } => Some(*conn),
            _ => None,
        })
        .collect()
}

fn announces(out: &[Output]) -> Vec<crate::tracker::AnnounceRequest> {
    out.iter()
        .filter_map(|o| match o {
            Output::SendTracker { text, .. } => match parse_client_message(text.as_bytes()) {
                Ok(ClientMessage::Announce(a)) => Some(a),
                _ => None,
            },
            _ => None,
        })
        .collect()
}

/// A node whose tracker is open and whose first announce is out.
fn announced(config: NodeConfig) -> (Node, Vec<PeerKey>) {
    let mut n = node(config);
    let out = drain(&mut n);
    assert!(matches!(out[0], Output::ConnectTracker { .. }), "{out:?}");
    n.tracker_opened(Time(10), TRACKER);
    let conns = offers(&drain(&mut n));
    for &c in &conns {
        n.offer_made(Time(20), c, Ok(format!("sdp {c:?}")));
    }
    (n, conns)
}

#[test]
fn offers_are_capped_and_the_announce_carries_those_made_with_left() {
    let (mut n, conns) = announced(NodeConfig {
        max_connections: 3,
        ..NodeConfig::default()
    });
    assert_eq!(conns.len(), 3, "at most max_connections");
    let sent = announces(&drain(&mut n));
    assert_eq!(sent.len(), 1);
    assert_eq!(sent[0].offers.as_ref().map(Vec::len), Some(3));
    assert_eq!(sent[0].left, Some(content().len() as u64));
    assert_eq!(n.stats().connecting, 3);
}

#[test]
fn a_connection_that_never_opens_is_closed_after_the_connect_timeout() {
    let mut n = node(NodeConfig::default());
    drain(&mut n);
    n.tracker_opened(Time(10), TRACKER);
    drain(&mut n);
    let relay = ServerMessage::Offer(OfferRelay {
        action: crate::tracker::Action::Announce,
        info_hash: n.info_hash(),
        peer_id: PeerId([9; 20]),
        offer_id: crate::tracker::OfferId([3; 20]),
        offer: SessionDescription {
            kind: SdpKind::Offer,
            sdp: "remote offer".into(),
        },
    });
    n.tracker_message(Time(100), TRACKER, &serde_json::to_string(&relay).unwrap());
    let out = drain(&mut n);
    let conn = out
        .iter()
        .find_map(|o| match o {
            Output::AnswerOffer { conn, sdp } if sdp == "remote offer" => Some(*conn),
            _ => None,
        })
        .expect("the relayed offer is answered");
    n.answer_made(Time(200), conn, Ok("our answer".into()));
    let sent = announces(&drain(&mut n));
    assert_eq!(sent[0].answer.as_ref().unwrap().sdp, "our answer");
    n.handle_timeout(Time(200 + 24_000));
    assert!(!drain(&mut n).contains(&Output::CloseConn { conn }));
    n.handle_timeout(Time(200 + 25_000));
    assert!(drain(&mut n).contains(&Output::CloseConn { conn }));
    assert_eq!(
        n.stats().connecting,
        0,
        "our own offers, never made, went after the set-up timeout"
    );
}

#[test]
fn bytes_before_open_are_replayed_and_too_many_close_the_connection() {
    let (mut n, conns) = announced(NodeConfig::default());
    drain(&mut n);
    let handshake = Handshake {
        reserved: Reserved::FANSWARM,
        info_hash: n.info_hash(),
        peer_id: PeerId([8; 20]),
    }
    .encode();
    n.channel_data(Time(30), conns[0], &handshake);
    assert!(
        !drain(&mut n).iter().any(|o| matches!(
            o,
            Output::Event(NodeEvent::Engine(Event::PeerConnected { .. }))
        )),
        "nothing happens before the channel opens"
    );
    n.channel_open(Time(31), conns[0]);
    let out = drain(&mut n);
    assert!(out.iter().any(|o| matches!(
        o,
        Output::Event(NodeEvent::Engine(Event::PeerConnected { peer, .. })) if *peer == conns[0]
    )));
    assert_eq!(n.stats().connections, 1);

    n.channel_data(Time(40), conns[1], &vec![0; EARLY_BYTES_LIMIT + 1]);
    let out = drain(&mut n);
    assert!(out.contains(&Output::CloseConn { conn: conns[1] }));
    assert!(out.contains(&Output::Event(NodeEvent::PeerGone {
        conn: conns[1],
        reason: GoneReason::TooEarly
    })));
}

fn http_gets(out: &[Output]) -> Vec<(HttpId, RangeRequest)> {
    out.iter()
        .filter_map(|o| match o {
            Output::HttpGet { id, request } => Some((*id, request.clone())),
            _ => None,
        })
        .collect()
}

fn play_from_start(n: &mut Node, at: Time) {
    n.set_playback(
        at,
        Some(Playback {
            offset: 0,
            bytes_per_sec: Some(u64::from(PIECE)),
        }),
    );
}

fn swarm_reply(n: &Node, complete: u64, incomplete: u64) -> String {
    let reply = ServerMessage::Announce(crate::tracker::AnnounceResponse {
        action: crate::tracker::Action::Announce,
        info_hash: n.info_hash(),
        interval: 120,
        complete,
        incomplete,
    });
    serde_json::to_string(&reply).unwrap()
}

#[test]
fn the_web_seed_is_one_range_request_streamed_piece_by_piece() {
    // No grace for peers that may be coming: a listener on its own.
    let mut n = node(NodeConfig {
        offer_grace: Duration::ZERO,
        ..NodeConfig::default()
    });
    drain(&mut n);
    play_from_start(&mut n, Time(5));
    let out = drain(&mut n);
    let gets = http_gets(&out);
    // Six seconds at one piece a second: pieces 0..=5 in one request.
    assert_eq!(gets.len(), 1, "{out:?}");
    let (id, request) = &gets[0];
    assert_eq!(request.url, "http://origin.invalid/media/track.wav");
    assert_eq!((request.start, request.end), (0, 6 * u64::from(PIECE) - 1));
    let data = content();
    n.http_data(Time(10), *id, &data[..PIECE as usize + 10]);
    let verified: Vec<u32> = drain(&mut n)
        .iter()
        .filter_map(|o| match o {
            Output::Event(NodeEvent::Engine(Event::PieceVerified { piece })) => Some(*piece),
            _ => None,
        })
        .collect();
    assert_eq!(
        verified,
        vec![0],
        "the first piece plays before the rest is in"
    );
    n.http_data(
        Time(20),
        *id,
        &data[PIECE as usize + 10..request.len() as usize],
    );
    n.http_end(Time(21), *id);
    drain(&mut n);
    assert_eq!(n.stats().engine.verified_pieces, 6);
    assert_eq!(n.stats().engine.from_web_seed, 6 * u64::from(PIECE));
}

#[test]
fn before_the_crowd_is_known_only_what_is_due_now_comes_from_the_web_seed() {
    let (mut n, _conns) = announced(NodeConfig::default());
    drain(&mut n);
    play_from_start(&mut n, Time(20));
    // Our offers are out and the tracker has not said who else is there:
    // the web seed is asked only for what is due within the just-in-time
    // fallback (0.75 s at a piece a second: piece 0), not the six-second
    // urgent window, which the crowd may be about to have.
    let gets = http_gets(&drain(&mut n));
    assert_eq!(gets.len(), 1);
    assert_eq!((gets[0].1.start, gets[0].1.end), (0, u64::from(PIECE) - 1));
    // The tracker says nobody else is in the swarm: the rest of the
    // urgent window comes at once.
    n.tracker_message(Time(40), TRACKER, &swarm_reply(&n, 0, 1));
    let gets = http_gets(&drain(&mut n));
    assert_eq!(gets.len(), 1, "{gets:?}");
    assert_eq!(
        (gets[0].1.start, gets[0].1.end),
        (u64::from(PIECE), 6 * u64::from(PIECE) - 1)
    );
}

#[test]
fn a_newcomer_to_a_crowd_waits_for_its_neighbours_before_the_web_seed() {
    let (mut n, _conns) = announced(NodeConfig::default());
    drain(&mut n);
    // Six others in the swarm: they have what we need, or will.
    n.tracker_message(Time(15), TRACKER, &swarm_reply(&n, 3, 4));
    drain(&mut n);
    play_from_start(&mut n, Time(20));
    assert!(
        http_gets(&drain(&mut n)).is_empty(),
        "held for the neighbours"
    );
    // None came within the wait (1.5 s from the start): what is due now.
    let wait = NodeConfig::default().engine.first_peer_wait;
    n.handle_timeout(Time(wait.as_millis() as u64));
    let gets = http_gets(&drain(&mut n));
    assert_eq!(gets.len(), 1, "{gets:?}");
    assert_eq!((gets[0].1.start, gets[0].1.end), (0, u64::from(PIECE) - 1));
    // Nobody answered our offers within the grace: we fetch for ourselves.
    n.handle_timeout(Time(3_100));
    let gets = http_gets(&drain(&mut n));
    assert!(
        gets.iter().any(|(_, r)| r.end >= 6 * u64::from(PIECE) - 1),
        "{gets:?}"
    );
}

#[test]
fn fans_are_coming_until_the_tracker_says_we_are_alone_or_its_crowd_never_connects() {
    let (mut n, _conns) = announced(NodeConfig::default());
    drain(&mut n);
    assert!(n.fans_coming(), "the tracker has not answered");
    n.tracker_message(Time(15), TRACKER, &swarm_reply(&n, 0, 1));
    drain(&mut n);
    assert!(!n.fans_coming(), "the swarm is only us");

    let (mut n, _conns) = announced(NodeConfig::default());
    drain(&mut n);
    n.tracker_message(Time(15), TRACKER, &swarm_reply(&n, 3, 4));
    drain(&mut n);
    assert!(n.fans_coming(), "six others, within the offer grace");
    n.handle_timeout(Time(3_100));
    drain(&mut n);
    assert!(!n.fans_coming(), "none answered within the grace");
}

#[test]
fn a_web_seed_request_gone_silent_is_cancelled_and_fetched_again() {
    let mut n = node(NodeConfig::default());
    drain(&mut n);
    let playing = Some(Playback {
        offset: 0,
        bytes_per_sec: Some(u64::from(PIECE)),
    });
    n.set_playback(Time(5), playing);
    let get = |out: &[Output]| {
        out.iter().find_map(|o| match o {
            Output::HttpGet { id, .. } => Some(*id),
            _ => None,
        })
    };
    let first = get(&drain(&mut n)).expect("urgent pieces go to the web seed");
    n.http_data(Time(1_000), first, &content()[..100]);
    assert!(matches!(n.poll(), Output::Timeout(t) if t <= Time(31_000)));
    n.handle_timeout(Time(30_999));
    assert!(!drain(&mut n).contains(&Output::CancelHttp { id: first }));
    n.handle_timeout(Time(31_000));
    let out = drain(&mut n);
    assert!(out.contains(&Output::CancelHttp { id: first }), "{out:?}");
    assert!(out.iter().any(|o| matches!(
        o,
        Output::Event(NodeEvent::WebSeedFailed { error, .. }) if error.contains("30 s")
    )));
    // Its bytes are dropped now; the engine backs off, then asks again.
    n.http_data(Time(31_001), first, &content()[100..200]);
    let mut again = None;
    for s in 32..120 {
        n.handle_timeout(Time(s * 1_000));
        again = again.or(get(&drain(&mut n)));
    }
    assert!(again.is_some_and(|id| id != first), "a fresh request");
}

#[test]
fn a_tracker_that_does_not_connect_is_closed_and_tried_again() {
    let mut n = node(NodeConfig::default());
    let out = drain(&mut n);
    assert!(out.contains(&Output::ConnectTracker {
        tracker: TRACKER,
        url: "ws://tracker.invalid/announce".into()
    }));
    assert!(matches!(n.poll(), Output::Timeout(t) if t <= Time(10_000)));
    n.handle_timeout(Time(9_999));
    assert!(!drain(&mut n).contains(&Output::CloseTracker { tracker: TRACKER }));
    n.handle_timeout(Time(10_000));
    assert!(drain(&mut n).contains(&Output::CloseTracker { tracker: TRACKER }));
    // After the client's back-off (2 s and jitter at first), again.
    let mut again = false;
    for s in 11..60 {
        n.handle_timeout(Time(s * 1_000));
        again |= drain(&mut n)
            .iter()
            .any(|o| matches!(o, Output::ConnectTracker { .. }));
    }
    assert!(again, "the tracker is tried again");
    // One that opens in time is kept.
    let mut n = node(NodeConfig::default());
    drain(&mut n);
    n.tracker_opened(Time(9_000), TRACKER);
    drain(&mut n);
    n.handle_timeout(Time(20_000));
    assert!(!drain(&mut n).contains(&Output::CloseTracker { tracker: TRACKER }));
}

#[test]
fn losing_the_last_peer_brings_the_next_announce_forward() {
    let (mut n, conns) = announced(NodeConfig::default());
    drain(&mut n);
    n.tracker_message(Time(50), TRACKER, &swarm_reply(&n, 0, 2));
    drain(&mut n);
    n.channel_open(Time(60), conns[0]);
    drain(&mut n);
    n.connection_closed(Time(1_000), conns[0]);
    let out = drain(&mut n);
    assert!(out.contains(&Output::Event(NodeEvent::PeerGone {
        conn: conns[0],
        reason: GoneReason::Closed
    })));
    // The tracker said 120 s; with no peer left the next announce is 10 s
    // after the last one.
    n.handle_timeout(Time(10_100));
    let out = drain(&mut n);
    assert!(
        !offers(&out).is_empty(),
        "fresh offers for the next announce"
    );
}

#[test]
fn stop_says_stopped_and_closes_everything() {
    let (mut n, conns) = announced(NodeConfig::default());
    drain(&mut n);
    n.stop(Time(100));
    let out = drain(&mut n);
    let sent = announces(&out);
    assert_eq!(
        sent.last().and_then(|a| a.event),
        Some(crate::tracker::AnnounceEvent::Stopped)
    );
    for c in conns {
        assert!(out.contains(&Output::CloseConn { conn: c }));
    }
    assert!(out.contains(&Output::CloseTracker { tracker: TRACKER }));
}

// ---- several web seeds ----

const SEEDS: [&str; 3] = [
    "http://origin.invalid/media/track.wav",
    "http://cdn.invalid/track.wav",
    "http://bucket.invalid/track.wav",
];

fn mirrored_node() -> Node {
    let data = content();
    let hashes = crate::metainfo::hash_pieces(&data, PIECE).unwrap();
    let mut builder = TorrentBuilder::single_file("track.wav", data.len() as u64)
        .piece_length(PIECE)
        .tracker("ws://tracker.invalid/announce");
    for seed in SEEDS {
        builder = builder.web_seed(seed);
    }
    let mut n = Node::new(
        NodeConfig {
            offer_grace: Duration::ZERO,
            ..NodeConfig::default()
        },
        Source::Torrent(Box::new(builder.build(&hashes).unwrap())),
        vec!["ws://tracker.invalid/announce".into()],
        PeerId::generate([5; 12]),
        7,
        Time(0),
    )
    .unwrap();
    drain(&mut n);
    n
}

/// Answers every request from the right bytes (or `corrupt` ones for
/// `bad`'s URL) until the node is complete or `until`; returns the URLs
/// asked, in order.
fn serve_all(n: &mut Node, mut at: u64, until: u64, bad: Option<&str>) -> Vec<String> {
    let data = content();
    let mut asked = Vec::new();
    let mut pending = http_gets(&drain(n));
    while at < until && !n.is_complete() {
        for (id, request) in std::mem::take(&mut pending) {
            asked.push(request.url.clone());
            let mut body = data[request.start as usize..=request.end as usize].to_vec();
            if bad == Some(request.url.as_str()) {
                body.iter_mut().for_each(|b| *b ^= 0x5a);
            }
            n.http_data(Time(at), id, &body);
            n.http_end(Time(at), id);
            pending.extend(http_gets(&drain(n)));
        }
        at += 250;
        n.handle_timeout(Time(at));
        pending.extend(http_gets(&drain(n)));
    }
    asked
}

#[test]
fn fetches_spread_over_the_web_seeds() {
    let mut n = mirrored_node();
    play_from_start(&mut n, Time(5));
    let asked = serve_all(&mut n, 10, 60_000, None);
    assert!(n.is_complete());
    let stats = n.web_seeds();
    assert_eq!(
        stats.iter().map(|s| s.url.as_str()).collect::<Vec<_>>(),
        SEEDS
    );
    let used = SEEDS
        .iter()
        .filter(|s| asked.iter().any(|a| a == *s))
        .count();
    assert!(used >= 2, "more than one seed served: {asked:?}");
    let total: u64 = stats.iter().map(|s| s.bytes).sum();
    assert_eq!(total, content().len() as u64, "each byte once: {stats:?}");
}

#[test]
fn a_failing_web_seed_is_skipped_and_the_fetch_goes_on_where_it_stopped() {
    let mut n = mirrored_node();
    play_from_start(&mut n, Time(5));
    let gets = http_gets(&drain(&mut n));
    let (id, first) = gets[0].clone();
    let data = content();
    n.http_data(Time(10), id, &data[..100]);
    n.http_failed(Time(11), id, "connection refused".into());
    let out = drain(&mut n);
    assert!(
        out.iter().any(
            |o| matches!(o, Output::Event(NodeEvent::WebSeedFailed { url, error })
            if *url == first.url && error == "connection refused")
        ),
        "{out:?}"
    );
    let retry = http_gets(&out);
    assert_eq!(retry.len(), 1, "the fetch goes on at once: {out:?}");
    let (_, again) = &retry[0];
    assert_ne!(again.url, first.url, "from another seed");
    assert_eq!(
        (again.start, again.end),
        (100, first.end),
        "where it stopped"
    );
    // The rest comes; the failed seed is left alone while it backs off.
    let asked = serve_all(&mut n, 20, 900, None);
    assert!(!asked.contains(&first.url), "{asked:?}");
    let failed = &n.web_seeds();
    let failed = failed.iter().find(|s| s.url == first.url).unwrap();
    assert_eq!((failed.bytes, failed.failures), (100, 1));
    // Everything arrives, the failed seed's 100 bytes kept.
    serve_all(&mut n, 1_000, 60_000, None);
    assert!(n.is_complete());
    assert_eq!(n.stats().engine.from_web_seed, data.len() as u64);
}

#[test]
fn when_every_web_seed_fails_the_engine_backs_off_and_asks_again() {
    let mut n = mirrored_node();
    play_from_start(&mut n, Time(5));
    let mut gets = http_gets(&drain(&mut n));
    let mut urls = Vec::new();
    for _ in 0..3 {
        assert_eq!(gets.len(), 1, "one request at a time: {gets:?}");
        let (id, request) = gets.pop().unwrap();
        urls.push(request.url);
        n.http_failed(Time(10), id, "503".into());
        gets = http_gets(&drain(&mut n));
    }
    urls.sort();
    let mut all = SEEDS.map(String::from).to_vec();
    all.sort();
    assert_eq!(urls, all, "each seed tried once");
    assert!(gets.is_empty(), "then the engine waits");
    let asked = serve_all(&mut n, 2_000, 60_000, None);
    assert!(!asked.is_empty() && n.is_complete(), "and asks again");
}

#[test]
fn a_web_seed_with_wrong_bytes_is_dropped_and_the_others_serve() {
    let mut n = mirrored_node();
    play_from_start(&mut n, Time(5));
    // Whichever seed the first fetch goes to is the bad one.
    let (id, first) = http_gets(&drain(&mut n))[0].clone();
    let bad = first.url.clone();
    let mut body = content()[first.start as usize..=first.end as usize].to_vec();
    body.iter_mut().for_each(|b| *b ^= 0x5a);
    n.http_data(Time(10), id, &body[..PIECE as usize]);
    let out = drain(&mut n);
    assert!(
        out.iter().any(
            |o| matches!(o, Output::Event(NodeEvent::WebSeedDropped { url, .. }) if *url == bad)
        ),
        "{out:?}"
    );
    assert!(
        out.contains(&Output::CancelHttp { id }),
        "the rest of its body is not awaited"
    );
    n.http_data(Time(11), id, &body[PIECE as usize..]);
    let asked = serve_all(&mut n, 20, 60_000, Some(&bad));
    assert!(n.is_complete(), "the good seeds finish it");
    assert!(!asked.contains(&bad), "{asked:?}");
    let stats = n.stats();
    assert_eq!(stats.engine.verified_pieces, 8);
    let seeds = n.web_seeds();
    let dropped = seeds.iter().find(|s| s.url == bad).unwrap();
    assert_eq!(
        dropped.dropped.as_deref(),
        Some("piece 0 failed verification")
    );
}

/// A wrong mirror's whole body, several pieces, arriving at once (as a
/// browser hands it over): one offence, not one per piece. The engine
/// stops reading that body at its first wrong piece, so the good seeds
/// still serve the rest instead of the web seed being given up as a whole.
#[test]
fn a_wrong_mirrors_whole_body_is_one_offence() {
    let mut n = mirrored_node();
    play_from_start(&mut n, Time(5));
    let (id, first) = http_gets(&drain(&mut n))[0].clone();
    let pieces = (first.end + 1 - first.start) / u64::from(PIECE);
    assert!(pieces >= 3, "a body of several pieces: {first:?}");
    let bad = first.url.clone();
    let mut body = content()[first.start as usize..=first.end as usize].to_vec();
    body.iter_mut().for_each(|b| *b ^= 0x5a);
    n.http_data(Time(10), id, &body);
    n.http_end(Time(10), id);
    let asked = serve_all(&mut n, 20, 60_000, Some(&bad));
    assert!(n.is_complete(), "the good seeds finish it: {asked:?}");
    assert!(!asked.contains(&bad), "{asked:?}");
    let stats = n.stats().engine;
    assert_eq!(
        stats.wasted,
        u64::from(PIECE),
        "one wrong piece read: {stats:?}"
    );
}

/// Without a player (the native peer), single-piece fetches: the seed
/// that sent a wrong piece is dropped for it — and only that one, though
/// the engine names the web seed as the liar again when the piece verifies
/// from another — and a dead one is tried again only after its back-off.
#[test]
fn orphan_fetches_drop_the_wrong_seed_only_and_skip_the_dead_one() {
    let mut n = mirrored_node();
    let data = content();
    let (dead, wrong) = (SEEDS[1], SEEDS[2]);
    let mut at = 10;
    let mut pending = Vec::new();
    let mut asked = Vec::new();
    while at < 120_000 && !n.is_complete() {
        for o in drain(&mut n) {
            match o {
                Output::HttpGet { id, request } => pending.push((id, request)),
                Output::CancelHttp { id } => pending.retain(|(i, _)| *i != id),
                Output::Event(NodeEvent::WebSeedDropped { url, .. }) => {
                    assert_eq!(url, wrong, "only the wrong seed is dropped")
                }
                _ => {}
            }
        }
        if pending.is_empty() {
            at += 100;
            n.handle_timeout(Time(at));
            continue;
        }
        let (id, request) = pending.remove(0);
        asked.push((at, request.url.clone()));
        if request.url == dead {
            n.http_failed(Time(at), id, "connection refused".into());
            continue;
        }
        let mut body = data[request.start as usize..=request.end as usize].to_vec();
        if request.url == wrong {
            body.iter_mut().for_each(|b| *b ^= 0x5a);
        }
        n.http_data(Time(at), id, &body);
        n.http_end(Time(at), id);
    }
    assert!(n.is_complete(), "{asked:?}");
    let stats = n.web_seeds();
    assert_eq!(stats[0].dropped, None, "{stats:?}");
    assert_eq!(stats[0].bytes, data.len() as u64);
    assert_eq!((stats[1].bytes, stats[1].dropped.as_deref()), (0, None));
    assert!(stats[1].failures >= 1);
    assert_eq!(asked.iter().filter(|(_, u)| u == wrong).count(), 1);
    // The dead seed's retries are spaced by its growing back-off.
    let retries: Vec<u64> = asked
        .iter()
        .filter(|(_, u)| u == dead)
        .map(|(t, _)| *t)
        .collect();
    for pair in retries.windows(2) {
        assert!(pair[1] - pair[0] >= 1_000, "{retries:?}");
    }
}
