//! Load generator for the tracker: many WebSocket connections on 127.0.0.1
//! sending realistic announces (5 offers of ~700-byte SDP each, like the
//! webtorrent client), bounded in connections and duration.
//!
//! ```text
//! cargo run --release --example loadgen -- --target 127.0.0.1:8080 \
//!     --connections 200 --swarms 20 --seconds 20          # announces/s
//! cargo run --release --example loadgen -- --idle --connections 10000 \
//!     --hold-seconds 20                                    # idle sockets
//! ```
//!
//! Only loopback targets are accepted, and it always stops by itself. Every
//! connection comes from one address, so start the server with
//! `--max-connections-per-address 0` (no cap) or a cap above `--connections`
//! (the default, 64, answers the rest with 429).
#![allow(clippy::unwrap_used)]

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use clap::Parser;
use futures_util::{SinkExt, StreamExt};
use tokio::sync::Semaphore;
use tokio_tungstenite::tungstenite::Message;

#[derive(Parser, Debug, Clone)]
struct Args {
    /// Tracker address; must be a loopback address.
    #[arg(long, default_value = "127.0.0.1:8080")]
    target: SocketAddr,
    /// WebSocket connections to open (at most 60,000).
    #[arg(long, default_value_t = 200)]
    connections: usize,
    /// Swarms the connections are spread over.
    #[arg(long, default_value_t = 20)]
    swarms: usize,
    /// Offers per announce.
    #[arg(long, default_value_t = 5)]
    offers: usize,
    /// Announces each connection keeps in flight.
    #[arg(long, default_value_t = 2)]
    window: usize,
    /// Seconds to send announces for (at most 600).
    #[arg(long, default_value_t = 20)]
    seconds: u64,
    /// Idle mode: one announce per connection, then hold the sockets open.
    #[arg(long)]
    idle: bool,
    /// Idle mode: seconds to hold the connections (at most 600).
    #[arg(long, default_value_t = 20)]
    hold_seconds: u64,
}

#[derive(Default)]
struct Stats {
    connected: AtomicU64,
    connect_errors: AtomicU64,
    sent: AtomicU64,
    replies: AtomicU64,
    offers_received: AtomicU64,
    answers_sent: AtomicU64,
    answers_received: AtomicU64,
    failures: AtomicU64,
}

#[tokio::main]
async fn main() {
    let args = Args::parse();
    assert!(
        args.target.ip().is_loopback(),
        "loadgen only targets 127.0.0.1 / ::1"
    );
    assert!(args.connections <= 60_000, "at most 60,000 connections");
    assert!(
        args.seconds <= 600 && args.hold_seconds <= 600,
        "at most 600 s"
    );
    let stats = Arc::new(Stats::default());
    let connecting = Arc::new(Semaphore::new(128));
    let start = Instant::now();
    let send_until = start + Duration::from_secs(args.seconds);
    let mut tasks = Vec::with_capacity(args.connections);
    for n in 0..args.connections {
        let (args, stats, connecting) = (args.clone(), stats.clone(), connecting.clone());
        tasks.push(tokio::spawn(async move {
            let permit = connecting.acquire_owned().await.unwrap();
            let url = format!("ws://{}/announce", args.target);
            let ws = match tokio_tungstenite::connect_async(url).await {
                Ok((ws, _)) => ws,
                Err(_) => {
                    stats.connect_errors.fetch_add(1, Ordering::Relaxed);
                    return;
                }
            };
            drop(permit);
            stats.connected.fetch_add(1, Ordering::Relaxed);
            if args.idle {
                idle_connection(n, ws, &args, &stats).await;
            } else {
                busy_connection(n, ws, &args, &stats, send_until).await;
            }
        }));
    }
    let reporter = {
        let stats = stats.clone();
        tokio::spawn(async move {
            loop {
                tokio::time::sleep(Duration::from_secs(5)).await;
                eprintln!(
                    "{:>5.1}s connected {} replies {} offers-in {} failures {}",
                    start.elapsed().as_secs_f64(),
                    stats.connected.load(Ordering::Relaxed),
                    stats.replies.load(Ordering::Relaxed),
                    stats.offers_received.load(Ordering::Relaxed),
                    stats.failures.load(Ordering::Relaxed),
                );
            }
        })
    };
    for t in tasks {
        let _ = t.await;
    }
    reporter.abort();
    let elapsed = if args.idle {
        start.elapsed()
    } else {
        Duration::from_secs(args.seconds)
    };
    let replies = stats.replies.load(Ordering::Relaxed);
    println!(
        "mode={} connections={} connected={} connect_errors={} swarms={} offers={} window={}",
        if args.idle { "idle" } else { "announce" },
        args.connections,
        stats.connected.load(Ordering::Relaxed),
        stats.connect_errors.load(Ordering::Relaxed),
        args.swarms,
        args.offers,
        args.window,
    );
    println!(
        "sent={} replies={} offers_received={} answers_sent={} answers_received={} failures={} seconds={:.1} announces_per_second={:.0}",
        stats.sent.load(Ordering::Relaxed),
        replies,
        stats.offers_received.load(Ordering::Relaxed),
        stats.answers_sent.load(Ordering::Relaxed),
        stats.answers_received.load(Ordering::Relaxed),
        stats.failures.load(Ordering::Relaxed),
        elapsed.as_secs_f64(),
        replies as f64 / elapsed.as_secs_f64(),
    );
}

type Ws =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

/// Announces with offers, keeping `window` in flight, until `until`.
async fn busy_connection(n: usize, ws: Ws, args: &Args, stats: &Stats, until: Instant) {
    let (mut tx, mut rx) = ws.split();
    let mut rng = fastrand::Rng::with_seed(n as u64);
    let mut in_flight = 0usize;
    let until = tokio::time::Instant::from_std(until);
    loop {
        while in_flight < args.window && tokio::time::Instant::now() < until {
            let text = announce(n, args, &mut rng);
            if tx.send(Message::text(text)).await.is_err() {
                return;
            }
            stats.sent.fetch_add(1, Ordering::Relaxed);
            in_flight += 1;
        }
        if in_flight == 0 {
            break;
        }
        let Ok(Some(Ok(message))) =
            tokio::time::timeout_at(until + Duration::from_secs(2), rx.next()).await
        else {
            break;
        };
        let Message::Text(text) = message else {
            continue;
        };
        // Classify without a full parse: the loader must stay cheap.
        if text.contains("\"failure reason\"") {
            stats.failures.fetch_add(1, Ordering::Relaxed);
            in_flight = in_flight.saturating_sub(1);
        } else if text.contains("\"interval\"") {
            if tokio::time::Instant::now() <= until {
                stats.replies.fetch_add(1, Ordering::Relaxed);
            }
            in_flight = in_flight.saturating_sub(1);
        } else if text.contains("\"offer\"") {
            stats.offers_received.fetch_add(1, Ordering::Relaxed);
            // Answer it, as a browser peer would.
            if let Some(reply) = answer_for(n, &text, &mut rng)
                && tx.send(Message::text(reply)).await.is_ok()
            {
                stats.answers_sent.fetch_add(1, Ordering::Relaxed);
            }
        } else if text.contains("\"answer\"") {
            stats.answers_received.fetch_add(1, Ordering::Relaxed);
        }
    }
    let _ = tx.close().await;
}

/// One announce without offers, then silence (reading what arrives).
async fn idle_connection(n: usize, ws: Ws, args: &Args, stats: &Stats) {
    let (mut tx, mut rx) = ws.split();
    let mut rng = fastrand::Rng::with_seed(n as u64);
    let quiet = Args {
        offers: 0,
        ..args.clone()
    };
    if tx
        .send(Message::text(announce(n, &quiet, &mut rng)))
        .await
        .is_err()
    {
        return;
    }
    stats.sent.fetch_add(1, Ordering::Relaxed);
    let hold = tokio::time::sleep(Duration::from_secs(args.hold_seconds));
    tokio::pin!(hold);
    loop {
        tokio::select! {
            _ = &mut hold => break,
            m = rx.next() => match m {
                Some(Ok(Message::Text(t))) if t.contains("\"interval\"") => {
                    stats.replies.fetch_add(1, Ordering::Relaxed);
                }
                Some(Ok(_)) => {}
                _ => break,
            },
        }
    }
    let _ = tx.close().await;
}

/// The answer a peer sends back for a relayed offer.
fn answer_for(n: usize, offer: &str, rng: &mut fastrand::Rng) -> Option<String> {
    let v: serde_json::Value = serde_json::from_str(offer).ok()?;
    Some(
        serde_json::json!({
            "action": "announce",
            "info_hash": v.get("info_hash")?,
            "peer_id": peer_id(n),
            "to_peer_id": v.get("peer_id")?,
            "offer_id": v.get("offer_id")?,
            "answer": {"type": "answer", "sdp": sdp(rng)},
        })
        .to_string(),
    )
}

fn peer_id(n: usize) -> String {
    format!("-WW0300-{n:012}")
}

fn announce(n: usize, args: &Args, rng: &mut fastrand::Rng) -> String {
    let swarm = n % args.swarms.max(1);
    let info_hash = format!("{:0>20}", format!("swarm{swarm}"));
    let offers: Vec<serde_json::Value> = (0..args.offers)
        .map(|_| {
            let offer_id: String = (0..20).map(|_| rng.alphanumeric()).collect();
            serde_json::json!({"offer": {"type": "offer", "sdp": sdp(rng)}, "offer_id": offer_id})
        })
        .collect();
    serde_json::json!({
        "action": "announce",
        "info_hash": info_hash,
        "peer_id": peer_id(n),
        "numwant": 50,
        "uploaded": 0,
        "downloaded": 0,
        "left": 7_938_044,
        "offers": offers,
    })
    .to_string()
}

/// A ~700-byte Chromium-style data-channel offer with its candidates inline.
fn sdp(rng: &mut fastrand::Rng) -> String {
    let ufrag: String = (0..4).map(|_| rng.alphanumeric()).collect();
    let pwd: String = (0..24).map(|_| rng.alphanumeric()).collect();
    let session = rng.u64(..);
    let fingerprint: Vec<String> = (0..32).map(|_| format!("{:02X}", rng.u8(..))).collect();
    let mut s = format!(
        "v=0\r\no=- {session} 2 IN IP4 127.0.0.1\r\ns=-\r\nt=0 0\r\na=group:BUNDLE 0\r\n\
         a=extmap-allow-mixed\r\na=msid-semantic: WMS\r\n\
         m=application 50000 UDP/DTLS/SCTP webrtc-datachannel\r\nc=IN IP4 198.51.100.7\r\n\
         a=ice-ufrag:{ufrag}\r\na=ice-pwd:{pwd}\r\na=ice-options:trickle\r\n\
         a=fingerprint:sha-256 {}\r\na=setup:actpass\r\na=mid:0\r\n\
         a=sctp-port:5000\r\na=max-message-size:262144\r\n",
        fingerprint.join(":")
    );
    let mut port = 50000;
    while s.len() < 700 {
        s.push_str(&format!(
            "a=candidate:{} 1 udp 2122260223 198.51.100.7 {port} typ host generation 0 network-id 1\r\n",
            rng.u32(..)
        ));
        port += 1;
    }
    s
}
