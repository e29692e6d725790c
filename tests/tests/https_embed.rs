//! The deploy that matters: an artist's HTTPS page embeds the player from
//! the server over `https://` and the tracker over `wss://`, both from the
//! server's own TLS (`signal_server::tls`, rustls), and two fans on that
//! page play and swarm.
//!
//! Chromium trusts the test CA's key through
//! `--ignore-certificate-errors-spki-list` (a pin of the one key, not a
//! blanket "ignore errors": with a real certificate error a page would not
//! get its service worker). A plain-HTTP page could not do this at all: the
//! browser blocks `http://` frames and `ws://` sockets on an `https://` page.

use std::time::Duration;

use anyhow::{Context, bail, ensure};

use fanswarm_e2e::browser::{Browser, Page};
use fanswarm_e2e::tls::TestCa;
use fanswarm_e2e::{netns, server, web};

const TEST: &str = "https_page_embeds_over_https_and_wss_and_two_fans_swarm";

#[test]
fn https_page_embeds_over_https_and_wss_and_two_fans_swarm() -> anyhow::Result<()> {
    netns::run(TEST, run())
}

async fn run() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let ca = TestCa::new()?;
    let leaf = ca.leaf(&["localhost", "127.0.0.1"])?;
    let (cert, key) = leaf.write(dir.path())?;
    let files = server::TlsFiles { cert, key };
    let srv = server::start_tls(40, &files).await?;
    ensure!(srv.base.starts_with("https://"), "base {}", srv.base);
    ensure!(
        srv.track.magnet.contains("tr=wss%3A%2F%2F")
            && srv.track.torrent_url.starts_with("https://"),
        "the published links say https and wss: {} {}",
        srv.track.magnet,
        srv.track.torrent_url
    );

    let acceptor = {
        let key = signal_server::tls::load(&signal_server::tls::TlsFiles {
            cert: files.cert.clone(),
            key: files.key.clone(),
        })?;
        tokio_rustls::TlsAcceptor::from(signal_server::tls::server_config(
            signal_server::tls::Certificates::new(key),
        )?)
    };
    let page = format!(
        "<!doctype html><html lang=en><head><meta charset=utf-8><title>The Artist</title></head>\
         <body><h1>The Artist</h1>{}<script>window.__time = 0;
         addEventListener('message', (e) => {{ if (e.data && e.data.fanswarm === 'stats')
           window.__time = Math.max(window.__time, e.data.currentTime || 0); }});</script></body></html>",
        srv.track.embed_script_html
    );
    let site = web::foreign_site_tls(vec![("/", page)], acceptor).await?;
    ensure!(site.base.starts_with("https://"));

    let mut browser = Browser::launch_with(&[format!(
        "--ignore-certificate-errors-spki-list={}",
        leaf.spki_pin
    )])
    .await?;
    let url = format!("{}/", site.base);
    let first = browser.open(&url).await?;
    ensure!(
        browser
            .eval(&first, "window.isSecureContext && location.protocol")
            .await?
            == "https:",
        "the artist's page is a secure https page"
    );
    play(&mut browser, &first).await?;
    wait_for(
        &mut browser,
        &first,
        "the first fan plays 2 s",
        "window.__time > 2 && document.querySelector('fanswarm-player').stats().verifiedPieces > 2",
        Duration::from_secs(60),
    )
    .await?;

    let second = browser.open(&url).await?;
    play(&mut browser, &second).await?;
    wait_for(
        &mut browser,
        &second,
        "the second fan gets bytes from the first over WebRTC (signalled over wss)",
        "document.querySelector('fanswarm-player').stats().fromPeers > 0",
        Duration::from_secs(60),
    )
    .await?;
    let stats = browser
        .eval(
            &second,
            "JSON.stringify(document.querySelector('fanswarm-player').stats())",
        )
        .await?;
    println!("second fan over https/wss: {stats}");
    Ok(())
}

async fn play(browser: &mut Browser, page: &Page) -> anyhow::Result<()> {
    wait_for(
        browser,
        page,
        "the player element is defined",
        "!!customElements.get('fanswarm-player')",
        Duration::from_secs(30),
    )
    .await?;
    browser
        .eval(
            page,
            "document.querySelector('fanswarm-player').play(); true",
        )
        .await
        .context("pressing play")?;
    Ok(())
}

async fn wait_for(
    browser: &mut Browser,
    page: &Page,
    what: &str,
    test: &str,
    limit: Duration,
) -> anyhow::Result<()> {
    if browser.became_true(page, test, limit).await {
        return Ok(());
    }
    let state = browser
        .eval(
            page,
            "(() => { const p = document.querySelector('fanswarm-player');
                       return JSON.stringify({ time: window.__time, stats: p?.stats?.() }); })()",
        )
        .await
        .unwrap_or_default();
    bail!("{what}: not within {limit:?} ({state})")
}
