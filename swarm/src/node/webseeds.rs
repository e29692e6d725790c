//! Several web seeds for one torrent (its `url-list`: the artist's server,
//! a CDN, an object store): which one each fetch goes to, and which to
//! leave alone for a while.
//!
//! - **Spread.** A fetch goes to the usable seed with the fewest requests
//!   running; ties go round, starting at a place drawn from the node's seed,
//!   so a crowd's first fetches do not all land on the first URL.
//! - **Skip what fails.** A seed whose request fails (HTTP status, network,
//!   no data for the timeout, a short body) backs off, 1 s doubling to 64 s;
//!   the fetch goes on at the byte it stopped at from another seed it has
//!   not tried yet. Only when every seed has failed it does the engine hear
//!   of it (and back off as with a single seed). A seed in back-off is still
//!   used when nothing else is left, so one seed alone behaves as before.
//! - **Wrong bytes.** A seed that serves a piece failing verification is
//!   dropped for good while another remains (a mirror with another version
//!   of the file is not going to mend itself); the last one is left to the
//!   engine's rule for a corrupt web seed.

use std::time::Duration;

use crate::time::Time;

/// The first back-off of a failed seed; it doubles per failure in a row.
const FIRST_BACKOFF: Duration = Duration::from_secs(1);
/// Doublings at most: 1 s · 2⁶ = 64 s.
const MAX_DOUBLINGS: u32 = 6;

/// One web seed's figures, for the shells' stats.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WebSeedStats {
    /// Its URL as the torrent lists it.
    pub url: String,
    /// Body bytes it delivered.
    pub bytes: u64,
    /// Requests to it that failed, all told.
    pub failures: u32,
    /// Why it is no longer used, if it is not.
    pub dropped: Option<String>,
}

#[derive(Debug, Clone)]
struct Seed {
    url: String,
    running: usize,
    failures: u32,
    failures_in_row: u32,
    retry_at: Option<Time>,
    bytes: u64,
    dropped: Option<String>,
}

impl Seed {
    fn usable(&self, now: Time) -> bool {
        self.dropped.is_none() && self.retry_at.is_none_or(|t| now >= t)
    }
}

/// The torrent's web seeds and what each has done.
#[derive(Debug, Clone, Default)]
pub(super) struct WebSeeds {
    seeds: Vec<Seed>,
    /// Where the next tie goes.
    cursor: usize,
}

impl WebSeeds {
    /// `urls` in the torrent's order (duplicates and empty ones left out);
    /// `start` picks where the round begins.
    pub fn new(urls: &[String], start: u64) -> WebSeeds {
        let mut seeds: Vec<Seed> = Vec::new();
        for url in urls {
            if url.is_empty() || seeds.iter().any(|s| &s.url == url) {
                continue;
            }
            seeds.push(Seed {
                url: url.clone(),
                running: 0,
                failures: 0,
                failures_in_row: 0,
                retry_at: None,
                bytes: 0,
                dropped: None,
            });
        }
        let cursor = if seeds.is_empty() {
            0
        } else {
            (start % seeds.len() as u64) as usize
        };
        WebSeeds { seeds, cursor }
    }

    /// The seed's URL.
    pub fn url(&self, seed: usize) -> &str {
        self.seeds.get(seed).map_or("", |s| s.url.as_str())
    }

    /// The seed for a new fetch: the usable one with the fewest requests
    /// running, ties in turn; if none is usable, the one not dropped whose
    /// back-off ends first. `None` only when every seed is dropped (or
    /// there are none).
    pub fn pick(&mut self, now: Time) -> Option<usize> {
        let chosen = self.choose(|s| s.usable(now)).or_else(|| {
            (0..self.seeds.len())
                .filter(|&i| self.seeds[i].dropped.is_none())
                .min_by_key(|&i| (self.seeds[i].retry_at, i))
        })?;
        self.cursor = (chosen + 1) % self.seeds.len();
        Some(chosen)
    }

    /// A usable seed not in `tried`, for a fetch that failed on those.
    pub fn pick_other(&mut self, now: Time, tried: &[usize]) -> Option<usize> {
        let chosen = self.choose_index(|i, s| s.usable(now) && !tried.contains(&i))?;
        self.cursor = (chosen + 1) % self.seeds.len();
        Some(chosen)
    }

    fn choose(&self, ok: impl Fn(&Seed) -> bool) -> Option<usize> {
        self.choose_index(|_, s| ok(s))
    }

    /// Among the seeds `ok` accepts, the fewest running, first from the
    /// cursor on.
    fn choose_index(&self, ok: impl Fn(usize, &Seed) -> bool) -> Option<usize> {
        let n = self.seeds.len();
        (0..n)
            .map(|k| (self.cursor + k) % n)
            .filter(|&i| ok(i, &self.seeds[i]))
            .min_by_key(|&i| (self.seeds[i].running, (i + n - self.cursor) % n))
    }

    /// A request to `seed` started.
    pub fn started(&mut self, seed: usize) {
        if let Some(s) = self.seeds.get_mut(seed) {
            s.running += 1;
        }
    }

    /// A request to `seed` is over, whole (`ok`) or failed at `now`.
    pub fn finished(&mut self, now: Time, seed: usize, ok: bool) {
        let Some(s) = self.seeds.get_mut(seed) else {
            return;
        };
        s.running = s.running.saturating_sub(1);
        if ok {
            s.failures_in_row = 0;
            s.retry_at = None;
            return;
        }
        s.failures += 1;
        let backoff = FIRST_BACKOFF * (1 << s.failures_in_row.min(MAX_DOUBLINGS));
        s.failures_in_row += 1;
        s.retry_at = Some(now + backoff);
    }

    /// `seed` delivered `bytes` body bytes.
    pub fn delivered(&mut self, seed: usize, bytes: u64) {
        if let Some(s) = self.seeds.get_mut(seed) {
            s.bytes += bytes;
        }
    }

    /// `seed` served a piece that failed verification: dropped if another
    /// seed is still in use. Returns its URL and why, if it was dropped.
    pub fn corrupt(&mut self, seed: usize, piece: u32) -> Option<(String, String)> {
        let others = self
            .seeds
            .iter()
            .enumerate()
            .any(|(i, s)| i != seed && s.dropped.is_none());
        let s = self
            .seeds
            .get_mut(seed)
            .filter(|s| others && s.dropped.is_none())?;
        let reason = format!("piece {piece} failed verification");
        s.dropped = Some(reason.clone());
        Some((s.url.clone(), reason))
    }

    /// Figures per seed, in the torrent's order.
    pub fn stats(&self) -> Vec<WebSeedStats> {
        self.seeds
            .iter()
            .map(|s| WebSeedStats {
                url: s.url.clone(),
                bytes: s.bytes,
                failures: s.failures,
                dropped: s.dropped.clone(),
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn seeds(n: usize, start: u64) -> WebSeeds {
        let urls: Vec<String> = (0..n).map(|i| format!("http://s{i}/x")).collect();
        WebSeeds::new(&urls, start)
    }

    #[test]
    fn fetches_spread_over_the_seeds_in_turn_and_by_load() {
        let mut w = seeds(3, 1);
        let now = Time(0);
        let order: Vec<usize> = (0..6)
            .map(|_| {
                let s = w.pick(now).unwrap();
                w.started(s);
                w.finished(now, s, true);
                s
            })
            .collect();
        assert_eq!(
            order,
            vec![1, 2, 0, 1, 2, 0],
            "in turn, from the drawn start"
        );
        // Two running on seed 1 and one on seed 2: seed 0 next, then 2.
        let mut w = seeds(3, 0);
        w.started(1);
        w.started(1);
        w.started(2);
        assert_eq!(w.pick(now), Some(0));
        w.started(0);
        assert_eq!(
            w.pick(now),
            Some(2),
            "0 and 2 have one each: 2 is next in turn"
        );
    }

    #[test]
    fn a_failed_seed_backs_off_and_is_used_only_when_nothing_else_is_left() {
        let mut w = seeds(2, 0);
        let t0 = Time(10_000);
        w.started(0);
        w.finished(t0, 0, false);
        assert_eq!(w.pick(t0), Some(1));
        assert_eq!(w.pick(t0), Some(1), "0 waits out its second");
        assert_eq!(w.pick_other(t0, &[1]), None, "no usable seed untried");
        for _ in 0..2 {
            w.started(1);
            w.finished(t0, 1, false);
        }
        // Both back off (0 for 1 s, 1 for 2 s): the one whose back-off
        // ends first.
        assert_eq!(w.pick(t0), Some(0));
        assert_eq!(w.pick(Time(11_000)), Some(0), "0 is usable again, 1 is not");
        // Failures in a row double the wait, up to 64 s.
        let mut w = seeds(1, 0);
        let mut now = Time(0);
        for _ in 0..10 {
            w.started(0);
            w.finished(now, 0, false);
            now = now + Duration::from_millis(10);
        }
        assert_eq!(
            w.seeds[0].retry_at,
            Some(now - Duration::from_millis(10) + Duration::from_secs(64))
        );
        assert_eq!(w.pick(now), Some(0), "a lone seed is still used");
        w.started(0);
        w.finished(now, 0, true);
        assert_eq!(w.seeds[0].retry_at, None, "a whole body ends the back-off");
        assert_eq!(w.stats()[0].failures, 10);
    }

    #[test]
    fn a_seed_with_wrong_bytes_is_dropped_unless_it_is_the_last() {
        let mut w = seeds(2, 0);
        assert_eq!(
            w.corrupt(0, 7),
            Some(("http://s0/x".into(), "piece 7 failed verification".into()))
        );
        assert_eq!(w.pick(Time(0)), Some(1));
        assert_eq!(w.pick(Time(0)), Some(1));
        assert_eq!(
            w.corrupt(1, 8),
            None,
            "the last seed is the engine's to judge"
        );
        assert_eq!(w.pick(Time(0)), Some(1));
        let stats = w.stats();
        assert_eq!(
            stats[0].dropped.as_deref(),
            Some("piece 7 failed verification")
        );
        assert_eq!(stats[1].dropped, None);
    }

    #[test]
    fn duplicates_and_empty_urls_are_left_out() {
        let urls = ["http://a/x", "", "http://a/x", "http://b/x"].map(String::from);
        let w = WebSeeds::new(&urls, 5);
        assert_eq!(w.stats().len(), 2);
        assert_eq!(WebSeeds::new(&[], 3).clone().pick(Time(0)), None);
    }
}
