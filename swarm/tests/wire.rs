//! The wire codec against a WebTorrent byte capture, under every way a data
//! channel can split or coalesce it, and against seeded random garbage.
//!
//! The capture is what a WebTorrent 3 browser peer that seeds a one-piece
//! track sends on a fresh data channel, one entry per channel message, built
//! byte by byte from the facts in shared/INTEROP.md: handshake with the BEP 10
//! and fast bits, extended handshake `{m: {lt_donthave: 2, ut_metadata: 1},
//! metadata_size}`, have_all, unchoke, a ut_metadata reply, a `piece` sent as
//! a 13-byte header followed by the block, a reject and a keep-alive.
#![allow(clippy::unwrap_used)]

use data_encoding::HEXLOWER;
use fastrand::Rng;
use sha1::{Digest, Sha1};

use swarm::sorted::SortedMap;
use swarm::wire::extension::{ExtendedHandshake, LT_DONTHAVE, UT_METADATA};
use swarm::wire::metadata::{MetadataAssembler, MetadataMessage};
use swarm::wire::{
    BlockRef, DEFAULT_MAX_MESSAGE_LEN, DecodeError, Decoder, Frame, Handshake, Message, Reserved,
    WireError, piece_header,
};
use swarm::{InfoHash, PeerId};

/// SHA-1 of [`INFO_DICT`]: the swarm the capture belongs to.
const INFO_HASH_HEX: &str = "20e15c18ce3ccd950c4d488fcc5548aefc2264e9";

/// The info dictionary of the captured swarm (87 bytes, one 64 KiB piece).
const INFO_DICT: &[u8] = b"d6:lengthi65536e4:name9:track.mp312:piece lengthi65536e6:pieces20:\
\xa0\xa1\xa2\xa3\xa4\xa5\xa6\xa7\xa8\xa9\xaa\xab\xac\xad\xae\xaf\xb0\xb1\xb2\xb3e";

/// The message id we advertised for ut_metadata in our own extended
/// handshake, so the peer's ut_metadata messages arrive under it.
const OUR_UT_METADATA_ID: u8 = 3;

const PEER_ID: &[u8; 20] = b"-WW0300-dn7Uq4bXyK2e";

/// The capture: one entry per data channel message the WebTorrent peer sent.
fn webtorrent_capture() -> Vec<Vec<u8>> {
    vec![
        // Handshake: pstrlen, pstr, reserved (byte 5 0x10 BEP 10, byte 7 0x04 fast),
        // info hash, peer id.
        cat(&[
            &hex("13"),
            b"BitTorrent protocol",
            &hex("00000000 00100004"),
            &hex(INFO_HASH_HEX),
            PEER_ID,
        ]),
        // Extended handshake: length 63, id 20, extension id 0, dictionary.
        cat(&[
            &hex("0000003f 14 00"),
            b"d1:md11:lt_donthavei2e11:ut_metadatai1ee13:metadata_sizei87ee",
        ]),
        // have_all, unchoke.
        hex("00000001 0e"),
        hex("00000001 01"),
        // ut_metadata data, piece 0 of 87 bytes, under our id for ut_metadata.
        cat(&[
            &hex("00000083 14 03"),
            b"d8:msg_typei1e5:piecei0e10:total_sizei87ee",
            INFO_DICT,
        ]),
        // piece 0, offset 16384: the 13-byte header, then the block on its own.
        hex("00004009 07 00000000 00004000"),
        block(),
        // reject piece 0, offset 32768, length 16384.
        hex("0000000d 10 00000000 00008000 00004000"),
        // keep-alive.
        hex("00000000"),
    ]
}

/// What the capture means, written independently of the decoder.
fn expected_frames() -> Vec<Frame> {
    vec![
        Frame::Handshake(Handshake {
            reserved: Reserved([0, 0, 0, 0, 0, 0x10, 0, 0x04]),
            info_hash: InfoHash::from_hex(INFO_HASH_HEX).unwrap(),
            peer_id: PeerId(*PEER_ID),
        }),
        Frame::Message(Message::Extended {
            id: 0,
            payload: b"d1:md11:lt_donthavei2e11:ut_metadatai1ee13:metadata_sizei87ee".to_vec(),
        }),
        Frame::Message(Message::HaveAll),
        Frame::Message(Message::Unchoke),
        Frame::Message(Message::Extended {
            id: OUR_UT_METADATA_ID,
            payload: cat(&[b"d8:msg_typei1e5:piecei0e10:total_sizei87ee", INFO_DICT]),
        }),
        Frame::Message(Message::Piece {
            piece: 0,
            offset: 16384,
            data: block(),
        }),
        Frame::Message(Message::Reject(BlockRef {
            piece: 0,
            offset: 32768,
            length: 16384,
        })),
        Frame::Message(Message::KeepAlive),
    ]
}

#[test]
fn capture_decodes_to_the_expected_frames() {
    let mut decoder = Decoder::default();
    let mut frames = Vec::new();
    for message in webtorrent_capture() {
        decoder.push(&message);
        frames.extend(drain(&mut decoder).unwrap());
    }
    assert_eq!(frames, expected_frames());
    assert_eq!(decoder.buffered_len(), 0);
}

#[test]
fn we_encode_exactly_what_webtorrent_sends() {
    let capture = webtorrent_capture();
    let ours = Handshake {
        reserved: Reserved::FANSWARM,
        info_hash: InfoHash::from_hex(INFO_HASH_HEX).unwrap(),
        peer_id: PeerId(*PEER_ID),
    };
    assert_eq!(ours.encode().as_slice(), capture[0].as_slice());

    let extended = ExtendedHandshake {
        m: SortedMap::from([(UT_METADATA.to_owned(), 1), (LT_DONTHAVE.to_owned(), 2)]),
        metadata_size: Some(INFO_DICT.len() as u64),
        ..ExtendedHandshake::default()
    };
    assert_eq!(extended.to_message().to_bytes(), capture[1]);

    let data = MetadataMessage::Data {
        piece: 0,
        total_size: INFO_DICT.len() as u64,
        data: INFO_DICT.to_vec(),
    };
    assert_eq!(data.to_message(OUR_UT_METADATA_ID).to_bytes(), capture[4]);
    assert_eq!(
        piece_header(0, 16384, block().len()).unwrap().as_slice(),
        capture[5]
    );

    // And every frame re-encodes to the captured stream, byte for byte.
    let mut encoded = Vec::new();
    for frame in expected_frames() {
        match frame {
            Frame::Handshake(handshake) => encoded.extend_from_slice(&handshake.encode()),
            Frame::Message(message) => message.encode(&mut encoded),
        }
    }
    assert_eq!(encoded, capture.concat());
}

#[test]
fn magnet_flow_from_the_capture() {
    let frames = expected_frames();
    let Frame::Handshake(handshake) = &frames[0] else {
        unreachable!()
    };
    assert!(handshake.reserved.extension_protocol());
    assert!(handshake.reserved.fast());
    let Frame::Message(Message::Extended { id: 0, payload }) = &frames[1] else {
        unreachable!()
    };
    let theirs = ExtendedHandshake::decode(payload).unwrap();
    assert_eq!(theirs.id_of(UT_METADATA), Some(1));
    let mut assembler = MetadataAssembler::new(theirs.metadata_size.unwrap()).unwrap();
    assert_eq!(assembler.missing().collect::<Vec<_>>(), [0]);

    let Frame::Message(Message::Extended { id, payload }) = &frames[4] else {
        unreachable!()
    };
    assert_eq!(*id, OUR_UT_METADATA_ID);
    let MetadataMessage::Data {
        piece,
        total_size,
        data,
    } = MetadataMessage::decode(payload).unwrap()
    else {
        panic!("expected a ut_metadata data message")
    };
    assert_eq!(total_size, assembler.total_size());
    assembler.insert(piece, &data).unwrap();
    assert!(assembler.is_complete());
    assert_eq!(assembler.finish(handshake.info_hash).unwrap(), INFO_DICT);
}

#[test]
fn every_single_split_offset_gives_the_same_frames() {
    let stream = webtorrent_capture().concat();
    let expected = expected_frames();
    for split in 0..=stream.len() {
        let (frames, error) = decode_chunks([&stream[..split], &stream[split..]]);
        assert_eq!(error, None, "split at {split}");
        assert!(frames == expected, "split at {split}");
    }
}

#[test]
fn every_pair_of_split_offsets_gives_the_same_frames() {
    // The capture without the 16 KiB block, so all ~n²/2 pairs stay quick.
    let mut capture = webtorrent_capture();
    capture.drain(5..7);
    let stream = capture.concat();
    let mut expected = expected_frames();
    expected.remove(5);
    for a in 0..=stream.len() {
        for b in a..=stream.len() {
            let (frames, error) = decode_chunks([&stream[..a], &stream[a..b], &stream[b..]]);
            assert_eq!(error, None, "splits at {a} and {b}");
            assert!(frames == expected, "splits at {a} and {b}");
        }
    }
}

#[test]
fn byte_by_byte_and_all_at_once_give_the_same_frames() {
    let stream = webtorrent_capture().concat();
    let (frames, error) = decode_chunks(stream.chunks(1));
    assert_eq!((frames, error), (expected_frames(), None));
    let (frames, error) = decode_chunks([stream.as_slice()]);
    assert_eq!((frames, error), (expected_frames(), None));
    // Three captures back to back on one decoder: only one handshake is a
    // handshake; the second one's bytes are a message with a bad length.
    let mut decoder = Decoder::default();
    decoder.push(&stream);
    decoder.push(&stream);
    let mut frames = Vec::new();
    let error = drain_into(&mut decoder, &mut frames).unwrap_err();
    assert_eq!(frames, expected_frames());
    assert!(matches!(error, WireError::Message(_)), "{error}");
}

#[test]
fn random_chunkings_give_the_same_frames() {
    let stream = webtorrent_capture().concat();
    let mut rng = Rng::with_seed(0x5eed_0001);
    for _ in 0..300 {
        let chunks = random_chunks(&mut rng, &stream);
        let (frames, error) = decode_chunks(chunks.iter().copied());
        assert_eq!(error, None);
        assert!(frames == expected_frames());
    }
}

#[test]
fn random_valid_streams_round_trip_under_random_splits() {
    let mut rng = Rng::with_seed(0x5eed_0002);
    for _ in 0..500 {
        let handshake = Handshake {
            reserved: Reserved(random_array(&mut rng)),
            info_hash: InfoHash(random_array(&mut rng)),
            peer_id: PeerId(random_array(&mut rng)),
        };
        let messages: Vec<Message> = (0..rng.usize(0..20))
            .map(|_| random_message(&mut rng))
            .collect();
        let mut stream = handshake.encode().to_vec();
        for message in &messages {
            message.encode(&mut stream);
        }
        let mut expected = vec![Frame::Handshake(handshake)];
        expected.extend(messages.into_iter().map(Frame::Message));
        let chunks = random_chunks(&mut rng, &stream);
        let (frames, error) = decode_chunks(chunks.iter().copied());
        assert_eq!(error, None);
        assert!(frames == expected);
    }
}

#[test]
fn random_garbage_never_panics_and_is_split_invariant() {
    let mut rng = Rng::with_seed(0x5eed_0003);
    let valid = webtorrent_capture().concat();
    let mut failures = 0;
    for round in 0..3000 {
        let stream = match round % 3 {
            // Pure noise.
            0 => random_bytes(&mut rng, 0..400),
            // A valid handshake followed by loosely structured frames.
            1 => {
                let mut stream = valid[..68].to_vec();
                stream.extend(structured_garbage(&mut rng));
                stream
            }
            // The capture with a few bytes flipped.
            _ => {
                let mut stream = valid.clone();
                for _ in 0..rng.usize(1..4) {
                    let at = rng.usize(..stream.len());
                    stream[at] = rng.u8(..);
                }
                stream.truncate(rng.usize(..=stream.len()));
                stream
            }
        };
        let max = [16, 1000, DEFAULT_MAX_MESSAGE_LEN][rng.usize(..3)];
        let whole = decode_chunks_with([stream.as_slice()], max);
        let split = decode_chunks_with(random_chunks(&mut rng, &stream).iter().copied(), max);
        let bytewise = decode_chunks_with(stream.chunks(1), max);
        assert_eq!(whole, split, "round {round}");
        assert_eq!(whole, bytewise, "round {round}");
        failures += usize::from(whole.1.is_some());
    }
    // The generator must exercise both outcomes, or the test proves little.
    assert!(failures > 500 && failures < 2900, "{failures} failures");
}

#[test]
fn slice_decoders_never_panic_and_valid_frames_re_encode_exactly() {
    let mut rng = Rng::with_seed(0x5eed_0004);
    let mut decoded = 0;
    for _ in 0..20_000 {
        let buf = if rng.bool() {
            structured_garbage(&mut rng)
        } else {
            random_bytes(&mut rng, 0..80)
        };
        let max = rng.usize(0..300);
        match Message::decode(&buf, max) {
            Ok((message, used)) => {
                assert!(used <= buf.len() && used <= max + 4);
                assert_eq!(message.to_bytes(), &buf[..used]);
                decoded += 1;
            }
            Err(DecodeError::Incomplete { needed }) => assert!(needed > 0),
            Err(DecodeError::Malformed(_)) => {}
        }
        if let Ok((handshake, 68)) = Handshake::decode(&buf) {
            assert_eq!(handshake.encode().as_slice(), &buf[..68]);
        }
    }
    assert!(decoded > 1000, "only {decoded} frames decoded");
}

#[test]
fn extension_parsers_never_panic_on_garbage() {
    let mut rng = Rng::with_seed(0x5eed_0005);
    let seeds: [&[u8]; 3] = [
        b"d1:md11:lt_donthavei2e11:ut_metadatai1ee13:metadata_sizei87ee",
        b"d8:msg_typei1e5:piecei0e10:total_sizei87eed6:lengthi1e",
        b"d8:msg_typei0e5:piecei12ee",
    ];
    // Bencode's own alphabet makes the garbage reach deep into the parser.
    let alphabet = b"dlie0123456789:-xd";
    let mut parsed = 0;
    for _ in 0..20_000 {
        let payload: Vec<u8> = match rng.u8(..3) {
            0 => (0..rng.usize(0..60))
                .map(|_| alphabet[rng.usize(..alphabet.len())])
                .collect(),
            1 => random_bytes(&mut rng, 0..60),
            _ => {
                let mut payload = seeds[rng.usize(..seeds.len())].to_vec();
                let at = rng.usize(..payload.len());
                payload[at] = alphabet[rng.usize(..alphabet.len())];
                payload.truncate(rng.usize(..=payload.len()));
                payload
            }
        };
        let handshake = ExtendedHandshake::decode(&payload);
        let metadata = MetadataMessage::decode(&payload);
        parsed += usize::from(handshake.is_ok()) + usize::from(metadata.is_ok());
        if let Ok(message) = metadata {
            assert_eq!(MetadataMessage::decode(&message.encode()), Ok(message));
        }
        if let Ok(handshake) = handshake {
            assert_eq!(
                ExtendedHandshake::decode(&handshake.encode()),
                Ok(handshake)
            );
        }
    }
    assert!(parsed > 500, "only {parsed} payloads parsed");
}

#[test]
fn an_assembled_lie_is_rejected() {
    let mut assembler = MetadataAssembler::new(INFO_DICT.len() as u64).unwrap();
    let mut lie = INFO_DICT.to_vec();
    lie[10] ^= 0x20;
    assembler.insert(0, &lie).unwrap();
    let expected = InfoHash(Sha1::digest(INFO_DICT).into());
    assert!(assembler.finish(expected).is_err());
}

// Helpers.

type Outcome = (Vec<Frame>, Option<WireError>);

fn decode_chunks<'a>(chunks: impl IntoIterator<Item = &'a [u8]>) -> Outcome {
    decode_chunks_with(chunks, DEFAULT_MAX_MESSAGE_LEN)
}

/// Feeds `chunks` one push at a time, draining after each, until the stream
/// ends or the decoder fails; checks the buffering bound along the way.
fn decode_chunks_with<'a>(chunks: impl IntoIterator<Item = &'a [u8]>, max: usize) -> Outcome {
    let mut decoder = Decoder::new(max);
    let mut frames = Vec::new();
    for chunk in chunks {
        decoder.push(chunk);
        if let Err(error) = drain_into(&mut decoder, &mut frames) {
            assert_eq!(decoder.buffered_len(), 0);
            return (frames, Some(error));
        }
        assert!(decoder.buffered_len() < (max + 4).max(68));
    }
    (frames, None)
}

fn drain(decoder: &mut Decoder) -> Result<Vec<Frame>, WireError> {
    let mut frames = Vec::new();
    drain_into(decoder, &mut frames)?;
    Ok(frames)
}

/// Moves every ready frame into `frames`, keeping those before an error.
fn drain_into(decoder: &mut Decoder, frames: &mut Vec<Frame>) -> Result<(), WireError> {
    while let Some(frame) = decoder.next()? {
        frames.push(frame);
    }
    Ok(())
}

/// Cuts `stream` into 1 to 12 chunks at random places (empty chunks included).
fn random_chunks<'a>(rng: &mut Rng, stream: &'a [u8]) -> Vec<&'a [u8]> {
    let mut cuts: Vec<usize> = (0..rng.usize(0..12))
        .map(|_| rng.usize(..=stream.len()))
        .collect();
    cuts.sort_unstable();
    let mut chunks = Vec::new();
    let mut from = 0;
    for cut in cuts {
        chunks.push(&stream[from..cut]);
        from = cut;
    }
    chunks.push(&stream[from..]);
    chunks
}

/// Frames with random ids (known and unknown) and mostly small random
/// lengths, so that both valid messages and every kind of error come up.
fn structured_garbage(rng: &mut Rng) -> Vec<u8> {
    let mut out = Vec::new();
    for _ in 0..rng.usize(1..6) {
        let len = match rng.u8(..10) {
            0 => rng.u32(..),
            1 => 0,
            _ => rng.u32(1..20),
        };
        out.extend_from_slice(&len.to_be_bytes());
        out.push(rng.u8(0..24));
        let payload = len.saturating_sub(1).min(40) as usize;
        out.extend(random_bytes(rng, payload..payload + 1));
    }
    out
}

fn random_message(rng: &mut Rng) -> Message {
    let block = BlockRef {
        piece: rng.u32(..),
        offset: rng.u32(..),
        length: rng.u32(..),
    };
    match rng.u8(..19) {
        0 => Message::KeepAlive,
        1 => Message::Choke,
        2 => Message::Unchoke,
        3 => Message::Interested,
        4 => Message::NotInterested,
        5 => Message::Have { piece: rng.u32(..) },
        6 => Message::Bitfield(random_bytes(rng, 0..50)),
        7 => Message::Request(block),
        8 => Message::Piece {
            piece: rng.u32(..),
            offset: rng.u32(..),
            data: random_bytes(rng, 0..20_000),
        },
        9 => Message::Cancel(block),
        10 => Message::Port(rng.u16(..)),
        11 => Message::Suggest { piece: rng.u32(..) },
        12 => Message::HaveAll,
        13 => Message::HaveNone,
        14 => Message::Reject(block),
        15 => Message::AllowedFast { piece: rng.u32(..) },
        16 => Message::Extended {
            id: rng.u8(..),
            payload: random_bytes(rng, 0..100),
        },
        _ => Message::Unknown {
            id: [10, 11, 12, 18, 19, 21, 255][rng.usize(..7)],
            payload: random_bytes(rng, 0..30),
        },
    }
}

fn random_bytes(rng: &mut Rng, len: std::ops::Range<usize>) -> Vec<u8> {
    let len = rng.usize(len);
    (0..len).map(|_| rng.u8(..)).collect()
}

fn random_array<const N: usize>(rng: &mut Rng) -> [u8; N] {
    std::array::from_fn(|_| rng.u8(..))
}

/// Deterministic block contents: 16 KiB that are not all one value.
fn block() -> Vec<u8> {
    (0..16384u32).map(|i| (i % 253) as u8).collect()
}

fn hex(s: &str) -> Vec<u8> {
    HEXLOWER.decode(s.replace(' ', "").as_bytes()).unwrap()
}

fn cat(parts: &[&[u8]]) -> Vec<u8> {
    parts.concat()
}
