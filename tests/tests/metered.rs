//! Metered links (issue 17, item 3), in one Chromium with real pages and
//! real WebRTC, no web seed (every byte a page gets comes from a peer):
//!
//! 1. A native seeder, then a Wi-Fi fan (W) who gets the track from it;
//!    the seeder leaves.
//! 2. A fan on an emulated cellular connection (C: DevTools
//!    `Network.emulateNetworkConditions`, `connectionType: "cellular4g"`)
//!    and a fan whose page says `?upload=off` (O) play the whole track,
//!    every byte from W, and upload nothing; their players say why
//!    ("Not sharing: cellular data." / "… turned off by this page."), their
//!    stats too (`sharingOff`), each in exactly one `warning`.
//! 3. W leaves; a new fan (D) connects to C and O, the only holders of the
//!    track, and gets nothing from either for seconds.
//! 4. C's page sets `upload-cap`, and C's connection becomes Wi-Fi: C
//!    shares again (`connection.onchange`), under its cap. D gets the
//!    whole track from C, no faster than the cap allows (measured by D
//!    over the window), and O still uploads nothing.
//! 5. A fan whose browser saves data (`Emulation.setDataSaverOverride`):
//!    "Not sharing: data saver on."
//! 6. An artist's page on another origin with `upload="off"
//!    upload-cap="5000"` on its `embed.js` element: the frame's player
//!    does not share; `upload="on"` set later reaches it by message.
//!
//! Desktop Chromium hides `navigator.connection.type` unless the
//! `NetInfoDownlinkMax` Blink feature is on (Android and ChromeOS show it);
//! the emulated connection type reaches it only while throttling is on, so
//! the test emulates a fast link (100 MB/s each way) of type cellular.

use std::time::{Duration, Instant};

use anyhow::{Context, ensure};
use serde_json::{Value, json};

use fanswarm_e2e::browser::{Browser, Page};
use fanswarm_e2e::native::{self, Behaviour};
use fanswarm_e2e::netns;
use fanswarm_e2e::player::{self, num};
use fanswarm_e2e::server::{self, ServerOptions};
use fanswarm_e2e::web;

const TEST: &str = "metered_fans_download_but_do_not_upload_and_a_cap_holds";

/// C's cap once it is back on Wi-Fi, bytes per second.
const CAP: f64 = 100_000.0;

#[test]
fn metered_fans_download_but_do_not_upload_and_a_cap_holds() -> anyhow::Result<()> {
    netns::run(TEST, run())
}

async fn run() -> anyhow::Result<()> {
    // 10 s of audio, ~441 KB: about 4 s at the cap.
    let srv = server::start_with(ServerOptions {
        seconds: 10,
        web_seed: false,
    })
    .await?;
    let length = srv.file.len() as f64;
    let digest = player::digest_of(&srv.file);
    let started = Instant::now();
    let seeder = native::seeder(&srv, Behaviour::Honest).await?;
    let mut browser =
        Browser::launch_with(&["--enable-blink-features=NetInfoDownlinkMax".to_owned()]).await?;
    let embed = srv.track.embed_url.clone();

    // 1. W gets the track from the native seeder, which then leaves.
    let w = open(&mut browser, &embed, None).await?;
    player::press_play(&mut browser, &w).await?;
    player::wait_all(
        &mut browser,
        std::slice::from_ref(&w),
        Duration::from_secs(30),
        "W done",
        |s| s["done"] == true,
    )
    .await?;
    seeder.stop().await;

    // 2. C (cellular) and O (upload=off) get it all from W. (Not from the
    // browser's cache: W kept the track's start there for a next visit.)
    forget_kept(&mut browser, &w).await?;
    let c = open(&mut browser, &embed, Some("cellular4g")).await?;
    let link = browser
        .eval(&c, "navigator.connection?.type ?? 'no type'")
        .await?;
    ensure!(
        link == "cellular",
        "the emulated connection did not reach the page: navigator.connection.type is {link}"
    );
    let o = open(&mut browser, &format!("{embed}?upload=off"), None).await?;
    for page in [&c, &o] {
        player::press_play(&mut browser, page).await?;
    }
    let leeches = [c, o];
    let states = player::wait_all(
        &mut browser,
        &leeches,
        Duration::from_secs(30),
        "C and O done and playing",
        |s| s["done"] == true && num(s, "currentTime") > 1.0,
    )
    .await?;
    let [c, o] = leeches;
    for (name, page, s, why, line) in [
        (
            "C",
            &c,
            &states[0],
            "cellular",
            "Not sharing: cellular data.",
        ),
        (
            "O",
            &o,
            &states[1],
            "page",
            "Not sharing: turned off by this page.",
        ),
    ] {
        ensure!(
            player::assembled(&mut browser, page).await? == digest,
            "{name} plays exactly the file"
        );
        ensure!(
            num(s, "fromPeers") == length && num(s, "fromWebSeed") == 0.0,
            "{name} got every byte from a fan: {s}"
        );
        ensure!(
            num(s, "uploaded") == 0.0 && s["sharing"] == false && s["sharingOff"] == why,
            "{name} uploads nothing, and says why ({why}): {s}"
        );
        let told = told(&mut browser, page).await?;
        ensure!(
            told["line"] == line && told["role"] == "status",
            "{name}'s player says {line:?} to eyes and screen readers: {told}"
        );
        let warnings = told["warnings"].as_array().context("warnings")?;
        let not_sharing = warnings
            .iter()
            .filter(|w| w.as_str().is_some_and(|w| w.starts_with("not sharing")))
            .count();
        ensure!(
            not_sharing == 1,
            "{name} said it once, in one warning: {told}"
        );
    }
    let downloaded_at = started.elapsed().as_secs_f64();

    // 3. Only C and O hold the track now: D gets nothing from them.
    forget_kept(&mut browser, &c).await?;
    browser.close(&w).await?;
    let d = open(&mut browser, &embed, None).await?;
    player::press_play(&mut browser, &d).await?;
    player::wait_all(
        &mut browser,
        std::slice::from_ref(&d),
        Duration::from_secs(20),
        "D connected to C and O",
        |s| num(s, "peers") >= 2.0,
    )
    .await?;
    tokio::time::sleep(Duration::from_secs(3)).await;
    let mut states = Vec::new();
    for page in [&c, &o, &d] {
        states.push(player::state(&mut browser, page).await?);
    }
    ensure!(
        num(&states[2], "fromPeers") == 0.0
            && num(&states[0], "uploaded") == 0.0
            && num(&states[1], "uploaded") == 0.0,
        "3 s connected to two fans that do not upload, D got nothing:{}",
        player::show(&states)
    );

    // 4. C is capped, then back on Wi-Fi: it shares again, under the cap.
    browser
        .eval(
            &c,
            &format!(
                "document.querySelector('fanswarm-player').setAttribute('upload-cap', '{CAP}')"
            ),
        )
        .await?;
    let switched = Instant::now();
    set_link(&mut browser, &c, "wifi").await?;
    let mut samples: Vec<(f64, f64)> = Vec::new();
    let until = switched + Duration::from_secs(30);
    let finished = loop {
        let s = player::state(&mut browser, &d).await?;
        samples.push((switched.elapsed().as_secs_f64(), num(&s, "fromPeers")));
        if s["done"] == true {
            break s;
        }
        ensure!(
            Instant::now() < until,
            "D done from C within 30 s: {s}; samples {samples:?}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    let c_state = player::state(&mut browser, &c).await?;
    let o_state = player::state(&mut browser, &o).await?;
    let c_told = told(&mut browser, &c).await?;
    ensure!(
        player::assembled(&mut browser, &d).await? == digest,
        "D plays exactly the file"
    );
    ensure!(
        num(&finished, "fromPeers") == length,
        "D got every byte from C: {finished}"
    );
    ensure!(
        c_state["sharing"] == true
            && c_state["sharingOff"].is_null()
            && num(&c_state, "uploadCap") == CAP
            && num(&c_state, "uploaded") >= length,
        "C shares again on Wi-Fi, capped: {c_state}"
    );
    ensure!(
        c_told["line"] == "Sharing up to 100.0 KB/s.",
        "C's player says it shares, capped: {c_told}"
    );
    ensure!(
        num(&o_state, "uploaded") == 0.0,
        "O never uploaded: {o_state}"
    );
    // The cap: over every window from the switch, at most a second's
    // credit plus the rate (the engine's bucket), and a piece in flight;
    // sampled from D's side, so a sample may lag: measured generously.
    let slack = 2.0 * 32_768.0;
    for &(secs, got) in &samples {
        let bound = CAP * (secs + 1.0) + slack;
        ensure!(
            got <= bound,
            "{got:.0} B from C {secs:.2} s after it went back to Wi-Fi, over the cap's \
             {bound:.0} B; samples {samples:?}"
        );
    }
    // 5. A data saver (DevTools `Emulation.setDataSaverOverride`): the
    // player says so before anything is shared.
    let v = browser.open_unloaded("about:blank").await?;
    browser.wait_loaded(&v, "about:blank").await?;
    browser
        .call(
            Some(&v),
            "Emulation.setDataSaverOverride",
            json!({ "dataSaverEnabled": true }),
        )
        .await?;
    browser.navigate(&v, &embed).await?;
    browser.wait_loaded(&v, &embed).await?;
    let saving = browser
        .became_true(
            &v,
            "(() => { const p = document.querySelector('fanswarm-player');
                return p.stats().sharingOff === 'saveData' && p.stats().uploaded === 0
                    && p.shadowRoot.querySelector('[data-ui=sharing]').textContent
                        === 'Not sharing: data saver on.'; })()",
            Duration::from_secs(10),
        )
        .await;
    let v_told = told(&mut browser, &v).await?;
    ensure!(
        saving,
        "with a data saver on, the player says it does not share: {v_told}"
    );

    // 6. An artist's page on another origin sets the policy on an
    // `embed.js` element: it reaches the frame's player in its URL, and a
    // later change by message.
    let snippet = srv.track.embed_script_html.replace(
        "<fanswarm-player src",
        "<fanswarm-player upload=\"off\" upload-cap=\"5000\" src",
    );
    let site = web::foreign_site(vec![(
        "/artist.html",
        format!("<!doctype html><html><body>{snippet}</body></html>"),
    )])
    .await?;
    let artist = browser.open(&format!("{}/artist.html", site.base)).await?;
    let framed = "(() => { const p = document.querySelector('fanswarm-player');
        const frame = p.shadowRoot.querySelector('iframe');
        return JSON.stringify({ src: frame?.src ?? null, stats: p.stats() }); })()";
    let off_in_frame = browser
        .became_true(
            &artist,
            "(() => { const p = document.querySelector('fanswarm-player');
                return p.stats().sharingOff === 'page'
                    && p.shadowRoot.querySelector('iframe').src.includes('?upload=off&upload-cap=5000'); })()",
            Duration::from_secs(15),
        )
        .await;
    let seen = browser.eval(&artist, framed).await?;
    ensure!(
        off_in_frame,
        "upload=\"off\" on a foreign page's element reaches the frame's player: {seen}"
    );
    browser
        .eval(
            &artist,
            "document.querySelector('fanswarm-player').setAttribute('upload', 'on')",
        )
        .await?;
    let on_in_frame = browser
        .became_true(
            &artist,
            "(() => { const s = document.querySelector('fanswarm-player').stats();
                return s.sharing === true && s.sharingOff === null && s.uploadCap === 5000; })()",
            Duration::from_secs(10),
        )
        .await;
    let seen = browser.eval(&artist, framed).await?;
    ensure!(
        on_in_frame,
        "upload=\"on\" set later reaches the frame's player, its cap kept: {seen}"
    );

    let (took, _) = samples.last().copied().context("samples")?;
    let rate = length / took;
    println!(
        "track {length} B; C and O had it all from W {downloaded_at:.1} s after the start, \
         uploading 0 B; D got 0 B from them in 3 s; capped at {CAP} B/s, C sent D the track \
         in {took:.2} s ({rate:.0} B/s); test {:.1} s",
        started.elapsed().as_secs_f64()
    );
    ensure!(
        took >= (length - CAP - slack) / CAP,
        "the whole track came faster than the cap allows: {took:.2} s"
    );
    Ok(())
}

/// Opens `url` in a window of its own, on an emulated connection of
/// `link` type from before its first byte, recording every `warning` the
/// page's player fires (in `__warnings`).
async fn open(browser: &mut Browser, url: &str, link: Option<&str>) -> anyhow::Result<Page> {
    let page = browser.open_unloaded("about:blank").await?;
    browser.wait_loaded(&page, "about:blank").await?;
    if let Some(link) = link {
        set_link(browser, &page, link).await?;
    }
    // Capturing on window: the element's events do not bubble.
    let source = "window.__warnings = []; \
        addEventListener('warning', (e) => __warnings.push(String(e.detail)), true);";
    browser.call(Some(&page), "Page.enable", json!({})).await?;
    browser
        .call(
            Some(&page),
            "Page.addScriptToEvaluateOnNewDocument",
            json!({ "source": source }),
        )
        .await?;
    browser.navigate(&page, url).await?;
    browser.wait_loaded(&page, url).await?;
    Ok(page)
}

/// Empties the origin's Cache API storage, where a player keeps the start
/// of a track it played for the next visit: a later page of this browser
/// must get its bytes from fans.
async fn forget_kept(browser: &mut Browser, page: &Page) -> anyhow::Result<()> {
    browser
        .eval(
            page,
            "caches.keys().then((keys) => Promise.all(keys.map((k) => caches.delete(k))))\
             .then(() => caches.keys()).then((keys) => keys.length)",
        )
        .await?;
    Ok(())
}

/// Emulates a fast link of `kind` ("cellular4g", "wifi", …): the type
/// reaches `navigator.connection` (and fires its `change`) only while
/// throttling is on, so it throttles to 100 MB/s.
async fn set_link(browser: &mut Browser, page: &Page, kind: &str) -> anyhow::Result<()> {
    browser
        .call(Some(page), "Network.enable", json!({}))
        .await?;
    browser
        .call(
            Some(page),
            "Network.emulateNetworkConditions",
            json!({
                "offline": false,
                "latency": 0,
                "downloadThroughput": 100_000_000,
                "uploadThroughput": 100_000_000,
                "connectionType": kind,
            }),
        )
        .await?;
    Ok(())
}

/// The player's sharing line and its role, and the warnings it fired.
async fn told(browser: &mut Browser, page: &Page) -> anyhow::Result<Value> {
    let text = browser
        .eval(
            page,
            "(() => {
            const line = document.querySelector('fanswarm-player').shadowRoot
                .querySelector('[data-ui=sharing]');
            return JSON.stringify({ line: line?.textContent ?? null,
                role: line?.getAttribute('role') ?? null, warnings: window.__warnings ?? [] });
        })()",
        )
        .await?;
    Ok(serde_json::from_str(text.as_str().context("told JSON")?)?)
}
