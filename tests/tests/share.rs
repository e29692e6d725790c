//! A fan shares a file straight from a browser tab (`/share`), and it plays
//! in other browsers by magnet alone, the server only introducing peers:
//! from the share link (the server's `/embed/<hex>?magnet=…`) and from the
//! `<fanswarm-player src="magnet:…">` snippet on another origin, with no
//! byte from the server's web seed; and a file seeded by a WebTorrent 3
//! page plays the same way. Then the server is closed to swarms it
//! did not publish (`--swarms published`): the tracker refuses the magnet's
//! announce with a `failure reason`, the frame shows a refusal instead of a
//! waiting player, and `/share` says sharing is off.

use std::time::Duration;

use anyhow::{Context, ensure};
use serde_json::Value;
use swarm::magnet::Magnet;
use swarm::metainfo::{TorrentBuilder, hash_pieces};

use fanswarm_e2e::browser::{Browser, Page};
use fanswarm_e2e::player::{self, num};
use fanswarm_e2e::{netns, server, web};
use fanswarm_tracker::Access;

const TEST: &str =
    "a_file_shared_from_a_tab_plays_elsewhere_by_magnet_and_a_closed_server_refuses_it";

/// The fan's file: 30 s of synthesized WAV (~1.3 MB: two 1 MiB reads, so
/// the progress moves), not the track the server publishes.
const SECONDS: u32 = 30;
const NAME: &str = "fan recording.wav";

#[test]
fn a_file_shared_from_a_tab_plays_elsewhere_by_magnet_and_a_closed_server_refuses_it()
-> anyhow::Result<()> {
    netns::run(TEST, run())
}

async fn run() -> anyhow::Result<()> {
    let srv = server::start(5).await?;
    let samples = signal_server::demo::synthesize(SECONDS, 11);
    let file = signal_server::demo::wav_bytes(&samples, signal_server::demo::SAMPLE_RATE);
    let mut browser = Browser::launch().await?;

    // 1. Page A: the file picked in /share is hashed and seeded from the tab.
    let sharer = browser.open(&format!("{}/share", srv.base)).await?;
    let started = std::time::Instant::now();
    pick_file(&mut browser, &sharer, &file).await?;
    ensure!(
        browser
            .became_true(&sharer, "!!window.fanswarmShared", Duration::from_secs(20))
            .await,
        "the page never shared the file: status {}",
        browser
            .eval(&sharer, "document.getElementById('status').textContent")
            .await?
    );
    let hashed_ms = started.elapsed().as_millis();
    let shared = browser
        .eval(
            &sharer,
            "JSON.stringify({ link: fanswarmShared.link, magnet: fanswarmShared.track.magnet,
               hash: fanswarmShared.track.infoHash, script: document.getElementById('script').value,
               iframe: document.getElementById('iframe').value, progress: window.__progress })",
        )
        .await?;
    let shared: Value = serde_json::from_str(shared.as_str().context("share JSON")?)?;
    let text = |k: &str| shared[k].as_str().unwrap_or_default().to_owned();
    println!(
        "shared {} B in {hashed_ms} ms (hashing included); progress {}",
        file.len(),
        shared["progress"]
    );

    // The torrent is the one a native tool makes of the same bytes.
    let magnet = Magnet::parse(&text("magnet"))?;
    let tracker = format!("ws://{}/announce", srv.base.trim_start_matches("http://"));
    let builder = TorrentBuilder::single_file(NAME, file.len() as u64).tracker(tracker.clone());
    let expected = builder.build(&hash_pieces(&file, builder.chosen_piece_length())?)?;
    ensure!(
        magnet.info_hash == expected.info_hash,
        "the wasm's torrent is the native one: {} vs {}",
        magnet.info_hash,
        expected.info_hash
    );
    ensure!(text("hash") == expected.info_hash.to_hex());
    ensure!(
        magnet.trackers == vec![tracker.clone()],
        "tr: {:?}",
        magnet.trackers
    );
    ensure!(magnet.display_name.as_deref() == Some(NAME));
    ensure!(magnet.exact_length == Some(file.len() as u64), "xl");
    ensure!(
        magnet.web_seeds.is_empty() && magnet.exact_sources.is_empty(),
        "nothing but peers"
    );
    let percents: Vec<u32> = shared["progress"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|s| {
            s.as_str()?
                .strip_prefix(&format!("Hashing {NAME}: "))?
                .strip_suffix(" %")?
                .parse()
                .ok()
        })
        .collect();
    ensure!(
        percents.iter().any(|p| *p < 100) && percents.last() == Some(&100),
        "the hashing progress moves to 100 %: {}",
        shared["progress"]
    );
    ensure!(
        text("iframe").contains(&text("link").replace('&', "&#38;")),
        "{}",
        text("iframe")
    );

    let shot = web::screenshot(&mut browser, &sharer, "share-page").await?;
    println!("screenshot: {}", shot.display());

    // 2. Page B opens the link: the server's frame plays it by magnet.
    let link = browser.open(&text("link")).await?;
    player::press_play(&mut browser, &link).await?;
    let states = player::wait_all(
        &mut browser,
        std::slice::from_ref(&link),
        Duration::from_secs(40),
        "the link page has every piece and plays",
        |s| s["done"] == true && num(s, "currentTime") > 0.0,
    )
    .await?;
    let b = &states[0];
    ensure!(
        player::assembled(&mut browser, &link).await? == player::digest_of(&file),
        "the link page's stream is the file"
    );
    ensure!(
        num(b, "fromPeers") == file.len() as f64 && num(b, "fromWebSeed") == 0.0,
        "every byte from the sharing tab: {b}"
    );
    let title = browser
        .eval(
            &link,
            "document.querySelector('fanswarm-player').shadowRoot.querySelector('[data-ui=title]').textContent",
        )
        .await?;
    ensure!(title == NAME, "the player shows the file's name: {title}");
    browser.close(&link).await?;

    // 3. Page C: the script snippet on an artist's site (another origin).
    let site = web::foreign_site(vec![(
        "/fan.html",
        format!(
            "<!doctype html><html lang=en><head><meta charset=utf-8><title>A fan's page</title></head>\
             <body><h1>Listen</h1>{}<script>window.__frame = {{ done: false, time: 0 }};
             addEventListener('message', (e) => {{ if (e.data?.fanswarm !== 'stats') return;
               window.__frame.stats = e.data.stats; window.__frame.done ||= e.data.stats.done;
               window.__frame.time = Math.max(window.__frame.time, e.data.currentTime); }});</script></body></html>",
            text("script")
        ),
    )])
    .await?;
    let fan = browser.open(&format!("{}/fan.html", site.base)).await?;
    browser
        .eval(
            &fan,
            "(async () => { await customElements.whenDefined('fanswarm-player');
               const p = document.querySelector('fanswarm-player'); await p.ready; await p.play(); return true; })()",
        )
        .await?;
    let played = browser
        .became_true(
            &fan,
            "window.__frame.done && window.__frame.time > 0",
            Duration::from_secs(40),
        )
        .await;
    let frame = browser
        .eval(
            &fan,
            "JSON.stringify({ ...window.__frame, src: document.querySelector('fanswarm-player').shadowRoot.querySelector('iframe')?.src })",
        )
        .await?;
    println!("foreign embed: {frame}");
    let frame: Value = serde_json::from_str(frame.as_str().context("frame JSON")?)?;
    ensure!(played, "the foreign embed played the whole track: {frame}");
    ensure!(
        frame["src"]
            .as_str()
            .is_some_and(|s| s.starts_with(&format!(
                "{}/embed/{}?magnet=",
                srv.base,
                text("hash")
            ))),
        "the element framed the server's player with the magnet: {frame}"
    );
    ensure!(
        num(&frame["stats"], "fromPeers") == file.len() as f64
            && num(&frame["stats"], "fromWebSeed") == 0.0,
        "every byte from fans: {frame}"
    );
    let sent = browser
        .eval(
            &sharer,
            "JSON.stringify({ stats: fanswarmShared.track.stats(), sent: document.getElementById('sent').textContent })",
        )
        .await?;
    println!("sharing tab: {sent}");
    let sent: Value = serde_json::from_str(sent.as_str().context("sharer JSON")?)?;
    ensure!(
        num(&sent["stats"], "uploaded") >= file.len() as f64,
        "the sharing tab sent the file at least once: {sent}"
    );
    ensure!(
        srv.webseed_bytes() == 0,
        "no byte from the server's web seed: {}",
        srv.webseed_bytes()
    );

    // How fast the tab hashes: a 32 MiB file, both reads (hashing, then
    // loading the store, which checks every piece again). A figure, printed.
    let speed = browser
        .eval(
            &sharer,
            "(async () => {
               const parts = [];
               for (let i = 0; i < 512; i++) parts.push(crypto.getRandomValues(new Uint8Array(65536)));
               const file = new File(parts, 'big.wav');
               const marks = [];
               const status = document.getElementById('status');
               const watch = new MutationObserver(() => marks.push([performance.now(), status.textContent]));
               watch.observe(status, { childList: true, characterData: true, subtree: true });
               const t0 = performance.now();
               const track = await fanswarmSharePage.share(file);
               const t1 = performance.now();
               watch.disconnect();
               const loading = marks.find(([, text]) => text.startsWith('Getting ready'))?.[0] ?? t1;
               track.destroy();
               return { hashMs: Math.round(loading - t0), totalMs: Math.round(t1 - t0) };
             })()",
        )
        .await?;
    println!("a 32 MiB file in the tab: {speed} (hashing, then hashing and loading all)");

    // 4. A WebTorrent 3 page seeds a file of its own; the link form of our
    //    embed plays its magnet.
    webtorrent_seed_plays(&mut browser, &srv, &tracker).await?;

    // 5. Only the published swarms from now on.
    srv.set_access(Access::only([srv.track.info_hash]));
    let hex = text("hash");
    let announce = browser
        .eval(
            &sharer,
            &format!(
                "new Promise((resolve, reject) => {{
                   const ws = new WebSocket({tracker:?});
                   const bytes = (hex) => hex.match(/../g).map((h) => String.fromCharCode(parseInt(h, 16))).join('');
                   ws.onopen = () => ws.send(JSON.stringify({{ action: 'announce', info_hash: bytes('{hex}'),
                     peer_id: '-WW0300-refusedpeer1', numwant: 5, uploaded: 0, downloaded: 0, left: 0 }}));
                   ws.onmessage = (e) => {{ ws.close(); resolve(e.data); }};
                   ws.onerror = () => reject(new Error('tracker socket failed'));
                   setTimeout(() => reject(new Error('no answer from the tracker')), 10000);
                 }})",
                tracker = magnet.trackers[0]
            ),
        )
        .await?;
    let announce: Value = serde_json::from_str(announce.as_str().context("tracker reply")?)?;
    println!("closed tracker: {announce}");
    ensure!(
        announce["failure reason"]
            .as_str()
            .is_some_and(|r| r.starts_with("info_hash not allowed")),
        "the tracker refuses a swarm it does not serve: {announce}"
    );
    let statuses = browser
        .eval(
            &sharer,
            &format!(
                "Promise.all([{link:?}, '/share', '/embed/{published}'].map((u) =>
                   fetch(u).then(async (r) => r.status + ' ' + (await r.text()))))",
                link = text("link"),
                published = srv.track.info_hash.to_hex()
            ),
        )
        .await?;
    let statuses: Vec<String> = serde_json::from_value(statuses)?;
    ensure!(
        statuses[0].starts_with("403 ")
            && statuses[0].contains("plays only the tracks it publishes"),
        "the frame refuses a foreign magnet: {}",
        statuses[0]
    );
    ensure!(
        statuses[1].starts_with("403 ") && statuses[1].contains("Sharing is off"),
        "/share says sharing is off: {}",
        statuses[1]
    );
    ensure!(
        statuses[2].starts_with("200 ") && statuses[2].contains("<fanswarm-player"),
        "the published track still plays"
    );
    // The foreign page again: its element says why instead of waiting.
    browser.close(&fan).await?;
    let fan = browser.open(&format!("{}/fan.html", site.base)).await?;
    let refused = browser
        .eval(
            &fan,
            "(async () => { await customElements.whenDefined('fanswarm-player');
               const p = document.querySelector('fanswarm-player');
               return await Promise.race([p.ready.then(() => 'ready', (e) => 'refused: ' + e.message),
                 new Promise((r) => setTimeout(() => r('neither within 15 s'), 15000))]); })()",
        )
        .await?;
    println!("foreign embed, closed server: {refused}");
    ensure!(
        refused.as_str().is_some_and(
            |r| r.starts_with("refused: This server plays only the tracks it publishes")
        ),
        "the element hears the frame's refusal: {refused}"
    );
    Ok(())
}

/// webtorrent@3's browser bundle, fetched by `scripts/install-deps --test`.
fn webtorrent_bundle() -> anyhow::Result<String> {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../target/npm/webtorrent/package/dist/webtorrent.min.js");
    std::fs::read_to_string(&path).with_context(|| {
        format!(
            "reading {} (scripts/install-deps --test fetches it)",
            path.display()
        )
    })
}

/// A page on another origin seeds a file with WebTorrent 3 (its own
/// hashing, its own tracker client and peer); the server's embed page
/// plays the magnet WebTorrent made, every byte from that page.
async fn webtorrent_seed_plays(
    browser: &mut Browser,
    srv: &server::TestServer,
    tracker: &str,
) -> anyhow::Result<()> {
    let bundle = webtorrent_bundle()?;
    let router = axum::Router::new()
        .route(
            "/wt.html",
            axum::routing::get(|| async {
                axum::response::Html(
                    "<!doctype html><html lang=en><head><meta charset=utf-8><title>WebTorrent</title></head><body>\
                     <script type=module>import WebTorrent from '/webtorrent.min.js';\
                     window.WebTorrent = WebTorrent;</script></body></html>",
                )
            }),
        )
        .route(
            "/webtorrent.min.js",
            axum::routing::get(move || async move {
                ([("content-type", "text/javascript")], bundle)
            }),
        );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let port = listener.local_addr()?.port();
    tokio::spawn(async move { axum::serve(listener, router).await });

    let samples = signal_server::demo::synthesize(10, 12);
    let file = signal_server::demo::wav_bytes(&samples, signal_server::demo::SAMPLE_RATE);
    let seeder = browser
        .open(&format!("http://127.0.0.1:{port}/wt.html"))
        .await?;
    let base64 = data_encoding::BASE64.encode(&file);
    let magnet = browser
        .eval(
            &seeder,
            &format!(
                "(async () => {{
                   for (let i = 0; i < 200 && !window.WebTorrent; i++) await new Promise((r) => setTimeout(r, 50));
                   // No STUN: the test's network has no route out.
                   const client = new WebTorrent({{ tracker: {{ rtcConfig: {{ iceServers: [] }} }} }});
                   window.client = client;
                   const bytes = Uint8Array.from(atob('{base64}'), (c) => c.charCodeAt(0));
                   const file = new File([bytes], 'webtorrent take.wav', {{ type: 'audio/wav' }});
                   return await new Promise((resolve, reject) => {{
                     client.on('error', (e) => reject(new Error(String(e))));
                     client.seed(file, {{ announce: [{tracker:?}] }}, (t) => resolve(t.magnetURI));
                     setTimeout(() => reject(new Error('WebTorrent did not seed within 20 s')), 20000);
                   }});
                 }})()"
            ),
        )
        .await?;
    let magnet = magnet.as_str().context("WebTorrent's magnet")?.to_owned();
    let parsed = Magnet::parse(&magnet)?;
    println!("WebTorrent seeds {magnet}");
    let link = format!(
        "{}/embed/{}?magnet={}",
        srv.base,
        parsed.info_hash.to_hex(),
        percent_encode(&magnet)
    );
    let page = browser.open(&link).await?;
    player::press_play(browser, &page).await?;
    let states = player::wait_all(
        browser,
        std::slice::from_ref(&page),
        Duration::from_secs(40),
        "our embed has every piece of WebTorrent's torrent and plays",
        |s| s["done"] == true && num(s, "currentTime") > 0.0,
    )
    .await?;
    ensure!(
        player::assembled(browser, &page).await? == player::digest_of(&file),
        "our stream of WebTorrent's torrent is the file"
    );
    ensure!(
        num(&states[0], "fromPeers") == file.len() as f64,
        "every byte from the WebTorrent page: {}",
        states[0]
    );
    let uploaded = browser.eval(&seeder, "client.torrents[0].uploaded").await?;
    println!(
        "WebTorrent page uploaded {uploaded} B; our page: {}",
        states[0]
    );
    browser.close(&page).await?;
    browser.close(&seeder).await?;
    Ok(())
}

/// `encodeURIComponent`.
fn percent_encode(text: &str) -> String {
    text.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || b"-_.!~*'()".contains(&b) {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

/// Gives `file` to the share page's file input, as picking it does, and
/// records every status the page shows meanwhile (`window.__progress`).
async fn pick_file(browser: &mut Browser, page: &Page, file: &[u8]) -> anyhow::Result<()> {
    let base64 = data_encoding::BASE64.encode(file);
    browser
        .eval(
            page,
            &format!(
                "(async () => {{
                   for (let i = 0; i < 200 && !document.getElementById('file'); i++)
                     await new Promise((r) => setTimeout(r, 50));
                   const status = document.getElementById('status');
                   window.__progress = [];
                   new MutationObserver(() => window.__progress.push(status.textContent))
                     .observe(status, {{ childList: true, characterData: true, subtree: true }});
                   const bytes = Uint8Array.from(atob('{base64}'), (c) => c.charCodeAt(0));
                   const picked = new DataTransfer();
                   picked.items.add(new File([bytes], {NAME:?}, {{ type: 'audio/wav' }}));
                   const input = document.getElementById('file');
                   input.files = picked.files;
                   input.dispatchEvent(new Event('change'));
                   return true;
                 }})()"
            ),
        )
        .await?;
    Ok(())
}
