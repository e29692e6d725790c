//! The binary itself: `publish` writes torrents and prints links; `serve`
//! (the default) starts, warns about a missing web dir, and publishes.
#![allow(clippy::unwrap_used)]

mod common;

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::process::{Child, Command, Output, Stdio};
use std::sync::mpsc::Receiver;
use std::time::{Duration, Instant};

use swarm::metainfo::Metainfo;

const BIN: &str = env!("CARGO_BIN_EXE_signal-server");

#[test]
fn help_lists_both_subcommands() {
    let out = Command::new(BIN).arg("--help").output().unwrap();
    assert!(out.status.success());
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(text.contains("serve") && text.contains("publish"), "{text}");
}

/// The native peer's subcommands are there with the `native-peer` feature
/// (the default), and absent without it.
#[test]
fn help_lists_the_native_peer_subcommands_with_the_feature_only() {
    let out = Command::new(BIN).arg("--help").output().unwrap();
    let text = String::from_utf8(out.stdout).unwrap();
    let command = |name: &str| {
        text.lines()
            .any(|l| l.trim_start().starts_with(&format!("{name} ")))
    };
    let listed = command("seed") && command("get");
    assert_eq!(listed, cfg!(feature = "native-peer"), "{text}");
}

#[test]
fn publish_writes_torrents_and_prints_magnet_and_embed() {
    let dir = tempfile::tempdir().unwrap();
    let song = dir.path().join("My Song.ogg");
    std::fs::write(&song, vec![7u8; 100_000]).unwrap();
    let out_dir = dir.path().join("out");
    let out = Command::new(BIN)
        .args([
            "publish",
            song.to_str().unwrap(),
            "--out",
            out_dir.to_str().unwrap(),
        ])
        .args(["--tracker", "wss://t.example/announce"])
        .args(["--webseed", "https://cdn.example/music/"])
        .args(["--public-url", "https://music.example"])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8(out.stdout).unwrap();
    let torrent = std::fs::read(out_dir.join("My Song.ogg.torrent")).unwrap();
    let m = Metainfo::from_bytes(&torrent).unwrap();
    assert_eq!(m.announce.as_deref(), Some("wss://t.example/announce"));
    assert_eq!(m.url_list, ["https://cdn.example/music/My%20Song.ogg"]);
    let hex = m.info_hash.to_hex();
    assert!(
        text.contains(&format!("magnet:?xt=urn:btih:{hex}")),
        "{text}"
    );
    assert!(
        text.contains(&format!("https://music.example/embed/{hex}")),
        "{text}"
    );
}

/// Two `intro.mp3` (one in a folder, one named on its own) and two names
/// that differ only in case: every file gets its own torrent file, none
/// overwrites another, and a folder's files keep their paths in the web
/// seed URL.
#[test]
fn publish_writes_one_torrent_per_file_even_when_names_clash() {
    let dir = tempfile::tempdir().unwrap();
    let music = dir.path().join("music");
    std::fs::create_dir_all(music.join("b")).unwrap();
    std::fs::create_dir_all(dir.path().join("loose")).unwrap();
    std::fs::write(music.join("b/intro.mp3"), vec![1u8; 50_000]).unwrap();
    std::fs::write(music.join("Song.mp3"), vec![2u8; 50_000]).unwrap();
    std::fs::write(music.join("song.mp3"), vec![3u8; 50_000]).unwrap();
    let loose = dir.path().join("loose/b - intro.mp3");
    std::fs::write(&loose, vec![4u8; 50_000]).unwrap();
    let out_dir = dir.path().join("out");
    let out = Command::new(BIN)
        .arg("publish")
        .arg(&music)
        .arg(&loose)
        .arg("--out")
        .arg(&out_dir)
        .args(["--webseed", "https://cdn.example/music/"])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    let mut written: Vec<String> = std::fs::read_dir(&out_dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    written.sort();
    assert_eq!(
        written,
        [
            "Song.mp3.torrent",
            "b - intro.mp3 (2).torrent",
            "b - intro.mp3.torrent",
            "song.mp3 (2).torrent",
        ]
    );
    assert!(stderr.contains("writing song.mp3 (2).torrent"), "{stderr}");
    let torrent = std::fs::read(out_dir.join("b - intro.mp3.torrent")).unwrap();
    let m = Metainfo::from_bytes(&torrent).unwrap();
    assert_eq!(m.url_list, ["https://cdn.example/music/b/intro.mp3"]);
    let torrent = std::fs::read(out_dir.join("b - intro.mp3 (2).torrent")).unwrap();
    let m = Metainfo::from_bytes(&torrent).unwrap();
    assert_eq!(m.info.files[0].length, 50_000);
    assert_eq!(m.url_list, ["https://cdn.example/music/b%20-%20intro.mp3"]);
}

#[test]
fn publish_without_audio_fails_clearly() {
    let dir = tempfile::tempdir().unwrap();
    let out = Command::new(BIN)
        .args(["publish", dir.path().to_str().unwrap(), "--out"])
        .arg(dir.path().join("out"))
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("no audio files"));
}

#[test]
fn serve_publishes_the_library_and_warns_about_a_missing_web_dir() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("a.mp3"), vec![1u8; 10_000]).unwrap();
    let (log, mut child, _) = serve_until_serving(
        Command::new(BIN)
            .args(["--listen", "127.0.0.1:0", "--library"])
            .arg(dir.path())
            .args(["--web-dir", "/nonexistent/web"]),
    );
    stop(&mut child);
    assert!(log.contains("web directory not found"), "{log}");
    assert!(log.contains("published") && log.contains("a.mp3"), "{log}");
    assert!(log.contains("magnet:?xt=urn:btih:"), "{log}");
    assert!(log.contains("tracks=1"), "{log}");
}

/// Listening on every interface without `--public-url` would write
/// `http://0.0.0.0:PORT` into every torrent, magnet and snippet, which
/// sends each fan to their own machine: refused at startup, before
/// anything is published, with the flag to add.
#[test]
fn serve_on_an_unspecified_address_without_a_public_url_is_refused_with_what_to_add() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("a.mp3"), vec![1u8; 10_000]).unwrap();
    for listen in ["0.0.0.0:18080", "[::]:18080"] {
        let out = exit_within(
            Command::new(BIN)
                .args(["serve", "--listen", listen, "--library"])
                .arg(dir.path())
                .args(["--web-dir", "/nonexistent/web"]),
            Duration::from_secs(30),
        );
        let stderr = String::from_utf8_lossy(&out.stderr);
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(!out.status.success(), "{listen}: {stdout}");
        assert!(
            stderr.contains("--public-url http://<a name or address other machines reach>:18080"),
            "{listen}: {stderr}"
        );
        assert!(!stderr.contains("panicked"), "{stderr}");
        assert!(!stdout.contains("published"), "{listen}: {stdout}");
    }
}

#[test]
fn a_web_seed_mirror_that_is_not_an_http_base_url_is_refused_clearly() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("a.mp3"), vec![1u8; 10_000]).unwrap();
    let out = exit_within(
        Command::new(BIN)
            .args(["serve", "--listen", "127.0.0.1:0", "--library"])
            .arg(dir.path())
            .args(["--web-dir", "/nonexistent/web"])
            .args(["--web-seed-mirror", "https://cdn.example/music/,ftp://x/"]),
        Duration::from_secs(30),
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(
        stderr.contains("\"ftp://x/\": a web seed mirror must be an http:// or https:// URL"),
        "{stderr}"
    );
    assert!(!stderr.contains("panicked"), "{stderr}");
}

/// With `--public-url`, an unspecified listen address is fine and the
/// links name the public URL.
#[test]
fn serve_on_an_unspecified_address_publishes_links_to_the_public_url() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("a.mp3"), vec![1u8; 10_000]).unwrap();
    let (log, mut child, _) = serve_until_serving(
        Command::new(BIN)
            .args(["--listen", "0.0.0.0:0", "--library"])
            .arg(dir.path())
            .args(["--public-url", "http://192.0.2.1:8080"])
            .args(["--web-dir", "/nonexistent/web"]),
    );
    stop(&mut child);
    assert!(log.contains("tracks=1"), "{log}");
    assert!(log.contains("http://192.0.2.1:8080/embed/"), "{log}");
    assert!(
        log.contains("ws%3A%2F%2F192.0.2.1%3A8080%2Fannounce")
            || log.contains("ws://192.0.2.1:8080/announce"),
        "{log}"
    );
    let published: Vec<&str> = log.lines().filter(|l| l.contains("published")).collect();
    assert!(published.iter().all(|l| !l.contains("0.0.0.0")), "{log}");
}

/// Starts `command` (a `serve`, with `RUST_LOG=info`) and returns its log
/// up to the "serving" line, the running child, and the lines after. The
/// log is read on a thread so a hung server cannot hang the test.
fn serve_until_serving(command: &mut Command) -> (String, Child, Receiver<String>) {
    let mut child = command
        .env("RUST_LOG", "info")
        .env("NO_COLOR", "1")
        .env_remove("FANSWARM_PUBLIC_URL")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let (log, rx) = common::read_until(&mut child, "serving");
    (log, child, rx)
}

fn stop(child: &mut Child) {
    let _ = child.kill();
    let _ = child.wait();
}

/// Runs `command` to its end, killing it (and failing) after `limit`.
fn exit_within(command: &mut Command, limit: Duration) -> Output {
    let child = command
        .env("NO_COLOR", "1")
        .env_remove("FANSWARM_PUBLIC_URL")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let pid = child.id();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(child.wait_with_output());
    });
    match rx.recv_timeout(limit) {
        Ok(out) => out.unwrap(),
        Err(_) => {
            let _ = Command::new("kill").arg(pid.to_string()).status();
            panic!("the command was still running after {limit:?}");
        }
    }
}

/// `--max-connections 2`: two tracker sockets are served, the next ones
/// get a 503 that says why, the log says so once for the whole burst (not
/// once per socket), and a closed socket lets the next one in.
#[test]
fn serve_refuses_tracker_sockets_past_max_connections_with_503_logged_once() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("a.mp3"), vec![1u8; 10_000]).unwrap();
    let (log, mut child, rest) = serve_until_serving(
        Command::new(BIN)
            .args(["--listen", "127.0.0.1:0", "--max-connections", "2"])
            .arg("--library")
            .arg(dir.path())
            .args(["--web-dir", "/nonexistent/web"]),
    );
    assert!(log.contains("max_connections=2"), "{log}");
    let addr = listening_on(&log);
    let (first, status) = upgrade(addr);
    assert!(status.starts_with("HTTP/1.1 101"), "{status}");
    let (_second, status) = upgrade(addr);
    assert!(status.starts_with("HTTP/1.1 101"), "{status}");
    for _ in 0..3 {
        let (mut refused, head) = upgrade(addr);
        assert!(head.starts_with("HTTP/1.1 503"), "{head}");
        let length: usize = head
            .lines()
            .find_map(|l| {
                l.to_ascii_lowercase()
                    .strip_prefix("content-length:")
                    .map(|v| v.trim().parse().unwrap())
            })
            .unwrap();
        let mut body = vec![0u8; length];
        refused.read_exact(&mut body).unwrap();
        let body = String::from_utf8(body).unwrap();
        assert!(body.contains("--max-connections"), "{body}");
    }
    drop(first);
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let (_again, status) = upgrade(addr);
        if status.starts_with("HTTP/1.1 101") {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "a closed socket never freed its place"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    // The log lines of the burst arrive as the server writes them.
    let mut after = Vec::new();
    while let Ok(line) = rest.recv_timeout(Duration::from_secs(2)) {
        let done = line.contains("below the cap again");
        after.push(line);
        if done {
            break;
        }
    }
    stop(&mut child);
    let after = after.join("\n");
    assert_eq!(after.matches("at the cap").count(), 1, "{after}");
    assert_eq!(after.matches("below the cap again").count(), 1, "{after}");
}

/// The address in the "serving" line (`local=127.0.0.1:PORT`).
fn listening_on(log: &str) -> SocketAddr {
    let line = log.lines().find(|l| l.contains("serving")).unwrap();
    let local = line
        .split_whitespace()
        .find_map(|w| w.strip_prefix("local="))
        .unwrap();
    local.parse().unwrap()
}

/// A raw WebSocket upgrade of `/announce`: the stream and the response
/// head (status line first).
fn upgrade(addr: SocketAddr) -> (TcpStream, String) {
    let mut stream = TcpStream::connect(addr).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(5)))
        .unwrap();
    let request = format!(
        "GET /announce HTTP/1.1\r\nHost: {addr}\r\nUpgrade: websocket\r\n\
         Connection: Upgrade\r\nSec-WebSocket-Version: 13\r\n\
         Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n"
    );
    stream.write_all(request.as_bytes()).unwrap();
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        stream.read_exact(&mut byte).unwrap();
        head.push(byte[0]);
    }
    (stream, String::from_utf8(head).unwrap())
}

/// SIGTERM (systemd, Docker): the listener closes, a web-seed response
/// under way is sent to its end, a tracker socket gets a close frame with
/// 1001 "going away", and the process exits 0 within 10 s.
#[test]
fn sigterm_finishes_responses_closes_tracker_sockets_and_exits() {
    let dir = tempfile::tempdir().unwrap();
    let length = 24 * 1024 * 1024;
    std::fs::write(dir.path().join("a.mp3"), vec![7u8; length]).unwrap();
    let (log, mut child, _rest) = serve_until_serving(
        Command::new(BIN)
            .args(["--listen", "127.0.0.1:0"])
            .arg("--library")
            .arg(dir.path())
            .args(["--web-dir", "/nonexistent/web"]),
    );
    let addr = listening_on(&log);
    let (mut socket, status) = upgrade(addr);
    assert!(status.starts_with("HTTP/1.1 101"), "{status}");

    // A download under way: the head and a little of the body read, the
    // rest still to come when the signal arrives.
    let mut download = TcpStream::connect(addr).unwrap();
    download
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    write!(
        download,
        "GET /media/a.mp3 HTTP/1.1\r\nHost: {addr}\r\n\r\n"
    )
    .unwrap();
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        download.read_exact(&mut byte).unwrap();
        head.push(byte[0]);
    }
    assert!(
        head.starts_with(b"HTTP/1.1 200"),
        "{}",
        String::from_utf8_lossy(&head)
    );
    let mut body = vec![0u8; 64 * 1024];
    download.read_exact(&mut body).unwrap();

    let signalled = Instant::now();
    let killed = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(killed.success());

    // The tracker socket: an unmasked close frame, code 1001.
    let mut frame = [0u8; 4];
    socket.read_exact(&mut frame).unwrap();
    assert_eq!(frame[0], 0x88, "a close frame: {frame:?}");
    assert_eq!(u16::from_be_bytes([frame[2], frame[3]]), 1001, "going away");

    // The download runs to its end.
    let mut rest = Vec::new();
    download.read_to_end(&mut rest).unwrap();
    assert_eq!(
        64 * 1024 + rest.len(),
        length,
        "the whole file, not a cut response"
    );

    // No new connections, and the process is gone with status 0.
    let deadline = signalled + Duration::from_secs(10);
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        assert!(
            Instant::now() < deadline,
            "still running 10 s after SIGTERM"
        );
        std::thread::sleep(Duration::from_millis(50));
    };
    assert!(status.success(), "exit status {status:?}");
    assert!(
        TcpStream::connect(addr).is_err(),
        "nothing listens any more"
    );
}

/// `--config FILE`: FANSWARM_* lines set what neither a flag nor the
/// environment set; a mistake names its line and stops the start.
#[test]
fn a_settings_file_fills_in_what_flags_do_not_say_and_mistakes_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let library = dir.path().join("music");
    std::fs::create_dir(&library).unwrap();
    std::fs::write(library.join("a.mp3"), vec![1u8; 1000]).unwrap();
    let config = dir.path().join("fanswarm.env");
    std::fs::write(
        &config,
        format!(
            "# the artist's settings\nFANSWARM_LIBRARY={}\nFANSWARM_LISTEN=127.0.0.1:0\n\
             FANSWARM_WEB_DIR=/nonexistent/web\nFANSWARM_PUBLIC_URL=\"http://file.example\"\n\
             FANSWARM_RELAY_ONLY=false\n",
            library.display()
        ),
    )
    .unwrap();

    let (log, mut child, _) = serve_until_serving(Command::new(BIN).arg("--config").arg(&config));
    stop(&mut child);
    assert!(log.contains("tracks=1"), "the library from the file: {log}");
    assert!(log.contains("base=http://file.example"), "{log}");

    let (log, mut child, _) = serve_until_serving(
        Command::new(BIN)
            .args(["serve", "--public-url", "http://flag.example", "--config"])
            .arg(&config),
    );
    stop(&mut child);
    assert!(
        log.contains("base=http://flag.example"),
        "the flag wins: {log}"
    );

    std::fs::write(&config, "FANSWARM_LIBRARY=/srv\nFANSWARM_LIBARY=/typo\n").unwrap();
    let out = exit_within(
        Command::new(BIN).arg("--config").arg(&config),
        Duration::from_secs(20),
    );
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("line 2") && err.contains("FANSWARM_LIBARY is not a setting"),
        "{err}"
    );
}

#[cfg(feature = "native-peer")]
#[test]
fn get_refuses_a_file_index_the_album_does_not_have() {
    let dir = tempfile::tempdir().unwrap();
    let data = vec![5u8; 40_000];
    let pieces = swarm::metainfo::hash_pieces(&data, 16_384).unwrap();
    let album = swarm::metainfo::TorrentBuilder::multi_file(
        "Album",
        [
            (vec!["a.wav".to_owned()], 25_000),
            (vec!["b.wav".to_owned()], 15_000),
        ],
    )
    .piece_length(16_384)
    .tracker("ws://127.0.0.1:1/announce")
    .build(&pieces)
    .unwrap();
    let torrent = dir.path().join("album.torrent");
    std::fs::write(&torrent, album.to_bytes()).unwrap();
    let out = Command::new(BIN)
        .args([
            "get",
            torrent.to_str().unwrap(),
            "--file",
            "2",
            "--exit-when-done",
        ])
        .args(["--out", dir.path().to_str().unwrap()])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{stderr}");
    assert!(
        stderr.contains("no file 2: the torrent has 2 file(s)"),
        "{stderr}"
    );
    assert!(!stderr.contains("panicked"), "{stderr}");
}
