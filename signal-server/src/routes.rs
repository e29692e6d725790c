//! The HTTP routes other than the tracker: the web seed, torrents, track
//! list, the live swarm panel, metrics, and the web seed's byte counter.

use std::pin::Pin;
use std::task::{Context, Poll};

use axum::Json;
use axum::body::{Body, Bytes, HttpBody};
use axum::extract::{Path, Request, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use http_body::{Frame, SizeHint};
use serde::Serialize;
use swarm::InfoHash;
use tower::ServiceExt;
use tower_http::services::ServeFile;

use crate::catalog::Track;
use crate::index::Stamp;
use crate::metrics::CONTENT_TYPE;
use crate::offload::Today;
use crate::publish::audio_mime;
use crate::state::AppState;
use crate::tags::Cover;

/// `GET /media/<path>`: the web seed (BEP 19).
///
/// Serves a published track's file and nothing else: the decoded path
/// must be one the catalog holds (a track's path, or an album file's
/// BEP 19 path: parent folder, album name, file name) (so no dotfile, no other file of the
/// library, no `..`, encoded or not, and no symbolic link: the publisher
/// follows none), else 404. A file that has been replaced by a symbolic
/// link since it was published is not followed either, and one written
/// since it was hashed is not served until it is published again. Ranges, 206, 416
/// are tower-http's `ServeFile`; `Content-Type` is ours
/// ([`audio_mime`]: `audio/mp4` for `.m4a`, not mime_guess's `audio/m4a`);
/// every body byte is counted ([`count_body`]).
pub async fn media(
    State(state): State<AppState>,
    Path(path): Path<String>,
    request: Request,
) -> Response {
    let catalog = state.catalog();
    let Some(track) = catalog.media(&path) else {
        return StatusCode::NOT_FOUND.into_response();
    };
    let file = state.paths.media_dir.join(track.path);
    match tokio::fs::symlink_metadata(&file).await {
        // A file written since it was hashed no longer has the bytes its
        // torrent names: not served until its new version is published.
        Ok(meta)
            if meta.file_type().is_file()
                && track
                    .stamp
                    .is_none_or(|stamp| Stamp::of(&meta) == Some(stamp)) => {}
        _ => return StatusCode::NOT_FOUND.into_response(),
    }
    let Ok(mut response) = ServeFile::new(file).oneshot(request).await;
    if let Some(mime) = audio_mime(track.path)
        && response.headers().contains_key(header::CONTENT_TYPE)
    {
        response
            .headers_mut()
            .insert(header::CONTENT_TYPE, HeaderValue::from_static(mime));
    }
    count_body(response, state)
}

/// `GET /cover/<hex>`: the cover picture read from the track's tags, with
/// its type taken from its bytes. Immutable: the info hash names the
/// file's bytes, and so the picture inside them.
pub async fn cover(State(state): State<AppState>, Path(hex): Path<String>) -> Response {
    let Ok(info_hash) = InfoHash::from_hex(&hex) else {
        return (StatusCode::BAD_REQUEST, "not an info hash").into_response();
    };
    let catalog = state.catalog();
    let Some(track) = catalog.get(&info_hash) else {
        return StatusCode::NOT_FOUND.into_response();
    };
    let cover = match (&track.tags.cover, &track.tags.cover_url) {
        (Some(cover), _) => cover.clone(),
        // Published from the index: the picture is read when asked for.
        (None, Some(_)) => match read_cover(&state, track).await {
            Some(cover) => cover,
            None => return StatusCode::NOT_FOUND.into_response(),
        },
        (None, None) => return StatusCode::NOT_FOUND.into_response(),
    };
    (
        [
            (header::CONTENT_TYPE, cover.mime),
            (header::CACHE_CONTROL, COVER_CACHE),
            (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
        ],
        cover.bytes,
    )
        .into_response()
}

/// The cover picture in the file of `track`, if the file is still the one
/// published (a regular file with the stamp it was hashed with).
async fn read_cover(state: &AppState, track: &Track) -> Option<Cover> {
    let file = state.paths.media_dir.join(&track.path);
    let published = track.stamp;
    tokio::task::spawn_blocking(move || {
        let meta = std::fs::symlink_metadata(&file).ok()?;
        let unchanged = meta.file_type().is_file()
            && published.is_none_or(|stamp| Stamp::of(&meta) == Some(stamp));
        if !unchanged {
            return None;
        }
        crate::tags::read(&file).ok()?.cover
    })
    .await
    .ok()
    .flatten()
}

/// `Cache-Control` of a cover picture (see [`cover`]).
pub const COVER_CACHE: &str = "public, max-age=31536000, immutable";

/// `GET /api/tracks/<hex>`: one published track with its links and tags
/// (what a player shows before it plays: title, artist, cover, duration).
pub async fn track(State(state): State<AppState>, Path(hex): Path<String>) -> Response {
    let Ok(info_hash) = InfoHash::from_hex(&hex) else {
        return (StatusCode::BAD_REQUEST, "not an info hash").into_response();
    };
    match state.catalog().get(&info_hash) {
        Some(track) => Json(track.clone()).into_response(),
        None => StatusCode::NOT_FOUND.into_response(),
    }
}

/// `GET /t/<hex>.torrent`.
///
/// Cached for an hour and then used once more while it is revalidated in
/// the background (`stale-while-revalidate`), with an `ETag` so that
/// revalidation is a 304: a fan's second visit starts from the cached
/// torrent instead of waiting a round trip for it. The info dictionary
/// never changes under its hash; only `announce` and `url-list` could (the
/// server moved), and a stale copy of those is used at most once.
pub async fn torrent(
    State(state): State<AppState>,
    Path(file): Path<String>,
    headers: HeaderMap,
) -> Response {
    let Some(hex) = file.strip_suffix(".torrent") else {
        return StatusCode::NOT_FOUND.into_response();
    };
    let Ok(info_hash) = InfoHash::from_hex(hex) else {
        return (StatusCode::BAD_REQUEST, "not an info hash").into_response();
    };
    let catalog = state.catalog();
    let Some(track) = catalog.get(&info_hash) else {
        return StatusCode::NOT_FOUND.into_response();
    };
    let etag = etag_of(&track.torrent);
    let cache = [
        (header::CACHE_CONTROL, TORRENT_CACHE.to_owned()),
        (header::ETAG, etag.clone()),
    ];
    let matches = headers
        .get(header::IF_NONE_MATCH)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.split(',').any(|t| t.trim() == etag || t.trim() == "*"));
    if matches {
        return (StatusCode::NOT_MODIFIED, cache).into_response();
    }
    (
        [(header::CONTENT_TYPE, "application/x-bittorrent".to_owned())],
        cache,
        track.torrent.clone(),
    )
        .into_response()
}

/// `Cache-Control` of a `.torrent` (see [`torrent`]).
pub const TORRENT_CACHE: &str = "public, max-age=3600, stale-while-revalidate=604800";

/// A weak validator of `bytes`, stable while the server runs.
fn etag_of(bytes: &[u8]) -> String {
    use std::hash::{Hash, Hasher};
    let mut hasher = std::collections::hash_map::DefaultHasher::new();
    bytes.hash(&mut hasher);
    format!("W/\"{:016x}\"", hasher.finish())
}

/// `GET /api/ice`: the STUN and TURN servers for one fan, TURN credentials
/// fresh (never cached: they expire).
pub async fn ice(State(state): State<AppState>) -> Response {
    let config = state.player.ice.for_client(std::time::SystemTime::now());
    ([(header::CACHE_CONTROL, "no-store")], Json(config)).into_response()
}

/// `GET /api/tracks`: every published track with its links.
pub async fn tracks(State(state): State<AppState>) -> Json<Vec<Track>> {
    Json(state.catalog().tracks().to_vec())
}

/// `GET /api/library`: how far publishing the library has come (files
/// and bytes waiting to be hashed, files settling after a write) and its
/// totals since the start (hashed, reused from the index).
pub async fn library(State(state): State<AppState>) -> Response {
    (
        [(header::CACHE_CONTROL, "no-store")],
        Json(state.metrics.library.status()),
    )
        .into_response()
}

/// What `GET /api/swarm` answers: the demo page's live panel.
#[derive(Debug, Clone, Serialize)]
pub struct SwarmReport {
    /// Today's (UTC) web-seed bytes and self-reported fan-to-fan bytes.
    pub today: Today,
    /// Every published track's swarm right now.
    pub tracks: Vec<TrackSwarm>,
}

/// One track's swarm in [`SwarmReport`].
#[derive(Debug, Clone, Serialize)]
pub struct TrackSwarm {
    /// The track's info hash, hex.
    pub info_hash: String,
    /// The track's name.
    pub name: String,
    /// Fans announced to the tracker (seeders included).
    pub fans: usize,
    /// Of those, fans with the whole track.
    pub seeders: usize,
}

/// `GET /api/swarm`: fans per track from the tracker, today's bytes.
pub async fn swarm(State(state): State<AppState>) -> Json<SwarmReport> {
    let today = state.offload.today(state.today());
    let hub = state.hub();
    let tracks = state
        .catalog()
        .tracks()
        .iter()
        .map(|t| {
            let (seeders, leechers) = hub.tracker.swarm_peers(&t.info_hash);
            TrackSwarm {
                info_hash: t.info_hash.to_hex(),
                name: t.name.clone(),
                fans: seeders + leechers,
                seeders,
            }
        })
        .collect();
    Json(SwarmReport { today, tracks })
}

/// `GET /metrics`.
pub async fn metrics(State(state): State<AppState>) -> Response {
    state.metrics.observe(&state.hub().tracker);
    (
        [(header::CONTENT_TYPE, CONTENT_TYPE)],
        state.metrics.render(),
    )
        .into_response()
}

/// Wraps a web-seed response so its body bytes are counted as they are
/// sent: in `/metrics` and in today's figures.
pub fn count_body<B>(response: axum::http::Response<B>, state: AppState) -> Response
where
    B: HttpBody<Data = Bytes> + Send + 'static,
    B::Error: Into<axum::BoxError>,
{
    let range = response
        .headers()
        .get(header::CONTENT_RANGE)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    response.map(|inner| {
        let expected = inner.size_hint().exact();
        Body::new(CountingBody {
            inner: Body::new(inner),
            state,
            range,
            expected,
            sent: 0,
        })
    })
}

/// A body that adds every data frame's length to the web-seed counters. It
/// forwards the size hint, so `Content-Length` responses stay un-chunked.
/// When it is dropped (sent in full, or the client went away) it logs, at
/// debug level, what was asked and what was sent: what a benchmark needs
/// to tell whole-file plays from the engine's ranges and cut ones.
struct CountingBody {
    inner: Body,
    state: AppState,
    range: Option<String>,
    expected: Option<u64>,
    sent: u64,
}

impl Drop for CountingBody {
    fn drop(&mut self) {
        tracing::debug!(
            target: "fanswarm::webseed",
            range = self.range.as_deref().unwrap_or("none"),
            expected = self.expected,
            sent = self.sent,
            "web-seed response ended"
        );
    }
}

impl HttpBody for CountingBody {
    type Data = Bytes;
    type Error = axum::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Self::Error>>> {
        let this = self.get_mut();
        let polled = Pin::new(&mut this.inner).poll_frame(cx);
        if let Poll::Ready(Some(Ok(frame))) = &polled
            && let Some(data) = frame.data_ref()
        {
            let bytes = data.len() as u64;
            this.sent += bytes;
            this.state.metrics.webseed_bytes.inc_by(bytes);
            this.state.offload.add_webseed(this.state.today(), bytes);
        }
        polled
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}
