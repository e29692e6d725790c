//! Time to first audio, and what a second visit downloads: the
//! `/embed/<hex>` page against plain `new Audio(url).play()` of the same
//! file, each in a fresh browser profile (cold) and then again in a new tab
//! of the same profile (second visit: HTTP cache and service worker kept).
//!
//! Checks what the page promises, not how fast it is (timed assertions do
//! not belong in tests; the figures go to BENCHMARKS.md): the player's
//! `ready` resolves, the wasm and the `.torrent` are fetched once each (the
//! page's preloads are reused), and a second visit fetches none of the
//! hashed code again. Prints, for every visit, play → `playing` and
//! navigation → `playing`, a per-step timeline from the page's marks and
//! resource timings, main-thread long tasks and the bytes on the wire.
//!
//! As a benchmark: `FANSWARM_FIRST_AUDIO_ROUNDS=N` repeats it (default 1),
//! `FANSWARM_PRESS_DELAY_MS` is when the listener presses play, in ms after
//! navigation started (default 1000: a fan clicks a moment after the page
//! shows; 0 presses as soon as the element is defined; a script of the
//! page presses, so neither waits for `load`), and
//! `FANSWARM_BASELINE=DIR` also measures another build side by side, round
//! by round: `DIR/signal-server` serving `DIR/web` (e.g. main's binary and
//! its built `web/`), with the same track.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use anyhow::{Context, bail, ensure};
use serde_json::{Value, json};

use fanswarm_e2e::browser::{Browser, Page};
use fanswarm_e2e::{netns, server};

const TEST: &str = "embed_page_starts_from_prefetched_code_and_a_second_visit_downloads_none";

#[test]
fn embed_page_starts_from_prefetched_code_and_a_second_visit_downloads_none() -> anyhow::Result<()>
{
    netns::run(TEST, run())
}

async fn run() -> anyhow::Result<()> {
    let rounds: usize = env_number("FANSWARM_FIRST_AUDIO_ROUNDS", 1);
    let delay: u64 = env_number("FANSWARM_PRESS_DELAY_MS", 1000);
    let srv = server::start(60).await?;
    let hex = srv.track.info_hash.to_hex();
    let media = path_of(&srv.track.media_url, &srv.base)?;
    let baseline = match std::env::var_os("FANSWARM_BASELINE") {
        Some(dir) => Some(Baseline::start(Path::new(&dir), &srv.track_path).await?),
        None => None,
    };

    let mut results: Vec<(String, Vec<f64>)> = Vec::new();
    let mut record = |name: &str, ms: f64| match results.iter_mut().find(|(n, _)| n == name) {
        Some((_, v)) => v.push(ms),
        None => results.push((name.to_owned(), vec![ms])),
    };
    for round in 0..rounds {
        // Alternate the order, so neither build always runs on a machine
        // warmed (or loaded) by the other.
        let mut order = vec!["plain", "fanswarm"];
        if baseline.is_some() {
            order.push("baseline");
        }
        if round % 2 == 1 {
            order.reverse();
        }
        for which in order {
            match which {
                "plain" => {
                    let (cold, again) = plain_audio(&srv.base, &media).await?;
                    println!(
                        "round {round} plain <audio>: cold {cold:.0} ms, second visit {again:.0} ms"
                    );
                    record("plain <audio> cold", cold);
                    record("plain <audio> second visit", again);
                }
                "fanswarm" => {
                    let visits = embed_visits(&format!("{}/embed/{hex}", srv.base), delay).await?;
                    check(&visits)?;
                    report(round, "fanswarm", &visits, &mut record);
                }
                _ => {
                    let b = baseline.as_ref().context("baseline server")?;
                    let visits =
                        embed_visits(&format!("{}/embed/{}", b.base, b.hex), delay).await?;
                    report(round, "baseline", &visits, &mut record);
                }
            }
        }
    }
    println!(
        "\nplay() (or navigation) to `playing`, ms, over {rounds} round(s); play pressed \
         {delay} ms after navigation start, or when the element is defined if later:"
    );
    println!("{:<48} {:>7} {:>7} {:>7}", "", "median", "min", "max");
    for (name, mut v) in results {
        v.sort_by(f64::total_cmp);
        println!(
            "{name:<48} {:>7.0} {:>7.0} {:>7.0}",
            v[v.len() / 2],
            v[0],
            v[v.len() - 1]
        );
    }
    Ok(())
}

/// A cold visit (fresh profile) and a second visit (new tab, same profile,
/// the first tab closed) of one embed page, each as [`measure`] reports it.
async fn embed_visits(url: &str, delay: u64) -> anyhow::Result<[Value; 2]> {
    let mut browser = Browser::launch().await?;
    let (first, cold) = visit(&mut browser, url, delay).await?;
    browser.close(&first).await?;
    let (_, again) = visit(&mut browser, url, delay).await?;
    Ok([cold, again])
}

/// What the new page must do, whatever the timing.
fn check([cold, again]: &[Value; 2]) -> anyhow::Result<()> {
    ensure!(
        cold["ready"].is_number(),
        "the player's `ready` resolved: {}",
        cold["ready"]
    );
    for (what, kind) in [("the wasm", ".wasm"), ("the .torrent", ".torrent")] {
        let fetched = cold["entries"]
            .as_array()
            .into_iter()
            .flatten()
            .filter(|e| e["name"].as_str().is_some_and(|n| n.ends_with(kind)))
            .count();
        ensure!(
            fetched == 1,
            "{what} fetched once on a cold visit (its preload reused), not {fetched} times: {}",
            cold["entries"]
        );
    }
    let refetched: Vec<&Value> = again["entries"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|e| {
            e["name"].as_str().is_some_and(|n| n.starts_with("/pkg/"))
                && e["transfer"].as_f64() != Some(0.0)
        })
        .collect();
    ensure!(
        refetched.is_empty(),
        "a second visit fetched hashed code again: {refetched:?}"
    );
    Ok(())
}

/// Prints one visit pair's timeline and records its figures.
fn report(round: usize, build: &str, visits: &[Value; 2], record: &mut impl FnMut(&str, f64)) {
    for (visit, v) in ["cold", "second visit"].iter().zip(visits) {
        let playing = v["playing"].as_f64().unwrap_or(f64::NAN);
        let ms = playing - v["t0"].as_f64().unwrap_or(f64::NAN);
        record(&format!("{build} {visit}"), ms);
        record(&format!("{build} {visit}, from navigation"), playing);
        println!(
            "round {round} {build} {visit}: play -> playing {ms:.0} ms, navigation -> playing \
             {playing:.0} ms; {}",
            timeline(v)
        );
    }
}

/// The steps of a visit relative to the press of play (negative: before),
/// and the bytes it transferred apart from the audio itself.
fn timeline(v: &Value) -> String {
    let t0 = v["t0"].as_f64().unwrap_or(0.0);
    let at = |t: &Value| {
        t.as_f64()
            .map_or("-".to_owned(), |t| format!("{:+.0}", t - t0))
    };
    let entries = v["entries"].as_array().cloned().unwrap_or_default();
    let find = |pred: &dyn Fn(&str) -> bool| {
        entries
            .iter()
            .find(|e| e["name"].as_str().is_some_and(pred))
    };
    let span = |e: Option<&Value>| {
        e.map_or("-".to_owned(), |e| {
            format!("{}..{}", at(&e["start"]), at(&e["end"]))
        })
    };
    let wasm = find(&|n| n.ends_with(".wasm"));
    let torrent = find(&|n| n.ends_with(".torrent"));
    let media = find(&|n| n.starts_with("/media/"));
    let long_tasks: Vec<String> = v["longTasks"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|t| format!("{} {}", at(&t[0]), t[1]))
        .collect();
    let long_tasks = format!("[{}]", long_tasks.join(", "));
    // Every web-seed request before `playing`: one after another, or at once.
    let playing = v["playing"].as_f64().unwrap_or(f64::INFINITY);
    let media_spans: Vec<String> = entries
        .iter()
        .filter(|e| e["name"].as_str().is_some_and(|n| n.starts_with("/media/")))
        .filter(|e| e["start"].as_f64().is_some_and(|t| t < playing))
        .map(|e| span(Some(e)))
        .collect();
    let media_spans = format!("{} [{}]", media_spans.len(), media_spans.join(" "));
    let code_bytes: f64 = v["nav"]["transfer"].as_f64().unwrap_or(0.0)
        + entries
            .iter()
            .filter(|e| !e["name"].as_str().unwrap_or("").starts_with("/media/"))
            .map(|e| e["transfer"].as_f64().unwrap_or(0.0))
            .sum::<f64>();
    let fetched: Vec<&str> = entries
        .iter()
        .filter(|e| e["transfer"].as_f64().unwrap_or(0.0) > 0.0)
        .filter_map(|e| e["name"].as_str())
        .filter(|n| !n.starts_with("/media/"))
        .collect();
    format!(
        "navigation {}, html done {}, wasm {}, torrent {}, element defined {}, \
         worker controls {}, ready {}, \
         src set {}, play() returned {}, element loadstart {}, first /media {} (first byte {}), \
         {} /media requests, playing {}; long tasks (start, ms) {}; {code_bytes:.0} B on the \
         wire besides audio ({} + {fetched:?})",
        at(&json!(0.0)),
        at(&v["nav"]["end"]),
        span(wasm),
        span(torrent),
        at(&v["defined"]),
        if v["controlledAtStart"] == true {
            "from the start".to_owned()
        } else {
            at(&v["controlled"])
        },
        at(&v["ready"]),
        at(&v["srcSet"]),
        at(&v["returned"]),
        at(&v["loadstart"]),
        span(media),
        media.map_or("-".to_owned(), |e| at(&e["firstByte"])),
        media_spans,
        at(&v["playing"]),
        long_tasks,
        v["nav"]["transfer"],
    )
}

/// Opens `url` in a new tab and plays its player as a listener would: a
/// script installed before any of the page's own waits until the element
/// is defined and `delay` ms have passed since navigation started, presses
/// play, and records the marks and the resource timings (ms on the page's
/// clock, navigation start = 0) in `window.__result`. Pressing from inside
/// the page, not after the test saw `load`: `load` waits for the preloads,
/// and a listener need not.
async fn visit(browser: &mut Browser, url: &str, delay: u64) -> anyhow::Result<(Page, Value)> {
    let page = browser.open_in_profile("about:blank").await?;
    browser.call(Some(&page), "Page.enable", json!({})).await?;
    browser
        .call(
            Some(&page),
            "Page.addScriptToEvaluateOnNewDocument",
            json!({ "source": PRESS.replace("DELAY", &delay.to_string()) }),
        )
        .await?;
    browser.navigate(&page, url).await?;
    for _ in 0..300 {
        if let Ok(Value::String(text)) = browser.eval(&page, "window.__result ?? null").await {
            let result: Value = serde_json::from_str(&text)?;
            if let Some(error) = result.get("error") {
                bail!("{url}: {error}");
            }
            return Ok((page, result));
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    bail!("{url}: no result within 30 s")
}

/// See [`visit`]. `DELAY` is replaced by the press delay.
const PRESS: &str = "(() => {
    const controlledAtStart = !!navigator.serviceWorker?.controller;
    let controlled = null;
    // Main-thread tasks over 50 ms: what a busy page makes the listener wait for.
    const longTasks = [];
    try {
        new PerformanceObserver((list) => longTasks.push(...list.getEntries().map((e) =>
            [Math.round(e.startTime), Math.round(e.duration)]))).observe({ type: 'longtask', buffered: true });
    } catch {}
    navigator.serviceWorker?.addEventListener('controllerchange',
        () => { controlled ??= performance.now(); });
    (async () => {
        await customElements.whenDefined('fanswarm-player');
        const defined = performance.now();
        const p = document.querySelector('fanswarm-player');
        p.setAttribute('ice-servers', '');
        const ready = p.ready ? p.ready.then(() => performance.now(), (e) => 'failed: ' + e) : null;
        // When the wasm points the element at the stream.
        let srcSet = null;
        const src = Object.getOwnPropertyDescriptor(HTMLMediaElement.prototype, 'src');
        Object.defineProperty(p.audio, 'src', { get() { return src.get.call(this); },
            set(v) { srcSet ??= performance.now(); src.set.call(this, v); } });
        let loadstart = null;
        p.audio.addEventListener('loadstart', () => { loadstart ??= performance.now(); });
        await new Promise((r) => setTimeout(r, DELAY - performance.now()));
        const playing = new Promise((resolve, reject) => {
            p.audio.addEventListener('playing', () => resolve(performance.now()), { once: true });
            p.audio.addEventListener('error', () => reject(new Error('audio error ' + p.audio.error?.code)));
            setTimeout(() => reject(new Error('not playing after 20 s')), 20000);
        });
        const t0 = performance.now();
        await p.play();
        const returned = performance.now();
        const at = await playing;
        const nav = performance.getEntriesByType('navigation')[0];
        const entries = performance.getEntriesByType('resource').map((e) => ({
            name: new URL(e.name).pathname, type: e.initiatorType, start: e.startTime,
            firstByte: e.responseStart, end: e.responseEnd, transfer: e.transferSize,
            body: e.encodedBodySize }));
        return { t0, defined, returned, srcSet, loadstart, playing: at, ready: ready && await ready,
            controlledAtStart, controlled, longTasks, nav: { end: nav.responseEnd, transfer: nav.transferSize },
            entries };
    })().then((r) => { window.__result = JSON.stringify(r); },
        (e) => { window.__result = JSON.stringify({ error: String(e) }); });
})()";

/// `new Audio(url).play()` to `playing` in a fresh profile, then again in a
/// new tab of the same profile. On a page of the server's origin with no
/// player (and, cold, no service worker).
async fn plain_audio(base: &str, media: &str) -> anyhow::Result<(f64, f64)> {
    let mut browser = Browser::launch().await?;
    let mut times = Vec::new();
    for _ in 0..2 {
        let page = browser
            .open_in_profile(&format!("{base}/api/tracks"))
            .await?;
        let ms = browser
            .eval(&page, &format!(
                "new Promise((resolve, reject) => {{ const a = new Audio(); const t0 = performance.now();
                   a.addEventListener('playing', () => resolve(performance.now() - t0), {{ once: true }});
                   a.addEventListener('error', () => reject(new Error('plain audio failed')));
                   a.src = '{media}'; a.play().catch(reject); }})"))
            .await?
            .as_f64()
            .context("plain time to first audio")?;
        browser.close(&page).await?;
        times.push(ms);
    }
    Ok((times[0], times[1]))
}

/// Another build of the server, run as a process of its own on the same
/// track: `DIR/signal-server serve --web-dir DIR/web`.
struct Baseline {
    base: String,
    hex: String,
    child: Child,
    _dirs: (tempfile::TempDir, tempfile::TempDir),
}

impl Baseline {
    async fn start(dir: &Path, track: &Path) -> anyhow::Result<Baseline> {
        let library = tempfile::tempdir()?;
        let cache = tempfile::tempdir()?;
        let name = track.file_name().context("track file name")?;
        std::fs::copy(track, library.path().join(name))?;
        let port = std::net::TcpListener::bind("127.0.0.1:0")?
            .local_addr()?
            .port();
        let base = format!("http://localhost:{port}");
        let binary: PathBuf = dir.join("signal-server");
        let child = Command::new(&binary)
            .args([
                "serve",
                "--listen",
                &format!("127.0.0.1:{port}"),
                "--public-url",
                &base,
            ])
            .arg("--library")
            .arg(library.path())
            .arg("--web-dir")
            .arg(dir.join("web"))
            .arg("--cache-dir")
            .arg(cache.path())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .with_context(|| format!("starting {}", binary.display()))?;
        let mut baseline = Baseline {
            base,
            hex: String::new(),
            child,
            _dirs: (library, cache),
        };
        for _ in 0..100 {
            if let Ok(hex) = baseline.track_hex().await {
                baseline.hex = hex;
                return Ok(baseline);
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        bail!(
            "the baseline server at {} did not publish the track",
            baseline.base
        )
    }

    /// The info hash of its one track, from `/api/tracks` (plain HTTP/1.1).
    async fn track_hex(&self) -> anyhow::Result<String> {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let port = self.base.rsplit(':').next().context("port")?;
        let mut socket = tokio::net::TcpStream::connect(format!("127.0.0.1:{port}")).await?;
        socket
            .write_all(b"GET /api/tracks HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")
            .await?;
        let mut answer = String::new();
        socket.read_to_string(&mut answer).await?;
        let body = answer.split("\r\n\r\n").nth(1).context("no body")?;
        let tracks: Value = serde_json::from_str(body)?;
        Ok(tracks[0]["info_hash"]
            .as_str()
            .context("no track")?
            .to_owned())
    }
}

impl Drop for Baseline {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn path_of(url: &str, base: &str) -> anyhow::Result<String> {
    Ok(url
        .strip_prefix(base)
        .context("URL on the server")?
        .to_owned())
}

fn env_number<T: std::str::FromStr>(name: &str, default: T) -> T {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}
