//! When the web seed takes a piece, one engine against scripted peers: a
//! late piece is not left to a peer that is too slow to deliver it, and a
//! neighbour that has not yet said what it does holds the crowd's
//! election (see `engine/crowd.rs` and `engine/webseed.rs`).
#![allow(clippy::unwrap_used)]
// Piece ranges are the values here, not a mistaken `vec![0; n]`.
#![allow(clippy::single_range_in_vec_init)]

use std::time::Duration;

use sha1::{Digest, Sha1};
use swarm::engine::crowd::{CrowdMessage, FS_CROWD};
use swarm::engine::{Config, FetchId, Output, PeerKey, Torrent, TorrentSpec};
use swarm::picker::Playback;
use swarm::time::Time;
use swarm::wire::extension::ExtendedHandshake;
use swarm::wire::{BLOCK_SIZE, Handshake, Message, Reserved};
use swarm::{InfoHash, PeerId};

const PIECE: u32 = 2 * BLOCK_SIZE;
const PIECES: usize = 6;
/// Playback reads one piece every two seconds.
const RATE: u64 = PIECE as u64 / 2;
const P1: PeerKey = PeerKey(1);

fn content() -> Vec<u8> {
    (0..PIECE as usize * PIECES)
        .map(|i| (i * 11 % 251) as u8)
        .collect()
}

fn engine() -> Torrent {
    engine_with(Config::default())
}

fn engine_with(config: Config) -> Torrent {
    let data = content();
    let spec = TorrentSpec {
        info_hash: InfoHash([9; 20]),
        piece_length: PIECE,
        total_length: data.len() as u64,
        piece_hashes: data
            .chunks(PIECE as usize)
            .map(|c| Sha1::digest(c).into())
            .collect(),
        metadata: None,
        web_seed: true,
    };
    Torrent::new(config, spec, PeerId([1; 20]), 42, Time(0)).unwrap()
}

fn drain(t: &mut Torrent) -> Vec<Output> {
    let mut out = Vec::new();
    loop {
        match t.poll() {
            Output::Timeout(_) => return out,
            o => out.push(o),
        }
    }
}

/// Web-seed fetches in `out` as (id, first piece, last piece).
fn fetches(out: &[Output]) -> Vec<(FetchId, u32, u32)> {
    out.iter()
        .filter_map(|o| match o {
            Output::FetchWebSeed { id, offset, length } => {
                let first = (offset / u64::from(PIECE)) as u32;
                let last = ((offset + u64::from(*length) - 1) / u64::from(PIECE)) as u32;
                Some((*id, first, last))
            }
            _ => None,
        })
        .collect()
}

/// Messages sent to `P1` in `out` (after its handshake).
fn sent_to_p1(out: &[Output]) -> Vec<Message> {
    let mut bytes = Vec::new();
    for o in out {
        if let Output::Send { peer, data } = o
            && *peer == P1
        {
            bytes.extend_from_slice(data);
        }
    }
    let mut messages = Vec::new();
    let mut rest = &bytes[..];
    while let Ok((m, used)) = Message::decode(rest, 1 << 20) {
        messages.push(m);
        rest = &rest[used..];
    }
    assert!(rest.is_empty(), "whole messages");
    messages
}

fn play(t: &mut Torrent, at: u64) {
    t.set_playback(
        Time(at),
        Some(Playback {
            offset: 0,
            bytes_per_sec: Some(RATE),
        }),
    );
}

/// Connects a scripted peer with id `id` whose first bytes are `after`.
fn connect(t: &mut Torrent, at: u64, key: PeerKey, id: u8, after: &[Message]) {
    t.add_peer(Time(at), key);
    let mut bytes = Handshake {
        reserved: Reserved::FANSWARM,
        info_hash: InfoHash([9; 20]),
        peer_id: PeerId([id; 20]),
    }
    .encode()
    .to_vec();
    for m in after {
        m.encode(&mut bytes);
    }
    t.handle_peer_data(Time(at), key, &bytes);
}

#[test]
fn a_slow_peer_holding_every_block_of_a_late_piece_loses_it_to_the_web_seed() {
    let mut t = engine();
    // A peer that has everything and unchokes us at once, then sends nothing.
    connect(&mut t, 0, P1, 2, &[Message::HaveAll, Message::Unchoke]);
    drain(&mut t);
    play(&mut t, 10);
    let out = drain(&mut t);
    assert!(
        out.iter()
            .any(|o| matches!(o, Output::Send { peer, .. } if *peer == P1)),
        "piece 0 is asked of the peer first"
    );
    assert!(
        fetches(&out).is_empty(),
        "a peer that unchokes us gets its chance"
    );
    // It stays silent while piece 0 is due: the web seed takes it, although
    // every block of it is still asked of the peer.
    t.handle_timeout(Time(400));
    let got = fetches(&drain(&mut t));
    assert_eq!(got.first().map(|f| f.1), Some(0), "{got:?}");
    let data = content();
    t.handle_web_seed_data(Time(450), got[0].0, &data[..PIECE as usize]);
    let out = drain(&mut t);
    assert!(t.piece(0).is_some(), "verified from the web seed");
    let cancels = sent_to_p1(&out)
        .into_iter()
        .filter(|m| matches!(m, Message::Cancel(b) if b.piece == 0))
        .count();
    assert_eq!(
        cancels, 2,
        "the peer is told to drop both blocks it need not send"
    );
    assert_eq!(t.check_invariants(), Ok(()));
}

#[test]
fn a_neighbour_that_has_not_said_whether_it_fetches_holds_the_election() {
    let mut t = engine();
    // A fanswarm peer with nothing: its extended handshake says it speaks
    // the crowd extension, but its state has not come yet.
    let mut theirs = ExtendedHandshake::default();
    theirs.m.insert(FS_CROWD.to_owned(), 7);
    connect(&mut t, 0, P1, 2, &[theirs.to_message(), Message::HaveNone]);
    drain(&mut t);
    play(&mut t, 10);
    // While it settles, only what is due just in time (0.75 s: piece 0)
    // cannot wait; the rest of the urgent window (6 s) waits for the
    // neighbour, who may have it or be the one the crowd elects for it.
    let first = fetches(&drain(&mut t));
    assert_eq!(
        first.iter().map(|f| (f.1, f.2)).collect::<Vec<_>>(),
        vec![(0, 0)]
    );
    t.handle_timeout(Time(1_000));
    assert!(fetches(&drain(&mut t)).is_empty(), "still settling");
    // It never says: after the settling time we fetch for ourselves.
    let settle = Config::default().crowd_settle;
    t.handle_timeout(Time(settle.as_millis() as u64 + 10));
    let later = fetches(&drain(&mut t));
    assert!(
        later.iter().any(|f| f.2 >= 2),
        "the rest of the urgent window: {later:?}"
    );
    assert!(settle < Duration::from_secs(6));
}

#[test]
fn the_elected_fetcher_staggers_its_early_fetch_by_its_rank_in_the_crowd() {
    // One fanswarm neighbour that fetches nothing from the web seed (it
    // says so): we are elected for every group, in a crowd of 1,000.
    let run = |stagger: Duration| {
        let mut t = engine_with(Config {
            web_seed_stagger: stagger,
            ..Config::default()
        });
        let mut theirs = ExtendedHandshake::default();
        theirs.m.insert(FS_CROWD.to_owned(), 7);
        let state = Message::Extended {
            id: 3,
            payload: CrowdMessage::State {
                web_seed: false,
                wants: None,
            }
            .encode(),
        };
        connect(
            &mut t,
            0,
            P1,
            2,
            &[theirs.to_message(), Message::HaveNone, state],
        );
        t.set_peers_coming(Time(0), false, 1000);
        drain(&mut t);
        // A quarter into piece 0: piece 3 is due in 5.5 s, just urgent (6 s).
        t.set_playback(
            Time(10),
            Some(Playback {
                offset: u64::from(PIECE / 4),
                bytes_per_sec: Some(RATE),
            }),
        );
        let at_play: Vec<(u32, u32)> = fetches(&drain(&mut t)).iter().map(|f| (f.1, f.2)).collect();
        (t, at_play)
    };
    // Without a stagger the whole urgent window (within 6 s: pieces 0-3)
    // goes at once.
    let (_, at_once) = run(Duration::ZERO);
    assert_eq!(at_once, vec![(0, 3)]);
    // With it, the piece that just turned urgent waits for our turn (our
    // weight ranks low in this crowd: most of the stagger); the rest goes
    // at once.
    let stagger = Duration::from_secs(1);
    let (mut t, first) = run(stagger);
    assert_eq!(
        first,
        vec![(0, 2)],
        "all but the piece that just turned urgent"
    );
    // The engine wakes up for our turn: the piece goes within the stagger,
    // not at the next piece's urgency or the 2 s fallback.
    let (mut taken, mut last) = (None, Time(10));
    while taken.is_none() {
        let Output::Timeout(wake) = t.poll() else {
            panic!("drained")
        };
        assert!(wake > last, "a wake-up that moves time on: {wake:?}");
        assert!(wake <= Time(10 + stagger.as_millis() as u64), "{wake:?}");
        last = wake;
        // The player moves on, as it tells the engine every 250 ms.
        t.set_playback(
            wake,
            Some(Playback {
                offset: u64::from(PIECE / 4) + RATE * (wake.0 - 10) / 1000,
                bytes_per_sec: Some(RATE),
            }),
        );
        t.handle_timeout(wake);
        let got: Vec<(u32, u32)> = fetches(&drain(&mut t)).iter().map(|f| (f.1, f.2)).collect();
        if !got.is_empty() {
            taken = Some((wake, got));
        }
    }
    let (at, got) = taken.unwrap();
    assert_eq!(got, vec![(3, 3)]);
    assert!(at > Time(10), "not at once: {at:?}");
    assert_eq!(t.check_invariants(), Ok(()));
}

/// A neighbour that fetches from the web seed but wants other pieces (a
/// fan of another track of the album) is no candidate in our pieces'
/// election: we fetch our urgent window at once rather than wait for it
/// until the fallback. And we tell neighbours which pieces we want.
#[test]
fn a_neighbour_playing_another_track_is_never_elected_for_ours() {
    // An id whose rendezvous weight for group 0 (every piece here) beats ours.
    let ours = swarm::engine::crowd::rendezvous(&PeerId([1; 20]), 0);
    let id = (2..=u8::MAX)
        .find(|&i| swarm::engine::crowd::rendezvous(&PeerId([i; 20]), 0) > ours)
        .unwrap();
    let run = |wants: Option<Vec<std::ops::Range<u32>>>| {
        let mut t = engine();
        let mut theirs = ExtendedHandshake::default();
        theirs.m.insert(FS_CROWD.to_owned(), 7);
        let state = Message::Extended {
            id: 3,
            payload: CrowdMessage::State {
                web_seed: true,
                wants,
            }
            .encode(),
        };
        connect(
            &mut t,
            0,
            P1,
            id,
            &[theirs.to_message(), Message::HaveNone, state],
        );
        drain(&mut t);
        play(&mut t, 10);
        let at_play: Vec<(u32, u32)> = fetches(&drain(&mut t)).iter().map(|f| (f.1, f.2)).collect();
        (t, at_play)
    };
    // It wants every piece and outranks us: we take only what is due
    // within the fallback (pieces 0 and 1) and leave it piece 2.
    let (_, deferred) = run(None);
    assert_eq!(deferred, vec![(0, 1)]);
    // It plays another track (pieces 4..6): the urgent window is ours.
    let (mut t, ours_now) = run(Some(vec![4..6]));
    assert_eq!(ours_now, vec![(0, 2)]);
    // Choosing pieces tells the neighbour which, once per change.
    t.set_wanted(Time(20), &[0..3], &[3..4], &[]);
    let said: Vec<CrowdMessage> = sent_to_p1(&drain(&mut t))
        .into_iter()
        .filter_map(|m| match m {
            Message::Extended { id: 7, payload } => CrowdMessage::decode(&payload),
            _ => None,
        })
        .collect();
    assert_eq!(
        said,
        vec![CrowdMessage::State {
            web_seed: true,
            wants: Some(vec![0..4])
        }]
    );
    t.set_wanted(Time(30), &[0..3], &[3..4], &[]);
    assert!(
        sent_to_p1(&drain(&mut t))
            .iter()
            .all(|m| !matches!(m, Message::Extended { id: 7, .. })),
        "said again only when it changes"
    );
}

/// Fetches running side by side that fail together (a refused mirror, one
/// outage) back the web seed off once: the wait does not double for each
/// of them, only for a fetch that was asked after the last failure.
#[test]
fn fetches_failing_together_are_one_failure() {
    let mut t = engine_with(Config {
        web_seed_max_run: 2 * PIECE,
        ..Config::default()
    });
    t.set_playback(
        Time(0),
        Some(Playback {
            offset: 0,
            bytes_per_sec: Some(RATE * 8),
        }),
    );
    let started = fetches(&drain(&mut t));
    assert_eq!(started.len(), 2, "two fetches side by side: {started:?}");
    for (id, _, _) in &started {
        t.handle_web_seed_error(Time(100), *id);
    }
    t.handle_timeout(Time(1_099));
    assert_eq!(fetches(&drain(&mut t)), vec![], "backing off for 1 s");
    t.handle_timeout(Time(1_100));
    let again = fetches(&drain(&mut t));
    assert!(!again.is_empty(), "asked again after 1 s, not 2 s");
    // A fetch asked after that failure and failing too doubles the wait.
    t.handle_web_seed_error(Time(1_200), again[0].0);
    t.handle_timeout(Time(3_199));
    assert!(
        fetches(&drain(&mut t)).iter().all(|f| f.0 == again[1].0),
        "backing off for 2 s"
    );
    t.handle_timeout(Time(3_200));
    assert!(!fetches(&drain(&mut t)).is_empty(), "asked again after 2 s");
}
