//! Every format the server publishes — MP3, M4A/AAC, Ogg Vorbis, Opus,
//! FLAC, WAV — made at test time by Debian's `ffmpeg` with tags (and cover
//! art where the container holds one), published by the real server and
//! played by the player of its `/embed/<hex>` page in headless Chromium.
//!
//! For each: the web seed and the stream the service worker hands to
//! `<audio>` carry a type browsers know; before play the player shows the
//! title, artist and album from the tags, the cover, and the duration
//! (time and the seek slider's `aria-valuetext`); it plays, and every byte
//! the stream serves is the file's; after play the Media Session shows the
//! track; once the track is verified, Tab from the play button reaches the
//! download button and Enter saves the file under the track's name, byte
//! for byte. A file with broken tags still publishes under its file name.
//! Screenshots of the players with a cover go to `target/artifacts/`.
//!
//! The same checks run again in Firefox ESR, but for the keyboard and the
//! download (they press keys and steer downloads over Chromium's DevTools)
//! and the screenshots.
#![allow(clippy::unwrap_used)]

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use anyhow::{Context, bail, ensure};
use serde_json::{Value, json};

use fanswarm_e2e::browser::{Browser, Engine, Page};
use fanswarm_e2e::player::{self, assembled, digest_of};
use fanswarm_e2e::server::TestServer;
use fanswarm_e2e::{netns, server, web};

const TEST: &str = "every_format_plays_with_its_tags";
const FIREFOX: &str = "every_format_plays_with_its_tags_in_firefox";

const ARTIST: &str = "The Testers";
const ALBUM: &str = "Formats";

/// One format: extension, ffmpeg's encoder arguments, whether a cover goes
/// in, the web seed's type, the type the stream worker serves.
struct Format {
    ext: &'static str,
    codec: &'static [&'static str],
    cover: Option<&'static str>,
    media_type: &'static str,
    stream_type: &'static str,
}

const FORMATS: &[Format] = &[
    Format {
        ext: "mp3",
        codec: &["-c:a", "libmp3lame", "-b:a", "96k", "-id3v2_version", "3"],
        cover: Some("cover.jpg"),
        media_type: "audio/mpeg",
        stream_type: "audio/mpeg",
    },
    Format {
        ext: "m4a",
        codec: &["-c:a", "aac", "-b:a", "96k"],
        cover: Some("cover.png"),
        media_type: "audio/mp4",
        stream_type: "audio/mp4",
    },
    Format {
        ext: "ogg",
        codec: &["-c:a", "libvorbis", "-q:a", "2"],
        cover: None,
        media_type: "audio/ogg",
        stream_type: "audio/ogg",
    },
    Format {
        ext: "opus",
        codec: &["-c:a", "libopus", "-b:a", "64k"],
        cover: None,
        media_type: "audio/ogg; codecs=opus",
        stream_type: "audio/ogg",
    },
    Format {
        ext: "flac",
        codec: &["-c:a", "flac"],
        cover: Some("cover.png"),
        media_type: "audio/flac",
        stream_type: "audio/flac",
    },
    Format {
        ext: "wav",
        codec: &["-c:a", "pcm_s16le"],
        cover: None,
        media_type: "audio/wav",
        stream_type: "audio/wav",
    },
];

/// Seconds of audio in each file.
const SECONDS: u32 = 3;

#[test]
fn every_format_plays_with_its_tags() -> anyhow::Result<()> {
    netns::run(TEST, run())
}

async fn run() -> anyhow::Result<()> {
    let started = Instant::now();
    let library = tempfile::tempdir()?;
    make_library(library.path())?;
    let made = started.elapsed();
    let srv = server::start_library(library).await?;
    let downloads = tempfile::tempdir()?;
    let mut browser = Browser::launch().await?;
    browser
        .call(
            None,
            "Browser.setDownloadBehavior",
            json!({ "behavior": "allow", "downloadPath": downloads.path() }),
        )
        .await?;

    for format in FORMATS {
        let at = Instant::now();
        check_format(&mut browser, &srv, format, downloads.path())
            .await
            .with_context(|| format!("format {}", format.ext))?;
        println!("{}: ok in {:.1} s", format.ext, at.elapsed().as_secs_f64());
    }
    check_broken_tags(&mut browser, &srv).await?;
    check_demo_page(&mut browser, &srv).await?;
    println!(
        "files made in {:.1} s; whole test {:.1} s",
        made.as_secs_f64(),
        started.elapsed().as_secs_f64()
    );
    Ok(())
}

#[test]
fn every_format_plays_with_its_tags_in_firefox() -> anyhow::Result<()> {
    netns::run(FIREFOX, run_firefox())
}

async fn run_firefox() -> anyhow::Result<()> {
    let started = Instant::now();
    let library = tempfile::tempdir()?;
    make_library(library.path())?;
    let srv = server::start_library(library).await?;
    let unused = tempfile::tempdir()?;
    let mut browser = Browser::launch_engine(Engine::Firefox).await?;
    for format in FORMATS {
        let at = Instant::now();
        check_format(&mut browser, &srv, format, unused.path())
            .await
            .with_context(|| format!("format {} in Firefox", format.ext))?;
        println!(
            "firefox {}: ok in {:.1} s",
            format.ext,
            at.elapsed().as_secs_f64()
        );
    }
    check_broken_tags(&mut browser, &srv).await?;
    println!("whole test {:.1} s", started.elapsed().as_secs_f64());
    Ok(())
}

/// The six files, a cover of each kind, and `broken tags.mp3`: a real MP3
/// behind an ID3v2 header that claims more bytes than the file has.
fn make_library(dir: &Path) -> anyhow::Result<()> {
    let covers = tempfile::tempdir()?;
    for (name, colour) in [("cover.jpg", "0x1fa37a"), ("cover.png", "0x6d4aff")] {
        ffmpeg(&[
            "-f",
            "lavfi",
            "-i",
            &format!("color=c={colour}:s=64x64"),
            "-frames:v",
            "1",
            &covers.path().join(name).display().to_string(),
        ])?;
    }
    for (track, f) in FORMATS.iter().enumerate() {
        let source = format!("sine=frequency={}:duration={SECONDS}", 330 + 110 * track);
        let mut args: Vec<String> = ["-f", "lavfi", "-i", &source]
            .iter()
            .map(|s| s.to_string())
            .collect();
        if let Some(cover) = f.cover {
            args.extend(["-i".into(), covers.path().join(cover).display().to_string()]);
            args.extend(["-map", "0", "-map", "1", "-c:v", "copy"].map(String::from));
            args.extend(["-disposition:v", "attached_pic"].map(String::from));
        }
        args.extend(f.codec.iter().map(|s| s.to_string()));
        for (key, value) in [
            ("title", title_of(f.ext)),
            ("artist", ARTIST.into()),
            ("album", ALBUM.into()),
            ("track", (track + 1).to_string()),
        ] {
            args.extend(["-metadata".into(), format!("{key}={value}")]);
        }
        args.push(dir.join(format!("song.{}", f.ext)).display().to_string());
        ffmpeg(&args.iter().map(String::as_str).collect::<Vec<_>>())?;
    }
    let mp3 = std::fs::read(dir.join("song.mp3"))?;
    let mut broken = b"ID3\x04\x00\x00\x7f\x7f\x7f\x7f".to_vec();
    broken.extend(mp3.get(10..).unwrap_or_default());
    std::fs::write(dir.join("broken tags.mp3"), broken)?;
    Ok(())
}

fn ffmpeg(args: &[&str]) -> anyhow::Result<()> {
    let out = Command::new("ffmpeg")
        .args(["-hide_banner", "-loglevel", "error", "-y"])
        .args(args)
        .output()
        .context("running ffmpeg (scripts/install-deps --test installs it)")?;
    ensure!(
        out.status.success(),
        "ffmpeg {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    Ok(())
}

fn title_of(ext: &str) -> String {
    format!("Song in {ext}")
}

async fn check_format(
    browser: &mut Browser,
    srv: &TestServer,
    f: &Format,
    downloads: &Path,
) -> anyhow::Result<()> {
    let name = format!("song.{}", f.ext);
    let track = srv
        .tracks()
        .iter()
        .find(|t| t.name == name)
        .with_context(|| format!("{name} was not published"))?;
    let file = std::fs::read(srv.track_path.with_file_name(&name))?;
    let title = title_of(f.ext);
    ensure!(
        track.tags.title.as_deref() == Some(title.as_str())
            && track.tags.artist.as_deref() == Some(ARTIST)
            && track.tags.album.as_deref() == Some(ALBUM)
            && track.tags.track_number.is_some(),
        "tags read at publish time: {:?}",
        track.tags
    );
    let duration = track.tags.duration.context("a duration")?;
    ensure!(
        (duration - f64::from(SECONDS)).abs() < 0.2,
        "duration {duration}"
    );
    ensure!(
        track.tags.cover_url.is_some() == f.cover.is_some(),
        "cover: {:?}",
        track.tags.cover_url
    );

    // The profile's own storage: the download behaviour was set for it.
    let page = browser.open_in_profile(&track.embed_url).await?;

    // The web seed's type, and the cover's (same origin: headers readable).
    let media = browser
        .eval(
            &page,
            &format!(
                "fetch({:?}, {{ method: 'HEAD' }}).then((r) => r.headers.get('content-type'))",
                track.media_url
            ),
        )
        .await?;
    ensure!(media == f.media_type, "web seed type {media}");
    if let Some(cover) = &track.tags.cover_url {
        let head = browser
            .eval(
                &page,
                &format!(
                    "fetch({cover:?}).then((r) => r.headers.get('content-type') + ' | ' + r.headers.get('cache-control'))"
                ),
            )
            .await?;
        let want = format!(
            "{} | public, max-age=31536000, immutable",
            if f.cover == Some("cover.jpg") {
                "image/jpeg"
            } else {
                "image/png"
            }
        );
        ensure!(head == want.as_str(), "cover served as {head}");
    }

    // Before play: what the tags say, and the duration.
    let shown_duration = format!("0:{:02}", duration.floor());
    let want_shown = json!({
        "title": title,
        "byline": format!("{ARTIST} \u{b7} {ALBUM}"),
        "time": format!("0:00 / {shown_duration}"),
        "valuetext": format!("0:00 of {shown_duration}"),
        "cover": track.tags.cover_url.is_some(),
        "role": "range",
    });
    let shown = wait_value(browser, &page, SHOWN, &want_shown, Duration::from_secs(15))
        .await
        .context("the player shows the tags before play")?;
    ensure!(shown["paused"] == true, "nothing played yet: {shown}");

    // It plays, through the stream worker, from verified pieces.
    player::press_play(browser, &page).await?;
    player::wait_all(
        browser,
        std::slice::from_ref(&page),
        Duration::from_secs(30),
        "playing",
        |s| player::num(s, "currentTime") > 0.5,
    )
    .await?;
    // While it plays, the Media Session shows the track.
    let session = browser.eval(&page, SESSION).await?;
    let artwork = track
        .tags
        .cover_url
        .as_ref()
        .map_or(json!([]), |c| json!([c]));
    ensure!(
        session
            == json!({ "title": title, "artist": ARTIST, "album": ALBUM, "artwork": artwork,
                       "state": "playing" }),
        "media session: {session}"
    );

    let stream_type = browser
        .eval(
            &page,
            "(async () => { const t = document.querySelector('fanswarm-player').track;
              const r = await fetch(t.streamUrl, { headers: { Range: 'bytes=0-1' } });
              await r.arrayBuffer();
              return r.headers.get('content-type'); })()",
        )
        .await?;
    ensure!(
        stream_type == f.stream_type,
        "the worker serves {stream_type}"
    );
    player::wait_all(
        browser,
        std::slice::from_ref(&page),
        Duration::from_secs(30),
        "every piece verified",
        |s| s["done"] == true,
    )
    .await?;
    ensure!(
        assembled(browser, &page).await? == digest_of(&file),
        "the stream is the file, byte for byte"
    );

    if browser.engine() != Engine::Chromium {
        // Keys and downloads are steered over Chromium's DevTools.
        browser.close(&page).await?;
        return Ok(());
    }
    // Keyboard: Tab from the play button reaches the download button,
    // Enter saves the verified bytes under the track's name.
    let focused = tab_from_toggle(browser, &page).await?;
    ensure!(
        focused == format!("Download {title}").as_str(),
        "Tab from play reaches {focused}"
    );
    press(browser, &page, "Enter", "Enter", 13).await?;
    let saved = downloads.join(format!("{ARTIST} - {title}.{}", f.ext));
    let bytes = wait_file(&saved, file.len()).await?;
    ensure!(
        digest_of(&bytes) == digest_of(&file),
        "the download is the file"
    );
    if f.cover.is_some() {
        web::set_viewport(browser, &page, 420, 260).await?;
        let shot = web::screenshot(browser, &page, &format!("formats-{}", f.ext)).await?;
        println!("screenshot: {}", shot.display());
    }
    browser.close(&page).await?;
    Ok(())
}

/// The file with broken tags: published under its file name, which its
/// player shows.
async fn check_broken_tags(browser: &mut Browser, srv: &TestServer) -> anyhow::Result<()> {
    let track = srv
        .tracks()
        .iter()
        .find(|t| t.name == "broken tags.mp3")
        .context("the file with broken tags was not published")?;
    ensure!(
        track.tags.title.is_none() && track.tags.cover_url.is_none(),
        "no tags read from it: {:?}",
        track.tags
    );
    let page = browser.open(&track.embed_url).await?;
    let shown = browser.eval(&page, SHOWN).await?;
    ensure!(
        shown["title"] == "broken tags.mp3" && shown["byline"] == "",
        "shown: {shown}"
    );
    browser.close(&page).await?;
    Ok(())
}

/// The demo page lists every track by its title tag (the file name without
/// one) with artist, album, track number and duration, and its players
/// show the same before play, from the attributes the page gives them.
async fn check_demo_page(browser: &mut Browser, srv: &TestServer) -> anyhow::Result<()> {
    let page = browser.open(&format!("{}/", srv.base)).await?;
    let listed = wait_value(
        browser,
        &page,
        "(() => { const items = [...document.querySelectorAll('#tracks li')];
            const players = items.map((li) => li.querySelector('fanswarm-player')?.shadowRoot);
            return { count: items.length,
              titles: items.map((li) => li.querySelector('h2')?.firstChild?.textContent),
              about: items.map((li) => li.querySelector('.about')?.textContent),
              shown: players.map((r) => r && [r.querySelector('[data-ui=title]').textContent,
                r.querySelector('[data-ui=byline]').textContent, r.querySelector('[data-ui=time]').textContent,
                !r.querySelector('[data-ui=cover]').hidden]) }; })()",
        &json!({ "count": srv.tracks().len() }),
        Duration::from_secs(15),
    )
    .await?;
    for (i, track) in srv.tracks().iter().enumerate() {
        let title = track
            .tags
            .title
            .clone()
            .unwrap_or_else(|| track.name.clone());
        ensure!(
            listed["titles"][i] == title.as_str(),
            "demo page title {i}: {listed}"
        );
        let Some(seconds) = track.tags.duration else {
            continue;
        };
        let time = format!("0:{:02}", seconds.round());
        let about = format!(
            "{ARTIST} \u{b7} {ALBUM} \u{b7} track {} \u{b7} {time}",
            track.tags.track_number.unwrap_or(0)
        );
        ensure!(
            listed["about"][i] == about.as_str(),
            "demo page line {i}: {listed}"
        );
        let shown = json!([
            title,
            format!("{ARTIST} \u{b7} {ALBUM}"),
            format!("0:00 / 0:{:02}", seconds.floor()),
            track.tags.cover_url.is_some()
        ]);
        ensure!(
            listed["shown"][i] == shown,
            "demo page player {i}: {listed}"
        );
    }
    browser.close(&page).await?;
    Ok(())
}

/// What the player shows: title, byline, time, the seek slider's value
/// text and type, whether a cover is shown (and loaded), paused.
const SHOWN: &str = "(async () => {
    await customElements.whenDefined('fanswarm-player');
    const p = document.querySelector('fanswarm-player');
    const $ = (n) => p.shadowRoot.querySelector(`[data-ui=${n}]`);
    const cover = $('cover');
    return { title: $('title').textContent, byline: $('byline').textContent,
             time: $('time').textContent, valuetext: $('seek').getAttribute('aria-valuetext'),
             role: $('seek').type,
             cover: !cover.hidden && cover.complete && cover.naturalWidth > 0,
             paused: p.audio.paused };
})()";

/// `navigator.mediaSession` as the page set it.
const SESSION: &str = "(() => {
    const m = navigator.mediaSession.metadata;
    return m && { title: m.title, artist: m.artist, album: m.album,
                  artwork: [...m.artwork].map((a) => a.src),
                  state: navigator.mediaSession.playbackState };
})()";

/// Evaluates `expression` until its value has every field of `want`;
/// fails with the last value.
async fn wait_value(
    browser: &mut Browser,
    page: &Page,
    expression: &str,
    want: &Value,
    limit: Duration,
) -> anyhow::Result<Value> {
    let until = Instant::now() + limit;
    loop {
        let value = browser.eval(page, expression).await?;
        let fits = want
            .as_object()
            .is_some_and(|w| w.iter().all(|(k, v)| &value[k] == v));
        if fits {
            return Ok(value);
        }
        if Instant::now() > until {
            bail!("wanted {want}, last saw {value}");
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Focuses the play button, presses Tab, and names what has focus then.
async fn tab_from_toggle(browser: &mut Browser, page: &Page) -> anyhow::Result<String> {
    browser
        .eval(
            page,
            "document.querySelector('fanswarm-player').shadowRoot.querySelector('[data-ui=toggle]').focus(); true",
        )
        .await?;
    press(browser, page, "Tab", "Tab", 9).await?;
    let name = browser
        .eval(
            page,
            "document.querySelector('fanswarm-player').shadowRoot.activeElement?.getAttribute('aria-label') ?? 'nothing'",
        )
        .await?;
    Ok(name.as_str().unwrap_or("?").to_owned())
}

/// One key press, as a keyboard sends it.
async fn press(
    browser: &mut Browser,
    page: &Page,
    key: &str,
    code: &str,
    key_code: u32,
) -> anyhow::Result<()> {
    for kind in ["keyDown", "keyUp"] {
        let mut event = json!({ "type": kind, "key": key, "code": code,
                                "windowsVirtualKeyCode": key_code });
        if key == "Enter" && kind == "keyDown" {
            event["text"] = json!("\r");
        }
        browser
            .call(Some(page), "Input.dispatchKeyEvent", event)
            .await?;
    }
    Ok(())
}

/// Waits for the browser to finish writing `path` (`length` bytes).
async fn wait_file(path: &PathBuf, length: usize) -> anyhow::Result<Vec<u8>> {
    let until = Instant::now() + Duration::from_secs(15);
    loop {
        if let Ok(bytes) = std::fs::read(path)
            && bytes.len() == length
        {
            return Ok(bytes);
        }
        if Instant::now() > until {
            let dir: Vec<_> = path
                .parent()
                .and_then(|d| std::fs::read_dir(d).ok())
                .into_iter()
                .flatten()
                .flatten()
                .map(|e| e.file_name())
                .collect();
            bail!("no download at {}; the folder has {dir:?}", path.display());
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}
