//! The streaming decoder: bytes in as they arrive, whole frames out.
//!
//! A data channel delivers the peer's byte stream in arbitrary pieces:
//! WebTorrent sends a `piece` as a 13-byte header followed by the block, and
//! several small messages may share one channel message. [`Decoder`] buffers
//! the bytes and hands out [`Frame`]s: first exactly one handshake, then
//! messages.
//!
//! Invariants:
//! - Bytes before `start` in `buf` are consumed; `buf[start..]` is what
//!   [`Decoder::buffered_len`] reports.
//! - Consumed bytes are dropped by moving the rest to the front only when the
//!   rest is no longer than what was consumed since the last move, so the
//!   bytes moved never exceed the bytes consumed: amortised O(n).
//! - After `next` answers `Ok(None)`, fewer than one whole frame is buffered:
//!   at most `max_message_len + 3` bytes (or 67 before the handshake), because
//!   a too-long length prefix is an error as soon as its 4 bytes are in.
//! - Once failed, always failed: later bytes are dropped unbuffered and `next`
//!   repeats the error.

use super::codec::{DecodeError, FrameError};
use super::{DEFAULT_MAX_MESSAGE_LEN, Frame, HANDSHAKE_LEN, Handshake, Message};

/// Turns a peer's byte stream into frames. One per connection.
///
/// Drain [`Decoder::next`] until it answers `Ok(None)` after every
/// [`Decoder::push`]: the decoder then holds at most one partial frame.
#[derive(Debug)]
pub struct Decoder {
    max_message_len: usize,
    buf: Vec<u8>,
    start: usize,
    state: State,
}

/// The peer broke the wire protocol: drop the connection. There is no
/// "incomplete" case here; that is `Ok(None)` from [`Decoder::next`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum WireError {
    /// The first 68 bytes were not a BitTorrent handshake.
    #[error("bad handshake: {0}")]
    Handshake(#[source] FrameError),
    /// A message after the handshake was malformed or too long.
    #[error("bad message: {0}")]
    Message(#[source] FrameError),
}

impl Decoder {
    /// A decoder that rejects messages whose length prefix (id + payload)
    /// exceeds `max_message_len`; [`DEFAULT_MAX_MESSAGE_LEN`] suits WebTorrent.
    pub fn new(max_message_len: usize) -> Self {
        Decoder {
            max_message_len,
            buf: Vec::new(),
            start: 0,
            state: State::AwaitingHandshake,
        }
    }

    /// Appends bytes received from the peer (copied). Ignored once the
    /// decoder failed. Memory held beyond one partial frame is only what the
    /// caller pushed and has not drained with [`Decoder::next`] yet.
    pub fn push(&mut self, bytes: &[u8]) {
        if matches!(self.state, State::Failed(_)) || bytes.is_empty() {
            return;
        }
        self.compact();
        self.buf.extend_from_slice(bytes);
    }

    /// The next frame: `Ok(Some(_))` a frame, `Ok(None)` more bytes are
    /// needed, `Err(_)` the peer broke the protocol (and every later call
    /// returns the same error).
    #[allow(
        clippy::should_implement_trait,
        reason = "the agreed API name; a step that can fail for good is not an Iterator"
    )]
    pub fn next(&mut self) -> Result<Option<Frame>, WireError> {
        let available = &self.buf[self.start..];
        let result = match &self.state {
            State::Failed(error) => return Err(error.clone()),
            State::AwaitingHandshake => Handshake::decode(available)
                .map(|(handshake, used)| (Frame::Handshake(handshake), used))
                .map_err(|e| e.map_malformed(WireError::Handshake)),
            State::Messages => Message::decode(available, self.max_message_len)
                .map(|(message, used)| (Frame::Message(message), used))
                .map_err(|e| e.map_malformed(WireError::Message)),
        };
        match result {
            Ok((frame, used)) => {
                self.consume(used);
                self.state = State::Messages;
                Ok(Some(frame))
            }
            Err(Pending::Incomplete) => Ok(None),
            Err(Pending::Failed(error)) => {
                self.state = State::Failed(error.clone());
                self.buf = Vec::new();
                self.start = 0;
                Err(error)
            }
        }
    }

    /// Bytes received and not yet returned as frames.
    pub fn buffered_len(&self) -> usize {
        self.buf.len() - self.start
    }

    /// Whether the peer's handshake has been returned.
    pub fn handshake_received(&self) -> bool {
        matches!(self.state, State::Messages)
    }

    /// Whether the decoder has failed and will only repeat its error.
    pub fn is_failed(&self) -> bool {
        matches!(self.state, State::Failed(_))
    }

    /// The bound on a message's length prefix this decoder enforces.
    pub fn max_message_len(&self) -> usize {
        self.max_message_len
    }

    /// Marks `used` bytes at the front as consumed.
    fn consume(&mut self, used: usize) {
        self.start += used;
        if self.start == self.buf.len() {
            // The common case: the last push ended on a frame boundary.
            self.buf.clear();
            self.start = 0;
            self.release_excess();
        }
    }

    /// Drops consumed bytes when that costs no more than consuming them did.
    fn compact(&mut self) {
        if self.start == 0 || self.start < self.buf.len() - self.start {
            return;
        }
        self.buf.drain(..self.start);
        self.start = 0;
        self.release_excess();
    }

    /// Gives back capacity a burst of coalesced frames left behind, keeping
    /// room for one whole frame. Shrinks only from over twice that, so the
    /// reallocation is paid for by the growth before it.
    fn release_excess(&mut self) {
        let one_frame = HANDSHAKE_LEN.max(self.max_message_len.saturating_add(4));
        if self.buf.capacity() > one_frame.saturating_mul(2) && self.buf.len() <= one_frame {
            self.buf.shrink_to(one_frame);
        }
    }
}

impl Default for Decoder {
    /// A decoder bounded by [`DEFAULT_MAX_MESSAGE_LEN`].
    fn default() -> Self {
        Decoder::new(DEFAULT_MAX_MESSAGE_LEN)
    }
}

/// Where the decoder is in the stream.
#[derive(Debug)]
enum State {
    /// Nothing returned yet; the first 68 bytes must be a handshake.
    AwaitingHandshake,
    /// The handshake was returned; length-prefixed messages follow.
    Messages,
    /// The peer broke the protocol; this error repeats forever.
    Failed(WireError),
}

/// A decode step that produced no frame.
enum Pending {
    Incomplete,
    Failed(WireError),
}

impl DecodeError {
    fn map_malformed(self, wrap: fn(FrameError) -> WireError) -> Pending {
        match self {
            DecodeError::Incomplete { .. } => Pending::Incomplete,
            DecodeError::Malformed(error) => Pending::Failed(wrap(error)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ids::{InfoHash, PeerId};
    use crate::wire::{BlockRef, Reserved};

    fn handshake() -> Handshake {
        Handshake {
            reserved: Reserved::FANSWARM,
            info_hash: InfoHash([3; 20]),
            peer_id: PeerId(*b"-WW0300-0123456789ab"),
        }
    }

    fn drain(decoder: &mut Decoder) -> Result<Vec<Frame>, WireError> {
        let mut frames = Vec::new();
        while let Some(frame) = decoder.next()? {
            frames.push(frame);
        }
        Ok(frames)
    }

    #[test]
    fn handshake_then_messages() {
        let mut decoder = Decoder::default();
        assert_eq!(decoder.next(), Ok(None));
        let mut bytes = handshake().encode().to_vec();
        Message::Interested.encode(&mut bytes);
        Message::KeepAlive.encode(&mut bytes);
        decoder.push(&bytes);
        assert!(!decoder.handshake_received());
        assert_eq!(decoder.next(), Ok(Some(Frame::Handshake(handshake()))));
        assert!(decoder.handshake_received());
        assert_eq!(
            decoder.next(),
            Ok(Some(Frame::Message(Message::Interested)))
        );
        assert_eq!(decoder.next(), Ok(Some(Frame::Message(Message::KeepAlive))));
        assert_eq!(decoder.next(), Ok(None));
        assert_eq!(decoder.buffered_len(), 0);
    }

    #[test]
    fn a_message_before_the_handshake_is_an_error() {
        let mut decoder = Decoder::default();
        decoder.push(&Message::Interested.to_bytes());
        assert_eq!(
            decoder.next(),
            Err(WireError::Handshake(FrameError::ProtocolLength(0)))
        );
    }

    #[test]
    fn stays_failed_and_stops_buffering() {
        let mut decoder = Decoder::new(1000);
        decoder.push(&handshake().encode());
        decoder.push(&[0, 0, 0x10, 0, 7]);
        assert!(decoder.next().unwrap().is_some());
        let error = WireError::Message(FrameError::TooLong {
            len: 0x1000,
            max: 1000,
        });
        assert_eq!(decoder.next(), Err(error.clone()));
        assert!(decoder.is_failed());
        assert_eq!(decoder.buffered_len(), 0);
        decoder.push(&Message::Choke.to_bytes());
        assert_eq!(decoder.buffered_len(), 0);
        assert_eq!(decoder.next(), Err(error.clone()));
        assert_eq!(decoder.next(), Err(error));
    }

    #[test]
    fn a_huge_length_prefix_fails_without_waiting_for_it() {
        let mut decoder = Decoder::default();
        decoder.push(&handshake().encode());
        decoder.push(&[0x7f, 0xff]);
        assert!(decoder.next().unwrap().is_some());
        assert_eq!(decoder.next(), Ok(None));
        decoder.push(&[0xff, 0xff]);
        assert!(matches!(
            decoder.next(),
            Err(WireError::Message(FrameError::TooLong { .. }))
        ));
    }

    #[test]
    fn after_draining_less_than_one_frame_is_buffered() {
        let max = 16 * 1024 + 9;
        let mut decoder = Decoder::new(max);
        let piece = Message::Piece {
            piece: 1,
            offset: 0,
            data: vec![7; 16 * 1024],
        }
        .to_bytes();
        let mut stream = handshake().encode().to_vec();
        for _ in 0..20 {
            stream.extend_from_slice(&piece);
        }
        let mut frames = 0;
        for chunk in stream.chunks(1000) {
            decoder.push(chunk);
            frames += drain(&mut decoder).unwrap().len();
            assert!(decoder.buffered_len() < max + 4);
            assert!(decoder.buf.capacity() <= 2 * (max + 4) + 1000);
        }
        assert_eq!(frames, 21);
        assert_eq!(decoder.buffered_len(), 0);
    }

    #[test]
    fn compaction_moves_each_byte_a_bounded_number_of_times() {
        // The costly pattern for a naive buffer: a large backlog, then one
        // small push per frame taken. Shifting the backlog on every push would
        // move ~90 KB 10,000 times; the decoder must move at most what it
        // consumed. (Draining after every push is cheap either way.)
        let have = Message::Have { piece: 5 }.to_bytes();
        let mut stream = handshake().encode().to_vec();
        for _ in 0..20_000 {
            stream.extend_from_slice(&have);
        }
        let (backlog, rest) = stream.split_at(68 + 10_000 * have.len());
        let mut decoder = Decoder::default();
        decoder.push(backlog);
        let mut moved = 0usize;
        let mut frames = 0usize;
        for chunk in rest.chunks(have.len()) {
            let (before, start_before) = (decoder.buffered_len(), decoder.start);
            decoder.push(chunk);
            if decoder.start == 0 && start_before != 0 {
                moved += before;
            }
            frames += usize::from(decoder.next().unwrap().is_some());
        }
        frames += drain(&mut decoder).unwrap().len();
        assert_eq!(frames, 20_001);
        assert!(moved <= stream.len(), "moved {moved} of {}", stream.len());
        assert!(moved > 0, "the backlog was never compacted");
    }

    #[test]
    fn capacity_shrinks_after_a_burst() {
        let max = 1024;
        let mut decoder = Decoder::new(max);
        let mut burst = handshake().encode().to_vec();
        let request = Message::Request(BlockRef {
            piece: 1,
            offset: 0,
            length: 16384,
        })
        .to_bytes();
        while burst.len() < 1 << 20 {
            burst.extend_from_slice(&request);
        }
        burst.extend_from_slice(&request[..5]);
        decoder.push(&burst);
        assert!(drain(&mut decoder).unwrap().len() > 60_000);
        decoder.push(&request[5..9]);
        assert!(decoder.buf.capacity() <= 2 * (max + 4));
        decoder.push(&request[9..]);
        assert_eq!(drain(&mut decoder).unwrap().len(), 1);

        // A burst that ends on a frame boundary is released when drained.
        burst.truncate(burst.len() - 5);
        let mut decoder = Decoder::new(max);
        decoder.push(&burst);
        assert!(decoder.buf.capacity() >= 1 << 20);
        assert!(drain(&mut decoder).unwrap().len() > 60_000);
        assert_eq!(decoder.buffered_len(), 0);
        assert!(decoder.buf.capacity() <= 2 * (max + 4));
    }
}
