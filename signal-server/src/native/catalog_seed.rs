//! `serve --webrtc-seed`: the server seeds its own catalog over WebRTC, so
//! every swarm has one WebRTC seed before the first fan arrives.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use percent_encoding::percent_decode_str;
use swarm::metainfo::Metainfo;

use super::{NativePeer, PeerOptions, RtcConfig};
use crate::catalog::{Catalog, Track};

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
    let relative = relative_media_path(&track.media_url)
        .ok_or_else(|| format!("no media path in {}", track.media_url))?;
    let options = PeerOptions {
        trackers: vec![tracker.to_owned()],
        rtc: rtc.clone(),
        // Our own disk is the source: never fetch from our own web seed.
        web_seed: false,
        ..PeerOptions::default()
    };
    let peer = NativePeer::start(&meta, &media_dir.join(relative), options)
        .await
        .map_err(|e| e.to_string())?;
    if !peer.stats().done {
        return Err("the file on disk does not match its torrent".to_owned());
    }
    Ok(peer)
}

/// `…/media/a%20b/c.mp3` → `a b/c.mp3`, refusing anything that climbs out.
fn relative_media_path(media_url: &str) -> Option<PathBuf> {
    let (_, encoded) = media_url.split_once("/media/")?;
    let decoded = percent_decode_str(encoded).decode_utf8().ok()?;
    let path = PathBuf::from(decoded.as_ref());
    path.components()
        .all(|c| matches!(c, std::path::Component::Normal(_)))
        .then_some(path)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn media_urls_map_back_to_library_paths() {
        assert_eq!(
            relative_media_path("http://h:1/media/album/a%20b.mp3"),
            Some(PathBuf::from("album/a b.mp3"))
        );
        assert_eq!(relative_media_path("http://h:1/media/..%2Fetc"), None);
        assert_eq!(relative_media_path("http://h:1/t/x.torrent"), None);
    }
}
