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
}

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
