//! What fans see: the demo page, an `<iframe>` embed and an `embed.js`
//! embed on an artist's page of another origin, each playing in headless
//! Chromium. Screenshots go to `target/artifacts/` (paths printed).
//!
//! Asserts the machine-readable hook (the `fanswarm-stats` event on the
//! page, the iframe's `postMessage` to its parent) reports progress, the
//! piece map (read from the DOM, or from the frame's messages) changes, and
//! the time shown advances.
#![allow(clippy::unwrap_used)]

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use anyhow::{Context, bail, ensure};
use serde_json::Value;

use fanswarm_e2e::browser::{Browser, Page};
use fanswarm_e2e::web::{self, ForeignSite};
use fanswarm_e2e::{netns, server};

const TEST: &str = "demo_page_and_both_embeds_play_and_report";

/// Piece states as the map shows them, counted.
type Counts = BTreeMap<String, u64>;

#[test]
fn demo_page_and_both_embeds_play_and_report() -> anyhow::Result<()> {
    netns::run(TEST, run())
}

async fn run() -> anyhow::Result<()> {
    let srv = server::start(90).await?;
    let site = artist_site(&srv.track).await?;
    let mut browser = Browser::launch().await?;
    let mut shots = Vec::new();

    // 1. The demo artist page on the server, desktop width.
    let demo = browser.open(&format!("{}/", srv.base)).await?;
    web::set_viewport(&mut browser, &demo, 1000, 860).await?;
    browser.eval(&demo, START_DEMO).await?;
    let early = dom_counts(&mut browser, &demo).await?;
    let early_time = browser.eval(&demo, TIME_TEXT).await?;
    wait_for(
        &mut browser,
        &demo,
        "demo page plays 4 s",
        "(() => { const p = document.querySelector('fanswarm-player');
        return p.audio.currentTime > 4 && p.stats().verifiedPieces > 2; })()",
    )
    .await?;
    // The live panel (from /api/swarm) counts this fan and the server's bytes.
    wait_for(
        &mut browser,
        &demo,
        "the live panel shows the swarm",
        "document.getElementById('fans').textContent !== '0'
            && document.getElementById('server-bytes').textContent !== '0 B'",
    )
    .await?;
    let late = dom_counts(&mut browser, &demo).await?;
    let late_time = browser.eval(&demo, TIME_TEXT).await?;
    let events = browser
        .eval(&demo, "JSON.stringify(window.__stats)")
        .await?;
    let events: Vec<Value> = serde_json::from_str(events.as_str().context("events")?)?;
    let total = late.values().sum::<u64>();
    println!(
        "demo page: map {early:?} -> {late:?}; time {early_time} -> {late_time}; {} stats events",
        events.len()
    );
    shots.push(web::screenshot(&mut browser, &demo, "demo-desktop").await?);
    web::set_viewport(&mut browser, &demo, 320, 640).await?;
    shots.push(web::screenshot(&mut browser, &demo, "demo-320px").await?);

    ensure!(
        total > 0
            && total
                == srv
                    .track
                    .length
                    .div_ceil(piece_length(&mut browser, &demo).await?),
        "one map cell per piece: {late:?}"
    );
    ensure!(
        non_missing(&late) > non_missing(&early),
        "the map filled in: {early:?} -> {late:?}"
    );
    ensure!(
        late.get("played").copied().unwrap_or(0) > 0,
        "played pieces are shown: {late:?}"
    );
    ensure!(
        early_time != late_time,
        "the time shown advances: {early_time} -> {late_time}"
    );
    ensure!(
        events.len() >= 2,
        "fanswarm-stats fired as stats changed: {events:?}"
    );
    let verified = |v: &Value| v["verifiedPieces"].as_u64().unwrap_or(0);
    ensure!(
        verified(events.last().unwrap()) > verified(&events[0]),
        "the events report progress: {} -> {}",
        events[0],
        events.last().unwrap()
    );

    // Keyboard and accessible names: K on the focused player pauses, then plays.
    let names = browser.eval(&demo, NAMES).await?;
    println!("accessible names: {names}");
    ensure!(
        names["toggle"] == format!("Pause {}", srv.track.name).as_str()
            && names["seek"] == "Seek"
            && names["volume"] == "Volume"
            && names["map"]
                .as_str()
                .is_some_and(|m| m.starts_with(&format!("Piece map of {total} pieces"))),
        "accessible names: {names}"
    );
    press_k(&mut browser, &demo).await?;
    let paused = browser.eval(&demo, NAMES).await?;
    ensure!(
        paused["paused"] == true && paused["toggle"] == format!("Play {}", srv.track.name).as_str(),
        "K paused: {paused}"
    );
    press_k(&mut browser, &demo).await?;
    wait_for(
        &mut browser,
        &demo,
        "K plays again",
        "!document.querySelector('fanswarm-player').audio.paused",
    )
    .await?;

    // 2. The iframe snippet on the artist's page: the frame posts its stats.
    let framed = browser.open(&format!("{}/iframe.html", site.base)).await?;
    web::set_viewport(&mut browser, &framed, 1000, 700).await?;
    let messages = wait_progress(
        &mut browser,
        &framed,
        "window.__messages",
        "document.querySelector('iframe').contentWindow.postMessage({ fanswarm: 'play' }, '*')",
    )
    .await?;
    let (first, last) = (&messages[0], messages.last().unwrap());
    println!(
        "iframe embed: {} messages from {}; map {:?} -> {:?}; last stats {}",
        messages.len(),
        last["origin"],
        counts_of(&first["pieces"]),
        counts_of(&last["pieces"]),
        last["stats"]
    );
    shots.push(web::screenshot(&mut browser, &framed, "artist-iframe-desktop").await?);
    ensure!(
        last["origin"] == srv.base.as_str(),
        "the stats come from the server's frame"
    );
    ensure!(
        non_missing(&counts_of(&last["pieces"])) > non_missing(&counts_of(&first["pieces"])),
        "the frame's piece map changed"
    );

    // 3. The embed.js snippet on the artist's page, phone width.
    let scripted = browser.open(&format!("{}/script.html", site.base)).await?;
    web::set_viewport(&mut browser, &scripted, 320, 560).await?;
    let events = wait_progress(
        &mut browser,
        &scripted,
        "window.__events",
        "document.querySelector('fanswarm-player').play()",
    )
    .await?;
    // Give the swarm time to connect the fans, for a fuller screenshot.
    let connected = wait_for(
        &mut browser,
        &scripted,
        "script embed gets bytes from fans",
        "document.querySelector('fanswarm-player').stats().fromPeers > 0",
    )
    .await
    .is_ok();
    let pieces = browser
        .eval(
            &scripted,
            "document.querySelector('fanswarm-player').pieces()",
        )
        .await?;
    let mode = browser
        .eval(&scripted, "document.querySelector('fanswarm-player').shadowRoot.querySelector('iframe')?.src ?? 'in page'")
        .await?;
    let last = browser
        .eval(
            &scripted,
            "document.querySelector('fanswarm-player').stats()",
        )
        .await?;
    println!(
        "script embed ({mode}): {} events; map {:?}; got bytes from fans: {connected}; last stats {last}",
        events.len(),
        counts_of(&pieces)
    );
    shots.push(web::screenshot(&mut browser, &scripted, "artist-script-320px").await?);
    ensure!(
        non_missing(&counts_of(&pieces)) > 0,
        "pieces() reports verified pieces"
    );

    // The first fan again, after serving the others: "passed on" counts.
    let first_fan = browser
        .eval(&demo, "document.querySelector('fanswarm-player').stats()")
        .await?;
    let panel = browser
        .eval(&demo, "fetch('/api/swarm').then((r) => r.text())")
        .await?;
    println!("demo page at the end: {first_fan}; /api/swarm: {panel}");
    web::set_viewport(&mut browser, &demo, 1000, 860).await?;
    browser.eval(&demo, "scrollTo(0, 0); true").await?;
    // The track's "Share or embed" section: magnet and both snippets.
    let shown = browser
        .eval(
            &demo,
            "(() => { document.querySelector('details').open = true;
            return [...document.querySelectorAll('details code')].map((c) => c.textContent); })()",
        )
        .await?;
    ensure!(
        shown
            == serde_json::json!([
                srv.track.magnet,
                srv.track.embed_html,
                srv.track.embed_script_html
            ]),
        "the demo page shows the magnet and both snippets: {shown}"
    );
    shots.push(web::screenshot(&mut browser, &demo, "demo-desktop-end").await?);

    for path in shots {
        println!("screenshot: {}", path.display());
    }
    Ok(())
}

/// Waits for the demo page's first player, records its `fanswarm-stats`
/// events and presses play (no STUN: the namespace has no route out).
const START_DEMO: &str = "(async () => {
    await Promise.race([customElements.whenDefined('fanswarm-player'),
        new Promise((_, reject) => setTimeout(() =>
            reject(new Error('player.js defined no <fanswarm-player>: a module error?')), 20000))]);
    for (let i = 0; i < 200 && !document.querySelector('fanswarm-player'); i++)
        await new Promise((r) => setTimeout(r, 50));
    const p = document.querySelector('fanswarm-player');
    p.setAttribute('ice-servers', '');
    window.__stats = [];
    document.addEventListener('fanswarm-stats', (e) => window.__stats.push(e.detail));
    await p.play();
    return true;
})()";

/// The accessible names of the demo player's controls, and whether it is paused.
const NAMES: &str =
    "(() => { const p = document.querySelector('fanswarm-player'); const r = p.shadowRoot;
    const name = (ui) => r.querySelector(`[data-ui=${ui}]`).getAttribute('aria-label');
    return { toggle: name('toggle'), seek: name('seek'), volume: name('volume'), map: name('map'),
             paused: p.audio.paused }; })()";

const TIME_TEXT: &str = "document.querySelector('fanswarm-player').shadowRoot.querySelector('[data-ui=time]').textContent";

/// The artist's two pages: one with the iframe line, one with the script
/// line, each recording what the player tells the page.
async fn artist_site(track: &signal_server::catalog::Track) -> anyhow::Result<ForeignSite> {
    let page = |body: &str, script: &str| {
        format!(
            "<!doctype html><html lang=en><head><meta charset=utf-8>\
             <meta name=viewport content='width=device-width, initial-scale=1'><title>The Artist</title>\
             <style>body{{font:17px/1.5 Georgia,serif;max-width:40rem;margin:1.5rem auto;padding:0 1rem;background:#fbf6ec;color:#2b2118}}</style>\
             </head><body><h1>The Artist</h1><p>The new single, streamed by the people listening to it:</p>\
             {body}<p>Tour dates soon.</p><script>{script}</script></body></html>"
        )
    };
    web::foreign_site(vec![
        (
            "/iframe.html",
            page(
                &track.embed_html,
                "window.__messages = []; addEventListener('message', (e) => {
                   if (e.data && e.data.fanswarm === 'stats')
                     window.__messages.push({ origin: e.origin, stats: e.data.stats, pieces: e.data.pieces });
                 });",
            ),
        ),
        (
            "/script.html",
            page(
                &track.embed_script_html,
                "window.__events = []; document.addEventListener('fanswarm-stats', (e) => window.__events.push({ stats: e.detail }));",
            ),
        ),
    ])
    .await
}

/// Runs `kick` every half second until the list at `list` holds two
/// entries whose `stats.verifiedPieces` grew; returns the list.
async fn wait_progress(
    browser: &mut Browser,
    page: &Page,
    list: &str,
    kick: &str,
) -> anyhow::Result<Vec<Value>> {
    let until = Instant::now() + Duration::from_secs(60);
    loop {
        let _ = browser.eval(page, &format!("{kick}; true")).await;
        let text = browser
            .eval(page, &format!("JSON.stringify({list} ?? [])"))
            .await?;
        let items: Vec<Value> = serde_json::from_str(text.as_str().context("list")?)?;
        let v = |i: &Value| i["stats"]["verifiedPieces"].as_u64().unwrap_or(0);
        if let (Some(first), Some(last)) = (items.first(), items.last())
            && v(last) > v(first)
            && v(last) > 2
        {
            return Ok(items);
        }
        if Instant::now() > until {
            bail!("{list} showed no progress in 60 s: {items:?}");
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

async fn wait_for(
    browser: &mut Browser,
    page: &Page,
    what: &str,
    test: &str,
) -> anyhow::Result<()> {
    let until = Instant::now() + Duration::from_secs(60);
    while browser.eval(page, test).await?.as_bool() != Some(true) {
        if Instant::now() > until {
            bail!("{what}: not in 45 s");
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    Ok(())
}

/// Focuses the demo player's button and types K, as a keyboard user would.
async fn press_k(browser: &mut Browser, page: &Page) -> anyhow::Result<()> {
    browser
        .eval(page, "document.querySelector('fanswarm-player').shadowRoot.querySelector('[data-ui=toggle]').focus(); true")
        .await?;
    for kind in ["keyDown", "keyUp"] {
        browser
            .call(
                Some(page),
                "Input.dispatchKeyEvent",
                serde_json::json!({ "type": kind, "key": "k", "code": "KeyK", "text": "k",
                                    "windowsVirtualKeyCode": 75 }),
            )
            .await?;
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    Ok(())
}

/// The map's cells counted by `data-state`, read from the shadow DOM.
async fn dom_counts(browser: &mut Browser, page: &Page) -> anyhow::Result<Counts> {
    let states = browser
        .eval(
            page,
            "[...document.querySelector('fanswarm-player').shadowRoot
            .querySelectorAll('[data-ui=map] i')].map((i) => i.dataset.state)",
        )
        .await?;
    Ok(counts_of(&states))
}

async fn piece_length(browser: &mut Browser, page: &Page) -> anyhow::Result<u64> {
    browser
        .eval(
            page,
            "document.querySelector('fanswarm-player').track.pieceLength",
        )
        .await?
        .as_u64()
        .context("pieceLength")
}

fn counts_of(states: &Value) -> Counts {
    let mut counts = Counts::new();
    for s in states.as_array().into_iter().flatten() {
        *counts
            .entry(s.as_str().unwrap_or("?").to_owned())
            .or_default() += 1;
    }
    counts
}

fn non_missing(c: &Counts) -> u64 {
    c.iter()
        .filter(|(k, _)| *k != "missing")
        .map(|(_, n)| n)
        .sum()
}
