//! The WebTorrent tracker client as a state machine: told the time, given a
//! seed, it says what to send to which tracker and which WebRTC offers and
//! answers to make. The browser shell and the native peer drive the same one.
//!
//! A shell owns one [`Announcer`] per torrent and calls
//! - [`Announcer::tracker_connected`] / [`Announcer::tracker_closed`] as each
//!   tracker's WebSocket opens and goes away,
//! - [`Announcer::handle_message`] with each text frame a tracker sends,
//! - [`Announcer::offer_ready`] / [`Announcer::offer_failed`] once an offer it
//!   was asked to create has gathered its ICE candidates (or could not),
//! - [`Announcer::answer_ready`] once an answer to a relayed offer is complete,
//! - [`Announcer::set_progress`] as bytes move, [`Announcer::set_want_peers`]
//!   as the peer count crosses the cap, [`Announcer::stop`] when leaving,
//! - [`Announcer::handle_timeout`] when the time it asked for comes,
//!
//! and after each call drains [`Announcer::poll`] until [`Action::Timeout`].
//!
//! The protocol is WebTorrent's exactly (INTEROP.md): one announce carries a
//! handful of complete (non-trickle) offers; the tracker relays each to a
//! different peer and routes each answer back by `offer_id`. An offer waits
//! [`AnnounceConfig::offer_ttl`] for its answer, then its connection is
//! dropped. A tracker that goes away is reconnected with exponential back-off
//! plus jitter drawn from the seed, so a crowd does not reconnect in step.

mod flow;
mod state;

use std::collections::VecDeque;
use std::time::Duration;

use crate::ids::{InfoHash, PeerId};
use crate::sorted::SortedMap;
use crate::time::Time;
use crate::tracker::{
    AnnounceEvent, AnnounceRequest, OfferId, SdpKind, ServerMessage, SessionDescription,
};
use state::{Conn, PendingOffer, TrackerState};

/// Index of a tracker in the list the announcer was made with.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct TrackerIndex(pub usize);

/// Tunables. Defaults follow the reference client where it has a number,
/// except reconnecting, which is quicker: a listener waits for the music.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AnnounceConfig {
    /// Offers per announce (the reference client sends min(numwant, 5)).
    pub offers_per_announce: usize,
    /// `numwant` sent along with offers.
    pub numwant: u64,
    /// An offer unanswered this long is dropped (reference client: 50 s).
    pub offer_ttl: Duration,
    /// Longest wait for the shell to make a batch of offers before the
    /// announce goes out with those that are ready.
    pub offer_gathering: Duration,
    /// Announce interval until the tracker names one (reference: 30 s).
    pub default_interval: Duration,
    /// A tracker's `interval` is clamped to at least this.
    pub min_interval: Duration,
    /// And at most this.
    pub max_interval: Duration,
    /// First reconnect delay; doubles with each failure in a row.
    pub backoff_base: Duration,
    /// Reconnect delay at most (before jitter).
    pub backoff_cap: Duration,
    /// Jitter added to a reconnect delay is up to this fraction (in percent)
    /// of the delay.
    pub backoff_jitter_percent: u32,
}

impl Default for AnnounceConfig {
    fn default() -> Self {
        AnnounceConfig {
            offers_per_announce: 5,
            numwant: 50,
            offer_ttl: Duration::from_secs(50),
            offer_gathering: Duration::from_secs(10),
            default_interval: Duration::from_secs(30),
            min_interval: Duration::from_secs(10),
            max_interval: Duration::from_secs(3600),
            backoff_base: Duration::from_secs(2),
            backoff_cap: Duration::from_secs(300),
            backoff_jitter_percent: 50,
        }
    }
}

/// Transfer totals reported to trackers.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Progress {
    /// Bytes served to peers.
    pub uploaded: u64,
    /// Bytes received.
    pub downloaded: u64,
    /// Bytes still missing; `None` while the size is unknown (magnet).
    pub left: Option<u64>,
}

/// Things worth knowing that need no action.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TrackerNotice {
    /// A tracker's reply to an announce.
    Swarm {
        /// Which tracker.
        tracker: TrackerIndex,
        /// Seeders.
        complete: u64,
        /// Leechers.
        incomplete: u64,
    },
    /// A tracker refused a request.
    Failure {
        /// Which tracker.
        tracker: TrackerIndex,
        /// Its `failure reason`.
        reason: String,
    },
    /// A tracker sent a frame that is not a tracker message.
    BadMessage {
        /// Which tracker.
        tracker: TrackerIndex,
        /// What the parser said.
        error: String,
    },
}

/// One thing the shell must do, or the time to call back.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    /// Open a WebSocket to this tracker.
    Connect {
        /// Which tracker.
        tracker: TrackerIndex,
        /// Its URL.
        url: String,
    },
    /// Send this JSON text frame to the tracker.
    Send {
        /// Which tracker.
        tracker: TrackerIndex,
        /// One JSON message.
        text: String,
    },
    /// Close the tracker's WebSocket; no reconnect follows.
    Disconnect {
        /// Which tracker.
        tracker: TrackerIndex,
    },
    /// Make one RTCPeerConnection with a data channel per id, create offers,
    /// wait for ICE gathering, then call [`Announcer::offer_ready`] (or
    /// [`Announcer::offer_failed`]) for each.
    CreateOffers {
        /// Ids to make offers for.
        offers: Vec<OfferId>,
    },
    /// The answer to one of our offers: apply it as the remote description of
    /// that offer's connection.
    AcceptAnswer {
        /// Which offer.
        offer: OfferId,
        /// The answerer.
        peer: PeerId,
        /// Its SDP answer.
        sdp: String,
    },
    /// Drop this offer's connection: nobody answered in time (or we stopped).
    DropOffer {
        /// Which offer.
        offer: OfferId,
    },
    /// Another peer's offer: make a connection, set the offer as remote
    /// description, create an answer, wait for ICE gathering, then call
    /// [`Announcer::answer_ready`].
    AnswerOffer {
        /// The tracker it came through, where the answer goes back.
        tracker: TrackerIndex,
        /// The offer's id, echoed with the answer.
        offer: OfferId,
        /// The offerer.
        peer: PeerId,
        /// Its SDP offer.
        sdp: String,
    },
    /// Something happened.
    Event(TrackerNotice),
    /// Nothing more to do now: call [`Announcer::handle_timeout`] at this time.
    Timeout(Time),
}

/// The tracker client of one torrent. See the module documentation.
#[derive(Debug)]
pub struct Announcer {
    config: AnnounceConfig,
    info_hash: InfoHash,
    peer_id: PeerId,
    rng: fastrand::Rng,
    now: Time,
    trackers: Vec<TrackerState>,
    pending: SortedMap<OfferId, PendingOffer>,
    progress: Progress,
    want_peers: bool,
    completed: bool,
    stopped: bool,
    actions: VecDeque<Action>,
}

impl Announcer {
    /// A tracker client for `info_hash` over `trackers` (WebSocket URLs);
    /// asks at once to connect to each. `seed` feeds offer ids and jitter.
    pub fn new(
        config: AnnounceConfig,
        info_hash: InfoHash,
        peer_id: PeerId,
        trackers: Vec<String>,
        seed: u64,
        now: Time,
    ) -> Self {
        let mut announcer = Announcer {
            config,
            info_hash,
            peer_id,
            rng: fastrand::Rng::with_seed(seed),
            now,
            trackers: trackers.into_iter().map(TrackerState::new).collect(),
            pending: SortedMap::new(),
            progress: Progress::default(),
            want_peers: true,
            completed: false,
            stopped: false,
            actions: VecDeque::new(),
        };
        for i in 0..announcer.trackers.len() {
            announcer.connect(TrackerIndex(i));
        }
        announcer
    }

    /// The tracker's WebSocket opened: announce `started` with offers.
    pub fn tracker_connected(&mut self, now: Time, tracker: TrackerIndex) {
        self.now = now;
        if self.stopped {
            return;
        }
        let Some(t) = self.trackers.get_mut(tracker.0) else {
            return;
        };
        t.conn = Conn::Connected {
            next_announce: now,
            interval: self.config.default_interval,
            started: false,
            gathering: None,
        };
        self.announce_due();
    }

    /// The tracker's WebSocket closed or failed: reconnect after a back-off.
    pub fn tracker_closed(&mut self, now: Time, tracker: TrackerIndex) {
        self.now = now;
        if self.stopped {
            return;
        }
        let Some(t) = self.trackers.get_mut(tracker.0) else {
            return;
        };
        let delay = state::backoff(&self.config, t.failures, &mut self.rng);
        t.failures = t.failures.saturating_add(1);
        t.conn = Conn::Waiting {
            retry_at: now + delay,
        };
        // Answers to offers made through this socket can no longer arrive.
        let orphaned: Vec<OfferId> = self
            .pending
            .iter()
            .filter(|(_, p)| p.tracker == tracker)
            .map(|(id, _)| *id)
            .collect();
        for offer in orphaned {
            self.pending.remove(&offer);
            self.actions.push_back(Action::DropOffer { offer });
        }
    }

    /// A text frame arrived from a tracker.
    pub fn handle_message(&mut self, now: Time, tracker: TrackerIndex, text: &str) {
        self.now = now;
        if self.stopped || tracker.0 >= self.trackers.len() {
            return;
        }
        let message = match serde_json::from_str::<ServerMessage>(text) {
            Ok(m) => m,
            Err(e) => {
                self.event(TrackerNotice::BadMessage {
                    tracker,
                    error: e.to_string(),
                });
                return;
            }
        };
        self.on_message(tracker, message);
    }

    /// An offer the shell was asked to create is complete (ICE gathered).
    pub fn offer_ready(&mut self, now: Time, offer: OfferId, sdp: String) {
        self.now = now;
        self.resolve_offer(offer, Some(sdp));
        self.send_ready_announces();
    }

    /// An offer could not be made; it is forgotten.
    pub fn offer_failed(&mut self, now: Time, offer: OfferId) {
        self.now = now;
        self.resolve_offer(offer, None);
        self.send_ready_announces();
    }

    /// An answer to a relayed offer is complete: send it back to the offerer.
    pub fn answer_ready(
        &mut self,
        now: Time,
        tracker: TrackerIndex,
        offer: OfferId,
        peer: PeerId,
        sdp: String,
    ) {
        self.now = now;
        if self.stopped {
            return;
        }
        let request = AnnounceRequest {
            answer: Some(SessionDescription {
                kind: SdpKind::Answer,
                sdp,
            }),
            to_peer_id: Some(peer),
            offer_id: Some(offer),
            ..self.request(None)
        };
        self.send(tracker, request);
    }

    /// New transfer totals. The first time `left` reaches zero, every
    /// connected tracker hears `completed`.
    pub fn set_progress(&mut self, now: Time, progress: Progress) {
        self.now = now;
        self.progress = progress;
        if progress.left == Some(0) && !self.completed && !self.stopped {
            self.completed = true;
            for i in 0..self.trackers.len() {
                if self.trackers[i].is_started() {
                    let request = self.request(Some(AnnounceEvent::Completed));
                    self.send(TrackerIndex(i), request);
                }
            }
        }
    }

    /// Whether announces should carry offers (false at the peer cap).
    pub fn set_want_peers(&mut self, want: bool) {
        self.want_peers = want;
    }

    /// Every peer connection ended (or the first ones failed) while we
    /// still want peers: announce again soon, with fresh offers, instead of
    /// waiting out the tracker's interval — otherwise one failed connection
    /// leaves a listener alone, fetching the whole track from the web seed,
    /// for minutes. At most one announce per `min_interval` (10 s by
    /// default) still holds, counted from the last one, so a peer whose
    /// connections keep failing cannot hammer the tracker.
    pub fn peers_lost(&mut self, now: Time) {
        self.now = now;
        if self.stopped || !self.want_peers {
            return;
        }
        let gap = self.config.min_interval;
        for tracker in &mut self.trackers {
            if let Conn::Connected {
                next_announce,
                interval,
                started: true,
                ..
            } = &mut tracker.conn
            {
                let last = *next_announce - *interval;
                let soon = (last + gap).max(now);
                if soon < *next_announce {
                    *next_announce = soon;
                }
            }
        }
    }

    /// Leave the swarm: `stopped` to every connected tracker, every pending
    /// offer dropped, every socket closed. Nothing more happens afterwards.
    pub fn stop(&mut self, now: Time) {
        self.now = now;
        if self.stopped {
            return;
        }
        for i in 0..self.trackers.len() {
            if self.trackers[i].is_started() {
                let request = self.request(Some(AnnounceEvent::Stopped));
                self.send(TrackerIndex(i), request);
            }
        }
        self.stopped = true;
        for offer in std::mem::take(&mut self.pending).into_keys() {
            self.actions.push_back(Action::DropOffer { offer });
        }
        for i in 0..self.trackers.len() {
            self.trackers[i].conn = Conn::Stopped;
            self.actions.push_back(Action::Disconnect {
                tracker: TrackerIndex(i),
            });
        }
    }

    /// The time asked for in [`Action::Timeout`] came (or any time later).
    pub fn handle_timeout(&mut self, now: Time) {
        self.now = now;
        if self.stopped {
            return;
        }
        self.expire_offers();
        for i in 0..self.trackers.len() {
            if let Conn::Waiting { retry_at } = self.trackers[i].conn
                && now >= retry_at
            {
                self.connect(TrackerIndex(i));
            }
        }
        self.send_ready_announces();
        self.announce_due();
    }

    /// The next thing to do; call until it returns [`Action::Timeout`].
    pub fn poll(&mut self) -> Action {
        if let Some(action) = self.actions.pop_front() {
            return action;
        }
        Action::Timeout(self.next_wake())
    }

    /// Offers waiting for an answer (or for ICE gathering).
    pub fn pending_offers(&self) -> usize {
        self.pending.len()
    }

    /// The announce interval currently used with a tracker, when connected.
    pub fn interval(&self, tracker: TrackerIndex) -> Option<Duration> {
        match self.trackers.get(tracker.0)?.conn {
            Conn::Connected { interval, .. } => Some(interval),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests;
