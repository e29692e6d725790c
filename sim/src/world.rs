//! What the simulated world is made of: the track, the links, the crowd.

use std::time::Duration;

use fanswarm_tracker::Limits;
use swarm::engine::Config;

use crate::hostile::Behaviour;

/// Simulated microseconds since the start of the run.
pub type Micros = u64;

/// How the simulated world looks. Every range is drawn from uniformly with
/// the run's one seed.
#[derive(Debug, Clone)]
pub struct World {
    /// Seed for all randomness: content, latencies, every node's choices.
    pub seed: u64,
    /// Bytes in the track.
    pub file_len: usize,
    /// Bytes per piece.
    pub piece_length: u32,
    /// Whether the torrent has a web seed (`url-list`).
    pub web_seed: bool,
    /// One HTTP response body from the origin streams at this many bytes
    /// per second (the origin is not a bottleneck for a crowd of fans:
    /// each request gets this, whatever else is in flight).
    pub http_rate: u64,
    /// Each node's upload, bytes per second, shared by its connections.
    pub peer_up: u64,
    /// One-way latency between a node and the server (tracker and web
    /// seed), milliseconds.
    pub server_latency_ms: (u64, u64),
    /// One-way latency between two nodes, milliseconds.
    pub latency_ms: (u64, u64),
    /// ICE gathering for one offer or answer, milliseconds.
    pub gather_ms: (u64, u64),
    /// From the answer applied to an open data channel: this many round
    /// trips between the two (ICE checks, DTLS, SCTP) plus `setup_extra_ms`.
    pub setup_rtts: u64,
    /// Fixed time on top of the set-up round trips (browser processing).
    pub setup_extra_ms: (u64, u64),
    /// Chance, in percent, that a connection never opens (NAT, ICE failure).
    pub connect_failure_percent: u64,
    /// Offers per announce (the reference client: 5).
    pub offers_per_announce: usize,
    /// Connections a node keeps at most (the browser's default: 20).
    pub max_connections: usize,
    /// Engine configuration for every node.
    pub engine: Config,
    /// How long a node's unanswered offer counts as a peer on its way
    /// (`NodeConfig::offer_grace`).
    pub offer_grace: Duration,
    /// Leechers start from a bare magnet (info hash and web seed only) and
    /// fetch the metadata from peers over ut_metadata.
    pub magnet: bool,
    /// The tracker's limits (the server's defaults; an operator expecting
    /// a bigger crowd raises `max_peers_per_swarm` with the server's
    /// `--max-peers-per-swarm`).
    pub tracker_limits: Limits,
}

impl Default for World {
    fn default() -> Self {
        World {
            seed: 1,
            file_len: 2 * 1024 * 1024,
            piece_length: 32 * 1024,
            web_seed: true,
            http_rate: 4_000_000,
            peer_up: 1_000_000,
            server_latency_ms: (10, 40),
            latency_ms: (10, 60),
            gather_ms: (5, 30),
            setup_rtts: 4,
            setup_extra_ms: (20, 60),
            connect_failure_percent: 0,
            offers_per_announce: 5,
            max_connections: 20,
            engine: Config::default(),
            offer_grace: swarm::node::NodeConfig::default().offer_grace,
            magnet: false,
            tracker_limits: Limits::default(),
        }
    }
}

/// What kind of participant a node is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// Starts empty and downloads.
    Leecher,
    /// Starts with every piece.
    Seeder,
    /// Starts with every piece and corrupts every block it serves.
    Liar,
    /// Starts with every piece and misbehaves as its [`Behaviour`] says.
    Hostile(Behaviour),
}

/// How a leecher listens.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Listening {
    /// No player: it downloads everything (the native `get`).
    Download,
    /// The player is parked at one place (a test of the picker's order).
    Fixed(swarm::picker::Playback),
    /// A fan: the page joins the swarm when it loads, play is pressed
    /// `press_after` later, and from the first piece on the player reads
    /// `bytes_per_sec`, stalling whenever the next byte is not verified.
    /// The web seed is used only once playing.
    Fan {
        /// From joining to pressing play.
        press_after: Duration,
        /// The track's bitrate in bytes per second.
        bytes_per_sec: u64,
    },
}
