//! The one task that owns a torrent's engine and its tracker client.
//!
//! Every other task of the native peer (data-channel readers, connection
//! set-up, tracker sockets, web-seed fetches) only reports to this task's
//! inbox. The driver feeds each report to `swarm::engine::Torrent` or
//! `swarm::announce::Announcer` with the current time, then drains both
//! until they say "wake me at T" — exactly as the simulator drives them —
//! and turns what they asked for into I/O on other tasks. No locks: state
//! has one owner.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::BytesMut;
use swarm::PeerId;
use swarm::announce::{Action, Announcer, Progress, TrackerIndex, TrackerNotice};
use swarm::engine::{Event, FetchId, Output, PeerKey, Source};
use swarm::join::Joining;
use swarm::metainfo::Info;
use swarm::time::Time;
use swarm::tracker::OfferId;
use tokio::sync::{mpsc, watch};

use super::fault::Liar;
use super::http::{HttpClient, HttpError};
use super::rtc::{self, Dc, Pc, RtcConfig, RtcError};
use super::storage::Storage;
use super::{PeerStats, tracker_socket};

/// Where every task of this peer reports.
pub(super) type Inbox = mpsc::UnboundedSender<Input>;

/// A connection whose channel has not opened this long after it was made
/// (and that is not an offer still waiting for its answer) is given up.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(30);
/// An offer connection left unanswered this long is closed even if the
/// announcer never dropped it (it gave up on it while it was being made).
const OFFER_TIMEOUT: Duration = Duration::from_secs(90);

/// Something that happened, reported to the driver.
pub(super) enum Input {
    /// A data channel opened: the engine handshakes at once.
    Open { key: PeerKey },
    /// Bytes arrived on a channel.
    Data { key: PeerKey, bytes: BytesMut },
    /// A channel's send buffer crossed a watermark.
    SendBlocked { key: PeerKey, blocked: bool },
    /// A channel closed or its connection failed.
    Gone { key: PeerKey },
    /// The remote created a data channel on a connection we answered.
    Channel { key: PeerKey, dc: Dc },
    /// An offer we were asked for is complete (or failed).
    OfferMade {
        key: PeerKey,
        offer: OfferId,
        result: Result<(Pc, Dc, String), RtcError>,
    },
    /// Our answer to a relayed offer is complete (or failed).
    AnswerMade {
        key: PeerKey,
        tracker: TrackerIndex,
        offer: OfferId,
        peer: PeerId,
        result: Result<(Pc, String), RtcError>,
    },
    /// A tracker socket connected.
    TrackerUp {
        tracker: TrackerIndex,
        generation: u64,
        sender: mpsc::UnboundedSender<String>,
    },
    /// A tracker sent a frame.
    TrackerText {
        tracker: TrackerIndex,
        generation: u64,
        text: String,
    },
    /// A tracker socket ended.
    TrackerDown {
        tracker: TrackerIndex,
        generation: u64,
    },
    /// A web-seed fetch finished.
    WebSeed {
        id: FetchId,
        result: Result<Vec<u8>, HttpError>,
    },
    /// Leave the swarm and end.
    Stop,
}

/// One remote peer, from the moment we start making its connection.
struct Conn {
    pc: Option<Pc>,
    writer: Option<mpsc::UnboundedSender<Vec<u8>>>,
    open: bool,
    since: Instant,
    /// Our offer this connection was made for, while it waits for an answer.
    offer: Option<OfferId>,
    /// Fault injection: corrupts what we serve on this connection.
    liar: Option<Liar>,
}

/// A tracker socket the driver knows of.
#[derive(Default)]
struct TrackerLink {
    generation: u64,
    sender: Option<mpsc::UnboundedSender<String>>,
}

/// The engine's owner. See the module documentation.
pub(super) struct Driver {
    pub(super) engine: Joining,
    pub(super) announcer: Announcer,
    /// The files; `None` while a magnet's metadata is being fetched.
    pub(super) storage: Option<Storage>,
    /// The torrent's layout; `None` while a magnet's metadata is being fetched.
    pub(super) info: Option<Arc<Info>>,
    pub(super) web_seed: Option<String>,
    /// For a magnet: where the files go once the metadata is known, and
    /// whether to use its `ws` web seeds.
    pub(super) magnet_out: Option<(PathBuf, bool)>,
    pub(super) http: HttpClient,
    pub(super) rtc: Arc<RtcConfig>,
    pub(super) inbox: Inbox,
    pub(super) stats: watch::Sender<PeerStats>,
    pub(super) max_peers: usize,
    pub(super) start: Instant,
    conns: HashMap<PeerKey, Conn>,
    offers: HashMap<OfferId, PeerKey>,
    trackers: Vec<TrackerLink>,
    next_key: u64,
    next_generation: u64,
    engine_wake: Time,
    announcer_wake: Time,
    corrupt_uploads: bool,
}

impl Driver {
    /// A driver for an engine and announcer built at `start`.
    #[allow(clippy::too_many_arguments)]
    pub(super) fn new(
        engine: Joining,
        announcer: Announcer,
        storage: Option<Storage>,
        info: Option<Arc<Info>>,
        web_seed: Option<String>,
        rtc: Arc<RtcConfig>,
        inbox: Inbox,
        stats: watch::Sender<PeerStats>,
        max_peers: usize,
        start: Instant,
    ) -> Self {
        Driver {
            engine,
            announcer,
            storage,
            info,
            web_seed,
            magnet_out: None,
            http: HttpClient::default(),
            rtc,
            inbox,
            stats,
            max_peers,
            start,
            conns: HashMap::new(),
            offers: HashMap::new(),
            trackers: Vec::new(),
            next_key: 0,
            next_generation: 0,
            engine_wake: Time::from_millis(0),
            announcer_wake: Time::from_millis(0),
            corrupt_uploads: false,
        }
    }

    /// A magnet join: once the metadata is in, the files are made under
    /// `out` (and the magnet's `ws` web seeds used if `web_seed`).
    pub(super) fn magnet_target(mut self, out: PathBuf, web_seed: bool) -> Self {
        self.magnet_out = Some((out, web_seed));
        self
    }

    /// Fault injection: serve corrupt blocks (see `fault.rs`).
    pub(super) fn corrupting_uploads(mut self, corrupt: bool) -> Self {
        self.corrupt_uploads = corrupt;
        self
    }

    /// Runs until [`Input::Stop`] (or every sender is gone), then leaves the
    /// swarm: `stopped` to the trackers, every connection closed.
    pub(super) async fn run(mut self, mut rx: mpsc::UnboundedReceiver<Input>) {
        self.drain();
        let mut sweep = tokio::time::interval(Duration::from_secs(1));
        loop {
            // At least a millisecond ahead, so a wake in the past cannot spin.
            let wake = self
                .instant(self.engine_wake.min(self.announcer_wake))
                .max(Instant::now() + Duration::from_millis(1));
            tokio::select! {
                input = rx.recv() => match input {
                    None | Some(Input::Stop) => break,
                    Some(input) => self.handle(input),
                },
                _ = tokio::time::sleep_until(wake.into()) => {
                    let now = self.now();
                    self.engine.handle_timeout(now);
                    self.announcer.handle_timeout(now);
                }
                _ = sweep.tick() => self.sweep(),
            }
            self.drain();
        }
        let now = self.now();
        self.announcer.stop(now);
        self.drain();
        for (_, conn) in self.conns.drain() {
            if let Some(pc) = conn.pc {
                rtc::close(pc);
            }
        }
        // Dropping the tracker senders lets each socket send `stopped`, then close.
        self.trackers.clear();
    }

    fn now(&self) -> Time {
        Time::from_millis(self.start.elapsed().as_millis() as u64)
    }

    fn instant(&self, time: Time) -> Instant {
        self.start + Duration::from_millis(time.as_millis())
    }

    fn new_key(&mut self) -> PeerKey {
        self.next_key += 1;
        PeerKey(self.next_key)
    }

    fn handle(&mut self, input: Input) {
        let now = self.now();
        match input {
            Input::Open { key } => {
                if let Some(conn) = self.conns.get_mut(&key) {
                    if conn.writer.is_some() && !conn.open {
                        conn.open = true;
                        self.engine.add_peer(now, key);
                    }
                }
            }
            Input::Data { key, bytes } => {
                if self.conns.get(&key).is_some_and(|c| c.open) {
                    self.engine.handle_peer_data(now, key, &bytes);
                }
            }
            Input::SendBlocked { key, blocked } => {
                tracing::trace!(?key, blocked, "send buffer watermark");
                self.engine.set_send_blocked(now, key, blocked);
            }
            Input::Gone { key } => self.drop_conn(key, true),
            Input::Channel { key, dc } => match self.conns.get_mut(&key) {
                Some(conn) if conn.writer.is_none() => {
                    conn.writer = Some(rtc::start_channel(key, dc, self.inbox.clone()));
                }
                // A second channel, or one for a connection we gave up on.
                _ => {
                    tokio::spawn(async move {
                        let _ = dc.close().await;
                    });
                }
            },
            Input::OfferMade { key, offer, result } => self.offer_made(now, key, offer, result),
            Input::AnswerMade {
                key,
                tracker,
                offer,
                peer,
                result,
            } => match (self.conns.get_mut(&key), result) {
                (Some(conn), Ok((pc, sdp))) => {
                    conn.pc = Some(pc);
                    self.announcer.answer_ready(now, tracker, offer, peer, sdp);
                }
                (None, Ok((pc, _))) => rtc::close(pc),
                (_, Err(e)) => {
                    tracing::debug!(%e, "could not answer an offer");
                    self.conns.remove(&key);
                }
            },
            Input::TrackerUp {
                tracker,
                generation,
                sender,
            } => {
                if let Some(link) = self.link(tracker, generation) {
                    link.sender = Some(sender);
                    self.announcer.tracker_connected(now, tracker);
                }
            }
            Input::TrackerText {
                tracker,
                generation,
                text,
            } => {
                if self.link(tracker, generation).is_some() {
                    self.announcer.handle_message(now, tracker, &text);
                }
            }
            Input::TrackerDown {
                tracker,
                generation,
            } => {
                if let Some(link) = self.link(tracker, generation) {
                    link.sender = None;
                    self.announcer.tracker_closed(now, tracker);
                }
            }
            Input::WebSeed { id, result } => match result {
                Ok(data) => {
                    tracing::trace!(?id, bytes = data.len(), "web seed data");
                    self.engine.handle_web_seed_data(now, id, &data)
                }
                Err(e) => {
                    tracing::warn!(%e, "web seed fetch failed");
                    self.engine.handle_web_seed_error(now, id);
                }
            },
            Input::Stop => {}
        }
    }

    fn offer_made(
        &mut self,
        now: Time,
        key: PeerKey,
        offer: OfferId,
        result: Result<(Pc, Dc, String), RtcError>,
    ) {
        match (self.conns.get_mut(&key), result) {
            (Some(conn), Ok((pc, dc, sdp))) => {
                conn.pc = Some(pc);
                conn.offer = Some(offer);
                conn.writer = Some(rtc::start_channel(key, dc, self.inbox.clone()));
                self.offers.insert(offer, key);
                self.announcer.offer_ready(now, offer, sdp);
            }
            // Dropped while it was being made (the announcer gave up on it).
            (None, Ok((pc, _, _))) => rtc::close(pc),
            (_, Err(e)) => {
                tracing::debug!(%e, "could not make an offer");
                self.conns.remove(&key);
                self.announcer.offer_failed(now, offer);
            }
        }
    }

    /// The link of a tracker socket, if `generation` is its current socket.
    fn link(&mut self, tracker: TrackerIndex, generation: u64) -> Option<&mut TrackerLink> {
        self.trackers
            .get_mut(tracker.0)
            .filter(|l| l.generation == generation)
    }

    /// Forgets a connection and closes it; tells the engine if it knew it.
    fn drop_conn(&mut self, key: PeerKey, tell_engine: bool) {
        let Some(conn) = self.conns.remove(&key) else {
            return;
        };
        if let Some(offer) = conn.offer {
            self.offers.remove(&offer);
        }
        if conn.open && tell_engine {
            self.engine.handle_peer_closed(self.now(), key);
        }
        if let Some(pc) = conn.pc {
            rtc::close(pc);
        }
        // The last open connection went: look for peers again soon rather
        // than after the tracker's interval (see `Announcer::peers_lost`).
        if conn.open && !self.engine.is_complete() && !self.conns.values().any(|c| c.open) {
            let now = self.now();
            self.announcer.peers_lost(now);
        }
    }

    /// Gives up on connections that never opened.
    fn sweep(&mut self) {
        let stale: Vec<PeerKey> = self
            .conns
            .iter()
            .filter(|(_, c)| {
                // An offer waits for its answer as long as the announcer
                // keeps it (then DropOffer); this catches ones it forgot.
                let limit = if c.offer.is_some() {
                    OFFER_TIMEOUT
                } else {
                    CONNECT_TIMEOUT
                };
                !c.open && c.since.elapsed() > limit
            })
            .map(|(k, _)| *k)
            .collect();
        for key in stale {
            self.drop_conn(key, false);
        }
    }

    /// Drains the engine, then the announcer, until both wait for a time.
    fn drain(&mut self) {
        self.open_files_once_known();
        loop {
            match self.engine.poll() {
                Output::Timeout(t) => {
                    self.engine_wake = t;
                    break;
                }
                output => self.engine_output(output),
            }
        }
        let now = self.now();
        let stats = self.engine.stats();
        let piece_length = u64::from(self.engine.piece_length());
        // Unknown until the metadata is: announcing 0 would make us a seeder.
        let left = if !self.engine.has_metadata() {
            None
        } else if self.engine.is_complete() {
            Some(0)
        } else {
            Some(
                self.engine
                    .total_length()
                    .saturating_sub(u64::from(stats.verified_pieces) * piece_length),
            )
        };
        self.announcer.set_progress(
            now,
            Progress {
                uploaded: stats.uploaded,
                downloaded: stats.from_peers + stats.from_web_seed,
                left,
            },
        );
        self.announcer
            .set_want_peers(self.conns.len() < self.max_peers);
        loop {
            match self.announcer.poll() {
                Action::Timeout(t) => {
                    self.announcer_wake = t;
                    break;
                }
                action => self.announcer_action(action),
            }
        }
        let open = self.conns.values().filter(|c| c.open).count();
        let complete = self.engine.is_complete();
        self.stats.send_modify(|s| {
            s.verified_pieces = stats.verified_pieces;
            s.total_pieces = stats.total_pieces;
            s.from_peers = stats.from_peers;
            s.from_web_seed = stats.from_web_seed;
            s.uploaded = stats.uploaded;
            s.wasted = stats.wasted;
            s.peers = stats.peers;
            s.connections = open;
            s.done = s.done || complete;
        });
    }

    fn engine_output(&mut self, output: Output) {
        match output {
            Output::Send { peer, data } => {
                let Some(conn) = self.conns.get_mut(&peer) else {
                    return;
                };
                let data = match conn.liar.as_mut() {
                    Some(liar) => liar.corrupt(&data),
                    None => data,
                };
                if let Some(writer) = conn.writer.as_ref() {
                    let _ = writer.send(data);
                }
            }
            Output::Close { peer, reason } => {
                tracing::debug!(%reason, "closing a peer");
                self.drop_conn(peer, false);
            }
            Output::FetchWebSeed { id, offset, length } => {
                tracing::trace!(?id, offset, length, "web seed fetch");
                let (Some(base), Some(info)) = (self.web_seed.clone(), self.info.clone()) else {
                    self.engine.handle_web_seed_error(self.now(), id);
                    return;
                };
                let (http, inbox) = (self.http.clone(), self.inbox.clone());
                tokio::spawn(async move {
                    let result = http.web_seed_range(&info, &base, offset, length).await;
                    let _ = inbox.send(Input::WebSeed { id, result });
                });
            }
            Output::Event(event) => self.engine_event(event),
            Output::Timeout(_) => {}
        }
    }

    fn engine_event(&mut self, event: Event) {
        match event {
            Event::PieceVerified { piece } => {
                let (Some(data), Some(storage)) = (self.engine.piece(piece), self.storage.as_ref())
                else {
                    return;
                };
                // A page-cache write of one piece: short enough to do inline.
                if let Err(e) = storage.write_piece(piece, data) {
                    tracing::error!(%e, piece, "cannot write a verified piece");
                    self.stats
                        .send_modify(|s| s.storage_error = Some(e.to_string()));
                }
            }
            Event::Downloaded {
                source: Source::Peer(id),
                bytes,
            } => self.stats.send_modify(|s| {
                *s.received_from.entry(id).or_default() += u64::from(bytes);
            }),
            Event::PeerBanned { id } => {
                tracing::warn!(peer = %id, "banned a peer for corrupt data");
                self.stats.send_modify(|s| s.banned.push(id));
            }
            Event::WebSeedCorrupt { piece } => {
                tracing::warn!(piece, "the web seed sent a piece that does not verify");
            }
            Event::PieceFailed { piece } => tracing::debug!(piece, "piece failed its hash check"),
            Event::MetadataWaiting {
                waited,
                peers,
                offering,
            } => tracing::warn!("{}", swarm::join::waiting_message(waited, peers, offering)),
            // `done` is published with the counters at the end of `drain`,
            // so whoever waits for it reads final totals.
            Event::Done => tracing::info!(peer = %self.engine.peer_id(), "download complete"),
            _ => {}
        }
    }

    /// A magnet's metadata just arrived: open the files, take the web seed.
    fn open_files_once_known(&mut self) {
        if self.storage.is_some() {
            return;
        }
        if self.magnet_out.is_none() || !self.engine.has_metadata() {
            return;
        }
        let (Some((out, use_web_seed)), Some(meta)) =
            (self.magnet_out.take(), self.engine.metainfo())
        else {
            return;
        };
        let target = out.join(&meta.info.name);
        tracing::info!(
            name = %meta.info.name,
            pieces = meta.info.piece_count(),
            bytes = meta.info.total_length(),
            "metadata received from peers"
        );
        match Storage::new(&meta.info, &target) {
            Ok(storage) => self.storage = Some(storage),
            Err(e) => {
                tracing::error!(%e, "cannot open the files of a magnet download");
                self.stats
                    .send_modify(|s| s.storage_error = Some(e.to_string()));
            }
        }
        if use_web_seed {
            self.web_seed = meta.url_list.first().cloned();
        }
        self.info = Some(Arc::new(meta.info.clone()));
        self.stats.send_modify(|s| s.target = Some(target));
    }

    fn announcer_action(&mut self, action: Action) {
        match action {
            Action::Connect { tracker, url } => {
                self.next_generation += 1;
                let generation = self.next_generation;
                if self.trackers.len() <= tracker.0 {
                    self.trackers
                        .resize_with(tracker.0 + 1, TrackerLink::default);
                }
                if let Some(link) = self.trackers.get_mut(tracker.0) {
                    *link = TrackerLink {
                        generation,
                        sender: None,
                    };
                }
                tracker_socket::spawn(tracker, generation, url, self.inbox.clone());
            }
            Action::Send { tracker, text } => {
                let sender = self.trackers.get(tracker.0).and_then(|l| l.sender.as_ref());
                if let Some(sender) = sender {
                    let _ = sender.send(text);
                }
            }
            Action::Disconnect { tracker } => {
                if let Some(link) = self.trackers.get_mut(tracker.0) {
                    link.sender = None;
                }
            }
            Action::CreateOffers { offers } => {
                for offer in offers {
                    let key = self.new_key();
                    self.conns.insert(key, self.fresh_conn());
                    let (rtc, inbox) = (self.rtc.clone(), self.inbox.clone());
                    tokio::spawn(async move {
                        let result = rtc::make_offer(&rtc, key, inbox.clone()).await;
                        let _ = inbox.send(Input::OfferMade { key, offer, result });
                    });
                }
            }
            Action::AcceptAnswer { offer, peer, sdp } => {
                let Some(key) = self.offers.remove(&offer) else {
                    return;
                };
                let Some(conn) = self.conns.get_mut(&key) else {
                    return;
                };
                tracing::debug!(remote = %peer, "answer received");
                // Answered: from now on the connect timeout applies.
                conn.offer = None;
                conn.since = Instant::now();
                if let Some(pc) = conn.pc.clone() {
                    let inbox = self.inbox.clone();
                    tokio::spawn(async move {
                        if let Err(e) = rtc::accept_answer(&pc, sdp).await {
                            tracing::debug!(%e, "bad answer");
                            let _ = inbox.send(Input::Gone { key });
                        }
                    });
                }
            }
            Action::DropOffer { offer } => {
                if let Some(key) = self.offers.remove(&offer) {
                    self.drop_conn(key, false);
                }
            }
            Action::AnswerOffer {
                tracker,
                offer,
                peer,
                sdp,
            } => {
                if self.conns.len() >= self.max_peers {
                    return;
                }
                let key = self.new_key();
                self.conns.insert(key, self.fresh_conn());
                let (rtc, inbox) = (self.rtc.clone(), self.inbox.clone());
                tokio::spawn(async move {
                    let result = rtc::make_answer(&rtc, key, inbox.clone(), sdp).await;
                    let _ = inbox.send(Input::AnswerMade {
                        key,
                        tracker,
                        offer,
                        peer,
                        result,
                    });
                });
            }
            Action::Event(notice) => match notice {
                TrackerNotice::Swarm {
                    complete,
                    incomplete,
                    ..
                } => tracing::debug!(complete, incomplete, "tracker replied"),
                TrackerNotice::Failure { reason, .. } => {
                    tracing::warn!(%reason, "tracker refused an announce")
                }
                TrackerNotice::BadMessage { error, .. } => {
                    tracing::debug!(%error, "unreadable tracker message")
                }
            },
            Action::Timeout(_) => {}
        }
    }

    fn fresh_conn(&self) -> Conn {
        Conn {
            pc: None,
            writer: None,
            open: false,
            since: Instant::now(),
            offer: None,
            liar: self.corrupt_uploads.then(Liar::new),
        }
    }
}
