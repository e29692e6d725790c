//! The live library: what `serve --library` publishes, kept in step with
//! the folder while the server runs.
//!
//! The model: the folder is scanned (a walk and a `stat` per file, no
//! reading), and each audio file is in exactly one of these states:
//! - **published**: its torrent is in the catalog, made from the bytes it
//!   has now (its size and modification time, its [`Stamp`], are the ones
//!   hashed);
//! - **reused**: unchanged since an earlier run by the [`Index`]: its
//!   torrent is rebuilt from the stored piece hashes and published at
//!   once, without reading the file;
//! - **settling**: written less than [`QUIET`] ago; left alone until it
//!   has been still that long, so a file being copied in is never
//!   published half-written;
//! - **queued**: to be hashed; published, and appended to the index, the
//!   moment its hashing ends.
//!
//! A file that changes is withdrawn at the scan that sees it (not served,
//! its swarm not admitted) and published again under its new info hash
//! once hashed; a file that disappears is withdrawn. Scans run at start,
//! after every burst of filesystem events (`notify`: inotify on Linux) and,
//! if the watch cannot be set up, every [`POLL`].
//!
//! Because a file is hashed only once it has been still for [`QUIET`], a
//! write after its hashing always moves its modification time: the index
//! can trust size and mtime.
//!
//! **Unique identities.** A torrent's info hash covers its name and its
//! bytes, so two files with the same name and the same bytes in different
//! folders (`a/intro.mp3`, `b/intro.mp3`) would be one swarm and one
//! catalog entry. The one published second gets its folder in its
//! torrent's name (`intro (b).mp3`), hence its own info hash; both are
//! published and the log says so. The name is kept in the index, so each
//! keeps its identity across restarts. Other would-be clashes cannot
//! happen: `/media/` URLs are the library paths themselves (names that
//! differ only in case or in Unicode normalization are different paths,
//! and different URLs), and tags name nothing.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant, SystemTime};

use swarm::InfoHash;
use swarm::metainfo::Metainfo;

use crate::album;
use crate::catalog::{Catalog, Track};
use crate::index::{Entry, Index, Stamp, StoredTags};
pub use crate::metrics::{LibraryProgress, LibraryStatus};
use crate::publish::{self, PublishError};
use crate::state::AppState;

/// How long a file must have been still before it is hashed.
pub const QUIET: Duration = Duration::from_secs(1);
/// How often the folder is scanned when it cannot be watched.
pub const POLL: Duration = Duration::from_secs(30);
/// How long after a filesystem event the scan waits for more of them.
const DEBOUNCE: Duration = Duration::from_millis(300);
/// How often hashing logs its progress.
const PROGRESS_EVERY: Duration = Duration::from_secs(5);
/// How many unique names are tried for one file before it is skipped.
const MAX_VARIANTS: u32 = 10_000;
/// How often the catalog is republished while hashing.
const PUBLISH_EVERY: Duration = Duration::from_secs(1);

/// A file to hash: where, and the stamp it had when scanned.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Queued {
    /// `/`-separated path under the library.
    pub path: String,
    /// Size and modification time at the scan.
    pub stamp: Stamp,
}

/// What a scan found to do.
#[derive(Debug, Default)]
pub struct Plan {
    /// Files to hash, in path order.
    pub queue: Vec<Queued>,
    /// Files not still long enough yet.
    pub settling: usize,
    /// Whether the published set changed (reused, withdrawn).
    pub changed: bool,
    /// Files published from the index by this scan.
    pub reused: u64,
}

/// The library's blocking half: scans and hashes (run it off the async
/// threads).
#[derive(Debug)]
pub struct Library {
    root: PathBuf,
    base: String,
    /// `--web-seed-mirror` bases, listed after our web seed.
    mirrors: Vec<String>,
    index: Index,
    quiet: Duration,
    /// Published tracks by path.
    published: BTreeMap<String, Track>,
    /// The path publishing each info hash.
    owners: HashMap<InfoHash, String>,
    /// Files that could not be published, with the stamp they had: not
    /// tried again until it changes.
    failed: HashMap<String, Stamp>,
    /// Whether a folder of two or more tracks is published as one album
    /// (`--albums`, off by default: the browser player cannot play an
    /// album yet). Off: every file is a single-file torrent.
    publish_albums: bool,
    /// Albums by folder (see `album.rs`): the files and stamps hashed, and
    /// the album. Published only while its files are exactly those.
    albums: BTreeMap<String, (album::Key, Track)>,
    /// Folders holding two or more audio files at the last scan (with
    /// `--albums`): their queued files wait for their album's hashing,
    /// which hashes them alone in the same read.
    album_folders: HashSet<String>,
    /// Queued files of album folders, with the stamp scanned: hashed by
    /// [`Library::build_albums`].
    deferred: BTreeMap<String, Stamp>,
    /// Set when the server stops: a scan or a queue under way ends at the
    /// next file instead of keeping the process alive.
    stop: Arc<AtomicBool>,
}

impl Library {
    /// The library at `root`, published as served from `base`, with
    /// `index`; files are hashed once still for `quiet`.
    pub fn new(root: PathBuf, base: String, index: Index, quiet: Duration) -> Self {
        Library {
            root,
            base,
            mirrors: Vec::new(),
            index,
            quiet,
            published: BTreeMap::new(),
            owners: HashMap::new(),
            failed: HashMap::new(),
            publish_albums: false,
            albums: BTreeMap::new(),
            album_folders: HashSet::new(),
            deferred: BTreeMap::new(),
            stop: Arc::default(),
        }
    }

    /// Each torrent also lists the file under each of `mirrors` (base URLs
    /// ending in `/`) as a web seed, after ours. The index holds no URL, so
    /// adding or removing a mirror re-hashes nothing.
    pub fn with_mirrors(mut self, mirrors: Vec<String>) -> Self {
        self.mirrors = mirrors;
        self
    }

    /// Publishes each folder of two or more tracks as one album (see
    /// `album.rs`) when `albums` is set; else (the default) every file
    /// stays a single-file torrent.
    pub fn with_albums(mut self, albums: bool) -> Self {
        self.publish_albums = albums;
        self
    }

    /// Walks the folder and brings the published set in step with it:
    /// withdraws what changed or went away, publishes what the index
    /// knows unchanged, and says what is left to hash.
    pub fn scan(&mut self, now: SystemTime) -> Result<Plan, PublishError> {
        let files = publish::find_audio_files(&self.root)?;
        let mut plan = Plan::default();
        let mut seen = Vec::with_capacity(files.len());
        for file in files {
            if self.stop.load(Ordering::Relaxed) {
                return Err(PublishError::Task("stopped".into()));
            }
            let relative = match publish::relative_path(&self.root, &file) {
                Ok(relative) => relative,
                Err(e) => {
                    tracing::warn!(%e, "skipping track");
                    continue;
                }
            };
            let Some(stamp) = std::fs::symlink_metadata(&file)
                .ok()
                .filter(|m| m.file_type().is_file())
                .and_then(|m| Stamp::of(&m))
            else {
                continue;
            };
            seen.push(relative.clone());
            if let Some(track) = self.published.get(&relative) {
                if track.stamp == Some(stamp) {
                    continue;
                }
                tracing::info!(track = %relative, info_hash = %track.info_hash, "changed: withdrawn until hashed again");
                self.withdraw(&relative);
                plan.changed = true;
            }
            if let Some(entry) = self.index.lookup(&relative, stamp).cloned() {
                match self.reuse(&entry, stamp) {
                    Ok(()) => {
                        plan.changed = true;
                        plan.reused += 1;
                        continue;
                    }
                    Err(e) => {
                        tracing::warn!(%e, track = %relative, "index entry not usable: hashing again")
                    }
                }
            }
            if self.failed.get(&relative) == Some(&stamp) {
                continue;
            }
            if stamp.age(now) < self.quiet {
                plan.settling += 1;
            } else {
                plan.queue.push(Queued {
                    path: relative,
                    stamp,
                });
            }
        }
        seen.sort_unstable();
        let gone: Vec<String> = self
            .published
            .keys()
            .filter(|p| seen.binary_search(p).is_err())
            .cloned()
            .collect();
        self.failed
            .retain(|path, _| seen.binary_search(path).is_ok());
        for path in gone {
            tracing::info!(track = %path, "removed from the library: withdrawn");
            self.withdraw(&path);
            plan.changed = true;
        }
        self.deferred.clear();
        if self.publish_albums {
            let mut per_folder: HashMap<&str, usize> = HashMap::new();
            for path in &seen {
                if let Some((folder, _)) = path.rsplit_once('/') {
                    *per_folder.entry(folder).or_default() += 1;
                }
            }
            self.album_folders = per_folder
                .into_iter()
                .filter(|&(_, n)| n >= 2)
                .map(|(folder, _)| folder.to_owned())
                .collect();
        }
        Ok(plan)
    }

    /// Hashes one queued file and publishes it, unless it changed since
    /// the scan (then the next scan sees it again) or cannot be read
    /// (logged). `progress.queued_bytes` goes down as it is read.
    ///
    /// With `--albums`, a file of an album folder is only noted here: its
    /// album's hashing ([`Library::build_albums`]) reads it once for both.
    pub fn hash(&mut self, queued: &Queued, progress: &LibraryProgress) -> Option<&Track> {
        if self.stop.load(Ordering::Relaxed) {
            return None;
        }
        if self.publish_albums
            && let Some((folder, _)) = queued.path.rsplit_once('/')
            && self.album_folders.contains(folder)
        {
            self.deferred.insert(queued.path.clone(), queued.stamp);
            return None;
        }
        self.hash_alone(queued, progress)
    }

    /// Hashes one file as a single-file torrent and publishes it.
    fn hash_alone(&mut self, queued: &Queued, progress: &LibraryProgress) -> Option<&Track> {
        let file = self.root.join(&queued.path);
        let options = publish::options_for(&self.base, &self.mirrors, &queued.path);
        let mut counted = 0u64;
        let made = publish::make_torrent(&file, &options, |done| {
            progress
                .queued_bytes
                .dec_by(i64::try_from(done - counted).unwrap_or(0));
            counted = done;
        });
        progress
            .queued_bytes
            .dec_by(i64::try_from(queued.stamp.size.saturating_sub(counted)).unwrap_or(0));
        progress.hashed_files.inc();
        progress.hashed_bytes.inc_by(counted);
        let now = std::fs::symlink_metadata(&file)
            .ok()
            .and_then(|m| Stamp::of(&m));
        if now != Some(queued.stamp) {
            tracing::info!(track = %queued.path, "changed while hashed: hashed again once still");
            return None;
        }
        let metainfo = match made {
            Ok(metainfo) => metainfo,
            Err(e) => {
                tracing::warn!(%e, "skipping track (tried again once the file changes)");
                self.failed.insert(queued.path.clone(), queued.stamp);
                return None;
            }
        };
        let metainfo = match self.unique(metainfo, &queued.path) {
            Ok(metainfo) => metainfo,
            Err(e) => {
                tracing::warn!(%e, "skipping track");
                return None;
            }
        };
        self.publish_hashed(&metainfo, &queued.path, queued.stamp, None)
    }

    /// Publishes a file just hashed and records it in the index.
    fn publish_hashed(
        &mut self,
        metainfo: &Metainfo,
        path: &str,
        stamp: Stamp,
        tags: Option<&StoredTags>,
    ) -> Option<&Track> {
        self.insert(metainfo, path, stamp, tags);
        let track = self.published.get(path)?;
        self.index.record(Entry {
            path: path.to_owned(),
            size: stamp.size,
            mtime_ns: stamp.mtime_ns,
            name: metainfo.info.name.clone(),
            piece_length: metainfo.info.piece_length,
            pieces: data_encoding::HEXLOWER.encode(metainfo.info.pieces.as_flattened()),
            tags: Some(StoredTags::of(&track.tags)),
        });
        self.published.get(path)
    }

    /// A stand-in for a deferred file while its album is hashed: its
    /// tags, size and stamp (what ordering and naming the album need);
    /// its info hash is not known yet.
    fn provisional(&self, path: &str, stamp: Stamp) -> Option<Track> {
        let options = publish::options_for(&self.base, &self.mirrors, path);
        let piece_length = swarm::metainfo::piece_length_for(stamp.size);
        let count = usize::try_from(stamp.size.div_ceil(u64::from(piece_length))).ok()?;
        let name = path.rsplit_once('/').map_or(path, |(_, n)| n);
        let placeholder = publish::torrent_from_pieces(
            name,
            stamp.size,
            piece_length,
            &vec![[0; 20]; count],
            &options,
        )
        .ok()?;
        Some(publish::track_of(
            &self.root,
            path,
            &self.base,
            &placeholder,
            Some(stamp),
            None,
        ))
    }

    /// Drops index entries of files no longer published, and of albums
    /// not published as they are (with `--albums`), and writes the index
    /// afresh.
    pub fn compact_index(&mut self) {
        let published = &self.published;
        let albums = &self.albums;
        let with_albums = self.publish_albums;
        self.index.compact_with_albums(
            |e| {
                published
                    .get(&e.path)
                    .is_some_and(|t| t.stamp.is_some_and(|s| e.matches(s)))
            },
            // Without --albums they are kept for when it is on again.
            |a| {
                !with_albums
                    || albums.get(&a.album).is_some_and(|(_, track)| {
                        track.files.as_ref().is_some_and(|files| {
                            a.files.len() == files.len()
                                && a.files.iter().zip(files).all(|(e, f)| {
                                    e.path == f.path
                                        && f.stamp.is_some_and(|s| {
                                            s.size == e.size && s.mtime_ns == e.mtime_ns
                                        })
                                })
                        })
                    })
            },
        );
    }

    /// Hashes the album of every folder holding two or more published
    /// tracks whose files changed since it was last hashed (or that is
    /// new), and forgets albums whose folder no longer is one. Returns
    /// whether an album was made or forgotten.
    /// An album the index holds for these very files is rebuilt from it
    /// without reading them; one hashed is recorded there and counted in
    /// `progress`. Does nothing without [`Library::with_albums`].
    pub fn build_albums(&mut self, progress: &LibraryProgress) -> bool {
        if !self.publish_albums {
            return false;
        }
        let mut changed = false;
        let mut provisional: BTreeMap<String, Track> = BTreeMap::new();
        for (path, stamp) in std::mem::take(&mut self.deferred) {
            match self.provisional(&path, stamp) {
                Some(track) => {
                    provisional.insert(path, track);
                }
                // No torrent can be made of it (empty): hashed alone, so
                // it is logged and not tried again until it changes.
                None => changed |= self.hash_alone(&Queued { path, stamp }, progress).is_some(),
            }
        }
        let folders: BTreeMap<String, Vec<Track>> =
            album::folders(self.published.values().chain(provisional.values()))
                .into_iter()
                .map(|(folder, tracks)| (folder, tracks.into_iter().cloned().collect()))
                .collect();
        // A deferred file whose folder is no album after all (another
        // file failed): hashed alone.
        for (path, track) in &provisional {
            let in_album = path
                .rsplit_once('/')
                .is_some_and(|(folder, _)| folders.contains_key(folder));
            if !in_album && let Some(stamp) = track.stamp {
                let queued = Queued {
                    path: path.clone(),
                    stamp,
                };
                changed |= self.hash_alone(&queued, progress).is_some();
            }
        }
        let before = self.albums.len();
        self.albums.retain(|folder, _| folders.contains_key(folder));
        changed |= before != self.albums.len();
        for (folder, tracks) in &folders {
            if self.stop.load(Ordering::Relaxed) {
                break;
            }
            let tracks: Vec<&Track> = tracks.iter().collect();
            let key = album::key(&tracks);
            if self.albums.get(folder).is_some_and(|(k, _)| *k == key) {
                continue;
            }
            self.albums.remove(folder);
            changed = true;
            let made = album::make(
                &self.root,
                &self.base,
                &self.mirrors,
                folder,
                &tracks,
                &self.index,
                &|path| provisional.contains_key(path),
            );
            let mut made = match made {
                Ok(made) => made,
                Err(e) => {
                    tracing::warn!(%e, album = %folder, "album not published");
                    continue;
                }
            };
            if made.hashed_bytes > 0 {
                progress.hashed_files.inc_by(tracks.len() as u64);
                progress.hashed_bytes.inc_by(made.hashed_bytes);
            }
            // Its new files, hashed alone in the same read: published
            // (outside the catalog while in the album) and indexed.
            for (path, pieces) in std::mem::take(&mut made.singles) {
                let Some(track) = provisional.get(&path) else {
                    continue;
                };
                let Some(stamp) = track.stamp else {
                    continue;
                };
                let tags = StoredTags::of(&track.tags);
                let options = publish::options_for(&self.base, &self.mirrors, &path);
                let name = path.rsplit_once('/').map_or(path.as_str(), |(_, n)| n);
                let single = publish::torrent_from_pieces(
                    name,
                    stamp.size,
                    swarm::metainfo::piece_length_for(stamp.size),
                    &pieces,
                    &options,
                )
                .map_err(|e| e.to_string())
                .and_then(|m| self.unique(m, &path).map_err(|e| e.to_string()));
                match single {
                    Ok(single) => {
                        let hash = single.info_hash;
                        self.publish_hashed(&single, &path, stamp, Some(&tags));
                        for file in made.track.files.iter_mut().flatten() {
                            if file.path == path {
                                file.single = Some(hash);
                            }
                        }
                    }
                    Err(e) => tracing::warn!(%e, track = %path, "skipping track"),
                }
            }
            if made.hashed_bytes > 0 {
                self.index.record_album(made.entry);
            }
            self.albums.insert(folder.clone(), (key, made.track));
        }
        changed
    }

    /// What is published: each album whose files are all published as
    /// hashed (see [`Library::build_albums`]), and every track that is in
    /// no album folder, in path order. A track of an album folder whose
    /// album is out of date is not published until it is hashed again.
    /// Without [`Library::with_albums`]: every published track.
    pub fn catalog(&self) -> Catalog {
        if !self.publish_albums {
            return Catalog::new(self.published.values().cloned().collect());
        }
        let folders = album::folders(self.published.values());
        let mut tracks: Vec<Track> = self
            .published
            .iter()
            // A folder that was an album until this scan stays one until
            // build_albums says otherwise: a track left alone by a change
            // is not published as a single meanwhile.
            .filter(|(path, _)| {
                path.rsplit_once('/').is_none_or(|(folder, _)| {
                    !folders.contains_key(folder) && !self.albums.contains_key(folder)
                })
            })
            .map(|(_, track)| track.clone())
            .collect();
        for (folder, tracks_now) in &folders {
            if let Some((key, track)) = self.albums.get(folder)
                && *key == album::key(tracks_now)
            {
                tracks.push(track.clone());
            }
        }
        Catalog::new(tracks)
    }

    /// How many tracks are published.
    pub fn len(&self) -> usize {
        self.published.len()
    }

    /// Whether no track is published.
    pub fn is_empty(&self) -> bool {
        self.published.is_empty()
    }

    /// Publishes a file the index knows, from its stored piece hashes.
    fn reuse(&mut self, entry: &Entry, stamp: Stamp) -> Result<(), String> {
        let pieces = entry
            .piece_hashes()
            .ok_or("piece hashes do not fit the size")?;
        let options = publish::options_for(&self.base, &self.mirrors, &entry.path);
        let metainfo = publish::torrent_from_pieces(
            &entry.name,
            entry.size,
            entry.piece_length,
            &pieces,
            &options,
        )
        .map_err(|e| e.to_string())?;
        let metainfo = self
            .unique(metainfo, &entry.path)
            .map_err(|e| e.to_string())?;
        self.insert(&metainfo, &entry.path, stamp, entry.tags.as_ref());
        Ok(())
    }

    /// `metainfo`, renamed if another published file has its info hash
    /// (same name, same bytes): `intro (b).mp3` for `b/intro.mp3`, then
    /// `intro (b) 2.mp3`… until the hash is free.
    fn unique(&self, metainfo: Metainfo, path: &str) -> Result<Metainfo, PublishError> {
        let taken = |hash: &InfoHash| self.owners.get(hash).is_some_and(|p| p != path);
        let Some(first) = self.owners.get(&metainfo.info_hash).filter(|p| *p != path) else {
            return Ok(metainfo);
        };
        let options = publish::options_for(&self.base, &self.mirrors, path);
        let length = metainfo.info.total_length();
        for n in 1..=MAX_VARIANTS {
            let name = variant(path, n);
            let renamed = publish::torrent_from_pieces(
                &name,
                length,
                metainfo.info.piece_length,
                &metainfo.info.pieces,
                &options,
            )
            .map_err(|source| PublishError::Torrent {
                path: self.root.join(path),
                source,
            })?;
            if !taken(&renamed.info_hash) {
                tracing::warn!(
                    track = %path,
                    same_as = %first,
                    name = %name,
                    info_hash = %renamed.info_hash,
                    "the same name and bytes as another track: published under a name of its own"
                );
                return Ok(renamed);
            }
        }
        Err(PublishError::NoUniqueName(self.root.join(path)))
    }

    fn insert(&mut self, metainfo: &Metainfo, path: &str, stamp: Stamp, tags: Option<&StoredTags>) {
        let track = publish::track_of(&self.root, path, &self.base, metainfo, Some(stamp), tags);
        self.owners.insert(track.info_hash, path.to_owned());
        self.published.insert(path.to_owned(), track);
    }

    fn withdraw(&mut self, path: &str) {
        if let Some(track) = self.published.remove(path) {
            self.owners.remove(&track.info_hash);
        }
    }
}

/// The `n`th unique name of the file at `path`: its folder (`a - b` for
/// `a/b/`) in brackets before the extension, and ` n` after it from the
/// second on; a file at the top has no folder to add: `intro (2).mp3`.
fn variant(path: &str, n: u32) -> String {
    let (folder, file) = path.rsplit_once('/').unwrap_or(("", path));
    let (stem, extension) = match file.rsplit_once('.') {
        Some((stem, extension)) if !stem.is_empty() => (stem, format!(".{extension}")),
        _ => (file, String::new()),
    };
    let folder = folder.replace('/', " - ");
    match (folder.is_empty(), n) {
        (true, n) => format!("{stem} ({}){extension}", n + 1),
        (false, 1) => format!("{stem} ({folder}){extension}"),
        (false, n) => format!("{stem} ({folder}) {n}{extension}"),
    }
}

/// Where the index of `library` is kept when `--index` does not say: in
/// the library as `.fanswarm-index` if it is writable (a dotfile: never
/// published), else under `cache_dir/indexes/`, named after the library's
/// path.
pub fn default_index_path(library: &Path, cache_dir: &Path) -> PathBuf {
    let probe = library.join(".fanswarm-index.probe");
    if std::fs::write(&probe, b"").is_ok() {
        let _ = std::fs::remove_file(&probe);
        return library.join(".fanswarm-index");
    }
    let canonical = std::fs::canonicalize(library).unwrap_or_else(|_| library.to_path_buf());
    let digest = ring::digest::digest(
        &ring::digest::SHA256,
        canonical.as_os_str().as_encoded_bytes(),
    );
    let name = data_encoding::HEXLOWER.encode(digest.as_ref().get(..8).unwrap_or_default());
    cache_dir.join("indexes").join(name)
}

/// Keeps `state`'s catalog in step with the library for as long as this
/// future runs: the first scan and its hashing, then a scan after every
/// burst of changes. `ready` is sent once the first scan's files are all
/// published (settling ones included).
pub async fn keep_published(
    state: AppState,
    library: Library,
    ready: tokio::sync::oneshot::Sender<()>,
) {
    let (events, mut changes) = tokio::sync::mpsc::unbounded_channel::<()>();
    let watcher = watch(&library.root, events);
    // Aborted with the server: the blocking half stops at the next file.
    let _stop = StopOnDrop(Arc::clone(&library.stop));
    let progress = state.metrics.library.clone();
    let mut library = library;
    let mut ready = Some(ready);
    loop {
        let Some((returned, plan)) = blocking(library, |lib| lib.scan(SystemTime::now())).await
        else {
            return;
        };
        library = returned;
        // A folder that cannot be walked (gone, unmounted) keeps what is
        // published and is tried again at the next event or poll.
        let (plan, scanned) = match plan {
            Ok(plan) => (plan, true),
            Err(e) => {
                tracing::warn!(%e, every = ?POLL, "library not scanned; trying again");
                (Plan::default(), false)
            }
        };
        progress.settling_files.set(gauge(plan.settling as u64));
        progress.reused_files.inc_by(plan.reused);
        if plan.changed {
            publish_now(&state, &library);
        }
        let hashing = !plan.queue.is_empty();
        let mut dirty = false;
        if hashing {
            let Some(returned) =
                hash_all(&state, library, plan.queue, &mut changes, &mut dirty).await
            else {
                return;
            };
            library = returned;
        }
        if plan.changed || hashing {
            let albums_progress = progress.clone();
            let Some((returned, _)) = blocking(library, move |lib| {
                let changed = lib.build_albums(&albums_progress);
                lib.compact_index();
                changed
            })
            .await
            else {
                return;
            };
            library = returned;
            publish_now(&state, &library);
        }
        if plan.settling == 0
            && let Some(ready) = ready.take()
        {
            let _ = ready.send(());
        }
        // Wait for the next reason to scan.
        if !dirty {
            let wait = if plan.settling > 0 {
                QUIET
            } else if watcher.is_none() || !scanned {
                POLL
            } else {
                Duration::MAX
            };
            tokio::select! {
                change = changes.recv() => if change.is_none() { tokio::time::sleep(POLL).await },
                () = sleep_for(wait) => {}
            }
        }
        tokio::time::sleep(DEBOUNCE).await;
        while changes.try_recv().is_ok() {}
    }
}

/// Sets its flag when dropped.
struct StopOnDrop(Arc<AtomicBool>);

impl Drop for StopOnDrop {
    fn drop(&mut self) {
        self.0.store(true, Ordering::Relaxed);
    }
}

/// Hashes `queue` in order, republishing now and then, and logging
/// progress every [`PROGRESS_EVERY`]. Sets `dirty` if the folder changed
/// meanwhile. `None` if the blocking task died.
async fn hash_all(
    state: &AppState,
    mut library: Library,
    queue: Vec<Queued>,
    changes: &mut tokio::sync::mpsc::UnboundedReceiver<()>,
    dirty: &mut bool,
) -> Option<Library> {
    let progress = state.metrics.library.clone();
    let files = queue.len() as u64;
    let bytes: u64 = queue.iter().map(|q| q.stamp.size).sum();
    progress.queued_files.set(gauge(files));
    progress.queued_bytes.set(gauge(bytes));
    tracing::info!(files, bytes, "hashing the library");
    let started = Instant::now();
    // Logs on its own clock, so a long file shows progress too; dropped
    // (and so stopped) with this future.
    let mut logger = tokio::task::JoinSet::new();
    logger.spawn(log_progress(progress.clone(), files, bytes));
    let mut last_publish = Instant::now();
    for queued in queue {
        let progress_for_task = progress.clone();
        let (returned, ()) = blocking(library, move |lib| {
            lib.hash(&queued, &progress_for_task);
        })
        .await?;
        library = returned;
        progress.queued_files.dec();
        if last_publish.elapsed() >= PUBLISH_EVERY {
            publish_now(state, &library);
            last_publish = Instant::now();
        }
        while changes.try_recv().is_ok() {
            *dirty = true;
        }
    }
    progress.queued_files.set(0);
    progress.queued_bytes.set(0);
    tracing::info!(
        files,
        bytes,
        seconds = started.elapsed().as_secs_f64(),
        tracks = library.len(),
        "library hashed"
    );
    Some(library)
}

/// Logs how far hashing `files` files of `bytes` bytes has come, every
/// [`PROGRESS_EVERY`], until aborted.
async fn log_progress(progress: LibraryProgress, files: u64, bytes: u64) {
    let mut tick = tokio::time::interval(PROGRESS_EVERY);
    tick.tick().await;
    loop {
        tick.tick().await;
        let left = progress.status();
        tracing::info!(
            files_done = files.saturating_sub(left.queued_files),
            files,
            bytes_done = bytes.saturating_sub(left.queued_bytes),
            bytes,
            "hashing the library"
        );
    }
}

/// Publishes the library's catalog in `state`.
fn publish_now(state: &AppState, library: &Library) {
    state.publish(library.catalog());
}

/// Runs `work` on a blocking thread with the library moved in and back.
/// `None` if the thread panicked (logged).
async fn blocking<T: Send + 'static>(
    library: Library,
    work: impl FnOnce(&mut Library) -> T + Send + 'static,
) -> Option<(Library, T)> {
    let task = tokio::task::spawn_blocking(move || {
        let mut library = library;
        let value = work(&mut library);
        (library, value)
    });
    match task.await {
        Ok(done) => Some(done),
        Err(e) => {
            tracing::error!(error = %e, "library task failed: the library is no longer kept in step");
            None
        }
    }
}

/// Watches `root` recursively; every event that may change what is
/// published sends a unit. `None` (logged) if the watch cannot be set up:
/// the caller polls instead.
fn watch(
    root: &Path,
    events: tokio::sync::mpsc::UnboundedSender<()>,
) -> Option<notify::RecommendedWatcher> {
    use notify::event::{AccessKind, AccessMode, EventKind};
    use notify::{RecursiveMode, Watcher};
    let handler = move |event: notify::Result<notify::Event>| {
        let relevant = match &event {
            // Overflow and other errors: rescan to be sure.
            Err(_) => true,
            // Reads (ours, the web seed's) change nothing; a close after
            // writing is the moment a copy ends.
            Ok(e) if matches!(e.kind, EventKind::Access(_)) => {
                matches!(
                    e.kind,
                    EventKind::Access(AccessKind::Close(AccessMode::Write))
                )
            }
            // The index and other dotfiles are never published.
            Ok(e) => e.paths.is_empty() || e.paths.iter().any(|p| !hidden(p)),
        };
        if relevant {
            let _ = events.send(());
        }
    };
    let watched = notify::recommended_watcher(handler)
        .and_then(|mut w| w.watch(root, RecursiveMode::Recursive).map(|()| w));
    match watched {
        Ok(watcher) => Some(watcher),
        Err(e) => {
            tracing::warn!(
                library = %root.display(),
                error = %e,
                every = ?POLL,
                "library not watched (e.g. the inotify watch limit, fs.inotify.max_user_watches): scanning it periodically instead"
            );
            None
        }
    }
}

/// Whether the last component of `path` starts with a dot.
fn hidden(path: &Path) -> bool {
    path.file_name()
        .is_some_and(|n| n.to_string_lossy().starts_with('.'))
}

async fn sleep_for(wait: Duration) {
    if wait == Duration::MAX {
        std::future::pending::<()>().await;
    } else {
        tokio::time::sleep(wait).await;
    }
}

fn gauge(n: u64) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

/// Publishes every audio file under `library` as served from `base`:
/// announce = our tracker, url-list = our web seed, every file hashed now
/// (no index, no waiting for files to settle). Files that fail are logged
/// and skipped so one bad file does not keep the server down. `serve`
/// keeps its library live instead ([`crate::library`]).
pub async fn publish_library(library: PathBuf, base: String) -> Result<Catalog, PublishError> {
    publish_mirrored(library, base, Vec::new()).await
}

/// [`publish_library`], each torrent's url-list also naming the file under
/// each of `mirrors` (base URLs ending in `/` that serve the library's
/// files at the same relative paths: a CDN, an object store), after our
/// own web seed. Players spread their fetches over them all.
pub async fn publish_mirrored(
    library: PathBuf,
    base: String,
    mirrors: Vec<String>,
) -> Result<Catalog, PublishError> {
    publish_with(library, base, mirrors, false).await
}

/// [`publish_library`] with each folder of two or more tracks published
/// as one album (`--albums`, see `album.rs`).
pub async fn publish_albums(library: PathBuf, base: String) -> Result<Catalog, PublishError> {
    publish_with(library, base, Vec::new(), true).await
}

/// [`publish_mirrored`], with albums when `albums` is set.
pub async fn publish_with(
    library: PathBuf,
    base: String,
    mirrors: Vec<String>,
    albums: bool,
) -> Result<Catalog, PublishError> {
    tokio::task::spawn_blocking(move || {
        let mut library = Library::new(library, base, Index::in_memory(), Duration::ZERO)
            .with_mirrors(mirrors)
            .with_albums(albums);
        let plan = library.scan(SystemTime::now())?;
        for queued in plan.queue {
            library.hash(&queued, &LibraryProgress::default());
        }
        library.build_albums(&LibraryProgress::default());
        Ok(library.catalog())
    })
    .await
    .map_err(|e| PublishError::Task(e.to_string()))?
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn mirrors_follow_our_web_seed_in_every_torrent() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join("An Album")).unwrap();
        std::fs::write(dir.path().join("An Album/01 a#b.wav"), [1u8; 5000]).unwrap();
        let mirrors = vec![
            "https://cdn.example/music/".to_owned(),
            "http://bucket.example/".to_owned(),
        ];
        let catalog = publish_mirrored(dir.path().to_path_buf(), "http://h:1".into(), mirrors)
            .await
            .unwrap();
        let track = catalog.tracks().first().expect("published");
        let meta = Metainfo::from_bytes(&track.torrent).unwrap();
        assert_eq!(
            meta.url_list,
            vec![
                "http://h:1/media/An%20Album/01%20a%23b.wav",
                "https://cdn.example/music/An%20Album/01%20a%23b.wav",
                "http://bucket.example/An%20Album/01%20a%23b.wav",
            ]
        );
        let plain = publish_library(dir.path().to_path_buf(), "http://h:1".into())
            .await
            .unwrap();
        assert_eq!(
            plain.tracks()[0].info_hash,
            track.info_hash,
            "mirrors are outside the info dictionary: the same swarm"
        );
    }

    #[tokio::test]
    async fn a_file_with_broken_tags_publishes_under_its_name() {
        let dir = tempfile::tempdir().unwrap();
        // An ID3v2 header that claims more bytes than the file has, then junk.
        let mut bytes = b"ID3\x04\x00\x00\x7f\x7f\x7f\x7f".to_vec();
        bytes.extend((0..20_000u32).map(|i| (i % 251) as u8));
        std::fs::write(dir.path().join("broken.mp3"), &bytes).unwrap();
        let catalog = publish_library(dir.path().to_path_buf(), "http://h:1".into())
            .await
            .unwrap();
        let track = catalog.tracks().first().expect("published");
        assert_eq!(track.name, "broken.mp3");
        assert_eq!(track.tags.title, None);
        assert_eq!(track.tags.cover_url, None);
    }

    #[test]
    fn a_file_that_cannot_be_published_is_tried_again_only_once_changed() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("empty.mp3"), b"").unwrap();
        std::fs::write(dir.path().join("good.mp3"), vec![5u8; 40_000]).unwrap();
        let mut library = Library::new(
            dir.path().to_path_buf(),
            "http://h:1".into(),
            Index::in_memory(),
            Duration::ZERO,
        );
        let progress = LibraryProgress::default();
        let plan = library.scan(SystemTime::now()).unwrap();
        assert_eq!(plan.queue.len(), 2);
        for queued in &plan.queue {
            library.hash(queued, &progress);
        }
        assert_eq!(library.len(), 1, "an empty file makes no torrent");
        let plan = library.scan(SystemTime::now()).unwrap();
        assert!(plan.queue.is_empty(), "{:?}", plan.queue);
        std::fs::write(dir.path().join("empty.mp3"), vec![6u8; 30_000]).unwrap();
        let plan = library.scan(SystemTime::now()).unwrap();
        assert_eq!(plan.queue.len(), 1, "changed: tried again");
        library.hash(&plan.queue[0], &progress);
        assert_eq!(library.len(), 2);
        assert_eq!(progress.status().hashed_files, 3);
    }

    #[test]
    fn unique_names_carry_the_folder() {
        assert_eq!(variant("b/intro.mp3", 1), "intro (b).mp3");
        assert_eq!(variant("a/b/intro.mp3", 1), "intro (a - b).mp3");
        assert_eq!(variant("a/b/intro.mp3", 2), "intro (a - b) 2.mp3");
        assert_eq!(variant("intro.mp3", 1), "intro (2).mp3");
        assert_eq!(variant("x/.mp3", 1), ".mp3 (x)");
    }
}
