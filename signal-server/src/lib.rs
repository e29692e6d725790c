//! fanswarm's server: the one binary an artist runs.
//!
//! It publishes every track of a music folder as a torrent, and serves:
//! - `GET /announce`: the WebTorrent tracker and WebRTC signalling over
//!   WebSocket (the sans-IO [`fanswarm_tracker`] decides, [`ws`] carries);
//! - `GET /media/<path>`: the web seed (BEP 19), HTTP Range, CORS: the
//!   published tracks' files and nothing else;
//! - `GET /cover/<hex>`: a track's cover picture, read from its tags
//!   ([`tags`]);
//! - `GET /t/<hex>.torrent`, `GET /api/library` (hashing progress, [`library`]),
//!   `GET /api/tracks` (and `/api/tracks/<hex>`: one
//!   track, with its tags), `GET /api/swarm` (the demo
//!   page's live panel), `GET /api/ice` (fans' STUN/TURN servers, [`ice`]),
//!   `GET /metrics`;
//! - `GET /embed/<hex>`: the one-player page artists frame ([`embed`]),
//!   also for a swarm it did not publish (`?magnet=`) when `--swarms open`;
//! - `GET /share`: a fan's file hashed and seeded from the tab ([`share`]);
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

pub mod acme;
pub mod album;
pub mod assets;
pub mod catalog;
pub mod config_file;
pub mod demo;
pub mod descriptors;
pub mod embed;
pub mod ice;
pub mod index;
pub mod library;
pub mod listen;
pub mod metrics;
pub mod offload;
pub mod publish;
pub mod redis_cluster;
pub mod redis_link;
pub mod routes;
pub mod share;
pub mod state;
pub mod tags;
pub mod tls;
pub mod web;
#[cfg(feature = "native-peer")]
pub mod webrtc_seed;
pub mod ws;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::extract::{Path, State};
use axum::http::{Method, header};
use axum::response::IntoResponse;
use axum::routing::get;
use fanswarm_tracker::Limits;
use tokio::net::TcpListener;
use tokio_rustls::TlsAcceptor;
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
    /// Where the library's index is kept (`--index`); `None`:
    /// [`library::default_index_path`].
    pub index: Option<PathBuf>,
    /// Directory served at `/`.
    pub web_dir: PathBuf,
    /// Where generated files (the demo track) are kept between runs.
    pub cache_dir: PathBuf,
    /// Base URL in published links (behind a proxy); default `http://<listen>`.
    pub public_url: Option<String>,
    /// Tracker limits.
    pub limits: Limits,
    /// Which swarms the tracker and the player serve (`--swarms`).
    pub swarms: share::Swarms,
    /// Seed every published track over WebRTC from this process too
    /// (`--webrtc-seed`), so a swarm has a WebRTC seed before any fan.
    #[cfg(feature = "native-peer")]
    pub webrtc_seed: Option<fanswarm_peer::RtcConfig>,
    /// What the embed page tells fans' players (their ICE servers).
    pub player: PlayerSettings,
    /// Serve HTTPS and WSS with this certificate and key (read again when
    /// they change); `None`: plain HTTP.
    pub tls: Option<tls::TlsFiles>,
    /// Get the certificate over ACME instead (HTTP-01 on
    /// `redirect_listen`); excludes `tls`.
    pub acme: Option<acme::AcmeConfig>,
    /// With TLS: also listen here for plain HTTP and redirect every
    /// request to the HTTPS base (e.g. `0.0.0.0:80`); ACME's HTTP-01
    /// challenges are answered here too.
    pub redirect_listen: Option<SocketAddr>,
    /// Share swarms with the other instances on this Redis (`--redis`):
    /// fans behind a load balancer find each other whichever instance
    /// they reach. `None`: this instance alone.
    pub redis: Option<redis_cluster::RedisOptions>,
    /// More web seeds for every published track (`--web-seed-mirror`):
    /// base URLs ending in `/` that serve the library's files at the same
    /// relative paths (a CDN, an object store). Each torrent lists our own
    /// `/media/` first, then these; players spread their fetches over all
    /// of them and skip one that fails.
    pub web_seed_mirrors: Vec<String>,
    /// Publish each folder of two or more tracks as one album torrent
    /// (`--albums`, on by default; `--albums=false`: every track its own
    /// torrent).
    pub albums: bool,
}

/// A `--web-seed-mirror` value as a base URL ending in `/`, or why not.
pub fn mirror_base(url: &str) -> Result<String, String> {
    let url = url.trim();
    let rest = url
        .strip_prefix("https://")
        .or_else(|| url.strip_prefix("http://"))
        .ok_or_else(|| format!("{url:?}: a web seed mirror must be an http:// or https:// URL"))?;
    if rest.is_empty() || rest.starts_with('/') || url.contains(['?', '#', ' ']) {
        return Err(format!(
            "{url:?}: a web seed mirror is a base URL with a host and no query, \
             e.g. https://cdn.example/music/"
        ));
    }
    Ok(if url.ends_with('/') {
        url.to_owned()
    } else {
        format!("{url}/")
    })
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
    /// The certificate or key could not be used.
    #[error(transparent)]
    Tls(#[from] tls::TlsError),
    /// The ACME set-up failed.
    #[error(transparent)]
    Acme(#[from] acme::AcmeError),
    /// `--redis` cannot be used.
    #[error(transparent)]
    Redis(#[from] redis_cluster::ClusterError),
    /// A flag combination that cannot work.
    #[error("{0}")]
    Config(String),
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
        .route("/", get(root))
        .route("/t/{file}", get(routes::torrent))
        .route("/api/tracks", get(routes::tracks))
        .route("/api/tracks/{hex}", get(routes::track))
        .route("/api/library", get(routes::library))
        .route("/cover/{hex}", get(routes::cover))
        .route("/api/ice", get(routes::ice))
        .route("/api/swarm", get(routes::swarm))
        .route("/embed/{hex}", get(embed::page))
        .route("/embed.js", get(web::embed_js))
        .route("/share", get(share::page))
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
    serve_with(listener, state, None).await
}

/// [`serve`], over TLS when `tls` is given, until [`AppState::shut_down`]:
/// then it stops accepting, lets the responses under way finish, closes
/// the tracker sockets with "going away", and returns within
/// [`SHUTDOWN_GRACE`] and a second.
pub async fn serve_with(
    listener: TcpListener,
    state: AppState,
    tls: Option<TlsAcceptor>,
) -> Result<(), ServerError> {
    let housekeeping = state.clone();
    // Ends with this future (a server stopped in process stops its timer).
    let mut background = tokio::task::JoinSet::new();
    background.spawn(async move {
        let mut tick = tokio::time::interval(Duration::from_secs(15));
        loop {
            tick.tick().await;
            let now = housekeeping.now();
            let events = {
                let mut hub = housekeeping.hub();
                hub.tracker.expire(now);
                hub.tracker.drain_cluster()
            };
            housekeeping.to_cluster(events);
        }
    });
    let header_read_timeout = state.limits.header_read_timeout;
    listen::accept_until(
        listener,
        app(state.clone()),
        header_read_timeout,
        tls,
        state.shutdown(),
        SHUTDOWN_GRACE,
    )
    .await;
    // The tracker sockets were told in the same moment; their writers send
    // the close frame and end (a second at most: 8 + 1 < 10 s in all).
    let deadline = tokio::time::Instant::now() + Duration::from_secs(1);
    while state.tracker_sockets() > 0 && tokio::time::Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    Ok(())
}

/// The longest a shutdown waits for responses under way and sockets to close.
pub const SHUTDOWN_GRACE: Duration = Duration::from_secs(8);

/// `/`: the tracker for a WebSocket upgrade (many WebTorrent trackers live
/// at the root, `wss://tracker.example`, and magnets name them so; so does
/// aquatic's load tester), the web directory's index for anything else.
async fn root(
    State(state): State<AppState>,
    request: axum::extract::Request,
) -> axum::response::Response {
    let upgrade = request
        .headers()
        .get(header::UPGRADE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.eq_ignore_ascii_case("websocket"));
    if !upgrade {
        return web::serve_web(State(state), request).await;
    }
    let (mut parts, _body) = request.into_parts();
    let peer = parts
        .extensions
        .get::<axum::extract::ConnectInfo<SocketAddr>>()
        .cloned()
        .map(axum::Extension);
    match <axum::extract::ws::WebSocketUpgrade as axum::extract::FromRequestParts<AppState>>::from_request_parts(&mut parts, &state).await {
        Ok(ws) => ws::announce(ws, State(state), peer).await,
        Err(rejection) => rejection.into_response(),
    }
}

/// Plain HTTP that sends every request to the same path under `base`
/// (`https://…`) with a permanent redirect that keeps the method (308),
/// except ACME's HTTP-01 challenges, answered from `challenges`.
pub fn redirect_app(base: String, challenges: acme::Challenges) -> Router {
    let base = Arc::<str>::from(base.trim_end_matches('/'));
    let answers = move |Path(token): Path<String>| {
        let challenges = challenges.clone();
        async move {
            match challenges.answer(&token) {
                Some(answer) => (axum::http::StatusCode::OK, answer).into_response(),
                None => axum::http::StatusCode::NOT_FOUND.into_response(),
            }
        }
    };
    Router::new()
        .route("/.well-known/acme-challenge/{token}", get(answers))
        .fallback(move |uri: axum::http::Uri| {
            let base = Arc::clone(&base);
            async move {
                let path = uri.path_and_query().map_or("/", |p| p.as_str());
                (
                    axum::http::StatusCode::PERMANENT_REDIRECT,
                    [(header::LOCATION, format!("{base}{path}"))],
                )
            }
        })
}

/// Publishes the library (or the demo track), binds, logs the links, serves.
pub async fn run(config: Config) -> Result<(), ServerError> {
    run_until(config, std::future::pending()).await
}

/// [`run`] until `stop` resolves (SIGTERM, Ctrl-C), then shuts down
/// gracefully ([`serve_with`]) and returns.
pub async fn run_until(
    config: Config,
    stop: impl Future<Output = ()> + Send + 'static,
) -> Result<(), ServerError> {
    // Refused before anything is published or bound: links are made once.
    public_base(
        config.listen,
        config.public_url.as_deref(),
        config.tls.is_some() || config.acme.is_some(),
        config
            .acme
            .as_ref()
            .and_then(|a| a.domains.first())
            .map(String::as_str),
    )?;
    if !config.web_dir.is_dir() {
        tracing::warn!(
            web_dir = %config.web_dir.display(),
            "web directory not found: `/` will answer 404 (set --web-dir)"
        );
    }
    if config.redirect_listen.is_some() && config.tls.is_none() && config.acme.is_none() {
        return Err(ServerError::Config(
            "--redirect-listen redirects plain HTTP to HTTPS: it needs --tls-cert and --tls-key, or --acme"
                .into(),
        ));
    }
    if let Some(redis) = &config.redis {
        redis.check()?;
    }
    if config.acme.is_some() && config.tls.is_some() {
        return Err(ServerError::Config(
            "--acme gets the certificate itself: leave out --tls-cert and --tls-key".into(),
        ));
    }
    if config.acme.is_some() && config.redirect_listen.is_none() {
        return Err(ServerError::Config(
            "--acme proves the domains over HTTP-01 on port 80: add --redirect-listen 0.0.0.0:80 \
             (or the address port 80 of the domains reaches)"
                .into(),
        ));
    }
    let challenges = acme::Challenges::default();
    let mut acme_task = None;
    // Everything that serves beside the main listener: it all stops when
    // this future is dropped (in process: the caller aborted the server).
    let mut background = tokio::task::JoinSet::new();
    // The certificate first: a bad one should stop the start before
    // anything is published.
    let tls = match (&config.tls, &config.acme) {
        (None, Some(acme_config)) => {
            // instant-acme's HTTP client takes rustls' process default.
            let _ = rustls::crypto::ring::default_provider().install_default();
            let (key, not_after) = {
                let acme_config = acme_config.clone();
                tokio::task::spawn_blocking(move || acme::initial(&acme_config))
                    .await
                    .map_err(|e| ServerError::Config(format!("loading the certificate: {e}")))??
            };
            let certificates = tls::Certificates::new(key);
            acme_task = Some(acme::maintain(
                acme_config.clone(),
                Arc::clone(&certificates),
                challenges.clone(),
                not_after,
            ));
            Some(TlsAcceptor::from(tls::server_config(certificates)?))
        }
        (Some(files), _) => {
            let loaded = {
                let files = files.clone();
                tokio::task::spawn_blocking(move || tls::load(&files))
                    .await
                    .map_err(|e| ServerError::Config(format!("loading the certificate: {e}")))??
            };
            let certificates = tls::Certificates::new(loaded);
            background.spawn(tls::watch(
                files.clone(),
                Arc::clone(&certificates),
                CERTIFICATE_CHECK,
            ));
            Some(TlsAcceptor::from(tls::server_config(certificates)?))
        }
        (None, None) => None,
    };
    let listener = bind(config.listen).await?;
    let local = listener.local_addr().map_err(ServerError::Serve)?;
    let domain = config.acme.as_ref().and_then(|a| a.domains.first());
    let base = public_base(
        local,
        config.public_url.as_deref(),
        tls.is_some(),
        domain.map(String::as_str),
    )?;
    if let Some(addr) = config.redirect_listen {
        let redirects = bind(addr).await?;
        tracing::info!(%addr, to = %base, "redirecting plain HTTP");
        background.spawn(listen::accept_loop(
            redirects,
            redirect_app(base.clone(), challenges.clone()),
            config.limits.header_read_timeout,
            None,
        ));
    }
    // Ordering needs the challenge listener up.
    if let Some(task) = acme_task {
        background.spawn(task);
    }
    let media_dir = match &config.library {
        Some(library) => {
            // A library that cannot be read at all stops the start, as a
            // bad flag would; anything later is logged and rescanned.
            std::fs::read_dir(library).map_err(|source| PublishError::Io {
                path: library.clone(),
                source,
            })?;
            library.clone()
        }
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
    let paths = Paths {
        media_dir: media_dir.clone(),
        web_dir: config.web_dir.clone(),
    };
    let state = AppState::with_player(
        catalog::Catalog::default(),
        paths,
        config.limits.clone(),
        config.player.clone(),
    );
    // Published swarms only: none until the catalog is published, and
    // from then on exactly its tracks (`AppState::publish`).
    state
        .hub()
        .tracker
        .set_access(config.swarms.access(&catalog::Catalog::default()));
    match &config.library {
        Some(library) => {
            let index = config
                .index
                .clone()
                .unwrap_or_else(|| library::default_index_path(library, &config.cache_dir));
            tracing::info!(index = %index.display(), "library index");
            let (ready, published) = tokio::sync::oneshot::channel();
            let live = {
                let (library, base) = (library.clone(), base.clone());
                let mirrors = config.web_seed_mirrors.clone();
                let albums = config.albums;
                tokio::task::spawn_blocking(move || {
                    library::Library::new(library, base, index::Index::load(index), library::QUIET)
                        .with_mirrors(mirrors)
                        .with_albums(albums)
                })
                .await
                .map_err(|e| ServerError::Publish(PublishError::Task(e.to_string())))?
            };
            background.spawn(library::keep_published(state.clone(), live, ready));
            if tokio::time::timeout(INITIAL_PUBLISH, published)
                .await
                .is_err()
            {
                let status = state.metrics.library.status();
                tracing::info!(
                    tracks = status.tracks,
                    queued_files = status.queued_files,
                    queued_bytes = status.queued_bytes,
                    "still hashing the library: serving what is published; the rest follows \
                     (progress at /api/library and in this log)"
                );
            }
        }
        None => state.publish(
            library::publish_with(
                media_dir.clone(),
                base.clone(),
                config.web_seed_mirrors.clone(),
                config.albums,
            )
            .await?,
        ),
    }
    let catalog = state.catalog();
    if catalog.tracks().is_empty() {
        tracing::warn!(library = %media_dir.display(), "no audio files to publish");
    }
    tracing::info!(
        %local,
        %base,
        tracks = catalog.tracks().len(),
        max_connections = config.limits.max_connections,
        swarms = ?config.swarms,
        "serving"
    );
    #[cfg(feature = "native-peer")]
    let catalog_for_seed = (*catalog).clone();
    if let Some(options) = &config.redis {
        background.spawn(redis_cluster::start(&state, options)?);
    }
    #[cfg(feature = "native-peer")]
    if let Some(rtc) = config.webrtc_seed.clone() {
        // The seed announces to this very process. Over TLS it would have
        // to trust our own certificate for a loopback address; it gets a
        // plain listener on loopback of its own instead.
        let tracker = if tls.is_some() {
            let inside = bind(SocketAddr::from(([127, 0, 0, 1], 0))).await?;
            let addr = inside.local_addr().map_err(ServerError::Serve)?;
            background.spawn(listen::accept_loop(
                inside,
                app(state.clone()),
                state.limits.header_read_timeout,
                None,
            ));
            addr
        } else {
            local
        };
        background.spawn(webrtc_seed::seed_catalog(
            catalog_for_seed,
            state.paths.media_dir.clone(),
            tracker,
            rtc,
        ));
    }
    let stopping = state.clone();
    background.spawn(async move {
        stop.await;
        tracing::info!(
            "shutting down: no new connections; finishing responses, closing tracker sockets"
        );
        stopping.shut_down();
    });
    let served = serve_with(listener, state, tls).await;
    background.abort_all();
    served
}

/// How long the start waits for the library to be published before it
/// opens the port anyway, serving what is published so far.
pub const INITIAL_PUBLISH: Duration = Duration::from_secs(5);

/// How often the certificate files are checked for a renewal.
const CERTIFICATE_CHECK: Duration = Duration::from_secs(5);

async fn bind(addr: SocketAddr) -> Result<TcpListener, ServerError> {
    TcpListener::bind(addr)
        .await
        .map_err(|source| ServerError::Bind { addr, source })
}

/// The base URL of every published link: `--public-url` when given, else
/// `https://<ACME domain>` (with the port unless it is 443), else
/// `http(s)://<listen address>` — unless that address is unspecified
/// (0.0.0.0, `[::]`), which names no machine a fan can reach.
pub fn public_base(
    listen: SocketAddr,
    public_url: Option<&str>,
    tls: bool,
    acme_domain: Option<&str>,
) -> Result<String, ServerError> {
    let scheme = if tls { "https" } else { "http" };
    match (public_url, acme_domain) {
        (Some(url), _) => Ok(url.to_owned()),
        (None, Some(domain)) if listen.port() == 443 => Ok(format!("https://{domain}")),
        (None, Some(domain)) => Ok(format!("https://{domain}:{}", listen.port())),
        (None, None) if listen.ip().to_canonical().is_unspecified() => {
            Err(ServerError::NoPublicUrl { listen })
        }
        (None, None) => Ok(format!("{scheme}://{listen}")),
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
    #[test]
    fn a_mirror_is_a_base_url_ending_in_a_slash() {
        assert_eq!(
            mirror_base("https://cdn.example/music").unwrap(),
            "https://cdn.example/music/"
        );
        assert_eq!(
            mirror_base(" http://b.example/ ").unwrap(),
            "http://b.example/"
        );
        for bad in [
            "cdn.example/music/",
            "ftp://x/",
            "https://",
            "https:///x",
            "http://x/?a=1",
        ] {
            let e = mirror_base(bad).unwrap_err();
            assert!(e.contains("mirror"), "{bad}: {e}");
        }
    }

    use super::*;

    #[test]
    fn an_unspecified_listen_address_needs_a_public_url() {
        for listen in ["0.0.0.0:8080", "[::]:8080", "[::ffff:0.0.0.0]:8080"] {
            let listen: SocketAddr = listen.parse().unwrap();
            let err = public_base(listen, None, false, None)
                .unwrap_err()
                .to_string();
            assert!(
                err.contains("--public-url http://<a name or address other machines reach>:8080"),
                "{err}"
            );
            assert_eq!(
                public_base(listen, Some("https://music.example"), false, None).unwrap(),
                "https://music.example"
            );
        }
        let any_port: SocketAddr = "0.0.0.0:0".parse().unwrap();
        let err = public_base(any_port, None, false, None)
            .unwrap_err()
            .to_string();
        assert!(err.contains("reach>:PORT"), "{err}");
    }

    #[test]
    fn a_specific_listen_address_is_its_own_base() {
        let listen: SocketAddr = "192.0.2.7:8080".parse().unwrap();
        assert_eq!(
            public_base(listen, None, false, None).unwrap(),
            "http://192.0.2.7:8080"
        );
        let listen: SocketAddr = "[2001:db8::1]:80".parse().unwrap();
        assert_eq!(
            public_base(listen, None, false, None).unwrap(),
            "http://[2001:db8::1]:80"
        );
        assert_eq!(
            public_base(listen, None, true, None).unwrap(),
            "https://[2001:db8::1]:80",
            "with TLS"
        );
    }

    #[test]
    fn an_acme_domain_names_the_links_even_on_an_unspecified_address() {
        let listen: SocketAddr = "0.0.0.0:443".parse().unwrap();
        assert_eq!(
            public_base(listen, None, true, Some("music.example")).unwrap(),
            "https://music.example"
        );
        let listen: SocketAddr = "0.0.0.0:8443".parse().unwrap();
        assert_eq!(
            public_base(listen, None, true, Some("music.example")).unwrap(),
            "https://music.example:8443"
        );
    }
}
