//! Browser swarms under faults: a native peer that serves corrupt blocks,
//! the tracker restarted mid-swarm, and half the pages closed mid-download.
//! In each, every page that stays ends with exactly the file's bytes, read
//! back through its service worker: what its element plays.
//!
//! The three tests run one at a time (each starts a Chromium in a namespace
//! of its own; together they would starve a 2-core machine). The corrupt
//! peer and the closing pages run again with Firefox ESR pages, which must
//! ban, verify and recover the same way.

use std::time::{Duration, Instant};

use anyhow::Context;

use fanswarm_e2e::browser::{Browser, Engine, Page};
use fanswarm_e2e::native::{self, Behaviour};
use fanswarm_e2e::netns;
use fanswarm_e2e::player::{self, num};
use fanswarm_e2e::server::{self, ServerOptions, TestServer};

#[test]
fn a_corrupting_native_peer_is_banned_and_pages_finish_byte_identical() -> anyhow::Result<()> {
    netns::run(
        "a_corrupting_native_peer_is_banned_and_pages_finish_byte_identical",
        corrupting_peer(Engine::Chromium),
    )
}

#[test]
fn firefox_pages_ban_a_corrupting_native_peer_and_finish_byte_identical() -> anyhow::Result<()> {
    netns::run(
        "firefox_pages_ban_a_corrupting_native_peer_and_finish_byte_identical",
        corrupting_peer(Engine::Firefox),
    )
}

#[test]
fn pages_reconnect_after_a_tracker_restart_and_the_swarm_finishes() -> anyhow::Result<()> {
    netns::run(
        "pages_reconnect_after_a_tracker_restart_and_the_swarm_finishes",
        tracker_restart(),
    )
}

#[test]
fn half_the_pages_close_mid_download_and_the_rest_finish() -> anyhow::Result<()> {
    netns::run(
        "half_the_pages_close_mid_download_and_the_rest_finish",
        half_close(Engine::Chromium),
    )
}

#[test]
fn half_the_firefox_pages_close_mid_download_and_the_rest_finish() -> anyhow::Result<()> {
    netns::run(
        "half_the_firefox_pages_close_mid_download_and_the_rest_finish",
        half_close(Engine::Firefox),
    )
}

/// Two pages, no web seed; a liar is the only source at first, then an
/// honest seeder joins.
async fn corrupting_peer(engine: Engine) -> anyhow::Result<()> {
    let srv = server::start_with(ServerOptions {
        seconds: 40,
        web_seed: false,
    })
    .await?;
    let mut browser = Browser::launch_engine(engine).await?;
    let pages = open_and_play(&mut browser, &srv, 2).await?;
    let liar = native::seeder(&srv, Behaviour::Corrupting).await?;

    // With only the liar to ask, every page gets corrupt pieces, each from
    // one peer alone, and bans it; nothing can verify.
    let banned = player::wait_all(
        &mut browser,
        &pages,
        Duration::from_secs(45),
        "every page banning the liar",
        |s| num(s, "banned") >= 1.0,
    )
    .await?;
    for (i, s) in banned.iter().enumerate() {
        assert_eq!(
            num(s, "verifiedPieces"),
            0.0,
            "page {i} verified nothing from the liar: {s}"
        );
        assert!(
            num(s, "wasted") > 0.0,
            "page {i} threw corrupt bytes away: {s}"
        );
    }

    let honest = native::seeder(&srv, Behaviour::Honest).await?;
    let done = player::wait_all(
        &mut browser,
        &pages,
        Duration::from_secs(60),
        "every page done after the honest seeder joined",
        |s| s["done"] == true,
    )
    .await?;
    check_assembled(&mut browser, &pages, &srv).await?;
    let playing = player::wait_all(
        &mut browser,
        &pages,
        Duration::from_secs(20),
        "every page playing",
        |s| num(s, "currentTime") > 0.5,
    )
    .await?;
    println!(
        "liar uploaded {} B (all corrupt); pages:{}{}",
        liar.stats().uploaded,
        player::show(&done),
        player::show(&playing)
    );
    for (i, s) in done.iter().enumerate() {
        assert_eq!(num(s, "banned"), 1.0, "page {i} banned the liar only: {s}");
    }
    assert!(liar.stats().uploaded > 0, "the liar did serve blocks");
    liar.stop().await;
    honest.stop().await;
    Ok(())
}

/// A native seeder and two pages, no web seed; the server (tracker
/// included) restarts once they have all announced; a third page joins
/// afterwards and can only find the others if they announced again.
async fn tracker_restart() -> anyhow::Result<()> {
    let mut srv = server::start_with(ServerOptions {
        seconds: 120,
        web_seed: false,
    })
    .await?;
    let seeder = native::seeder(&srv, Behaviour::Honest).await?;
    let mut browser = Browser::launch().await?;
    let mut pages = open_and_play(&mut browser, &srv, 2).await?;
    wait_tracker_peers(&srv, 3, "the seeder and both pages announced").await?;

    let before = states(&mut browser, &pages).await?;
    srv.restart().await?;
    let restarted = Instant::now();
    wait_tracker_peers(&srv, 3, "the seeder and both pages announced again").await?;
    let reconnect_secs = restarted.elapsed().as_secs_f64();

    pages.extend(open_and_play(&mut browser, &srv, 1).await?);
    let done = player::wait_all(
        &mut browser,
        &pages,
        Duration::from_secs(60),
        "every page done, the late one included",
        |s| s["done"] == true,
    )
    .await?;
    check_assembled(&mut browser, &pages, &srv).await?;
    println!(
        "at the restart:{}\nall {} peers back on the new tracker {reconnect_secs:.1} s later; done:{}",
        player::show(&before),
        srv.tracker_peers(),
        player::show(&done)
    );
    let late = &done[2];
    // The same browser played the track before: the late page may start
    // from the start this browser kept (`fromCache`: the pieces that touch
    // its first 512 KiB or its last 128 KiB, so up to a piece more on each
    // side); everything else came from peers.
    let piece = ((srv.file.len() as f64 / num(late, "totalPieces")).ceil() as u64)
        .next_power_of_two() as f64;
    assert!(
        num(late, "fromCache") <= (640 * 1024) as f64 + 2.0 * piece,
        "only the track's start and end are kept between visits: {late}"
    );
    assert_eq!(
        num(late, "fromPeers") + num(late, "fromCache"),
        srv.file.len() as f64,
        "the late page got the track from peers it met through the new tracker: {late}"
    );
    seeder.stop().await;
    Ok(())
}

/// Four pages with the web seed; two close while everyone is still
/// downloading (the pages pace web-seed fetches to playback).
async fn half_close(engine: Engine) -> anyhow::Result<()> {
    let srv = server::start_with(ServerOptions {
        seconds: 40,
        web_seed: true,
    })
    .await?;
    let mut browser = Browser::launch_engine(engine).await?;
    let pages = open_and_play(&mut browser, &srv, 4).await?;
    let at_close = player::wait_all(
        &mut browser,
        &pages,
        Duration::from_secs(30),
        "every page past its first pieces and connected",
        |s| num(s, "verifiedPieces") >= 4.0 && num(s, "peers") >= 1.0,
    )
    .await?;
    let (leaving, staying) = pages.split_at(2);
    for page in leaving {
        browser.close(page).await?;
    }
    let closed = Instant::now();
    let done = player::wait_all(
        &mut browser,
        staying,
        Duration::from_secs(90),
        "the two remaining pages done",
        |s| s["done"] == true,
    )
    .await?;
    check_assembled(&mut browser, staying, &srv).await?;
    // The closed pages' connections ended with their tabs, and the
    // remaining pages noticed: each is left with the other alone.
    player::wait_all(
        &mut browser,
        staying,
        Duration::from_secs(30),
        "the remaining pages dropping the closed ones",
        |s| num(s, "peers") <= 1.0,
    )
    .await?;
    println!(
        "at the close:{}\nremaining pages done {:.1} s after it:{}",
        player::show(&at_close),
        closed.elapsed().as_secs_f64(),
        player::show(&done)
    );
    for (i, s) in at_close.iter().enumerate() {
        assert!(
            s["done"] == false,
            "page {i} was still downloading when half the pages closed: {s}"
        );
    }
    Ok(())
}

/// Opens `n` windows on the track's embed page and presses play in each.
async fn open_and_play(
    browser: &mut Browser,
    srv: &TestServer,
    n: usize,
) -> anyhow::Result<Vec<Page>> {
    let url = &srv.track.embed_url;
    let mut pages = Vec::with_capacity(n);
    for _ in 0..n {
        pages.push(browser.open_unloaded(url).await?);
    }
    for page in &pages {
        browser.wait_loaded(page, url).await?;
    }
    for page in &pages {
        player::press_play(browser, page).await?;
    }
    Ok(pages)
}

async fn states(browser: &mut Browser, pages: &[Page]) -> anyhow::Result<Vec<serde_json::Value>> {
    let mut out = Vec::with_capacity(pages.len());
    for page in pages {
        out.push(player::state(browser, page).await?);
    }
    Ok(out)
}

/// Every page's stream reads back as exactly the file.
async fn check_assembled(
    browser: &mut Browser,
    pages: &[Page],
    srv: &TestServer,
) -> anyhow::Result<()> {
    let expected = player::digest_of(&srv.file);
    for (i, page) in pages.iter().enumerate() {
        let got = player::assembled(browser, page)
            .await
            .with_context(|| format!("reading page {i}'s stream"))?;
        assert_eq!(got, expected, "page {i} assembled exactly the file");
    }
    Ok(())
}

async fn wait_tracker_peers(srv: &TestServer, n: usize, what: &str) -> anyhow::Result<()> {
    let limit = Duration::from_secs(30);
    let until = Instant::now() + limit;
    while srv.tracker_peers() < n {
        anyhow::ensure!(
            Instant::now() < until,
            "{what}: the tracker knows {} peers after {limit:?}, not {n}",
            srv.tracker_peers()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    Ok(())
}
