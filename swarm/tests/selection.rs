//! A file selection between two real engines: the leecher that wants a
//! few pieces (one file of an album) asks its peer for those only, still
//! serves what it has, and says nothing is left to want.
#![allow(clippy::unwrap_used)]
// Lists of piece ranges, some of one range: what `set_wanted` takes.
#![allow(clippy::single_range_in_vec_init)]

use sha1::{Digest, Sha1};
use swarm::engine::{Config, Event, Output, PeerKey, Torrent, TorrentSpec};
use swarm::time::Time;
use swarm::wire::{BLOCK_SIZE, Decoder, Frame, Message};
use swarm::{InfoHash, PeerId};

const PIECE: u32 = 2 * BLOCK_SIZE;
const PIECES: u32 = 8;

fn content() -> Vec<u8> {
    (0..(PIECE * PIECES) as usize - 700)
        .map(|i| (i * 11 % 251) as u8)
        .collect()
}

fn engine(id: u8) -> Torrent {
    let data = content();
    let spec = TorrentSpec {
        info_hash: InfoHash([3; 20]),
        piece_length: PIECE,
        total_length: data.len() as u64,
        piece_hashes: data
            .chunks(PIECE as usize)
            .map(|c| Sha1::digest(c).into())
            .collect(),
        metadata: None,
        web_seed: false,
    };
    Torrent::new(
        Config::default(),
        spec,
        PeerId::generate([id; 12]),
        u64::from(id),
        Time(0),
    )
    .unwrap()
}

/// Runs the two engines' outputs into each other until both are quiet;
/// returns the piece indexes `a` requested of `b` and the events of `a`.
fn run(a: &mut Torrent, b: &mut Torrent, now: &mut u64) -> (Vec<u32>, Vec<Event>) {
    let (ka, kb) = (PeerKey(1), PeerKey(2)); // a's key for b, b's key for a
    let mut decoder = Decoder::new(1 << 20);
    let mut requested = Vec::new();
    let mut events = Vec::new();
    for _ in 0..200 {
        let mut quiet = true;
        loop {
            match a.poll() {
                Output::Timeout(_) => break,
                Output::Send { peer, data } if peer == ka => {
                    quiet = false;
                    // What a asks of b, read off the wire.
                    decoder.push(&data);
                    while let Some(frame) = decoder.next().unwrap() {
                        if let Frame::Message(Message::Request(block)) = frame {
                            requested.push(block.piece);
                        }
                    }
                    b.handle_peer_data(Time(*now), kb, &data);
                }
                Output::Event(e) => events.push(e),
                _ => {}
            }
        }
        loop {
            match b.poll() {
                Output::Timeout(_) => break,
                Output::Send { peer, data } if peer == kb => {
                    quiet = false;
                    a.handle_peer_data(Time(*now), ka, &data);
                }
                _ => {}
            }
        }
        *now += 50;
        a.handle_timeout(Time(*now));
        b.handle_timeout(Time(*now));
        if quiet && *now > 2_000 {
            break;
        }
    }
    requested.dedup();
    (requested, events)
}

#[test]
fn a_selection_fetches_only_its_pieces_and_still_serves() {
    let data = content();
    let mut seeder = engine(1);
    for (i, chunk) in data.chunks(PIECE as usize).enumerate() {
        assert!(seeder.import_piece(i as u32, chunk));
    }
    let mut leecher = engine(2);
    leecher.set_wanted(Time(0), &[2..4], &[4..5], &[]);
    leecher.add_peer(Time(0), PeerKey(1));
    seeder.add_peer(Time(0), PeerKey(2));
    let mut now = 0;
    let (asked, events) = run(&mut leecher, &mut seeder, &mut now);
    let mut asked_pieces = asked.clone();
    asked_pieces.sort_unstable();
    asked_pieces.dedup();
    assert_eq!(asked_pieces, vec![2, 3, 4], "{asked:?}");
    assert!(leecher.is_wanted_complete() && !leecher.is_complete());
    assert!(!events.contains(&Event::Done), "not every piece is here");
    let had: Vec<u32> = leecher.have().ones().collect();
    assert_eq!(had, vec![2, 3, 4]);

    // A third engine wanting everything gets pieces 2..=4 from the
    // leecher, which serves what it has whatever it wants.
    let mut third = engine(3);
    third.set_wanted(Time(now), &[0..PIECES], &[], &[]);
    third.add_peer(Time(now), PeerKey(1));
    leecher.add_peer(Time(now), PeerKey(2));
    let (asked, _) = run(&mut third, &mut leecher, &mut now);
    assert!(!asked.is_empty());
    assert!(asked.iter().all(|p| (2..5).contains(p)), "{asked:?}");
    let had: Vec<u32> = third.have().ones().collect();
    assert_eq!(had, vec![2, 3, 4]);
    for piece in 2..5 {
        assert_eq!(
            third.piece(piece).unwrap(),
            &data[(piece * PIECE) as usize..((piece + 1) * PIECE) as usize]
        );
    }
}
