//! Tags read at publish time, through `app()` with `oneshot`: `/api/tracks`
//! and `/api/tracks/<hex>` carry title, artist, album, track number,
//! duration and the cover's URL; `/cover/<hex>` serves the picture with its
//! type and for good; a file whose tags are broken still publishes under
//! its name; the web seed's types are the ones browsers know.
#![allow(clippy::unwrap_used)]

use axum::body::Body;
use axum::http::{Method, Request, StatusCode, header};
use axum::response::Response;
use fanswarm_tracker::Limits;
use http_body_util::BodyExt;
use lofty::config::WriteOptions;
use lofty::picture::{MimeType, Picture, PictureType};
use lofty::tag::{Accessor, Tag, TagExt, TagType};
use serde_json::Value;
use signal_server::state::{AppState, Paths};
use tower::ServiceExt;

const BASE: &str = "http://music.test";

/// A PNG signature and some bytes: the server checks the signature only.
const COVER: &[u8] = b"\x89PNG\r\n\x1a\n\0\0\0\rIHDRnot really a picture";

struct Fixture {
    _root: tempfile::TempDir,
    state: AppState,
}

/// library/{tagged.wav (ID3v2 tags + a cover), broken.mp3, plain.m4a}
async fn fixture() -> Fixture {
    let root = tempfile::tempdir().unwrap();
    let library = root.path().join("library");
    std::fs::create_dir_all(&library).unwrap();

    let samples = signal_server::demo::synthesize(2, 5);
    let tagged = library.join("tagged.wav");
    std::fs::write(
        &tagged,
        signal_server::demo::wav_bytes(&samples, signal_server::demo::SAMPLE_RATE),
    )
    .unwrap();
    let mut tag = Tag::new(TagType::Id3v2);
    tag.set_title("Night Bus".into());
    tag.set_artist("The Fans".into());
    tag.set_album("Swarm Songs".into());
    tag.set_track(7);
    tag.push_picture(
        Picture::unchecked(COVER.to_vec())
            .pic_type(PictureType::CoverFront)
            .mime_type(MimeType::Png)
            .build(),
    );
    tag.save_to_path(&tagged, WriteOptions::default()).unwrap();

    // An ID3v2 header claiming more bytes than there are, then junk.
    let mut broken = b"ID3\x04\x00\x00\x7f\x7f\x7f\x7f".to_vec();
    broken.extend((0..30_000u32).map(|i| (i % 251) as u8));
    std::fs::write(library.join("broken.mp3"), broken).unwrap();
    std::fs::write(library.join("plain.m4a"), vec![7u8; 20_000]).unwrap();

    let catalog = signal_server::library::publish_library(library.clone(), BASE.into())
        .await
        .unwrap();
    let state = AppState::new(
        catalog,
        Paths {
            media_dir: library,
            web_dir: root.path().to_path_buf(),
        },
        Limits::default(),
    );
    Fixture { _root: root, state }
}

async fn request(state: &AppState, method: Method, path: &str) -> (Response<()>, Vec<u8>) {
    let req = Request::builder()
        .method(method)
        .uri(path)
        .body(Body::empty())
        .unwrap();
    let res = signal_server::app(state.clone())
        .oneshot(req)
        .await
        .unwrap();
    let (parts, body) = res.into_parts();
    let bytes = body.collect().await.unwrap().to_bytes().to_vec();
    (Response::from_parts(parts, ()), bytes)
}

async fn get(state: &AppState, path: &str) -> (Response<()>, Vec<u8>) {
    request(state, Method::GET, path).await
}

fn header_of(res: &Response<()>, name: header::HeaderName) -> &str {
    res.headers()
        .get(name)
        .map(|v| v.to_str().unwrap())
        .unwrap_or("")
}

async fn tracks(state: &AppState) -> Vec<Value> {
    let (res, body) = get(state, "/api/tracks").await;
    assert_eq!(res.status(), StatusCode::OK);
    serde_json::from_slice::<Value>(&body)
        .unwrap()
        .as_array()
        .unwrap()
        .clone()
}

fn named<'a>(tracks: &'a [Value], name: &str) -> &'a Value {
    tracks
        .iter()
        .find(|t| t["name"] == name)
        .unwrap_or_else(|| panic!("{name} not published: {tracks:?}"))
}

#[tokio::test]
async fn api_tracks_carries_the_tags_and_the_duration() {
    let f = fixture().await;
    let tracks = tracks(&f.state).await;
    let t = named(&tracks, "tagged.wav");
    assert_eq!(t["title"], "Night Bus");
    assert_eq!(t["artist"], "The Fans");
    assert_eq!(t["album"], "Swarm Songs");
    assert_eq!(t["track_number"], 7);
    let seconds = t["duration"].as_f64().unwrap();
    assert!((seconds - 2.0).abs() < 0.01, "duration {seconds}");
    let hex = t["info_hash"].as_str().unwrap();
    assert_eq!(t["cover_url"], format!("{BASE}/cover/{hex}"));

    // One track by its hash: the same object.
    let (res, body) = get(&f.state, &format!("/api/tracks/{hex}")).await;
    assert_eq!(res.status(), StatusCode::OK);
    assert_eq!(&serde_json::from_slice::<Value>(&body).unwrap(), t);
    let (res, _) = get(&f.state, &format!("/api/tracks/{}", "0".repeat(40))).await;
    assert_eq!(res.status(), StatusCode::NOT_FOUND);
    let (res, _) = get(&f.state, "/api/tracks/nothex").await;
    assert_eq!(res.status(), StatusCode::BAD_REQUEST);
}

#[tokio::test]
async fn a_file_with_broken_tags_publishes_under_its_file_name() {
    let f = fixture().await;
    let tracks = tracks(&f.state).await;
    assert_eq!(tracks.len(), 3, "every file is published: {tracks:?}");
    for name in ["broken.mp3", "plain.m4a"] {
        let t = named(&tracks, name);
        for field in ["title", "artist", "album", "track_number", "cover_url"] {
            assert!(t[field].is_null(), "{name}: {field} is {}", t[field]);
        }
        let (res, _) = get(
            &f.state,
            t["media_url"].as_str().unwrap().trim_start_matches(BASE),
        )
        .await;
        assert_eq!(res.status(), StatusCode::OK, "{name} is served");
    }
}

#[tokio::test]
async fn the_cover_is_served_with_its_type_for_good() {
    let f = fixture().await;
    let tracks = tracks(&f.state).await;
    let url = named(&tracks, "tagged.wav")["cover_url"]
        .as_str()
        .unwrap()
        .to_owned();
    let (res, body) = get(&f.state, url.trim_start_matches(BASE)).await;
    assert_eq!(res.status(), StatusCode::OK);
    assert_eq!(body, COVER);
    assert_eq!(header_of(&res, header::CONTENT_TYPE), "image/png");
    assert_eq!(
        header_of(&res, header::CACHE_CONTROL),
        "public, max-age=31536000, immutable"
    );
    assert_eq!(header_of(&res, header::X_CONTENT_TYPE_OPTIONS), "nosniff");
    let (res, _) = request(&f.state, Method::HEAD, url.trim_start_matches(BASE)).await;
    assert_eq!(res.status(), StatusCode::OK);

    let plain = named(&tracks, "plain.m4a")["info_hash"]
        .as_str()
        .unwrap()
        .to_owned();
    let (res, _) = get(&f.state, &format!("/cover/{plain}")).await;
    assert_eq!(res.status(), StatusCode::NOT_FOUND, "no cover, no picture");
    let (res, _) = get(&f.state, "/cover/../../etc/passwd").await;
    assert!(res.status().is_client_error());
}

#[tokio::test]
async fn the_web_seed_sends_types_browsers_know() {
    let f = fixture().await;
    for (path, mime) in [
        ("/media/plain.m4a", "audio/mp4"),
        ("/media/broken.mp3", "audio/mpeg"),
        ("/media/tagged.wav", "audio/wav"),
    ] {
        let (res, _) = get(&f.state, path).await;
        assert_eq!(res.status(), StatusCode::OK, "{path}");
        assert_eq!(header_of(&res, header::CONTENT_TYPE), mime, "{path}");
        let (res, _) = request(&f.state, Method::HEAD, path).await;
        assert_eq!(header_of(&res, header::CONTENT_TYPE), mime, "HEAD {path}");
    }
    // A range keeps the type too.
    let req = Request::builder()
        .uri("/media/plain.m4a")
        .header(header::RANGE, "bytes=10-19")
        .body(Body::empty())
        .unwrap();
    let res = signal_server::app(f.state.clone())
        .oneshot(req)
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::PARTIAL_CONTENT);
    assert_eq!(res.headers()[header::CONTENT_TYPE], "audio/mp4");
}
