//! Pure slice functions: one handshake or one message to and from bytes.
//!
//! Decoding follows rqbit's model: `decode(buf)` either returns a value and the
//! number of bytes it used, or says how many more bytes it needs at least
//! ([`DecodeError::Incomplete`]), or says the bytes can never become a valid
//! frame ([`DecodeError::Malformed`]). Nothing here buffers; [`super::Decoder`]
//! does that on top.
//!
//! Errors are reported as early as the bytes allow: a wrong protocol string is
//! caught on its first wrong byte, an over-long length prefix or a `have` of
//! the wrong length as soon as the prefix and id are in. A peer can therefore
//! never make us wait for (and buffer) a message we are going to reject.

use crate::ids::{InfoHash, PeerId};

use super::{BlockRef, HANDSHAKE_LEN, Handshake, Message, PROTOCOL, Reserved};

/// Why bytes could not be decoded (yet).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DecodeError {
    /// Not enough bytes yet: call again once at least `needed` more arrived.
    #[error("incomplete frame: at least {needed} more bytes needed")]
    Incomplete {
        /// The smallest number of additional bytes that can change the answer.
        needed: usize,
    },
    /// The bytes can never become a valid frame, whatever follows.
    #[error(transparent)]
    Malformed(#[from] FrameError),
}

/// What is wrong with bytes that can never become a valid frame.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FrameError {
    /// The handshake's first byte (the protocol string length) is not 19.
    #[error("handshake protocol length byte is {0}, expected 19")]
    ProtocolLength(u8),
    /// The handshake's protocol string is not "BitTorrent protocol".
    #[error("handshake protocol string is not \"BitTorrent protocol\"")]
    ProtocolString,
    /// A length prefix is larger than the receiver's bound.
    #[error("message length {len} exceeds the limit of {max} bytes")]
    TooLong {
        /// The announced length (id + payload).
        len: usize,
        /// The bound in force.
        max: usize,
    },
    /// A known message id came with a payload of a length it cannot have.
    #[error("{name} (id {id}) with a {len}-byte payload, expected {expected}")]
    PayloadLength {
        /// Message id.
        id: u8,
        /// Message name, for the log.
        name: &'static str,
        /// Payload bytes after the id.
        len: usize,
        /// What the message needs, in words ("4 bytes", "at least 8 bytes").
        expected: &'static str,
    },
}

impl Handshake {
    /// The 68 bytes of this handshake.
    pub fn encode(&self) -> [u8; HANDSHAKE_LEN] {
        let mut out = [0u8; HANDSHAKE_LEN];
        out[0] = 19;
        out[1..20].copy_from_slice(PROTOCOL);
        out[20..28].copy_from_slice(&self.reserved.0);
        out[28..48].copy_from_slice(&self.info_hash.0);
        out[48..68].copy_from_slice(&self.peer_id.0);
        out
    }

    /// Decodes a handshake from the start of `buf`; on success also returns the
    /// bytes used (always [`HANDSHAKE_LEN`]). Fails on the first byte that
    /// differs from `0x13 "BitTorrent protocol"`, even before all 68 arrived.
    pub fn decode(buf: &[u8]) -> Result<(Handshake, usize), DecodeError> {
        let Some(&pstrlen) = buf.first() else {
            return Err(DecodeError::Incomplete {
                needed: HANDSHAKE_LEN,
            });
        };
        if usize::from(pstrlen) != PROTOCOL.len() {
            return Err(FrameError::ProtocolLength(pstrlen).into());
        }
        let pstr = &buf[1..buf.len().min(1 + PROTOCOL.len())];
        if !PROTOCOL.starts_with(pstr) {
            return Err(FrameError::ProtocolString.into());
        }
        let Some(frame) = buf.get(..HANDSHAKE_LEN) else {
            return Err(DecodeError::Incomplete {
                needed: HANDSHAKE_LEN - buf.len(),
            });
        };
        let handshake = Handshake {
            reserved: Reserved(array_at(frame, 20)),
            info_hash: InfoHash(array_at(frame, 28)),
            peer_id: PeerId(array_at(frame, 48)),
        };
        Ok((handshake, HANDSHAKE_LEN))
    }
}

impl Message {
    /// The message id on the wire; `None` for a keep-alive, which has none.
    pub fn id(&self) -> Option<u8> {
        Some(match self {
            Message::KeepAlive => return None,
            Message::Choke => id::CHOKE,
            Message::Unchoke => id::UNCHOKE,
            Message::Interested => id::INTERESTED,
            Message::NotInterested => id::NOT_INTERESTED,
            Message::Have { .. } => id::HAVE,
            Message::Bitfield(_) => id::BITFIELD,
            Message::Request(_) => id::REQUEST,
            Message::Piece { .. } => id::PIECE,
            Message::Cancel(_) => id::CANCEL,
            Message::Port(_) => id::PORT,
            Message::Suggest { .. } => id::SUGGEST,
            Message::HaveAll => id::HAVE_ALL,
            Message::HaveNone => id::HAVE_NONE,
            Message::Reject(_) => id::REJECT,
            Message::AllowedFast { .. } => id::ALLOWED_FAST,
            Message::Extended { .. } => id::EXTENDED,
            Message::Unknown { id, .. } => *id,
        })
    }

    /// Appends the length prefix, id and payload to `out`.
    ///
    /// `Unknown` is written as given: an `Unknown` that reuses a known id
    /// produces whatever that id means to the receiver.
    pub fn encode(&self, out: &mut Vec<u8>) {
        let Some(id) = self.id() else {
            out.extend_from_slice(&0u32.to_be_bytes());
            return;
        };
        let payload_len = self.payload_len();
        let len = u32::try_from(payload_len + 1)
            .expect("a message payload is far under 4 GiB: blocks are at most 128 KiB and bitfields and extension payloads are bounded by the torrent");
        out.reserve(4 + 1 + payload_len);
        out.extend_from_slice(&len.to_be_bytes());
        out.push(id);
        match self {
            Message::KeepAlive
            | Message::Choke
            | Message::Unchoke
            | Message::Interested
            | Message::NotInterested
            | Message::HaveAll
            | Message::HaveNone => {}
            Message::Have { piece }
            | Message::Suggest { piece }
            | Message::AllowedFast { piece } => out.extend_from_slice(&piece.to_be_bytes()),
            Message::Bitfield(bits) => out.extend_from_slice(bits),
            Message::Request(block) | Message::Cancel(block) | Message::Reject(block) => {
                out.extend_from_slice(&block.piece.to_be_bytes());
                out.extend_from_slice(&block.offset.to_be_bytes());
                out.extend_from_slice(&block.length.to_be_bytes());
            }
            Message::Piece {
                piece,
                offset,
                data,
            } => {
                out.extend_from_slice(&piece.to_be_bytes());
                out.extend_from_slice(&offset.to_be_bytes());
                out.extend_from_slice(data);
            }
            Message::Port(port) => out.extend_from_slice(&port.to_be_bytes()),
            Message::Extended { id, payload } => {
                out.push(*id);
                out.extend_from_slice(payload);
            }
            Message::Unknown { payload, .. } => out.extend_from_slice(payload),
        }
    }

    /// The encoded message in a fresh vector.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = Vec::new();
        self.encode(&mut out);
        out
    }

    /// Decodes one message from the start of `buf`; on success also returns
    /// the bytes used. `max_len` bounds the length prefix (id + payload).
    ///
    /// Unknown ids decode to [`Message::Unknown`]; known ids with a payload of
    /// impossible length are [`FrameError::PayloadLength`] as soon as the
    /// prefix and id are in, before the payload itself arrives.
    pub fn decode(buf: &[u8], max_len: usize) -> Result<(Message, usize), DecodeError> {
        let Some(prefix) = buf.get(..4) else {
            return Err(DecodeError::Incomplete {
                needed: 4 - buf.len(),
            });
        };
        let len = u32::from_be_bytes(array_at(prefix, 0));
        // A u32 always fits a usize on the 32- and 64-bit targets we build for;
        // saturating keeps a (hypothetical) 16-bit target on the error path.
        let len = usize::try_from(len).unwrap_or(usize::MAX);
        if len > max_len {
            return Err(FrameError::TooLong { len, max: max_len }.into());
        }
        if len == 0 {
            return Ok((Message::KeepAlive, 4));
        }
        let Some(&id) = buf.get(4) else {
            return Err(DecodeError::Incomplete { needed: 1 });
        };
        check_payload_len(id, len - 1)?;
        // Only overflows where usize is 32 bits and `max_len` is near its top.
        let total = len
            .checked_add(4)
            .ok_or(FrameError::TooLong { len, max: max_len })?;
        let Some(payload) = buf.get(5..total) else {
            return Err(DecodeError::Incomplete {
                needed: total - buf.len(),
            });
        };
        Ok((parse_payload(id, payload), total))
    }

    /// Payload bytes after the id.
    fn payload_len(&self) -> usize {
        match self {
            Message::KeepAlive
            | Message::Choke
            | Message::Unchoke
            | Message::Interested
            | Message::NotInterested
            | Message::HaveAll
            | Message::HaveNone => 0,
            Message::Have { .. } | Message::Suggest { .. } | Message::AllowedFast { .. } => 4,
            Message::Request(_) | Message::Cancel(_) | Message::Reject(_) => 12,
            Message::Port(_) => 2,
            Message::Bitfield(bits) => bits.len(),
            Message::Piece { data, .. } => 8 + data.len(),
            Message::Extended { payload, .. } => 1 + payload.len(),
            Message::Unknown { payload, .. } => payload.len(),
        }
    }
}

/// The 13 bytes that precede a block in a `piece` message: length prefix, id,
/// piece index and offset. Lets a shell send the header and the block as two
/// channel messages without copying the block, as WebTorrent does.
///
/// Returns `None` when `block_len` is too large for a length prefix.
pub fn piece_header(piece: u32, offset: u32, block_len: usize) -> Option<[u8; 13]> {
    let len = u32::try_from(block_len).ok()?.checked_add(9)?;
    let mut out = [0u8; 13];
    out[..4].copy_from_slice(&len.to_be_bytes());
    out[4] = id::PIECE;
    out[5..9].copy_from_slice(&piece.to_be_bytes());
    out[9..13].copy_from_slice(&offset.to_be_bytes());
    Some(out)
}

/// Message ids (BEP 3, BEP 6, BEP 10).
mod id {
    pub const CHOKE: u8 = 0;
    pub const UNCHOKE: u8 = 1;
    pub const INTERESTED: u8 = 2;
    pub const NOT_INTERESTED: u8 = 3;
    pub const HAVE: u8 = 4;
    pub const BITFIELD: u8 = 5;
    pub const REQUEST: u8 = 6;
    pub const PIECE: u8 = 7;
    pub const CANCEL: u8 = 8;
    pub const PORT: u8 = 9;
    pub const SUGGEST: u8 = 13;
    pub const HAVE_ALL: u8 = 14;
    pub const HAVE_NONE: u8 = 15;
    pub const REJECT: u8 = 16;
    pub const ALLOWED_FAST: u8 = 17;
    pub const EXTENDED: u8 = 20;
}

/// Which payload lengths a message id allows.
enum PayloadRule {
    Exactly(usize, &'static str),
    AtLeast(usize, &'static str),
    Any,
}

/// Name and payload rule of a known id; `None` for ids we do not know.
fn rule_of(id: u8) -> Option<(&'static str, PayloadRule)> {
    use PayloadRule::{AtLeast, Exactly};
    let none = Exactly(0, "no payload");
    let index = Exactly(4, "4 bytes");
    let block = Exactly(12, "12 bytes");
    Some(match id {
        id::CHOKE => ("choke", none),
        id::UNCHOKE => ("unchoke", none),
        id::INTERESTED => ("interested", none),
        id::NOT_INTERESTED => ("not_interested", none),
        id::HAVE => ("have", index),
        id::BITFIELD => ("bitfield", PayloadRule::Any),
        id::REQUEST => ("request", block),
        id::PIECE => ("piece", AtLeast(8, "at least 8 bytes")),
        id::CANCEL => ("cancel", block),
        id::PORT => ("port", Exactly(2, "2 bytes")),
        id::SUGGEST => ("suggest", index),
        id::HAVE_ALL => ("have_all", none),
        id::HAVE_NONE => ("have_none", none),
        id::REJECT => ("reject", block),
        id::ALLOWED_FAST => ("allowed_fast", index),
        id::EXTENDED => ("extended", AtLeast(1, "at least 1 byte")),
        _ => return None,
    })
}

fn check_payload_len(id: u8, len: usize) -> Result<(), FrameError> {
    let Some((name, rule)) = rule_of(id) else {
        return Ok(());
    };
    let (ok, expected) = match rule {
        PayloadRule::Exactly(n, words) => (len == n, words),
        PayloadRule::AtLeast(n, words) => (len >= n, words),
        PayloadRule::Any => (true, "any length"),
    };
    if ok {
        Ok(())
    } else {
        Err(FrameError::PayloadLength {
            id,
            name,
            len,
            expected,
        })
    }
}

/// Builds the message from a payload whose length [`check_payload_len`] accepted.
fn parse_payload(message_id: u8, payload: &[u8]) -> Message {
    let u32_at = |at: usize| u32::from_be_bytes(array_at(payload, at));
    let block = || BlockRef {
        piece: u32_at(0),
        offset: u32_at(4),
        length: u32_at(8),
    };
    match message_id {
        id::CHOKE => Message::Choke,
        id::UNCHOKE => Message::Unchoke,
        id::INTERESTED => Message::Interested,
        id::NOT_INTERESTED => Message::NotInterested,
        id::HAVE => Message::Have { piece: u32_at(0) },
        id::BITFIELD => Message::Bitfield(payload.to_vec()),
        id::REQUEST => Message::Request(block()),
        id::PIECE => Message::Piece {
            piece: u32_at(0),
            offset: u32_at(4),
            data: payload[8..].to_vec(),
        },
        id::CANCEL => Message::Cancel(block()),
        id::PORT => Message::Port(u16::from_be_bytes(array_at(payload, 0))),
        id::SUGGEST => Message::Suggest { piece: u32_at(0) },
        id::HAVE_ALL => Message::HaveAll,
        id::HAVE_NONE => Message::HaveNone,
        id::REJECT => Message::Reject(block()),
        id::ALLOWED_FAST => Message::AllowedFast { piece: u32_at(0) },
        id::EXTENDED => Message::Extended {
            id: payload[0],
            payload: payload[1..].to_vec(),
        },
        other => Message::Unknown {
            id: other,
            payload: payload.to_vec(),
        },
    }
}

/// `N` bytes of `buf` starting at `at`, for callers that checked the length.
fn array_at<const N: usize>(buf: &[u8], at: usize) -> [u8; N] {
    buf.get(at..at + N)
        .and_then(|bytes| <[u8; N]>::try_from(bytes).ok())
        .expect("callers check the buffer length before reading a fixed-size field")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn handshake() -> Handshake {
        Handshake {
            reserved: Reserved::FANSWARM,
            info_hash: InfoHash([0x11; 20]),
            peer_id: PeerId(*b"-WW0300-abcdefghijkl"),
        }
    }

    /// One value of every variant, with payload values that catch byte-order
    /// and field-order mistakes.
    fn every_message() -> Vec<Message> {
        let block = BlockRef {
            piece: 0x0102_0304,
            offset: 0x0004_0000,
            length: 0x4000,
        };
        vec![
            Message::KeepAlive,
            Message::Choke,
            Message::Unchoke,
            Message::Interested,
            Message::NotInterested,
            Message::Have { piece: 0xdead_beef },
            Message::Bitfield(vec![0b1010_0000, 0xff, 0x01]),
            Message::Bitfield(Vec::new()),
            Message::Request(block),
            Message::Piece {
                piece: 7,
                offset: 16384,
                data: (0..=255).collect(),
            },
            Message::Piece {
                piece: 1,
                offset: 0,
                data: Vec::new(),
            },
            Message::Cancel(block),
            Message::Port(6881),
            Message::Suggest { piece: 3 },
            Message::HaveAll,
            Message::HaveNone,
            Message::Reject(block),
            Message::AllowedFast { piece: 42 },
            Message::Extended {
                id: 0,
                payload: b"d1:md11:ut_metadatai1eee".to_vec(),
            },
            Message::Extended {
                id: 3,
                payload: Vec::new(),
            },
            Message::Unknown {
                id: 200,
                payload: vec![1, 2, 3],
            },
            Message::Unknown {
                id: 21,
                payload: Vec::new(),
            },
        ]
    }

    #[test]
    fn handshake_layout_and_round_trip() {
        let bytes = handshake().encode();
        assert_eq!(bytes[0], 19);
        assert_eq!(&bytes[1..20], b"BitTorrent protocol");
        assert_eq!(bytes[25], 0x10);
        assert_eq!(bytes[27], 0x04);
        assert_eq!(&bytes[48..56], b"-WW0300-");
        assert_eq!(Handshake::decode(&bytes), Ok((handshake(), 68)));
    }

    #[test]
    fn handshake_ignores_bytes_after_it() {
        let mut bytes = handshake().encode().to_vec();
        bytes.extend_from_slice(&[0, 0, 0, 0]);
        assert_eq!(Handshake::decode(&bytes), Ok((handshake(), 68)));
    }

    #[test]
    fn truncated_handshake_is_incomplete_with_exact_need() {
        let bytes = handshake().encode();
        for cut in 0..HANDSHAKE_LEN {
            assert_eq!(
                Handshake::decode(&bytes[..cut]),
                Err(DecodeError::Incomplete {
                    needed: HANDSHAKE_LEN - cut
                }),
                "cut at {cut}"
            );
        }
    }

    #[test]
    fn wrong_protocol_length_fails_on_first_byte() {
        assert_eq!(
            Handshake::decode(&[18]),
            Err(FrameError::ProtocolLength(18).into())
        );
        // An HTTP request or a length-prefixed message instead of a handshake.
        assert_eq!(
            Handshake::decode(b"GET / HTTP/1.1\r\n"),
            Err(FrameError::ProtocolLength(b'G').into())
        );
    }

    #[test]
    fn wrong_protocol_string_fails_on_first_wrong_byte() {
        let mut bytes = handshake().encode();
        bytes[5] = b'X';
        assert_eq!(
            Handshake::decode(&bytes[..6]),
            Err(FrameError::ProtocolString.into())
        );
        assert_eq!(
            Handshake::decode(&bytes),
            Err(FrameError::ProtocolString.into())
        );
        // The bytes before the wrong one are still only incomplete.
        assert_eq!(
            Handshake::decode(&bytes[..5]),
            Err(DecodeError::Incomplete { needed: 63 })
        );
    }

    #[test]
    fn every_message_round_trips() {
        for message in every_message() {
            let bytes = message.to_bytes();
            assert_eq!(
                Message::decode(&bytes, 1 << 20),
                Ok((message.clone(), bytes.len())),
                "{message:?}"
            );
            let prefix = u32::from_be_bytes(array_at(&bytes, 0));
            assert_eq!(prefix as usize, bytes.len() - 4, "{message:?}");
        }
    }

    #[test]
    fn encode_appends_to_existing_bytes() {
        let mut out = vec![0xaa];
        Message::Have { piece: 1 }.encode(&mut out);
        assert_eq!(out, [0xaa, 0, 0, 0, 5, 4, 0, 0, 0, 1]);
    }

    #[test]
    fn known_layouts() {
        assert_eq!(Message::KeepAlive.to_bytes(), [0, 0, 0, 0]);
        assert_eq!(Message::Interested.to_bytes(), [0, 0, 0, 1, 2]);
        assert_eq!(Message::HaveAll.to_bytes(), [0, 0, 0, 1, 14]);
        let request = Message::Request(BlockRef {
            piece: 1,
            offset: 0x4000,
            length: 0x4000,
        });
        assert_eq!(
            request.to_bytes(),
            [0, 0, 0, 13, 6, 0, 0, 0, 1, 0, 0, 0x40, 0, 0, 0, 0x40, 0]
        );
        let extended = Message::Extended {
            id: 0,
            payload: b"de".to_vec(),
        };
        assert_eq!(extended.to_bytes(), [0, 0, 0, 4, 20, 0, b'd', b'e']);
    }

    #[test]
    fn every_truncation_is_incomplete_with_exact_need() {
        for message in every_message() {
            let bytes = message.to_bytes();
            for cut in 0..bytes.len() {
                let needed = if cut < 4 {
                    4 - cut
                } else if cut == 4 {
                    1
                } else {
                    bytes.len() - cut
                };
                assert_eq!(
                    Message::decode(&bytes[..cut], 1 << 20),
                    Err(DecodeError::Incomplete { needed }),
                    "{message:?} cut at {cut}"
                );
            }
        }
    }

    #[test]
    fn length_prefix_over_max_is_rejected_before_payload() {
        assert_eq!(
            Message::decode(&[0, 0, 0x40, 0x0a], 16384 + 9),
            Err(FrameError::TooLong {
                len: 0x400a,
                max: 16393
            }
            .into())
        );
        // The largest prefix at a bound that admits it (u32::MAX: on a
        // 32-bit target usize::MAX itself; the decoder must not overflow
        // adding the prefix's own four bytes).
        assert_eq!(
            Message::decode(&[0xff, 0xff, 0xff, 0xff], u32::MAX as usize),
            Err(DecodeError::Incomplete { needed: 1 })
        );
        assert!(matches!(
            Message::decode(&[0xff, 0xff, 0xff, 0xff, 7], 1 << 20),
            Err(DecodeError::Malformed(FrameError::TooLong { .. }))
        ));
        // Exactly at the bound is fine.
        let piece = Message::Piece {
            piece: 0,
            offset: 0,
            data: vec![9; 100],
        };
        assert!(Message::decode(&piece.to_bytes(), 109).is_ok());
        assert!(Message::decode(&piece.to_bytes(), 108).is_err());
    }

    #[test]
    fn wrong_payload_length_per_id_is_rejected_from_the_header() {
        // (id, payload lengths that are wrong for it)
        let cases: &[(u8, &[usize])] = &[
            (0, &[1, 4]),
            (1, &[1]),
            (2, &[2]),
            (3, &[5]),
            (4, &[0, 3, 5, 8]),
            (6, &[0, 11, 13, 16]),
            (7, &[0, 7]),
            (8, &[4, 11, 13]),
            (9, &[0, 1, 3]),
            (13, &[0, 5]),
            (14, &[1]),
            (15, &[4]),
            (16, &[0, 8, 13]),
            (17, &[2, 12]),
            (20, &[0]),
        ];
        for &(id, lens) in cases {
            for &len in lens {
                let prefix = u32::try_from(len + 1).unwrap().to_be_bytes();
                let header = [prefix[0], prefix[1], prefix[2], prefix[3], id];
                let result = Message::decode(&header, 1 << 20);
                assert!(
                    matches!(
                        result,
                        Err(DecodeError::Malformed(FrameError::PayloadLength { id: got, len: got_len, .. }))
                            if got == id && got_len == len
                    ),
                    "id {id} len {len}: {result:?}"
                );
            }
        }
    }

    #[test]
    fn unknown_ids_keep_their_payload() {
        let bytes = [0, 0, 0, 3, 99, 0xab, 0xcd, 0, 0, 0, 0];
        assert_eq!(
            Message::decode(&bytes, 100),
            Ok((
                Message::Unknown {
                    id: 99,
                    payload: vec![0xab, 0xcd]
                },
                7
            ))
        );
    }

    #[test]
    fn piece_header_matches_encoded_piece() {
        let data = vec![5u8; 16384];
        let full = Message::Piece {
            piece: 9,
            offset: 32768,
            data: data.clone(),
        }
        .to_bytes();
        let header = piece_header(9, 32768, data.len()).unwrap();
        assert_eq!(&full[..13], &header);
        assert_eq!(piece_header(0, 0, u32::MAX as usize - 8), None);
    }

    #[test]
    fn errors_read_well() {
        let err = DecodeError::from(FrameError::PayloadLength {
            id: 4,
            name: "have",
            len: 3,
            expected: "4 bytes",
        });
        assert_eq!(
            err.to_string(),
            "have (id 4) with a 3-byte payload, expected 4 bytes"
        );
    }
}
