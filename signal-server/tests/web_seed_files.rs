//! What the web seed (`/media/…`) serves: exactly the published tracks'
//! files, through the router with real files. No dotfile, no file that is
//! not audio, nothing reached by `..` (plain or percent-encoded), nothing
//! through a symbolic link (out of the library or within it: the
//! publisher follows none, see `publish.rs`), and a directory loop of
//! links does not hang publishing.
#![allow(clippy::unwrap_used)]

use std::os::unix::fs::symlink;
use std::path::{Path, PathBuf};
use std::time::Duration;

use axum::body::Body;
use axum::http::{Request, StatusCode};
use fanswarm_tracker::Limits;
use http_body_util::BodyExt;
use signal_server::catalog::Catalog;
use signal_server::state::{AppState, Paths};
use tower::ServiceExt;

const SONG: &[u8] = b"ID3 the published song";
const SECRET: &[u8] = b"ID3 TOP SECRET, outside the library";

struct Library {
    root: tempfile::TempDir,
}

impl Library {
    /// root/{library/song.mp3, library/sub dir/b.ogg, outside.mp3,
    /// outside dir/track.mp3}; each test adds its traps to library/.
    fn new() -> Self {
        let root = tempfile::tempdir().unwrap();
        let library = root.path().join("library");
        std::fs::create_dir_all(library.join("sub dir")).unwrap();
        std::fs::write(library.join("song.mp3"), SONG).unwrap();
        std::fs::write(library.join("sub dir/b.ogg"), b"OggS b").unwrap();
        std::fs::write(root.path().join("outside.mp3"), SECRET).unwrap();
        std::fs::create_dir_all(root.path().join("outside dir")).unwrap();
        std::fs::write(root.path().join("outside dir/track.mp3"), SECRET).unwrap();
        Library { root }
    }

    fn dir(&self) -> PathBuf {
        self.root.path().join("library")
    }

    /// Publishes the library (failing the test if that takes 10 s) and
    /// returns the server's state.
    async fn publish(&self) -> AppState {
        let publishing =
            signal_server::library::publish_library(self.dir(), "http://music.example".to_owned());
        let catalog = tokio::time::timeout(Duration::from_secs(10), publishing)
            .await
            .expect("publishing did not finish within 10 s")
            .unwrap();
        AppState::new(
            catalog,
            Paths {
                media_dir: self.dir(),
                web_dir: self.root.path().join("web"),
            },
            Limits::default(),
        )
    }
}

async fn get(state: &AppState, path: &str) -> (StatusCode, Vec<u8>) {
    let request = Request::builder().uri(path).body(Body::empty()).unwrap();
    let res = signal_server::app(state.clone())
        .oneshot(request)
        .await
        .unwrap();
    let status = res.status();
    let body = res.into_body().collect().await.unwrap().to_bytes().to_vec();
    (status, body)
}

fn published(catalog: &Catalog) -> Vec<&str> {
    let mut paths: Vec<&str> = catalog.tracks().iter().map(|t| t.path.as_str()).collect();
    paths.sort_unstable();
    paths
}

fn contains(body: &[u8], needle: &[u8]) -> bool {
    body.windows(needle.len()).any(|w| w == needle)
}

/// Asserts `path` is a 404 that carries none of the outside file's bytes.
async fn not_served(state: &AppState, path: &str) {
    let (status, body) = get(state, path).await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{path}");
    assert!(!contains(&body, b"TOP SECRET"), "{path} leaked");
}

#[tokio::test]
async fn every_published_track_is_served_at_its_media_url() {
    let library = Library::new();
    let state = library.publish().await;
    assert_eq!(published(&state.catalog()), ["song.mp3", "sub dir/b.ogg"]);
    for track in state.catalog().tracks() {
        let path = track
            .media_url
            .strip_prefix("http://music.example")
            .unwrap();
        let (status, body) = get(&state, path).await;
        assert_eq!(status, StatusCode::OK, "{path}");
        assert_eq!(
            body,
            std::fs::read(library.dir().join(&track.path)).unwrap()
        );
    }
}

#[tokio::test]
async fn a_dotfile_is_neither_published_nor_served() {
    let library = Library::new();
    std::fs::write(library.dir().join(".hidden.mp3"), SECRET).unwrap();
    std::fs::create_dir_all(library.dir().join(".cache")).unwrap();
    std::fs::write(library.dir().join(".cache/x.mp3"), SECRET).unwrap();
    let state = library.publish().await;
    assert_eq!(published(&state.catalog()), ["song.mp3", "sub dir/b.ogg"]);
    for path in [
        "/media/.hidden.mp3",
        "/media/%2ehidden.mp3",
        "/media/.cache/x.mp3",
        "/media/sub%20dir/../.hidden.mp3",
    ] {
        not_served(&state, path).await;
    }
}

#[tokio::test]
async fn a_file_that_is_not_audio_is_neither_published_nor_served() {
    let library = Library::new();
    std::fs::write(library.dir().join("notes.txt"), b"TOP SECRET notes").unwrap();
    std::fs::write(library.dir().join("sub dir/cover.jpg"), b"TOP SECRET jpg").unwrap();
    let state = library.publish().await;
    assert_eq!(published(&state.catalog()), ["song.mp3", "sub dir/b.ogg"]);
    not_served(&state, "/media/notes.txt").await;
    not_served(&state, "/media/sub%20dir/cover.jpg").await;
    // A directory is not a file to serve (nor a listing).
    not_served(&state, "/media/sub%20dir").await;
    not_served(&state, "/media/sub%20dir/").await;
}

#[tokio::test]
async fn no_traversal_reaches_a_file_outside_the_library() {
    let library = Library::new();
    let state = library.publish().await;
    for path in [
        "/media/../outside.mp3",
        "/media/sub%20dir/../../outside.mp3",
        "/media/%2e%2e/outside.mp3",
        "/media/%2E%2E/outside.mp3",
        "/media/..%2foutside.mp3",
        "/media/%2e%2e%2foutside.mp3",
        "/media/sub%20dir%2f..%2f..%2foutside.mp3",
        "/media/..%5coutside.mp3",
        "/media/%2e%2e%2f%2e%2e%2f%2e%2e%2fetc%2fpasswd",
        "/media//etc/passwd",
        "/media/%2fetc%2fpasswd",
    ] {
        not_served(&state, path).await;
    }
    // The song is still there.
    assert_eq!(get(&state, "/media/song.mp3").await.1, SONG);
}

#[tokio::test]
async fn a_symlink_out_of_the_library_is_neither_published_nor_served() {
    let library = Library::new();
    let root = library.root.path();
    symlink(root.join("outside.mp3"), library.dir().join("linked.mp3")).unwrap();
    symlink("../outside.mp3", library.dir().join("relative.mp3")).unwrap();
    symlink(root.join("outside dir"), library.dir().join("linked dir")).unwrap();
    let state = library.publish().await;
    assert_eq!(published(&state.catalog()), ["song.mp3", "sub dir/b.ogg"]);
    for path in [
        "/media/linked.mp3",
        "/media/relative.mp3",
        "/media/linked%20dir/track.mp3",
    ] {
        not_served(&state, path).await;
    }
}

/// Decided: a link to a track inside the library is skipped too. The track
/// is published under its own name already; publishing the link would only
/// split its fans over a second swarm of the same bytes.
#[tokio::test]
async fn a_symlink_to_a_track_inside_the_library_is_skipped() {
    let library = Library::new();
    symlink("song.mp3", library.dir().join("alias.mp3")).unwrap();
    let state = library.publish().await;
    assert_eq!(published(&state.catalog()), ["song.mp3", "sub dir/b.ogg"]);
    not_served(&state, "/media/alias.mp3").await;
    assert_eq!(get(&state, "/media/song.mp3").await.1, SONG);
}

#[tokio::test]
async fn a_symlinked_directory_loop_does_not_hang_publishing() {
    let library = Library::new();
    symlink(".", library.dir().join("loop")).unwrap();
    symlink("..", library.dir().join("sub dir/up")).unwrap();
    symlink(library.dir(), library.dir().join("sub dir/again")).unwrap();
    // Two links naming each other: resolving either fails (ELOOP).
    symlink("b.mp3", library.dir().join("a.mp3")).unwrap();
    symlink("a.mp3", library.dir().join("b.mp3")).unwrap();
    let state = library.publish().await;
    assert_eq!(published(&state.catalog()), ["song.mp3", "sub dir/b.ogg"]);
    not_served(&state, "/media/loop/song.mp3").await;
    not_served(&state, "/media/sub%20dir/up/song.mp3").await;
    not_served(&state, "/media/a.mp3").await;
}

/// A published file swapped for a link after publishing is not followed:
/// the check is made again on every request.
#[tokio::test]
async fn a_track_replaced_by_a_symlink_after_publishing_is_not_served() {
    let library = Library::new();
    let state = library.publish().await;
    let song = library.dir().join("song.mp3");
    std::fs::remove_file(&song).unwrap();
    symlink(library.root.path().join("outside.mp3"), &song).unwrap();
    not_served(&state, "/media/song.mp3").await;
    assert!(Path::new(&song).exists(), "the link resolves");
}
