//! The WebTorrent tracker messages (`swarm::tracker`) from arbitrary bytes.
//!
//! Byte 0 picks what the rest is read as:
//! - 0: a frame a peer sent the tracker (`parse_client_message`); a parsed
//!   message serializes to JSON that parses back to itself (an announce
//!   written by `announce_json` byte for byte as by serde_json), and a
//!   refused one still names an `info_hash` only if it is a valid 20-byte
//!   id string.
//! - 1: a frame a tracker sent a peer (`ServerMessage`), likewise; and read
//!   as the derived untagged enum that `ServerMessage`'s hand-written
//!   `Deserialize` replaced reads it: the same answer for a frame without
//!   arrays; with arrays (the derived enum also took a struct as an array
//!   of its fields) nothing ours reads that the derived one refused.
//! - 2: a 20-byte id string; a valid one converts back to the same string.
#![no_main]

use libfuzzer_sys::fuzz_target;
use serde::Deserialize;
use swarm::tracker::{
    AnnounceResponse, AnswerRelay, ClientMessage, Failure, OfferRelay, ScrapeResponse,
    ServerMessage, announce_json, id_bytes, id_to_string, parse_client_message,
};

/// The derived reading `ServerMessage`'s `Deserialize` replaced.
#[derive(Deserialize)]
#[serde(untagged)]
enum Derived {
    Failure(Failure),
    Offer(OfferRelay),
    Answer(AnswerRelay),
    Scrape(ScrapeResponse),
    Announce(AnnounceResponse),
}

impl From<Derived> for ServerMessage {
    fn from(d: Derived) -> Self {
        match d {
            Derived::Failure(m) => ServerMessage::Failure(m),
            Derived::Offer(m) => ServerMessage::Offer(m),
            Derived::Answer(m) => ServerMessage::Answer(m),
            Derived::Scrape(m) => ServerMessage::Scrape(m),
            Derived::Announce(m) => ServerMessage::Announce(m),
        }
    }
}

fuzz_target!(|data: &[u8]| {
    let Some((&mode, rest)) = data.split_first() else {
        return;
    };
    match mode % 3 {
        0 => match parse_client_message(rest) {
            Ok(message) => {
                let json = serde_json::to_vec(&message).expect("tracker messages serialize");
                if let ClientMessage::Announce(request) = &message {
                    assert_eq!(
                        announce_json(request).as_bytes(),
                        json.as_slice(),
                        "hand-written vs derived announce"
                    );
                }
                let again = parse_client_message(&json);
                assert_eq!(again.as_ref(), Ok(&message), "client message round trip");
            }
            Err(refused) => {
                assert!(!refused.reason.is_empty(), "a refusal says why");
                if let Some(hash) = refused.info_hash {
                    let text = id_to_string(&hash.0);
                    assert_eq!(id_bytes(&text), Ok(hash.0));
                }
            }
        },
        1 => {
            let ours = serde_json::from_slice::<ServerMessage>(rest).ok();
            let derived = serde_json::from_slice::<Derived>(rest)
                .ok()
                .map(ServerMessage::from);
            if rest.contains(&b'[') {
                // The derived enum may have read an array as a struct.
                assert!(
                    ours.is_none() || derived.is_some(),
                    "hand-written reads more"
                );
            } else {
                assert_eq!(ours, derived, "hand-written vs derived ServerMessage");
            }
            if let Some(message) = ours {
                let json = serde_json::to_vec(&message).expect("tracker messages serialize");
                let again = serde_json::from_slice::<ServerMessage>(&json);
                assert_eq!(
                    again.ok().as_ref(),
                    Some(&message),
                    "server message round trip"
                );
            }
        }
        _ => {
            let Ok(text) = std::str::from_utf8(rest) else {
                return;
            };
            if let Ok(bytes) = id_bytes(text) {
                assert_eq!(id_to_string(&bytes), text, "id string round trip");
            }
        }
    }
});
