//! The JavaScript API: `play(audio, options)` → a [`Track`] with `stats()`,
//! events and `destroy()`. wasm-bindgen generates the `.d.ts` from here.

use wasm_bindgen::prelude::*;
use wasm_bindgen_futures::JsFuture;
use web_sys::HtmlMediaElement;

use swarm::announce::{AnnounceConfig, Announcer};
use swarm::engine::{Config, Torrent, TorrentSpec};
use swarm::magnet::Magnet;
use swarm::metainfo::Metainfo;
use swarm::{InfoHash, PeerId};

use crate::js::{self, JsError, js_error, property};
use crate::session::{Session, SessionRef, Settings};

#[wasm_bindgen(typescript_custom_section)]
const PLAY_OPTIONS: &str = r#"
/** How to join a track's swarm. */
export interface PlayOptions {
  /** URL of the track's .torrent file (relative URLs resolve against the page). */
  torrent?: string;
  /** Or a magnet link whose `xs` names the .torrent (metadata from peers: later). */
  magnet?: string;
  /** Or the info hash (40 hex digits) of a track on the fanswarm server at `server`. */
  infoHash?: string;
  /** Base URL of that fanswarm server, e.g. "https://music.example". */
  server?: string;
  /** WebSocket tracker URLs; default: the torrent's own announce list. */
  trackers?: string[];
  /** STUN/TURN URLs; default: one public STUN server. */
  iceServers?: string[];
  /** Peer connections at most (default 20). */
  maxPeers?: number;
  /** URL prefix the service worker streams under (default "/fanswarm/stream/"). */
  streamPrefix?: string;
}

/** What track.stats() returns. */
export interface TrackStats {
  /** Peers connected (handshake done). */
  peers: number;
  /** Useful bytes received, from peers and the web seed. */
  downloaded: number;
  /** Useful bytes received from peers. */
  fromPeers: number;
  /** Useful bytes received from the web seed. */
  fromWebSeed: number;
  /** Bytes served to peers. */
  uploaded: number;
  /** Bytes per second received over the last seconds. */
  downloadSpeed: number;
  /** Bytes per second served over the last seconds. */
  uploadSpeed: number;
  /** Pieces verified. */
  verifiedPieces: number;
  /** Pieces in the track. */
  totalPieces: number;
  /** Every piece verified. */
  done: boolean;
  /** Peers banned for sending data that failed its SHA-1 check. */
  banned: number;
  /** Bytes received that were not needed (duplicates, corrupt, unrequested). */
  wasted: number;
}
"#;

/// Where the metadata of a track comes from.
enum TorrentSource {
    /// `options.torrent`: a `.torrent` URL.
    Url(String),
    /// `options.magnet`: a magnet link whose `xs` names the `.torrent`.
    Magnet(Magnet),
    /// `options.infoHash` + `options.server`: a fanswarm server's track.
    Server(InfoHash, String),
}

impl TorrentSource {
    fn from_options(options: &JsValue) -> Result<Self, JsError> {
        let text = |name| property(options, name).and_then(|v| v.as_string());
        if let Some(url) = text("torrent") {
            return Ok(TorrentSource::Url(url));
        }
        if let Some(link) = text("magnet") {
            let magnet = Magnet::parse(&link).map_err(|e| JsError(format!("magnet: {e}")))?;
            return Ok(TorrentSource::Magnet(magnet));
        }
        if let (Some(hex), Some(server)) = (text("infoHash"), text("server")) {
            let hash = InfoHash::from_hex(&hex).map_err(|e| JsError(e.to_string()))?;
            return Ok(TorrentSource::Server(hash, server));
        }
        Err(JsError(
            "options need `torrent` (a .torrent URL), `magnet`, or `infoHash` with `server`".into(),
        ))
    }

    fn torrent_url(&self) -> Result<String, JsError> {
        match self {
            TorrentSource::Url(url) => Ok(url.clone()),
            // Metadata from peers (ut_metadata) is not wired up yet: the
            // magnet must name its .torrent.
            TorrentSource::Magnet(m) => m.exact_sources.first().cloned().ok_or_else(|| {
                JsError("magnet links without `xs` (a .torrent URL) are not supported yet".into())
            }),
            TorrentSource::Server(hash, server) => Ok(format!(
                "{}/t/{}.torrent",
                server.trim_end_matches('/'),
                hash.to_hex()
            )),
        }
    }

    fn info_hash(&self) -> Option<InfoHash> {
        match self {
            TorrentSource::Url(_) => None,
            TorrentSource::Magnet(m) => Some(m.info_hash),
            TorrentSource::Server(hash, _) => Some(*hash),
        }
    }
}

/// Default STUN server, so peers behind ordinary NATs find each other.
const DEFAULT_ICE: &str = "stun:stun.l.google.com:19302";

/// Peer connections at most by default: enough for a healthy swarm, few
/// enough that a phone does not burn its CPU on connections.
const DEFAULT_MAX_PEERS: usize = 20;

/// Joins the swarm of a track (`options.torrent`, `magnet`, or `infoHash`
/// + `server`) and plays it in `audio`.
///
/// The element's `src` is set to a stream URL the service worker answers
/// from verified pieces; without a controlling service worker the element
/// plays the web seed directly and the page still swarms.
#[wasm_bindgen]
pub async fn play(
    audio: HtmlMediaElement,
    #[wasm_bindgen(unchecked_param_type = "PlayOptions")] options: JsValue,
) -> Result<Track, JsValue> {
    let source = TorrentSource::from_options(&options)?;
    let torrent_url = source.torrent_url()?;
    let bytes = fetch_bytes(&torrent_url).await?;
    let meta = Metainfo::from_bytes(&bytes)
        .map_err(|e| JsError(format!("{torrent_url} is not a torrent: {e}")))?;
    if let Some(expected) = source.info_hash() {
        if expected != meta.info_hash {
            return Err(JsError(format!(
                "{torrent_url} is torrent {}, not the {expected} asked for",
                meta.info_hash
            ))
            .into());
        }
    }
    let mut trackers = string_list(&options, "trackers").unwrap_or_else(|| meta.trackers());
    if let TorrentSource::Magnet(m) = &source {
        for tracker in &m.trackers {
            if !trackers.contains(tracker) {
                trackers.push(tracker.clone());
            }
        }
    }
    let ice_servers =
        string_list(&options, "iceServers").unwrap_or_else(|| vec![DEFAULT_ICE.to_owned()]);
    let max_peers = property(&options, "maxPeers")
        .and_then(|v| v.as_f64())
        .filter(|n| *n >= 1.0)
        .map_or(DEFAULT_MAX_PEERS, |n| n.min(200.0) as usize);
    let prefix = property(&options, "streamPrefix")
        .and_then(|v| v.as_string())
        .unwrap_or_else(|| "/fanswarm/stream/".to_owned());

    let random: [u8; 20] = js::random_bytes()?;
    let mut id = [0u8; 12];
    id.copy_from_slice(&random[..12]);
    let peer_id = PeerId::generate(id);
    let seed = u64::from_le_bytes(
        random[12..]
            .try_into()
            .map_err(|_| JsError("seed".into()))?,
    );
    let now = js::now();
    let spec = TorrentSpec::from_metainfo(&meta);
    let engine = Torrent::new(Config::default(), spec, peer_id, seed, now)
        .map_err(|e| JsError(e.to_string()))?;
    let announcer = Announcer::new(
        AnnounceConfig::default(),
        meta.info_hash,
        peer_id,
        trackers,
        seed.rotate_left(17),
        now,
    );
    let controlled = js::window()?
        .navigator()
        .service_worker()
        .controller()
        .is_some();
    let settings = Settings {
        ice_servers,
        max_peers,
        stream_url: stream_url(&prefix, meta.info_hash, &meta.info.name),
        direct_src: if controlled {
            None
        } else {
            meta.url_list.first().cloned()
        },
    };
    let session = Session::new(settings, meta, engine, announcer, audio.clone())?;
    session.borrow_mut().start()?;
    if !controlled {
        session
            .borrow()
            .events()
            .dispatch_event(&web_sys::Event::new("nostreaming").map_err(js_error)?)
            .ok();
    }
    if let Ok(promise) = audio.play() {
        // Autoplay may be refused until the listener interacts: not an error.
        wasm_bindgen_futures::spawn_local(async move {
            let _ = JsFuture::from(promise).await;
        });
    }
    Ok(Track { session })
}

/// A playing track. Events (via `addEventListener`): `progress` (detail: the
/// piece just verified), `peers` (detail: connection count), `done`,
/// `warning` (detail: text), `peerclose` (detail: why a connection ended:
/// the engine's reason, or "the connection closed" when the channel did).
#[wasm_bindgen]
pub struct Track {
    session: SessionRef,
}

#[wasm_bindgen]
impl Track {
    /// Transfer figures right now, as a plain object (see `TrackStats`).
    #[wasm_bindgen(unchecked_return_type = "TrackStats")]
    pub fn stats(&self) -> JsValue {
        self.figures().to_js()
    }
}

impl Track {
    /// The figures behind `stats()`.
    pub fn figures(&self) -> TrackStats {
        let mut s = self.session.borrow_mut();
        let (down, up) = s.speeds();
        let t = s.torrent().stats();
        TrackStats {
            peers: t.peers as u32,
            downloaded: (t.from_peers + t.from_web_seed) as f64,
            from_peers: t.from_peers as f64,
            from_web_seed: t.from_web_seed as f64,
            uploaded: t.uploaded as f64,
            download_speed: down,
            upload_speed: up,
            verified_pieces: t.verified_pieces,
            total_pieces: t.total_pieces,
            done: s.is_done(),
            banned: t.banned as u32,
            wasted: t.wasted as f64,
        }
    }
}

#[wasm_bindgen]
impl Track {
    /// The URL the element plays, served by the service worker.
    #[wasm_bindgen(getter, js_name = streamUrl)]
    pub fn stream_url(&self) -> String {
        self.session.borrow().stream_url().to_owned()
    }

    /// The swarm's info hash, 40 hex digits.
    #[wasm_bindgen(getter, js_name = infoHash)]
    pub fn info_hash(&self) -> String {
        self.session.borrow().meta().info_hash.to_hex()
    }

    /// Bytes in the track.
    #[wasm_bindgen(getter)]
    pub fn length(&self) -> f64 {
        self.session.borrow().torrent().total_length() as f64
    }

    /// Listens for `progress`, `peers`, `done`, `warning` or `peerclose`.
    #[wasm_bindgen(js_name = addEventListener)]
    pub fn add_event_listener(
        &self,
        kind: &str,
        listener: &js_sys::Function,
    ) -> Result<(), JsValue> {
        self.session
            .borrow()
            .events()
            .add_event_listener_with_callback(kind, listener)
    }

    /// Stops listening.
    #[wasm_bindgen(js_name = removeEventListener)]
    pub fn remove_event_listener(
        &self,
        kind: &str,
        listener: &js_sys::Function,
    ) -> Result<(), JsValue> {
        self.session
            .borrow()
            .events()
            .remove_event_listener_with_callback(kind, listener)
    }

    /// Leaves the swarm and closes every connection and listener.
    pub fn destroy(&self) {
        self.session.borrow_mut().destroy();
    }
}

/// What `track.stats()` returns (as a plain object with these camelCase
/// names: byte counts are numbers, exact below 2^53).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct TrackStats {
    /// Peers connected (handshake done).
    pub peers: u32,
    /// Useful bytes received, from peers and the web seed.
    pub downloaded: f64,
    /// Useful bytes received from peers.
    pub from_peers: f64,
    /// Useful bytes received from the web seed.
    pub from_web_seed: f64,
    /// Bytes served to peers.
    pub uploaded: f64,
    /// Bytes per second received, last seconds.
    pub download_speed: f64,
    /// Bytes per second served, last seconds.
    pub upload_speed: f64,
    /// Pieces verified.
    pub verified_pieces: u32,
    /// Pieces in the track.
    pub total_pieces: u32,
    /// Every piece verified.
    pub done: bool,
    /// Peers banned for sending data that failed its SHA-1 check.
    pub banned: u32,
    /// Bytes received that were not needed (duplicates, corrupt, unrequested).
    pub wasted: f64,
}

impl TrackStats {
    /// A plain object: survives `JSON.stringify` and `postMessage`, and
    /// needs no `free()`.
    pub fn to_js(&self) -> JsValue {
        let o = js_sys::Object::new();
        let fields: [(&str, JsValue); 12] = [
            ("peers", self.peers.into()),
            ("downloaded", self.downloaded.into()),
            ("fromPeers", self.from_peers.into()),
            ("fromWebSeed", self.from_web_seed.into()),
            ("uploaded", self.uploaded.into()),
            ("downloadSpeed", self.download_speed.into()),
            ("uploadSpeed", self.upload_speed.into()),
            ("verifiedPieces", self.verified_pieces.into()),
            ("totalPieces", self.total_pieces.into()),
            ("done", self.done.into()),
            ("banned", self.banned.into()),
            ("wasted", self.wasted.into()),
        ];
        for (k, v) in fields {
            // Setting a property on a fresh plain object cannot throw.
            let _ = js_sys::Reflect::set(&o, &k.into(), &v);
        }
        o.into()
    }
}

fn stream_url(prefix: &str, info_hash: InfoHash, name: &str) -> String {
    let name: String = name
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '.' {
                c
            } else {
                '_'
            }
        })
        .collect();
    format!("{prefix}{}/{name}", info_hash.to_hex())
}

fn string_list(options: &JsValue, name: &str) -> Option<Vec<String>> {
    let value = property(options, name)?;
    let array = value.dyn_ref::<js_sys::Array>()?;
    Some(array.iter().filter_map(|v| v.as_string()).collect())
}

async fn fetch_bytes(url: &str) -> Result<Vec<u8>, JsError> {
    let response: web_sys::Response = JsFuture::from(js::window()?.fetch_with_str(url))
        .await
        .map_err(js_error)?
        .dyn_into()
        .map_err(js_error)?;
    if !response.ok() {
        return Err(JsError(format!("{url}: HTTP {}", response.status())));
    }
    let buffer = JsFuture::from(response.array_buffer().map_err(js_error)?)
        .await
        .map_err(js_error)?;
    Ok(js_sys::Uint8Array::new(&buffer).to_vec())
}
