//! One swarm's peers, with cheap random choice.

use indexmap::IndexMap;
use swarm::PeerId;
use swarm::time::Time;

use super::ConnectionId;

/// The peers of one info hash.
///
/// Invariant: `seeders` is the number of peers with `seeder == true`; every
/// insertion and removal goes through this type's methods, which keep it.
#[derive(Debug, Default)]
pub(super) struct SwarmTable {
    peers: IndexMap<PeerId, Peer>,
    seeders: usize,
    /// `completed` events seen, for scrape's `downloaded`.
    pub(super) downloaded: u64,
}

/// One peer of a swarm.
#[derive(Debug, Clone, Copy)]
pub(super) struct Peer {
    /// The socket that owns this peer id in this swarm.
    pub(super) connection: ConnectionId,
    /// Has every piece (`left == 0` or `completed`).
    pub(super) seeder: bool,
    /// Last announce, for expiry.
    pub(super) last_announce: Time,
}

impl SwarmTable {
    pub(super) fn len(&self) -> usize {
        self.peers.len()
    }

    pub(super) fn is_empty(&self) -> bool {
        self.peers.is_empty()
    }

    pub(super) fn seeders(&self) -> usize {
        self.seeders
    }

    pub(super) fn leechers(&self) -> usize {
        self.peers.len() - self.seeders
    }

    pub(super) fn get(&self, id: &PeerId) -> Option<&Peer> {
        self.peers.get(id)
    }

    pub(super) fn iter(&self) -> impl Iterator<Item = (&PeerId, &Peer)> {
        self.peers.iter()
    }

    /// Inserts or replaces a peer, keeping the seeder count.
    pub(super) fn upsert(&mut self, id: PeerId, peer: Peer) {
        if let Some(old) = self.peers.insert(id, peer) {
            self.seeders -= usize::from(old.seeder);
        }
        self.seeders += usize::from(peer.seeder);
    }

    pub(super) fn remove(&mut self, id: &PeerId) -> Option<Peer> {
        let old = self.peers.swap_remove(id)?;
        self.seeders -= usize::from(old.seeder);
        Some(old)
    }

    /// Removes peers whose last announce is before `cutoff`; returns them.
    pub(super) fn expire(&mut self, cutoff: Time) -> Vec<(PeerId, ConnectionId)> {
        let mut gone = Vec::new();
        self.peers.retain(|id, p| {
            let keep = p.last_announce >= cutoff;
            if !keep {
                gone.push((*id, p.connection));
            }
            keep
        });
        self.seeders = self.peers.values().filter(|p| p.seeder).count();
        gone
    }

    /// Up to `count` distinct peers chosen uniformly at random, never `except`.
    pub(super) fn random_peers(
        &self,
        rng: &mut fastrand::Rng,
        count: usize,
        except: &PeerId,
    ) -> Vec<(PeerId, ConnectionId)> {
        let skip = self.peers.get_index_of(except);
        let candidates = self.peers.len() - usize::from(skip.is_some());
        let count = count.min(candidates);
        if count == 0 {
            return Vec::new();
        }
        let indices: Vec<usize> = if candidates <= 2 * count {
            // Few candidates: shuffle them all and take a prefix.
            let mut all: Vec<usize> = (0..self.peers.len()).filter(|&i| Some(i) != skip).collect();
            rng.shuffle(&mut all);
            all.truncate(count);
            all
        } else {
            // Many candidates: rejection sampling; each draw succeeds with
            // probability above 1/2, so this ends after ~2·count draws.
            let mut chosen = Vec::with_capacity(count);
            while chosen.len() < count {
                let i = rng.usize(..self.peers.len());
                if Some(i) != skip && !chosen.contains(&i) {
                    chosen.push(i);
                }
            }
            chosen
        };
        indices
            .into_iter()
            .filter_map(|i| self.peers.get_index(i).map(|(id, p)| (*id, p.connection)))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn peer(conn: u64, seeder: bool) -> Peer {
        Peer {
            connection: ConnectionId(conn),
            seeder,
            last_announce: Time(0),
        }
    }

    #[test]
    fn seeder_count_follows_upserts_and_removals() {
        let mut t = SwarmTable::default();
        t.upsert(PeerId([1; 20]), peer(1, false));
        t.upsert(PeerId([2; 20]), peer(2, true));
        assert_eq!((t.seeders(), t.leechers()), (1, 1));
        t.upsert(PeerId([1; 20]), peer(1, true));
        assert_eq!((t.seeders(), t.leechers()), (2, 0));
        t.remove(&PeerId([2; 20]));
        assert_eq!((t.seeders(), t.leechers()), (1, 0));
    }

    #[test]
    fn random_peers_are_distinct_and_never_the_asker() {
        let mut rng = fastrand::Rng::with_seed(7);
        for size in [1usize, 2, 3, 6, 11, 50] {
            let mut t = SwarmTable::default();
            for i in 0..size {
                t.upsert(PeerId([i as u8; 20]), peer(i as u64, false));
            }
            let me = PeerId([0; 20]);
            for _ in 0..50 {
                let got = t.random_peers(&mut rng, 5, &me);
                assert_eq!(got.len(), 5.min(size - 1), "size {size}");
                assert!(got.iter().all(|(id, _)| *id != me));
                let mut ids: Vec<_> = got.iter().map(|(id, _)| *id).collect();
                ids.sort();
                ids.dedup();
                assert_eq!(ids.len(), got.len());
            }
        }
    }

    #[test]
    fn random_choice_reaches_every_peer() {
        let mut rng = fastrand::Rng::with_seed(1);
        let mut t = SwarmTable::default();
        for i in 0..40u8 {
            t.upsert(PeerId([i; 20]), peer(u64::from(i), false));
        }
        let mut seen = std::collections::HashSet::new();
        for _ in 0..200 {
            for (id, _) in t.random_peers(&mut rng, 5, &PeerId([0; 20])) {
                seen.insert(id);
            }
        }
        assert_eq!(seen.len(), 39);
    }

    #[test]
    fn expire_removes_only_stale_peers() {
        let mut t = SwarmTable::default();
        t.upsert(
            PeerId([1; 20]),
            Peer {
                last_announce: Time(10),
                ..peer(1, true)
            },
        );
        t.upsert(
            PeerId([2; 20]),
            Peer {
                last_announce: Time(100),
                ..peer(2, true)
            },
        );
        let gone = t.expire(Time(50));
        assert_eq!(gone, vec![(PeerId([1; 20]), ConnectionId(1))]);
        assert_eq!(t.len(), 1);
        assert_eq!(t.seeders(), 1);
    }
}
