//! fanswarm's WebTorrent tracker, as a state machine with no sockets.
//!
//! A WebTorrent tracker is a WebSocket server that keeps one table per swarm
//! (info hash → peers) and passes WebRTC offers and answers between peers
//! that have never met. This crate is that bookkeeping and nothing else:
//! [`Tracker`] never reads a clock, draws its own randomness, or touches a
//! socket. The shell that owns it — `signal-server`'s WebSocket tracker, the
//! `tracker_server` fuzz target, a simulator — numbers its connections,
//! hands in the time and an rng with every call, and carries out what the
//! tracker pushes into an [`Outbox`]: `(ConnectionId, OutMessage)` pairs,
//! each to be serialized and sent to that connection. The same inputs give
//! the same outputs, so every rule below is tested without a socket, and a
//! simulator can run thousands of peers against it in virtual time.
//!
//! # Driving it
//!
//! - [`Tracker::connect`] when a socket opens (optional: [`Tracker::handle`]
//!   registers a connection it has not seen);
//! - [`Tracker::handle`] for every text frame, parsed beforehand with
//!   [`swarm::tracker::parse_client_message`] (outside any lock the shell
//!   may hold: parsing is the expensive part), then send what it pushed;
//! - [`Tracker::disconnect`] when a socket closes: its peers leave;
//! - [`Tracker::expire`] now and then (the server: every 15 s): peers that
//!   stopped announcing and offers nobody answered are dropped.
//!
//! Time is [`swarm::time::Time`], milliseconds from any epoch the shell
//! likes, never going back.
//!
//! ```
//! use fanswarm_tracker::{ConnectionId, Limits, Outbox, Tracker};
//! use swarm::time::Time;
//! use swarm::tracker::parse_client_message;
//!
//! let mut tracker = Tracker::new(Limits::default());
//! let mut rng = fastrand::Rng::with_seed(1);
//! let mut out = Outbox::new();
//! let frame = br#"{"action":"announce","info_hash":"aaaaaaaaaaaaaaaaaaaa",
//!     "peer_id":"-WW0300-000000000001","left":0,"uploaded":0,"downloaded":0}"#;
//! let request = parse_client_message(frame);
//! tracker.handle(Time(0), &mut rng, ConnectionId(1), request, &mut out);
//! for (to, message) in out.drain(..) {
//!     // A real shell queues this text to connection `to`.
//!     let _text = serde_json::to_string(&message.into_server_message());
//!     assert_eq!(to, ConnectionId(1));
//! }
//! assert_eq!(tracker.swarm_peers(&swarm::InfoHash([b'a'; 20])), (1, 0));
//! tracker.disconnect(ConnectionId(1));
//! assert_eq!(tracker.peer_count(), 0);
//! ```
//!
//! # Rules it keeps
//!
//! - A peer id belongs to the connection that first announced it in a swarm;
//!   another connection cannot take it over, and one connection has one peer
//!   id per swarm.
//! - Each offer goes to a different randomly chosen peer of the swarm, at most
//!   min(numwant, offers, limit) of them.
//! - An answer is routed only for an offer this tracker relayed to that very
//!   answerer in the last `offer_max_age`, and only once.
//! - A connection's peers leave their swarms when it closes or they go silent.
//! - Only the swarms [`Access`] allows are served (all, by default); an
//!   announce for another is refused, as aquatic's access lists do.
//! - Every bound is in [`Limits`]; every refusal is a [`Refusal`], whose text
//!   is the `failure reason` the peer reads. A connection that sends faster
//!   than its token bucket allows is refused, not disconnected.
//!
//! Some of [`Limits`] are the shell's to enforce (message size, idle
//! timeout, sockets per address, queue length): they live here so one
//! struct configures a whole tracker.
#![forbid(unsafe_code)]

mod access;
mod cluster;
mod limits;
mod rate;
mod refusal;
mod swarm_table;

use std::collections::{BTreeMap, HashMap};

use swarm::time::Time;
use swarm::tracker::{
    Action, AnnounceEvent, AnnounceRequest, AnnounceResponse, AnswerRelay, ClientMessage, Failure,
    Offer, OfferId, OfferRelay, ParseError, ScrapeRequest, ScrapeResponse, ScrapeStatistics,
    ServerMessage,
};
use swarm::{InfoHash, PeerId};

pub use access::Access;
pub use cluster::{
    ClusterOut, IncomingOffer, InstanceId, LocalMember, RemoteAnswer, RemoteConnection,
    RemoteOffers, Undeliverable,
};
use cluster::{ClusterState, Holder, RemoteCounts};
pub use limits::Limits;
use rate::TokenBucket;
pub use refusal::Refusal;
use swarm_table::{Peer, SwarmTable};

/// One WebSocket connection, numbered by the shell.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ConnectionId(pub u64);

/// What the tracker wants sent to one connection.
#[derive(Debug, Clone, PartialEq)]
pub enum OutMessage {
    /// Reply to an announce.
    Announce(AnnounceResponse),
    /// An offer relayed to a chosen peer.
    Offer(OfferRelay),
    /// An answer routed back to the offerer.
    Answer(AnswerRelay),
    /// Reply to a scrape.
    Scrape(ScrapeResponse),
    /// A refused request.
    Failure {
        /// Why.
        refusal: Refusal,
        /// The refused request's action, when known.
        action: Option<Action>,
        /// The refused request's swarm, when known.
        info_hash: Option<InfoHash>,
    },
}

impl OutMessage {
    /// The protocol message to put on the wire.
    pub fn into_server_message(self) -> ServerMessage {
        match self {
            OutMessage::Announce(m) => ServerMessage::Announce(m),
            OutMessage::Offer(m) => ServerMessage::Offer(m),
            OutMessage::Answer(m) => ServerMessage::Answer(m),
            OutMessage::Scrape(m) => ServerMessage::Scrape(m),
            OutMessage::Failure {
                refusal,
                action,
                info_hash,
            } => ServerMessage::Failure(Failure {
                action,
                info_hash,
                reason: refusal.to_string(),
            }),
        }
    }
}

/// Outgoing messages, pushed by the tracker, drained by the shell.
pub type Outbox = Vec<(ConnectionId, OutMessage)>;

/// All swarms and connections of one tracker.
#[derive(Debug)]
pub struct Tracker {
    limits: Limits,
    access: Access,
    swarms: HashMap<InfoHash, SwarmTable>,
    connections: HashMap<ConnectionId, Connection>,
    peer_count: usize,
    /// Set by [`Tracker::enable_cluster`]: events for the cluster shell.
    cluster: Option<ClusterState>,
    /// Peers of each local swarm held by other instances, as last reported.
    remote_counts: HashMap<InfoHash, RemoteCounts>,
}

impl Tracker {
    /// An empty tracker.
    pub fn new(limits: Limits) -> Self {
        Tracker {
            limits,
            access: Access::Open,
            swarms: HashMap::new(),
            connections: HashMap::new(),
            peer_count: 0,
            cluster: None,
            remote_counts: HashMap::new(),
        }
    }

    /// The limits in force.
    pub fn limits(&self) -> &Limits {
        &self.limits
    }

    /// Which swarms are served from now on (open by default). Peers already
    /// in a swarm that is no longer allowed are refused at their next
    /// announce.
    pub fn set_access(&mut self, access: Access) {
        self.access = access;
    }

    /// Which swarms are served.
    pub fn access(&self) -> &Access {
        &self.access
    }

    /// Whether announces for `info_hash` are accepted.
    pub fn allows(&self, info_hash: &InfoHash) -> bool {
        self.access.allows(info_hash)
    }

    /// Registers a new connection.
    pub fn connect(&mut self, now: Time, connection: ConnectionId) {
        let bucket = TokenBucket::new(now, self.limits.message_burst);
        self.connections.insert(connection, Connection::new(bucket));
    }

    /// A connection closed (or was closed): its peers leave their swarms.
    pub fn disconnect(&mut self, connection: ConnectionId) {
        let Some(conn) = self.connections.remove(&connection) else {
            return;
        };
        for (info_hash, peer_id) in conn.swarms {
            self.remove_peer(info_hash, &peer_id);
        }
    }

    /// Handles one frame's worth of request (already parsed, outside any lock).
    pub fn handle(
        &mut self,
        now: Time,
        rng: &mut fastrand::Rng,
        connection: ConnectionId,
        request: Result<ClientMessage, ParseError>,
        out: &mut Outbox,
    ) {
        if !self.connections.contains_key(&connection) {
            self.connect(now, connection);
        }
        let limits = &self.limits;
        let allowed = self.connections.get_mut(&connection).is_some_and(|c| {
            c.bucket
                .take(now, limits.messages_per_second, limits.message_burst)
        });
        let result = match (allowed, request) {
            (false, Ok(msg)) => Err(failure_context(&msg, Refusal::RateLimited)),
            (false, Err(e)) => Err((Refusal::RateLimited, e.action, e.info_hash)),
            (true, Err(e)) => Err((Refusal::Malformed(e.reason.clone()), e.action, e.info_hash)),
            (true, Ok(ClientMessage::Scrape(s))) => self
                .scrape(s)
                .map(|m| out.push((connection, OutMessage::Scrape(m))))
                .map_err(|r| (r, Some(Action::Scrape), None)),
            (true, Ok(ClientMessage::Announce(a))) => {
                let info_hash = a.info_hash;
                let result = if !self.access.allows(&info_hash) {
                    Err(Refusal::NotAllowed)
                } else if a.answer.is_some() {
                    self.answer(now, connection, a, out)
                } else {
                    self.announce(now, rng, connection, a, out)
                };
                result.map_err(|r| (r, Some(Action::Announce), Some(info_hash)))
            }
        };
        if let Err((refusal, action, info_hash)) = result {
            out.push((
                connection,
                OutMessage::Failure {
                    refusal,
                    action,
                    info_hash,
                },
            ));
        }
    }

    /// Drops peers that stopped announcing and offers nobody answered.
    pub fn expire(&mut self, now: Time) {
        let peer_cutoff = now - self.limits.peer_max_age;
        let mut gone = Vec::new();
        let remote_counts = &mut self.remote_counts;
        self.swarms.retain(|info_hash, table| {
            for (peer_id, connection) in table.expire(peer_cutoff) {
                gone.push((*info_hash, peer_id, connection));
            }
            if table.is_empty() {
                remote_counts.remove(info_hash);
            }
            !table.is_empty()
        });
        self.peer_count -= gone.len();
        for (info_hash, peer_id, connection) in gone {
            self.cluster_push(ClusterOut::Left {
                info_hash,
                peer_id,
                connection,
            });
            if let Some(conn) = self.connections.get_mut(&connection)
                && conn.swarms.get(&info_hash) == Some(&peer_id)
            {
                conn.swarms.remove(&info_hash);
            }
        }
        for conn in self.connections.values_mut() {
            conn.pending.retain(|_, p| p.expires > now);
        }
        self.forget_totals_of_empty_swarms();
    }

    /// Open connections.
    pub fn connection_count(&self) -> usize {
        self.connections.len()
    }

    /// Swarms with at least one peer.
    pub fn swarm_count(&self) -> usize {
        self.swarms.len()
    }

    /// Peers over all swarms.
    pub fn peer_count(&self) -> usize {
        self.peer_count
    }

    /// `(seeders, leechers)` in one swarm right now; zeros if it is empty.
    /// This instance's peers only (see [`Tracker::set_swarm_totals`]).
    pub fn swarm_peers(&self, info_hash: &InfoHash) -> (usize, usize) {
        self.swarms
            .get(info_hash)
            .map_or((0, 0), |t| (t.seeders(), t.leechers()))
    }

    /// `(seeders, leechers)` as peers are told: this instance's, plus
    /// those other instances hold as last reported.
    fn counts(&self, info_hash: &InfoHash) -> (usize, usize) {
        let (seeders, leechers) = self.swarm_peers(info_hash);
        let remote = self.remote(info_hash);
        (seeders + remote.seeders, leechers + remote.leechers)
    }
}

/// Per-connection state.
#[derive(Debug)]
struct Connection {
    /// The peer id this connection announced in each swarm it is in.
    swarms: HashMap<InfoHash, PeerId>,
    /// Offers relayed *to* this connection, awaiting its answer.
    pending: HashMap<(InfoHash, OfferId), PendingOffer>,
    bucket: TokenBucket,
}

impl Connection {
    fn new(bucket: TokenBucket) -> Self {
        Connection {
            swarms: HashMap::new(),
            pending: HashMap::new(),
            bucket,
        }
    }
}

/// An offer relayed to a peer, remembered so only its answer gets through.
#[derive(Debug, Clone, Copy)]
struct PendingOffer {
    offerer: PeerId,
    /// Where the offerer's socket is: here, or on another instance.
    offerer_connection: Holder,
    answerer: PeerId,
    expires: Time,
}

type Refused = (Refusal, Option<Action>, Option<InfoHash>);

fn failure_context(msg: &ClientMessage, refusal: Refusal) -> Refused {
    match msg {
        ClientMessage::Announce(a) => (refusal, Some(Action::Announce), Some(a.info_hash)),
        ClientMessage::Scrape(_) => (refusal, Some(Action::Scrape), None),
    }
}

impl Tracker {
    fn announce(
        &mut self,
        now: Time,
        rng: &mut fastrand::Rng,
        connection: ConnectionId,
        a: AnnounceRequest,
        out: &mut Outbox,
    ) -> Result<(), Refusal> {
        let offers = a.offers.unwrap_or_default();
        if offers.len() > self.limits.max_offers_per_announce {
            return Err(Refusal::TooManyOffers(self.limits.max_offers_per_announce));
        }
        self.check_ownership(connection, a.info_hash, &a.peer_id)?;
        if a.event == Some(AnnounceEvent::Stopped) {
            self.leave(connection, a.info_hash, &a.peer_id);
        } else {
            self.join(now, connection, &a.info_hash, a.peer_id, a.left, a.event)?;
        }

        let (complete, incomplete) = self.counts(&a.info_hash);
        out.push((
            connection,
            OutMessage::Announce(AnnounceResponse {
                action: Action::Announce,
                info_hash: a.info_hash,
                complete: complete as u64,
                incomplete: incomplete as u64,
                interval: self.limits.announce_interval.as_secs(),
            }),
        ));

        if a.event == Some(AnnounceEvent::Stopped) || offers.is_empty() {
            return Ok(());
        }
        let wanted = usize::try_from(a.numwant.unwrap_or(u64::MAX)).unwrap_or(usize::MAX);
        let count = wanted.min(offers.len());
        let Some(table) = self.swarms.get(&a.info_hash) else {
            return Ok(());
        };
        let local = table.len() - usize::from(table.get(&a.peer_id).is_some());
        let remote = self.remote(&a.info_hash).total();
        let remote_slots = self.remote_slots(rng, count, local, remote);
        let targets = table.random_peers(rng, count - remote_slots, &a.peer_id);
        let expires = now + self.limits.offer_max_age;
        let mut offers = offers.into_iter();
        let local_offers: Vec<Offer> = offers.by_ref().take(targets.len()).collect();
        let remote_offers: Vec<Offer> = offers.take(remote_slots).collect();
        if remote_offers.is_empty() {
            self.ask_totals(now, a.info_hash);
        } else {
            // The store's answer to these brings the totals back too.
            self.cluster_push(ClusterOut::Offers(RemoteOffers {
                info_hash: a.info_hash,
                offerer: a.peer_id,
                connection,
                offers: remote_offers,
            }));
        }
        for ((target_peer, target_conn), offer) in targets.into_iter().zip(local_offers) {
            let Some(target) = self.connections.get_mut(&target_conn) else {
                continue;
            };
            let key = (a.info_hash, offer.offer_id);
            if target.pending.len() >= self.limits.max_pending_offers_per_connection
                && !target.pending.contains_key(&key)
            {
                continue;
            }
            target.pending.insert(
                key,
                PendingOffer {
                    offerer: a.peer_id,
                    offerer_connection: Holder::Local(connection),
                    answerer: target_peer,
                    expires,
                },
            );
            out.push((
                target_conn,
                OutMessage::Offer(OfferRelay {
                    action: Action::Announce,
                    info_hash: a.info_hash,
                    peer_id: a.peer_id,
                    offer_id: offer.offer_id,
                    offer: offer.offer,
                }),
            ));
        }
        Ok(())
    }

    fn answer(
        &mut self,
        now: Time,
        connection: ConnectionId,
        a: AnnounceRequest,
        out: &mut Outbox,
    ) -> Result<(), Refusal> {
        let (Some(answer), Some(to_peer_id), Some(offer_id)) = (a.answer, a.to_peer_id, a.offer_id)
        else {
            return Err(Refusal::IncompleteAnswer);
        };
        let conn = self
            .connections
            .get_mut(&connection)
            .ok_or(Refusal::UnknownOffer)?;
        let key = (a.info_hash, offer_id);
        let pending = match conn.pending.get(&key) {
            Some(p) if p.answerer == a.peer_id && p.offerer == to_peer_id && p.expires > now => *p,
            _ => return Err(Refusal::UnknownOffer),
        };
        conn.pending.remove(&key);
        let offerer_connection = match pending.offerer_connection {
            Holder::Local(c) => c,
            Holder::Remote(to) => {
                // Its instance checks that the offerer is still there.
                let relay = cluster::remote_answer(
                    to,
                    to_peer_id,
                    a.info_hash,
                    a.peer_id,
                    offer_id,
                    answer,
                );
                self.cluster_push(relay);
                return Ok(());
            }
        };
        // The offerer must still hold its peer id on the same socket.
        let still_there = self
            .swarms
            .get(&a.info_hash)
            .and_then(|t| t.get(&to_peer_id))
            .is_some_and(|p| p.connection == offerer_connection);
        if !still_there {
            return Err(Refusal::UnknownOffer);
        }
        out.push((
            offerer_connection,
            OutMessage::Answer(AnswerRelay {
                action: Action::Announce,
                info_hash: a.info_hash,
                peer_id: a.peer_id,
                offer_id,
                answer,
            }),
        ));
        Ok(())
    }

    fn scrape(&self, s: ScrapeRequest) -> Result<ScrapeResponse, Refusal> {
        if s.info_hashes.is_empty() {
            return Err(Refusal::FullScrape);
        }
        if s.info_hashes.len() > self.limits.max_scrape_hashes {
            return Err(Refusal::TooManyScrapeHashes(self.limits.max_scrape_hashes));
        }
        let files: BTreeMap<_, _> = s
            .info_hashes
            .into_iter()
            .map(|h| {
                let (complete, incomplete) = self.counts(&h);
                let stats = ScrapeStatistics {
                    complete: complete as u64,
                    incomplete: incomplete as u64,
                    downloaded: self.swarms.get(&h).map_or(0, |t| t.downloaded),
                };
                (h, stats)
            })
            .collect();
        Ok(ScrapeResponse {
            action: Action::Scrape,
            files,
        })
    }

    /// Refuses a peer id owned by another socket, or a second id on this one.
    fn check_ownership(
        &self,
        connection: ConnectionId,
        info_hash: InfoHash,
        peer_id: &PeerId,
    ) -> Result<(), Refusal> {
        if let Some(owner) = self.swarms.get(&info_hash).and_then(|t| t.get(peer_id))
            && owner.connection != connection
        {
            return Err(Refusal::PeerIdTaken);
        }
        let conn = self.connections.get(&connection);
        match conn.and_then(|c| c.swarms.get(&info_hash)) {
            Some(mine) if mine != peer_id => Err(Refusal::PeerIdChanged),
            _ => Ok(()),
        }
    }

    fn join(
        &mut self,
        now: Time,
        connection: ConnectionId,
        info_hash: &InfoHash,
        peer_id: PeerId,
        left: Option<u64>,
        event: Option<AnnounceEvent>,
    ) -> Result<(), Refusal> {
        let limits = &self.limits;
        let conn = self
            .connections
            .get_mut(&connection)
            .expect("handle() registers the connection before dispatching");
        let new_for_conn = !conn.swarms.contains_key(info_hash);
        if new_for_conn && conn.swarms.len() >= limits.max_swarms_per_connection {
            return Err(Refusal::TooManySwarms(limits.max_swarms_per_connection));
        }
        if !self.swarms.contains_key(info_hash) && self.swarms.len() >= limits.max_swarms {
            return Err(Refusal::TrackerFull);
        }
        let remote = self
            .remote_counts
            .get(info_hash)
            .copied()
            .unwrap_or_default()
            .total();
        let table = self.swarms.entry(*info_hash).or_default();
        let existing = table.get(&peer_id).copied();
        if existing.is_none() && table.len() + remote >= limits.max_peers_per_swarm {
            if table.is_empty() {
                self.swarms.remove(info_hash);
            }
            return Err(Refusal::SwarmFull);
        }
        let completed = event == Some(AnnounceEvent::Completed);
        let was_seeder = existing.is_some_and(|p| p.seeder);
        let seeder = completed || left.map_or(was_seeder, |l| l == 0);
        if completed && !was_seeder {
            table.downloaded += 1;
        }
        table.upsert(
            peer_id,
            Peer {
                connection,
                seeder,
                last_announce: now,
            },
        );
        if existing.is_none() {
            self.peer_count += 1;
        }
        conn.swarms.insert(*info_hash, peer_id);
        if existing.is_none_or(|p| p.seeder != seeder) {
            self.cluster_push(ClusterOut::Joined {
                info_hash: *info_hash,
                peer_id,
                connection,
                seeder,
            });
        }
        Ok(())
    }

    fn leave(&mut self, connection: ConnectionId, info_hash: InfoHash, peer_id: &PeerId) {
        if let Some(conn) = self.connections.get_mut(&connection)
            && conn.swarms.get(&info_hash) == Some(peer_id)
        {
            conn.swarms.remove(&info_hash);
            self.remove_peer(info_hash, peer_id);
        }
    }

    fn remove_peer(&mut self, info_hash: InfoHash, peer_id: &PeerId) {
        let Some(table) = self.swarms.get_mut(&info_hash) else {
            return;
        };
        let removed = table.remove(peer_id);
        if table.is_empty() {
            self.swarms.remove(&info_hash);
            self.remote_counts.remove(&info_hash);
        }
        if let Some(peer) = removed {
            self.peer_count -= 1;
            self.cluster_push(ClusterOut::Left {
                info_hash,
                peer_id: *peer_id,
                connection: peer.connection,
            });
        }
    }
}

#[cfg(test)]
mod tests;
