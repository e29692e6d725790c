//! Seeking before the track is complete: a fan alone in the swarm starts
//! a 2-minute track, then drags the player's seek slider to 1:30 — a part
//! no peer has and the engine has not fetched (its read-ahead is 40 s).
//! The player plays on from there (the element's new range request waits
//! for pieces the engine takes from the web seed, verified), the bytes the
//! stream serves there are the file's, and the rest of the track is still
//! not downloaded. Then Arrow Left on the focused slider seeks 5 s back,
//! again into a part nobody has, and it plays on from there too.
//!
//! Prints seek-to-playing (from the slider's input to the playhead moving
//! past the new position) beside a plain `<audio>` of the web seed URL
//! seeking to the same time in the same page.
//!
//! [`seek_before_completion`] takes the browser it drives: it runs in
//! Chromium and in Firefox ESR (there the key is a `KeyboardEvent` the
//! page dispatches: keys are pressed over Chromium's DevTools only).
#![allow(clippy::unwrap_used)]

use std::time::Duration;

use anyhow::{Context, ensure};
use serde_json::Value;

use fanswarm_e2e::browser::{Browser, Engine, Page};
use fanswarm_e2e::player;
use fanswarm_e2e::server::TestServer;
use fanswarm_e2e::{netns, server};

const TEST: &str = "seek_before_completion_plays_from_the_web_seed";
const FIREFOX: &str = "seek_before_completion_plays_from_the_web_seed_in_firefox";

/// Track length, and where the slider is dragged to.
const SECONDS: u32 = 120;
const TARGET: f64 = 90.0;

/// The synthesized WAV: 44-byte header, 22.05 kHz mono 16-bit.
const HEADER: f64 = 44.0;
const BYTES_PER_SECOND: f64 = 44_100.0;

#[test]
fn seek_before_completion_plays_from_the_web_seed() -> anyhow::Result<()> {
    netns::run(TEST, async {
        let srv = server::start(SECONDS).await?;
        let mut browser = Browser::launch().await?;
        let figures = seek_before_completion(&mut browser, &srv).await?;
        println!(
            "seek to playing, chromium: fanswarm player {:.0} ms, plain <audio> {:.0} ms ({:.2}x)",
            figures.player_ms,
            figures.plain_ms,
            figures.player_ms / figures.plain_ms.max(1.0)
        );
        Ok(())
    })
}

#[test]
fn seek_before_completion_plays_from_the_web_seed_in_firefox() -> anyhow::Result<()> {
    netns::run(FIREFOX, async {
        let srv = server::start(SECONDS).await?;
        let mut browser = Browser::launch_engine(Engine::Firefox).await?;
        let figures = seek_before_completion(&mut browser, &srv).await?;
        println!(
            "seek to playing, firefox: fanswarm player {:.0} ms, plain <audio> {:.0} ms ({:.2}x)",
            figures.player_ms,
            figures.plain_ms,
            figures.player_ms / figures.plain_ms.max(1.0)
        );
        Ok(())
    })
}

/// What one run measured.
pub struct SeekFigures {
    /// From the slider's input to the playhead past the new position.
    pub player_ms: f64,
    /// The same for a plain `<audio src=/media/…>` seeking to that time.
    pub plain_ms: f64,
}

/// The checks, in whichever browser `browser` is.
pub async fn seek_before_completion(
    browser: &mut Browser,
    srv: &TestServer,
) -> anyhow::Result<SeekFigures> {
    let page = browser.open(&srv.track.embed_url).await?;
    player::press_play(browser, &page).await?;
    let pages = std::slice::from_ref(&page);
    player::wait_all(browser, pages, Duration::from_secs(30), "playing", |s| {
        player::num(s, "currentTime") > 0.3
    })
    .await?;

    // Nobody has 1:30 yet: not this page, and there is no other peer.
    let piece_length = browser
        .eval(
            &page,
            "document.querySelector('fanswarm-player').track.pieceLength",
        )
        .await?
        .as_f64()
        .context("pieceLength")?;
    let piece_at = |seconds: f64| ((HEADER + seconds * BYTES_PER_SECOND) / piece_length) as usize;
    let before = pieces(browser, &page).await?;
    ensure!(
        before.get(piece_at(TARGET)).map(String::as_str) == Some("missing"),
        "the piece at {TARGET} s is missing before the seek: {before:?}"
    );

    let player_ms = seek_with_slider(browser, &page, TARGET).await?;
    ensure!(
        player_ms > 0.0,
        "the player did not play on from {TARGET} s"
    );
    let state = player::wait_all(browser, pages, Duration::from_secs(20), "playing on", |s| {
        player::num(s, "currentTime") > TARGET + 1.0 && s["paused"] == false
    })
    .await?;
    let state = &state[0];
    let after = pieces(browser, &page).await?;
    ensure!(
        after.get(piece_at(TARGET)).map(String::as_str) != Some("missing"),
        "the piece at {TARGET} s was fetched: {after:?}"
    );
    ensure!(
        state["done"] == false && after.iter().any(|p| p == "missing"),
        "the seek did not wait for the whole track: {state}"
    );
    ensure!(
        player::num(state, "fromWebSeed") > 0.0,
        "the web seed served it: {state}"
    );

    // The bytes the stream serves at the new position are the file's.
    let from = (HEADER + TARGET * BYTES_PER_SECOND) as usize;
    let to = from + 64 * 1024 - 1;
    let got = range_digest(browser, &page, from, to).await?;
    let want = player::digest_of(srv.file.get(from..=to).context("range in file")?);
    ensure!(got == want, "bytes at {TARGET} s: got {got}, want {want}");

    // Arrow Left on the focused slider: 5 s back, into another part
    // nobody has, and it plays on from there.
    let at = browser
        .eval(
            &page,
            "document.querySelector('fanswarm-player').audio.currentTime",
        )
        .await?
        .as_f64()
        .context("currentTime")?;
    let back = piece_at(at - 5.0);
    ensure!(
        pieces(browser, &page).await?.get(back).map(String::as_str) == Some("missing"),
        "the piece 5 s back is missing before the key"
    );
    browser
        .eval(&page, "document.querySelector('fanswarm-player').shadowRoot.querySelector('[data-ui=seek]').focus(); true")
        .await?;
    if browser.engine() == Engine::Chromium {
        for kind in ["keyDown", "keyUp"] {
            browser
                .call(
                    Some(&page),
                    "Input.dispatchKeyEvent",
                    serde_json::json!({ "type": kind, "key": "ArrowLeft", "code": "ArrowLeft",
                                        "windowsVirtualKeyCode": 37 }),
                )
                .await?;
        }
    } else {
        // Keys are pressed over Chromium's DevTools only; elsewhere the
        // key event the player's handler reads, as a keyboard's would be.
        browser
            .eval(
                &page,
                "document.querySelector('fanswarm-player').shadowRoot.querySelector('[data-ui=seek]')
                   .dispatchEvent(new KeyboardEvent('keydown', { key: 'ArrowLeft', code: 'ArrowLeft',
                     bubbles: true, composed: true, cancelable: true })); true",
            )
            .await?;
    }
    let state = player::wait_all(
        browser,
        pages,
        Duration::from_secs(20),
        "plays 5 s back",
        |s| {
            let t = player::num(s, "currentTime");
            t > at - 4.5 && t < at - 2.0 && s["paused"] == false
        },
    )
    .await?;
    ensure!(state[0]["done"] == false, "still not the whole track");

    let plain_ms = plain_seek(browser, &page, &srv.track.media_url, TARGET).await?;
    browser.close(&page).await?;
    Ok(SeekFigures {
        player_ms,
        plain_ms,
    })
}

/// The player's piece states.
async fn pieces(browser: &mut Browser, page: &Page) -> anyhow::Result<Vec<String>> {
    let value = browser
        .eval(page, "document.querySelector('fanswarm-player').pieces()")
        .await?;
    Ok(value
        .as_array()
        .context("pieces()")?
        .iter()
        .map(|v| v.as_str().unwrap_or("?").to_owned())
        .collect())
}

/// Drags the seek slider to `seconds` (as a pointer does: a value and an
/// `input` event); milliseconds until the playhead moves past it, or -1.
async fn seek_with_slider(browser: &mut Browser, page: &Page, seconds: f64) -> anyhow::Result<f64> {
    let value = browser
        .eval(
            page,
            &format!(
                "(async () => {{
            const p = document.querySelector('fanswarm-player');
            const a = p.audio;
            const seek = p.shadowRoot.querySelector('[data-ui=seek]');
            const value = Math.round(({seconds} / a.duration) * 1000);
            const target = (value / 1000) * a.duration;
            const t0 = performance.now();
            seek.value = String(value);
            seek.dispatchEvent(new Event('input'));
            return await {MOVED};
        }})()"
            ),
        )
        .await?;
    value.as_f64().context("seek time")
}

/// A plain `<audio>` of the web seed URL in the same page: plays, seeks
/// to `seconds`; milliseconds until its playhead moves past it, or -1.
async fn plain_seek(
    browser: &mut Browser,
    page: &Page,
    url: &str,
    seconds: f64,
) -> anyhow::Result<f64> {
    let value = browser
        .eval(
            page,
            &format!(
                "(async () => {{
            document.querySelector('fanswarm-player').pause();
            const a = new Audio({url:?});
            a.muted = true;
            await a.play();
            while (a.currentTime < 0.3) await new Promise((r) => setTimeout(r, 10));
            const target = {seconds};
            const t0 = performance.now();
            a.currentTime = target;
            const ms = await {MOVED};
            a.pause();
            a.removeAttribute('src');
            a.load();
            return ms;
        }})()"
            ),
        )
        .await?;
    value.as_f64().context("plain seek time")
}

/// JavaScript: polls `a` every 10 ms until it plays past `target` (not
/// seeking), resolving to the milliseconds since `t0`; -1 after 20 s.
const MOVED: &str = "new Promise((resolve) => {
    const timer = setInterval(() => {
        const now = performance.now();
        if (!a.seeking && !a.paused && a.currentTime > target + 0.02 && a.currentTime < target + 5) {
            clearInterval(timer);
            resolve(now - t0);
        } else if (now - t0 > 20000) {
            clearInterval(timer);
            resolve(-1);
        }
    }, 10);
})";

/// SHA-1 and length of bytes `from..=to` read through the service worker,
/// as [`player::digest_of`] writes them.
async fn range_digest(
    browser: &mut Browser,
    page: &Page,
    from: usize,
    to: usize,
) -> anyhow::Result<String> {
    let value: Value = browser
        .eval(
            page,
            &format!(
                "(async () => {{
            const t = document.querySelector('fanswarm-player').track;
            const r = await fetch(t.streamUrl, {{ headers: {{ Range: 'bytes={from}-{to}' }} }});
            const buf = await r.arrayBuffer();
            if (r.status !== 206) return 'HTTP ' + r.status;
            const d = new Uint8Array(await crypto.subtle.digest('SHA-1', buf));
            return [...d].map((b) => b.toString(16).padStart(2, '0')).join('') + ':' + buf.byteLength;
        }})()"
            ),
        )
        .await?;
    Ok(value.as_str().context("digest")?.to_owned())
}
