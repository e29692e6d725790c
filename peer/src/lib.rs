//! fanswarm's native WebRTC peer: a [`swarm::node::Node`] driven over the
//! `webrtc` crate, so a machine can seed (or fetch) a track with no browser.
//!
//! It is the browser peer's twin: the same node decides what to announce,
//! which connections to make and when to give up on them, what to fetch
//! from the web seed; this crate only carries out its outputs — the
//! WebTorrent tracker protocol over tokio-tungstenite, BitTorrent over one
//! ordered, reliable data channel per peer, the web seed over hyper — so
//! native peers, browsers and other WebTorrent clients mix in one swarm.
//!
//! Anatomy (one [`NativePeer`] per torrent):
//! - a **driver** task owns the node; everything else reports to its
//!   inbox (`driver`);
//! - a **tracker socket** task per tracker carries JSON text frames
//!   (`tracker_socket`);
//! - per remote peer, a set-up task makes the `RTCPeerConnection` and its
//!   complete (non-trickle) offer or answer, then a **reader** task turns
//!   data-channel events into reports and a **writer** task sends the
//!   node's bytes in order, in 16 KiB messages (`rtc`);
//! - each web-seed Range request streams its body from a task of its own
//!   (`http`);
//! - the torrent's files on disk are this peer's store (`storage`):
//!   pieces found there at start are imported, verified pieces written.
//!
//! Imports run one way: `lib → driver → {rtc, tracker_socket, http,
//! storage, fault, stats}`; the I/O modules report through sinks they are
//! handed and know nothing of the driver.
//!
//! Back-pressure: each channel reports crossing 1 MiB unsent (the node
//! stops serving that peer) and draining below 256 KiB (it resumes).
#![forbid(unsafe_code)]

pub mod get;
pub mod http;
pub mod ice;
pub mod storage;
pub mod tls;

mod driver;
mod fault;
mod rtc;
mod stats;
mod tracker_socket;

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use swarm::PeerId;
use swarm::announce::AnnounceConfig;
use swarm::engine::{Config as EngineConfig, SpecError};
use swarm::magnet::Magnet;
use swarm::metainfo::{Metainfo, MetainfoError};
use swarm::node::{Node, NodeConfig, Source};
use swarm::time::Time;
use tokio::sync::watch;
use tokio::task::JoinHandle;

pub use http::{HttpClient, HttpError};
pub use rtc::{IceServer, RtcConfig, RtcError};
pub use stats::PeerStats;
pub use storage::{Storage, StorageError};

use driver::{Driver, Files, Inbox, Report, Running};

/// How a native peer joins a swarm.
#[derive(Debug, Clone)]
pub struct PeerOptions {
    /// WebSocket tracker URLs (`ws://…/announce`, `wss://…`); none: the
    /// torrent's (or the magnet's) own.
    pub trackers: Vec<String>,
    /// How WebRTC connections are made.
    pub rtc: RtcConfig,
    /// Connections at most, counting ones still being set up.
    pub max_peers: usize,
    /// Use the torrent's web seed (`url-list`, a magnet's `ws`).
    pub web_seed: bool,
    /// Engine tunables.
    pub engine: EngineConfig,
    /// Tracker client tunables.
    pub announce: AnnounceConfig,
    /// Fault injection for the end-to-end suite: flip every byte of every
    /// block served, so honest peers must detect and ban this one.
    pub corrupt_uploads: bool,
    /// Whom `wss://` trackers and `https://` web seeds must prove to be
    /// ([`tls::client_config`]); `None`: the webpki roots.
    pub tls: Option<Arc<rustls::ClientConfig>>,
    /// Take the ICE servers from the first tracker's server (`/api/ice`,
    /// [`ice`]), renewed before its TURN credentials expire, instead of
    /// `rtc.ice_servers`. Connections made before the first answer use
    /// `rtc.ice_servers`.
    pub ice_from_tracker: bool,
    /// Fetch only these files of a multi-file torrent (indexes into its
    /// file list: `get --file N`), their boundary pieces included; `None`:
    /// every file. Pieces had are served either way. Only these files are
    /// written (`Storage::writing_only`): a boundary piece's bytes of a
    /// neighbour stay in memory.
    pub files: Option<Vec<usize>>,
}

impl Default for PeerOptions {
    fn default() -> Self {
        PeerOptions {
            trackers: Vec::new(),
            rtc: RtcConfig::default(),
            max_peers: 40,
            web_seed: true,
            // The files on disk are this peer's store; pieces stay in memory
            // rather than be evicted and rejected.
            engine: EngineConfig {
                memory_limit: u64::MAX,
                ..EngineConfig::default()
            },
            announce: AnnounceConfig::default(),
            corrupt_uploads: false,
            tls: None,
            ice_from_tracker: false,
            files: None,
        }
    }
}

impl PeerOptions {
    /// The node's configuration; every other tunable is the node's default,
    /// the browser's too.
    pub fn node_config(&self) -> NodeConfig {
        let mut config = NodeConfig {
            engine: self.engine.clone(),
            announce: self.announce.clone(),
            max_connections: self.max_peers,
            web_seed: self.web_seed,
            ..NodeConfig::default()
        };
        config.fetch.max_peers = self.engine.max_peers;
        config.fetch.client_name = self.engine.client_name.clone();
        config
    }

    /// The TLS client configuration to use: the one given, or the
    /// webpki roots.
    pub fn tls_config(&self) -> Result<Arc<rustls::ClientConfig>, NativeError> {
        match &self.tls {
            Some(config) => Ok(Arc::clone(config)),
            None => Ok(tls::client_config(None)?),
        }
    }

    /// These trackers, or `own` if none were given.
    fn trackers_or(&self, own: Vec<String>) -> Result<Vec<String>, NativeError> {
        let trackers = if self.trackers.is_empty() {
            own
        } else {
            self.trackers.clone()
        };
        if trackers.is_empty() {
            return Err(NativeError::NoTracker);
        }
        Ok(trackers)
    }
}

/// Why a native peer could not start.
#[derive(Debug, thiserror::Error)]
pub enum NativeError {
    /// The torrent's files could not be opened or read.
    #[error(transparent)]
    Storage(#[from] StorageError),
    /// The torrent is inconsistent (piece count against length).
    #[error("torrent cannot be run: {0}")]
    Spec(#[from] SpecError),
    /// The `.torrent` does not parse.
    #[error("bad torrent: {0}")]
    Metainfo(#[from] MetainfoError),
    /// The `.torrent` could not be fetched.
    #[error(transparent)]
    Http(#[from] HttpError),
    /// The `.torrent` file could not be read.
    #[error("cannot read {path}: {source}")]
    Read {
        /// The file.
        path: String,
        /// The OS error.
        source: std::io::Error,
    },
    /// No tracker to announce to.
    #[error("no tracker: give --tracker or use a torrent that names one")]
    NoTracker,
    /// The TLS trust could not be set up (`--ca-file`).
    #[error(transparent)]
    Trust(#[from] tls::TrustError),
    /// A background task panicked or was cancelled.
    #[error("task failed: {0}")]
    Task(String),
    /// A file selected (`--file`) is not in the torrent.
    #[error("{0}")]
    File(#[from] swarm::node::FileError),
    /// Files were selected for a magnet whose file list is not known.
    #[error("--file needs the torrent's file list: give the .torrent (or a magnet with xs)")]
    FilesOfMagnet,
}

/// One torrent joined over WebRTC. Dropping it leaves the swarm too, without
/// waiting for the goodbyes to go out; [`NativePeer::stop`] waits.
#[derive(Debug)]
pub struct NativePeer {
    inbox: Inbox,
    stats: watch::Receiver<PeerStats>,
    task: JoinHandle<()>,
}

impl NativePeer {
    /// Opens the torrent's files at `target` (the file of a single-file
    /// torrent, the directory of a multi-file one), keeps every piece found
    /// there that verifies, and joins the swarm: a complete copy seeds, an
    /// incomplete one downloads the rest into the same files.
    pub async fn start(
        meta: &Metainfo,
        target: &Path,
        options: PeerOptions,
    ) -> Result<NativePeer, NativeError> {
        let trackers = options.trackers_or(meta.trackers())?;
        let ice_url = trackers.first().and_then(|t| ice::url_for_tracker(t));
        let tls = options.tls_config()?;
        let mut storage = Storage::new(&meta.info, target)?;
        if let Some(files) = &options.files {
            storage = storage.writing_only(files);
        }
        let start = Instant::now();
        let mut node = Node::new(
            options.node_config(),
            Source::Torrent(Box::new(meta.clone())),
            trackers,
            random_peer_id(),
            fastrand::u64(..),
            Time::from_millis(0),
        )?;
        if let Some(files) = &options.files {
            node.select_files(Time::from_millis(0), files)?;
        }
        let (node, storage, imported) = tokio::task::spawn_blocking(move || {
            import(node, &storage).map(|(node, imported)| (node, storage, imported))
        })
        .await
        .map_err(|e| NativeError::Task(e.to_string()))??;
        let figures = PeerStats {
            imported_pieces: imported,
            target: Some(target.to_path_buf()),
            ..PeerStats::default()
        };
        let files = Files::Open(storage);
        Ok(Self::run(node, start, files, figures, options, tls, ice_url).await)
    }

    /// Joins the swarm of a bare magnet: the metadata comes from peers over
    /// ut_metadata (BEP 9), then the same connections carry the pieces,
    /// written under `out_dir` by the torrent's name. The magnet's `ws` web
    /// seeds are used once the metadata is known (if `options.web_seed`).
    pub async fn start_magnet(
        magnet: &Magnet,
        out_dir: &Path,
        options: PeerOptions,
    ) -> Result<NativePeer, NativeError> {
        if options.files.is_some() {
            return Err(NativeError::FilesOfMagnet);
        }
        let trackers = options.trackers_or(magnet.trackers.clone())?;
        let ice_url = trackers.first().and_then(|t| ice::url_for_tracker(t));
        let tls = options.tls_config()?;
        let start = Instant::now();
        let node = Node::new(
            options.node_config(),
            Source::Magnet(magnet.clone()),
            trackers,
            random_peer_id(),
            fastrand::u64(..),
            Time::from_millis(0),
        )?;
        let files = Files::Pending(out_dir.to_path_buf());
        Ok(Self::run(
            node,
            start,
            files,
            PeerStats::default(),
            options,
            tls,
            ice_url,
        )
        .await)
    }

    async fn run(
        node: Node,
        start: Instant,
        files: Files,
        figures: PeerStats,
        mut options: PeerOptions,
        tls: Arc<rustls::ClientConfig>,
        ice_url: Option<String>,
    ) -> NativePeer {
        // The first answer before any connection is made (a relay-only
        // swarm must never see a direct candidate); later ones as they come.
        let mut renew = None;
        if let (true, Some(url)) = (options.ice_from_tracker, &ice_url) {
            match tokio::time::timeout(Duration::from_secs(10), ice::fetch(url, &tls)).await {
                Ok(Ok(answer)) => {
                    options.rtc.ice_servers = answer.servers;
                    options.rtc.relay_only = answer.relay_only;
                    renew = answer.ttl.map(ice::renew_after);
                }
                Ok(Err(e)) => {
                    tracing::warn!(%url, %e, "cannot get ICE servers from the tracker's server");
                    renew = Some(Duration::from_secs(30));
                }
                Err(_) => {
                    tracing::warn!(%url, "the tracker's server did not say its ICE servers in 10 s");
                    renew = Some(Duration::from_secs(30));
                }
            }
        }
        let Running { inbox, stats, task } = Driver::spawn(
            node,
            start,
            files,
            figures,
            options.rtc,
            options.corrupt_uploads,
            Arc::clone(&tls),
        );
        if let (Some(first_wait), Some(url)) = (renew, ice_url) {
            tokio::spawn(keep_ice(url, tls, inbox.clone(), first_wait));
        }
        NativePeer { inbox, stats, task }
    }

    /// What it has done so far.
    pub fn stats(&self) -> PeerStats {
        self.stats.borrow().clone()
    }

    /// A receiver that sees every change of [`NativePeer::stats`].
    pub fn watch(&self) -> watch::Receiver<PeerStats> {
        self.stats.clone()
    }

    /// Waits until every piece is verified and written.
    pub async fn wait_done(&self) {
        let mut stats = self.stats.clone();
        // An error here means the driver ended; nothing more will come.
        let _ = stats.wait_for(|s| s.done).await;
    }

    /// ICE servers for the connections made from now on (fresh TURN
    /// credentials: [`ice::fetch`]).
    pub fn set_ice_servers(&self, servers: Vec<IceServer>, relay_only: bool) {
        let _ = self.inbox.send(Report::Ice {
            servers,
            relay_only,
        });
    }

    /// Leaves the swarm: `stopped` to the trackers, every connection closed.
    pub async fn stop(mut self) {
        let _ = self.inbox.send(Report::Stop);
        if tokio::time::timeout(Duration::from_secs(5), &mut self.task)
            .await
            .is_err()
        {
            tracing::warn!("native peer did not stop within 5 s");
        }
        // Let the tracker sockets send `stopped` and their close frames.
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

impl Drop for NativePeer {
    fn drop(&mut self) {
        // The driver holds inbox senders of its own, so it must be told.
        let _ = self.inbox.send(Report::Stop);
    }
}

/// Asks the tracker's server for its ICE servers and hands them to the
/// driver, again before their credentials expire (every 30 s while asking
/// fails), until the driver is gone.
async fn keep_ice(url: String, tls: Arc<rustls::ClientConfig>, inbox: Inbox, first_wait: Duration) {
    tokio::time::sleep(first_wait).await;
    loop {
        if inbox.is_closed() {
            return;
        }
        let wait = match ice::fetch(&url, &tls).await {
            Ok(answer) => {
                let report = Report::Ice {
                    servers: answer.servers,
                    relay_only: answer.relay_only,
                };
                if inbox.send(report).is_err() {
                    return;
                }
                match answer.ttl {
                    Some(ttl) => ice::renew_after(ttl),
                    None => return,
                }
            }
            Err(e) => {
                tracing::warn!(%url, %e, "cannot get ICE servers from the tracker's server");
                Duration::from_secs(30)
            }
        };
        tokio::time::sleep(wait).await;
    }
}

/// Reads a `.torrent` from a path or an `http://` or `https://` URL
/// (trusting `tls`).
pub async fn load_torrent(
    source: &str,
    tls: &Arc<rustls::ClientConfig>,
) -> Result<Metainfo, NativeError> {
    let bytes = if source.starts_with("http://") || source.starts_with("https://") {
        HttpClient::new(Arc::clone(tls))
            .get(source, http::MAX_TORRENT_BYTES)
            .await?
    } else {
        tokio::fs::read(source)
            .await
            .map_err(|e| NativeError::Read {
                path: source.to_owned(),
                source: e,
            })?
    };
    Ok(Metainfo::from_bytes(&bytes)?)
}

fn random_peer_id() -> PeerId {
    PeerId::generate(std::array::from_fn(|_| fastrand::u8(..)))
}

/// Hands the node every piece on disk that verifies; returns how many. The
/// node reports them verified like any other, with the origin `Imported`,
/// which is how the driver knows not to write them back.
fn import(mut node: Node, storage: &Storage) -> Result<(Node, u32), NativeError> {
    let mut imported = 0;
    for piece in 0..node.stats().engine.total_pieces {
        if let Some(data) = storage.read_piece(piece)?
            && node.import_piece(piece, &data)
        {
            imported += 1;
        }
    }
    Ok((node, imported))
}
