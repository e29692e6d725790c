//! BEP 3 v1 torrents: parsing, checking, creating.
//!
//! The info hash is the SHA-1 of the `info` dictionary's bytes exactly as they
//! appear in the file, never of a re-encoding: a torrent whose `info` carries
//! keys we do not know still hashes to the swarm everyone else joins. Those
//! same bytes are what ut_metadata serves to peers that came by magnet link.
//!
//! Decoding is strict bencode (the `bendy` crate): keys sorted and unique,
//! integers without leading zeros, nothing after the top-level dictionary.
//! Every tool we interoperate with writes that; anything else is refused with
//! [`MetainfoError::Bencode`] or [`MetainfoError::TrailingData`], not guessed at.
//!
//! - [`Metainfo`]: a whole `.torrent` (trackers, web seeds, `info`).
//! - [`Info`], [`FileEntry`], [`FileSlice`]: the `info` dictionary, the file layout,
//!   which files a piece spans and where web seeds serve them.
//! - [`TorrentBuilder`], [`PieceHasher`], [`piece_length_for`]: making torrents.

mod bencode;
mod create;
mod error;
mod info;
mod layout;

use bendy::decoding::Object;
use bendy::encoding::SortedDictEncoder;
use sha1::{Digest, Sha1};

use crate::InfoHash;
use crate::magnet::Magnet;

pub use create::{PieceHasher, TorrentBuilder, hash_pieces, piece_length_for};
pub use error::MetainfoError;
pub use info::{FileEntry, Info};
pub use layout::FileSlice;

/// Largest accepted piece length (64 MiB); the wire moves pieces in 16 KiB blocks
/// and a peer holds a whole piece in memory until it verifies.
pub const MAX_PIECE_LENGTH: u32 = 64 * 1024 * 1024;
/// Most files a torrent may list.
pub const MAX_FILES: usize = 100_000;
/// Most components a file path may have.
pub const MAX_PATH_DEPTH: usize = 64;
/// Largest total length accepted (1 TiB): far above any release of music, far below overflow.
pub const MAX_TOTAL_LENGTH: u64 = 1 << 40;

/// A parsed `.torrent` file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Metainfo {
    /// The checked `info` dictionary.
    pub info: Info,
    /// SHA-1 of [`Self::info_bytes`].
    pub info_hash: InfoHash,
    /// The `info` dictionary exactly as found: what `info_hash` hashes, what ut_metadata serves.
    pub info_bytes: Vec<u8>,
    /// The tracker of BEP 3 (ignored by clients when `announce_list` is present).
    pub announce: Option<String>,
    /// BEP 12 tracker tiers, empty tiers and empty URLs dropped.
    pub announce_list: Vec<Vec<String>>,
    /// BEP 19 web seeds (`url-list`, a string or a list in the file), empty URLs dropped.
    pub url_list: Vec<String>,
    /// Free text; invalid UTF-8 is replaced with U+FFFD.
    pub comment: Option<String>,
    /// The creating program; invalid UTF-8 is replaced with U+FFFD.
    pub created_by: Option<String>,
    /// Seconds since the Unix epoch.
    pub creation_date: Option<i64>,
}

impl Metainfo {
    /// Parses and checks a `.torrent` file. Unknown keys are ignored; known keys
    /// of the wrong type, unsafe paths and inconsistent lengths are errors.
    pub fn from_bytes(bytes: &[u8]) -> Result<Metainfo, MetainfoError> {
        let raw = bencode::read_dict(bytes, RawTorrent::read)?;
        let info_bytes = raw.info.ok_or(MetainfoError::MissingField("info"))?;
        let info = Info::from_bytes(info_bytes)?;
        Ok(Metainfo {
            info,
            info_hash: InfoHash(Sha1::digest(info_bytes).into()),
            info_bytes: info_bytes.to_vec(),
            announce: raw.announce,
            announce_list: raw.announce_list,
            url_list: raw.url_list,
            comment: raw.comment,
            created_by: raw.created_by,
            creation_date: raw.creation_date,
        })
    }

    /// The torrent a magnet link led to, once its `info` arrived over ut_metadata.
    ///
    /// The bytes must hash to the magnet's info hash; the magnet's trackers become
    /// tiers of one tracker each, its web seeds the `url-list`.
    pub fn from_magnet(magnet: &Magnet, info_bytes: &[u8]) -> Result<Metainfo, MetainfoError> {
        let info_hash = InfoHash(Sha1::digest(info_bytes).into());
        if info_hash != magnet.info_hash {
            return Err(MetainfoError::InfoHashMismatch {
                expected: magnet.info_hash,
                found: info_hash,
            });
        }
        let announce_list = if magnet.trackers.len() > 1 {
            magnet
                .trackers
                .iter()
                .map(|url| vec![url.clone()])
                .collect()
        } else {
            Vec::new()
        };
        Ok(Metainfo {
            info: Info::from_bytes(info_bytes)?,
            info_hash,
            info_bytes: info_bytes.to_vec(),
            announce: magnet.trackers.first().cloned(),
            announce_list,
            url_list: magnet.web_seeds.clone(),
            comment: None,
            created_by: None,
            creation_date: None,
        })
    }

    /// Encodes the torrent, with `info_bytes` copied verbatim so the info hash is kept.
    pub fn to_bytes(&self) -> Vec<u8> {
        TorrentFields {
            announce: self.announce.as_deref(),
            announce_list: &self.announce_list,
            url_list: &self.url_list,
            comment: self.comment.as_deref(),
            created_by: self.created_by.as_deref(),
            creation_date: self.creation_date,
        }
        .encode(&self.info_bytes)
    }

    /// Every tracker once, in order: the tiers of `announce-list` flattened, or `announce`.
    pub fn trackers(&self) -> Vec<String> {
        let mut trackers: Vec<String> = if self.announce_list.is_empty() {
            self.announce.iter().cloned().collect()
        } else {
            self.announce_list.iter().flatten().cloned().collect()
        };
        crate::magnet::dedup_non_empty(&mut trackers);
        trackers
    }

    /// A magnet link to this torrent: name, trackers, web seeds and total length.
    /// Each URL appears once, as [`Magnet::parse`] would leave it.
    pub fn magnet(&self) -> Magnet {
        let mut web_seeds = self.url_list.clone();
        crate::magnet::dedup_non_empty(&mut web_seeds);
        Magnet {
            info_hash: self.info_hash,
            display_name: Some(self.info.name.clone()),
            trackers: self.trackers(),
            web_seeds,
            exact_sources: Vec::new(),
            exact_length: Some(self.info.total_length()),
        }
    }
}

/// The keys of a torrent file outside `info`, borrowed, ready to encode around `info`'s bytes.
pub(crate) struct TorrentFields<'a> {
    pub(crate) announce: Option<&'a str>,
    pub(crate) announce_list: &'a [Vec<String>],
    pub(crate) url_list: &'a [String],
    pub(crate) comment: Option<&'a str>,
    pub(crate) created_by: Option<&'a str>,
    pub(crate) creation_date: Option<i64>,
}

impl TorrentFields<'_> {
    /// `d`, the keys sorting before `info`, `4:info` and the verbatim bytes, the keys after, `e`.
    pub(crate) fn encode(&self, info_bytes: &[u8]) -> Vec<u8> {
        let before = bencode::dict_body(|dict| self.emit_before_info(dict));
        let after = bencode::dict_body(|dict| {
            if !self.url_list.is_empty() {
                dict.emit_pair(b"url-list", self.url_list)?;
            }
            Ok(())
        });
        let mut out = Vec::with_capacity(before.len() + info_bytes.len() + after.len() + 8);
        out.push(b'd');
        out.extend_from_slice(&before);
        out.extend_from_slice(b"4:info");
        out.extend_from_slice(info_bytes);
        out.extend_from_slice(&after);
        out.push(b'e');
        out
    }

    fn emit_before_info(
        &self,
        dict: &mut SortedDictEncoder<'_>,
    ) -> Result<(), bendy::encoding::Error> {
        if let Some(announce) = self.announce {
            dict.emit_pair(b"announce", announce)?;
        }
        if !self.announce_list.is_empty() {
            dict.emit_pair(b"announce-list", self.announce_list)?;
        }
        if let Some(comment) = self.comment {
            dict.emit_pair(b"comment", comment)?;
        }
        if let Some(created_by) = self.created_by {
            dict.emit_pair(b"created by", created_by)?;
        }
        if let Some(creation_date) = self.creation_date {
            dict.emit_pair(b"creation date", creation_date)?;
        }
        Ok(())
    }
}

/// The top-level keys as found; `info` is kept as raw bytes for hashing.
#[derive(Default)]
struct RawTorrent<'ser> {
    info: Option<&'ser [u8]>,
    announce: Option<String>,
    announce_list: Vec<Vec<String>>,
    url_list: Vec<String>,
    comment: Option<String>,
    created_by: Option<String>,
    creation_date: Option<i64>,
}

impl<'ser> RawTorrent<'ser> {
    fn read(
        dict: &mut bendy::decoding::DictDecoder<'_, 'ser>,
    ) -> Result<RawTorrent<'ser>, MetainfoError> {
        let mut raw = RawTorrent::default();
        while let Some((key, value)) = dict.next_pair()? {
            match key {
                b"info" => {
                    let Object::Dict(info) = value else {
                        return Err(MetainfoError::WrongType {
                            field: "info",
                            expected: "a dictionary",
                        });
                    };
                    raw.info = Some(info.into_raw()?);
                }
                b"announce" => raw.announce = Some(bencode::text(value, "announce")?),
                b"announce-list" => raw.announce_list = read_tiers(value)?,
                b"url-list" => raw.url_list = read_url_list(value)?,
                b"comment" => raw.comment = Some(bencode::text_lossy(value, "comment")?),
                b"created by" => raw.created_by = Some(bencode::text_lossy(value, "created by")?),
                b"creation date" => {
                    raw.creation_date = Some(bencode::integer(value, "creation date")?);
                }
                _ => {}
            }
        }
        raw.announce = raw.announce.filter(|url| !url.is_empty());
        Ok(raw)
    }
}

/// `announce-list`: a list of tiers, each a list of URLs.
fn read_tiers(object: Object<'_, '_>) -> Result<Vec<Vec<String>>, MetainfoError> {
    let Object::List(mut list) = object else {
        return Err(MetainfoError::WrongType {
            field: "announce-list",
            expected: "a list of lists of strings",
        });
    };
    let mut tiers = Vec::new();
    while let Some(tier) = list.next_object()? {
        let tier: Vec<String> = bencode::text_list(tier, "announce-list")?
            .into_iter()
            .filter(|url| !url.is_empty())
            .collect();
        if !tier.is_empty() {
            tiers.push(tier);
        }
    }
    Ok(tiers)
}

/// `url-list`: one URL as a string, or a list of them (BEP 19 allows both).
fn read_url_list(object: Object<'_, '_>) -> Result<Vec<String>, MetainfoError> {
    let urls = match object {
        Object::Bytes(url) => vec![bencode::utf8(url, "url-list")?],
        other => bencode::text_list(other, "url-list")?,
    };
    Ok(urls.into_iter().filter(|url| !url.is_empty()).collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Regression (fuzz target `metainfo`): a `url-list` naming one web seed
    /// twice gave a magnet link that did not survive its own round trip,
    /// because `Magnet::parse` keeps each URL once.
    #[test]
    fn a_repeated_web_seed_appears_once_in_the_magnet() {
        let url = "https://mirror.example/music/";
        let meta = TorrentBuilder::single_file("album", 10)
            .web_seed("https://cdn.example/music/")
            .web_seed(url)
            .web_seed(url)
            .build(&[[0; 20]])
            .unwrap();
        assert_eq!(meta.url_list.len(), 3, "the file keeps what it says");
        let magnet = meta.magnet();
        assert_eq!(magnet.web_seeds, ["https://cdn.example/music/", url]);
        assert_eq!(Magnet::parse(&magnet.to_string()), Ok(magnet));
    }
}
