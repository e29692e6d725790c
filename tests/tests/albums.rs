//! An album end to end, with native peers (issue 17, item 1): a server
//! publishing a folder of three short WAV tracks makes ONE swarm; a native
//! peer gets the whole album from the web seed at its BEP 19 URLs; a
//! second one asking only for the second track gets exactly that file's
//! pieces — from the first peer and/or the web seed — and no piece lying
//! wholly inside the first or third track, and writes that file alone.
#![allow(clippy::unwrap_used)]

use std::net::IpAddr;
use std::time::{Duration, Instant};

use anyhow::{Context, ensure};

use fanswarm_peer::{NativeError, NativePeer, PeerOptions, RtcConfig};
use fanswarm_tracker::Limits;
use signal_server::catalog::Links;
use signal_server::state::{AppState, Paths};
use swarm::metainfo::Metainfo;

/// Seconds of each track, in file order (about 44 KB a second).
const TRACKS: [(&str, u32); 3] = [("1 intro.wav", 2), ("2 song.wav", 3), ("3 outro.wav", 2)];

fn options(tracker: String) -> PeerOptions {
    let mut options = PeerOptions {
        trackers: vec![tracker],
        rtc: RtcConfig {
            bind: IpAddr::from([127, 0, 0, 1]),
            gather_timeout: Duration::from_secs(2),
            ..RtcConfig::default()
        },
        web_seed: true,
        ..PeerOptions::default()
    };
    // Alone, a native peer takes a piece nobody has from the web seed after
    // a random wait of up to 1.5 s: shorter, so the test takes seconds.
    options.engine.web_seed_idle_wait = Duration::from_millis(50);
    options
}

#[tokio::test]
async fn an_album_is_one_swarm_and_one_track_of_it_fetches_only_its_pieces() -> anyhow::Result<()> {
    let started = Instant::now();
    let library = tempfile::tempdir()?;
    let mut originals = Vec::new();
    for (i, (name, seconds)) in TRACKS.iter().enumerate() {
        let samples = signal_server::demo::synthesize(*seconds, i as u64 + 1);
        let bytes = signal_server::demo::wav_bytes(&samples, signal_server::demo::SAMPLE_RATE);
        std::fs::create_dir_all(library.path().join("Night Songs"))?;
        std::fs::write(library.path().join("Night Songs").join(name), &bytes)?;
        originals.push(bytes);
    }
    // The real server in process (its player's files are not needed).
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let base = format!("http://{}", listener.local_addr()?);
    let catalog =
        signal_server::library::publish_albums(library.path().to_path_buf(), base.clone()).await?;
    ensure!(
        catalog.tracks().len() == 1,
        "one swarm: {}",
        catalog.tracks().len()
    );
    let album = catalog.tracks()[0].clone();
    let state = AppState::new(
        catalog,
        Paths {
            media_dir: library.path().to_path_buf(),
            web_dir: library.path().to_path_buf(),
        },
        Limits::default(),
    );
    let served = state.clone();
    tokio::spawn(signal_server::serve(listener, served));
    let tracker = Links::tracker_url(&base);
    let meta = Metainfo::from_bytes(&album.torrent)?;
    ensure!(meta.info.files.len() == 3, "{:?}", meta.info.files);
    let file = 1;
    let pieces = meta.info.file_pieces(file).context("file 1")?;
    let inside_others: Vec<u32> = (0..meta.info.piece_count())
        .filter(|p| !pieces.contains(p))
        .collect();
    ensure!(
        pieces.start > 0 && pieces.end < meta.info.piece_count() && !inside_others.is_empty(),
        "the middle track has neighbours' pieces around it: {pieces:?} of {}",
        meta.info.piece_count()
    );

    // A file index the album does not have is refused, not a panic.
    let out = tempfile::tempdir()?;
    let refused = NativePeer::start(
        &meta,
        &out.path().join("nowhere"),
        PeerOptions {
            files: Some(vec![3]),
            ..options(tracker.clone())
        },
    )
    .await;
    match refused {
        Err(NativeError::File(e)) => ensure!(e.to_string().contains("no file 3"), "{e}"),
        other => anyhow::bail!("file 3 accepted: {:?}", other.map(|p| p.stats())),
    }

    // The whole album, from the web seed.
    let whole_dir = out.path().join("whole").join(&meta.info.name);
    let whole = NativePeer::start(&meta, &whole_dir, options(tracker.clone())).await?;
    tokio::time::timeout(Duration::from_secs(60), whole.wait_done())
        .await
        .with_context(|| format!("album not done: {:?}", whole.stats()))?;
    for ((name, _), original) in TRACKS.iter().zip(&originals) {
        ensure!(
            std::fs::read(whole_dir.join(name))? == *original,
            "{name} is the track's bytes"
        );
    }
    let whole_stats = whole.stats();
    ensure!(whole_stats.from_web_seed >= meta.info.total_length());

    // Only the middle track: from the first peer and/or the web seed.
    let one_dir = out.path().join("one").join(&meta.info.name);
    let one = NativePeer::start(
        &meta,
        &one_dir,
        PeerOptions {
            files: Some(vec![file]),
            ..options(tracker.clone())
        },
    )
    .await?;
    tokio::time::timeout(Duration::from_secs(60), one.wait_done())
        .await
        .with_context(|| format!("track not done: {:?}", one.stats()))?;
    let stats = one.stats();
    one.stop().await;
    whole.stop().await;
    state.shut_down();
    ensure!(
        std::fs::read(one_dir.join(TRACKS[file].0))? == originals[file],
        "the selected track is whole and right"
    );
    for neighbour in [TRACKS[0].0, TRACKS[2].0] {
        ensure!(
            !one_dir.join(neighbour).exists(),
            "{neighbour}: no bytes of a boundary piece written beside the track"
        );
    }
    let received: Vec<u32> = stats
        .received
        .as_ref()
        .context("received nothing")?
        .ones()
        .collect();
    ensure!(
        received == pieces.clone().collect::<Vec<_>>(),
        "exactly the track's pieces, boundary ones included: {received:?}, want {pieces:?}"
    );
    ensure!(
        received.iter().all(|p| !inside_others.contains(p)),
        "no piece wholly inside track 1 or 3: {received:?}"
    );
    let useful = stats.from_peers + stats.from_web_seed;
    let span: u64 = pieces
        .clone()
        .map(|p| u64::from(meta.info.piece_size(p)))
        .sum();
    ensure!(useful == span, "received {useful} B for a {span} B span");
    println!(
        "album of {} pieces ({} B); track 2 = pieces {pieces:?}: {} B from peers, {} B from the \
         web seed; {:.1} s",
        meta.info.piece_count(),
        meta.info.total_length(),
        stats.from_peers,
        stats.from_web_seed,
        started.elapsed().as_secs_f64()
    );
    Ok(())
}
