//! `GET /embed/<hex>`: the page an artist's `<iframe>` shows — exactly one
//! `<fanswarm-player>` for that track. It lives on the server's origin so
//! the stream service worker can control it (a worker only serves pages of
//! its own origin). Kept plain here; `web/player.js` does the work.
//!
//! The page names the player's code by its hashed names ([`crate::assets`])
//! and preloads everything the first audio needs, so the browser fetches it
//! all in parallel as soon as it reads the head, before any module runs:
//! every module of the player (`modulepreload`), the wasm and the
//! `.torrent`. The element then compiles the wasm and registers the stream
//! worker on load, and play() only has to start the track.

use axum::extract::{Path, State};
use axum::http::{StatusCode, header};
use axum::response::{Html, IntoResponse, Response};
use swarm::InfoHash;

use crate::assets::WebAssets;
use crate::state::AppState;

/// The embed page of a published track; 404 for any other hash.
pub async fn page(State(state): State<AppState>, Path(hex): Path<String>) -> Response {
    let Ok(info_hash) = InfoHash::from_hex(&hex) else {
        return (StatusCode::BAD_REQUEST, "not an info hash").into_response();
    };
    let Some(track) = state.catalog.get(&info_hash) else {
        return StatusCode::NOT_FOUND.into_response();
    };
    // Its title tag if it has one (the player asks for the other tags).
    let title = track.tags.title.as_deref().unwrap_or(&track.name);
    let html = render(title, &info_hash, &state.assets);
    (
        // Artists frame this page on their own sites; it names the
        // current build's files, so it is never used unrevalidated.
        [(header::CACHE_CONTROL, crate::assets::REVALIDATE)],
        Html(html),
    )
        .into_response()
}

/// The page's HTML; `name` is escaped, the hash is hex by type, the asset
/// names are plain paths by [`WebAssets`]' check.
///
/// `crossorigin` on the `fetch` preloads: a preload is reused only by a
/// request of the same mode and credentials, and `fetch()` (the glue's for
/// the wasm, the player's for the `.torrent`) is a CORS request with
/// same-origin credentials, which is what `crossorigin` (anonymous) asks for.
/// Module scripts and `modulepreload` are that already.
///
/// The inline script starts compiling the wasm as its bytes arrive, from
/// the head, instead of once every module has arrived and run (a module
/// graph runs only when all of it is here): `fanswarm.js` instantiates
/// that compiled module (`self.fanswarmWasm`) and compiles its own only if
/// it failed. Measured: on a second visit the wasm compiled 30-50 ms after
/// the modules ran, often after the listener could press play.
///
/// The `.torrent` first, then the wasm, then the modules: over HTTP/1.1 a
/// browser opens six connections to a host, and the seventh request waits
/// for one (measured in Firefox: the tiny `.torrent`, last, arrived with
/// the wasm, and the track could not be made before).
pub fn render(name: &str, info_hash: &InfoHash, assets: &WebAssets) -> String {
    let hex = info_hash.to_hex();
    let title = escape(name);
    let entry = assets.entry_url();
    let wasm = assets.wasm_url();
    let modules: String = assets
        .module_urls()
        .map(|m| format!("<link rel=\"modulepreload\" href=\"{m}\">\n"))
        .collect();
    format!(
        r#"<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{title} · fanswarm</title>
<style>html,body{{margin:0;background:transparent}} fanswarm-player{{margin:1px}}</style>
<link rel="preload" href="/t/{hex}.torrent" as="fetch" crossorigin>
<link rel="preload" href="{wasm}" as="fetch" crossorigin>
<script>self.fanswarmWasm=WebAssembly.compileStreaming?.(fetch("{wasm}"))</script>
{modules}<script type="module" src="{entry}"></script>
</head>
<body>
<fanswarm-player src="/t/{hex}.torrent" title="{title}"></fanswarm-player>
</body>
</html>
"#
    )
}

fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn page_holds_one_player_and_escapes_the_name() {
        let hash = InfoHash([0xab; 20]);
        let html = render(
            "a <b>\"song\"</b> & more.mp3",
            &hash,
            &WebAssets::unhashed(),
        );
        assert_eq!(html.matches("<fanswarm-player").count(), 1);
        assert!(html.contains(&format!(r#"src="/t/{}.torrent""#, hash.to_hex())));
        assert!(html.contains("a &lt;b&gt;&quot;song&quot;&lt;/b&gt; &amp; more.mp3"));
        assert!(!html.contains("<b>"));
        assert!(html.contains(r#"<script type="module" src="/player.js"></script>"#));
    }

    #[test]
    fn page_preloads_the_wasm_and_the_torrent_for_fetch() {
        let hash = InfoHash([0xcd; 20]);
        let html = render("song", &hash, &WebAssets::unhashed());
        assert!(html.contains(
            r#"<link rel="preload" href="/pkg/client_wasm_bg.wasm" as="fetch" crossorigin>"#
        ));
        assert!(
            html.contains(r#"compileStreaming?.(fetch("/pkg/client_wasm_bg.wasm"))"#),
            "compiles the wasm it preloads"
        );
        assert!(html.contains(&format!(
            r#"<link rel="preload" href="/t/{}.torrent" as="fetch" crossorigin>"#,
            hash.to_hex()
        )));
    }
}
