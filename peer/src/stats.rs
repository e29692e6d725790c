//! What a native peer reports to its owner (the CLI's progress lines, the
//! tests): the node's figures plus what only the native peer knows.

use std::collections::BTreeMap;
use std::path::PathBuf;

use swarm::PeerId;

/// What a native peer has done so far.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PeerStats {
    /// Our peer id.
    pub peer_id: Option<PeerId>,
    /// Pieces verified (imported from disk or downloaded).
    pub verified_pieces: u32,
    /// Pieces in the torrent (0 until a magnet's metadata is known).
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
    /// Bytes per second received over the last seconds.
    pub download_rate: u64,
    /// Bytes per second served over the last seconds.
    pub upload_rate: u64,
    /// Useful bytes received, by the sender's peer id.
    pub received_from: BTreeMap<PeerId, u64>,
    /// Peers banned for sending corrupt data.
    pub banned: Vec<PeerId>,
    /// Peers past the handshake.
    pub peers: usize,
    /// Data channels open.
    pub connections: usize,
    /// Every piece wanted is verified and on disk: every piece, or those
    /// of the files selected ([`crate::PeerOptions::files`]).
    pub done: bool,
    /// Pieces downloaded (from peers or web seeds, not found on disk);
    /// `None` before the first.
    pub received: Option<swarm::bitfield::Bitfield>,
    /// The last error writing a verified piece, if any.
    pub storage_error: Option<String>,
    /// Where the files are; for a magnet, known once the metadata is.
    pub target: Option<PathBuf>,
    /// Each of the torrent's web seeds: bytes, failures, dropped or not.
    pub web_seeds: Vec<swarm::node::WebSeedStats>,
}
