//! The streaming wire decoder over arbitrary bytes, split at arbitrary points.
//!
//! Properties checked on every input:
//! - splitting the stream differently never changes the frames or the error;
//! - the streaming decoder agrees with the slice functions underneath it;
//! - after each drain the decoder holds less than one frame;
//! - every decoded frame re-encodes to exactly the bytes it came from.
#![no_main]

use arbitrary::Arbitrary;
use libfuzzer_sys::fuzz_target;
use swarm::wire::{
    DecodeError, Decoder, Frame, HANDSHAKE_LEN, Handshake, Message, Reserved, WireError,
};
use swarm::{InfoHash, PeerId};

#[derive(Debug, Arbitrary)]
struct Input {
    /// Start with a valid handshake, so most inputs reach the messages.
    valid_handshake: bool,
    /// Picks the decoder's message-length bound (small ones hit `TooLong`).
    max_len: u16,
    /// Chunk lengths to split the stream into (cycled; 0 means 1).
    splits: Vec<u8>,
    bytes: Vec<u8>,
}

fuzz_target!(|input: Input| {
    let max_len = match input.max_len % 4 {
        0 => swarm::wire::DEFAULT_MAX_MESSAGE_LEN,
        _ => usize::from(input.max_len % 1024),
    };
    let mut stream = Vec::new();
    if input.valid_handshake {
        let h = Handshake {
            reserved: Reserved::FANSWARM,
            info_hash: InfoHash([7; 20]),
            peer_id: PeerId([8; 20]),
        };
        stream.extend_from_slice(&h.encode());
    }
    stream.extend_from_slice(&input.bytes);

    let whole = decode_whole(&stream, max_len);
    let split = decode_split(&stream, max_len, &input.splits);
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
fn decode_split(stream: &[u8], max_len: usize, splits: &[u8]) -> (Vec<Frame>, Option<WireError>) {
    let mut decoder = Decoder::new(max_len);
    let mut frames = Vec::new();
    let mut rest = stream;
    let mut i = 0;
    let mut error = None;
    while !rest.is_empty() {
        let n = splits
            .get(i % splits.len().max(1))
            .map_or(rest.len(), |&n| usize::from(n.max(1)));
        let (chunk, tail) = rest.split_at(n.min(rest.len()));
        rest = tail;
        i += 1;
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
