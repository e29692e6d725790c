//! The HTTP routes other than the tracker: torrents, track list, metrics,
//! and the byte counter on the web seed.

use std::pin::Pin;
use std::task::{Context, Poll};

use axum::Json;
use axum::body::{Body, Bytes, HttpBody};
use axum::extract::{Path, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use http_body::{Frame, SizeHint};
use prometheus_client::metrics::counter::Counter;
use swarm::InfoHash;

use crate::catalog::Track;
use crate::metrics::CONTENT_TYPE;
use crate::state::AppState;

/// `GET /t/<hex>.torrent`.
pub async fn torrent(State(state): State<AppState>, Path(file): Path<String>) -> Response {
    let Some(hex) = file.strip_suffix(".torrent") else {
        return StatusCode::NOT_FOUND.into_response();
    };
    let Ok(info_hash) = InfoHash::from_hex(hex) else {
        return (StatusCode::BAD_REQUEST, "not an info hash").into_response();
    };
    match state.catalog.get(&info_hash) {
        Some(track) => (
            [(header::CONTENT_TYPE, "application/x-bittorrent")],
            track.torrent.clone(),
        )
            .into_response(),
        None => StatusCode::NOT_FOUND.into_response(),
    }
}

/// `GET /api/tracks`: every published track with its links.
pub async fn tracks(State(state): State<AppState>) -> Json<Vec<Track>> {
    Json(state.catalog.tracks().to_vec())
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

/// Wraps a web-seed response so its body bytes are counted as they are sent.
pub fn count_body<B>(response: axum::http::Response<B>, counter: Counter) -> Response
where
    B: HttpBody<Data = Bytes> + Send + 'static,
    B::Error: Into<axum::BoxError>,
{
    response.map(|inner| {
        Body::new(CountingBody {
            inner: Body::new(inner),
            counter,
        })
    })
}

/// A body that adds every data frame's length to a counter. It forwards the
/// size hint, so `Content-Length` responses stay un-chunked.
struct CountingBody {
    inner: Body,
    counter: Counter,
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
            this.counter.inc_by(data.len() as u64);
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
