//! Crowd awareness: how fanswarm peers that see each other agree on who
//! fetches a piece from the web seed, so the artist's server sends it about
//! once per crowd instead of once per listener.
//!
//! In a flash crowd every fan's playhead is at the same place at the same
//! moment: the same pieces turn urgent for everybody before anybody has
//! them. Two things break the tie:
//!
//! - **Election.** Pieces are grouped in runs of about
//!   [`super::Config::web_seed_group`] bytes. For each group, the fetcher
//!   is the peer with the highest rendezvous hash of (peer id, group) among
//!   us and the connected peers that can fetch it themselves (they speak
//!   this extension, say they use the web seed, and lack the piece). The
//!   fetcher takes an urgent piece at once (or, with
//!   [`super::Config::web_seed_stagger`], after a wait that shrinks with
//!   its weight's rank in the crowd, so that of fans elected at the same
//!   moment in different neighbourhoods the best placed goes first and
//!   its intent reaches the others); everybody else waits until the
//!   piece is due within [`super::Config::web_seed_fallback`]. A peer
//!   that has no neighbour yet but is told more are coming
//!   ([`Torrent::set_peers_coming`]: a fan that just pressed play, whose
//!   offers are on their way to the crowd) is elected for nothing, so it
//!   takes from the web seed only what it needs before a connection could
//!   deliver it, not the whole urgent window.
//! - **Intent.** A peer that starts getting a piece — from the web seed,
//!   from a peer, or because a neighbour said it is getting it — tells its
//!   neighbours once ("getting"), so a peer that hears it waits for the
//!   piece to arrive there instead of going to HTTP itself, until its own
//!   deadline forces it. Intents travel hop by hop ahead of the data, so
//!   one fetch quiets a whole mesh. An intent expires after
//!   [`super::Config::intent_ttl`] or when that peer says `have`.
//!
//! The wire: a BEP 10 extension named [`FS_CROWD`]. Payload byte 0 is the
//! kind: [`KIND_STATE`] then one byte of flags ([`FLAG_WEB_SEED`]: the
//! sender fetches from the web seed now), then, when it fetches only some
//! pieces (one track of an album), the runs it wants: start and end
//! (exclusive) piece indexes, four bytes each, big-endian, at most
//! [`MAX_WANTED_RUNS`] (none: every piece; older peers send none and
//! ignore them); [`KIND_GETTING`] then piece indexes, four bytes each,
//! big-endian. A peer is a candidate in a piece's election only if it
//! wants the piece: a fan of another track of the album never fetches it. Other clients (WebTorrent,
//! libtorrent) ignore the extension and are never elected, so a swarm
//! with them works exactly as before.

use std::time::Duration;

use crate::ids::PeerId;
use crate::picker::Urgency;
use crate::time::Time;
use crate::wire::Message;

use super::peer::Peer;
use super::{PeerKey, Torrent};

/// The extension's name in the extended handshake's `m`.
pub const FS_CROWD: &str = "fs_crowd";

/// Our id for [`FS_CROWD`] messages, advertised in our extended handshake.
pub(crate) const FS_CROWD_ID: u8 = 3;

/// Payload kind: the sender's state (one flags byte follows).
pub const KIND_STATE: u8 = 0;
/// Payload kind: pieces the sender is getting (4-byte indexes follow).
pub const KIND_GETTING: u8 = 1;
/// State flag: the sender fetches from the web seed (it is playing, or
/// downloading everything), so it can be elected.
pub const FLAG_WEB_SEED: u8 = 1;

/// Indexes in one `getting` message at most; more are sent in several.
const MAX_GETTING_PER_MESSAGE: usize = 1024;

/// Runs of wanted pieces in one state message at most; a selection of
/// more is sent as "every piece" (a candidate too often is only a later
/// fetch, never a missed one).
pub const MAX_WANTED_RUNS: usize = 64;

/// A crowd message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CrowdMessage {
    /// Whether the sender fetches from the web seed, and which pieces.
    State {
        /// [`FLAG_WEB_SEED`] was set.
        web_seed: bool,
        /// The runs of pieces it fetches (`start..end`); `None`: all.
        wants: Option<Vec<std::ops::Range<u32>>>,
    },
    /// The sender is getting these pieces.
    Getting(Vec<u32>),
}

impl CrowdMessage {
    /// The extension payload.
    pub fn encode(&self) -> Vec<u8> {
        match self {
            CrowdMessage::State { web_seed, wants } => {
                let mut out = vec![KIND_STATE, if *web_seed { FLAG_WEB_SEED } else { 0 }];
                for run in wants.iter().flatten() {
                    out.extend_from_slice(&run.start.to_be_bytes());
                    out.extend_from_slice(&run.end.to_be_bytes());
                }
                out
            }
            CrowdMessage::Getting(pieces) => {
                let mut out = Vec::with_capacity(1 + 4 * pieces.len());
                out.push(KIND_GETTING);
                for p in pieces {
                    out.extend_from_slice(&p.to_be_bytes());
                }
                out
            }
        }
    }

    /// Reads a payload; `None` for anything malformed (an unknown kind, a
    /// length that is not whole indexes), which is ignored, not fatal:
    /// the extension is advice.
    pub fn decode(payload: &[u8]) -> Option<CrowdMessage> {
        let (&kind, rest) = payload.split_first()?;
        match kind {
            KIND_STATE => {
                let (&flags, runs) = rest.split_first()?;
                if runs.len() % 8 != 0 || runs.len() / 8 > MAX_WANTED_RUNS {
                    return None;
                }
                let index = |b: &[u8]| u32::from_be_bytes([b[0], b[1], b[2], b[3]]);
                let wants: Vec<std::ops::Range<u32>> = runs
                    .chunks_exact(8)
                    .map(|c| index(&c[..4])..index(&c[4..]))
                    .collect();
                Some(CrowdMessage::State {
                    web_seed: flags & FLAG_WEB_SEED != 0,
                    wants: (!wants.is_empty()).then_some(wants),
                })
            }
            KIND_GETTING => {
                if rest.len() % 4 != 0 || rest.len() / 4 > MAX_GETTING_PER_MESSAGE {
                    return None;
                }
                let pieces = rest
                    .chunks_exact(4)
                    .map(|c| u32::from_be_bytes([c[0], c[1], c[2], c[3]]))
                    .collect();
                Some(CrowdMessage::Getting(pieces))
            }
            _ => None,
        }
    }

    /// `Getting` messages for `pieces`, split to stay within one message's bound.
    pub fn getting(pieces: &[u32]) -> impl Iterator<Item = CrowdMessage> + '_ {
        pieces
            .chunks(MAX_GETTING_PER_MESSAGE)
            .map(|c| CrowdMessage::Getting(c.to_vec()))
    }
}

/// Whether `peer` should have sent every block of `piece` we asked of it
/// within `budget` from `now`: it serves requests in the order they came,
/// so ahead of the last of them is everything we asked of it before; at
/// its recent rate. Without a rate (or less than a second of it), whether
/// they are younger than `patience`. No requests for it: no.
fn arrives_within(
    peer: &Peer,
    piece: u32,
    now: Time,
    budget: Duration,
    patience: Duration,
) -> bool {
    let Some(last) = peer
        .outstanding
        .iter()
        .filter(|o| o.block.piece == piece)
        .map(|o| o.since)
        .max()
    else {
        return false;
    };
    // A rate needs a second of history to mean anything.
    let rate = peer.download.bytes_per_sec(now);
    if rate == 0 || now.since(peer.connected_at) < Duration::from_secs(1) {
        return now.since(last) < patience;
    }
    let ahead: u64 = peer
        .outstanding
        .iter()
        .filter(|o| o.since <= last)
        .map(|o| u64::from(o.block.length))
        .sum();
    Duration::from_millis(ahead.saturating_mul(1000) / rate) <= budget
}

/// The rendezvous weight of `peer` for `group`: every fanswarm peer computes
/// the same number, so peers that see the same neighbours elect the same
/// fetcher. FNV-1a over the id, then SplitMix64 with the group.
pub fn rendezvous(peer: &PeerId, group: u32) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for &b in peer.as_bytes() {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    let mut z = h ^ u64::from(group).wrapping_mul(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

impl Torrent {
    /// The group a piece is elected in: runs of about `web_seed_group` bytes.
    pub(super) fn group_of(&self, piece: u32) -> u32 {
        let per_group = (self.config.web_seed_group / self.spec.piece_length.max(1)).max(1);
        piece / per_group
    }

    /// Whether we are `piece`'s elected web-seed fetcher among ourselves and
    /// the connected peers that would fetch it themselves.
    pub(super) fn elected(&self, piece: u32) -> bool {
        // Not on a partial view of the crowd: it may already have the
        // piece, or elect someone else for it. (Peers still coming once
        // some are here do not hold elections: in a crowd, connections keep
        // opening, and nobody would be elected for seconds.)
        let alone = !self.peers.values().any(|p| p.is_connected());
        if (self.peers_coming && alone) || self.neighbour_settling() {
            return false;
        }
        let group = self.group_of(piece);
        let ours = rendezvous(&self.our_id, group);
        // A peer that uploads nothing would fetch for itself alone: any
        // candidate neighbour goes first, and it waits for that one's copy.
        let last = self.config.upload.is_off();
        !self.peers.values().any(|p| {
            p.crowd.speaks()
                && p.crowd.web_seed
                && !p.pieces.has(piece)
                && p.crowd.wants(piece)
                && p.id
                    .is_some_and(|id| last || (rendezvous(&id, group), id) > (ours, self.our_id))
        })
    }

    /// Whether our view of the crowd is still filling in: the shell is
    /// connecting to more peers ([`Torrent::set_peers_coming`]), or a
    /// neighbour that connected less than `crowd_settle` ago has not yet
    /// said what it has and whether it fetches from the web seed (a silent
    /// peer cannot hold this for long).
    pub(super) fn crowd_pending(&self) -> bool {
        self.peers_coming || self.neighbour_settling()
    }

    /// A neighbour connected less than `crowd_settle` ago and has not yet
    /// said what it has and whether it fetches from the web seed.
    fn neighbour_settling(&self) -> bool {
        let (now, settle) = (self.now, self.config.crowd_settle);
        self.peers
            .values()
            .any(|p| !p.crowd_settled() && now.since(p.connected_at) < settle)
    }

    /// Whether a connected peer has `piece` or said it is getting it.
    pub(super) fn someone_has_or_gets(&self, piece: u32) -> bool {
        let (now, ttl) = (self.now, self.config.intent_ttl);
        self.peers
            .values()
            .any(|p| p.pieces.has(piece) || p.crowd.getting_for(piece, now, ttl).is_some())
    }

    /// Whether a neighbour is about to deliver `piece` within `budget`, so
    /// a late piece can wait for it: a peer that unchokes us and has our
    /// requests for it is expected to send them within `budget` (what we
    /// asked of it before them, at the rate it has been sending us; a peer
    /// with no rate yet, if the requests are younger than `patience`); or
    /// a peer that has it still chokes us less than `patience` after we
    /// said we are interested; or a neighbour said it is getting it less
    /// than `patience` ago.
    pub(super) fn delivery_expected(
        &self,
        piece: u32,
        budget: Duration,
        patience: Duration,
    ) -> bool {
        let now = self.now;
        let young = |t: Time| now.since(t) < patience;
        self.peers.values().any(|p| {
            let serving = p.pieces.has(piece)
                && if p.peer_choking {
                    p.interested_since.is_some_and(young)
                } else {
                    arrives_within(p, piece, now, budget, patience)
                };
            serving
                || p.crowd
                    .getting_for(piece, now, self.config.intent_ttl)
                    .is_some_and(|age| age < patience)
        })
    }

    /// Tells every neighbour that speaks the extension, once per piece,
    /// that we are getting `pieces` (those we lack).
    pub(super) fn announce_getting(&mut self, pieces: &[u32]) {
        if self.config.upload.is_off() {
            return; // nobody should wait for a piece we will not pass on
        }
        let fresh: Vec<u32> = pieces
            .iter()
            .copied()
            .filter(|&p| !self.picker.have().has(p) && self.intents.set(p))
            .collect();
        if fresh.is_empty() {
            return;
        }
        let keys: Vec<PeerKey> = self.peers.keys().copied().collect();
        for key in keys {
            self.tell_getting(key, &fresh);
        }
    }

    /// Sends `key` the pieces of `pieces` it was not told of and lacks.
    fn tell_getting(&mut self, key: PeerKey, pieces: &[u32]) {
        let Some(peer) = self.peers.get_mut(&key) else {
            return;
        };
        let Some(id) = peer.crowd.id.filter(|_| peer.is_connected()) else {
            return;
        };
        let news: Vec<u32> = pieces
            .iter()
            .copied()
            .filter(|&p| !peer.pieces.has(p) && peer.crowd.told.set(p))
            .collect();
        for message in CrowdMessage::getting(&news) {
            self.send(
                key,
                &Message::Extended {
                    id,
                    payload: message.encode(),
                },
            );
        }
    }

    /// We are no longer getting `piece` (its fetch failed, it failed
    /// verification): a later attempt is announced afresh.
    pub(super) fn forget_intent(&mut self, piece: u32) {
        self.intents.clear(piece);
        for peer in self.peers.values_mut() {
            peer.crowd.told.clear(piece);
        }
    }

    /// Sends our state to every neighbour that speaks the extension and
    /// has not heard it yet: whether we fetch from the web seed, and the
    /// pieces we want when not all ([`Torrent::set_wanted`]).
    pub(super) fn sync_crowd_state(&mut self) {
        // Not uploading: never a candidate in anyone's election.
        let web_seed = self.fetches_web_seed() && !self.config.upload.is_off();
        let told = (web_seed, self.wanted_generation);
        let keys: Vec<PeerKey> = self
            .peers
            .iter()
            .filter(|(_, p)| {
                p.is_connected() && p.crowd.speaks() && p.crowd.told_state != Some(told)
            })
            .map(|(k, _)| *k)
            .collect();
        if keys.is_empty() {
            return;
        }
        let wants = self
            .picker
            .wanted_runs()
            .filter(|runs| runs.len() <= MAX_WANTED_RUNS);
        let payload = CrowdMessage::State { web_seed, wants }.encode();
        for key in keys {
            let Some(peer) = self.peers.get_mut(&key) else {
                continue;
            };
            peer.crowd.told_state = Some(told);
            let Some(id) = peer.crowd.id else {
                continue;
            };
            self.send(
                key,
                &Message::Extended {
                    id,
                    payload: payload.clone(),
                },
            );
        }
    }

    /// A peer's extended handshake said it speaks the extension under `id`:
    /// our state, and what we are getting now.
    pub(super) fn crowd_peer_joined(&mut self, key: PeerKey, id: u8) {
        if let Some(peer) = self.peers.get_mut(&key) {
            peer.crowd.id = Some(id);
        }
        self.sync_crowd_state();
        let getting: Vec<u32> = self
            .intents
            .ones()
            .filter(|&p| !self.picker.have().has(p))
            .collect();
        self.tell_getting(key, &getting);
    }

    /// A crowd message arrived. Advice only: nothing in it can hurt us.
    pub(super) fn on_crowd_message(&mut self, key: PeerKey, payload: &[u8]) {
        let Some(message) = CrowdMessage::decode(payload) else {
            return;
        };
        let (now, ttl, count) = (self.now, self.config.intent_ttl, self.picker.piece_count());
        let Some(peer) = self.peers.get_mut(&key) else {
            return;
        };
        match message {
            CrowdMessage::State { web_seed, wants } => {
                peer.crowd.web_seed = web_seed;
                peer.crowd.wants = wants;
                peer.crowd.stance_known = true;
            }
            CrowdMessage::Getting(pieces) => {
                peer.crowd.expire(now, ttl);
                let mut relay = Vec::new();
                for piece in pieces.into_iter().filter(|&p| p < count) {
                    peer.crowd.getting.insert(piece, now);
                    relay.push(piece);
                }
                // We will fetch those we need soon from it: say so, so our
                // other neighbours wait too.
                relay.retain(|&p| {
                    !self.picker.have().has(p) && self.picker.urgency(p) <= Urgency::ReadAhead
                });
                self.announce_getting(&relay);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_round_trip_and_garbage_is_ignored() {
        for m in [
            CrowdMessage::State {
                web_seed: true,
                wants: None,
            },
            CrowdMessage::State {
                web_seed: false,
                wants: None,
            },
            CrowdMessage::State {
                web_seed: true,
                wants: Some(vec![3..9, 12..13, 0..u32::MAX]),
            },
            CrowdMessage::Getting(vec![0, 7, u32::MAX]),
            CrowdMessage::Getting(vec![]),
        ] {
            assert_eq!(CrowdMessage::decode(&m.encode()), Some(m));
        }
        assert_eq!(CrowdMessage::decode(&[]), None);
        assert_eq!(CrowdMessage::decode(&[KIND_STATE]), None);
        assert_eq!(CrowdMessage::decode(&[KIND_GETTING, 0, 0, 1]), None);
        assert_eq!(CrowdMessage::decode(&[9, 1]), None);
        // Runs: whole ones, not too many; an older peer's state has none.
        assert_eq!(
            CrowdMessage::decode(&[KIND_STATE, 1]),
            Some(CrowdMessage::State {
                web_seed: true,
                wants: None
            })
        );
        assert_eq!(CrowdMessage::decode(&[KIND_STATE, 1, 0, 0, 0, 1]), None);
        let many = [&[KIND_STATE, 1][..], &[0; 8 * (MAX_WANTED_RUNS + 1)]].concat();
        assert_eq!(CrowdMessage::decode(&many), None);
        let too_many = [&[KIND_GETTING][..], &[0; 4 * 1025]].concat();
        assert_eq!(CrowdMessage::decode(&too_many), None);
        let long: Vec<u32> = (0..2500).collect();
        let parts: Vec<CrowdMessage> = CrowdMessage::getting(&long).collect();
        assert_eq!(parts.len(), 3);
    }

    #[test]
    fn rendezvous_spreads_groups_over_peers() {
        let peers: Vec<PeerId> = (0..10u8).map(|i| PeerId([i; 20])).collect();
        let mut wins = [0u32; 10];
        for group in 0..1000 {
            let best = (0..10)
                .max_by_key(|&i| rendezvous(&peers[i], group))
                .unwrap_or(0);
            wins[best] += 1;
        }
        assert!(wins.iter().all(|&w| (50..=150).contains(&w)), "{wins:?}");
        assert_eq!(rendezvous(&peers[3], 5), rendezvous(&peers[3], 5));
    }
}
