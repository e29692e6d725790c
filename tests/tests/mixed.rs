//! A native WebRTC seeder and a browser page, with no web seed: the page
//! gets the whole track from the native peer over WebRTC.
//!
//! Prints the page's download speed from the native peer (first peer
//! connected to done).

use std::time::{Duration, Instant};

use swarm::metainfo::Metainfo;

use fanswarm_e2e::browser::Browser;
use fanswarm_e2e::native::{self, Behaviour};
use fanswarm_e2e::netns;
use fanswarm_e2e::player::{self, num};
use fanswarm_e2e::server::{self, ServerOptions};

const TEST: &str = "a_page_gets_the_whole_track_from_a_native_seeder";

#[test]
fn a_page_gets_the_whole_track_from_a_native_seeder() -> anyhow::Result<()> {
    netns::run(TEST, run())
}

async fn run() -> anyhow::Result<()> {
    // 120 s of audio, ~5.3 MB: long enough to measure a transfer rate.
    let srv = server::start_with(ServerOptions {
        seconds: 120,
        web_seed: false,
    })
    .await?;
    let meta = Metainfo::from_bytes(&srv.track.torrent)?;
    assert!(meta.url_list.is_empty(), "the torrent names no web seed");
    let seeder = native::seeder(&srv, Behaviour::Honest).await?;

    let mut browser = Browser::launch().await?;
    let started = Instant::now();
    let page = browser.open(&srv.track.embed_url).await?;
    player::press_play(&mut browser, &page).await?;
    let pages = [page];
    let done = player::wait_all(
        &mut browser,
        &pages,
        Duration::from_secs(60),
        "the page done",
        |s| s["done"] == true,
    )
    .await?;
    let elapsed = started.elapsed().as_secs_f64();
    let [page] = pages;
    let speed_secs = browser
        .eval(
            &page,
            "((window.__doneAt ?? NaN) - (window.__peerAt ?? NaN)) / 1000",
        )
        .await?
        .as_f64()
        .unwrap_or(f64::NAN);
    let assembled = player::assembled(&mut browser, &page).await?;
    let playing = player::wait_all(
        &mut browser,
        std::slice::from_ref(&page),
        Duration::from_secs(20),
        "the page playing",
        |s| s["currentTime"].as_f64().unwrap_or(0.0) > 0.5,
    )
    .await?;
    println!("page log: {}", player::log(&mut browser, &page).await?);

    let s = &done[0];
    let length = srv.file.len() as f64;
    let seeded = seeder.stats();
    println!(
        "track {} bytes: page done {elapsed:.1} s after opening; from peers {:.0} B, \
         from web seed {:.0} B; seeder uploaded {} B; {:.2} s from first peer to done: \
         {:.2} MiB/s native → browser",
        srv.file.len(),
        num(s, "fromPeers"),
        num(s, "fromWebSeed"),
        seeded.uploaded,
        speed_secs,
        length / speed_secs / 1_048_576.0
    );
    assert_eq!(
        assembled,
        player::digest_of(&srv.file),
        "the page assembled exactly the file"
    );
    assert_eq!(num(s, "fromPeers"), length, "every byte came from peers");
    assert_eq!(num(s, "fromWebSeed"), 0.0, "nothing from a web seed");
    assert_eq!(srv.webseed_bytes(), 0, "the server's /media sent nothing");
    assert!(
        seeded.uploaded >= srv.file.len() as u64,
        "the native seeder served the track: {seeded:?}"
    );
    assert!(
        num(&playing[0], "currentTime") > 0.5,
        "the page plays what it got"
    );
    seeder.stop().await;
    Ok(())
}
