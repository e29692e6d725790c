//! Native WebRTC peers (`fanswarm-peer`) joining a test server's
//! swarm from inside the namespace.

use std::time::Duration;

use anyhow::Context;

use fanswarm_peer::{NativePeer, PeerOptions, RtcConfig};
use swarm::metainfo::Metainfo;

use crate::netns;
use crate::server::TestServer;

/// How a test seeder behaves.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Behaviour {
    /// Serves the track as it is.
    Honest,
    /// Flips every byte of every block it serves (`corrupt_uploads`).
    Corrupting,
}

/// A native peer seeding the server's track from the library file, over
/// the server's tracker, with no web seed of its own.
pub async fn seeder(srv: &TestServer, behaviour: Behaviour) -> anyhow::Result<NativePeer> {
    let meta = Metainfo::from_bytes(&srv.track.torrent).context("the server's torrent")?;
    let options = PeerOptions {
        trackers: vec![srv.tracker_url()],
        rtc: RtcConfig {
            // The veth address: Chromium's host candidates are on it.
            bind: netns::ADDRESS,
            gather_timeout: Duration::from_secs(2),
            ..RtcConfig::default()
        },
        web_seed: false,
        corrupt_uploads: behaviour == Behaviour::Corrupting,
        ..PeerOptions::default()
    };
    let peer = NativePeer::start(&meta, &srv.track_path, options).await?;
    anyhow::ensure!(
        peer.stats().done,
        "the seeder's copy of {} does not verify",
        srv.track_path.display()
    );
    Ok(peer)
}
