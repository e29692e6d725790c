//! One track of an album in the browser: a server publishing a folder of
//! three short WAV tracks as one multi-file torrent (`serve --albums`), a
//! page opening `/embed/<album>?file=1`. The player joins the album's
//! swarm, plays that file alone (its duration, its bytes through the
//! service worker, its title), fetches only its pieces (none lying wholly
//! inside the first or third track), and a second page playing the same
//! file through the JavaScript API (`file: 1`, no web seed) gets every byte
//! from the first: one swarm. The first fan then plays the first track,
//! importing what it kept of the album (the boundary piece too) and
//! streaming file 0's bytes. Bad `file` values are said in the player,
//! and `load` rejects them saying what there is. In Chromium and Firefox.
//!
//! The album's own embed (`/embed/<album>`, no `file`) lists its three
//! tracks; pressing the third plays file 2; pressing the first plays it in
//! the same track (session), the second track's first pieces are fetched
//! ahead while it plays (`look_ahead`), the next track is made ready in the
//! player's second element, and at each end the player moves on by itself,
//! 1 → 2 → 3, gaplessly: the gap from `ended` to the next element's
//! `playing` and its clock moving is printed; asserted are that the next
//! element was ready before the last ended, that no tracker socket was
//! opened again and that the peer connection to another fan lasted. The
//! demo page's player of the album lists its tracks. An Ogg album from the
//! web seed alone is gapless too: the next element has its start and the
//! file's last page (read before it plays) when the first track ends
//! (`run_ogg`). With `keep: 'start'`, a session moved on to file 1
//! (`playFile`) keeps file 1's start under file 1's key, and a later load
//! of file 1 imports it. A foreign album loaded without `file` plays its
//! first audio file (not its cover), one with none is refused.
#![allow(clippy::unwrap_used)]

use std::time::{Duration, Instant};

use anyhow::{Context, ensure};
use serde_json::Value;

use fanswarm_e2e::browser::{Browser, Engine, Page};
use fanswarm_e2e::player::{self, digest_of, num};
use fanswarm_e2e::{netns, server};
use swarm::metainfo::{Metainfo, TorrentBuilder, hash_pieces};

const CHROMIUM: &str = "one_track_of_an_album_plays_alone_and_fetches_only_its_pieces";
const FIREFOX: &str = "one_track_of_an_album_plays_alone_in_firefox";
const LIST: &str = "an_album_embed_lists_its_tracks_and_moves_on_to_the_next";
const LIST_FIREFOX: &str = "an_album_embed_lists_its_tracks_and_moves_on_in_firefox";
const OGG: &str = "an_ogg_album_moves_on_to_its_next_track";
const OGG_FIREFOX: &str = "an_ogg_album_moves_on_to_its_next_track_in_firefox";
const OGG_SHORT_FIREFOX: &str = "a_short_ogg_next_track_is_ready_in_firefox";
const KEEP_START: &str = "an_album_session_keeps_the_start_of_each_file_it_plays";
const FOREIGN: &str = "a_foreign_album_plays_its_first_audio_file";

/// Seconds of each track, in file order (about 44 KB a second): the middle
/// one longer, so its duration tells it from its neighbours and the album.
const TRACKS: [(&str, u32); 3] = [("1 intro.wav", 3), ("2 song.wav", 6), ("3 outro.wav", 3)];
/// A track outside any album folder: a single-file torrent.
const SINGLE: &str = "single.wav";

#[test]
fn one_track_of_an_album_plays_alone_and_fetches_only_its_pieces() -> anyhow::Result<()> {
    netns::run(CHROMIUM, run(Engine::Chromium))
}

#[test]
fn one_track_of_an_album_plays_alone_in_firefox() -> anyhow::Result<()> {
    netns::run(FIREFOX, run(Engine::Firefox))
}

#[test]
fn an_album_embed_lists_its_tracks_and_moves_on_to_the_next() -> anyhow::Result<()> {
    netns::run(LIST, run_list(Engine::Chromium))
}

#[test]
fn an_album_embed_lists_its_tracks_and_moves_on_in_firefox() -> anyhow::Result<()> {
    netns::run(LIST_FIREFOX, run_list(Engine::Firefox))
}

#[test]
fn an_ogg_album_moves_on_to_its_next_track() -> anyhow::Result<()> {
    netns::run(OGG, run_ogg(Engine::Chromium, 60))
}

#[test]
fn an_ogg_album_moves_on_to_its_next_track_in_firefox() -> anyhow::Result<()> {
    netns::run(OGG_FIREFOX, run_ogg(Engine::Firefox, 60))
}

/// A short next track (16 s, ~790 KB): Firefox reads a small file through
/// to its end before it plays, and a file under `SMALL_FILE` may have all
/// of that read early.
#[test]
fn a_short_ogg_next_track_is_ready_in_firefox() -> anyhow::Result<()> {
    netns::run(OGG_SHORT_FIREFOX, run_ogg(Engine::Firefox, 16))
}

#[test]
fn an_album_session_keeps_the_start_of_each_file_it_plays() -> anyhow::Result<()> {
    netns::run(KEEP_START, run_keep_start(Engine::Chromium))
}

#[test]
fn a_foreign_album_plays_its_first_audio_file() -> anyhow::Result<()> {
    netns::run(FOREIGN, run_foreign(Engine::Chromium))
}

/// The album's server: three tracks in a folder, and a lone one; the
/// tracks' bytes in order.
async fn album_server() -> anyhow::Result<(server::TestServer, Vec<Vec<u8>>)> {
    let library = tempfile::tempdir()?;
    let folder = library.path().join("Night Songs");
    std::fs::create_dir_all(&folder)?;
    let mut originals = Vec::new();
    for (i, (name, seconds)) in TRACKS.iter().enumerate() {
        let samples = signal_server::demo::synthesize(*seconds, i as u64 + 1);
        let bytes = signal_server::demo::wav_bytes(&samples, signal_server::demo::SAMPLE_RATE);
        std::fs::write(folder.join(name), &bytes)?;
        originals.push(bytes);
    }
    let samples = signal_server::demo::synthesize(2, 9);
    let single_bytes = signal_server::demo::wav_bytes(&samples, signal_server::demo::SAMPLE_RATE);
    std::fs::write(library.path().join(SINGLE), &single_bytes)?;
    Ok((server::start_albums(library).await?, originals))
}

async fn run(engine: Engine) -> anyhow::Result<()> {
    let started = Instant::now();
    let (srv, originals) = album_server().await?;
    let album = srv
        .tracks()
        .iter()
        .find(|t| t.files.is_some())
        .context("an album")?
        .clone();
    let single = srv
        .tracks()
        .iter()
        .find(|t| t.files.is_none())
        .context("the single")?
        .clone();
    let meta = Metainfo::from_bytes(&album.torrent)?;
    ensure!(meta.info.files.len() == 3, "{:?}", meta.info.files);
    let file = &meta.info.files[1];
    let pieces = meta.info.file_pieces(1).context("file 1's pieces")?;
    let piece_length = u64::from(meta.info.piece_length);
    ensure!(
        pieces.start > 0 && pieces.end < meta.info.piece_count(),
        "file 1 has neighbours' pieces around it: {pieces:?} of {}",
        meta.info.piece_count()
    );
    let hex = album.info_hash.to_hex();
    let embed = format!("{}/embed/{hex}?file=1", srv.base);

    // The first fan: the embed of the album's second track.
    let mut browser = Browser::launch_engine(engine).await?;
    let page = browser.open(&embed).await?;
    player::press_play(&mut browser, &page).await?;
    player::wait_all(
        &mut browser,
        std::slice::from_ref(&page),
        Duration::from_secs(30),
        "the track playing",
        |s| num(s, "currentTime") >= 1.0 && s["paused"] == false,
    )
    .await?;
    let shown = shown(&mut browser, &page).await?;
    let duration = shown["duration"].as_f64().unwrap_or(-1.0);
    ensure!(
        (duration - f64::from(TRACKS[1].1)).abs() < 0.5,
        "the element plays file 1 ({} s), not the album ({} s): {shown}",
        TRACKS[1].1,
        TRACKS.iter().map(|t| t.1).sum::<u32>()
    );
    ensure!(
        shown["file"] == 1 && shown["length"].as_u64() == Some(file.length),
        "the track is file 1: {shown}"
    );
    ensure!(
        shown["title"].as_str().is_some_and(|t| t.contains("song")),
        "the player shows file 1's title: {shown}"
    );
    ensure!(
        shown["mime"] == "audio/wav",
        "typed by the file's own name: {shown}"
    );
    player::wait_all(
        &mut browser,
        std::slice::from_ref(&page),
        Duration::from_secs(60),
        "file 1 complete",
        |s| s["done"] == true,
    )
    .await?;
    let digest = player::assembled(&mut browser, &page).await?;
    ensure!(
        digest == digest_of(&originals[1]),
        "the stream is exactly file 1's bytes: {digest} (file 1 is {})",
        digest_of(&originals[1])
    );
    // Only file 1's pieces were fetched: none lying wholly in file 0 or 2,
    // and the web seed sent no more than they hold.
    let had = had_pieces(&mut browser, &page, meta.info.piece_count()).await?;
    let outside: Vec<u32> = had
        .iter()
        .copied()
        .filter(|p| !pieces.contains(p))
        .collect();
    ensure!(
        outside.is_empty(),
        "pieces outside file 1 ({pieces:?}) fetched: {outside:?}"
    );
    ensure!(
        pieces.clone().all(|p| had.contains(&p)),
        "every piece of file 1 ({pieces:?}): {had:?}"
    );
    // A single track's embed prepares no next one: one element has a source.
    let sources = browser
        .eval(
            &page,
            "[...document.querySelector('fanswarm-player').shadowRoot.querySelectorAll('audio')] \
             .filter((a) => a.hasAttribute('src')).length",
        )
        .await?;
    ensure!(
        sources == 1,
        "one element of the ?file=1 embed has a source: {sources}"
    );
    let span = u64::from(pieces.end - pieces.start) * piece_length;
    let sent = srv.webseed_bytes();
    ensure!(
        sent <= span,
        "the web seed sent {sent} B, more than file 1's pieces ({span} B)"
    );

    // A second fan of the same file, no web seed, nothing kept: every byte
    // from the first, through the JavaScript API's `file`.
    let tools = format!("{}/piecemap.js", srv.base);
    let second = browser.open(&tools).await?;
    let theirs = play_file(
        &mut browser,
        &second,
        &album.torrent_url,
        "file: 1, webSeed: false, keep: 'none'",
    )
    .await?;
    ensure!(
        theirs["digest"] == digest_of(&originals[1]).as_str(),
        "the second fan's stream: {theirs}"
    );
    ensure!(
        theirs["fromPeers"].as_f64().unwrap_or(0.0) >= file.length as f64,
        "the second fan got file 1 from the first: {theirs}"
    );
    ensure!(srv.webseed_bytes() == sent, "the server sent nothing more");
    // Its stats are file 1's: its length, all of its bytes and pieces, not
    // the album's.
    let file_pieces = f64::from(pieces.end - pieces.start);
    ensure!(
        num(&theirs, "length") == file.length as f64
            && num(&theirs, "verifiedBytes") == file.length as f64
            && num(&theirs, "totalPieces") == file_pieces
            && num(&theirs, "verifiedPieces") == file_pieces,
        "stats() of file 1 ({} B, {file_pieces} pieces): {theirs}",
        file.length
    );

    // Bad input: said in the player, and `load` rejects with the reason.
    let refusals = [
        (format!("{}/embed/{hex}?file=3", srv.base), "3 files"),
        (
            format!("{}/embed/{hex}?file=abc", srv.base),
            "a whole number from 0",
        ),
        (
            format!("{}/embed/{}?file=3", srv.base, single.info_hash.to_hex()),
            "single track",
        ),
    ];
    for (url, says) in &refusals {
        let bad = browser.open(url).await?;
        let said = status_saying(&mut browser, &bad, says).await?;
        ensure!(said.contains(says), "{url}: the player says {said:?}");
        browser.close(&bad).await?;
    }
    // The first fan goes on to the first track: it imports what it kept of
    // the album (the piece file 0 shares with file 1 among them), and its
    // stream is file 0's bytes, not file 1's.
    let first_track = format!("{}/embed/{hex}?file=0", srv.base);
    browser.navigate(&page, &first_track).await?;
    browser.wait_loaded(&page, &first_track).await?;
    player::press_play(&mut browser, &page).await?;
    let done0 = player::wait_all(
        &mut browser,
        std::slice::from_ref(&page),
        Duration::from_secs(60),
        "file 0 complete",
        |s| s["done"] == true,
    )
    .await?;
    let digest0 = player::assembled(&mut browser, &page).await?;
    ensure!(
        digest0 == digest_of(&originals[0]),
        "the stream is exactly file 0's bytes: {digest0}"
    );
    ensure!(
        num(&done0[0], "fromCache") >= piece_length as f64,
        "the boundary piece kept while file 1 played was imported: {}",
        done0[0]
    );

    // The third track's old single-file embed leads to it in the album.
    let old = album
        .files
        .as_ref()
        .and_then(|f| f[2].single)
        .context("file 2's old hash")?;
    let moved = browser.open_unloaded("about:blank").await?;
    let redirected = format!("{}/embed/{hex}?file=2", srv.base);
    browser
        .navigate(&moved, &format!("{}/embed/{}", srv.base, old.to_hex()))
        .await?;
    browser.wait_loaded(&moved, &redirected).await?;
    let test = "document.querySelector('fanswarm-player')?.track?.file === 2 && \
                document.querySelector('fanswarm-player').shadowRoot \
                .querySelector('[data-ui=title]').textContent.includes('outro')";
    ensure!(
        browser
            .became_true(&moved, test, Duration::from_secs(20))
            .await,
        "the old embed of file 2 plays file 2 of the album: {}",
        browser
            .eval(&moved, "location.href + ' ' + document.title")
            .await?
    );
    let rejected = browser
        .eval(
            &second,
            &format!(
                "(async () => {{
            const fanswarm = (await import('/fanswarm.js')).default;
            try {{
                await fanswarm.load(new Audio(), {{ torrent: '{}', file: 7 }});
                return 'loaded';
            }} catch (e) {{ return String(e?.message ?? e); }}
        }})()",
                album.torrent_url
            ),
        )
        .await?;
    ensure!(
        rejected.as_str().is_some_and(|t| t.contains("file=7")),
        "load rejects file 7: {rejected}"
    );
    println!(
        "{}: album of {} pieces ({} B each), file 1 = pieces {pieces:?}; web seed sent {sent} B \
         (file 1 is {} B); second fan from peers {} B; {:.1} s",
        engine.name(),
        meta.info.piece_count(),
        piece_length,
        file.length,
        num(&theirs, "fromPeers"),
        started.elapsed().as_secs_f64()
    );
    Ok(())
}

async fn run_list(engine: Engine) -> anyhow::Result<()> {
    let started = Instant::now();
    let (srv, _) = album_server().await?;
    let album = srv
        .tracks()
        .iter()
        .find(|t| t.files.is_some())
        .context("an album")?
        .clone();
    let meta = Metainfo::from_bytes(&album.torrent)?;
    let next = meta.info.file_pieces(1).context("file 1's pieces")?;
    // A piece wholly inside the second track: only a look-ahead fetches it
    // while the first plays.
    let inside = next.start + 1;
    let mut browser = Browser::launch_engine(engine).await?;
    let page = browser
        .open(&format!("{}/embed/{}", srv.base, album.info_hash.to_hex()))
        .await?;
    let listed = "(() => { const p = document.querySelector('fanswarm-player'); \
        const list = p?.shadowRoot.querySelector('[data-ui=tracks]'); \
        return !!list && !list.hidden && list.querySelectorAll('button').length === 3; })()";
    ensure!(
        browser
            .became_true(&page, listed, Duration::from_secs(20))
            .await,
        "three tracks listed"
    );
    let names = browser
        .eval(
            &page,
            "JSON.stringify([...document.querySelector('fanswarm-player').shadowRoot              .querySelectorAll('[data-ui=tracks] button')].map((b) => b.textContent))",
        )
        .await?;
    let names: Vec<String> = serde_json::from_str(names.as_str().context("names")?)?;
    ensure!(
        names.len() == 3
            && names[0].contains("intro")
            && names[1].contains("song")
            && names[2].contains("outro"),
        "the list: {names:?}"
    );

    // The demo page's player of the album lists its tracks too.
    let demo = browser.open(&format!("{}/", srv.base)).await?;
    let demo_listed = format!(
        "[...document.querySelectorAll('fanswarm-player')].some((p) => \
         p.getAttribute('src')?.includes('{}') && \
         p.shadowRoot.querySelectorAll('[data-ui=tracks] button').length === 3 && \
         p.shadowRoot.querySelector('[data-ui=tracks] button').textContent.includes('0:03'))",
        album.info_hash.to_hex()
    );
    ensure!(
        browser
            .became_true(&demo, &demo_listed, Duration::from_secs(20))
            .await,
        "the demo page's album player lists its three tracks with their durations"
    );
    browser.close(&demo).await?;

    // A second fan in the swarm, joined (not playing): the player's peer.
    let fan = browser.open(&format!("{}/piecemap.js", srv.base)).await?;
    browser
        .eval(
            &fan,
            &format!(
                "(async () => {{ const fanswarm = (await import('/fanswarm.js')).default; \
                 const t = await fanswarm.load(new Audio(), {{ torrent: '{}', iceServers: [], \
                 keep: 'none', webSeed: false }}); t.join(); window.__fan = t; return true; }})()",
                album.torrent_url
            ),
        )
        .await?;
    // From now on the page counts the tracker sockets it opens and keeps
    // every RTCPeerConnection it makes: a track that left the swarm and
    // joined again would open a socket and connect anew.
    browser
        .eval(
            &page,
            "(() => { window.__sockets = 0; window.__pcs = []; \
             const WS = window.WebSocket, PC = window.RTCPeerConnection; \
             window.WebSocket = class extends WS { constructor(...a) { super(...a); window.__sockets += 1; } }; \
             window.RTCPeerConnection = class extends PC { constructor(...a) { super(...a); window.__pcs.push(this); } }; \
             const p = document.querySelector('fanswarm-player'); p.setAttribute('ice-servers', ''); \
             window.__audioError = null; \
             for (const a of p.shadowRoot.querySelectorAll('audio')) a.addEventListener('error', () => { \
                 if (a === p.audio) window.__audioError = String(a.error?.message || a.error?.code); }); \
             return true; })()",
        )
        .await?;

    // The third track, pressed: the player joins and plays it.
    browser
        .eval(
            &page,
            "(() => { document.querySelector('fanswarm-player').shadowRoot \
             .querySelectorAll('[data-ui=tracks] button')[2].click(); return true; })()",
        )
        .await?;
    let third = playing_file(&mut browser, &page, 2).await?;
    ensure!(
        (third["duration"].as_f64().unwrap_or(0.0) - f64::from(TRACKS[2].1)).abs() < 0.5
            && third["title"].as_str().is_some_and(|t| t.contains("outro")),
        "track 3 plays file 2: {third}"
    );
    let connected = "(() => { const p = document.querySelector('fanswarm-player'); \
        return p.stats().peers >= 1 && window.__pcs.some((c) => c.connectionState === 'connected'); })()";
    ensure!(
        browser
            .became_true(&page, connected, Duration::from_secs(30))
            .await,
        "the player connected to the other fan: {}",
        browser
            .eval(
                &page,
                "JSON.stringify(document.querySelector('fanswarm-player').stats())"
            )
            .await?
    );

    // The first, pressed, in the same track: its end leads to the second
    // and the second's to the third by themselves, each made ready in the
    // player's other element while the last played. At each `ended` the
    // page notes the time, how ready the element taking over was, then
    // when it fired `playing` and when its clock first moved.
    browser
        .eval(
            &page,
            &format!(
                "(() => {{ const p = document.querySelector('fanswarm-player'); \
             window.__ahead = false; window.__log = []; window.__track = p.track; \
             window.__before = window.__pcs.filter((c) => c.connectionState === 'connected'); \
             const now = () => performance.now(); \
             for (const a of p.shadowRoot.querySelectorAll('audio')) {{ \
               a.addEventListener('timeupdate', () => {{ \
                 if (p.track?.file === 0 && p.track.piece({inside}) !== undefined) window.__ahead = true; }}); \
               a.addEventListener('ended', () => {{ \
                 const t = now(); const next = p.audio; \
                 const at = {{ ended: t, from: a === next ? null : p.track.file - 1, to: p.track.file, \
                   readyState: next.readyState, swapped: next !== a }}; \
                 window.__log.push(at); \
                 next.addEventListener('playing', () => {{ at.playing ??= now() - t; }}, {{ once: true }}); \
                 const poll = () => {{ if (next.currentTime > 0) at.advancing = now() - t; \
                   else if (now() - t < 5000) setTimeout(poll, 1); }}; poll(); }}); \
             }} \
             p.shadowRoot.querySelectorAll('[data-ui=tracks] button')[0].click(); return true; }})()"
            ),
        )
        .await?;
    playing_file(&mut browser, &page, 0).await?;
    let second = playing_file(&mut browser, &page, 1).await?;
    ensure!(
        second["title"].as_str().is_some_and(|t| t.contains("song")),
        "the second track plays after the first: {second}"
    );
    let last = playing_file(&mut browser, &page, 2).await?;
    ensure!(
        last["title"].as_str().is_some_and(|t| t.contains("outro")),
        "the third track plays after the second: {last}"
    );
    // Its clock moved: the last boundary's figures are in.
    tokio::time::sleep(Duration::from_millis(200)).await;
    let marks = browser
        .eval(
            &page,
            "(() => { const p = document.querySelector('fanswarm-player'); \
             return JSON.stringify({ ahead: window.__ahead, log: window.__log, \
             sameTrack: p.track === window.__track, sockets: window.__sockets, \
             pcs: window.__pcs.length, kept: window.__before.length, \
             stillConnected: window.__before.filter((c) => c.connectionState === 'connected').length, \
             peers: p.stats().peers, fromCache: p.stats().fromCache }); })()",
        )
        .await?;
    let marks: Value = serde_json::from_str(marks.as_str().context("marks")?)?;
    ensure!(
        marks["ahead"] == true,
        "piece {inside} of the second track was fetched ahead while the first played: {marks}"
    );
    let log = marks["log"].as_array().context("boundaries")?;
    ensure!(log.len() == 2, "two boundaries, track 1 → 2 → 3: {marks}");
    for (i, at) in log.iter().enumerate() {
        ensure!(
            at["swapped"] == true && at["from"] == i && at["to"] == i + 1,
            "at the end of track {} the other element took over with track {}: {marks}",
            i + 1,
            i + 2
        );
        ensure!(
            at["readyState"].as_u64().unwrap_or(0) >= 3,
            "track {}'s element had its start (readyState >= 3) before track {} ended: {marks}",
            i + 2,
            i + 1
        );
    }
    // One session all along: the same track object, no tracker socket
    // opened again, the connection to the other fan kept throughout.
    ensure!(
        marks["sameTrack"] == true && marks["sockets"] == 0,
        "the album played in one session, without joining again: {marks}"
    );
    ensure!(
        marks["kept"].as_u64().unwrap_or(0) >= 1 && marks["stillConnected"] == marks["kept"],
        "the peer connections of track 1 are those of track 3: {marks}"
    );
    let gaps: Vec<String> = log
        .iter()
        .map(|at| {
            format!(
                "{}→{}: playing +{:.1} ms, clock moving +{:.1} ms",
                num(at, "from") + 1.0,
                num(at, "to") + 1.0,
                num(at, "playing"),
                num(at, "advancing")
            )
        })
        .collect();
    println!(
        "{}: list {names:?}; gaps from `ended`: {}; {} RTCPeerConnections made, {} connected \
         before track 1 still connected at track 3, {} tracker sockets opened; {:.1} s",
        engine.name(),
        gaps.join("; "),
        num(&marks, "pcs"),
        num(&marks, "stillConnected"),
        num(&marks, "sockets"),
        started.elapsed().as_secs_f64()
    );
    browser.close(&fan).await?;
    Ok(())
}

/// An album of two Ogg Vorbis tracks, the second `seconds` of noise at
/// high quality (60 s: ~2.9 MB; 16 s: ~790 KB), from the web seed alone:
/// the element made ready for the second track is ready to play
/// (`readyState` >= 3) when the first ends, and takes over. A browser
/// reads an Ogg file's last page before it plays it, far past the
/// look-ahead's head and seconds of stream past the file's start; what
/// the made-ready element waits on is due when the file starts
/// (`Node::look_ahead_read`), so it comes before the first track ends.
/// Firefox reads a small file through to its end instead of seeking: a
/// file under `SMALL_FILE` may have all of it read early. Before:
/// `readyState` 0 at `ended` and playing 36-98 ms later.
async fn run_ogg(engine: Engine, seconds: u32) -> anyhow::Result<()> {
    let started = Instant::now();
    let library = tempfile::tempdir()?;
    let folder = library.path().join("Loud Songs");
    std::fs::create_dir_all(&folder)?;
    let noise = format!("anoisesrc=d={seconds}:c=white:a=0.3");
    for (name, source) in [
        ("1 short.ogg", "sine=frequency=440:duration=2"),
        ("2 long.ogg", noise.as_str()),
    ] {
        let path = folder.join(name).display().to_string();
        let out = std::process::Command::new("ffmpeg")
            .args(["-hide_banner", "-loglevel", "error", "-y", "-f", "lavfi"])
            .args(["-i", source, "-ac", "2", "-ar", "44100"])
            .args(["-c:a", "libvorbis", "-q:a", "10", &path])
            .output()
            .context("running ffmpeg (scripts/install-deps --test installs it)")?;
        ensure!(
            out.status.success(),
            "ffmpeg: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let long = std::fs::metadata(folder.join("2 long.ogg"))?.len();
    ensure!(
        long > 700 * 1024,
        "the second track ({long} B) is longer than its head and last page"
    );
    let srv = server::start_albums(library).await?;
    let album = srv
        .tracks()
        .iter()
        .find(|t| t.files.is_some())
        .context("an album")?
        .clone();
    let mut browser = Browser::launch_engine(engine).await?;
    let page = browser
        .open(&format!("{}/embed/{}", srv.base, album.info_hash.to_hex()))
        .await?;
    let listed = "(() => { const p = document.querySelector('fanswarm-player'); \
        return p?.shadowRoot.querySelectorAll('[data-ui=tracks] button').length === 2; })()";
    ensure!(
        browser
            .became_true(&page, listed, Duration::from_secs(20))
            .await,
        "two tracks listed"
    );
    browser
        .eval(
            &page,
            "(() => { const p = document.querySelector('fanswarm-player'); \
             window.__log = []; \
             for (const a of p.shadowRoot.querySelectorAll('audio')) a.addEventListener('ended', () => { \
               const t = performance.now(); const next = p.audio; \
               const f = p.track.files()[1]; const pl = p.track.pieceLength; \
               const at = { readyState: next.readyState, swapped: next !== a, \
                 head: p.track.piece(Math.floor(f.offset / pl)) !== undefined, \
                 tail: p.track.piece(Math.floor((f.offset + f.length - 1) / pl)) !== undefined, \
                 aheadEnd: p.track.piece(Math.floor((f.offset + 500000) / pl)) !== undefined, \
                 origin: p.track.webSeeds().reduce((sum, w) => sum + w.bytes, 0) }; window.__log.push(at); \
               next.addEventListener('playing', () => { at.playing ??= performance.now() - t; }, { once: true }); }); \
             p.shadowRoot.querySelectorAll('[data-ui=tracks] button')[0].click(); return true; })()",
        )
        .await?;
    playing_file(&mut browser, &page, 0).await?;
    let second = playing_file(&mut browser, &page, 1).await?;
    let log = browser.eval(&page, "JSON.stringify(window.__log)").await?;
    let log: Value = serde_json::from_str(log.as_str().context("log")?)?;
    let at = &log[0];
    ensure!(
        at["swapped"] == true && second["title"].as_str().is_some_and(|t| t.contains("long")),
        "the Ogg second track plays after the first, in the element made ready for it: \
         {log} {second}"
    );
    ensure!(
        at["readyState"].as_u64().unwrap_or(0) >= 3 && at["tail"] == true,
        "the element made ready for the Ogg second track had its start and last page \
         (readyState >= 3) when the first ended: {log}"
    );
    println!(
        "{}: Ogg 1 → 2 ({long} B): at `ended` the next element's readyState {}, its first \
         piece in: {}, its piece at 500 KB: {}, its last: {}; {} B from the origin by then; \
         playing +{:.1} ms after `ended`; \
         {:.1} s",
        engine.name(),
        at["readyState"],
        at["head"],
        at["aheadEnd"],
        at["tail"],
        at["origin"],
        num(at, "playing"),
        started.elapsed().as_secs_f64()
    );
    Ok(())
}

/// `keep: 'start'` in one album session: file 0 loaded, then
/// `track.playFile(1)`. File 1's start is kept under its own key
/// (`&file=1`), with its stream URL, and a later load of file 1 imports
/// it (`fromCache`) before it fetches anything.
async fn run_keep_start(engine: Engine) -> anyhow::Result<()> {
    let started = Instant::now();
    let (srv, _) = album_server().await?;
    let album = srv
        .tracks()
        .iter()
        .find(|t| t.files.is_some())
        .context("an album")?
        .clone();
    let meta = Metainfo::from_bytes(&album.torrent)?;
    let pieces = meta.info.file_pieces(1).context("file 1's pieces")?;
    let mut browser = Browser::launch_engine(engine).await?;
    let page = browser.open(&format!("{}/piecemap.js", srv.base)).await?;
    let text = browser
        .eval(
            &page,
            &format!(
                "(async () => {{
            const fanswarm = (await import('/fanswarm.js')).default;
            const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
            const options = {{ torrent: '{torrent}', iceServers: [], keep: 'start' }};
            const audio = new Audio();
            const playing = () => new Promise((resolve, reject) => {{
                audio.addEventListener('playing', resolve, {{ once: true }});
                setTimeout(() => reject(new Error('not playing in 20 s')), 20000);
            }});
            let heard = playing();
            const track = await fanswarm.play(audio, {{ ...options, file: 0 }});
            await heard;
            heard = playing();
            track.playFile(1);
            await heard;
            const isFile1 = (e) => e.key.endsWith('&file=1');
            let list = [];
            let kept;
            for (let i = 0; i < 100 && !kept; i++) {{
                await sleep(100);
                list = JSON.parse(localStorage.getItem('fanswarm-start-v1') ?? '[]');
                const entry = list.find(isFile1);
                kept = entry && await (await caches.open('fanswarm-start-v1')).match(entry.key);
            }}
            track.destroy();
            const again = await fanswarm.load(new Audio(), {{ ...options, file: 1, webSeed: false }});
            const back = again.stats();
            again.destroy();
            return JSON.stringify({{ keys: list.map((e) => e.key),
                stream: list.find(isFile1)?.stream ?? null,
                pieces: kept?.headers.get('x-fanswarm-pieces') ?? null, fromCache: back.fromCache }});
        }})()",
                torrent = album.torrent_url
            ),
        )
        .await?;
    let kept: Value = serde_json::from_str(text.as_str().context("result JSON")?)?;
    let keys = kept["keys"].as_array().context("keys")?;
    ensure!(
        keys.iter()
            .any(|k| k.as_str().is_some_and(|k| k.ends_with("&file=0")))
            && keys
                .iter()
                .any(|k| k.as_str().is_some_and(|k| k.ends_with("&file=1"))),
        "file 0's start and file 1's, each under its own key: {kept}"
    );
    let hex = album.info_hash.to_hex();
    ensure!(
        kept["stream"]
            .as_str()
            .is_some_and(|s| s.contains(&format!("/{hex}-1/"))),
        "file 1's entry resumes file 1's stream: {kept}"
    );
    let indexes: Vec<u32> = kept["pieces"]
        .as_str()
        .context("file 1's entry is in the cache")?
        .split(',')
        .filter_map(|e| e.split(':').next()?.parse().ok())
        .collect();
    ensure!(
        indexes.contains(&pieces.start) && indexes.iter().all(|p| pieces.contains(p)),
        "file 1's first pieces, none of another file alone: {indexes:?} of {pieces:?}"
    );
    ensure!(
        num(&kept, "fromCache") >= f64::from(meta.info.piece_length),
        "a later load of file 1 imports its kept start: {kept}"
    );
    println!(
        "{}: file 1's start kept: pieces {indexes:?} of {pieces:?}; {:.1} s",
        engine.name(),
        started.elapsed().as_secs_f64()
    );
    Ok(())
}

/// Albums not made by our server, loaded without `file`: one opening with
/// a cover, a `.nfo` and a `.cue` plays its first audio file and its
/// `files()` say which are tracks; one with no audio at all is refused,
/// `load` naming its files. Nothing is fetched: the file is chosen from
/// the torrent alone.
async fn run_foreign(engine: Engine) -> anyhow::Result<()> {
    let (srv, _) = album_server().await?;
    let with_cover = foreign_torrent(&[
        ("cover.jpg", 20_000),
        ("album.nfo", 300),
        ("album.cue", 200),
        ("1 first.wav", 40_000),
        ("2 second.wav", 30_000),
    ])?;
    let no_audio = foreign_torrent(&[("cover.jpg", 20_000), ("album.nfo", 300)])?;
    let mut browser = Browser::launch_engine(engine).await?;
    let page = browser.open(&format!("{}/piecemap.js", srv.base)).await?;
    let text = browser
        .eval(
            &page,
            &format!(
                "(async () => {{
            const fanswarm = (await import('/fanswarm.js')).default;
            const open = async (bytes) => {{
                try {{
                    const t = await fanswarm.load(new Audio(), {{ torrent: '/foreign.torrent',
                        torrentBytes: new Uint8Array(bytes), iceServers: [], keep: 'none' }});
                    const seen = {{ file: t.file ?? null, name: t.name, length: t.length,
                        totalPieces: t.stats().totalPieces, audio: t.files().map((f) => f.audio) }};
                    t.destroy();
                    return seen;
                }} catch (e) {{
                    return {{ error: String(e?.message ?? e) }};
                }}
            }};
            return JSON.stringify([await open({with_cover:?}), await open({no_audio:?})]);
        }})()"
            ),
        )
        .await?;
    let seen: Value = serde_json::from_str(text.as_str().context("result JSON")?)?;
    ensure!(
        seen[0]["file"] == 3 && seen[0]["name"] == "1 first.wav" && seen[0]["length"] == 40_000,
        "the first audio file plays, not the cover: {seen}"
    );
    ensure!(
        seen[0]["audio"] == serde_json::json!([false, false, false, true, true]),
        "the file list says which files are tracks (the player's list and its next \
         track skip the rest): {seen}"
    );
    let error = seen[1]["error"].as_str().unwrap_or_default();
    ensure!(
        error.contains("no file of this torrent is audio")
            && error.contains("cover.jpg, album.nfo"),
        "an album with no audio is refused, naming its files: {seen}"
    );
    println!("{}: {seen}", engine.name());
    Ok(())
}

/// A multi-file torrent of `files` (name, bytes), as another client would
/// make it: no web seed, no tracker.
fn foreign_torrent(files: &[(&str, u64)]) -> anyhow::Result<Vec<u8>> {
    let piece_length = 16_384;
    let total: u64 = files.iter().map(|f| f.1).sum();
    let data = vec![7u8; usize::try_from(total)?];
    let entries: Vec<(Vec<String>, u64)> = files
        .iter()
        .map(|(name, length)| (vec![(*name).to_owned()], *length))
        .collect();
    let meta = TorrentBuilder::multi_file("Foreign", entries)
        .piece_length(piece_length)
        .build(&hash_pieces(&data, piece_length)?)?;
    Ok(meta.to_bytes())
}

/// Waits until the player plays `file` (its clock past 0.3 s), and says
/// what it shows then.
async fn playing_file(browser: &mut Browser, page: &Page, file: u32) -> anyhow::Result<Value> {
    let test = format!(
        "(() => {{ const p = document.querySelector('fanswarm-player'); \
         return p.track?.file === {file} && !p.audio.paused && p.audio.currentTime > 0.3; }})()"
    );
    let playing = browser
        .became_true(page, &test, Duration::from_secs(30))
        .await;
    let text = browser
        .eval(
            page,
            "(() => { const p = document.querySelector('fanswarm-player');              return JSON.stringify({ file: p.track?.file ?? null, duration: p.audio.duration,              currentTime: p.audio.currentTime, paused: p.audio.paused, audioError: window.__audioError ?? null,              title: p.shadowRoot.querySelector('[data-ui=title]').textContent,              status: p.shadowRoot.querySelector('[data-ui=status]').textContent }); })()",
        )
        .await?;
    let state: Value = serde_json::from_str(text.as_str().context("JSON")?)?;
    ensure!(playing, "file {file} not playing within 30 s: {state}");
    Ok(state)
}

/// What the player shows and plays: the element's duration, the track's
/// file, length and stream type, the title line.
async fn shown(browser: &mut Browser, page: &Page) -> anyhow::Result<Value> {
    let text = browser
        .eval(
            page,
            "(async () => {
            const p = document.querySelector('fanswarm-player');
            const head = await fetch(p.track.streamUrl, { headers: { Range: 'bytes=0-0' } });
            await head.arrayBuffer();
            return JSON.stringify({ duration: p.audio.duration, file: p.track.file ?? null,
                length: p.track.length, mime: head.headers.get('content-type'),
                title: p.shadowRoot.querySelector('[data-ui=title]').textContent });
        })()",
        )
        .await?;
    Ok(serde_json::from_str(text.as_str().context("JSON")?)?)
}

/// The torrent's pieces the page holds (verified), by index.
async fn had_pieces(browser: &mut Browser, page: &Page, count: u32) -> anyhow::Result<Vec<u32>> {
    let value = browser
        .eval(
            page,
            &format!(
                "JSON.stringify([...Array({count}).keys()].filter((i) => \
                 document.querySelector('fanswarm-player').track.piece(i) !== undefined))"
            ),
        )
        .await?;
    Ok(serde_json::from_str(value.as_str().context("JSON")?)?)
}

/// The player's status line once it says `says` (or what it says after 20 s).
async fn status_saying(browser: &mut Browser, page: &Page, says: &str) -> anyhow::Result<String> {
    let until = Instant::now() + Duration::from_secs(20);
    loop {
        let text = browser
            .eval(
                page,
                "(async () => {
                await customElements.whenDefined('fanswarm-player');
                const p = document.querySelector('fanswarm-player');
                return p.shadowRoot.querySelector('[data-ui=status]')?.textContent ?? '';
            })()",
            )
            .await?;
        let text = text.as_str().unwrap_or("").to_owned();
        if text.contains(says) || Instant::now() > until {
            return Ok(text);
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Plays file `options.file` of the torrent at `torrent` in a page of the
/// server's origin through fanswarm.js until it is done; the stats and
/// the stream's digest.
async fn play_file(
    browser: &mut Browser,
    page: &Page,
    torrent: &str,
    options: &str,
) -> anyhow::Result<Value> {
    let text = browser
        .eval(
            page,
            &format!(
                "(async () => {{
            const fanswarm = (await import('/fanswarm.js')).default;
            const audio = new Audio();
            const track = await fanswarm.play(audio, {{ torrent: '{torrent}', iceServers: [], {options} }});
            window.__track = track;
            audio.playbackRate = 4;
            const t0 = performance.now();
            while (!track.stats().done) {{
                if (performance.now() - t0 > 60000) throw new Error('not done in 60 s: ' + JSON.stringify(track.stats()));
                await new Promise((r) => setTimeout(r, 100));
            }}
            const buf = await (await fetch(track.streamUrl)).arrayBuffer();
            const d = new Uint8Array(await crypto.subtle.digest('SHA-1', buf));
            const digest = [...d].map(b => b.toString(16).padStart(2, '0')).join('') + ':' + buf.byteLength;
            return JSON.stringify({{ ...track.stats(), digest }});
        }})()"
            ),
        )
        .await?;
    Ok(serde_json::from_str(text.as_str().context("result JSON")?)?)
}
