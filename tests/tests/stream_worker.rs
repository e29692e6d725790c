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
//!
//! Further, the web seed's requests for those bytes are handed to the
//! worker (`hand_to_worker` in client-wasm/src/session/streaming.rs): it
//! fetches them, checks each piece, and answers the element's first
//! requests itself, while the page's engine gets the same body; the server
//! still sends each byte once. A worker that does not take a handover (an
//! older one, still in control after a deploy: simulated by dropping the
//! page's message) costs a second, the page then fetching it itself.
#![allow(clippy::unwrap_used)]

use std::time::Duration;

use anyhow::{Context, ensure};
use serde_json::Value;

use fanswarm_e2e::browser::{Browser, Engine, Page};
use fanswarm_e2e::player::press_play;
use fanswarm_e2e::{netns, server};

const CHROMIUM: &str = "the_worker_answers_a_tracks_head_and_tail_without_the_page";
const FIREFOX: &str = "the_worker_answers_a_tracks_head_and_tail_without_the_page_in_firefox";
const HANDED: &str = "the_worker_fetches_the_head_the_element_first_plays";
const HANDED_FIREFOX: &str = "the_worker_fetches_the_head_the_element_first_plays_in_firefox";
const NOT_TAKEN: &str = "a_handover_the_worker_does_not_take_is_fetched_by_the_page";
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

#[test]
fn the_worker_fetches_the_head_the_element_first_plays() -> anyhow::Result<()> {
    netns::run(HANDED, handed(Engine::Chromium, false))
}

#[test]
fn the_worker_fetches_the_head_the_element_first_plays_in_firefox() -> anyhow::Result<()> {
    netns::run(HANDED_FIREFOX, handed(Engine::Firefox, false))
}

#[test]
fn a_handover_the_worker_does_not_take_is_fetched_by_the_page() -> anyhow::Result<()> {
    netns::run(NOT_TAKEN, handed(Engine::Chromium, true))
}

/// Records the web-seed requests the page hands its worker
/// (`window.__handed`, `[start, end]` each), dropping them if `drop`.
fn record_handovers(drop: bool) -> String {
    format!(
        "(() => {{ window.__handed = []; \
          const post = ServiceWorker.prototype.postMessage; \
          ServiceWorker.prototype.postMessage = function (message, ...rest) {{ \
            if (message?.fanswarm === 'fetch') {{ \
              window.__handed.push([message.start, message.end]); \
              if ({drop}) return undefined; }} \
            return post.call(this, message, ...rest); }}; \
          return true; }})()"
    )
}

/// What happened up to the first audio: the handovers, the worker's
/// `open`s, and the page's own requests of the web seed.
const AT_FIRST_AUDIO: &str = "(() => { \
    const until = window.__t0 + window.__firstAudio; \
    const media = performance.getEntriesByType('resource') \
      .filter((e) => e.name.includes('/media/') && e.startTime < until).length; \
    return JSON.stringify({ handed: window.__handed, opens: window.__opens, media }); })()";

/// 20 s of the test WAV: 0.9 MB, all of it the head the worker is handed,
/// and fetched whole while it plays.
const HANDED_SECONDS: u32 = 20;

async fn handed(engine: Engine, drop: bool) -> anyhow::Result<()> {
    let srv = server::start(HANDED_SECONDS).await?;
    let total = srv.track.length;
    // `prefetch=none`: what a press hands the worker, from nothing (by
    // default a page alone fetches its start before the press, racing the
    // worker's claim of the page: tests/preload.rs).
    let url = format!(
        "{}/embed/{}?prefetch=none",
        srv.base,
        srv.track.info_hash.to_hex()
    );
    let mut browser = Browser::launch_engine(engine).await?;
    let page = browser.open(&url).await?;
    for script in [COUNT_OPENS, &record_handovers(drop)] {
        ensure!(
            browser.eval(&page, script).await? == Value::Bool(true),
            "listening to the page and the worker"
        );
    }
    // Pressed once the worker controls the page (a first visit's page is
    // claimed a moment after it loads; before, nothing is streamed through
    // a worker, and nothing handed to one) and the track is made.
    let ready = "(async () => { await customElements.whenDefined('fanswarm-player'); \
        await document.querySelector('fanswarm-player').ready; \
        return !!navigator.serviceWorker.controller; })()";
    ensure!(
        browser
            .became_true(&page, ready, Duration::from_secs(20))
            .await,
        "the worker controls the page and the track is made"
    );
    play_to_first_audio(&mut browser, &page).await?;
    let text = browser.eval(&page, AT_FIRST_AUDIO).await?;
    let seen: Value = serde_json::from_str(text.as_str().context("JSON")?)?;
    println!("{}: {}: at first audio {seen}", engine.name(), drop);
    let handed: Vec<(u64, u64)> = serde_json::from_value(seen["handed"].clone())?;
    let head = handed
        .iter()
        .find(|(start, _)| *start == 0)
        .with_context(|| format!("the head's request is handed to the worker: {seen}"))?;
    let media = seen["media"].as_u64().context("media")?;
    if drop {
        ensure!(
            media > 0,
            "the page fetched the head itself, the worker not taking it: {seen}"
        );
    } else {
        let opens: Vec<u64> = serde_json::from_value(seen["opens"].clone())?;
        ensure!(
            opens.iter().all(|start| *start > head.1),
            "no request for the head reached the page (the worker answered): {seen}"
        );
        ensure!(
            media == 0,
            "the page made no web-seed request of its own before the first audio: {seen}"
        );
    }
    // The whole track comes (played faster, for a shorter test); the
    // server sent each byte once.
    browser
        .eval(
            &page,
            "document.querySelector('fanswarm-player').audio.playbackRate = 4",
        )
        .await?;
    let done = "document.querySelector('fanswarm-player').track.stats().done";
    ensure!(
        browser
            .became_true(&page, done, Duration::from_secs(30))
            .await,
        "the whole track is fetched"
    );
    let sent = srv.webseed_bytes();
    ensure!(
        sent == total,
        "the web seed sent {sent} B for a track of {total} B: a byte fetched twice, or lost"
    );
    // What the worker answers is the file, byte for byte.
    let (got, _) = fetched(&mut browser, &page, &srv.track.media_url, 0, Some(head.1)).await?;
    println!("{}: the head: {got}", engine.name());
    Ok(())
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

/// Presses play and waits for the first audio.
async fn play_to_first_audio(browser: &mut Browser, page: &Page) -> anyhow::Result<()> {
    press_play(browser, page).await?;
    let playing = "typeof window.__firstAudio === 'number'";
    ensure!(
        browser
            .became_true(page, playing, Duration::from_secs(20))
            .await,
        "the track plays"
    );
    Ok(())
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
    // Played, then sought to where each case reads: the element reads
    // those bytes, and the pieces of the head and tail given ahead as they
    // verify.
    play_to_first_audio(&mut browser, &page).await?;
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
