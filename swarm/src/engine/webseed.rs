//! The HTTP web seed as a source the engine asks for runs of whole pieces.
//!
//! When the web seed is used, and only then:
//! - **Deadline.** An urgent piece (see the picker) that no neighbour will
//!   deliver in time: one that unchokes us and has it gets our requests
//!   first, and the web seed takes the piece only if they go unanswered
//!   while it is due within the fallback time. In a crowd (see `crowd.rs`) the peer
//!   elected for the piece's group takes it at once (or after its
//!   stagger, at most [`super::Config::web_seed_stagger`]) and says so; everybody
//!   else waits for it to arrive from a neighbour until it is due within
//!   [`super::Config::web_seed_fallback`], and only then goes to HTTP. A
//!   listener alone is elected for everything: its first audio comes as fast
//!   as plain HTTP.
//! - **Orphans** (a peer that downloads without a player, e.g. the native
//!   `get`). We are idle — no request to any peer outstanding, nothing
//!   a peer has that we lack — and some piece is held by no connected peer
//!   and nobody said they are getting it. After a random wait that grows
//!   with the number of peers, the peer elected for it fetches it.
//!
//! Consecutive urgent pieces go out as one fetch (one HTTP Range request
//! for a single-file torrent) of up to [`super::Config::web_seed_max_run`]
//! bytes. Its body is handed in as it arrives
//! ([`Torrent::handle_web_seed_data`], any chunking) and verified piece by
//! piece, so the first piece plays while the rest is still on the wire.
//!
//! With [`super::Config::web_seed_needs_playback`] (the browser) nothing is
//! fetched while nothing plays — a page that joined the swarm on load but
//! was never played costs the artist nothing, unless its shell sets a
//! playback to prefetch the start (the browser session's `prefetch_head`)
//! — and orphans are never
//! fetched: a listener takes from the web seed only what its player needs
//! by when it needs it (in a crowd, a piece no neighbour has is rarely one
//! nobody has).
//!
//! Failures back off exponentially. Fetches that were running side by side
//! and fail together count once: the wait doubles only for a fetch asked
//! after the last failure. A fetch whose piece fails verification (the web
//! seed its only source) is read no further: one offence per fetch, and a
//! web seed that offends three times is abandoned. (With several web seeds
//! the node drops a wrong mirror at its first offence and the others go on:
//! see `node/webseeds.rs`.)

use std::time::Duration;

use crate::sorted::{SortedMap, SortedSet};
use crate::time::Time;

use super::crowd::rendezvous;
use super::origin::Source;
use super::{Event, FetchId, Output, Torrent};

/// Web-seed pieces that fail verification before we stop asking it.
const MAX_CORRUPTIONS: u32 = 3;

/// What a late piece leaves the web seed to deliver it: a round trip and
/// a piece's transfer, with room for a busy page.
const WEB_SEED_MARGIN: Duration = Duration::from_millis(250);

/// One fetch in flight: pieces `next..=last`, the bytes of `next` so far.
#[derive(Debug)]
struct Fetch {
    next: u32,
    last: u32,
    buf: Vec<u8>,
    /// Pieces of the run reset since (they failed verification from
    /// other sources): their bytes are dropped when they arrive.
    skip: SortedSet<u32>,
    /// When it was asked for.
    started: Time,
}

impl Fetch {
    fn pending(&self) -> impl Iterator<Item = u32> + '_ {
        (self.next..=self.last).filter(|p| !self.skip.contains(p))
    }
}

/// Bookkeeping of the web seed.
#[derive(Debug)]
pub(crate) struct WebSeed {
    enabled: bool,
    next_id: u64,
    in_flight: SortedMap<FetchId, Fetch>,
    corruptions: u32,
    /// Pieces it was blamed for that have not verified since.
    blamed: SortedSet<u32>,
    failures_in_row: u32,
    /// When the last failure that counted was (see `web_seed_failed`).
    failed_at: Option<Time>,
    retry_at: Option<Time>,
    idle_until: Option<Time>,
    /// When an elected fetcher's stagger ends for the first urgent piece
    /// waiting on it (see [`Torrent::stagger_left`]).
    stagger_until: Option<Time>,
}

impl WebSeed {
    pub fn new(enabled: bool) -> Self {
        WebSeed {
            enabled,
            next_id: 0,
            in_flight: SortedMap::new(),
            corruptions: 0,
            blamed: SortedSet::new(),
            failures_in_row: 0,
            failed_at: None,
            retry_at: None,
            idle_until: None,
            stagger_until: None,
        }
    }

    /// When the engine next needs to look at the web seed.
    pub fn wake_at(&self) -> Option<Time> {
        [self.retry_at, self.idle_until, self.stagger_until]
            .into_iter()
            .flatten()
            .min()
    }

    /// `piece` failed verification and was reset, so a fetch's claim on
    /// its blocks is gone: that fetch drops its bytes when they come.
    pub(crate) fn forget_piece(&mut self, piece: u32) {
        for f in self.in_flight.values_mut() {
            if (f.next..=f.last).contains(&piece) {
                if piece == f.next {
                    f.buf.clear();
                }
                f.skip.insert(piece);
            }
        }
    }

    /// For `engine::invariants`: the pieces every fetch in flight still claims.
    pub(crate) fn in_flight_pieces(&self) -> impl Iterator<Item = u32> + '_ {
        self.in_flight.values().flat_map(Fetch::pending)
    }

    /// Whether a fetch in flight still brings `piece`.
    pub(crate) fn claims(&self, piece: u32) -> bool {
        self.in_flight_pieces().any(|p| p == piece)
    }

    /// For `engine::invariants`: fetches in flight.
    pub(crate) fn fetch_count(&self) -> usize {
        self.in_flight.len()
    }

    /// The web seed sent `piece` wrong (once per offence: see
    /// [`WebSeed::take_blamed`]).
    pub fn record_corruption(&mut self, piece: u32) {
        self.blamed.insert(piece);
        self.corruptions += 1;
        if self.corruptions >= MAX_CORRUPTIONS {
            self.enabled = false;
        }
    }

    /// Whether the web seed was blamed for `piece` since it last verified;
    /// forgets it (the piece verifies now).
    pub fn take_blamed(&mut self, piece: u32) -> bool {
        self.blamed.remove(&piece)
    }

    pub fn is_enabled(&self) -> bool {
        self.enabled
    }
}

impl Torrent {
    /// The web seed sent more of fetch `id`'s body: the next `data.len()`
    /// bytes of the range it asked for, in order, cut anywhere. Each piece
    /// is verified as soon as its last byte is in; bytes past the range
    /// are ignored.
    pub fn handle_web_seed_data(&mut self, now: Time, id: FetchId, data: &[u8]) {
        self.now = now;
        let mut data = data;
        while !data.is_empty() {
            let Some(f) = self.web_seed.in_flight.get_mut(&id) else {
                break;
            };
            let size = self.picker.piece_size(f.next) as usize;
            let take = (size - f.buf.len()).min(data.len());
            f.buf.extend_from_slice(&data[..take]);
            data = &data[take..];
            if f.buf.len() < size {
                break;
            }
            let piece = f.next;
            let bytes = std::mem::take(&mut f.buf);
            let skipped = f.skip.remove(&piece);
            f.next += 1;
            if f.next > f.last {
                self.web_seed.in_flight.remove(&id);
                self.web_seed.failures_in_row = 0;
                self.web_seed.retry_at = None;
            }
            if !skipped && self.deliver_web_seed_piece(piece, &bytes) {
                // The rest of a body that sent one wrong piece is as
                // suspect: one offence per fetch, and what it still
                // claims goes back to the picker now (no back-off: the
                // seed answered).
                if let Some(f) = self.web_seed.in_flight.remove(&id) {
                    self.return_pieces(&f);
                }
                break;
            }
        }
        self.request_everywhere();
        self.schedule_web_seed();
    }

    /// Fetch `id`'s body ended. If it stopped short of the range, the
    /// missing pieces go back to the picker and the web seed backs off.
    pub fn handle_web_seed_end(&mut self, now: Time, id: FetchId) {
        self.now = now;
        if let Some(f) = self.web_seed.in_flight.remove(&id) {
            self.web_seed_failed(&f);
        }
    }

    /// Fetch `id` failed (HTTP error, network error, timeout): what did not
    /// arrive goes back to the picker and the web seed backs off.
    pub fn handle_web_seed_error(&mut self, now: Time, id: FetchId) {
        self.handle_web_seed_end(now, id);
    }

    /// Returns whether the piece failed verification with the web seed
    /// its only source.
    fn deliver_web_seed_piece(&mut self, piece: u32, data: &[u8]) -> bool {
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
        self.picker.piece_blocks_done(piece) && self.verify_piece(piece)
    }

    /// What `fetch` still claims goes back to the picker.
    fn return_pieces(&mut self, fetch: &Fetch) {
        for piece in fetch.pending() {
            self.picker.unrequest_piece(piece);
            self.forget_intent(piece);
        }
    }

    /// `fetch` failed: its pieces go back and the web seed backs off. The
    /// back-off doubles only for a fetch started since the last one was
    /// set: fetches running side by side that fail together (one outage,
    /// one refused mirror) are one failure, not several.
    fn web_seed_failed(&mut self, fetch: &Fetch) {
        self.return_pieces(fetch);
        let ws = &mut self.web_seed;
        if ws.failed_at.is_some_and(|t| fetch.started < t) && ws.failures_in_row > 0 {
            return;
        }
        ws.failures_in_row += 1;
        ws.failed_at = Some(self.now);
        let backoff = Duration::from_millis(500u64 << ws.failures_in_row.min(7));
        ws.retry_at = Some(self.now + backoff);
    }

    /// Whether this peer takes pieces from the web seed now: it has one,
    /// lacks pieces, and plays (unless it may fetch without playing).
    pub(super) fn fetches_web_seed(&self) -> bool {
        self.web_seed.is_enabled()
            && !self.picker.is_wanted_complete()
            && (self.picker.playback().is_some() || !self.config.web_seed_needs_playback)
    }

    /// Starts web-seed fetches that the rules in the module docs call for.
    pub(super) fn schedule_web_seed(&mut self) {
        self.web_seed.stagger_until = None;
        if !self.fetches_web_seed() {
            self.web_seed.idle_until = None;
            return;
        }
        if self.web_seed.retry_at.is_some_and(|t| self.now < t) {
            return;
        }
        self.web_seed.retry_at = None;
        while self.web_seed.in_flight.len() < self.config.web_seed_parallel {
            let Some((first, last)) = self.pick_web_seed_run() else {
                self.web_seed.stagger_until = self.stagger_ends();
                return;
            };
            self.start_web_seed_fetch(first, last);
        }
    }

    fn start_web_seed_fetch(&mut self, first: u32, last: u32) {
        for piece in first..=last {
            self.picker.claim_for_web_seed(piece);
        }
        let id = FetchId(self.web_seed.next_id);
        self.web_seed.next_id += 1;
        self.web_seed.in_flight.insert(
            id,
            Fetch {
                next: first,
                last,
                buf: Vec::new(),
                skip: SortedSet::new(),
                started: self.now,
            },
        );
        let offset = u64::from(first) * u64::from(self.spec.piece_length);
        let end = u64::from(last) * u64::from(self.spec.piece_length)
            + u64::from(self.picker.piece_size(last));
        self.outputs.push_back(Output::FetchWebSeed {
            id,
            offset,
            length: u32::try_from(end - offset).unwrap_or(u32::MAX),
        });
        let pieces: Vec<u32> = (first..=last).collect();
        self.announce_getting(&pieces);
    }

    /// The next run of pieces to fetch, if the rules say so.
    fn pick_web_seed_run(&mut self) -> Option<(u32, u32)> {
        let urgent = self.picker.urgent_pieces();
        let may_take = |t: &Self, p: u32| {
            t.picker.web_seed_eligible(p) && !t.web_seed.claims(p) && t.web_seed_turn(p)
        };
        let max_run = u64::from(self.config.web_seed_max_run.max(1));
        for (i, &first) in urgent.iter().enumerate() {
            if !may_take(self, first) {
                continue;
            }
            let mut last = first;
            let mut bytes = u64::from(self.picker.piece_size(first));
            for &next in &urgent[i + 1..] {
                let size = u64::from(self.picker.piece_size(next));
                if next != last + 1 || bytes + size > max_run || !may_take(self, next) {
                    break;
                }
                last = next;
                bytes += size;
            }
            return Some((first, last));
        }
        // A listener takes only what its player needs by when it needs it:
        // a crowd's neighbourhoods overlap, and a piece no neighbour has is
        // rarely one nobody has.
        if self.config.web_seed_needs_playback || !self.idle_wait_over() {
            return None;
        }
        self.web_seed.idle_until = None;
        let orphan = self
            .picker
            .orphans()
            .into_iter()
            .find(|&p| !self.someone_has_or_gets(p) && self.elected(p));
        orphan.map(|p| (p, p))
    }

    /// Whether it is our turn to take urgent `piece` from the web seed.
    /// Before it is due within the fallback time: only if we are its
    /// elected fetcher and no neighbour has it or says it is getting it.
    /// After: unless a neighbour is about to deliver it in time
    /// ([`Torrent::delivery_expected`]): early enough to leave the web seed
    /// [`WEB_SEED_MARGIN`] to deliver it instead, but at least
    /// `peer_patience_min` (a piece due now, before first audio).
    ///
    /// While our view of the crowd is still filling in (neighbours on
    /// their way or just connected: [`Torrent::crowd_pending`]) and no
    /// neighbour we know has the piece, we fall back later, at
    /// `web_seed_fallback_coming`: the ones still coming may well have it.
    fn web_seed_turn(&self, piece: u32) -> bool {
        if self.web_seed_held_until().is_some() {
            return false;
        }
        let due = self.picker.due_in(piece).unwrap_or(Duration::ZERO);
        let fallback = if self.crowd_pending() && !self.peers.values().any(|p| p.pieces.has(piece))
        {
            self.config.web_seed_fallback_coming
        } else {
            self.config.web_seed_fallback
        };
        if due > fallback {
            return due > self.config.web_seed_fallback
                && !self.someone_has_or_gets(piece)
                && self.elected(piece)
                && self.stagger_left(piece, due).is_zero();
        }
        let budget = due
            .saturating_sub(WEB_SEED_MARGIN)
            .max(self.config.peer_patience_min);
        let patience = budget.min(self.config.peer_patience);
        !self.delivery_expected(piece, budget, patience)
    }

    /// How long the elected fetcher of `piece` (due in `due`) still waits
    /// before taking it early: `web_seed_stagger` scaled by how low our
    /// rendezvous weight for its group ranks in a crowd of the tracker's
    /// size (nothing while no neighbour is connected). Fans whose playheads are within milliseconds of each
    /// other (a crowd arriving faster than an intent crosses the mesh) and
    /// who are each elected among their own neighbours would otherwise all
    /// fetch the moment the piece turns urgent, before any of their
    /// "getting" reaches the others; staggered by the same weight every
    /// peer computes, the highest fires first and its intent quiets the
    /// rest. A fan elected in every view still fetches at least
    /// `urgent - web_seed_stagger` before the deadline.
    pub(super) fn stagger_left(&self, piece: u32, due: Duration) -> Duration {
        let stagger = self.config.web_seed_stagger;
        if stagger.is_zero() || !self.peers.values().any(|p| p.is_connected()) {
            return Duration::ZERO;
        }
        // u in (0, 1]: 1 - our weight. Among n fans the k-th highest
        // weight has u ≈ k / n, so on a log scale the few fans that could
        // be elected anywhere are spread over the stagger rather than
        // crowded into its first milliseconds: the best waits nothing, the
        // k-th ln(k) / ln(n) of it.
        let weight = rendezvous(&self.our_id, self.group_of(piece));
        let u = ((u64::MAX - weight) as f64 + 1.0) / 2f64.powi(64);
        let n = (self.crowd_size.max(1) + 1) as f64;
        let share = (1.0 + u.ln() / n.ln()).clamp(0.0, 1.0);
        let fire_at = self
            .config
            .picker
            .urgent
            .saturating_sub(stagger.mul_f64(share));
        due.saturating_sub(fire_at)
    }

    /// When the first urgent piece we would take early but for our
    /// stagger becomes ours to take: a wake-up, so the stagger is kept to
    /// the millisecond rather than to the next tick.
    fn stagger_ends(&self) -> Option<Time> {
        if self.config.web_seed_stagger.is_zero() || self.web_seed_held_until().is_some() {
            return None;
        }
        self.picker
            .urgent_pieces()
            .iter()
            .filter(|&&p| self.picker.web_seed_eligible(p) && !self.web_seed.claims(p))
            .filter_map(|&p| {
                let due = self.picker.due_in(p)?;
                let left = self.stagger_left(p, due);
                (!left.is_zero()
                    && due > self.config.web_seed_fallback
                    && !self.someone_has_or_gets(p)
                    && self.elected(p))
                // Rounded up to the engine's millisecond clock: woken a
                // fraction of a millisecond early, it would find its turn
                // not yet come and ask to be woken now again.
                .then(|| {
                    let ms = u64::try_from(left.as_micros().div_ceil(1000)).unwrap_or(u64::MAX);
                    self.now + Duration::from_millis(ms)
                })
            })
            .min()
    }

    /// Until when a big crowd's newcomer holds the web seed while its
    /// neighbours are on their way (see [`Torrent::set_peers_coming`]);
    /// `None` when it does not. The first neighbours to connect may well
    /// be newcomers too, with nothing yet: the hold lasts its time.
    pub(super) fn web_seed_held_until(&self) -> Option<Time> {
        let until = self.started + self.config.first_peer_wait;
        (self.peers_coming
            && self.crowd_size >= self.config.web_seed_hold_crowd
            && self.now < until)
            .then_some(until)
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
}
