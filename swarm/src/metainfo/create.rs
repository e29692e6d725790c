//! Making torrents: choosing a piece length, hashing pieces as bytes stream in,
//! and encoding a [`Metainfo`].
//!
//! The core does no I/O, so the caller reads its files and pushes the bytes
//! (all files concatenated, in the builder's order) into a [`PieceHasher`],
//! showing progress with [`PieceHasher::bytes_hashed`]; then it hands the hashes
//! to [`TorrentBuilder::build`].

use sha1::{Digest, Sha1};

use super::{MAX_PIECE_LENGTH, Metainfo, MetainfoError, TorrentFields, bencode};

/// The smallest piece length we choose: one 16 KiB wire block.
const MIN_CHOSEN: u32 = 16 * 1024;
/// The largest piece length we choose for anything up to ~250 MiB (a long lossless track).
const MAX_CHOSEN_FOR_TRACKS: u32 = 256 * 1024;
/// The largest piece length we choose at all.
const MAX_CHOSEN: u32 = 16 * 1024 * 1024;
/// Pieces we aim to stay under for a track.
const TARGET_PIECES: u64 = 200;
/// Pieces we accept before growing past [`MAX_CHOSEN_FOR_TRACKS`].
const MAX_PIECES: u64 = 1000;

/// A power-of-two piece length suited to streaming `total_length` bytes of audio.
///
/// Small pieces let a fan re-serve what it verified within seconds of playback;
/// each piece also costs 20 bytes of metadata and a `have` to every neighbour.
/// So: the smallest power of two from 16 KiB that keeps a track under ~200
/// pieces, at most 256 KiB (a 5 MB mp3 gets 32 KiB, 153 pieces; a 50 MB flac
/// 256 KiB, 191 pieces). Past ~250 MiB the length keeps doubling to stay under
/// 1000 pieces, up to 16 MiB.
pub fn piece_length_for(total_length: u64) -> u32 {
    let pieces = |length: u32| total_length.div_ceil(u64::from(length));
    let mut length = MIN_CHOSEN;
    while length < MAX_CHOSEN_FOR_TRACKS && pieces(length) > TARGET_PIECES {
        length *= 2;
    }
    while length < MAX_CHOSEN && pieces(length) > MAX_PIECES {
        length *= 2;
    }
    length
}

/// SHA-1 of every piece of a byte stream that arrives in chunks of any size.
#[derive(Debug, Clone)]
pub struct PieceHasher {
    piece_length: u32,
    current: Sha1,
    in_current: u32,
    bytes_hashed: u64,
    pieces: Vec<[u8; 20]>,
}

impl PieceHasher {
    /// A hasher cutting the stream into pieces of `piece_length` bytes (1 ..= 64 MiB).
    pub fn new(piece_length: u32) -> Result<Self, MetainfoError> {
        if !(1..=MAX_PIECE_LENGTH).contains(&piece_length) {
            return Err(MetainfoError::BadPieceLength(i64::from(piece_length)));
        }
        Ok(PieceHasher {
            piece_length,
            current: Sha1::new(),
            in_current: 0,
            bytes_hashed: 0,
            pieces: Vec::new(),
        })
    }

    /// Hashes the next bytes of the stream.
    pub fn update(&mut self, mut data: &[u8]) {
        while !data.is_empty() {
            let room = (self.piece_length - self.in_current) as usize;
            let (now, rest) = data.split_at(room.min(data.len()));
            self.current.update(now);
            self.in_current += now.len() as u32;
            self.bytes_hashed += now.len() as u64;
            if self.in_current == self.piece_length {
                self.close_piece();
            }
            data = rest;
        }
    }

    /// Bytes pushed so far, for a progress bar.
    pub fn bytes_hashed(&self) -> u64 {
        self.bytes_hashed
    }

    /// Hashes of the pieces completed so far, the partial last one excluded.
    pub fn pieces(&self) -> &[[u8; 20]] {
        &self.pieces
    }

    /// All piece hashes, the shorter last piece included.
    pub fn finish(mut self) -> Vec<[u8; 20]> {
        if self.in_current > 0 {
            self.close_piece();
        }
        self.pieces
    }

    fn close_piece(&mut self) {
        let hasher = std::mem::take(&mut self.current);
        self.pieces.push(hasher.finalize().into());
        self.in_current = 0;
    }
}

/// Piece hashes of bytes already in memory.
pub fn hash_pieces(data: &[u8], piece_length: u32) -> Result<Vec<[u8; 20]>, MetainfoError> {
    let mut hasher = PieceHasher::new(piece_length)?;
    hasher.update(data);
    Ok(hasher.finish())
}

/// Describes a torrent to create; [`TorrentBuilder::build`] encodes it once the pieces are hashed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TorrentBuilder {
    name: String,
    layout: Layout,
    piece_length: Option<u32>,
    tiers: Vec<Vec<String>>,
    web_seeds: Vec<String>,
    comment: Option<String>,
    created_by: Option<String>,
    creation_date: Option<i64>,
    private: bool,
}

/// Single-file (`length`) or multi-file (`files`).
#[derive(Debug, Clone, PartialEq, Eq)]
enum Layout {
    Single(u64),
    Multi(Vec<(Vec<String>, u64)>),
}

impl TorrentBuilder {
    /// A torrent of one file called `name`.
    pub fn single_file(name: impl Into<String>, length: u64) -> Self {
        Self::new(name.into(), Layout::Single(length))
    }

    /// A torrent of a directory `name` holding `files`, each a path inside the
    /// directory (without `name`) and a length, in stream order.
    pub fn multi_file(
        name: impl Into<String>,
        files: impl IntoIterator<Item = (Vec<String>, u64)>,
    ) -> Self {
        Self::new(name.into(), Layout::Multi(files.into_iter().collect()))
    }

    /// Overrides the piece length (default: [`piece_length_for`] the total length).
    pub fn piece_length(mut self, piece_length: u32) -> Self {
        self.piece_length = Some(piece_length);
        self
    }

    /// Adds a tracker in a tier of its own (tried after the ones added before).
    pub fn tracker(self, url: impl Into<String>) -> Self {
        self.tracker_tier([url.into()])
    }

    /// Adds a tier of trackers tried in any order (BEP 12). Empty URLs are dropped.
    pub fn tracker_tier<S: Into<String>>(mut self, urls: impl IntoIterator<Item = S>) -> Self {
        let tier: Vec<String> = urls
            .into_iter()
            .map(Into::into)
            .filter(|url: &String| !url.is_empty())
            .collect();
        if !tier.is_empty() {
            self.tiers.push(tier);
        }
        self
    }

    /// Adds a BEP 19 web seed URL (`url-list`).
    pub fn web_seed(mut self, url: impl Into<String>) -> Self {
        let url = url.into();
        if !url.is_empty() {
            self.web_seeds.push(url);
        }
        self
    }

    /// Sets the free-text `comment`.
    pub fn comment(mut self, comment: impl Into<String>) -> Self {
        self.comment = Some(comment.into());
        self
    }

    /// Sets `created by`, the creating program.
    pub fn created_by(mut self, created_by: impl Into<String>) -> Self {
        self.created_by = Some(created_by.into());
        self
    }

    /// Sets `creation date` in seconds since the Unix epoch (the core has no clock).
    pub fn creation_date(mut self, seconds: i64) -> Self {
        self.creation_date = Some(seconds);
        self
    }

    /// Marks the torrent private (BEP 27).
    pub fn private(mut self, private: bool) -> Self {
        self.private = private;
        self
    }

    /// Bytes in all files together (saturating; [`Self::build`] refuses oversize input).
    pub fn total_length(&self) -> u64 {
        match &self.layout {
            Layout::Single(length) => *length,
            Layout::Multi(files) => files
                .iter()
                .fold(0u64, |total, (_, length)| total.saturating_add(*length)),
        }
    }

    /// The piece length the hashes passed to [`Self::build`] must be made with.
    pub fn chosen_piece_length(&self) -> u32 {
        self.piece_length
            .unwrap_or_else(|| piece_length_for(self.total_length()))
    }

    /// A [`PieceHasher`] for this torrent's piece length.
    pub fn hasher(&self) -> Result<PieceHasher, MetainfoError> {
        PieceHasher::new(self.chosen_piece_length())
    }

    /// Encodes the torrent with these piece hashes and parses it back, so the
    /// result passed every check a downloaded torrent must pass.
    pub fn build(&self, pieces: &[[u8; 20]]) -> Result<Metainfo, MetainfoError> {
        if matches!(&self.layout, Layout::Multi(files) if files.is_empty()) {
            return Err(MetainfoError::BuilderNoFiles);
        }
        let info_bytes = self.encode_info(pieces);
        let announce = self.tiers.first().and_then(|tier| tier.first()).cloned();
        let announce_list = if self.tiers.iter().map(Vec::len).sum::<usize>() > 1 {
            self.tiers.clone()
        } else {
            Vec::new()
        };
        let bytes = TorrentFields {
            announce: announce.as_deref(),
            announce_list: &announce_list,
            url_list: &self.web_seeds,
            comment: self.comment.as_deref(),
            created_by: self.created_by.as_deref(),
            creation_date: self.creation_date,
        }
        .encode(&info_bytes);
        Metainfo::from_bytes(&bytes)
    }

    fn new(name: String, layout: Layout) -> Self {
        TorrentBuilder {
            name,
            layout,
            piece_length: None,
            tiers: Vec::new(),
            web_seeds: Vec::new(),
            comment: None,
            created_by: None,
            creation_date: None,
            private: false,
        }
    }

    /// The `info` dictionary, keys in bencode order.
    fn encode_info(&self, pieces: &[[u8; 20]]) -> Vec<u8> {
        bencode::dict(|dict| {
            match &self.layout {
                Layout::Multi(files) => dict.emit_pair_with(b"files", |value| {
                    value.emit_list(|list| {
                        for (path, length) in files {
                            list.emit_dict(|mut file| {
                                file.emit_pair(b"length", length)?;
                                file.emit_pair(b"path", path)
                            })?;
                        }
                        Ok(())
                    })
                })?,
                Layout::Single(length) => dict.emit_pair(b"length", length)?,
            }
            dict.emit_pair(b"name", &self.name)?;
            dict.emit_pair(b"piece length", self.chosen_piece_length())?;
            dict.emit_pair_with(b"pieces", |value| value.emit_bytes(&pieces.concat()))?;
            if self.private {
                dict.emit_pair(b"private", 1u8)?;
            }
            Ok(())
        })
    }
}
