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
        let bytes = data_encoding::HEXLOWER
            .decode(self.pieces.as_bytes())
            .ok()?;
        if self.piece_length == 0 || bytes.len() % 20 != 0 {
            return None;
        }
        let expected = self.size.div_ceil(u64::from(self.piece_length));
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
}

/// The index of one library, in memory and (when it has a path) on disk.
#[derive(Debug, Default)]
pub struct Index {
    path: Option<PathBuf>,
    entries: HashMap<String, Entry>,
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
                    if let Err(e) = write_atomically(&path, &HashMap::new()) {
                        tracing::warn!(index = %path.display(), error = %e, "library index not rewritten");
                    }
                    HashMap::new()
                }
            },
            Err(e) if e.kind() == io::ErrorKind::NotFound => HashMap::new(),
            Err(e) => {
                tracing::warn!(
                    index = %path.display(),
                    error = %e,
                    "library index not readable: every file is hashed again"
                );
                HashMap::new()
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
        self.entries.len()
    }

    /// Whether it knows no file.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// The entry for the file at `path` if it still has `stamp`.
    pub fn lookup(&self, path: &str, stamp: Stamp) -> Option<&Entry> {
        self.entries.get(path).filter(|e| e.matches(stamp))
    }

    /// Records a file just hashed, appending it to the file on disk at
    /// once. A failed write is logged: the file is hashed again next time.
    pub fn record(&mut self, entry: Entry) {
        if let Some(path) = &self.path
            && let Err(e) = append(path, &mut self.appender, &entry)
        {
            tracing::warn!(index = %path.display(), error = %e, "library index not updated");
            self.appender = None;
        }
        self.entries.insert(entry.path.clone(), entry);
    }

    /// Keeps only the entries `keep` says yes to, then writes the whole
    /// index afresh (temporary file, then rename).
    pub fn compact(&mut self, keep: impl Fn(&Entry) -> bool) {
        self.entries.retain(|_, e| keep(e));
        let Some(path) = self.path.clone() else {
            return;
        };
        self.appender = None;
        if let Err(e) = write_atomically(&path, &self.entries) {
            tracing::warn!(index = %path.display(), error = %e, "library index not written");
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
fn parse(reader: impl BufRead) -> Result<HashMap<String, Entry>, Damage> {
    let mut entries = HashMap::new();
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
        match serde_json::from_slice::<Entry>(line) {
            Ok(entry) if entry.piece_hashes().is_some() => {
                entries.insert(entry.path.clone(), entry);
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
fn append(path: &Path, appender: &mut Option<File>, entry: &Entry) -> io::Result<()> {
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
fn write_atomically(path: &Path, entries: &HashMap<String, Entry>) -> io::Result<()> {
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)?;
    }
    let mut temporary = path.as_os_str().to_owned();
    temporary.push(".tmp");
    let temporary = PathBuf::from(temporary);
    let mut sorted: Vec<&Entry> = entries.values().collect();
    sorted.sort_by(|a, b| a.path.cmp(&b.path));
    let mut text = Vec::with_capacity(64 + sorted.len() * 256);
    text.extend_from_slice(HEADER.as_bytes());
    text.push(b'\n');
    for entry in sorted {
        serde_json::to_writer(&mut text, entry).map_err(io::Error::other)?;
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
