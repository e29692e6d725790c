//! The fanswarm server, in process, with a library of one synthesized track.
//!
//! The server runs on a thread and runtime of its own, so [`TestServer::stop`]
//! really ends every socket it has, as a crashed or restarted server would,
//! and [`TestServer::restart`] brings it back on the same port.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Context, bail};
use tokio::net::TcpListener;
use tokio_rustls::TlsAcceptor;

use fanswarm_tracker::Limits;
use signal_server::catalog::{Catalog, Links, Track};
use signal_server::ice::IceConfig;
use signal_server::publish::{TorrentOptions, make_torrent};
use signal_server::redis_cluster::RedisOptions;
use signal_server::state::{AppState, Paths, PlayerSettings};

/// What the test server publishes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ServerOptions {
    /// Length of the synthesized WAV track (22.05 kHz mono, ~44 KB/s).
    pub seconds: u32,
    /// Whether the torrent names the server's `/media/` URL as its web seed
    /// (`url-list`). Without it, pages can only get the track from peers.
    pub web_seed: bool,
}

/// One of several instances sharing their swarms through one Redis
/// (`--redis`), each publishing the same track (same info hash).
#[derive(Debug, Clone)]
pub struct InstanceOptions {
    /// The track and its web seed.
    pub track: ServerOptions,
    /// The shared Redis.
    pub redis: RedisOptions,
    /// Base of every published link (a balancer's, in front of all the
    /// instances); `None`: this instance's own `http://localhost:<port>`.
    pub public_base: Option<String>,
    /// The tracker's limits (a test shortens the announce interval).
    pub limits: Limits,
}

/// A certificate and key for [`start_tls`].
#[derive(Debug, Clone)]
pub struct TlsFiles {
    /// PEM certificate chain.
    pub cert: PathBuf,
    /// PEM key.
    pub key: PathBuf,
}

/// A running server and what it publishes.
pub struct TestServer {
    /// `http://localhost:<port>`: a secure context, so service workers run.
    pub base: String,
    /// Where it listens (all interfaces of the namespace).
    pub addr: SocketAddr,
    /// The one published track.
    pub track: Track,
    /// The track's bytes, to compare pages against.
    pub file: Vec<u8>,
    /// The track's file in the library: what a native seeder serves.
    pub track_path: PathBuf,
    catalog: Catalog,
    paths: Paths,
    state: AppState,
    tls: Option<TlsAcceptor>,
    ice: IceConfig,
    limits: Limits,
    redis: Option<RedisOptions>,
    running: Option<Running>,
    _library: tempfile::TempDir,
}

/// The repository's `web/` directory (with `pkg/` from `scripts/build-web`).
pub fn web_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../web")
}

/// Publishes a WAV track of `seconds` (with its web seed) and serves it
/// with the real router.
pub async fn start(seconds: u32) -> anyhow::Result<TestServer> {
    start_with(ServerOptions {
        seconds,
        web_seed: true,
    })
    .await
}

/// Publishes a WAV track of `seconds` with its web seed and serves it over
/// HTTPS and WSS (`https://localhost:<port>`) with the server's own TLS.
pub async fn start_tls(seconds: u32, files: &TlsFiles) -> anyhow::Result<TestServer> {
    let key = signal_server::tls::load(&signal_server::tls::TlsFiles {
        cert: files.cert.clone(),
        key: files.key.clone(),
    })?;
    let config = signal_server::tls::server_config(signal_server::tls::Certificates::new(key))?;
    serve_track(
        ServerOptions {
            seconds,
            web_seed: true,
        },
        Some(TlsAcceptor::from(config)),
        IceConfig::none(),
    )
    .await
}

/// Publishes a WAV track of `seconds` with its web seed; its `/api/ice`
/// hands players `ice` (a test's TURN server).
pub async fn start_with_ice(seconds: u32, ice: IceConfig) -> anyhow::Result<TestServer> {
    serve_track(
        ServerOptions {
            seconds,
            web_seed: true,
        },
        None,
        ice,
    )
    .await
}

/// Publishes a WAV track as `options` say and serves it with the real router.
pub async fn start_with(options: ServerOptions) -> anyhow::Result<TestServer> {
    serve_track(options, None, IceConfig::none()).await
}

/// Starts one instance of a cluster sharing swarms through Redis.
pub async fn start_instance(options: InstanceOptions) -> anyhow::Result<TestServer> {
    let cluster = Cluster {
        base: options.public_base,
        limits: options.limits,
        redis: Some(options.redis),
        mirrors: Vec::new(),
    };
    serve_track_as(options.track, None, IceConfig::none(), cluster).await
}

/// Publishes a WAV track of `seconds` whose torrent lists, after this
/// server's own `/media/` URL, the file under each of `mirrors`
/// (`--web-seed-mirror` base URLs ending in `/`).
pub async fn start_mirrored(seconds: u32, mirrors: Vec<String>) -> anyhow::Result<TestServer> {
    let cluster = Cluster {
        mirrors,
        ..Cluster::alone()
    };
    let options = ServerOptions {
        seconds,
        web_seed: true,
    };
    serve_track_as(options, None, IceConfig::none(), cluster).await
}

/// How an instance differs from a lone test server.
struct Cluster {
    base: Option<String>,
    limits: Limits,
    redis: Option<RedisOptions>,
    mirrors: Vec<String>,
}

impl Cluster {
    /// A lone test server: its own base, default limits, no Redis.
    fn alone() -> Cluster {
        Cluster {
            base: None,
            limits: Limits::default(),
            redis: None,
            mirrors: Vec::new(),
        }
    }
}

/// The player's files, checked to be built.
fn built_web_dir() -> anyhow::Result<PathBuf> {
    let web = web_dir();
    anyhow::ensure!(
        web.join("pkg/client_wasm_bg.wasm").is_file(),
        "{}/pkg is missing: run scripts/build-web first",
        web.display()
    );
    Ok(web)
}

async fn serve_track(
    options: ServerOptions,
    tls: Option<TlsAcceptor>,
    ice: IceConfig,
) -> anyhow::Result<TestServer> {
    serve_track_as(options, tls, ice, Cluster::alone()).await
}

async fn serve_track_as(
    options: ServerOptions,
    tls: Option<TlsAcceptor>,
    ice: IceConfig,
    cluster: Cluster,
) -> anyhow::Result<TestServer> {
    built_web_dir()?;
    let library = tempfile::tempdir()?;
    let samples = signal_server::demo::synthesize(options.seconds, 7);
    let file = signal_server::demo::wav_bytes(&samples, signal_server::demo::SAMPLE_RATE);
    let track_path = library.path().join("e2e track.wav");
    std::fs::write(&track_path, &file)?;

    // Bind first: the published links name the port.
    let listener = TcpListener::bind("0.0.0.0:0").await?;
    let addr = listener.local_addr()?;
    let scheme = if tls.is_some() { "https" } else { "http" };
    let base = cluster
        .base
        .clone()
        .unwrap_or_else(|| format!("{scheme}://localhost:{}", addr.port()));
    let catalog = if options.web_seed {
        signal_server::library::publish_mirrored(
            library.path().to_path_buf(),
            base.clone(),
            cluster.mirrors.clone(),
        )
        .await
        .context("publishing the test library")?
    } else {
        Catalog::new(vec![track_without_web_seed(&track_path, &base)?])
    };
    serve_catalog(
        listener, base, catalog, track_path, library, tls, ice, cluster,
    )
    .await
}

/// Serves `catalog` (published from `library`) with the real router on
/// `listener`; `track_path` is the first track's file.
#[allow(clippy::too_many_arguments)]
async fn serve_catalog(
    listener: TcpListener,
    base: String,
    catalog: Catalog,
    track_path: PathBuf,
    library: tempfile::TempDir,
    tls: Option<TlsAcceptor>,
    ice: IceConfig,
    cluster: Cluster,
) -> anyhow::Result<TestServer> {
    let addr = listener.local_addr()?;
    let track = catalog
        .tracks()
        .first()
        .cloned()
        .context("the library published no track")?;
    let file = std::fs::read(&track_path)?;
    let paths = Paths {
        media_dir: library.path().to_path_buf(),
        web_dir: web_dir(),
    };
    let state = fresh_state(&catalog, &paths, &ice, &cluster.limits);
    let running = Running::start(
        listener.into_std()?,
        state.clone(),
        tls.clone(),
        cluster.redis.as_ref(),
    )?;
    Ok(TestServer {
        base,
        addr,
        track,
        file,
        track_path,
        catalog,
        paths,
        state,
        tls,
        ice,
        limits: cluster.limits,
        redis: cluster.redis,
        running: Some(running),
        _library: library,
    })
}

/// Publishes every audio file in `library` (a test's own files) and serves
/// them with the real router, over HTTP. [`TestServer::track`] is the first
/// track published; [`TestServer::tracks`] lists them all.
pub async fn start_library(library: tempfile::TempDir) -> anyhow::Result<TestServer> {
    serve_library(library, false).await
}

/// [`start_library`] as `serve --albums` publishes it: each folder of two
/// or more tracks is one multi-file torrent. [`TestServer::track`] is the
/// first torrent published.
pub async fn start_albums(library: tempfile::TempDir) -> anyhow::Result<TestServer> {
    serve_library(library, true).await
}

async fn serve_library(library: tempfile::TempDir, albums: bool) -> anyhow::Result<TestServer> {
    built_web_dir()?;
    let listener = TcpListener::bind("0.0.0.0:0").await?;
    let addr = listener.local_addr()?;
    let base = format!("http://localhost:{}", addr.port());
    let root = library.path().to_path_buf();
    let catalog = if albums {
        signal_server::library::publish_albums(root, base.clone()).await
    } else {
        signal_server::library::publish_library(root, base.clone()).await
    }
    .context("publishing the test library")?;
    let first = catalog
        .tracks()
        .first()
        .context("the library published no track")?;
    // An album's first file stands for it.
    let first_path = match first.files.as_deref() {
        Some([file, ..]) => &file.path,
        _ => &first.path,
    };
    let track_path = library.path().join(first_path);
    serve_catalog(
        listener,
        base,
        catalog,
        track_path,
        library,
        None,
        IceConfig::none(),
        Cluster::alone(),
    )
    .await
}

/// The server's state for a test: unless a test gives a TURN server, its
/// `/api/ice` gives players no ICE server (the private network has no route
/// out, and players join their swarm on load, before a test could set the
/// attribute).
fn fresh_state(catalog: &Catalog, paths: &Paths, ice: &IceConfig, limits: &Limits) -> AppState {
    let player = PlayerSettings { ice: ice.clone() };
    AppState::with_player(catalog.clone(), paths.clone(), limits.clone(), player)
}

impl TestServer {
    /// The tracker URL with a literal address, for native peers (which
    /// would otherwise resolve `localhost` themselves).
    pub fn tracker_url(&self) -> String {
        let scheme = if self.tls.is_some() { "wss" } else { "ws" };
        format!("{scheme}://127.0.0.1:{}/announce", self.addr.port())
    }

    /// Every published track, in publishing order.
    pub fn tracks(&self) -> &[Track] {
        self.catalog.tracks()
    }

    /// Body bytes `/media/` has sent since the server (re)started.
    pub fn webseed_bytes(&self) -> u64 {
        self.state.metrics.webseed_bytes.get()
    }

    /// The server's shared state (its tracker, its metrics).
    pub fn state(&self) -> &AppState {
        &self.state
    }

    /// Peers the tracker knows, over all swarms.
    pub fn tracker_peers(&self) -> usize {
        self.state.hub().tracker.peer_count()
    }

    /// Which swarms the tracker (and so `/embed`, `/share`) serves from
    /// now on: open by default, as `fanswarm_tracker::Tracker::new` is.
    pub fn set_access(&self, access: fanswarm_tracker::Access) {
        self.state.hub().tracker.set_access(access);
    }

    /// Stops serving: every connection (tracker sockets included) ends.
    pub fn stop(&mut self) {
        if let Some(running) = self.running.take() {
            running.stop();
        }
    }

    /// Serves again on the same port with a fresh tracker (it knows no
    /// peer until they announce again), as after a server restart.
    pub async fn restart(&mut self) -> anyhow::Result<()> {
        self.stop();
        let mut last = None;
        // The old listener is closed once its runtime is gone; retry briefly
        // in case the port is not free at once.
        for _ in 0..50 {
            match std::net::TcpListener::bind(self.addr) {
                Ok(listener) => {
                    listener.set_nonblocking(true)?;
                    self.state = fresh_state(&self.catalog, &self.paths, &self.ice, &self.limits);
                    self.running = Some(Running::start(
                        listener,
                        self.state.clone(),
                        self.tls.clone(),
                        self.redis.as_ref(),
                    )?);
                    return Ok(());
                }
                Err(e) => last = Some(e),
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        bail!("cannot listen on {} again: {last:?}", self.addr)
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        self.stop();
    }
}

/// The server's thread: a runtime of its own, dropped on stop so that every
/// connection task ends with it.
struct Running {
    shutdown: tokio::sync::oneshot::Sender<()>,
    thread: std::thread::JoinHandle<()>,
}

impl Running {
    fn start(
        listener: std::net::TcpListener,
        state: AppState,
        tls: Option<TlsAcceptor>,
        redis: Option<&RedisOptions>,
    ) -> anyhow::Result<Running> {
        // Joined before the first socket: the tracker is in cluster mode
        // from its first announce.
        let cluster = redis
            .map(|options| signal_server::redis_cluster::start(&state, options))
            .transpose()?;
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()?;
        let (shutdown, stop) = tokio::sync::oneshot::channel::<()>();
        let thread = std::thread::Builder::new()
            .name("test-server".into())
            .spawn(move || {
                runtime.block_on(async move {
                    let listener = match TcpListener::from_std(listener) {
                        Ok(listener) => listener,
                        Err(e) => {
                            eprintln!("test server: {e}");
                            return;
                        }
                    };
                    let cluster = async move {
                        match cluster {
                            Some(cluster) => cluster.await,
                            None => std::future::pending().await,
                        }
                    };
                    tokio::select! {
                        () = cluster => {}
                        result = signal_server::serve_with(listener, state, tls) => {
                            if let Err(e) = result {
                                eprintln!("test server: {e}");
                            }
                        }
                        _ = stop => {}
                    }
                });
                // Dropping the runtime here cancels every connection task.
                runtime.shutdown_timeout(Duration::from_secs(1));
            })?;
        Ok(Running { shutdown, thread })
    }

    fn stop(self) {
        let _ = self.shutdown.send(());
        let _ = self.thread.join();
    }
}

/// The track at `path` published like the server does, but with no
/// `url-list`: the only way to get it is from peers.
fn track_without_web_seed(path: &Path, base: &str) -> anyhow::Result<Track> {
    let options = TorrentOptions {
        trackers: vec![Links::tracker_url(base)],
        web_seeds: Vec::new(),
    };
    let metainfo = make_torrent(path, &options, |_| {})?;
    let name = metainfo.info.name.clone();
    let links = Links::new(base, &metainfo.info_hash, &name);
    Ok(Track {
        name: name.clone(),
        info_hash: metainfo.info_hash,
        length: metainfo.info.files.iter().map(|f| f.length).sum(),
        magnet: metainfo.magnet().to_string(),
        torrent_url: links.torrent_url,
        media_url: links.media_url,
        embed_url: links.embed_url,
        embed_html: links.embed_html,
        embed_script_html: links.embed_script_html,
        torrent: metainfo.to_bytes().into(),
        tags: signal_server::tags::read(path).unwrap_or_default(),
        path: name,
        stamp: None,
        files: None,
    })
}
