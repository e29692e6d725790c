//! Load generator for the tracker: many WebSocket connections on 127.0.0.1
//! sending realistic announces (5 offers of ~700-byte SDP each, like the
//! webtorrent client), bounded in connections and duration.
//!
//! ```text
//! cargo run --release --example loadgen -- --target 127.0.0.1:8080 \
//!     --connections 200 --swarms 20 --seconds 20          # announces/s
//! cargo run --release --example loadgen -- --connections 2000 --swarms 200 \
//!     --interval-ms 2000 --seconds 20 --json                # latency below saturation
//! cargo run --release --example loadgen -- --idle --connections 10000 \
//!     --hold-seconds 20                                    # idle sockets
//! ```
//!
//! It measures each announce's latency, from sending it to its reply
//! (`latency_us` percentiles at the end; `--json` prints the totals as one
//! JSON line too). `--answer-replies` is for trackers that reply to an
//! answer with an announce response as well (aquatic_ws does, fanswarm's
//! does not): replies are then matched to what was sent in order, so only
//! announces count as announces.
//!
//! `--target` may be repeated (tracker instances sharing one Redis):
//! connection n (in swarm n mod `--swarms`) goes to target
//! (n div `--swarms`) mod count, so each swarm's peers are dealt over the
//! instances as a balancer that knows nothing of swarms would spread them
//! (n mod count would put every swarm on one instance whenever the count
//! divides `--swarms`).
//!
//! Only loopback targets are accepted, and it always stops by itself. Every
//! connection comes from one address, so start the server with
//! `--max-connections-per-address 0` (no cap) or a cap above `--connections`
//! (the default, 64, answers the rest with 429).
#![allow(clippy::unwrap_used)]

use std::collections::VecDeque;
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
    /// Tracker address; must be a loopback address. Repeatable: connections
    /// are dealt round-robin over the instances given.
    #[arg(
        long = "target",
        default_value = "127.0.0.1:8080",
        value_delimiter = ','
    )]
    targets: Vec<SocketAddr>,
    /// WebSocket connections to open (at most 60,000).
    #[arg(long, default_value_t = 200)]
    connections: usize,
    /// Swarms the connections are spread over.
    #[arg(long, default_value_t = 20)]
    swarms: usize,
    /// Offers per announce.
    #[arg(long, default_value_t = 5)]
    offers: usize,
    /// Announces each connection keeps in flight (closed loop: as fast as
    /// the tracker answers).
    #[arg(long, default_value_t = 2)]
    window: usize,
    /// Open loop instead: each connection sends one announce every this many
    /// milliseconds (start times spread over one interval), answered or not,
    /// so latency is measured below saturation, not as queueing.
    #[arg(long)]
    interval_ms: Option<u64>,
    /// Seconds to send announces for (at most 600).
    #[arg(long, default_value_t = 20)]
    seconds: u64,
    /// Idle mode: one announce per connection, then hold the sockets open.
    #[arg(long)]
    idle: bool,
    /// Idle mode: seconds to hold the connections (at most 600).
    #[arg(long, default_value_t = 20)]
    hold_seconds: u64,
    /// The tracker replies to every answer with an announce response too
    /// (aquatic_ws); without it an answer is expected to get no reply.
    #[arg(long)]
    answer_replies: bool,
    /// Also print the totals and latency percentiles as one JSON line.
    #[arg(long)]
    json: bool,
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
    answer_replies: AtomicU64,
    failures: AtomicU64,
}

#[tokio::main]
async fn main() {
    let args = Args::parse();
    assert!(
        args.targets.iter().all(|t| t.ip().is_loopback()),
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
            let target = (n / args.swarms.max(1)) % args.targets.len();
            let url = format!("ws://{}/announce", args.targets[target]);
            let ws = match tokio_tungstenite::connect_async(url).await {
                Ok((ws, _)) => ws,
                Err(_) => {
                    stats.connect_errors.fetch_add(1, Ordering::Relaxed);
                    return Vec::new();
                }
            };
            drop(permit);
            stats.connected.fetch_add(1, Ordering::Relaxed);
            if args.idle {
                idle_connection(n, ws, &args, &stats).await;
                Vec::new()
            } else {
                busy_connection(n, ws, &args, &stats, send_until).await
            }
        }));
    }
    let reporter = {
        let stats = stats.clone();
        let idle = args.idle;
        let connections = args.connections as u64;
        tokio::spawn(async move {
            let mut all_announced = false;
            let mut ticks = 0u64;
            loop {
                tokio::time::sleep(Duration::from_millis(250)).await;
                let replies = stats.replies.load(Ordering::Relaxed);
                if idle && !all_announced && replies >= connections {
                    // A driver samples the server's memory now.
                    all_announced = true;
                    println!("announced={replies}");
                }
                ticks += 1;
                if !ticks.is_multiple_of(20) {
                    continue;
                }
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
    let mut latencies: Vec<u32> = Vec::new();
    for t in tasks {
        if let Ok(mut l) = t.await {
            latencies.append(&mut l);
        }
    }
    latencies.sort_unstable();
    reporter.abort();
    let elapsed = if args.idle {
        start.elapsed()
    } else {
        Duration::from_secs(args.seconds)
    };
    let replies = stats.replies.load(Ordering::Relaxed);
    println!(
        "mode={} connections={} connected={} connect_errors={} swarms={} offers={} window={} interval_ms={}",
        if args.idle { "idle" } else { "announce" },
        args.connections,
        stats.connected.load(Ordering::Relaxed),
        stats.connect_errors.load(Ordering::Relaxed),
        args.swarms,
        args.offers,
        args.window,
        args.interval_ms.unwrap_or(0),
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
    let pct = |p: f64| -> u32 {
        if latencies.is_empty() {
            return 0;
        }
        let rank = ((p / 100.0) * latencies.len() as f64).ceil() as usize;
        latencies[rank.clamp(1, latencies.len()) - 1]
    };
    let (p50, p90, p99, p999) = (pct(50.0), pct(90.0), pct(99.0), pct(99.9));
    let max = latencies.last().copied().unwrap_or(0);
    println!(
        "latency_us samples={} p50={p50} p90={p90} p99={p99} p999={p999} max={max} answer_replies={}",
        latencies.len(),
        stats.answer_replies.load(Ordering::Relaxed),
    );
    if args.json {
        let count = |c: &AtomicU64| c.load(Ordering::Relaxed);
        println!(
            "{}",
            serde_json::json!({
                "mode": if args.idle { "idle" } else { "announce" },
                "connections": args.connections,
                "connected": count(&stats.connected),
                "connect_errors": count(&stats.connect_errors),
                "swarms": args.swarms,
                "offers": args.offers,
                "window": args.window,
                "interval_ms": args.interval_ms,
                "seconds": elapsed.as_secs_f64(),
                "sent": count(&stats.sent),
                "replies": replies,
                "offers_received": count(&stats.offers_received),
                "answers_sent": count(&stats.answers_sent),
                "answers_received": count(&stats.answers_received),
                "answer_replies": count(&stats.answer_replies),
                "failures": count(&stats.failures),
                "announces_per_second": replies as f64 / elapsed.as_secs_f64(),
                "latency_us": {"samples": latencies.len(), "p50": p50, "p90": p90,
                    "p99": p99, "p999": p999, "max": max},
            })
        );
    }
}

type Ws =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

/// What a reply in order answers (with `--answer-replies`, answers too).
enum Sent {
    /// An announce with offers, sent at this instant.
    Announce(tokio::time::Instant),
    /// An answer to a relayed offer.
    Answer,
}

/// Announces with offers, keeping `window` in flight, until `until`;
/// returns the latency of each announce answered before `until`, in µs.
async fn busy_connection(n: usize, ws: Ws, args: &Args, stats: &Stats, until: Instant) -> Vec<u32> {
    let (mut tx, mut rx) = ws.split();
    let mut rng = fastrand::Rng::with_seed(n as u64);
    let mut in_flight = 0usize;
    // Replies come in the order their requests were sent (one socket, one swarm).
    let mut awaiting: VecDeque<Sent> = VecDeque::new();
    let mut latencies = Vec::new();
    let until = tokio::time::Instant::from_std(until);
    let pace = args.interval_ms.map(Duration::from_millis);
    let mut next_send =
        tokio::time::Instant::now() + pace.map_or(Duration::ZERO, |every| every.mul_f64(rng.f64()));
    let drain_until = until + Duration::from_secs(2);
    loop {
        loop {
            let now = tokio::time::Instant::now();
            let due = match pace {
                None => in_flight < args.window,
                Some(_) => now >= next_send,
            };
            if !due || now >= until {
                break;
            }
            if let Some(every) = pace {
                next_send += every;
            }
            let text = announce(n, args, &mut rng);
            let sent_at = tokio::time::Instant::now();
            if tx.send(Message::text(text)).await.is_err() {
                return latencies;
            }
            awaiting.push_back(Sent::Announce(sent_at));
            stats.sent.fetch_add(1, Ordering::Relaxed);
            in_flight += 1;
        }
        let sending = pace.is_some() && tokio::time::Instant::now() < until;
        if in_flight == 0 && !sending {
            break;
        }
        let wake = if sending {
            next_send.min(drain_until)
        } else {
            drain_until
        };
        let message = match tokio::time::timeout_at(wake, rx.next()).await {
            Ok(Some(Ok(message))) => message,
            Err(_) if sending => continue, // time for the next paced announce
            _ => break,
        };
        let Message::Text(text) = message else {
            continue;
        };
        // Classify without a full parse: the loader must stay cheap.
        if text.contains("\"failure reason\"") {
            stats.failures.fetch_add(1, Ordering::Relaxed);
            // aquatic_ws follows a refused answer with its announce
            // response; fanswarm's refusal replaces the reply.
            if !args.answer_replies {
                awaiting.pop_front();
                in_flight = in_flight.saturating_sub(1);
            }
        } else if text.contains("\"interval\"") {
            match awaiting.pop_front() {
                Some(Sent::Answer) => {
                    stats.answer_replies.fetch_add(1, Ordering::Relaxed);
                }
                sent => {
                    let now = tokio::time::Instant::now();
                    if now <= until {
                        stats.replies.fetch_add(1, Ordering::Relaxed);
                        if let Some(Sent::Announce(at)) = sent {
                            let micros = (now - at).as_micros();
                            latencies.push(u32::try_from(micros).unwrap_or(u32::MAX));
                        }
                    }
                    in_flight = in_flight.saturating_sub(1);
                }
            }
        } else if text.contains("\"offer\"") {
            stats.offers_received.fetch_add(1, Ordering::Relaxed);
            // Answer it, as a browser peer would.
            if let Some(reply) = answer_for(n, &text, &mut rng)
                && tx.send(Message::text(reply)).await.is_ok()
            {
                stats.answers_sent.fetch_add(1, Ordering::Relaxed);
                if args.answer_replies {
                    awaiting.push_back(Sent::Answer);
                }
            }
        } else if text.contains("\"answer\"") {
            stats.answers_received.fetch_add(1, Ordering::Relaxed);
        }
    }
    let _ = tx.close().await;
    latencies
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
