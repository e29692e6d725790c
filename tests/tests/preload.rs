//! The player lets its element load before play (`preload`, once it reads
//! through the stream worker and the stream's first piece is here) from
//! what the page has. With `prefetch=none`, never from the artist's
//! server: a first visit's page opened and not played has nothing to load
//! and fetches nothing from the web seed; a returning fan's page has the kept track's start decoded
//! before the press (`readyState` >= 3), with nothing from the server, so
//! the press plays at once. Prints press → `playing` on the return visit
//! (a figure, not asserted: BENCHMARKS.md's part b measures it beside
//! plain `<audio>`). By default (`prefetch=head`) a page alone fetches
//! the start before play, and only the start.
#![allow(clippy::unwrap_used)]

use std::time::{Duration, Instant};

use anyhow::{Context, ensure};

use fanswarm_e2e::browser::{Browser, Engine, Page};
use fanswarm_e2e::player::{kept_pieces_js, num, press_play, wait_all};
use fanswarm_e2e::{netns, server};

const TEST: &str = "the_player_preloads_what_the_page_has_and_nothing_from_the_server";
const FIREFOX: &str = "the_player_preloads_what_the_page_has_in_firefox";
const SECONDS: u32 = 6;

const PREFETCH: &str = "with_prefetch_head_a_page_fetches_the_start_before_play_and_no_more";
const PREFETCH_FIREFOX: &str = "with_prefetch_head_a_firefox_page_fetches_the_start_before_play";

#[test]
fn the_player_preloads_what_the_page_has_and_nothing_from_the_server() -> anyhow::Result<()> {
    netns::run(TEST, run(Engine::Chromium))
}

#[test]
fn the_player_preloads_what_the_page_has_in_firefox() -> anyhow::Result<()> {
    netns::run(FIREFOX, run(Engine::Firefox))
}

/// The player's default, `prefetch=head` (the start's bytes spent on a
/// page that may not play rather than a fan kept waiting): joined on load
/// and alone in the swarm, the page fetches the start from the web seed
/// before any press, the element decodes it, and nothing past the start
/// is fetched while nobody plays; the press then plays.
#[test]
fn with_prefetch_head_a_page_fetches_the_start_before_play_and_no_more() -> anyhow::Result<()> {
    netns::run(PREFETCH, prefetch_head(Engine::Chromium))
}

#[test]
fn with_prefetch_head_a_firefox_page_fetches_the_start_before_play() -> anyhow::Result<()> {
    netns::run(PREFETCH_FIREFOX, prefetch_head(Engine::Firefox))
}

/// The page's player: its element's `readyState`, `preload`, whether its
/// source is the worker's stream, and whether the track is made.
const ELEMENT: &str = "(() => { const p = document.querySelector('fanswarm-player'); \
    return JSON.stringify({ made: !!p?.track, readyState: p?.audio.readyState ?? -1, \
      preload: p?.audio.preload ?? null, streamed: !!p?.audio.src.includes('/fanswarm/stream/') }); })()";

/// The element has its start decoded before any press: it reads the
/// worker's stream, was let load, and can play (`readyState` >= 3).
const PRELOADED: &str = "(() => { const p = document.querySelector('fanswarm-player'); \
    return !!p?.audio.src.includes('/fanswarm/stream/') && p.audio.preload === 'auto' \
      && p.audio.readyState >= 3 && p.audio.paused; })()";

/// Presses play on an element that had its start before the press; its
/// press → `playing`, ms.
async fn press_and_hear(browser: &mut Browser, page: &Page) -> anyhow::Result<f64> {
    press_play(browser, page).await?;
    let playing = "typeof window.__firstAudio === 'number'";
    ensure!(
        browser
            .became_true(page, playing, Duration::from_secs(10))
            .await,
        "the element with its start plays when pressed: {}",
        element(browser, page).await?
    );
    let first_audio = browser.eval(page, "window.__firstAudio").await?;
    Ok(first_audio.as_f64().unwrap_or(-1.0))
}

async fn element(browser: &mut Browser, page: &Page) -> anyhow::Result<serde_json::Value> {
    let text = browser.eval(page, ELEMENT).await?;
    Ok(serde_json::from_str(
        text.as_str().context("element JSON")?,
    )?)
}

async fn run(engine: Engine) -> anyhow::Result<()> {
    let started = Instant::now();
    let srv = server::start(SECONDS).await?;
    let url = format!(
        "{}/embed/{}?prefetch=none",
        srv.base,
        srv.track.info_hash.to_hex()
    );
    let mut browser = Browser::launch_engine(engine).await?;
    let page = browser.open_in_profile(&url).await?;

    // First visit, not played: joined and the element pointed at the
    // stream; with nothing here it is not let load, and nothing is asked
    // of the web seed.
    let pointed = "(() => { const p = document.querySelector('fanswarm-player'); \
        return !!p?.track && !!p.audio.src.includes('/fanswarm/stream/'); })()";
    ensure!(
        browser
            .became_true(&page, pointed, Duration::from_secs(20))
            .await,
        "the element reads the worker's stream: {}",
        element(&mut browser, &page).await?
    );
    // Joining and the tracker's answer take milliseconds here; a second
    // is ample for anything the page would fetch unasked.
    tokio::time::sleep(Duration::from_secs(1)).await;
    let cold = element(&mut browser, &page).await?;
    ensure!(
        srv.webseed_bytes() == 0,
        "a page not played fetched {} B from the web seed: {cold}",
        srv.webseed_bytes()
    );
    ensure!(
        cold["readyState"].as_u64() == Some(0) && cold["preload"] == "none",
        "nothing to load on a first visit: {cold}"
    );

    // Played to the end: every piece verified and kept.
    press_play(&mut browser, &page).await?;
    let done = wait_all(
        &mut browser,
        std::slice::from_ref(&page),
        Duration::from_secs(60),
        "the whole track",
        |s| s["done"] == true,
    )
    .await?;
    let pieces = num(&done[0], "totalPieces") as u64;
    let kept = kept_pieces_js("''");
    let until = Instant::now() + Duration::from_secs(20);
    while browser.eval(&page, &kept).await?.as_u64().unwrap_or(0) < pieces {
        ensure!(Instant::now() < until, "{pieces} pieces not kept in 20 s");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let served = srv.webseed_bytes();
    ensure!(served > 0, "the first play came from the web seed");

    // The fan comes back: before any press the element has the start
    // decoded from the kept pieces, and the server sent nothing more.
    browser.navigate(&page, &url).await?;
    browser.wait_loaded(&page, &url).await?;
    let loaded = Instant::now();
    ensure!(
        browser
            .became_true(&page, PRELOADED, Duration::from_secs(20))
            .await,
        "the returning page's element had its start before play: {}",
        element(&mut browser, &page).await?
    );
    let preloaded = loaded.elapsed();
    ensure!(
        srv.webseed_bytes() == served,
        "preloading took {} B from the web seed",
        srv.webseed_bytes() - served
    );
    let first_audio = press_and_hear(&mut browser, &page).await?;
    println!(
        "{}: not played: 0 B from the web seed; return visit: element ready {:.0} ms after load, \
         press → playing {:.1} ms, 0 B from the web seed; {:.1} s",
        engine.name(),
        preloaded.as_secs_f64() * 1000.0,
        first_audio,
        started.elapsed().as_secs_f64()
    );
    Ok(())
}

async fn prefetch_head(engine: Engine) -> anyhow::Result<()> {
    // Long enough that the start is a small part of it.
    let srv = server::start(40).await?;
    let length = srv.file.len() as u64;
    let url = format!("{}/embed/{}", srv.base, srv.track.info_hash.to_hex());
    let mut browser = Browser::launch_engine(engine).await?;
    let page = browser.open_in_profile(&url).await?;
    ensure!(
        browser
            .became_true(&page, PRELOADED, Duration::from_secs(20))
            .await,
        "the element had the start decoded before play: {}; {} B from the web seed",
        element(&mut browser, &page).await?,
        srv.webseed_bytes()
    );
    let before = srv.webseed_bytes();
    // The start (256 KiB: the pieces holding it); not the track.
    ensure!(
        (128 * 1024..=272 * 1024).contains(&before) && before < length,
        "the start from the web seed before play: {before} B of {length}"
    );
    // Nobody plays: nothing more, however long the page stays open.
    tokio::time::sleep(Duration::from_secs(2)).await;
    ensure!(
        srv.webseed_bytes() == before,
        "{} B more from the web seed while nobody played",
        srv.webseed_bytes() - before
    );
    let first_audio = press_and_hear(&mut browser, &page).await?;
    println!(
        "{}: prefetch=head: {before} B from the web seed before play (track {length} B); \
         press → playing {:.1} ms",
        engine.name(),
        first_audio
    );
    Ok(())
}
