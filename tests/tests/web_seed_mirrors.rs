//! A torrent that lists several web seeds (issue 18: a CDN, an object store
//! beside the artist's server), one of them down and one serving another
//! version of the file:
//!
//! 1. this server's `/media/` (`--web-seed-mirror` puts ours first);
//! 2. a second fanswarm server publishing the same library: a good mirror;
//! 3. `http://localhost:1/`: nothing listens there (connection refused);
//! 4. a real HTTP server answering every Range request with the right
//!    length of wrong bytes (a stale copy on a CDN), CORS and all.
//!
//! A native peer (single-piece fetches, no player) and a Chromium page (the
//! player streaming through its worker, then seeking to fetch more) each
//! get the whole track right: the two good seeds both served it, the dead
//! one failed and was skipped, the wrong one was dropped after its first
//! bad piece and asked nothing more.
#![allow(clippy::unwrap_used)]

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use anyhow::{Context, ensure};
use axum::body::Body;
use axum::http::{HeaderMap, Method, Response, StatusCode, header};
use serde_json::Value;

use fanswarm_e2e::browser::{Browser, Engine};
use fanswarm_e2e::server::TestServer;
use fanswarm_e2e::{netns, player, server};
use fanswarm_peer::{NativePeer, PeerOptions};
use swarm::metainfo::Metainfo;

const BROWSER_TEST: &str = "a_page_spreads_over_the_web_seeds_and_skips_the_broken_ones";
const FIREFOX_TEST: &str = "a_firefox_page_spreads_over_the_web_seeds_and_skips_the_broken_ones";
const SECONDS: u32 = 40;
const DEAD: &str = "http://localhost:1/";

/// A mirror with wrong bytes: every Range request of `file` answered 206
/// with each byte flipped. Counts the requests it answered.
struct WrongMirror {
    url: String,
    requests: Arc<AtomicU64>,
}

async fn wrong_mirror(file: Vec<u8>) -> anyhow::Result<WrongMirror> {
    let listener = tokio::net::TcpListener::bind("0.0.0.0:0").await?;
    let url = format!("http://localhost:{}/", listener.local_addr()?.port());
    let requests = Arc::new(AtomicU64::new(0));
    let counted = requests.clone();
    let flipped: Arc<Vec<u8>> = Arc::new(file.iter().map(|b| b ^ 0x5a).collect());
    let app = axum::Router::new().fallback(move |method: Method, headers: HeaderMap| {
        let flipped = flipped.clone();
        let counted = counted.clone();
        async move {
            let cors = |b: axum::http::response::Builder| {
                b.header(header::ACCESS_CONTROL_ALLOW_ORIGIN, "*")
                    .header(header::ACCESS_CONTROL_ALLOW_HEADERS, "range")
                    .header(
                        header::ACCESS_CONTROL_EXPOSE_HEADERS,
                        "content-range, content-length",
                    )
            };
            if method == Method::OPTIONS {
                return cors(Response::builder().status(StatusCode::NO_CONTENT))
                    .body(Body::empty())
                    .unwrap();
            }
            counted.fetch_add(1, Ordering::Relaxed);
            let range = headers
                .get(header::RANGE)
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.strip_prefix("bytes="))
                .and_then(|v| v.split_once('-'))
                .and_then(|(a, b)| Some((a.parse::<usize>().ok()?, b.parse::<usize>().ok()?)));
            match range {
                Some((start, end)) if start <= end && end < flipped.len() => {
                    cors(Response::builder().status(StatusCode::PARTIAL_CONTENT))
                        .header(
                            header::CONTENT_RANGE,
                            format!("bytes {start}-{end}/{}", flipped.len()),
                        )
                        .body(Body::from(flipped[start..=end].to_vec()))
                        .unwrap()
                }
                _ => cors(Response::builder().status(StatusCode::OK))
                    .body(Body::from(flipped.to_vec()))
                    .unwrap(),
            }
        }
    });
    tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    Ok(WrongMirror { url, requests })
}

/// The good mirror (a server of the same library), the wrong one, and the
/// server whose torrent lists ours, the good one, the dead one and the
/// wrong one, in that order.
async fn servers() -> anyhow::Result<(TestServer, TestServer, WrongMirror)> {
    let good = server::start(SECONDS).await?;
    let wrong = wrong_mirror(good.file.clone()).await?;
    let mirrors = vec![
        format!("{}/media/", good.base),
        DEAD.to_owned(),
        wrong.url.clone(),
    ];
    let ours = server::start_mirrored(SECONDS, mirrors).await?;
    ensure!(
        ours.file == good.file,
        "both servers publish the same bytes"
    );
    let meta = Metainfo::from_bytes(&ours.track.torrent)?;
    ensure!(meta.url_list.len() == 4, "{:?}", meta.url_list);
    Ok((ours, good, wrong))
}

#[tokio::test]
async fn a_native_peer_spreads_over_the_web_seeds_and_skips_the_broken_ones() -> anyhow::Result<()>
{
    let (ours, good, wrong) = servers().await?;
    let meta = Metainfo::from_bytes(&ours.track.torrent)?;
    let dir = tempfile::tempdir()?;
    let target = dir.path().join("track.wav");
    let mut options = PeerOptions {
        trackers: vec![ours.tracker_url()],
        web_seed: true,
        ..PeerOptions::default()
    };
    // Alone, a native peer fetches one piece at a time after a random
    // wait of up to 1.5 s (room for neighbours to say they have it): a
    // shorter wait, so the test takes seconds, not a minute.
    options.engine.web_seed_idle_wait = Duration::from_millis(50);
    let peer = NativePeer::start(&meta, &target, options).await?;
    tokio::time::timeout(Duration::from_secs(90), peer.wait_done())
        .await
        .with_context(|| format!("not done: {:?}", peer.stats()))?;
    let stats = peer.stats();
    peer.stop().await;
    ensure!(
        std::fs::read(&target)? == ours.file,
        "the file is the track's"
    );
    check_seeds(
        &stats
            .web_seeds
            .iter()
            .map(|s| (s.url.clone(), s.bytes, s.failures, s.dropped.clone()))
            .collect::<Vec<_>>(),
        &ours,
        &good,
        &wrong,
    )?;
    println!(
        "native peer: ours sent {} B, the good mirror {} B, the wrong one {} requests; {:?}",
        ours.webseed_bytes(),
        good.webseed_bytes(),
        wrong.requests.load(Ordering::Relaxed),
        stats.web_seeds
    );
    Ok(())
}

/// What must hold whichever peer fetched: each good seed served part of
/// the track and together (with what the wrong one sent before it was
/// dropped) all of it; the dead one failed and delivered nothing; the
/// wrong one was dropped after at most one fetch per parallel slot.
fn check_seeds(
    seeds: &[(String, u64, u32, Option<String>)],
    ours: &TestServer,
    good: &TestServer,
    wrong: &WrongMirror,
) -> anyhow::Result<()> {
    let find = |prefix: &str| {
        seeds
            .iter()
            .find(|s| s.0.starts_with(prefix))
            .with_context(|| format!("no web seed at {prefix}: {seeds:?}"))
    };
    let mine = find(&format!("{}/media/", ours.base))?;
    let theirs = find(&format!("{}/media/", good.base))?;
    let dead = find(DEAD)?;
    let bad = find(&wrong.url)?;
    ensure!(
        mine.1 > 0 && theirs.1 > 0,
        "both good seeds served: {seeds:?}"
    );
    ensure!(
        ours.webseed_bytes() >= mine.1 && good.webseed_bytes() >= theirs.1,
        "the servers sent at least what the peer counted: ours {} good {}; {seeds:?}",
        ours.webseed_bytes(),
        good.webseed_bytes()
    );
    let length = ours.file.len() as u64;
    ensure!(
        mine.1 + theirs.1 + bad.1 >= length,
        "every byte came from some seed: {seeds:?}"
    );
    ensure!(
        dead.1 == 0 && dead.2 >= 1 && dead.3.is_none(),
        "the dead seed failed, was skipped, and is kept for later: {seeds:?}"
    );
    ensure!(
        bad.3
            .as_deref()
            .is_some_and(|r| r.contains("failed verification")),
        "the wrong seed was dropped: {seeds:?}"
    );
    let asked = wrong.requests.load(Ordering::Relaxed);
    ensure!(
        (1..=2).contains(&asked),
        "the wrong seed was asked {asked} times: dropped after its first bad piece"
    );
    Ok(())
}

#[test]
fn a_page_spreads_over_the_web_seeds_and_skips_the_broken_ones() -> anyhow::Result<()> {
    netns::run(BROWSER_TEST, page_spreads(Engine::Chromium))
}

/// The same in Firefox ESR: its fetch fails otherwise (a refused port, a
/// CORS preflight), and its element reads the stream otherwise.
#[test]
fn a_firefox_page_spreads_over_the_web_seeds_and_skips_the_broken_ones() -> anyhow::Result<()> {
    netns::run(FIREFOX_TEST, page_spreads(Engine::Firefox))
}

async fn page_spreads(engine: Engine) -> anyhow::Result<()> {
    let (ours, good, wrong) = servers().await?;
    let mut browser = Browser::launch_engine(engine).await?;
    let page = browser.open(&ours.track.embed_url).await?;
    player::press_play(&mut browser, &page).await?;
    let pages = std::slice::from_ref(&page);
    player::wait_all(
        &mut browser,
        pages,
        Duration::from_secs(30),
        "playing",
        |s| player::num(s, "currentTime") > 0.3,
    )
    .await?;
    // A listener fetches what its player needs next: seek about so
    // that more fetches go out (each goes to the next seed in turn),
    // until every seed has been tried or the track is complete.
    let mut tried = Vec::new();
    for (i, at) in [30.0, 12.0, 36.0, 20.0, 6.0, 26.0, 16.0, 38.0]
        .iter()
        .enumerate()
    {
        tried = web_seeds(&mut browser, &page).await?;
        let used = tried.iter().filter(|s| s.1 > 0 || s.2 > 0 || s.3.is_some());
        if used.count() == 4 || i > 0 && player::state(&mut browser, &page).await?["done"] == true {
            break;
        }
        browser
            .eval(
                &page,
                &format!("document.querySelector('fanswarm-player').audio.currentTime = {at}"),
            )
            .await?;
        player::wait_all(
            &mut browser,
            pages,
            Duration::from_secs(20),
            "playing on",
            |s| player::num(s, "currentTime") > at + 0.3,
        )
        .await?;
    }
    // The rest: play it through at a higher rate.
    browser
        .eval(
            &page,
            "document.querySelector('fanswarm-player').audio.playbackRate = 4",
        )
        .await?;
    let state = player::wait_all(&mut browser, pages, Duration::from_secs(60), "done", |s| {
        s["done"] == true
    })
    .await?;
    let state = &state[0];
    ensure!(
        player::assembled(&mut browser, &page).await? == player::digest_of(&ours.file),
        "the stream is the file"
    );
    let seeds = web_seeds(&mut browser, &page).await?;
    check_seeds(&seeds, &ours, &good, &wrong).with_context(|| {
        format!(
            "after seeking through {} seed states {tried:?}",
            tried.len()
        )
    })?;
    ensure!(
        player::num(state, "fromWebSeed") >= ours.file.len() as f64,
        "alone, everything came over HTTP: {state}"
    );
    println!(
        "{engine:?} page: ours sent {} B, the good mirror {} B, the wrong one {} requests; {seeds:?}",
        ours.webseed_bytes(),
        good.webseed_bytes(),
        wrong.requests.load(Ordering::Relaxed)
    );
    Ok(())
}

/// `track.webSeeds()` as (url, bytes, failures, dropped).
async fn web_seeds(
    browser: &mut Browser,
    page: &fanswarm_e2e::browser::Page,
) -> anyhow::Result<Vec<(String, u64, u32, Option<String>)>> {
    let text = browser
        .eval(
            page,
            "JSON.stringify(document.querySelector('fanswarm-player').track.webSeeds())",
        )
        .await?;
    let list: Vec<Value> = serde_json::from_str(text.as_str().context("webSeeds JSON")?)?;
    Ok(list
        .iter()
        .map(|s| {
            (
                s["url"].as_str().unwrap_or_default().to_owned(),
                s["bytes"].as_f64().unwrap_or(0.0) as u64,
                s["failures"].as_u64().unwrap_or(0) as u32,
                s["dropped"].as_str().map(str::to_owned),
            )
        })
        .collect())
}
