//! Time as the engine sees it: a number the shell hands in.
//!
//! The engine never reads a clock. Shells pass `Time` values taken from
//! whatever monotonic clock they have (`performance.now()` in a page,
//! `Instant` in a native process, a counter in the simulator); only
//! differences between them mean anything.

use std::ops::{Add, Sub};
use std::time::Duration;

/// Milliseconds since an epoch the shell chose; monotonic by contract.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Time(pub u64);

impl Time {
    /// The shell's epoch.
    pub const ZERO: Time = Time(0);

    /// From milliseconds.
    pub fn from_millis(ms: u64) -> Self {
        Time(ms)
    }

    /// Milliseconds since the epoch.
    pub fn as_millis(self) -> u64 {
        self.0
    }

    /// Time elapsed since `earlier`, zero if `earlier` is in the future.
    pub fn since(self, earlier: Time) -> Duration {
        Duration::from_millis(self.0.saturating_sub(earlier.0))
    }
}

impl Add<Duration> for Time {
    type Output = Time;
    fn add(self, d: Duration) -> Time {
        let ms = u64::try_from(d.as_millis()).unwrap_or(u64::MAX);
        Time(self.0.saturating_add(ms))
    }
}

impl Sub<Duration> for Time {
    type Output = Time;
    fn sub(self, d: Duration) -> Time {
        let ms = u64::try_from(d.as_millis()).unwrap_or(u64::MAX);
        Time(self.0.saturating_sub(ms))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn arithmetic_saturates() {
        let t = Time(1_000);
        assert_eq!(t + Duration::from_secs(1), Time(2_000));
        assert_eq!(t - Duration::from_secs(5), Time(0));
        assert_eq!(Time(500).since(t), Duration::ZERO);
        assert_eq!(Time(u64::MAX) + Duration::from_secs(1), Time(u64::MAX));
    }
}
