//! How much we give: all we can, a capped rate, or nothing.
//!
//! A fan on cellular data or with a data saver on should not pay for other
//! fans' listening, yet should still listen as cheaply as possible for the
//! artist. So [`Upload::Off`] stops *uploading*, not *swarming*: the engine
//! chokes every peer (requests get a BEP 6 `reject`, or are dropped for a
//! peer without the fast extension), but keeps announcing, downloading from
//! peers that unchoke it and answering `ut_metadata` (a few KiB, once). A
//! peer that gives nothing is a plain leech to BEP 3 and WebTorrent peers,
//! which rank whom they unchoke by what they get and still give leeches an
//! optimistic slot. In the crowd's web-seed election (`crowd.rs`) it stands
//! aside: it says it fetches nothing for others, yields to any candidate
//! neighbour (elected only where there is none) and announces no
//! "getting", so no neighbour waits for a piece it would not pass on.
//!
//! [`Upload::Capped`] bounds the piece bytes we send, all peers together,
//! by a bucket of one second's worth: over any window of `w` seconds at
//! most `cap × (w + 1)` bytes plus one block go out. Blocks wait in their
//! peers' queues meanwhile, and the engine asks to be woken when the
//! bucket has credit again.

use std::time::Duration;

use crate::time::Time;

use super::{PeerKey, Torrent};

/// What the engine may upload ([`super::Config::upload`],
/// [`Torrent::set_upload`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Upload {
    /// Serve every request we can (choking decides whom).
    #[default]
    Unlimited,
    /// Serve at most this many piece bytes per second, all peers together
    /// (bursts up to one second's worth). `Capped(0)` is [`Upload::Off`].
    Capped(u32),
    /// Serve nobody: every peer is choked. We still download, announce and
    /// serve metadata.
    Off,
}

impl Upload {
    /// Whether nothing may be uploaded.
    pub fn is_off(self) -> bool {
        matches!(self, Upload::Off | Upload::Capped(0))
    }

    /// The cap in bytes per second, if any.
    pub fn cap(self) -> Option<u32> {
        match self {
            Upload::Capped(rate) => Some(rate),
            Upload::Unlimited | Upload::Off => None,
        }
    }
}

/// A token bucket in milli-bytes: each millisecond adds `rate` (bytes per
/// second = milli-bytes per millisecond), up to one second's worth. A block
/// may go out while the credit is positive and may take it below zero, so
/// a block larger than the cap still goes out, and the debt is paid back
/// before the next.
#[derive(Debug, Clone)]
pub(super) struct Bucket {
    credit: i64,
    at: Time,
}

impl Bucket {
    /// A full bucket for `rate` at `now`.
    pub(super) fn new(rate: u32, now: Time) -> Self {
        Bucket {
            credit: i64::from(rate) * 1000,
            at: now,
        }
    }

    fn refill(&mut self, rate: u32, now: Time) {
        let ms = i64::try_from(now.since(self.at).as_millis()).unwrap_or(i64::MAX);
        let full = i64::from(rate) * 1000;
        self.credit = self
            .credit
            .saturating_add(ms.saturating_mul(i64::from(rate)))
            .min(full);
        self.at = self.at.max(now);
    }

    /// When a block may go out at `rate`: `now` if the credit is positive.
    fn ready_at(&self, rate: u32, now: Time) -> Time {
        if self.credit > 0 || rate == 0 {
            return now;
        }
        // Milliseconds until the credit is positive again.
        let owed = u64::try_from(1 - self.credit).unwrap_or(u64::MAX);
        let ms = owed.div_ceil(u64::from(rate));
        now + Duration::from_millis(ms)
    }
}

impl Torrent {
    /// Changes what we may upload from now on (see the module docs). Off
    /// chokes every peer at once, dropping (rejecting) their queued
    /// requests; back on, the peers are re-ranked and unchoked as at a
    /// rechoke. A new cap starts with one second's credit.
    pub fn set_upload(&mut self, now: Time, upload: Upload) {
        self.now = now;
        let was_off = self.config.upload.is_off();
        self.config.upload = upload;
        self.upload_bucket = Bucket::new(upload.cap().unwrap_or(0), now);
        if upload.is_off() {
            self.choke_everyone();
        } else if was_off {
            self.rechoke();
        }
        self.sync_crowd_state();
        let keys: Vec<PeerKey> = self.peers.keys().copied().collect();
        for key in keys {
            self.serve(key);
        }
    }

    /// What we may upload now.
    pub fn upload(&self) -> Upload {
        self.config.upload
    }

    /// Whether a block may go out now under the cap (refilling the bucket).
    pub(super) fn upload_credit(&mut self) -> bool {
        match self.config.upload {
            Upload::Unlimited => true,
            Upload::Off | Upload::Capped(0) => false,
            Upload::Capped(rate) => {
                self.upload_bucket.refill(rate, self.now);
                self.upload_bucket.credit > 0
            }
        }
    }

    /// Takes `bytes` sent from the bucket.
    pub(super) fn charge_upload(&mut self, bytes: u32) {
        if let Upload::Capped(_) = self.config.upload {
            self.upload_bucket.credit = self
                .upload_bucket
                .credit
                .saturating_sub(i64::from(bytes) * 1000);
        }
    }

    /// When the cap lets the next block go out (`now` without a cap).
    pub(super) fn upload_ready_at(&self) -> Time {
        match self.config.upload {
            Upload::Capped(rate) => self.upload_bucket.ready_at(rate, self.now),
            Upload::Unlimited | Upload::Off => self.now,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_bucket_lets_a_second_out_then_the_rate() {
        let rate = 10_000;
        let mut b = Bucket::new(rate, Time(0));
        // A full second's worth goes at once, in debt by the last block.
        let mut sent = 0u64;
        while b.credit > 0 {
            b.credit -= 4096 * 1000;
            sent += 4096;
        }
        assert!((10_000..10_000 + 4096).contains(&sent), "{sent}");
        let ready = b.ready_at(rate, Time(0));
        assert!(ready > Time(0), "in debt: wait");
        b.refill(rate, ready);
        assert!(b.credit > 0, "positive again at {ready:?}");
        // Refilling never passes one second's worth.
        b.refill(rate, Time(60_000));
        assert_eq!(b.credit, i64::from(rate) * 1000);
    }

    #[test]
    fn a_slow_cap_still_accrues_credit_millisecond_by_millisecond() {
        let mut b = Bucket::new(500, Time(0));
        b.credit = -1000;
        for ms in 1..=3 {
            b.refill(500, Time(ms));
        }
        assert_eq!(b.credit, 500, "3 ms at 500 B/s is 1.5 bytes");
    }
}
