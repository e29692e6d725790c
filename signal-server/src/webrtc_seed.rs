//! The server's uses of the native WebRTC peer (`fanswarm-peer`, the
//! `native-peer` feature): `serve --webrtc-seed` seeds the published
//! catalog, so every swarm has one WebRTC seed before the first fan
//! arrives, and `seed PATH…` seeds files, making their torrents with the
//! publisher first. (`get` needs nothing of the server: it is
//! `fanswarm_peer::get`.)

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use fanswarm_peer::{NativeError, NativePeer, PeerOptions, RtcConfig, load_torrent};
use swarm::metainfo::Metainfo;

use crate::catalog::{Catalog, Track};
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

/// Why `seed` failed.
#[derive(Debug, thiserror::Error)]
pub enum SeedError {
    /// The peer could not start.
    #[error(transparent)]
    Native(#[from] NativeError),
    /// A torrent could not be made for a data file.
    #[error(transparent)]
    Publish(#[from] PublishError),
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
pub async fn seed(command: SeedCommand) -> Result<(), SeedError> {
    let mut peers = Vec::new();
    for path in &command.paths {
        let (meta, target) = if path.extension().is_some_and(|e| e == "torrent") {
            let tls = command.options.tls_config()?;
            let meta = load_torrent(&path.to_string_lossy(), &tls).await?;
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
            return Err(SeedError::Incomplete(
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

/// Starts a seeding [`NativePeer`] per published track, announcing to the
/// tracker of this very server at `local`, and keeps them running for as
/// long as the process lives. Tracks that cannot be seeded are logged.
pub async fn seed_catalog(catalog: Catalog, media_dir: PathBuf, local: SocketAddr, rtc: RtcConfig) {
    let host = if local.ip().is_unspecified() {
        SocketAddr::from(([127, 0, 0, 1], local.port()))
    } else {
        local
    };
    let tracker = format!("ws://{host}/announce");
    let mut peers = Vec::new();
    for track in catalog.tracks() {
        match seed_track(track, &media_dir, &tracker, &rtc).await {
            Ok(peer) => {
                tracing::info!(track = %track.name, info_hash = %track.info_hash, "seeding over WebRTC");
                peers.push(peer);
            }
            Err(e) => tracing::warn!(track = %track.name, %e, "cannot seed over WebRTC"),
        }
    }
    // The peers run on their own tasks; holding them keeps their inboxes open.
    let _peers = peers;
    std::future::pending::<()>().await;
}

async fn seed_track(
    track: &Track,
    media_dir: &Path,
    tracker: &str,
    rtc: &RtcConfig,
) -> Result<NativePeer, String> {
    let meta = Metainfo::from_bytes(&track.torrent).map_err(|e| e.to_string())?;
    // An album's files are in one folder, under the names the torrent
    // gives them: that folder is the multi-file torrent's storage.
    let target = match track.files.as_deref() {
        Some([first, ..]) => Path::new(&first.path)
            .parent()
            .map(|folder| media_dir.join(folder)),
        _ => (!track.path.is_empty()).then(|| media_dir.join(&track.path)),
    };
    let Some(target) = target else {
        return Err("not a file of the library".to_owned());
    };
    let options = PeerOptions {
        trackers: vec![tracker.to_owned()],
        rtc: rtc.clone(),
        // Our own disk is the source: never fetch from our own web seed.
        web_seed: false,
        // The STUN/TURN servers this server gives fans (`/api/ice`, renewed).
        ice_from_tracker: true,
        ..PeerOptions::default()
    };
    let peer = NativePeer::start(&meta, &target, options)
        .await
        .map_err(|e| e.to_string())?;
    if !peer.stats().done {
        return Err("the file on disk does not match its torrent".to_owned());
    }
    Ok(peer)
}

async fn make_torrent(path: &Path, command: &SeedCommand) -> Result<Metainfo, SeedError> {
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
            .map_err(|source| SeedError::Write {
                path: out.clone(),
                source,
            })?;
        tracing::info!(torrent = %out.display(), "wrote torrent");
    }
    Ok(meta)
}
