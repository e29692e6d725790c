//! Hostile tracker clients over real sockets: each gets a clear `failure
//! reason`, an HTTP error or a closed socket within a bounded time, the
//! server's memory stays bounded, and another client's announce still works
//! during and after.
#![allow(clippy::unwrap_used)]

mod common;

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use common::*;
use fanswarm_tracker::Limits;
use futures_util::{SinkExt, StreamExt};
use serde_json::{Value, json};
use signal_server::state::AppState;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpSocket, TcpStream};
use tokio_tungstenite::tungstenite::Error as WsError;
use tokio_tungstenite::tungstenite::Message;

const FLOOD: usize = 10_000;

/// A 20-character id that is distinct for every `n` below 10^20.
fn numbered(n: usize) -> String {
    format!("{n:020}")
}

/// An honest client's announce on swarm `hash` answers normally.
async fn honest_announce_works(addr: SocketAddr, hash: u8) {
    let mut ws = connect(addr).await;
    send(&mut ws, announce(hash, b'H', &[])).await;
    let reply = recv(&mut ws).await;
    assert_eq!(reply["action"], "announce", "{reply}");
    assert!(reply.get("failure reason").is_none(), "{reply}");
    assert_eq!(reply["info_hash"], id(hash));
}

/// Sends ten thousand announces, each for a new swarm, on one socket while
/// an honest client announces midway; returns the hostile socket's replies.
async fn flood_of_swarms(addr: SocketAddr) -> Vec<Value> {
    let ws = connect(addr).await;
    let (mut tx, mut rx) = ws.split();
    let reader = tokio::spawn(async move {
        let mut replies = Vec::new();
        while let Ok(Some(Ok(Message::Text(t)))) =
            tokio::time::timeout(Duration::from_secs(2), rx.next()).await
        {
            replies.push(serde_json::from_str::<Value>(&t).unwrap());
        }
        replies
    });
    for n in 0..FLOOD {
        let message = json!({
            "action": "announce",
            "info_hash": numbered(n),
            "peer_id": id(b'X'),
            "numwant": 50,
            "uploaded": 0,
            "downloaded": 0,
            "left": 1000,
            "event": "started",
            "offers": [],
        });
        tx.send(Message::text(message.to_string())).await.unwrap();
        if n == FLOOD / 2 {
            honest_announce_works(addr, 1).await;
        }
    }
    reader.await.unwrap()
}

fn reasons(replies: &[Value]) -> Vec<&str> {
    replies
        .iter()
        .filter_map(|r| r["failure reason"].as_str())
        .collect()
}

#[tokio::test]
async fn ten_thousand_swarms_from_one_connection_stop_at_the_cap() {
    // Rate limits lifted so that the swarm cap is what bites.
    let limits = Limits {
        messages_per_second: 1_000_000,
        message_burst: 1_000_000,
        ..Limits::default()
    };
    let cap = limits.max_swarms_per_connection;
    let (addr, state) = start(limits).await;
    let replies = flood_of_swarms(addr).await;

    let joined = replies
        .iter()
        .filter(|r| r.get("failure reason").is_none())
        .count();
    assert!(joined <= cap, "{joined} swarms joined, cap {cap}");
    let refused = reasons(&replies);
    assert!(!refused.is_empty(), "the excess is refused");
    let expected = format!("too many swarms on this connection (max {cap})");
    assert!(refused.iter().all(|r| *r == expected), "{refused:?}");
    // The cap bounds memory: the hostile socket's swarms plus the honest one.
    assert!(state.hub().tracker.swarm_count() <= cap + 1);
    honest_announce_works(addr, 2).await;
}

#[tokio::test]
async fn ten_thousand_swarms_at_the_default_rate_are_rate_limited() {
    let limits = Limits::default();
    let burst = limits.message_burst as usize;
    let (addr, state) = start(limits).await;
    let replies = flood_of_swarms(addr).await;

    let refused = reasons(&replies);
    assert!(
        refused.contains(&"rate limit exceeded"),
        "the flood is rate limited: {:?}",
        &refused[..refused.len().min(5)]
    );
    // The burst plus what the bucket refilled while the flood lasted.
    let swarms = state.hub().tracker.swarm_count();
    assert!(swarms < burst + 200, "{swarms} swarms from one flood");
    honest_announce_works(addr, 2).await;
}

/// A scrape naming ten thousand distinct info hashes.
fn huge_scrape() -> Value {
    let hashes: Vec<String> = (0..FLOOD).map(numbered).collect();
    json!({"action": "scrape", "info_hash": hashes})
}

#[tokio::test]
async fn a_scrape_of_ten_thousand_hashes_closes_only_that_socket() {
    // 10,000 hashes are ~230 KB of JSON: over the 64 KiB message limit.
    let (addr, _) = start(Limits::default()).await;
    let mut hostile = connect(addr).await;
    let mut bystander = connect(addr).await;
    send(&mut hostile, huge_scrape()).await;
    assert!(closed_within(&mut hostile, Duration::from_secs(5)).await);
    send(&mut bystander, announce(3, b'B', &[])).await;
    assert_eq!(recv(&mut bystander).await["action"], "announce");
    honest_announce_works(addr, 4).await;
}

#[tokio::test]
async fn a_scrape_of_ten_thousand_hashes_within_the_size_limit_gets_a_reason() {
    let limits = Limits {
        max_message_bytes: 1024 * 1024,
        ..Limits::default()
    };
    let max = limits.max_scrape_hashes;
    let (addr, _) = start(limits).await;
    let mut hostile = connect(addr).await;
    send(&mut hostile, huge_scrape()).await;
    let reply = recv(&mut hostile).await;
    assert_eq!(
        reply["failure reason"],
        format!("too many info hashes in scrape (max {max})")
    );
    honest_announce_works(addr, 5).await;
}

#[tokio::test]
async fn a_client_dribbling_its_upgrade_request_is_cut_off() {
    let limits = Limits {
        header_read_timeout: Duration::from_secs(1),
        ..Limits::default()
    };
    let (addr, _) = start(limits).await;
    let request = format!(
        "GET /announce HTTP/1.1\r\nHost: {addr}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
         Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n"
    );
    let mut stream = TcpStream::connect(addr).await.unwrap();
    let started = Instant::now();
    let mut cut_after = None;
    // One byte every 50 ms would take ~9 s for the whole head; the timeout
    // is 1 s, and 4 s leaves room for a loaded machine.
    for byte in request.bytes() {
        if stream.write_all(&[byte]).await.is_err() || peer_closed(&mut stream).await {
            cut_after = Some(started.elapsed());
            break;
        }
        if started.elapsed() > Duration::from_secs(8) {
            break;
        }
        honest_announce_during(addr, started).await;
    }
    let cut_after = cut_after.expect("the dribbling client was never cut off");
    assert!(
        cut_after < Duration::from_secs(4),
        "cut after {cut_after:?}"
    );
    honest_announce_works(addr, 6).await;
}

#[tokio::test]
async fn a_client_that_never_sends_a_byte_is_cut_off() {
    let limits = Limits {
        header_read_timeout: Duration::from_secs(1),
        ..Limits::default()
    };
    let (addr, _) = start(limits).await;
    let mut stream = TcpStream::connect(addr).await.unwrap();
    let started = Instant::now();
    let mut buf = [0u8; 64];
    let read = tokio::time::timeout(Duration::from_secs(5), stream.read(&mut buf)).await;
    assert!(
        matches!(read, Ok(Ok(0)) | Ok(Err(_))),
        "the silent socket was not closed within 5 s"
    );
    assert!(started.elapsed() < Duration::from_secs(4));
    honest_announce_works(addr, 7).await;
}

#[tokio::test]
async fn a_frame_header_without_its_payload_is_cut_off_after_the_idle_timeout() {
    let limits = Limits {
        idle_timeout: Duration::from_secs(1),
        ..Limits::default()
    };
    let (addr, state) = start(limits).await;
    let mut stream = upgraded(addr).await;
    // FIN + text, masked, 16-bit length 1000, mask key: then nothing.
    stream
        .write_all(&[0x81, 0xfe, 0x03, 0xe8, 1, 2, 3, 4])
        .await
        .unwrap();
    stream.write_all(b"only a few bytes").await.unwrap();
    let started = Instant::now();
    let mut buf = vec![0u8; 1024];
    loop {
        match tokio::time::timeout(Duration::from_secs(5), stream.read(&mut buf)).await {
            Ok(Ok(0)) | Ok(Err(_)) => break,
            Ok(Ok(_)) => continue, // the close frame
            Err(_) => panic!("the half-sent frame held the socket for 5 s"),
        }
    }
    assert!(started.elapsed() < Duration::from_secs(4));
    honest_announce_works(addr, 8).await;
    // The cut socket left the tracker.
    wait_for_connections(&state, 0).await;
}

#[tokio::test]
async fn many_sockets_from_one_address_are_refused_with_429() {
    let limits = Limits {
        max_connections_per_address: 4,
        ..Limits::default()
    };
    let (addr, state) = start(limits).await;
    let mut open = Vec::new();
    for _ in 0..4 {
        open.push(connect(addr).await);
    }
    let refused = tokio_tungstenite::connect_async(format!("ws://{addr}/announce")).await;
    let Err(WsError::Http(response)) = refused else {
        panic!("a fifth socket from 127.0.0.1 was accepted");
    };
    assert_eq!(response.status(), 429);
    let body = String::from_utf8(response.body().clone().unwrap_or_default()).unwrap();
    assert!(body.contains("too many tracker connections"), "{body}");
    let metrics = state.metrics.render();
    assert!(
        metrics.contains(r#"fanswarm_tracker_failures_total{reason="too_many_from_address"} 1"#),
        "{metrics}"
    );

    // Another address is unaffected: the whole 127/8 is loopback.
    let other = TcpSocket::new_v4().unwrap();
    other.bind("127.0.0.2:0".parse().unwrap()).unwrap();
    let stream = other.connect(addr).await.unwrap();
    let stream = tokio_tungstenite::MaybeTlsStream::Plain(stream);
    let (mut ws, _) = tokio_tungstenite::client_async(format!("ws://{addr}/announce"), stream)
        .await
        .unwrap();
    send(&mut ws, announce(9, b'O', &[])).await;
    assert_eq!(recv(&mut ws).await["action"], "announce");

    // A closed socket frees its slot.
    let mut first = open.remove(0);
    first.close(None).await.unwrap();
    wait_for_connections(&state, 4).await;
    let mut again = connect(addr).await;
    send(&mut again, announce(9, b'A', &[])).await;
    assert_eq!(recv(&mut again).await["action"], "announce");
}

/// Every 20th byte of the dribble, an honest client announces meanwhile.
async fn honest_announce_during(addr: SocketAddr, started: Instant) {
    let tick = started.elapsed().as_millis() / 50;
    if tick.is_multiple_of(20) {
        honest_announce_works(addr, 10).await;
    }
    tokio::time::sleep(Duration::from_millis(50)).await;
}

/// Whether the server has closed its end (EOF or reset), without waiting.
async fn peer_closed(stream: &mut TcpStream) -> bool {
    let mut buf = [0u8; 1];
    match tokio::time::timeout(Duration::from_millis(1), stream.peek(&mut buf)).await {
        Ok(Ok(0)) | Ok(Err(_)) => true,
        Ok(Ok(_)) | Err(_) => false,
    }
}

/// A raw TCP stream past a successful WebSocket upgrade to `/announce`.
async fn upgraded(addr: SocketAddr) -> TcpStream {
    let mut stream = TcpStream::connect(addr).await.unwrap();
    let request = format!(
        "GET /announce HTTP/1.1\r\nHost: {addr}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
         Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n"
    );
    stream.write_all(request.as_bytes()).await.unwrap();
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        stream.read_exact(&mut byte).await.unwrap();
        head.push(byte[0]);
    }
    let head = String::from_utf8(head).unwrap();
    assert!(head.starts_with("HTTP/1.1 101"), "{head}");
    stream
}

/// Waits until the tracker counts exactly `n` connections (5 s at most).
async fn wait_for_connections(state: &AppState, n: usize) {
    let deadline = Instant::now() + Duration::from_secs(5);
    while state.hub().tracker.connection_count() != n {
        assert!(Instant::now() < deadline, "connections never reached {n}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}
