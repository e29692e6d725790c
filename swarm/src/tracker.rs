//! The WebTorrent WebSocket tracker protocol: message types only.
//!
//! Browser peers, the native peer and the tracker (`fanswarm-tracker`) share
//! these types so the two sides cannot drift apart. Shapes follow what the
//! reference implementations really send (webtorrent's bittorrent-tracker
//! client and server, aquatic_ws); notes on fields say what the reference
//! client does, because that is what a tracker has to accept.
//!
//! Twenty-byte values (`info_hash`, `peer_id`, `to_peer_id`, `offer_id`) travel
//! as JSON strings of exactly 20 characters, one character per byte
//! (U+0000–U+00FF, what JavaScript's `String.fromCharCode` / Node's
//! `Buffer.toString('binary')` produce). Anything else is rejected with a clear
//! error when deserializing.
//!
//! Parsing an incoming frame goes through [`parse_client_message`], which on
//! failure still tells which `action` and `info_hash` the sender meant, so the
//! tracker can put them in its `failure reason` reply.
//!
//! The peer's side is written for the browser's bundle: [`ServerMessage`]'s
//! `Deserialize` by hand (`server_message.rs`) and the announce it sends by
//! [`announce_json`], each tested against the derived serde code it
//! replaces on the peer's path, which stays for the tracker and the tests.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::ids::{InfoHash, PeerId};
use wire_format::{id_keyed_map, id_string, lenient_count, one_or_many_ids, opt_id_string};

/// Identifies one WebRTC offer so its answer can be matched to it: 20 random bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct OfferId(pub [u8; 20]);

/// The `action` field every tracker message carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Action {
    /// Announce, offer relay, answer relay.
    Announce,
    /// Swarm statistics.
    Scrape,
}

/// Anything a peer sends to the tracker.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "action", rename_all = "lowercase")]
pub enum ClientMessage {
    /// Join or refresh a swarm, carry offers, or carry one answer.
    Announce(AnnounceRequest),
    /// Ask for swarm statistics.
    Scrape(ScrapeRequest),
}

/// `{action:"announce", …}` from a peer.
///
/// One message type carries three things in the reference client: a plain
/// announce (with `offers` when the peer wants connections), or an `answer`
/// to an offer the tracker relayed (then `to_peer_id` and `offer_id` are set).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AnnounceRequest {
    /// The swarm.
    #[serde(with = "id_string")]
    pub info_hash: InfoHash,
    /// The sender; the reference client uses one id for all its torrents.
    #[serde(with = "id_string")]
    pub peer_id: PeerId,
    /// Absent on periodic announces; `stopped`/`completed` carry no offers.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub event: Option<AnnounceEvent>,
    /// Peers wanted; the reference client sends 50 with 5 offers, and only
    /// when it sends offers.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        with = "lenient_count"
    )]
    pub numwant: Option<u64>,
    /// Bytes uploaded so far (informational).
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        with = "lenient_count"
    )]
    pub uploaded: Option<u64>,
    /// Bytes downloaded so far (informational).
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        with = "lenient_count"
    )]
    pub downloaded: Option<u64>,
    /// Bytes still missing; `null` (JSON for JS `Infinity`) while a magnet
    /// link has no metadata yet. `Some(0)` means seeder.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        with = "lenient_count"
    )]
    pub left: Option<u64>,
    /// Complete (non-trickle) SDP offers to hand to other peers; the reference
    /// client sends min(numwant, 5) and waits 50 s for answers.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub offers: Option<Vec<Offer>>,
    /// An answer to an offer the tracker relayed to this peer.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub answer: Option<SessionDescription>,
    /// With `answer`: the offerer the answer goes back to.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        with = "opt_id_string"
    )]
    pub to_peer_id: Option<PeerId>,
    /// With `answer`: which offer it answers.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        with = "opt_id_string"
    )]
    pub offer_id: Option<OfferId>,
}

/// Announce events seen in the wild; all are accepted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum AnnounceEvent {
    /// First announce of a torrent.
    Started,
    /// Leaving the swarm.
    Stopped,
    /// Download finished: now a seeder.
    Completed,
    /// Explicit periodic announce (same as none).
    Update,
    /// Paused client; treated like a periodic announce.
    Paused,
}

/// One element of `offers`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Offer {
    /// The SDP offer, all candidates included.
    pub offer: SessionDescription,
    /// Chosen by the offerer, echoed with the answer.
    #[serde(with = "id_string")]
    pub offer_id: OfferId,
}

/// An `RTCSessionDescriptionInit` as the browser serializes it: `{type, sdp}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SessionDescription {
    /// `offer` or `answer`.
    #[serde(rename = "type")]
    pub kind: SdpKind,
    /// The session description itself (~700 bytes to a few KiB).
    pub sdp: String,
}

/// The SDP types the protocol carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SdpKind {
    /// Sent by the peer that wants a connection.
    Offer,
    /// Sent back by the peer that accepts it.
    Answer,
}

/// `{action:"scrape", info_hash: "<20>" | ["<20>", …]}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ScrapeRequest {
    /// One hash or a list; absent means a full scrape, which trackers may refuse.
    #[serde(rename = "info_hash", default, with = "one_or_many_ids")]
    pub info_hashes: Vec<InfoHash>,
}

/// Anything the tracker sends to a peer.
///
/// Untagged: the variants are told apart by their required fields, which is
/// how the reference client reads them too. Its `Deserialize` is written out
/// in `server_message.rs` (a fraction of the derived one's size in the
/// browser's wasm), with the derived rules.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(untagged)]
pub enum ServerMessage {
    /// Something was wrong with a request.
    Failure(Failure),
    /// Another peer's offer, for this peer to answer.
    Offer(OfferRelay),
    /// The answer to one of this peer's offers.
    Answer(AnswerRelay),
    /// Statistics for the scraped swarms.
    Scrape(ScrapeResponse),
    /// The reply to an announce.
    Announce(AnnounceResponse),
}

/// Tracker → announcer: no peer list, peers arrive as offers.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AnnounceResponse {
    /// Always [`Action::Announce`].
    pub action: Action,
    /// The swarm announced to.
    #[serde(with = "id_string")]
    pub info_hash: InfoHash,
    /// Seeders in the swarm.
    pub complete: u64,
    /// Leechers in the swarm.
    pub incomplete: u64,
    /// Seconds until the next periodic announce (bittorrent-tracker sends 120).
    pub interval: u64,
}

/// Tracker → chosen peer: an offer from `peer_id`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OfferRelay {
    /// Always [`Action::Announce`].
    pub action: Action,
    /// The swarm the offer belongs to.
    #[serde(with = "id_string")]
    pub info_hash: InfoHash,
    /// The offerer.
    #[serde(with = "id_string")]
    pub peer_id: PeerId,
    /// To be echoed with the answer.
    #[serde(with = "id_string")]
    pub offer_id: OfferId,
    /// The SDP offer.
    pub offer: SessionDescription,
}

/// Tracker → offerer: the answer from `peer_id`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AnswerRelay {
    /// Always [`Action::Announce`].
    pub action: Action,
    /// The swarm the offer belonged to.
    #[serde(with = "id_string")]
    pub info_hash: InfoHash,
    /// The answerer.
    #[serde(with = "id_string")]
    pub peer_id: PeerId,
    /// The offer this answers.
    #[serde(with = "id_string")]
    pub offer_id: OfferId,
    /// The SDP answer.
    pub answer: SessionDescription,
}

/// `{action:"scrape", files:{"<20>":{complete, incomplete, downloaded}}}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ScrapeResponse {
    /// Always [`Action::Scrape`].
    pub action: Action,
    /// One entry per requested swarm; unknown swarms report zeros.
    #[serde(with = "id_keyed_map")]
    pub files: BTreeMap<InfoHash, ScrapeStatistics>,
}

/// Counts for one swarm.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct ScrapeStatistics {
    /// Seeders.
    pub complete: u64,
    /// Leechers.
    pub incomplete: u64,
    /// `completed` events seen.
    pub downloaded: u64,
}

/// `{"failure reason": …}`, with `action` and `info_hash` when known.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Failure {
    /// The action of the refused request, when it could be read.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub action: Option<Action>,
    /// The swarm of the refused request, when it could be read.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        with = "opt_id_string"
    )]
    pub info_hash: Option<InfoHash>,
    /// Human-readable reason.
    #[serde(rename = "failure reason")]
    pub reason: String,
}

/// A frame that is not a valid tracker request.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{reason}")]
pub struct ParseError {
    /// The `action` of the frame, if it had a known one.
    pub action: Option<Action>,
    /// The `info_hash` of the frame, if it had a single valid one.
    pub info_hash: Option<InfoHash>,
    /// What was wrong, from the JSON parser.
    pub reason: String,
}

/// Parses one text or binary frame from a peer.
///
/// On failure, reads the frame a second time, leniently, to recover the
/// `action` and `info_hash` for the error reply; that costs nothing on the
/// happy path.
pub fn parse_client_message(frame: &[u8]) -> Result<ClientMessage, ParseError> {
    serde_json::from_slice(frame).map_err(|error| {
        #[derive(Deserialize)]
        struct Envelope {
            action: Option<serde_json::Value>,
            info_hash: Option<serde_json::Value>,
        }
        let envelope = serde_json::from_slice::<Envelope>(frame).ok();
        let action = envelope
            .as_ref()
            .and_then(|e| e.action.clone())
            .and_then(|a| serde_json::from_value::<Action>(a).ok());
        let info_hash = envelope
            .and_then(|e| e.info_hash)
            .and_then(|h| h.as_str().and_then(|s| id_bytes(s).ok()))
            .map(InfoHash);
        ParseError {
            action,
            info_hash,
            reason: error.to_string(),
        }
    })
}

/// Encodes 20 bytes as the protocol's 20-character string.
pub fn id_to_string(bytes: &[u8; 20]) -> String {
    bytes.iter().map(|&b| char::from(b)).collect()
}

/// Decodes the protocol's 20-character string; errors name what was wrong.
pub fn id_bytes(s: &str) -> Result<[u8; 20], IdStringError> {
    let mut out = [0u8; 20];
    let mut len = 0usize;
    for c in s.chars() {
        let byte = u8::try_from(u32::from(c)).map_err(|_| IdStringError::CharOutOfRange(c))?;
        if let Some(slot) = out.get_mut(len) {
            *slot = byte;
        }
        len += 1;
    }
    if len == 20 {
        Ok(out)
    } else {
        Err(IdStringError::Length(len))
    }
}

/// A 20-byte id string that was not one.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum IdStringError {
    /// The string did not have exactly 20 characters.
    #[error("id must be 20 characters, got {0}")]
    Length(usize),
    /// A character above U+00FF cannot stand for one byte.
    #[error("id character {0:?} is above U+00FF")]
    CharOutOfRange(char),
}

mod announce_json;
mod server_message;
mod wire_format;

pub use announce_json::announce_json;

#[cfg(test)]
mod tests;
