//! The library index: what was hashed, so a restart hashes only what
//! changed.
//!
//! One entry per published file, keyed by its path under the library, its
//! size and its modification time (to the nanosecond). An entry holds what
//! the torrent's info dictionary needs and nothing that depends on where
//! the server runs: the name (which may have been made unique, see
//! `library.rs`), the piece length, the piece hashes and the tags (the
//! cover picture only as "it has one"). The torrent is
//! built again from them with today's tracker and web-seed URLs, so a
//! changed `--public-url` re-hashes nothing and the info hash stays the
//! same.
//!
//! On disk it is JSON lines: a header line, then one entry per line. A file
//! finished while hashing is appended at once (a crash or a restart loses
//! at most the file being hashed); a later line for the same path wins.
//! After each scan the whole index is written afresh to a temporary file
//! and renamed over the old one, so a crash mid-write leaves the old one.
//!
//! With `--albums`, an album (a folder published as one multi-file
//! torrent, `album.rs`) has a line of its own: its folder, its files in
//! torrent order each with its size and modification time, the name, the
//! piece length and the piece hashes. It is reused only while its files
//! are exactly those, in that order, with those stamps; a changed file
//! re-hashes its album and no other.
//!
//! A missing index is an empty one. One that is not ours, or damaged
//! anywhere but in a last line cut short, is logged and ignored: the
//! library is hashed afresh and the index rewritten. Never a refusal to
//! start.

use std::collections::HashMap;
use std::fs::{File, OpenOptions};
use std::io::{self, BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};

use crate::tags::TrackTags;

/// The first line of every index file.
const HEADER: &str = r#"{"fanswarm_index":1}"#;

/// Size and modification time: what says a file is unchanged.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Stamp {
    /// Bytes.
    pub size: u64,
    /// Nanoseconds since the Unix epoch (negative before it).
    pub mtime_ns: i128,
}

impl Stamp {
    /// The stamp of a file's metadata.
    pub fn of(meta: &std::fs::Metadata) -> Option<Stamp> {
        let modified = meta.modified().ok()?;
        Some(Stamp {
            size: meta.len(),
            mtime_ns: nanos(modified),
        })
    }

    /// How long ago the file was last written, by `now`; zero if its
    /// time is in the future.
    pub fn age(&self, now: SystemTime) -> Duration {
        let age = nanos(now).saturating_sub(self.mtime_ns);
        Duration::from_nanos(u64::try_from(age.max(0)).unwrap_or(u64::MAX))
    }
}

/// One hashed file.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Entry {
    /// `/`-separated path under the library.
    pub path: String,
    /// Bytes, when hashed.
    pub size: u64,
    /// Modification time when hashed, nanoseconds since the epoch.
    pub mtime_ns: i128,
    /// The torrent's `name` (the file name, or a unique variant of it).
    pub name: String,
    /// The torrent's piece length.
    pub piece_length: u32,
    /// The SHA-1 of every piece, hex, concatenated.
    pub pieces: String,
    /// The tags read when it was hashed, so a reused file is not read at
    /// all (an index without them: the tags are read again).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tags: Option<StoredTags>,
}

/// A track's tags as the index keeps them: the cover only as its type
/// (the picture is read from the file when it is asked for).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct StoredTags {
    /// The title tag.
    pub title: Option<String>,
    /// The artist tag.
    pub artist: Option<String>,
    /// The album tag.
    pub album: Option<String>,
    /// The track number.
    pub track_number: Option<u32>,
    /// Seconds.
    pub duration: Option<f64>,
    /// Whether the file has a cover picture the server serves.
    pub cover: bool,
}

impl StoredTags {
    /// What to keep of `tags`.
    pub fn of(tags: &TrackTags) -> Self {
        StoredTags {
            title: tags.title.clone(),
            artist: tags.artist.clone(),
            album: tags.album.clone(),
            track_number: tags.track_number,
            duration: tags.duration,
            cover: tags.cover.is_some(),
        }
    }

    /// The tags again, without the picture; `cover_url` when it has one.
    pub fn to_tags(&self, cover_url: &str) -> TrackTags {
        TrackTags {
            title: self.title.clone(),
            artist: self.artist.clone(),
            album: self.album.clone(),
            track_number: self.track_number,
            duration: self.duration,
            cover_url: self.cover.then(|| cover_url.to_owned()),
            cover: None,
        }
    }
}

impl Entry {
    /// Whether this entry describes a file with `stamp`.
    pub fn matches(&self, stamp: Stamp) -> bool {
        self.size == stamp.size && self.mtime_ns == stamp.mtime_ns
    }

    /// The piece hashes, if they are well formed and as many as the size
    /// and piece length call for.
    pub fn piece_hashes(&self) -> Option<Vec<[u8; 20]>> {
        decode_pieces(&self.pieces, self.piece_length, self.size)
    }
}

/// One hashed album (`--albums`): a multi-file torrent of a folder.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AlbumEntry {
    /// The folder under the library, `/`-separated.
    pub album: String,
    /// Its files in torrent order, as hashed.
    pub files: Vec<AlbumEntryFile>,
    /// The torrent's `name`.
    pub name: String,
    /// The torrent's piece length.
    pub piece_length: u32,
    /// The SHA-1 of every piece, hex, concatenated.
    pub pieces: String,
}

/// A file of an [`AlbumEntry`]: which, and its stamp when hashed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AlbumEntryFile {
    /// `/`-separated path under the library.
    pub path: String,
    /// Bytes, when hashed.
    pub size: u64,
    /// Modification time when hashed, nanoseconds since the epoch.
    pub mtime_ns: i128,
}

impl AlbumEntry {
    /// The piece hashes, if they are well formed and as many as the
    /// files' sizes and the piece length call for.
    pub fn piece_hashes(&self) -> Option<Vec<[u8; 20]>> {
        let total = self
            .files
            .iter()
            .try_fold(0u64, |sum, f| sum.checked_add(f.size))?;
        decode_pieces(&self.pieces, self.piece_length, total)
    }

    /// Whether it was hashed from exactly `files` (path and stamp, in
    /// torrent order).
    pub fn matches(&self, files: &[(&str, Stamp)]) -> bool {
        self.files.len() == files.len()
            && self.files.iter().zip(files).all(|(f, (path, stamp))| {
                f.path == *path && f.size == stamp.size && f.mtime_ns == stamp.mtime_ns
            })
    }
}

/// A line of the index after the header: a file or an album (told apart
/// by their fields: an album has `album` and `files`, a file `path`).
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(untagged)]
enum Line {
    File(Entry),
    Album(AlbumEntry),
}

impl Line {
    /// A file's line, else an album's; the file's error if neither.
    fn parse(bytes: &[u8]) -> serde_json::Result<Line> {
        serde_json::from_slice::<Entry>(bytes)
            .map(Line::File)
            .or_else(|e| {
                serde_json::from_slice::<AlbumEntry>(bytes)
                    .map(Line::Album)
                    .map_err(|_| e)
            })
    }
}

/// Hex piece hashes, if well formed and as many as `total` bytes in
/// pieces of `piece_length` call for.
fn decode_pieces(pieces: &str, piece_length: u32, total: u64) -> Option<Vec<[u8; 20]>> {
    let bytes = data_encoding::HEXLOWER.decode(pieces.as_bytes()).ok()?;
    if piece_length == 0 || bytes.len() % 20 != 0 {
        return None;
    }
    let expected = total.div_ceil(u64::from(piece_length));
    if u64::try_from(bytes.len() / 20).ok()? != expected {
        return None;
    }
    Some(
        bytes
            .chunks_exact(20)
            .map(|c| <[u8; 20]>::try_from(c).unwrap_or([0; 20]))
            .collect(),
    )
}

/// What an index file holds: files by path, albums by folder.
#[derive(Debug, Default)]
struct Entries {
    files: HashMap<String, Entry>,
    albums: HashMap<String, AlbumEntry>,
}

/// The index of one library, in memory and (when it has a path) on disk.
#[derive(Debug, Default)]
pub struct Index {
    path: Option<PathBuf>,
    entries: Entries,
    /// Appends go here; opened on the first one.
    appender: Option<File>,
}

impl Index {
    /// An index kept only in memory (the one-shot `publish_library`).
    pub fn in_memory() -> Self {
        Index::default()
    }

    /// The index stored at `path`: its entries if it can be read, else
    /// empty (and why is logged).
    pub fn load(path: PathBuf) -> Self {
        let entries = match File::open(&path) {
            Ok(file) => match parse(BufReader::new(file)) {
                Ok(entries) => entries,
                Err(Damage::Foreign) => {
                    tracing::warn!(
                        index = %path.display(),
                        "not a fanswarm library index: left as it is, every file is hashed \
                         again and nothing is recorded (point --index elsewhere)"
                    );
                    return Index::in_memory();
                }
                Err(Damage::Damaged(why)) => {
                    tracing::warn!(
                        index = %path.display(),
                        %why,
                        "library index damaged: every file is hashed again and the index rewritten"
                    );
                    if let Err(e) = write_atomically(&path, &Entries::default()) {
                        tracing::warn!(index = %path.display(), error = %e, "library index not rewritten");
                    }
                    Entries::default()
                }
            },
            Err(e) if e.kind() == io::ErrorKind::NotFound => Entries::default(),
            Err(e) => {
                tracing::warn!(
                    index = %path.display(),
                    error = %e,
                    "library index not readable: every file is hashed again"
                );
                Entries::default()
            }
        };
        Index {
            path: Some(path),
            entries,
            appender: None,
        }
    }

    /// Where it is stored, if anywhere.
    pub fn path(&self) -> Option<&Path> {
        self.path.as_deref()
    }

    /// How many files it knows.
    pub fn len(&self) -> usize {
        self.entries.files.len()
    }

    /// Whether it knows no file.
    pub fn is_empty(&self) -> bool {
        self.entries.files.is_empty()
    }

    /// The entry for the file at `path` if it still has `stamp`.
    pub fn lookup(&self, path: &str, stamp: Stamp) -> Option<&Entry> {
        self.entries.files.get(path).filter(|e| e.matches(stamp))
    }

    /// The album of `folder` if it was hashed from exactly `files` (path
    /// and stamp, in torrent order).
    pub fn lookup_album(&self, folder: &str, files: &[(&str, Stamp)]) -> Option<&AlbumEntry> {
        self.entries.albums.get(folder).filter(|a| a.matches(files))
    }

    /// Records a file just hashed, appending it to the file on disk at
    /// once. A failed write is logged: the file is hashed again next time.
    pub fn record(&mut self, entry: Entry) {
        let line = Line::File(entry);
        self.append(&line);
        if let Line::File(entry) = line {
            self.entries.files.insert(entry.path.clone(), entry);
        }
    }

    /// Records an album just hashed, as [`Index::record`] does a file.
    pub fn record_album(&mut self, entry: AlbumEntry) {
        let line = Line::Album(entry);
        self.append(&line);
        if let Line::Album(entry) = line {
            self.entries.albums.insert(entry.album.clone(), entry);
        }
    }

    /// Keeps only the file entries `keep` says yes to (and every album),
    /// then writes the whole index afresh (temporary file, then rename).
    pub fn compact(&mut self, keep: impl Fn(&Entry) -> bool) {
        self.compact_with_albums(keep, |_| true);
    }

    /// [`Index::compact`], keeping only the albums `keep_album` says yes
    /// to.
    pub fn compact_with_albums(
        &mut self,
        keep: impl Fn(&Entry) -> bool,
        keep_album: impl Fn(&AlbumEntry) -> bool,
    ) {
        self.entries.files.retain(|_, e| keep(e));
        self.entries.albums.retain(|_, a| keep_album(a));
        let Some(path) = self.path.clone() else {
            return;
        };
        self.appender = None;
        if let Err(e) = write_atomically(&path, &self.entries) {
            tracing::warn!(index = %path.display(), error = %e, "library index not written");
        }
    }
}

impl Index {
    fn append(&mut self, line: &Line) {
        if let Some(path) = &self.path
            && let Err(e) = append(path, &mut self.appender, line)
        {
            tracing::warn!(index = %path.display(), error = %e, "library index not updated");
            self.appender = None;
        }
    }
}

/// Why an index file was not used.
enum Damage {
    /// Its first line is not our header: someone else's file.
    Foreign,
    /// Ours, but a line other than the last does not parse or lies.
    Damaged(String),
}

/// Nanoseconds between the epoch and `time`.
fn nanos(time: SystemTime) -> i128 {
    match time.duration_since(UNIX_EPOCH) {
        Ok(after) => i128::try_from(after.as_nanos()).unwrap_or(i128::MAX),
        Err(before) => -i128::try_from(before.duration().as_nanos()).unwrap_or(i128::MAX),
    }
}

/// Reads an index file. A last line without its newline (an append cut
/// short by a crash) is dropped; anything else that does not parse
/// condemns the whole file.
fn parse(reader: impl BufRead) -> Result<Entries, Damage> {
    let mut entries = Entries::default();
    let mut lines = Vec::new();
    for line in reader.split(b'\n') {
        lines.push(line.map_err(|e| Damage::Damaged(e.to_string()))?);
    }
    let mut iter = lines.iter().enumerate();
    match iter.next() {
        Some((_, first)) if first.as_slice() == HEADER.as_bytes() => {}
        Some(_) => return Err(Damage::Foreign),
        None => return Ok(entries),
    }
    let last = lines.len() - 1;
    for (n, line) in iter {
        if line.is_empty() {
            continue;
        }
        match Line::parse(line) {
            Ok(Line::File(entry)) if entry.piece_hashes().is_some() => {
                entries.files.insert(entry.path.clone(), entry);
            }
            Ok(Line::Album(album)) if album.piece_hashes().is_some() => {
                entries.albums.insert(album.album.clone(), album);
            }
            Ok(_) if n == last => {}
            Err(_) if n == last => {
                tracing::info!(
                    "library index: its last line was cut short; that file is hashed again"
                );
            }
            Ok(_) => {
                return Err(Damage::Damaged(format!(
                    "line {}: piece hashes do not fit the size",
                    n + 1
                )));
            }
            Err(e) => return Err(Damage::Damaged(format!("line {}: {e}", n + 1))),
        }
    }
    Ok(entries)
}

/// Appends one entry; opens (and if need be creates, with its header) the
/// file on first use.
fn append(path: &Path, appender: &mut Option<File>, entry: &Line) -> io::Result<()> {
    if appender.is_none() {
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir)?;
        }
        let fresh = !path.exists();
        let mut file = OpenOptions::new().create(true).append(true).open(path)?;
        if fresh {
            writeln!(file, "{HEADER}")?;
        }
        *appender = Some(file);
    }
    let mut line = serde_json::to_vec(entry).map_err(io::Error::other)?;
    line.push(b'\n');
    match appender {
        Some(file) => file.write_all(&line),
        None => Ok(()),
    }
}

/// Writes every entry to `<path>.tmp`, syncs it, and renames it over `path`.
fn write_atomically(path: &Path, entries: &Entries) -> io::Result<()> {
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)?;
    }
    let mut temporary = path.as_os_str().to_owned();
    temporary.push(".tmp");
    let temporary = PathBuf::from(temporary);
    let mut sorted: Vec<&Entry> = entries.files.values().collect();
    sorted.sort_by(|a, b| a.path.cmp(&b.path));
    let mut albums: Vec<&AlbumEntry> = entries.albums.values().collect();
    albums.sort_by(|a, b| a.album.cmp(&b.album));
    let mut text = Vec::with_capacity(64 + sorted.len() * 256);
    text.extend_from_slice(HEADER.as_bytes());
    text.push(b'\n');
    for entry in sorted {
        serde_json::to_writer(&mut text, entry).map_err(io::Error::other)?;
        text.push(b'\n');
    }
    for album in albums {
        serde_json::to_writer(&mut text, album).map_err(io::Error::other)?;
        text.push(b'\n');
    }
    let mut file = File::create(&temporary)?;
    file.write_all(&text)?;
    file.sync_all()?;
    std::fs::rename(&temporary, path)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(path: &str, size: u64) -> Entry {
        let pieces = size.div_ceil(16_384) as usize;
        Entry {
            path: path.into(),
            size,
            mtime_ns: 1_700_000_000_123_456_789,
            name: path.rsplit('/').next().unwrap_or(path).into(),
            piece_length: 16_384,
            pieces: "ab".repeat(20 * pieces),
            tags: None,
        }
    }

    #[test]
    fn entries_survive_appends_and_a_rewrite() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("index");
        let mut index = Index::load(path.clone());
        assert!(index.is_empty());
        index.record(entry("a.mp3", 40_000));
        index.record(entry("b/c.mp3", 10));
        let stamp = Stamp {
            size: 40_000,
            mtime_ns: 1_700_000_000_123_456_789,
        };
        let again = Index::load(path.clone());
        assert_eq!(again.len(), 2);
        assert!(again.lookup("a.mp3", stamp).is_some());
        assert!(
            again
                .lookup(
                    "a.mp3",
                    Stamp {
                        size: 40_001,
                        ..stamp
                    }
                )
                .is_none(),
            "another size is another file"
        );
        let mut again = again;
        again.compact(|e| e.path != "b/c.mp3");
        let last = Index::load(path);
        assert_eq!(last.len(), 1);
        assert!(!dir.path().join("index.tmp").exists());
    }

    #[test]
    fn albums_are_kept_beside_files_and_match_only_their_very_files() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("index");
        let stamp = |size| Stamp {
            size,
            mtime_ns: 1_700_000_000_123_456_789,
        };
        let album = AlbumEntry {
            album: "A".into(),
            files: [("A/1.mp3", 20_000), ("A/2.mp3", 13_000)]
                .iter()
                .map(|&(path, size)| AlbumEntryFile {
                    path: path.into(),
                    size,
                    mtime_ns: stamp(size).mtime_ns,
                })
                .collect(),
            name: "A".into(),
            piece_length: 16_384,
            pieces: "cd".repeat(20 * 3),
        };
        let mut index = Index::load(path.clone());
        index.record(entry("A/1.mp3", 20_000));
        index.record_album(album.clone());
        let files = [("A/1.mp3", stamp(20_000)), ("A/2.mp3", stamp(13_000))];
        let again = Index::load(path.clone());
        assert_eq!(again.len(), 1, "an album is not a file");
        assert_eq!(again.lookup_album("A", &files), Some(&album));
        let reordered = [files[1], files[0]];
        assert!(again.lookup_album("A", &reordered).is_none(), "order");
        let touched = [files[0], ("A/2.mp3", stamp(13_001))];
        assert!(again.lookup_album("A", &touched).is_none(), "a stamp");
        assert!(again.lookup_album("B", &files).is_none());
        let mut again = again;
        again.compact(|_| true);
        assert!(
            Index::load(path.clone())
                .lookup_album("A", &files)
                .is_some()
        );
        again.compact_with_albums(|_| true, |a| a.album != "A");
        let last = Index::load(path.clone());
        assert!(last.lookup_album("A", &files).is_none());
        assert_eq!(last.len(), 1);
        // Piece hashes that do not fit the files' sizes: damage.
        let mut lying = album;
        lying.pieces.truncate(40);
        let lying = serde_json::to_string(&lying).unwrap();
        let good = serde_json::to_string(&entry("a.mp3", 40_000)).unwrap();
        std::fs::write(&path, format!("{HEADER}\n{lying}\n{good}\n")).unwrap();
        assert!(Index::load(path).is_empty(), "too few album piece hashes");
    }

    #[test]
    fn the_first_append_makes_the_folder_and_the_header() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("cache/indexes/abc");
        let mut index = Index::load(path.clone());
        index.record(entry("a.mp3", 40_000));
        let text = std::fs::read_to_string(&path).unwrap();
        assert!(text.starts_with(HEADER), "{text}");
        assert_eq!(Index::load(path).len(), 1);
    }

    #[test]
    fn the_index_is_kept_in_a_writable_library_else_in_the_cache() {
        let dir = tempfile::tempdir().unwrap();
        let cache = dir.path().join("cache");
        assert_eq!(
            crate::library::default_index_path(dir.path(), &cache),
            dir.path().join(".fanswarm-index")
        );
        assert!(!dir.path().join(".fanswarm-index.probe").exists());
        // A library that cannot be written to (here: not there at all).
        let elsewhere = crate::library::default_index_path(&dir.path().join("ro"), &cache);
        assert!(
            elsewhere.starts_with(cache.join("indexes")),
            "{elsewhere:?}"
        );
        assert_ne!(
            elsewhere,
            crate::library::default_index_path(&dir.path().join("ro2"), &cache),
            "one index per library"
        );
    }

    #[test]
    fn a_foreign_or_damaged_index_is_ignored_and_a_cut_last_line_dropped() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("index");
        std::fs::write(&path, b"\x00\xffnot an index at all").unwrap();
        assert!(Index::load(path.clone()).is_empty());
        let good = serde_json::to_string(&entry("a.mp3", 40_000)).unwrap();
        std::fs::write(&path, format!("{HEADER}\n{{\"path\": 1\n{good}\n")).unwrap();
        assert!(Index::load(path.clone()).is_empty(), "damage in the middle");
        let cut = &good[..good.len() / 2];
        std::fs::write(&path, format!("{HEADER}\n{good}\n{cut}")).unwrap();
        assert_eq!(Index::load(path.clone()).len(), 1, "a cut last line");
        let mut lying = entry("b.mp3", 40_000);
        lying.pieces.truncate(40);
        let lying = serde_json::to_string(&lying).unwrap();
        std::fs::write(&path, format!("{HEADER}\n{lying}\n{good}\n")).unwrap();
        assert!(Index::load(path).is_empty(), "too few piece hashes");
    }
}
