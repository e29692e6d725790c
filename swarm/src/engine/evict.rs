//! Keeping verified pieces within the memory bound: which to evict, how to
//! stop offering them, and bringing them back when playback needs them.
//! The policy is described in `store.rs`; the states in `PIECES.md`.

use crate::bitfield::Bitfield;
use crate::picker::Urgency;
use crate::wire::Message;

use super::store::eviction_order;
use super::{PeerKey, Torrent};

impl Torrent {
    /// Pieces we verified and then evicted to stay within
    /// [`super::Config::memory_limit`]: still counted as had, but their bytes
    /// are gone and requests for them are rejected.
    pub fn evicted(&self) -> &Bitfield {
        &self.evicted
    }

    /// Bytes of verified pieces held in memory now.
    pub fn memory_bytes(&self) -> u64 {
        self.store.memory().bytes()
    }

    /// Whether we can serve `piece`: verified and not evicted.
    pub(super) fn can_serve(&self, piece: u32) -> bool {
        self.picker.have().has(piece) && !self.evicted.has(piece)
    }

    /// What we tell a new peer we have: every verified piece not evicted.
    pub(super) fn advertised(&self) -> Bitfield {
        let mut pieces = self.picker.have().clone();
        for piece in self.evicted.ones() {
            pieces.clear(piece);
        }
        pieces
    }

    /// Evicts pieces, least hurtful first, until the store is within its
    /// bound. `keep` (the piece just verified) and pieces playback will need
    /// soon are never evicted, so the bound may be exceeded by those.
    pub(super) fn enforce_memory_limit(&mut self, keep: u32) {
        if !self.store.memory().is_over_limit() {
            return;
        }
        let playhead = self.picker.playback().map_or(0, |pb| pb.offset);
        let piece_length = u64::from(self.spec.piece_length);
        let candidates: Vec<u32> = self
            .picker
            .have()
            .ones()
            .filter(|&p| p != keep && !self.evicted.has(p))
            .filter(|&p| self.picker.urgency(p) == Urgency::Normal)
            .collect();
        let order = eviction_order(candidates.into_iter(), playhead, |p| {
            u64::from(p) * piece_length
        });
        for piece in order {
            if !self.store.memory().is_over_limit() {
                break;
            }
            self.evict(piece);
        }
    }

    /// Playback moved near evicted pieces: they become missing again, so the
    /// picker fetches them (urgent ones from the web seed if need be).
    pub(super) fn revive_near_playhead(&mut self) {
        let needed: Vec<u32> = self
            .evicted
            .ones()
            .filter(|&p| self.picker.urgency(p) != Urgency::Normal)
            .collect();
        for piece in needed {
            self.evicted.clear(piece);
            self.picker.piece_forgotten(piece);
            self.stats.verified_pieces = self.stats.verified_pieces.saturating_sub(1);
            self.stats.evicted_pieces = self.stats.evicted_pieces.saturating_sub(1);
            let keys: Vec<PeerKey> = self.peers.keys().copied().collect();
            for key in keys {
                self.update_interest(key);
            }
        }
    }

    fn evict(&mut self, piece: u32) {
        if !self.store.evict(piece) {
            return;
        }
        self.evicted.set(piece);
        self.stats.evicted_pieces += 1;
        // Peers that speak lt_donthave are told (WebTorrent does).
        let tell: Vec<(PeerKey, u8)> = self
            .peers
            .iter()
            .filter_map(|(k, p)| Some((*k, p.lt_donthave?)))
            .collect();
        for (key, their_id) in tell {
            let message = Message::Extended {
                id: their_id,
                payload: piece.to_be_bytes().to_vec(),
            };
            self.send(key, &message);
        }
        // Requests for it already queued can no longer be served.
        let keys: Vec<PeerKey> = self.peers.keys().copied().collect();
        for key in keys {
            let Some(peer) = self.peers.get_mut(&key) else {
                continue;
            };
            let dropped: Vec<_> = peer
                .queued
                .iter()
                .filter(|b| b.piece == piece)
                .copied()
                .collect();
            if dropped.is_empty() {
                continue;
            }
            peer.queued.retain(|b| b.piece != piece);
            if peer.fast {
                for block in dropped {
                    self.send(key, &Message::Reject(block));
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::pieces::sha1;
    use crate::engine::{Config, Output, TorrentSpec};
    use crate::ids::{InfoHash, PeerId};
    use crate::picker::Playback;
    use crate::time::Time;
    use crate::wire::{BLOCK_SIZE, BlockRef, Decoder, Frame, Handshake, Reserved};

    const PIECE: u32 = 2 * BLOCK_SIZE;
    const PIECES: u32 = 8;
    const INFO_HASH: InfoHash = InfoHash([4; 20]);

    fn content() -> Vec<u8> {
        (0..(PIECE * PIECES) as usize)
            .map(|i| (i * 7 % 253) as u8)
            .collect()
    }

    fn engine(memory_limit: u64) -> Torrent {
        let data = content();
        let spec = TorrentSpec {
            info_hash: INFO_HASH,
            piece_length: PIECE,
            total_length: data.len() as u64,
            piece_hashes: data.chunks(PIECE as usize).map(sha1).collect(),
            metadata: None,
            web_seed: false,
        };
        let config = Config {
            memory_limit,
            ..Config::default()
        };
        Torrent::new(config, spec, PeerId([1; 20]), 5, Time(0)).unwrap()
    }

    /// Imports every piece in order; returns what each import evicted.
    fn import_all(t: &mut Torrent) -> Vec<Vec<u32>> {
        let data = content();
        let mut evicted_by_step = Vec::new();
        for (i, chunk) in data.chunks(PIECE as usize).enumerate() {
            let before = t.evicted().clone();
            assert!(t.import_piece(i as u32, chunk));
            let now: Vec<u32> = t.evicted().ones().filter(|&p| !before.has(p)).collect();
            evicted_by_step.push(now);
        }
        evicted_by_step
    }

    /// What a fast-extension peer receives after handshaking with `t` and
    /// sending `then`.
    fn peer_exchange(t: &mut Torrent, then: &[Message]) -> Vec<Message> {
        let key = PeerKey(1);
        t.add_peer(Time(0), key);
        let mut bytes = Handshake {
            reserved: Reserved::FANSWARM,
            info_hash: INFO_HASH,
            peer_id: PeerId([2; 20]),
        }
        .encode()
        .to_vec();
        Message::HaveNone.encode(&mut bytes);
        for m in then {
            m.encode(&mut bytes);
        }
        t.handle_peer_data(Time(1), key, &bytes);
        t.handle_timeout(Time(2));
        let mut decoder = Decoder::new(1 << 20);
        let mut got = Vec::new();
        loop {
            match t.poll() {
                Output::Timeout(_) => break,
                Output::Send { data, .. } => {
                    decoder.push(&data);
                    while let Some(frame) = decoder.next().unwrap() {
                        if let Frame::Message(m) = frame {
                            got.push(m);
                        }
                    }
                }
                _ => {}
            }
        }
        got
    }

    #[test]
    fn evicts_furthest_behind_the_playhead_first() {
        let mut t = engine(3 * u64::from(PIECE));
        // Playing the last piece, slowly: everything before it is behind.
        let playback = Playback {
            offset: u64::from(7 * PIECE),
            bytes_per_sec: Some(1000),
        };
        t.set_playback(Time(0), Some(playback));
        let steps = import_all(&mut t);
        let order: Vec<u32> = steps.into_iter().flatten().collect();
        assert_eq!(order, vec![0, 1, 2, 3, 4]);
        assert_eq!(t.memory_bytes(), 3 * u64::from(PIECE));
        assert!(t.is_complete(), "evicted pieces stay verified");
        assert_eq!(t.stats().evicted_pieces, 5);
        assert_eq!(t.check_invariants(), Ok(()));
    }

    #[test]
    fn a_track_within_the_bound_is_never_evicted() {
        let mut t = engine(u64::from(PIECE * PIECES));
        import_all(&mut t);
        assert_eq!(t.evicted().count(), 0);
        assert_eq!(t.memory_bytes(), u64::from(PIECE * PIECES));
        // One byte less and exactly one piece has to go, no more.
        let mut t = engine(u64::from(PIECE * PIECES) - 1);
        import_all(&mut t);
        assert_eq!(t.evicted().count(), 1);
        assert_eq!(t.check_invariants(), Ok(()));
    }

    #[test]
    fn a_request_for_an_evicted_piece_is_rejected_and_it_is_not_advertised() {
        let mut t = engine(4 * u64::from(PIECE));
        let playback = Playback {
            offset: u64::from(7 * PIECE),
            bytes_per_sec: Some(1000),
        };
        t.set_playback(Time(0), Some(playback));
        import_all(&mut t);
        assert!(t.evicted().has(0) && !t.evicted().has(7));
        let evicted = BlockRef {
            piece: 0,
            offset: 0,
            length: BLOCK_SIZE,
        };
        let held = BlockRef {
            piece: 7,
            offset: 0,
            length: BLOCK_SIZE,
        };
        let got = peer_exchange(
            &mut t,
            &[
                Message::Interested,
                Message::Request(evicted),
                Message::Request(held),
            ],
        );
        let bitfield = got
            .iter()
            .find_map(|m| match m {
                Message::Bitfield(b) => Some(Bitfield::from_wire(b, PIECES).unwrap()),
                _ => None,
            })
            .expect("a bitfield, not have_all, while pieces are evicted");
        assert_eq!(bitfield.ones().collect::<Vec<_>>(), vec![4, 5, 6, 7]);
        assert!(got.contains(&Message::Reject(evicted)));
        assert!(
            got.iter()
                .any(|m| matches!(m, Message::Piece { piece: 7, .. }))
        );
        assert!(
            !got.iter()
                .any(|m| matches!(m, Message::Piece { piece: 0, .. }))
        );
        assert_eq!(t.check_invariants(), Ok(()));
    }

    #[test]
    fn seeking_back_to_an_evicted_piece_makes_it_missing_again() {
        let mut t = engine(3 * u64::from(PIECE));
        t.set_playback(
            Time(0),
            Some(Playback {
                offset: u64::from(7 * PIECE),
                bytes_per_sec: Some(1000),
            }),
        );
        import_all(&mut t);
        assert!(t.evicted().has(0));
        t.set_playback(
            Time(1),
            Some(Playback {
                offset: 0,
                bytes_per_sec: Some(1000),
            }),
        );
        assert!(!t.evicted().has(0) && !t.have().has(0));
        assert!(!t.is_complete());
        assert_eq!(t.check_invariants(), Ok(()));
        // Fetched again, it is kept: evicting happens far from the playhead.
        assert!(t.import_piece(0, &content()[..PIECE as usize]));
        assert!(t.piece(0).is_some());
        assert_eq!(t.check_invariants(), Ok(()));
    }

    #[test]
    fn a_reject_while_unchoked_means_the_peer_no_longer_has_the_piece() {
        let mut t = engine(u64::MAX);
        let key = PeerKey(1);
        t.add_peer(Time(0), key);
        let mut bytes = Handshake {
            reserved: Reserved::FANSWARM,
            info_hash: INFO_HASH,
            peer_id: PeerId([2; 20]),
        }
        .encode()
        .to_vec();
        Message::HaveAll.encode(&mut bytes);
        Message::Unchoke.encode(&mut bytes);
        t.handle_peer_data(Time(1), key, &bytes);
        // One decoder for everything we send: our handshake, then messages.
        let mut decoder = Decoder::new(1 << 20);
        let mut requests = |t: &mut Torrent| -> Vec<BlockRef> {
            let mut out = Vec::new();
            loop {
                match t.poll() {
                    Output::Timeout(_) => return out,
                    Output::Send { data, .. } => {
                        decoder.push(&data);
                        while let Some(frame) = decoder.next().unwrap() {
                            if let Frame::Message(Message::Request(b)) = frame {
                                out.push(b);
                            }
                        }
                    }
                    _ => {}
                }
            }
        };
        let first = requests(&mut t);
        let Some(&rejected) = first.first() else {
            panic!("nothing was requested");
        };
        let mut reject = Vec::new();
        for block in first.iter().filter(|b| b.piece == rejected.piece) {
            Message::Reject(*block).encode(&mut reject);
        }
        t.handle_peer_data(Time(2), key, &reject);
        t.handle_timeout(Time(3));
        let again = requests(&mut t);
        assert!(
            again.iter().all(|b| b.piece != rejected.piece),
            "piece {} asked again of a peer that rejected it: {again:?}",
            rejected.piece
        );
        assert_eq!(t.check_invariants(), Ok(()));
    }

    /// Connects a fast peer that speaks lt_donthave (as id 7), sends it
    /// `then`; returns its key.
    fn donthave_peer(t: &mut Torrent, then: &[Message]) -> PeerKey {
        use crate::wire::extension::{ExtendedHandshake, LT_DONTHAVE};
        let key = PeerKey(1);
        t.add_peer(Time(0), key);
        let mut bytes = Handshake {
            reserved: Reserved::FANSWARM,
            info_hash: INFO_HASH,
            peer_id: PeerId([2; 20]),
        }
        .encode()
        .to_vec();
        let mut ext = ExtendedHandshake::default();
        ext.m.insert(LT_DONTHAVE.to_owned(), 7);
        ext.to_message().encode(&mut bytes);
        for m in then {
            m.encode(&mut bytes);
        }
        t.handle_peer_data(Time(1), key, &bytes);
        key
    }

    /// Every message `t` sent, decoded (our handshake first).
    fn sent_messages(t: &mut Torrent) -> Vec<Message> {
        let mut decoder = Decoder::new(1 << 20);
        let mut out = Vec::new();
        loop {
            match t.poll() {
                Output::Timeout(_) => return out,
                Output::Send { data, .. } => {
                    decoder.push(&data);
                    while let Some(frame) = decoder.next().unwrap() {
                        if let Frame::Message(m) = frame {
                            out.push(m);
                        }
                    }
                }
                _ => {}
            }
        }
    }

    #[test]
    fn evictions_are_announced_with_lt_donthave_to_peers_that_speak_it() {
        let mut t = engine(3 * u64::from(PIECE));
        t.set_playback(
            Time(0),
            Some(Playback {
                offset: u64::from(7 * PIECE),
                bytes_per_sec: Some(1000),
            }),
        );
        donthave_peer(&mut t, &[Message::HaveNone]);
        import_all(&mut t);
        let told: Vec<u32> = sent_messages(&mut t)
            .into_iter()
            .filter_map(|m| match m {
                Message::Extended { id: 7, payload } => {
                    Some(u32::from_be_bytes(payload.try_into().unwrap()))
                }
                _ => None,
            })
            .collect();
        assert_eq!(told, vec![0, 1, 2, 3, 4]);
    }

    #[test]
    fn a_peers_lt_donthave_stops_us_asking_it_for_that_piece() {
        // Without it, piece 5 is the first this engine asks for (see the
        // reject test); after "don't have 5" it must not be asked of it.
        let mut t = engine(u64::MAX);
        let donthave = Message::Extended {
            id: crate::engine::LT_DONTHAVE_ID,
            payload: 5u32.to_be_bytes().to_vec(),
        };
        let malformed = Message::Extended {
            id: crate::engine::LT_DONTHAVE_ID,
            payload: vec![1, 2, 3],
        };
        donthave_peer(
            &mut t,
            &[Message::HaveAll, donthave, malformed, Message::Unchoke],
        );
        let requested: Vec<u32> = sent_messages(&mut t)
            .into_iter()
            .filter_map(|m| match m {
                Message::Request(b) => Some(b.piece),
                _ => None,
            })
            .collect();
        assert!(!requested.is_empty());
        assert!(!requested.contains(&5), "asked for 5: {requested:?}");
        assert_eq!(t.check_invariants(), Ok(()));
    }
}
