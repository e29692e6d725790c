//! Helpers shared by the integration tests: a real server on 127.0.0.1:0
//! and a real WebSocket client.
#![allow(clippy::unwrap_used, dead_code)]

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::process::Child;
use std::sync::mpsc::Receiver;
use std::time::{Duration, Instant};

use fanswarm_tracker::Limits;
use futures_util::{SinkExt, StreamExt};
use serde_json::Value;
use signal_server::catalog::Catalog;
use signal_server::state::{AppState, Paths};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

pub type Ws = WebSocketStream<MaybeTlsStream<TcpStream>>;

/// Starts a server with these limits and an empty catalog.
pub async fn start(limits: Limits) -> (SocketAddr, AppState) {
    let dir = std::env::temp_dir();
    let state = AppState::new(
        Catalog::default(),
        Paths {
            media_dir: dir.clone(),
            web_dir: dir,
        },
        limits,
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let served = state.clone();
    tokio::spawn(async move { signal_server::serve(listener, served).await });
    (addr, state)
}

pub async fn connect(addr: SocketAddr) -> Ws {
    let (ws, _) = tokio_tungstenite::connect_async(format!("ws://{addr}/announce"))
        .await
        .unwrap();
    ws
}

pub async fn send(ws: &mut Ws, v: Value) {
    ws.send(Message::text(v.to_string())).await.unwrap();
}

/// The next JSON message, failing the test after 5 s.
pub async fn recv(ws: &mut Ws) -> Value {
    recv_within(ws, Duration::from_secs(5))
        .await
        .expect("expected a message within 5 s")
}

/// The next JSON message if one arrives within `wait`.
pub async fn recv_within(ws: &mut Ws, wait: Duration) -> Option<Value> {
    loop {
        let next = tokio::time::timeout(wait, ws.next()).await.ok()??;
        match next.ok()? {
            Message::Text(t) => return Some(serde_json::from_str(&t).unwrap()),
            Message::Binary(b) => return Some(serde_json::from_slice(&b).unwrap()),
            Message::Close(_) => return None,
            _ => continue,
        }
    }
}

/// Whether the server closed the socket within `wait`.
pub async fn closed_within(ws: &mut Ws, wait: Duration) -> bool {
    let deadline = tokio::time::Instant::now() + wait;
    loop {
        match tokio::time::timeout_at(deadline, ws.next()).await {
            Err(_) => return false,
            Ok(None) | Ok(Some(Err(_))) | Ok(Some(Ok(Message::Close(_)))) => return true,
            Ok(Some(Ok(_))) => continue,
        }
    }
}

/// A 20-character id string whose bytes are all `b`.
pub fn id(b: u8) -> String {
    std::iter::repeat_n(char::from(b), 20).collect()
}

/// A ~700-byte SDP offer like Chromium's with trickle off.
pub fn sdp(tag: &str) -> String {
    let mut s = format!(
        "v=0\r\no=- 4611731400430051336 2 IN IP4 127.0.0.1\r\ns=-\r\nt=0 0\r\na=group:BUNDLE 0\r\n\
         a=extmap-allow-mixed\r\na=msid-semantic: WMS\r\nm=application 9 UDP/DTLS/SCTP webrtc-datachannel\r\n\
         c=IN IP4 0.0.0.0\r\na=ice-ufrag:{tag}\r\na=ice-pwd:abcdefghijklmnopqrstuvwx\r\na=ice-options:trickle\r\n\
         a=fingerprint:sha-256 12:34:56:78:9A:BC:DE:F0:12:34:56:78:9A:BC:DE:F0:12:34:56:78:9A:BC:DE:F0:12:34:56:78:9A:BC:DE:F0\r\n\
         a=setup:actpass\r\na=mid:0\r\na=sctp-port:5000\r\na=max-message-size:262144\r\n"
    );
    while s.len() < 700 {
        s.push_str("a=candidate:1 1 udp 2122260223 198.51.100.1 50000 typ host generation 0\r\n");
    }
    s
}

pub fn announce(hash: u8, peer: u8, offers: &[u8]) -> Value {
    let offers: Vec<Value> = offers
        .iter()
        .map(|&o| {
            serde_json::json!({
                "offer": {"type": "offer", "sdp": sdp(&format!("o{o}"))},
                "offer_id": id(o),
            })
        })
        .collect();
    serde_json::json!({
        "action": "announce",
        "info_hash": id(hash),
        "peer_id": id(peer),
        "numwant": 50,
        "uploaded": 0,
        "downloaded": 0,
        "left": 1000,
        "event": "started",
        "offers": offers,
    })
}

pub fn answer(hash: u8, from: u8, to: u8, offer: u8) -> Value {
    serde_json::json!({
        "action": "announce",
        "info_hash": id(hash),
        "peer_id": id(from),
        "to_peer_id": id(to),
        "offer_id": id(offer),
        "answer": {"type": "answer", "sdp": sdp("answer")},
    })
}

/// Reads `child`'s stdout (piped) on a thread of its own until a line
/// contains `marker` or 30 s have passed; returns what it read and the rest
/// of the lines to come.
pub fn read_until(child: &mut Child, marker: &str) -> (String, Receiver<String>) {
    let stdout = BufReader::new(child.stdout.take().unwrap());
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in stdout.lines().map_while(Result::ok) {
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    let deadline = Instant::now() + Duration::from_secs(30);
    let mut seen = Vec::new();
    while let Ok(line) = rx.recv_timeout(deadline.saturating_duration_since(Instant::now())) {
        let done = line.contains(marker);
        seen.push(line);
        if done {
            break;
        }
    }
    (seen.join("\n"), rx)
}
