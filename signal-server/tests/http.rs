//! The HTTP routes through `app()` with `oneshot`: web seed (Range, 206,
//! 416, Content-Type, CORS, traversal), torrents, the track list, metrics
//! and the static web directory.
#![allow(clippy::unwrap_used)]

use std::path::Path;

use axum::body::Body;
use axum::http::{Method, Request, StatusCode, header};
use axum::response::Response;
use fanswarm_tracker::Limits;
use http_body_util::BodyExt;
use signal_server::state::{AppState, Paths};
use swarm::metainfo::Metainfo;
use tower::ServiceExt;

const BASE: &str = "https://music.example";

struct Fixture {
    _root: tempfile::TempDir,
    state: AppState,
    song: Vec<u8>,
}

/// root/{library/song.mp3, library/sub dir/b.ogg, web/index.html, secret.txt}
async fn fixture() -> Fixture {
    let root = tempfile::tempdir().unwrap();
    let library = root.path().join("library");
    let web = root.path().join("web");
    std::fs::create_dir_all(library.join("sub dir")).unwrap();
    std::fs::create_dir_all(&web).unwrap();
    let song: Vec<u8> = (0..50_000u32).map(|i| (i % 253) as u8).collect();
    std::fs::write(library.join("song.mp3"), &song).unwrap();
    std::fs::write(library.join("sub dir/b.ogg"), b"OggS fake").unwrap();
    std::fs::write(library.join("notes.txt"), b"not a track").unwrap();
    std::fs::write(web.join("index.html"), b"<h1>player</h1>").unwrap();
    std::fs::write(root.path().join("secret.txt"), b"TOP SECRET").unwrap();
    let catalog = signal_server::library::publish_library(library.clone(), BASE.into())
        .await
        .unwrap();
    let state = AppState::new(
        catalog,
        Paths {
            media_dir: library,
            web_dir: web,
        },
        Limits::default(),
    );
    Fixture {
        _root: root,
        state,
        song,
    }
}

async fn get(state: &AppState, path: &str, headers: &[(&str, &str)]) -> (Response<()>, Vec<u8>) {
    let mut req = Request::builder().uri(path);
    for (k, v) in headers {
        req = req.header(*k, *v);
    }
    let res = signal_server::app(state.clone())
        .oneshot(req.body(Body::empty()).unwrap())
        .await
        .unwrap();
    let (parts, body) = res.into_parts();
    let bytes = body.collect().await.unwrap().to_bytes().to_vec();
    (Response::from_parts(parts, ()), bytes)
}

fn header_of(res: &Response<()>, name: header::HeaderName) -> &str {
    res.headers()
        .get(name)
        .map(|v| v.to_str().unwrap())
        .unwrap_or("")
}

#[tokio::test]
async fn web_seed_serves_whole_file_with_type_and_ranges_advertised() {
    let f = fixture().await;
    let (res, body) = get(&f.state, "/media/song.mp3", &[]).await;
    assert_eq!(res.status(), StatusCode::OK);
    assert_eq!(header_of(&res, header::CONTENT_TYPE), "audio/mpeg");
    assert_eq!(header_of(&res, header::ACCEPT_RANGES), "bytes");
    assert_eq!(body, f.song);
    let (res, body) = get(&f.state, "/media/sub%20dir/b.ogg", &[]).await;
    assert_eq!(res.status(), StatusCode::OK);
    assert_eq!(header_of(&res, header::CONTENT_TYPE), "audio/ogg");
    assert_eq!(body, b"OggS fake");
}

#[tokio::test]
async fn web_seed_answers_ranges_with_206() {
    let f = fixture().await;
    let len = f.song.len();
    for (range, start, end) in [
        ("bytes=10-19", 10, 19),
        ("bytes=-5", len - 5, len - 1),
        ("bytes=49990-", 49_990, len - 1),
        ("bytes=16384-32767", 16_384, 32_767),
    ] {
        let (res, body) = get(&f.state, "/media/song.mp3", &[("range", range)]).await;
        assert_eq!(res.status(), StatusCode::PARTIAL_CONTENT, "{range}");
        assert_eq!(
            header_of(&res, header::CONTENT_RANGE),
            format!("bytes {start}-{end}/{len}"),
            "{range}"
        );
        assert_eq!(body, &f.song[start..=end], "{range}");
    }
}

#[tokio::test]
async fn unsatisfiable_range_is_416() {
    let f = fixture().await;
    let (res, _) = get(
        &f.state,
        "/media/song.mp3",
        &[("range", "bytes=60000-60010")],
    )
    .await;
    assert_eq!(res.status(), StatusCode::RANGE_NOT_SATISFIABLE);
    assert_eq!(header_of(&res, header::CONTENT_RANGE), "bytes */50000");
}

#[tokio::test]
async fn ranges_at_or_past_the_end_are_416_and_an_end_past_it_is_clamped() {
    let f = fixture().await;
    let len = f.song.len();
    for range in [
        format!("bytes={len}-"),
        format!("bytes={len}-{}", len + 10),
        "bytes=-0".to_owned(),
        "bytes=20-10".to_owned(),
    ] {
        let (res, body) = get(&f.state, "/media/song.mp3", &[("range", &range)]).await;
        assert_eq!(res.status(), StatusCode::RANGE_NOT_SATISFIABLE, "{range}");
        assert_eq!(
            header_of(&res, header::CONTENT_RANGE),
            format!("bytes */{len}"),
            "{range}"
        );
        assert!(body.len() < 100, "{range}: a 416 carries no file bytes");
    }
    // A last byte past the end means "to the end" (RFC 9110 14.1.2).
    let range = format!("bytes=49000-{}", len + 1_000_000);
    let (res, body) = get(&f.state, "/media/song.mp3", &[("range", &range)]).await;
    assert_eq!(res.status(), StatusCode::PARTIAL_CONTENT);
    assert_eq!(
        header_of(&res, header::CONTENT_RANGE),
        format!("bytes 49000-{}/{len}", len - 1)
    );
    assert_eq!(body, &f.song[49_000..]);
}

/// Multi-range requests are refused on purpose (tower-http does not build
/// multipart/byteranges): our peers and browsers' media elements ask one
/// range at a time, and a refusal costs the server nothing, where answering
/// 200 with the whole file would let one header cost a full copy.
#[tokio::test]
async fn multiple_or_overlapping_ranges_are_refused_with_416() {
    let f = fixture().await;
    for range in [
        "bytes=0-1,1-2",
        "bytes=0-99,50-149",
        "bytes=0-0,10-10,20-20",
        "bytes=0-,0-,0-,0-",
    ] {
        let (res, body) = get(&f.state, "/media/song.mp3", &[("range", range)]).await;
        assert_eq!(res.status(), StatusCode::RANGE_NOT_SATISFIABLE, "{range}");
        assert_eq!(header_of(&res, header::CONTENT_RANGE), "bytes */50000");
        assert!(body.len() < 100, "{range}: a 416 carries no file bytes");
    }
    // A single range still works afterwards.
    let (res, body) = get(&f.state, "/media/song.mp3", &[("range", "bytes=0-1")]).await;
    assert_eq!(res.status(), StatusCode::PARTIAL_CONTENT);
    assert_eq!(body, &f.song[..2]);
}

#[tokio::test]
async fn web_seed_allows_other_origins() {
    let f = fixture().await;
    let (res, _) = get(
        &f.state,
        "/media/song.mp3",
        &[("origin", "https://artist.example"), ("range", "bytes=0-0")],
    )
    .await;
    assert_eq!(header_of(&res, header::ACCESS_CONTROL_ALLOW_ORIGIN), "*");
    let exposed = header_of(&res, header::ACCESS_CONTROL_EXPOSE_HEADERS);
    assert!(exposed.contains("content-range"), "{exposed}");

    let preflight = Request::builder()
        .method(Method::OPTIONS)
        .uri("/media/song.mp3")
        .header("origin", "https://artist.example")
        .header("access-control-request-method", "GET")
        .header("access-control-request-headers", "range")
        .body(Body::empty())
        .unwrap();
    let res = signal_server::app(f.state.clone())
        .oneshot(preflight)
        .await
        .unwrap();
    assert!(res.status().is_success(), "{}", res.status());
    let allowed = res.headers()[header::ACCESS_CONTROL_ALLOW_HEADERS]
        .to_str()
        .unwrap();
    assert!(allowed.contains("range"), "{allowed}");
}

#[tokio::test]
async fn no_path_escapes_the_library_or_web_dir() {
    let f = fixture().await;
    for path in [
        "/media/../secret.txt",
        "/media/%2e%2e/secret.txt",
        "/media/%2E%2E/secret.txt",
        "/media/..%2fsecret.txt",
        "/media/%2e%2e%2fsecret.txt",
        "/media/sub%20dir/..%2f..%2fsecret.txt",
        "/media/sub%20dir/../../secret.txt",
        "/media/..%5csecret.txt",
        "/media//etc/passwd",
        "/media/%2fetc%2fpasswd",
        "/../secret.txt",
        "/%2e%2e/secret.txt",
        "/..%2fsecret.txt",
    ] {
        let (res, body) = get(&f.state, path, &[]).await;
        assert_ne!(res.status(), StatusCode::OK, "{path}");
        assert!(
            !body.windows(10).any(|w| w == b"TOP SECRET"),
            "{path} leaked"
        );
        assert!(!body.windows(5).any(|w| w == b"root:"), "{path} leaked");
    }
    // A file of the library that is not a track is not served either
    // (tests/web_seed_files.rs has every such case).
    let (res, _) = get(&f.state, "/media/notes.txt", &[]).await;
    assert_eq!(res.status(), StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn torrent_route_serves_the_metainfo() {
    let f = fixture().await;
    let catalog = f.state.catalog();
    let track = &catalog.tracks()[0];
    let path = format!("/t/{}.torrent", track.info_hash.to_hex());
    let (res, body) = get(&f.state, &path, &[]).await;
    assert_eq!(res.status(), StatusCode::OK);
    assert_eq!(
        header_of(&res, header::CONTENT_TYPE),
        "application/x-bittorrent"
    );
    let m = Metainfo::from_bytes(&body).unwrap();
    assert_eq!(m.info_hash, track.info_hash);
    assert_eq!(m.url_list, vec![track.media_url.clone()]);
    assert_eq!(m.announce.as_deref(), Some("wss://music.example/announce"));
    // Cached, then revalidated with its ETag: a 304 without a body.
    assert!(header_of(&res, header::CACHE_CONTROL).contains("stale-while-revalidate"));
    let etag = header_of(&res, header::ETAG).to_owned();
    assert!(etag.starts_with("W/\""), "{etag}");
    let (again, body) = get(&f.state, &path, &[("if-none-match", &etag)]).await;
    assert_eq!(again.status(), StatusCode::NOT_MODIFIED);
    assert!(body.is_empty());
    let (other, _) = get(&f.state, &path, &[("if-none-match", "W/\"0\"")]).await;
    assert_eq!(other.status(), StatusCode::OK);

    let unknown = format!("/t/{}.torrent", "00".repeat(20));
    assert_eq!(
        get(&f.state, &unknown, &[]).await.0.status(),
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        get(&f.state, "/t/xyz.torrent", &[]).await.0.status(),
        StatusCode::BAD_REQUEST
    );
    let no_suffix = format!("/t/{}", track.info_hash.to_hex());
    assert_eq!(
        get(&f.state, &no_suffix, &[]).await.0.status(),
        StatusCode::NOT_FOUND
    );
}

#[tokio::test]
async fn api_tracks_lists_every_track_with_links() {
    let f = fixture().await;
    let (res, body) = get(&f.state, "/api/tracks", &[]).await;
    assert_eq!(res.status(), StatusCode::OK);
    assert_eq!(header_of(&res, header::CONTENT_TYPE), "application/json");
    let tracks: serde_json::Value = serde_json::from_slice(&body).unwrap();
    let tracks = tracks.as_array().unwrap();
    assert_eq!(tracks.len(), 2, "notes.txt is not a track");
    let names: Vec<&str> = tracks.iter().map(|t| t["name"].as_str().unwrap()).collect();
    assert_eq!(names, ["song.mp3", "b.ogg"]);
    let song = &tracks[0];
    let hex = song["info_hash"].as_str().unwrap();
    assert_eq!(hex.len(), 40);
    assert_eq!(song["length"], 50_000);
    assert_eq!(song["media_url"], "https://music.example/media/song.mp3");
    assert_eq!(song["torrent_url"], format!("{BASE}/t/{hex}.torrent"));
    assert_eq!(song["embed_url"], format!("{BASE}/embed/{hex}"));
    assert!(
        song["magnet"]
            .as_str()
            .unwrap()
            .starts_with(&format!("magnet:?xt=urn:btih:{hex}"))
    );
    assert!(song["embed_html"].as_str().unwrap().contains("<iframe"));
    assert_eq!(
        song["embed_script_html"],
        format!(
            r#"<script type="module" src="{BASE}/embed.js"></script><fanswarm-player src="{BASE}/t/{hex}.torrent"></fanswarm-player>"#
        )
    );
    assert_eq!(
        tracks[1]["media_url"],
        "https://music.example/media/sub%20dir/b.ogg"
    );
}

#[tokio::test]
async fn metrics_count_web_seed_bytes() {
    let f = fixture().await;
    get(&f.state, "/media/song.mp3", &[("range", "bytes=0-999")]).await;
    get(&f.state, "/media/song.mp3", &[("range", "bytes=1000-1499")]).await;
    let (res, body) = get(&f.state, "/metrics", &[]).await;
    assert_eq!(res.status(), StatusCode::OK);
    assert!(header_of(&res, header::CONTENT_TYPE).starts_with("application/openmetrics-text"));
    let text = String::from_utf8(body).unwrap();
    assert!(
        text.lines()
            .any(|l| l == "fanswarm_webseed_sent_bytes_total 1500"),
        "{text}"
    );
    for name in [
        "fanswarm_tracker_connections",
        "fanswarm_tracker_swarms",
        "fanswarm_tracker_peers",
        "fanswarm_tracker_announces_total",
        "fanswarm_tracker_offers_relayed_total",
        "fanswarm_tracker_answers_routed_total",
    ] {
        assert!(
            text.lines().any(|l| l.starts_with(name)),
            "{name} missing:\n{text}"
        );
    }
    assert!(text.ends_with("# EOF\n"));
}

#[tokio::test]
async fn api_swarm_reports_each_track_and_todays_web_seed_bytes() {
    let f = fixture().await;
    let (_, body) = get(&f.state, "/api/swarm", &[]).await;
    let before: serde_json::Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(before["today"]["webseed_bytes"], 0);
    get(&f.state, "/media/song.mp3", &[("range", "bytes=0-1233")]).await;
    let (res, body) = get(&f.state, "/api/swarm", &[]).await;
    assert_eq!(res.status(), StatusCode::OK);
    let report: serde_json::Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(report["today"]["webseed_bytes"], 1234);
    assert_eq!(report["today"]["fan_bytes"], 0);
    let tracks = report["tracks"].as_array().unwrap();
    assert_eq!(tracks.len(), 2);
    assert_eq!(tracks[0]["name"], "song.mp3");
    assert_eq!(tracks[0]["fans"], 0, "nobody announced");
    assert_eq!(tracks[0]["info_hash"].as_str().unwrap().len(), 40);
}

#[tokio::test]
async fn web_files_allow_other_origins_for_the_script_embed() {
    // embed.js, the wasm and its glue are loaded by pages of other origins.
    let f = fixture().await;
    let (res, _) = get(
        &f.state,
        "/index.html",
        &[("origin", "https://artist.example")],
    )
    .await;
    assert_eq!(res.status(), StatusCode::OK);
    assert_eq!(header_of(&res, header::ACCESS_CONTROL_ALLOW_ORIGIN), "*");
}

#[tokio::test]
async fn precompressed_web_files_are_sent_gzipped_to_browsers_that_accept_it() {
    let f = fixture().await;
    let web = f._root.path().join("web");
    let script = b"export const answer = 42; // long enough to be worth it".repeat(20);
    std::fs::write(web.join("app.js"), &script).unwrap();
    let gz = system_gzip(&script);
    std::fs::write(web.join("app.js.gz"), &gz).unwrap();
    let (res, body) = get(&f.state, "/app.js", &[("accept-encoding", "gzip")]).await;
    assert_eq!(header_of(&res, header::CONTENT_ENCODING), "gzip");
    assert!(header_of(&res, header::CONTENT_TYPE).contains("javascript"));
    assert!(
        res.headers()
            .get_all(header::VARY)
            .iter()
            .any(|v| v == "accept-encoding"),
        "caches must key on Accept-Encoding"
    );
    assert_eq!(body, gz);
    let (res, body) = get(&f.state, "/app.js", &[]).await;
    assert_eq!(header_of(&res, header::CONTENT_ENCODING), "");
    assert_eq!(body, script);
}

/// `data` gzipped by the system's `gzip` (small input: no pipe deadlock),
/// so the test needs no codec crate.
fn system_gzip(data: &[u8]) -> Vec<u8> {
    use std::io::Write;
    let mut child = std::process::Command::new("gzip")
        .arg("-9c")
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    child.stdin.take().unwrap().write_all(data).unwrap();
    child.wait_with_output().unwrap().stdout
}

#[tokio::test]
async fn web_dir_is_served_at_the_root_and_a_missing_one_is_404() {
    let f = fixture().await;
    let (res, body) = get(&f.state, "/", &[]).await;
    assert_eq!(res.status(), StatusCode::OK);
    assert_eq!(body, b"<h1>player</h1>");
    let missing = AppState::new(
        Default::default(),
        Paths {
            media_dir: Path::new("/nonexistent/media").into(),
            web_dir: Path::new("/nonexistent/web").into(),
        },
        Limits::default(),
    );
    assert_eq!(
        get(&missing, "/", &[]).await.0.status(),
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        get(&missing, "/media/x.mp3", &[]).await.0.status(),
        StatusCode::NOT_FOUND
    );
}
