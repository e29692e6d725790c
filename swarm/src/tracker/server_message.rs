//! Reading what a tracker sends a peer: [`ServerMessage`]'s `Deserialize`,
//! written out instead of derived.
//!
//! Derived, the untagged enum buffered each frame in serde's private
//! `Content` tree and tried every variant's derived visitor on it; those
//! visitors' type errors brought serde's `Unexpected` and with it float
//! formatting along. That was ~80 KB of the browser's wasm (~35 KB gzipped),
//! the largest single part of the bundle, to read five message shapes.
//!
//! Here serde_json still does the parsing (`deserialize_any` only), into a
//! small [`Json`] tree, and the variants are tried in the derived order
//! with the derived rules, field by field:
//! - a required field must be present and of its type; an optional one
//!   (`Failure`'s `action` and `info_hash`) may be absent or `null`;
//! - a field of the variant given twice fails the variant (serde's
//!   "duplicate field"); fields it does not know are ignored;
//! - counts are integers in `u64`; ids are 20-character id strings; an
//!   `action` or SDP `type` is its name, or serde's `{"<name>": null}`.
//!
//! The one derived behaviour not kept: serde also reads a struct from a
//! JSON array of its fields in order (`["announce", "<20>", …]`). No
//! tracker sends that; it is now "not a tracker message".

use std::collections::BTreeMap;
use std::fmt;

use serde::de::{self, Deserialize, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};

use super::{
    Action, AnnounceResponse, AnswerRelay, Failure, OfferId, OfferRelay, ScrapeResponse,
    ScrapeStatistics, SdpKind, ServerMessage, SessionDescription, id_bytes,
};
use crate::ids::{InfoHash, PeerId};

/// What a frame that is JSON but none of the shapes gets as its error.
const NO_MATCH: &str = "not a tracker message: neither a failure, an offer, an answer, \
                        a scrape nor an announce reply with the fields each needs";

impl<'de> Deserialize<'de> for ServerMessage {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        match Json::deserialize(deserializer)? {
            Json::Object(fields) => {
                from_fields(&Fields(&fields)).map_err(|Mismatch| de::Error::custom(NO_MATCH))
            }
            _ => Err(de::Error::custom(
                "not a tracker message: expected a JSON object",
            )),
        }
    }
}

/// The first variant, in the derived order, whose fields all fit.
fn from_fields(f: &Fields<'_>) -> Result<ServerMessage, Mismatch> {
    failure(f)
        .map(ServerMessage::Failure)
        .or_else(|Mismatch| offer(f).map(ServerMessage::Offer))
        .or_else(|Mismatch| answer(f).map(ServerMessage::Answer))
        .or_else(|Mismatch| scrape(f).map(ServerMessage::Scrape))
        .or_else(|Mismatch| announce(f).map(ServerMessage::Announce))
}

fn failure(f: &Fields<'_>) -> Result<Failure, Mismatch> {
    Ok(Failure {
        action: f.optional("action", action)?,
        info_hash: f.optional("info_hash", id)?.map(InfoHash),
        reason: f.required("failure reason", string)?,
    })
}

fn offer(f: &Fields<'_>) -> Result<OfferRelay, Mismatch> {
    Ok(OfferRelay {
        action: f.required("action", action)?,
        info_hash: InfoHash(f.required("info_hash", id)?),
        peer_id: PeerId(f.required("peer_id", id)?),
        offer_id: OfferId(f.required("offer_id", id)?),
        offer: f.required("offer", session_description)?,
    })
}

fn answer(f: &Fields<'_>) -> Result<AnswerRelay, Mismatch> {
    Ok(AnswerRelay {
        action: f.required("action", action)?,
        info_hash: InfoHash(f.required("info_hash", id)?),
        peer_id: PeerId(f.required("peer_id", id)?),
        offer_id: OfferId(f.required("offer_id", id)?),
        answer: f.required("answer", session_description)?,
    })
}

fn scrape(f: &Fields<'_>) -> Result<ScrapeResponse, Mismatch> {
    Ok(ScrapeResponse {
        action: f.required("action", action)?,
        files: f.required("files", files)?,
    })
}

fn announce(f: &Fields<'_>) -> Result<AnnounceResponse, Mismatch> {
    Ok(AnnounceResponse {
        action: f.required("action", action)?,
        info_hash: InfoHash(f.required("info_hash", id)?),
        complete: f.required("complete", count)?,
        incomplete: f.required("incomplete", count)?,
        interval: f.required("interval", count)?,
    })
}

/// `{"<20>": {complete, incomplete, downloaded}, …}`; a key given twice
/// keeps its last value (as a derived map does), but every value must fit.
fn files(value: &Json) -> Result<BTreeMap<InfoHash, ScrapeStatistics>, Mismatch> {
    let Json::Object(entries) = value else {
        return Err(Mismatch);
    };
    let mut files = BTreeMap::new();
    for (key, stats) in entries {
        let Json::Object(fields) = stats else {
            return Err(Mismatch);
        };
        let f = Fields(fields);
        let stats = ScrapeStatistics {
            complete: f.required("complete", count)?,
            incomplete: f.required("incomplete", count)?,
            downloaded: f.required("downloaded", count)?,
        };
        files.insert(InfoHash(id_bytes(key).map_err(|_| Mismatch)?), stats);
    }
    Ok(files)
}

fn session_description(value: &Json) -> Result<SessionDescription, Mismatch> {
    let Json::Object(fields) = value else {
        return Err(Mismatch);
    };
    let f = Fields(fields);
    Ok(SessionDescription {
        kind: f.required("type", sdp_kind)?,
        sdp: f.required("sdp", string)?,
    })
}

fn action(value: &Json) -> Result<Action, Mismatch> {
    match unit_variant(value)? {
        "announce" => Ok(Action::Announce),
        "scrape" => Ok(Action::Scrape),
        _ => Err(Mismatch),
    }
}

fn sdp_kind(value: &Json) -> Result<SdpKind, Mismatch> {
    match unit_variant(value)? {
        "offer" => Ok(SdpKind::Offer),
        "answer" => Ok(SdpKind::Answer),
        _ => Err(Mismatch),
    }
}

/// A unit variant's name: `"name"`, or `{"name": null}` as serde also reads.
fn unit_variant(value: &Json) -> Result<&str, Mismatch> {
    match value {
        Json::String(name) => Ok(name),
        Json::Object(entries) => match entries.as_slice() {
            [(name, Json::Null)] => Ok(name),
            _ => Err(Mismatch),
        },
        _ => Err(Mismatch),
    }
}

fn id(value: &Json) -> Result<[u8; 20], Mismatch> {
    match value {
        Json::String(s) => id_bytes(s).map_err(|_| Mismatch),
        _ => Err(Mismatch),
    }
}

fn string(value: &Json) -> Result<String, Mismatch> {
    match value {
        Json::String(s) => Ok(s.clone()),
        _ => Err(Mismatch),
    }
}

fn count(value: &Json) -> Result<u64, Mismatch> {
    match value {
        Json::Count(n) => Ok(*n),
        _ => Err(Mismatch),
    }
}

/// This variant does not fit the frame; the next one is tried.
struct Mismatch;

/// An object's fields, in the order they came.
struct Fields<'a>(&'a [(String, Json)]);

impl Fields<'_> {
    /// The field `name` read by `read`; absent, or given twice, is a mismatch.
    fn required<T>(
        &self,
        name: &str,
        read: impl Fn(&Json) -> Result<T, Mismatch>,
    ) -> Result<T, Mismatch> {
        self.optional(name, read)?.ok_or(Mismatch)
    }

    /// The field `name` read by `read`, `None` if absent or `null`; given
    /// twice is a mismatch.
    fn optional<T>(
        &self,
        name: &str,
        read: impl Fn(&Json) -> Result<T, Mismatch>,
    ) -> Result<Option<T>, Mismatch> {
        let mut found = self.0.iter().filter(|(key, _)| key == name).map(|(_, v)| v);
        match (found.next(), found.next()) {
            (None, _) | (Some(Json::Null), None) => Ok(None),
            (Some(value), None) => read(value).map(Some),
            (Some(_), Some(_)) => Err(Mismatch),
        }
    }
}

/// A JSON value, told apart only as far as the tracker messages need.
enum Json {
    Null,
    /// `true` or `false`: no field of ours is a boolean.
    Bool,
    /// A non-negative integer within `u64`.
    Count(u64),
    /// Any other number: negative, fractional, or too large.
    OtherNumber,
    String(String),
    /// No field of ours is an array; its elements are skipped.
    Array,
    /// Fields in the order they came, repeats kept.
    Object(Vec<(String, Json)>),
}

impl<'de> Deserialize<'de> for Json {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_any(JsonVisitor)
    }
}

/// Builds a [`Json`]; every kind of value is accepted, so serde's
/// type-error paths are never taken.
struct JsonVisitor;

impl<'de> Visitor<'de> for JsonVisitor {
    type Value = Json;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("any JSON value")
    }

    fn visit_unit<E: de::Error>(self) -> Result<Json, E> {
        Ok(Json::Null)
    }

    fn visit_none<E: de::Error>(self) -> Result<Json, E> {
        Ok(Json::Null)
    }

    fn visit_bool<E: de::Error>(self, _: bool) -> Result<Json, E> {
        Ok(Json::Bool)
    }

    fn visit_u64<E: de::Error>(self, n: u64) -> Result<Json, E> {
        Ok(Json::Count(n))
    }

    fn visit_i64<E: de::Error>(self, n: i64) -> Result<Json, E> {
        Ok(u64::try_from(n).map_or(Json::OtherNumber, Json::Count))
    }

    fn visit_f64<E: de::Error>(self, _: f64) -> Result<Json, E> {
        Ok(Json::OtherNumber)
    }

    fn visit_str<E: de::Error>(self, s: &str) -> Result<Json, E> {
        Ok(Json::String(s.to_owned()))
    }

    fn visit_string<E: de::Error>(self, s: String) -> Result<Json, E> {
        Ok(Json::String(s))
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Json, A::Error> {
        while seq.next_element::<IgnoredAny>()?.is_some() {}
        Ok(Json::Array)
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Json, A::Error> {
        // Capacity is not taken from the frame: the tracker's frames are small.
        let mut fields = Vec::new();
        while let Some(key) = map.next_key::<Key>()? {
            fields.push((key.0, map.next_value::<Json>()?));
        }
        Ok(Json::Object(fields))
    }
}

/// An object's key (JSON keys are always strings).
struct Key(String);

impl<'de> Deserialize<'de> for Key {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct KeyVisitor;
        impl Visitor<'_> for KeyVisitor {
            type Value = Key;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a string key")
            }
            fn visit_str<E: de::Error>(self, s: &str) -> Result<Key, E> {
                Ok(Key(s.to_owned()))
            }
            fn visit_string<E: de::Error>(self, s: String) -> Result<Key, E> {
                Ok(Key(s))
            }
        }
        deserializer.deserialize_string(KeyVisitor)
    }
}

#[cfg(test)]
mod tests {
    use serde::Deserialize;

    use super::*;

    /// The derived reading this file replaces, as the oracle.
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

    fn both(text: &str) -> (Option<ServerMessage>, Option<ServerMessage>) {
        let derived = serde_json::from_str::<Derived>(text).ok().map(Into::into);
        (derived, serde_json::from_str::<ServerMessage>(text).ok())
    }

    const ID: &str = r#""aaaaaaaaaaaaaaaaaaa\u00fe""#;
    const ID2: &str = r#""bbbbbbbbbbbbbbbbbbbb""#;

    /// Values a field may be given: right, wrong, and the odd forms serde takes.
    const VALUES: &[&str] = &[
        ID,
        ID2,
        r#""aaaaaaaaaaaaaaaaaaa""#,
        r#""aaaaaaaaaaaaaaaaaaa\u0100""#,
        r#""announce""#,
        r#""scrape""#,
        r#""offer""#,
        r#""answer""#,
        r#""Announce""#,
        r#"{"announce":null}"#,
        r#"{"scrape":null}"#,
        r#"{"announce":1}"#,
        r#"{"announce":null,"scrape":null}"#,
        r#"{"offer":null}"#,
        "0",
        "120",
        "18446744073709551615",
        "18446744073709551616",
        "-1",
        "1.5",
        "1e3",
        "null",
        "true",
        r#""v=0\r\n""#,
        r#"{"type":"offer","sdp":"v=0"}"#,
        r#"{"type":"answer","sdp":"v=0","x":[1,2]}"#,
        r#"{"type":{"answer":null},"sdp":"v=0"}"#,
        r#"{"type":"offer"}"#,
        r#"{"type":"offer","sdp":"a","sdp":"b"}"#,
        r#"{"type":"pranswer","sdp":"v=0"}"#,
        r#"{"sdp":"v=0","type":"answer"}"#,
        "{}",
        r#"{"aaaaaaaaaaaaaaaaaaaa":{"complete":1,"incomplete":2,"downloaded":3}}"#,
        r#"{"aaaaaaaaaaaaaaaaaaaa":{"complete":1,"incomplete":2,"downloaded":3},"aaaaaaaaaaaaaaaaaaaa":{"complete":4,"incomplete":5,"downloaded":6}}"#,
        r#"{"aaaaaaaaaaaaaaaaaaaa":{"complete":1,"incomplete":2,"downloaded":3},"bbbbbbbbbbbbbbbbbbbb":{"complete":1}}"#,
        r#"{"short":{"complete":1,"incomplete":2,"downloaded":3}}"#,
        r#"{"aaaaaaaaaaaaaaaaaaaa":{"complete":1,"incomplete":2,"downloaded":3,"x":null}}"#,
        r#"{"aaaaaaaaaaaaaaaaaaaa":null}"#,
    ];

    /// The five shapes with valid values, to start mutating from.
    const SHAPES: &[&[(&str, &str)]] = &[
        &[
            ("failure reason", r#""too many offers""#),
            ("action", r#""announce""#),
            ("info_hash", ID),
        ],
        &[
            ("action", r#""announce""#),
            ("info_hash", ID),
            ("peer_id", ID2),
            ("offer_id", ID),
            ("offer", r#"{"type":"offer","sdp":"v=0"}"#),
        ],
        &[
            ("action", r#""announce""#),
            ("info_hash", ID),
            ("peer_id", ID2),
            ("offer_id", ID),
            ("answer", r#"{"type":"answer","sdp":"v=0"}"#),
        ],
        &[
            ("action", r#""scrape""#),
            (
                "files",
                r#"{"aaaaaaaaaaaaaaaaaaaa":{"complete":1,"incomplete":2,"downloaded":3}}"#,
            ),
        ],
        &[
            ("action", r#""announce""#),
            ("info_hash", ID),
            ("complete", "1"),
            ("incomplete", "2"),
            ("interval", "120"),
        ],
    ];

    const NAMES: &[&str] = &[
        "action",
        "info_hash",
        "peer_id",
        "offer_id",
        "offer",
        "answer",
        "files",
        "complete",
        "incomplete",
        "interval",
        "failure reason",
        "to_peer_id",
        "x",
        "type",
        "sdp",
    ];

    /// Every shape, mutated at random (fields dropped, repeated, given
    /// other values, unknown fields added, reordered): the same answer as
    /// the derived reading, message for message.
    #[test]
    fn reads_as_the_derived_untagged_enum_did() {
        let mut rng = fastrand::Rng::with_seed(11);
        let (mut parsed, mut refused) = (0, 0);
        for _ in 0..30_000 {
            let shape = SHAPES[rng.usize(..SHAPES.len())];
            let mut fields: Vec<(&str, &str)> = shape.to_vec();
            for _ in 0..rng.usize(..4) {
                let at = rng.usize(..fields.len().max(1));
                match rng.u8(..5) {
                    0 if !fields.is_empty() => {
                        fields.remove(at);
                    }
                    1 if !fields.is_empty() => {
                        let value = VALUES[rng.usize(..VALUES.len())];
                        fields[at].1 = value;
                    }
                    2 if !fields.is_empty() => {
                        let repeated = (fields[at].0, VALUES[rng.usize(..VALUES.len())]);
                        fields.push(repeated);
                    }
                    3 => fields.push(("x", r#"[1,{"a":[null]},"s"]"#)),
                    _ => {
                        let name = NAMES[rng.usize(..NAMES.len())];
                        fields.push((name, VALUES[rng.usize(..VALUES.len())]));
                    }
                }
            }
            rng.shuffle(&mut fields);
            let body: Vec<String> = fields.iter().map(|(k, v)| format!("\"{k}\":{v}")).collect();
            let text = format!("{{{}}}", body.join(","));
            let (derived, ours) = both(&text);
            assert_eq!(ours, derived, "{text}");
            if ours.is_some() {
                parsed += 1;
            } else {
                refused += 1;
            }
        }
        assert!(
            parsed > 5_000 && refused > 5_000,
            "{parsed} parsed, {refused} refused"
        );
    }

    #[test]
    fn what_is_not_an_object_is_refused_with_a_reason() {
        for text in [
            "",
            "{",
            "null",
            "1",
            "\"announce\"",
            "[1,2]",
            "{}",
            "{\"action\":\"announce\"}",
            "{} x",
        ] {
            let error = serde_json::from_str::<ServerMessage>(text)
                .unwrap_err()
                .to_string();
            assert!(!error.is_empty(), "{text:?}");
        }
        let shape = r#"{"action":"announce","info_hash":"aaaaaaaaaaaaaaaaaaaa","complete":1,"incomplete":2,"interval":120}"#;
        assert!(serde_json::from_str::<ServerMessage>(shape).is_ok());
        let error = serde_json::from_str::<ServerMessage>(r#"{"action":"announce"}"#).unwrap_err();
        assert!(
            error.to_string().starts_with("not a tracker message"),
            "{error}"
        );
    }

    /// The derived reading also took a struct as a JSON array of its fields;
    /// no tracker sends that, and it is no longer read.
    #[test]
    fn structs_as_arrays_are_no_longer_read() {
        let text = r#"["announce","aaaaaaaaaaaaaaaaaaaa",1,2,120]"#;
        let (derived, ours) = both(text);
        assert!(derived.is_some());
        assert_eq!(ours, None);
    }
}
