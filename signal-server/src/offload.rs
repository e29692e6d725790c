//! Today's figures for the demo page's live panel (`GET /api/swarm`): what
//! the web seed sent and what fans say they sent each other, per UTC day.
//!
//! Honest by construction: web-seed bytes are counted by the server as its
//! `/media` bodies go out; fan-to-fan bytes are the increases of the
//! `uploaded` totals fans report in their announces — self-reported, never
//! verified, and only for tracks this server publishes. Each increase is
//! capped at a few copies of the track, so one lying client cannot make the
//! figure absurd. The day is passed in (the shell's clock), so this is
//! testable without waiting for midnight.

use std::collections::HashMap;
use std::sync::{Mutex, MutexGuard};

use fanswarm_tracker::ConnectionId;
use serde::Serialize;
use swarm::InfoHash;

/// Days since 1970-01-01 (UTC).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Default)]
pub struct Day(pub u64);

/// At most this many copies of a track per announce count as fan uploads.
const MAX_COPIES_PER_ANNOUNCE: u64 = 8;

/// Today's totals, for JSON.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize)]
pub struct Today {
    /// Body bytes the web seed (`/media`) sent today.
    pub webseed_bytes: u64,
    /// Bytes fans reported sending to other fans today (self-reported).
    pub fan_bytes: u64,
}

/// The counters behind [`Today`]; one small lock, taken per web-seed body
/// frame and per announce.
#[derive(Debug, Default)]
pub struct Offload(Mutex<State>);

#[derive(Debug, Default)]
struct State {
    day: Day,
    today: Today,
    /// Each tracker connection's last reported `uploaded` per swarm.
    last_uploaded: HashMap<(ConnectionId, InfoHash), u64>,
}

impl Offload {
    /// The web seed sent `bytes` more on `day`.
    pub fn add_webseed(&self, day: Day, bytes: u64) {
        let mut s = self.lock(day);
        s.today.webseed_bytes = s.today.webseed_bytes.saturating_add(bytes);
    }

    /// A fan on `connection` reported `uploaded` (its running total) for a
    /// track of `track_length` bytes. The first report of a connection sets
    /// its baseline; every later increase counts (capped), a decrease
    /// (a restarted client) just resets the baseline.
    pub fn report_uploaded(
        &self,
        day: Day,
        connection: ConnectionId,
        info_hash: InfoHash,
        uploaded: u64,
        track_length: u64,
    ) {
        let mut s = self.lock(day);
        let previous = s.last_uploaded.insert((connection, info_hash), uploaded);
        let increase = previous.map_or(0, |p| uploaded.saturating_sub(p));
        let capped = increase.min(track_length.saturating_mul(MAX_COPIES_PER_ANNOUNCE));
        s.today.fan_bytes = s.today.fan_bytes.saturating_add(capped);
    }

    /// A tracker connection closed: forget its baselines.
    pub fn forget_connection(&self, connection: ConnectionId) {
        let mut s = self.0.lock().unwrap_or_else(|e| e.into_inner());
        s.last_uploaded.retain(|(c, _), _| *c != connection);
    }

    /// The totals of `day` (zeros if nothing was counted on it yet).
    pub fn today(&self, day: Day) -> Today {
        self.lock(day).today
    }

    /// Locks, starting a new day's totals when the day changed (baselines
    /// stay: a fan's running total carries over midnight).
    fn lock(&self, day: Day) -> MutexGuard<'_, State> {
        let mut s = self.0.lock().unwrap_or_else(|e| e.into_inner());
        if day > s.day {
            s.day = day;
            s.today = Today::default();
        }
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const H: InfoHash = InfoHash([1; 20]);

    #[test]
    fn increases_count_baselines_do_not() {
        let o = Offload::default();
        let d = Day(100);
        o.report_uploaded(d, ConnectionId(1), H, 5_000, 1_000_000);
        assert_eq!(o.today(d).fan_bytes, 0, "first report is a baseline");
        o.report_uploaded(d, ConnectionId(1), H, 7_000, 1_000_000);
        o.report_uploaded(d, ConnectionId(2), H, 300, 1_000_000);
        o.report_uploaded(d, ConnectionId(2), H, 800, 1_000_000);
        assert_eq!(o.today(d).fan_bytes, 2_500);
        o.report_uploaded(d, ConnectionId(1), H, 10, 1_000_000);
        assert_eq!(o.today(d).fan_bytes, 2_500, "a restart is no negative");
    }

    #[test]
    fn a_liar_is_capped_and_a_new_day_starts_at_zero() {
        let o = Offload::default();
        o.report_uploaded(Day(1), ConnectionId(1), H, 0, 100);
        o.report_uploaded(Day(1), ConnectionId(1), H, u64::MAX, 100);
        assert_eq!(o.today(Day(1)).fan_bytes, 800);
        o.add_webseed(Day(1), 42);
        assert_eq!(o.today(Day(1)).webseed_bytes, 42);
        o.add_webseed(Day(2), 5);
        assert_eq!(
            o.today(Day(2)),
            Today {
                webseed_bytes: 5,
                fan_bytes: 0
            }
        );
    }

    #[test]
    fn forgetting_a_connection_makes_its_next_report_a_baseline() {
        let o = Offload::default();
        o.report_uploaded(Day(1), ConnectionId(1), H, 100, 1_000);
        o.forget_connection(ConnectionId(1));
        o.report_uploaded(Day(1), ConnectionId(1), H, 600, 1_000);
        assert_eq!(o.today(Day(1)).fan_bytes, 0);
    }
}
