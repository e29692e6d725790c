//! Joining by a bare magnet (`swarm::join::Joining`: `MetadataFetch`, then
//! the handover to a `Torrent`) driven by up to five peers sending
//! handshakes, extended handshakes, ut_metadata pieces (right, corrupt,
//! short, long, misnumbered, with any `total_size`), rejects, requests,
//! piece-phase messages before the metadata is known, raw bytes, closes;
//! plus the clock, the player, send-buffer watermarks and metadata offered
//! from another source (the `xs` torrent), good or not.
//!
//! After every input `poll` is drained. Properties: no panic; bytes go only
//! to open connections and are valid wire (a handshake, then messages);
//! never a wake-up in the past; no web-seed fetch (the magnet names none);
//! once the metadata is in, it is the info dictionary whose SHA-1 is the
//! info hash, it stays in, and the engine's `check_invariants()` holds.
#![no_main]

use std::collections::BTreeMap;
use std::sync::OnceLock;
use std::time::Duration;

use arbitrary::Arbitrary;
use libfuzzer_sys::fuzz_target;
use sha1::{Digest, Sha1};
use swarm::engine::{Config, Event, Output, PeerKey};
use swarm::join::{FetchConfig, Joining};
use swarm::magnet::Magnet;
use swarm::metainfo::{Metainfo, TorrentBuilder};
use swarm::picker::Playback;
use swarm::time::Time;
use swarm::wire::extension::{ExtendedHandshake, HANDSHAKE_ID, UT_METADATA};
use swarm::wire::metadata::MetadataMessage;
use swarm::wire::{Decoder, Frame, Handshake, Message, Reserved};
use swarm::{InfoHash, PeerId};

const PEERS: u8 = 5;
/// Metadata pieces are 16 KiB (BEP 9).
const META_PIECE: usize = 16 * 1024;
/// The id under which a remote asks us to send it ut_metadata messages.
const THEIR_UT: u8 = 3;

#[derive(Debug, Arbitrary)]
struct Input {
    /// A torrent whose info dictionary spans two metadata pieces, else one.
    big: bool,
    /// Tight limits: few peers, short timeouts, a small replay buffer.
    tight: bool,
    seed: u64,
    ops: Vec<Op>,
}

#[derive(Debug, Arbitrary)]
enum Op {
    Add {
        peer: u8,
    },
    /// `id` % 4 picks one of four peer ids, so duplicates happen.
    Handshake {
        peer: u8,
        id: u8,
        extended: bool,
        wrong_hash: bool,
    },
    /// The peer's extended handshake.
    ExtHandshake {
        peer: u8,
        ut_metadata: bool,
        size: Size,
    },
    /// A ut_metadata data message, split in two at `split`.
    Data {
        peer: u8,
        piece: u8,
        total: Size,
        content: Content,
        /// Sent under an arbitrary extension id instead of ours.
        wrong_id: Option<u8>,
        split: u16,
    },
    Reject {
        peer: u8,
        piece: u8,
    },
    Request {
        peer: u8,
        piece: u8,
    },
    /// A piece-phase message (bitfield, have…), kept for the handover.
    Wire {
        peer: u8,
        message: Wire,
    },
    Raw {
        peer: u8,
        bytes: Vec<u8>,
    },
    Closed {
        peer: u8,
    },
    Tick {
        millis: u16,
    },
    Wait {
        secs: u8,
    },
    /// The info dictionary from elsewhere (the magnet's `xs`).
    Offer {
        good: bool,
    },
    Playback {
        offset: Option<u32>,
    },
    Blocked {
        peer: u8,
        blocked: bool,
    },
}

#[derive(Debug, Arbitrary)]
enum Size {
    Right,
    Off(i16),
    Huge,
    Missing,
    Raw(u64),
}

#[derive(Debug, Arbitrary)]
enum Content {
    Good,
    Corrupt(u16),
    Short,
    Long,
    Raw(Vec<u8>),
}

#[derive(Debug, Arbitrary)]
enum Wire {
    Bitfield(Vec<u8>),
    HaveAll,
    HaveNone,
    Have(u32),
    Unchoke,
    Interested,
    Request { piece: u32, offset: u32, length: u32 },
    Piece { piece: u32, offset: u32, data: Vec<u8> },
}

struct Harness {
    join: Joining,
    meta: &'static Metainfo,
    now: Time,
    remotes: BTreeMap<u8, Remote>,
    had_metadata: bool,
}

struct Remote {
    /// Decodes what we send to this peer.
    from_us: Decoder,
    /// The ut_metadata id our extended handshake told it to use.
    our_ut: Option<u8>,
}

fuzz_target!(|input: Input| {
    let mut h = Harness::new(&input);
    for op in &input.ops {
        h.apply(op);
        h.drain();
        h.check(op);
    }
});

impl Harness {
    fn new(input: &Input) -> Self {
        let meta = torrent(input.big);
        let mut magnet: Magnet = meta.magnet();
        magnet.web_seeds.clear();
        magnet.exact_sources.clear();
        let mut config = Config::default();
        let mut fetch = FetchConfig::default();
        if input.tight {
            config.max_peers = 3;
            fetch.max_peers = 3;
            fetch.requests_per_peer = 1;
            fetch.request_timeout = Duration::from_secs(1);
            fetch.handshake_timeout = Duration::from_secs(2);
            fetch.idle_timeout = Duration::from_secs(5);
            fetch.max_replay = 64;
            fetch.waiting_notice = Duration::from_secs(1);
        }
        let join = Joining::from_magnet(
            config,
            fetch,
            magnet,
            PeerId([200; 20]),
            input.seed,
            Time(0),
        );
        let mut h = Harness {
            join,
            meta,
            now: Time(0),
            remotes: BTreeMap::new(),
            had_metadata: false,
        };
        h.drain();
        h
    }

    fn apply(&mut self, op: &Op) {
        match op {
            Op::Add { peer } => {
                let peer = peer % PEERS;
                self.remotes.entry(peer).or_insert_with(|| Remote {
                    from_us: Decoder::default(),
                    our_ut: None,
                });
                self.join.add_peer(self.now, key(peer));
            }
            Op::Handshake {
                peer,
                id,
                extended,
                wrong_hash,
            } => {
                let mut reserved = [0u8; 8];
                if *extended {
                    reserved[5] = 0x10;
                }
                reserved[7] = 0x04;
                let hs = Handshake {
                    reserved: Reserved(reserved),
                    info_hash: if *wrong_hash {
                        InfoHash([1; 20])
                    } else {
                        self.meta.info_hash
                    },
                    peer_id: PeerId([id % 4; 20]),
                };
                self.data(*peer, &hs.encode());
            }
            Op::ExtHandshake {
                peer,
                ut_metadata,
                size,
            } => {
                let mut hs = ExtendedHandshake::default();
                if *ut_metadata {
                    hs.m.insert(UT_METADATA.to_owned(), THEIR_UT);
                }
                hs.metadata_size = self.size(size);
                self.data(*peer, &hs.to_message().to_bytes());
            }
            Op::Data {
                peer,
                piece,
                total,
                content,
                wrong_id,
                split,
            } => {
                let piece = u32::from(*piece % 4);
                let info = &self.meta.info_bytes;
                let start = (piece as usize * META_PIECE).min(info.len());
                let good = &info[start..(start + META_PIECE).min(info.len())];
                let data = match content {
                    Content::Good => good.to_vec(),
                    Content::Corrupt(at) => {
                        let mut d = good.to_vec();
                        if !d.is_empty() {
                            let i = usize::from(*at) % d.len();
                            d[i] ^= 0x20;
                        }
                        d
                    }
                    Content::Short => good[..good.len().saturating_sub(1)].to_vec(),
                    Content::Long => [good, b"x"].concat(),
                    Content::Raw(bytes) => bytes.clone(),
                };
                let msg = MetadataMessage::Data {
                    piece,
                    total_size: self.size(total).unwrap_or(0),
                    data,
                };
                let id = wrong_id.unwrap_or_else(|| self.our_ut(*peer));
                let bytes = msg.to_message(id).to_bytes();
                let at = usize::from(*split) % (bytes.len() + 1);
                self.data(*peer, &bytes[..at]);
                self.data(*peer, &bytes[at..]);
            }
            Op::Reject { peer, piece } => {
                let msg = MetadataMessage::Reject {
                    piece: u32::from(*piece % 4),
                };
                let id = self.our_ut(*peer);
                self.data(*peer, &msg.to_message(id).to_bytes());
            }
            Op::Request { peer, piece } => {
                let msg = MetadataMessage::Request {
                    piece: u32::from(*piece % 4),
                };
                let id = self.our_ut(*peer);
                self.data(*peer, &msg.to_message(id).to_bytes());
            }
            Op::Wire { peer, message } => {
                let m = match message {
                    Wire::Bitfield(b) => Message::Bitfield(b.clone()),
                    Wire::HaveAll => Message::HaveAll,
                    Wire::HaveNone => Message::HaveNone,
                    Wire::Have(p) => Message::Have { piece: *p % 1400 },
                    Wire::Unchoke => Message::Unchoke,
                    Wire::Interested => Message::Interested,
                    Wire::Request {
                        piece,
                        offset,
                        length,
                    } => Message::Request(swarm::wire::BlockRef {
                        piece: *piece % 1400,
                        offset: *offset,
                        length: *length,
                    }),
                    Wire::Piece {
                        piece,
                        offset,
                        data,
                    } => Message::Piece {
                        piece: *piece % 1400,
                        offset: *offset,
                        data: data.clone(),
                    },
                };
                self.data(*peer, &m.to_bytes());
            }
            Op::Raw { peer, bytes } => self.data(*peer, bytes),
            Op::Closed { peer } => {
                let peer = peer % PEERS;
                self.remotes.remove(&peer);
                self.join.handle_peer_closed(self.now, key(peer));
            }
            Op::Tick { millis } => {
                self.now = self.now + Duration::from_millis((*millis).into());
                self.join.handle_timeout(self.now);
            }
            Op::Wait { secs } => {
                self.now = self.now + Duration::from_secs((*secs).into());
                self.join.handle_timeout(self.now);
            }
            Op::Offer { good } => {
                let mut bytes = self.meta.info_bytes.clone();
                if !good {
                    bytes.push(b'e');
                }
                let used = self.join.offer_metadata(self.now, &bytes);
                assert!(
                    !used || *good,
                    "metadata that does not hash right was taken"
                );
            }
            Op::Playback { offset } => {
                let total = self.meta.info.total_length();
                let playback = offset.map(|o| Playback {
                    offset: u64::from(o) % (total + 100),
                    bytes_per_sec: Some(176_400),
                });
                self.join.set_playback(self.now, playback);
            }
            Op::Blocked { peer, blocked } => {
                self.join
                    .set_send_blocked(self.now, key(peer % PEERS), *blocked);
            }
        }
    }

    fn size(&self, size: &Size) -> Option<u64> {
        let right = self.meta.info_bytes.len() as u64;
        match size {
            Size::Right => Some(right),
            Size::Off(d) => Some(right.saturating_add_signed(i64::from(*d))),
            Size::Huge => Some(u64::MAX),
            Size::Missing => None,
            Size::Raw(n) => Some(*n),
        }
    }

    fn our_ut(&self, peer: u8) -> u8 {
        self.remotes
            .get(&(peer % PEERS))
            .and_then(|r| r.our_ut)
            .unwrap_or(1)
    }

    fn data(&mut self, peer: u8, bytes: &[u8]) {
        self.join
            .handle_peer_data(self.now, key(peer % PEERS), bytes);
    }

    /// Drains `poll`, decoding what each remote was sent.
    fn drain(&mut self) {
        loop {
            match self.join.poll() {
                Output::Timeout(at) => {
                    assert!(at >= self.now, "asked to be woken in the past");
                    return;
                }
                Output::Send { peer, data } => {
                    let k = u8::try_from(peer.0).expect("keys are below PEERS");
                    let remote = self
                        .remotes
                        .get_mut(&k)
                        .expect("bytes go only to open channels");
                    remote.from_us.push(&data);
                    while let Some(frame) = remote
                        .from_us
                        .next()
                        .expect("we speak the protocol")
                    {
                        if let Frame::Message(Message::Extended { id, payload }) = frame {
                            if id == HANDSHAKE_ID {
                                let hs = ExtendedHandshake::decode(&payload)
                                    .expect("our extended handshake decodes");
                                remote.our_ut = hs.m.get(UT_METADATA).copied();
                            }
                        }
                    }
                }
                Output::Close { peer, .. } => {
                    let k = u8::try_from(peer.0).expect("keys are below PEERS");
                    self.remotes.remove(&k);
                }
                Output::FetchWebSeed { .. } => panic!("a web-seed fetch, but the magnet has none"),
                Output::Event(Event::MetadataWaiting { waited, .. }) => {
                    assert!(!self.had_metadata, "a waiting notice after the metadata was in");
                    assert!(waited <= Duration::from_millis(self.now.as_millis()));
                }
                Output::Event(_) => {}
            }
        }
    }

    fn check(&mut self, op: &Op) {
        if self.join.has_metadata() {
            let meta = self
                .join
                .metainfo()
                .expect("a magnet join that has its metadata has a metainfo");
            assert_eq!(meta.info_hash, self.meta.info_hash, "after {op:?}");
            assert_eq!(
                Sha1::digest(&meta.info_bytes).as_slice(),
                self.meta.info_hash.as_bytes(),
                "the metadata taken hashes to the info hash"
            );
            assert_eq!(meta.info, self.meta.info);
            self.had_metadata = true;
        } else {
            assert!(!self.had_metadata, "the metadata, once in, stays in");
        }
        assert!(self.join.error().is_none(), "a good torrent cannot fail the join");
        if let Err(broken) = self.join.check_invariants() {
            panic!("invariant broken after {op:?}: {broken}");
        }
        assert!(
            self.join.stats().peers <= self.remotes.len(),
            "counts only open connections"
        );
    }
}

fn key(peer: u8) -> PeerKey {
    PeerKey(peer.into())
}

/// Two torrents, made once per process: one whose info dictionary fits one
/// metadata piece (4 real pieces), one that needs two (1,300 piece hashes).
fn torrent(big: bool) -> &'static Metainfo {
    static SMALL: OnceLock<Metainfo> = OnceLock::new();
    static BIG: OnceLock<Metainfo> = OnceLock::new();
    if big {
        BIG.get_or_init(|| {
            let hashes: Vec<[u8; 20]> = (0..1300u32)
                .map(|i| Sha1::digest(i.to_be_bytes()).into())
                .collect();
            TorrentBuilder::single_file("big.wav", 1300 * 16384 - 7)
                .piece_length(16384)
                .build(&hashes)
                .expect("a valid torrent")
        })
    } else {
        SMALL.get_or_init(|| {
            let content: Vec<u8> = (0..100_000usize).map(|i| (i * 7 % 251) as u8).collect();
            let hashes: Vec<[u8; 20]> = content
                .chunks(32 * 1024)
                .map(|c| Sha1::digest(c).into())
                .collect();
            TorrentBuilder::single_file("small.wav", content.len() as u64)
                .piece_length(32 * 1024)
                .build(&hashes)
                .expect("a valid torrent")
        })
    }
}
