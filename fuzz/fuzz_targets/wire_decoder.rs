//! The streaming wire decoder over arbitrary bytes, split at arbitrary points.
//!
//! Properties checked on every input:
//! - splitting the stream differently never changes the frames or the error;
//! - the streaming decoder agrees with the slice functions underneath it;
//! - after each drain the decoder holds less than one frame;
//! - every decoded frame re-encodes to exactly the bytes it came from.
#![no_main]

use libfuzzer_sys::fuzz_target;
use swarm::wire::{
    DecodeError, Decoder, Frame, HANDSHAKE_LEN, Handshake, Message, Reserved, WireError,
};
use swarm::{InfoHash, PeerId};

// Input layout: byte 0 picks options (bit 0: prepend a valid handshake so
// most inputs reach the messages; bits 1–2: the message-length bound, small
// ones hit `TooLong`), bytes 1–2 seed the split points, the rest is the
// stream. Seeds in `fuzz/seeds/wire_decoder/` are real captures behind a
// 3-byte header.
fuzz_target!(|data: &[u8]| {
    let (header, bytes) = data.split_at(data.len().min(3));
    let options = header.first().copied().unwrap_or(0);
    let split_seed = u16::from_le_bytes([
        header.get(1).copied().unwrap_or(0),
        header.get(2).copied().unwrap_or(0),
    ]);
    let max_len = match (options >> 1) & 3 {
        0 => swarm::wire::DEFAULT_MAX_MESSAGE_LEN,
        1 => 16 * 1024 + 9,
        2 => 64,
        _ => 5,
    };
    let mut stream = Vec::new();
    if options & 1 == 1 {
        let h = Handshake {
            reserved: Reserved::FANSWARM,
            info_hash: InfoHash([7; 20]),
            peer_id: PeerId([8; 20]),
        };
        stream.extend_from_slice(&h.encode());
    }
    stream.extend_from_slice(bytes);
    let splits = split_lengths(split_seed, stream.len());

    let whole = decode_whole(&stream, max_len);
    let split = decode_split(&stream, max_len, &splits);
    assert_eq!(whole, split, "splitting the stream changed the result");
    let slices = decode_slices(&stream, max_len);
    assert_eq!(whole.0, slices.0, "decoder and slice functions disagree");
    assert_eq!(
        whole.1.is_some(),
        slices.1,
        "decoder and slice functions disagree on failure"
    );
});

/// Frames and the error (if any) from one push of everything.
fn decode_whole(stream: &[u8], max_len: usize) -> (Vec<Frame>, Option<WireError>) {
    let mut decoder = Decoder::new(max_len);
    decoder.push(stream);
    let mut frames = Vec::new();
    let error = drain(&mut decoder, &mut frames, max_len);
    (frames, error)
}

/// The same, pushed in chunks, checking the buffer bound after each drain.
fn decode_split(
    stream: &[u8],
    max_len: usize,
    splits: &[usize],
) -> (Vec<Frame>, Option<WireError>) {
    let mut decoder = Decoder::new(max_len);
    let mut frames = Vec::new();
    let mut rest = stream;
    let mut error = None;
    // `splits` covers the whole stream (see `split_lengths`).
    for &n in splits {
        let (chunk, tail) = rest.split_at(n.min(rest.len()));
        rest = tail;
        decoder.push(chunk);
        error = drain(&mut decoder, &mut frames, max_len);
        if error.is_some() {
            assert!(decoder.is_failed());
            assert_eq!(decoder.buffered_len(), 0, "a failed decoder keeps no bytes");
            decoder.push(rest);
            assert_eq!(
                decoder.next(),
                Err(error.clone().expect("checked")),
                "failure is final"
            );
            break;
        }
        let bound = if decoder.handshake_received() {
            max_len + 3
        } else {
            HANDSHAKE_LEN - 1
        };
        assert!(
            decoder.buffered_len() <= bound,
            "{} bytes buffered after a drain, bound {bound}",
            decoder.buffered_len()
        );
    }
    (frames, error)
}

/// Pulls frames until more bytes are needed or the peer broke the protocol;
/// checks each frame's round trip on the way.
fn drain(decoder: &mut Decoder, frames: &mut Vec<Frame>, max_len: usize) -> Option<WireError> {
    loop {
        match decoder.next() {
            Ok(Some(frame)) => {
                round_trip(&frame, max_len);
                frames.push(frame);
            }
            Ok(None) => return None,
            Err(e) => return Some(e),
        }
    }
}

/// The frames from the slice functions, each checked to re-encode to exactly
/// the bytes it was decoded from; whether they stopped on a malformed frame.
fn decode_slices(stream: &[u8], max_len: usize) -> (Vec<Frame>, bool) {
    let mut frames = Vec::new();
    let mut pos = match Handshake::decode(stream) {
        Ok((h, used)) => {
            assert_eq!(used, HANDSHAKE_LEN);
            assert_eq!(h.encode()[..], stream[..used]);
            frames.push(Frame::Handshake(h));
            used
        }
        Err(DecodeError::Incomplete { needed }) => {
            assert!(needed > 0 && stream.len() < HANDSHAKE_LEN);
            return (frames, false);
        }
        Err(DecodeError::Malformed(_)) => return (frames, true),
    };
    loop {
        match Message::decode(&stream[pos..], max_len) {
            Ok((m, used)) => {
                assert_eq!(
                    m.to_bytes()[..],
                    stream[pos..pos + used],
                    "{m:?} re-encodes differently"
                );
                frames.push(Frame::Message(m));
                pos += used;
            }
            Err(DecodeError::Incomplete { needed }) => {
                assert!(needed > 0);
                return (frames, false);
            }
            Err(DecodeError::Malformed(_)) => return (frames, true),
        }
    }
}

fn round_trip(frame: &Frame, max_len: usize) {
    match frame {
        Frame::Handshake(h) => {
            assert_eq!(Handshake::decode(&h.encode()), Ok((*h, HANDSHAKE_LEN)));
        }
        Frame::Message(m) => {
            let bytes = m.to_bytes();
            assert_eq!(
                Message::decode(&bytes, max_len),
                Ok((m.clone(), bytes.len()))
            );
        }
    }
}

/// Chunk lengths covering `len` bytes, from a small LCG seeded by `seed`:
/// seed 0 is one chunk; otherwise 1..=`seed`-dependent sizes, many of them
/// tiny, so frames are cut at every kind of boundary.
fn split_lengths(seed: u16, len: usize) -> Vec<usize> {
    if seed == 0 {
        return vec![len];
    }
    let mut state = u32::from(seed);
    let mut out = Vec::new();
    let mut covered = 0;
    while covered < len {
        state = state.wrapping_mul(1_103_515_245).wrapping_add(12_345);
        let n = match (state >> 16) % 4 {
            0 => 1,
            1 => 1 + (state >> 20) as usize % 8,
            2 => 1 + (state >> 18) as usize % 100,
            _ => 1 + (state >> 12) as usize % 20_000,
        };
        out.push(n);
        covered += n;
    }
    out
}
