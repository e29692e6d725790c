//! Where each verified piece's bytes came from, for the shell to show (the
//! player's piece map) — recorded once, when the piece verifies.
//!
//! Kept apart from the piece store on purpose: it is history, not storage.
//! A piece's origin stays known even if the store later drops its bytes.

use crate::ids::PeerId;

/// Who delivered a block.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Source {
    /// A peer, by the id from its handshake.
    Peer(PeerId),
    /// The HTTP web seed.
    WebSeed,
}

/// Who delivered the bytes of a verified piece.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum PieceOrigin {
    /// Every block came from peers.
    Peers,
    /// Every block came from the HTTP web seed.
    WebSeed,
    /// Some blocks from peers, some from the web seed.
    Mixed,
    /// The shell handed the piece in (`import_piece`: a seeder's own file).
    Imported,
}

impl PieceOrigin {
    /// The origin of a piece assembled from blocks with these senders
    /// (`None`: a block with no recorded sender, which a complete piece
    /// does not have; it is ignored).
    pub(crate) fn of_blocks<'a>(senders: impl IntoIterator<Item = &'a Option<Source>>) -> Self {
        let (mut peers, mut web_seed) = (false, false);
        for sender in senders.into_iter().flatten() {
            match sender {
                Source::Peer(_) => peers = true,
                Source::WebSeed => web_seed = true,
            }
        }
        match (peers, web_seed) {
            (true, true) => PieceOrigin::Mixed,
            (false, true) => PieceOrigin::WebSeed,
            // A piece with no block sender cannot verify; call it peers.
            (_, false) => PieceOrigin::Peers,
        }
    }
}

/// The origin of every verified piece, by index. Grows on demand, so it
/// needs no piece count up front.
#[derive(Debug, Clone, Default)]
pub(crate) struct Origins(Vec<Option<PieceOrigin>>);

impl Origins {
    /// Notes that `piece` verified with bytes from `origin`.
    pub(crate) fn record(&mut self, piece: u32, origin: PieceOrigin) {
        let index = piece as usize;
        if self.0.len() <= index {
            self.0.resize(index + 1, None);
        }
        self.0[index] = Some(origin);
    }

    /// Where `piece` came from; `None` while it is not verified.
    pub(crate) fn get(&self, piece: u32) -> Option<PieceOrigin> {
        self.0.get(piece as usize).copied().flatten()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ids::PeerId;

    #[test]
    fn origin_of_blocks_names_peers_web_seed_or_both() {
        let peer = Some(Source::Peer(PeerId([1; 20])));
        let web = Some(Source::WebSeed);
        assert_eq!(PieceOrigin::of_blocks(&[peer, peer]), PieceOrigin::Peers);
        assert_eq!(PieceOrigin::of_blocks(&[web, web]), PieceOrigin::WebSeed);
        assert_eq!(PieceOrigin::of_blocks(&[web, peer]), PieceOrigin::Mixed);
    }

    #[test]
    fn origins_grow_on_demand_and_start_unknown() {
        let mut o = Origins::default();
        assert_eq!(o.get(5), None);
        o.record(5, PieceOrigin::WebSeed);
        o.record(2, PieceOrigin::Imported);
        assert_eq!(o.get(5), Some(PieceOrigin::WebSeed));
        assert_eq!(o.get(2), Some(PieceOrigin::Imported));
        assert_eq!(o.get(3), None);
        assert_eq!(o.get(u32::MAX), None);
    }
}
