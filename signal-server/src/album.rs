//! Albums: a folder of the library holding two or more audio files is
//! published as one multi-file torrent (BEP 3 layout, pieces spanning file
//! boundaries), so its fans are one swarm.
//!
//! - Files are in track order: the track-number tag, then the file name
//!   (files without a number after those with one).
//! - The torrent is named from the album tag of its first file where there
//!   is one (and it is a safe name), else the folder's name.
//! - Its web seed is BEP 19's: `<base>/media/<parent folder>/`, to which a
//!   client adds the torrent's name and the file's name. `/media/` maps
//!   those (virtual when the album tag differs from the folder name) to
//!   the real files ([`crate::catalog::AlbumFile::url_path`] → `path`).
//! - Audio files directly in the library root, and alone in their folder,
//!   stay single-file torrents.
//!
//! The album is hashed from the files as they are (their own single-file
//! hashes cannot be reused: pieces span files), once every file of the
//! folder is published, and again when one of them changes. Its piece
//! hashes go into the library index (`index.rs`, keyed by its files'
//! paths and stamps in torrent order), so a restart rebuilds it without
//! reading a byte. Blocking I/O: run it off the async threads.

use std::collections::BTreeMap;
use std::fs::File;
use std::io::{self, Read};

use swarm::metainfo::{PieceHasher, TorrentBuilder, piece_length_for};

use crate::catalog::{AlbumFile, Links, Track, encode_path};
use crate::index::{AlbumEntry, AlbumEntryFile, Index, Stamp};
use crate::publish::{PublishError, TorrentOptions};
use crate::tags::TrackTags;

/// The folders that are albums: every folder below the root holding two
/// or more of `tracks`, with those tracks.
pub fn folders<'a>(
    tracks: impl IntoIterator<Item = &'a Track>,
) -> BTreeMap<String, Vec<&'a Track>> {
    let mut by_folder: BTreeMap<String, Vec<&Track>> = BTreeMap::new();
    for track in tracks {
        if let Some((folder, _)) = track.path.rsplit_once('/') {
            by_folder.entry(folder.to_owned()).or_default().push(track);
        }
    }
    by_folder.retain(|_, tracks| tracks.len() >= 2);
    by_folder
}

/// What identifies an album's bytes: its files' paths and stamps.
pub type Key = Vec<(String, Option<Stamp>)>;

/// The [`Key`] of an album of `tracks`.
pub fn key(tracks: &[&Track]) -> Key {
    let mut key: Vec<_> = tracks.iter().map(|t| (t.path.clone(), t.stamp)).collect();
    key.sort_by(|a, b| a.0.cmp(&b.0));
    key
}

/// An album made by [`make`].
#[derive(Debug)]
pub struct Made {
    /// Its catalog entry.
    pub track: Track,
    /// What the index keeps of it.
    pub entry: AlbumEntry,
    /// Bytes read to hash it: 0 when `index` had it.
    pub hashed_bytes: u64,
    /// The single-file piece hashes of each file `single` asked for (by
    /// path), from the same read.
    pub singles: Vec<(String, Vec<[u8; 20]>)>,
}

/// Makes the catalog entry of the album of `folder` (under `root`) whose
/// tracks are `tracks`, for a server at `base` with web-seed `mirrors`:
/// from `index` when it holds this album of these very files (nothing
/// read), else by hashing the files. The files `single` says yes to are
/// hashed as single-file torrents too in the same read (so a new file of
/// an album is read once), which makes the album hashed. A file that
/// changed since it was published fails it: the next scan sees the change.
pub fn make(
    root: &std::path::Path,
    base: &str,
    mirrors: &[String],
    folder: &str,
    tracks: &[&Track],
    index: &Index,
    single: &dyn Fn(&str) -> bool,
) -> Result<Made, PublishError> {
    let mut ordered: Vec<&Track> = tracks.to_vec();
    ordered.sort_by(|a, b| {
        let number = |t: &Track| t.tags.track_number.unwrap_or(u32::MAX);
        (number(a), file_name(&a.path)).cmp(&(number(b), file_name(&b.path)))
    });
    let (parent, folder_name) = folder.rsplit_once('/').unwrap_or(("", folder));
    let name = ordered
        .first()
        .and_then(|t| t.tags.album.as_deref())
        .map(str::trim)
        .filter(|album| safe_name(album))
        .unwrap_or(folder_name)
        .to_owned();
    let media_base = Links::media_url(base, parent);
    let seed = if media_base.ends_with('/') {
        media_base
    } else {
        format!("{media_base}/")
    };
    let mut options = TorrentOptions {
        trackers: vec![Links::tracker_url(base)],
        web_seeds: vec![seed.clone()],
    };
    // A mirror holds the real folder: usable only when the name is its name.
    if name == folder_name {
        let encoded = encode_path(parent);
        for mirror in mirrors {
            let url = if encoded.is_empty() {
                mirror.clone()
            } else {
                format!("{mirror}{encoded}/")
            };
            options.web_seeds.push(url);
        }
    }
    let builder = builder(&name, &ordered, &options);
    let torrent_error = |source| PublishError::Torrent {
        path: root.join(folder),
        source,
    };
    let stamped: Option<Vec<(&str, Stamp)>> = ordered
        .iter()
        .map(|t| Some((t.path.as_str(), t.stamp?)))
        .collect();
    let any_single = ordered.iter().any(|t| single(&t.path));
    let stored = stamped
        .as_deref()
        .filter(|_| !any_single)
        .and_then(|files| index.lookup_album(folder, files))
        .filter(|entry| entry.name == name)
        .and_then(|entry| Some((entry.piece_length, entry.piece_hashes()?)));
    let (piece_length, pieces, hashed_bytes, singles) = match stored {
        Some((piece_length, pieces)) => (piece_length, pieces, 0, Vec::new()),
        None => {
            let (pieces, singles) = hash(root, &ordered, &builder, single)?;
            let bytes = ordered.iter().map(|t| t.length).sum();
            (builder.chosen_piece_length(), pieces, bytes, singles)
        }
    };
    let metainfo = builder
        .piece_length(piece_length)
        .build(&pieces)
        .map_err(torrent_error)?;
    let entry = AlbumEntry {
        album: folder.to_owned(),
        files: ordered
            .iter()
            .map(|t| {
                let stamp = t.stamp.unwrap_or(Stamp {
                    size: t.length,
                    mtime_ns: 0,
                });
                AlbumEntryFile {
                    path: t.path.clone(),
                    size: stamp.size,
                    mtime_ns: stamp.mtime_ns,
                }
            })
            .collect(),
        name: name.clone(),
        piece_length,
        pieces: data_encoding::HEXLOWER.encode(metainfo.info.pieces.as_flattened()),
    };
    let links = Links::new(base, &metainfo.info_hash, folder);
    let cover_url = links.cover_url.clone();
    let mut offset = 0;
    let files: Vec<AlbumFile> = ordered
        .iter()
        .enumerate()
        .map(|(index, t)| {
            let file = file_name(&t.path).to_owned();
            let entry = AlbumFile {
                index,
                url_path: [parent, &name, &file]
                    .iter()
                    .filter(|s| !s.is_empty())
                    .copied()
                    .collect::<Vec<_>>()
                    .join("/"),
                name: file,
                title: t.tags.title.clone(),
                artist: t.tags.artist.clone(),
                track_number: t.tags.track_number,
                duration: t.tags.duration,
                length: t.length,
                offset,
                path: t.path.clone(),
                stamp: t.stamp,
                single: Some(t.info_hash),
            };
            offset += t.length;
            entry
        })
        .collect();
    let artists: Vec<&str> = ordered
        .iter()
        .filter_map(|t| t.tags.artist.as_deref())
        .collect();
    let artist = artists
        .first()
        .filter(|first| artists.iter().all(|a| a == *first))
        .map(|a| (*a).to_owned());
    let duration = ordered.iter().map(|t| t.tags.duration).sum::<Option<f64>>();
    // The first cover in track order (read again from its file when the
    // track came from the index, which keeps no picture).
    let cover = ordered
        .iter()
        .filter(|t| t.tags.cover_url.is_some())
        .find_map(|t| {
            t.tags.cover.clone().or_else(|| {
                crate::tags::read(&root.join(&t.path))
                    .ok()
                    .and_then(|tags| tags.cover)
            })
        });
    let magnet = metainfo.magnet().to_string();
    tracing::info!(
        album = %folder,
        name = %name,
        files = files.len(),
        info_hash = %metainfo.info_hash,
        %magnet,
        from_index = hashed_bytes == 0,
        "published an album"
    );
    let track = Track {
        name: name.clone(),
        info_hash: metainfo.info_hash,
        length: offset,
        magnet,
        torrent_url: links.torrent_url,
        media_url: seed,
        embed_url: links.embed_url,
        embed_html: links.embed_html,
        embed_script_html: links.embed_script_html,
        torrent: axum::body::Bytes::from(metainfo.to_bytes()),
        tags: TrackTags {
            title: Some(name.clone()),
            artist,
            album: Some(name),
            track_number: None,
            duration,
            cover_url: cover.is_some().then_some(cover_url),
            cover,
        },
        path: String::new(),
        stamp: None,
        files: Some(files),
    };
    Ok(Made {
        track,
        entry,
        hashed_bytes,
        singles,
    })
}

/// The torrent of the album's files in order, but for its pieces.
fn builder(name: &str, ordered: &[&Track], options: &TorrentOptions) -> TorrentBuilder {
    let layout = ordered
        .iter()
        .map(|t| (vec![file_name(&t.path).to_owned()], t.length));
    options.apply(TorrentBuilder::multi_file(name, layout))
}

/// Reads the files in order through one piece hasher (and the files
/// `single` says yes to through one of their own each, with the piece
/// length a single-file torrent of them has).
#[allow(clippy::type_complexity)]
fn hash(
    root: &std::path::Path,
    ordered: &[&Track],
    builder: &TorrentBuilder,
    single: &dyn Fn(&str) -> bool,
) -> Result<(Vec<[u8; 20]>, Vec<(String, Vec<[u8; 20]>)>), PublishError> {
    let mut singles = Vec::new();
    let torrent_error = |source| PublishError::Torrent {
        path: root.join(ordered.first().map_or("", |t| t.path.as_str())),
        source,
    };
    let mut hasher = builder.hasher().map_err(torrent_error)?;
    let mut buffer = vec![0u8; 256 * 1024];
    for track in ordered {
        let path = root.join(&track.path);
        let io_error = |source| PublishError::Io {
            path: path.clone(),
            source,
        };
        let mut file = File::open(&path).map_err(io_error)?;
        let stamp = file.metadata().ok().and_then(|m| Stamp::of(&m));
        if track.stamp.is_some() && stamp != track.stamp {
            return Err(io_error(io::Error::other("changed since it was hashed")));
        }
        let mut alone = if single(&track.path) {
            Some(
                PieceHasher::new(piece_length_for(track.length)).map_err(|source| {
                    PublishError::Torrent {
                        path: path.clone(),
                        source,
                    }
                })?,
            )
        } else {
            None
        };
        let mut left = track.length;
        while left > 0 {
            let want = buffer
                .len()
                .min(usize::try_from(left).unwrap_or(usize::MAX));
            let n = match file.read(buffer.get_mut(..want).unwrap_or_default()) {
                Ok(0) => return Err(io_error(io::Error::other("shorter than when published"))),
                Ok(n) => n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(io_error(e)),
            };
            let read = buffer.get(..n).unwrap_or_default();
            hasher.update(read);
            if let Some(alone) = &mut alone {
                alone.update(read);
            }
            left -= n as u64;
        }
        if let Some(alone) = alone {
            singles.push((track.path.clone(), alone.finish()));
        }
    }
    Ok((hasher.finish(), singles))
}

fn file_name(path: &str) -> &str {
    path.rsplit_once('/').map_or(path, |(_, name)| name)
}

/// Whether an album tag can name the torrent (one safe path component).
fn safe_name(name: &str) -> bool {
    !name.is_empty()
        && name != "."
        && name != ".."
        && !name.starts_with('.')
        && !name.contains(['/', '\\', '\0'])
}
