//! A page joins by a bare magnet (info hash and tracker only: no `xs`, no
//! `ws`): the metadata comes from another page over ut_metadata, and the
//! same WebRTC connection then carries every piece. Meanwhile a page with a
//! magnet of a swarm nobody is in tells its fan why nothing plays.

use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use serde_json::Value;
use sha1::{Digest, Sha1};
use swarm::magnet::Magnet;

use fanswarm_e2e::browser::{Browser, Page};
use fanswarm_e2e::{netns, server};

const TEST: &str = "a_page_joins_by_bare_magnet_and_gets_metadata_and_pieces_from_a_peer";

#[test]
fn a_page_joins_by_bare_magnet_and_gets_metadata_and_pieces_from_a_peer() -> anyhow::Result<()> {
    netns::run(TEST, run())
}

async fn run() -> anyhow::Result<()> {
    let srv = server::start(60).await?;
    let hex = srv.track.info_hash.to_hex();
    let mut magnet = Magnet::parse(&srv.track.magnet)?;
    magnet.web_seeds.clear();
    magnet.exact_sources.clear();
    anyhow::ensure!(
        !magnet.trackers.is_empty(),
        "the server's magnet names its tracker"
    );
    let bare = magnet.to_string();
    let mut browser = Browser::launch().await?;
    let embed = format!("{}/embed/{hex}", srv.base);

    // A magnet of a swarm with no one in it, opened first: it waits out the
    // seeder's whole download (about a minute), time enough for the 15 s
    // and 45 s notices.
    let mut nowhere = magnet.clone();
    nowhere.info_hash = swarm::ids::InfoHash([0x5a; 20]);
    nowhere.display_name = None;
    let lonely = browser.open(&embed).await?;
    let lonely_started = Instant::now();
    start(&mut browser, &lonely, Some(&nowhere.to_string())).await?;
    let first_status = player_status(&mut browser, &lonely).await?;

    let seeder = browser.open(&embed).await?;
    start(&mut browser, &seeder, None).await?;
    wait_done(&mut browser, &seeder, Duration::from_secs(90)).await?;

    // The seeder takes about a minute; should it be quicker, wait for 45 s.
    let until = lonely_started + Duration::from_secs(75);
    let mut lonely_status = player_status(&mut browser, &lonely).await?;
    while lonely_status.contains("after 15 s") && Instant::now() < until {
        tokio::time::sleep(Duration::from_millis(500)).await;
        lonely_status = player_status(&mut browser, &lonely).await?;
    }
    let lonely_log = browser
        .eval(&lonely, "JSON.stringify(window.__log)")
        .await?;
    println!("lonely page: status {first_status:?} then {lonely_status:?}; events {lonely_log}");
    anyhow::ensure!(
        first_status.starts_with("Waiting for the track"),
        "a bare magnet's player says it waits for the details: {first_status:?}"
    );
    anyhow::ensure!(
        ["45", "105"].iter().any(|t| lonely_status
            .starts_with(&format!("no metadata after {t} s: no peer has connected"))),
        "the player says why nothing plays: {lonely_status:?}"
    );
    anyhow::ensure!(
        lonely_log
            .as_str()
            .is_some_and(|l| l.contains("warning no metadata after 15 s")),
        "the track warned at 15 s: {lonely_log}"
    );

    let started = Instant::now();
    let joiner = browser.open(&embed).await?;
    start(&mut browser, &joiner, Some(&bare)).await?;
    let stats = wait_done(&mut browser, &joiner, Duration::from_secs(90)).await?;
    let done_secs = started.elapsed().as_secs_f64();
    let metadata_ms = browser
        .eval(&joiner, "window.__metadataAt ?? null")
        .await?
        .as_f64()
        .context("the joining page never emitted `metadata`")?;
    let sha = assembled_sha1(&mut browser, &joiner).await?;
    let log = browser
        .eval(&joiner, "JSON.stringify(window.__log)")
        .await?;
    println!("magnet page events: {log}");

    let num = |k: &str| stats["stats"][k].as_f64().unwrap_or(-1.0);
    println!(
        "bare magnet page: metadata {metadata_ms:.0} ms after play(), done {done_secs:.2} s \
         after opening; from peers {:.0} B, from web seed {:.0} B",
        num("fromPeers"),
        num("fromWebSeed")
    );
    let file_sha: String = Sha1::digest(&srv.file)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    assert_eq!(
        sha,
        format!("{file_sha}:{}", srv.file.len()),
        "byte-identical"
    );
    assert_eq!(num("fromWebSeed"), 0.0, "a bare magnet has no web seed");
    assert_eq!(
        num("fromPeers"),
        srv.file.len() as f64,
        "everything from the peer"
    );
    Ok(())
}

/// Presses play on the page's `<fanswarm-player>`, by `magnet` if given.
async fn start(browser: &mut Browser, page: &Page, magnet: Option<&str>) -> anyhow::Result<()> {
    let set_magnet = match magnet {
        Some(m) => format!(
            "p.removeAttribute('src'); p.removeAttribute('torrent'); p.setAttribute('magnet', {m:?});"
        ),
        None => String::new(),
    };
    browser
        .eval(page, &format!("(async () => {{
            await customElements.whenDefined('fanswarm-player');
            const p = document.querySelector('fanswarm-player');
            p.setAttribute('ice-servers', '');
            {set_magnet}
            const t0 = performance.now();
            await p.play();
            window.__log = [];
            p.track.addEventListener('metadata', () => {{ window.__metadataAt = performance.now() - t0; }});
            for (const kind of ['metadata', 'warning', 'peers', 'done'])
                p.track.addEventListener(kind, (e) => window.__log.push(kind + ' ' + e.detail));
            return true;
        }})()"))
        .await?;
    Ok(())
}

/// The text of the player's status line.
async fn player_status(browser: &mut Browser, page: &Page) -> anyhow::Result<String> {
    let v = browser
        .eval(
            page,
            "document.querySelector('fanswarm-player').shadowRoot.querySelector('[data-ui=status]').textContent",
        )
        .await?;
    Ok(v.as_str().context("status text")?.to_owned())
}

async fn wait_done(browser: &mut Browser, page: &Page, limit: Duration) -> anyhow::Result<Value> {
    let until = Instant::now() + limit;
    loop {
        let text = browser
            .eval(
                page,
                "JSON.stringify({ stats: document.querySelector('fanswarm-player').stats() })",
            )
            .await?;
        let s: Value = serde_json::from_str(text.as_str().context("stats JSON")?)?;
        if s["stats"]["done"].as_bool() == Some(true) {
            return Ok(s);
        }
        if Instant::now() > until {
            bail!("page not done in {limit:?}: {s}");
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// SHA-1 and length of what the page's stream URL serves.
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
