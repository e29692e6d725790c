//! Where verified pieces live, and which ones to let go when memory is full.
//!
//! [`MemoryStore`] is the storage boundary: the engine puts a piece in once
//! its SHA-1 matched, reads it to play and to serve, and removes it when the
//! store is over its byte bound. It is memory only, and synchronous, because
//! the engine reads a piece in the same call that serves it.
//!
//! A persistent cache (IndexedDB, the Cache API, a disk file) is a
//! write-through layer in the shell, as the native peer's disk already is:
//! the shell writes each piece on `PieceVerified` and hands pieces back with
//! `Torrent::import_piece` when a track is opened again; an evicted piece can
//! be re-imported the same way instead of fetched again. Nothing in the
//! engine has to wait on such a store.
//!
//! Eviction (see `PIECES.md`): an evicted piece stays *had* — we verified it,
//! and `have` messages cannot be taken back (BitTorrent has no "don't have"
//! in the core protocol) — but its bytes are gone: requests for it are
//! answered with a BEP 6 `reject`, new peers get a bitfield without it, and
//! peers that speak `lt_donthave` (WebTorrent's extension) are told.
//! When the playhead comes near an evicted piece it becomes missing again
//! and is fetched like any other.

use std::fmt;
use std::sync::{Arc, Mutex, PoisonError, Weak};

use crate::sorted::{SortedMap, sort_keys};

/// Default bound on the bytes of verified pieces one torrent keeps.
pub const DEFAULT_MEMORY_LIMIT: u64 = 256 * 1024 * 1024;

/// Verified pieces in memory, bounded by bytes (the bound is enforced by the
/// engine, which knows what may be evicted).
#[derive(Debug)]
pub struct MemoryStore {
    limit: u64,
    pieces: Vec<Option<Held>>,
    bytes: u64,
}

/// A verified piece's bytes: this engine's own, or the one copy that several
/// engines of one process share (see [`SharedPieces`]).
#[derive(Debug)]
enum Held {
    Own(Box<[u8]>),
    Shared(Arc<[u8]>),
}

impl Held {
    fn bytes(&self) -> &[u8] {
        match self {
            Held::Own(b) => b,
            Held::Shared(b) => b,
        }
    }
}

/// Verified piece bytes that the engines of one process may share: the
/// simulator's thousands of nodes hold copies of the same track, and one
/// copy per piece is enough. Set in [`Config::shared_pieces`](super::Config);
/// off (`None`) in the browser and the native peer, which run one engine
/// per track.
///
/// Sharing happens only after a piece verified against its own hash in the
/// engine that received it, and only with a copy whose bytes are equal (not
/// merely whose hash is): every engine still checks everything it receives,
/// and no engine can see bytes it did not verify. A copy lives as long as
/// some engine holds it; the table keeps one weak entry per piece hash seen.
#[derive(Clone, Default)]
pub struct SharedPieces(Arc<Mutex<ByHash>>);

/// Each shared copy by its piece's SHA-1.
type ByHash = SortedMap<[u8; 20], Weak<[u8]>>;

impl SharedPieces {
    /// The shared copy of verified `data` (SHA-1 `hash`): an existing copy
    /// with equal bytes, or `data` itself, which then becomes that copy.
    pub(crate) fn intern(&self, hash: [u8; 20], data: Box<[u8]>) -> Arc<[u8]> {
        let mut table = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(existing) = table.get(&hash).and_then(Weak::upgrade)
            && *existing == *data
        {
            return existing;
        }
        let copy: Arc<[u8]> = Arc::from(data);
        table.insert(hash, Arc::downgrade(&copy));
        copy
    }

    /// Distinct pieces some engine still holds.
    pub fn live_pieces(&self) -> usize {
        let table = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        table.values().filter(|w| w.strong_count() > 0).count()
    }
}

impl fmt::Debug for SharedPieces {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SharedPieces")
            .field("live_pieces", &self.live_pieces())
            .finish()
    }
}

/// Two configurations are alike when they share through the same table.
impl PartialEq for SharedPieces {
    fn eq(&self, other: &Self) -> bool {
        Arc::ptr_eq(&self.0, &other.0)
    }
}

impl Eq for SharedPieces {}

impl MemoryStore {
    /// A store for `piece_count` pieces that wants to hold at most `limit` bytes.
    pub fn new(piece_count: u32, limit: u64) -> Self {
        MemoryStore {
            limit,
            pieces: (0..piece_count).map(|_| None).collect(),
            bytes: 0,
        }
    }

    /// Keeps a verified piece (replacing any earlier copy).
    pub fn insert(&mut self, piece: u32, data: Box<[u8]>) {
        self.put(piece, Held::Own(data));
    }

    /// Keeps a verified piece whose bytes are shared with other engines
    /// (replacing any earlier copy). It counts toward the bound in full, as
    /// if it were this engine's own.
    pub fn insert_shared(&mut self, piece: u32, data: Arc<[u8]>) {
        self.put(piece, Held::Shared(data));
    }

    /// The bytes of `piece`, if held.
    pub fn get(&self, piece: u32) -> Option<&[u8]> {
        self.pieces.get(piece as usize)?.as_ref().map(Held::bytes)
    }

    /// Lets `piece` go; returns whether it was held.
    pub fn remove(&mut self, piece: u32) -> bool {
        match self.pieces.get_mut(piece as usize).and_then(Option::take) {
            Some(old) => {
                self.bytes -= old.bytes().len() as u64;
                true
            }
            None => false,
        }
    }

    /// Bytes held.
    pub fn bytes(&self) -> u64 {
        self.bytes
    }

    /// The bound.
    pub fn limit(&self) -> u64 {
        self.limit
    }

    fn put(&mut self, piece: u32, data: Held) {
        if let Some(slot) = self.pieces.get_mut(piece as usize) {
            self.bytes += data.bytes().len() as u64;
            if let Some(old) = slot.replace(data) {
                self.bytes -= old.bytes().len() as u64;
            }
        }
    }

    /// Whether more is held than the bound allows.
    pub fn is_over_limit(&self) -> bool {
        self.bytes > self.limit
    }
}

/// The order to evict pieces in, least hurtful first: pieces behind the
/// playhead (furthest behind first), then pieces ahead of it (furthest ahead
/// first). `piece_start(p)` is the byte offset of `p`; with no playback the
/// playhead is taken to be at 0.
pub(crate) fn eviction_order(
    candidates: impl Iterator<Item = u32>,
    playhead: u64,
    piece_start: impl Fn(u32) -> u64,
) -> Vec<u32> {
    // Behind first, then ahead; within each the furthest first (distinct
    // pieces start at distinct bytes, so no two keys are equal).
    let mut keys: Vec<(u64, u64, u64)> = candidates
        .map(|p| {
            let start = piece_start(p);
            if start < playhead {
                (0, u64::MAX - (playhead - start), u64::from(p))
            } else {
                (1, u64::MAX - (start - playhead), u64::from(p))
            }
        })
        .collect();
    sort_keys(&mut keys);
    keys.into_iter().map(|(_, _, p)| p as u32).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_bytes_through_insert_replace_and_remove() {
        let mut s = MemoryStore::new(3, 10);
        s.insert(0, vec![1; 6].into());
        s.insert(1, vec![2; 6].into());
        assert_eq!(s.bytes(), 12);
        assert!(s.is_over_limit());
        s.insert(1, vec![3; 4].into());
        assert_eq!(s.bytes(), 10);
        assert!(!s.is_over_limit());
        assert!(s.remove(0));
        assert!(!s.remove(0));
        assert_eq!(s.get(0), None);
        assert_eq!(s.get(1), Some(&[3u8; 4][..]));
        assert_eq!(s.bytes(), 4);
        s.insert(7, vec![0; 4].into()); // out of range: ignored
        assert_eq!(s.bytes(), 4);
    }

    #[test]
    fn shares_only_equal_bytes_and_counts_them_in_full() {
        let shared = SharedPieces::default();
        let a = shared.intern([1; 20], vec![7; 8].into());
        let b = shared.intern([1; 20], vec![7; 8].into());
        assert!(Arc::ptr_eq(&a, &b), "equal bytes under one hash: one copy");
        // The same hash with other bytes (a collision, or another torrent's
        // lie) is never handed the first copy.
        let c = shared.intern([1; 20], vec![9; 8].into());
        assert_eq!(&*c, &[9; 8]);
        assert!(!Arc::ptr_eq(&a, &c));
        let mut s = MemoryStore::new(2, 100);
        s.insert_shared(0, a.clone());
        s.insert(1, vec![7; 8].into());
        assert_eq!(s.bytes(), 16);
        assert_eq!(s.get(0), Some(&[7u8; 8][..]));
        assert!(s.remove(0));
        assert_eq!(s.bytes(), 8);
        drop((a, b, c));
        assert_eq!(shared.live_pieces(), 0, "a copy lives only while held");
    }

    #[test]
    fn evicts_far_behind_first_then_far_ahead() {
        // Pieces of 10 bytes, playhead at byte 50 (piece 5).
        let order = eviction_order(0..10, 50, |p| u64::from(p) * 10);
        assert_eq!(order, vec![0, 1, 2, 3, 4, 9, 8, 7, 6, 5]);
        // No playback: everything is ahead of 0, the end goes first.
        let order = eviction_order(0..4, 0, |p| u64::from(p) * 10);
        assert_eq!(order, vec![3, 2, 1, 0]);
    }
}
