//! Per-tracker connection state, pending offers and the reconnect back-off.

use std::time::Duration;

use crate::time::Time;

use super::{AnnounceConfig, TrackerIndex};

/// One tracker's socket, as far as announcing goes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Conn {
    /// Asked the shell to connect; waiting for it to open.
    Connecting,
    /// Open.
    Connected {
        /// When the next periodic announce is due.
        next_announce: Time,
        /// The tracker's interval (clamped), or the default until it says one.
        interval: Duration,
        /// Whether the first announce (`started`) went out on this socket.
        started: bool,
        /// Offers for the next announce are being made; send by this time.
        gathering: Option<Time>,
    },
    /// Closed; reconnect at this time.
    Waiting {
        /// When to reconnect.
        retry_at: Time,
    },
    /// We left the swarm.
    Stopped,
}

/// One tracker.
#[derive(Debug, Clone)]
pub(super) struct TrackerState {
    pub url: String,
    pub conn: Conn,
    /// Connections lost in a row without a good reply in between.
    pub failures: u32,
}

impl TrackerState {
    pub fn new(url: String) -> Self {
        TrackerState {
            url,
            conn: Conn::Connecting,
            failures: 0,
        }
    }

    /// Connected and announced `started`: it may hear `completed`/`stopped`.
    pub fn is_started(&self) -> bool {
        matches!(self.conn, Conn::Connected { started: true, .. })
    }

    pub fn gathering(&self) -> Option<Time> {
        match self.conn {
            Conn::Connected { gathering, .. } => gathering,
            _ => None,
        }
    }

    pub fn set_gathering(&mut self, deadline: Time) {
        if let Conn::Connected { gathering, .. } = &mut self.conn {
            *gathering = Some(deadline);
        }
    }

    /// When this tracker next needs attention.
    pub fn wake_at(&self) -> Option<Time> {
        match self.conn {
            Conn::Connected {
                gathering: Some(deadline),
                ..
            } => Some(deadline),
            Conn::Connected { next_announce, .. } => Some(next_announce),
            Conn::Waiting { retry_at } => Some(retry_at),
            Conn::Connecting | Conn::Stopped => None,
        }
    }
}

/// An offer we asked the shell to make.
#[derive(Debug, Clone)]
pub(super) struct PendingOffer {
    /// The tracker it goes out through; only that tracker may answer it.
    pub tracker: TrackerIndex,
    /// The complete SDP, once the shell made it.
    pub sdp: Option<String>,
    /// Sent in an announce; the answer clock runs from `sent_at`.
    pub sent: bool,
    pub sent_at: Time,
}

impl PendingOffer {
    pub fn new(tracker: TrackerIndex, now: Time) -> Self {
        PendingOffer {
            tracker,
            sdp: None,
            sent: false,
            sent_at: now,
        }
    }
}

/// Delay before reconnect number `failures + 1`: `base · 2^failures`, capped,
/// plus a random extra of up to `backoff_jitter_percent` of it.
pub(super) fn backoff(config: &AnnounceConfig, failures: u32, rng: &mut fastrand::Rng) -> Duration {
    let base = u64::try_from(config.backoff_base.as_millis()).unwrap_or(u64::MAX);
    let cap = u64::try_from(config.backoff_cap.as_millis()).unwrap_or(u64::MAX);
    let delay = base.saturating_mul(1u64 << failures.min(40)).min(cap);
    let jitter_max = delay / 100 * u64::from(config.backoff_jitter_percent);
    Duration::from_millis(delay + rng.u64(0..=jitter_max))
}
