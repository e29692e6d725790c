use std::collections::BTreeMap;

use super::*;
use crate::engine::{Event, PeerError, UT_METADATA_ID};
use crate::metainfo::TorrentBuilder;
use crate::wire::extension::{ExtendedHandshake, HANDSHAKE_ID, UT_METADATA};
use crate::wire::metadata::MetadataMessage;
use crate::wire::{Decoder, Frame, Handshake, Message, Reserved};

/// The id the scripted peers want ut_metadata sent under.
const THEIR_UT: u8 = 3;
const OURS: PeerId = PeerId([9; 20]);

/// A torrent whose info dictionary spans two metadata pieces.
fn two_piece_metainfo() -> Metainfo {
    let pieces: Vec<[u8; 20]> = (0..1300u32)
        .map(|i| {
            let mut h = [0u8; 20];
            h[..4].copy_from_slice(&i.to_be_bytes());
            h
        })
        .collect();
    let meta = TorrentBuilder::single_file("track.wav", 1300 * 16384)
        .piece_length(16384)
        .build(&pieces)
        .unwrap();
    assert!(meta.info_bytes.len() > 16384 && meta.info_bytes.len() <= 2 * 16384);
    meta
}

/// A scripted remote peer and what we sent it.
struct Remote {
    key: PeerKey,
    decoder: Decoder,
}

struct Harness {
    fetch: MetadataFetch,
    remotes: BTreeMap<PeerKey, Remote>,
    closed: Vec<(PeerKey, PeerError)>,
    /// `MetadataWaiting` notices, with the time they came out.
    notices: Vec<(Time, Event)>,
    now: Time,
    /// The wake-up time of the last `drain`.
    wake: Time,
}

impl Harness {
    fn new(info_hash: InfoHash, config: FetchConfig) -> Self {
        Harness {
            fetch: MetadataFetch::new(config, info_hash, OURS, Time::from_millis(0)),
            remotes: BTreeMap::new(),
            closed: Vec::new(),
            notices: Vec::new(),
            now: Time::from_millis(0),
            wake: Time::from_millis(0),
        }
    }

    /// Connects peer `n`, which handshakes and states `metadata_size`
    /// (ut_metadata only if `ut`).
    fn connect(&mut self, n: u64, size: Option<u64>, ut: bool) -> PeerKey {
        let key = PeerKey(n);
        self.remotes.insert(
            key,
            Remote {
                key,
                decoder: Decoder::new(1 << 20),
            },
        );
        self.fetch.add_peer(self.now, key);
        let mut bytes = Handshake {
            reserved: Reserved::FANSWARM,
            info_hash: self.fetch.info_hash(),
            peer_id: PeerId([n as u8; 20]),
        }
        .encode()
        .to_vec();
        let mut ext = ExtendedHandshake::default();
        if ut {
            ext.m.insert(UT_METADATA.to_owned(), THEIR_UT);
        }
        ext.metadata_size = size;
        ext.to_message().encode(&mut bytes);
        Message::HaveAll.encode(&mut bytes);
        self.fetch.handle_peer_data(self.now, key, &bytes);
        key
    }

    /// Drains the fetch; returns the metadata pieces each peer was asked for.
    fn drain(&mut self) -> BTreeMap<PeerKey, Vec<u32>> {
        let mut asked: BTreeMap<PeerKey, Vec<u32>> = BTreeMap::new();
        loop {
            match self.fetch.poll() {
                Output::Timeout(at) => {
                    self.wake = at;
                    return asked;
                }
                Output::Send { peer, data } => {
                    let remote = self.remotes.get_mut(&peer).unwrap();
                    remote.decoder.push(&data);
                    while let Some(frame) = remote.decoder.next().unwrap() {
                        if let Frame::Message(Message::Extended { id, payload }) = frame
                            && id == THEIR_UT
                            && let MetadataMessage::Request { piece } =
                                MetadataMessage::decode(&payload).unwrap()
                        {
                            asked.entry(remote.key).or_default().push(piece);
                        }
                    }
                }
                Output::Close { peer, reason } => self.closed.push((peer, reason)),
                Output::Event(e @ Event::MetadataWaiting { .. }) => {
                    self.notices.push((self.now, e))
                }
                other => panic!("unexpected output {other:?}"),
            }
        }
    }

    /// Follows the fetch's own wake-up times until `until`.
    fn run_until(&mut self, until: Time) {
        loop {
            self.drain();
            let at = self.wake;
            assert!(at >= self.now, "asked to wake in the past");
            if at > until {
                return;
            }
            self.now = at;
            self.fetch.handle_timeout(at);
        }
    }

    /// Peer `key` answers metadata piece `piece` with `data`.
    fn answer(&mut self, key: PeerKey, piece: u32, total_size: u64, data: &[u8]) {
        let msg = MetadataMessage::Data {
            piece,
            total_size,
            data: data.to_vec(),
        };
        let bytes = msg.to_message(UT_METADATA_ID).to_bytes();
        self.fetch.handle_peer_data(self.now, key, &bytes);
    }
}

/// One request in flight per peer, so two peers get one piece each.
fn one_at_a_time() -> FetchConfig {
    FetchConfig {
        requests_per_peer: 1,
        ..FetchConfig::default()
    }
}

fn piece_of(bytes: &[u8], piece: u32) -> &[u8] {
    let start = piece as usize * 16384;
    &bytes[start..(start + 16384).min(bytes.len())]
}

#[test]
fn two_peers_share_the_pieces_and_the_metadata_verifies() {
    let meta = two_piece_metainfo();
    let size = meta.info_bytes.len() as u64;
    let mut h = Harness::new(meta.info_hash, one_at_a_time());
    let a = h.connect(1, Some(size), true);
    let b = h.connect(2, Some(size), true);
    let asked = h.drain();
    // One piece each: the fetch spreads requests over the peers.
    assert_eq!(asked.get(&a), Some(&vec![0]));
    assert_eq!(asked.get(&b), Some(&vec![1]));
    h.answer(a, 0, size, piece_of(&meta.info_bytes, 0));
    assert!(h.fetch.metadata().is_none());
    h.answer(b, 1, size, piece_of(&meta.info_bytes, 1));
    h.drain();
    assert_eq!(h.fetch.metadata(), Some(&meta.info_bytes[..]));
    assert!(h.closed.is_empty());
    let (_, handovers, _) = h.fetch.finish();
    assert_eq!(handovers.len(), 2);
    // The replay holds the handshake, extended handshake and have_all, and no
    // ut_metadata traffic.
    let mut d = Decoder::new(1 << 20);
    d.push(&handovers[0].received);
    assert!(matches!(d.next().unwrap(), Some(Frame::Handshake(_))));
    assert!(matches!(
        d.next().unwrap(),
        Some(Frame::Message(Message::Extended {
            id: HANDSHAKE_ID,
            ..
        }))
    ));
    assert_eq!(d.next().unwrap(), Some(Frame::Message(Message::HaveAll)));
    assert_eq!(d.next().unwrap(), None);
}

#[test]
fn a_bad_piece_drops_its_sender_and_is_fetched_again() {
    let meta = two_piece_metainfo();
    let size = meta.info_bytes.len() as u64;
    let mut h = Harness::new(meta.info_hash, one_at_a_time());
    let a = h.connect(1, Some(size), true);
    let b = h.connect(2, Some(size), true);
    h.drain();
    h.answer(a, 0, size, piece_of(&meta.info_bytes, 0));
    let mut bad = piece_of(&meta.info_bytes, 1).to_vec();
    bad[10] ^= 0xff;
    h.answer(b, 1, size, &bad);
    // The mixed failure cannot name the liar yet: every piece is asked of
    // one peer now.
    let asked = h.drain();
    assert!(h.fetch.metadata().is_none());
    assert!(h.closed.is_empty());
    assert_eq!(asked.get(&a), Some(&vec![0]));
    assert!(!asked.contains_key(&b));
    h.answer(a, 0, size, piece_of(&meta.info_bytes, 0));
    let asked = h.drain();
    assert_eq!(asked.get(&a), Some(&vec![1]));
    assert!(!asked.contains_key(&b));
    h.answer(a, 1, size, piece_of(&meta.info_bytes, 1));
    h.drain();
    assert_eq!(h.fetch.metadata(), Some(&meta.info_bytes[..]));
    assert_eq!(
        h.closed,
        vec![(b, PeerError::Metadata(MetadataPeerError::Corrupt))]
    );
}

#[test]
fn a_sole_source_of_bad_metadata_is_dropped_at_once_and_another_asked() {
    let meta = two_piece_metainfo();
    let size = meta.info_bytes.len() as u64;
    let config = FetchConfig {
        requests_per_peer: 2,
        ..FetchConfig::default()
    };
    let mut h = Harness::new(meta.info_hash, config);
    let a = h.connect(1, Some(size), true);
    assert_eq!(h.drain().get(&a), Some(&vec![0, 1]));
    let b = h.connect(2, Some(size), true);
    assert!(h.drain().is_empty());
    h.answer(a, 0, size, &vec![0; 16384]);
    h.answer(a, 1, size, piece_of(&meta.info_bytes, 1));
    let asked = h.drain();
    assert_eq!(
        h.closed,
        vec![(a, PeerError::Metadata(MetadataPeerError::Corrupt))]
    );
    assert_eq!(asked.get(&b), Some(&vec![0, 1]));
    // The liar coming back under a new connection is refused at its handshake.
    h.closed.clear();
    h.connect(1, Some(size), true);
    h.drain();
    assert_eq!(h.closed, vec![(a, PeerError::Banned(PeerId([1; 20])))]);
}

#[test]
fn wrong_hash_assembly_is_refused() {
    // Self-consistent metadata of another torrent: right size, wrong hash.
    let meta = two_piece_metainfo();
    let other = InfoHash([7; 20]);
    let size = meta.info_bytes.len() as u64;
    let mut h = Harness::new(other, FetchConfig::default());
    let a = h.connect(1, Some(size), true);
    h.drain();
    for piece in 0..2 {
        h.answer(a, piece, size, piece_of(&meta.info_bytes, piece));
    }
    h.drain();
    assert!(h.fetch.metadata().is_none());
    assert_eq!(
        h.closed,
        vec![(a, PeerError::Metadata(MetadataPeerError::Corrupt))]
    );
}

#[test]
fn an_oversized_metadata_size_is_refused() {
    let mut h = Harness::new(InfoHash([1; 20]), FetchConfig::default());
    let a = h.connect(1, Some(8 * 1024 * 1024 + 1), true);
    assert!(h.drain().is_empty());
    assert_eq!(
        h.closed,
        vec![(
            a,
            PeerError::Metadata(MetadataPeerError::TooLarge {
                size: 8 * 1024 * 1024 + 1,
                limit: 8 * 1024 * 1024,
            })
        )]
    );
    assert_eq!(h.fetch.metadata_size(), None);
}

#[test]
fn a_peer_without_ut_metadata_is_not_asked_but_kept() {
    let meta = two_piece_metainfo();
    let size = meta.info_bytes.len() as u64;
    let mut h = Harness::new(meta.info_hash, FetchConfig::default());
    let quiet = h.connect(1, Some(size), false);
    assert!(h.drain().is_empty());
    assert_eq!(h.fetch.metadata_size(), None);
    let a = h.connect(2, Some(size), true);
    let asked = h.drain();
    assert_eq!(asked.get(&a), Some(&vec![0, 1]));
    assert!(!asked.contains_key(&quiet));
    assert!(h.closed.is_empty());
    assert_eq!(h.fetch.peer_count(), 2);
}

#[test]
fn a_silent_peer_times_out_and_its_pieces_go_elsewhere() {
    let meta = two_piece_metainfo();
    let size = meta.info_bytes.len() as u64;
    let mut h = Harness::new(meta.info_hash, one_at_a_time());
    let a = h.connect(1, Some(size), true);
    let b = h.connect(2, Some(size), true);
    h.drain();
    h.answer(a, 0, size, piece_of(&meta.info_bytes, 0));
    h.drain();
    h.now = Time::from_millis(10_000);
    h.fetch.handle_timeout(h.now);
    let asked = h.drain();
    // b never answered piece 1: a is asked instead, b is not asked again.
    assert_eq!(asked.get(&a), Some(&vec![1]));
    assert!(!asked.contains_key(&b));
    h.answer(a, 1, size, piece_of(&meta.info_bytes, 1));
    assert_eq!(h.fetch.metadata(), Some(&meta.info_bytes[..]));
    // Entirely silent, b is closed after the idle timeout.
    h.now = Time::from_millis(150_000);
    h.fetch.handle_timeout(h.now);
    h.drain();
    assert!(h.closed.contains(&(b, PeerError::Timeout("peer silent"))));
}

#[test]
fn joining_hands_connections_to_the_torrent() {
    let meta = two_piece_metainfo();
    let size = meta.info_bytes.len() as u64;
    let mut magnet = meta.magnet();
    magnet.web_seeds = vec!["http://example.invalid/track.wav".to_owned()];
    let now = Time::from_millis(0);
    let mut join = Joining::from_magnet(
        Config::default(),
        FetchConfig::default(),
        magnet,
        OURS,
        1,
        now,
    );
    let key = PeerKey(1);
    join.add_peer(now, key);
    let mut hello = Handshake {
        reserved: Reserved::FANSWARM,
        info_hash: meta.info_hash,
        peer_id: PeerId([1; 20]),
    }
    .encode()
    .to_vec();
    let mut ext = ExtendedHandshake::default();
    ext.m.insert(UT_METADATA.to_owned(), THEIR_UT);
    ext.metadata_size = Some(size);
    ext.to_message().encode(&mut hello);
    Message::HaveAll.encode(&mut hello);
    join.handle_peer_data(now, key, &hello);
    assert!(!join.has_metadata());
    for piece in 0..2 {
        let msg = MetadataMessage::Data {
            piece,
            total_size: size,
            data: piece_of(&meta.info_bytes, piece).to_vec(),
        };
        join.handle_peer_data(now, key, &msg.to_message(UT_METADATA_ID).to_bytes());
    }
    assert!(join.has_metadata());
    let built = join.metainfo().unwrap();
    assert_eq!(built.info, meta.info);
    assert_eq!(built.url_list.len(), 1);
    // The adopted peer's have_all made it a source: we are interested and
    // the connection counts as handshaken.
    let mut sent = Vec::new();
    loop {
        match join.poll() {
            Output::Timeout(_) => break,
            Output::Send { data, .. } => sent.extend_from_slice(&data),
            _ => {}
        }
    }
    assert_eq!(join.stats().peers, 1);
    assert!(join.check_invariants().is_ok());
    let mut d = Decoder::new(1 << 20);
    d.push(&sent);
    let mut frames = Vec::new();
    while let Some(f) = d.next().unwrap() {
        frames.push(f);
    }
    assert!(frames.contains(&Frame::Message(Message::Interested)));
}

#[test]
fn metadata_from_another_source_ends_the_fetch_only_if_it_hashes_right() {
    let meta = two_piece_metainfo();
    let now = Time::from_millis(0);
    let mut join = Joining::from_magnet(
        Config::default(),
        FetchConfig::default(),
        meta.magnet(),
        OURS,
        1,
        now,
    );
    join.add_peer(now, PeerKey(1));
    assert!(!join.offer_metadata(now, b"d4:name3:fooe"));
    assert!(!join.has_metadata());
    assert!(join.offer_metadata(now, &meta.info_bytes));
    assert_eq!(join.metainfo().map(|m| &m.info), Some(&meta.info));
    // The connection that had not handshaken yet was handed over too.
    assert!(join.torrent().is_some());
    assert!(join.check_invariants().is_ok());
}

#[test]
fn metadata_that_hashes_right_but_is_no_torrent_fails_the_join_clearly() {
    use sha1::{Digest, Sha1};
    let bytes = b"d4:name3:fooe";
    let hash = InfoHash(Sha1::digest(bytes).into());
    let now = Time::from_millis(0);
    let mut join = Joining::from_magnet(
        Config::default(),
        FetchConfig::default(),
        Magnet::new(hash),
        OURS,
        1,
        now,
    );
    join.add_peer(now, PeerKey(1));
    assert!(join.offer_metadata(now, bytes));
    assert!(matches!(join.error(), Some(JoinError::Metainfo(_))));
    assert!(!join.has_metadata());
    let mut closed = Vec::new();
    loop {
        match join.poll() {
            Output::Timeout(_) => break,
            Output::Close { peer, .. } => closed.push(peer),
            _ => {}
        }
    }
    assert_eq!(closed, vec![PeerKey(1)]);
}

fn notice_at(secs: u64, peers: usize, offering: usize) -> (Time, Event) {
    (
        Time::from_millis(secs * 1000),
        Event::MetadataWaiting {
            waited: Duration::from_secs(secs),
            peers,
            offering,
        },
    )
}

#[test]
fn a_join_without_metadata_says_so_ever_less_often_until_it_arrives() {
    let meta = two_piece_metainfo();
    let size = meta.info_bytes.len() as u64;
    let mut h = Harness::new(meta.info_hash, FetchConfig::default());
    h.run_until(Time::from_millis(50_000));
    // Alone: at 15 s, then 30 s later.
    assert_eq!(h.notices, vec![notice_at(15, 0, 0), notice_at(45, 0, 0)]);
    // A peer that cannot serve metadata is counted as no help.
    h.connect(1, None, false);
    h.drain();
    h.run_until(Time::from_millis(110_000));
    assert_eq!(h.notices[2..], [notice_at(105, 1, 0)]);
    // Gaps double up to five minutes: 225, 465, 765, 1065 s…
    h.run_until(Time::from_millis(1_100_000));
    let times: Vec<u64> = h
        .notices
        .iter()
        .map(|(t, _)| t.as_millis() / 1000)
        .collect();
    assert_eq!(times, [15, 45, 105, 225, 465, 765, 1065]);
    // A peer with the metadata: the notice says it is being fetched, and
    // once it is in there are no more.
    // (peer 1, silent, was closed at 200 s.)
    h.run_until(Time::from_millis(1_360_000));
    assert_eq!(h.notices.len(), 7);
    let b = h.connect(2, Some(size), true);
    h.drain();
    h.run_until(Time::from_millis(1_366_000));
    assert_eq!(h.notices.last(), Some(&notice_at(1365, 1, 1)));
    h.answer(b, 0, size, piece_of(&meta.info_bytes, 0));
    h.answer(b, 1, size, piece_of(&meta.info_bytes, 1));
    assert_eq!(h.fetch.metadata(), Some(&meta.info_bytes[..]));
    let before = h.notices.len();
    h.run_until(Time::from_millis(5_000_000));
    assert_eq!(h.notices.len(), before, "no notice once the metadata is in");
}

#[test]
fn a_zero_waiting_notice_turns_the_notices_off() {
    let mut h = Harness::new(
        two_piece_metainfo().info_hash,
        FetchConfig {
            waiting_notice: Duration::ZERO,
            ..FetchConfig::default()
        },
    );
    h.run_until(Time::from_millis(1_000_000));
    assert!(h.notices.is_empty());
}

#[test]
fn the_waiting_message_says_what_is_missing() {
    let s = Duration::from_secs(15);
    assert!(waiting_message(s, 0, 0).contains("no peer has connected"));
    assert!(waiting_message(s, 1, 0).contains("the one peer connected does not have it"));
    assert!(waiting_message(s, 3, 0).contains("none of the 3 peers"));
    assert!(waiting_message(s, 3, 2).contains("2 of 3 peers have it"));
    assert!(waiting_message(s, 3, 2).starts_with("no metadata after 15 s"));
}
