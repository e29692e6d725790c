//! What to ask for next: deadline-aware for streaming, rarest-first for the swarm.
//!
//! The picker knows which pieces we have, which blocks of unfinished pieces
//! are missing, requested or received, how many connected peers have each
//! piece, and where playback is. It hands out blocks in this order:
//!
//! 1. **Urgent**: pieces the player needs within [`PickerConfig::urgent`] (and
//!    always the first [`PickerConfig::min_urgent_pieces`] from the playhead).
//!    Urgent blocks may be requested from two peers at once.
//! 2. **Partial**: pieces already started, so they finish and can be re-served.
//! 3. **Read-ahead**: pieces needed within [`PickerConfig::read_ahead`], in
//!    playback order.
//! 4. **Rarest first** for everything else, ties broken by a per-torrent
//!    random order, so the swarm keeps every piece alive. While an urgent
//!    piece is still incomplete no piece in this class is started: bandwidth
//!    goes where playback is.
//! 5. **Endgame**: once every missing block is requested, blocks may be asked
//!    of a second peer.
//!
//! Without a playhead only classes 2, 4 and 5 apply.
//!
//! **Selection** (an album's single-track player): only *wanted* pieces are
//! ever picked, for peers and the web seed alike; the rest are neither
//! urgent nor missing to the picker (they are still served when had).
//! Some wanted pieces may be *look-ahead* (the first pieces of the next
//! track, for gapless playback): never asked of two peers at once, and in
//! the rarest-first class after every other wanted piece. Their deadline
//! comes from the playhead like any other piece's, and since the next
//! file follows the playing one in the stream, the playing file's pieces
//! always come first in the deadline classes. Some look-ahead pieces may
//! be *due early* ([`Picker::set_wanted`]'s `due_by`): due when the
//! stream reaches an offset before their own place in it (an Ogg file's
//! last page, which a browser reads before it plays the file, is due when
//! the file starts), so they turn urgent with the next file's first piece.
//!
//! Invariants (see `engine/PIECES.md` for the whole story): a piece is either
//! had (`have`), partial (an entry in `partial`), or untouched; a partial
//! piece has at least one block requested or received; `availability[p]`
//! counts connected peers that have `p`.

use std::ops::Range;
use std::time::Duration;

use crate::bitfield::Bitfield;
use crate::sorted::{SortedMap, sort_keys};
use crate::wire::{BLOCK_SIZE, BlockRef};

/// Tunables of the picker.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PickerConfig {
    /// Pieces due within this are urgent.
    pub urgent: Duration,
    /// Pieces due within this (and not urgent) are read-ahead.
    pub read_ahead: Duration,
    /// Pieces from the playhead that are urgent whatever the bitrate.
    pub min_urgent_pieces: u32,
    /// Playback rate assumed until the shell tells one (40 kB/s = 320 kbit/s).
    pub default_bytes_per_sec: u64,
    /// Urgent pieces due within this may have each block asked of two
    /// peers at once; further ones of one. Asking twice hedges against a
    /// slow peer, but every second copy that arrives is upload the crowd
    /// spent for nothing, so only where a stall is close.
    pub duplicate_within: Duration,
}

impl Default for PickerConfig {
    fn default() -> Self {
        PickerConfig {
            urgent: Duration::from_secs(6),
            read_ahead: Duration::from_secs(40),
            min_urgent_pieces: 3,
            default_bytes_per_sec: 40_000,
            duplicate_within: Duration::from_secs(1),
        }
    }
}

/// Where playback is: the byte the player needs next and how fast it reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Playback {
    /// Byte offset in the torrent's stream the player reads next.
    pub offset: u64,
    /// Bytes per second the player consumes; `None` for the configured default.
    pub bytes_per_sec: Option<u64>,
}

/// How soon a piece is needed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Urgency {
    /// Needed by the player within the urgent window.
    Urgent,
    /// Needed within the read-ahead window.
    ReadAhead,
    /// Not needed soon (or no playhead).
    Normal,
}

/// State of one block of an unfinished piece.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum BlockState {
    Missing,
    /// Asked of this many peers (or the web seed) and not yet arrived.
    Requested(u8),
    Received,
}

#[derive(Debug, Clone)]
struct Partial {
    blocks: Vec<BlockState>,
    received: u32,
}

/// The piece picker of one torrent.
#[derive(Debug, Clone)]
pub struct Picker {
    config: PickerConfig,
    piece_length: u32,
    total_length: u64,
    have: Bitfield,
    availability: Vec<u32>,
    /// Random rank per piece: the tie-break among equally rare pieces.
    tie_break: Vec<u32>,
    partial: SortedMap<u32, Partial>,
    playback: Option<Playback>,
    /// Bytes from the playhead that are due now, whatever the pace (see
    /// [`Picker::set_start_window`]).
    start_window: u64,
    /// Pieces we fetch (all, unless a selection says otherwise).
    wanted: Bitfield,
    /// Wanted pieces that are look-ahead: last among equals, never doubled.
    look_ahead: Bitfield,
    /// Pieces due when the stream reaches an offset before their own:
    /// (pieces, that offset in the torrent's stream).
    due_by: Vec<(Range<u32>, u64)>,
}

impl Picker {
    /// A picker for a torrent with nothing downloaded. `rng` only orders ties.
    pub fn new(
        config: PickerConfig,
        piece_length: u32,
        total_length: u64,
        rng: &mut fastrand::Rng,
    ) -> Self {
        let count = piece_count(piece_length, total_length);
        let mut tie_break: Vec<u32> = (0..count).collect();
        rng.shuffle(&mut tie_break);
        Picker {
            config,
            piece_length,
            total_length,
            have: Bitfield::empty(count),
            availability: vec![0; count as usize],
            tie_break,
            partial: SortedMap::new(),
            playback: None,
            start_window: 0,
            wanted: Bitfield::full(count),
            look_ahead: Bitfield::empty(count),
            due_by: Vec::new(),
        }
    }

    /// Wants exactly the pieces in `wanted` (ranges, clipped to the
    /// torrent), `look_ahead` ones among them at low priority. Pieces
    /// already requested stay requested; nothing unwanted is picked again.
    /// `due_by` pieces are look-ahead too (unless wanted anyway) and due
    /// when the stream reaches the offset given with them, if that comes
    /// before their own place in it.
    pub fn set_wanted(
        &mut self,
        wanted: &[Range<u32>],
        look_ahead: &[Range<u32>],
        due_by: &[(Range<u32>, u64)],
    ) {
        let count = self.piece_count();
        self.wanted = Bitfield::empty(count);
        self.look_ahead = Bitfield::empty(count);
        for range in wanted {
            for p in range.start..range.end.min(count) {
                self.wanted.set(p);
            }
        }
        let early = due_by.iter().map(|(range, _)| range);
        for range in look_ahead.iter().chain(early) {
            for p in range.start..range.end.min(count) {
                if !self.wanted.has(p) {
                    self.wanted.set(p);
                    self.look_ahead.set(p);
                }
            }
        }
        self.due_by = due_by
            .iter()
            .filter(|(range, _)| range.start < range.end.min(count))
            .map(|(range, offset)| (range.start..range.end.min(count), *offset))
            .collect();
    }

    /// Wants every piece again (the default).
    pub fn want_all(&mut self) {
        let count = self.piece_count();
        self.wanted = Bitfield::full(count);
        self.look_ahead = Bitfield::empty(count);
        self.due_by.clear();
    }

    /// Whether `piece` is wanted and not had: one the picker may hand out.
    pub fn wants(&self, piece: u32) -> bool {
        self.wanted.has(piece) && !self.have.has(piece)
    }

    /// Whether every piece is wanted (no selection).
    pub fn wants_all(&self) -> bool {
        self.wanted.is_full()
    }

    /// The wanted pieces as runs `start..end`, in order; `None` when every
    /// piece is wanted.
    pub fn wanted_runs(&self) -> Option<Vec<Range<u32>>> {
        if self.wanted.is_full() {
            return None;
        }
        let mut runs: Vec<Range<u32>> = Vec::new();
        for p in self.wanted.ones() {
            match runs.last_mut() {
                Some(run) if run.end == p => run.end = p + 1,
                _ => runs.push(p..p + 1),
            }
        }
        Some(runs)
    }

    /// Every wanted piece is had (all of them without a selection).
    pub fn is_wanted_complete(&self) -> bool {
        if self.wanted.is_full() {
            return self.have.is_full();
        }
        self.wanted.ones().all(|p| self.have.has(p))
    }

    /// Pieces in the torrent.
    pub fn piece_count(&self) -> u32 {
        self.have.len()
    }

    /// Bytes in `piece` (the last one is shorter); 0 out of range.
    pub fn piece_size(&self, piece: u32) -> u32 {
        if piece >= self.piece_count() {
            return 0;
        }
        let start = u64::from(piece) * u64::from(self.piece_length);
        (self.total_length - start).min(u64::from(self.piece_length)) as u32
    }

    /// Blocks in `piece`.
    pub fn block_count(&self, piece: u32) -> u32 {
        self.piece_size(piece).div_ceil(BLOCK_SIZE)
    }

    /// The block of `piece` at `index`.
    pub fn block(&self, piece: u32, index: u32) -> BlockRef {
        let offset = index * BLOCK_SIZE;
        BlockRef {
            piece,
            offset,
            length: (self.piece_size(piece) - offset).min(BLOCK_SIZE),
        }
    }

    /// Whether `block` is a well-formed block of this torrent (in range,
    /// block-aligned, full length unless it is the last of its piece).
    pub fn is_valid_block(&self, block: BlockRef) -> bool {
        let size = self.piece_size(block.piece);
        size > 0
            && block.offset.is_multiple_of(BLOCK_SIZE)
            && block.offset < size
            && block.length == (size - block.offset).min(BLOCK_SIZE)
    }

    /// The pieces we have.
    pub fn have(&self) -> &Bitfield {
        &self.have
    }

    /// We have every piece.
    pub fn is_complete(&self) -> bool {
        self.have.is_full()
    }

    /// Connected peers that have `piece`.
    pub fn availability(&self, piece: u32) -> u32 {
        self.availability.get(piece as usize).copied().unwrap_or(0)
    }

    /// A peer with these pieces connected (or sent its bitfield).
    pub fn add_peer_pieces(&mut self, pieces: &Bitfield) {
        for p in pieces.ones() {
            self.availability[p as usize] += 1;
        }
    }

    /// A peer with these pieces went away.
    pub fn remove_peer_pieces(&mut self, pieces: &Bitfield) {
        for p in pieces.ones() {
            let a = &mut self.availability[p as usize];
            *a = a.saturating_sub(1);
        }
    }

    /// A peer announced `have` for `piece` (already range-checked).
    pub fn add_peer_piece(&mut self, piece: u32) {
        if let Some(a) = self.availability.get_mut(piece as usize) {
            *a += 1;
        }
    }

    /// A peer no longer has `piece` (it rejected a request for it while
    /// unchoking us: it evicted the piece).
    pub fn remove_peer_piece(&mut self, piece: u32) {
        if let Some(a) = self.availability.get_mut(piece as usize) {
            *a = a.saturating_sub(1);
        }
    }

    /// Sets (or clears) where playback is.
    pub fn set_playback(&mut self, playback: Option<Playback>) {
        self.playback = playback;
    }

    /// Makes the pieces holding the `bytes` after the playhead due now,
    /// not at the player's pace (0: none, the default). A player that has
    /// not started yet reads what it needs to start as fast as it comes,
    /// as from plain HTTP; at its pace only the next piece would be due
    /// within a web seed's fallback time, and the start would come a piece
    /// per round trip.
    pub fn set_start_window(&mut self, bytes: u64) {
        self.start_window = bytes;
    }

    /// The current playback position, if any.
    pub fn playback(&self) -> Option<Playback> {
        self.playback
    }

    /// How soon `piece` is needed, given playback.
    pub fn urgency(&self, piece: u32) -> Urgency {
        let Some(pb) = self.playback else {
            return Urgency::Normal;
        };
        let start = u64::from(piece) * u64::from(self.piece_length);
        let end = start + u64::from(self.piece_size(piece));
        if end <= pb.offset {
            return Urgency::Normal; // already played
        }
        let head_piece = (pb.offset / u64::from(self.piece_length)) as u32;
        if piece < head_piece.saturating_add(self.config.min_urgent_pieces) {
            return Urgency::Urgent;
        }
        let due = self.time_until_due(piece, pb);
        if due < self.config.urgent {
            Urgency::Urgent
        } else if due < self.config.read_ahead {
            Urgency::ReadAhead
        } else {
            Urgency::Normal
        }
    }

    /// How long until the player reaches `piece` (zero if it is there already).
    pub fn due_in(&self, piece: u32) -> Option<Duration> {
        self.playback.map(|pb| self.time_until_due(piece, pb))
    }

    /// Picks up to `max` blocks of urgent pieces only (the head of the
    /// class-1 order), for requests beyond a peer's pipeline target.
    pub fn pick_urgent_blocks(
        &mut self,
        peer_has: &Bitfield,
        already: &[BlockRef],
        max: usize,
    ) -> Vec<BlockRef> {
        let mut out = Vec::new();
        for p in self.urgent_pieces() {
            if out.len() >= max {
                break;
            }
            if peer_has.has(p) {
                let limit = self.urgent_request_limit(p);
                self.take_from_piece(p, limit, already, max, &mut out);
            }
        }
        out
    }

    /// Requests at once per block of urgent `piece`: two when it is due
    /// within [`PickerConfig::duplicate_within`], else one.
    fn urgent_request_limit(&self, piece: u32) -> u8 {
        if self.look_ahead.has(piece) {
            return 1;
        }
        match self.due_in(piece) {
            Some(due) if due <= self.config.duplicate_within => 2,
            _ => 1,
        }
    }

    /// Picks up to `max` blocks to request from a peer that has `peer_has`.
    /// `already` lists blocks outstanding to this peer, which are never
    /// asked of it twice. Picked blocks are marked requested.
    pub fn pick_blocks(
        &mut self,
        peer_has: &Bitfield,
        already: &[BlockRef],
        max: usize,
    ) -> Vec<BlockRef> {
        let mut out = Vec::new();
        if max == 0 || self.is_wanted_complete() {
            return out;
        }
        let urgent = self.urgent_pieces();
        // 1. Urgent pieces; the most urgent up to two requests per block.
        for &p in &urgent {
            if peer_has.has(p) {
                let limit = self.urgent_request_limit(p);
                self.take_from_piece(p, limit, already, max, &mut out);
            }
        }
        // 2. Pieces already started.
        let started: Vec<u32> = self.partial.keys().copied().collect();
        for p in started {
            if peer_has.has(p) && self.wanted.has(p) {
                self.take_from_piece(p, 1, already, max, &mut out);
            }
        }
        // 3. Read-ahead, in playback order.
        for p in self.read_ahead_pieces() {
            if peer_has.has(p) {
                self.take_from_piece(p, 1, already, max, &mut out);
            }
        }
        // 4. Rarest first; held back while an urgent piece is incomplete.
        if out.len() < max && urgent.is_empty() {
            // Look-ahead pieces after the rest: the availability key
            // carries them past every real count.
            let mut candidates: Vec<(u64, u64, u64)> = peer_has
                .ones()
                .filter(|&p| self.wants(p) && !self.partial.contains_key(&p))
                .map(|p| {
                    let (i, later) = (p as usize, self.look_ahead.has(p));
                    (
                        u64::from(self.availability[i]) + if later { 1 << 32 } else { 0 },
                        u64::from(self.tie_break[i]),
                        u64::from(p),
                    )
                })
                .collect();
            sort_keys(&mut candidates);
            for p in candidates.into_iter().map(|(_, _, p)| p as u32) {
                if out.len() >= max {
                    break;
                }
                self.take_from_piece(p, 1, already, max, &mut out);
            }
        }
        // 5. Endgame: every missing block is requested somewhere.
        if out.len() < max && self.all_missing_requested() {
            let started: Vec<u32> = self.partial.keys().copied().collect();
            for p in started {
                if peer_has.has(p) && self.wanted.has(p) {
                    self.take_from_piece(p, 2, already, max, &mut out);
                }
            }
        }
        out
    }

    /// Whether the web seed may be asked for `piece`: it is in range, wanted
    /// and we lack it. A piece partly received or asked of peers qualifies too
    /// (the web seed then races them; blocks already in are not used), so
    /// a slow peer holding every block of an urgent piece cannot stall
    /// playback. That the web seed is not already fetching it is the
    /// engine's to check.
    pub fn web_seed_eligible(&self, piece: u32) -> bool {
        piece < self.piece_count() && self.wants(piece)
    }

    /// Marks every block of `piece` requested once more: a web-seed fetch
    /// now covers it.
    pub fn claim_for_web_seed(&mut self, piece: u32) {
        if piece >= self.piece_count() || self.have.has(piece) {
            return;
        }
        let part = self.partial_mut(piece);
        for b in part.blocks.iter_mut() {
            *b = match *b {
                BlockState::Missing => BlockState::Requested(1),
                BlockState::Requested(n) => BlockState::Requested(n.saturating_add(1)),
                BlockState::Received => BlockState::Received,
            };
        }
    }

    /// Pieces no connected peer has and nobody was asked for, read-ahead
    /// pieces first (in playback order), then the rest ascending: what the
    /// web seed may take when we are idle.
    pub fn orphans(&self) -> Vec<u32> {
        let orphan =
            |p: u32| self.wants(p) && !self.partial.contains_key(&p) && self.availability(p) == 0;
        let ahead: Vec<u32> = self
            .read_ahead_pieces()
            .into_iter()
            .filter(|&p| orphan(p))
            .collect();
        let rest = (0..self.piece_count()).filter(|&p| orphan(p) && !ahead.contains(&p));
        let mut all = ahead.clone();
        all.extend(rest);
        all
    }

    /// A request for `block` ended without data (timeout, choke, reject, peer
    /// gone, cancelled, web seed failure).
    pub fn unrequest(&mut self, block: BlockRef) {
        let index = (block.offset / BLOCK_SIZE) as usize;
        if let Some(part) = self.partial.get_mut(&block.piece) {
            if let Some(state) = part.blocks.get_mut(index) {
                *state = match *state {
                    BlockState::Requested(n) if n > 1 => BlockState::Requested(n - 1),
                    BlockState::Requested(_) => BlockState::Missing,
                    other => other,
                };
            }
            if part.received == 0 && part.blocks.iter().all(|b| *b == BlockState::Missing) {
                self.partial.remove(&block.piece);
            }
        }
    }

    /// Every block of `piece` that the web seed was asked for, un-asked.
    pub fn unrequest_piece(&mut self, piece: u32) {
        for i in 0..self.block_count(piece) {
            let block = self.block(piece, i);
            self.unrequest(block);
        }
    }

    /// A block arrived. Returns false if it was not wanted (already had),
    /// true if it is new; then `piece_blocks_done` tells whether the piece is
    /// ready to verify.
    pub fn block_received(&mut self, block: BlockRef) -> bool {
        if self.have.has(block.piece) || !self.is_valid_block(block) {
            return false;
        }
        let index = (block.offset / BLOCK_SIZE) as usize;
        let part = self.partial_mut(block.piece);
        match part.blocks[index] {
            BlockState::Received => false,
            _ => {
                part.blocks[index] = BlockState::Received;
                part.received += 1;
                true
            }
        }
    }

    /// All blocks of `piece` have arrived.
    pub fn piece_blocks_done(&self, piece: u32) -> bool {
        self.partial
            .get(&piece)
            .is_some_and(|p| p.received as usize == p.blocks.len())
    }

    /// `piece` passed its hash check.
    pub fn piece_verified(&mut self, piece: u32) {
        self.partial.remove(&piece);
        self.have.set(piece);
    }

    /// `piece`, verified earlier, is no longer held (its bytes were evicted
    /// and playback needs it): it is missing again.
    pub fn piece_forgotten(&mut self, piece: u32) {
        self.have.clear(piece);
    }

    /// `piece` failed its hash check: every block is missing again.
    pub fn piece_failed(&mut self, piece: u32) {
        self.partial.remove(&piece);
    }

    /// No block of a wanted piece is neither received nor requested.
    pub fn all_missing_requested(&self) -> bool {
        let untouched =
            (0..self.piece_count()).any(|p| self.wants(p) && !self.partial.contains_key(&p));
        !untouched
            && self
                .partial
                .iter()
                .filter(|(p, _)| self.wanted.has(**p))
                .all(|(_, part)| part.blocks.iter().all(|b| *b != BlockState::Missing))
    }

    /// Pieces that are urgent and not yet had, in playback order.
    pub fn urgent_pieces(&self) -> Vec<u32> {
        self.pieces_by_urgency(Urgency::Urgent)
    }

    fn read_ahead_pieces(&self) -> Vec<u32> {
        self.pieces_by_urgency(Urgency::ReadAhead)
    }

    /// The wanted pieces of urgency `want`, soonest due first.
    fn pieces_by_urgency(&self, want: Urgency) -> Vec<u32> {
        let Some(pb) = self.playback else {
            return Vec::new();
        };
        let head = ((pb.offset / u64::from(self.piece_length)) as u32).min(self.piece_count());
        let mut pieces: Vec<u32> = (head..self.piece_count())
            .take_while(|&p| self.urgency(p) <= want)
            .filter(|&p| self.wants(p) && self.urgency(p) == want)
            .collect();
        // Pieces due early lie beyond the scan (or in it, already found).
        let early: Vec<u32> = self
            .due_by
            .iter()
            .flat_map(|(range, _)| range.clone())
            .filter(|&p| self.wants(p) && self.urgency(p) == want && !pieces.contains(&p))
            .collect();
        if !early.is_empty() {
            pieces.extend(early);
            let mut keyed: Vec<(u64, u64, u64)> = pieces
                .iter()
                .map(|&p| (self.due_offset(p), u64::from(p), 0))
                .collect();
            sort_keys(&mut keyed);
            pieces = keyed.into_iter().map(|(_, p, _)| p as u32).collect();
        }
        pieces
    }

    /// Where in the stream `piece` is due: its own start, or earlier when
    /// it is due early (`due_by`).
    fn due_offset(&self, piece: u32) -> u64 {
        let own = u64::from(piece) * u64::from(self.piece_length);
        self.due_by
            .iter()
            .filter(|(range, _)| range.contains(&piece))
            .map(|&(_, offset)| offset)
            .fold(own, u64::min)
    }

    fn time_until_due(&self, piece: u32, pb: Playback) -> Duration {
        let start = self.due_offset(piece);
        if start < pb.offset.saturating_add(self.start_window) {
            return Duration::ZERO;
        }
        let rate = pb
            .bytes_per_sec
            .unwrap_or(self.config.default_bytes_per_sec)
            .max(1);
        Duration::from_millis(start.saturating_sub(pb.offset).saturating_mul(1000) / rate)
    }

    fn partial_mut(&mut self, piece: u32) -> &mut Partial {
        let blocks = self.block_count(piece) as usize;
        self.partial.entry(piece).or_insert_with(|| Partial {
            blocks: vec![BlockState::Missing; blocks],
            received: 0,
        })
    }

    /// For `engine::invariants`: the block states of a partial piece and its
    /// received count as stored, or `None` if the piece is not partial.
    pub(crate) fn partial_blocks(&self, piece: u32) -> Option<(&[BlockState], u32)> {
        self.partial
            .get(&piece)
            .map(|part| (part.blocks.as_slice(), part.received))
    }

    /// For `engine::invariants`: every partial piece, ascending.
    pub(crate) fn partial_pieces(&self) -> impl Iterator<Item = u32> + '_ {
        self.partial.keys().copied()
    }

    /// Marks and pushes blocks of `piece` requested fewer than `limit` times.
    fn take_from_piece(
        &mut self,
        piece: u32,
        limit: u8,
        already: &[BlockRef],
        max: usize,
        out: &mut Vec<BlockRef>,
    ) {
        if out.len() >= max || self.have.has(piece) {
            return;
        }
        let count = self.block_count(piece);
        for i in 0..count {
            if out.len() >= max {
                break;
            }
            let block = self.block(piece, i);
            if already.contains(&block) || out.contains(&block) {
                continue;
            }
            let part = self.partial_mut(piece);
            let state = &mut part.blocks[i as usize];
            match *state {
                BlockState::Missing => *state = BlockState::Requested(1),
                BlockState::Requested(n) if n < limit => *state = BlockState::Requested(n + 1),
                _ => continue,
            }
            out.push(block);
        }
        if self
            .partial
            .get(&piece)
            .is_some_and(|p| p.received == 0 && p.blocks.iter().all(|b| *b == BlockState::Missing))
        {
            self.partial.remove(&piece);
        }
    }
}

/// Number of pieces for a stream of `total_length` bytes.
pub fn piece_count(piece_length: u32, total_length: u64) -> u32 {
    if piece_length == 0 {
        return 0;
    }
    u32::try_from(total_length.div_ceil(u64::from(piece_length))).unwrap_or(u32::MAX)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::single_range_in_vec_init)] // lists of piece ranges, as `set_wanted` takes
    use super::*;

    const PL: u32 = 4 * BLOCK_SIZE;

    fn picker(pieces: u32) -> Picker {
        let mut rng = fastrand::Rng::with_seed(1);
        Picker::new(
            PickerConfig::default(),
            PL,
            u64::from(PL) * u64::from(pieces) - 100,
            &mut rng,
        )
    }

    #[test]
    fn last_piece_and_block_are_short() {
        let p = picker(3);
        assert_eq!(p.piece_size(2), PL - 100);
        assert_eq!(p.block_count(2), 4);
        assert_eq!(p.block(2, 3).length, BLOCK_SIZE - 100);
        assert!(p.is_valid_block(p.block(2, 3)));
        assert!(!p.is_valid_block(BlockRef {
            piece: 2,
            offset: 3 * BLOCK_SIZE,
            length: BLOCK_SIZE
        }));
        assert!(!p.is_valid_block(BlockRef {
            piece: 3,
            offset: 0,
            length: BLOCK_SIZE
        }));
        assert!(!p.is_valid_block(BlockRef {
            piece: 0,
            offset: 5,
            length: BLOCK_SIZE
        }));
    }

    #[test]
    fn only_wanted_pieces_are_picked_and_the_look_ahead_comes_last() {
        let mut p = picker(8);
        // Pieces 1..3 wanted, 3..5 look-ahead; the look-ahead is rarer.
        p.set_wanted(&[1..3], &[3..5, 9..20], &[]);
        p.add_peer_pieces(&Bitfield::full(8));
        let mut rare = Bitfield::full(8);
        rare.clear(3);
        rare.clear(4);
        p.add_peer_pieces(&rare);
        let order: Vec<u32> = p
            .pick_blocks(&Bitfield::full(8), &[], 100)
            .iter()
            .map(|b| b.piece)
            .collect();
        let firsts: Vec<u32> = order.iter().step_by(4).copied().collect();
        assert_eq!(firsts.len(), 4, "{order:?}");
        assert!(
            firsts[..2].contains(&1) && firsts[..2].contains(&2),
            "{order:?}"
        );
        assert!(
            firsts[2..].contains(&3) && firsts[2..].contains(&4),
            "{order:?}"
        );
        assert!(!p.web_seed_eligible(0) && p.web_seed_eligible(3));
        assert_eq!(p.wanted_runs(), Some(vec![1..5]), "9..20 is past the end");
        assert!(p.orphans().is_empty(), "every wanted piece is available");
        assert!(!p.is_wanted_complete());
        for piece in 1..5 {
            p.piece_verified(piece);
        }
        assert!(p.is_wanted_complete() && !p.is_complete());
        assert!(p.pick_blocks(&Bitfield::full(8), &[], 10).is_empty());
        p.want_all();
        assert!(!p.is_wanted_complete() && p.wants(0) && !p.wants(1));
        assert_eq!(p.wanted_runs(), None);
        p.set_wanted(&[0..1, 6..8], &[], &[(3..4, 0)]);
        assert_eq!(p.wanted_runs(), Some(vec![0..1, 3..4, 6..8]));
    }

    #[test]
    fn a_look_ahead_piece_due_soon_is_never_asked_twice() {
        let mut p = picker(8);
        p.set_wanted(&[0..2], &[2..3], &[]);
        p.set_playback(Some(Playback {
            offset: u64::from(PL) * 2 - 1,
            bytes_per_sec: Some(u64::from(PL) * 10),
        }));
        let all = Bitfield::full(8);
        let first = p.pick_blocks(&all, &[], 100);
        assert_eq!(
            first.iter().map(|b| b.piece).collect::<Vec<_>>(),
            [1, 1, 1, 1, 2, 2, 2, 2]
        );
        let second = p.pick_blocks(&all, &first[..0], 100);
        assert!(
            second.iter().all(|b| b.piece == 1),
            "doubled: piece 1 only {second:?}"
        );
        assert!(
            p.urgent_pieces().iter().all(|&piece| piece < 3),
            "unwanted pieces are never urgent"
        );
    }

    #[test]
    fn the_start_window_is_due_now_and_the_rest_at_the_players_pace() {
        // A piece a second; the player at the middle of piece 2, the
        // window three pieces long: pieces 2..=5 hold its bytes.
        let mut p = picker(20);
        let offset = u64::from(PL) * 2 + u64::from(PL) / 2;
        p.set_playback(Some(Playback {
            offset,
            bytes_per_sec: Some(u64::from(PL)),
        }));
        assert_eq!(
            p.due_in(4),
            Some(Duration::from_millis(1500)),
            "at the pace"
        );
        p.set_start_window(u64::from(PL) * 3);
        for piece in 2..=5 {
            assert_eq!(p.due_in(piece), Some(Duration::ZERO), "piece {piece}");
        }
        assert_eq!(
            p.due_in(6),
            Some(Duration::from_millis(3500)),
            "past the window: at the pace"
        );
        p.set_start_window(0);
        assert_eq!(p.due_in(4), Some(Duration::from_millis(1500)), "taken back");
    }

    #[test]
    fn a_piece_due_early_turns_urgent_with_the_next_files_start() {
        // Playing piece 0..3 of 20 (a piece a second); the next file starts
        // at piece 4, its head 4..6 is look-ahead and its last piece 19 is
        // due when the stream reaches piece 4.
        let mut p = picker(20);
        let next = u64::from(PL) * 4;
        p.set_wanted(&[0..4], &[4..6], &[(19..20, next)]);
        let at = |offset: u64| Playback {
            offset,
            bytes_per_sec: Some(u64::from(PL)),
        };
        p.set_playback(Some(at(0)));
        assert_eq!(p.due_in(19), Some(Duration::from_secs(4)));
        assert_eq!(
            p.due_in(5),
            Some(Duration::from_secs(5)),
            "the head: its own place"
        );
        assert_eq!(p.urgency(19), Urgency::Urgent);
        assert_eq!(
            p.urgent_pieces(),
            [0, 1, 2, 3, 4, 19, 5],
            "soonest due first; the early piece with the file's first"
        );
        assert!(p.wants(19) && p.web_seed_eligible(19));
        let blocks = p.pick_blocks(&Bitfield::full(20), &[], 1000);
        assert!(blocks.iter().any(|b| b.piece == 19), "{blocks:?}");
        assert!(
            !blocks.iter().any(|b| (6..19).contains(&b.piece)),
            "nothing unwanted is picked"
        );
        // Far from the end, it is due no sooner than the file's start.
        let mut far = picker(200);
        far.set_wanted(&[0..100], &[100..102], &[(199..200, u64::from(PL) * 100)]);
        far.set_playback(Some(at(0)));
        assert_eq!(far.urgency(199), Urgency::Normal);
        assert!(!far.urgent_pieces().contains(&199));
        // Dropped with the selection.
        p.want_all();
        assert_eq!(p.due_in(19), Some(Duration::from_secs(19)));
    }

    #[test]
    fn rarest_first_without_playhead() {
        let mut p = picker(8);
        let mut common = Bitfield::full(8);
        common.clear(5);
        p.add_peer_pieces(&common);
        p.add_peer_pieces(&common);
        let mut rare = Bitfield::empty(8);
        rare.set(5);
        p.add_peer_pieces(&rare);
        let blocks = p.pick_blocks(&Bitfield::full(8), &[], 4);
        assert!(blocks.iter().all(|b| b.piece == 5), "{blocks:?}");
    }

    #[test]
    fn urgent_pieces_come_first_and_hold_back_far_pieces() {
        let mut p = picker(100);
        p.set_playback(Some(Playback {
            offset: u64::from(PL) * 10,
            bytes_per_sec: Some(u64::from(PL)),
        }));
        assert_eq!(p.urgency(10), Urgency::Urgent);
        assert_eq!(p.urgency(9), Urgency::Normal, "already played");
        assert_eq!(p.urgency(20), Urgency::ReadAhead);
        assert_eq!(p.urgency(99), Urgency::Normal);
        let blocks = p.pick_blocks(&Bitfield::full(100), &[], 1000);
        let pieces: Vec<u32> = blocks.iter().map(|b| b.piece).collect();
        assert_eq!(pieces[0], 10);
        assert!(
            pieces.iter().all(|&x| (10..50).contains(&x)),
            "no far piece while urgent ones are missing"
        );
        // The same peer is never asked twice; a second peer may double urgent blocks.
        let again = p.pick_blocks(&Bitfield::full(100), &blocks, 1000);
        assert!(again.is_empty());
        let second = p.pick_blocks(&Bitfield::full(100), &[], 4);
        assert_eq!(
            second[0].piece, 10,
            "urgent blocks may be asked of two peers"
        );
    }

    #[test]
    fn only_the_urgent_pieces_due_soonest_are_asked_of_two_peers() {
        let mut p = picker(100);
        // A piece a second: piece 10 is due now, 11 in one second, 12 in
        // two; all three are urgent (six seconds).
        p.set_playback(Some(Playback {
            offset: u64::from(PL) * 10,
            bytes_per_sec: Some(u64::from(PL)),
        }));
        let blocks_of = |v: &[BlockRef], piece| v.iter().filter(|b| b.piece == piece).count();
        let first = p.pick_blocks(&Bitfield::full(100), &[], 1000);
        assert_eq!(blocks_of(&first, 12), 4);
        let second = p.pick_blocks(&Bitfield::full(100), &[], 1000);
        assert_eq!(blocks_of(&second, 10), 4, "due now: hedged");
        assert_eq!(blocks_of(&second, 11), 4, "due within a second: hedged");
        assert_eq!(blocks_of(&second, 12), 0, "due later: one peer is enough");
    }

    #[test]
    fn receive_verify_and_fail() {
        let mut p = picker(2);
        let blocks = p.pick_blocks(&Bitfield::full(2), &[], 100);
        assert_eq!(blocks.len(), 8);
        for b in blocks.iter().filter(|b| b.piece == 0) {
            assert!(p.block_received(*b));
            assert!(!p.block_received(*b), "a duplicate is not new");
        }
        assert!(p.piece_blocks_done(0));
        p.piece_failed(0);
        assert!(!p.piece_blocks_done(0));
        assert!(
            !p.all_missing_requested(),
            "a failed piece is missing again"
        );
        let again = p.pick_blocks(&Bitfield::full(2), &[], 4);
        assert!(
            again.iter().all(|b| b.piece == 0) && again.len() == 4,
            "{again:?}"
        );
        for b in again {
            p.block_received(b);
        }
        p.piece_verified(0);
        assert!(p.have().has(0));
        assert!(
            !p.block_received(p.block(0, 0)),
            "blocks of had pieces are unwanted"
        );
    }

    #[test]
    fn unrequest_returns_blocks_and_endgame_duplicates() {
        let mut p = picker(1);
        let first = p.pick_blocks(&Bitfield::full(1), &[], 100);
        assert_eq!(first.len(), 4);
        assert!(p.all_missing_requested());
        let dup = p.pick_blocks(&Bitfield::full(1), &[], 100);
        assert_eq!(dup.len(), 4, "endgame asks a second peer");
        assert!(
            p.pick_blocks(&Bitfield::full(1), &[], 100).is_empty(),
            "never a third"
        );
        for b in first.iter().chain(&dup) {
            p.unrequest(*b);
        }
        assert!(!p.all_missing_requested());
    }

    #[test]
    fn web_seed_claims_whole_pieces_and_orphans_put_read_ahead_first() {
        let mut p = picker(100);
        assert!(p.web_seed_eligible(0));
        p.claim_for_web_seed(0);
        assert!(!p.all_missing_requested());
        let blocks = p.pick_blocks(&Bitfield::full(100), &[], 4);
        assert!(blocks.iter().all(|b| b.piece != 0), "{blocks:?}");
        // A piece partly received from a peer may still be raced by the
        // web seed; one we have may not.
        assert!(p.block_received(blocks[0]));
        assert!(p.web_seed_eligible(blocks[0].piece));
        assert!(!p.web_seed_eligible(100), "out of range");
        p.set_playback(Some(Playback {
            offset: u64::from(PL) * 50,
            bytes_per_sec: Some(u64::from(PL)),
        }));
        let orphans = p.orphans();
        assert_eq!(
            orphans[0], 56,
            "first read-ahead piece past the urgent ones"
        );
        assert!(!orphans.contains(&0) && !orphans.contains(&blocks[0].piece));
        assert_eq!(orphans.len(), 98);
    }
}
