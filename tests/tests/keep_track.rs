//! A returning fan (the default `keep: 'track'`, issue 17 item 2): a page that heard a
//! track keeps every piece in the browser, so the next visit — a reload, or
//! after the browser was closed and started again on the same profile —
//! plays it with nothing from the server and shares it at once: a fan in
//! another browser, with no web seed, gets the whole track from it. A kept
//! piece whose bytes were damaged is refused by its SHA-1, fetched again
//! and kept right (the other pieces of its entry written again); a track
//! kept a piece an entry (before pieces were written in batches) still
//! plays from the browser; the stream is the file throughout.
#![allow(clippy::unwrap_used)]

use std::time::{Duration, Instant};

use anyhow::{Context, bail, ensure};
use serde_json::Value;

use fanswarm_e2e::browser::{Browser, Engine, Page};
use fanswarm_e2e::player::{digest_of, kept_pieces_js};
use fanswarm_e2e::server::TestServer;
use fanswarm_e2e::{netns, server};

const TEST: &str = "a_returning_fan_plays_and_shares_the_kept_track_with_nothing_from_the_server";
const FIREFOX: &str = "a_returning_firefox_fan_plays_and_shares_the_kept_track";
const SECONDS: u32 = 12;

/// Page script defining `keptEntries(folder)`: the kept track's entries
/// under `folder`, each `{request, headers, bytes, pieces}` with `pieces`
/// the `[index, start, length]` its `x-fanswarm-pieces` header lists.
const KEPT_ENTRIES_JS: &str = "
    async function keptEntries(folder) {
        const cache = await caches.open('fanswarm-tracks-v1');
        const entries = [];
        for (const request of await cache.keys(folder + 'piece', { ignoreSearch: true })) {
            const r = await cache.match(request);
            const bytes = new Uint8Array(await r.arrayBuffer());
            const pieces = [];
            let at = 0;
            for (const entry of (r.headers.get('x-fanswarm-pieces') ?? '').split(',').filter(Boolean)) {
                const [index, length] = entry.split(':').map(Number);
                pieces.push([index, at, length]);
                at += length;
            }
            entries.push({ request, headers: r.headers, bytes, pieces });
        }
        return entries;
    }";

#[test]
fn a_returning_fan_plays_and_shares_the_kept_track_with_nothing_from_the_server()
-> anyhow::Result<()> {
    netns::run(TEST, run(Engine::Chromium))
}

/// The same in Firefox ESR, where the harness cannot restart the browser
/// on its profile: the damaged piece is met on a second reload instead.
#[test]
fn a_returning_firefox_fan_plays_and_shares_the_kept_track() -> anyhow::Result<()> {
    netns::run(FIREFOX, run(Engine::Firefox))
}

/// Plays the server's track in a page of its origin through fanswarm.js
/// with `options` (JS object text) until it is done, and resolves to the
/// stats, the stream's digest and what the page keeps.
async fn play(
    browser: &mut Browser,
    page: &Page,
    srv: &TestServer,
    options: &str,
) -> anyhow::Result<Value> {
    play_torrent(browser, page, &srv.track.torrent_url, options).await
}

/// [`play`] of the torrent at `torrent_url`; the page's track before it is
/// destroyed first (one track per stream and page).
async fn play_torrent(
    browser: &mut Browser,
    page: &Page,
    torrent: &str,
    options: &str,
) -> anyhow::Result<Value> {
    let text = browser
        .eval(
            page,
            &format!(
                "(async () => {{
            const fanswarm = (await import('/fanswarm.js')).default;
            window.__track?.destroy();
            const audio = new Audio();
            const track = await fanswarm.play(audio, {{ torrent: '{torrent}', iceServers: [], {options} }});
            window.__track = track;
            audio.playbackRate = 4;
            const t0 = performance.now();
            while (!track.stats().done) {{
                if (performance.now() - t0 > 60000) throw new Error('not done in 60 s: ' + JSON.stringify(track.stats()));
                await new Promise((r) => setTimeout(r, 100));
            }}
            const buf = await (await fetch(track.streamUrl)).arrayBuffer();
            const d = new Uint8Array(await crypto.subtle.digest('SHA-1', buf));
            const digest = [...d].map(b => b.toString(16).padStart(2, '0')).join('') + ':' + buf.byteLength;
            return JSON.stringify({{ ...track.stats(), digest, kept: fanswarm.kept() }});
        }})()"
            ),
        )
        .await?;
    Ok(serde_json::from_str(text.as_str().context("result JSON")?)?)
}

/// Waits until the page's cache holds `pieces` pieces and its kept list
/// counts `bytes` (pieces are written a batch at a time, at most ~2 s
/// after they verify).
async fn written(
    browser: &mut Browser,
    page: &Page,
    pieces: u64,
    bytes: f64,
) -> anyhow::Result<()> {
    let until = Instant::now() + Duration::from_secs(20);
    let script = format!(
        "Promise.all([{}, import('/fanswarm.js').then((m) => m.default.kept().bytes)])
            .then((both) => JSON.stringify(both))",
        kept_pieces_js("''")
    );
    loop {
        let both = browser.eval(page, &script).await?;
        let both: Vec<f64> = serde_json::from_str(both.as_str().context("kept JSON")?)?;
        if both == [pieces as f64, bytes] {
            return Ok(());
        }
        if Instant::now() > until {
            bail!("after 20 s {both:?} of {pieces} pieces and {bytes} bytes are kept");
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

async fn run(engine: Engine) -> anyhow::Result<()> {
    let srv = server::start(SECONDS).await?;
    let length = srv.file.len() as f64;
    let digest = digest_of(&srv.file);
    // A document of the server's origin that runs no script of its own:
    // a module's source shown as text (not /api/tracks: Firefox shows JSON
    // in a viewer that cannot import modules).
    let tracks = format!("{}/piecemap.js", srv.base);
    // The default keeps the whole track (`keep: 'track'`).
    let keep = "";

    // First visit: everything from the web seed, every piece kept.
    let mut fan = Browser::launch_engine(engine).await?;
    let page = fan.open_in_profile(&tracks).await?;
    let first = play(&mut fan, &page, &srv, keep).await?;
    ensure!(first["digest"] == digest.as_str(), "first visit: {first}");
    ensure!(first["fromWebSeed"].as_f64() == Some(length), "{first}");
    let pieces = first["totalPieces"].as_u64().context("totalPieces")?;
    written(&mut fan, &page, pieces, length).await?;

    // A reload: the whole track from the browser, nothing from the server.
    let served = srv.webseed_bytes();
    fan.navigate(&page, &tracks).await?;
    fan.wait_loaded(&page, &tracks).await?;
    let again = play(&mut fan, &page, &srv, keep).await?;
    ensure!(again["digest"] == digest.as_str(), "reload: {again}");
    ensure!(
        again["fromCache"].as_f64() == Some(length) && again["fromWebSeed"].as_f64() == Some(0.0),
        "the reload played the kept track: {again}"
    );
    ensure!(
        srv.webseed_bytes() == served,
        "the server sent nothing more"
    );

    // Another fan, no web seed, nothing kept: every byte from the returning one.
    let mut other = Browser::launch_engine(engine).await?;
    let other_page = other.open(&tracks).await?;
    let theirs = play(
        &mut other,
        &other_page,
        &srv,
        "webSeed: false, keep: 'none'",
    )
    .await?;
    ensure!(
        theirs["digest"] == digest.as_str(),
        "the other fan: {theirs}"
    );
    ensure!(
        theirs["fromPeers"].as_f64() == Some(length),
        "the other fan got the track from the returning one: {theirs}"
    );
    drop(other);

    // The browser closed and started again on its profile (Chromium), or
    // the page reloaded again (Firefox).
    let (mut fan, page) = if engine == Engine::Chromium {
        let profile = fan.close_keeping_profile().await?;
        let mut fan = Browser::launch_with_profile(profile).await?;
        let page = fan.open_in_profile(&tracks).await?;
        (fan, page)
    } else {
        fan.navigate(&page, &tracks).await?;
        fan.wait_loaded(&page, &tracks).await?;
        (fan, page)
    };
    // Damage one kept piece (a disk error) in its entry before playing.
    let source = format!(
        "{}{}",
        srv.base,
        srv.track.torrent_url.strip_prefix(&srv.base).unwrap()
    );
    let damaged = browser_eval_u64(
        &mut fan,
        &page,
        &format!(
            "(async () => {{
            {KEPT_ENTRIES_JS}
            const cache = await caches.open('fanswarm-tracks-v1');
            let kept = 0;
            let damaged = false;
            for (const {{ request, headers, bytes, pieces }} of await keptEntries({})) {{
                kept += pieces.length;
                const three = pieces.find(([index]) => index === 3);
                if (!three) continue;
                bytes.fill(7, three[1], three[1] + three[2]);
                await cache.put(request, new Response(bytes, {{ headers }}));
                damaged = true;
            }}
            return damaged ? kept : 0;
        }})()",
            kept_folder(&source)
        ),
    )
    .await?;
    ensure!(
        damaged == pieces,
        "after the restart {damaged} of {pieces} pieces are kept"
    );
    let restarted = play(&mut fan, &page, &srv, keep).await?;
    ensure!(
        restarted["digest"] == digest.as_str(),
        "after the restart: {restarted}"
    );
    let piece = restarted["fromWebSeed"].as_f64().unwrap_or(-1.0);
    let piece_length = (length / pieces as f64).ceil() as u64;
    ensure!(
        piece > 0.0
            && piece <= piece_length.next_power_of_two() as f64
            && restarted["fromCache"].as_f64() == Some(length - piece),
        "all but the damaged piece from the browser, that one fetched again: {restarted}"
    );
    ensure!(
        piece <= 0.05 * length,
        "at most 5 % from the server: {restarted}"
    );
    // The kept list counts the track once; the refetched piece may still
    // be on its way to the cache.
    written(&mut fan, &page, pieces, length).await?;
    // And kept right this time: the damaged entry gone (its good pieces
    // written again), piece 3 kept once, with its length, every piece kept.
    let until = Instant::now() + Duration::from_secs(20);
    loop {
        let listed = fan
            .eval(
                &page,
                &format!(
                    "(async () => {{
                {KEPT_ENTRIES_JS}
                const lengths = (await keptEntries({})).flatMap((e) => e.pieces)
                    .filter(([index]) => index === 3).map(([, , length]) => length);
                return JSON.stringify(lengths);
            }})()",
                    kept_folder(&source)
                ),
            )
            .await?;
        let all = browser_eval_u64(&mut fan, &page, &kept_pieces_js(&kept_folder(&source))).await?;
        if listed.as_str() == Some(&format!("[{piece}]")) && all == pieces {
            break;
        }
        ensure!(
            Instant::now() < until,
            "piece 3 kept with lengths {listed}, {all} of {pieces} pieces kept"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    // A track kept before pieces were written in batches (an entry per
    // piece, `piece?i=N`, the index in `x-fanswarm-piece`) still plays
    // from the browser.
    let split = browser_eval_u64(
        &mut fan,
        &page,
        &format!(
            "(async () => {{
            {KEPT_ENTRIES_JS}
            const folder = {};
            const cache = await caches.open('fanswarm-tracks-v1');
            let n = 0;
            for (const {{ request, bytes, pieces }} of await keptEntries(folder)) {{
                for (const [index, at, length] of pieces) {{
                    await cache.put(folder + 'piece?i=' + index, new Response(bytes.slice(at, at + length),
                        {{ headers: {{ 'x-fanswarm-piece': String(index) }} }}));
                    n += 1;
                }}
                await cache.delete(request);
            }}
            return n;
        }})()",
            kept_folder(&source)
        ),
    )
    .await?;
    ensure!(split == pieces, "{split} of {pieces} pieces split");
    fan.navigate(&page, &tracks).await?;
    fan.wait_loaded(&page, &tracks).await?;
    let older = play(&mut fan, &page, &srv, keep).await?;
    ensure!(
        older["digest"] == digest.as_str() && older["fromCache"].as_f64() == Some(length),
        "the track kept a piece an entry played from the browser: {older}"
    );
    println!(
        "{engine:?} kept track: first visit {} B from the web seed; reload {} B from the browser; \
         another fan {} B from it; next visit (Chromium: after a restart) with one piece damaged {} B from the browser, {} B fetched again; \
         kept a piece an entry, {} B from the browser",
        first["fromWebSeed"],
        again["fromCache"],
        theirs["fromPeers"],
        restarted["fromCache"],
        piece,
        older["fromCache"]
    );
    Ok(())
}

async fn browser_eval_u64(browser: &mut Browser, page: &Page, script: &str) -> anyhow::Result<u64> {
    browser
        .eval(page, script)
        .await?
        .as_u64()
        .context("a number from the page")
}

/// Two tracks and a quota that holds one: the one played least recently
/// goes; `forget()` deletes everything.
#[test]
fn kept_tracks_stay_within_the_quota_least_recently_played_out_first() -> anyhow::Result<()> {
    const QUOTA: &str = "kept_tracks_stay_within_the_quota_least_recently_played_out_first";
    netns::run(QUOTA, async {
        let library = tempfile::tempdir()?;
        for (name, seed) in [("a.wav", 1), ("b.wav", 2)] {
            let samples = signal_server::demo::synthesize(6, seed);
            let bytes = signal_server::demo::wav_bytes(&samples, signal_server::demo::SAMPLE_RATE);
            std::fs::write(library.path().join(name), bytes)?;
        }
        let srv = server::start_library(library).await?;
        let [a, b] = [0, 1].map(|i| srv.tracks()[i].clone());
        ensure!(a.length == b.length, "two tracks of one size");
        let quota = a.length * 3 / 2;
        let options = format!("keep: 'track', keepQuota: {quota}");
        let mut browser = Browser::launch().await?;
        let page = browser.open(&format!("{}/api/tracks", srv.base)).await?;
        let count = |folder: &str| kept_pieces_js(&kept_folder(folder));
        let first = play_torrent(&mut browser, &page, &a.torrent_url, &options).await?;
        let pieces = first["totalPieces"].as_u64().context("totalPieces")?;
        ensure!(
            browser
                .became_true(
                    &page,
                    &format!("{}.then((n) => n === {pieces})", count(&a.torrent_url)),
                    Duration::from_secs(20)
                )
                .await,
            "track a kept whole"
        );
        let second = play_torrent(&mut browser, &page, &b.torrent_url, &options).await?;
        ensure!(
            second["kept"]["tracks"] == 1,
            "only the last played is listed: {second}"
        );
        ensure!(
            browser
                .became_true(
                    &page,
                    &format!(
                        "Promise.all([{}, {}]).then(([a, b]) => a === 0 && b === {pieces})",
                        count(&a.torrent_url),
                        count(&b.torrent_url)
                    ),
                    Duration::from_secs(20)
                )
                .await,
            "track a evicted, b kept whole"
        );
        let left = browser
            .eval(
                &page,
                "(async () => {
                const fanswarm = (await import('/fanswarm.js')).default;
                await fanswarm.forget();
                const keys = await (await caches.open('fanswarm-tracks-v1')).keys();
                return JSON.stringify({ ...fanswarm.kept(), entries: keys.length });
            })()",
            )
            .await?;
        ensure!(
            left.as_str() == Some(r#"{"tracks":0,"bytes":0,"entries":0}"#),
            "forget() deleted everything: {left}"
        );

        // The player says what this browser keeps, and its Forget button
        // deletes it.
        let player = browser
            .eval(
                &page,
                &format!(
                    "(async () => {{
                window.__track?.destroy();
                await import('/player.js');
                const el = document.createElement('fanswarm-player');
                el.setAttribute('keep', 'track');
                el.setAttribute('ice-servers', '');
                el.setAttribute('src', '{}');
                document.body.append(el);
                await el.ready;
                await el.play();
                el.audio.playbackRate = 4;
                const ui = (name) => el.shadowRoot.querySelector(`[data-ui=\"${{name}}\"]`);
                const t0 = performance.now();
                while (!(el.stats().done && !ui('keptbox').hidden && ui('kept').textContent !== '0 B')) {{
                    if (performance.now() - t0 > 30000) throw new Error('kept not shown: ' + ui('kept').textContent);
                    await new Promise((r) => setTimeout(r, 100));
                }}
                const shown = ui('kept').textContent;
                ui('forget').click();
                while (ui('kept').textContent !== '0 B') {{
                    if (performance.now() - t0 > 40000) throw new Error('not forgotten');
                    await new Promise((r) => setTimeout(r, 50));
                }}
                const keys = await (await caches.open('fanswarm-tracks-v1')).keys();
                return JSON.stringify({{ shown, status: ui('status').textContent, entries: keys.length }});
            }})()",
                    a.torrent_url
                ),
            )
            .await?;
        let player: Value = serde_json::from_str(player.as_str().context("player JSON")?)?;
        ensure!(
            player["shown"].as_str().is_some_and(|s| s.ends_with("KB")),
            "the player showed the kept bytes: {player}"
        );
        ensure!(
            player["status"] == "Tracks kept in this browser deleted." && player["entries"] == 0,
            "Forget deleted them: {player}"
        );
        Ok(())
    })
}

/// JavaScript for the URL under which fanswarm.js keeps the whole track of
/// the torrent at `source` (`trackKey` there).
fn kept_folder(source: &str) -> String {
    format!(
        "new URL('/fanswarm/track/' + encodeURIComponent('{source}') + '/', location.href).href"
    )
}
