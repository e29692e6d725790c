//! The HTTP web seed as a source the engine asks for whole pieces.
//!
//! Two reasons to use it, and only these:
//! - **Deadline.** An urgent piece (see the picker) that no connected peer is
//!   expected to deliver in time. This is what makes the first second of a
//!   track as fast as plain HTTP.
//! - **Orphans.** We are idle — no request to any peer outstanding, nothing a
//!   peer has that we lack — and some piece is held by no connected peer.
//!   Before fetching, each idle peer waits a random time that grows with the
//!   number of peers it sees, so a crowd that arrives together spreads its
//!   fetches over distinct pieces and then trades them, instead of every fan
//!   pulling the same piece from the artist's server.
//!
//! Failures back off exponentially; a web seed that serves corrupt data three
//! times is abandoned.

use std::collections::HashMap;
use std::time::Duration;

use crate::time::Time;

use super::origin::Source;
use super::{Event, FetchId, Output, Torrent};

/// Web-seed pieces that fail verification before we stop asking it.
const MAX_CORRUPTIONS: u32 = 3;

/// A peer we have no rate for yet is assumed to manage this much.
const NOMINAL_PEER_RATE: u64 = 64 * 1024;

/// Bookkeeping of the web seed.
#[derive(Debug)]
pub(crate) struct WebSeed {
    enabled: bool,
    next_id: u64,
    in_flight: HashMap<FetchId, u32>,
    corruptions: u32,
    failures_in_row: u32,
    retry_at: Option<Time>,
    idle_until: Option<Time>,
}

impl WebSeed {
    pub fn new(enabled: bool) -> Self {
        WebSeed {
            enabled,
            next_id: 0,
            in_flight: HashMap::new(),
            corruptions: 0,
            failures_in_row: 0,
            retry_at: None,
            idle_until: None,
        }
    }

    /// When the engine next needs to look at the web seed.
    pub fn wake_at(&self) -> Option<Time> {
        match (self.retry_at, self.idle_until) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    /// Drops fetches of `piece` still in flight: it failed verification and
    /// was reset, so their claim on its blocks is gone. Their answers are
    /// ignored when they arrive, like any unknown fetch id.
    pub(crate) fn forget_piece(&mut self, piece: u32) {
        self.in_flight.retain(|_, p| *p != piece);
    }

    /// For `engine::invariants`: the piece of each fetch in flight.
    pub(crate) fn in_flight_pieces(&self) -> impl Iterator<Item = u32> + '_ {
        self.in_flight.values().copied()
    }

    pub fn record_corruption(&mut self) {
        self.corruptions += 1;
        if self.corruptions >= MAX_CORRUPTIONS {
            self.enabled = false;
        }
    }
}

impl Torrent {
    /// The web seed answered fetch `id`.
    pub fn handle_web_seed_data(&mut self, now: Time, id: FetchId, data: &[u8]) {
        self.now = now;
        let Some(piece) = self.web_seed.in_flight.remove(&id) else {
            return;
        };
        if data.len() != self.picker.piece_size(piece) as usize {
            self.web_seed_failed(piece);
            return;
        }
        self.web_seed.failures_in_row = 0;
        self.web_seed.retry_at = None;
        for index in 0..self.picker.block_count(piece) {
            let block = self.picker.block(piece, index);
            let start = block.offset as usize;
            let bytes = &data[start..start + block.length as usize];
            if self.picker.have().has(piece) {
                break;
            }
            self.store
                .write_block(piece, block.offset, bytes, Source::WebSeed);
            if self.picker.block_received(block) {
                self.stats.from_web_seed += u64::from(block.length);
                self.event(Event::Downloaded {
                    source: Source::WebSeed,
                    bytes: block.length,
                });
                self.cancel_duplicates(block, None);
            } else {
                self.stats.wasted += u64::from(block.length);
            }
        }
        if self.picker.piece_blocks_done(piece) {
            self.verify_piece(piece);
        }
        self.schedule_web_seed();
        self.request_everywhere();
    }

    /// Fetch `id` failed (HTTP error, network error, timeout).
    pub fn handle_web_seed_error(&mut self, now: Time, id: FetchId) {
        self.now = now;
        if let Some(piece) = self.web_seed.in_flight.remove(&id) {
            self.web_seed_failed(piece);
        }
    }

    fn web_seed_failed(&mut self, piece: u32) {
        self.picker.unrequest_piece(piece);
        let ws = &mut self.web_seed;
        ws.failures_in_row += 1;
        let backoff = Duration::from_millis(500u64 << ws.failures_in_row.min(7));
        ws.retry_at = Some(self.now + backoff);
    }

    /// Starts web-seed fetches that the rules in the module docs call for.
    pub(super) fn schedule_web_seed(&mut self) {
        let now = self.now;
        if !self.web_seed.enabled || self.picker.is_complete() {
            self.web_seed.idle_until = None;
            return;
        }
        if self.web_seed.retry_at.is_some_and(|t| now < t) {
            return;
        }
        self.web_seed.retry_at = None;
        while self.web_seed.in_flight.len() < self.config.web_seed_parallel {
            let deliverable = self.deliverable_urgent_pieces();
            let urgent = self
                .picker
                .pick_for_web_seed(false, &mut self.rng, |p| deliverable.contains(&p));
            let pick = match urgent {
                Some(p) => Some(p),
                None if self.idle_wait_over() => {
                    self.web_seed.idle_until = None;
                    self.picker
                        .pick_for_web_seed(true, &mut self.rng, |p| deliverable.contains(&p))
                }
                None => None,
            };
            let Some(piece) = pick else {
                return;
            };
            let id = FetchId(self.web_seed.next_id);
            self.web_seed.next_id += 1;
            self.web_seed.in_flight.insert(id, piece);
            self.outputs.push_back(Output::FetchWebSeed {
                id,
                offset: u64::from(piece) * u64::from(self.spec.piece_length),
                length: self.picker.piece_size(piece),
            });
        }
    }

    /// Whether we have been idle long enough to fetch an orphan piece; starts
    /// the random wait when idleness begins and resets it when it ends.
    fn idle_wait_over(&mut self) -> bool {
        let idle = self.web_seed.in_flight.is_empty()
            && self
                .peers
                .values()
                .all(|p| p.outstanding.is_empty() && !p.am_interested);
        if !idle {
            self.web_seed.idle_until = None;
            return false;
        }
        match self.web_seed.idle_until {
            Some(t) => self.now >= t,
            None => {
                let peers = self.peers.len() as u64;
                let max = self.config.web_seed_idle_wait.as_millis() as u64 * (1 + peers / 4);
                let wait = self.rng.u64(0..=max.max(1));
                self.web_seed.idle_until = Some(self.now + Duration::from_millis(wait));
                wait == 0
            }
        }
    }

    /// Urgent pieces some unchoking peer should deliver before they are due.
    fn deliverable_urgent_pieces(&self) -> Vec<u32> {
        let now = self.now;
        self.picker
            .urgent_pieces()
            .into_iter()
            .filter(|&piece| {
                let Some(due) = self.picker.due_in(piece) else {
                    return false;
                };
                let size = u64::from(self.picker.piece_size(piece));
                self.peers.values().any(|p| {
                    if p.peer_choking || !p.pieces.has(piece) {
                        return false;
                    }
                    let rate = p.download.bytes_per_sec(now).max(NOMINAL_PEER_RATE);
                    let needed = Duration::from_millis(size * 1000 / rate);
                    needed + Duration::from_millis(500) < due
                })
            })
            .collect()
    }
}
