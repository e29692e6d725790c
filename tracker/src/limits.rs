//! Every bound the tracker enforces, in one place.

use std::time::Duration;

/// The tracker's limits; the defaults follow aquatic_ws where it has one.
///
/// A peer that exceeds a limit gets a `failure reason` (or, for sizes and
/// silence, a closed socket); other connections never notice.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Limits {
    /// Largest WebSocket message (and frame) accepted; bigger closes the socket.
    /// 64 KiB holds 10 offers of ~5 KiB SDP with room to spare.
    pub max_message_bytes: usize,
    /// Read buffer each socket allocates up front. Small keeps idle sockets
    /// cheap (tungstenite's default is 128 KiB); bigger messages still arrive,
    /// in more reads.
    pub read_buffer_bytes: usize,
    /// Bytes a socket may hold unsent before writes fail (a stuck reader).
    pub max_write_buffer_bytes: usize,
    /// Offers one announce may carry; the reference client sends 5 and caps at 10.
    pub max_offers_per_announce: usize,
    /// Info hashes one scrape may name; full scrapes (none named) are refused.
    pub max_scrape_hashes: usize,
    /// Swarms one connection may join; the reference client shares one socket
    /// across all its torrents, so this is its torrent count.
    pub max_swarms_per_connection: usize,
    /// Peers in one swarm; a flash crowd for one track must fit.
    pub max_peers_per_swarm: usize,
    /// Swarms in the whole tracker.
    pub max_swarms: usize,
    /// Relayed offers a connection may have outstanding (not yet answered).
    pub max_pending_offers_per_connection: usize,
    /// Sustained messages per second per connection (token bucket refill).
    pub messages_per_second: u32,
    /// Burst of messages a connection may send at once (token bucket size).
    pub message_burst: u32,
    /// A peer that has not announced for this long leaves its swarm.
    pub peer_max_age: Duration,
    /// An answer is routed only within this long after the offer was relayed.
    pub offer_max_age: Duration,
    /// A socket that sends nothing for this long is closed.
    pub idle_timeout: Duration,
    /// The `interval` we tell peers (bittorrent-tracker sends 120 s).
    pub announce_interval: Duration,
    /// Messages queued towards one connection; beyond it they are dropped
    /// rather than letting a slow reader hold memory.
    pub outgoing_queue: usize,
    /// Tracker sockets open at once from one address (an IPv6 address counts
    /// by its /64); more are refused with HTTP 429. Every fan behind one NAT
    /// (a venue's Wi-Fi, a carrier's NAT) shares an address, one socket per
    /// open tab, so this is generous: a crowd of hundreds gets in, while one
    /// address still holds at most ~9 MiB of idle sockets (9.2 KB each,
    /// BENCHMARKS.md) and a bounded share of the descriptors.
    /// 0 means no cap: behind a reverse proxy every fan has the proxy's
    /// address, so the proxy must do the capping.
    pub max_connections_per_address: usize,
    /// Tracker sockets open at once in all, from every address: each holds a
    /// file descriptor until its fan leaves, and a server out of descriptors
    /// accepts nothing, not even the web seed's requests. More are refused
    /// with HTTP 503. signal-server sets it from its descriptor limit
    /// (`--max-connections`); the default here is for embedders and tests.
    /// 0 means no cap.
    pub max_connections: usize,
    /// An HTTP connection must send a whole request head within this long of
    /// opening (or of its previous request), or it is closed: a client
    /// dribbling its upgrade request byte by byte cannot hold a socket.
    pub header_read_timeout: Duration,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_message_bytes: 64 * 1024,
            read_buffer_bytes: 4 * 1024,
            max_write_buffer_bytes: 1024 * 1024,
            max_offers_per_announce: 10,
            max_scrape_hashes: 255,
            max_swarms_per_connection: 256,
            max_peers_per_swarm: 20_000,
            max_swarms: 200_000,
            max_pending_offers_per_connection: 256,
            messages_per_second: 20,
            message_burst: 60,
            peer_max_age: Duration::from_secs(180),
            offer_max_age: Duration::from_secs(120),
            idle_timeout: Duration::from_secs(180),
            announce_interval: Duration::from_secs(120),
            outgoing_queue: 256,
            max_connections_per_address: 1024,
            max_connections: 10_000,
            header_read_timeout: Duration::from_secs(10),
        }
    }
}
