//! BEP 9, ut_metadata: fetching the info dictionary from peers, so a magnet
//! link is enough to join a swarm.
//!
//! The metadata is cut into 16 KiB pieces. A request is `{msg_type: 0,
//! piece}`, a reply `{msg_type: 1, piece, total_size}` followed by the raw
//! piece bytes, a refusal `{msg_type: 2, piece}`. [`MetadataAssembler`]
//! collects the pieces and accepts the result only if its SHA-1 is the info
//! hash, so a lying peer can waste a download but never plant metadata.

use sha1::{Digest, Sha1};

use bendy::encoding::Encoder;

use super::Message;
use super::extension::{ExtensionError, for_each_pair, integer};
use crate::ids::InfoHash;

/// Bytes in one metadata piece; only the last piece may be shorter.
pub const METADATA_PIECE_SIZE: usize = 16384;

/// Metadata piece `piece` of the info dictionary `bytes` (the last one may
/// be shorter); `None` past the end. The index is a peer's `u32`: the
/// offset is computed without overflow on 32-bit targets too, where
/// `piece as usize * 16384` wraps for indexes ≥ 2^18 (and traps in wasm
/// debug builds).
pub fn metadata_piece(bytes: &[u8], piece: u32) -> Option<&[u8]> {
    let start = usize::try_from(u64::from(piece) * METADATA_PIECE_SIZE as u64).ok()?;
    if start >= bytes.len() {
        return None;
    }
    let end = start.saturating_add(METADATA_PIECE_SIZE).min(bytes.len());
    bytes.get(start..end)
}

/// Largest metadata we accept; WebTorrent refuses more than 10 MB too.
pub const MAX_METADATA_SIZE: u64 = 10_000_000;

/// One ut_metadata message (the payload after the extension id byte).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MetadataMessage {
    /// msg_type 0: please send this piece.
    Request {
        /// Metadata piece index.
        piece: u32,
    },
    /// msg_type 1: here is this piece.
    Data {
        /// Metadata piece index.
        piece: u32,
        /// Size of the whole metadata, as the sender states it.
        total_size: u64,
        /// The piece's bytes (at most [`METADATA_PIECE_SIZE`]).
        data: Vec<u8>,
    },
    /// msg_type 2: the sender will not send this piece.
    Reject {
        /// Metadata piece index.
        piece: u32,
    },
}

/// Why metadata could not be assembled.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MetadataError {
    /// The announced size is zero or above [`MAX_METADATA_SIZE`].
    #[error("metadata size {0} is not in 1..={MAX_METADATA_SIZE}")]
    BadSize(u64),
    /// A piece index past the last piece.
    #[error("metadata piece {piece} is out of range (the metadata has {count} pieces)")]
    PieceOutOfRange {
        /// The index received.
        piece: u32,
        /// How many pieces the metadata has.
        count: u32,
    },
    /// A piece whose length is not what its index implies.
    #[error("metadata piece {piece} has {len} bytes, expected {expected}")]
    PieceLength {
        /// The index received.
        piece: u32,
        /// Bytes received.
        len: usize,
        /// Bytes that piece must have.
        expected: usize,
    },
    /// `finish` was called before every piece arrived.
    #[error("metadata incomplete: {missing} pieces missing")]
    Incomplete {
        /// Pieces still missing.
        missing: u32,
    },
    /// The assembled bytes do not hash to the info hash: some peer lied.
    #[error("assembled metadata does not match the info hash")]
    HashMismatch,
}

impl MetadataMessage {
    /// This message as the wire message to a peer that advertised ut_metadata
    /// under `their_id` in its extended handshake's `m`.
    pub fn to_message(&self, their_id: u8) -> Message {
        Message::Extended {
            id: their_id,
            payload: self.encode(),
        }
    }

    /// The bencoded dictionary, followed by the raw bytes for `Data`.
    pub fn encode(&self) -> Vec<u8> {
        let (msg_type, piece, total_size) = match self {
            MetadataMessage::Request { piece } => (0u8, *piece, None),
            MetadataMessage::Data {
                piece, total_size, ..
            } => (1, *piece, Some(*total_size)),
            MetadataMessage::Reject { piece } => (2, *piece, None),
        };
        let mut encoder = Encoder::new();
        encoder
            .emit_dict(|mut dict| {
                dict.emit_pair(b"msg_type", msg_type)?;
                dict.emit_pair(b"piece", piece)?;
                if let Some(total_size) = total_size {
                    dict.emit_pair(b"total_size", total_size)?;
                }
                Ok(())
            })
            .expect("keys are emitted in sorted order: msg_type, piece, total_size");
        let mut out = encoder
            .get_output()
            .expect("one complete dictionary was emitted");
        if let MetadataMessage::Data { data, .. } = self {
            out.extend_from_slice(data);
        }
        out
    }

    /// Reads a ut_metadata payload. For `Data` the piece bytes are whatever
    /// follows the dictionary. Unknown keys are ignored; a missing or
    /// mistyped `msg_type`, `piece` or (for data) `total_size` is an error.
    pub fn decode(payload: &[u8]) -> Result<Self, ExtensionError> {
        let mut msg_type = None;
        let mut piece = None;
        let mut total_size = None;
        let dict_len = for_each_pair(payload, |key, value| {
            match key {
                b"msg_type" => {
                    msg_type =
                        Some(integer::<i64>(value).ok_or(ExtensionError::BadValue("msg_type"))?)
                }
                b"piece" => {
                    piece = Some(integer::<u32>(value).ok_or(ExtensionError::BadValue("piece"))?)
                }
                b"total_size" => total_size = integer::<u64>(value),
                _ => {}
            }
            Ok(())
        })?;
        let msg_type = msg_type.ok_or(ExtensionError::MissingKey("msg_type"))?;
        let piece = piece.ok_or(ExtensionError::MissingKey("piece"))?;
        match msg_type {
            0 => Ok(MetadataMessage::Request { piece }),
            1 => {
                let total_size = total_size.ok_or(ExtensionError::MissingKey("total_size"))?;
                let data = &payload[dict_len..];
                if data.len() > METADATA_PIECE_SIZE {
                    return Err(ExtensionError::MetadataPieceTooLong(data.len()));
                }
                Ok(MetadataMessage::Data {
                    piece,
                    total_size,
                    data: data.to_vec(),
                })
            }
            2 => Ok(MetadataMessage::Reject { piece }),
            other => Err(ExtensionError::UnknownMetadataType(other)),
        }
    }
}

/// Collects metadata pieces for a magnet link and checks them against the
/// info hash. Pure: the engine decides whom to ask and when.
#[derive(Debug, Clone)]
pub struct MetadataAssembler {
    /// The metadata being assembled, `total_size` bytes.
    bytes: Vec<u8>,
    /// Which pieces have arrived, by index.
    received: Vec<bool>,
    /// How many entries of `received` are true.
    received_count: u32,
}

impl MetadataAssembler {
    /// An assembler for metadata of `total_size` bytes (the peer's
    /// `metadata_size`); must be in `1..=MAX_METADATA_SIZE`.
    pub fn new(total_size: u64) -> Result<Self, MetadataError> {
        if total_size == 0 || total_size > MAX_METADATA_SIZE {
            return Err(MetadataError::BadSize(total_size));
        }
        let size = usize::try_from(total_size)
            .expect("sizes up to MAX_METADATA_SIZE (10 MB) fit a usize on every target");
        let count = size.div_ceil(METADATA_PIECE_SIZE);
        Ok(MetadataAssembler {
            bytes: vec![0; size],
            received: vec![false; count],
            received_count: 0,
        })
    }

    /// Size of the whole metadata in bytes.
    pub fn total_size(&self) -> u64 {
        self.bytes.len() as u64
    }

    /// Number of 16 KiB metadata pieces.
    pub fn piece_count(&self) -> u32 {
        u32::try_from(self.received.len())
            .expect("at most 611 pieces: MAX_METADATA_SIZE / METADATA_PIECE_SIZE")
    }

    /// Indices of the pieces not received yet, in ascending order.
    pub fn missing(&self) -> impl Iterator<Item = u32> + '_ {
        (0..self.piece_count()).filter(|&piece| !self.received[piece as usize])
    }

    /// Stores one piece. A piece received twice is overwritten (the hash check
    /// in [`MetadataAssembler::finish`] judges the result).
    pub fn insert(&mut self, piece: u32, data: &[u8]) -> Result<(), MetadataError> {
        let count = self.piece_count();
        if piece >= count {
            return Err(MetadataError::PieceOutOfRange { piece, count });
        }
        let index = piece as usize;
        let start = index * METADATA_PIECE_SIZE;
        let end = (start + METADATA_PIECE_SIZE).min(self.bytes.len());
        if data.len() != end - start {
            return Err(MetadataError::PieceLength {
                piece,
                len: data.len(),
                expected: end - start,
            });
        }
        self.bytes[start..end].copy_from_slice(data);
        if !self.received[index] {
            self.received[index] = true;
            self.received_count += 1;
        }
        Ok(())
    }

    /// The bytes of one piece as received so far (zeros where nothing
    /// arrived); `None` past the last piece.
    pub fn piece_bytes(&self, piece: u32) -> Option<&[u8]> {
        metadata_piece(&self.bytes, piece)
    }

    /// Whether every piece has arrived.
    pub fn is_complete(&self) -> bool {
        self.received_count == self.piece_count()
    }

    /// The assembled info dictionary, if complete and its SHA-1 is `expected`.
    pub fn finish(self, expected: InfoHash) -> Result<Vec<u8>, MetadataError> {
        if !self.is_complete() {
            return Err(MetadataError::Incomplete {
                missing: self.piece_count() - self.received_count,
            });
        }
        if Sha1::digest(&self.bytes).as_slice() != expected.as_bytes() {
            return Err(MetadataError::HashMismatch);
        }
        Ok(self.bytes)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_round_trip() {
        let messages = [
            MetadataMessage::Request { piece: 0 },
            MetadataMessage::Request { piece: u32::MAX },
            MetadataMessage::Reject { piece: 3 },
            MetadataMessage::Data {
                piece: 1,
                total_size: 31235,
                data: vec![0xee; 31235 - 16384],
            },
            MetadataMessage::Data {
                piece: 0,
                total_size: 1,
                data: b"e".to_vec(),
            },
        ];
        for message in messages {
            assert_eq!(
                MetadataMessage::decode(&message.encode()),
                Ok(message.clone())
            );
        }
    }

    #[test]
    fn known_layouts() {
        assert_eq!(
            MetadataMessage::Request { piece: 2 }.encode(),
            b"d8:msg_typei0e5:piecei2ee"
        );
        let data = MetadataMessage::Data {
            piece: 0,
            total_size: 4,
            data: b"d1:x".to_vec(),
        };
        assert_eq!(
            data.encode(),
            b"d8:msg_typei1e5:piecei0e10:total_sizei4eed1:x"
        );
    }

    #[test]
    fn data_is_what_follows_the_dict_even_if_it_looks_like_bencode() {
        let payload = b"d8:msg_typei1e5:piecei0e10:total_sizei8eed1:ai1ee";
        assert_eq!(
            MetadataMessage::decode(payload),
            Ok(MetadataMessage::Data {
                piece: 0,
                total_size: 8,
                data: b"d1:ai1ee".to_vec()
            })
        );
    }

    #[test]
    fn malformed_messages_are_errors() {
        let cases: &[(&[u8], ExtensionError)] = &[
            (b"i1e", ExtensionError::NotADict),
            (b"d5:piecei0ee", ExtensionError::MissingKey("msg_type")),
            (b"d8:msg_typei0ee", ExtensionError::MissingKey("piece")),
            (
                b"d8:msg_typei1e5:piecei0ee",
                ExtensionError::MissingKey("total_size"),
            ),
            (
                b"d8:msg_typei7e5:piecei0ee",
                ExtensionError::UnknownMetadataType(7),
            ),
            (
                b"d8:msg_type1:05:piecei0ee",
                ExtensionError::BadValue("msg_type"),
            ),
            (
                b"d8:msg_typei0e5:piecei-1ee",
                ExtensionError::BadValue("piece"),
            ),
            (
                b"d8:msg_typei0e5:piecei4294967296ee",
                ExtensionError::BadValue("piece"),
            ),
            (
                b"d8:msg_typei99999999999999999999e5:piecei0ee",
                ExtensionError::BadValue("msg_type"),
            ),
        ];
        for (payload, expected) in cases {
            assert_eq!(
                MetadataMessage::decode(payload).as_ref(),
                Err(expected),
                "{}",
                String::from_utf8_lossy(payload)
            );
        }
        assert!(matches!(
            MetadataMessage::decode(b"d8:msg_typei0e5:piecei0e"),
            Err(ExtensionError::Bencode(_))
        ));
        let mut too_long = b"d8:msg_typei1e5:piecei0e10:total_sizei99999ee".to_vec();
        too_long.extend(vec![0; METADATA_PIECE_SIZE + 1]);
        assert_eq!(
            MetadataMessage::decode(&too_long),
            Err(ExtensionError::MetadataPieceTooLong(
                METADATA_PIECE_SIZE + 1
            ))
        );
    }

    fn info_dict(len: usize) -> Vec<u8> {
        (0..len).map(|i| (i * 7 % 251) as u8).collect()
    }

    fn hash(bytes: &[u8]) -> InfoHash {
        InfoHash(Sha1::digest(bytes).into())
    }

    #[test]
    fn assembles_out_of_order_and_checks_the_hash() {
        let info = info_dict(2 * METADATA_PIECE_SIZE + 100);
        let mut assembler = MetadataAssembler::new(info.len() as u64).unwrap();
        assert_eq!(assembler.piece_count(), 3);
        assert_eq!(assembler.missing().collect::<Vec<_>>(), [0, 1, 2]);
        for piece in [2u32, 0, 0, 1] {
            assert!(!assembler.is_complete());
            let start = piece as usize * METADATA_PIECE_SIZE;
            let end = (start + METADATA_PIECE_SIZE).min(info.len());
            assembler.insert(piece, &info[start..end]).unwrap();
        }
        assert!(assembler.is_complete());
        assert_eq!(assembler.missing().count(), 0);
        assert_eq!(assembler.finish(hash(&info)), Ok(info));
    }

    #[test]
    fn exact_multiple_of_the_piece_size() {
        let info = info_dict(METADATA_PIECE_SIZE);
        let mut assembler = MetadataAssembler::new(info.len() as u64).unwrap();
        assert_eq!(assembler.piece_count(), 1);
        assembler.insert(0, &info).unwrap();
        assert_eq!(assembler.finish(hash(&info)), Ok(info));
    }

    #[test]
    fn sha1_mismatch_is_rejected() {
        let info = info_dict(100);
        let mut assembler = MetadataAssembler::new(100).unwrap();
        let mut lie = info.clone();
        lie[50] ^= 1;
        assembler.insert(0, &lie).unwrap();
        assert_eq!(
            assembler.finish(hash(&info)),
            Err(MetadataError::HashMismatch)
        );
    }

    #[test]
    fn bad_sizes_and_pieces_are_errors() {
        assert_eq!(
            MetadataAssembler::new(0).unwrap_err(),
            MetadataError::BadSize(0)
        );
        assert_eq!(
            MetadataAssembler::new(MAX_METADATA_SIZE + 1).unwrap_err(),
            MetadataError::BadSize(MAX_METADATA_SIZE + 1)
        );
        assert_eq!(
            MetadataAssembler::new(MAX_METADATA_SIZE)
                .unwrap()
                .piece_count(),
            611
        );
        let mut assembler = MetadataAssembler::new(20_000).unwrap();
        assert_eq!(
            assembler.insert(2, &[0; 100]),
            Err(MetadataError::PieceOutOfRange { piece: 2, count: 2 })
        );
        assert_eq!(
            assembler.insert(u32::MAX, &[]),
            Err(MetadataError::PieceOutOfRange {
                piece: u32::MAX,
                count: 2
            })
        );
        assert_eq!(
            assembler.insert(0, &[0; 100]),
            Err(MetadataError::PieceLength {
                piece: 0,
                len: 100,
                expected: 16384
            })
        );
        assert_eq!(
            assembler.insert(1, &[0; 16384]),
            Err(MetadataError::PieceLength {
                piece: 1,
                len: 16384,
                expected: 20_000 - 16384
            })
        );
        assert_eq!(assembler.missing().collect::<Vec<_>>(), [0, 1]);
        assert_eq!(
            assembler.finish(InfoHash([0; 20])),
            Err(MetadataError::Incomplete { missing: 2 })
        );
    }
}
