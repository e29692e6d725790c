//! Driving the `<fanswarm-player>` of an `/embed/<hash>` page from a test:
//! press play, read its stats, wait for conditions, read back what the
//! service worker serves.
//!
//! Every wait polls with a deadline and, when it runs out, fails with the
//! state it last saw: no fixed sleep decides a test.

use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use serde_json::Value;
use sha1::{Digest, Sha1};

use crate::browser::{Browser, Page};

/// Presses play on the page's one `<fanswarm-player>` without waiting for
/// it to start, so several pages can be started within moments of each
/// other. No STUN server (the namespace has no route out). Returns the
/// wall-clock time (ms since the epoch, the browser's clock) of the press.
///
/// The page records, on `window`: `__playError` if `play()` rejects,
/// `__audioError` if the element reports an error, `__firstAudio` (ms from
/// the press to `playing`), `__statsError` if `track.stats()` threw inside a
/// `progress` listener, `__peerAt`/`__doneAt` (`performance.now()` of
/// the first `peers` and the `done` event) and `__log` (every event).
pub async fn press_play(browser: &mut Browser, page: &Page) -> anyhow::Result<f64> {
    browser
        .eval(
            page,
            "(async () => {
            // Bounded, and saying what the page loaded: a player module
            // that never loads would otherwise hang this call for good
            // (seen once in a clean-clone run: 'Runtime.evaluate: no
            // answer'). Were the page's main thread stuck instead, this
            // timer would not fire either, and the call still says so.
            await Promise.race([customElements.whenDefined('fanswarm-player'),
                new Promise((_, reject) => setTimeout(() => reject(new Error(
                    'fanswarm-player not defined 20 s after the press: document ' + document.readyState
                    + '; resources ' + performance.getEntriesByType('resource')
                        .map((e) => e.name.split('/').pop() + ' ' + (e.responseStatus ?? '?')).join(', '))), 20000))]);
            const p = document.querySelector('fanswarm-player');
            p.setAttribute('ice-servers', '');
            window.__log = [];
            window.__t0 = performance.now();
            const stamp = () => Math.round(performance.now());
            p.audio.addEventListener('playing', () => { window.__firstAudio ??= performance.now() - window.__t0; });
            p.audio.addEventListener('error', () => { window.__audioError = String(p.audio.error?.message || p.audio.error?.code); });
            p.play().then(() => {
                p.track.addEventListener('peers', () => { window.__peerAt ??= performance.now(); });
                p.track.addEventListener('done', () => { window.__doneAt = performance.now(); });
                // What player.js and fanswarm.js's example do: read the stats
                // from inside a progress listener.
                p.track.addEventListener('progress', () => {
                    try { p.track.stats(); } catch (e) { window.__statsError ??= String(e); }
                });
                for (const kind of ['warning', 'peers', 'done', 'tracker', 'peerclose'])
                    p.track.addEventListener(kind, (e) => window.__log.push(kind + ' ' + e.detail + ' @' + stamp()));
            }, (e) => { window.__playError = String(e); });
            return performance.timeOrigin + window.__t0;
        })()",
        )
        .await?
        .as_f64()
        .context("the time play was pressed")
}

/// The track's stats (`TrackStats` of the wasm API) plus what the page
/// recorded: `currentTime`, `paused`, `playError`, `audioError`, `statsError`.
pub async fn state(browser: &mut Browser, page: &Page) -> anyhow::Result<Value> {
    let text = browser
        .eval(
            page,
            "(() => {
            const p = document.querySelector('fanswarm-player');
            return JSON.stringify({ ...p.stats(), currentTime: p.audio.currentTime,
                paused: p.audio.paused, playError: window.__playError ?? null,
                audioError: window.__audioError ?? null, statsError: window.__statsError ?? null });
        })()",
        )
        .await?;
    Ok(serde_json::from_str(text.as_str().context("stats JSON")?)?)
}

/// A number from a [`state`] object; -1 when absent (so it fails checks).
pub fn num(state: &Value, key: &str) -> f64 {
    state[key].as_f64().unwrap_or(-1.0)
}

/// Polls every page's [`state`] until `ready` holds for all of them;
/// after `limit`, fails with `what` and every page's last state. Fails at
/// once if a page's `play()` rejected, its element errored or its stats
/// could not be read from a `progress` listener.
pub async fn wait_all(
    browser: &mut Browser,
    pages: &[Page],
    limit: Duration,
    what: &str,
    ready: impl Fn(&Value) -> bool,
) -> anyhow::Result<Vec<Value>> {
    let until = Instant::now() + limit;
    loop {
        let mut states = Vec::with_capacity(pages.len());
        for page in pages {
            states.push(state(browser, page).await?);
        }
        for (i, s) in states.iter().enumerate() {
            if ["playError", "audioError", "statsError"]
                .iter()
                .any(|k| !s[*k].is_null())
            {
                bail!("page {i} failed while waiting for {what}: {s}");
            }
        }
        if states.iter().all(&ready) {
            return Ok(states);
        }
        if Instant::now() > until {
            bail!("{what}: not within {limit:?}; pages: {}", show(&states));
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

/// Every page's state on one line each, for failure messages and logs.
pub fn show(states: &[Value]) -> String {
    states
        .iter()
        .enumerate()
        .map(|(i, s)| format!("\n  page {i}: {s}"))
        .collect()
}

/// SHA-1 (hex) and length of the bytes the page serves at its stream URL,
/// read back through the service worker: what the element plays.
pub async fn assembled(browser: &mut Browser, page: &Page) -> anyhow::Result<String> {
    let value = browser
        .eval(
            page,
            "(async () => {
            const t = document.querySelector('fanswarm-player').track;
            const response = await fetch(t.streamUrl);
            const buf = await response.arrayBuffer();
            if (response.status !== 200) {
                const worker = navigator.serviceWorker.controller ? 'a worker in control' : 'no worker in control';
                return `HTTP ${response.status} for ${t.streamUrl} with ${worker}: ${new TextDecoder().decode(buf.slice(0, 200))}`;
            }
            const d = new Uint8Array(await crypto.subtle.digest('SHA-1', buf));
            return [...d].map(b => b.toString(16).padStart(2, '0')).join('') + ':' + buf.byteLength;
        })()",
        )
        .await?;
    let text = value.as_str().context("hash string")?;
    anyhow::ensure!(
        !text.starts_with("HTTP "),
        "reading the page's stream: {text}"
    );
    Ok(text.to_owned())
}

/// What [`assembled`] returns for exactly `file`.
pub fn digest_of(file: &[u8]) -> String {
    let digest = Sha1::digest(file);
    let hex: String = digest.iter().map(|b| format!("{b:02x}")).collect();
    format!("{hex}:{}", file.len())
}

/// The page's event log and timing marks, as JSON text.
pub async fn log(browser: &mut Browser, page: &Page) -> anyhow::Result<String> {
    let value = browser
        .eval(
            page,
            "JSON.stringify({ firstAudioMs: window.__firstAudio ?? null, peerAt: window.__peerAt ?? null,
                doneAt: window.__doneAt ?? null, events: window.__log ?? [] })",
        )
        .await?;
    Ok(value.as_str().unwrap_or("null").to_owned())
}

/// A page expression resolving to how many pieces of whole tracks the
/// page's origin keeps (`keep: 'track'`), in the Cache API entries whose
/// URL starts with `prefix` (a JavaScript expression; `''`: every track).
/// An entry holds several pieces, listed `index:length,…` in its
/// `x-fanswarm-pieces` header (an older one a single `x-fanswarm-piece`).
pub fn kept_pieces_js(prefix: &str) -> String {
    format!(
        "(async () => {{
            const cache = await caches.open('fanswarm-tracks-v1');
            const prefix = {prefix};
            let n = 0;
            for (const request of await cache.keys()) {{
                if (!request.url.startsWith(prefix)) continue;
                const r = await cache.match(request);
                if (r?.headers.has('x-fanswarm-piece')) n += 1;
                else n += (r?.headers.get('x-fanswarm-pieces') ?? '').split(',').filter(Boolean).length;
            }}
            return n;
        }})()"
    )
}
