//! The invariants of `PIECES.md`, checked against the live state.
//!
//! [`Torrent::check_invariants`] is for tests, the simulator and the fuzzer:
//! after any sequence of inputs, whatever a peer sent, every rule written in
//! `PIECES.md` must still hold. It reads everything and changes nothing, and
//! it hashes every verified piece, so it is too slow to call in production
//! after each event; a shell has no reason to call it at all.
//!
//! The checks, in order:
//! 1. A piece is in exactly one state: verified (in `have`, bytes stored,
//!    no partial entry, no buffer), evicted (had, in the evicted set, no
//!    bytes, no partial entry, no buffer), partial, or untouched.
//! 2. Verified bytes have the piece's length and SHA-1.
//! 3. A partial piece has at least one block requested or received, its
//!    received count matches its blocks, and it has a buffer iff a block was
//!    received.
//! 4. Every block's request count equals the peers that have it outstanding
//!    plus the web-seed fetches of its piece; a received block is outstanding
//!    nowhere; an untouched piece is requested nowhere.
//! 5. Per peer: outstanding requests are valid blocks, distinct, and within
//!    our pipeline bound; queued requests are for verified pieces and empty
//!    while we choke; the decoder buffers less than one frame.
//! 6. Availability equals the number of connections whose bitfield has the
//!    piece.
//! 7. At most `upload_slots + 1` peers are unchoked, none with uploading off
//!    (`Upload::Off`); no banned or duplicate peer id is connected, nor
//!    our own.
//! 8. Stats agree: `verified_pieces` is the count of `have`, `evicted_pieces`
//!    of the evicted set; web-seed fetches
//!    in flight stay within `web_seed_parallel`.

use std::collections::{BTreeMap, HashSet};

use crate::picker::BlockState;
use crate::wire::{BlockRef, HANDSHAKE_LEN, MAX_REQUEST_LEN};

use super::Torrent;
use super::pieces::sha1;

impl Torrent {
    /// Checks every invariant of `PIECES.md` (listed in this module's docs);
    /// `Err` names the first one broken, with the piece, block or peer.
    pub fn check_invariants(&self) -> Result<(), String> {
        self.check_piece_states()?;
        self.check_request_counts()?;
        self.check_peers()?;
        self.check_totals()
    }

    /// Checks 1–3: one state per piece, verified bytes, partial bookkeeping.
    fn check_piece_states(&self) -> Result<(), String> {
        let have = self.picker.have();
        let buffered: HashSet<u32> = self.store.buffered_pieces().collect();
        for piece in 0..self.picker.piece_count() {
            let partial = self.picker.partial_blocks(piece);
            let verified = self.store.verified(piece);
            if self.evicted.has(piece) {
                if !have.has(piece) {
                    return Err(format!("piece {piece} is evicted but not had"));
                }
                if verified.is_some() || partial.is_some() || buffered.contains(&piece) {
                    return Err(format!("evicted piece {piece} still has bytes or a buffer"));
                }
                continue;
            }
            if have.has(piece) {
                let bytes = verified.ok_or(format!("piece {piece} is had but has no bytes"))?;
                if bytes.len() != self.picker.piece_size(piece) as usize {
                    return Err(format!("piece {piece} verified with {} bytes", bytes.len()));
                }
                if self.spec.piece_hashes.get(piece as usize) != Some(&sha1(bytes)) {
                    return Err(format!("piece {piece} verified bytes do not hash to it"));
                }
                if partial.is_some() || buffered.contains(&piece) {
                    return Err(format!("piece {piece} is verified and also partial"));
                }
                continue;
            }
            if verified.is_some() {
                return Err(format!("piece {piece} has verified bytes but is not had"));
            }
            let Some((blocks, received)) = partial else {
                if buffered.contains(&piece) {
                    return Err(format!("untouched piece {piece} has a buffer"));
                }
                continue;
            };
            if blocks.len() != self.picker.block_count(piece) as usize {
                return Err(format!("partial piece {piece} has {} blocks", blocks.len()));
            }
            let counted = blocks
                .iter()
                .filter(|b| **b == BlockState::Received)
                .count();
            if counted != received as usize {
                return Err(format!(
                    "partial piece {piece} counts {received} received blocks, has {counted}"
                ));
            }
            if blocks.iter().all(|b| *b == BlockState::Missing) {
                return Err(format!(
                    "partial piece {piece} has no block requested or received"
                ));
            }
            if (received > 0) != buffered.contains(&piece) {
                return Err(format!(
                    "partial piece {piece} with {received} received blocks: buffer {}",
                    buffered.contains(&piece)
                ));
            }
        }
        match buffered.iter().find(|&&p| p >= self.picker.piece_count()) {
            Some(p) => Err(format!("buffer for piece {p} out of range")),
            None => Ok(()),
        }
    }

    /// Check 4: picker request counts against peers' outstanding lists and
    /// web-seed fetches.
    fn check_request_counts(&self) -> Result<(), String> {
        let mut asked: BTreeMap<BlockRef, usize> = BTreeMap::new();
        for peer in self.peers.values() {
            for o in &peer.outstanding {
                *asked.entry(o.block).or_default() += 1;
            }
        }
        let mut web_seed: BTreeMap<u32, usize> = BTreeMap::new();
        for piece in self.web_seed.in_flight_pieces() {
            *web_seed.entry(piece).or_default() += 1;
        }
        for (&block, &n) in &asked {
            if !self.picker.is_valid_block(block) {
                return Err(format!("outstanding request for invalid block {block:?}"));
            }
            if self.picker.partial_blocks(block.piece).is_none() {
                return Err(format!(
                    "{n} requests outstanding for {block:?} of a piece that is not partial"
                ));
            }
        }
        if let Some(piece) = web_seed
            .keys()
            .find(|&&p| self.picker.partial_blocks(p).is_none() && !self.picker.have().has(p))
        {
            return Err(format!(
                "web-seed fetch in flight for untouched piece {piece}"
            ));
        }
        for piece in self.picker.partial_pieces() {
            let Some((blocks, _)) = self.picker.partial_blocks(piece) else {
                continue;
            };
            let from_web_seed = web_seed.get(&piece).copied().unwrap_or(0);
            for (index, state) in blocks.iter().enumerate() {
                let block = self.picker.block(piece, index as u32);
                let by_peers = asked.get(&block).copied().unwrap_or(0);
                let expected = match state {
                    BlockState::Received if by_peers > 0 => {
                        return Err(format!(
                            "received {block:?} still outstanding to {by_peers} peers"
                        ));
                    }
                    BlockState::Received => continue,
                    BlockState::Missing => 0,
                    BlockState::Requested(n) => usize::from(*n),
                };
                if by_peers + from_web_seed != expected {
                    return Err(format!(
                        "{block:?} is {state:?} in the picker but asked of {by_peers} peers \
                         and {from_web_seed} web-seed fetches"
                    ));
                }
            }
        }
        Ok(())
    }

    /// Checks 5–7: per-peer state, availability, choking and ids.
    fn check_peers(&self) -> Result<(), String> {
        let count = self.picker.piece_count();
        let mut availability = vec![0u32; count as usize];
        let mut ids = HashSet::new();
        let frame_bound = (self.config.max_message_len + 3).max(HANDSHAKE_LEN - 1);
        for (key, peer) in &self.peers {
            if peer.pieces.len() != count {
                return Err(format!("{key:?} bitfield has {} pieces", peer.pieces.len()));
            }
            for piece in peer.pieces.ones() {
                if let Some(a) = availability.get_mut(piece as usize) {
                    *a += 1;
                }
            }
            if peer.outstanding.len() > self.config.max_requests_per_peer as usize {
                return Err(format!("{key:?} has {} requests", peer.outstanding.len()));
            }
            let distinct: HashSet<BlockRef> = peer.outstanding.iter().map(|o| o.block).collect();
            if distinct.len() != peer.outstanding.len() {
                return Err(format!("{key:?} was asked for a block twice"));
            }
            if peer.am_choking && !peer.queued.is_empty() {
                return Err(format!(
                    "{key:?} is choked with {} queued",
                    peer.queued.len()
                ));
            }
            if let Some(b) = peer.queued.iter().find(|b| !self.queued_block_ok(**b)) {
                return Err(format!("{key:?} queued {b:?}, not a served range"));
            }
            if peer.decoder.buffered_len() > frame_bound {
                return Err(format!(
                    "{key:?} decoder buffers {} bytes",
                    peer.decoder.buffered_len()
                ));
            }
            if let Some(id) = peer.id {
                if self.banned.contains(&id) {
                    return Err(format!("banned {id} is connected as {key:?}"));
                }
                if id == self.our_id || !ids.insert(id) {
                    return Err(format!("{id} is connected twice or is us"));
                }
            }
        }
        for (piece, &expected) in availability.iter().enumerate() {
            let recorded = self.picker.availability(piece as u32);
            if recorded != expected {
                return Err(format!(
                    "piece {piece}: availability {recorded}, peers having it {expected}"
                ));
            }
        }
        let unchoked = self.peers.values().filter(|p| !p.am_choking).count();
        if unchoked > self.config.upload_slots + 1 {
            return Err(format!("{unchoked} peers unchoked"));
        }
        if unchoked > 0 && self.config.upload.is_off() {
            return Err(format!("{unchoked} peers unchoked with uploading off"));
        }
        Ok(())
    }

    /// Check 8: running totals.
    fn check_totals(&self) -> Result<(), String> {
        let have = self.picker.have().count();
        if self.stats.verified_pieces != have {
            return Err(format!(
                "stats count {} verified pieces, have {have}",
                self.stats.verified_pieces
            ));
        }
        if self.stats.evicted_pieces != self.evicted.count() {
            return Err(format!(
                "stats count {} evicted pieces, {} are",
                self.stats.evicted_pieces,
                self.evicted.count()
            ));
        }
        let in_flight = self.web_seed.fetch_count();
        if in_flight > self.config.web_seed_parallel {
            return Err(format!("{in_flight} web-seed fetches in flight"));
        }
        Ok(())
    }

    /// A block we may serve: in a verified piece, within it, at most
    /// what we accept in one request.
    fn queued_block_ok(&self, block: BlockRef) -> bool {
        let size = u64::from(self.picker.piece_size(block.piece));
        self.can_serve(block.piece)
            && block.length > 0
            && block.length <= MAX_REQUEST_LEN
            && u64::from(block.offset) + u64::from(block.length) <= size
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::{Config, FetchId, Output, PeerKey, Source, TorrentSpec};
    use crate::ids::{InfoHash, PeerId};
    use crate::picker::Playback;
    use crate::time::Time;
    use crate::wire::{BLOCK_SIZE, Handshake, Message, Reserved};

    const PIECE: u32 = 2 * BLOCK_SIZE;
    const INFO_HASH: InfoHash = InfoHash([9; 20]);

    fn content() -> Vec<u8> {
        (0..PIECE as usize * 3 - 100)
            .map(|i| (i * 13 % 251) as u8)
            .collect()
    }

    fn engine(web_seed: bool) -> Torrent {
        let data = content();
        let spec = TorrentSpec {
            info_hash: INFO_HASH,
            piece_length: PIECE,
            total_length: data.len() as u64,
            piece_hashes: data.chunks(PIECE as usize).map(sha1).collect(),
            metadata: None,
            web_seed,
        };
        Torrent::new(Config::default(), spec, PeerId([1; 20]), 5, Time(0)).unwrap()
    }

    fn drain(t: &mut Torrent) -> Vec<Output> {
        let mut out = Vec::new();
        loop {
            match t.poll() {
                Output::Timeout(_) => return out,
                o => out.push(o),
            }
        }
    }

    /// Opens `key` as a fast-extension peer with id `[id; 20]` that has every piece.
    fn connect(t: &mut Torrent, key: PeerKey, id: u8) {
        t.add_peer(Time(0), key);
        let mut bytes = Handshake {
            reserved: Reserved::FANSWARM,
            info_hash: INFO_HASH,
            peer_id: PeerId([id; 20]),
        }
        .encode()
        .to_vec();
        Message::HaveAll.encode(&mut bytes);
        t.handle_peer_data(Time(0), key, &bytes);
        drain(t);
    }

    #[test]
    fn fresh_seeding_and_connected_engines_keep_them() {
        let mut t = engine(false);
        assert_eq!(t.check_invariants(), Ok(()));
        for (i, chunk) in content().chunks(PIECE as usize).enumerate().take(2) {
            assert!(t.import_piece(i as u32, chunk));
        }
        connect(&mut t, PeerKey(1), 2);
        connect(&mut t, PeerKey(2), 3);
        assert_eq!(t.check_invariants(), Ok(()));
    }

    #[test]
    fn each_check_catches_its_breach() {
        let data = content();
        let mut t = engine(false);
        assert!(t.import_piece(0, &data[..PIECE as usize]));
        connect(&mut t, PeerKey(1), 2);
        t.handle_timeout(Time(1));
        drain(&mut t);
        assert_eq!(t.check_invariants(), Ok(()));

        let mut bad = engine(false);
        assert!(bad.import_piece(0, &data[..PIECE as usize]));
        bad.stats.verified_pieces = 2;
        assert!(bad.check_invariants().unwrap_err().contains("stats"));

        let mut bad = engine(false);
        bad.store
            .write_block(1, 0, &[0; BLOCK_SIZE as usize], Source::WebSeed);
        assert!(
            bad.check_invariants()
                .unwrap_err()
                .contains("untouched piece 1")
        );

        let mut bad = engine(false);
        connect(&mut bad, PeerKey(1), 2);
        bad.picker.add_peer_piece(0);
        assert!(bad.check_invariants().unwrap_err().contains("availability"));

        let mut bad = engine(false);
        connect(&mut bad, PeerKey(1), 2);
        let key = PeerKey(1);
        let block = bad.picker.block(2, 0);
        if let Some(p) = bad.peers.get_mut(&key) {
            p.outstanding.push(super::super::peer::Outstanding {
                block,
                since: Time(0),
            });
        }
        assert!(bad.check_invariants().unwrap_err().contains("not partial"));

        let mut bad = engine(false);
        connect(&mut bad, PeerKey(1), 2);
        bad.banned.insert(PeerId([2; 20]));
        assert!(bad.check_invariants().unwrap_err().contains("banned"));
    }

    /// Regression (found by check_invariants): a peer completes a piece the
    /// web seed is fetching, with bad data. The piece fails and is reset to
    /// untouched; the fetch in flight used to keep counting as a request of
    /// its blocks, so its later failure un-requested blocks peers had been
    /// asked for since. The fetch is now forgotten with the reset.
    #[test]
    fn a_failed_piece_drops_its_web_seed_fetch() {
        let mut t = engine(true);
        t.set_playback(
            Time(0),
            Some(Playback {
                offset: 0,
                bytes_per_sec: None,
            }),
        );
        let fetches: Vec<FetchId> = drain(&mut t)
            .into_iter()
            .filter_map(|o| match o {
                Output::FetchWebSeed { id, offset: 0, .. } => Some(id),
                _ => None,
            })
            .collect();
        assert_eq!(fetches.len(), 1, "piece 0 goes to the web seed");
        assert_eq!(t.check_invariants(), Ok(()));
        connect(&mut t, PeerKey(1), 2);
        let mut bytes = Vec::new();
        for offset in [0, BLOCK_SIZE] {
            Message::Piece {
                piece: 0,
                offset,
                data: vec![0xaa; BLOCK_SIZE as usize],
            }
            .encode(&mut bytes);
        }
        t.handle_peer_data(Time(10), PeerKey(1), &bytes);
        drain(&mut t);
        assert!(
            t.is_banned(&PeerId([2; 20])),
            "the sole source of a bad piece"
        );
        assert_eq!(t.check_invariants(), Ok(()));
        // The fetch no longer claims piece 0; its failure un-requests only
        // the pieces it still claimed, and after the back-off a new fetch
        // gets piece 0.
        t.handle_web_seed_error(Time(20), fetches[0]);
        assert_eq!(t.check_invariants(), Ok(()));
        t.handle_timeout(Time(2_000));
        let again = drain(&mut t).into_iter().find_map(|o| match o {
            Output::FetchWebSeed { id, offset: 0, .. } => Some(id),
            _ => None,
        });
        let again = again.expect("piece 0 is fetched again");
        t.handle_web_seed_data(Time(2_040), again, &content()[..PIECE as usize]);
        drain(&mut t);
        assert!(t.have().has(0));
        assert_eq!(t.check_invariants(), Ok(()));
    }
}
