//! Why the tracker refused a request.

use swarm::tracker::ParseError;

/// A request the tracker will not carry out; its `Display` is the
/// `failure reason` the peer reads, its [`label`](Refusal::label) the metric.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Refusal {
    /// The frame was not a valid tracker request (bad JSON, bad id, unknown action).
    #[error("invalid request: {0}")]
    Malformed(String),
    /// The connection sent messages faster than its budget.
    #[error("rate limit exceeded")]
    RateLimited,
    /// A scrape named no info hash; we do not list every swarm.
    #[error("full scrape is not supported")]
    FullScrape,
    /// A scrape named more hashes than allowed.
    #[error("too many info hashes in scrape (max {0})")]
    TooManyScrapeHashes(usize),
    /// An announce carried more offers than allowed.
    #[error("too many offers (max {0})")]
    TooManyOffers(usize),
    /// Another connection already announced this peer id in this swarm.
    #[error("peer_id is in use by another connection")]
    PeerIdTaken,
    /// This connection already announced a different peer id in this swarm.
    #[error("one peer_id per swarm per connection")]
    PeerIdChanged,
    /// The connection is already in as many swarms as allowed.
    #[error("too many swarms on this connection (max {0})")]
    TooManySwarms(usize),
    /// The swarm has as many peers as allowed.
    #[error("swarm is full")]
    SwarmFull,
    /// The tracker has as many swarms as allowed.
    #[error("tracker is full")]
    TrackerFull,
    /// An `answer` came without `to_peer_id` or `offer_id`.
    #[error("answer requires to_peer_id and offer_id")]
    IncompleteAnswer,
    /// An answer for an offer we never relayed to this peer, or one that expired.
    #[error("unknown or expired offer")]
    UnknownOffer,
    /// The swarm is not one this tracker serves (its access list).
    #[error("info_hash not allowed: this tracker serves only the tracks its server publishes")]
    NotAllowed,
}

impl Refusal {
    /// A short fixed name for metrics labels (bounded cardinality).
    pub fn label(&self) -> &'static str {
        match self {
            Refusal::Malformed(_) => "malformed",
            Refusal::RateLimited => "rate_limited",
            Refusal::FullScrape => "full_scrape",
            Refusal::TooManyScrapeHashes(_) => "too_many_scrape_hashes",
            Refusal::TooManyOffers(_) => "too_many_offers",
            Refusal::PeerIdTaken => "peer_id_taken",
            Refusal::PeerIdChanged => "peer_id_changed",
            Refusal::TooManySwarms(_) => "too_many_swarms",
            Refusal::SwarmFull => "swarm_full",
            Refusal::TrackerFull => "tracker_full",
            Refusal::IncompleteAnswer => "incomplete_answer",
            Refusal::UnknownOffer => "unknown_offer",
            Refusal::NotAllowed => "not_allowed",
        }
    }
}

impl From<ParseError> for Refusal {
    fn from(e: ParseError) -> Self {
        Refusal::Malformed(e.reason)
    }
}
