//! `GET /api/ice` through `app()`: what a player gets for its
//! `RTCPeerConnection`s, never cached, TURN credentials fresh per request.
#![allow(clippy::unwrap_used)]

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use axum::body::Body;
use axum::http::{Request, StatusCode, header};
use fanswarm_tracker::Limits;
use http_body_util::BodyExt;
use signal_server::catalog::Catalog;
use signal_server::ice::{IceConfig, turn_password};
use signal_server::state::{AppState, Paths, PlayerSettings};
use tower::ServiceExt;

async fn ice(config: IceConfig) -> (StatusCode, String, serde_json::Value) {
    let dir = tempfile::tempdir().unwrap();
    let state = AppState::with_player(
        Catalog::default(),
        Paths {
            media_dir: dir.path().to_path_buf(),
            web_dir: dir.path().to_path_buf(),
        },
        Limits::default(),
        PlayerSettings { ice: config },
    );
    let response = signal_server::app(state)
        .oneshot(Request::get("/api/ice").body(Body::empty()).unwrap())
        .await
        .unwrap();
    let status = response.status();
    let cache = response
        .headers()
        .get(header::CACHE_CONTROL)
        .map(|v| v.to_str().unwrap().to_owned())
        .unwrap_or_default();
    let body = response.into_body().collect().await.unwrap().to_bytes();
    (status, cache, serde_json::from_slice(&body).unwrap())
}

#[tokio::test]
async fn the_default_is_one_public_stun_server_and_no_turn() {
    let (status, cache, json) = ice(IceConfig::default()).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(cache, "no-store");
    assert_eq!(json["iceServers"].as_array().unwrap().len(), 1);
    assert_eq!(
        json["iceServers"][0]["urls"][0],
        signal_server::ice::DEFAULT_STUN
    );
    assert_eq!(json["iceTransportPolicy"], "all");
    assert!(json["ttlSeconds"].is_null());
}

#[tokio::test]
async fn turn_credentials_are_coturn_rest_credentials_that_expire() {
    let before = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let (_, cache, json) = ice(IceConfig {
        stun: Vec::new(),
        turn: vec![
            "turn:turn.example:3478?transport=udp".into(),
            "turns:turn.example:5349".into(),
        ],
        turn_secret: Some("shared".into()),
        turn_ttl: Duration::from_secs(3600),
        relay_only: true,
    })
    .await;
    assert_eq!(cache, "no-store", "credentials are never cached");
    let turn = &json["iceServers"][0];
    assert_eq!(turn["urls"].as_array().unwrap().len(), 2);
    let username = turn["username"].as_str().unwrap();
    let (expiry, label) = username.split_once(':').unwrap();
    let expiry: u64 = expiry.parse().unwrap();
    assert!(
        (before + 3600..=before + 3602).contains(&expiry),
        "{expiry} vs {before}"
    );
    assert_eq!(label, "fanswarm");
    assert_eq!(turn["credential"], turn_password("shared", username));
    assert_eq!(json["iceTransportPolicy"], "relay");
    assert_eq!(json["ttlSeconds"], 3600);
}
