//! `GET /share`: a fan drops (or picks) a file, and the tab shares it —
//! WebTorrent's instant.io, with our peer. The page is plain HTML from
//! here; `web/share.js` does the work through `fanswarm.share` (the wasm
//! hashes the file, with progress, and seeds it from the tab), then shows
//! the link (this server's `/embed/<hex>?magnet=…`, which plays any swarm
//! the tracker serves) and both embed snippets, and what the tab has sent.
//!
//! Who may use the server is the artist's choice, [`Swarms`]: with
//! `published` (the default) the tracker serves only the swarms this
//! server published, so the page says sharing is off instead of making a
//! link that nobody could play.

use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{Html, IntoResponse, Response};
use fanswarm_tracker::Access;

use crate::assets::{REVALIDATE, WebAssets};
use crate::state::AppState;

/// Which swarms the server's tracker and player serve (`--swarms`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, clap::ValueEnum)]
pub enum Swarms {
    /// Only the tracks this server published. The default: a server runs
    /// under the artist's name, and an open tracker and player would let
    /// anyone use that name (and the artist's machine) to pass around
    /// whatever they like; opening it is one flag.
    #[default]
    Published,
    /// Any swarm: fans' own files shared from `/share`, magnets of any
    /// WebTorrent client, played by `/embed/<hex>?magnet=…`.
    Open,
}

impl Swarms {
    /// The tracker's access list for a server that published `catalog`.
    pub fn access(self, catalog: &crate::catalog::Catalog) -> Access {
        match self {
            Swarms::Open => Access::Open,
            Swarms::Published => Access::only(catalog.tracks().iter().map(|t| t.info_hash)),
        }
    }
}

/// The share page; with the tracker closed to other swarms, a page that
/// says so (403).
pub async fn page(State(state): State<AppState>) -> Response {
    let open = state.hub().tracker.access() == &Access::Open;
    let (status, html) = if open {
        (StatusCode::OK, render(&state.assets))
    } else {
        (StatusCode::FORBIDDEN, render_closed())
    };
    (status, [(header::CACHE_CONTROL, REVALIDATE)], Html(html)).into_response()
}

/// The page: a drop zone and file picker, progress, then the link, the
/// snippets and the figures; the code is `fanswarm.js` (by its hashed
/// name) and `/share.js`.
pub fn render(assets: &WebAssets) -> String {
    let fanswarm = assets.url("fanswarm.js");
    format!(
        r#"<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>Share a track · fanswarm</title>
<style>
body{{font:16px/1.45 system-ui,sans-serif;max-width:44rem;margin:2rem auto;padding:0 1rem;color:#222}}
#drop{{display:block;border:2px dashed #888;border-radius:12px;padding:2.5rem 1rem;text-align:center;cursor:pointer}}
#drop.over,#drop:focus-within{{border-color:#2a6;background:#efe}}
.visually-hidden{{position:absolute;width:1px;height:1px;overflow:hidden;clip-path:inset(50%);white-space:nowrap}}
progress{{width:100%}} textarea{{width:100%;box-sizing:border-box;font:13px monospace}} #link{{overflow-wrap:anywhere}} [hidden]{{display:none!important}}
dl{{display:grid;grid-template-columns:max-content 1fr;gap:.2rem 1rem}} dd{{margin:0}}
</style>
</head>
<body>
<h1>Share a track</h1>
<p>Your browser hashes the file and plays it to whoever opens its link, straight
from this tab: the file is never uploaded to the server, which only introduces
listeners to each other. Keep the tab open while people listen.</p>
<label id="drop" for="file">Drop an audio file here, or <u>pick one</u>
<input id="file" class="visually-hidden" type="file" accept="audio/*,.flac,.ogg,.opus,.m4a,.mp3,.wav"></label>
<p id="status" role="status" aria-live="polite"></p>
<progress id="progress" max="1" value="0" hidden></progress>
<section id="result" hidden>
<h2 id="name"></h2>
<p><strong id="seeding">Seeding from this tab.</strong> Closing it stops the sharing
unless listeners have the whole track.</p>
<dl>
<dt>Listeners connected</dt><dd id="peers">0</dd>
<dt>Sent from this tab</dt><dd id="sent">0 B</dd>
</dl>
<p>Link: <a id="link" target="_blank" rel="noopener"></a></p>
<p><label>Magnet<br><textarea id="magnet" rows="3" readonly></textarea></label>
<button type="button" data-copy="magnet">Copy the magnet</button></p>
<p><label>Embed in a page (frame)<br><textarea id="iframe" rows="3" readonly></textarea></label>
<button type="button" data-copy="iframe">Copy the frame snippet</button></p>
<p><label>Embed in a page (script)<br><textarea id="script" rows="3" readonly></textarea></label>
<button type="button" data-copy="script">Copy the script snippet</button></p>
</section>
<script type="module">
import fanswarm from "{fanswarm}";
import {{ mount }} from "/share.js";
// The page's own API, for scripts (and tests): share(file), stop().
window.fanswarmSharePage = mount(fanswarm);
</script>
</body>
</html>
"#
    )
}

/// The page of a server that serves only its own swarms.
pub fn render_closed() -> String {
    r#"<!doctype html>
<html lang="en">
<head><meta charset="utf-8"><title>Sharing is off · fanswarm</title></head>
<body>
<h1>Sharing is off on this server</h1>
<p id="status" role="alert">This server plays only the tracks it publishes. Its operator
can let fans share their own files with <code>--swarms open</code>.</p>
</body>
</html>
"#
    .to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_page_loads_the_peer_by_its_name_and_the_share_code() {
        let html = render(&WebAssets::unhashed());
        assert!(html.contains(r#"import fanswarm from "/fanswarm.js";"#));
        assert!(html.contains(r#"from "/share.js""#));
        assert!(html.contains(r#"type="file""#));
    }

    #[test]
    fn published_only_lists_the_catalog() {
        let catalog = crate::catalog::Catalog::new(Vec::new());
        assert_eq!(Swarms::Open.access(&catalog), Access::Open);
        assert_eq!(Swarms::Published.access(&catalog), Access::only([]));
        assert_eq!(Swarms::default(), Swarms::Published);
    }
}
