//! Fans behind NATs that no hole punching gets through: the server hands
//! out a TURN server (`--turn`, `--turn-secret`) with time-limited
//! credentials, and two browser pages restricted to relayed connections
//! (`--relay-only`) swarm through a real coturn.
//!
//! The credentials live 12 s here, and the second fan arrives after the
//! first fan's first credentials have expired: the first fan must have
//! asked `/api/ice` again, or coturn refuses its relay and the second fan
//! gets nothing from it.

use std::time::Duration;

use anyhow::{Context, bail, ensure};

use fanswarm_e2e::browser::{Browser, Page};
use fanswarm_e2e::turn::TurnServer;
use fanswarm_e2e::{netns, server};
use signal_server::ice::IceConfig;

const TEST: &str = "two_relay_only_fans_swarm_through_turn_with_renewed_credentials";
const NATIVE: &str = "native_peers_take_their_turn_server_from_the_tracker_and_relay";
const TTL: Duration = Duration::from_secs(12);

#[test]
fn two_relay_only_fans_swarm_through_turn_with_renewed_credentials() -> anyhow::Result<()> {
    netns::run(TEST, run())
}

async fn run() -> anyhow::Result<()> {
    let turn = TurnServer::start().await?;
    let srv = server::start_with_ice(
        40,
        IceConfig {
            stun: Vec::new(),
            turn: vec![turn.url.clone()],
            turn_secret: Some(turn.secret.clone()),
            turn_ttl: TTL,
            relay_only: true,
        },
    )
    .await?;
    let embed = format!("{}/embed/{}", srv.base, srv.track.info_hash.to_hex());
    let mut browser = Browser::launch().await?;

    let first = browser.open(&embed).await?;
    let ice = browser
        .eval(
            &first,
            "fetch('/api/ice').then((r) => r.json()).then(JSON.stringify)",
        )
        .await?;
    let ice: serde_json::Value = serde_json::from_str(ice.as_str().context("ice JSON")?)?;
    ensure!(
        ice["iceTransportPolicy"] == "relay" && ice["iceServers"][0]["username"].is_string(),
        "/api/ice hands out the relay policy and TURN credentials: {ice}"
    );
    play(&mut browser, &first).await?;
    wait_for(
        &mut browser,
        &first,
        "the first fan plays",
        "document.querySelector('fanswarm-player').stats().verifiedPieces > 4",
        Duration::from_secs(60),
    )
    .await?;
    // Past the first credentials' life: the fan must be on renewed ones.
    tokio::time::sleep(TTL + Duration::from_secs(3)).await;

    let second = browser.open(&embed).await?;
    play(&mut browser, &second).await?;
    let got = wait_for(
        &mut browser,
        &second,
        "the second fan gets bytes from the first through the TURN relay",
        "document.querySelector('fanswarm-player').stats().fromPeers > 0",
        Duration::from_secs(60),
    )
    .await;
    let log = turn.log();
    let allocations = log.matches("ALLOCATE processed, success").count();
    if let Err(e) = got {
        bail!("{e}\nTURN log:\n{log}");
    }
    ensure!(
        allocations >= 2,
        "both fans allocated relays on the TURN server ({allocations}):\n{log}"
    );
    let stats = browser
        .eval(
            &second,
            "JSON.stringify(document.querySelector('fanswarm-player').stats())",
        )
        .await?;
    println!("relay only, through coturn: {allocations} allocations; second fan {stats}");
    Ok(())
}

/// The native peer asks the tracker's server for its ICE servers too
/// (`ice_from_tracker`): a relay-only seeder and getter, no web seed, move
/// the whole track through coturn.
#[test]
fn native_peers_take_their_turn_server_from_the_tracker_and_relay() -> anyhow::Result<()> {
    netns::run(NATIVE, native())
}

async fn native() -> anyhow::Result<()> {
    use fanswarm_peer::{NativePeer, PeerOptions, RtcConfig};
    let turn = TurnServer::start().await?;
    let srv = server::start_with_ice(
        6,
        IceConfig {
            stun: Vec::new(),
            turn: vec![turn.url.clone()],
            turn_secret: Some(turn.secret.clone()),
            turn_ttl: TTL,
            relay_only: true,
        },
    )
    .await?;
    let options = || PeerOptions {
        trackers: vec![srv.tracker_url()],
        rtc: RtcConfig {
            bind: netns::ADDRESS,
            gather_timeout: Duration::from_secs(3),
            ..RtcConfig::default()
        },
        web_seed: false,
        ice_from_tracker: true,
        ..PeerOptions::default()
    };
    let meta = swarm::metainfo::Metainfo::from_bytes(&srv.track.torrent)?;
    let seeder = NativePeer::start(&meta, &srv.track_path, options()).await?;
    let dir = tempfile::tempdir()?;
    let getter = NativePeer::start(&meta, &dir.path().join("copy.wav"), options()).await?;
    if tokio::time::timeout(Duration::from_secs(60), getter.wait_done())
        .await
        .is_err()
    {
        bail!(
            "the getter did not finish through the relay: {:?}\nTURN log:\n{}",
            getter.stats(),
            turn.log()
        );
    }
    let stats = getter.stats();
    let log = turn.log();
    let allocations = log.matches("ALLOCATE processed, success").count();
    ensure!(
        stats.from_peers >= srv.file.len() as u64 && allocations >= 2,
        "every byte from the seeder, through relays on the TURN server ({allocations}): {stats:?}"
    );
    ensure!(std::fs::read(dir.path().join("copy.wav"))? == srv.file);
    println!(
        "native, relay only: {} B through coturn, {allocations} allocations",
        stats.from_peers
    );
    getter.stop().await;
    seeder.stop().await;
    Ok(())
}

async fn play(browser: &mut Browser, page: &Page) -> anyhow::Result<()> {
    wait_for(
        browser,
        page,
        "the player is ready",
        "!!customElements.get('fanswarm-player')",
        Duration::from_secs(30),
    )
    .await?;
    browser
        .eval(
            page,
            "document.querySelector('fanswarm-player').play(); true",
        )
        .await?;
    Ok(())
}

async fn wait_for(
    browser: &mut Browser,
    page: &Page,
    what: &str,
    test: &str,
    limit: Duration,
) -> anyhow::Result<()> {
    if browser.became_true(page, test, limit).await {
        return Ok(());
    }
    let stats = browser
        .eval(
            page,
            "JSON.stringify(document.querySelector('fanswarm-player')?.stats())",
        )
        .await
        .unwrap_or_default();
    bail!("{what}: not within {limit:?} ({stats})")
}
