//! The `get` command (`signal-server get`): fetch a torrent by `.torrent`
//! path, URL or magnet, verify, then seed. Flags are parsed by the binary;
//! the work is here so tests and other front ends can run it too.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use swarm::magnet::{Magnet, MagnetError};
use swarm::metainfo::Metainfo;

use crate::{NativeError, NativePeer, PeerOptions, PeerStats, load_torrent};

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

/// Why `get` failed.
#[derive(Debug, thiserror::Error)]
pub enum GetError {
    /// The peer could not start.
    #[error(transparent)]
    Native(#[from] NativeError),
    /// The magnet link does not parse.
    #[error("bad magnet link: {0}")]
    Magnet(#[from] MagnetError),
}

/// Downloads a torrent into `out`, then seeds until Ctrl-C (or exits when
/// `exit_when_done`).
pub async fn get(command: GetCommand) -> Result<PeerStats, GetError> {
    let tls = command.options.tls_config()?;
    let peer = if command.torrent.starts_with("magnet:") {
        let magnet = Magnet::parse(&command.torrent)?;
        match torrent_from_exact_source(&magnet, &tls).await {
            Some(meta) => start_torrent(&meta, &command).await?,
            None => {
                tracing::info!(info_hash = %magnet.info_hash, "fetching metadata from peers");
                NativePeer::start_magnet(&magnet, &command.out, command.options.clone()).await?
            }
        }
    } else {
        let meta = load_torrent(&command.torrent, &tls).await?;
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
                    log_progress(&s);
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
async fn torrent_from_exact_source(
    magnet: &Magnet,
    tls: &Arc<rustls::ClientConfig>,
) -> Option<Metainfo> {
    for url in &magnet.exact_sources {
        let loaded = tokio::time::timeout(Duration::from_secs(10), load_torrent(url, tls)).await;
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

fn log_progress(s: &PeerStats) {
    let rate = s.download_rate as f64 / (1024.0 * 1024.0);
    tracing::info!(
        pieces = format!("{}/{}", s.verified_pieces, s.total_pieces),
        from_peers = s.from_peers,
        from_web_seed = s.from_web_seed,
        peers = s.peers,
        rate = format!("{rate:.2} MiB/s"),
        "downloading"
    );
}
