//! Publishing: finding audio files, hashing them as they stream from disk,
//! and building their torrents with our tracker and web seed in them.
//!
//! What a library publishes, and so all the web seed serves
//! ([`find_audio_files`]): regular files with an audio extension, reached
//! through real directories, none of whose names starts with a dot.
//! Symbolic links are never followed, to files or to directories: one
//! pointing out of the library would publish (and serve) whatever it names,
//! a directory link can loop, and one pointing at a track inside the
//! library would only make a second swarm for the same bytes (the track is
//! published under its own name already).
//!
//! Each file's tags and duration are read here too ([`crate::tags`]); a
//! file whose tags cannot be read is published under its file name, and
//! the log says why.
//!
//! Everything here is blocking file I/O; async callers run it in
//! `spawn_blocking` (see [`crate::library::publish_library`]).

use std::fs::File;
use std::io::{self, Read};
use std::path::{Path, PathBuf};

use axum::body::Bytes;
use swarm::metainfo::{Metainfo, MetainfoError, TorrentBuilder};

use crate::catalog::{Links, Track};
use crate::index::{Stamp, StoredTags};
use crate::tags::TrackTags;

/// File extensions published as tracks (compared case-insensitively).
pub const AUDIO_EXTENSIONS: &[&str] = &["mp3", "ogg", "opus", "flac", "m4a", "wav"];

/// The `Content-Type` of a published file, from its extension: what the
/// web seed sends and what `<audio>` is told. mime_guess (tower-http's
/// `ServeFile`) says `audio/m4a` for `.m4a`, which browsers do not know;
/// the registered type is `audio/mp4`. An `.opus` file is Ogg Opus.
pub fn audio_mime(path: &str) -> Option<&'static str> {
    let (_, extension) = path.rsplit_once('.')?;
    Some(match extension.to_ascii_lowercase().as_str() {
        "mp3" => "audio/mpeg",
        "m4a" => "audio/mp4",
        "ogg" => "audio/ogg",
        "opus" => "audio/ogg; codecs=opus",
        "flac" => "audio/flac",
        "wav" => "audio/wav",
        _ => return None,
    })
}

/// Why a file or folder could not be published.
#[derive(Debug, thiserror::Error)]
pub enum PublishError {
    /// Reading a file or walking a directory failed.
    #[error("{path}: {source}")]
    Io {
        /// The file or directory.
        path: PathBuf,
        /// The OS error.
        source: io::Error,
    },
    /// The torrent could not be built (e.g. an empty file).
    #[error("{path}: {source}")]
    Torrent {
        /// The file.
        path: PathBuf,
        /// What the metainfo builder refused.
        source: MetainfoError,
    },
    /// A file name that is not UTF-8 cannot be named in a torrent or a URL.
    #[error("{0}: file name is not UTF-8")]
    NotUtf8(PathBuf),
    /// Every unique name tried for a file whose name and bytes another
    /// track has was taken too.
    #[error("{0}: no unique torrent name left (thousands of identical files?)")]
    NoUniqueName(PathBuf),
    /// The blocking publishing task panicked or was cancelled.
    #[error("publishing task failed: {0}")]
    Task(String),
}

/// What goes into every torrent we make.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TorrentOptions {
    /// Tracker URLs, one tier each, in order.
    pub trackers: Vec<String>,
    /// BEP 19 web seed URLs pointing at the file itself.
    pub web_seeds: Vec<String>,
}

impl TorrentOptions {
    /// `builder` with our `created by`, these trackers and web seeds: what
    /// every torrent we publish (a track's or an album's) carries.
    pub fn apply(&self, builder: TorrentBuilder) -> TorrentBuilder {
        let mut builder = builder.created_by(concat!("fanswarm ", env!("CARGO_PKG_VERSION")));
        for tracker in &self.trackers {
            builder = builder.tracker(tracker.clone());
        }
        for seed in &self.web_seeds {
            builder = builder.web_seed(seed.clone());
        }
        builder
    }
}

/// Every audio file under `dir` (recursively), sorted: regular files only,
/// hidden entries (a name starting with `.`) skipped, symbolic links
/// skipped (and logged) rather than followed, so nothing outside `dir` is
/// published and the walk cannot loop. `dir` itself may be a link.
pub fn find_audio_files(dir: &Path) -> Result<Vec<PathBuf>, PublishError> {
    let mut found = Vec::new();
    let mut pending = vec![dir.to_path_buf()];
    while let Some(current) = pending.pop() {
        let entries = std::fs::read_dir(&current).map_err(|source| PublishError::Io {
            path: current.clone(),
            source,
        })?;
        for entry in entries {
            let entry = entry.map_err(|source| PublishError::Io {
                path: current.clone(),
                source,
            })?;
            let path = entry.path();
            if entry.file_name().to_string_lossy().starts_with('.') {
                continue;
            }
            // The entry's own type: a symbolic link is not resolved here.
            let Ok(kind) = entry.file_type() else {
                continue;
            };
            if kind.is_dir() {
                pending.push(path);
            } else if kind.is_symlink() {
                if is_audio(&path) || path.is_dir() {
                    tracing::warn!(
                        link = %path.display(),
                        "not published: a symbolic link (only regular files inside the \
                         library are; copy or move the file in instead)"
                    );
                }
            } else if kind.is_file() && is_audio(&path) {
                found.push(path);
            }
        }
    }
    found.sort();
    Ok(found)
}

/// Whether the path has one of [`AUDIO_EXTENSIONS`].
pub fn is_audio(path: &Path) -> bool {
    path.extension()
        .and_then(|e| e.to_str())
        .is_some_and(|e| AUDIO_EXTENSIONS.iter().any(|a| a.eq_ignore_ascii_case(e)))
}

/// Hashes `path` in 256 KiB reads and builds a single-file torrent named
/// after it; `progress` is told the bytes hashed so far after each read.
pub fn make_torrent(
    path: &Path,
    options: &TorrentOptions,
    mut progress: impl FnMut(u64),
) -> Result<Metainfo, PublishError> {
    let io_error = |source| PublishError::Io {
        path: path.to_path_buf(),
        source,
    };
    let torrent_error = |source| PublishError::Torrent {
        path: path.to_path_buf(),
        source,
    };
    let name = path
        .file_name()
        .and_then(|n| n.to_str())
        .ok_or_else(|| PublishError::NotUtf8(path.to_path_buf()))?;
    let mut file = File::open(path).map_err(io_error)?;
    let length = file.metadata().map_err(io_error)?.len();
    let builder = builder(name, length, options);
    let mut hasher = builder.hasher().map_err(torrent_error)?;
    let mut buffer = vec![0u8; 256 * 1024];
    loop {
        let n = match file.read(&mut buffer) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(io_error(e)),
        };
        hasher.update(buffer.get(..n).unwrap_or_default());
        progress(hasher.bytes_hashed());
    }
    if hasher.bytes_hashed() != length {
        // The file changed while we read it; its torrent would not verify.
        return Err(io_error(io::Error::other(
            "file changed size while hashing",
        )));
    }
    builder.build(&hasher.finish()).map_err(torrent_error)
}

/// The `/`-separated path of `path` under `library`.
pub fn relative_path(library: &Path, path: &Path) -> Result<String, PublishError> {
    Ok(path
        .strip_prefix(library)
        .unwrap_or(path)
        .components()
        .map(|c| c.as_os_str().to_str())
        .collect::<Option<Vec<_>>>()
        .ok_or_else(|| PublishError::NotUtf8(path.to_path_buf()))?
        .join("/"))
}

/// What goes into the torrent of the file at `relative` for a server at
/// `base`: our tracker, our web seed URL of that file, then the file under
/// each of `mirrors` (base URLs ending in `/`: a CDN, an object store).
pub fn options_for(base: &str, mirrors: &[String], relative: &str) -> TorrentOptions {
    TorrentOptions {
        trackers: vec![Links::tracker_url(base)],
        web_seeds: std::iter::once(Links::media_url(base, relative))
            .chain(
                mirrors
                    .iter()
                    .map(|m| format!("{m}{}", crate::catalog::encode_path(relative))),
            )
            .collect(),
    }
}

/// The [`Track`] of the file at `relative` under `library` whose torrent
/// is `metainfo`: its links, and its tags: `stored` ones (from the index,
/// no cover picture in memory), else read from the file.
pub fn track_of(
    library: &Path,
    relative: &str,
    base: &str,
    metainfo: &Metainfo,
    stamp: Option<Stamp>,
    stored: Option<&StoredTags>,
) -> Track {
    let links = Links::new(base, &metainfo.info_hash, relative);
    let tags = match stored {
        Some(stored) => stored.to_tags(&links.cover_url),
        None => {
            let mut tags = crate::tags::read(&library.join(relative)).unwrap_or_else(|e| {
                tracing::warn!(
                    track = %relative,
                    error = %e,
                    "tags not read: published under its file name, with no duration or cover"
                );
                TrackTags::default()
            });
            if tags.cover.is_some() {
                tags.cover_url = Some(links.cover_url.clone());
            }
            tags
        }
    };
    let magnet = metainfo.magnet().to_string();
    tracing::info!(
        track = %relative,
        info_hash = %metainfo.info_hash,
        title = tags.title.as_deref().unwrap_or("-"),
        artist = tags.artist.as_deref().unwrap_or("-"),
        duration = tags.duration.unwrap_or(0.0),
        cover = tags.cover.as_ref().map_or("none", |c| c.mime),
        %magnet,
        embed = %links.embed_html,
        "published"
    );
    Track {
        name: metainfo.info.name.clone(),
        info_hash: metainfo.info_hash,
        length: metainfo.info.files.iter().map(|f| f.length).sum(),
        magnet,
        torrent_url: links.torrent_url,
        media_url: links.media_url,
        embed_url: links.embed_url,
        embed_html: links.embed_html,
        embed_script_html: links.embed_script_html,
        torrent: Bytes::from(metainfo.to_bytes()),
        tags,
        path: relative.to_owned(),
        stamp,
        files: None,
    }
}

/// The torrent of a file already hashed: `pieces` under `name`, with
/// `options`' tracker and web seed. Its info hash is the one the hashing
/// gave: the info dictionary holds only name, length, piece length and
/// pieces.
pub fn torrent_from_pieces(
    name: &str,
    length: u64,
    piece_length: u32,
    pieces: &[[u8; 20]],
    options: &TorrentOptions,
) -> Result<Metainfo, MetainfoError> {
    builder(name, length, options)
        .piece_length(piece_length)
        .build(pieces)
}

fn builder(name: &str, length: u64, options: &TorrentOptions) -> TorrentBuilder {
    options.apply(TorrentBuilder::single_file(name, length))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_audio_files_recursively_and_skips_the_rest() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        std::fs::create_dir_all(root.join("album/disc 1")).unwrap();
        std::fs::create_dir_all(root.join(".hidden")).unwrap();
        for f in [
            "a.MP3",
            "album/b.flac",
            "album/disc 1/c.opus",
            "notes.txt",
            ".hidden/d.mp3",
        ] {
            std::fs::write(root.join(f), b"x").unwrap();
        }
        let found: Vec<_> = find_audio_files(root)
            .unwrap()
            .into_iter()
            .map(|p| p.strip_prefix(root).unwrap().to_string_lossy().into_owned())
            .collect();
        assert_eq!(found, ["a.MP3", "album/b.flac", "album/disc 1/c.opus"]);
    }

    #[test]
    fn torrent_of_a_file_verifies_against_its_bytes() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("song.wav");
        let data: Vec<u8> = (0..100_000u32).map(|i| (i * 7 % 251) as u8).collect();
        std::fs::write(&path, &data).unwrap();
        let options = TorrentOptions {
            trackers: vec!["ws://127.0.0.1:1/announce".into()],
            web_seeds: vec!["http://127.0.0.1:1/media/song.wav".into()],
        };
        let mut last = 0;
        let m = make_torrent(&path, &options, |n| last = n).unwrap();
        assert_eq!(last, data.len() as u64);
        assert_eq!(m.info.name, "song.wav");
        assert_eq!(m.url_list, options.web_seeds);
        assert_eq!(m.announce.as_deref(), Some("ws://127.0.0.1:1/announce"));
        let expected = swarm::metainfo::hash_pieces(&data, m.info.piece_length).unwrap();
        assert_eq!(m.info.pieces, expected);
    }

    #[test]
    fn audio_types_are_the_ones_browsers_know() {
        assert_eq!(audio_mime("a/b.M4A"), Some("audio/mp4"));
        assert_eq!(audio_mime("x.mp3"), Some("audio/mpeg"));
        assert_eq!(audio_mime("x.opus"), Some("audio/ogg; codecs=opus"));
        assert_eq!(audio_mime("x.ogg"), Some("audio/ogg"));
        assert_eq!(audio_mime("x.flac"), Some("audio/flac"));
        assert_eq!(audio_mime("x.wav"), Some("audio/wav"));
        assert_eq!(audio_mime("x.txt"), None);
        assert_eq!(audio_mime("noext"), None);
        for extension in AUDIO_EXTENSIONS {
            assert!(
                audio_mime(&format!("t.{extension}")).is_some(),
                "{extension}"
            );
        }
    }

    #[test]
    fn missing_file_is_a_clear_error() {
        let err = make_torrent(
            Path::new("/nonexistent/x.mp3"),
            &TorrentOptions::default(),
            |_| {},
        )
        .unwrap_err();
        assert!(err.to_string().contains("/nonexistent/x.mp3"), "{err}");
    }
}
