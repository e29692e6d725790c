//! The native WebRTC peer: the `swarm` engine driven over `webrtc` data
//! channels, so a machine can seed (or fetch) a track with no browser.
//!
//! It speaks what the browser peer speaks — the WebTorrent tracker protocol
//! through the shared `swarm::announce` client, BitTorrent over one ordered,
//! reliable data channel per peer — so native peers, browsers and other
//! WebTorrent clients mix in one swarm.
//!
//! Anatomy (one [`NativePeer`] per torrent):
//! - a **driver** task owns the `Torrent` engine, the `Announcer` and the
//!   table of connections; everything else reports to its inbox;
//! - a **tracker socket** task per tracker carries JSON text frames;
//! - per remote peer, a set-up task makes the `RTCPeerConnection` and its
//!   complete (non-trickle) offer or answer, then a **reader** task turns
//!   data-channel events into inbox reports and a **writer** task sends the
//!   engine's bytes in order, in 16 KiB messages;
//! - web-seed range fetches run as short tasks of their own.
//!
//! Back-pressure: each channel reports crossing 1 MiB unsent (the engine
//! stops serving that peer) and draining below 256 KiB (it resumes).

pub mod commands;
pub mod http;
pub mod storage;

mod catalog_seed;
mod driver;
mod fault;
mod rtc;
mod tracker_socket;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use swarm::PeerId;
use swarm::announce::{AnnounceConfig, Announcer};
use swarm::engine::{Config as EngineConfig, SpecError, Torrent, TorrentSpec};
use swarm::join::{FetchConfig, Joining};
use swarm::magnet::Magnet;
use swarm::metainfo::{Metainfo, MetainfoError};
use swarm::time::Time;
use tokio::sync::{mpsc, watch};
use tokio::task::JoinHandle;

pub use catalog_seed::seed_catalog;
pub use http::{HttpClient, HttpError};
pub use rtc::{IceServer, RtcConfig, RtcError};
pub use storage::{Storage, StorageError};

use driver::{Driver, Input};

/// How a native peer joins a swarm.
#[derive(Debug, Clone)]
pub struct PeerOptions {
    /// WebSocket tracker URLs (`ws://…/announce`, `wss://…`).
    pub trackers: Vec<String>,
    /// How WebRTC connections are made.
    pub rtc: RtcConfig,
    /// Connections at most, counting ones still being set up.
    pub max_peers: usize,
    /// Use the torrent's web seed (`url-list`) when it has one.
    pub web_seed: bool,
    /// Engine tunables.
    pub engine: EngineConfig,
    /// Tracker client tunables.
    pub announce: AnnounceConfig,
    /// Fault injection for the end-to-end suite: flip every byte of every
    /// block served, so honest peers must detect and ban this one.
    pub corrupt_uploads: bool,
}

impl Default for PeerOptions {
    fn default() -> Self {
        PeerOptions {
            trackers: Vec::new(),
            rtc: RtcConfig::default(),
            max_peers: 40,
            web_seed: true,
            // The files on disk are this peer's store; pieces stay in memory
            // as before rather than be evicted and rejected.
            engine: EngineConfig {
                memory_limit: u64::MAX,
                ..EngineConfig::default()
            },
            announce: AnnounceConfig::default(),
            corrupt_uploads: false,
        }
    }
}

/// What a native peer has done so far.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PeerStats {
    /// Our peer id.
    pub peer_id: Option<PeerId>,
    /// Pieces verified (imported from disk or downloaded).
    pub verified_pieces: u32,
    /// Pieces in the torrent.
    pub total_pieces: u32,
    /// Pieces found verified on disk at start.
    pub imported_pieces: u32,
    /// Useful bytes received from peers.
    pub from_peers: u64,
    /// Useful bytes received from the web seed.
    pub from_web_seed: u64,
    /// Bytes received that were not needed.
    pub wasted: u64,
    /// Bytes served to peers.
    pub uploaded: u64,
    /// Useful bytes received, by the sender's peer id.
    pub received_from: BTreeMap<PeerId, u64>,
    /// Peers banned for sending corrupt data.
    pub banned: Vec<PeerId>,
    /// Peers past the handshake.
    pub peers: usize,
    /// Data channels open.
    pub connections: usize,
    /// Every piece is verified and on disk.
    pub done: bool,
    /// The last error writing a verified piece, if any.
    pub storage_error: Option<String>,
    /// Where the files are; for a magnet, known once the metadata is.
    pub target: Option<PathBuf>,
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
    /// A background task panicked or was cancelled.
    #[error("task failed: {0}")]
    Task(String),
}

/// One torrent joined over WebRTC. Dropping it leaves the swarm too, without
/// waiting for the goodbyes to go out; [`NativePeer::stop`] waits.
#[derive(Debug)]
pub struct NativePeer {
    inbox: mpsc::UnboundedSender<Input>,
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
        let mut trackers = options.trackers.clone();
        if trackers.is_empty() {
            trackers = meta.trackers();
        }
        if trackers.is_empty() {
            return Err(NativeError::NoTracker);
        }
        let storage = Storage::new(&meta.info, target)?;
        let web_seed = options
            .web_seed
            .then(|| meta.url_list.first().cloned())
            .flatten();
        let mut spec = TorrentSpec::from_metainfo(meta);
        spec.web_seed = web_seed.is_some();
        let peer_id = PeerId::generate(std::array::from_fn(|_| fastrand::u8(..)));
        let start = Instant::now();
        let engine = Torrent::new(
            options.engine.clone(),
            spec,
            peer_id,
            fastrand::u64(..),
            Time::from_millis(0),
        )?;
        let (engine, imported) = {
            let storage = storage.clone();
            tokio::task::spawn_blocking(move || import(engine, &storage))
                .await
                .map_err(|e| NativeError::Task(e.to_string()))??
        };
        let announcer = Announcer::new(
            options.announce.clone(),
            meta.info_hash,
            peer_id,
            trackers,
            fastrand::u64(..),
            Time::from_millis(start.elapsed().as_millis() as u64),
        );
        let (stats_tx, stats) = watch::channel(PeerStats {
            peer_id: Some(peer_id),
            imported_pieces: imported,
            done: engine.is_complete(),
            target: Some(target.to_path_buf()),
            ..PeerStats::default()
        });
        let (inbox, rx) = mpsc::unbounded_channel();
        let driver = Driver::new(
            Joining::from_torrent(engine),
            announcer,
            Some(storage),
            Some(Arc::new(meta.info.clone())),
            web_seed,
            Arc::new(options.rtc.clone()),
            inbox.clone(),
            stats_tx,
            options.max_peers,
            start,
        )
        .corrupting_uploads(options.corrupt_uploads);
        let task = tokio::spawn(driver.run(rx));
        Ok(NativePeer { inbox, stats, task })
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
        let mut trackers = options.trackers.clone();
        if trackers.is_empty() {
            trackers = magnet.trackers.clone();
        }
        if trackers.is_empty() {
            return Err(NativeError::NoTracker);
        }
        let peer_id = PeerId::generate(std::array::from_fn(|_| fastrand::u8(..)));
        let start = Instant::now();
        let fetch = FetchConfig {
            max_peers: options.engine.max_peers,
            client_name: options.engine.client_name.clone(),
            ..FetchConfig::default()
        };
        let engine = Joining::from_magnet(
            options.engine.clone(),
            fetch,
            magnet.clone(),
            peer_id,
            fastrand::u64(..),
            Time::from_millis(0),
        );
        let announcer = Announcer::new(
            options.announce.clone(),
            magnet.info_hash,
            peer_id,
            trackers,
            fastrand::u64(..),
            Time::from_millis(start.elapsed().as_millis() as u64),
        );
        let (stats_tx, stats) = watch::channel(PeerStats {
            peer_id: Some(peer_id),
            ..PeerStats::default()
        });
        let (inbox, rx) = mpsc::unbounded_channel();
        let driver = Driver::new(
            engine,
            announcer,
            None,
            None,
            None,
            Arc::new(options.rtc.clone()),
            inbox.clone(),
            stats_tx,
            options.max_peers,
            start,
        )
        .magnet_target(out_dir.to_path_buf(), options.web_seed)
        .corrupting_uploads(options.corrupt_uploads);
        let task = tokio::spawn(driver.run(rx));
        Ok(NativePeer { inbox, stats, task })
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

    /// Leaves the swarm: `stopped` to the trackers, every connection closed.
    pub async fn stop(mut self) {
        let _ = self.inbox.send(Input::Stop);
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
        let _ = self.inbox.send(Input::Stop);
    }
}

/// Reads a `.torrent` from a path or an `http://` URL.
pub async fn load_torrent(source: &str) -> Result<Metainfo, NativeError> {
    let bytes = if source.starts_with("http://") || source.starts_with("https://") {
        HttpClient::default()
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

/// Hands the engine every piece on disk that verifies; returns how many.
fn import(mut engine: Torrent, storage: &Storage) -> Result<(Torrent, u32), NativeError> {
    let mut imported = 0;
    let pieces = engine.stats().total_pieces;
    for piece in 0..pieces {
        if let Some(data) = storage.read_piece(piece)? {
            if engine.import_piece(piece, &data) {
                imported += 1;
            }
        }
    }
    // Imported pieces are reported as verified: they are on disk already,
    // so those events must not be written back. No peer exists yet, so
    // events are all there is to drain.
    while !matches!(engine.poll(), swarm::engine::Output::Timeout(_)) {}
    Ok((engine, imported))
}
