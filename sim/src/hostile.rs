//! Hostile peers: an honest engine underneath (so the node handshakes,
//! announces pieces and keeps its connections alive like any peer), whose
//! outgoing bytes are re-framed on the way out and rewritten, or followed by
//! raw bytes no honest engine would send.
//!
//! The injection goes out right after the node's first availability message
//! (`bitfield`, `have_all` or `have_none`), so every honest peer has seen a
//! valid handshake from it and is past the point where it could refuse it
//! for a reason other than the one under test.

use swarm::engine::TorrentSpec;
use swarm::wire::{BlockRef, Decoder, Frame, Message};

/// Blocks are requested in 16 KiB pieces, the largest a peer may ask for.
const BLOCK: u32 = 16 * 1024;

/// How a hostile node misbehaves. Each is one case of issue 7.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Behaviour {
    /// Its handshake names another torrent.
    WrongInfoHash,
    /// A thousand `have`s for pieces past the end of the torrent.
    HaveFlood,
    /// Requests a piece index past the end of the torrent.
    RequestBadPiece,
    /// Requests a block that runs past the end of its piece.
    RequestPastPieceEnd,
    /// Requests a 256 KiB block. Blocks are 16 KiB, but like WebTorrent
    /// the engine serves requests up to 128 KiB and drops a peer asking more.
    RequestTooLarge,
    /// Declares interest, then requests every block twenty times over: far
    /// beyond the `reqq` it was told. It swallows the blocks it gets, so its
    /// own engine never sees them.
    RequestFlood,
    /// Its bitfield is a byte longer than the torrent needs.
    BitfieldWrongLength,
    /// Its bitfield has the spare bits past the last piece set.
    BitfieldSpareBits,
    /// Sends a message whose length prefix is beyond the engine's limit.
    OversizedMessage,
    /// Announces every piece and unchokes, but never sends a block.
    Silent,
    /// Sends a hundred blocks nobody asked for, full of garbage.
    Unrequested,
    /// Serves every requested block with its bytes inverted.
    Corrupt,
}

impl Behaviour {
    /// Every behaviour, for tests that want to try them all.
    pub const ALL: [Behaviour; 12] = [
        Behaviour::WrongInfoHash,
        Behaviour::HaveFlood,
        Behaviour::RequestBadPiece,
        Behaviour::RequestPastPieceEnd,
        Behaviour::RequestTooLarge,
        Behaviour::RequestFlood,
        Behaviour::BitfieldWrongLength,
        Behaviour::BitfieldSpareBits,
        Behaviour::OversizedMessage,
        Behaviour::Silent,
        Behaviour::Unrequested,
        Behaviour::Corrupt,
    ];
}

/// What a hostile node received, counted on its side of the wire.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Seen {
    /// `request` messages.
    pub requests: u64,
    /// `reject_request` messages (BEP 6).
    pub rejects: u64,
    /// `piece` messages.
    pub blocks: u64,
}

/// One hostile connection's two byte streams.
#[derive(Debug)]
pub(crate) struct Tamper {
    behaviour: Behaviour,
    outgoing: Decoder,
    incoming: Decoder,
    injected: bool,
}

impl Tamper {
    pub(crate) fn new(behaviour: Behaviour) -> Self {
        Tamper {
            behaviour,
            outgoing: Decoder::new(1 << 20),
            incoming: Decoder::new(1 << 20),
            injected: false,
        }
    }

    /// Rewrites the node's own engine output (whole frames only; a partial
    /// frame waits for the rest).
    pub(crate) fn outgoing(&mut self, data: &[u8], spec: &TorrentSpec) -> Vec<u8> {
        self.outgoing.push(data);
        let mut out = Vec::new();
        while let Ok(Some(frame)) = self.outgoing.next() {
            match frame {
                Frame::Handshake(mut h) => {
                    if self.behaviour == Behaviour::WrongInfoHash {
                        h.info_hash.0[0] ^= 0xff;
                    }
                    out.extend_from_slice(&h.encode());
                }
                Frame::Message(
                    m @ (Message::Bitfield(_) | Message::HaveAll | Message::HaveNone),
                ) => {
                    self.availability(m, spec).encode(&mut out);
                    if !self.injected {
                        self.injected = true;
                        self.inject(spec, &mut out);
                    }
                }
                Frame::Message(Message::Piece {
                    piece,
                    offset,
                    data,
                }) => match self.behaviour {
                    Behaviour::Silent => {}
                    Behaviour::Corrupt => Message::Piece {
                        piece,
                        offset,
                        data: data.iter().map(|b| !b).collect(),
                    }
                    .encode(&mut out),
                    _ => Message::Piece {
                        piece,
                        offset,
                        data,
                    }
                    .encode(&mut out),
                },
                Frame::Message(m) => m.encode(&mut out),
            }
        }
        out
    }

    /// Counts what the node receives, and for [`Behaviour::RequestFlood`]
    /// swallows the blocks, which its own engine never asked for.
    pub(crate) fn incoming(&mut self, data: &[u8], seen: &mut Seen) -> Vec<u8> {
        self.incoming.push(data);
        let mut out = Vec::new();
        while let Ok(Some(frame)) = self.incoming.next() {
            match frame {
                Frame::Handshake(h) => out.extend_from_slice(&h.encode()),
                Frame::Message(m) => {
                    match &m {
                        Message::Request(_) => seen.requests += 1,
                        Message::Reject(_) => seen.rejects += 1,
                        Message::Piece { .. } => {
                            seen.blocks += 1;
                            if self.behaviour == Behaviour::RequestFlood {
                                continue;
                            }
                        }
                        _ => {}
                    }
                    m.encode(&mut out);
                }
            }
        }
        out
    }

    /// The node's availability message, made wrong where the case says so.
    fn availability(&self, honest: Message, spec: &TorrentSpec) -> Message {
        let pieces = spec.piece_hashes.len();
        let full = || vec![0xffu8; pieces.div_ceil(8)];
        match self.behaviour {
            Behaviour::BitfieldWrongLength => {
                let mut bits = full();
                bits.push(0xff);
                Message::Bitfield(bits)
            }
            Behaviour::BitfieldSpareBits => {
                assert!(!pieces.is_multiple_of(8), "the case needs spare bits");
                Message::Bitfield(full())
            }
            _ => honest,
        }
    }

    /// The raw messages the case sends once, after its availability.
    fn inject(&self, spec: &TorrentSpec, out: &mut Vec<u8>) {
        let pieces =
            u32::try_from(spec.piece_hashes.len()).expect("a simulated torrent has few pieces");
        let piece_len = spec.piece_length;
        let request = |piece, offset, length| {
            Message::Request(BlockRef {
                piece,
                offset,
                length,
            })
        };
        match self.behaviour {
            Behaviour::HaveFlood => {
                for i in 0..1000 {
                    Message::Have { piece: pieces + i }.encode(out);
                }
            }
            Behaviour::RequestBadPiece => request(pieces + 3, 0, BLOCK).encode(out),
            Behaviour::RequestPastPieceEnd => request(0, piece_len - BLOCK / 2, BLOCK).encode(out),
            Behaviour::RequestTooLarge => request(0, 0, 16 * BLOCK).encode(out),
            Behaviour::RequestFlood => {
                Message::Interested.encode(out);
                for _ in 0..20 {
                    for piece in 0..pieces {
                        let size = piece_size(spec, piece);
                        for offset in (0..size).step_by(BLOCK as usize) {
                            request(piece, offset, BLOCK.min(size - offset)).encode(out);
                        }
                    }
                }
            }
            Behaviour::OversizedMessage => {
                // A `piece` claiming 1 MiB: the decoder refuses it on its
                // length prefix, before any of the body arrives.
                out.extend_from_slice(&(1u32 << 20).to_be_bytes());
                out.push(7);
                out.extend_from_slice(&[0; 64]);
            }
            Behaviour::Unrequested => {
                for i in 0..100 {
                    Message::Piece {
                        piece: i % pieces,
                        offset: 0,
                        data: vec![0x5a; BLOCK.min(piece_size(spec, i % pieces)) as usize],
                    }
                    .encode(out);
                }
            }
            Behaviour::WrongInfoHash
            | Behaviour::BitfieldWrongLength
            | Behaviour::BitfieldSpareBits
            | Behaviour::Silent
            | Behaviour::Corrupt => {}
        }
    }
}

fn piece_size(spec: &TorrentSpec, piece: u32) -> u32 {
    let start = u64::from(piece) * u64::from(spec.piece_length);
    u32::try_from((spec.total_length - start).min(u64::from(spec.piece_length)))
        .expect("a piece is at most piece_length bytes")
}
