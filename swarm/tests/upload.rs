//! The upload policy against scripted peers speaking real wire bytes: a
//! peer that uploads nothing chokes and rejects but still downloads, turning
//! it off and on mid-transfer, and a cap that holds over time.
#![allow(clippy::unwrap_used)]

use sha1::{Digest, Sha1};
use swarm::engine::{Config, Output, PeerKey, Torrent, TorrentSpec, Upload};
use swarm::time::Time;
use swarm::wire::{BLOCK_SIZE, BlockRef, Decoder, Frame, Handshake, Message, Reserved};
use swarm::{InfoHash, PeerId};

const PIECE: u32 = 2 * BLOCK_SIZE;
const PIECES: usize = 8;
const P1: PeerKey = PeerKey(1);
const P2: PeerKey = PeerKey(2);

fn content() -> Vec<u8> {
    (0..PIECE as usize * PIECES)
        .map(|i| (i * 13 % 251) as u8)
        .collect()
}

fn engine(upload: Upload) -> Torrent {
    let data = content();
    let spec = TorrentSpec {
        info_hash: InfoHash([9; 20]),
        piece_length: PIECE,
        total_length: data.len() as u64,
        piece_hashes: data
            .chunks(PIECE as usize)
            .map(|c| Sha1::digest(c).into())
            .collect(),
        metadata: Some(b"d4:name4:testee".to_vec()),
        web_seed: false,
    };
    let config = Config {
        upload,
        ..Config::default()
    };
    Torrent::new(config, spec, PeerId::generate([1; 12]), 7, Time(0)).unwrap()
}

fn seeder(upload: Upload) -> Torrent {
    let mut t = engine(upload);
    for (i, chunk) in content().chunks(PIECE as usize).enumerate() {
        assert!(t.import_piece(i as u32, chunk));
    }
    t
}

/// Everything the engine wants done, up to (not including) its timeout.
fn drain(t: &mut Torrent) -> (Vec<Output>, Time) {
    let mut out = Vec::new();
    loop {
        match t.poll() {
            Output::Timeout(at) => return (out, at),
            o => out.push(o),
        }
    }
}

fn handshake_from(id: u8) -> Vec<u8> {
    Handshake {
        reserved: Reserved::FANSWARM,
        info_hash: InfoHash([9; 20]),
        peer_id: PeerId([id; 20]),
    }
    .encode()
    .to_vec()
}

/// The messages sent to `key` in `outputs` (after our handshake).
fn messages(outputs: &[Output], key: PeerKey) -> Vec<Message> {
    let mut decoder = Decoder::new(1 << 20);
    let mut started = false;
    let mut out = Vec::new();
    for o in outputs {
        let Output::Send { peer, data } = o else {
            continue;
        };
        if *peer != key {
            continue;
        }
        if !started && !data.starts_with(b"\x13BitTorrent protocol") {
            decoder.push(&handshake_from(0));
        }
        started = true;
        decoder.push(data);
        while let Some(f) = decoder.next().unwrap() {
            if let Frame::Message(m) = f {
                out.push(m);
            }
        }
    }
    out
}

fn send(t: &mut Torrent, now: u64, key: PeerKey, msgs: &[Message]) -> Vec<Output> {
    let mut bytes = Vec::new();
    for m in msgs {
        m.encode(&mut bytes);
    }
    t.handle_peer_data(Time(now), key, &bytes);
    drain(t).0
}

fn connect(t: &mut Torrent, key: PeerKey, id: u8, have_all: bool) {
    t.add_peer(Time(0), key);
    let mut bytes = handshake_from(id);
    let have = if have_all {
        Message::HaveAll
    } else {
        Message::HaveNone
    };
    have.encode(&mut bytes);
    t.handle_peer_data(Time(0), key, &bytes);
    drain(t);
}

fn piece_bytes(msgs: &[Message]) -> u64 {
    msgs.iter()
        .map(|m| match m {
            Message::Piece { data, .. } => data.len() as u64,
            _ => 0,
        })
        .sum()
}

fn all_blocks() -> Vec<BlockRef> {
    (0..PIECES as u32)
        .flat_map(|piece| {
            (0..PIECE / BLOCK_SIZE).map(move |b| BlockRef {
                piece,
                offset: b * BLOCK_SIZE,
                length: BLOCK_SIZE,
            })
        })
        .collect()
}

#[test]
fn with_upload_off_every_request_is_rejected_and_nothing_is_sent() {
    let mut t = seeder(Upload::Off);
    connect(&mut t, P1, 2, false);
    let out = send(&mut t, 10, P1, &[Message::Interested]);
    assert!(
        !messages(&out, P1).contains(&Message::Unchoke),
        "an interested peer is not unchoked"
    );
    let block = all_blocks()[3];
    let out = send(&mut t, 20, P1, &[Message::Request(block)]);
    let msgs = messages(&out, P1);
    assert!(msgs.contains(&Message::Reject(block)), "{msgs:?}");
    // Rechokes come and go: still nobody is unchoked, nothing is sent.
    let mut sent = Vec::new();
    for s in 1..=40 {
        t.handle_timeout(Time(s * 1000));
        sent.extend(drain(&mut t).0);
    }
    let msgs = messages(&sent, P1);
    assert!(!msgs.contains(&Message::Unchoke), "{msgs:?}");
    assert_eq!(piece_bytes(&msgs), 0);
    assert_eq!(t.stats().uploaded, 0);
}

#[test]
fn a_peer_that_uploads_nothing_still_downloads_everything_from_peers() {
    let mut t = engine(Upload::Off);
    connect(&mut t, P1, 2, true);
    let data = content();
    let mut pending: Vec<BlockRef> = Vec::new();
    let out = send(&mut t, 10, P1, &[Message::Unchoke]);
    for m in messages(&out, P1) {
        if let Message::Request(b) = m {
            pending.push(b);
        }
    }
    assert!(!pending.is_empty(), "it asks for blocks once unchoked");
    let mut now = 20;
    while let Some(b) = pending.pop() {
        let start = (b.piece * PIECE + b.offset) as usize;
        let piece = Message::Piece {
            piece: b.piece,
            offset: b.offset,
            data: data[start..start + b.length as usize].to_vec(),
        };
        let out = send(&mut t, now, P1, &[piece]);
        now += 5;
        for m in messages(&out, P1) {
            if let Message::Request(b) = m {
                pending.push(b);
            }
        }
    }
    assert!(t.is_complete());
    assert_eq!(t.stats().from_peers, data.len() as u64);
    assert_eq!(t.stats().uploaded, 0);
}

#[test]
fn turning_upload_off_chokes_and_rejects_the_queue_and_on_unchokes_again() {
    let mut t = seeder(Upload::Unlimited);
    connect(&mut t, P1, 2, false);
    let out = send(&mut t, 10, P1, &[Message::Interested]);
    assert!(messages(&out, P1).contains(&Message::Unchoke));
    // A full channel holds the requests in the queue.
    t.set_send_blocked(Time(11), P1, true);
    let blocks = all_blocks();
    let requests: Vec<Message> = blocks[..4].iter().map(|b| Message::Request(*b)).collect();
    let out = send(&mut t, 12, P1, &requests);
    assert_eq!(piece_bytes(&messages(&out, P1)), 0, "blocked: queued");

    t.set_upload(Time(13), Upload::Off);
    let (out, _) = drain(&mut t);
    let msgs = messages(&out, P1);
    assert!(msgs.contains(&Message::Choke), "{msgs:?}");
    for b in &blocks[..4] {
        assert!(msgs.contains(&Message::Reject(*b)), "queued {b:?} rejected");
    }
    t.set_send_blocked(Time(14), P1, false);
    assert_eq!(piece_bytes(&messages(&drain(&mut t).0, P1)), 0);
    assert_eq!(t.upload(), Upload::Off);

    t.set_upload(Time(15), Upload::Unlimited);
    let (out, _) = drain(&mut t);
    assert!(messages(&out, P1).contains(&Message::Unchoke), "back on");
    let out = send(&mut t, 16, P1, &[Message::Request(blocks[0])]);
    assert_eq!(piece_bytes(&messages(&out, P1)), u64::from(BLOCK_SIZE));
}

#[test]
fn a_cap_bounds_the_bytes_sent_over_time_and_wakes_when_credit_returns() {
    let cap: u32 = 40_000;
    let mut t = seeder(Upload::Capped(cap));
    connect(&mut t, P1, 2, false);
    connect(&mut t, P2, 3, false);
    send(&mut t, 0, P1, &[Message::Interested]);
    send(&mut t, 0, P2, &[Message::Interested]);
    let blocks = all_blocks();
    let mut sent_at: Vec<(u64, u64)> = Vec::new();
    for (key, half) in [(P1, &blocks[..8]), (P2, &blocks[8..])] {
        let reqs: Vec<Message> = half.iter().map(|b| Message::Request(*b)).collect();
        let out = send(&mut t, 0, key, &reqs);
        sent_at.push((
            0,
            piece_bytes(&messages(&out, P1)) + piece_bytes(&messages(&out, P2)),
        ));
    }
    let total = (blocks.len() as u64) * u64::from(BLOCK_SIZE);
    let mut wakes = 0;
    let mut now = Time(0);
    while sent_at.iter().map(|s| s.1).sum::<u64>() < total {
        let (_, at) = drain(&mut t);
        assert!(at > now, "capped: no busy loop at {now:?}");
        now = at;
        wakes += 1;
        assert!(wakes < 200, "all served: {sent_at:?}");
        t.handle_timeout(now);
        let (out, _) = drain(&mut t);
        sent_at.push((
            now.as_millis(),
            piece_bytes(&messages(&out, P1)) + piece_bytes(&messages(&out, P2)),
        ));
    }
    // Over every window from the start: at most a second's credit, the
    // rate, and one block of debt.
    let mut cumulative = 0;
    for (ms, bytes) in &sent_at {
        cumulative += bytes;
        let bound = u64::from(cap) * (1000 + ms) / 1000 + u64::from(BLOCK_SIZE);
        assert!(cumulative <= bound, "{cumulative} B by {ms} ms > {bound}");
    }
    // ... and it did not dawdle: 256 KiB at 40 kB/s is about 5.6 s.
    let (end, _) = sent_at.last().copied().unwrap();
    assert!(end <= 7_000, "done at {end} ms");
    assert_eq!(t.stats().uploaded, total);
}
