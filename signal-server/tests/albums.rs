//! Albums (`--albums`): a folder of two or more tracks is published as one
//! multi-file torrent, through `app()` with `oneshot` on real files. Its files are in
//! track-number order, it is named by the album tag (else the folder), its
//! track list is in `/api/tracks`, and every piece — those spanning two
//! files included — verifies from the web seed at its BEP 19 URLs. Files in
//! the root, and alone in a folder, stay single-file tracks; a changed file
//! withdraws its album until it is hashed again under a new info hash.
#![allow(clippy::unwrap_used)]

use std::path::Path;
use std::time::{Duration, SystemTime};

use axum::body::Body;
use axum::http::{Request, StatusCode, header};
use fanswarm_tracker::Limits;
use http_body_util::BodyExt;
use lofty::config::WriteOptions;
use lofty::picture::{MimeType, Picture, PictureType};
use lofty::tag::{Accessor, Tag, TagExt, TagType};
use serde_json::Value;
use signal_server::index::Index;
use signal_server::library::Library;
use signal_server::metrics::LibraryProgress;
use signal_server::state::{AppState, Paths};
use swarm::metainfo::Metainfo;
use tower::ServiceExt;

const BASE: &str = "http://music.test";

/// A PNG signature and some bytes: the server checks the signature only.
const COVER: &[u8] = b"\x89PNG\r\n\x1a\n\0\0\0\rIHDRnot really a picture";

/// A short WAV (seconds of the demo synth), tagged when `tags` says so:
/// (title, album, track number).
fn write_track(path: &Path, seconds: u32, seed: u64, tags: Option<(&str, &str, u32)>) {
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    let samples = signal_server::demo::synthesize(seconds, seed);
    std::fs::write(
        path,
        signal_server::demo::wav_bytes(&samples, signal_server::demo::SAMPLE_RATE),
    )
    .unwrap();
    if let Some((title, album, track)) = tags {
        let mut tag = Tag::new(TagType::Id3v2);
        tag.set_title(title.into());
        tag.set_artist("The Fans".into());
        tag.set_album(album.into());
        tag.set_track(track);
        if track == 2 {
            tag.push_picture(
                Picture::unchecked(COVER.to_vec())
                    .pic_type(PictureType::CoverFront)
                    .mime_type(MimeType::Png)
                    .build(),
            );
        }
        tag.save_to_path(path, WriteOptions::default()).unwrap();
    }
}

async fn get(state: &AppState, path: &str, range: Option<(u64, u64)>) -> (StatusCode, Vec<u8>) {
    let mut req = Request::builder().uri(path);
    if let Some((start, end)) = range {
        req = req.header(header::RANGE, format!("bytes={start}-{end}"));
    }
    let res = signal_server::app(state.clone())
        .oneshot(req.body(Body::empty()).unwrap())
        .await
        .unwrap();
    let status = res.status();
    (
        status,
        res.into_body().collect().await.unwrap().to_bytes().to_vec(),
    )
}

fn state_of(catalog: signal_server::catalog::Catalog, library: &Path) -> AppState {
    AppState::new(
        catalog,
        Paths {
            media_dir: library.to_path_buf(),
            web_dir: library.to_path_buf(),
        },
        Limits::default(),
    )
}

#[tokio::test]
async fn a_folder_is_one_album_whose_every_piece_verifies_from_the_web_seed() {
    let root = tempfile::tempdir().unwrap();
    let library = root.path().join("library");
    write_track(&library.join("single.wav"), 1, 1, None);
    write_track(&library.join("Lonely/one.wav"), 1, 2, None);
    // A file no torrent can be made of does not make its folder an album.
    std::fs::write(library.join("Lonely/empty.wav"), b"").unwrap();
    // Track numbers against the names' order: b, c, a.
    write_track(
        &library.join("Best Of/a.wav"),
        2,
        3,
        Some(("Third", "Greatest Hits", 3)),
    );
    write_track(
        &library.join("Best Of/b.wav"),
        1,
        4,
        Some(("First", "Greatest Hits", 1)),
    );
    write_track(
        &library.join("Best Of/c.wav"),
        1,
        5,
        Some(("Second", "Greatest Hits", 2)),
    );
    write_track(&library.join("Demos/y.wav"), 1, 6, None);
    write_track(&library.join("Demos/x.wav"), 1, 7, None);
    let catalog = signal_server::library::publish_albums(library.clone(), BASE.into())
        .await
        .unwrap();
    let state = state_of(catalog, &library);

    let (status, body) = get(&state, "/api/tracks", None).await;
    assert_eq!(status, StatusCode::OK);
    let tracks: Vec<Value> = serde_json::from_slice(&body).unwrap();
    let mut names: Vec<&str> = tracks.iter().map(|t| t["name"].as_str().unwrap()).collect();
    names.sort_unstable();
    assert_eq!(names, ["Demos", "Greatest Hits", "one.wav", "single.wav"]);
    let singles: Vec<&Value> = tracks.iter().filter(|t| t.get("files").is_none()).collect();
    assert_eq!(
        singles.len(),
        2,
        "root and lone files stay single-file tracks"
    );

    let album = tracks
        .iter()
        .find(|t| t["name"] == "Greatest Hits")
        .unwrap();
    assert_eq!(album["title"], "Greatest Hits");
    assert_eq!(album["artist"], "The Fans");
    let files = album["files"].as_array().unwrap();
    let listed: Vec<(u64, &str, &str, u64)> = files
        .iter()
        .map(|f| {
            (
                f["index"].as_u64().unwrap(),
                f["name"].as_str().unwrap(),
                f["title"].as_str().unwrap(),
                f["track_number"].as_u64().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        listed,
        [
            (0, "b.wav", "First", 1),
            (1, "c.wav", "Second", 2),
            (2, "a.wav", "Third", 3)
        ]
    );
    assert!(files.iter().all(|f| f["duration"].as_f64().unwrap() > 0.9));
    let hex = album["info_hash"].as_str().unwrap();
    let (status, one) = get(&state, &format!("/api/tracks/{hex}"), None).await;
    assert_eq!(status, StatusCode::OK);
    let one: Value = serde_json::from_slice(&one).unwrap();
    assert_eq!(
        one["files"], album["files"],
        "the one-track API has the list too"
    );
    // The cover of the first track that has one (the second here).
    assert_eq!(album["cover_url"], format!("{BASE}/cover/{hex}"));
    let (status, cover) = get(&state, &format!("/cover/{hex}"), None).await;
    assert_eq!((status, cover.as_slice()), (StatusCode::OK, COVER));

    // A track's old single-file embed URL leads to its place in the album.
    let options = signal_server::publish::TorrentOptions::default();
    let single =
        signal_server::publish::make_torrent(&library.join("Best Of/c.wav"), &options, |_| {})
            .unwrap()
            .info_hash;
    let old = format!("/embed/{}?upload=off", single.to_hex());
    let res = signal_server::app(state.clone())
        .oneshot(Request::builder().uri(&old).body(Body::empty()).unwrap())
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::TEMPORARY_REDIRECT);
    assert_eq!(
        res.headers()[header::LOCATION],
        format!("/embed/{hex}?file=1&upload=off").as_str()
    );
    assert_eq!(
        get(&state, &format!("/t/{}.torrent", single.to_hex()), None)
            .await
            .0,
        StatusCode::NOT_FOUND
    );

    // The torrent: one swarm of three files, web seed by BEP 19.
    let (status, torrent) = get(&state, &format!("/t/{hex}.torrent"), None).await;
    assert_eq!(status, StatusCode::OK);
    let meta = Metainfo::from_bytes(&torrent).unwrap();
    assert_eq!(meta.info.name, "Greatest Hits");
    let paths: Vec<String> = meta.info.files.iter().map(|f| f.path.join("/")).collect();
    assert_eq!(
        paths,
        [
            "Greatest Hits/b.wav",
            "Greatest Hits/c.wav",
            "Greatest Hits/a.wav"
        ]
    );
    assert_eq!(meta.url_list, [format!("{BASE}/media/")]);
    let seed = &meta.url_list[0];
    for (i, (name, _)) in [("b.wav", 0), ("c.wav", 1), ("a.wav", 2)]
        .iter()
        .enumerate()
    {
        let url = meta.info.web_seed_url(seed, i).unwrap();
        assert_eq!(url, format!("{BASE}/media/Greatest%20Hits/{name}"));
        let (status, bytes) = get(&state, url.strip_prefix(BASE).unwrap(), None).await;
        assert_eq!(status, StatusCode::OK, "{url}");
        assert_eq!(
            bytes,
            std::fs::read(library.join("Best Of").join(name)).unwrap()
        );
    }
    // Every piece from the web seed as a client asks for it: one Range
    // request per file it spans, the bodies joined.
    let mut spanning = 0;
    for piece in 0..meta.info.piece_count() {
        let offset = meta.info.piece_offset(piece);
        let size = u64::from(meta.info.piece_size(piece));
        let requests = swarm::node::plan_ranges(&meta.info, seed, offset, size);
        spanning += usize::from(requests.len() > 1);
        let mut joined = Vec::new();
        for r in requests {
            let (status, body) = get(
                &state,
                r.url.strip_prefix(BASE).unwrap(),
                Some((r.start, r.end)),
            )
            .await;
            assert_eq!(status, StatusCode::PARTIAL_CONTENT);
            joined.extend(body);
        }
        assert_eq!(joined.len() as u64, size);
        let digest = swarm::metainfo::hash_pieces(&joined, size as u32).unwrap();
        assert_eq!(
            &digest[0],
            meta.info.piece_hash(piece).unwrap(),
            "piece {piece}"
        );
    }
    assert_eq!(spanning, 2, "pieces across both file boundaries");

    // Untagged: named by its folder, files by name; the real paths are
    // the BEP 19 ones.
    let demos = tracks.iter().find(|t| t["name"] == "Demos").unwrap();
    let names: Vec<&str> = demos["files"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["x.wav", "y.wav"]);
    assert_eq!(
        get(&state, "/media/Demos/x.wav", None).await.0,
        StatusCode::OK
    );
    // Nothing else: not the album folder, not a file by another album's name.
    assert_eq!(
        get(&state, "/media/Greatest%20Hits", None).await.0,
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        get(&state, "/media/Demos/b.wav", None).await.0,
        StatusCode::NOT_FOUND
    );
}

/// Without `--albums` (the default) a folder of tracks is published as on
/// a server without albums: each file its own torrent, served at its own
/// path, its embed page a page (no redirect), so every existing embed and
/// the browser player keep working.
#[tokio::test]
async fn without_the_option_every_file_of_a_folder_is_its_own_track() {
    let root = tempfile::tempdir().unwrap();
    let library = root.path().join("library");
    write_track(&library.join("Best Of/a.wav"), 1, 3, Some(("A", "Hits", 2)));
    write_track(&library.join("Best Of/b.wav"), 1, 4, Some(("B", "Hits", 1)));
    let catalog = signal_server::library::publish_library(library.clone(), BASE.into())
        .await
        .unwrap();
    let mut paths: Vec<&str> = catalog.tracks().iter().map(|t| t.path.as_str()).collect();
    paths.sort_unstable();
    assert_eq!(paths, ["Best Of/a.wav", "Best Of/b.wav"]);
    for track in catalog.tracks() {
        assert!(track.files.is_none(), "{}: not an album", track.path);
        let meta = Metainfo::from_bytes(&track.torrent).unwrap();
        assert_eq!(meta.info.files.len(), 1, "{}: single-file", track.path);
    }
    let single = catalog.by_path("Best Of/b.wav").unwrap().info_hash;
    let state = state_of(catalog, &library);
    let (status, page) = get(&state, &format!("/embed/{}", single.to_hex()), None).await;
    assert_eq!(status, StatusCode::OK, "its own embed page, no redirect");
    assert!(String::from_utf8_lossy(&page).contains(&single.to_hex()));
    let (status, bytes) = get(&state, "/media/Best%20Of/b.wav", None).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(bytes, std::fs::read(library.join("Best Of/b.wav")).unwrap());
}

#[test]
fn a_changed_file_withdraws_its_album_until_it_is_hashed_again() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().to_path_buf();
    for (name, seed) in [("Album/1.wav", 1), ("Album/2.wav", 2), ("Album/3.wav", 3)] {
        write_track(&root.join(name), 1, seed, None);
    }
    let mut library = Library::new(
        root.clone(),
        BASE.into(),
        Index::in_memory(),
        Duration::ZERO,
    )
    .with_albums(true);
    let publish = |library: &mut Library| {
        let plan = library.scan(SystemTime::now()).unwrap();
        for queued in &plan.queue {
            library.hash(queued, &LibraryProgress::default());
        }
    };
    publish(&mut library);
    assert!(
        library.catalog().tracks().is_empty(),
        "not hashed as an album yet"
    );
    assert!(library.build_albums(&LibraryProgress::default()));
    let first = library.catalog().tracks()[0].info_hash;
    assert!(
        !library.build_albums(&LibraryProgress::default()),
        "unchanged: not hashed again"
    );

    // Rewritten (another size, so another stamp): withdrawn at the scan.
    write_track(&root.join("Album/2.wav"), 2, 9, None);
    let plan = library.scan(SystemTime::now()).unwrap();
    assert!(plan.changed && plan.queue.len() == 1);
    assert!(
        library.catalog().tracks().is_empty(),
        "withdrawn with its file"
    );
    for queued in &plan.queue {
        library.hash(queued, &LibraryProgress::default());
    }
    assert!(
        library.catalog().tracks().is_empty(),
        "still the old album's files"
    );
    assert!(library.build_albums(&LibraryProgress::default()));
    let catalog = library.catalog();
    let second = catalog.tracks()[0].info_hash;
    assert_ne!(first, second, "a new swarm for the new bytes");
    assert_eq!(catalog.tracks()[0].files.as_ref().unwrap().len(), 3);

    // Down to one file: the folder is no album, the file a single track.
    std::fs::remove_file(root.join("Album/1.wav")).unwrap();
    std::fs::remove_file(root.join("Album/3.wav")).unwrap();
    publish(&mut library);
    assert!(
        library.catalog().tracks().is_empty(),
        "the album is withdrawn, its last file not yet a single"
    );
    assert!(
        library.build_albums(&LibraryProgress::default()),
        "the album is forgotten"
    );
    let catalog = library.catalog();
    assert_eq!(catalog.tracks().len(), 1);
    assert_eq!(catalog.tracks()[0].name, "2.wav");
    assert!(catalog.tracks()[0].files.is_none());
}
