//! Transfer speeds for `stats()`: bytes over a sliding window of samples.

use std::collections::VecDeque;

/// How far back a speed looks, in milliseconds.
const WINDOW_MS: f64 = 3_000.0;

/// A running byte counter with a speed over the last few seconds.
#[derive(Debug, Clone, Default)]
pub struct RateMeter {
    total: u64,
    started: Option<f64>,
    /// (time in ms, bytes added then), oldest first, within the window.
    samples: VecDeque<(f64, u64)>,
}

impl RateMeter {
    /// Adds `bytes` seen at `now_ms`.
    pub fn add(&mut self, now_ms: f64, bytes: u64) {
        self.total = self.total.saturating_add(bytes);
        self.started.get_or_insert(now_ms);
        self.samples.push_back((now_ms, bytes));
        self.trim(now_ms);
    }

    /// Bytes per second over the window ending at `now_ms`; a young meter
    /// divides by its age (at least one second) rather than the full window.
    pub fn per_second(&mut self, now_ms: f64) -> f64 {
        self.trim(now_ms);
        let Some(started) = self.started else {
            return 0.0;
        };
        let span = (now_ms - started).clamp(1_000.0, WINDOW_MS);
        let bytes: u64 = self.samples.iter().map(|&(_, b)| b).sum();
        bytes as f64 * 1_000.0 / span
    }

    /// Everything ever added.
    pub fn total(&self) -> u64 {
        self.total
    }

    fn trim(&mut self, now_ms: f64) {
        while self
            .samples
            .front()
            .is_some_and(|&(t, _)| now_ms - t > WINDOW_MS)
        {
            self.samples.pop_front();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn steady_rate_is_measured() {
        let mut m = RateMeter::default();
        for i in 0..=100 {
            m.add(f64::from(i) * 100.0, 10_000);
        }
        let speed = m.per_second(10_000.0);
        assert!((90_000.0..=110_000.0).contains(&speed), "{speed}");
        assert_eq!(m.total(), 1_010_000);
    }

    #[test]
    fn idle_meter_falls_to_zero() {
        let mut m = RateMeter::default();
        m.add(0.0, 1_000_000);
        assert_eq!(m.per_second(10_000.0), 0.0);
        assert_eq!(RateMeter::default().per_second(5.0), 0.0);
    }
}
