//! Why a connection to a peer is closed: the typed protocol errors shared by
//! the engine ([`crate::engine`]) and the metadata fetch of a magnet join
//! ([`crate::join`]). Each is about one peer only: that connection goes,
//! the torrent goes on (cratetorrent's "fallible" errors; a torrent that
//! cannot run at all is an [`crate::engine::SpecError`]).

use crate::ids::{InfoHash, PeerId};
use crate::wire;

/// Why the engine closes a connection. Each is about that peer only: the
/// torrent goes on.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PeerError {
    /// The byte stream broke the wire protocol.
    #[error("wire protocol: {0}")]
    Wire(#[from] wire::WireError),
    /// The handshake named another torrent.
    #[error("handshake for another torrent {0}")]
    WrongInfoHash(InfoHash),
    /// We connected to ourselves.
    #[error("connected to ourselves")]
    SelfConnection,
    /// Another connection already has this peer id.
    #[error("peer id {0} is already connected")]
    DuplicatePeerId(PeerId),
    /// The peer sent data that failed verification.
    #[error("peer {0} sent corrupt data and is banned")]
    Banned(PeerId),
    /// A message the peer had no business sending.
    #[error("protocol violation: {0}")]
    Protocol(String),
    /// A timer ran out.
    #[error("timed out: {0}")]
    Timeout(&'static str),
    /// We are at [`Config::max_peers`].
    #[error("too many peers")]
    TooManyPeers,
    /// It misbehaved while we fetched a magnet's metadata.
    #[error("metadata exchange: {0}")]
    Metadata(#[from] MetadataPeerError),
}

/// Why a peer was dropped during the metadata phase (inside
/// [`PeerError::Metadata`]).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MetadataPeerError {
    /// The peer's `metadata_size` is above `FetchConfig::max_metadata_size`.
    #[error("metadata_size {size} is above our limit of {limit} bytes")]
    TooLarge {
        /// What the peer stated.
        size: u64,
        /// Our bound.
        limit: u64,
    },
    /// A metadata piece that cannot be right whatever the hash says: an index
    /// we did not ask for, a wrong length, or a different `total_size`.
    #[error("bad metadata piece {piece}: {why}")]
    BadPiece {
        /// The piece index received.
        piece: u32,
        /// What was wrong.
        why: &'static str,
    },
    /// Pieces it sent made the assembled metadata miss the info hash.
    #[error("sent metadata that does not hash to the info hash")]
    Corrupt,
    /// It sent more than `FetchConfig::max_replay` bytes before the
    /// metadata was known.
    #[error("sent more than {0} bytes before the metadata was known")]
    ReplayTooLong(usize),
}
