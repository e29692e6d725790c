//! The metadata pieces themselves: which size we assemble, whom to ask for
//! what, what an answer may contain, and whom to blame when the assembled
//! bytes miss the info hash.

use std::collections::VecDeque;

use sha1::{Digest, Sha1};

use super::MetadataFetch;
use crate::engine::PeerKey;
use crate::error::{MetadataPeerError, PeerError};
use crate::sorted::{SortedMap, SortedSet};
use crate::wire::metadata::{MetadataAssembler, MetadataMessage, metadata_piece};

impl MetadataFetch {
    pub(super) fn commit_size(&mut self, size: Option<u64>) {
        let Some(size) = size else {
            return;
        };
        // Checked against our bound, which is below the assembler's.
        if let Ok(assembler) = MetadataAssembler::new(size) {
            self.size = Some(size);
            self.assembler = Some(assembler);
            self.senders.clear();
        }
    }

    pub(super) fn on_metadata_piece(
        &mut self,
        key: PeerKey,
        piece: u32,
        total_size: u64,
        data: &[u8],
    ) -> Result<(), PeerError> {
        let bad = |why| MetadataPeerError::BadPiece { piece, why };
        let Some(peer) = self.peers.get_mut(&key) else {
            return Ok(());
        };
        let asked = peer.outstanding.iter().position(|(p, _)| *p == piece);
        let Some(asked) = asked else {
            if self.done.is_some() {
                return Ok(()); // a late answer
            }
            return Err(bad("not requested").into());
        };
        peer.outstanding.swap_remove(asked);
        if Some(total_size) != self.size {
            return Err(bad("total_size differs from the metadata_size we fetch").into());
        }
        let Some(assembler) = self.assembler.as_mut() else {
            return Ok(());
        };
        if assembler.insert(piece, data).is_err() {
            return Err(bad("wrong length for its index").into());
        }
        self.senders.insert(piece, key);
        if assembler.is_complete() {
            self.assemble();
        }
        Ok(())
    }

    /// Every piece is in: keep the result if it hashes right, else find
    /// whom to blame and start over.
    fn assemble(&mut self) {
        let Some(assembler) = self.assembler.take() else {
            return;
        };
        let size = assembler.total_size();
        let digests: Vec<(u32, PeerKey, [u8; 20])> = self
            .senders
            .iter()
            .filter_map(|(piece, sender)| {
                let bytes = assembler.piece_bytes(*piece)?;
                Some((*piece, *sender, Sha1::digest(bytes).into()))
            })
            .collect();
        match assembler.finish(self.info_hash) {
            Ok(bytes) => {
                let liars: SortedSet<PeerKey> = self
                    .suspects
                    .drain(..)
                    .filter(|(piece, _, digest)| piece_digest(&bytes, *piece) != Some(*digest))
                    .map(|(_, sender, _)| sender)
                    .collect();
                for key in liars {
                    self.drop_liar(key);
                }
                for peer in self.peers.values_mut() {
                    peer.outstanding.clear();
                }
                self.done = Some(bytes);
            }
            Err(_) => {
                let senders: SortedSet<PeerKey> = digests.iter().map(|(_, s, _)| *s).collect();
                if senders.len() == 1 {
                    for key in senders {
                        self.drop_liar(key);
                    }
                } else {
                    self.suspects.extend(digests);
                    self.single_source = true;
                }
                if self.size == Some(size) {
                    self.commit_size(Some(size));
                }
            }
        }
    }

    /// Closes a peer that sent corrupt metadata and refuses its id from now on.
    fn drop_liar(&mut self, key: PeerKey) {
        if let Some(id) = self.peers.get(&key).and_then(|p| p.id) {
            self.banned.insert(id);
        }
        self.close(key, MetadataPeerError::Corrupt.into());
    }

    /// Asks peers for the pieces nobody is sending yet.
    pub(super) fn request_pieces(&mut self) {
        if self.done.is_some() {
            return;
        }
        let Some(assembler) = self.assembler.as_ref() else {
            return;
        };
        let in_flight: SortedSet<u32> = self
            .peers
            .values()
            .flat_map(|p| p.outstanding.iter().map(|(piece, _)| *piece))
            .collect();
        let mut wanted: VecDeque<u32> = assembler
            .missing()
            .filter(|p| !in_flight.contains(p))
            .collect();
        if wanted.is_empty() {
            return;
        }
        let size = self.size;
        let mut eligible: Vec<PeerKey> = self
            .peers
            .iter()
            .filter(|(_, p)| !p.unhelpful && p.ut_metadata.is_some() && p.metadata_size == size)
            .map(|(k, _)| *k)
            .collect();
        if self.single_source {
            // The one that already has requests, else the first.
            let busy = eligible
                .iter()
                .find(|k| self.peers.get(k).is_some_and(|p| !p.outstanding.is_empty()))
                .copied();
            eligible = busy.or(eligible.first().copied()).into_iter().collect();
        }
        let per_peer = self.config.requests_per_peer;
        // Round-robin: one piece to each peer with room, until none is left.
        let mut requests: SortedMap<PeerKey, Vec<u32>> = SortedMap::new();
        loop {
            let mut gave = false;
            for key in &eligible {
                let Some(peer) = self.peers.get(key) else {
                    continue;
                };
                let queued = requests.get(key).map_or(0, Vec::len);
                if peer.outstanding.len() + queued >= per_peer {
                    continue;
                }
                let Some(piece) = wanted.pop_front() else {
                    break;
                };
                requests.entry(*key).or_default().push(piece);
                gave = true;
            }
            if !gave || wanted.is_empty() {
                break;
            }
        }
        let now = self.now;
        for (key, pieces) in requests {
            let Some(peer) = self.peers.get_mut(&key) else {
                continue;
            };
            let Some(their_id) = peer.ut_metadata else {
                continue;
            };
            let mut data = Vec::new();
            for piece in pieces {
                peer.outstanding.push((piece, now));
                MetadataMessage::Request { piece }
                    .to_message(their_id)
                    .encode(&mut data);
            }
            self.send_raw(key, data);
        }
    }

    pub(super) fn forget(&mut self, key: PeerKey) {
        self.peers.remove(&key);
        self.senders.retain(|_, sender| *sender != key);
        if self.size.is_some() && !self.peers.values().any(|p| p.metadata_size == self.size) {
            // Nobody left states the size we committed to: take the next
            // one stated (the first may have been a liar's).
            self.size = None;
            self.assembler = None;
            let next = self
                .peers
                .values()
                .find(|p| p.ut_metadata.is_some() && p.metadata_size.is_some())
                .and_then(|p| p.metadata_size);
            self.commit_size(next);
        }
    }
}

/// SHA-1 of one metadata piece of `bytes`, if the piece exists.
fn piece_digest(bytes: &[u8], piece: u32) -> Option<[u8; 20]> {
    metadata_piece(bytes, piece).map(|b| Sha1::digest(b).into())
}
