//! The `seed` and `get` subcommands: flags are parsed in `main.rs`, the
//! work is here so tests and other front ends can run it too.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use swarm::magnet::{Magnet, MagnetError};
use swarm::metainfo::Metainfo;

use super::{NativeError, NativePeer, PeerOptions, PeerStats, load_torrent};
use crate::publish::{self, PublishError, TorrentOptions};

/// `signal-server seed PATH…`.
#[derive(Debug, Clone)]
pub struct SeedCommand {
    /// Data files to seed (a torrent is made for each), or `.torrent` files
    /// whose data is found in `data_dir` (default: beside the `.torrent`).
    pub paths: Vec<PathBuf>,
    /// Where the data of given `.torrent` files lives.
    pub data_dir: Option<PathBuf>,
    /// Where to write the `.torrent` made for each data file, if anywhere.
    pub torrent_out: Option<PathBuf>,
    /// How to join the swarms.
    pub options: PeerOptions,
}

/// `signal-server get TORRENT|MAGNET --out DIR`.
#[derive(Debug, Clone)]
pub struct GetCommand {
    /// A `.torrent` path, an `http://` URL or a `magnet:?` link.
    pub torrent: String,
    /// Directory the files are written to.
    pub out: PathBuf,
    /// Leave the swarm once the download is complete instead of seeding.
    pub exit_when_done: bool,
    /// How to join the swarm.
    pub options: PeerOptions,
}

/// Why a subcommand failed.
#[derive(Debug, thiserror::Error)]
pub enum CommandError {
    /// The peer could not start.
    #[error(transparent)]
    Native(#[from] NativeError),
    /// A torrent could not be made for a data file.
    #[error(transparent)]
    Publish(#[from] PublishError),
    /// The magnet link does not parse.
    #[error("bad magnet link: {0}")]
    Magnet(#[from] MagnetError),
    /// A `.torrent` could not be written.
    #[error("cannot write {path}: {source}")]
    Write {
        /// The file.
        path: PathBuf,
        /// The OS error.
        source: std::io::Error,
    },
    /// The data on disk does not match the torrent.
    #[error("{0}: data on disk does not match the torrent ({1} of {2} pieces verify)")]
    Incomplete(PathBuf, u32, u32),
}

/// Seeds every path until Ctrl-C.
pub async fn seed(command: SeedCommand) -> Result<(), CommandError> {
    let mut peers = Vec::new();
    for path in &command.paths {
        let (meta, target) = if path.extension().is_some_and(|e| e == "torrent") {
            let meta = load_torrent(&path.to_string_lossy()).await?;
            let dir = match &command.data_dir {
                Some(dir) => dir.clone(),
                None => path.parent().map(Path::to_path_buf).unwrap_or_default(),
            };
            let target = dir.join(&meta.info.name);
            (meta, target)
        } else {
            (make_torrent(path, &command).await?, path.clone())
        };
        let peer = NativePeer::start(&meta, &target, command.options.clone()).await?;
        let stats = peer.stats();
        if !stats.done {
            peer.stop().await;
            return Err(CommandError::Incomplete(
                target,
                stats.imported_pieces,
                stats.total_pieces,
            ));
        }
        tracing::info!(
            file = %target.display(),
            info_hash = %meta.info_hash,
            magnet = %meta.magnet(),
            "seeding over WebRTC"
        );
        peers.push(peer);
    }
    let _ = tokio::signal::ctrl_c().await;
    for peer in peers {
        peer.stop().await;
    }
    Ok(())
}

/// Downloads a torrent into `out`, then seeds until Ctrl-C (or exits when
/// `exit_when_done`).
pub async fn get(command: GetCommand) -> Result<PeerStats, CommandError> {
    let peer = if command.torrent.starts_with("magnet:") {
        let magnet = Magnet::parse(&command.torrent)?;
        match torrent_from_exact_source(&magnet).await {
            Some(meta) => start_torrent(&meta, &command).await?,
            None => {
                tracing::info!(info_hash = %magnet.info_hash, "fetching metadata from peers");
                NativePeer::start_magnet(&magnet, &command.out, command.options.clone()).await?
            }
        }
    } else {
        let meta = load_torrent(&command.torrent).await?;
        start_torrent(&meta, &command).await?
    };
    let started = Instant::now();
    let mut progress = tokio::time::interval(Duration::from_secs(2));
    let ctrl_c = tokio::signal::ctrl_c();
    tokio::pin!(ctrl_c);
    let mut announced_done = false;
    loop {
        tokio::select! {
            _ = &mut ctrl_c => break,
            _ = progress.tick() => {
                let s = peer.stats();
                if !s.done {
                    log_progress(&s, started.elapsed());
                }
            }
            _ = peer.wait_done(), if !announced_done => {
                announced_done = true;
                let s = peer.stats();
                let secs = started.elapsed().as_secs_f64();
                let target = s.target.clone().unwrap_or_default();
                tracing::info!(
                    file = %target.display(),
                    seconds = format!("{secs:.2}"),
                    from_peers = s.from_peers,
                    from_web_seed = s.from_web_seed,
                    "download complete and verified"
                );
                if command.exit_when_done {
                    break;
                }
            }
        }
    }
    let stats = peer.stats();
    peer.stop().await;
    Ok(stats)
}

async fn start_torrent(meta: &Metainfo, command: &GetCommand) -> Result<NativePeer, NativeError> {
    let target = command.out.join(&meta.info.name);
    NativePeer::start(meta, &target, command.options.clone()).await
}

/// The `.torrent` named by the magnet's `xs`, if one loads and is the
/// magnet's swarm: a plain HTTP fetch is faster than asking peers, and
/// works with no peer at all. Anything else falls back to ut_metadata.
async fn torrent_from_exact_source(magnet: &Magnet) -> Option<Metainfo> {
    for url in &magnet.exact_sources {
        let loaded = tokio::time::timeout(Duration::from_secs(10), load_torrent(url)).await;
        match loaded {
            Ok(Ok(meta)) if meta.info_hash == magnet.info_hash => return Some(meta),
            Ok(Ok(meta)) => {
                tracing::warn!(%url, found = %meta.info_hash, "xs torrent is another swarm")
            }
            Ok(Err(e)) => tracing::warn!(%url, %e, "xs torrent did not load"),
            Err(_) => tracing::warn!(%url, "xs torrent timed out"),
        }
    }
    None
}

async fn make_torrent(path: &Path, command: &SeedCommand) -> Result<Metainfo, CommandError> {
    let options = TorrentOptions {
        trackers: command.options.trackers.clone(),
        web_seeds: Vec::new(),
    };
    let file = path.to_path_buf();
    let meta = tokio::task::spawn_blocking(move || publish::make_torrent(&file, &options, |_| {}))
        .await
        .map_err(|e| PublishError::Task(e.to_string()))??;
    if let Some(dir) = &command.torrent_out {
        let out = dir.join(format!("{}.torrent", meta.info.name));
        std::fs::create_dir_all(dir)
            .and_then(|_| std::fs::write(&out, meta.to_bytes()))
            .map_err(|source| CommandError::Write {
                path: out.clone(),
                source,
            })?;
        tracing::info!(torrent = %out.display(), "wrote torrent");
    }
    Ok(meta)
}

fn log_progress(s: &PeerStats, elapsed: Duration) {
    let received = s.from_peers + s.from_web_seed;
    let rate = received as f64 / elapsed.as_secs_f64().max(0.001) / (1024.0 * 1024.0);
    tracing::info!(
        pieces = format!("{}/{}", s.verified_pieces, s.total_pieces),
        from_peers = s.from_peers,
        from_web_seed = s.from_web_seed,
        peers = s.peers,
        rate = format!("{rate:.2} MiB/s"),
        "downloading"
    );
}
