//! Fault injection for the end-to-end suite: a peer that lies.
//!
//! With [`crate::PeerOptions::corrupt_uploads`] set, every block the peer
//! serves has each byte flipped, while everything else it says stays valid.
//! Honest peers must detect the bad pieces by SHA-1, ban the liar and fetch
//! the pieces elsewhere; the suite checks that they do.

use swarm::wire::Decoder;
use swarm::wire::fault::corrupt_blocks;

/// Re-frames one connection's outgoing byte stream, corrupting block payloads.
#[derive(Debug)]
pub(crate) struct Liar {
    stream: Decoder,
}

impl Liar {
    pub(crate) fn new() -> Liar {
        Liar {
            stream: Decoder::new(1 << 20),
        }
    }

    /// The bytes to send instead of `data`: whole messages only, any partial
    /// message stays buffered until the rest arrives.
    pub(crate) fn corrupt(&mut self, data: &[u8]) -> Vec<u8> {
        corrupt_blocks(&mut self.stream, data)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use swarm::wire::{Handshake, Message, Reserved};
    use swarm::{InfoHash, PeerId};

    #[test]
    fn flips_block_payloads_and_keeps_other_messages() {
        let handshake = Handshake {
            reserved: Reserved::FANSWARM,
            info_hash: InfoHash([1; 20]),
            peer_id: PeerId([2; 20]),
        };
        let stream = |block: Vec<u8>| {
            let mut bytes = handshake.encode().to_vec();
            Message::Have { piece: 3 }.encode(&mut bytes);
            Message::Piece {
                piece: 1,
                offset: 0,
                data: block,
            }
            .encode(&mut bytes);
            bytes
        };
        let honest = stream(vec![0, 1, 2, 255]);
        let mut liar = Liar::new();
        // Split mid-message: the tail completes it.
        let (a, b) = honest.split_at(honest.len() - 2);
        let mut sent = liar.corrupt(a);
        sent.extend(liar.corrupt(b));
        assert_eq!(sent, stream(vec![255, 254, 253, 0]));
    }
}
