//! The published tracks and the links that point at them.

use std::collections::HashMap;

use axum::body::Bytes;
use serde::{Serialize, Serializer};
use swarm::InfoHash;

use crate::index::Stamp;
use crate::tags::TrackTags;

/// One published track, as `/api/tracks` lists it.
#[derive(Debug, Clone, Serialize)]
pub struct Track {
    /// The file name: what the torrent names, and what players show when
    /// the file has no title tag.
    pub name: String,
    /// The swarm's name; hex in JSON.
    #[serde(serialize_with = "hex")]
    pub info_hash: InfoHash,
    /// File size in bytes.
    pub length: u64,
    /// `magnet:?xt=urn:btih:…` with our tracker and web seed.
    pub magnet: String,
    /// `<base>/t/<hex>.torrent`.
    pub torrent_url: String,
    /// `<base>/media/<path>`: the web seed URL of the file itself.
    pub media_url: String,
    /// `<base>/embed/<hex>`: the player page for this track.
    pub embed_url: String,
    /// The one line an artist pastes into a page: an `<iframe>`.
    pub embed_html: String,
    /// The alternative: `/embed.js` and a `<fanswarm-player>` element.
    pub embed_script_html: String,
    /// The bencoded `.torrent`, served at `torrent_url`.
    #[serde(skip)]
    pub torrent: Bytes,
    /// Title, artist, album, track number, duration and cover, read from
    /// the file at publish time (each `null` when it does not say).
    #[serde(flatten)]
    pub tags: TrackTags,
    /// The file's path under the library, `/`-separated, not encoded: the
    /// web seed serves this file, and only this, at `media_url`. Empty for
    /// a track the web seed does not serve.
    #[serde(skip)]
    pub path: String,
    /// The file's size and modification time when it was hashed: the web
    /// seed serves it only while they still hold. `None`: not checked.
    #[serde(skip)]
    pub stamp: Option<Stamp>,
    /// An album (a multi-file torrent): its track list, in torrent order;
    /// absent for a single-file track. See `album.rs`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub files: Option<Vec<AlbumFile>>,
}

/// A file the web seed serves: where it is under the library, and the
/// stamp it must still have.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MediaFile<'a> {
    /// `/`-separated path under the library.
    pub path: &'a str,
    /// Size and modification time when hashed; `None`: not checked.
    pub stamp: Option<Stamp>,
}

/// All published tracks, looked up by info hash or by library path.
#[derive(Debug, Clone, Default)]
pub struct Catalog {
    tracks: Vec<Track>,
    by_hash: HashMap<InfoHash, usize>,
    by_path: HashMap<String, usize>,
    /// Album files by their BEP 19 path under `/media/`: (track, file).
    album_files: HashMap<String, (usize, usize)>,
    /// Album files by their single-file info hash: (track, file).
    moved: HashMap<InfoHash, (usize, usize)>,
}

impl Catalog {
    /// A catalog of these tracks; a later duplicate info hash is skipped,
    /// and the log says so (the library makes every name unique first, so
    /// two of its files never share one).
    pub fn new(tracks: Vec<Track>) -> Self {
        let mut catalog = Catalog::default();
        for track in tracks {
            if let Some(&first) = catalog.by_hash.get(&track.info_hash) {
                tracing::warn!(
                    track = %track.path,
                    same_as = %catalog.tracks.get(first).map_or("", |t| t.path.as_str()),
                    info_hash = %track.info_hash,
                    "not published: the same torrent as another track"
                );
            } else {
                let index = catalog.tracks.len();
                catalog.by_hash.insert(track.info_hash, index);
                if !track.path.is_empty() {
                    catalog.by_path.entry(track.path.clone()).or_insert(index);
                }
                for (n, file) in track.files.iter().flatten().enumerate() {
                    catalog
                        .album_files
                        .entry(file.url_path.clone())
                        .or_insert((index, n));
                    if let Some(single) = file.single {
                        catalog.moved.entry(single).or_insert((index, n));
                    }
                }
                catalog.tracks.push(track);
            }
        }
        catalog
    }

    /// Every track, in publishing order.
    pub fn tracks(&self) -> &[Track] {
        &self.tracks
    }

    /// The track with this info hash.
    pub fn get(&self, info_hash: &InfoHash) -> Option<&Track> {
        self.by_hash
            .get(info_hash)
            .and_then(|&i| self.tracks.get(i))
    }

    /// The track whose file is at `path` under the library (decoded,
    /// `/`-separated): what the web seed may serve, and nothing else.
    pub fn by_path(&self, path: &str) -> Option<&Track> {
        self.by_path.get(path).and_then(|&i| self.tracks.get(i))
    }

    /// Where a track published alone before it joined an album is now:
    /// the album's info hash and the file's index in it. `None` for a hash
    /// published as it is.
    pub fn moved(&self, single: &InfoHash) -> Option<(InfoHash, usize)> {
        if self.by_hash.contains_key(single) {
            return None;
        }
        let &(track, file) = self.moved.get(single)?;
        Some((self.tracks.get(track)?.info_hash, file))
    }

    /// The file the web seed serves at `path` under `/media/` (decoded,
    /// `/`-separated): a single-file track's file, or a file of an album
    /// at its BEP 19 path (parent folder, album name, file name).
    pub fn media(&self, path: &str) -> Option<MediaFile<'_>> {
        if let Some(track) = self.by_path(path) {
            return Some(MediaFile {
                path: &track.path,
                stamp: track.stamp,
            });
        }
        let &(track, file) = self.album_files.get(path)?;
        let file = self.tracks.get(track)?.files.as_ref()?.get(file)?;
        Some(MediaFile {
            path: &file.path,
            stamp: file.stamp,
        })
    }
}

/// The links for a track published at `base` (no trailing slash).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Links {
    /// `<base>/t/<hex>.torrent`.
    pub torrent_url: String,
    /// `<base>/media/<encoded relative path>`.
    pub media_url: String,
    /// `<base>/embed/<hex>`.
    pub embed_url: String,
    /// An `<iframe>` of the embed page, with autoplay allowed.
    pub embed_html: String,
    /// `<script type=module src=<base>/embed.js>` and the player element.
    pub embed_script_html: String,
    /// `ws(s)://…/announce`.
    pub tracker_url: String,
    /// `<base>/cover/<hex>`: the cover picture, when the file has one.
    pub cover_url: String,
}

impl Links {
    /// Builds every URL from the public base URL, the hash and the file's
    /// path relative to the library (segments percent-encoded).
    pub fn new(base: &str, info_hash: &InfoHash, relative_path: &str) -> Self {
        let base = base.trim_end_matches('/');
        let hex = info_hash.to_hex();
        let embed_url = format!("{base}/embed/{hex}");
        Links {
            torrent_url: format!("{base}/t/{hex}.torrent"),
            media_url: Self::media_url(base, relative_path),
            embed_html: format!(
                r#"<iframe src="{embed_url}" allow="autoplay" style="border:0;width:100%;height:190px" title="fanswarm player"></iframe>"#
            ),
            embed_script_html: format!(
                r#"<script type="module" src="{base}/embed.js"></script><fanswarm-player src="{base}/t/{hex}.torrent"></fanswarm-player>"#
            ),
            embed_url,
            tracker_url: Self::tracker_url(base),
            cover_url: format!("{base}/cover/{hex}"),
        }
    }

    /// Our tracker: `ws://` for an `http://` base, `wss://` for `https://`.
    pub fn tracker_url(base: &str) -> String {
        let base = base.trim_end_matches('/');
        match base.split_once("://") {
            Some(("https", rest)) => format!("wss://{rest}/announce"),
            Some((_, rest)) => format!("ws://{rest}/announce"),
            None => format!("ws://{base}/announce"),
        }
    }

    /// The web seed URL of a file at `relative_path` in the library.
    pub fn media_url(base: &str, relative_path: &str) -> String {
        let base = base.trim_end_matches('/');
        format!("{base}/media/{}", encode_path(relative_path))
    }
}

/// A `/`-separated relative path with each segment percent-encoded for a URL.
pub fn encode_path(relative_path: &str) -> String {
    let encoded: Vec<String> = relative_path
        .split('/')
        .filter(|s| !s.is_empty())
        .map(|s| percent_encoding::utf8_percent_encode(s, SEGMENT).to_string())
        .collect();
    encoded.join("/")
}

/// Characters escaped in one URL path segment.
const SEGMENT: &percent_encoding::AsciiSet = &percent_encoding::NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'_')
    .remove(b'.')
    .remove(b'~');

fn hex<S: Serializer>(h: &InfoHash, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(&h.to_hex())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn links_encode_segments_and_pick_the_ws_scheme() {
        let h = InfoHash([0x0f; 20]);
        let l = Links::new("https://music.example/", &h, "albums/My Song #1.mp3");
        assert_eq!(
            l.media_url,
            "https://music.example/media/albums/My%20Song%20%231.mp3"
        );
        assert_eq!(l.tracker_url, "wss://music.example/announce");
        assert_eq!(
            l.torrent_url,
            format!("https://music.example/t/{}.torrent", h.to_hex())
        );
        assert!(l.embed_html.contains(&l.embed_url));
        assert!(
            l.embed_script_html
                .contains(r#"src="https://music.example/embed.js""#)
        );
        assert!(
            l.embed_script_html
                .contains(&format!(r#"<fanswarm-player src="{}">"#, l.torrent_url))
        );
        let l = Links::new("http://127.0.0.1:8080", &h, "a.wav");
        assert_eq!(l.tracker_url, "ws://127.0.0.1:8080/announce");
    }

    #[test]
    fn catalog_finds_by_hash_and_skips_duplicates() {
        let track = |n: &str, b: u8| Track {
            name: n.into(),
            info_hash: InfoHash([b; 20]),
            length: 1,
            magnet: String::new(),
            torrent_url: String::new(),
            media_url: String::new(),
            embed_url: String::new(),
            embed_html: String::new(),
            embed_script_html: String::new(),
            torrent: Bytes::from_static(b"d"),
            tags: TrackTags::default(),
            path: format!("{n}.mp3"),
            stamp: None,
            files: None,
        };
        let c = Catalog::new(vec![track("a", 1), track("b", 2), track("c", 1)]);
        assert_eq!(c.tracks().len(), 2);
        assert_eq!(
            c.get(&InfoHash([1; 20])).map(|t| t.name.as_str()),
            Some("a")
        );
        assert!(c.get(&InfoHash([3; 20])).is_none());
        assert_eq!(c.by_path("b.mp3").map(|t| t.name.as_str()), Some("b"));
        assert!(
            c.by_path("c.mp3").is_none(),
            "a skipped duplicate is not served"
        );
    }
}

/// One file of an album, as `/api/tracks` lists it under `files`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct AlbumFile {
    /// Index in the torrent's file list: what a player selects.
    pub index: usize,
    /// The file's name (its path inside the torrent, after the album's name).
    pub name: String,
    /// Title tag, else `null` (players show the name).
    pub title: Option<String>,
    /// Artist tag.
    pub artist: Option<String>,
    /// Track-number tag.
    pub track_number: Option<u32>,
    /// Seconds, from the file's audio properties.
    pub duration: Option<f64>,
    /// Bytes.
    pub length: u64,
    /// Offset of its first byte in the album's byte stream.
    pub offset: u64,
    /// The file under the library, `/`-separated, not encoded.
    #[serde(skip)]
    pub path: String,
    /// Where BEP 19 puts it under `/media/`: parent folder, torrent
    /// name, file name; not encoded.
    #[serde(skip)]
    pub url_path: String,
    /// Size and modification time when hashed.
    #[serde(skip)]
    pub stamp: Option<Stamp>,
    /// The info hash the file has as a single-file torrent (what it was
    /// published under before it was part of an album): its old embed
    /// URL leads to the album's, with this file's index.
    #[serde(skip)]
    pub single: Option<InfoHash>,
}
