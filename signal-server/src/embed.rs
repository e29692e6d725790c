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
//!
//! A track that was published alone and is now part of an album
//! (`Catalog::moved`) redirects (307) to `/embed/<album>?file=<index>`,
//! its other query parameters kept. `file` goes to the element as it is
//! (the player checks it and says what is wrong in its status line); the
//! page's title is that file's when it names one of the album's.
//!
//! A torrent this server did not publish (a fan's file shared from a tab,
//! a WebTorrent client's) plays by magnet: `/embed/<hex>?magnet=<link>`
//! (or no `magnet`: the bare info hash), the player joining through the
//! magnet's trackers, or this server's when it names none, and getting the
//! metadata from peers. Unless the server serves only its own swarms
//! (`--swarms published`): then the page is a refusal, as the tracker's
//! announce is.

use std::collections::HashMap;

use axum::extract::{Path, Query, State};
use axum::http::{StatusCode, header};
use axum::response::{Html, IntoResponse, Response};
use swarm::InfoHash;
use swarm::magnet::Magnet;

use crate::assets::WebAssets;

/// What is escaped in a query parameter's name or value.
const QUERY: &percent_encoding::AsciiSet = &percent_encoding::NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'_')
    .remove(b'.')
    .remove(b'~');
use crate::state::AppState;

/// The embed page of a track: a published one by its `.torrent`, any other
/// by magnet if the tracker serves its swarm, else a refusal (403).
pub async fn page(
    State(state): State<AppState>,
    Path(hex): Path<String>,
    Query(query): Query<HashMap<String, String>>,
) -> Response {
    let Ok(info_hash) = InfoHash::from_hex(&hex) else {
        return (StatusCode::BAD_REQUEST, "not an info hash").into_response();
    };
    let sharing = match Sharing::from_query(&query) {
        Ok(sharing) => sharing,
        Err(e) => return (StatusCode::BAD_REQUEST, e).into_response(),
    };
    // A track that joined an album: its old embed URL leads to the
    // album's, naming the file (temporarily: it may leave the album).
    if let Some((album, file)) = state.catalog().moved(&info_hash) {
        let mut params: Vec<(&String, &String)> =
            query.iter().filter(|(k, _)| k.as_str() != "file").collect();
        params.sort();
        let mut location = format!("/embed/{}?file={file}", album.to_hex());
        for (key, value) in params {
            location.push('&');
            location.extend(percent_encoding::utf8_percent_encode(key, QUERY));
            location.push('=');
            location.extend(percent_encoding::utf8_percent_encode(value, QUERY));
        }
        return axum::response::Redirect::temporary(&location).into_response();
    }
    let file = query.get("file").map(String::as_str);
    let html = if let Some(track) = state.catalog().get(&info_hash) {
        // Its title tag if it has one (the player asks for the other tags);
        // one file of an album: that file's.
        let chosen = file
            .and_then(|f| f.trim().parse::<usize>().ok())
            .and_then(|i| track.files.as_ref()?.get(i));
        let title = match chosen {
            Some(f) => f.title.as_deref().unwrap_or(&f.name),
            None => track.tags.title.as_deref().unwrap_or(&track.name),
        };
        let sharing = Sharing {
            file: file.map(str::to_owned),
            ..sharing
        };
        render(title, &info_hash, &sharing, &state.assets)
    } else if !state.hub().tracker.allows(&info_hash) {
        return (
            StatusCode::FORBIDDEN,
            [(header::CACHE_CONTROL, crate::assets::REVALIDATE)],
            Html(render_refusal(&info_hash)),
        )
            .into_response();
    } else {
        let magnet = match query.get("magnet").map(|m| Magnet::parse(m)) {
            None => Magnet::new(info_hash),
            Some(Ok(m)) if m.info_hash == info_hash => m,
            Some(Ok(m)) => {
                let text = format!("the magnet is torrent {}, not {hex}", m.info_hash.to_hex());
                return (StatusCode::BAD_REQUEST, text).into_response();
            }
            Some(Err(e)) => {
                return (StatusCode::BAD_REQUEST, format!("not a magnet link: {e}"))
                    .into_response();
            }
        };
        render_magnet(&magnet, &sharing, &state.assets)
    };
    (
        // Artists frame this page on their own sites; it names the
        // current build's files, so it is never used unrevalidated.
        [(header::CACHE_CONTROL, crate::assets::REVALIDATE)],
        Html(html),
    )
        .into_response()
}

/// What the page that frames the player says about uploading and keeping,
/// from the query: `upload=auto|on|off`, `upload-cap=<bytes per second>`
/// `keep=start|track|none` and `prefetch=head|none`, handed to the element
/// as its `upload`, `upload-cap`, `keep` and `prefetch` attributes (see
/// `web/player.js`). None: the
/// player's defaults (`auto`: no upload on cellular data or with a data
/// saver on; `track`: every piece kept, so a returning fan plays with
/// nothing from the server).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Sharing {
    /// `auto`, `on` or `off`.
    pub upload: Option<&'static str>,
    /// Piece bytes per second at most.
    pub cap: Option<u64>,
    /// `start`, `track` or `none`: what the fan's browser keeps.
    pub keep: Option<&'static str>,
    /// `head` or `none`: whether a page joined on load fetches the start
    /// ahead of play.
    pub prefetch: Option<&'static str>,
    /// `file`: which file of an album the element plays, as given (the
    /// player says what is wrong with a bad one).
    pub file: Option<String>,
}

/// The query's `name`: `None` if absent, one of `words` as given, else an
/// error naming what was given and what is accepted (`help`).
fn word(
    query: &HashMap<String, String>,
    name: &str,
    words: &[&'static str],
    help: &str,
) -> Result<Option<&'static str>, String> {
    let Some(given) = query.get(name) else {
        return Ok(None);
    };
    match words.iter().find(|w| **w == given.as_str()) {
        Some(w) => Ok(Some(*w)),
        None => Err(format!("{name}={given:?}: {help}")),
    }
}

impl Sharing {
    /// Reads `upload`, `upload-cap`, `keep` and `prefetch`; anything else
    /// in them is an error that says what is accepted.
    pub fn from_query(query: &HashMap<String, String>) -> Result<Sharing, String> {
        let upload = word(
            query,
            "upload",
            &["auto", "on", "off"],
            "use upload=auto, upload=on or upload=off",
        )?;
        let cap = match query.get("upload-cap") {
            None => None,
            Some(text) => Some(
                text.parse::<u64>()
                    .ok()
                    .filter(|&n| n <= u64::from(u32::MAX))
                    .ok_or_else(|| {
                        format!(
                            "upload-cap={text:?}: give the most bytes per second this fan uploads, \
                     a whole number from 0 (none) to {}",
                            u32::MAX
                        )
                    })?,
            ),
        };
        let keep = word(
            query,
            "keep",
            &["start", "track", "none"],
            "use keep=track (the whole track, the default), \
             keep=start (the first pieces) or keep=none",
        )?;
        let prefetch = word(
            query,
            "prefetch",
            &["head", "none"],
            "use prefetch=head (the start fetched ahead of play when no fan is \
             around, the default) or prefetch=none (nothing before play)",
        )?;
        Ok(Sharing {
            upload,
            cap,
            keep,
            prefetch,
            file: None,
        })
    }

    /// The element's attributes, each with a leading space (values are
    /// plain words and digits by construction, but `file`, escaped).
    fn attributes(&self) -> String {
        let mut out = String::new();
        if let Some(upload) = self.upload {
            out.push_str(&format!(" upload=\"{upload}\""));
        }
        if let Some(cap) = self.cap {
            out.push_str(&format!(" upload-cap=\"{cap}\""));
        }
        if let Some(keep) = self.keep {
            out.push_str(&format!(" keep=\"{keep}\""));
        }
        if let Some(prefetch) = self.prefetch {
            out.push_str(&format!(" prefetch=\"{prefetch}\""));
        }
        if let Some(file) = &self.file {
            out.push_str(&format!(" file=\"{}\"", escape(file)));
        }
        out
    }
}

/// The page of a published track; `name` is escaped, the hash is hex by
/// type, the asset names are plain paths by [`WebAssets`]' check.
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
pub fn render(name: &str, info_hash: &InfoHash, sharing: &Sharing, assets: &WebAssets) -> String {
    let hex = info_hash.to_hex();
    let torrent = format!("/t/{hex}.torrent");
    let preload = format!("<link rel=\"preload\" href=\"{torrent}\" as=\"fetch\" crossorigin>\n");
    player_page(name, &torrent, sharing, &preload, "", assets)
}

/// The page for a torrent this server did not publish: the player joins
/// by `magnet` (its trackers; this server's, from the page's own origin,
/// when it names none) and takes the metadata from peers.
pub fn render_magnet(magnet: &Magnet, sharing: &Sharing, assets: &WebAssets) -> String {
    let name = magnet
        .display_name
        .clone()
        .unwrap_or_else(|| "shared track".to_owned());
    let tracker = if magnet.trackers.is_empty() {
        // This server's tracker, as the fan reaches this page.
        "<script>document.querySelector('fanswarm-player').setAttribute('trackers',\
         (location.protocol==='https:'?'wss://':'ws://')+location.host+'/announce')</script>\n"
    } else {
        ""
    };
    player_page(&name, &magnet.to_string(), sharing, "", tracker, assets)
}

/// What the frame shows for a swarm this server does not serve: why, in
/// words, rather than a player waiting for ever; its parent hears it too.
pub fn render_refusal(info_hash: &InfoHash) -> String {
    let hex = info_hash.to_hex();
    format!(
        r#"<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>Not on this server · fanswarm</title>
<style>body{{margin:0;font:15px/1.4 system-ui,sans-serif;color:#222;background:#fff}}
p{{margin:0;padding:16px;border:1px solid #ccc;border-radius:8px}}</style>
</head>
<body>
<p id="refusal" role="alert">This server plays only the tracks it publishes, and torrent {hex} is not one of them.</p>
<script>parent!==self&&parent.postMessage({{fanswarm:"refused",infoHash:"{hex}",reason:document.getElementById("refusal").textContent}},"*")</script>
</body>
</html>
"#
    )
}

/// One `<fanswarm-player>` playing `src`, with the code preloads; `extra`
/// goes in the head before them, `after` right after the element.
fn player_page(
    name: &str,
    src: &str,
    sharing: &Sharing,
    extra: &str,
    after: &str,
    assets: &WebAssets,
) -> String {
    let title = escape(name);
    let sharing = sharing.attributes();
    let src = escape(src);
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
{extra}<link rel="preload" href="{wasm}" as="fetch" crossorigin>
<script>self.fanswarmWasm=WebAssembly.compileStreaming?.(fetch("{wasm}"))</script>
{modules}<script type="module" src="{entry}"></script>
</head>
<body>
<fanswarm-player src="{src}" title="{title}"{sharing}></fanswarm-player>
{after}</body>
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
            &Sharing::default(),
            &WebAssets::unhashed(),
        );
        assert_eq!(html.matches("<fanswarm-player").count(), 1);
        assert!(html.contains(&format!(r#"src="/t/{}.torrent""#, hash.to_hex())));
        assert!(html.contains("a &lt;b&gt;&quot;song&quot;&lt;/b&gt; &amp; more.mp3"));
        assert!(!html.contains("<b>"));
        assert!(html.contains(r#"<script type="module" src="/player.js"></script>"#));
    }

    #[test]
    fn a_magnet_page_plays_the_magnet_escaped_and_names_a_tracker_only_when_it_has_none() {
        let mut magnet = Magnet::new(InfoHash([0x12; 20]));
        magnet.display_name = Some("fan's <take>".into());
        let html = render_magnet(&magnet, &Sharing::default(), &WebAssets::unhashed());
        assert_eq!(html.matches("<fanswarm-player").count(), 1);
        assert!(html.contains("fan&#39;s &lt;take&gt;"), "{html}");
        assert!(!html.contains("<take>"));
        assert!(!html.contains(".torrent"), "no .torrent to preload");
        assert!(
            html.contains("setAttribute('trackers'"),
            "the server's tracker"
        );
        assert!(html.contains(&format!(
            r#"src="magnet:?xt=urn:btih:{}&amp;dn="#,
            "12".repeat(20)
        )));

        magnet.trackers = vec!["wss://tracker.example/announce".into()];
        let html = render_magnet(&magnet, &Sharing::default(), &WebAssets::unhashed());
        assert!(!html.contains("setAttribute('trackers'"), "its own tracker");
        assert!(
            html.contains("tr=wss%3A%2F%2Ftracker.example%2Fannounce"),
            "{html}"
        );
    }

    #[test]
    fn the_upload_policy_goes_to_the_element_and_bad_values_are_refused_with_the_reason() {
        let query = |pairs: &[(&str, &str)]| -> HashMap<String, String> {
            pairs
                .iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                .collect()
        };
        let sharing = Sharing::from_query(&query(&[("upload", "off"), ("upload-cap", "65536")]));
        let sharing = sharing.expect("valid");
        let html = render("song", &InfoHash([1; 20]), &sharing, &WebAssets::unhashed());
        assert!(
            html.contains(r#"title="song" upload="off" upload-cap="65536"></fanswarm-player>"#),
            "{html}"
        );
        let plain = render(
            "song",
            &InfoHash([1; 20]),
            &Sharing::default(),
            &WebAssets::unhashed(),
        );
        assert!(!plain.contains("upload"), "the player's default: auto");
        let kept = Sharing::from_query(&query(&[("keep", "track")])).expect("valid");
        let html = render("song", &InfoHash([1; 20]), &kept, &WebAssets::unhashed());
        assert!(
            html.contains(r#"title="song" keep="track"></fanswarm-player>"#),
            "{html}"
        );
        let e = Sharing::from_query(&query(&[("keep", "forever")])).unwrap_err();
        assert!(e.contains("keep=track"), "{e}");
        let ahead = Sharing::from_query(&query(&[("prefetch", "head")])).expect("valid");
        let html = render("song", &InfoHash([1; 20]), &ahead, &WebAssets::unhashed());
        assert!(
            html.contains(r#"title="song" prefetch="head"></fanswarm-player>"#),
            "{html}"
        );
        let e = Sharing::from_query(&query(&[("prefetch", "all")])).unwrap_err();
        assert!(
            e.contains("prefetch=none") && e.contains("prefetch=head"),
            "{e}"
        );
        let e = Sharing::from_query(&query(&[("upload", "sometimes")])).unwrap_err();
        assert!(e.contains("upload=auto, upload=on or upload=off"), "{e}");
        for bad in ["-1", "lots", "99999999999", ""] {
            let e = Sharing::from_query(&query(&[("upload-cap", bad)])).unwrap_err();
            assert!(e.contains("bytes per second"), "{bad}: {e}");
        }
    }

    #[test]
    fn a_file_of_an_album_goes_to_the_element_as_given_and_escaped() {
        let sharing = Sharing {
            file: Some("1".into()),
            ..Sharing::default()
        };
        let html = render(
            "track two",
            &InfoHash([1; 20]),
            &sharing,
            &WebAssets::unhashed(),
        );
        assert!(
            html.contains(r#"title="track two" file="1"></fanswarm-player>"#),
            "{html}"
        );
        let sharing = Sharing {
            file: Some("\"><script>".into()),
            ..Sharing::default()
        };
        let html = render("t", &InfoHash([1; 20]), &sharing, &WebAssets::unhashed());
        assert!(
            html.contains(r#"file="&quot;&gt;&lt;script&gt;""#),
            "{html}"
        );
    }

    #[test]
    fn a_refusal_says_why_and_tells_the_parent() {
        let html = render_refusal(&InfoHash([0x34; 20]));
        assert!(html.contains("plays only the tracks it publishes"));
        assert!(html.contains(&"34".repeat(20)));
        assert!(html.contains(r#"fanswarm:"refused""#));
        assert!(!html.contains("<fanswarm-player"));
    }

    #[test]
    fn page_preloads_the_wasm_and_the_torrent_for_fetch() {
        let hash = InfoHash([0xcd; 20]);
        let html = render("song", &hash, &Sharing::default(), &WebAssets::unhashed());
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
