//! Writing the one message a peer sends a tracker, an announce, as JSON
//! text: byte for byte what `serde_json::to_string(&ClientMessage::Announce(…))`
//! writes, without serde_json's serializer in the browser's wasm (its
//! writer machinery and the `std::io` errors it can carry, ~6 KB).
//!
//! The derived `Serialize` stays (the tracker, the tests and the fuzz
//! target use it) and is this writer's oracle: a test and the
//! `tracker_json` fuzz target compare the two on every announce.

use super::{AnnounceEvent, AnnounceRequest, Offer, SdpKind, SessionDescription, id_to_string};

/// `{"action":"announce", …}`: the fields in declaration order, absent
/// options left out, as the derived, internally tagged `ClientMessage` does.
pub fn announce_json(request: &AnnounceRequest) -> String {
    let mut out = String::with_capacity(
        160 + request
            .offers
            .as_ref()
            .map_or(0, |o| o.iter().map(|o| o.offer.sdp.len() + 96).sum()),
    );
    out.push_str("{\"action\":\"announce\",\"info_hash\":");
    string(&mut out, &id_to_string(&request.info_hash.0));
    out.push_str(",\"peer_id\":");
    string(&mut out, &id_to_string(&request.peer_id.0));
    if let Some(event) = request.event {
        out.push_str(",\"event\":\"");
        out.push_str(match event {
            AnnounceEvent::Started => "started",
            AnnounceEvent::Stopped => "stopped",
            AnnounceEvent::Completed => "completed",
            AnnounceEvent::Update => "update",
            AnnounceEvent::Paused => "paused",
        });
        out.push('"');
    }
    let counts = [
        ("numwant", request.numwant),
        ("uploaded", request.uploaded),
        ("downloaded", request.downloaded),
        ("left", request.left),
    ];
    for (name, value) in counts {
        if let Some(value) = value {
            out.push_str(",\"");
            out.push_str(name);
            out.push_str("\":");
            out.push_str(&value.to_string());
        }
    }
    if let Some(offers) = &request.offers {
        out.push_str(",\"offers\":[");
        for (i, Offer { offer, offer_id }) in offers.iter().enumerate() {
            if i > 0 {
                out.push(',');
            }
            out.push_str("{\"offer\":");
            description(&mut out, offer);
            out.push_str(",\"offer_id\":");
            string(&mut out, &id_to_string(&offer_id.0));
            out.push('}');
        }
        out.push(']');
    }
    if let Some(answer) = &request.answer {
        out.push_str(",\"answer\":");
        description(&mut out, answer);
    }
    if let Some(to) = &request.to_peer_id {
        out.push_str(",\"to_peer_id\":");
        string(&mut out, &id_to_string(&to.0));
    }
    if let Some(offer_id) = &request.offer_id {
        out.push_str(",\"offer_id\":");
        string(&mut out, &id_to_string(&offer_id.0));
    }
    out.push('}');
    out
}

/// `{"type":"offer"|"answer","sdp":…}`.
fn description(out: &mut String, d: &SessionDescription) {
    out.push_str(match d.kind {
        SdpKind::Offer => "{\"type\":\"offer\",\"sdp\":",
        SdpKind::Answer => "{\"type\":\"answer\",\"sdp\":",
    });
    string(out, &d.sdp);
    out.push('}');
}

/// A JSON string as serde_json writes it: `"` and `\` escaped, the
/// control characters as `\b \t \n \f \r` or `\u00xx` (lower-case hex),
/// everything else (DEL, non-ASCII) as it is.
fn string(out: &mut String, s: &str) {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\u{8}' => out.push_str("\\b"),
            '\t' => out.push_str("\\t"),
            '\n' => out.push_str("\\n"),
            '\u{c}' => out.push_str("\\f"),
            '\r' => out.push_str("\\r"),
            c if u32::from(c) < 0x20 => {
                let byte = c as u8;
                out.push_str("\\u00");
                out.push(char::from(HEX[usize::from(byte >> 4)]));
                out.push(char::from(HEX[usize::from(byte & 0xf)]));
            }
            c => out.push(c),
        }
    }
    out.push('"');
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ids::{InfoHash, PeerId};
    use crate::tracker::{ClientMessage, OfferId};

    fn derived(request: &AnnounceRequest) -> String {
        serde_json::to_string(&ClientMessage::Announce(request.clone())).unwrap()
    }

    /// Random announces, ids of every byte value and SDP of every kind of
    /// character: byte for byte what the derived serializer writes.
    #[test]
    fn writes_what_serde_json_writes() {
        let mut rng = fastrand::Rng::with_seed(5);
        let chars = [
            'a', '"', '\\', '\n', '\r', '\t', '\u{8}', '\u{c}', '\0', '\u{1f}', '\u{7f}', '\u{80}',
            '\u{ff}', 'é', '\u{2028}', '😀', '/', ' ',
        ];
        let text = |rng: &mut fastrand::Rng| -> String {
            (0..rng.usize(..40))
                .map(|_| chars[rng.usize(..chars.len())])
                .collect()
        };
        let id = |rng: &mut fastrand::Rng| -> [u8; 20] { std::array::from_fn(|_| rng.u8(..)) };
        let count = |rng: &mut fastrand::Rng| {
            rng.bool()
                .then(|| [0, 1, 9, 10, 120, u64::MAX, rng.u64(..)][rng.usize(..7)])
        };
        let events = [
            AnnounceEvent::Started,
            AnnounceEvent::Stopped,
            AnnounceEvent::Completed,
            AnnounceEvent::Update,
            AnnounceEvent::Paused,
        ];
        let kinds = [SdpKind::Offer, SdpKind::Answer];
        for _ in 0..5_000 {
            let description = |rng: &mut fastrand::Rng| SessionDescription {
                kind: kinds[rng.usize(..2)],
                sdp: text(rng),
            };
            let offers = rng.bool().then(|| {
                (0..rng.usize(..6))
                    .map(|_| Offer {
                        offer: description(&mut rng),
                        offer_id: OfferId(id(&mut rng)),
                    })
                    .collect()
            });
            let request = AnnounceRequest {
                info_hash: InfoHash(id(&mut rng)),
                peer_id: PeerId(id(&mut rng)),
                event: rng.bool().then(|| events[rng.usize(..events.len())]),
                numwant: count(&mut rng),
                uploaded: count(&mut rng),
                downloaded: count(&mut rng),
                left: count(&mut rng),
                offers,
                answer: rng.bool().then(|| description(&mut rng)),
                to_peer_id: rng.bool().then(|| PeerId(id(&mut rng))),
                offer_id: rng.bool().then(|| OfferId(id(&mut rng))),
            };
            assert_eq!(announce_json(&request), derived(&request));
        }
    }
}
