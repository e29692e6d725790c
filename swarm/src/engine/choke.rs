//! Who we upload to: BitTorrent's rate-based choking with one optimistic slot.
//!
//! Every [`Config::rechoke_interval`](super::Config::rechoke_interval) the
//! interested peers are ranked by what they give us (while we download) or by
//! what they take (once we seed); the best [`upload_slots`] are unchoked, plus
//! one "optimistic" peer chosen at random that moves every few rechokes so a
//! newcomer with nothing to offer yet gets a start. Between rechokes, a peer
//! that declares interest while a slot is free is unchoked at once, as
//! WebTorrent does, so the first blocks flow without waiting ten seconds.
//! With uploading off ([`Upload::Off`](super::Upload)) nobody is unchoked.
//!
//! [`upload_slots`]: super::Config::upload_slots

use crate::sorted::sort_keys;
use crate::wire::Message;

use super::{PeerKey, Torrent};

impl Torrent {
    /// Unchokes `key` now if it is interested and a regular slot is free.
    pub(super) fn unchoke_if_slot_free(&mut self, key: PeerKey) {
        let unchoked = self.peers.values().filter(|p| !p.am_choking).count();
        let wants = self
            .peers
            .get(&key)
            .is_some_and(|p| p.am_choking && p.peer_interested);
        if wants && unchoked < self.config.upload_slots + 1 && !self.config.upload.is_off() {
            self.set_choking(key, false);
        }
    }

    /// Re-ranks interested peers and (un)chokes accordingly.
    pub(super) fn rechoke(&mut self) {
        let now = self.now;
        self.next_rechoke = now + self.config.rechoke_interval;
        self.rechokes = self.rechokes.wrapping_add(1);
        let seeding = self.picker.is_complete();
        let mut ranked: Vec<(u64, u64, u64)> = self
            .peers
            .iter()
            .filter(|(_, p)| p.peer_interested && p.is_connected())
            .map(|(k, p)| {
                let rate = if seeding {
                    p.upload.bytes_per_sec(now)
                } else {
                    p.download.bytes_per_sec(now)
                };
                (rate, self.rng.u64(..), k.0)
            })
            .collect();
        // Best first: ascending, then reversed.
        sort_keys(&mut ranked);
        ranked.reverse();
        let slots = if self.config.upload.is_off() {
            0
        } else {
            self.config.upload_slots
        };
        let mut unchoke: Vec<PeerKey> = ranked.iter().take(slots).map(|r| PeerKey(r.2)).collect();
        let rotate = self
            .rechokes
            .is_multiple_of(self.config.optimistic_every.max(1));
        let keep = self
            .optimistic
            .filter(|k| !rotate && ranked.iter().any(|r| r.2 == k.0));
        self.optimistic = keep.or_else(|| {
            let rest: Vec<PeerKey> = ranked.iter().skip(slots).map(|r| PeerKey(r.2)).collect();
            (!rest.is_empty()).then(|| rest[self.rng.usize(..rest.len())])
        });
        if self.config.upload.is_off() {
            self.optimistic = None;
        }
        unchoke.extend(self.optimistic);
        let keys: Vec<PeerKey> = self.peers.keys().copied().collect();
        for key in keys {
            self.set_choking(key, !unchoke.contains(&key));
        }
    }

    /// Chokes every peer (uploading turned off), rejecting what they asked.
    pub(super) fn choke_everyone(&mut self) {
        self.optimistic = None;
        let keys: Vec<PeerKey> = self.peers.keys().copied().collect();
        for key in keys {
            self.set_choking(key, true);
        }
    }

    fn set_choking(&mut self, key: PeerKey, choke: bool) {
        let Some(peer) = self.peers.get_mut(&key) else {
            return;
        };
        if peer.am_choking == choke || !peer.is_connected() {
            return;
        }
        peer.am_choking = choke;
        if !choke {
            peer.unchoked_at = Some(self.now);
            self.send(key, &Message::Unchoke);
            return;
        }
        let dropped: Vec<_> = peer.queued.drain(..).collect();
        let fast = peer.fast;
        self.send(key, &Message::Choke);
        if fast {
            for block in dropped {
                self.send(key, &Message::Reject(block));
            }
        }
    }
}
