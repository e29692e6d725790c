//! The node's connection table: every WebRTC connection from the moment we
//! ask the shell to make it until it is gone, with the rules that used to
//! live in each shell — the cap, the set-up and connect timeouts, and the
//! bytes a channel delivers before its `open` event.
//!
//! A connection is in exactly one stage:
//!
//! ```text
//! MakingOffer ──offer made──► Offered ──answer──► Connecting ──open──► Open
//! Answering ──answer made──────────────────────► Connecting ──open──► Open
//! ```
//!
//! `Offered` waits as long as the announcer keeps the offer (it drops it
//! after `offer_ttl`); every other stage before `Open` has a deadline.

use std::time::Duration;

use crate::announce::TrackerIndex;
use crate::engine::PeerKey;
use crate::ids::PeerId;
use crate::sorted::SortedMap;
use crate::time::Time;
use crate::tracker::OfferId;

/// Where a connection is in its life (see the module docs).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Stage {
    /// The shell makes our offer for `offer`.
    MakingOffer { offer: OfferId },
    /// Our offer went out in an announce; waiting for an answer.
    Offered { offer: OfferId },
    /// The shell answers an offer that came through `tracker`.
    Answering {
        tracker: TrackerIndex,
        offer: OfferId,
        peer: PeerId,
    },
    /// Descriptions exchanged: ICE, DTLS and SCTP under way.
    Connecting,
    /// The data channel is open and the engine knows the connection.
    Open,
}

/// One connection.
#[derive(Debug)]
pub(super) struct Conn {
    pub stage: Stage,
    /// When it entered its stage.
    pub since: Time,
    /// Bytes the channel delivered before its `open` (replayed then).
    pub early: Vec<u8>,
}

/// Every connection of a node.
#[derive(Debug, Default)]
pub(super) struct Conns {
    map: SortedMap<PeerKey, Conn>,
    offers: SortedMap<OfferId, PeerKey>,
    next: u64,
}

/// Bytes kept from a channel before its `open` at most. Before the remote
/// hears our handshake it sends at most its handshake, extended handshake
/// and bitfield, far below this.
pub const EARLY_BYTES_LIMIT: usize = 256 * 1024;

impl Conns {
    /// Connections in any stage.
    pub fn len(&self) -> usize {
        self.map.len()
    }

    /// Connections whose channel is open.
    pub fn open(&self) -> usize {
        self.map.values().filter(|c| c.stage == Stage::Open).count()
    }

    /// A new connection in `stage`.
    pub fn insert(&mut self, now: Time, stage: Stage) -> PeerKey {
        self.next += 1;
        let key = PeerKey(self.next);
        if let Stage::MakingOffer { offer } | Stage::Offered { offer } = stage {
            self.offers.insert(offer, key);
        }
        self.map.insert(
            key,
            Conn {
                stage,
                since: now,
                early: Vec::new(),
            },
        );
        key
    }

    pub fn get(&self, key: PeerKey) -> Option<&Conn> {
        self.map.get(&key)
    }

    pub fn get_mut(&mut self, key: PeerKey) -> Option<&mut Conn> {
        self.map.get_mut(&key)
    }

    /// Moves a connection to `stage` as of `now`.
    pub fn set_stage(&mut self, key: PeerKey, now: Time, stage: Stage) {
        if let Some(conn) = self.map.get_mut(&key) {
            if let Stage::MakingOffer { offer } | Stage::Offered { offer } = conn.stage
                && !matches!(stage, Stage::MakingOffer { .. } | Stage::Offered { .. })
            {
                self.offers.remove(&offer);
            }
            conn.stage = stage;
            conn.since = now;
        }
    }

    /// The connection made for our offer `offer`.
    pub fn by_offer(&self, offer: OfferId) -> Option<PeerKey> {
        self.offers.get(&offer).copied()
    }

    /// Forgets a connection; returns it.
    pub fn remove(&mut self, key: PeerKey) -> Option<Conn> {
        let conn = self.map.remove(&key)?;
        if let Stage::MakingOffer { offer } | Stage::Offered { offer } = conn.stage {
            self.offers.remove(&offer);
        }
        Some(conn)
    }

    /// Forgets every connection; returns their keys.
    pub fn clear(&mut self) -> Vec<PeerKey> {
        self.offers.clear();
        std::mem::take(&mut self.map).into_keys().collect()
    }

    /// Whether a remote peer is on its way to us at `now`: a connection past
    /// the exchange of descriptions; or, unless the tracker said we are
    /// alone (`others` is what it said, `None` before it said anything),
    /// `grace` has not passed since `started` (the node looking for peers
    /// at all) or since our youngest offer was made. With it, the time that
    /// answer turns from yes to no if nothing else happens.
    pub fn peers_coming(
        &self,
        now: Time,
        started: Time,
        grace: Duration,
        others: Option<u64>,
    ) -> (bool, Option<Time>) {
        let mut until = None;
        let mut later = |since: Time| {
            let end = since + grace;
            if now < end && until.is_none_or(|u| u < end) {
                until = Some(end);
            }
        };
        if others != Some(0) {
            later(started);
        }
        for c in self.map.values() {
            match c.stage {
                Stage::Answering { .. } | Stage::Connecting => return (true, None),
                Stage::MakingOffer { .. } | Stage::Offered { .. } if others != Some(0) => {
                    later(c.since)
                }
                _ => {}
            }
        }
        (until.is_some(), until)
    }

    /// Connections past their stage's deadline at `now`.
    pub fn overdue(&self, now: Time, limits: &Deadlines) -> Vec<PeerKey> {
        self.map
            .iter()
            .filter(|(_, c)| limits.of(&c.stage).is_some_and(|d| now.since(c.since) >= d))
            .map(|(k, _)| *k)
            .collect()
    }

    /// The earliest time a connection turns overdue.
    pub fn next_deadline(&self, limits: &Deadlines) -> Option<Time> {
        self.map
            .values()
            .filter_map(|c| Some(c.since + limits.of(&c.stage)?))
            .min()
    }
}

/// How long each stage may last.
#[derive(Debug, Clone, Copy)]
pub(super) struct Deadlines {
    /// Making an offer or an answer (ICE gathering included).
    pub setup: Duration,
    /// From descriptions exchanged to an open channel.
    pub connect: Duration,
    /// An offer sent and unanswered (the announcer normally drops it first).
    pub offered: Duration,
}

impl Deadlines {
    fn of(&self, stage: &Stage) -> Option<Duration> {
        match stage {
            Stage::MakingOffer { .. } | Stage::Answering { .. } => Some(self.setup),
            Stage::Offered { .. } => Some(self.offered),
            Stage::Connecting => Some(self.connect),
            Stage::Open => None,
        }
    }
}
