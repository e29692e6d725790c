//! A crowd behind one address (a venue's Wi-Fi, a carrier's NAT) gets into
//! the tracker; the overall cap on tracker sockets refuses the next one
//! with a 503 that says why, and keeps serving the ones it holds.
#![allow(clippy::unwrap_used)]

mod common;

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use common::{Ws, connect, recv, send, start};
use fanswarm_tracker::Limits;
use futures_util::future::join_all;
use serde_json::{Value, json};
use signal_server::state::AppState;
use swarm::InfoHash;
use tokio_tungstenite::tungstenite::Error as WsError;

/// A 20-character peer id, distinct for each `n`.
fn peer_id(n: usize) -> String {
    format!("-FS0001-{n:012}")
}

/// An announce to swarm `common::id(1)` asking for no peers.
fn announce(n: usize) -> Value {
    json!({
        "action": "announce",
        "info_hash": common::id(1),
        "peer_id": peer_id(n),
        "numwant": 0,
        "uploaded": 0,
        "downloaded": 0,
        "left": 1000,
        "event": "started",
        "offers": [],
    })
}

/// Announces on `ws` as fan `n` and checks the tracker answered.
async fn announced(ws: &mut Ws, n: usize) {
    send(ws, announce(n)).await;
    let reply = recv(ws).await;
    assert_eq!(reply["action"], "announce", "fan {n}: {reply}");
    assert!(reply.get("failure reason").is_none(), "fan {n}: {reply}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn five_hundred_fans_behind_one_address_all_get_answers() {
    // 500 sockets on each side in this one process.
    signal_server::descriptors::raise_limit();
    let (addr, state) = start(Limits::default()).await;
    let mut fans: Vec<Ws> = join_all((0..500).map(|_| connect(addr))).await;
    join_all(fans.iter_mut().enumerate().map(|(n, ws)| announced(ws, n))).await;
    assert_eq!(state.addresses.open_from(addr.ip()), 500);
    let swarm = state.hub().tracker.swarm_peers(&InfoHash([1; 20]));
    assert_eq!(swarm, (0, 500), "(seeders, leechers)");
}

#[tokio::test]
async fn past_max_connections_the_next_socket_gets_503_and_the_open_ones_stay_served() {
    let limits = Limits {
        max_connections: 5,
        ..Limits::default()
    };
    let (addr, state) = start(limits).await;
    let mut open = Vec::new();
    for _ in 0..5 {
        open.push(connect(addr).await);
    }
    for _ in 0..3 {
        refused_with_503(addr).await;
    }
    let metrics = state.metrics.render();
    assert!(
        metrics.contains(r#"fanswarm_tracker_failures_total{reason="server_full"} 3"#),
        "{metrics}"
    );
    // Those already in are served as before.
    for (n, ws) in open.iter_mut().enumerate() {
        announced(ws, n).await;
    }
    // A closed socket lets the next one in.
    let mut first = open.remove(0);
    first.close(None).await.unwrap();
    wait_for_open(&state, 4).await;
    let mut again = connect(addr).await;
    announced(&mut again, 9).await;
    refused_with_503(addr).await;
}

async fn refused_with_503(addr: SocketAddr) {
    let refused = tokio_tungstenite::connect_async(format!("ws://{addr}/announce")).await;
    let Err(WsError::Http(response)) = refused else {
        panic!("a socket past --max-connections was accepted");
    };
    assert_eq!(response.status(), 503);
    let body = String::from_utf8(response.body().clone().unwrap_or_default()).unwrap();
    assert!(body.contains("--max-connections"), "{body}");
}

/// Waits until the table counts exactly `n` tracker sockets (5 s at most).
async fn wait_for_open(state: &AppState, n: usize) {
    let deadline = Instant::now() + Duration::from_secs(5);
    while state.addresses.open() != n {
        assert!(Instant::now() < deadline, "open sockets never reached {n}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}
