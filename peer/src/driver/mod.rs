//! The one task that owns a native peer's [`swarm::node::Node`].
//!
//! The node decides everything (what to announce, which connections to
//! make and when to give up on them, what to fetch from the web seed and
//! when to give up on that); the driver only opens the WebSockets,
//! `RTCPeerConnection`s and HTTP requests it asks for, and reports back
//! what happened — as `client-wasm`'s session does in the browser. Every
//! other task (tracker sockets, connection set-up, data-channel readers,
//! web-seed requests) holds only an [`Inbox`] and sends [`Report`]s; the
//! driver feeds each to the node with the time, then drains
//! [`Node::poll`] until it says "wake me at T" ([`outputs`]). No locks:
//! state has one owner.
//!
//! What is native alone stays here: the files on disk (verified pieces
//! written as they verify; a magnet's files opened once its metadata
//! arrives), the figures of [`PeerStats`], and fault injection.

mod outputs;

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use swarm::announce::TrackerIndex;
use swarm::engine::PeerKey;
use swarm::node::{HttpId, Node};
use swarm::time::Time;
use tokio::sync::{mpsc, watch};
use tokio::task::JoinHandle;

use crate::fault::Liar;
use crate::http::{BodyEvent, HttpClient};
use crate::rtc::{self, ConnEvent, ConnSink, Dc, Pc, RtcConfig, RtcError};
use crate::stats::PeerStats;
use crate::storage::Storage;
use crate::tracker_socket::SocketEvent;

/// Where every task of a peer reports.
pub(crate) type Inbox = mpsc::UnboundedSender<Report>;

/// Something that happened, reported to the driver.
pub(crate) enum Report {
    /// From a tracker socket; `generation` tells a replaced socket's
    /// reports from the current one's.
    Socket {
        tracker: TrackerIndex,
        generation: u64,
        event: SocketEvent,
    },
    /// From a connection or its data channel.
    Conn { conn: PeerKey, event: ConnEvent },
    /// The offer asked for is complete (or could not be made).
    OfferMade {
        conn: PeerKey,
        result: Result<(Pc, Dc, String), RtcError>,
    },
    /// The answer asked for is complete (or could not be made).
    AnswerMade {
        conn: PeerKey,
        result: Result<(Pc, String), RtcError>,
    },
    /// From a web-seed request.
    Http { id: HttpId, event: BodyEvent },
    /// New ICE servers (renewed TURN credentials) for connections made
    /// from now on.
    Ice {
        servers: Vec<rtc::IceServer>,
        relay_only: bool,
    },
    /// Leave the swarm and end.
    Stop,
}

/// Where the torrent's files are.
pub(crate) enum Files {
    /// Open: verified pieces are written here.
    Open(Storage),
    /// A magnet's: opened under this directory, by the torrent's name, once
    /// the metadata arrives.
    Pending(PathBuf),
    /// They could not be opened (the error is in the figures).
    Failed,
}

/// A running driver, as its owner holds it.
pub(crate) struct Running {
    pub inbox: Inbox,
    pub stats: watch::Receiver<PeerStats>,
    pub task: JoinHandle<()>,
}

/// The node's owner. See the module documentation.
pub(crate) struct Driver {
    node: Node,
    /// Time zero of the node's clock.
    start: Instant,
    inbox: Inbox,
    rtc: Arc<RtcConfig>,
    http: HttpClient,
    trackers: BTreeMap<TrackerIndex, TrackerLink>,
    next_generation: u64,
    conns: BTreeMap<PeerKey, Conn>,
    requests: BTreeMap<HttpId, JoinHandle<()>>,
    files: Files,
    /// The figures as of the last drain; published when they change.
    figures: PeerStats,
    stats: watch::Sender<PeerStats>,
    corrupt_uploads: bool,
    /// Whom `wss://` trackers must prove to be.
    tls: Arc<rustls::ClientConfig>,
}

/// A tracker socket the node asked for.
struct TrackerLink {
    generation: u64,
    /// Set once the socket is up.
    sender: Option<mpsc::UnboundedSender<String>>,
    task: JoinHandle<()>,
}

impl TrackerLink {
    /// Lets go of the socket: one that is up sends what is queued (the
    /// `stopped` announce), then a close frame; a connect still under way
    /// (the node gave up on it) is abandoned.
    fn close(self) {
        if self.sender.is_none() {
            self.task.abort();
        }
    }
}

/// A connection the node asked for, from the moment it is being made.
struct Conn {
    pc: Option<Pc>,
    /// Takes the bytes for the data channel once it exists.
    writer: Option<mpsc::UnboundedSender<Vec<u8>>>,
    /// Fault injection: corrupts what we serve on this connection.
    liar: Option<Liar>,
}

impl Conn {
    /// Closes the connection; dropping the writer closes the channel.
    fn close(self) {
        if let Some(pc) = self.pc {
            rtc::close(pc);
        }
    }
}

impl Driver {
    /// Starts the driver task of `node`, whose time zero was `start`.
    /// `figures` holds what the node cannot know (imported pieces, target).
    pub(crate) fn spawn(
        node: Node,
        start: Instant,
        files: Files,
        figures: PeerStats,
        rtc: RtcConfig,
        corrupt_uploads: bool,
        tls: Arc<rustls::ClientConfig>,
    ) -> Running {
        let (inbox, rx) = mpsc::unbounded_channel();
        let (stats_tx, stats) = watch::channel(PeerStats::default());
        let mut driver = Driver {
            node,
            start,
            inbox: inbox.clone(),
            rtc: Arc::new(rtc),
            http: HttpClient::new(Arc::clone(&tls)),
            tls,
            trackers: BTreeMap::new(),
            next_generation: 0,
            conns: BTreeMap::new(),
            requests: BTreeMap::new(),
            files,
            figures,
            stats: stats_tx,
            corrupt_uploads,
        };
        // Published before the task runs: a caller reads `done` at once.
        driver.publish();
        let task = tokio::spawn(driver.run(rx));
        Running { inbox, stats, task }
    }

    /// Runs until [`Report::Stop`], then leaves the swarm: `stopped` to the
    /// trackers, every connection and request closed.
    async fn run(mut self, mut rx: mpsc::UnboundedReceiver<Report>) {
        let mut wake = self.drain();
        loop {
            // At least a millisecond ahead, so a wake in the past cannot spin.
            let at = self
                .instant(wake)
                .max(Instant::now() + Duration::from_millis(1));
            tokio::select! {
                report = rx.recv() => match report {
                    // The driver holds a sender itself, so `None` cannot
                    // come; `Stop` is how it ends.
                    None | Some(Report::Stop) => break,
                    Some(report) => self.handle(report),
                },
                _ = tokio::time::sleep_until(at.into()) => {
                    let now = self.now();
                    self.node.handle_timeout(now);
                }
            }
            wake = self.drain();
        }
        let now = self.now();
        self.node.stop(now);
        self.drain();
        for (_, conn) in std::mem::take(&mut self.conns) {
            conn.close();
        }
        for (_, request) in std::mem::take(&mut self.requests) {
            request.abort();
        }
        for (_, link) in std::mem::take(&mut self.trackers) {
            link.close();
        }
    }

    /// The node's time now.
    fn now(&self) -> Time {
        Time::from_millis(self.start.elapsed().as_millis() as u64)
    }

    fn instant(&self, time: Time) -> Instant {
        self.start + Duration::from_millis(time.as_millis())
    }

    /// Feeds one report to the node (drained by the caller).
    fn handle(&mut self, report: Report) {
        let now = self.now();
        match report {
            Report::Socket {
                tracker,
                generation,
                event,
            } => self.on_socket(now, tracker, generation, event),
            Report::Conn { conn, event } => self.on_conn(now, conn, event),
            Report::OfferMade { conn, result } => match (self.conns.get_mut(&conn), result) {
                (Some(c), Ok((pc, dc, sdp))) => {
                    c.pc = Some(pc);
                    c.writer = Some(rtc::start_channel(conn, dc, conn_sink(&self.inbox)));
                    self.node.offer_made(now, conn, Ok(sdp));
                }
                // The node gave up on it while it was being made.
                (None, Ok((pc, _, _))) => rtc::close(pc),
                (_, Err(e)) => {
                    tracing::debug!(%e, "could not make an offer");
                    self.conns.remove(&conn);
                    self.node.offer_made(now, conn, Err(e.to_string()));
                }
            },
            Report::AnswerMade { conn, result } => match (self.conns.get_mut(&conn), result) {
                (Some(c), Ok((pc, sdp))) => {
                    c.pc = Some(pc);
                    self.node.answer_made(now, conn, Ok(sdp));
                }
                (None, Ok((pc, _))) => rtc::close(pc),
                (_, Err(e)) => {
                    tracing::debug!(%e, "could not answer an offer");
                    self.conns.remove(&conn);
                    self.node.answer_made(now, conn, Err(e.to_string()));
                }
            },
            Report::Http { id, event } => match event {
                BodyEvent::Chunk(bytes) => self.node.http_data(now, id, &bytes),
                BodyEvent::End => {
                    self.requests.remove(&id);
                    self.node.http_end(now, id);
                }
                BodyEvent::Failed(error) => {
                    self.requests.remove(&id);
                    self.node.http_failed(now, id, error);
                }
            },
            Report::Ice {
                servers,
                relay_only,
            } => {
                let mut config = (*self.rtc).clone();
                config.ice_servers = servers;
                config.relay_only = relay_only;
                self.rtc = Arc::new(config);
            }
            Report::Stop => {}
        }
    }

    fn on_socket(&mut self, now: Time, tracker: TrackerIndex, generation: u64, event: SocketEvent) {
        let Some(link) = self
            .trackers
            .get_mut(&tracker)
            .filter(|l| l.generation == generation)
        else {
            // A socket the node closed or replaced: an `Up`'s sender is
            // dropped here, which closes it.
            return;
        };
        match event {
            SocketEvent::Up(sender) => {
                link.sender = Some(sender);
                self.node.tracker_opened(now, tracker);
            }
            SocketEvent::Text(text) => self.node.tracker_message(now, tracker, &text),
            SocketEvent::Down => {
                self.trackers.remove(&tracker);
                self.node.tracker_closed(now, tracker);
            }
        }
    }

    fn on_conn(&mut self, now: Time, conn: PeerKey, event: ConnEvent) {
        match event {
            ConnEvent::Channel(dc) => match self.conns.get_mut(&conn) {
                Some(c) if c.writer.is_none() => {
                    c.writer = Some(rtc::start_channel(conn, dc, conn_sink(&self.inbox)));
                }
                // A second channel, or one for a connection we gave up on.
                _ => rtc::close_channel(dc),
            },
            ConnEvent::Open => self.node.channel_open(now, conn),
            ConnEvent::Data(bytes) => self.node.channel_data(now, conn, &bytes),
            ConnEvent::SendBlocked(blocked) => self.node.send_blocked(now, conn, blocked),
            ConnEvent::Gone => {
                // The channel's close and the connection's failure both
                // come: count the loss once.
                if let Some(c) = self.conns.remove(&conn) {
                    c.close();
                    self.node.connection_closed(now, conn);
                }
            }
        }
    }

    /// Publishes the figures if they changed.
    fn publish(&mut self) {
        let node = self.node.stats();
        let engine = &node.engine;
        let f = &mut self.figures;
        f.peer_id = Some(self.node.peer_id());
        f.verified_pieces = engine.verified_pieces;
        f.total_pieces = engine.total_pieces;
        f.from_peers = engine.from_peers;
        f.from_web_seed = engine.from_web_seed;
        f.wasted = engine.wasted;
        f.uploaded = engine.uploaded;
        f.peers = engine.peers;
        f.connections = node.connections;
        f.download_rate = node.download_rate;
        f.upload_rate = node.upload_rate;
        f.web_seeds = self.node.web_seeds();
        // Verified pieces are written as they verify, before this runs.
        // With files selected (`--file`), done is theirs being complete.
        f.done = f.done || self.node.selection_complete();
        let figures = &self.figures;
        self.stats.send_if_modified(|s| {
            let changed = s != figures;
            if changed {
                s.clone_from(figures);
            }
            changed
        });
    }
}

/// Where a connection's tasks report.
fn conn_sink(inbox: &Inbox) -> ConnSink {
    let inbox = inbox.clone();
    Arc::new(move |conn, event| inbox.send(Report::Conn { conn, event }).is_ok())
}
