//! A deterministic swarm simulator: N engines and one HTTP origin over
//! virtual time, with per-link latency and per-node upload bandwidth.
//!
//! Everything random comes from one seed, so a failing run replays exactly.
//! Engines are driven exactly as a shell drives them: inputs with the
//! current (virtual) time, then `poll()` until `Timeout`. Bytes between peers
//! are delivered split at random points, because a data channel is a byte
//! stream to the engine. The origin is not an engine: it only answers
//! web-seed range fetches, and it counts what it sent.

#![allow(dead_code, clippy::unwrap_used)]

mod hostile;

use std::cmp::Reverse;
use std::collections::{BTreeMap, BinaryHeap, HashMap, HashSet};
use std::time::Duration;

use sha1::{Digest, Sha1};
use swarm::engine::{
    Config, Event, FetchId, Output, PeerError, PeerKey, Source, Torrent, TorrentSpec,
};
use swarm::join::{FetchConfig, Joining};
use swarm::magnet::Magnet;
use swarm::metainfo::TorrentBuilder;
use swarm::picker::Playback;
use swarm::time::Time;
use swarm::wire::{Decoder, Frame, Message};
use swarm::{InfoHash, PeerId};

use hostile::Tamper;
pub use hostile::{Behaviour, Seen};

/// Simulated microseconds.
type Micros = u64;

/// How the simulated world looks.
#[derive(Debug, Clone)]
pub struct World {
    /// Seed for all randomness: content, latencies, engines' choices.
    pub seed: u64,
    /// Bytes in the track.
    pub file_len: usize,
    /// Bytes per piece.
    pub piece_length: u32,
    /// Origin upload, bytes per second.
    pub origin_up: u64,
    /// Each peer's upload, bytes per second.
    pub peer_up: u64,
    /// One-way latency range between any two parties, milliseconds.
    pub latency_ms: (u64, u64),
    /// Peers a newcomer connects to (the tracker's offers).
    pub connect_to: usize,
    /// Whether the torrent has a web seed.
    pub web_seed: bool,
    /// Engine configuration for every peer.
    pub engine: Config,
    /// Leechers start from a bare magnet (info hash and web seed only) and
    /// fetch the metadata from peers over ut_metadata.
    pub magnet: bool,
}

impl Default for World {
    fn default() -> Self {
        World {
            seed: 1,
            file_len: 2 * 1024 * 1024,
            piece_length: 32 * 1024,
            origin_up: 4_000_000,
            peer_up: 1_000_000,
            latency_ms: (10, 60),
            connect_to: 8,
            web_seed: true,
            engine: Config::default(),
            magnet: false,
        }
    }
}

/// What kind of participant a node is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// Starts empty and downloads.
    Leecher,
    /// Starts with every piece.
    Seeder,
    /// Starts with every piece and corrupts every block it serves.
    Liar,
    /// Starts with every piece and misbehaves as its [`Behaviour`] says.
    Hostile(Behaviour),
}

#[derive(Debug)]
enum Ev {
    Join(usize),
    Leave(usize),
    Connect(usize, usize),
    Deliver {
        node: usize,
        key: PeerKey,
        bytes: Vec<u8>,
    },
    Closed {
        node: usize,
        key: PeerKey,
    },
    WebSeed {
        node: usize,
        id: FetchId,
        offset: u64,
        length: u32,
    },
    Wake {
        node: usize,
        at: Micros,
    },
    Reannounce(usize),
}

#[derive(Debug)]
struct Conn {
    remote: usize,
    remote_key: PeerKey,
    latency: Micros,
    /// For a liar: re-frames what it sends so piece payloads can be corrupted.
    liar_stream: Option<Decoder>,
    /// For a hostile node: rewrites what it sends and counts what it gets.
    tamper: Option<Tamper>,
}

/// One participant and what was observed of it.
#[derive(Debug)]
pub struct Node {
    pub role: Role,
    pub engine: Option<Joining>,
    pub peer_id: PeerId,
    /// When the metadata was known (at join for a node with the torrent).
    pub metadata_at: Option<Micros>,
    pub playback: Option<Playback>,
    pub joined_at: Option<Micros>,
    pub done_at: Option<Micros>,
    pub left: bool,
    /// Pieces in the order they verified.
    pub verified: Vec<u32>,
    /// Peer ids that delivered useful bytes to this node.
    pub received_from: HashSet<PeerId>,
    /// Peer ids this node banned.
    pub banned: HashSet<PeerId>,
    /// Connections this node's engine closed: the node at the far end, and why.
    pub closed: Vec<(usize, PeerError)>,
    /// For a hostile node: what it received.
    pub seen: Seen,
    conns: BTreeMap<PeerKey, Conn>,
    next_key: u64,
    up_free_at: Micros,
    wake_at: Option<Micros>,
}

/// The simulator.
pub struct Sim {
    pub world: World,
    pub data: Vec<u8>,
    pub spec: TorrentSpec,
    /// What a magnet leecher knows at start.
    pub magnet: Magnet,
    pub nodes: Vec<Node>,
    pub origin_bytes: u64,
    pub now: Micros,
    origin_free_at: Micros,
    rng: fastrand::Rng,
    queue: BinaryHeap<Reverse<(Micros, u64)>>,
    events: HashMap<u64, Ev>,
    seq: u64,
}

impl Sim {
    /// A world with content made from the seed and no nodes yet.
    pub fn new(world: World) -> Self {
        let mut rng = fastrand::Rng::with_seed(world.seed);
        let data: Vec<u8> = (0..world.file_len).map(|_| rng.u8(..)).collect();
        let piece_hashes = data
            .chunks(world.piece_length as usize)
            .map(|c| Sha1::digest(c).into())
            .collect();
        let mut spec = TorrentSpec {
            info_hash: InfoHash(Sha1::digest(b"simulated track").into()),
            piece_length: world.piece_length,
            total_length: data.len() as u64,
            piece_hashes,
            metadata: None,
            web_seed: world.web_seed,
        };
        let mut magnet = Magnet::new(spec.info_hash);
        if world.magnet {
            // A real info dictionary, so its hash is the swarm's.
            let meta = TorrentBuilder::single_file("track.wav", data.len() as u64)
                .piece_length(world.piece_length)
                .build(&spec.piece_hashes)
                .expect("the simulated track makes a valid torrent");
            spec.info_hash = meta.info_hash;
            spec.metadata = Some(meta.info_bytes.clone());
            magnet = Magnet::new(meta.info_hash);
            if world.web_seed {
                magnet.web_seeds = vec!["http://origin.invalid/track.wav".to_owned()];
            }
        }
        Sim {
            world,
            data,
            spec,
            magnet,
            nodes: Vec::new(),
            origin_bytes: 0,
            now: 0,
            origin_free_at: 0,
            rng,
            queue: BinaryHeap::new(),
            events: HashMap::new(),
            seq: 0,
        }
    }

    /// Adds a node that joins at `at`.
    pub fn add_node(&mut self, role: Role, at: Duration, playback: Option<Playback>) -> usize {
        let idx = self.nodes.len();
        let mut random = [0u8; 12];
        random.iter_mut().for_each(|b| *b = self.rng.u8(..));
        self.nodes.push(Node {
            role,
            engine: None,
            peer_id: PeerId::generate(random),
            metadata_at: None,
            playback,
            joined_at: None,
            done_at: None,
            left: false,
            verified: Vec::new(),
            received_from: HashSet::new(),
            banned: HashSet::new(),
            closed: Vec::new(),
            seen: Seen::default(),
            conns: BTreeMap::new(),
            next_key: 0,
            up_free_at: 0,
            wake_at: None,
        });
        self.schedule(at.as_micros() as u64, Ev::Join(idx));
        idx
    }

    /// Makes `node` leave at `at`, closing its connections.
    pub fn leave_at(&mut self, node: usize, at: Duration) {
        self.schedule(at.as_micros() as u64, Ev::Leave(node));
    }

    /// Runs until every present leecher is done or `limit` of virtual time passed.
    /// Returns whether everyone present finished.
    pub fn run(&mut self, limit: Duration) -> bool {
        let limit = limit.as_micros() as u64;
        while let Some(Reverse((at, seq))) = self.queue.pop() {
            if at > limit {
                self.now = limit;
                break;
            }
            self.now = at;
            let Some(ev) = self.events.remove(&seq) else {
                continue;
            };
            self.step(ev);
            if std::env::var_os("SIM_CHECK_EVERY_STEP").is_some() {
                self.assert_invariants();
            }
            if self.all_done() {
                self.assert_invariants();
                return true;
            }
        }
        self.assert_invariants();
        self.all_done()
    }

    /// Runs every event of the next `span` of virtual time, done or not, so
    /// connections being set up or torn down settle.
    pub fn settle(&mut self, span: Duration) {
        let until = self.now + span.as_micros() as u64;
        while let Some(&Reverse((at, seq))) = self.queue.peek() {
            if at > until {
                break;
            }
            self.queue.pop();
            self.now = at;
            if let Some(ev) = self.events.remove(&seq) {
                self.step(ev);
            }
        }
        self.now = until;
        self.assert_invariants();
    }

    /// Every live engine keeps the invariants of `engine/PIECES.md`.
    pub fn assert_invariants(&self) {
        for (i, node) in self.nodes.iter().enumerate() {
            if let Some(engine) = &node.engine {
                if let Err(broken) = engine.check_invariants() {
                    panic!("node {i} at {} µs: {broken}", self.now);
                }
            }
        }
    }

    /// Every node that joined and did not leave has all pieces.
    pub fn all_done(&self) -> bool {
        self.nodes
            .iter()
            .all(|n| n.left || (n.joined_at.is_some() && n.done_at.is_some()))
    }

    /// The bytes a node assembled from its verified pieces.
    pub fn assembled(&self, node: usize) -> Vec<u8> {
        let engine = self.nodes[node].engine.as_ref().unwrap();
        let pieces = self.spec.piece_hashes.len() as u32;
        let mut out = Vec::with_capacity(self.data.len());
        for p in 0..pieces {
            out.extend_from_slice(engine.piece(p).unwrap_or(&[]));
        }
        out
    }

    /// Copies of the track the origin sent.
    pub fn origin_copies(&self) -> f64 {
        self.origin_bytes as f64 / self.data.len() as f64
    }

    fn schedule(&mut self, at: Micros, ev: Ev) {
        self.seq += 1;
        self.events.insert(self.seq, ev);
        self.queue.push(Reverse((at, self.seq)));
    }

    fn time(&self) -> Time {
        Time::from_millis(self.now / 1000)
    }

    fn latency(&mut self) -> Micros {
        let (lo, hi) = self.world.latency_ms;
        self.rng.u64(lo..=hi) * 1000
    }

    fn step(&mut self, ev: Ev) {
        let now = self.time();
        match ev {
            Ev::Join(n) => self.join(n),
            Ev::Leave(n) => {
                let keys: Vec<PeerKey> = self.nodes[n].conns.keys().copied().collect();
                for key in keys {
                    self.drop_conn(n, key);
                }
                self.nodes[n].left = true;
                self.nodes[n].engine = None;
            }
            Ev::Connect(a, b) => self.connect(a, b),
            Ev::Deliver {
                node,
                key,
                mut bytes,
            } => {
                let n = &mut self.nodes[node];
                if let Some(tamper) = n.conns.get_mut(&key).and_then(|c| c.tamper.as_mut()) {
                    bytes = tamper.incoming(&bytes, &mut n.seen);
                }
                if let Some(e) = n.engine.as_mut() {
                    e.handle_peer_data(now, key, &bytes);
                }
                self.drain(node);
            }
            Ev::Closed { node, key } => {
                self.nodes[node].conns.remove(&key);
                if let Some(e) = self.nodes[node].engine.as_mut() {
                    e.handle_peer_closed(now, key);
                }
                self.drain(node);
            }
            Ev::WebSeed {
                node,
                id,
                offset,
                length,
            } => {
                let start = offset as usize;
                let bytes = self.data[start..start + length as usize].to_vec();
                if let Some(e) = self.nodes[node].engine.as_mut() {
                    e.handle_web_seed_data(now, id, &bytes);
                }
                self.drain(node);
            }
            Ev::Wake { node, at } => {
                if self.nodes[node].wake_at == Some(at) {
                    self.nodes[node].wake_at = None;
                    if let Some(e) = self.nodes[node].engine.as_mut() {
                        e.handle_timeout(now);
                    }
                    self.drain(node);
                }
            }
            Ev::Reannounce(n) => {
                if self.nodes[n].left {
                    return;
                }
                if self.nodes[n].conns.len() < 4 {
                    self.offer_connections(n);
                }
                self.schedule(self.now + 5_000_000, Ev::Reannounce(n));
            }
        }
    }

    fn join(&mut self, n: usize) {
        let seed = self.rng.u64(..);
        let node = &mut self.nodes[n];
        let now = Time::from_millis(self.now / 1000);
        let mut engine = if self.world.magnet && node.role == Role::Leecher {
            Joining::from_magnet(
                self.world.engine.clone(),
                FetchConfig::default(),
                self.magnet.clone(),
                node.peer_id,
                seed,
                now,
            )
        } else {
            node.metadata_at = Some(self.now);
            Joining::from_torrent(
                Torrent::new(
                    self.world.engine.clone(),
                    self.spec.clone(),
                    node.peer_id,
                    seed,
                    now,
                )
                .expect("the simulated spec is consistent"),
            )
        };
        if node.role != Role::Leecher {
            for (p, chunk) in self
                .data
                .chunks(self.world.piece_length as usize)
                .enumerate()
            {
                assert!(engine.import_piece(p as u32, chunk));
            }
            node.done_at = Some(self.now);
        }
        if let Some(pb) = node.playback {
            engine.set_playback(Time::from_millis(self.now / 1000), Some(pb));
        }
        node.engine = Some(engine);
        node.joined_at = Some(self.now);
        self.drain(n);
        self.offer_connections(n);
        self.schedule(self.now + 5_000_000, Ev::Reannounce(n));
    }

    /// Like a tracker relaying offers: connect to a few random present nodes.
    fn offer_connections(&mut self, n: usize) {
        let connected: HashSet<usize> = self.nodes[n].conns.values().map(|c| c.remote).collect();
        let mut candidates: Vec<usize> = (0..self.nodes.len())
            .filter(|&m| m != n && !connected.contains(&m))
            .filter(|&m| self.nodes[m].engine.is_some() && !self.nodes[m].left)
            .collect();
        self.rng.shuffle(&mut candidates);
        for m in candidates.into_iter().take(self.world.connect_to) {
            // Offer, answer and ICE take a few round trips.
            let delay = 3 * self.latency();
            self.schedule(self.now + delay, Ev::Connect(n, m));
        }
    }

    fn connect(&mut self, a: usize, b: usize) {
        if self.nodes[a].engine.is_none() || self.nodes[b].engine.is_none() {
            return;
        }
        if self.nodes[a].conns.values().any(|c| c.remote == b) {
            return;
        }
        let latency = self.latency();
        let ka = self.new_key(a);
        let kb = self.new_key(b);
        let liar_a = (self.nodes[a].role == Role::Liar).then(|| Decoder::new(1 << 20));
        let liar_b = (self.nodes[b].role == Role::Liar).then(|| Decoder::new(1 << 20));
        let tamper = |role| match role {
            Role::Hostile(behaviour) => Some(Tamper::new(behaviour)),
            _ => None,
        };
        let (tamper_a, tamper_b) = (tamper(self.nodes[a].role), tamper(self.nodes[b].role));
        self.nodes[a].conns.insert(
            ka,
            Conn {
                remote: b,
                remote_key: kb,
                latency,
                liar_stream: liar_a,
                tamper: tamper_a,
            },
        );
        self.nodes[b].conns.insert(
            kb,
            Conn {
                remote: a,
                remote_key: ka,
                latency,
                liar_stream: liar_b,
                tamper: tamper_b,
            },
        );
        let now = self.time();
        for (n, k) in [(a, ka), (b, kb)] {
            if let Some(e) = self.nodes[n].engine.as_mut() {
                e.add_peer(now, k);
            }
            self.drain(n);
        }
    }

    fn new_key(&mut self, n: usize) -> PeerKey {
        self.nodes[n].next_key += 1;
        PeerKey(self.nodes[n].next_key)
    }

    fn drop_conn(&mut self, n: usize, key: PeerKey) {
        if let Some(conn) = self.nodes[n].conns.remove(&key) {
            let at = self.now + conn.latency;
            self.schedule(
                at,
                Ev::Closed {
                    node: conn.remote,
                    key: conn.remote_key,
                },
            );
        }
    }

    /// Drains a node's engine and turns its outputs into scheduled events.
    fn drain(&mut self, n: usize) {
        let node = &mut self.nodes[n];
        if node.metadata_at.is_none() && node.engine.as_ref().is_some_and(Joining::has_metadata) {
            node.metadata_at = Some(self.now);
        }
        loop {
            let Some(engine) = self.nodes[n].engine.as_mut() else {
                return;
            };
            match engine.poll() {
                Output::Send { peer, data } => self.transmit(n, peer, data),
                Output::Close { peer, reason } => {
                    if let Some(conn) = self.nodes[n].conns.get(&peer) {
                        let remote = conn.remote;
                        self.nodes[n].closed.push((remote, reason));
                    }
                    self.drop_conn(n, peer);
                }
                Output::FetchWebSeed { id, offset, length } => {
                    let latency = self.latency();
                    let start = (self.now + latency).max(self.origin_free_at);
                    self.origin_free_at =
                        start + u64::from(length) * 1_000_000 / self.world.origin_up;
                    self.origin_bytes += u64::from(length);
                    let at = self.origin_free_at + latency;
                    self.schedule(
                        at,
                        Ev::WebSeed {
                            node: n,
                            id,
                            offset,
                            length,
                        },
                    );
                }
                Output::Event(ev) => self.observe(n, ev),
                Output::Timeout(t) => {
                    let at = (t.as_millis() * 1000).max(self.now + 1);
                    let node = &mut self.nodes[n];
                    if node.wake_at.is_none_or(|w| at < w || w <= self.now) {
                        node.wake_at = Some(at);
                        self.schedule(at, Ev::Wake { node: n, at });
                    }
                    return;
                }
            }
        }
    }

    fn observe(&mut self, n: usize, ev: Event) {
        let node = &mut self.nodes[n];
        match ev {
            Event::PieceVerified { piece } => node.verified.push(piece),
            Event::Done => node.done_at = Some(self.now),
            Event::PeerBanned { id } => {
                node.banned.insert(id);
            }
            Event::Downloaded {
                source: Source::Peer(id),
                ..
            } => {
                node.received_from.insert(id);
            }
            _ => {}
        }
    }

    /// Sends bytes over n's uplink to the far end of `key`, split at random points.
    fn transmit(&mut self, n: usize, key: PeerKey, mut data: Vec<u8>) {
        let Some(conn) = self.nodes[n].conns.get_mut(&key) else {
            return;
        };
        if let Some(stream) = conn.liar_stream.as_mut() {
            data = corrupt_pieces(stream, &data);
        }
        if let Some(tamper) = conn.tamper.as_mut() {
            data = tamper.outgoing(&data, &self.spec);
        }
        let (remote, remote_key, latency) = (conn.remote, conn.remote_key, conn.latency);
        let node = &mut self.nodes[n];
        let start = self.now.max(node.up_free_at);
        node.up_free_at = start + data.len() as u64 * 1_000_000 / self.world.peer_up;
        let at = node.up_free_at + latency;
        let mut rest = &data[..];
        while !rest.is_empty() {
            let cut = if rest.len() > 1 && self.rng.bool() {
                self.rng.usize(1..rest.len())
            } else {
                rest.len()
            };
            let (head, tail) = rest.split_at(cut);
            self.schedule(
                at,
                Ev::Deliver {
                    node: remote,
                    key: remote_key,
                    bytes: head.to_vec(),
                },
            );
            rest = tail;
        }
    }
}

/// Re-frames a liar's outgoing bytes, flipping every byte of each block it serves.
fn corrupt_pieces(stream: &mut Decoder, data: &[u8]) -> Vec<u8> {
    stream.push(data);
    let mut out = Vec::new();
    while let Ok(Some(frame)) = stream.next() {
        match frame {
            Frame::Handshake(h) => out.extend_from_slice(&h.encode()),
            Frame::Message(Message::Piece {
                piece,
                offset,
                data,
            }) => {
                let data = data.iter().map(|b| !b).collect();
                Message::Piece {
                    piece,
                    offset,
                    data,
                }
                .encode(&mut out);
            }
            Frame::Message(m) => m.encode(&mut out),
        }
    }
    out
}

/// Summary figures of a run, for test output.
pub fn summary(sim: &Sim) -> BTreeMap<&'static str, f64> {
    let done: Vec<f64> = sim
        .nodes
        .iter()
        .filter(|n| n.role == Role::Leecher && !n.left)
        .filter_map(|n| Some((n.done_at? - n.joined_at?) as f64 / 1e6))
        .collect();
    let mut m = BTreeMap::new();
    m.insert("origin_copies", sim.origin_copies());
    m.insert("virtual_secs", sim.now as f64 / 1e6);
    m.insert("max_leecher_secs", done.iter().copied().fold(0.0, f64::max));
    m.insert(
        "mean_leecher_secs",
        done.iter().sum::<f64>() / done.len().max(1) as f64,
    );
    m
}
