//! One `Torrent` driven by an arbitrary sequence of inputs from up to six
//! peers, the web seed, the player, the shell's send buffer and the clock.
//!
//! Peers mostly start with a valid handshake and can answer the engine's own
//! requests with good or corrupt blocks, so runs reach verification, serving,
//! smart bans and the web-seed fallback rather than dying at the handshake.
//! After every input `poll` is drained and `check_invariants` must hold; the
//! engine must never panic.
#![no_main]

use std::collections::BTreeMap;
use std::sync::OnceLock;

use arbitrary::Arbitrary;
use libfuzzer_sys::fuzz_target;
use sha1::{Digest, Sha1};
use swarm::engine::{Config, FetchId, Output, PeerKey, Torrent, TorrentSpec};
use swarm::picker::Playback;
use swarm::time::Time;
use swarm::wire::extension::{ExtendedHandshake, UT_METADATA};
use swarm::wire::metadata::MetadataMessage;
use swarm::wire::{BLOCK_SIZE, BlockRef, Decoder, Frame, Handshake, Message, Reserved};
use swarm::{InfoHash, PeerId};

const PIECE: u32 = 2 * BLOCK_SIZE;
const PIECES: u32 = 4;
/// The last piece is shorter, and so is its last block.
const TOTAL: u64 = PIECE as u64 * PIECES as u64 - 1000;
const INFO_HASH: InfoHash = InfoHash([9; 20]);
const PEERS: u8 = 6;

#[derive(Debug, Arbitrary)]
struct Input {
    /// Bit p: piece p is imported before the run (a partial seeder).
    imported: u8,
    web_seed: bool,
    /// Tight limits (few peers, slots, requests and memory) reach more edge cases.
    tight: bool,
    seed: u64,
    ops: Vec<Op>,
}

#[derive(Debug, Arbitrary)]
enum Op {
    /// A data channel opened.
    Add { peer: u8 },
    /// The peer sends a handshake (`id` % 4 picks one of four peer ids, so
    /// duplicates happen; `wrong_hash` names another swarm).
    Handshake {
        peer: u8,
        id: u8,
        fast: bool,
        extended: bool,
        wrong_hash: bool,
    },
    /// The peer sends a well-formed message, split in two at `split`.
    Send { peer: u8, message: Msg, split: u16 },
    /// The peer sends arbitrary bytes.
    Raw { peer: u8, bytes: Vec<u8> },
    /// The peer answers up to `count` of the engine's requests to it.
    Answer { peer: u8, count: u8, corrupt: bool },
    /// The channel closed.
    Closed { peer: u8 },
    /// Time passes and the timer fires.
    Tick { millis: u16 },
    /// A lot of time passes (timeouts, rechokes, idle closes).
    Wait { secs: u8 },
    /// The web seed answers the `n`th fetch in flight.
    WebSeed { n: u8, outcome: WebSeedOutcome },
    /// The player moves or stops.
    Playback {
        offset: Option<u32>,
        rate: Option<u16>,
    },
    /// The shell's send buffer for a peer filled or drained.
    Blocked { peer: u8, blocked: bool },
}

#[derive(Debug, Arbitrary)]
enum WebSeedOutcome {
    Good,
    Corrupt,
    Short,
    Error,
}

#[derive(Debug, Arbitrary)]
enum Msg {
    KeepAlive,
    Choke,
    Unchoke,
    Interested,
    NotInterested,
    Have(u32),
    Bitfield(Vec<u8>),
    Request(Block),
    Cancel(Block),
    Reject(Block),
    /// A block with content: the right bytes of the torrent unless `corrupt`.
    Piece {
        block: Block,
        corrupt: bool,
    },
    HaveAll,
    HaveNone,
    Suggest(u32),
    AllowedFast(u32),
    ExtendedHandshake {
        ut_metadata: u8,
        reqq: Option<u32>,
        metadata_size: Option<u64>,
    },
    MetadataRequest {
        id: u8,
        piece: u32,
    },
    Extended {
        id: u8,
        payload: Vec<u8>,
    },
    Unknown {
        id: u8,
        payload: Vec<u8>,
    },
}

/// A block reference that is usually valid: small piece and block numbers
/// map onto real blocks, `raw` leaves the fields as the fuzzer chose them.
#[derive(Debug, Arbitrary)]
struct Block {
    piece: u32,
    index: u32,
    length: u32,
    raw: bool,
}

struct Harness {
    engine: Torrent,
    content: &'static [u8],
    now: Time,
    /// What each open connection's remote end has seen from the engine.
    remotes: BTreeMap<u8, Remote>,
    /// Web-seed fetches the engine asked for and not answered yet.
    fetches: Vec<(FetchId, u64, u32)>,
}

struct Remote {
    /// Decodes what the engine sends to this peer.
    from_engine: Decoder,
    /// The engine's requests not yet answered.
    requests: Vec<BlockRef>,
}

fuzz_target!(|input: Input| {
    let Some(mut h) = Harness::new(&input) else {
        return;
    };
    for op in &input.ops {
        h.apply(op);
        h.drain();
        if let Err(broken) = h.engine.check_invariants() {
            panic!("invariant broken after {op:?}: {broken}");
        }
    }
});

impl Harness {
    fn new(input: &Input) -> Option<Self> {
        let (content, hashes) = torrent();
        let spec = TorrentSpec {
            info_hash: INFO_HASH,
            piece_length: PIECE,
            total_length: TOTAL,
            piece_hashes: hashes.clone(),
            metadata: Some(b"d4:name4:testee".to_vec()),
            web_seed: input.web_seed,
        };
        let mut config = Config::default();
        if input.tight {
            config.max_peers = 3;
            config.upload_slots = 1;
            config.max_requests_per_peer = 3;
            config.serve_burst = 2;
            config.web_seed_parallel = 1;
            // Room for two pieces of four: verifying evicts, seeking back
            // (`Op::Playback`) revives, requests for evicted pieces are rejected.
            config.memory_limit = 2 * u64::from(PIECE);
        }
        let mut engine = Torrent::new(config, spec, PeerId([200; 20]), input.seed, Time(0)).ok()?;
        for (piece, chunk) in content.chunks(PIECE as usize).enumerate() {
            if input.imported & (1 << piece) != 0 {
                assert!(
                    engine.import_piece(piece as u32, chunk),
                    "good bytes import"
                );
            }
        }
        let mut h = Harness {
            engine,
            content,
            now: Time(0),
            remotes: BTreeMap::new(),
            fetches: Vec::new(),
        };
        h.drain();
        Some(h)
    }

    fn apply(&mut self, op: &Op) {
        match op {
            Op::Add { peer } => {
                let peer = peer % PEERS;
                // The engine ignores a second `add_peer` for an open key.
                self.remotes.entry(peer).or_insert_with(|| Remote {
                    from_engine: Decoder::default(),
                    requests: Vec::new(),
                });
                self.engine.add_peer(self.now, PeerKey(peer.into()));
            }
            Op::Handshake {
                peer,
                id,
                fast,
                extended,
                wrong_hash,
            } => {
                let mut reserved = [0u8; 8];
                if *extended {
                    reserved[5] = 0x10;
                }
                if *fast {
                    reserved[7] = 0x04;
                }
                let hs = Handshake {
                    reserved: Reserved(reserved),
                    info_hash: if *wrong_hash {
                        InfoHash([1; 20])
                    } else {
                        INFO_HASH
                    },
                    peer_id: PeerId([id % 4; 20]),
                };
                self.data(*peer, &hs.encode());
            }
            Op::Send {
                peer,
                message,
                split,
            } => {
                let bytes = self.message(message).to_bytes();
                let at = usize::from(*split) % (bytes.len() + 1);
                self.data(*peer, &bytes[..at]);
                self.data(*peer, &bytes[at..]);
            }
            Op::Raw { peer, bytes } => self.data(*peer, bytes),
            Op::Answer {
                peer,
                count,
                corrupt,
            } => {
                let peer = peer % PEERS;
                let Some(remote) = self.remotes.get_mut(&peer) else {
                    return;
                };
                let n = usize::from(*count).min(remote.requests.len());
                let answered: Vec<BlockRef> = remote.requests.drain(..n).collect();
                for block in answered {
                    let data = self.block_bytes(block, *corrupt);
                    let m = Message::Piece {
                        piece: block.piece,
                        offset: block.offset,
                        data,
                    };
                    self.data(peer, &m.to_bytes());
                }
            }
            Op::Closed { peer } => {
                let peer = peer % PEERS;
                self.remotes.remove(&peer);
                self.engine
                    .handle_peer_closed(self.now, PeerKey(peer.into()));
            }
            Op::Tick { millis } => {
                self.now = self.now + std::time::Duration::from_millis((*millis).into());
                self.engine.handle_timeout(self.now);
            }
            Op::Wait { secs } => {
                self.now = self.now + std::time::Duration::from_secs((*secs).into());
                self.engine.handle_timeout(self.now);
            }
            Op::WebSeed { n, outcome } => {
                if self.fetches.is_empty() {
                    return;
                }
                let (id, offset, length) =
                    self.fetches.remove(usize::from(*n) % self.fetches.len());
                let start = usize::try_from(offset)
                    .unwrap_or(usize::MAX)
                    .min(self.content.len());
                let end = start
                    .saturating_add(length as usize)
                    .min(self.content.len());
                let mut data = self.content[start..end].to_vec();
                match outcome {
                    WebSeedOutcome::Good => {}
                    WebSeedOutcome::Corrupt => {
                        if let Some(b) = data.last_mut() {
                            *b ^= 0xff;
                        }
                    }
                    WebSeedOutcome::Short => {
                        data.pop();
                    }
                    WebSeedOutcome::Error => {
                        self.engine.handle_web_seed_error(self.now, id);
                        return;
                    }
                }
                self.engine.handle_web_seed_data(self.now, id, &data);
            }
            Op::Playback { offset, rate } => {
                let playback = offset.map(|o| Playback {
                    offset: u64::from(o) % (TOTAL + 100),
                    bytes_per_sec: rate.map(u64::from),
                });
                self.engine.set_playback(self.now, playback);
            }
            Op::Blocked { peer, blocked } => {
                self.engine
                    .set_send_blocked(self.now, PeerKey((peer % PEERS).into()), *blocked);
            }
        }
    }

    fn data(&mut self, peer: u8, bytes: &[u8]) {
        self.engine
            .handle_peer_data(self.now, PeerKey((peer % PEERS).into()), bytes);
    }

    /// Drains `poll`, playing each remote end's part: decoding what it was
    /// sent, remembering requests and fetches.
    fn drain(&mut self) {
        loop {
            match self.engine.poll() {
                Output::Timeout(at) => {
                    assert!(at >= self.now, "asked to be woken in the past");
                    return;
                }
                Output::Send { peer, data } => {
                    let key = u8::try_from(peer.0).expect("keys are below PEERS");
                    let remote = self
                        .remotes
                        .get_mut(&key)
                        .expect("the engine sends only to open channels");
                    remote.from_engine.push(&data);
                    while let Some(frame) = remote
                        .from_engine
                        .next()
                        .expect("the engine speaks the protocol")
                    {
                        match frame {
                            Frame::Message(Message::Request(b)) => remote.requests.push(b),
                            Frame::Message(Message::Cancel(b)) => {
                                remote.requests.retain(|r| *r != b)
                            }
                            Frame::Message(Message::Choke) => remote.requests.clear(),
                            _ => {}
                        }
                    }
                }
                Output::Close { peer, .. } => {
                    let key = u8::try_from(peer.0).expect("keys are below PEERS");
                    self.remotes.remove(&key);
                }
                Output::FetchWebSeed { id, offset, length } => {
                    assert!(offset + u64::from(length) <= TOTAL, "fetch past the end");
                    self.fetches.push((id, offset, length));
                }
                Output::Event(_) => {}
            }
        }
    }

    fn message(&self, m: &Msg) -> Message {
        match m {
            Msg::KeepAlive => Message::KeepAlive,
            Msg::Choke => Message::Choke,
            Msg::Unchoke => Message::Unchoke,
            Msg::Interested => Message::Interested,
            Msg::NotInterested => Message::NotInterested,
            Msg::Have(p) => Message::Have { piece: small(*p) },
            Msg::Bitfield(b) => Message::Bitfield(b.clone()),
            Msg::Request(b) => Message::Request(block(b)),
            Msg::Cancel(b) => Message::Cancel(block(b)),
            Msg::Reject(b) => Message::Reject(block(b)),
            Msg::Piece { block: b, corrupt } => {
                let b = block(b);
                Message::Piece {
                    piece: b.piece,
                    offset: b.offset,
                    data: self.block_bytes(b, *corrupt),
                }
            }
            Msg::HaveAll => Message::HaveAll,
            Msg::HaveNone => Message::HaveNone,
            Msg::Suggest(p) => Message::Suggest { piece: small(*p) },
            Msg::AllowedFast(p) => Message::AllowedFast { piece: small(*p) },
            Msg::ExtendedHandshake {
                ut_metadata,
                reqq,
                metadata_size,
            } => {
                let mut hs = ExtendedHandshake::default();
                hs.m.insert(UT_METADATA.to_owned(), *ut_metadata);
                hs.reqq = *reqq;
                hs.metadata_size = *metadata_size;
                hs.to_message()
            }
            Msg::MetadataRequest { id, piece } => MetadataMessage::Request {
                piece: small(*piece),
            }
            .to_message(id % 3),
            Msg::Extended { id, payload } => Message::Extended {
                id: *id,
                payload: payload.clone(),
            },
            Msg::Unknown { id, payload } => Message::Unknown {
                id: id | 0x80,
                payload: payload.clone(),
            },
        }
    }

    /// The torrent's bytes for `block` (zero-padded past the end), one flipped if `corrupt`.
    fn block_bytes(&self, block: BlockRef, corrupt: bool) -> Vec<u8> {
        let start = u64::from(block.piece) * u64::from(PIECE) + u64::from(block.offset);
        let len = block.length.min(2 * BLOCK_SIZE) as usize;
        let mut data: Vec<u8> = (0..len)
            .map(|i| {
                usize::try_from(start + i as u64)
                    .ok()
                    .and_then(|at| self.content.get(at))
                    .copied()
                    .unwrap_or(0)
            })
            .collect();
        if let (true, Some(b)) = (corrupt, data.first_mut()) {
            *b ^= 0x55;
        }
        data
    }
}

/// The torrent's bytes and piece hashes, made once per process.
fn torrent() -> &'static (Vec<u8>, Vec<[u8; 20]>) {
    static TORRENT: OnceLock<(Vec<u8>, Vec<[u8; 20]>)> = OnceLock::new();
    TORRENT.get_or_init(|| {
        let content: Vec<u8> = (0..TOTAL as usize).map(|i| (i * 7 % 251) as u8).collect();
        let hashes = content
            .chunks(PIECE as usize)
            .map(|c| Sha1::digest(c).into())
            .collect();
        (content, hashes)
    })
}

/// Mostly a piece of the torrent, sometimes just past it, rarely anything.
fn small(p: u32) -> u32 {
    match p % 16 {
        15 => p,
        _ => p % (PIECES + 1),
    }
}

fn block(b: &Block) -> BlockRef {
    if b.raw {
        return BlockRef {
            piece: b.piece,
            offset: b.index,
            length: b.length,
        };
    }
    let piece = small(b.piece);
    let offset = (b.index % 3) * BLOCK_SIZE;
    let size = TOTAL
        .saturating_sub(u64::from(piece) * u64::from(PIECE))
        .min(u64::from(PIECE)) as u32;
    let length = match b.length % 4 {
        0 => BLOCK_SIZE + 1,
        _ => size.saturating_sub(offset).min(BLOCK_SIZE),
    };
    BlockRef {
        piece,
        offset,
        length,
    }
}
