//! Chromium and Firefox ESR in one swarm, both ways: a page of one engine
//! plays a track from the web seed to the end, then a page of the other
//! engine joins by a bare magnet (info hash and tracker only) and gets the
//! metadata over ut_metadata and every byte over WebRTC from it.
//!
//! Two servers (two tracks, two origins) run both directions at once:
//! Chromium seeds track A to Firefox while Firefox seeds track B to
//! Chromium, so the test costs one track's playing time, not two.

use std::time::{Duration, Instant};

use anyhow::Context;
use serde_json::Value;
use swarm::magnet::Magnet;

use fanswarm_e2e::browser::{Browser, Engine, Page};
use fanswarm_e2e::netns;
use fanswarm_e2e::player::{self, num};
use fanswarm_e2e::server::{self, TestServer};

const TEST: &str = "chromium_and_firefox_seed_each_other_a_bare_magnet_both_ways";

#[test]
fn chromium_and_firefox_seed_each_other_a_bare_magnet_both_ways() -> anyhow::Result<()> {
    netns::run(TEST, run())
}

/// One direction: a seeding page in one browser, a joining page in the other.
struct Direction {
    srv: TestServer,
    seeder: Page,
    joiner: Option<Page>,
}

async fn run() -> anyhow::Result<()> {
    // 12 and 14 s of audio (~0.5 and ~0.6 MB): two different tracks. A
    // page alone fetches from the web seed at about the pace it plays.
    let a = server::start(12).await?;
    let b = server::start(14).await?;
    let mut chromium = Browser::launch_engine(Engine::Chromium).await?;
    let mut firefox = Browser::launch_engine(Engine::Firefox).await?;
    let started = Instant::now();

    let seeder = chromium.open(&a.track.embed_url).await?;
    player::press_play(&mut chromium, &seeder).await?;
    let mut to_firefox = Direction {
        srv: a,
        seeder,
        joiner: None,
    };
    let seeder = firefox.open(&b.track.embed_url).await?;
    player::press_play(&mut firefox, &seeder).await?;
    let mut to_chromium = Direction {
        srv: b,
        seeder,
        joiner: None,
    };

    let limit = Duration::from_secs(90);
    let seeded_chromium = wait(
        &mut chromium,
        &to_firefox.seeder,
        limit,
        "the Chromium seeder done",
    )
    .await?;
    let seeded_firefox = wait(
        &mut firefox,
        &to_chromium.seeder,
        limit,
        "the Firefox seeder done",
    )
    .await?;
    let seeded_secs = started.elapsed().as_secs_f64();

    // Each joins the other engine's swarm by a bare magnet, both at once.
    let joined = Instant::now();
    to_firefox.joiner = Some(join_by_bare_magnet(&mut firefox, &to_firefox.srv).await?);
    to_chromium.joiner = Some(join_by_bare_magnet(&mut chromium, &to_chromium.srv).await?);
    let limit = Duration::from_secs(60);
    let (f, c) = (to_firefox.joiner.as_ref(), to_chromium.joiner.as_ref());
    let f = f.context("Firefox joiner")?;
    let c = c.context("Chromium joiner")?;
    let in_firefox = wait(&mut firefox, f, limit, "the Firefox joiner done").await?;
    let firefox_secs = joined.elapsed().as_secs_f64();
    let in_chromium = wait(&mut chromium, c, limit, "the Chromium joiner done").await?;
    let chromium_secs = joined.elapsed().as_secs_f64();

    let chromium_uploaded = num(
        &player::state(&mut chromium, &to_firefox.seeder).await?,
        "uploaded",
    );
    let firefox_uploaded = num(
        &player::state(&mut firefox, &to_chromium.seeder).await?,
        "uploaded",
    );
    println!(
        "Firefox joiner log: {}",
        player::log(&mut firefox, f).await?
    );
    println!(
        "Chromium joiner log: {}",
        player::log(&mut chromium, c).await?
    );
    println!(
        "seeders done {seeded_secs:.1} s after the start (Chromium {}, Firefox {}); \
         Firefox joiner done {firefox_secs:.1} s after joining, Chromium joiner {chromium_secs:.1} s; \
         Chromium seeder uploaded {chromium_uploaded:.0} B, Firefox seeder {firefox_uploaded:.0} B",
        seeded_chromium["fromWebSeed"], seeded_firefox["fromWebSeed"]
    );

    for (what, browser, page, srv, stats, uploaded) in [
        (
            "Chromium → Firefox",
            &mut firefox,
            f,
            &to_firefox.srv,
            &in_firefox,
            chromium_uploaded,
        ),
        (
            "Firefox → Chromium",
            &mut chromium,
            c,
            &to_chromium.srv,
            &in_chromium,
            firefox_uploaded,
        ),
    ] {
        let length = srv.file.len() as f64;
        assert_eq!(
            player::assembled(browser, page).await?,
            player::digest_of(&srv.file),
            "{what}: the joiner assembled exactly the file"
        );
        assert_eq!(
            num(stats, "fromPeers"),
            length,
            "{what}: every byte from the peer: {stats}"
        );
        assert_eq!(
            num(stats, "fromWebSeed"),
            0.0,
            "{what}: a bare magnet has no web seed: {stats}"
        );
        assert!(
            uploaded >= length,
            "{what}: the seeder served the whole track ({uploaded:.0} B)"
        );
        player::wait_all(
            browser,
            std::slice::from_ref(page),
            Duration::from_secs(20),
            "the joiner playing",
            |s| num(s, "currentTime") > 0.5,
        )
        .await
        .with_context(|| format!("{what}: the joiner plays what it got"))?;
    }
    Ok(())
}

/// Opens `srv`'s embed page in `browser` and presses play on a magnet of
/// its track with no web seed and no `xs`: only its info hash and tracker.
async fn join_by_bare_magnet(browser: &mut Browser, srv: &TestServer) -> anyhow::Result<Page> {
    let mut magnet = Magnet::parse(&srv.track.magnet)?;
    magnet.web_seeds.clear();
    magnet.exact_sources.clear();
    anyhow::ensure!(
        !magnet.trackers.is_empty(),
        "the server's magnet names its tracker"
    );
    let page = browser.open(&srv.track.embed_url).await?;
    browser
        .eval(
            &page,
            &format!(
                "(async () => {{
                    await customElements.whenDefined('fanswarm-player');
                    const p = document.querySelector('fanswarm-player');
                    p.removeAttribute('src'); p.removeAttribute('torrent');
                    p.setAttribute('magnet', {:?});
                }})()",
                magnet.to_string()
            ),
        )
        .await?;
    player::press_play(browser, &page).await?;
    Ok(page)
}

/// Polls one page until its track is done; its state then.
async fn wait(
    browser: &mut Browser,
    page: &Page,
    limit: Duration,
    what: &str,
) -> anyhow::Result<Value> {
    let done = player::wait_all(browser, std::slice::from_ref(page), limit, what, |s| {
        s["done"] == true
    })
    .await?;
    Ok(done.into_iter().next().unwrap_or_default())
}
