//! Several tracker instances sharing their swarms, still without IO.
//!
//! Behind a load balancer the fans of one swarm land on different
//! instances. Each instance keeps its own sockets and its own [`Tracker`];
//! a shell (signal-server's `--redis`) mirrors each instance's membership
//! into a shared store and carries offers and answers between instances.
//! The decisions stay here:
//!
//! - [`Tracker::enable_cluster`] turns it on; from then on the tracker
//!   pushes [`ClusterOut`]s, drained with [`Tracker::drain_cluster`]:
//!   `Joined`/`Left` for the shell to mirror, `Offers` it could not place
//!   on a local peer, `Answer`s to an offerer held by another instance.
//! - An announce's offers go to distinct peers drawn uniformly from the
//!   whole swarm as far as this instance knows its size: local peers, plus
//!   the remote count the shell last reported ([`Tracker::set_swarm_totals`]).
//!   A peer alone here sends all its offers out: the shell asks the store.
//! - An offer arriving from another instance ([`Tracker::remote_offer`]) is
//!   remembered like a local one, so the answer rule holds across
//!   instances: an answer is routed only for an offer relayed to that very
//!   answerer, once, within `offer_max_age`, and only the instance holding
//!   the answerer's socket can vouch for it. The instance holding the
//!   offerer's socket delivers it ([`Tracker::remote_answer`]) only if the
//!   offerer still holds its peer id on that very connection.
//! - Per-connection limits (rate, swarms, pending offers, peer-id rules)
//!   are kept by the instance that holds the connection, so they hold
//!   whichever instance the other peers are on.

use std::collections::HashMap;
use std::time::Duration;
use swarm::time::Time;

use swarm::tracker::{Action, AnswerRelay, Offer, OfferId, OfferRelay, SessionDescription};
use swarm::{InfoHash, PeerId};

use crate::{ConnectionId, OutMessage, Outbox, PendingOffer, Tracker};

/// One tracker instance of a cluster, numbered by the shell (at random).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct InstanceId(pub u64);

/// A connection held by another instance.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct RemoteConnection {
    /// The instance holding the socket.
    pub instance: InstanceId,
    /// Its number there.
    pub connection: ConnectionId,
}

/// Where the socket of an offer's sender is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Holder {
    /// On this instance.
    Local(ConnectionId),
    /// On another one.
    Remote(RemoteConnection),
}

/// What the tracker asks its cluster shell to do.
#[derive(Debug, Clone, PartialEq)]
pub enum ClusterOut {
    /// A peer joined a swarm on this instance, or turned seeder: mirror it.
    Joined {
        /// The swarm.
        info_hash: InfoHash,
        /// The peer.
        peer_id: PeerId,
        /// Its connection here.
        connection: ConnectionId,
        /// Has every piece.
        seeder: bool,
    },
    /// A peer of this instance left a swarm (stopped, closed, expired).
    Left {
        /// The swarm.
        info_hash: InfoHash,
        /// The peer.
        peer_id: PeerId,
        /// Its connection here.
        connection: ConnectionId,
    },
    /// Offers to relay to peers of other instances: distinct peers of the
    /// swarm not held here, one offer each, as many as there are.
    Offers(RemoteOffers),
    /// An answer for an offerer held by another instance.
    Answer(RemoteAnswer),
    /// A peer here announced offers and all went to local peers: fetch
    /// the swarm's totals and report them ([`Tracker::set_swarm_totals`]),
    /// so the next split sees peers that joined other instances since.
    Totals(InfoHash),
}

/// Offers an announce could not place on a local peer.
#[derive(Debug, Clone, PartialEq)]
pub struct RemoteOffers {
    /// The swarm.
    pub info_hash: InfoHash,
    /// The offerer.
    pub offerer: PeerId,
    /// The offerer's connection here.
    pub connection: ConnectionId,
    /// One per chosen remote peer.
    pub offers: Vec<Offer>,
}

/// An answer travelling to the instance that holds the offerer.
#[derive(Debug, Clone, PartialEq)]
pub struct RemoteAnswer {
    /// Where the offerer's socket is.
    pub to: RemoteConnection,
    /// The offerer.
    pub offerer: PeerId,
    /// The answer as the offerer will read it (`peer_id` is the answerer).
    pub relay: AnswerRelay,
}

/// An offer from a peer of another instance to a peer of this one.
#[derive(Debug, Clone, PartialEq)]
pub struct IncomingOffer {
    /// Where the offerer's socket is.
    pub from: RemoteConnection,
    /// The peer of this instance it is for.
    pub to: PeerId,
    /// The offer as the answerer will read it (`peer_id` is the offerer).
    pub relay: OfferRelay,
}

/// Why a message from another instance was not delivered.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum Undeliverable {
    /// The cluster mode is off.
    #[error("not in a cluster")]
    NotClustered,
    /// The addressed peer is no longer in that swarm here (or on that
    /// connection).
    #[error("peer gone")]
    PeerGone,
    /// The answerer has as many offers pending as allowed.
    #[error("too many pending offers")]
    TooManyPending,
}

impl Undeliverable {
    /// A short fixed name for metrics labels.
    pub fn label(self) -> &'static str {
        match self {
            Undeliverable::NotClustered => "not_clustered",
            Undeliverable::PeerGone => "peer_gone",
            Undeliverable::TooManyPending => "too_many_pending",
        }
    }
}

/// The cluster side of a tracker.
#[derive(Debug, Default)]
pub(crate) struct ClusterState {
    pub(crate) out: Vec<ClusterOut>,
    /// When each swarm's totals were last asked for: at most once per
    /// [`TOTALS_EVERY`], however busy the swarm.
    pub(crate) totals_asked: HashMap<InfoHash, Time>,
}

/// How often a busy swarm's totals are fetched at most.
pub(crate) const TOTALS_EVERY: Duration = Duration::from_secs(1);

/// Peers of a swarm on other instances, as last reported.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct RemoteCounts {
    pub(crate) seeders: usize,
    pub(crate) leechers: usize,
}

impl RemoteCounts {
    pub(crate) fn total(self) -> usize {
        self.seeders + self.leechers
    }
}

/// One local peer, as the shell refreshes it in the shared store.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LocalMember {
    /// The swarm.
    pub info_hash: InfoHash,
    /// The peer.
    pub peer_id: PeerId,
    /// Its connection here.
    pub connection: ConnectionId,
    /// Has every piece.
    pub seeder: bool,
}

impl Tracker {
    /// Turns the cluster mode on: membership changes, offers for other
    /// instances and answers for them are pushed for [`drain_cluster`].
    ///
    /// [`drain_cluster`]: Tracker::drain_cluster
    pub fn enable_cluster(&mut self) {
        self.cluster.get_or_insert_with(ClusterState::default);
    }

    /// Whether [`enable_cluster`](Tracker::enable_cluster) was called.
    pub fn is_clustered(&self) -> bool {
        self.cluster.is_some()
    }

    /// Takes what the tracker wants the cluster shell to do.
    pub fn drain_cluster(&mut self) -> Vec<ClusterOut> {
        self.cluster
            .as_mut()
            .map(|c| std::mem::take(&mut c.out))
            .unwrap_or_default()
    }

    /// The shared store's counts for a swarm, this instance's peers
    /// included: what is not ours is other instances'. Ignored for a swarm
    /// with no peer here (it would only hold memory).
    pub fn set_swarm_totals(&mut self, info_hash: &InfoHash, seeders: usize, leechers: usize) {
        let Some(table) = self.swarms.get(info_hash) else {
            return;
        };
        let remote = RemoteCounts {
            seeders: seeders.saturating_sub(table.seeders()),
            leechers: leechers.saturating_sub(table.leechers()),
        };
        self.remote_counts.insert(*info_hash, remote);
    }

    /// Every peer held here, for the shell's periodic refresh of the store.
    pub fn local_members(&self) -> Vec<LocalMember> {
        let mut all = Vec::with_capacity(self.peer_count);
        for (info_hash, table) in &self.swarms {
            all.extend(table.iter().map(|(peer_id, p)| LocalMember {
                info_hash: *info_hash,
                peer_id: *peer_id,
                connection: p.connection,
                seeder: p.seeder,
            }));
        }
        all
    }

    /// An offer from a peer of another instance: delivered to our peer
    /// `to` if it is still in the swarm and has room for another pending
    /// offer, and remembered so that only its answer is routed back.
    pub fn remote_offer(
        &mut self,
        now: Time,
        offer: IncomingOffer,
        out: &mut Outbox,
    ) -> Result<(), Undeliverable> {
        if self.cluster.is_none() {
            return Err(Undeliverable::NotClustered);
        }
        let info_hash = offer.relay.info_hash;
        let target = self
            .swarms
            .get(&info_hash)
            .and_then(|t| t.get(&offer.to))
            .map(|p| p.connection)
            .ok_or(Undeliverable::PeerGone)?;
        let limit = self.limits.max_pending_offers_per_connection;
        let conn = self
            .connections
            .get_mut(&target)
            .ok_or(Undeliverable::PeerGone)?;
        let key = (info_hash, offer.relay.offer_id);
        if conn.pending.len() >= limit && !conn.pending.contains_key(&key) {
            return Err(Undeliverable::TooManyPending);
        }
        conn.pending.insert(
            key,
            PendingOffer {
                offerer: offer.relay.peer_id,
                offerer_connection: Holder::Remote(offer.from),
                answerer: offer.to,
                expires: now + self.limits.offer_max_age,
            },
        );
        out.push((target, OutMessage::Offer(offer.relay)));
        Ok(())
    }

    /// An answer from another instance for our peer `offerer` on
    /// `connection`: delivered only if that connection still holds that
    /// peer id in the swarm (the answerer's instance checked the offer).
    pub fn remote_answer(
        &mut self,
        connection: ConnectionId,
        offerer: PeerId,
        relay: AnswerRelay,
        out: &mut Outbox,
    ) -> Result<(), Undeliverable> {
        if self.cluster.is_none() {
            return Err(Undeliverable::NotClustered);
        }
        let here = self
            .swarms
            .get(&relay.info_hash)
            .and_then(|t| t.get(&offerer))
            .is_some_and(|p| p.connection == connection);
        if !here {
            return Err(Undeliverable::PeerGone);
        }
        out.push((connection, OutMessage::Answer(relay)));
        Ok(())
    }

    /// Asks for a swarm's totals, unless they were asked for within
    /// [`TOTALS_EVERY`].
    pub(crate) fn ask_totals(&mut self, now: Time, info_hash: InfoHash) {
        let Some(cluster) = &mut self.cluster else {
            return;
        };
        let due = cluster
            .totals_asked
            .get(&info_hash)
            .is_none_or(|at| now >= *at + TOTALS_EVERY);
        if due {
            cluster.totals_asked.insert(info_hash, now);
            cluster.out.push(ClusterOut::Totals(info_hash));
        }
    }

    /// Forgets when the totals of swarms with no peer here were asked for.
    pub(crate) fn forget_totals_of_empty_swarms(&mut self) {
        let swarms = &self.swarms;
        if let Some(cluster) = &mut self.cluster {
            cluster.totals_asked.retain(|h, _| swarms.contains_key(h));
        }
    }

    /// Records a cluster event, if the cluster mode is on.
    pub(crate) fn cluster_push(&mut self, event: ClusterOut) {
        if let Some(cluster) = &mut self.cluster {
            cluster.out.push(event);
        }
    }

    /// Peers of the swarm on other instances, as last reported.
    pub(crate) fn remote(&self, info_hash: &InfoHash) -> RemoteCounts {
        self.remote_counts
            .get(info_hash)
            .copied()
            .unwrap_or_default()
    }

    /// How many of `slots` offers go to other instances: each slot draws
    /// without replacement from `local` candidates here and `remote` ones
    /// elsewhere. With no candidate here, all of them (the store may know
    /// peers this instance has not heard of yet).
    pub(crate) fn remote_slots(
        &self,
        rng: &mut fastrand::Rng,
        slots: usize,
        local: usize,
        remote: usize,
    ) -> usize {
        if self.cluster.is_none() {
            return 0;
        }
        if local == 0 {
            return slots;
        }
        let (mut local, mut remote, mut chosen) = (local, remote, 0);
        for _ in 0..slots {
            if local + remote == 0 {
                break;
            }
            if rng.usize(..local + remote) < remote {
                remote -= 1;
                chosen += 1;
            } else {
                local -= 1;
            }
        }
        chosen
    }
}

/// An answer to route to another instance's offerer.
pub(crate) fn remote_answer(
    to: RemoteConnection,
    offerer: PeerId,
    info_hash: InfoHash,
    answerer: PeerId,
    offer_id: OfferId,
    answer: SessionDescription,
) -> ClusterOut {
    ClusterOut::Answer(RemoteAnswer {
        to,
        offerer,
        relay: AnswerRelay {
            action: Action::Announce,
            info_hash,
            peer_id: answerer,
            offer_id,
            answer,
        },
    })
}
