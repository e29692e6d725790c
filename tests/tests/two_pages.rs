//! Two real browser pages play one track: the second gets bytes from the
//! first, and both end with exactly the file's bytes.
//!
//! Also measures what the issue asks: time to first audio against plain
//! `<audio src=/media/…>` on the same server, bytes from peers vs the web
//! seed per page, and the one-peer download speed.

use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use serde_json::Value;
use sha1::{Digest, Sha1};

use fanswarm_e2e::browser::{Browser, Page};
use fanswarm_e2e::{netns, server};

const TEST: &str = "two_pages_swarm_and_assemble_the_file";

#[test]
fn two_pages_swarm_and_assemble_the_file() -> anyhow::Result<()> {
    netns::run(TEST, run())
}

async fn run() -> anyhow::Result<()> {
    // 60 s: a page alone fetches from the web seed at about the pace it
    // plays (urgent pieces, then one orphan at a time), so page 1 takes
    // about the track's length to finish.
    let srv = server::start(60).await?;
    let hex = srv.track.info_hash.to_hex();
    let file_sha = hex_of(&Sha1::digest(&srv.file));
    let mut browser = Browser::launch().await?;

    // Plain HTTP first, before any service worker exists on the origin.
    let plain = browser.open(&format!("{}/api/tracks", srv.base)).await?;
    let media_path = srv
        .track
        .media_url
        .strip_prefix(&srv.base)
        .context("media URL on the server")?
        .to_owned();
    let plain_ms = browser
        .eval(&plain, &format!(
            "new Promise((resolve, reject) => {{ const a = new Audio(); const t0 = performance.now();
               a.addEventListener('playing', () => resolve(performance.now() - t0), {{ once: true }});
               a.addEventListener('error', () => reject(new Error('plain audio failed')));
               a.src = '{media_path}'; a.play().catch(reject); }})"))
        .await?
        .as_f64()
        .context("plain time to first audio")?;

    let embed = format!("{}/embed/{hex}", srv.base);
    let first = browser.open(&embed).await?;
    start_player(&mut browser, &first).await?;
    let first_stats = wait_done(&mut browser, &first, Duration::from_secs(120)).await?;
    let first_ms = first_audio(&mut browser, &first).await?;

    let started = Instant::now();
    let second = browser.open(&embed).await?;
    start_player(&mut browser, &second).await?;
    let second_stats = wait_done(&mut browser, &second, Duration::from_secs(90)).await?;
    let second_secs = started.elapsed().as_secs_f64();
    let second_ms = first_audio(&mut browser, &second).await?;
    let peer_secs = browser
        .eval(
            &second,
            "((window.__doneAt ?? NaN) - (window.__peerAt ?? NaN)) / 1000",
        )
        .await?
        .as_f64()
        .context("page 2 connected to a peer and finished")?;

    let first_sha = assembled_sha1(&mut browser, &first).await?;
    let second_sha = assembled_sha1(&mut browser, &second).await?;
    let first_after = stats(&mut browser, &first).await?;
    let (from, to) = (2_000_000usize, 2_000_999usize);
    let ranged = range_through_worker(&mut browser, &second, from, to).await?;
    let seeked_to = browser
        .eval(&second, "(async () => {
            const a = document.querySelector('fanswarm-player').audio;
            const seeked = new Promise((resolve) => a.addEventListener('seeked', resolve, { once: true }));
            a.currentTime = 50;
            await seeked;
            return a.currentTime;
        })()")
        .await?
        .as_f64()
        .context("currentTime after the seek")?;
    for (name, page) in [("page 1", &first), ("page 2", &second)] {
        let log = browser.eval(page, "JSON.stringify(window.__log)").await?;
        println!("{name} events: {log}");
    }

    let num = |v: &Value, k: &str| v["stats"][k].as_f64().unwrap_or(-1.0);
    let length = srv.file.len() as f64;
    println!(
        "track: {} bytes, {} pieces",
        srv.file.len(),
        num(&first_stats, "totalPieces")
    );
    println!(
        "time to first audio: plain <audio> {plain_ms:.0} ms, fanswarm page 1 (cold) {first_ms:.0} ms, page 2 {second_ms:.0} ms"
    );
    for (name, s) in [("page 1", &first_stats), ("page 2", &second_stats)] {
        println!(
            "{name}: from peers {:.0} B, from web seed {:.0} B, uploaded {:.0} B",
            num(s, "fromPeers"),
            num(s, "fromWebSeed"),
            num(s, "uploaded")
        );
    }
    println!(
        "page 1 uploaded {:.0} B by the end; page 2 done {second_secs:.2} s after opening, \
         {peer_secs:.2} s after its first peer: one-peer speed {:.2} MiB/s",
        num(&first_after, "uploaded"),
        num(&second_stats, "fromPeers") / peer_secs / 1_048_576.0
    );

    assert_eq!(
        first_sha,
        format!("{file_sha}:{}", srv.file.len()),
        "page 1 assembled the file"
    );
    assert_eq!(
        second_sha,
        format!("{file_sha}:{}", srv.file.len()),
        "page 2 assembled the file"
    );
    assert!(
        num(&second_stats, "fromPeers") > 0.0,
        "page 2 got bytes from page 1"
    );
    assert!(num(&first_after, "uploaded") > 0.0, "page 1 served page 2");
    assert_eq!(
        ranged,
        format!(
            "206 bytes {from}-{to}/{} {}",
            srv.file.len(),
            hex_of(&Sha1::digest(&srv.file[from..=to]))
        ),
        "a range request is answered with exactly that range"
    );
    assert!(
        seeked_to >= 49.0,
        "the element seeked to 50 s, is at {seeked_to}"
    );
    assert_eq!(
        num(&first_stats, "fromPeers") + num(&first_stats, "fromWebSeed"),
        length,
        "page 1, alone, got everything from the web seed"
    );
    Ok(())
}

/// Presses play on the page's one `<fanswarm-player>` (no STUN: the
/// namespace has no route out) and notes when audio starts.
async fn start_player(browser: &mut Browser, page: &Page) -> anyhow::Result<()> {
    browser
        .eval(page, "(async () => {
            await customElements.whenDefined('fanswarm-player');
            const p = document.querySelector('fanswarm-player');
            p.setAttribute('ice-servers', '');
            window.__t0 = performance.now();
            p.audio.addEventListener('playing', () => { window.__firstAudio = performance.now() - window.__t0; }, { once: true });
            await p.play();
            window.__log = [];
            p.track.addEventListener('peers', () => { window.__peerAt ??= performance.now(); });
            p.track.addEventListener('done', () => { window.__doneAt = performance.now(); });
            for (const kind of ['warning', 'peers', 'done', 'tracker', 'peerclose'])
                p.track.addEventListener(kind, (e) => window.__log.push(kind + ' ' + e.detail + ' @' + Math.round(performance.now())));
            return true;
        })()")
        .await?;
    Ok(())
}

async fn stats(browser: &mut Browser, page: &Page) -> anyhow::Result<Value> {
    let text = browser
        .eval(
            page,
            "JSON.stringify({ stats: document.querySelector('fanswarm-player').stats() })",
        )
        .await?;
    Ok(serde_json::from_str(text.as_str().context("stats JSON")?)?)
}

async fn wait_done(browser: &mut Browser, page: &Page, limit: Duration) -> anyhow::Result<Value> {
    let until = Instant::now() + limit;
    loop {
        let s = stats(browser, page).await?;
        if s["stats"]["done"].as_bool() == Some(true) {
            return Ok(s);
        }
        if Instant::now() > until {
            bail!("page not done in {limit:?}: {s}");
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

async fn first_audio(browser: &mut Browser, page: &Page) -> anyhow::Result<f64> {
    for _ in 0..100 {
        if let Some(ms) = browser
            .eval(page, "window.__firstAudio ?? null")
            .await?
            .as_f64()
        {
            return Ok(ms);
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    bail!("the page never started playing")
}

/// SHA-1 and length of the bytes the page serves at its stream URL, read
/// back through the service worker: what the element plays.
async fn assembled_sha1(browser: &mut Browser, page: &Page) -> anyhow::Result<String> {
    let value = browser
        .eval(
            page,
            "(async () => {
            const t = document.querySelector('fanswarm-player').track;
            const buf = await (await fetch(t.streamUrl)).arrayBuffer();
            const d = new Uint8Array(await crypto.subtle.digest('SHA-1', buf));
            return [...d].map(b => b.toString(16).padStart(2, '0')).join('') + ':' + buf.byteLength;
        })()",
        )
        .await?;
    Ok(value.as_str().context("hash string")?.to_owned())
}

/// Status, `Content-Range` and SHA-1 of a range read through the worker,
/// as the element would ask for it after a seek.
async fn range_through_worker(
    browser: &mut Browser,
    page: &Page,
    from: usize,
    to: usize,
) -> anyhow::Result<String> {
    let value = browser
        .eval(
            page,
            &format!(
                "(async () => {{
            const t = document.querySelector('fanswarm-player').track;
            const r = await fetch(t.streamUrl, {{ headers: {{ Range: 'bytes={from}-{to}' }} }});
            const d = new Uint8Array(await crypto.subtle.digest('SHA-1', await r.arrayBuffer()));
            return r.status + ' ' + r.headers.get('content-range') + ' '
                + [...d].map(b => b.toString(16).padStart(2, '0')).join('');
        }})()"
            ),
        )
        .await?;
    Ok(value.as_str().context("range answer")?.to_owned())
}

fn hex_of(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}
