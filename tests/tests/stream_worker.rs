//! The stream worker answers from bytes the page gave it ahead: once an
//! element reads a track, the page gives the worker the verified pieces of
//! the track's first `GIVEN_HEAD` and last `GIVEN_TAIL` bytes
//! (client-wasm/src/stream.rs), and a request starting there is answered
//! by the worker alone, with the file's bytes, where before each was a
//! conversation with the page (browsers read a file's head, its end, then
//! its head again before they play: a round trip to the page's main
//! thread each). A request elsewhere still asks the page.
//!
//! Observed from the page: every `open` the worker sends it is counted
//! (the session's own listener is one more listener of the same events)
//! where it starts within the range fetched, and the stream's bytes are
//! compared with the web seed's. ~3 s in Chromium, ~4 s in Firefox.
#![allow(clippy::unwrap_used)]

use std::time::Duration;

use anyhow::{Context, ensure};
use serde_json::Value;

use fanswarm_e2e::browser::{Browser, Engine, Page};
use fanswarm_e2e::player::press_play;
use fanswarm_e2e::{netns, server};

const CHROMIUM: &str = "the_worker_answers_a_tracks_head_and_tail_without_the_page";
const FIREFOX: &str = "the_worker_answers_a_tracks_head_and_tail_without_the_page_in_firefox";
/// 60 s of the test WAV: 2.6 MB, so its middle is neither the head
/// (1 MiB) nor the tail (256 KiB).
const SECONDS: u32 = 60;

#[test]
fn the_worker_answers_a_tracks_head_and_tail_without_the_page() -> anyhow::Result<()> {
    netns::run(CHROMIUM, run(Engine::Chromium))
}

#[test]
fn the_worker_answers_a_tracks_head_and_tail_without_the_page_in_firefox() -> anyhow::Result<()> {
    netns::run(FIREFOX, run(Engine::Firefox))
}

/// Counts the worker's `open`s from here on (`window.__opens`, their start
/// bytes).
const COUNT_OPENS: &str = "(() => { window.__opens = []; \
    navigator.serviceWorker.addEventListener('message', (e) => { \
      if (e.data?.fanswarm === 'open') window.__opens.push(e.data.start); }); \
    return true; })()";

/// Fetches `range` of the element's stream and of the web seed, and says
/// whether they are the same bytes and which `open`s came meanwhile.
fn compare(media: &str, from: u64, to: Option<u64>) -> String {
    let range = match to {
        Some(to) => format!("bytes={from}-{to}"),
        None => format!("bytes={from}-"),
    };
    format!(
        "(async () => {{ \
          const before = window.__opens.length; \
          const get = async (url) => {{ const r = await fetch(url, {{ headers: {{ Range: '{range}' }} }}); \
            return [r.status, r.headers.get('content-range'), new Uint8Array(await r.arrayBuffer())]; }}; \
          const stream = await get(document.querySelector('fanswarm-player').audio.src); \
          const seed = await get('{media}'); \
          const same = stream[2].length === seed[2].length && stream[2].every((b, i) => b === seed[2][i]); \
          return JSON.stringify({{ status: stream[0], contentRange: stream[1], seedRange: seed[1], \
            bytes: stream[2].length, same, opens: window.__opens.slice(before) }}); \
        }})()"
    )
}

/// Whether every piece holding bytes `from..=to` of the track is verified.
fn verified(from: u64, to: u64) -> String {
    format!(
        "(() => {{ const t = document.querySelector('fanswarm-player').track; const have = t.pieces(); \
          for (let i = Math.floor({from} / t.pieceLength); i <= Math.floor({to} / t.pieceLength); i++) \
            if (!have[i]) return false; \
          return true; }})()"
    )
}

/// Who answers a request.
#[derive(Debug, Clone, Copy)]
enum Answers {
    /// The worker alone, from the bytes given ahead.
    Worker,
    /// The worker from the bytes given ahead, then the page from the first
    /// byte past the head it was given (`GIVEN_HEAD`, a piece boundary).
    WorkerThenPage,
    /// The page, asked from the range's start.
    Page,
}

async fn run(engine: Engine) -> anyhow::Result<()> {
    let srv = server::start(SECONDS).await?;
    let total = srv.track.length;
    let url = format!("{}/embed/{}", srv.base, srv.track.info_hash.to_hex());
    let mut browser = Browser::launch_engine(engine).await?;
    let page = browser.open(&url).await?;
    ensure!(
        browser.eval(&page, COUNT_OPENS).await? == Value::Bool(true),
        "listening to the worker"
    );
    press_play(&mut browser, &page).await?;
    // Played, then sought to where each case reads: the element reads
    // those bytes, and the pieces of the head and tail given ahead as they
    // verify.
    let playing = "typeof window.__firstAudio === 'number'";
    ensure!(
        browser
            .became_true(&page, playing, Duration::from_secs(20))
            .await,
        "the track plays"
    );
    let streamed =
        "document.querySelector('fanswarm-player').audio.src.includes('/fanswarm/stream/')";
    ensure!(
        browser.eval(&page, streamed).await? == Value::Bool(true),
        "the element reads the worker's stream"
    );

    let tail = total - 100_000;
    let middle = ((1 << 20) + total - (256 << 10)) / 2;
    ensure!(total > (2 << 20), "a track of {total} B has no middle");
    let cases = [
        ("the tail", tail, None, Answers::Worker),
        ("a head range", 1_000, Some(50_999), Answers::Worker),
        (
            "across the head's end",
            1_000_000,
            Some(1_200_000),
            Answers::WorkerThenPage,
        ),
        ("the middle", middle, Some(middle + 65_535), Answers::Page),
    ];
    for (what, from, to, answers) in cases {
        // The page has these bytes (the session would otherwise wait for
        // them, which is not what is tested here): the element is sought a
        // little before them.
        let last = to.unwrap_or(total - 1);
        let seek = format!(
            "(() => {{ const a = document.querySelector('fanswarm-player').audio; \
              a.currentTime = Math.max(0, a.duration * {from} / {total} - 0.5); return true; }})()"
        );
        browser.eval(&page, &seek).await?;
        ensure!(
            browser
                .became_true(&page, &verified(from, last), Duration::from_secs(20))
                .await,
            "{what}: bytes {from}-{last} verified"
        );
        let (got, opens) = fetched(&mut browser, &page, &srv.track.media_url, from, to).await?;
        println!("{}: {what}: {got}", engine.name());
        let expected = match answers {
            Answers::Worker => vec![],
            Answers::WorkerThenPage => vec![1 << 20],
            Answers::Page => vec![from],
        };
        ensure!(
            opens == expected,
            "{what}: {answers:?} answers, so the page is asked for {expected:?}: {got}"
        );
    }
    Ok(())
}

/// [`compare`]'s answer, checked to be the file's bytes, and the `open`s
/// within the range.
async fn fetched(
    browser: &mut Browser,
    page: &Page,
    media: &str,
    from: u64,
    to: Option<u64>,
) -> anyhow::Result<(Value, Vec<u64>)> {
    let text = browser.eval(page, &compare(media, from, to)).await?;
    let got: Value = serde_json::from_str(text.as_str().context("compare JSON")?)?;
    ensure!(
        got["status"] == 206 && got["same"] == true && got["contentRange"] == got["seedRange"],
        "{from}-: the stream's bytes are the file's: {got}"
    );
    let last = to.unwrap_or(u64::MAX);
    let opens = got["opens"]
        .as_array()
        .context("opens")?
        .iter()
        .filter_map(Value::as_u64)
        .filter(|start| (from..=last).contains(start))
        .collect();
    Ok((got, opens))
}
