//! `GET /embed/<hex>`: the page an artist's `<iframe>` shows — exactly one
//! `<fanswarm-player>` for that track. It lives on the server's origin so
//! the stream service worker can control it (a worker only serves pages of
//! its own origin). Kept plain here; `web/player.js` does the work.

use axum::extract::{Path, State};
use axum::http::{StatusCode, header};
use axum::response::{Html, IntoResponse, Response};
use swarm::InfoHash;

use crate::state::AppState;

/// The embed page of a published track; 404 for any other hash.
pub async fn page(State(state): State<AppState>, Path(hex): Path<String>) -> Response {
    let Ok(info_hash) = InfoHash::from_hex(&hex) else {
        return (StatusCode::BAD_REQUEST, "not an info hash").into_response();
    };
    let Some(track) = state.catalog.get(&info_hash) else {
        return StatusCode::NOT_FOUND.into_response();
    };
    let html = render(&track.name, &info_hash);
    (
        // Artists frame this page on their own sites.
        [(header::CACHE_CONTROL, "no-cache")],
        Html(html),
    )
        .into_response()
}

/// The page's HTML; `name` is escaped, the hash is hex by type.
pub fn render(name: &str, info_hash: &InfoHash) -> String {
    let hex = info_hash.to_hex();
    let title = escape(name);
    format!(
        r#"<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{title} · fanswarm</title>
<style>html,body{{margin:0;background:transparent}} fanswarm-player{{margin:1px}}</style>
<script type="module" src="/player.js"></script>
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
        let html = render("a <b>\"song\"</b> & more.mp3", &hash);
        assert_eq!(html.matches("<fanswarm-player").count(), 1);
        assert!(html.contains(&format!(r#"src="/t/{}.torrent""#, hash.to_hex())));
        assert!(html.contains("a &lt;b&gt;&quot;song&quot;&lt;/b&gt; &amp; more.mp3"));
        assert!(!html.contains("<b>"));
    }
}
