//! What a node reports: the engine's totals, its connections, and transfer
//! speeds over the last seconds (measured in the node's own time, so the
//! browser, the native peer and the simulator report them alike).

use std::collections::VecDeque;
use std::time::Duration;

use crate::engine::Stats;
use crate::time::Time;

/// How far back a speed looks.
const WINDOW: Duration = Duration::from_secs(3);

/// A node's figures right now.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct NodeStats {
    /// The engine's totals (bytes from peers and the web seed, uploaded,
    /// wasted, pieces, peers past the handshake, banned ids).
    pub engine: Stats,
    /// Connections whose data channel is open.
    pub connections: usize,
    /// Connections still being made (offers, answers, ICE).
    pub connecting: usize,
    /// Bytes per second received over the last seconds.
    pub download_rate: u64,
    /// Bytes per second served over the last seconds.
    pub upload_rate: u64,
}

/// A running byte counter with a speed over the last few seconds.
#[derive(Debug, Clone, Default)]
pub struct RateMeter {
    started: Option<Time>,
    /// (time, bytes added then), oldest first, within the window.
    samples: VecDeque<(Time, u64)>,
}

impl RateMeter {
    /// Adds `bytes` seen at `now`.
    pub fn add(&mut self, now: Time, bytes: u64) {
        self.started.get_or_insert(now);
        match self.samples.back_mut() {
            Some((t, b)) if *t == now => *b += bytes,
            _ => self.samples.push_back((now, bytes)),
        }
        self.trim(now);
    }

    /// Bytes per second over the window ending at `now`; a young meter
    /// divides by its age (at least one second) rather than the full window.
    pub fn per_second(&self, now: Time) -> u64 {
        let Some(started) = self.started else {
            return 0;
        };
        let span = now.since(started).clamp(Duration::from_secs(1), WINDOW);
        let bytes: u64 = self
            .samples
            .iter()
            .filter(|(t, _)| now.since(*t) < WINDOW)
            .map(|(_, b)| b)
            .sum();
        bytes.saturating_mul(1000) / span.as_millis().max(1) as u64
    }

    fn trim(&mut self, now: Time) {
        while self
            .samples
            .front()
            .is_some_and(|(t, _)| now.since(*t) >= WINDOW)
        {
            self.samples.pop_front();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn speed_is_over_the_last_seconds() {
        let mut m = RateMeter::default();
        assert_eq!(m.per_second(Time(0)), 0);
        m.add(Time(0), 1000);
        assert_eq!(m.per_second(Time(500)), 1000, "young: per one second");
        m.add(Time(2000), 2000);
        assert_eq!(m.per_second(Time(2000)), 1500, "3000 bytes over 2 s");
        assert_eq!(
            m.per_second(Time(4500)),
            666,
            "2000 bytes over the 3 s window"
        );
        assert_eq!(m.per_second(Time(9000)), 0);
    }
}
