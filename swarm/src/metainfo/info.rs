//! The `info` dictionary: what the info hash names and what ut_metadata serves.
//!
//! An [`Info`] that exists is consistent: a safe name and safe file paths, at
//! least one byte of data, a piece length in range and exactly one 20-byte hash
//! per piece.

use std::collections::HashSet;

use bendy::decoding::{DictDecoder, Object};

use super::bencode;
use super::{MAX_FILES, MAX_PATH_DEPTH, MAX_PIECE_LENGTH, MAX_TOTAL_LENGTH, MetainfoError};

/// The parsed `info` dictionary of a v1 torrent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Info {
    /// The suggested name: the file name of a single-file torrent, the directory of a multi-file one.
    pub name: String,
    /// Bytes per piece; every piece but the last has exactly this size.
    pub piece_length: u32,
    /// The SHA-1 of each piece, in order.
    pub pieces: Vec<[u8; 20]>,
    /// The files in stream order; never empty.
    pub files: Vec<FileEntry>,
    /// BEP 27: peers of this torrent come from its trackers only.
    pub private: bool,
}

/// One file of a torrent and where it sits in the torrent's byte stream.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileEntry {
    /// Path relative to the download directory, torrent name included:
    /// `[name]` for a single-file torrent, `[name, dir…, file]` for a multi-file one
    /// (as libtorrent and WebTorrent present it). Every component is safe to join.
    pub path: Vec<String>,
    /// Bytes in the file.
    pub length: u64,
    /// Offset of the file's first byte in the concatenation of all files.
    pub offset: u64,
}

impl Info {
    /// Parses and checks an `info` dictionary, for example one fetched over ut_metadata.
    ///
    /// `info_bytes` must be exactly the dictionary (nothing after it); the caller
    /// checks its SHA-1 against the info hash it expects.
    pub fn from_bytes(info_bytes: &[u8]) -> Result<Info, MetainfoError> {
        bencode::read_dict(info_bytes, |dict| RawInfo::read(dict)?.check())
    }

    /// Bytes in all files together.
    pub fn total_length(&self) -> u64 {
        self.files
            .last()
            .map_or(0, |file| file.offset.saturating_add(file.length))
    }

    /// Number of pieces.
    pub fn piece_count(&self) -> u32 {
        u32::try_from(self.pieces.len()).unwrap_or(u32::MAX)
    }

    /// Bytes in `piece`: `piece_length`, less for the last piece, 0 for an out-of-range index.
    pub fn piece_size(&self, piece: u32) -> u32 {
        if piece >= self.piece_count() {
            return 0;
        }
        let left = self.total_length().saturating_sub(self.piece_offset(piece));
        u32::try_from(left.min(u64::from(self.piece_length))).unwrap_or(self.piece_length)
    }

    /// Offset of `piece`'s first byte in the torrent's byte stream.
    pub fn piece_offset(&self, piece: u32) -> u64 {
        u64::from(piece) * u64::from(self.piece_length)
    }

    /// The expected SHA-1 of `piece`, `None` for an out-of-range index.
    pub fn piece_hash(&self, piece: u32) -> Option<&[u8; 20]> {
        self.pieces.get(usize::try_from(piece).ok()?)
    }

    /// Whether the torrent is one file named `name` (rather than a directory `name`).
    pub fn is_single_file(&self) -> bool {
        matches!(self.files.as_slice(), [only] if only.path.len() == 1)
    }
}

/// Fields as found, borrowed from the input, before the cross-field checks.
#[derive(Default)]
struct RawInfo<'ser> {
    name: Option<&'ser [u8]>,
    name_utf8: Option<&'ser [u8]>,
    piece_length: Option<i64>,
    pieces: Option<&'ser [u8]>,
    length: Option<u64>,
    files: Option<Vec<RawFile<'ser>>>,
    private: bool,
    meta_version: Option<i64>,
}

/// One entry of `files` as found.
#[derive(Default)]
struct RawFile<'ser> {
    length: Option<u64>,
    path: Option<Vec<&'ser [u8]>>,
    path_utf8: Option<Vec<&'ser [u8]>>,
}

impl<'ser> RawInfo<'ser> {
    fn read(dict: &mut DictDecoder<'_, 'ser>) -> Result<Self, MetainfoError> {
        let mut raw = RawInfo::default();
        while let Some((key, value)) = dict.next_pair()? {
            match key {
                b"name" => raw.name = Some(bencode::bytes(value, "name")?),
                b"name.utf-8" => raw.name_utf8 = Some(bencode::bytes(value, "name.utf-8")?),
                b"piece length" => {
                    raw.piece_length = Some(bencode::integer(value, "piece length")?)
                }
                b"pieces" => raw.pieces = Some(bencode::bytes(value, "pieces")?),
                b"length" => raw.length = Some(bencode::length(value, "length")?),
                b"files" => raw.files = Some(read_files(value)?),
                b"private" => raw.private = bencode::integer(value, "private")? != 0,
                b"meta version" => {
                    raw.meta_version = Some(bencode::integer(value, "meta version")?);
                }
                _ => {}
            }
        }
        Ok(raw)
    }

    fn check(self) -> Result<Info, MetainfoError> {
        let name = match (self.name_utf8, self.name) {
            (Some(name), _) => bencode::utf8(name, "name.utf-8")?,
            (None, Some(name)) => bencode::utf8(name, "name")?,
            (None, None) => return Err(MetainfoError::MissingField("name")),
        };
        check_component(&name)?;

        let piece_length = self
            .piece_length
            .ok_or(MetainfoError::MissingField("piece length"))?;
        let piece_length = u32::try_from(piece_length)
            .ok()
            .filter(|length| (1..=MAX_PIECE_LENGTH).contains(length))
            .ok_or(MetainfoError::BadPieceLength(piece_length))?;

        let files = match (self.length, self.files) {
            (Some(_), Some(_)) => return Err(MetainfoError::BothLengthAndFiles),
            (None, None) if self.meta_version == Some(2) => return Err(MetainfoError::V2Only),
            (None, None) => return Err(MetainfoError::NeitherLengthNorFiles),
            (Some(length), None) => vec![FileEntry {
                path: vec![name.clone()],
                length,
                offset: 0,
            }],
            (None, Some(raw_files)) => lay_out(&name, raw_files)?,
        };
        let total = files
            .last()
            .map_or(0, |file| file.offset.saturating_add(file.length));
        if total > MAX_TOTAL_LENGTH {
            return Err(MetainfoError::TooLarge(MAX_TOTAL_LENGTH));
        }
        if total == 0 {
            return Err(MetainfoError::NoData);
        }

        let pieces = self.pieces.ok_or(MetainfoError::MissingField("pieces"))?;
        if pieces.len() % 20 != 0 {
            return Err(MetainfoError::PiecesNotMultipleOf20(pieces.len()));
        }
        let expected = total.div_ceil(u64::from(piece_length));
        let found = (pieces.len() / 20) as u64;
        if expected != found {
            return Err(MetainfoError::PieceCountMismatch { expected, found });
        }
        let pieces = pieces
            .chunks_exact(20)
            .map(|hash| <[u8; 20]>::try_from(hash).expect("chunks_exact(20) yields 20 bytes"))
            .collect();

        Ok(Info {
            name,
            piece_length,
            pieces,
            files,
            private: self.private,
        })
    }
}

/// Reads the `files` list, refusing more than [`MAX_FILES`] before storing them.
fn read_files<'ser>(object: Object<'_, 'ser>) -> Result<Vec<RawFile<'ser>>, MetainfoError> {
    let Object::List(mut list) = object else {
        return Err(MetainfoError::WrongType {
            field: "files",
            expected: "a list of dictionaries",
        });
    };
    let mut files = Vec::new();
    while let Some(item) = list.next_object()? {
        if files.len() == MAX_FILES {
            return Err(MetainfoError::TooManyFiles(MAX_FILES));
        }
        let Object::Dict(mut dict) = item else {
            return Err(MetainfoError::WrongType {
                field: "files",
                expected: "a list of dictionaries",
            });
        };
        let mut file = RawFile::default();
        while let Some((key, value)) = dict.next_pair()? {
            match key {
                b"length" => file.length = Some(bencode::length(value, "length")?),
                b"path" => file.path = Some(bencode::bytes_list(value, "path")?),
                b"path.utf-8" => file.path_utf8 = Some(bencode::bytes_list(value, "path.utf-8")?),
                _ => {}
            }
        }
        files.push(file);
    }
    Ok(files)
}

/// Turns raw multi-file entries into checked [`FileEntry`]s with running offsets.
fn lay_out(name: &str, raw_files: Vec<RawFile<'_>>) -> Result<Vec<FileEntry>, MetainfoError> {
    if raw_files.is_empty() {
        return Err(MetainfoError::NoFiles);
    }
    let mut files = Vec::with_capacity(raw_files.len());
    let mut offset = 0u64;
    for (index, raw) in raw_files.into_iter().enumerate() {
        let length = raw.length.ok_or(MetainfoError::MissingField("length"))?;
        let (components, field) = match (raw.path_utf8, raw.path) {
            (Some(path), _) => (path, "path.utf-8"),
            (None, Some(path)) => (path, "path"),
            (None, None) => return Err(MetainfoError::MissingField("path")),
        };
        if components.is_empty() {
            return Err(MetainfoError::EmptyPath(index));
        }
        if components.len() > MAX_PATH_DEPTH {
            return Err(MetainfoError::PathTooDeep(MAX_PATH_DEPTH));
        }
        let mut path = Vec::with_capacity(components.len() + 1);
        path.push(name.to_owned());
        for component in components {
            let component = bencode::utf8(component, field)?;
            check_component(&component)?;
            path.push(component);
        }
        files.push(FileEntry {
            path,
            length,
            offset,
        });
        offset = offset
            .checked_add(length)
            .filter(|total| *total <= MAX_TOTAL_LENGTH)
            .ok_or(MetainfoError::TooLarge(MAX_TOTAL_LENGTH))?;
    }
    check_collisions(&files)?;
    Ok(files)
}

/// Refuses a name or path component that is empty, `.` or `..`, holds a separator
/// or NUL, or starts like a Windows drive (`C:`), which `Path::join` would treat as
/// a new root. What passes can be joined onto a download directory on any OS.
fn check_component(component: &str) -> Result<(), MetainfoError> {
    let reason = if component.is_empty() {
        "empty"
    } else if component == "." || component == ".." {
        "refers to the current or parent directory"
    } else if component.contains(['/', '\\']) {
        "contains a path separator"
    } else if component.contains('\0') {
        "contains NUL"
    } else if matches!(component.as_bytes(), [letter, b':', ..] if letter.is_ascii_alphabetic()) {
        "starts like a Windows drive"
    } else {
        return Ok(());
    };
    Err(MetainfoError::UnsafePathComponent {
        component: component.to_owned(),
        reason,
    })
}

/// Two files at one path, or a file where another file needs a directory, cannot both be stored.
fn check_collisions(files: &[FileEntry]) -> Result<(), MetainfoError> {
    let mut file_paths = HashSet::with_capacity(files.len());
    let mut dir_paths = HashSet::new();
    for file in files {
        let joined = file.path.join("/");
        if dir_paths.contains(&joined) || !file_paths.insert(joined.clone()) {
            return Err(MetainfoError::PathCollision(joined));
        }
        for depth in 1..file.path.len() {
            let dir = file.path[..depth].join("/");
            if file_paths.contains(&dir) {
                return Err(MetainfoError::PathCollision(dir));
            }
            dir_paths.insert(dir);
        }
    }
    Ok(())
}
