//! A deterministic simulator of whole swarms: N real [`swarm::node::Node`]s,
//! the real tracker core ([`fanswarm_tracker::Tracker`]) and an HTTP origin,
//! over virtual time.
//!
//! Each node is driven exactly as the browser and native shells drive one:
//! inputs with the current (virtual) time, then `poll()` until `Timeout`.
//! What a shell would do with real sockets happens here on simulated links:
//!
//! - **Tracker.** Each node's WebSocket is a link to the server with its own
//!   latency. Every JSON text frame a node's announcer sends is parsed by the
//!   tracker's own parser, handled by the real `Tracker`, and each reply is
//!   serialized and delivered to its connection after that connection's
//!   latency: offers are relayed to random peers and answers routed back as
//!   in production, with the production limits.
//! - **WebRTC.** An offer or answer takes an ICE-gathering time; its SDP
//!   names the simulated endpoint. Once an answer is applied, the data
//!   channel opens at both ends after `setup_rtts` round trips plus a fixed
//!   cost (or never, with `connect_failure_percent`). Bytes travel at the
//!   sender's upload rate (one uplink shared by its connections) plus the
//!   link's latency, split at random points (a data channel is a byte
//!   stream to the engine), with the send-buffer watermarks a browser
//!   reports.
//! - **Web seed.** Range requests are answered from the track after a
//!   round trip to the server, the body streaming in 16 KiB chunks at
//!   `http_rate`; every byte sent is counted.
//! - **Players.** A fan presses play some time after its page joined, and
//!   its player then consumes the track at its bitrate, stalling when the
//!   next byte is not verified; first audio and stalls are recorded.
//!
//! Everything random comes from one seed, so a failing run replays exactly.

pub mod crowd;
mod hostile;
mod queue;
mod world;

use std::cmp::Reverse;
use std::collections::{BTreeMap, BinaryHeap, HashSet, VecDeque};
use std::ops::Range;
use std::rc::Rc;
use std::time::Duration;

use fanswarm_tracker::{ConnectionId, Tracker};
use sha1::{Digest, Sha1};
use swarm::announce::TrackerIndex;
use swarm::engine::{Event, PeerError, PeerKey, Source as BlockSource, TorrentSpec};
use swarm::magnet::Magnet;
use swarm::metainfo::{Metainfo, TorrentBuilder};
use swarm::node::{GoneReason, HttpId, Node, NodeConfig, NodeEvent, Output, RangeRequest, Source};
use swarm::picker::Playback;
use swarm::time::Time;
use swarm::tracker::parse_client_message;
use swarm::wire::Decoder;
use swarm::{InfoHash, PeerId};

use hostile::Tamper;
pub use hostile::{Behaviour, Seen};
use queue::{Calendar, Timed};
pub use world::{Listening, Micros, Role, World};

/// The tracker URL every node announces to.
const TRACKER_URL: &str = "ws://tracker.sim/announce";
/// The web seed's URL.
const MEDIA_URL: &str = "http://origin.sim/media/track.wav";
/// A browser reports its channel blocked above this many unsent bytes…
const HIGH_WATER: u64 = 1024 * 1024;
/// …and unblocked once it drains to this.
const LOW_WATER: u64 = 256 * 1024;
/// How often a playing fan's position is reported (`timeupdate`).
const PLAYER_TICK: Micros = 250_000;
/// HTTP bodies arrive in chunks of this many bytes.
const HTTP_CHUNK: usize = 16 * 1024;

#[derive(Debug)]
enum Ev {
    Join(usize),
    Leave(usize),
    TrackerOpen(usize),
    ToTracker(usize, String),
    FromTracker(usize, String),
    OfferMade(usize, PeerKey),
    AnswerMade(usize, PeerKey),
    ChannelOpen(usize, PeerKey),
    /// Bytes `range` of one send (all its pieces share the send's buffer).
    Deliver(usize, PeerKey, Rc<Vec<u8>>, Range<usize>),
    Closed(usize, PeerKey),
    Drained(usize, PeerKey),
    /// Bytes `range` of the track, the next part of a Range body.
    HttpData(usize, HttpId, Range<usize>),
    HttpEnd(usize, HttpId),
    Wake(usize, Micros),
    PlayerTick(usize),
    TrackerExpire,
}

/// One connection as the simulator sees it.
#[derive(Debug)]
struct Link {
    /// The far end, once the descriptions are exchanged.
    remote: Option<(usize, PeerKey)>,
    latency: Micros,
    /// Bytes handed to the uplink and when each batch is fully sent.
    queued: VecDeque<(Micros, u64)>,
    blocked: bool,
    /// For a liar: re-frames what it sends so piece payloads can be corrupted.
    liar_stream: Option<Decoder>,
    /// For a hostile node: rewrites what it sends and counts what it gets.
    tamper: Option<Tamper>,
}

/// A fan's player.
#[derive(Debug, Clone, Default)]
pub struct Player {
    /// When play was pressed.
    pub pressed_at: Option<Micros>,
    /// First audio: the first piece was there to play.
    pub first_audio_at: Option<Micros>,
    /// Next byte to play.
    pub position: u64,
    /// Time spent stalled after first audio.
    pub stalled: Micros,
    /// Stalls after first audio.
    pub stalls: u32,
    stalled_since: Option<Micros>,
    bytes_per_sec: u64,
}

/// One participant and what was observed of it.
#[derive(Debug)]
pub struct SimNode {
    pub role: Role,
    pub listening: Listening,
    pub node: Option<Node>,
    pub peer_id: PeerId,
    /// When the metadata was known (at join for a node with the torrent).
    pub metadata_at: Option<Micros>,
    /// When its first data channel opened.
    pub first_channel_at: Option<Micros>,
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
    /// For a fan: its player.
    pub player: Player,
    /// Bytes this node fetched from the web seed (requested).
    pub origin_bytes: u64,
    /// The engine's totals when it left (or now, see [`Sim::engine_stats`]).
    pub final_stats: swarm::engine::Stats,
    /// What its engine may upload (`Sim::set_upload`).
    pub upload: swarm::engine::Upload,
    /// Leave only once the player reached the end.
    leave_when_played: bool,
    links: BTreeMap<PeerKey, Link>,
    /// The node at the far end of every connection it ever had.
    remotes: BTreeMap<PeerKey, usize>,
    up_free_at: Micros,
    wake_at: Option<Micros>,
    tracker_open: bool,
}

impl SimNode {
    /// Left, or joined and has every piece.
    fn finished(&self) -> bool {
        self.left || (self.joined_at.is_some() && self.done_at.is_some())
    }
}

/// The simulator.
pub struct Sim {
    pub world: World,
    pub data: Vec<u8>,
    pub meta: Metainfo,
    pub spec: TorrentSpec,
    /// What a magnet leecher knows at start.
    pub magnet: Magnet,
    pub nodes: Vec<SimNode>,
    pub tracker: Tracker,
    /// Bytes the origin sent.
    pub origin_bytes: u64,
    /// Tracker messages handled.
    pub tracker_messages: u64,
    /// Every web-seed request: when, which node, stream bytes `start..=end`,
    /// and the nodes it had an open channel to then.
    pub web_seed_log: Vec<(Micros, usize, u64, u64, Vec<usize>)>,
    pub now: Micros,
    rng: fastrand::Rng,
    tracker_rng: fastrand::Rng,
    server_latency: Vec<Micros>,
    /// Pending events, earliest first (ties in the order scheduled).
    queue: Calendar<Scheduled>,
    /// Joins and leaves the caller scheduled ahead (a crowd's whole
    /// timetable: two per fan), apart from `queue`, which then holds only
    /// what is in flight: a heap of 200,000 arrivals and departures made
    /// every pop of a 100,000-fan crowd slower. Both share `seq`, so
    /// events come out in the same order as from one heap.
    timetable: BinaryHeap<Reverse<Scheduled>>,
    seq: u64,
    /// Nodes `0..finished` are finished (left, or joined and done) and stay
    /// so: `left` and `done_at` are never cleared. [`Sim::run`] checks "all
    /// done" after every event; starting at the first node that may not be
    /// finished keeps that check from scanning every departed fan each time,
    /// which made a crowd's cost grow with the square of its fans.
    finished: usize,
}

/// An event and when it happens; ordered by (time, sequence) only.
#[derive(Debug)]
struct Scheduled {
    at: Micros,
    seq: u64,
    ev: Ev,
}

impl PartialEq for Scheduled {
    fn eq(&self, other: &Self) -> bool {
        (self.at, self.seq) == (other.at, other.seq)
    }
}

impl Eq for Scheduled {}

impl PartialOrd for Scheduled {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for Scheduled {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        (self.at, self.seq).cmp(&(other.at, other.seq))
    }
}

impl Timed for Scheduled {
    fn at(&self) -> u64 {
        self.at
    }
}

impl Sim {
    /// A world with content made from the seed and no nodes yet.
    ///
    /// Every node's engine shares verified piece bytes with the others
    /// (`Config::shared_pieces`): each still receives and verifies every
    /// piece itself, but a piece's bytes are held once, not once per node,
    /// so a crowd's memory is its nodes' state, not copies of the track.
    pub fn new(mut world: World) -> Self {
        world
            .engine
            .shared_pieces
            .get_or_insert_with(swarm::engine::store::SharedPieces::default);
        let mut rng = fastrand::Rng::with_seed(world.seed);
        let data: Vec<u8> = (0..world.file_len).map(|_| rng.u8(..)).collect();
        let hashes: Vec<[u8; 20]> = data
            .chunks(world.piece_length as usize)
            .map(|c| Sha1::digest(c).into())
            .collect();
        let mut builder = TorrentBuilder::single_file("track.wav", data.len() as u64)
            .piece_length(world.piece_length)
            .tracker(TRACKER_URL);
        if world.web_seed {
            builder = builder.web_seed(MEDIA_URL);
        }
        let meta = builder
            .build(&hashes)
            .expect("the simulated track makes a valid torrent");
        let spec = TorrentSpec::from_metainfo(&meta);
        let mut magnet = Magnet::new(meta.info_hash);
        magnet.trackers = vec![TRACKER_URL.to_owned()];
        if world.web_seed {
            magnet.web_seeds = vec![MEDIA_URL.to_owned()];
        }
        let tracker = Tracker::new(world.tracker_limits.clone());
        let mut sim = Sim {
            tracker_rng: fastrand::Rng::with_seed(world.seed ^ 0x0074_7261_636b_6572),
            world,
            data,
            meta,
            spec,
            magnet,
            nodes: Vec::new(),
            tracker,
            origin_bytes: 0,
            tracker_messages: 0,
            web_seed_log: Vec::new(),
            now: 0,
            rng,
            server_latency: Vec::new(),
            queue: Calendar::new(),
            timetable: BinaryHeap::new(),
            seq: 0,
            finished: 0,
        };
        sim.schedule(30_000_000, Ev::TrackerExpire);
        sim
    }

    /// Adds a node that joins at `at`; a leecher with a fixed playhead when
    /// `playback` is given, downloading everything otherwise.
    pub fn add_node(&mut self, role: Role, at: Duration, playback: Option<Playback>) -> usize {
        let listening = playback.map_or(Listening::Download, Listening::Fixed);
        self.add(role, at, listening)
    }

    /// Adds a node that joins at `at` and listens as `listening` says.
    pub fn add(&mut self, role: Role, at: Duration, listening: Listening) -> usize {
        let idx = self.nodes.len();
        let random: [u8; 12] = std::array::from_fn(|_| self.rng.u8(..));
        let (lo, hi) = self.world.server_latency_ms;
        self.server_latency.push(self.rng.u64(lo..=hi) * 1000);
        self.nodes.push(SimNode {
            role,
            listening,
            node: None,
            peer_id: PeerId::generate(random),
            metadata_at: None,
            first_channel_at: None,
            joined_at: None,
            done_at: None,
            left: false,
            verified: Vec::new(),
            received_from: HashSet::new(),
            banned: HashSet::new(),
            closed: Vec::new(),
            seen: Seen::default(),
            player: Player::default(),
            origin_bytes: 0,
            final_stats: swarm::engine::Stats::default(),
            upload: swarm::engine::Upload::Unlimited,
            leave_when_played: false,
            links: BTreeMap::new(),
            remotes: BTreeMap::new(),
            up_free_at: 0,
            wake_at: None,
            tracker_open: false,
        });
        self.schedule_ahead(micros(at), Ev::Join(idx));
        idx
    }

    /// What `node` may upload from now on (a fan on a metered link:
    /// `Upload::Off`); before it joins, from its start.
    pub fn set_upload(&mut self, node: usize, upload: swarm::engine::Upload) {
        self.nodes[node].upload = upload;
        self.with_node(node, |n, now| n.set_upload(now, upload));
    }

    /// Makes `node` leave at `at`: `stopped` to the tracker, connections closed.
    pub fn leave_at(&mut self, node: usize, at: Duration) {
        self.schedule_ahead(micros(at), Ev::Leave(node));
    }

    /// Makes a fan leave at `at`, or later, once its player reached the end.
    pub fn leave_after_playing(&mut self, node: usize, at: Duration) {
        self.nodes[node].leave_when_played = true;
        self.schedule_ahead(micros(at), Ev::Leave(node));
    }

    /// A node's engine totals: now, or when it left.
    pub fn engine_stats(&self, node: usize) -> swarm::engine::Stats {
        let n = &self.nodes[node];
        n.node
            .as_ref()
            .map_or_else(|| n.final_stats.clone(), |node| node.stats().engine)
    }

    /// Runs until every present leecher is done or `limit` of virtual time
    /// passed. Returns whether everyone present finished.
    pub fn run(&mut self, limit: Duration) -> bool {
        let limit = micros(limit);
        let check_every_step = std::env::var_os("SIM_CHECK_EVERY_STEP").is_some();
        let progress = std::env::var_os("SIM_PROGRESS").is_some();
        let mut next_progress = self.now;
        while let Some(Scheduled { at, ev, .. }) = self.pop_next() {
            if at > limit {
                self.now = limit;
                break;
            }
            self.now = at;
            if progress && at >= next_progress {
                self.print_progress();
                next_progress = at + 60_000_000;
            }
            self.step(ev);
            if check_every_step {
                self.assert_invariants();
            }
            if self.all_finished() {
                self.assert_invariants();
                return true;
            }
        }
        self.assert_invariants();
        self.all_done()
    }

    /// One line on stderr of where a long run is (`SIM_PROGRESS=1`).
    fn print_progress(&self) {
        let joined = self.nodes.iter().filter(|n| n.joined_at.is_some()).count();
        let present = self.nodes.iter().filter(|n| n.node.is_some()).count();
        let left = self.nodes.iter().filter(|n| n.left).count();
        eprintln!(
            "{:.0} virtual s: {joined} joined, {present} present, {left} left, \
             origin {:.3} copies, {} events in flight",
            self.now as f64 / 1e6,
            self.origin_copies(),
            self.queue.len(),
        );
    }

    /// Runs every event of the next `span` of virtual time, done or not, so
    /// connections being set up or torn down settle.
    pub fn settle(&mut self, span: Duration) {
        let until = self.now + micros(span);
        while self.peek_next().is_some_and(|s| s.at <= until) {
            let Some(Scheduled { at, ev, .. }) = self.pop_next() else {
                break;
            };
            self.now = at;
            self.step(ev);
        }
        self.now = until;
        self.assert_invariants();
    }

    /// Every live node keeps the engine invariants of `engine/PIECES.md`.
    pub fn assert_invariants(&self) {
        for (i, n) in self.nodes.iter().enumerate() {
            if let Some(node) = &n.node
                && let Err(broken) = node.check_invariants()
            {
                panic!("node {i} at {} µs: {broken}", self.now);
            }
        }
    }

    /// Every node that joined and did not leave has all pieces.
    pub fn all_done(&self) -> bool {
        self.nodes.iter().all(SimNode::finished)
    }

    /// [`Sim::all_done`], from the first node that may not be finished.
    fn all_finished(&mut self) -> bool {
        while let Some(n) = self.nodes.get(self.finished) {
            if !n.finished() {
                return false;
            }
            self.finished += 1;
        }
        true
    }

    /// The bytes a node assembled from its verified pieces.
    pub fn assembled(&self, node: usize) -> Vec<u8> {
        let Some(n) = self.nodes[node].node.as_ref() else {
            return Vec::new();
        };
        let pieces = self.spec.piece_hashes.len() as u32;
        let mut out = Vec::with_capacity(self.data.len());
        for p in 0..pieces {
            out.extend_from_slice(n.piece(p).unwrap_or(&[]));
        }
        out
    }

    /// Copies of the track the origin sent.
    pub fn origin_copies(&self) -> f64 {
        self.origin_bytes as f64 / self.data.len() as f64
    }

    fn schedule(&mut self, at: Micros, ev: Ev) {
        self.seq += 1;
        let seq = self.seq;
        self.queue.push(Scheduled { at, seq, ev });
    }

    fn schedule_ahead(&mut self, at: Micros, ev: Ev) {
        self.seq += 1;
        let seq = self.seq;
        self.timetable.push(Reverse(Scheduled { at, seq, ev }));
    }

    /// The earliest pending event of either heap.
    fn peek_next(&mut self) -> Option<&Scheduled> {
        match (self.queue.peek(), self.timetable.peek()) {
            (Some(a), Some(Reverse(b))) => Some(if a <= b { a } else { b }),
            (Some(a), None) | (None, Some(Reverse(a))) => Some(a),
            (None, None) => None,
        }
    }

    fn pop_next(&mut self) -> Option<Scheduled> {
        let from_queue = match (self.queue.peek(), self.timetable.peek()) {
            (Some(a), Some(Reverse(b))) => a <= b,
            (Some(_), None) => true,
            (None, _) => false,
        };
        if from_queue {
            self.queue.pop()
        } else {
            self.timetable.pop().map(|Reverse(s)| s)
        }
    }

    fn time(&self) -> Time {
        Time::from_millis(self.now / 1000)
    }

    fn pick_ms(&mut self, (lo, hi): (u64, u64)) -> Micros {
        self.rng.u64(lo..=hi.max(lo)) * 1000
    }

    fn step(&mut self, ev: Ev) {
        let now = self.time();
        match ev {
            Ev::Join(n) => self.join(n),
            Ev::Leave(n) => {
                let sn = &self.nodes[n];
                let playing = sn.player.position < self.data.len() as u64;
                if sn.leave_when_played && playing && sn.node.is_some() {
                    self.schedule(self.now + 1_000_000, Ev::Leave(n));
                    return;
                }
                let sn = &mut self.nodes[n];
                if let Some(node) = sn.node.as_mut() {
                    sn.final_stats = node.stats().engine;
                    node.stop(now);
                }
                self.drain(n);
                let keys: Vec<PeerKey> = self.nodes[n].links.keys().copied().collect();
                for key in keys {
                    self.close_link(n, key);
                }
                self.tracker.disconnect(ConnectionId(n as u64));
                self.nodes[n].left = true;
                self.nodes[n].node = None;
            }
            Ev::TrackerOpen(n) => {
                self.tracker.connect(now, ConnectionId(n as u64));
                self.nodes[n].tracker_open = true;
                self.with_node(n, |node, now| node.tracker_opened(now, TrackerIndex(0)));
            }
            Ev::ToTracker(n, text) => self.tracker_receives(n, &text),
            Ev::FromTracker(n, text) => {
                self.with_node(n, |node, now| {
                    node.tracker_message(now, TrackerIndex(0), &text)
                });
            }
            Ev::OfferMade(n, key) => {
                let sdp = format!("sim {n} {}", key.0);
                self.with_node(n, |node, now| node.offer_made(now, key, Ok(sdp)));
            }
            Ev::AnswerMade(n, key) => {
                let sdp = format!("sim {n} {}", key.0);
                self.with_node(n, |node, now| node.answer_made(now, key, Ok(sdp)));
            }
            Ev::ChannelOpen(n, key) => {
                if self.nodes[n].links.contains_key(&key) {
                    self.nodes[n].first_channel_at.get_or_insert(self.now);
                    self.with_node(n, |node, now| node.channel_open(now, key));
                }
            }
            Ev::Deliver(n, key, buf, range) => {
                let sn = &mut self.nodes[n];
                let Some(link) = sn.links.get_mut(&key) else {
                    return;
                };
                let bytes = &buf[range];
                if let Some(tamper) = link.tamper.as_mut() {
                    let bytes = tamper.incoming(bytes, &mut sn.seen);
                    self.with_node(n, |node, now| node.channel_data(now, key, &bytes));
                } else {
                    self.with_node(n, |node, now| node.channel_data(now, key, bytes));
                }
            }
            Ev::Closed(n, key) => {
                if self.nodes[n].links.remove(&key).is_some() {
                    self.with_node(n, |node, now| node.connection_closed(now, key));
                }
            }
            Ev::Drained(n, key) => self.check_drained(n, key),
            Ev::HttpData(n, id, range) => {
                let Some(node) = self.nodes[n].node.as_mut() else {
                    return;
                };
                node.http_data(now, id, &self.data[range]);
                self.drain(n);
            }
            Ev::HttpEnd(n, id) => self.with_node(n, |node, now| node.http_end(now, id)),
            Ev::Wake(n, at) => {
                if self.nodes[n].wake_at == Some(at) {
                    self.nodes[n].wake_at = None;
                    self.with_node(n, |node, now| node.handle_timeout(now));
                }
            }
            Ev::PlayerTick(n) => self.player_tick(n),
            Ev::TrackerExpire => {
                self.tracker.expire(now);
                self.schedule(self.now + 30_000_000, Ev::TrackerExpire);
            }
        }
    }

    /// Feeds one input to a live node, then drains it.
    fn with_node(&mut self, n: usize, f: impl FnOnce(&mut Node, Time)) {
        let now = self.time();
        let Some(node) = self.nodes[n].node.as_mut() else {
            return;
        };
        f(node, now);
        self.drain(n);
    }

    fn join(&mut self, n: usize) {
        let seed = self.rng.u64(..);
        let now = self.time();
        let sn = &self.nodes[n];
        let mut config = NodeConfig {
            engine: self.world.engine.clone(),
            max_connections: self.world.max_connections,
            offer_grace: self.world.offer_grace,
            ..NodeConfig::default()
        };
        config.announce.offers_per_announce = self.world.offers_per_announce;
        if matches!(sn.listening, Listening::Fan { .. }) {
            config.engine.web_seed_needs_playback = true;
        }
        config.engine.upload = sn.upload;
        let source = if self.world.magnet && sn.role == Role::Leecher {
            Source::Magnet(self.magnet.clone())
        } else {
            Source::Torrent(Box::new(self.meta.clone()))
        };
        let mut node = Node::new(
            config,
            source,
            vec![TRACKER_URL.to_owned()],
            sn.peer_id,
            seed,
            now,
        )
        .expect("the simulated torrent is consistent");
        let sn = &mut self.nodes[n];
        if sn.role != Role::Leecher {
            for (p, chunk) in self
                .data
                .chunks(self.world.piece_length as usize)
                .enumerate()
            {
                assert!(node.import_piece(p as u32, chunk));
            }
            sn.done_at = Some(self.now);
        }
        if !(self.world.magnet && sn.role == Role::Leecher) {
            sn.metadata_at = Some(self.now);
        }
        match sn.listening {
            Listening::Fixed(pb) => node.set_playback(now, Some(pb)),
            Listening::Fan {
                press_after,
                bytes_per_sec,
            } if sn.role == Role::Leecher => {
                sn.player.bytes_per_sec = bytes_per_sec.max(1);
                let at = self.now + micros(press_after);
                sn.node = Some(node);
                sn.joined_at = Some(self.now);
                self.schedule(at, Ev::PlayerTick(n));
                self.drain(n);
                return;
            }
            _ => {}
        }
        sn.node = Some(node);
        sn.joined_at = Some(self.now);
        self.drain(n);
    }

    /// A fan's player: first press, then every tick: advance over verified
    /// bytes at the bitrate, stall where they end, tell the node.
    fn player_tick(&mut self, n: usize) {
        let now = self.now;
        let piece_length = u64::from(self.world.piece_length);
        let total = self.data.len() as u64;
        let sn = &mut self.nodes[n];
        let Some(node) = sn.node.as_ref() else {
            return;
        };
        let p = &mut sn.player;
        let has = |pos: u64| node.piece((pos / piece_length) as u32).is_some();
        if p.pressed_at.is_none() {
            p.pressed_at = Some(now);
        } else if p.first_audio_at.is_none() {
            if has(0) {
                p.first_audio_at = Some(now);
            }
        } else if p.position < total {
            let mut budget = p.bytes_per_sec * PLAYER_TICK / 1_000_000;
            while budget > 0 && p.position < total && has(p.position) {
                let piece_end = ((p.position / piece_length) + 1) * piece_length;
                let step = budget.min(piece_end.min(total) - p.position);
                p.position += step;
                budget -= step;
            }
            if budget > 0 && p.position < total {
                if p.stalled_since.is_none() {
                    p.stalled_since = Some(now);
                    p.stalls += 1;
                    if std::env::var_os("SIM_STALLS").is_some() {
                        let piece = (p.position / piece_length) as u32;
                        eprintln!(
                            "{:.3} s fan {n} stalls at piece {piece} ({:.2} s after first audio)",
                            now as f64 / 1e6,
                            p.first_audio_at.map_or(0.0, |f| (now - f) as f64 / 1e6)
                        );
                        if let Some(t) = node.torrent().torrent() {
                            for line in t.explain_piece(piece) {
                                eprintln!("    {line}");
                            }
                        }
                    }
                }
                p.stalled += PLAYER_TICK;
            } else {
                p.stalled_since = None;
            }
        }
        let playback = Playback {
            offset: p.position.min(total.saturating_sub(1)),
            bytes_per_sec: Some(p.bytes_per_sec),
        };
        // Until first audio the player waits on the first piece: poll fast.
        let next = if p.first_audio_at.is_none() {
            now + 10_000
        } else {
            now + PLAYER_TICK
        };
        if p.position < total {
            self.schedule(next, Ev::PlayerTick(n));
        }
        self.with_node(n, |node, t| node.set_playback(t, Some(playback)));
    }

    fn tracker_receives(&mut self, n: usize, text: &str) {
        if !self.nodes[n].tracker_open {
            return;
        }
        let now = self.time();
        self.tracker_messages += 1;
        let request = parse_client_message(text.as_bytes());
        let mut out = Vec::new();
        self.tracker.handle(
            now,
            &mut self.tracker_rng,
            ConnectionId(n as u64),
            request,
            &mut out,
        );
        for (conn, message) in out {
            let to = conn.0 as usize;
            let Ok(text) = serde_json::to_string(&message.into_server_message()) else {
                continue;
            };
            let at = self.now + self.server_latency[to];
            self.schedule(at, Ev::FromTracker(to, text));
        }
    }

    /// Drains a node and turns its outputs into scheduled events.
    fn drain(&mut self, n: usize) {
        loop {
            let sn = &mut self.nodes[n];
            let Some(node) = sn.node.as_ref() else {
                return;
            };
            if sn.metadata_at.is_none() && node.metainfo().is_some() {
                sn.metadata_at = Some(self.now);
            }
            let Some(node) = self.nodes[n].node.as_mut() else {
                return;
            };
            match node.poll() {
                Output::ConnectTracker { .. } => {
                    // TCP and the WebSocket upgrade: two round trips.
                    let at = self.now + 4 * self.server_latency[n];
                    self.schedule(at, Ev::TrackerOpen(n));
                }
                Output::SendTracker { text, .. } => {
                    if self.nodes[n].tracker_open {
                        let at = self.now + self.server_latency[n];
                        self.schedule(at, Ev::ToTracker(n, text));
                    }
                }
                Output::CloseTracker { .. } => {
                    self.nodes[n].tracker_open = false;
                }
                Output::CreateOffer { conn } => {
                    self.new_link(n, conn);
                    let at = self.now + self.pick_ms(self.world.gather_ms);
                    self.schedule(at, Ev::OfferMade(n, conn));
                }
                Output::AnswerOffer { conn, sdp } => {
                    self.new_link(n, conn);
                    if let Some(remote) = parse_sdp(&sdp) {
                        self.nodes[n].remotes.insert(conn, remote.0);
                        self.nodes[n].links.entry(conn).and_modify(|l| {
                            l.remote = Some(remote);
                        });
                    }
                    let at = self.now + self.pick_ms(self.world.gather_ms);
                    self.schedule(at, Ev::AnswerMade(n, conn));
                }
                Output::AcceptAnswer { conn, sdp } => self.connect(n, conn, &sdp),
                Output::SendPeer { conn, data } => self.transmit(n, conn, data),
                Output::CloseConn { conn } => self.close_link(n, conn),
                Output::HttpGet { id, request } => self.http_get(n, id, &request),
                Output::CancelHttp { .. } => {}
                Output::Event(event) => self.observe(n, event),
                Output::Timeout(t) => {
                    let at = (t.as_millis() * 1000).max(self.now + 1);
                    let sn = &mut self.nodes[n];
                    if sn.wake_at.is_none_or(|w| at < w || w <= self.now) {
                        sn.wake_at = Some(at);
                        self.schedule(at, Ev::Wake(n, at));
                    }
                    return;
                }
            }
        }
    }

    fn new_link(&mut self, n: usize, key: PeerKey) {
        let role = self.nodes[n].role;
        self.nodes[n].links.insert(
            key,
            Link {
                remote: None,
                latency: 0,
                queued: VecDeque::new(),
                blocked: false,
                liar_stream: (role == Role::Liar).then(|| Decoder::new(1 << 20)),
                tamper: match role {
                    Role::Hostile(behaviour) => Some(Tamper::new(behaviour)),
                    _ => None,
                },
            },
        );
    }

    /// The offerer applied the answer: both channels open after the set-up
    /// round trips (unless this connection is one that fails).
    fn connect(&mut self, a: usize, ka: PeerKey, answer: &str) {
        let Some((b, kb)) = parse_sdp(answer) else {
            return;
        };
        let answerer_knows = self.nodes[b]
            .links
            .get(&kb)
            .is_some_and(|l| l.remote == Some((a, ka)));
        if !answerer_knows || !self.nodes[a].links.contains_key(&ka) {
            return;
        }
        let latency = self.pick_ms(self.world.latency_ms);
        let setup = self.world.setup_rtts * 2 * latency + self.pick_ms(self.world.setup_extra_ms);
        for (n, k, remote) in [(a, ka, (b, kb)), (b, kb, (a, ka))] {
            self.nodes[n].remotes.insert(k, remote.0);
            if let Some(link) = self.nodes[n].links.get_mut(&k) {
                link.remote = Some(remote);
                link.latency = latency;
            }
        }
        if self.rng.u64(0..100) < self.world.connect_failure_percent {
            return; // never opens: the nodes' connect timeout ends it
        }
        self.schedule(self.now + setup, Ev::ChannelOpen(a, ka));
        self.schedule(self.now + setup, Ev::ChannelOpen(b, kb));
    }

    fn close_link(&mut self, n: usize, key: PeerKey) {
        if let Some(link) = self.nodes[n].links.remove(&key)
            && let Some((m, km)) = link.remote
        {
            let at = self.now + link.latency.max(1);
            self.schedule(at, Ev::Closed(m, km));
        }
    }

    /// Sends bytes over n's uplink to the far end of `key`, split at random
    /// points; reports the send buffer crossing its watermarks.
    fn transmit(&mut self, n: usize, key: PeerKey, mut data: Vec<u8>) {
        let now = self.now;
        let Some(link) = self.nodes[n].links.get_mut(&key) else {
            return;
        };
        if let Some(stream) = link.liar_stream.as_mut() {
            data = swarm::wire::fault::corrupt_blocks(stream, &data);
        }
        if let Some(tamper) = link.tamper.as_mut() {
            data = tamper.outgoing(&data, &self.spec);
        }
        let Some((remote, remote_key)) = link.remote else {
            return;
        };
        let latency = link.latency;
        let sn = &mut self.nodes[n];
        let start = now.max(sn.up_free_at);
        sn.up_free_at = start + data.len() as u64 * 1_000_000 / self.world.peer_up.max(1);
        let sent_at = sn.up_free_at;
        let Some(link) = sn.links.get_mut(&key) else {
            return;
        };
        link.queued.push_back((sent_at, data.len() as u64));
        let buffered = buffered(&mut link.queued, now);
        let block = !link.blocked && buffered > HIGH_WATER;
        if block {
            link.blocked = true;
            // When the buffer is down to the low mark again.
            let mut left = buffered;
            let mut at = now;
            for &(t, len) in &link.queued {
                if left <= LOW_WATER {
                    break;
                }
                left -= len;
                at = t;
            }
            self.schedule(at, Ev::Drained(n, key));
        }
        let at = sent_at + latency;
        let (mut start, end) = (0, data.len());
        let data = Rc::new(data);
        while start < end {
            let rest = end - start;
            let cut = if rest > 1 && self.rng.bool() {
                self.rng.usize(1..rest)
            } else {
                rest
            };
            let piece = start..start + cut;
            self.schedule(at, Ev::Deliver(remote, remote_key, Rc::clone(&data), piece));
            start += cut;
        }
        if block {
            self.with_node(n, |node, t| node.send_blocked(t, key, true));
        }
    }

    fn check_drained(&mut self, n: usize, key: PeerKey) {
        let now = self.now;
        let Some(link) = self.nodes[n].links.get_mut(&key) else {
            return;
        };
        if !link.blocked {
            return;
        }
        let left = buffered(&mut link.queued, now);
        if left <= LOW_WATER {
            link.blocked = false;
            self.with_node(n, |node, t| node.send_blocked(t, key, false));
        } else {
            let next = link
                .queued
                .front()
                .map_or(now + 1, |&(t, _)| t.max(now + 1));
            self.schedule(next, Ev::Drained(n, key));
        }
    }

    /// The origin answers a Range request: a round trip, then the body in
    /// chunks at `http_rate`.
    fn http_get(&mut self, n: usize, id: HttpId, request: &RangeRequest) {
        let start = usize::try_from(request.start).unwrap_or(usize::MAX);
        let end = usize::try_from(request.end)
            .unwrap_or(usize::MAX)
            .min(self.data.len().saturating_sub(1));
        let latency = self.server_latency[n];
        let mut at = self.now + 2 * latency;
        if start <= end {
            let open: Vec<usize> = self.nodes[n]
                .links
                .values()
                .filter_map(|l| l.remote.map(|r| r.0))
                .collect();
            self.web_seed_log
                .push((self.now, n, start as u64, end as u64, open));
            if std::env::var_os("SIM_EXPLAIN").is_some() {
                let piece = (start as u64 / u64::from(self.world.piece_length)) as u32;
                if let Some(t) = self.nodes[n]
                    .node
                    .as_ref()
                    .and_then(|x| x.torrent().torrent())
                {
                    eprintln!(
                        "{:.3} s fan {n} fetches {start}..={end} (piece {piece}, due {:?}):",
                        self.now as f64 / 1e6,
                        t.due_in(piece)
                    );
                    for line in t.explain_piece(piece) {
                        eprintln!("    {line}");
                    }
                }
            }
            let len = (end + 1 - start) as u64;
            self.origin_bytes += len;
            self.nodes[n].origin_bytes += len;
            for chunk in (start..=end).step_by(HTTP_CHUNK) {
                let chunk = chunk..(chunk + HTTP_CHUNK).min(end + 1);
                at += chunk.len() as u64 * 1_000_000 / self.world.http_rate.max(1);
                self.schedule(at, Ev::HttpData(n, id, chunk));
            }
        }
        self.schedule(at, Ev::HttpEnd(n, id));
    }

    fn observe(&mut self, n: usize, event: NodeEvent) {
        let now = self.now;
        let sn = &mut self.nodes[n];
        match event {
            NodeEvent::Engine(Event::PieceVerified { piece }) => sn.verified.push(piece),
            NodeEvent::Engine(Event::Done) => sn.done_at = Some(now),
            NodeEvent::Engine(Event::PeerBanned { id }) => {
                sn.banned.insert(id);
            }
            NodeEvent::Engine(Event::Downloaded {
                source: BlockSource::Peer(id),
                ..
            }) => {
                sn.received_from.insert(id);
            }
            NodeEvent::PeerGone {
                conn,
                reason: GoneReason::Peer(reason),
            } => {
                if let Some(&remote) = sn.remotes.get(&conn) {
                    sn.closed.push((remote, reason));
                }
            }
            _ => {}
        }
    }
}

/// Bytes handed to the uplink and not yet sent at `now`.
fn buffered(queued: &mut VecDeque<(Micros, u64)>, now: Micros) -> u64 {
    while queued.front().is_some_and(|&(t, _)| t <= now) {
        queued.pop_front();
    }
    queued.iter().map(|&(_, len)| len).sum()
}

/// The simulated endpoint an SDP names: "sim <node> <key>".
fn parse_sdp(sdp: &str) -> Option<(usize, PeerKey)> {
    let mut parts = sdp.split(' ');
    if parts.next()? != "sim" {
        return None;
    }
    let node = parts.next()?.parse().ok()?;
    let key = parts.next()?.parse().ok()?;
    Some((node, PeerKey(key)))
}

fn micros(d: Duration) -> Micros {
    u64::try_from(d.as_micros()).unwrap_or(u64::MAX)
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

/// The swarm every node is in.
pub fn info_hash(sim: &Sim) -> InfoHash {
    sim.meta.info_hash
}
