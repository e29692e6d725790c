//! One engine against scripted peers speaking real wire bytes: the happy
//! path, timers, and what a hostile peer can and cannot do.
#![allow(clippy::unwrap_used)]

use sha1::{Digest, Sha1};
use swarm::engine::{Config, Event, FetchId, Output, PeerError, PeerKey, Torrent, TorrentSpec};
use swarm::time::Time;
use swarm::wire::extension::{self, ExtendedHandshake};
use swarm::wire::metadata::MetadataMessage;
use swarm::wire::{BLOCK_SIZE, BlockRef, Decoder, Frame, Handshake, Message, Reserved};
use swarm::{InfoHash, PeerId};

const PIECE: u32 = 2 * BLOCK_SIZE;
const PIECES: usize = 4;
const P1: PeerKey = PeerKey(1);
const P2: PeerKey = PeerKey(2);

fn content() -> Vec<u8> {
    (0..PIECE as usize * PIECES - 1000)
        .map(|i| (i * 7 % 251) as u8)
        .collect()
}

fn spec(web_seed: bool) -> TorrentSpec {
    let data = content();
    TorrentSpec {
        info_hash: InfoHash([9; 20]),
        piece_length: PIECE,
        total_length: data.len() as u64,
        piece_hashes: data
            .chunks(PIECE as usize)
            .map(|c| Sha1::digest(c).into())
            .collect(),
        metadata: Some(b"d4:name4:testee".to_vec()),
        web_seed,
    }
}

fn engine(web_seed: bool) -> Torrent {
    Torrent::new(
        Config::default(),
        spec(web_seed),
        PeerId::generate([1; 12]),
        42,
        Time(0),
    )
    .unwrap()
}

fn seeder() -> Torrent {
    let mut t = engine(false);
    for (i, chunk) in content().chunks(PIECE as usize).enumerate() {
        assert!(t.import_piece(i as u32, chunk));
        assert_eq!(
            t.piece_origin(i as u32),
            Some(swarm::engine::PieceOrigin::Imported)
        );
    }
    t
}

/// Drains the engine; returns everything but the final timeout.
fn drain(t: &mut Torrent) -> Vec<Output> {
    let mut out = Vec::new();
    loop {
        match t.poll() {
            Output::Timeout(_) => return out,
            o => out.push(o),
        }
    }
}

/// The frames the engine sent to `key` in `outputs`, decoded. The engine's
/// handshake is only in the first drain after `add_peer`; later drains are
/// decoded as if it had been.
fn sent_to(outputs: &[Output], key: PeerKey) -> Vec<Frame> {
    let mut decoder = Decoder::new(1 << 20);
    let mut started = false;
    let mut frames = Vec::new();
    for o in outputs {
        if let Output::Send { peer, data } = o {
            if *peer != key {
                continue;
            }
            if !started {
                started = true;
                if !data.starts_with(b"\x13BitTorrent protocol") {
                    decoder.push(&handshake_from(0));
                }
            }
            decoder.push(data);
            while let Some(f) = decoder.next().unwrap() {
                frames.push(f);
            }
        }
    }
    frames
}

fn messages(outputs: &[Output], key: PeerKey) -> Vec<Message> {
    sent_to(outputs, key)
        .into_iter()
        .filter_map(|f| match f {
            Frame::Message(m) => Some(m),
            Frame::Handshake(_) => None,
        })
        .collect()
}

/// The blocks the engine requested of `key` in `outputs`.
fn requests(outputs: &[Output], key: PeerKey) -> Vec<BlockRef> {
    messages(outputs, key)
        .into_iter()
        .filter_map(|m| match m {
            Message::Request(b) => Some(b),
            _ => None,
        })
        .collect()
}

fn closed(outputs: &[Output], key: PeerKey) -> Option<PeerError> {
    outputs.iter().find_map(|o| match o {
        Output::Close { peer, reason } if *peer == key => Some(reason.clone()),
        _ => None,
    })
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

/// Connects a scripted peer that has `bitfield` (None: have_none).
fn connect(t: &mut Torrent, key: PeerKey, id: u8, have_all: bool) -> Vec<Output> {
    t.add_peer(Time(0), key);
    let mut bytes = handshake_from(id);
    let msg = if have_all {
        Message::HaveAll
    } else {
        Message::HaveNone
    };
    msg.encode(&mut bytes);
    t.handle_peer_data(Time(0), key, &bytes);
    drain(t)
}

fn send(t: &mut Torrent, now: u64, key: PeerKey, msgs: &[Message]) -> Vec<Output> {
    let mut bytes = Vec::new();
    for m in msgs {
        m.encode(&mut bytes);
    }
    t.handle_peer_data(Time(now), key, &bytes);
    drain(t)
}

#[test]
fn handshake_bitfield_and_extended_handshake_are_sent() {
    let mut t = seeder();
    let out = connect(&mut t, P1, 2, false);
    let msgs = messages(&out, P1);
    let Message::Extended { id: 0, payload } = &msgs[0] else {
        panic!("{msgs:?}")
    };
    let ext = ExtendedHandshake::decode(payload).unwrap();
    assert!(ext.id_of(extension::UT_METADATA).is_some());
    assert_eq!(ext.metadata_size, Some(15));
    assert_eq!(
        msgs[1],
        Message::HaveAll,
        "a seeder with the fast extension says have_all"
    );
    assert!(out.iter().any(
        |o| matches!(o, Output::Event(Event::PeerConnected { id, .. }) if *id == PeerId([2; 20]))
    ));
}

#[test]
fn a_leecher_downloads_verifies_and_says_done() {
    let mut t = engine(false);
    let out = connect(&mut t, P1, 2, true);
    assert!(messages(&out, P1).contains(&Message::Interested));
    let out = send(&mut t, 10, P1, &[Message::Unchoke]);
    let data = content();
    let mut pending: Vec<BlockRef> = requests(&out, P1);
    let mut now = 20;
    let mut events = Vec::new();
    while let Some(b) = pending.pop() {
        let start = b.piece as usize * PIECE as usize + b.offset as usize;
        let block = data[start..start + b.length as usize].to_vec();
        let out = send(
            &mut t,
            now,
            P1,
            &[Message::Piece {
                piece: b.piece,
                offset: b.offset,
                data: block,
            }],
        );
        now += 10;
        pending.extend(requests(&out, P1));
        events.extend(out.into_iter().filter_map(|o| {
            if let Output::Event(e) = o {
                Some(e)
            } else {
                None
            }
        }));
    }
    assert!(t.is_complete());
    assert!(events.contains(&Event::Done));
    let verified = events
        .iter()
        .filter(|e| matches!(e, Event::PieceVerified { .. }))
        .count();
    assert_eq!(verified, PIECES);
    let assembled: Vec<u8> = (0..PIECES as u32)
        .flat_map(|p| t.piece(p).unwrap().to_vec())
        .collect();
    assert_eq!(assembled, data);
    assert_eq!(t.stats().from_peers, data.len() as u64);
    for p in 0..PIECES as u32 {
        assert_eq!(t.piece_origin(p), Some(swarm::engine::PieceOrigin::Peers));
    }
}

#[test]
fn a_seeder_serves_requests_after_unchoking() {
    let mut t = seeder();
    connect(&mut t, P1, 2, false);
    let out = send(&mut t, 10, P1, &[Message::Interested]);
    assert!(
        messages(&out, P1).contains(&Message::Unchoke),
        "the first interested peer is unchoked at once"
    );
    let block = BlockRef {
        piece: 1,
        offset: BLOCK_SIZE,
        length: BLOCK_SIZE,
    };
    let out = send(&mut t, 20, P1, &[Message::Request(block)]);
    let data = content();
    let start = PIECE as usize + BLOCK_SIZE as usize;
    let expected = Message::Piece {
        piece: 1,
        offset: BLOCK_SIZE,
        data: data[start..start + BLOCK_SIZE as usize].to_vec(),
    };
    assert!(messages(&out, P1).contains(&expected));
    assert_eq!(t.stats().uploaded, u64::from(BLOCK_SIZE));
}

#[test]
fn send_backpressure_holds_blocks_until_drained() {
    let mut t = seeder();
    connect(&mut t, P1, 2, false);
    send(&mut t, 10, P1, &[Message::Interested]);
    t.set_send_blocked(Time(15), P1, true);
    let block = BlockRef {
        piece: 0,
        offset: 0,
        length: BLOCK_SIZE,
    };
    let out = send(&mut t, 20, P1, &[Message::Request(block)]);
    assert!(
        !messages(&out, P1)
            .iter()
            .any(|m| matches!(m, Message::Piece { .. }))
    );
    t.set_send_blocked(Time(30), P1, false);
    let out = drain(&mut t);
    assert!(
        messages(&out, P1)
            .iter()
            .any(|m| matches!(m, Message::Piece { .. }))
    );
}

#[test]
fn metadata_is_served_over_ut_metadata() {
    let mut t = seeder();
    t.add_peer(Time(0), P1);
    let mut theirs = ExtendedHandshake::default();
    theirs.m.insert(extension::UT_METADATA.to_owned(), 3);
    let mut bytes = handshake_from(2);
    Message::Extended {
        id: 0,
        payload: theirs.encode(),
    }
    .encode(&mut bytes);
    t.handle_peer_data(Time(0), P1, &bytes);
    drain(&mut t);
    let ours = 1; // the id our extended handshake advertised
    let req = Message::Extended {
        id: ours,
        payload: MetadataMessage::Request { piece: 0 }.encode(),
    };
    let out = send(&mut t, 5, P1, &[req]);
    let reply = messages(&out, P1).into_iter().find_map(|m| match m {
        Message::Extended { id: 3, payload } => Some(MetadataMessage::decode(&payload).unwrap()),
        _ => None,
    });
    assert_eq!(
        reply,
        Some(MetadataMessage::Data {
            piece: 0,
            total_size: 15,
            data: b"d4:name4:testee".to_vec()
        })
    );
    let req = Message::Extended {
        id: ours,
        payload: MetadataMessage::Request { piece: 9 }.encode(),
    };
    let out = send(&mut t, 6, P1, &[req]);
    assert!(
        messages(&out, P1)
            .iter()
            .any(|m| matches!(m, Message::Extended { id: 3, .. })),
        "out of range is rejected"
    );
    // An index whose byte offset does not fit a 32-bit usize (wasm32):
    // rejected, not an overflow (this test runs on i686 in scripts/test).
    for piece in [1 << 18, u32::MAX] {
        let req = Message::Extended {
            id: ours,
            payload: MetadataMessage::Request { piece }.encode(),
        };
        let out = send(&mut t, 7, P1, &[req]);
        let reply = messages(&out, P1).into_iter().find_map(|m| match m {
            Message::Extended { id: 3, payload } => MetadataMessage::decode(&payload).ok(),
            _ => None,
        });
        assert_eq!(reply, Some(MetadataMessage::Reject { piece }));
    }
}

#[test]
fn unanswered_requests_time_out_and_go_to_another_peer() {
    let mut t = engine(false);
    connect(&mut t, P1, 2, true);
    let out = send(&mut t, 10, P1, &[Message::Unchoke]);
    let asked_p1 = requests(&out, P1);
    assert!(!asked_p1.is_empty());
    connect(&mut t, P2, 3, true);
    let out = send(&mut t, 20, P2, &[Message::Unchoke]);
    let before = requests(&out, P2);
    for m in &asked_p1 {
        assert!(
            !before.contains(m),
            "no duplicate request before the timeout (outside endgame)"
        );
    }
    let later = Config::default().request_timeout.as_millis() as u64 + 1_000;
    t.handle_timeout(Time(later));
    let out = drain(&mut t);
    let after = requests(&out, P2);
    assert!(
        asked_p1.iter().any(|m| after.contains(m)),
        "timed-out blocks are asked of the other peer"
    );
}

#[test]
fn handshake_timeout_and_keepalive() {
    let mut t = seeder();
    t.add_peer(Time(0), P1);
    connect(&mut t, P2, 3, false);
    drain(&mut t);
    let cfg = Config::default();
    t.handle_timeout(Time(cfg.handshake_timeout.as_millis() as u64));
    let out = drain(&mut t);
    assert_eq!(closed(&out, P1), Some(PeerError::Timeout("handshake")));
    t.handle_peer_data(
        Time(cfg.keepalive_interval.as_millis() as u64),
        P2,
        &[0, 0, 0, 0],
    );
    t.handle_timeout(Time(cfg.keepalive_interval.as_millis() as u64 + 100));
    let out = drain(&mut t);
    assert!(messages(&out, P2).contains(&Message::KeepAlive));
}

#[test]
fn a_web_seed_serves_the_playhead_in_one_streamed_run_when_no_peer_can() {
    let mut t = engine(true);
    t.set_playback(
        Time(0),
        Some(swarm::picker::Playback {
            offset: 0,
            bytes_per_sec: None,
        }),
    );
    let fetches = |out: &[Output]| -> Vec<(FetchId, u64, u32)> {
        out.iter()
            .filter_map(|o| match o {
                Output::FetchWebSeed { id, offset, length } => Some((*id, *offset, *length)),
                _ => None,
            })
            .collect()
    };
    let data = content();
    // Every piece is due within the urgent window: one fetch, the whole run.
    let first = fetches(&drain(&mut t));
    assert_eq!(first, vec![(first[0].0, 0, data.len() as u32)]);
    // The body arrives in odd chunks; each piece verifies as its last byte
    // comes in, before the rest of the run is on the wire.
    let cut = PIECE as usize + 777;
    for chunk in data[..cut].chunks(5_000) {
        t.handle_web_seed_data(Time(50), first[0].0, chunk);
    }
    let out = drain(&mut t);
    assert!(out.contains(&Output::Event(Event::PieceVerified { piece: 0 })));
    assert_eq!(t.piece_origin(0), Some(swarm::engine::PieceOrigin::WebSeed));
    assert_eq!(t.piece_origin(1), None, "not verified yet");
    // The body ends short: what did not come goes back, the web seed backs off.
    t.handle_web_seed_end(Time(60), first[0].0);
    assert_eq!(t.check_invariants(), Ok(()));
    let out = drain(&mut t);
    assert!(fetches(&out).is_empty(), "backing off");
    t.handle_timeout(Time(5_000));
    let again = fetches(&drain(&mut t));
    assert_eq!(
        again.iter().map(|f| (f.1, f.2)).collect::<Vec<_>>(),
        vec![(u64::from(PIECE), data.len() as u32 - PIECE)],
        "the rest, from piece 1 on"
    );
    t.handle_web_seed_data(Time(5_050), again[0].0, &data[PIECE as usize..]);
    drain(&mut t);
    assert!(t.is_complete());
    assert_eq!(t.check_invariants(), Ok(()));
}

// ---- hostile peers ----

#[test]
fn wrong_info_hash_is_refused() {
    let mut t = seeder();
    t.add_peer(Time(0), P1);
    let h = Handshake {
        reserved: Reserved::FANSWARM,
        info_hash: InfoHash([8; 20]),
        peer_id: PeerId([2; 20]),
    };
    t.handle_peer_data(Time(0), P1, &h.encode());
    assert_eq!(
        closed(&drain(&mut t), P1),
        Some(PeerError::WrongInfoHash(InfoHash([8; 20])))
    );
}

#[test]
fn our_own_id_and_duplicate_ids_are_refused() {
    let mut t = seeder();
    connect(&mut t, P1, 2, false);
    t.add_peer(Time(0), P2);
    t.handle_peer_data(Time(0), P2, &handshake_from(2));
    assert_eq!(
        closed(&drain(&mut t), P2),
        Some(PeerError::DuplicatePeerId(PeerId([2; 20])))
    );
    t.add_peer(Time(0), PeerKey(3));
    let h = Handshake {
        reserved: Reserved::FANSWARM,
        info_hash: InfoHash([9; 20]),
        peer_id: t.peer_id(),
    };
    t.handle_peer_data(Time(0), PeerKey(3), &h.encode());
    assert_eq!(
        closed(&drain(&mut t), PeerKey(3)),
        Some(PeerError::SelfConnection)
    );
}

#[test]
fn out_of_range_pieces_and_bad_bitfields_drop_the_peer_only() {
    let cases: Vec<Vec<Message>> = vec![
        vec![
            Message::HaveNone,
            Message::Have {
                piece: PIECES as u32,
            },
        ],
        vec![Message::Bitfield(vec![0xf0, 0x00])],
        vec![Message::Bitfield(vec![0xf8])],
        vec![Message::HaveNone, Message::Bitfield(vec![0xf0])],
        vec![
            Message::HaveNone,
            Message::Request(BlockRef {
                piece: 9,
                offset: 0,
                length: BLOCK_SIZE,
            }),
        ],
        vec![
            Message::HaveNone,
            Message::Request(BlockRef {
                piece: 0,
                offset: PIECE - 10,
                length: BLOCK_SIZE,
            }),
        ],
        vec![
            Message::HaveNone,
            Message::Request(BlockRef {
                piece: 0,
                offset: 0,
                length: 256 * 1024,
            }),
        ],
        vec![Message::HaveNone, Message::Suggest { piece: 1000 }],
    ];
    for msgs in cases {
        let mut t = seeder();
        connect(&mut t, P2, 3, false);
        t.add_peer(Time(0), P1);
        t.handle_peer_data(Time(0), P1, &handshake_from(2));
        drain(&mut t);
        let out = send(&mut t, 5, P1, &msgs);
        assert!(
            matches!(closed(&out, P1), Some(PeerError::Protocol(_))),
            "{msgs:?} -> {out:?}"
        );
        assert!(closed(&out, P2).is_none(), "other peers are unaffected");
        assert_eq!(t.stats().peers, 1);
    }
}

#[test]
fn oversized_messages_and_garbage_drop_the_peer() {
    let mut t = seeder();
    t.add_peer(Time(0), P1);
    let mut bytes = handshake_from(2);
    bytes.extend_from_slice(&(10_000_000u32).to_be_bytes());
    bytes.push(7);
    t.handle_peer_data(Time(0), P1, &bytes);
    assert!(matches!(
        closed(&drain(&mut t), P1),
        Some(PeerError::Wire(_))
    ));
    t.add_peer(Time(0), P2);
    t.handle_peer_data(Time(0), P2, b"GET / HTTP/1.1\r\nHost: x\r\n\r\n........................................................");
    assert!(matches!(
        closed(&drain(&mut t), P2),
        Some(PeerError::Wire(_))
    ));
}

#[test]
fn requests_beyond_the_queue_limit_are_rejected_not_queued() {
    let mut t = seeder();
    connect(&mut t, P1, 2, false);
    send(&mut t, 1, P1, &[Message::Interested]);
    t.set_send_blocked(Time(2), P1, true);
    let limit = Config::default().max_requests_per_peer as usize;
    let reqs: Vec<Message> = (0..limit + 40)
        .map(|i| {
            Message::Request(BlockRef {
                piece: (i % PIECES) as u32,
                offset: 0,
                length: 1 + (i / PIECES) as u32,
            })
        })
        .collect();
    let out = send(&mut t, 3, P1, &reqs);
    let rejects = messages(&out, P1)
        .iter()
        .filter(|m| matches!(m, Message::Reject(_)))
        .count();
    assert_eq!(rejects, 40);
}

#[test]
fn unrequested_blocks_are_ignored_then_the_flooder_is_dropped() {
    let mut t = engine(false);
    connect(&mut t, P1, 2, true);
    let junk = Message::Piece {
        piece: 0,
        offset: 0,
        data: vec![0; BLOCK_SIZE as usize],
    };
    let out = send(&mut t, 1, P1, std::slice::from_ref(&junk));
    assert!(closed(&out, P1).is_none());
    let flood = vec![junk; 80];
    let out = send(&mut t, 2, P1, &flood);
    assert!(matches!(closed(&out, P1), Some(PeerError::Protocol(_))));
    assert!(!t.have().has(0));
}

#[test]
fn a_peer_sending_a_corrupt_piece_is_banned_and_the_piece_refetched() {
    let mut t = engine(false);
    connect(&mut t, P1, 2, true);
    let out = send(&mut t, 1, P1, &[Message::Unchoke]);
    let reqs: Vec<BlockRef> = requests(&out, P1);
    let piece = reqs[0].piece;
    let bad: Vec<Message> = reqs
        .iter()
        .filter(|b| b.piece == piece)
        .map(|b| Message::Piece {
            piece,
            offset: b.offset,
            data: vec![0xee; b.length as usize],
        })
        .collect();
    let out = send(&mut t, 2, P1, &bad);
    assert!(out.contains(&Output::Event(Event::PieceFailed { piece })));
    let stats = t.stats();
    assert_eq!(stats.from_peers, 0, "a failed piece's bytes are not useful");
    assert_eq!(stats.wasted, u64::from(PIECE));
    assert_eq!(closed(&out, P1), Some(PeerError::Banned(PeerId([2; 20]))));
    assert!(t.is_banned(&PeerId([2; 20])));
    // It cannot come back, and an honest peer gets the piece asked of it.
    t.add_peer(Time(3), PeerKey(7));
    t.handle_peer_data(Time(3), PeerKey(7), &handshake_from(2));
    assert_eq!(
        closed(&drain(&mut t), PeerKey(7)),
        Some(PeerError::Banned(PeerId([2; 20])))
    );
    connect(&mut t, P2, 3, true);
    let out = send(&mut t, 4, P2, &[Message::Unchoke]);
    assert!(
        messages(&out, P2)
            .iter()
            .any(|m| matches!(m, Message::Request(b) if b.piece == piece))
    );
}

#[test]
fn an_inconsistent_spec_is_an_error_not_a_panic() {
    let mut s = spec(false);
    s.piece_hashes.pop();
    assert!(Torrent::new(Config::default(), s, PeerId([1; 20]), 0, Time(0)).is_err());
    let mut s = spec(false);
    s.piece_length = 0;
    assert!(Torrent::new(Config::default(), s, PeerId([1; 20]), 0, Time(0)).is_err());
}

#[test]
fn a_torrent_file_drives_an_engine_end_to_end() {
    use swarm::metainfo::{Metainfo, TorrentBuilder, hash_pieces};
    let data = content();
    let builder = TorrentBuilder::single_file("track.ogg", data.len() as u64)
        .piece_length(PIECE)
        .tracker("wss://tracker.example/announce")
        .web_seed("https://artist.example/media/track.ogg");
    let meta = builder.build(&hash_pieces(&data, PIECE).unwrap()).unwrap();
    let parsed = Metainfo::from_bytes(&meta.to_bytes()).unwrap();
    let spec = TorrentSpec::from_metainfo(&parsed);
    assert_eq!(spec.info_hash, meta.info_hash);
    assert!(spec.web_seed);
    assert_eq!(spec.metadata.as_deref(), Some(&parsed.info_bytes[..]));
    let mut t = Torrent::new(Config::default(), spec, PeerId([1; 20]), 1, Time(0)).unwrap();
    for (i, chunk) in data.chunks(PIECE as usize).enumerate() {
        assert!(t.import_piece(i as u32, chunk));
    }
    assert!(t.is_complete());
}

#[test]
fn a_deep_request_queue_is_served_in_bursts_without_waiting_for_a_tick() {
    let mut t = seeder();
    connect(&mut t, P1, 2, false);
    send(&mut t, 1, P1, &[Message::Interested]);
    let reqs: Vec<Message> = (0..PIECES as u32)
        .flat_map(|p| {
            let size = if p + 1 == PIECES as u32 {
                PIECE - 1000
            } else {
                PIECE
            };
            (0..size.div_ceil(BLOCK_SIZE)).map(move |b| (p, b, size))
        })
        .flat_map(|(p, b, size)| {
            // Split each block into 1 KiB requests to make the queue deep.
            let len = (size - b * BLOCK_SIZE).min(BLOCK_SIZE);
            (0..len.div_ceil(1024)).map(move |k| BlockRef {
                piece: p,
                offset: b * BLOCK_SIZE + k * 1024,
                length: (len - k * 1024).min(1024),
            })
        })
        .map(Message::Request)
        .collect();
    assert!(reqs.len() > Config::default().serve_burst * 3);
    let mut bytes = Vec::new();
    for m in &reqs {
        m.encode(&mut bytes);
    }
    t.handle_peer_data(Time(2), P1, &bytes);
    let mut served = 0;
    let mut rounds = 0;
    loop {
        match t.poll() {
            Output::Send { data, .. } => {
                let mut d = Decoder::new(1 << 20);
                d.push(&handshake_from(0));
                d.push(&data);
                while let Some(f) = d.next().unwrap() {
                    served += usize::from(matches!(f, Frame::Message(Message::Piece { .. })));
                }
            }
            Output::Timeout(at) if served < reqs.len() => {
                assert_eq!(
                    at,
                    Time(2),
                    "more to serve: the engine asks to come back at once"
                );
                t.handle_timeout(at);
                rounds += 1;
            }
            Output::Timeout(_) => break,
            _ => {}
        }
    }
    assert_eq!(served, reqs.len());
    assert!(rounds >= 3);
}
