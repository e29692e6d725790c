//! fanswarm's server: the one binary an artist runs.
//!
//! It publishes every track of a music folder as a torrent, and serves:
//! - `GET /announce`: the WebTorrent tracker and WebRTC signalling over
//!   WebSocket (the sans-IO [`fanswarm_tracker`] decides, [`ws`] carries);
//! - `GET /media/<path>`: the web seed (BEP 19), HTTP Range, CORS: the
//!   published tracks' files and nothing else;
//! - `GET /t/<hex>.torrent`, `GET /api/tracks`, `GET /api/swarm` (the demo
//!   page's live panel), `GET /metrics`;
//! - `GET /embed/<hex>`: the one-player page artists frame ([`embed`]);
//! - `GET /embed.js` and everything else from the `web/` directory (player,
//!   service worker), content-hashed names cached for good ([`assets`]).
//!
//! `main.rs` is flags and logging only; [`app`] builds the router so tests
//! can drive it with `oneshot`, and [`serve`] runs it on a listener.
//!
//! With the `native-peer` feature (on by default) the binary also runs the
//! native WebRTC peer of `fanswarm-peer` ([`webrtc_seed`]: `seed`,
//! `serve --webrtc-seed`; and `get`). Without it the server builds none
//! of the webrtc stack.
#![forbid(unsafe_code)]

pub mod assets;
pub mod catalog;
pub mod demo;
pub mod descriptors;
pub mod embed;
pub mod listen;
pub mod metrics;
pub mod offload;
pub mod publish;
pub mod routes;
pub mod state;
pub mod web;
#[cfg(feature = "native-peer")]
pub mod webrtc_seed;
pub mod ws;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use axum::Router;
use axum::http::{Method, header};
use axum::routing::get;
use fanswarm_tracker::Limits;
use tokio::net::TcpListener;
use tower_http::cors::{Any, CorsLayer};

use crate::publish::PublishError;
use crate::state::{AppState, Paths, PlayerSettings};

/// Everything `signal-server serve` needs.
#[derive(Debug, Clone)]
pub struct Config {
    /// Address to listen on.
    pub listen: SocketAddr,
    /// Music folder to publish; `None` publishes the bundled demo track.
    pub library: Option<PathBuf>,
    /// Directory served at `/`.
    pub web_dir: PathBuf,
    /// Where generated files (the demo track) are kept between runs.
    pub cache_dir: PathBuf,
    /// Base URL in published links (behind a proxy); default `http://<listen>`.
    pub public_url: Option<String>,
    /// Tracker limits.
    pub limits: Limits,
    /// Seed every published track over WebRTC from this process too
    /// (`--webrtc-seed`), so a swarm has a WebRTC seed before any fan.
    #[cfg(feature = "native-peer")]
    pub webrtc_seed: Option<fanswarm_peer::RtcConfig>,
    /// What the embed page tells fans' players (their ICE servers).
    pub player: PlayerSettings,
}

/// Why the server could not start.
#[derive(Debug, thiserror::Error)]
pub enum ServerError {
    /// The listen address could not be bound.
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        /// The address.
        addr: SocketAddr,
        /// The OS error.
        source: std::io::Error,
    },
    /// `--listen` names every interface (0.0.0.0, `[::]`) and no
    /// `--public-url` says how other machines reach it: the published links
    /// would send every fan to an address that means "this machine" on
    /// theirs.
    #[error(
        "--listen {listen} accepts connections on every interface, but torrents, magnet \
         links and embed snippets must name an address that fans' machines can reach, \
         and {ip} is not one (http://{listen} would point each fan at their own machine). \
         Add --public-url http://<a name or address other machines reach>:{port} \
         (e.g. --public-url http://192.168.1.20:{port}, or https://music.example behind \
         a reverse proxy; or set FANSWARM_PUBLIC_URL), or listen on that address itself \
         (--listen 192.168.1.20:{port}).",
        ip = .listen.ip(),
        port = port_or_placeholder(.listen)
    )]
    NoPublicUrl {
        /// The unspecified listen address.
        listen: SocketAddr,
    },
    /// The library could not be published.
    #[error(transparent)]
    Publish(#[from] PublishError),
    /// The demo track could not be written to the cache directory.
    #[error("cannot write the demo track under {dir}: {source}")]
    Demo {
        /// The cache directory.
        dir: PathBuf,
        /// The OS error.
        source: std::io::Error,
    },
    /// Serving stopped with an I/O error.
    #[error("server failed: {0}")]
    Serve(#[source] std::io::Error),
}

/// The whole HTTP surface, ready for `oneshot` or a listener.
pub fn app(state: AppState) -> Router {
    let cors = CorsLayer::new()
        .allow_origin(Any)
        .allow_methods([Method::GET, Method::HEAD])
        .allow_headers([header::RANGE])
        .expose_headers([
            header::CONTENT_RANGE,
            header::ACCEPT_RANGES,
            header::CONTENT_LENGTH,
        ]);
    Router::new()
        .route("/announce", get(ws::announce))
        .route("/t/{file}", get(routes::torrent))
        .route("/api/tracks", get(routes::tracks))
        .route("/api/swarm", get(routes::swarm))
        .route("/embed/{hex}", get(embed::page))
        .route("/embed.js", get(web::embed_js))
        .route("/metrics", get(routes::metrics))
        .route("/media/{*path}", get(routes::media))
        .fallback(web::serve_web)
        .layer(cors)
        .with_state(state)
}

/// Serves `state` on `listener` until the process ends, with the tracker's
/// housekeeping (peer and offer expiry) running beside it. Each connection
/// must send its request head within `limits.header_read_timeout`
/// ([`listen`]).
pub async fn serve(listener: TcpListener, state: AppState) -> Result<(), ServerError> {
    let housekeeping = state.clone();
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(Duration::from_secs(15));
        loop {
            tick.tick().await;
            let now = housekeeping.now();
            housekeeping.hub().tracker.expire(now);
        }
    });
    let header_read_timeout = state.limits.header_read_timeout;
    listen::accept_loop(listener, app(state), header_read_timeout).await;
    Ok(())
}

/// Publishes the library (or the demo track), binds, logs the links, serves.
pub async fn run(config: Config) -> Result<(), ServerError> {
    // Refused before anything is published or bound: links are made once.
    public_base(config.listen, config.public_url.as_deref())?;
    if !config.web_dir.is_dir() {
        tracing::warn!(
            web_dir = %config.web_dir.display(),
            "web directory not found: `/` will answer 404 (set --web-dir)"
        );
    }
    let listener = TcpListener::bind(config.listen)
        .await
        .map_err(|source| ServerError::Bind {
            addr: config.listen,
            source,
        })?;
    let local = listener.local_addr().map_err(ServerError::Serve)?;
    let base = public_base(local, config.public_url.as_deref())?;
    let media_dir = match &config.library {
        Some(library) => library.clone(),
        None => {
            let cache = config.cache_dir.clone();
            tokio::task::spawn_blocking(move || demo::ensure(&cache))
                .await
                .map_err(|e| ServerError::Publish(PublishError::Task(e.to_string())))?
                .map_err(|source| ServerError::Demo {
                    dir: config.cache_dir.clone(),
                    source,
                })?
        }
    };
    let catalog = publish::publish_library(media_dir.clone(), base.clone()).await?;
    if catalog.tracks().is_empty() {
        tracing::warn!(library = %media_dir.display(), "no audio files to publish");
    }
    let paths = Paths {
        media_dir,
        web_dir: config.web_dir.clone(),
    };
    tracing::info!(
        %local,
        %base,
        tracks = catalog.tracks().len(),
        max_connections = config.limits.max_connections,
        "serving"
    );
    #[cfg(feature = "native-peer")]
    if let Some(rtc) = config.webrtc_seed.clone() {
        tokio::spawn(webrtc_seed::seed_catalog(
            catalog.clone(),
            paths.media_dir.clone(),
            local,
            rtc,
        ));
    }
    let state = AppState::with_player(catalog, paths, config.limits, config.player.clone());
    serve(listener, state).await
}

/// The base URL of every published link: `--public-url` when given, else
/// `http://<listen address>` — unless that address is unspecified
/// (0.0.0.0, `[::]`), which names no machine a fan can reach.
pub fn public_base(listen: SocketAddr, public_url: Option<&str>) -> Result<String, ServerError> {
    match public_url {
        Some(url) => Ok(url.to_owned()),
        None if listen.ip().to_canonical().is_unspecified() => {
            Err(ServerError::NoPublicUrl { listen })
        }
        None => Ok(format!("http://{listen}")),
    }
}

/// The port to suggest in [`ServerError::NoPublicUrl`]: `PORT` when the OS
/// was to choose it.
fn port_or_placeholder(listen: &SocketAddr) -> String {
    match listen.port() {
        0 => "PORT".to_owned(),
        port => port.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_unspecified_listen_address_needs_a_public_url() {
        for listen in ["0.0.0.0:8080", "[::]:8080", "[::ffff:0.0.0.0]:8080"] {
            let listen: SocketAddr = listen.parse().unwrap();
            let err = public_base(listen, None).unwrap_err().to_string();
            assert!(
                err.contains("--public-url http://<a name or address other machines reach>:8080"),
                "{err}"
            );
            assert_eq!(
                public_base(listen, Some("https://music.example")).unwrap(),
                "https://music.example"
            );
        }
        let any_port: SocketAddr = "0.0.0.0:0".parse().unwrap();
        let err = public_base(any_port, None).unwrap_err().to_string();
        assert!(err.contains("reach>:PORT"), "{err}");
    }

    #[test]
    fn a_specific_listen_address_is_its_own_base() {
        let listen: SocketAddr = "192.0.2.7:8080".parse().unwrap();
        assert_eq!(public_base(listen, None).unwrap(), "http://192.0.2.7:8080");
        let listen: SocketAddr = "[2001:db8::1]:80".parse().unwrap();
        assert_eq!(
            public_base(listen, None).unwrap(),
            "http://[2001:db8::1]:80"
        );
    }
}
