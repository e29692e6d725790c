//! The `seed` and `get` subcommands: flags are parsed in `main.rs`, the
//! work is here so tests and other front ends can run it too.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

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

/// `signal-server get TORRENT --out DIR`.
#[derive(Debug, Clone)]
pub struct GetCommand {
    /// A `.torrent` path or `http://` URL.
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
    /// Magnet links need metadata exchange (BEP 9), not wired up yet.
    #[error("magnet links are not supported yet: give a .torrent path or URL")]
    Magnet,
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
    if command.torrent.starts_with("magnet:") {
        return Err(CommandError::Magnet);
    }
    let meta = load_torrent(&command.torrent).await?;
    let target = command.out.join(&meta.info.name);
    let peer = NativePeer::start(&meta, &target, command.options.clone()).await?;
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
