//! A peer that lies, for fault injection: the simulator's liars and the
//! native peer's `corrupt_uploads` (the end-to-end suite) both re-frame
//! their outgoing bytes through [`corrupt_blocks`], so honest peers must
//! catch the bad pieces by SHA-1 and ban the sender.

use super::{Decoder, Frame, Message};

/// The bytes to send instead of `data`, one connection's outgoing stream
/// fed through `stream`: every block payload with each byte flipped,
/// everything else as it was. Whole messages only: a partial one stays
/// buffered in `stream` until the rest comes. Our own engine's output
/// always decodes; a decode error only ends the lie early.
pub fn corrupt_blocks(stream: &mut Decoder, data: &[u8]) -> Vec<u8> {
    stream.push(data);
    let mut out = Vec::with_capacity(data.len());
    while let Ok(Some(frame)) = stream.next() {
        match frame {
            Frame::Handshake(h) => out.extend_from_slice(&h.encode()),
            Frame::Message(Message::Piece {
                piece,
                offset,
                data,
            }) => Message::Piece {
                piece,
                offset,
                data: data.iter().map(|b| !b).collect(),
            }
            .encode(&mut out),
            Frame::Message(m) => m.encode(&mut out),
        }
    }
    out
}
