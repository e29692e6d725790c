//! One running peer of one swarm, sans-IO: the engine, the tracker client,
//! the connection table and web-seed planning behind one pair of calls —
//! events in, [`Node::poll`] out, time as input.
//!
//! The browser shell, the native shell and the simulator are I/O adapters
//! around a [`Node`] (as quinn's async layer and its tests drive the same
//! `quinn_proto::Endpoint`): each opens the WebSockets, RTCPeerConnections
//! and HTTP requests the node asks for and reports what happened. Every rule
//! about *when* — connect timeouts, the connection cap, what to do with
//! bytes that arrive before a channel's `open`, announcing `left`, looking
//! for peers again when the last one is lost, giving up on a tracker that
//! does not connect or a web-seed request gone silent — lives here once.
//!
//! A shell calls, with the current time:
//! - trackers: [`Node::tracker_opened`], [`Node::tracker_message`],
//!   [`Node::tracker_closed`];
//! - connections: [`Node::offer_made`] / [`Node::answer_made`] once the
//!   description it was asked for is complete (ICE gathered),
//!   [`Node::channel_open`], [`Node::channel_data`],
//!   [`Node::send_blocked`] from the channel's `bufferedAmount`
//!   watermarks, [`Node::connection_closed`] when anything about the
//!   connection fails or ends;
//! - the web seed: [`Node::http_data`] with each body chunk as it arrives,
//!   then [`Node::http_end`] (or [`Node::http_failed`]);
//! - the player: [`Node::set_playback`], or for one file of an album
//!   [`Node::select_files`], [`Node::set_file_playback`] and
//!   [`Node::look_ahead`], [`Node::look_ahead_read`] (`files.rs`);
//! - [`Node::handle_timeout`] when the time it asked for comes,
//!
//! and after each call drains [`Node::poll`] until [`Output::Timeout`].

mod conns;
mod files;
mod http;
mod stats;
mod webseeds;

use std::collections::VecDeque;
use std::fmt;
use std::time::Duration;

pub use files::FileError;
pub use http::{HttpId, RangeRequest, plan as plan_ranges};
pub use stats::{NodeStats, RateMeter};
pub use webseeds::WebSeedStats;

use crate::announce::{Action, AnnounceConfig, Announcer, Progress, TrackerIndex, TrackerNotice};
use crate::engine::{Config, Event, FetchId, Output as EngineOutput, PeerKey, PieceOrigin, Upload};
use crate::engine::{SpecError, Torrent, TorrentSpec};
use crate::error::PeerError;
use crate::ids::{InfoHash, PeerId};
use crate::join::{FetchConfig, Joining};
use crate::magnet::Magnet;
use crate::metainfo::Metainfo;
use crate::picker::Playback;
use crate::sorted::SortedMap;
use crate::time::Time;
use conns::{Conns, Deadlines, EARLY_BYTES_LIMIT, Stage};
use files::Selection;
use http::{HttpTable, Step};
use webseeds::WebSeeds;

/// Tunables of a node.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NodeConfig {
    /// The engine's.
    pub engine: Config,
    /// The magnet metadata fetch's.
    pub fetch: FetchConfig,
    /// The tracker client's.
    pub announce: AnnounceConfig,
    /// Connections at most, counting those still being made.
    pub max_connections: usize,
    /// Making one offer or answer (ICE gathering included) at most.
    pub setup_timeout: Duration,
    /// From descriptions exchanged to an open channel at most (the
    /// reference client: 25 s).
    pub connect_timeout: Duration,
    /// A tracker's WebSocket not open this long after it was asked for is
    /// given up (closed, and retried after the tracker client's back-off).
    pub tracker_connect_timeout: Duration,
    /// A web-seed request that delivers no byte for this long (from its
    /// start or its last chunk) is abandoned and counts as failed, so a
    /// stalled origin cannot hold a fetch forever.
    pub http_timeout: Duration,
    /// Use the torrent's web seed (`url-list`, a magnet's `ws`).
    pub web_seed: bool,
    /// Peers count as on their way (see
    /// [`crate::engine::Torrent::set_peers_coming`]) this long after the
    /// node starts and after each offer of ours is made, unless the
    /// tracker said we are alone.
    pub offer_grace: Duration,
}

impl Default for NodeConfig {
    fn default() -> Self {
        NodeConfig {
            engine: Config::default(),
            fetch: FetchConfig::default(),
            announce: AnnounceConfig::default(),
            max_connections: 20,
            setup_timeout: Duration::from_secs(15),
            connect_timeout: Duration::from_secs(25),
            tracker_connect_timeout: Duration::from_secs(10),
            http_timeout: Duration::from_secs(30),
            web_seed: true,
            offer_grace: Duration::from_secs(3),
        }
    }
}

/// What a node joins with.
#[derive(Debug, Clone)]
pub enum Source {
    /// A parsed `.torrent`.
    Torrent(Box<Metainfo>),
    /// A bare magnet: the metadata comes from peers (or [`Node::offer_metadata`]).
    Magnet(Magnet),
}

/// Why a connection the engine knew ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum GoneReason {
    /// The channel or the connection closed or failed (the shell said so).
    Closed,
    /// The engine closed it.
    Peer(PeerError),
    /// It sent more than [`conns::EARLY_BYTES_LIMIT`] before its channel opened.
    TooEarly,
}

impl fmt::Display for GoneReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            GoneReason::Closed => f.write_str("the connection closed"),
            GoneReason::Peer(e) => write!(f, "{e}"),
            GoneReason::TooEarly => f.write_str("it sent too much before its channel opened"),
        }
    }
}

/// Things worth knowing that need no action.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NodeEvent {
    /// From the engine: pieces verified, bytes moved, peers connected or
    /// banned, done, a magnet's metadata still missing.
    Engine(Event),
    /// From the tracker client: a tracker's reply, refusal or garbage.
    Tracker(TrackerNotice),
    /// A connection the engine knew ended (or one that sent too much
    /// before its channel opened was dropped).
    PeerGone {
        /// Which.
        conn: PeerKey,
        /// Why.
        reason: GoneReason,
    },
    /// A magnet's metadata arrived: [`Node::metainfo`] is known now.
    MetadataReady,
    /// A web-seed request failed: the fetch goes on from another of the
    /// torrent's web seeds, or, when none is left, the engine backs off
    /// and tries again.
    WebSeedFailed {
        /// The web seed's URL.
        url: String,
        /// What the shell said.
        error: String,
    },
    /// A web seed is no longer used (another one is): it served bytes that
    /// failed verification.
    WebSeedDropped {
        /// Its URL.
        url: String,
        /// Why.
        reason: String,
    },
}

/// One thing the shell must do, or the time to call back.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Output {
    /// Open a WebSocket to this tracker.
    ConnectTracker {
        /// Which.
        tracker: TrackerIndex,
        /// Its URL.
        url: String,
    },
    /// Send one text frame to the tracker (dropped if its socket is not open).
    SendTracker {
        /// Which.
        tracker: TrackerIndex,
        /// One JSON message.
        text: String,
    },
    /// Close the tracker's WebSocket.
    CloseTracker {
        /// Which.
        tracker: TrackerIndex,
    },
    /// Make an RTCPeerConnection with one ordered, reliable data channel and
    /// a complete offer (ICE gathered), then call [`Node::offer_made`].
    CreateOffer {
        /// The connection's key from now on.
        conn: PeerKey,
    },
    /// Make an RTCPeerConnection for a remote offer and a complete answer,
    /// then call [`Node::answer_made`]; the remote creates the channel.
    AnswerOffer {
        /// The connection's key from now on.
        conn: PeerKey,
        /// The remote's SDP offer.
        sdp: String,
    },
    /// Apply the remote's answer to our offer's connection.
    AcceptAnswer {
        /// Which connection.
        conn: PeerKey,
        /// Its SDP answer.
        sdp: String,
    },
    /// Write these bytes to the connection's channel, in order.
    SendPeer {
        /// To whom.
        conn: PeerKey,
        /// Bytes of whole wire messages.
        data: Vec<u8>,
    },
    /// Close this connection; the node has forgotten it.
    CloseConn {
        /// Which.
        conn: PeerKey,
    },
    /// Fetch bytes `start..=end` of `url` (an HTTP Range request) and hand
    /// the body to [`Node::http_data`] as it arrives, then [`Node::http_end`]
    /// ([`RangeRequest::accepts_status`] says which statuses carry it).
    HttpGet {
        /// Echo this back.
        id: HttpId,
        /// The request.
        request: RangeRequest,
    },
    /// Abandon this request (leaving the swarm, or it stalled).
    CancelHttp {
        /// Which.
        id: HttpId,
    },
    /// Something happened.
    Event(NodeEvent),
    /// Nothing more to do now: call [`Node::handle_timeout`] at this time.
    Timeout(Time),
}

/// An engine fetch over HTTP: a stretch of the torrent's bytes.
#[derive(Debug)]
struct WebFetch {
    offset: u64,
    length: u64,
    /// Bytes handed to the engine so far.
    delivered: u64,
    /// The web seed it is asking now.
    seed: usize,
    /// Seeds it asked, in order.
    tried: Vec<usize>,
}

/// One running peer of one swarm. See the module documentation.
#[derive(Debug)]
pub struct Node {
    config: NodeConfig,
    torrent: Joining,
    /// The torrent, once known.
    meta: Option<Metainfo>,
    announcer: Announcer,
    /// Trackers asked to connect and not heard from yet: since when.
    tracker_connects: SortedMap<TrackerIndex, Time>,
    conns: Conns,
    http: HttpTable,
    /// The torrent's web seeds, once it is known.
    web_seeds: Option<WebSeeds>,
    /// Engine fetches running over HTTP.
    web_fetches: SortedMap<FetchId, WebFetch>,
    /// Which web seed sent (the last bytes of) each piece not yet verified.
    piece_seed: SortedMap<u32, usize>,
    /// Which web seed sent a piece that failed and has not verified since.
    failed_seed: SortedMap<u32, usize>,
    /// Feeds the web seeds' first turn.
    seed: u64,
    outputs: VecDeque<Output>,
    now: Time,
    engine_wake: Time,
    announce_wake: Time,
    down: RateMeter,
    up: RateMeter,
    stopped: bool,
    /// Peers in the swarm besides us, by the last tracker reply; `None`
    /// before any.
    swarm_others: Option<u64>,
    /// When the node started.
    started: Time,
    /// What the engine was last told by `set_peers_coming`, and until when
    /// that holds if nothing else happens.
    peers_coming: Option<(bool, u64)>,
    peers_coming_until: Option<Time>,
    /// The files fetched and the look-ahead (`files.rs`).
    selection: Selection,
}

impl Node {
    /// A peer of `source`'s swarm announcing to `trackers` (WebSocket URLs;
    /// asked to connect at once). `seed` feeds every random choice.
    pub fn new(
        config: NodeConfig,
        source: Source,
        trackers: Vec<String>,
        peer_id: PeerId,
        seed: u64,
        now: Time,
    ) -> Result<Node, SpecError> {
        let (torrent, meta) = match source {
            Source::Torrent(meta) => {
                let mut spec = TorrentSpec::from_metainfo(&meta);
                spec.web_seed &= config.web_seed;
                let torrent = Torrent::new(config.engine.clone(), spec, peer_id, seed, now)?;
                (Joining::from_torrent(torrent), Some(*meta))
            }
            Source::Magnet(mut magnet) => {
                if !config.web_seed {
                    magnet.web_seeds.clear();
                }
                let join = Joining::from_magnet(
                    config.engine.clone(),
                    config.fetch.clone(),
                    magnet,
                    peer_id,
                    seed,
                    now,
                );
                (join, None)
            }
        };
        let announcer = Announcer::new(
            config.announce.clone(),
            torrent.info_hash(),
            peer_id,
            trackers,
            seed.rotate_left(17),
            now,
        );
        let mut node = Node {
            config,
            torrent,
            meta,
            announcer,
            tracker_connects: SortedMap::new(),
            conns: Conns::default(),
            http: HttpTable::default(),
            web_seeds: None,
            web_fetches: SortedMap::new(),
            piece_seed: SortedMap::new(),
            failed_seed: SortedMap::new(),
            seed,
            outputs: VecDeque::new(),
            now,
            engine_wake: now,
            announce_wake: now,
            down: RateMeter::default(),
            up: RateMeter::default(),
            stopped: false,
            swarm_others: None,
            started: now,
            peers_coming: None,
            peers_coming_until: None,
            selection: Selection::default(),
        };
        node.pump();
        Ok(node)
    }

    // ---- trackers ----

    /// The tracker's WebSocket opened.
    pub fn tracker_opened(&mut self, now: Time, tracker: TrackerIndex) {
        self.now = now;
        self.tracker_connects.remove(&tracker);
        self.announcer.tracker_connected(now, tracker);
        self.pump();
    }

    /// A text frame arrived from the tracker.
    pub fn tracker_message(&mut self, now: Time, tracker: TrackerIndex, text: &str) {
        self.now = now;
        self.announcer.handle_message(now, tracker, text);
        self.pump();
    }

    /// The tracker's WebSocket closed or failed (the node reconnects later).
    pub fn tracker_closed(&mut self, now: Time, tracker: TrackerIndex) {
        self.now = now;
        self.tracker_connects.remove(&tracker);
        self.announcer.tracker_closed(now, tracker);
        self.pump();
    }

    // ---- connections ----

    /// The offer asked for by [`Output::CreateOffer`] is complete (`Ok(sdp)`)
    /// or could not be made. If the node gave up on the connection
    /// meanwhile, it asks for it to be closed.
    pub fn offer_made(&mut self, now: Time, conn: PeerKey, sdp: Result<String, String>) {
        self.now = now;
        let offer = match self.conns.get(conn).map(|c| &c.stage) {
            Some(Stage::MakingOffer { offer }) => *offer,
            _ => {
                self.outputs.push_back(Output::CloseConn { conn });
                return;
            }
        };
        match sdp {
            Ok(sdp) => {
                self.conns.set_stage(conn, now, Stage::Offered { offer });
                self.announcer.offer_ready(now, offer, sdp);
            }
            Err(_) => {
                self.conns.remove(conn);
                self.announcer.offer_failed(now, offer);
                self.outputs.push_back(Output::CloseConn { conn });
            }
        }
        self.pump();
    }

    /// The answer asked for by [`Output::AnswerOffer`] is complete (`Ok(sdp)`)
    /// or could not be made.
    pub fn answer_made(&mut self, now: Time, conn: PeerKey, sdp: Result<String, String>) {
        self.now = now;
        let (tracker, offer, peer) = match self.conns.get(conn).map(|c| &c.stage) {
            Some(Stage::Answering {
                tracker,
                offer,
                peer,
            }) => (*tracker, *offer, *peer),
            _ => {
                self.outputs.push_back(Output::CloseConn { conn });
                return;
            }
        };
        match sdp {
            Ok(sdp) => {
                self.conns.set_stage(conn, now, Stage::Connecting);
                self.announcer.answer_ready(now, tracker, offer, peer, sdp);
            }
            Err(_) => {
                self.conns.remove(conn);
                self.outputs.push_back(Output::CloseConn { conn });
            }
        }
        self.pump();
    }

    /// The connection's data channel opened: the engine handshakes, and
    /// any bytes that came before the `open` are replayed.
    pub fn channel_open(&mut self, now: Time, conn: PeerKey) {
        self.now = now;
        let Some(c) = self.conns.get_mut(conn) else {
            return;
        };
        if c.stage == Stage::Open {
            return;
        }
        let early = std::mem::take(&mut c.early);
        self.conns.set_stage(conn, now, Stage::Open);
        self.torrent.add_peer(now, conn);
        if !early.is_empty() {
            self.torrent.handle_peer_data(now, conn, &early);
        }
        self.pump();
    }

    /// Bytes arrived on the connection's channel. Before its `open` (a
    /// browser can deliver the remote's first message first) they are kept,
    /// up to a bound.
    pub fn channel_data(&mut self, now: Time, conn: PeerKey, bytes: &[u8]) {
        self.now = now;
        let Some(c) = self.conns.get_mut(conn) else {
            return;
        };
        if c.stage == Stage::Open {
            self.torrent.handle_peer_data(now, conn, bytes);
        } else if c.early.len() + bytes.len() <= EARLY_BYTES_LIMIT {
            c.early.extend_from_slice(bytes);
            return;
        } else {
            self.conns.remove(conn);
            self.outputs.push_back(Output::CloseConn { conn });
            self.event(NodeEvent::PeerGone {
                conn,
                reason: GoneReason::TooEarly,
            });
        }
        self.pump();
    }

    /// The channel's send buffer crossed its high-water mark (`true`) or
    /// drained below its low mark (`false`).
    pub fn send_blocked(&mut self, now: Time, conn: PeerKey, blocked: bool) {
        self.now = now;
        self.torrent.set_send_blocked(now, conn, blocked);
        self.pump();
    }

    /// The connection is gone: its channel closed, it failed, or applying a
    /// description failed. The shell has dropped it already.
    pub fn connection_closed(&mut self, now: Time, conn: PeerKey) {
        self.now = now;
        self.forget_conn(conn, GoneReason::Closed);
        self.pump();
    }

    // ---- the web seed ----

    /// More of request `id`'s body, in order.
    pub fn http_data(&mut self, now: Time, id: HttpId, bytes: &[u8]) {
        self.now = now;
        if let Some(Step::Data(fetch, bytes)) = self.http.data(now, id, bytes) {
            self.web_seed_delivered(fetch, bytes.len() as u64);
            self.torrent.handle_web_seed_data(now, fetch, &bytes);
        }
        self.pump();
    }

    /// Request `id`'s body ended (a short body counts as a failure).
    pub fn http_end(&mut self, now: Time, id: HttpId) {
        self.now = now;
        match self.http.end(now, id) {
            Some(Step::Next(id, request)) => {
                self.outputs.push_back(Output::HttpGet { id, request })
            }
            Some(Step::End(fetch)) => self.web_fetch_ended(fetch),
            Some(Step::Data(..)) | None => {}
        }
        self.pump();
    }

    /// Request `id` failed (HTTP status, network, timeout).
    pub fn http_failed(&mut self, now: Time, id: HttpId, error: String) {
        self.now = now;
        if let Some(fetch) = self.http.fail(id) {
            self.web_fetch_failed(fetch, error);
        }
        self.pump();
    }

    // ---- the rest ----

    /// The player has not started yet: the pieces holding the `bytes`
    /// after its playhead are due now, whatever its pace (it reads what it
    /// needs to start as fast as it comes). 0 once it plays.
    pub fn set_start_window(&mut self, now: Time, bytes: u64) {
        self.now = now;
        self.torrent.set_start_window(now, bytes);
        self.pump();
    }

    /// The player moved (or stopped: `None`).
    pub fn set_playback(&mut self, now: Time, playback: Option<Playback>) {
        self.now = now;
        self.torrent.set_playback(now, playback);
        self.pump();
    }

    /// What this peer may upload from now on: everything, a capped rate,
    /// or nothing (a fan on a metered link). It keeps announcing and
    /// downloading either way; see `engine/upload.rs`.
    pub fn set_upload(&mut self, now: Time, upload: Upload) {
        self.now = now;
        self.config.engine.upload = upload;
        self.torrent.set_upload(now, upload);
        self.pump();
    }

    /// What this peer may upload.
    pub fn upload(&self) -> Upload {
        self.config.engine.upload
    }

    /// The info dictionary from elsewhere (a magnet's `xs` fetched over
    /// HTTP): used if it hashes to the info hash and peers have not
    /// delivered theirs yet. Returns whether it was used.
    pub fn offer_metadata(&mut self, now: Time, info_bytes: &[u8]) -> bool {
        self.now = now;
        let used = self.torrent.offer_metadata(now, info_bytes);
        self.pump();
        used
    }

    /// A piece the shell already holds (a seeder's file); kept if it verifies.
    pub fn import_piece(&mut self, piece: u32, data: &[u8]) -> bool {
        let kept = self.torrent.import_piece(piece, data);
        self.pump();
        kept
    }

    /// The time asked for in [`Output::Timeout`] came (or any time later).
    pub fn handle_timeout(&mut self, now: Time) {
        self.now = now;
        self.torrent.handle_timeout(now);
        self.announcer.handle_timeout(now);
        let limit = self.config.tracker_connect_timeout;
        let late: Vec<TrackerIndex> = self
            .tracker_connects
            .iter()
            .filter(|(_, since)| now.since(**since) >= limit)
            .map(|(tracker, _)| *tracker)
            .collect();
        for tracker in late {
            self.tracker_connects.remove(&tracker);
            self.outputs.push_back(Output::CloseTracker { tracker });
            self.announcer.tracker_closed(now, tracker);
        }
        for conn in self.conns.overdue(now, &self.deadlines()) {
            if let Some(Stage::MakingOffer { offer }) = self.conns.get(conn).map(|c| &c.stage) {
                self.announcer.offer_failed(now, *offer);
            }
            self.conns.remove(conn);
            self.outputs.push_back(Output::CloseConn { conn });
        }
        let timeout = self.config.http_timeout;
        for id in self.http.stalled(now, timeout) {
            if let Some(fetch) = self.http.fail(id) {
                self.outputs.push_back(Output::CancelHttp { id });
                self.web_fetch_failed(fetch, format!("no data for {} s", timeout.as_secs()));
            }
        }
        self.pump();
    }

    /// Leave the swarm: `stopped` to every tracker, every connection and
    /// request closed. Nothing more happens afterwards.
    pub fn stop(&mut self, now: Time) {
        self.now = now;
        if self.stopped {
            return;
        }
        self.announcer.stop(now);
        self.pump();
        self.stopped = true;
        for id in self.http.ids() {
            self.outputs.push_back(Output::CancelHttp { id });
        }
        for conn in self.conns.clear() {
            self.outputs.push_back(Output::CloseConn { conn });
        }
    }

    /// The next thing to do; call until it returns [`Output::Timeout`].
    pub fn poll(&mut self) -> Output {
        if let Some(out) = self.outputs.pop_front() {
            return out;
        }
        let mut at = self.engine_wake.min(self.announce_wake);
        if let Some(deadline) = self.conns.next_deadline(&self.deadlines()) {
            at = at.min(deadline);
        }
        if let Some(until) = self.peers_coming_until {
            at = at.min(until);
        }
        if let Some(stall) = self.http.next_stall(self.config.http_timeout) {
            at = at.min(stall);
        }
        if let Some(since) = self.tracker_connects.values().min() {
            at = at.min(*since + self.config.tracker_connect_timeout);
        }
        if self.stopped {
            at = self.now + Duration::from_secs(3600);
        }
        Output::Timeout(at.max(self.now))
    }

    // ---- what the shell reads ----

    /// The swarm.
    pub fn info_hash(&self) -> InfoHash {
        self.torrent.info_hash()
    }

    /// Our peer id.
    pub fn peer_id(&self) -> PeerId {
        self.torrent.peer_id()
    }

    /// The torrent, once known (at once for a `.torrent`).
    pub fn metainfo(&self) -> Option<&Metainfo> {
        self.meta.as_ref()
    }

    /// The engine, fetching metadata or running.
    pub fn torrent(&self) -> &Joining {
        &self.torrent
    }

    /// Verified bytes of `piece`.
    pub fn piece(&self, piece: u32) -> Option<&[u8]> {
        self.torrent.piece(piece)
    }

    /// Where verified `piece` came from.
    pub fn piece_origin(&self, piece: u32) -> Option<PieceOrigin> {
        self.torrent.piece_origin(piece)
    }

    /// Every piece is verified.
    pub fn is_complete(&self) -> bool {
        self.torrent.is_complete()
    }

    /// Whether fans may be on their way: the tracker has not answered yet
    /// or named others in the swarm, and their offers or answers are
    /// still within `offer_grace`, or a connection is being made. `false`
    /// once the tracker said the swarm is only us, or once what it named
    /// came to nothing.
    pub fn fans_coming(&self) -> bool {
        self.peers_coming.is_none_or(|(coming, _)| coming)
    }

    /// Figures right now.
    pub fn stats(&self) -> NodeStats {
        NodeStats {
            engine: self.torrent.stats(),
            connections: self.conns.open(),
            connecting: self.conns.len() - self.conns.open(),
            download_rate: self.down.per_second(self.now),
            upload_rate: self.up.per_second(self.now),
        }
    }

    /// Each of the torrent's web seeds (its `url-list`, in order): bytes
    /// delivered, failures, and why it is no longer used; empty before the
    /// first fetch.
    pub fn web_seeds(&self) -> Vec<WebSeedStats> {
        self.web_seeds
            .as_ref()
            .map(WebSeeds::stats)
            .unwrap_or_default()
    }

    /// Engine invariants (`engine/PIECES.md`), for the simulator and fuzzing.
    pub fn check_invariants(&self) -> Result<(), String> {
        self.torrent.check_invariants()
    }

    // ---- inside ----

    fn deadlines(&self) -> Deadlines {
        Deadlines {
            setup: self.config.setup_timeout,
            connect: self.config.connect_timeout,
            offered: self.config.announce.offer_ttl + self.config.setup_timeout,
        }
    }

    fn event(&mut self, event: NodeEvent) {
        self.outputs.push_back(Output::Event(event));
    }

    /// Drains the engine and the tracker client into outputs until both
    /// only wait for a time; what one asks may feed the other.
    fn pump(&mut self) {
        if self.stopped {
            return;
        }
        loop {
            let mut busy = false;
            loop {
                match self.torrent.poll() {
                    EngineOutput::Timeout(t) => {
                        self.engine_wake = t;
                        break;
                    }
                    output => {
                        busy = true;
                        self.on_engine(output);
                    }
                }
            }
            if self.meta.is_none()
                && let Some(meta) = self.torrent.metainfo()
            {
                self.meta = Some(meta.clone());
                self.event(NodeEvent::MetadataReady);
                // A new engine: it has not heard it yet.
                self.peers_coming = None;
            }
            self.report_progress();
            busy |= self.tell_peers_coming();
            loop {
                match self.announcer.poll() {
                    Action::Timeout(t) => {
                        self.announce_wake = t;
                        break;
                    }
                    action => {
                        busy = true;
                        self.on_action(action);
                    }
                }
            }
            if !busy {
                return;
            }
        }
    }

    /// Tells the engine whether peers are on their way, when that changed.
    /// Returns whether it did (the engine may have more to say).
    fn tell_peers_coming(&mut self) -> bool {
        let (coming, until) = self.conns.peers_coming(
            self.now,
            self.started,
            self.config.offer_grace,
            self.swarm_others,
        );
        self.peers_coming_until = until;
        let crowd = self.swarm_others.unwrap_or(0);
        if self.peers_coming == Some((coming, crowd)) {
            return false;
        }
        self.peers_coming = Some((coming, crowd));
        self.torrent.set_peers_coming(self.now, coming, crowd);
        true
    }

    fn report_progress(&mut self) {
        let stats = self.torrent.stats();
        // Unknown while fetching metadata: announcing 0 would make us a seeder.
        let left = if !self.torrent.has_metadata() {
            None
        } else if self.torrent.is_complete() {
            Some(0)
        } else {
            let verified =
                u64::from(stats.verified_pieces) * u64::from(self.torrent.piece_length());
            Some(self.torrent.total_length().saturating_sub(verified).max(1))
        };
        self.announcer.set_progress(
            self.now,
            Progress {
                uploaded: stats.uploaded,
                downloaded: stats.from_peers + stats.from_web_seed,
                left,
            },
        );
        self.announcer
            .set_want_peers(self.conns.len() < self.config.max_connections);
    }

    fn on_engine(&mut self, output: EngineOutput) {
        match output {
            EngineOutput::Send { peer, data } => self
                .outputs
                .push_back(Output::SendPeer { conn: peer, data }),
            EngineOutput::Close { peer, reason } => {
                if self.conns.get(peer).is_some() {
                    self.outputs.push_back(Output::CloseConn { conn: peer });
                    self.forget_conn(peer, GoneReason::Peer(reason));
                }
            }
            EngineOutput::FetchWebSeed { id, offset, length } => {
                self.start_fetch(id, offset, length)
            }
            EngineOutput::Event(event) => {
                match &event {
                    Event::Downloaded { bytes, .. } => self.down.add(self.now, u64::from(*bytes)),
                    Event::Uploaded { bytes, .. } => self.up.add(self.now, u64::from(*bytes)),
                    Event::PieceVerified { piece } => {
                        self.piece_seed.remove(piece);
                        self.failed_seed.remove(piece);
                    }
                    Event::PieceFailed { piece } => {
                        // Blame goes to whoever sent these bytes, even if
                        // the engine names the culprit only once the piece
                        // verifies from another source.
                        if let Some(seed) = self.piece_seed.remove(piece) {
                            self.failed_seed.insert(*piece, seed);
                        }
                    }
                    _ => {}
                }
                let corrupt = match &event {
                    Event::WebSeedCorrupt { piece } => Some(*piece),
                    _ => None,
                };
                self.event(NodeEvent::Engine(event));
                if let Some(piece) = corrupt {
                    self.web_seed_corrupt(piece);
                }
            }
            EngineOutput::Timeout(_) => {}
        }
    }

    // ---- web seeds (see `webseeds.rs`) ----

    fn start_fetch(&mut self, fetch: FetchId, offset: u64, length: u32) {
        if self.web_seeds.is_none()
            && let Some(meta) = &self.meta
        {
            self.web_seeds = Some(WebSeeds::new(&meta.url_list, self.seed.rotate_left(29)));
        }
        let Some(seed) = self.web_seeds.as_mut().and_then(|w| w.pick(self.now)) else {
            self.torrent.handle_web_seed_error(self.now, fetch);
            return;
        };
        self.web_fetches.insert(
            fetch,
            WebFetch {
                offset,
                length: u64::from(length),
                delivered: 0,
                seed,
                tried: vec![seed],
            },
        );
        self.run_fetch(fetch);
    }

    /// Requests what fetch `fetch` still lacks from its current web seed.
    fn run_fetch(&mut self, fetch: FetchId) {
        let (Some(f), Some(meta), Some(seeds)) = (
            self.web_fetches.get(&fetch),
            &self.meta,
            self.web_seeds.as_mut(),
        ) else {
            return;
        };
        let plan = http::plan(
            &meta.info,
            seeds.url(f.seed),
            f.offset + f.delivered,
            f.length - f.delivered,
        );
        let seed = f.seed;
        match self.http.start(self.now, fetch, plan.into()) {
            Some((id, request)) => {
                seeds.started(seed);
                self.outputs.push_back(Output::HttpGet { id, request });
            }
            None => {
                // No URL for a file of it: as good as failed.
                seeds.started(seed);
                self.web_fetch_failed(fetch, "no URL for this part of the torrent".into());
            }
        }
    }

    /// Body bytes of `fetch` are in: counted for its seed, and the pieces
    /// they touch remembered as that seed's.
    fn web_seed_delivered(&mut self, fetch: FetchId, bytes: u64) {
        let Some(f) = self.web_fetches.get_mut(&fetch) else {
            return;
        };
        let at = f.offset + f.delivered;
        f.delivered += bytes;
        let seed = f.seed;
        if let Some(seeds) = self.web_seeds.as_mut() {
            seeds.delivered(seed, bytes);
        }
        let piece_length = u64::from(self.torrent.piece_length().max(1));
        if bytes > 0 {
            let (first, last) = (at / piece_length, (at + bytes - 1) / piece_length);
            for piece in first..=last {
                if let Ok(piece) = u32::try_from(piece) {
                    self.piece_seed.insert(piece, seed);
                }
            }
        }
    }

    /// The last request of `fetch` ended: whole, or short (a failure).
    fn web_fetch_ended(&mut self, fetch: FetchId) {
        let whole = self
            .web_fetches
            .get(&fetch)
            .is_some_and(|f| f.delivered >= f.length);
        if !whole {
            self.web_fetch_failed(fetch, "the body ended short".into());
            return;
        }
        if let (Some(f), Some(seeds)) = (self.web_fetches.remove(&fetch), self.web_seeds.as_mut()) {
            seeds.finished(self.now, f.seed, true);
        }
        self.torrent.handle_web_seed_end(self.now, fetch);
    }

    /// `fetch`'s request to its seed failed: the seed backs off, and the
    /// fetch goes on from another seed it has not tried, or is over.
    fn web_fetch_failed(&mut self, fetch: FetchId, error: String) {
        let now = self.now;
        let (Some(f), Some(seeds)) = (self.web_fetches.get_mut(&fetch), self.web_seeds.as_mut())
        else {
            self.torrent.handle_web_seed_error(now, fetch);
            return;
        };
        let url = seeds.url(f.seed).to_string();
        seeds.finished(now, f.seed, false);
        let other = seeds.pick_other(now, &f.tried);
        if let Some(other) = other {
            f.tried.push(other);
            f.seed = other;
        }
        self.event(NodeEvent::WebSeedFailed { url, error });
        if other.is_some() {
            self.run_fetch(fetch);
        } else {
            self.web_fetches.remove(&fetch);
            self.torrent.handle_web_seed_error(now, fetch);
        }
    }

    /// A piece from the web seed failed verification: the seed that sent
    /// it is dropped if another is left, and its fetches end (their bytes
    /// so far are suspect; the engine asks again, now elsewhere).
    fn web_seed_corrupt(&mut self, piece: u32) {
        let Some(seed) = self.failed_seed.get(&piece).copied() else {
            return;
        };
        let Some(seeds) = self.web_seeds.as_mut() else {
            return;
        };
        let Some((url, reason)) = seeds.corrupt(seed, piece) else {
            return;
        };
        self.event(NodeEvent::WebSeedDropped { url, reason });
        let cut: Vec<FetchId> = self
            .web_fetches
            .iter()
            .filter(|(_, f)| f.seed == seed)
            .map(|(id, _)| *id)
            .collect();
        for fetch in cut {
            for id in self.http.cancel_fetch(fetch) {
                self.outputs.push_back(Output::CancelHttp { id });
            }
            self.web_fetches.remove(&fetch);
            if let Some(seeds) = self.web_seeds.as_mut() {
                seeds.finished(self.now, seed, false);
            }
            self.torrent.handle_web_seed_error(self.now, fetch);
        }
        self.piece_seed.retain(|_, s| *s != seed);
    }

    fn on_action(&mut self, action: Action) {
        let now = self.now;
        match action {
            Action::Connect { tracker, url } => {
                self.tracker_connects.insert(tracker, now);
                self.outputs
                    .push_back(Output::ConnectTracker { tracker, url })
            }
            Action::Send { tracker, text } => self
                .outputs
                .push_back(Output::SendTracker { tracker, text }),
            Action::Disconnect { tracker } => {
                self.tracker_connects.remove(&tracker);
                self.outputs.push_back(Output::CloseTracker { tracker })
            }
            Action::CreateOffers { offers } => {
                for offer in offers {
                    if self.conns.len() >= self.config.max_connections {
                        self.announcer.offer_failed(now, offer);
                        continue;
                    }
                    let conn = self.conns.insert(now, Stage::MakingOffer { offer });
                    self.outputs.push_back(Output::CreateOffer { conn });
                }
            }
            Action::AcceptAnswer { offer, sdp, .. } => {
                if let Some(conn) = self.conns.by_offer(offer) {
                    self.conns.set_stage(conn, now, Stage::Connecting);
                    self.outputs.push_back(Output::AcceptAnswer { conn, sdp });
                }
            }
            Action::DropOffer { offer } => {
                if let Some(conn) = self.conns.by_offer(offer) {
                    self.conns.remove(conn);
                    self.outputs.push_back(Output::CloseConn { conn });
                }
            }
            Action::AnswerOffer {
                tracker,
                offer,
                peer,
                sdp,
            } => {
                if self.conns.len() < self.config.max_connections {
                    let stage = Stage::Answering {
                        tracker,
                        offer,
                        peer,
                    };
                    let conn = self.conns.insert(now, stage);
                    self.outputs.push_back(Output::AnswerOffer { conn, sdp });
                }
            }
            Action::Event(notice) => {
                if let TrackerNotice::Swarm {
                    complete,
                    incomplete,
                    ..
                } = notice
                {
                    // The counts include us.
                    self.swarm_others = Some((complete + incomplete).saturating_sub(1));
                }
                self.event(NodeEvent::Tracker(notice))
            }
            Action::Timeout(_) => {}
        }
    }

    /// Forgets a connection; if its channel had opened, the engine hears it
    /// is gone, and losing the last one brings the next announce forward.
    fn forget_conn(&mut self, conn: PeerKey, reason: GoneReason) {
        let Some(c) = self.conns.remove(conn) else {
            return;
        };
        if c.stage != Stage::Open {
            return;
        }
        if !matches!(reason, GoneReason::Peer(_)) {
            self.torrent.handle_peer_closed(self.now, conn);
        }
        self.event(NodeEvent::PeerGone { conn, reason });
        if !self.torrent.is_complete() && self.conns.open() == 0 {
            self.announcer.peers_lost(self.now);
        }
    }
}

#[cfg(test)]
mod album_tests;
#[cfg(test)]
mod tests;
