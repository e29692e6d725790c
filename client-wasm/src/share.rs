//! `share(file, options)`: a fan's own file becomes a torrent and is seeded
//! from the tab, as WebTorrent's `client.seed` does in instant.io.
//!
//! 1. The file (a `File` or any `Blob`) is read in slices of about 1 MiB
//!    (`blob.slice().arrayBuffer()`: each read is a task, so the page stays
//!    responsive between them) and SHA-1 hashed here in the wasm with the
//!    swarm core's `PieceHasher`, at the piece length `piece_length_for`
//!    picks for a track; `onProgress` hears how far it got.
//! 2. `TorrentBuilder` makes the v1 (BEP 3) torrent: one file named as the
//!    file is, the given trackers, no web seed.
//! 3. The node is made from it, and the file is read a second time, piece
//!    by piece, into the engine's store (`import_piece`, which checks each
//!    piece's SHA-1 again: a file changed on disk between the two reads is
//!    refused, not seeded with pieces nobody can verify). The store is
//!    sized to hold the whole file, so no piece is ever evicted.
//! 4. The session joins the swarm as a seeder: it serves pieces through
//!    the engine's upload path and the info dictionary through its BEP 9
//!    `ut_metadata`, so a peer that has only the magnet gets everything
//!    from this tab.

use wasm_bindgen::prelude::*;
use wasm_bindgen_futures::JsFuture;
use web_sys::{Blob, HtmlMediaElement};

use swarm::metainfo::{Metainfo, TorrentBuilder};
use swarm::node::{Node, NodeConfig, Source};

use crate::api::{Track, new_peer_identity};
use crate::js::{self, JsError, js_error, property};
use crate::session::{Session, Settings, UploadSetting};

#[wasm_bindgen(typescript_custom_section)]
const SHARE_OPTIONS: &str = r#"
/** How to share a file from the page (`share(file, options)`). */
export interface ShareOptions {
  /** WebSocket tracker URLs the torrent names and the tab announces to
   *  (at least one: peers find this tab through them). */
  trackers: string[];
  /** The torrent's name; default the File's name. */
  name?: string;
  /** Called as the file is read: `{phase: "hashing" | "loading", done, total}`
   *  (bytes). "loading" is the second read, into the seeding store. */
  onProgress?: (progress: { phase: string; done: number; total: number }) => void;
  /** STUN/TURN URLs; default none. */
  iceServers?: string[];
  /** A whole RTCConfiguration (e.g. the server's `/api/ice`). */
  rtcConfig?: object;
  /** Peer connections at most (default 20). */
  maxPeers?: number;
}
"#;

/// The largest file a tab shares: the whole file is held in the page's
/// memory while it seeds.
pub const MAX_SHARE_BYTES: u64 = 1 << 30;

/// Bytes read from the file at once (whole pieces: a multiple of any piece
/// length we choose up to 1 MiB).
const READ_BYTES: u64 = 1 << 20;

/// Hashes `file` into a torrent (see the module's steps), seeds it from
/// this tab and returns the seeding track: `track.magnet` is its link,
/// `track.torrent()` its `.torrent` bytes, `track.stats()` what it has
/// sent. The tab seeds until `track.destroy()` or until it closes.
#[wasm_bindgen]
pub async fn share(
    file: Blob,
    #[wasm_bindgen(unchecked_param_type = "ShareOptions")] options: JsValue,
) -> Result<Track, JsValue> {
    let trackers: Vec<String> = property(&options, "trackers")
        .and_then(|v| v.dyn_into::<js_sys::Array>().ok())
        .map(|a| a.iter().filter_map(|v| v.as_string()).collect())
        .unwrap_or_default();
    if trackers.is_empty() {
        return Err(JsError("share: `trackers` must name at least one tracker".into()).into());
    }
    // Seeding is all a shared file's track does: without data channels
    // nobody could get a byte, so say so before hashing anything.
    let lacks = js::lacking();
    if lacks.contains(&js::WEBRTC) {
        return Err(JsError(format!(
            "share: this browser cannot share files: it lacks {}",
            js::WEBRTC
        ))
        .into());
    }
    let length = file.size() as u64;
    if length == 0 {
        return Err(JsError("share: the file is empty".into()).into());
    }
    if length > MAX_SHARE_BYTES {
        return Err(JsError(format!(
            "share: the file is {} MiB; a tab shares files of up to {} MiB",
            length >> 20,
            MAX_SHARE_BYTES >> 20
        ))
        .into());
    }
    let name = property(&options, "name")
        .and_then(|v| v.as_string())
        .or_else(|| file.dyn_ref::<web_sys::File>().map(|f| f.name()))
        .filter(|n| !n.is_empty())
        .unwrap_or_else(|| "shared track".to_owned());
    let progress =
        property(&options, "onProgress").and_then(|v| v.dyn_into::<js_sys::Function>().ok());

    let mut builder = TorrentBuilder::single_file(name, length).created_by("fanswarm share");
    for tracker in &trackers {
        builder = builder.tracker(tracker.clone());
    }
    let mut hasher = builder.hasher().map_err(|e| JsError(e.to_string()))?;
    let piece_length = u64::from(builder.chosen_piece_length());
    let step = (READ_BYTES / piece_length).max(1) * piece_length;
    let mut offset = 0;
    while offset < length {
        let bytes = read(&file, offset, (offset + step).min(length)).await?;
        hasher.update(&bytes);
        offset += bytes.len() as u64;
        report(progress.as_ref(), "hashing", offset, length);
    }
    let meta = builder
        .build(&hasher.finish())
        .map_err(|e| JsError(format!("share: {e}")))?;

    let mut config = NodeConfig {
        web_seed: false,
        ..NodeConfig::default()
    };
    if let Some(n) = property(&options, "maxPeers")
        .and_then(|v| v.as_f64())
        .filter(|n| *n >= 1.0)
    {
        config.max_connections = n.min(200.0) as usize;
    }
    config.engine.max_peers = config.max_connections;
    config.fetch.max_peers = config.max_connections;
    config.engine.memory_limit = config.engine.memory_limit.max(length);
    let (peer_id, seed) = new_peer_identity()?;
    let mut node = Node::new(
        config,
        Source::Torrent(Box::new(meta.clone())),
        trackers,
        peer_id,
        seed,
        js::now(),
    )
    .map_err(|e| JsError(e.to_string()))?;
    load_pieces(&mut node, &meta, &file, progress.as_ref()).await?;

    let audio: HtmlMediaElement = js::window()?
        .document()
        .ok_or_else(|| JsError("share: no document".into()))?
        .create_element("audio")
        .map_err(js_error)?
        .dyn_into()
        .map_err(|_| JsError("share: <audio> is not a media element".into()))?;
    audio.set_preload("none");
    let settings = Settings {
        ice_servers: property(&options, "iceServers")
            .and_then(|v| v.dyn_into::<js_sys::Array>().ok())
            .map(|a| a.iter().filter_map(|v| v.as_string()).collect())
            .unwrap_or_default(),
        rtc_config: property(&options, "rtcConfig").filter(|v| v.is_object()),
        stream_prefix: "/fanswarm/stream/".to_owned(),
        autoplay: false,
        peers_after_first_audio: false,
        lacks,
        upload: UploadSetting::ALWAYS,
        file: None,
        look_ahead: false,
        preload: false,
        prefetch_head: false,
        worker_fetches: false,
    };
    let session = Session::new(settings, node, audio)?;
    session.borrow_mut().prepare(Some(false))?;
    let track = Track::from_session(session);
    track.join();
    Ok(track)
}

/// The second read: every piece into the node's store, each checked
/// against the hash the first read gave it.
async fn load_pieces(
    node: &mut Node,
    meta: &Metainfo,
    file: &Blob,
    progress: Option<&js_sys::Function>,
) -> Result<(), JsError> {
    let length = meta.info.total_length();
    let piece_length = u64::from(meta.info.piece_length);
    let per_read = (READ_BYTES / piece_length).max(1);
    let pieces = meta.info.piece_count();
    let mut piece = 0u32;
    while piece < pieces {
        let start = u64::from(piece) * piece_length;
        let end = (start + per_read * piece_length).min(length);
        let bytes = read(file, start, end).await?;
        for chunk in bytes.chunks(piece_length as usize) {
            if !node.import_piece(piece, chunk) {
                return Err(JsError(
                    "share: the file changed while it was being read; share it again".into(),
                ));
            }
            piece += 1;
        }
        report(progress, "loading", end, length);
    }
    Ok(())
}

/// Bytes `start..end` of the file.
async fn read(file: &Blob, start: u64, end: u64) -> Result<Vec<u8>, JsError> {
    let slice = file
        .slice_with_f64_and_f64(start as f64, end as f64)
        .map_err(js_error)?;
    let buffer = JsFuture::from(slice.array_buffer())
        .await
        .map_err(|e| JsError(format!("share: cannot read the file: {}", js_error(e))))?;
    let bytes = js_sys::Uint8Array::new(&buffer).to_vec();
    if bytes.len() as u64 != end - start {
        return Err(JsError(
            "share: the file changed while it was being read; share it again".into(),
        ));
    }
    Ok(bytes)
}

fn report(progress: Option<&js_sys::Function>, phase: &str, done: u64, total: u64) {
    let Some(callback) = progress else {
        return;
    };
    let o = js_sys::Object::new();
    for (k, v) in [
        ("phase", JsValue::from_str(phase)),
        ("done", (done as f64).into()),
        ("total", (total as f64).into()),
    ] {
        // Setting a property on a fresh plain object cannot throw.
        let _ = js_sys::Reflect::set(&o, &k.into(), &v);
    }
    // A callback that throws is the page's problem, not the share's.
    let _ = callback.call1(&JsValue::UNDEFINED, &o);
}
