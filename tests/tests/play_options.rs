//! fanswarm.js's `play()` options that only a browser can check: a custom
//! `streamPrefix` is the prefix the service worker serves (it once had
//! `/fanswarm/stream/` hard-coded, so any other prefix fell through to the
//! network and 404), and `streaming: false` plays the web seed directly even
//! where our worker controls the page (it was overwritten with `true`).

use anyhow::{Context, ensure};
use serde_json::Value;

use fanswarm_e2e::browser::Browser;
use fanswarm_e2e::{netns, server};

const TEST: &str = "stream_prefix_reaches_the_worker_and_streaming_false_is_kept";

#[test]
fn stream_prefix_reaches_the_worker_and_streaming_false_is_kept() -> anyhow::Result<()> {
    netns::run(TEST, run())
}

async fn run() -> anyhow::Result<()> {
    let srv = server::start(20).await?;
    let torrent = srv
        .track
        .torrent_url
        .strip_prefix(&srv.base)
        .context("torrent URL on the server")?
        .to_owned();
    let mut browser = Browser::launch().await?;
    // A page of the server's origin with no player of its own: the script
    // imports fanswarm.js itself, as a page using the JS API would.
    let page = browser.open(&format!("{}/api/tracks", srv.base)).await?;
    let text = browser
        .eval(
            &page,
            &format!(
                "(async () => {{
            const fanswarm = (await import('/fanswarm.js')).default;
            const playing = (audio) => new Promise((resolve, reject) => {{
                audio.addEventListener('playing', resolve, {{ once: true }});
                audio.addEventListener('error', () => reject(new Error('audio error ' + audio.error?.code)));
                setTimeout(() => reject(new Error('not playing after 20 s')), 20000);
            }});
            const streamed = new Audio();
            const streamedPlays = playing(streamed);
            const track = await fanswarm.play(streamed, {{ torrent: '{torrent}',
                streamPrefix: '/music/live/', iceServers: [] }});
            await streamedPlays;
            const first = {{ streamUrl: track.streamUrl, streamedSrc: new URL(streamed.src).pathname,
                streamedBytes: track.stats().downloaded }};
            // One session per track and page: the second would answer the
            // worker's requests for the same stream too.
            streamed.pause();
            track.destroy();
            const direct = new Audio();
            const directPlays = playing(direct);
            const second = await fanswarm.play(direct, {{ torrent: '{torrent}',
                streaming: false, iceServers: [] }});
            await directPlays;
            return JSON.stringify({{
                controlled: !!navigator.serviceWorker.controller,
                worker: navigator.serviceWorker.controller?.scriptURL,
                ...first,
                directSrc: new URL(direct.src).pathname,
                secondStreamUrl: second.streamUrl,
            }});
        }})()"
            ),
        )
        .await?;
    let got: Value = serde_json::from_str(text.as_str().context("result JSON")?)?;
    println!("play options: {got}");
    let media = srv
        .track
        .media_url
        .strip_prefix(&srv.base)
        .context("media URL on the server")?;
    ensure!(
        got["controlled"] == true,
        "our worker controls the page: {got}"
    );
    ensure!(
        got["streamUrl"]
            .as_str()
            .is_some_and(|u| u.starts_with("/music/live/")),
        "the stream URL is under the custom prefix: {got}"
    );
    ensure!(
        got["streamedSrc"] == got["streamUrl"],
        "the first element plays the stream URL (through the worker): {got}"
    );
    ensure!(
        got["worker"]
            .as_str()
            .is_some_and(|w| w.ends_with("/sw.js?prefix=%2Fmusic%2Flive%2F")),
        "the worker was registered for that prefix: {got}"
    );
    ensure!(
        got["directSrc"] == media,
        "streaming: false plays the web seed URL directly: {got}"
    );
    ensure!(
        got["secondStreamUrl"]
            .as_str()
            .is_some_and(|u| u.starts_with("/music/live/")),
        "a play() without streamPrefix keeps the page's: {got}"
    );
    Ok(())
}
