//! Prometheus metrics at `/metrics`.
//!
//! `prometheus-client` rather than hand-formatted atomics: it writes the
//! OpenMetrics text format (HELP/TYPE lines, label escaping, `# EOF`)
//! correctly, and a counter is still one relaxed atomic add on the hot path.
//! Gauges that the tracker already knows exactly (connections, swarms, peers)
//! are read from it when scraped instead of being tracked twice.

use fanswarm_tracker::{OutMessage, Tracker};
use prometheus_client::encoding::text::encode;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;
use serde::Serialize;

/// The content type of [`Metrics::render`]'s output.
pub const CONTENT_TYPE: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

/// Labels of the failure counter: `reason` from [`fanswarm_tracker::Refusal::label`].
type ReasonLabel = [(&'static str, &'static str); 1];

/// Every metric the server exports.
#[derive(Debug)]
pub struct Metrics {
    registry: Registry,
    connections: Gauge,
    swarms: Gauge,
    peers: Gauge,
    /// Announce messages received (answers included, scrapes not).
    pub announces: Counter,
    /// Scrape messages received.
    pub scrapes: Counter,
    /// Offers relayed to a peer.
    pub offers_relayed: Counter,
    /// Answers routed back to their offerer.
    pub answers_routed: Counter,
    /// Outgoing messages dropped because a connection's queue was full.
    pub outgoing_dropped: Counter,
    /// Refused requests, by reason.
    pub failures: Family<ReasonLabel, Counter>,
    /// Body bytes the web seed sent.
    pub webseed_bytes: Counter,
    /// `--redis`: events for Redis dropped, by why (`queue_full`: Redis
    /// was slow or gone and the bounded queue was full; `redis_error`: the
    /// batch carrying them failed).
    redis_dropped: Family<ReasonLabel, Counter>,
    /// `--redis`: offers and answers between instances, by direction.
    redis_relayed: Family<KindLabel, Counter>,
    /// `--redis`: offers and answers from other instances not delivered, by why.
    redis_undeliverable: Family<ReasonLabel, Counter>,
    /// `serve --library`: hashing progress and totals.
    pub library: LibraryProgress,
}

/// Labels of the Redis relay counter: `kind`.
type KindLabel = [(&'static str, &'static str); 1];

impl Default for Metrics {
    fn default() -> Self {
        let mut registry = Registry::with_prefix("fanswarm");
        let m = Metrics {
            registry: Registry::default(),
            connections: Gauge::default(),
            swarms: Gauge::default(),
            peers: Gauge::default(),
            announces: Counter::default(),
            scrapes: Counter::default(),
            offers_relayed: Counter::default(),
            answers_routed: Counter::default(),
            outgoing_dropped: Counter::default(),
            failures: Family::default(),
            webseed_bytes: Counter::default(),
            redis_dropped: Family::default(),
            redis_relayed: Family::default(),
            redis_undeliverable: Family::default(),
            library: LibraryProgress::default(),
        };
        registry.register(
            "tracker_connections",
            "Open tracker WebSocket connections",
            m.connections.clone(),
        );
        registry.register(
            "tracker_swarms",
            "Swarms with at least one peer",
            m.swarms.clone(),
        );
        registry.register("tracker_peers", "Peers over all swarms", m.peers.clone());
        registry.register(
            "tracker_announces",
            "Announce messages received",
            m.announces.clone(),
        );
        registry.register(
            "tracker_scrapes",
            "Scrape messages received",
            m.scrapes.clone(),
        );
        registry.register(
            "tracker_offers_relayed",
            "WebRTC offers relayed to a peer",
            m.offers_relayed.clone(),
        );
        registry.register(
            "tracker_answers_routed",
            "WebRTC answers routed back to their offerer",
            m.answers_routed.clone(),
        );
        registry.register(
            "tracker_outgoing_dropped",
            "Messages dropped because a connection's send queue was full",
            m.outgoing_dropped.clone(),
        );
        registry.register(
            "tracker_failures",
            "Refused tracker requests by reason",
            m.failures.clone(),
        );
        registry.register(
            "webseed_sent_bytes",
            "Body bytes sent by the web seed",
            m.webseed_bytes.clone(),
        );
        registry.register(
            "redis_dropped",
            "Tracker events for Redis dropped (queue full while Redis was slow, or a failed batch)",
            m.redis_dropped.clone(),
        );
        registry.register(
            "redis_relayed",
            "Offers and answers exchanged with other tracker instances through Redis",
            m.redis_relayed.clone(),
        );
        registry.register(
            "redis_undeliverable",
            "Offers and answers from other instances that could not be delivered",
            m.redis_undeliverable.clone(),
        );
        let library = &m.library;
        registry.register(
            "library_tracks",
            "Tracks published from the library",
            library.tracks.clone(),
        );
        registry.register(
            "library_queued_files",
            "Library files waiting to be hashed",
            library.queued_files.clone(),
        );
        registry.register(
            "library_queued_bytes",
            "Bytes of library files waiting to be hashed",
            library.queued_bytes.clone(),
        );
        registry.register(
            "library_settling_files",
            "Library files written too recently to be hashed yet",
            library.settling_files.clone(),
        );
        registry.register(
            "library_hashed_files",
            "Library files hashed since the server started",
            library.hashed_files.clone(),
        );
        registry.register(
            "library_hashed_bytes",
            "Library bytes hashed since the server started",
            library.hashed_bytes.clone(),
        );
        registry.register(
            "library_reused_files",
            "Library files published from the index without being read",
            library.reused_files.clone(),
        );
        Metrics { registry, ..m }
    }
}

impl Metrics {
    /// Counts one outgoing tracker message by kind.
    pub fn count_out(&self, message: &OutMessage) {
        match message {
            OutMessage::Offer(_) => {
                self.offers_relayed.inc();
            }
            OutMessage::Answer(_) => {
                self.answers_routed.inc();
            }
            OutMessage::Failure { refusal, .. } => {
                self.failures
                    .get_or_create(&[("reason", refusal.label())])
                    .inc();
            }
            OutMessage::Announce(_) | OutMessage::Scrape(_) => {}
        }
    }

    /// Counts a tracker socket refused because its address has too many
    /// (`tracker_failures{reason="too_many_from_address"}`).
    pub fn count_refused_address(&self) {
        self.failures
            .get_or_create(&[("reason", "too_many_from_address")])
            .inc();
    }

    /// Counts a tracker socket refused because the server holds
    /// `max_connections` already (`tracker_failures{reason="server_full"}`).
    pub fn count_refused_full(&self) {
        self.failures
            .get_or_create(&[("reason", "server_full")])
            .inc();
    }

    /// Counts one event for Redis dropped (`queue_full`, …).
    pub fn count_redis_dropped(&self, reason: &'static str) {
        self.redis_dropped
            .get_or_create(&[("reason", reason)])
            .inc();
    }

    /// Counts `events` lost with a Redis batch that failed.
    pub fn count_redis_failed(&self, events: usize) {
        self.redis_dropped
            .get_or_create(&[("reason", "redis_error")])
            .inc_by(events as u64);
    }

    /// Counts one offer or answer to or from another instance.
    pub fn count_redis_relayed(&self, kind: &'static str) {
        self.redis_relayed.get_or_create(&[("kind", kind)]).inc();
    }

    /// Counts one message from another instance that was not delivered.
    pub fn count_redis_undeliverable(&self, reason: &'static str) {
        self.redis_undeliverable
            .get_or_create(&[("reason", reason)])
            .inc();
    }

    /// Events for Redis dropped so far, all reasons.
    pub fn redis_dropped_total(&self) -> u64 {
        ["queue_full", "redis_error"]
            .iter()
            .map(|r| self.redis_dropped.get_or_create(&[("reason", *r)]).get())
            .sum()
    }

    /// Offers and answers of one `kind` exchanged with other instances.
    pub fn redis_relayed(&self, kind: &'static str) -> u64 {
        self.redis_relayed.get_or_create(&[("kind", kind)]).get()
    }

    /// Copies the tracker's exact counts into the gauges.
    pub fn observe(&self, tracker: &Tracker) {
        self.connections
            .set(gauge_value(tracker.connection_count()));
        self.swarms.set(gauge_value(tracker.swarm_count()));
        self.peers.set(gauge_value(tracker.peer_count()));
    }

    /// The text exposition.
    pub fn render(&self) -> String {
        let mut text = String::new();
        // Writing into a String cannot fail.
        let _ = encode(&mut text, &self.registry);
        text
    }
}

fn gauge_value(n: usize) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

/// Hashing progress and totals, exported at `/metrics` (`fanswarm_library_*`)
/// and `/api/library`.
#[derive(Debug, Clone, Default)]
pub struct LibraryProgress {
    /// Tracks published now.
    pub tracks: Gauge,
    /// Files waiting to be hashed (the one being hashed included).
    pub queued_files: Gauge,
    /// Bytes of those not hashed yet.
    pub queued_bytes: Gauge,
    /// Files written too recently to be hashed yet.
    pub settling_files: Gauge,
    /// Files hashed since the server started.
    pub hashed_files: Counter,
    /// Bytes hashed since the server started.
    pub hashed_bytes: Counter,
    /// Files published from the index without being read.
    pub reused_files: Counter,
}

/// What `/api/library` answers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct LibraryStatus {
    /// Tracks published now.
    pub tracks: u64,
    /// Files waiting to be hashed.
    pub queued_files: u64,
    /// Bytes waiting to be hashed.
    pub queued_bytes: u64,
    /// Files written too recently to be hashed yet.
    pub settling_files: u64,
    /// Files hashed since the server started.
    pub hashed_files: u64,
    /// Bytes hashed since the server started.
    pub hashed_bytes: u64,
    /// Files published from the index without being read.
    pub reused_files: u64,
}

impl LibraryProgress {
    /// The figures now.
    pub fn status(&self) -> LibraryStatus {
        let gauge = |g: &Gauge| u64::try_from(g.get()).unwrap_or(0);
        LibraryStatus {
            tracks: gauge(&self.tracks),
            queued_files: gauge(&self.queued_files),
            queued_bytes: gauge(&self.queued_bytes),
            settling_files: gauge(&self.settling_files),
            hashed_files: self.hashed_files.get(),
            hashed_bytes: self.hashed_bytes.get(),
            reused_files: self.reused_files.get(),
        }
    }
}
