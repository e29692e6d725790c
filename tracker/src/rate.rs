//! Per-connection message budget.

use swarm::time::Time;

/// Message budget of one connection, refilled with time.
#[derive(Debug, Clone, Copy)]
pub(super) struct TokenBucket {
    /// Tokens in thousandths, so refills at any rate stay integral.
    milli_tokens: u64,
    last: Time,
}

impl TokenBucket {
    pub(super) fn new(now: Time, burst: u32) -> Self {
        TokenBucket {
            milli_tokens: u64::from(burst) * 1000,
            last: now,
        }
    }

    /// Takes one token if there is one.
    pub(super) fn take(&mut self, now: Time, per_second: u32, burst: u32) -> bool {
        let elapsed_ms = u64::try_from(now.since(self.last).as_millis()).unwrap_or(u64::MAX);
        self.last = self.last.max(now);
        let refill = elapsed_ms.saturating_mul(u64::from(per_second));
        self.milli_tokens = self
            .milli_tokens
            .saturating_add(refill)
            .min(u64::from(burst) * 1000);
        if self.milli_tokens >= 1000 {
            self.milli_tokens -= 1000;
            true
        } else {
            false
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn burst_then_steady_rate() {
        let mut b = TokenBucket::new(Time(0), 3);
        assert!((0..3).all(|_| b.take(Time(0), 10, 3)));
        assert!(!b.take(Time(0), 10, 3), "burst spent");
        assert!(!b.take(Time(50), 10, 3), "half a token after 50 ms at 10/s");
        assert!(b.take(Time(100), 10, 3), "one token after 100 ms");
        assert!(
            (0..3).all(|_| b.take(Time(10_000), 10, 3)),
            "refill capped at burst"
        );
        assert!(!b.take(Time(10_000), 10, 3));
    }
}
