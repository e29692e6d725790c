//! Piece bytes: buffers of unfinished pieces, verified pieces, and the
//! evidence that tells a liar from an honest peer.
//!
//! The rules are in `PIECES.md` beside this file. In short: bytes of a piece
//! are readable (played, re-served) only once its SHA-1 matched; each
//! received block remembers who sent it; when a piece fails, the digests of
//! its blocks are kept, and when the piece later verifies, every kept block
//! that differs from the good data names a liar ("smart ban").

use sha1::{Digest, Sha1};

use super::origin::{PieceOrigin, Source};
use super::store::{MemoryStore, SharedPieces};
use crate::sorted::SortedMap;
use crate::wire::BLOCK_SIZE;

/// What a verification found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Verdict {
    /// The piece is good; these sources sent blocks that differ from it,
    /// and its kept blocks came from `origin`.
    Good {
        liars: Vec<Source>,
        origin: PieceOrigin,
    },
    /// The piece is bad; if one source sent every block, it is that one.
    /// `web_seed_bytes` of it came from the web seed, the rest from peers:
    /// bytes that were counted as useful and turned out not to be.
    Bad {
        sole_source: Option<Source>,
        web_seed_bytes: u64,
    },
}

#[derive(Debug)]
struct Buffer {
    data: Vec<u8>,
    sources: Vec<Option<Source>>,
}

/// Every byte the engine holds for one torrent, in memory.
#[derive(Debug)]
pub(crate) struct PieceStore {
    piece_length: u32,
    total_length: u64,
    hashes: Vec<[u8; 20]>,
    /// Verified pieces (see `store.rs`).
    memory: MemoryStore,
    /// Where verified bytes are shared with other engines, if anywhere.
    shared: Option<SharedPieces>,
    buffers: SortedMap<u32, Buffer>,
    /// Digests of blocks that lost a verification or arrived as a differing
    /// duplicate, per piece: (block index, who sent it, SHA-1 of the block).
    suspects: SortedMap<u32, Vec<(u32, Source, [u8; 20])>>,
}

impl PieceStore {
    pub fn new(
        piece_length: u32,
        total_length: u64,
        hashes: Vec<[u8; 20]>,
        limit: u64,
        shared: Option<SharedPieces>,
    ) -> Self {
        let n = u32::try_from(hashes.len()).unwrap_or(u32::MAX);
        PieceStore {
            piece_length,
            total_length,
            hashes,
            memory: MemoryStore::new(n, limit),
            shared,
            buffers: SortedMap::new(),
            suspects: SortedMap::new(),
        }
    }

    pub fn piece_size(&self, piece: u32) -> u32 {
        let start = u64::from(piece) * u64::from(self.piece_length);
        self.total_length
            .saturating_sub(start)
            .min(u64::from(self.piece_length)) as u32
    }

    /// The verified bytes of `piece`.
    pub fn verified(&self, piece: u32) -> Option<&[u8]> {
        self.memory.get(piece)
    }

    /// The verified pieces held in memory, and their bound.
    pub fn memory(&self) -> &MemoryStore {
        &self.memory
    }

    /// Drops the bytes of a verified piece to stay within the bound.
    pub fn evict(&mut self, piece: u32) -> bool {
        self.memory.remove(piece)
    }

    /// Stores a received block of an unfinished piece. A block that was
    /// already received with different bytes is kept as a suspect.
    pub fn write_block(&mut self, piece: u32, offset: u32, data: &[u8], source: Source) {
        let size = self.piece_size(piece) as usize;
        let buf = self.buffers.entry(piece).or_insert_with(|| Buffer {
            data: vec![0; size],
            sources: vec![None; size.div_ceil(BLOCK_SIZE as usize)],
        });
        let index = (offset / BLOCK_SIZE) as usize;
        let start = offset as usize;
        let end = start + data.len();
        let (Some(slot), Some(range)) = (buf.sources.get_mut(index), buf.data.get_mut(start..end))
        else {
            return; // the caller checked the range; nothing to store otherwise
        };
        match slot {
            Some(_) => {
                if range != data {
                    self.suspects.entry(piece).or_default().push((
                        index as u32,
                        source,
                        sha1(data),
                    ));
                }
            }
            None => {
                range.copy_from_slice(data);
                *slot = Some(source);
            }
        }
    }

    /// Checks the assembled `piece` against its hash, moves it to verified
    /// storage on success and forgets the buffer either way.
    pub fn verify(&mut self, piece: u32) -> Verdict {
        let Some(buf) = self.buffers.remove(&piece) else {
            return Verdict::Bad {
                sole_source: None,
                web_seed_bytes: 0,
            };
        };
        let good = self.hashes.get(piece as usize) == Some(&sha1(&buf.data));
        if good {
            let liars = self.judge_suspects(piece, &buf.data);
            let origin = PieceOrigin::of_blocks(&buf.sources);
            self.keep(piece, buf.data.into_boxed_slice());
            return Verdict::Good { liars, origin };
        }
        let first = buf.sources.first().copied().flatten();
        let sole_source = first.filter(|s| buf.sources.iter().all(|b| *b == Some(*s)));
        let kept = self.suspects.entry(piece).or_default();
        let mut web_seed_bytes = 0;
        for (i, source) in buf.sources.iter().enumerate() {
            if let Some(source) = source {
                let start = i * BLOCK_SIZE as usize;
                let end = (start + BLOCK_SIZE as usize).min(buf.data.len());
                kept.push((i as u32, *source, sha1(&buf.data[start..end])));
                if *source == Source::WebSeed {
                    web_seed_bytes += (end - start) as u64;
                }
            }
        }
        Verdict::Bad {
            sole_source,
            web_seed_bytes,
        }
    }

    /// A block of an already verified piece: whether its bytes match.
    pub fn matches_verified(&self, piece: u32, offset: u32, data: &[u8]) -> bool {
        let start = offset as usize;
        self.verified(piece)
            .and_then(|v| v.get(start..start + data.len()))
            .is_some_and(|v| v == data)
    }

    /// Stores bytes the shell already holds (a seeder's file) if they match
    /// the piece's hash.
    pub fn import(&mut self, piece: u32, data: &[u8]) -> bool {
        if data.len() != self.piece_size(piece) as usize
            || self.hashes.get(piece as usize) != Some(&sha1(data))
        {
            return false;
        }
        self.buffers.remove(&piece);
        self.keep(piece, data.into());
        true
    }

    /// Keeps verified bytes: shared with other engines' equal copy when
    /// configured so, else as our own.
    fn keep(&mut self, piece: u32, data: Box<[u8]>) {
        match (&self.shared, self.hashes.get(piece as usize)) {
            (Some(shared), Some(&hash)) => {
                let data = shared.intern(hash, data);
                self.memory.insert_shared(piece, data);
            }
            _ => self.memory.insert(piece, data),
        }
    }

    /// For `engine::invariants`: pieces that have a buffer of received blocks.
    pub(crate) fn buffered_pieces(&self) -> impl Iterator<Item = u32> + '_ {
        self.buffers.keys().copied()
    }

    fn judge_suspects(&mut self, piece: u32, good: &[u8]) -> Vec<Source> {
        let mut liars = Vec::new();
        for (index, source, digest) in self.suspects.remove(&piece).unwrap_or_default() {
            let start = index as usize * BLOCK_SIZE as usize;
            let end = (start + BLOCK_SIZE as usize).min(good.len());
            let honest = good.get(start..end).is_some_and(|b| sha1(b) == digest);
            if !honest && !liars.contains(&source) {
                liars.push(source);
            }
        }
        liars
    }
}

/// SHA-1 of `data`.
pub(crate) fn sha1(data: &[u8]) -> [u8; 20] {
    Sha1::digest(data).into()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ids::PeerId;

    fn store(data: &[u8], piece_length: u32) -> PieceStore {
        let hashes = data.chunks(piece_length as usize).map(sha1).collect();
        PieceStore::new(piece_length, data.len() as u64, hashes, u64::MAX, None)
    }

    const HONEST: Source = Source::Peer(PeerId([1; 20]));
    const LIAR: Source = Source::Peer(PeerId([2; 20]));

    #[test]
    fn sole_liar_is_named_at_once() {
        let data = vec![7u8; 2 * BLOCK_SIZE as usize];
        let mut s = store(&data, 2 * BLOCK_SIZE);
        s.write_block(0, 0, &[9; BLOCK_SIZE as usize], LIAR);
        s.write_block(0, BLOCK_SIZE, &[9; BLOCK_SIZE as usize], LIAR);
        assert_eq!(
            s.verify(0),
            Verdict::Bad {
                sole_source: Some(LIAR),
                web_seed_bytes: 0,
            }
        );
        assert!(s.verified(0).is_none());
    }

    #[test]
    fn mixed_failure_is_resolved_when_the_piece_verifies() {
        let data: Vec<u8> = (0..2 * BLOCK_SIZE).map(|i| (i % 251) as u8).collect();
        let (a, b) = data.split_at(BLOCK_SIZE as usize);
        let mut s = store(&data, 2 * BLOCK_SIZE);
        s.write_block(0, 0, a, HONEST);
        s.write_block(0, BLOCK_SIZE, &[0; BLOCK_SIZE as usize], LIAR);
        assert_eq!(
            s.verify(0),
            Verdict::Bad {
                sole_source: None,
                web_seed_bytes: 0,
            }
        );
        s.write_block(0, 0, a, HONEST);
        s.write_block(0, BLOCK_SIZE, b, HONEST);
        assert_eq!(
            s.verify(0),
            Verdict::Good {
                liars: vec![LIAR],
                origin: PieceOrigin::Peers
            }
        );
        assert_eq!(s.verified(0), Some(&data[..]));
        assert!(s.matches_verified(0, BLOCK_SIZE, b));
        assert!(!s.matches_verified(0, BLOCK_SIZE, a));
    }

    #[test]
    fn differing_duplicate_is_a_suspect() {
        let data = vec![5u8; BLOCK_SIZE as usize];
        let mut s = store(&data, BLOCK_SIZE);
        s.write_block(0, 0, &data, HONEST);
        s.write_block(0, 0, &[6; BLOCK_SIZE as usize], LIAR);
        s.write_block(0, 0, &data, Source::WebSeed);
        assert_eq!(
            s.verify(0),
            Verdict::Good {
                liars: vec![LIAR],
                origin: PieceOrigin::Peers
            }
        );
    }

    #[test]
    fn import_checks_the_hash() {
        let data = vec![3u8; 100];
        let mut s = store(&data, 64);
        assert!(s.import(1, &data[64..]));
        assert!(!s.import(0, &data[..63]));
        assert!(!s.import(0, &[4u8; 64]));
        assert!(!s.import(5, &data[..64]));
        assert_eq!(s.verified(1), Some(&data[64..]));
    }
}
