//! End-to-end swarms of native WebRTC peers (`fanswarm-peer`) around this
//! server: a real tracker on 127.0.0.1:0, the server's web seed and its
//! `--webrtc-seed`, real `webrtc` data channels over loopback, real files
//! on disk. Built with the `native-peer` feature only.
//!
//! Each test starts what it needs, bounds itself in time, and cleans up
//! (temporary directories, peers stopped, the tracker's runtime shut down).
#![allow(clippy::unwrap_used)]

use std::collections::BTreeSet;
use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use fanswarm_peer::{NativePeer, PeerOptions, RtcConfig};
use fanswarm_tracker::Limits;
use signal_server::catalog::Catalog;
use signal_server::state::{AppState, Paths};
use swarm::PeerId;
use swarm::metainfo::{Metainfo, TorrentBuilder, hash_pieces};

/// A tracker on its own runtime and thread, so that stopping it really
/// ends every socket it has (as a crashed or restarted server would).
struct Tracker {
    addr: SocketAddr,
    shutdown: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Tracker {
    fn start(addr: SocketAddr) -> Tracker {
        let (ready_tx, ready_rx) = std::sync::mpsc::channel();
        let (shutdown, stop) = tokio::sync::oneshot::channel::<()>();
        let thread = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            runtime.block_on(async move {
                let listener = tokio::net::TcpListener::bind(addr).await.unwrap();
                ready_tx.send(listener.local_addr().unwrap()).unwrap();
                let dir = std::env::temp_dir();
                let state = AppState::new(
                    Catalog::default(),
                    Paths {
                        media_dir: dir.clone(),
                        web_dir: dir,
                    },
                    Limits::default(),
                );
                tokio::select! {
                    _ = signal_server::serve(listener, state) => {}
                    _ = stop => {}
                }
            });
            // Dropping the runtime here cancels every connection task.
        });
        let addr = ready_rx.recv_timeout(Duration::from_secs(10)).unwrap();
        Tracker {
            addr,
            shutdown: Some(shutdown),
            thread: Some(thread),
        }
    }

    fn url(&self) -> String {
        format!("ws://{}/announce", self.addr)
    }

    fn stop(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        if let Some(thread) = self.thread.take() {
            thread.join().unwrap();
        }
    }
}

impl Drop for Tracker {
    fn drop(&mut self) {
        self.stop();
    }
}

/// Random content and its single-file torrent announcing to `tracker`.
fn track(seed: u64, len: usize, tracker: &str) -> (Vec<u8>, Metainfo) {
    let mut rng = fastrand::Rng::with_seed(seed);
    let data: Vec<u8> = (0..len).map(|_| rng.u8(..)).collect();
    let piece_length = 64 * 1024;
    let meta = TorrentBuilder::single_file("track.bin", len as u64)
        .piece_length(piece_length)
        .tracker(tracker)
        .build(&hash_pieces(&data, piece_length).unwrap())
        .unwrap();
    (data, meta)
}

fn options(tracker: &str) -> PeerOptions {
    PeerOptions {
        trackers: vec![tracker.to_owned()],
        rtc: RtcConfig {
            bind: IpAddr::from([127, 0, 0, 1]),
            gather_timeout: Duration::from_secs(2),
            ..RtcConfig::default()
        },
        web_seed: false,
        ..PeerOptions::default()
    }
}

async fn seeder(dir: &Path, name: &str, data: &[u8], meta: &Metainfo, tracker: &str) -> NativePeer {
    seeder_with(dir, name, data, meta, options(tracker)).await
}

async fn seeder_with(
    dir: &Path,
    name: &str,
    data: &[u8],
    meta: &Metainfo,
    options: PeerOptions,
) -> NativePeer {
    let path = dir.join(name).join("track.bin");
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(&path, data).unwrap();
    let peer = NativePeer::start(meta, &path, options).await.unwrap();
    assert!(peer.stats().done, "a seeder's file verifies in full");
    peer
}

async fn leecher(dir: &Path, name: &str, meta: &Metainfo, tracker: &str) -> (NativePeer, PathBuf) {
    let path = dir.join(name).join("track.bin");
    let peer = NativePeer::start(meta, &path, options(tracker))
        .await
        .unwrap();
    assert!(!peer.stats().done);
    (peer, path)
}

/// Waits until every peer is done, failing the test after `limit`.
async fn all_done(peers: &[&NativePeer], limit: Duration) {
    let waiting = futures_util::future::join_all(peers.iter().map(|p| p.wait_done()));
    if tokio::time::timeout(limit, waiting).await.is_err() {
        let stats: Vec<_> = peers
            .iter()
            .map(|p| {
                let s = p.stats();
                (s.verified_pieces, s.total_pieces, s.connections)
            })
            .collect();
        panic!("not done within {limit:?}: (verified, total, channels) = {stats:?}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_seeder_and_three_leechers_complete_byte_identical_and_share() {
    let tracker = Tracker::start(SocketAddr::from(([127, 0, 0, 1], 0)));
    let dir = tempfile::tempdir().unwrap();
    let (data, meta) = track(1, 6 * 1024 * 1024, &tracker.url());
    let started = Instant::now();
    let seed = seeder(dir.path(), "seed", &data, &meta, &tracker.url()).await;
    let mut leechers = Vec::new();
    for i in 0..3 {
        leechers.push(leecher(dir.path(), &format!("leech{i}"), &meta, &tracker.url()).await);
        // Each newcomer's offers reach the peers already announced.
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    let peers: Vec<&NativePeer> = leechers.iter().map(|(p, _)| p).collect();
    all_done(&peers, Duration::from_secs(120)).await;
    let elapsed = started.elapsed();

    let leecher_ids: BTreeSet<PeerId> = leechers
        .iter()
        .map(|(p, _)| p.stats().peer_id.unwrap())
        .collect();
    let mut from_leechers = 0;
    for (peer, path) in &leechers {
        assert_eq!(std::fs::read(path).unwrap(), data, "{}", path.display());
        let stats = peer.stats();
        assert_eq!(
            stats.from_peers,
            data.len() as u64,
            "all bytes came from peers"
        );
        assert_eq!(stats.from_web_seed, 0);
        from_leechers += stats
            .received_from
            .iter()
            .filter(|(id, _)| leecher_ids.contains(id))
            .map(|(_, bytes)| bytes)
            .sum::<u64>();
    }
    eprintln!(
        "native swarm: 1 seeder + 3 leechers, {} MiB in {:.2} s; seeder uploaded {} bytes, \
         leechers got {} bytes from each other",
        data.len() >> 20,
        elapsed.as_secs_f64(),
        seed.stats().uploaded,
        from_leechers
    );
    assert!(
        from_leechers > 0,
        "at least one leecher received bytes from another leecher"
    );
    for (peer, _) in leechers {
        peer.stop().await;
    }
    seed.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_peer_serving_corrupt_blocks_is_banned_and_the_download_completes() {
    let tracker = Tracker::start(SocketAddr::from(([127, 0, 0, 1], 0)));
    let dir = tempfile::tempdir().unwrap();
    let (data, meta) = track(2, 2 * 1024 * 1024, &tracker.url());
    let liar_options = PeerOptions {
        corrupt_uploads: true,
        ..options(&tracker.url())
    };
    let liar = seeder_with(dir.path(), "liar", &data, &meta, liar_options).await;
    let liar_id = liar.stats().peer_id.unwrap();
    let (victim, path) = leecher(dir.path(), "victim", &meta, &tracker.url()).await;
    // The victim meets the liar first; the honest seeder comes later.
    let mut watch = victim.watch();
    tokio::time::timeout(
        Duration::from_secs(30),
        watch.wait_for(|s| s.banned.contains(&liar_id)),
    )
    .await
    .expect("the liar is banned within 30 s")
    .unwrap();
    let honest = seeder(dir.path(), "honest", &data, &meta, &tracker.url()).await;
    all_done(&[&victim], Duration::from_secs(90)).await;
    assert_eq!(std::fs::read(&path).unwrap(), data);
    let stats = victim.stats();
    let honest_id = honest.stats().peer_id.unwrap();
    assert!(
        stats.received_from.get(&honest_id).copied().unwrap_or(0) > 0,
        "the honest seeder supplied the pieces the liar spoiled"
    );
    for peer in [victim, liar, honest] {
        peer.stop().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn peers_reconnect_after_a_tracker_restart_and_the_swarm_finishes() {
    let mut tracker = Tracker::start(SocketAddr::from(([127, 0, 0, 1], 0)));
    let addr = tracker.addr;
    let url = tracker.url();
    let dir = tempfile::tempdir().unwrap();
    let (data, meta) = track(3, 2 * 1024 * 1024, &url);
    let seed = seeder(dir.path(), "seed", &data, &meta, &url).await;
    // Give the seeder time to announce, then take the tracker down.
    tokio::time::sleep(Duration::from_millis(500)).await;
    tracker.stop();
    tokio::time::sleep(Duration::from_millis(500)).await;
    let _restarted = Tracker::start(addr);
    // The newcomer can only find the seeder through the new tracker, which
    // knows it only if the seeder reconnected and announced again.
    let (late, path) = leecher(dir.path(), "late", &meta, &url).await;
    all_done(&[&late], Duration::from_secs(90)).await;
    assert_eq!(std::fs::read(&path).unwrap(), data);
    late.stop().await;
    seed.stop().await;
}

/// A server publishing a one-track library (like `serve --library`), on
/// the test's runtime. Returns its address, catalog, library and the track.
async fn library_server(dir: &Path) -> (SocketAddr, Catalog, PathBuf, Vec<u8>) {
    let library = dir.join("library");
    std::fs::create_dir_all(&library).unwrap();
    let mut rng = fastrand::Rng::with_seed(4);
    // Small: with no peers and no playback, the engine fetches orphan
    // pieces from the web seed one at a time after a random idle wait.
    let data: Vec<u8> = (0..300_000).map(|_| rng.u8(..)).collect();
    std::fs::write(library.join("song.mp3"), &data).unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let catalog =
        signal_server::library::publish_library(library.clone(), format!("http://{addr}"))
            .await
            .unwrap();
    let state = AppState::new(
        catalog.clone(),
        Paths {
            media_dir: library.clone(),
            web_dir: library.clone(),
        },
        Limits::default(),
    );
    tokio::spawn(signal_server::serve(listener, state));
    (addr, catalog, library, data)
}

fn local_rtc() -> RtcConfig {
    options("").rtc
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lone_native_peer_gets_a_published_track_from_the_web_seed() {
    let dir = tempfile::tempdir().unwrap();
    let (_addr, catalog, _library, data) = library_server(dir.path()).await;
    let meta = Metainfo::from_bytes(&catalog.tracks()[0].torrent).unwrap();
    let path = dir.path().join("out/song.mp3");
    // No trackers given: the torrent's own (this server's) is used.
    let options = PeerOptions {
        rtc: local_rtc(),
        web_seed: true,
        ..PeerOptions::default()
    };
    let peer = NativePeer::start(&meta, &path, options).await.unwrap();
    all_done(&[&peer], Duration::from_secs(60)).await;
    assert_eq!(std::fs::read(&path).unwrap(), data);
    let stats = peer.stats();
    assert!(stats.from_web_seed > 0);
    assert_eq!(stats.from_peers, 0, "there are no peers");
    peer.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_servers_webrtc_seed_serves_its_catalog_to_a_peer_without_web_seed() {
    let dir = tempfile::tempdir().unwrap();
    let (addr, catalog, library, data) = library_server(dir.path()).await;
    let seeding = tokio::spawn(signal_server::webrtc_seed::seed_catalog(
        catalog.clone(),
        library,
        addr,
        local_rtc(),
    ));
    let meta = Metainfo::from_bytes(&catalog.tracks()[0].torrent).unwrap();
    let path = dir.path().join("out/song.mp3");
    let options = PeerOptions {
        rtc: local_rtc(),
        web_seed: false,
        ..PeerOptions::default()
    };
    let peer = NativePeer::start(&meta, &path, options).await.unwrap();
    all_done(&[&peer], Duration::from_secs(60)).await;
    assert_eq!(std::fs::read(&path).unwrap(), data);
    let stats = peer.stats();
    assert_eq!(stats.from_web_seed, 0, "no web seed was used");
    assert!(stats.from_peers > 0, "the bytes came over WebRTC");
    peer.stop().await;
    seeding.abort();
}

/// An album (now published by default) is seeded too: its folder is the
/// multi-file torrent's storage, and a peer without web seed gets both
/// of its files over WebRTC.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_servers_webrtc_seed_serves_an_album() {
    let dir = tempfile::tempdir().unwrap();
    let library = dir.path().join("library");
    std::fs::create_dir_all(library.join("Night Songs")).unwrap();
    let mut rng = fastrand::Rng::with_seed(5);
    let mut files = Vec::new();
    for name in ["1 intro.mp3", "2 song.mp3"] {
        let data: Vec<u8> = (0..150_000).map(|_| rng.u8(..)).collect();
        std::fs::write(library.join("Night Songs").join(name), &data).unwrap();
        files.push((name, data));
    }
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let catalog = signal_server::library::publish_albums(library.clone(), format!("http://{addr}"))
        .await
        .unwrap();
    assert_eq!(catalog.tracks().len(), 1, "one album");
    let state = AppState::new(
        catalog.clone(),
        Paths {
            media_dir: library.clone(),
            web_dir: library.clone(),
        },
        Limits::default(),
    );
    tokio::spawn(signal_server::serve(listener, state));
    let seeding = tokio::spawn(signal_server::webrtc_seed::seed_catalog(
        catalog.clone(),
        library,
        addr,
        local_rtc(),
    ));
    let meta = Metainfo::from_bytes(&catalog.tracks()[0].torrent).unwrap();
    let out = dir.path().join("out").join(&meta.info.name);
    let options = PeerOptions {
        rtc: local_rtc(),
        web_seed: false,
        ..PeerOptions::default()
    };
    let peer = NativePeer::start(&meta, &out, options).await.unwrap();
    all_done(&[&peer], Duration::from_secs(60)).await;
    for (name, data) in &files {
        assert_eq!(&std::fs::read(out.join(name)).unwrap(), data, "{name}");
    }
    let stats = peer.stats();
    assert_eq!(stats.from_web_seed, 0, "no web seed was used");
    assert!(stats.from_peers > 0, "the bytes came over WebRTC");
    peer.stop().await;
    seeding.abort();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn get_by_bare_magnet_fetches_metadata_from_the_seeder_and_completes_byte_identical() {
    use fanswarm_peer::get::{self, GetCommand};

    let tracker = Tracker::start(SocketAddr::from(([127, 0, 0, 1], 0)));
    let dir = tempfile::tempdir().unwrap();
    let (data, meta) = track(7, 3 * 1024 * 1024, &tracker.url());
    let seed = seeder(dir.path(), "seed", &data, &meta, &tracker.url()).await;
    // Info hash and tracker only: no `xs`, no `ws`, nothing but peers.
    let magnet = meta.magnet();
    assert!(magnet.exact_sources.is_empty() && magnet.web_seeds.is_empty());
    let out = dir.path().join("magnet-get");
    let started = Instant::now();
    let get = get::get(GetCommand {
        torrent: magnet.to_string(),
        out: out.clone(),
        exit_when_done: true,
        options: options(&tracker.url()),
    });
    let stats = tokio::time::timeout(Duration::from_secs(60), get)
        .await
        .expect("get MAGNET completes within 60 s")
        .unwrap();
    let elapsed = started.elapsed();
    assert!(stats.done);
    assert_eq!(stats.target.as_deref(), Some(&*out.join("track.bin")));
    assert_eq!(std::fs::read(out.join("track.bin")).unwrap(), data);
    // (The counters may trail `done` by one drain; the file is the proof.)
    assert!(stats.from_peers > 0);
    assert_eq!(stats.from_web_seed, 0);
    println!("get MAGNET of 3 MiB from one native seeder: {elapsed:.2?}");
    seed.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn get_magnet_with_xs_loads_the_torrent_over_http_when_no_peer_has_metadata() {
    use fanswarm_peer::get::{self, GetCommand};

    let dir = tempfile::tempdir().unwrap();
    let (_addr, catalog, _library, data) = library_server(dir.path()).await;
    let track = &catalog.tracks()[0];
    // Nobody seeds: the metadata can only come from `xs`.
    let mut magnet = swarm::magnet::Magnet::parse(&track.magnet).unwrap();
    magnet.exact_sources = vec![track.torrent_url.clone()];
    let out = dir.path().join("xs-get");
    let get = get::get(GetCommand {
        torrent: magnet.to_string(),
        out: out.clone(),
        exit_when_done: true,
        options: PeerOptions {
            rtc: local_rtc(),
            web_seed: true,
            ..PeerOptions::default()
        },
    });
    let stats = tokio::time::timeout(Duration::from_secs(60), get)
        .await
        .expect("get MAGNET with xs completes within 60 s")
        .unwrap();
    assert!(stats.done);
    assert_eq!(std::fs::read(out.join("song.mp3")).unwrap(), data);
}
