//! `serve --library` keeps a real folder published: the binary itself on
//! temp folders, asked over HTTP and its tracker's WebSocket. What was
//! hashed is counted by the server (`/api/library`, `/metrics`), never
//! guessed from timing.
#![allow(clippy::unwrap_used)]

mod common;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc::Receiver;
use std::time::{Duration, Instant, SystemTime};

use futures_util::{SinkExt, StreamExt};
use serde_json::Value;
use swarm::metainfo::Metainfo;
use tokio_tungstenite::tungstenite::Message;

const BIN: &str = env!("CARGO_BIN_EXE_signal-server");

/// How long a change to the folder may take to be published: the
/// debounce, one second of stillness, the hashing and a margin.
const PICKED_UP_WITHIN: Duration = Duration::from_secs(10);

#[test]
fn a_restart_hashes_nothing_unchanged_and_changes_are_picked_up_while_running() {
    let dir = tempfile::tempdir().unwrap();
    let library = dir.path().join("music");
    std::fs::create_dir_all(library.join("album")).unwrap();
    for (name, seed) in [
        ("one.mp3", 1),
        ("album/two.ogg", 2),
        ("album/three.flac", 3),
    ] {
        write_old(&library.join(name), &bytes(300_000, seed));
    }
    let index = dir.path().join("state/index");

    let first = Server::start(&library, &index, dir.path());
    assert!(
        first.log.contains("hashing the library") && first.log.contains("files=3"),
        "progress is logged: {}",
        first.log
    );
    let status = first.library();
    assert_eq!(status["hashed_files"], 3, "{status}");
    assert_eq!(status["reused_files"], 0, "{status}");
    assert_eq!(status["tracks"], 3, "{status}");
    let hashes = first.hashes();
    drop(first);

    let second = Server::start(&library, &index, dir.path());
    let status = second.library();
    assert_eq!(status["hashed_files"], 0, "nothing re-hashed: {status}");
    assert_eq!(status["hashed_bytes"], 0, "{status}");
    assert_eq!(status["reused_files"], 3, "{status}");
    assert_eq!(second.hashes(), hashes, "the same info hashes");
    let metrics = second.get("/metrics").1;
    assert!(
        metrics.contains("fanswarm_library_hashed_files_total 0")
            && metrics.contains("fanswarm_library_reused_files_total 3"),
        "{metrics}"
    );
    // A reused torrent is the whole torrent, and it verifies the file.
    let old_two = hashes["album/two.ogg"].clone();
    let torrent = second.get_bytes(&format!("/t/{old_two}.torrent"));
    let metainfo = Metainfo::from_bytes(&torrent).unwrap();
    let pieces = swarm::metainfo::hash_pieces(&bytes(300_000, 2), metainfo.info.piece_length);
    assert_eq!(metainfo.info.pieces, pieces.unwrap());
    assert!(second.admitted(&old_two), "a published swarm is admitted");

    // Changed while running: a new info hash, served; the old one withdrawn.
    let changed = bytes(200_000, 9);
    std::fs::write(library.join("album/two.ogg"), &changed).unwrap();
    let new_two = second.wait_for(|h| h.get("album/two.ogg").is_some_and(|x| *x != old_two));
    let new_two = new_two["album/two.ogg"].clone();
    assert_eq!(second.get(&format!("/t/{old_two}.torrent")).0, 404);
    assert_eq!(second.get(&format!("/api/tracks/{old_two}")).0, 404);
    assert!(!second.admitted(&old_two), "the old swarm is refused");
    assert!(second.admitted(&new_two), "the new swarm is admitted");
    assert_eq!(second.get_bytes("/media/album/two.ogg"), changed);
    let torrent =
        Metainfo::from_bytes(&second.get_bytes(&format!("/t/{new_two}.torrent"))).unwrap();
    let pieces = swarm::metainfo::hash_pieces(&changed, torrent.info.piece_length).unwrap();
    assert_eq!(
        torrent.info.pieces, pieces,
        "the new torrent is of the new bytes"
    );

    // Added while running (copied in, in two writes), and one removed.
    let added = bytes(250_000, 7);
    let mut file = std::fs::File::create(library.join("album/four.opus")).unwrap();
    file.write_all(&added[..100_000]).unwrap();
    std::thread::sleep(Duration::from_millis(300));
    file.write_all(&added[100_000..]).unwrap();
    drop(file);
    std::fs::remove_file(library.join("one.mp3")).unwrap();
    let after =
        second.wait_for(|h| h.contains_key("album/four.opus") && !h.contains_key("one.mp3"));
    assert_eq!(after.len(), 3, "{after:?}");
    assert_eq!(second.get("/media/one.mp3").0, 404);
    assert!(!second.admitted(&hashes["one.mp3"]));
    let torrent = second.get_bytes(&format!("/t/{}.torrent", after["album/four.opus"]));
    let torrent = Metainfo::from_bytes(&torrent).unwrap();
    let pieces = swarm::metainfo::hash_pieces(&added, torrent.info.piece_length).unwrap();
    assert_eq!(
        torrent.info.pieces, pieces,
        "published whole, not half-written"
    );
    let status = second.library();
    assert_eq!(
        status["hashed_files"], 2,
        "only the changed and the new file: {status}"
    );
    drop(second);

    let third = Server::start(&library, &index, dir.path());
    let status = third.library();
    assert_eq!(status["hashed_files"], 0, "{status}");
    assert_eq!(status["reused_files"], 3, "{status}");
    assert_eq!(third.hashes(), after);
}

/// Killed mid-hash (SIGKILL: no chance to write anything more), the next
/// start reuses every file finished before the kill and hashes the rest.
/// With `--albums` the index keeps each album too: a restart hashes no
/// file at all, and a changed track re-hashes its album, not the other
/// album; every file is read once (`hashed_bytes`).
#[test]
fn with_albums_a_restart_hashes_nothing_and_a_change_only_its_album() {
    let dir = tempfile::tempdir().unwrap();
    let library = dir.path().join("music");
    for (name, seed) in [
        ("A/1.ogg", 1),
        ("A/2.ogg", 2),
        ("B/1.ogg", 3),
        ("B/2.ogg", 4),
        ("B/3.ogg", 5),
        ("solo.mp3", 6),
    ] {
        std::fs::create_dir_all(library.join(name).parent().unwrap()).unwrap();
        write_old(&library.join(name), &bytes(200_000, seed));
    }
    let index = dir.path().join("state/index");
    let albums = |server: &Server| -> std::collections::BTreeMap<String, String> {
        server
            .tracks()
            .iter()
            .map(|t| {
                let name = t["name"].as_str().unwrap().to_owned();
                (name, t["info_hash"].as_str().unwrap().to_owned())
            })
            .collect()
    };

    let first = Server::start_with(&library, &index, dir.path(), &["--albums"]);
    let status = first.library();
    // Each file read once: an album's files are hashed alone in the same
    // read as the album.
    assert_eq!(status["hashed_files"], 6, "{status}");
    assert_eq!(status["hashed_bytes"], 6 * 200_000, "{status}");
    let before = albums(&first);
    assert_eq!(
        before.keys().collect::<Vec<_>>(),
        ["A", "B", "solo.mp3"],
        "two albums and a single"
    );
    drop(first);

    let second = Server::start_with(&library, &index, dir.path(), &["--albums"]);
    let status = second.library();
    assert_eq!(status["hashed_files"], 0, "nothing re-hashed: {status}");
    assert_eq!(status["hashed_bytes"], 0, "{status}");
    assert_eq!(status["reused_files"], 6, "{status}");
    assert_eq!(albums(&second), before, "the same albums, the same swarms");
    assert!(second.log.contains("from_index=true"), "{}", second.log);

    // One track of A changes: A is hashed again, B is not.
    std::fs::write(library.join("A/2.ogg"), bytes(150_000, 9)).unwrap();
    let deadline = Instant::now() + PICKED_UP_WITHIN;
    let after = loop {
        let now = albums(&second);
        if now.get("A").is_some_and(|a| *a != before["A"]) {
            break now;
        }
        assert!(Instant::now() < deadline, "not picked up: {now:?}");
        std::thread::sleep(Duration::from_millis(100));
    };
    assert_eq!(after["B"], before["B"], "the other album is as it was");
    let status = second.library();
    assert_eq!(
        status["hashed_files"], 2,
        "the album's two files, the changed one read once: {status}"
    );
    assert_eq!(status["hashed_bytes"], 200_000 + 150_000, "{status}");
    drop(second);

    // No flag: albums are the default.
    let third = Server::start_with(&library, &index, dir.path(), &[]);
    let status = third.library();
    assert_eq!(
        status["hashed_files"], 0,
        "the new album was indexed: {status}"
    );
    assert_eq!(albums(&third), after);
    let text = std::fs::read_to_string(&index).unwrap();
    assert_eq!(
        text.lines()
            .filter(|l| l.starts_with("{\"album\":"))
            .count(),
        2,
        "one line per album, the old A's dropped: {text}"
    );
}

#[test]
fn a_restart_mid_hash_hashes_only_what_was_not_finished() {
    const FILES: u64 = 24;
    let dir = tempfile::tempdir().unwrap();
    let library = dir.path().join("music");
    std::fs::create_dir_all(&library).unwrap();
    for n in 0..FILES {
        write_old(
            &library.join(format!("{n:02}.wav")),
            &bytes(2 << 20, u32::try_from(n).unwrap()),
        );
    }
    let index = dir.path().join("index");
    let mut child = Server::command(&library, &index, dir.path())
        .spawn()
        .unwrap();
    let stdout = BufReader::new(child.stdout.take().unwrap());
    let mut published = 0;
    for line in stdout.lines().map_while(Result::ok) {
        if line.contains(" published track=") {
            published += 1;
            if published == 3 {
                break;
            }
        }
    }
    child.kill().unwrap();
    child.wait().unwrap();
    assert_eq!(
        published, 3,
        "the first files were published before the kill"
    );

    let again = Server::start(&library, &index, dir.path());
    let status = again.library();
    let reused = status["reused_files"].as_u64().unwrap();
    let hashed = status["hashed_files"].as_u64().unwrap();
    // A file is logged as published just before it is recorded: the third
    // may have been cut between the two.
    assert!(reused >= 2, "every file finished before the kill: {status}");
    assert!(hashed >= 1, "the kill came mid-hash: {status}");
    assert_eq!(reused + hashed, FILES, "{status}");
    assert_eq!(again.hashes().len(), 24);
}

#[test]
fn a_damaged_or_foreign_index_is_survived_with_a_full_rehash() {
    let dir = tempfile::tempdir().unwrap();
    let library = dir.path().join("music");
    std::fs::create_dir_all(&library).unwrap();
    for (name, seed) in [("a.mp3", 1), ("b.mp3", 2)] {
        write_old(&library.join(name), &bytes(100_000, seed));
    }
    let index = dir.path().join("index");
    let first = Server::start(&library, &index, dir.path());
    let hashes = first.hashes();
    drop(first);

    // Damage in the middle: ignored, everything hashed again, rewritten.
    let text = std::fs::read_to_string(&index).unwrap();
    let mut lines: Vec<&str> = text.lines().collect();
    lines.insert(1, "{\"path\": \"a.mp3\", \"size\": ");
    std::fs::write(&index, lines.join("\n")).unwrap();
    let second = Server::start(&library, &index, dir.path());
    assert!(
        second.log.contains("library index damaged"),
        "{}",
        second.log
    );
    assert_eq!(second.library()["hashed_files"], 2);
    assert_eq!(second.hashes(), hashes);
    drop(second);
    let third = Server::start(&library, &index, dir.path());
    assert_eq!(
        third.library()["hashed_files"],
        0,
        "the index was rewritten"
    );
    drop(third);

    // Truncated mid-line (a crash while appending): the rest is used.
    let text = std::fs::read_to_string(&index).unwrap();
    std::fs::write(&index, &text[..text.len() - 30]).unwrap();
    let fourth = Server::start(&library, &index, dir.path());
    assert_eq!(fourth.library()["hashed_files"], 1, "only the cut entry");
    assert_eq!(fourth.hashes(), hashes);
    drop(fourth);

    // Not ours at all: left alone, everything hashed, nothing recorded.
    std::fs::write(&index, b"\x00\x01 someone else's file\n").unwrap();
    let fifth = Server::start(&library, &index, dir.path());
    assert!(
        fifth.log.contains("not a fanswarm library index"),
        "{}",
        fifth.log
    );
    assert_eq!(fifth.library()["hashed_files"], 2);
    assert_eq!(fifth.hashes(), hashes);
    drop(fifth);
    assert_eq!(
        std::fs::read(&index).unwrap(),
        b"\x00\x01 someone else's file\n"
    );
}

#[test]
fn files_that_would_share_a_name_are_all_published_with_stable_identities() {
    let dir = tempfile::tempdir().unwrap();
    let library = dir.path().join("music");
    for folder in ["a", "b", "c/d"] {
        std::fs::create_dir_all(library.join(folder)).unwrap();
    }
    let intro = bytes(120_000, 5);
    for name in ["a/intro.mp3", "b/intro.mp3", "c/d/intro.mp3"] {
        write_old(&library.join(name), &intro);
    }
    // Names that differ only in case, and only in Unicode normalization.
    write_old(&library.join("Song.mp3"), &bytes(90_000, 6));
    write_old(&library.join("song.mp3"), &bytes(90_000, 6));
    write_old(&library.join("caf\u{e9}.mp3"), &bytes(90_000, 8));
    write_old(&library.join("cafe\u{301}.mp3"), &bytes(90_000, 8));
    let index = dir.path().join("index");

    let first = Server::start(&library, &index, dir.path());
    let hashes = first.hashes();
    assert_eq!(hashes.len(), 7, "{hashes:?}");
    let distinct: std::collections::HashSet<_> = hashes.values().collect();
    assert_eq!(distinct.len(), 7, "every file its own swarm: {hashes:?}");
    let names = first.names();
    assert_eq!(names["a/intro.mp3"], "intro.mp3");
    assert_eq!(names["b/intro.mp3"], "intro (b).mp3");
    assert_eq!(names["c/d/intro.mp3"], "intro (c - d).mp3");
    assert!(
        first.log.contains("published under a name of its own"),
        "the renaming is logged: {}",
        first.log
    );
    for path in hashes.keys() {
        let url = format!("/media/{}", signal_server::catalog::encode_path(path));
        assert!(!first.get_bytes(&url).is_empty(), "{path}");
    }
    drop(first);

    let second = Server::start(&library, &index, dir.path());
    assert_eq!(
        second.hashes(),
        hashes,
        "the same identities after a restart"
    );
    assert_eq!(second.library()["hashed_files"], 0);
}

/// A file published from the index is not read at start, yet its tags
/// are listed and its cover is served (read from the file when asked for).
#[test]
fn tags_and_cover_of_a_reused_file_are_served_without_hashing_it() {
    use lofty::config::WriteOptions;
    use lofty::picture::{MimeType, Picture, PictureType};
    use lofty::tag::{Accessor, Tag, TagExt, TagType};
    const COVER: &[u8] = b"\x89PNG\r\n\x1a\n\0\0\0\rIHDRnot really a picture";
    let dir = tempfile::tempdir().unwrap();
    let library = dir.path().join("music");
    std::fs::create_dir_all(&library).unwrap();
    let tagged = library.join("tagged.wav");
    let samples = signal_server::demo::synthesize(2, 5);
    let wav = signal_server::demo::wav_bytes(&samples, signal_server::demo::SAMPLE_RATE);
    std::fs::write(&tagged, wav).unwrap();
    let mut tag = Tag::new(TagType::Id3v2);
    tag.set_title("Night Bus".into());
    tag.set_artist("The Fans".into());
    tag.push_picture(
        Picture::unchecked(COVER.to_vec())
            .pic_type(PictureType::CoverFront)
            .mime_type(MimeType::Png)
            .build(),
    );
    tag.save_to_path(&tagged, WriteOptions::default()).unwrap();
    let data = std::fs::read(&tagged).unwrap();
    write_old(&tagged, &data);
    let index = dir.path().join("index");
    let first = Server::start(&library, &index, dir.path());
    let before = serde_json::to_string(&first.tracks()).unwrap();
    let first_port = first.addr.port();
    drop(first);

    let second = Server::start(&library, &index, dir.path());
    assert_eq!(second.library()["reused_files"], 1);
    assert_eq!(second.library()["hashed_files"], 0);
    let after = second.tracks();
    // Another port is another base URL: the links follow it, nothing is
    // hashed again, the info hash stays.
    assert_eq!(
        serde_json::to_string(&after).unwrap(),
        before
            .replace(
                &format!(":{first_port}"),
                &format!(":{}", second.addr.port())
            )
            .replace(
                &format!("%3A{first_port}"),
                &format!("%3A{}", second.addr.port())
            ),
        "the same listing, tags and all"
    );
    assert_eq!(after[0]["title"], "Night Bus");
    let hex = after[0]["info_hash"].as_str().unwrap();
    assert_eq!(second.get_bytes(&format!("/cover/{hex}")), COVER);
}

/// A running `serve` and what it logged up to "serving".
struct Server {
    child: Child,
    addr: SocketAddr,
    log: String,
    _lines: Receiver<String>,
}

impl Server {
    /// `serve` of `library` with its index at `index`, logging to stdout.
    fn command(library: &Path, index: &Path, dir: &Path) -> Command {
        let mut command = Command::new(BIN);
        command
            .args(["serve", "--listen", "127.0.0.1:0"])
            .args(["--web-dir", "/nonexistent/web"])
            .arg("--library")
            .arg(library)
            .arg("--index")
            .arg(index)
            .arg("--cache-dir")
            .arg(dir.join("cache"))
            .env("RUST_LOG", "info")
            .env("NO_COLOR", "1")
            .env_remove("FANSWARM_PUBLIC_URL")
            .stdout(Stdio::piped())
            .stderr(Stdio::null());
        command
    }

    fn start(library: &Path, index: &Path, dir: &Path) -> Server {
        // These tests are about tracks each published alone (a folder of
        // two is no album here); albums have their test below.
        Self::start_with(library, index, dir, &["--albums=false"])
    }

    /// [`Server::start`] with more flags.
    fn start_with(library: &Path, index: &Path, dir: &Path, flags: &[&str]) -> Server {
        let mut child = Self::command(library, index, dir)
            .args(flags)
            .spawn()
            .unwrap();
        let (log, rx) = common::read_until(&mut child, "serving local=");
        let line = log
            .lines()
            .find(|l| l.contains("serving local="))
            .unwrap_or_else(|| panic!("{log}"));
        let addr = line
            .split_whitespace()
            .find_map(|w| w.strip_prefix("local="))
            .unwrap()
            .parse()
            .unwrap();
        Server {
            child,
            addr,
            log,
            _lines: rx,
        }
    }

    /// Status and body of a GET.
    fn get(&self, path: &str) -> (u16, String) {
        let (status, body) = self.request(path);
        (status, String::from_utf8_lossy(&body).into_owned())
    }

    /// The body of a GET that must answer 200.
    fn get_bytes(&self, path: &str) -> Vec<u8> {
        let (status, body) = self.request(path);
        assert_eq!(status, 200, "{path}");
        body
    }

    fn request(&self, path: &str) -> (u16, Vec<u8>) {
        let mut stream = TcpStream::connect(self.addr).unwrap();
        stream
            .set_read_timeout(Some(Duration::from_secs(10)))
            .unwrap();
        write!(
            stream,
            "GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
        )
        .unwrap();
        let mut raw = Vec::new();
        stream.read_to_end(&mut raw).unwrap();
        let split = raw.windows(4).position(|w| w == b"\r\n\r\n").unwrap();
        let head = String::from_utf8_lossy(&raw[..split]).into_owned();
        let status = head.split_whitespace().nth(1).unwrap().parse().unwrap();
        let body = raw[split + 4..].to_vec();
        let chunked = head
            .to_ascii_lowercase()
            .contains("transfer-encoding: chunked");
        (status, if chunked { dechunk(&body) } else { body })
    }

    fn library(&self) -> Value {
        serde_json::from_str(&self.get("/api/library").1).unwrap()
    }

    fn tracks(&self) -> Vec<Value> {
        serde_json::from_str(&self.get("/api/tracks").1).unwrap()
    }

    /// Path (from the web seed URL) → info hash of every published track.
    fn hashes(&self) -> std::collections::BTreeMap<String, String> {
        self.field("info_hash")
    }

    /// Path → torrent name.
    fn names(&self) -> std::collections::BTreeMap<String, String> {
        self.field("name")
    }

    fn field(&self, key: &str) -> std::collections::BTreeMap<String, String> {
        let base = format!("http://{}/media/", self.addr);
        self.tracks()
            .iter()
            .map(|t| {
                let url = t["media_url"].as_str().unwrap();
                let path = url.strip_prefix(&base).unwrap();
                let path = percent_encoding::percent_decode_str(path)
                    .decode_utf8()
                    .unwrap()
                    .into_owned();
                (path, t[key].as_str().unwrap().to_owned())
            })
            .collect()
    }

    /// The published hashes once `done` holds of them, failing after
    /// [`PICKED_UP_WITHIN`].
    fn wait_for(
        &self,
        done: impl Fn(&std::collections::BTreeMap<String, String>) -> bool,
    ) -> std::collections::BTreeMap<String, String> {
        let deadline = Instant::now() + PICKED_UP_WITHIN;
        loop {
            let hashes = self.hashes();
            if done(&hashes) {
                return hashes;
            }
            assert!(Instant::now() < deadline, "not picked up: {hashes:?}");
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// Whether the tracker admits an announce for `hex`'s swarm.
    fn admitted(&self, hex: &str) -> bool {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        let addr = self.addr;
        let info_hash: String = (0..20)
            .map(|i| char::from(u8::from_str_radix(&hex[2 * i..2 * i + 2], 16).unwrap()))
            .collect();
        runtime.block_on(async move {
            let (mut ws, _) = tokio_tungstenite::connect_async(format!("ws://{addr}/announce"))
                .await
                .unwrap();
            let announce = serde_json::json!({
                "action": "announce", "info_hash": info_hash, "peer_id": "-FS0001-abcdefghijkl",
                "numwant": 0, "uploaded": 0, "downloaded": 0, "left": 1000, "event": "started",
                "offers": [],
            });
            ws.send(Message::text(announce.to_string())).await.unwrap();
            loop {
                let next = tokio::time::timeout(Duration::from_secs(5), ws.next())
                    .await
                    .unwrap()
                    .unwrap()
                    .unwrap();
                if let Message::Text(text) = next {
                    let reply: Value = serde_json::from_str(&text).unwrap();
                    return reply.get("failure reason").is_none();
                }
            }
        })
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// `len` bytes that differ with `seed`.
fn bytes(len: usize, seed: u32) -> Vec<u8> {
    (0..len as u32)
        .map(|i| (i.wrapping_mul(seed * 2 + 7) % 251) as u8)
        .collect()
}

/// Writes `data` and dates the file an hour back, as a library's files are.
fn write_old(path: &PathBuf, data: &[u8]) {
    std::fs::write(path, data).unwrap();
    let file = std::fs::File::options().write(true).open(path).unwrap();
    file.set_modified(SystemTime::now() - Duration::from_secs(3600))
        .unwrap();
}

fn dechunk(mut body: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    loop {
        let end = body.windows(2).position(|w| w == b"\r\n").unwrap();
        let size =
            usize::from_str_radix(std::str::from_utf8(&body[..end]).unwrap().trim(), 16).unwrap();
        if size == 0 {
            return out;
        }
        out.extend_from_slice(&body[end + 2..end + 2 + size]);
        body = &body[end + 2 + size + 2..];
    }
}
