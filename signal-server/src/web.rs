//! The handlers that serve the player's code: `/embed.js` and every file
//! of `web/`, named and cached as [`crate::assets`] says (apart from it so
//! that the state, which holds the assets, and the handlers, which take the
//! state, do not import each other in a circle).

use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};
use tower::ServiceExt;
use tower_http::services::ServeDir;

use crate::assets::{MANIFEST, REVALIDATE};
use crate::state::AppState;

/// `GET /embed.js`, the one-line embed for pages on any origin:
///
/// ```html
/// <script type="module" src="https://SERVER/embed.js"></script>
/// <fanswarm-player src="https://SERVER/t/<hex>.torrent"></fanswarm-player>
/// ```
///
/// It imports the player (`<fanswarm-player>`) by its hashed name, so its own
/// URL stays fixed and short-lived while the player is cached for good. On a
/// foreign origin the element shows the server's `/embed/<hex>` frame, where
/// the stream service worker can run; see ARCHITECTURE.md ("Embedding").
pub async fn embed_js(State(state): State<AppState>) -> Response {
    let body = format!(
        "// fanswarm: defines <fanswarm-player>; see {MANIFEST} and ARCHITECTURE.md.\n\
         import '{}';\n",
        state.assets.entry_url()
    );
    (
        [
            (header::CONTENT_TYPE, "text/javascript; charset=utf-8"),
            (header::CACHE_CONTROL, REVALIDATE),
        ],
        body,
    )
        .into_response()
}

/// Every path no route takes: the files of `web/`, precompressed copies
/// preferred (brotli, then gzip), with the `Cache-Control` of
/// [`WebAssets::cache_control`].
pub async fn serve_web(State(state): State<AppState>, mut request: Request) -> Response {
    let path = request.uri().path().to_owned();
    // `/sw.js` from the worker's built copy (minified, precompressed).
    if path == "/sw.js"
        && let Some(copy) = state.assets.worker_copy()
        && let Ok(uri) = format!("/{copy}").parse()
    {
        *request.uri_mut() = uri;
    }
    let files = ServeDir::new(&state.paths.web_dir)
        .precompressed_br()
        .precompressed_gzip();
    let mut response = match files.oneshot(request).await {
        Ok(response) => response.map(Body::new),
        Err(never) => match never {},
    };
    let headers = response.headers_mut();
    headers.append(header::VARY, HeaderValue::from_static("accept-encoding"));
    let cache = if response.status().is_success() || response.status().is_redirection() {
        state.assets.cache_control(&path)
    } else {
        REVALIDATE
    };
    response
        .headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static(cache));
    response
}
