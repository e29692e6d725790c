//! The BitTorrent peer wire protocol as WebTorrent speaks it over a data channel.
//!
//! A data channel is a byte stream to us: one channel message may hold half a
//! wire message or three of them. [`Decoder`] buffers and yields whole
//! [`Frame`]s; [`Handshake::decode`] and [`Message::decode`] are the pure slice
//! functions underneath it. Encoding is [`Handshake::encode`],
//! [`Message::encode`] / [`Message::to_bytes`], and [`piece_header`] for
//! sending a block without copying it.
//!
//! Errors come in two kinds: [`DecodeError`] from the slice functions
//! (including "incomplete, need more bytes"), and [`WireError`] from the
//! decoder, which is always fatal for the connection. Both carry a
//! [`FrameError`] saying what was wrong.
//!
//! Covered: BEP 3 (handshake and core messages), BEP 6 (fast extension),
//! BEP 10 (extension protocol, see [`extension`]) and BEP 9 (ut_metadata, see
//! [`metadata`]).

mod codec;
mod decoder;
pub mod extension;
pub mod fault;
pub mod metadata;

pub use codec::{DecodeError, FrameError, piece_header};
pub use decoder::{Decoder, WireError};

use crate::ids::{InfoHash, PeerId};

/// Bytes in a block: the unit of request and of `piece` messages.
pub const BLOCK_SIZE: u32 = 16 * 1024;

/// Longest request we serve; WebTorrent drops a peer asking for more than 128 KiB.
pub const MAX_REQUEST_LEN: u32 = 128 * 1024;

/// Default bound on one message's length prefix. A `piece` of a 16 KiB block is
/// 16 KiB + 9; a bitfield of a 100,000-piece torrent is 12.5 KB; ut_metadata
/// data is 16 KiB plus a small dictionary. Anything longer is an attack.
pub const DEFAULT_MAX_MESSAGE_LEN: usize = 256 * 1024;

/// The 19-byte protocol string after the `0x13` length byte.
pub const PROTOCOL: &[u8; 19] = b"BitTorrent protocol";

/// Length of an encoded handshake.
pub const HANDSHAKE_LEN: usize = 68;

/// The 8 reserved handshake bytes, which announce extensions.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Reserved(pub [u8; 8]);

impl Reserved {
    /// What fanswarm sends: BEP 10 (byte 5, 0x10) and BEP 6 fast (byte 7, 0x04),
    /// exactly the bits WebTorrent sets.
    pub const FANSWARM: Reserved = Reserved([0, 0, 0, 0, 0, 0x10, 0, 0x04]);

    /// The peer speaks the BEP 10 extension protocol.
    pub fn extension_protocol(&self) -> bool {
        self.0[5] & 0x10 != 0
    }

    /// The peer speaks the BEP 6 fast extension.
    pub fn fast(&self) -> bool {
        self.0[7] & 0x04 != 0
    }
}

/// The first 68 bytes each side sends; on a data channel both sides send it
/// as soon as the channel opens.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Handshake {
    /// Extension bits.
    pub reserved: Reserved,
    /// Which swarm the sender means.
    pub info_hash: InfoHash,
    /// Who the sender says it is.
    pub peer_id: PeerId,
}

/// A block of a piece: the unit of `request`, `cancel` and `reject`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct BlockRef {
    /// Piece index.
    pub piece: u32,
    /// Byte offset inside the piece.
    pub offset: u32,
    /// Bytes asked for (16 KiB except a piece's last block).
    pub length: u32,
}

/// One length-prefixed peer wire message. Values are as received: range checks
/// against the torrent belong to the engine, which knows the torrent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Message {
    /// Length prefix 0.
    KeepAlive,
    /// id 0.
    Choke,
    /// id 1.
    Unchoke,
    /// id 2.
    Interested,
    /// id 3.
    NotInterested,
    /// id 4: the sender now has this piece.
    Have {
        /// Piece index.
        piece: u32,
    },
    /// id 5: raw bitfield bytes, high bit of byte 0 is piece 0.
    Bitfield(Vec<u8>),
    /// id 6.
    Request(BlockRef),
    /// id 7: a block of data.
    Piece {
        /// Piece index.
        piece: u32,
        /// Byte offset inside the piece.
        offset: u32,
        /// The block.
        data: Vec<u8>,
    },
    /// id 8.
    Cancel(BlockRef),
    /// id 9 (DHT port): meaningless over WebRTC; decoded so it can be ignored.
    Port(u16),
    /// id 13 (BEP 6).
    Suggest {
        /// Piece index.
        piece: u32,
    },
    /// id 14 (BEP 6): the sender has every piece.
    HaveAll,
    /// id 15 (BEP 6): the sender has no piece.
    HaveNone,
    /// id 16 (BEP 6): a request the sender will not serve.
    Reject(BlockRef),
    /// id 17 (BEP 6).
    AllowedFast {
        /// Piece index.
        piece: u32,
    },
    /// id 20 (BEP 10): extension message; `id` 0 is the extended handshake,
    /// other ids are those the *receiver* advertised in its handshake `m`.
    Extended {
        /// Extension message id.
        id: u8,
        /// Bencoded payload (ut_metadata data also carries raw bytes after it).
        payload: Vec<u8>,
    },
    /// An id we do not know; the protocol says to ignore these.
    Unknown {
        /// Message id.
        id: u8,
        /// Everything after the id.
        payload: Vec<u8>,
    },
}

/// What [`Decoder`] yields: first exactly one handshake, then messages.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Frame {
    /// The peer's handshake.
    Handshake(Handshake),
    /// A message after the handshake.
    Message(Message),
}
