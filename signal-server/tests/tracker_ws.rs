//! The tracker over a real socket: routing, ownership, scrape, and every
//! bad-input case answered with a `failure reason` or a close.
#![allow(clippy::unwrap_used)]

mod common;

use std::time::Duration;

use common::*;
use fanswarm_tracker::Limits;
use futures_util::SinkExt;
use serde_json::{Value, json};
use tokio_tungstenite::tungstenite::Message;

/// A bad request, the start of its failure reason, and the expected
/// `action` / `info_hash` echoed back when the tracker could read them.
type BadCase = (Value, &'static str, Option<(&'static str, String)>);

const QUIET: Duration = Duration::from_millis(300);

fn is_announce_reply(v: &Value) -> bool {
    v["action"] == "announce" && v.get("interval").is_some()
}

#[tokio::test]
async fn offer_is_relayed_and_answer_routed_back() {
    let (addr, _) = start(Limits::default()).await;
    let mut a = connect(addr).await;
    let mut b = connect(addr).await;
    send(&mut a, announce(1, b'A', &[])).await;
    let reply = recv(&mut a).await;
    assert!(is_announce_reply(&reply), "{reply}");
    assert_eq!(reply["info_hash"], id(1));
    assert_eq!(reply["incomplete"], 1);

    send(&mut b, announce(1, b'B', &[7])).await;
    let reply = recv(&mut b).await;
    assert!(is_announce_reply(&reply), "{reply}");
    assert_eq!(reply["incomplete"], 2);

    let relayed = recv(&mut a).await;
    assert_eq!(relayed["action"], "announce");
    assert_eq!(relayed["peer_id"], id(b'B'));
    assert_eq!(relayed["offer_id"], id(7));
    assert_eq!(relayed["info_hash"], id(1));
    assert_eq!(relayed["offer"]["type"], "offer");
    assert!(
        relayed["offer"]["sdp"]
            .as_str()
            .unwrap()
            .contains("ice-ufrag:o7")
    );

    send(&mut a, answer(1, b'A', b'B', 7)).await;
    let routed = recv(&mut b).await;
    assert_eq!(routed["peer_id"], id(b'A'));
    assert_eq!(routed["offer_id"], id(7));
    assert_eq!(routed["answer"]["type"], "answer");
    assert!(
        recv_within(&mut a, QUIET).await.is_none(),
        "answerer gets no reply"
    );
}

#[tokio::test]
async fn answer_for_an_unrelayed_offer_is_dropped() {
    let (addr, _) = start(Limits::default()).await;
    let mut a = connect(addr).await;
    let mut b = connect(addr).await;
    send(&mut a, announce(1, b'A', &[])).await;
    recv(&mut a).await;
    send(&mut b, announce(1, b'B', &[])).await;
    recv(&mut b).await;

    // B answers an offer A never made; A must not hear of it.
    send(&mut b, answer(1, b'B', b'A', 9)).await;
    let failure = recv(&mut b).await;
    assert_eq!(failure["failure reason"], "unknown or expired offer");
    assert_eq!(failure["action"], "announce");
    assert_eq!(failure["info_hash"], id(1));
    assert!(recv_within(&mut a, QUIET).await.is_none());
}

#[tokio::test]
async fn peer_id_takeover_is_refused() {
    let (addr, state) = start(Limits::default()).await;
    let mut a = connect(addr).await;
    let mut c = connect(addr).await;
    send(&mut a, announce(1, b'A', &[])).await;
    recv(&mut a).await;
    send(&mut c, announce(1, b'A', &[])).await;
    let failure = recv(&mut c).await;
    assert_eq!(
        failure["failure reason"],
        "peer_id is in use by another connection"
    );
    assert_eq!(failure["info_hash"], id(1));
    assert_eq!(state.hub().tracker.peer_count(), 1);
    // The owner is unaffected.
    send(&mut a, announce(1, b'A', &[])).await;
    assert!(is_announce_reply(&recv(&mut a).await));
}

#[tokio::test]
async fn scrape_one_hash_or_a_list() {
    let (addr, _) = start(Limits::default()).await;
    let mut a = connect(addr).await;
    let mut seed = announce(1, b'A', &[]);
    seed["left"] = json!(0);
    send(&mut a, seed).await;
    recv(&mut a).await;

    send(&mut a, json!({"action": "scrape", "info_hash": id(1)})).await;
    let one = recv(&mut a).await;
    assert_eq!(one["action"], "scrape");
    assert_eq!(one["files"][id(1)]["complete"], 1);
    assert_eq!(one["files"][id(1)]["incomplete"], 0);

    send(
        &mut a,
        json!({"action": "scrape", "info_hash": [id(1), id(2)]}),
    )
    .await;
    let many = recv(&mut a).await;
    assert_eq!(many["files"].as_object().unwrap().len(), 2);
    assert_eq!(many["files"][id(2)]["complete"], 0);
}

#[tokio::test]
async fn every_bad_input_gets_a_failure_reason() {
    let (addr, _) = start(Limits::default()).await;
    let mut ws = connect(addr).await;
    let mut short_peer = announce(1, b'A', &[]);
    short_peer["peer_id"] = json!("tooshort");
    let mut wide_char = announce(1, b'A', &[]);
    wide_char["peer_id"] = json!(format!("{}\u{0101}", "a".repeat(19)));
    let mut bad_event = announce(1, b'A', &[]);
    bad_event["event"] = json!("dancing");
    let mut no_routing = answer(1, b'A', b'B', 3);
    no_routing.as_object_mut().unwrap().remove("offer_id");
    let too_many_hashes: Vec<String> = (0..256u32)
        .map(|i| {
            let b = i.to_le_bytes();
            (0..20).map(|j| char::from(b[j % 2])).collect()
        })
        .collect();

    let cases: Vec<BadCase> = vec![
        (json!("not an object"), "invalid request", None),
        (json!({"action": "dance"}), "invalid request", None),
        (json!({"info_hash": id(1)}), "invalid request", None),
        (short_peer, "invalid request", Some(("announce", id(1)))),
        (wide_char, "invalid request", Some(("announce", id(1)))),
        (bad_event, "invalid request", Some(("announce", id(1)))),
        (
            announce(1, b'A', &[1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11]),
            "too many offers",
            Some(("announce", id(1))),
        ),
        (no_routing, "answer requires", Some(("announce", id(1)))),
        (json!({"action": "scrape"}), "full scrape", None),
        (
            json!({"action": "scrape", "info_hash": too_many_hashes}),
            "too many info hashes",
            None,
        ),
        (
            json!({"action": "scrape", "info_hash": "short"}),
            "invalid request",
            None,
        ),
    ];
    for (request, reason, context) in cases {
        send(&mut ws, request.clone()).await;
        let reply = recv(&mut ws).await;
        let got = reply["failure reason"].as_str().unwrap_or_default();
        assert!(got.starts_with(reason), "{request} → {reply}");
        if let Some((action, hash)) = context {
            assert_eq!(reply["action"], action, "{request}");
            assert_eq!(reply["info_hash"], hash, "{request}");
        }
    }
    // Not JSON at all, as text and as binary.
    ws.send(Message::text("{{{")).await.unwrap();
    assert!(recv(&mut ws).await["failure reason"].is_string());
    ws.send(Message::binary(vec![0xff, 0x00, 0x13]))
        .await
        .unwrap();
    assert!(recv(&mut ws).await["failure reason"].is_string());
    // The connection is still usable after all that.
    send(&mut ws, announce(1, b'A', &[])).await;
    assert!(is_announce_reply(&recv(&mut ws).await));
}

#[tokio::test]
async fn binary_frames_are_read_like_text() {
    let (addr, _) = start(Limits::default()).await;
    let mut ws = connect(addr).await;
    let body = announce(1, b'A', &[]).to_string().into_bytes();
    ws.send(Message::binary(body)).await.unwrap();
    assert!(is_announce_reply(&recv(&mut ws).await));
}

#[tokio::test]
async fn oversized_message_closes_only_that_socket() {
    let (addr, _) = start(Limits::default()).await;
    let mut big = connect(addr).await;
    let mut other = connect(addr).await;
    send(&mut other, announce(1, b'O', &[])).await;
    recv(&mut other).await;

    let mut request = announce(1, b'A', &[]);
    request["pad"] = json!("x".repeat(70 * 1024));
    let _ = big.send(Message::text(request.to_string())).await;
    assert!(closed_within(&mut big, Duration::from_secs(5)).await);

    send(&mut other, announce(1, b'O', &[])).await;
    assert!(is_announce_reply(&recv(&mut other).await));
}

#[tokio::test]
async fn rate_limit_answers_with_failure() {
    let (addr, _) = start(Limits {
        messages_per_second: 1,
        message_burst: 2,
        ..Limits::default()
    })
    .await;
    let mut ws = connect(addr).await;
    for _ in 0..3 {
        send(&mut ws, announce(1, b'A', &[])).await;
    }
    assert!(is_announce_reply(&recv(&mut ws).await));
    assert!(is_announce_reply(&recv(&mut ws).await));
    let third = recv(&mut ws).await;
    assert_eq!(third["failure reason"], "rate limit exceeded");
    assert_eq!(third["info_hash"], id(1));
}

#[tokio::test]
async fn idle_socket_is_closed_and_leaves_its_swarms() {
    let (addr, state) = start(Limits {
        idle_timeout: Duration::from_millis(300),
        ..Limits::default()
    })
    .await;
    let mut ws = connect(addr).await;
    send(&mut ws, announce(1, b'A', &[])).await;
    recv(&mut ws).await;
    assert_eq!(state.hub().tracker.peer_count(), 1);
    assert!(closed_within(&mut ws, Duration::from_secs(5)).await);
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert_eq!(state.hub().tracker.peer_count(), 0);
}

#[tokio::test]
async fn closing_a_socket_removes_its_peers() {
    let (addr, _) = start(Limits::default()).await;
    let mut a = connect(addr).await;
    let mut b = connect(addr).await;
    send(&mut a, announce(1, b'A', &[])).await;
    recv(&mut a).await;
    send(&mut b, announce(1, b'B', &[])).await;
    recv(&mut b).await;
    a.close(None).await.unwrap();
    // The close is processed asynchronously; poll the scrape.
    let mut incomplete = Value::Null;
    for _ in 0..50 {
        send(&mut b, json!({"action": "scrape", "info_hash": id(1)})).await;
        incomplete = recv(&mut b).await["files"][id(1)]["incomplete"].clone();
        if incomplete == 1 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(incomplete, 1);
}

#[tokio::test]
async fn metrics_count_tracker_traffic() {
    let (addr, state) = start(Limits::default()).await;
    let mut a = connect(addr).await;
    let mut b = connect(addr).await;
    send(&mut a, announce(1, b'A', &[])).await;
    recv(&mut a).await;
    send(&mut b, announce(1, b'B', &[5])).await;
    recv(&mut b).await;
    recv(&mut a).await;
    send(&mut a, answer(1, b'A', b'B', 5)).await;
    recv(&mut b).await;
    send(&mut a, json!({"action": "scrape"})).await;
    recv(&mut a).await;

    let body = reqwest_free_get(addr, "/metrics").await;
    for line in [
        "fanswarm_tracker_connections 2",
        "fanswarm_tracker_swarms 1",
        "fanswarm_tracker_peers 2",
        "fanswarm_tracker_announces_total 3",
        "fanswarm_tracker_offers_relayed_total 1",
        "fanswarm_tracker_answers_routed_total 1",
        "fanswarm_tracker_failures_total{reason=\"full_scrape\"} 1",
    ] {
        assert!(
            body.lines().any(|l| l == line),
            "missing {line:?} in\n{body}"
        );
    }
    drop(state);
}

/// A minimal HTTP/1.1 GET over a plain socket, so the tests need no client crate.
async fn reqwest_free_get(addr: std::net::SocketAddr, path: &str) -> String {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut s = tokio::net::TcpStream::connect(addr).await.unwrap();
    let req = format!("GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
    s.write_all(req.as_bytes()).await.unwrap();
    let mut out = String::new();
    s.read_to_string(&mut out).await.unwrap();
    out.split_once("\r\n\r\n").unwrap().1.to_owned()
}

/// Many WebTorrent trackers live at the root (`wss://tracker.example`):
/// a WebSocket upgrade of `/` is the tracker too, while a plain `GET /`
/// still gets the web directory.
#[tokio::test]
async fn the_root_path_is_the_tracker_for_a_websocket() {
    let (addr, _) = start(Limits::default()).await;
    let (mut root, _) = tokio_tungstenite::connect_async(format!("ws://{addr}/"))
        .await
        .unwrap();
    let mut other = connect(addr).await;
    send(&mut root, announce(3, b'R', &[])).await;
    let reply = recv(&mut root).await;
    assert!(is_announce_reply(&reply), "{reply}");
    send(&mut other, announce(3, b'O', &[])).await;
    let reply = recv(&mut other).await;
    assert_eq!(reply["incomplete"], 2, "one swarm over both paths: {reply}");

    let mut plain = tokio::net::TcpStream::connect(addr).await.unwrap();
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    plain
        .write_all(b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        .await
        .unwrap();
    let mut head = Vec::new();
    plain.read_to_end(&mut head).await.unwrap();
    let head = String::from_utf8_lossy(&head);
    assert!(
        !head.starts_with("HTTP/1.1 101") && !head.contains("websocket"),
        "a plain GET / is not upgraded: {head}"
    );
}
