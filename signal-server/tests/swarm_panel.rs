//! `/api/swarm` over a real tracker socket: fans per published track, and
//! today's fan-to-fan bytes from the `uploaded` totals fans announce.
#![allow(clippy::unwrap_used)]

mod common;

use axum::body::{Body, Bytes};
use axum::http::Request;
use common::*;
use fanswarm_tracker::Limits;
use http_body_util::BodyExt;
use serde_json::Value;
use signal_server::catalog::{Catalog, Track};
use signal_server::state::{AppState, Paths};
use swarm::InfoHash;
use tower::ServiceExt;

const LENGTH: u64 = 1_000_000;

/// A server publishing one (bodiless) track whose hash is `common::id(1)`.
async fn start_with_track() -> (std::net::SocketAddr, AppState) {
    let track = Track {
        name: "song.mp3".into(),
        info_hash: InfoHash([1; 20]),
        length: LENGTH,
        magnet: String::new(),
        torrent_url: String::new(),
        media_url: String::new(),
        embed_url: String::new(),
        embed_html: String::new(),
        embed_script_html: String::new(),
        torrent: Bytes::from_static(b"d"),
        tags: Default::default(),
        path: String::new(),
        stamp: None,
        files: None,
    };
    let dir = std::env::temp_dir();
    let state = AppState::new(
        Catalog::new(vec![track]),
        Paths {
            media_dir: dir.clone(),
            web_dir: dir,
        },
        Limits::default(),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(signal_server::serve(listener, state.clone()));
    (addr, state)
}

async fn report(state: &AppState) -> Value {
    let res = signal_server::app(state.clone())
        .oneshot(Request::get("/api/swarm").body(Body::empty()).unwrap())
        .await
        .unwrap();
    serde_json::from_slice(&res.into_body().collect().await.unwrap().to_bytes()).unwrap()
}

fn announce_uploaded(hash: u8, peer: u8, uploaded: u64) -> Value {
    let mut a = announce(hash, peer, &[]);
    a["uploaded"] = uploaded.into();
    a["event"] = Value::Null;
    a
}

#[tokio::test]
async fn fans_and_their_reported_uploads_reach_the_panel() {
    let (addr, state) = start_with_track().await;
    let mut a = connect(addr).await;
    let mut b = connect(addr).await;
    send(&mut a, announce_uploaded(1, b'A', 1_000)).await;
    recv(&mut a).await;
    send(&mut b, announce_uploaded(1, b'B', 0)).await;
    recv(&mut b).await;
    let r = report(&state).await;
    assert_eq!(r["tracks"][0]["fans"], 2);
    assert_eq!(r["today"]["fan_bytes"], 0, "first reports are baselines");

    send(&mut a, announce_uploaded(1, b'A', 301_000)).await;
    recv(&mut a).await;
    // A track this server does not publish counts for nothing.
    send(&mut b, announce_uploaded(9, b'B', 0)).await;
    recv(&mut b).await;
    send(&mut b, announce_uploaded(9, b'B', 777_777)).await;
    recv(&mut b).await;
    let r = report(&state).await;
    assert_eq!(r["today"]["fan_bytes"], 300_000);
    assert_eq!(r["today"]["webseed_bytes"], 0);

    drop(a);
    // The tracker forgets a closed socket's peers.
    for _ in 0..50 {
        if report(&state).await["tracks"][0]["fans"] == 1 {
            return;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    panic!("a closed fan still counted: {}", report(&state).await);
}
