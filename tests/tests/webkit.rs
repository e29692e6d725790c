//! The player in WebKit (Debian's WebKitGTK MiniBrowser, which has service
//! workers and WebAssembly but no `RTCPeerConnection`): it plays the track
//! from the web seed through its service worker, says once what this
//! browser lacks — one `warning`, `sharing: false` in its stats, the status
//! line — and is otherwise quiet: no tracker connection, no peer events, no
//! page errors. Then the demo artist page plays there too.

use std::time::{Duration, Instant};

use anyhow::Context;

use fanswarm_e2e::browser::{Browser, Engine};
use fanswarm_e2e::netns;
use fanswarm_e2e::player::{self, num};
use fanswarm_e2e::server;

const TEST: &str = "webkit_without_webrtc_plays_from_the_web_seed_and_says_so_once";

#[test]
fn webkit_without_webrtc_plays_from_the_web_seed_and_says_so_once() -> anyhow::Result<()> {
    netns::run(TEST, run())
}

async fn run() -> anyhow::Result<()> {
    // 8 s of audio: a handful of pieces, played to the end in seconds.
    let srv = server::start(8).await?;
    let mut browser = Browser::launch_engine(Engine::WebKit).await?;
    let started = Instant::now();
    let page = browser.open(&srv.track.embed_url).await?;
    let webrtc = browser.eval(&page, "typeof RTCPeerConnection").await?;
    anyhow::ensure!(
        webrtc == "undefined",
        "this test is about a browser without WebRTC, and this WebKit has RTCPeerConnection \
         ({webrtc}): give the no-WebRTC path another browser"
    );
    // The embed page's own player joined as the page loaded, before a
    // test could listen. In its place, the same element with `join="play"`
    // and a listener for its `warning`s in place before it makes a track;
    // and anything the page throws or rejects without handling from now on.
    let torrent = format!("/t/{}.torrent", srv.track.info_hash.to_hex());
    browser
        .eval(
            &page,
            &format!(
                "(async () => {{
                window.__pageErrors = []; window.__warnings = [];
                addEventListener('error', (e) => __pageErrors.push(String(e.message)));
                addEventListener('unhandledrejection', (e) => __pageErrors.push(String(e.reason)));
                await customElements.whenDefined('fanswarm-player');
                document.querySelector('fanswarm-player').remove();
                const p = document.createElement('fanswarm-player');
                p.setAttribute('join', 'play');
                p.setAttribute('src', {torrent:?});
                p.addEventListener('warning', (e) => __warnings.push(String(e.detail)));
                document.body.append(p);
                await p.ready;
            }})()"
            ),
        )
        .await?;
    player::press_play(&mut browser, &page).await?;
    let pages = [page];
    let done = player::wait_all(
        &mut browser,
        &pages,
        Duration::from_secs(60),
        "the track done and playing",
        |s| s["done"] == true && num(s, "currentTime") > 1.0,
    )
    .await?;
    let [page] = pages;
    let secs = started.elapsed().as_secs_f64();
    let s = &done[0];
    let assembled = player::assembled(&mut browser, &page).await?;
    let told = browser
        .eval(
            &page,
            "(() => { const p = document.querySelector('fanswarm-player');
                return { lacks: p.track.lacks, status: p.shadowRoot.querySelector('[data-ui=status]').textContent,
                         controlled: !!navigator.serviceWorker.controller, src: p.audio.currentSrc,
                         events: window.__log, warnings: window.__warnings,
                         errors: window.__pageErrors }; })()",
        )
        .await?;
    println!("WebKit page: done and playing {secs:.1} s after opening; state {s}; told {told}");

    assert_eq!(
        assembled,
        player::digest_of(&srv.file),
        "the page's stream is exactly the file"
    );
    assert_eq!(
        told["controlled"], true,
        "the service worker streams: {told}"
    );
    assert!(
        told["src"]
            .as_str()
            .is_some_and(|u| u.contains("/fanswarm/stream/")),
        "the element plays the worker's stream: {told}"
    );
    assert_eq!(
        s["sharing"], false,
        "the stats say this browser cannot share: {s}"
    );
    assert_eq!(
        told["lacks"],
        serde_json::json!(["WebRTC data channels"]),
        "the track names what the browser lacks: {told}"
    );
    let status = told["status"].as_str().context("status text")?;
    assert!(
        status.starts_with("This browser lacks WebRTC data channels")
            && status.contains("cannot share"),
        "the status line says it: {status:?}"
    );
    let events: Vec<&str> = told["events"]
        .as_array()
        .context("event log")?
        .iter()
        .filter_map(|e| e.as_str())
        .collect();
    let warnings = told["warnings"].as_array().context("warnings")?;
    assert_eq!(
        warnings.len(),
        1,
        "exactly one warning, and it is the one about WebRTC: {warnings:?}"
    );
    assert!(
        warnings[0]
            .as_str()
            .is_some_and(|w| w.contains("lacks WebRTC data channels")),
        "the warning says what is lacking: {warnings:?}"
    );
    assert!(
        events
            .iter()
            .all(|e| e.starts_with("warning") || e.starts_with("done")),
        "no tracker, peer or connection events: {events:?}"
    );
    assert_eq!(
        told["errors"],
        serde_json::json!([]),
        "the page threw nothing"
    );
    assert_eq!(
        num(s, "fromWebSeed"),
        srv.file.len() as f64,
        "all from the web seed: {s}"
    );
    assert_eq!(num(s, "fromPeers"), 0.0, "nothing from peers: {s}");
    assert_eq!(
        srv.tracker_peers(),
        0,
        "the page never announced to the tracker"
    );

    // The demo artist page, where a fan first saw WebKit stall at 0 s:
    // the same tab, the page's own player, pressed as a fan would, on what
    // is as near a first visit as the origin allows (the start of the track
    // this browser kept is dropped; a write still under way may land).
    browser
        .eval(
            &page,
            "caches.keys().then((keys) => Promise.all(keys.map((k) => caches.delete(k))))",
        )
        .await?;
    let demo = format!("{}/", srv.base);
    browser.navigate(&page, &demo).await?;
    browser.wait_loaded(&page, &demo).await?;
    browser
        .eval(
            &page,
            "(async () => {
                await customElements.whenDefined('fanswarm-player');
                for (let i = 0; i < 200 && !document.querySelector('fanswarm-player'); i++)
                    await new Promise((r) => setTimeout(r, 50));
                await document.querySelector('fanswarm-player').play();
            })()",
        )
        .await?;
    let played = Instant::now();
    let playing = browser
        .became_true(
            &page,
            "(() => { const p = document.querySelector('fanswarm-player');
                return p.audio.currentTime > 1 && p.stats().sharing === false; })()",
            Duration::from_secs(30),
        )
        .await;
    let demo_state = browser
        .eval(
            &page,
            "(() => { const p = document.querySelector('fanswarm-player'); const a = p.audio;
                return { currentTime: a.currentTime, readyState: a.readyState, stats: p.stats(),
                         status: p.shadowRoot.querySelector('[data-ui=status]').textContent }; })()",
        )
        .await?;
    println!(
        "demo page: playing {:.1} s after the press: {demo_state}",
        played.elapsed().as_secs_f64()
    );
    assert!(playing, "the demo page plays in WebKit: {demo_state}");
    assert!(
        demo_state["status"]
            .as_str()
            .is_some_and(|t| t.starts_with("This browser lacks WebRTC data channels")),
        "the demo page's player says it cannot share: {demo_state}"
    );
    Ok(())
}
