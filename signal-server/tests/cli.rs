//! The binary itself: `publish` writes torrents and prints links; `serve`
//! (the default) starts, warns about a missing web dir, and publishes.
#![allow(clippy::unwrap_used)]

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
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
    let mut child = Command::new(BIN)
        .args(["--listen", "127.0.0.1:0", "--library"])
        .arg(dir.path())
        .args(["--web-dir", "/nonexistent/web"])
        .env("RUST_LOG", "info")
        .env("NO_COLOR", "1")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // Read the log on a thread so a hung server cannot hang the test.
    let stdout = BufReader::new(child.stdout.take().unwrap());
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in stdout.lines().map_while(Result::ok) {
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    let deadline = Instant::now() + Duration::from_secs(30);
    let mut seen = Vec::new();
    while let Ok(line) = rx.recv_timeout(deadline.saturating_duration_since(Instant::now())) {
        let done = line.contains("serving");
        seen.push(line);
        if done {
            break;
        }
    }
    let _ = child.kill();
    let _ = child.wait();
    let log = seen.join("\n");
    assert!(log.contains("web directory not found"), "{log}");
    assert!(log.contains("published") && log.contains("a.mp3"), "{log}");
    assert!(log.contains("magnet:?xt=urn:btih:"), "{log}");
    assert!(log.contains("tracks=1"), "{log}");
}
