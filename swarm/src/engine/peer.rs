//! What the engine knows about one connection.

use std::collections::VecDeque;
use std::time::Duration;

use super::peer_crowd::PeerCrowd;
use crate::bitfield::Bitfield;
use crate::ids::PeerId;
use crate::time::Time;
use crate::wire::{BlockRef, Decoder};

/// Where a connection is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Phase {
    /// We sent our handshake and wait for theirs.
    AwaitingHandshake,
    /// Handshakes exchanged; `bitfield`/`have_all`/`have_none` may come first.
    Connected {
        /// Any message other than the extended handshake arrived yet.
        first_message_seen: bool,
    },
}

/// A request we sent and are waiting on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Outstanding {
    pub block: BlockRef,
    pub since: Time,
}

/// One peer connection.
#[derive(Debug)]
pub(crate) struct Peer {
    pub phase: Phase,
    pub id: Option<PeerId>,
    pub decoder: Decoder,
    pub fast: bool,
    pub extended: bool,
    /// The peer's id for ut_metadata, from its extended handshake.
    pub ut_metadata: Option<u8>,
    /// The peer's id for lt_donthave, from its extended handshake.
    pub lt_donthave: Option<u8>,
    /// Requests the peer says it will queue (`reqq`).
    pub reqq: u32,
    pub pieces: Bitfield,
    pub am_choking: bool,
    pub am_interested: bool,
    pub peer_choking: bool,
    pub peer_interested: bool,
    /// When we last said `interested` (while we still are).
    pub interested_since: Option<Time>,
    /// Our requests to the peer.
    pub outstanding: Vec<Outstanding>,
    /// The peer's requests to us, oldest first.
    pub queued: VecDeque<BlockRef>,
    /// The shell's send buffer is over its high-water mark.
    pub send_blocked: bool,
    /// Requests to this peer timed out in a row; a snubbed peer gets one at a time.
    pub timeouts_in_row: u32,
    /// Blocks received that we had not asked this peer for.
    pub unrequested_blocks: u32,
    pub connected_at: Time,
    pub last_received: Time,
    pub last_sent: Time,
    pub unchoked_at: Option<Time>,
    pub download: Rate,
    pub upload: Rate,
    /// What it said and what we told it of the crowd (see `crowd.rs`).
    pub crowd: PeerCrowd,
}

impl Peer {
    pub fn new(now: Time, piece_count: u32, max_message_len: usize) -> Self {
        Peer {
            phase: Phase::AwaitingHandshake,
            id: None,
            decoder: Decoder::new(max_message_len),
            fast: false,
            extended: false,
            ut_metadata: None,
            lt_donthave: None,
            reqq: DEFAULT_REQQ,
            pieces: Bitfield::empty(piece_count),
            am_choking: true,
            am_interested: false,
            peer_choking: true,
            peer_interested: false,
            interested_since: None,
            outstanding: Vec::new(),
            queued: VecDeque::new(),
            send_blocked: false,
            timeouts_in_row: 0,
            unrequested_blocks: 0,
            connected_at: now,
            last_received: now,
            last_sent: now,
            unchoked_at: None,
            download: Rate::default(),
            upload: Rate::default(),
            crowd: PeerCrowd::new(piece_count),
        }
    }

    /// Handshakes are done.
    pub fn is_connected(&self) -> bool {
        matches!(self.phase, Phase::Connected { .. })
    }

    /// We know what it has and whether it takes part in web-seed elections
    /// (see `crowd.rs`): its availability message came, and its crowd
    /// state, unless it cannot send one (no extension protocol, or an
    /// extended handshake without the crowd extension).
    pub fn crowd_settled(&self) -> bool {
        matches!(
            self.phase,
            Phase::Connected {
                first_message_seen: true
            }
        ) && (!self.extended || self.crowd.stance_known)
    }

    /// How many requests to keep in flight: about one second of this peer's
    /// rate plus two (WebTorrent's rule), bounded by its `reqq`; a snubbed
    /// peer gets one.
    pub fn pipeline_target(&self, now: Time, max: u32) -> usize {
        if self.timeouts_in_row > 0 {
            return 1;
        }
        let per_sec = self.download.bytes_per_sec(now);
        let blocks = per_sec.div_ceil(u64::from(crate::wire::BLOCK_SIZE));
        let target = 2 + blocks.min(u64::from(max));
        target
            .min(u64::from(self.reqq.max(1)))
            .min(u64::from(max))
            .max(1) as usize
    }

    /// Blocks outstanding to this peer, for the picker.
    pub fn outstanding_blocks(&self) -> Vec<BlockRef> {
        self.outstanding.iter().map(|o| o.block).collect()
    }

    /// Removes `block` from our outstanding requests; whether it was there.
    pub fn take_outstanding(&mut self, block: BlockRef) -> bool {
        match self.outstanding.iter().position(|o| o.block == block) {
            Some(i) => {
                self.outstanding.swap_remove(i);
                true
            }
            None => false,
        }
    }
}

/// Requests a peer queues unless its extended handshake says otherwise
/// (libtorrent's and WebTorrent's default).
pub(crate) const DEFAULT_REQQ: u32 = 250;

/// A transfer rate over a sliding second, for choking and pipelining.
#[derive(Debug, Clone, Default)]
pub(crate) struct Rate {
    total: u64,
    window_start: Time,
    window_bytes: u64,
    /// Smoothed bytes per second of past windows.
    smoothed: u64,
}

impl Rate {
    const WINDOW: Duration = Duration::from_secs(1);

    pub fn record(&mut self, now: Time, bytes: u64) {
        self.roll(now);
        self.total += bytes;
        self.window_bytes += bytes;
    }

    /// The current estimate in bytes per second.
    pub fn bytes_per_sec(&self, now: Time) -> u64 {
        let elapsed = now.since(self.window_start);
        if elapsed >= Self::WINDOW * 3 {
            return 0;
        }
        self.smoothed.max(self.window_bytes)
    }

    fn roll(&mut self, now: Time) {
        let elapsed = now.since(self.window_start);
        if elapsed < Self::WINDOW {
            return;
        }
        let ms = elapsed.as_millis().max(1) as u64;
        let current = self.window_bytes.saturating_mul(1000) / ms;
        self.smoothed = if elapsed >= Self::WINDOW * 3 {
            current
        } else {
            (self.smoothed * 2 + current * 3) / 5
        };
        self.window_start = now;
        self.window_bytes = 0;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rate_tracks_and_decays() {
        let mut r = Rate::default();
        for i in 0..10 {
            r.record(Time(i * 100), 10_000);
        }
        r.record(Time(1_000), 0);
        let bps = r.bytes_per_sec(Time(1_100));
        assert!((40_000..=110_000).contains(&bps), "{bps}");
        assert_eq!(
            r.bytes_per_sec(Time(10_000)),
            0,
            "a silent peer has no rate"
        );
        assert_eq!(r.total, 100_000);
    }
}
