//! The player's code through `app()`: content-hashed names from
//! `web/pkg/manifest.json` served immutable, the entry points (`/embed/<hex>`,
//! `/embed.js`, `/sw.js`, `/`) revalidated and naming the hashed files,
//! brotli before gzip with the original type kept, and the unhashed names
//! when there is no usable manifest.
#![allow(clippy::unwrap_used)]

use std::path::Path;

use axum::body::Body;
use axum::http::{Request, StatusCode, header};
use axum::response::Response;
use fanswarm_tracker::Limits;
use http_body_util::BodyExt;
use signal_server::assets::{IMMUTABLE, ManifestError, REVALIDATE, WebAssets};
use signal_server::catalog::Catalog;
use signal_server::state::{AppState, Paths};
use tower::ServiceExt;

const PLAYER: &str = "pkg/player-0123456789abcdef.js";
const FANSWARM: &str = "pkg/fanswarm-1111111111111111.js";
const GLUE: &str = "pkg/client_wasm-2222222222222222.js";
const WASM: &str = "pkg/client_wasm_bg-3333333333333333.wasm";

/// What `scripts/build-web` writes, for the files above.
fn manifest() -> String {
    format!(
        r#"{{
  "files": {{ "player.js": "{PLAYER}", "fanswarm.js": "{FANSWARM}",
             "pkg/client_wasm.js": "{GLUE}", "pkg/client_wasm_bg.wasm": "{WASM}" }},
  "entry": "player.js",
  "modules": ["player.js", "fanswarm.js", "pkg/client_wasm.js"],
  "wasm": "pkg/client_wasm_bg.wasm"
}}"#
    )
}

struct Fixture {
    root: tempfile::TempDir,
    catalog: Catalog,
    hex: String,
}

/// A library of one track and a built `web/` (sources, hashed copies, the
/// wasm's `.br` and `.gz`), with `manifest` as `web/pkg/manifest.json`.
async fn fixture(manifest: Option<&str>) -> Fixture {
    let root = tempfile::tempdir().unwrap();
    let library = root.path().join("library");
    let web = root.path().join("web");
    std::fs::create_dir_all(&library).unwrap();
    std::fs::create_dir_all(web.join("pkg")).unwrap();
    std::fs::write(library.join("song.mp3"), vec![7u8; 40_000]).unwrap();
    std::fs::write(web.join("index.html"), b"<h1>demo</h1>").unwrap();
    std::fs::write(web.join("sw.js"), b"// worker").unwrap();
    for name in ["player.js", "fanswarm.js", PLAYER, FANSWARM, GLUE] {
        std::fs::write(web.join(name), format!("// {name}")).unwrap();
    }
    std::fs::write(web.join(WASM), b"\0asm wasm").unwrap();
    std::fs::write(web.join(format!("{WASM}.br")), b"brotli bytes").unwrap();
    std::fs::write(web.join(format!("{WASM}.gz")), b"gzip bytes").unwrap();
    if let Some(text) = manifest {
        std::fs::write(web.join("pkg/manifest.json"), text).unwrap();
    }
    let catalog = signal_server::library::publish_library(library, "https://music.example".into())
        .await
        .unwrap();
    let hex = catalog.tracks()[0].info_hash.to_hex();
    Fixture { root, catalog, hex }
}

impl Fixture {
    fn web(&self) -> std::path::PathBuf {
        self.root.path().join("web")
    }

    /// A server state read now, as at startup.
    fn state(&self) -> AppState {
        AppState::new(
            self.catalog.clone(),
            Paths {
                media_dir: self.root.path().join("library"),
                web_dir: self.web(),
            },
            Limits::default(),
        )
    }
}

async fn get(state: &AppState, path: &str, headers: &[(&str, &str)]) -> (Response<()>, String) {
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
    (
        Response::from_parts(parts, ()),
        String::from_utf8_lossy(&bytes).into_owned(),
    )
}

fn header_of(res: &Response<()>, name: header::HeaderName) -> &str {
    res.headers()
        .get(name)
        .map(|v| v.to_str().unwrap())
        .unwrap_or("")
}

#[tokio::test]
async fn hashed_files_are_immutable_and_the_entry_points_name_them() {
    let f = fixture(Some(&manifest())).await;
    let state = f.state();
    assert!(state.assets.is_hashed());

    for path in [PLAYER, FANSWARM, GLUE, WASM] {
        let (res, _) = get(&state, &format!("/{path}"), &[]).await;
        assert_eq!(res.status(), StatusCode::OK, "{path}");
        assert_eq!(header_of(&res, header::CACHE_CONTROL), IMMUTABLE, "{path}");
    }
    for path in ["/sw.js", "/", "/player.js", "/pkg/manifest.json"] {
        let (res, _) = get(&state, path, &[]).await;
        assert_eq!(res.status(), StatusCode::OK, "{path}");
        assert_eq!(header_of(&res, header::CACHE_CONTROL), REVALIDATE, "{path}");
    }
    let (res, _) = get(&state, "/pkg/player-ffffffffffffffff.js", &[]).await;
    assert_eq!(res.status(), StatusCode::NOT_FOUND);
    assert_eq!(header_of(&res, header::CACHE_CONTROL), REVALIDATE);

    let (res, script) = get(&state, "/embed.js", &[]).await;
    assert_eq!(res.status(), StatusCode::OK);
    assert!(header_of(&res, header::CONTENT_TYPE).starts_with("text/javascript"));
    assert_eq!(header_of(&res, header::CACHE_CONTROL), REVALIDATE);
    assert!(script.contains(&format!("import '/{PLAYER}';")), "{script}");

    let (res, html) = get(&state, &format!("/embed/{}", f.hex), &[]).await;
    assert_eq!(header_of(&res, header::CACHE_CONTROL), REVALIDATE);
    let preloads: Vec<&str> = html
        .lines()
        .filter(|l| l.starts_with("<link rel=\"modulepreload\""))
        .collect();
    assert_eq!(
        preloads,
        [PLAYER, FANSWARM, GLUE].map(|m| format!(r#"<link rel="modulepreload" href="/{m}">"#)),
        "{html}"
    );
    assert!(html.contains(&format!(
        r#"<link rel="preload" href="/{WASM}" as="fetch" crossorigin>"#
    )));
    assert!(html.contains(&format!(
        r#"<link rel="preload" href="/t/{}.torrent" as="fetch" crossorigin>"#,
        f.hex
    )));
    assert!(html.contains(&format!(
        r#"<script type="module" src="/{PLAYER}"></script>"#
    )));
}

#[tokio::test]
async fn brotli_first_then_gzip_and_the_wasm_keeps_its_type() {
    let f = fixture(Some(&manifest())).await;
    let state = f.state();
    let wasm = format!("/{WASM}");
    for (accept, encoding, body) in [
        ("br, gzip", "br", "brotli bytes"),
        ("gzip, deflate, br", "br", "brotli bytes"),
        ("gzip", "gzip", "gzip bytes"),
        ("identity", "", "\0asm wasm"),
    ] {
        let (res, got) = get(&state, &wasm, &[("accept-encoding", accept)]).await;
        assert_eq!(
            header_of(&res, header::CONTENT_ENCODING),
            encoding,
            "{accept}"
        );
        // instantiateStreaming takes nothing else.
        assert_eq!(
            header_of(&res, header::CONTENT_TYPE),
            "application/wasm",
            "{accept}"
        );
        assert_eq!(header_of(&res, header::CACHE_CONTROL), IMMUTABLE);
        assert!(
            res.headers()
                .get_all(header::VARY)
                .iter()
                .any(|v| v == "accept-encoding"),
            "caches must key on Accept-Encoding"
        );
        assert_eq!(got, body, "{accept}");
    }
}

#[tokio::test]
async fn without_a_manifest_the_unhashed_names_are_served_and_revalidated() {
    let f = fixture(None).await;
    let state = f.state();
    assert!(!state.assets.is_hashed());
    let (_, script) = get(&state, "/embed.js", &[]).await;
    assert!(script.contains("import '/player.js';"), "{script}");
    let (_, html) = get(&state, &format!("/embed/{}", f.hex), &[]).await;
    assert!(html.contains(r#"<script type="module" src="/player.js"></script>"#));
    assert!(!html.contains("modulepreload"), "{html}");
    assert!(html.contains(r#"<link rel="preload" href="/pkg/client_wasm_bg.wasm""#));
    // Hashed files left over are no longer trusted to be current.
    let (res, _) = get(&state, &format!("/{PLAYER}"), &[]).await;
    assert_eq!(header_of(&res, header::CACHE_CONTROL), REVALIDATE);
}

/// Whether a [`ManifestError`] is the one a case expects.
type IsExpected = fn(&ManifestError) -> bool;

#[tokio::test]
async fn the_worker_is_sent_from_its_built_copy_at_its_own_url() {
    // build-web's manifest names the worker's minified copy.
    let with_sw = manifest().replace(
        r#""wasm": "pkg/client_wasm_bg.wasm""#,
        r#""wasm": "pkg/client_wasm_bg.wasm", "sw": "pkg/sw.js""#,
    );
    let f = fixture(Some(&with_sw)).await;
    std::fs::write(f.web().join("pkg/sw.js"), b"// built worker").unwrap();
    std::fs::write(f.web().join("pkg/sw.js.br"), b"brotli worker").unwrap();
    let state = f.state();
    assert_eq!(state.assets.worker_copy(), Some("pkg/sw.js"));
    // Its query (the stream prefix) kept; the copy's bytes, revalidated.
    let (res, body) = get(&state, "/sw.js?prefix=/fanswarm/stream/", &[]).await;
    assert_eq!(res.status(), StatusCode::OK);
    assert_eq!(body, "// built worker");
    assert!(header_of(&res, header::CONTENT_TYPE).contains("javascript"));
    assert_eq!(header_of(&res, header::CACHE_CONTROL), REVALIDATE);
    let (res, body) = get(&state, "/sw.js", &[("accept-encoding", "br")]).await;
    assert_eq!(header_of(&res, header::CONTENT_ENCODING), "br");
    assert_eq!(body, "brotli worker");
    // Without it in the manifest (an older build-web), the source itself.
    let f = fixture(Some(&manifest())).await;
    let (_, body) = get(&f.state(), "/sw.js", &[]).await;
    assert_eq!(body, "// worker");
    // A manifest naming a copy that is not there is unusable, as for any file.
    let f = fixture(Some(&with_sw)).await;
    let error = WebAssets::read(&f.web()).unwrap_err();
    assert!(
        matches!(&error, ManifestError::Missing(p) if p.ends_with("pkg/sw.js")),
        "{error}"
    );
}

#[tokio::test]
async fn an_unusable_manifest_is_a_clear_error_and_the_server_falls_back() {
    let cases: [(String, IsExpected); 4] = [
        ("{ not json".into(), |e| {
            matches!(e, ManifestError::Json { .. })
        }),
        (
            manifest().replace(PLAYER, "../player.js"),
            |e| matches!(e, ManifestError::UnsafeName(n) if n == "../player.js"),
        ),
        (
            manifest().replace(PLAYER, "pkg/player-gone.js"),
            |e| matches!(e, ManifestError::Missing(p) if p.ends_with("pkg/player-gone.js")),
        ),
        (
            manifest().replace(r#""entry": "player.js""#, r#""entry": "main.js""#),
            |e| matches!(e, ManifestError::Unmapped(n) if n == "main.js"),
        ),
    ];
    for (text, expected) in cases {
        let f = fixture(Some(&text)).await;
        let error = WebAssets::read(&f.web()).unwrap_err();
        assert!(expected(&error), "{text}: {error}");
        assert!(!error.to_string().is_empty());
        let state = f.state();
        assert_eq!(state.assets, WebAssets::unhashed(), "{text}");
        let (res, _) = get(&state, &format!("/embed/{}", f.hex), &[]).await;
        assert_eq!(res.status(), StatusCode::OK, "{text}");
    }
    assert!(
        WebAssets::read(Path::new("/nonexistent/web"))
            .unwrap()
            .is_none()
    );
}
