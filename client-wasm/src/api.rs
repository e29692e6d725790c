//! The JavaScript API: `play(audio, options)` → a [`Track`] with `stats()`,
//! events and `destroy()`. wasm-bindgen generates the `.d.ts` from here.

use std::rc::Rc;

use wasm_bindgen::prelude::*;
use wasm_bindgen_futures::JsFuture;
use web_sys::HtmlMediaElement;

use swarm::engine::PieceOrigin;
use swarm::magnet::Magnet;
use swarm::metainfo::Metainfo;
use swarm::node::{Node, NodeConfig, Source};
use swarm::{InfoHash, PeerId};

use crate::file;
use crate::js::{self, JsError, js_error, property};
use crate::session::{Session, SessionRef, Settings, UploadSetting, dispatch};

#[wasm_bindgen(typescript_custom_section)]
const PLAY_OPTIONS: &str = r#"
/** How to join a track's swarm. */
export interface PlayOptions {
  /** URL of the track's .torrent file (relative URLs resolve against the page). */
  torrent?: string;
  /**
   * The bytes of `torrent`, already fetched (fanswarm.js's `fetchTorrent`,
   * started as the page loaded): parsed instead of fetching `torrent` again,
   * which then only names the torrent in errors. fanswarm.js's `play` also
   * takes a promise of them here; this one takes only the bytes.
   */
  torrentBytes?: Uint8Array | ArrayBuffer;
  /**
   * Or a magnet link. With a tracker (`tr`, or `trackers` below) the page
   * joins the swarm at once and fetches the metadata from peers
   * (ut_metadata); if the magnet also has `xs` (the .torrent URL) that is
   * fetched in parallel and whichever verifies first is used. A magnet
   * without a tracker needs `xs`. Its `ws` web seeds are used once the
   * metadata is known. `torrent` may also be a magnet link.
   */
  magnet?: string;
  /** Or the info hash (40 hex digits) of a track on the fanswarm server at `server`. */
  infoHash?: string;
  /** Base URL of that fanswarm server, e.g. "https://music.example". */
  server?: string;
  /** WebSocket tracker URLs; default: the torrent's own announce list. */
  trackers?: string[];
  /** STUN/TURN URLs; default: none (host candidates only). */
  iceServers?: string[];
  /** A whole RTCConfiguration (iceServers with TURN credentials,
   *  iceTransportPolicy), e.g. the server's `/api/ice`; wins over iceServers. */
  rtcConfig?: object;
  /** Peer connections at most (default 20). */
  maxPeers?: number;
  /** URL prefix the service worker streams under (default "/fanswarm/stream/"). */
  streamPrefix?: string;
  /**
   * Bytes of verified audio kept in memory at most (default 256 MiB). Beyond
   * it, pieces furthest behind the playhead are dropped (and fetched again
   * if the listener seeks back); a track smaller than this is never dropped.
   */
  maxMemory?: number;
  /**
   * Whether this fan uploads: "auto" (the default: not on cellular data —
   * `navigator.connection.type` — nor with a data saver on —
   * `navigator.connection.saveData` —, re-read when the connection
   * changes; browsers without the API share), "on" or "off". A fan that
   * does not upload still gets pieces from fans. Anything else: `load`
   * rejects, saying what is accepted.
   */
  upload?: "auto" | "on" | "off";
  /** Piece bytes per second this fan uploads at most (0: none). */
  uploadCap?: number;
  /**
   * false: play the web seed URL directly even if a service worker
   * controls the page (it may be another site's worker, not ours). A
   * promise of it (fanswarm.js passes its worker's registration, not yet
   * in control on a first visit): the track starts at once, fetching its
   * first pieces, and the element gets its source when it resolves.
   */
  streaming?: boolean | Promise<boolean>;
  /**
   * false: join the swarm and point the element at the stream, but do not
   * call `audio.play()` (a page joining on load; nothing is fetched from
   * the web seed until the element plays). Default true.
   */
  autoplay?: boolean;
  /** false: never use the torrent's web seed, only peers. Default true. */
  webSeed?: boolean;
  /**
   * One file of a multi-file torrent (a track of an album), by its index
   * (a number, or its digits as a string: the `file` attribute): the page
   * joins the whole swarm but fetches only that file's pieces and the
   * element plays that file alone. An index the torrent lacks, or anything
   * but a whole number: `load` rejects, saying which files there are.
   * File 0 of a single-file torrent is the torrent. Unsaid, a multi-file
   * torrent plays its first audio file (by name: mp3, ogg, opus, flac,
   * m4a, wav, webm; not a cover or a `.cue` before it), and one with
   * none is an error naming its files (`track.files()` lists them).
   */
  file?: number | string;
  /**
   * true: in the last 20 s of one file of a multi-file torrent, fetch the
   * next file's first 512 KiB (after the playing file's pieces), for a
   * page that plays the next track when this one ends (kept pieces are
   * imported by its load). Default false: a page playing one track
   * fetches nothing of its neighbours.
   */
  lookAhead?: boolean;
  /**
   * true: once the element reads through the stream worker and the
   * stream's first piece is here (kept from an earlier visit, or from
   * fans), let it load (`preload = 'auto'`) before it is told to play,
   * from what the page has, so play starts from decoded audio. The web
   * seed is used only once it is told to play. Default false.
   */
  preload?: boolean;
  /**
   * 'head': joined without play (`track.join()`), fetch from the web seed
   * what the element needs to start (the first 256 KiB and an Ogg file's
   * tail) once no fan is on its way (the tracker named none, or those it
   * named did not connect), so a press (with `preload`)
   * plays at once. It costs the artist's server those bytes for a page
   * that is never played. Default 'none': nothing from the web seed
   * before play.
   */
  prefetch?: 'head' | 'none';
  /**
   * Default true: the web seed's requests for the first MiB and last
   * 256 KiB of the file played go through the stream worker, which checks
   * each piece and answers the element from it itself (the page's engine
   * gets the same bytes). false: the page fetches everything.
   */
  workerFetch?: boolean;
}

/** What track.stats() returns. */
export interface TrackStats {
  /** Peers connected (handshake done). */
  peers: number;
  /**
   * Useful bytes received, from peers and the web seed. This and the
   * other transfer figures (`fromPeers`, `fromWebSeed`, `fromCache`,
   * `uploaded`, the speeds, `wasted`) count whole pieces over the track's
   * session: for a file of an album, the bytes a boundary piece holds of a
   * neighbour, the next file's look-ahead and the files played before in
   * the same session (`playFile`) too. `length`, `verifiedBytes`,
   * `verifiedPieces`, `totalPieces` and `done` are the file played's.
   */
  downloaded: number;
  /** Useful bytes received from peers. */
  fromPeers: number;
  /** Useful bytes received from the web seed. */
  fromWebSeed: number;
  /** Bytes of pieces this browser had kept from an earlier visit. */
  fromCache: number;
  /** Bytes served to peers. */
  uploaded: number;
  /** Bytes per second received over the last seconds. */
  downloadSpeed: number;
  /** Bytes per second served over the last seconds. */
  uploadSpeed: number;
  /** Bytes in the track: the file played (`track.length`). */
  length: number;
  /** Of `length`, the bytes in verified pieces (`length` once `done`). */
  verifiedBytes: number;
  /** Of `totalPieces`, those verified. */
  verifiedPieces: number;
  /**
   * Pieces holding the track's bytes: the file played's, boundary pieces
   * included, as many as `track.pieces()` has (the whole torrent's for a
   * single-file one).
   */
  totalPieces: number;
  /** Every piece of the track verified (the file played's). */
  done: boolean;
  /** Peers banned for sending data that failed its SHA-1 check. */
  banned: number;
  /** Bytes received that were not needed (duplicates, corrupt, unrequested). */
  wasted: number;
  /**
   * Whether this fan uploads to fans now: false without WebRTC data
   * channels (`track.lacks` says what is missing; the track then plays from
   * its web seed alone), and while uploading is off (`sharingOff`).
   */
  sharing: boolean;
  /**
   * Why not sharing: "webrtc" (the browser lacks it), "cellular" or
   * "saveData" (`upload: "auto"` on a metered link), "page" (`upload:
   * "off"` or a cap of 0); null while sharing. A fan not sharing still
   * gets pieces from fans.
   */
  sharingOff: "webrtc" | "cellular" | "saveData" | "page" | null;
  /** The upload cap in force (bytes per second), or null. */
  uploadCap: number | null;
}

/**
 * Events of a Track (`track.addEventListener(kind, listener)`), each a
 * CustomEvent:
 * - `metadata`: a magnet's metadata arrived (detail: the track's length in
 *   bytes); the element starts loading then. Not sent for a .torrent.
 * - `progress`: a piece verified (detail: its index).
 * - `peers`: connections changed (detail: how many).
 * - `done`: every piece verified.
 * - `nostreaming`: no service worker controls the page; the element plays
 *   the web seed directly.
 * - `warning`: something failed and was worked around, or a magnet's
 *   metadata is slow to come ("no metadata after 15 s: …", then at 45 s,
 *   105 s…, saying whether any peer has it) (detail: text).
 * - `sharing`: whether this fan uploads changed (detail: why not, as in
 *   `stats().sharingOff`, or null); turning off also sends one `warning`
 *   that says why ("not sharing: cellular data …").
 * - `peerclose`: a connection ended (detail: why: the engine's reason, or
 *   "the connection closed" when the channel did).
 */
export type TrackEventKind =
  "metadata" | "progress" | "peers" | "done" | "nostreaming" | "warning" | "sharing"
  | "peerclose";
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
        let torrent = text("torrent").filter(|t| !t.starts_with("magnet:"));
        if let Some(url) = torrent {
            return Ok(TorrentSource::Url(url));
        }
        let link = text("magnet").or_else(|| text("torrent"));
        if let Some(link) = link {
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
            // Only for a magnet with no tracker to find peers through.
            TorrentSource::Magnet(m) => m.exact_sources.first().cloned().ok_or_else(|| {
                JsError("a magnet link needs a tracker (`tr` or `trackers`) or `xs`".into())
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

/// Peer connections at most by default: enough for a healthy swarm, few
/// enough that a phone does not burn its CPU on connections.
const DEFAULT_MAX_PEERS: usize = 20;

/// Joins the swarm of a track (`options.torrent`, `magnet`, or `infoHash`
/// + `server`) and plays it in `audio`: [`load`], then [`Track::start`].
///
/// The element's `src` is set to a stream URL the service worker answers
/// from verified pieces; without a controlling service worker the element
/// plays the web seed directly and the page still swarms.
#[wasm_bindgen]
pub async fn play(
    audio: HtmlMediaElement,
    #[wasm_bindgen(unchecked_param_type = "PlayOptions")] options: JsValue,
) -> Result<Track, JsValue> {
    let track = load(audio, options).await?;
    track.start();
    Ok(track)
}

/// Prepares a track without starting it: parses the torrent, builds the
/// peer and points `audio` at the stream (once whether a worker controls
/// the page is known), but nothing goes on the network — no tracker, no
/// web seed — until [`Track::start`]. A page calls it as it loads, so that
/// pressing play has nothing left to do but start.
#[wasm_bindgen]
pub async fn load(
    audio: HtmlMediaElement,
    #[wasm_bindgen(unchecked_param_type = "PlayOptions")] options: JsValue,
) -> Result<Track, JsValue> {
    let source = TorrentSource::from_options(&options)?;
    let upload = UploadSetting::from_options(&options)?;
    let file = file_option(&options)?;
    let prefetch_head = prefetch_head(property(&options, "prefetch").as_ref())?;
    let lacks = js::lacking();
    // Without RTCPeerConnection no fan can be reached: no tracker either
    // (an announce would hand our id to fans whose offers we cannot
    // answer), and no magnet without `xs` can play.
    let can_share = !lacks.contains(&js::WEBRTC);
    if let TorrentSource::Magnet(m) = &source
        && !can_share
        && m.exact_sources.is_empty()
    {
        return Err(JsError(
            "this browser has no WebRTC data channels (RTCPeerConnection), so it cannot get \
             a magnet's track from fans, and the magnet names no `xs` to fetch it from"
                .into(),
        )
        .into());
    }
    let option_trackers = string_list(&options, "trackers").filter(|_| can_share);
    // A magnet with a tracker joins at once: metadata from peers, `xs` raced.
    let magnet = match &source {
        TorrentSource::Magnet(m)
            if can_share && (!m.trackers.is_empty() || option_trackers.is_some()) =>
        {
            Some(m.clone())
        }
        _ => None,
    };
    let meta = match magnet {
        Some(_) => None,
        None => Some(load_torrent(&source, property(&options, "torrentBytes")).await?),
    };
    let mut trackers = option_trackers.unwrap_or_else(|| match &meta {
        Some(meta) => meta.trackers(),
        None => Vec::new(),
    });
    if !can_share {
        trackers.clear();
    }
    if let TorrentSource::Magnet(m) = &source
        && can_share
    {
        for tracker in &m.trackers {
            if !trackers.contains(tracker) {
                trackers.push(tracker.clone());
            }
        }
    }
    // No server is built in: the page (the player asks its server's
    // `/api/ice`) says which.
    let ice_servers = string_list(&options, "iceServers").unwrap_or_default();
    let flag = |name: &str| property(&options, name).and_then(|v| v.as_bool());
    let mut config = NodeConfig {
        max_connections: property(&options, "maxPeers")
            .and_then(|v| v.as_f64())
            .filter(|n| *n >= 1.0)
            .map_or(DEFAULT_MAX_PEERS, |n| n.min(200.0) as usize),
        web_seed: flag("webSeed").unwrap_or(true),
        ..NodeConfig::default()
    };
    config.engine.max_peers = config.max_connections;
    config.fetch.max_peers = config.max_connections;
    // A page that joined on load but was never played costs the origin nothing.
    config.engine.web_seed_needs_playback = true;
    if let Some(bytes) = property(&options, "maxMemory")
        .and_then(|v| v.as_f64())
        .filter(|n| *n >= 1.0)
    {
        config.engine.memory_limit = bytes as u64;
    }
    let prefix = property(&options, "streamPrefix")
        .and_then(|v| v.as_string())
        .unwrap_or_else(|| "/fanswarm/stream/".to_owned());

    let (peer_id, seed) = new_peer_identity()?;
    let autoplay = flag("autoplay").unwrap_or(true);
    // Peers wait for the first audio only where they cannot be its source.
    let has_web_seed = meta.as_ref().is_some_and(|m| !m.url_list.is_empty());
    let peers_after_first_audio = autoplay && config.web_seed && has_web_seed;
    let source = match (meta, &magnet) {
        (Some(meta), _) => Source::Torrent(Box::new(meta)),
        (None, Some(m)) => Source::Magnet(m.clone()),
        (None, None) => return Err(JsError("no torrent and no magnet".into()).into()),
    };
    let node = Node::new(config, source, trackers, peer_id, seed, js::now())
        .map_err(|e| JsError(e.to_string()))?;
    let settings = Settings {
        ice_servers,
        rtc_config: property(&options, "rtcConfig").filter(|v| v.is_object()),
        stream_prefix: prefix,
        autoplay,
        peers_after_first_audio,
        lacks,
        upload,
        file,
        look_ahead: flag("lookAhead").unwrap_or(false),
        preload: flag("preload").unwrap_or(false),
        prefetch_head,
        worker_fetches: flag("workerFetch").unwrap_or(true),
    };
    let streaming = property(&options, "streaming");
    let pending = streaming
        .as_ref()
        .and_then(|v| v.dyn_ref::<js_sys::Promise>().cloned());
    let known = match (&pending, &streaming) {
        (Some(_), _) => None,
        (None, Some(v)) => Some(v.as_bool() != Some(false) && worker_controls()),
        (None, None) => Some(worker_controls()),
    };
    let session = Session::new(settings, node, audio)?;
    // A .torrent's files are known now: a bad index fails the load.
    session.borrow_mut().select_file().map_err(JsError)?;
    session.borrow_mut().prepare(known)?;
    if let Some(promise) = pending {
        let weak = Rc::downgrade(&session);
        wasm_bindgen_futures::spawn_local(async move {
            let ours = JsFuture::from(promise).await.ok().and_then(|v| v.as_bool());
            let streaming = ours == Some(true) && worker_controls();
            dispatch(&weak, move |s| s.set_streaming(streaming));
        });
    }
    let exact_source = magnet.and_then(|m| m.exact_sources.first().cloned());
    Ok(Track {
        session,
        exact_source: std::cell::Cell::new(exact_source),
    })
}

/// A fresh peer id and engine seed from `crypto.getRandomValues`.
pub(crate) fn new_peer_identity() -> Result<(PeerId, u64), JsError> {
    let random: [u8; 20] = js::random_bytes()?;
    let mut id = [0u8; 12];
    id.copy_from_slice(&random[..12]);
    let seed = u64::from_le_bytes(
        random[12..]
            .try_into()
            .map_err(|_| JsError("seed".into()))?,
    );
    Ok((PeerId::generate(id), seed))
}

/// Whether a service worker controls the page (ours, the caller says).
fn worker_controls() -> bool {
    js::has_service_workers() && crate::stream::has_worker()
}

/// Fetches the `.torrent` a source names (or takes its bytes, `given`, the
/// page fetched already) and checks it is the swarm asked for.
async fn load_torrent(source: &TorrentSource, given: Option<JsValue>) -> Result<Metainfo, JsError> {
    let torrent_url = source.torrent_url()?;
    let bytes = match given {
        Some(v)
            if v.is_instance_of::<js_sys::Uint8Array>()
                || v.is_instance_of::<js_sys::ArrayBuffer>() =>
        {
            js_sys::Uint8Array::new(&v).to_vec()
        }
        Some(_) => {
            return Err(JsError(
                "torrentBytes: not a Uint8Array or ArrayBuffer".into(),
            ));
        }
        None => fetch_bytes(&torrent_url).await?,
    };
    let meta = Metainfo::from_bytes(&bytes)
        .map_err(|e| JsError(format!("{torrent_url} is not a torrent: {e}")))?;
    match source.info_hash() {
        Some(expected) if expected != meta.info_hash => Err(JsError(format!(
            "{torrent_url} is torrent {}, not the {expected} asked for",
            meta.info_hash
        ))),
        _ => Ok(meta),
    }
}

/// The magnet's `xs` over plain HTTP, racing ut_metadata: the session takes
/// its info dictionary if it hashes to the info hash and peers have not
/// delivered theirs yet. A failure is only a warning: peers may still.
async fn race_exact_source(session: std::rc::Weak<std::cell::RefCell<Session>>, url: String) {
    let result = fetch_bytes(&url)
        .await
        .and_then(|bytes| Metainfo::from_bytes(&bytes).map_err(|e| JsError(e.to_string())));
    dispatch(&session, move |s| match result {
        Ok(meta) => {
            if !s.node().torrent().has_metadata() && !s.offer_metadata(&meta.info_bytes) {
                s.warn(&format!("xs {url} is another torrent"));
            }
        }
        Err(e) => s.warn(&format!("xs {url}: {}", e.0)),
    });
}

/// A playing track. Events (via `addEventListener`, see `TrackEventKind`):
/// `metadata` (a magnet's metadata arrived; detail: length in bytes),
/// `progress` (detail: the piece just verified), `peers` (detail: connection
/// count), `done`, `nostreaming`, `warning` (detail: text), `sharing`
/// (detail: why this fan does not upload, or null), `peerclose`
/// (detail: why a connection ended: the engine's reason, or "the connection
/// closed" when the channel did).
#[wasm_bindgen]
pub struct Track {
    session: SessionRef,
    /// A magnet's `xs`, raced against its peers once started.
    exact_source: std::cell::Cell<Option<String>>,
}

#[wasm_bindgen]
impl Track {
    /// Starts a track made by [`load`]: joins the swarm and, unless
    /// `autoplay` was false, plays the element (at once if it has its
    /// source, else as soon as it gets it). After [`Track::join`] it only
    /// plays. Calling it again does nothing.
    pub fn start(&self) {
        dispatch(&Rc::downgrade(&self.session), |s| {
            let play = s.autoplays();
            s.start(play);
        });
        self.race_exact_source();
    }

    /// Joins the swarm without playing: trackers, peers and trading start,
    /// the web seed is used only once the element plays (a page that joins
    /// as it loads, so that its neighbours are known when play is pressed).
    /// [`Track::start`] then plays.
    pub fn join(&self) {
        dispatch(&Rc::downgrade(&self.session), |s| s.start(false));
        self.race_exact_source();
    }

    /// The STUN/TURN servers for connections made from now on (a page may
    /// learn them after [`load`]).
    #[wasm_bindgen(js_name = setIceServers)]
    pub fn set_ice_servers(&self, urls: Vec<String>) {
        self.session.borrow_mut().set_ice_servers(urls);
    }

    /// A whole `RTCConfiguration` for connections made from now on (e.g.
    /// fresh TURN credentials from the server's `/api/ice`); it replaces
    /// the ICE servers.
    #[wasm_bindgen(js_name = setRtcConfig)]
    pub fn set_rtc_config(&self, config: JsValue) {
        self.session.borrow_mut().set_rtc_config(config);
    }

    /// Whether and how much this fan uploads from now on: `mode` "auto"
    /// (nothing on cellular data or with a data saver on; the default),
    /// "on" or "off", and `cap` in bytes per second (0: nothing). Throws
    /// on anything else, saying what is accepted.
    #[wasm_bindgen(js_name = setUpload)]
    pub fn set_upload(&self, mode: Option<String>, cap: Option<f64>) -> Result<(), JsValue> {
        let setting = UploadSetting::parse(mode.as_deref(), cap)?;
        dispatch(&Rc::downgrade(&self.session), move |s| {
            s.set_upload_setting(setting)
        });
        Ok(())
    }

    /// Transfer figures right now, as a plain object (see `TrackStats`).
    #[wasm_bindgen(unchecked_return_type = "TrackStats")]
    pub fn stats(&self) -> JsValue {
        self.figures().to_js()
    }
}

impl Track {
    /// The track of a session made elsewhere (a shared file).
    pub(crate) fn from_session(session: SessionRef) -> Track {
        Track {
            session,
            exact_source: std::cell::Cell::new(None),
        }
    }

    /// A magnet's `xs`, fetched once the track runs.
    fn race_exact_source(&self) {
        if let Some(xs) = self.exact_source.take() {
            let weak = Rc::downgrade(&self.session);
            wasm_bindgen_futures::spawn_local(async move {
                race_exact_source(weak, xs).await;
            });
        }
    }

    /// The figures behind `stats()`.
    pub fn figures(&self) -> TrackStats {
        let s = self.session.borrow();
        let node = s.node();
        let stats = node.stats();
        let (t, down, up) = (stats.engine, stats.download_rate, stats.upload_rate);
        let (offset, length) = s.span();
        // The file played's pieces, as `pieces()` draws them.
        let pieces = match s.file() {
            Some(f) => node.file_pieces(f.index).unwrap_or(0..0),
            None => 0..t.total_pieces,
        };
        let held = file::held(
            (offset, length),
            node.torrent().piece_length(),
            pieces,
            |p| node.piece_origin(p).is_some(),
        );
        TrackStats {
            peers: t.peers as u32,
            downloaded: (t.from_peers + t.from_web_seed) as f64,
            from_peers: t.from_peers as f64,
            from_web_seed: t.from_web_seed as f64,
            from_cache: t.imported as f64,
            uploaded: t.uploaded as f64,
            download_speed: down as f64,
            upload_speed: up as f64,
            length: length as f64,
            verified_bytes: held.bytes as f64,
            verified_pieces: held.verified_pieces,
            total_pieces: held.total_pieces,
            done: s.is_done(),
            banned: t.banned as u32,
            wasted: t.wasted as f64,
            sharing: s.sharing_off().is_none(),
            sharing_off: s.sharing_off().map(|o| o.name()),
            upload_cap: s.upload_cap(),
        }
    }
}

#[wasm_bindgen]
impl Track {
    /// The torrent's web seeds (its `url-list`), each
    /// `{url, bytes, failures, dropped}`: body bytes it delivered, requests
    /// that failed, and why it is no longer used (`null` while it is).
    /// Empty before the first fetch.
    #[wasm_bindgen(js_name = webSeeds)]
    pub fn web_seeds(&self) -> js_sys::Array {
        let list = js_sys::Array::new();
        for w in self.session.borrow().node().web_seeds() {
            let o = js_sys::Object::new();
            let dropped = w.dropped.map_or(JsValue::NULL, JsValue::from);
            for (k, v) in [
                ("url", JsValue::from(w.url)),
                ("bytes", (w.bytes as f64).into()),
                ("failures", w.failures.into()),
                ("dropped", dropped),
            ] {
                // Setting a property on a fresh plain object cannot throw.
                let _ = js_sys::Reflect::set(&o, &k.into(), &v);
            }
            list.push(&o);
        }
        list
    }

    /// Each piece's state, one byte per piece in order (see `PIECE_*`):
    /// 0 missing, 1 from peers, 2 from the web seed, 3 from both,
    /// 4 handed in by the page. From the engine, recorded when the piece
    /// verified: what the player's piece map draws. For one file of a
    /// multi-file torrent, the pieces holding its bytes only, from the one
    /// at `offset` on.
    pub fn pieces(&self) -> js_sys::Uint8Array {
        let s = self.session.borrow();
        let node = s.node();
        let all = 0..node.stats().engine.total_pieces;
        let pieces = match s.file() {
            Some(f) => node.file_pieces(f.index).unwrap_or(all),
            None => all,
        };
        let states: Vec<u8> = pieces.map(|p| piece_state(node.piece_origin(p))).collect();
        js_sys::Uint8Array::from(&states[..])
    }

    /// The bytes of verified piece `index` (a copy); `undefined` while it
    /// is not verified. With `importPiece`, what lets a page keep pieces
    /// for a later visit.
    pub fn piece(&self, index: u32) -> Option<js_sys::Uint8Array> {
        let s = self.session.borrow();
        s.node().piece(index).map(js_sys::Uint8Array::from)
    }

    /// Hands in piece `index` held elsewhere (kept from an earlier visit):
    /// kept only if its SHA-1 is the torrent's, then served and shared like
    /// any verified piece. Returns whether it was kept.
    #[wasm_bindgen(js_name = importPiece)]
    pub fn import_piece(&self, index: u32, bytes: &[u8]) -> bool {
        self.session.borrow_mut().import_piece(index, bytes)
    }

    /// What this browser lacks that fanswarm uses, detected once when the
    /// track was made: "WebRTC data channels" (no sharing: the track plays
    /// from its web seed alone), "service workers" (the element plays the
    /// web seed directly). Empty in a browser that has everything.
    #[wasm_bindgen(getter)]
    pub fn lacks(&self) -> Vec<String> {
        let s = self.session.borrow();
        s.lacks().iter().map(|l| (*l).to_owned()).collect()
    }

    /// Bytes per piece (the last piece may be shorter).
    #[wasm_bindgen(getter, js_name = pieceLength)]
    pub fn piece_length(&self) -> u32 {
        self.session.borrow().node().torrent().piece_length()
    }

    /// The URL the element plays, served by the service worker; empty until
    /// a magnet's metadata is known (the `metadata` event).
    #[wasm_bindgen(getter, js_name = streamUrl)]
    pub fn stream_url(&self) -> String {
        self.session.borrow().stream_url().to_owned()
    }

    /// The swarm's info hash, 40 hex digits.
    #[wasm_bindgen(getter, js_name = infoHash)]
    pub fn info_hash(&self) -> String {
        self.session.borrow().node().info_hash().to_hex()
    }

    /// A magnet link to the track (info hash, `dn`, `tr`, `ws`, `xl`);
    /// empty until a magnet's metadata is known.
    #[wasm_bindgen(getter)]
    pub fn magnet(&self) -> String {
        self.session
            .borrow()
            .node()
            .metainfo()
            .map_or_else(String::new, |m| m.magnet().to_string())
    }

    /// The `.torrent` file's bytes; `undefined` until a magnet's metadata
    /// is known.
    pub fn torrent(&self) -> Option<js_sys::Uint8Array> {
        let s = self.session.borrow();
        let bytes = s.node().metainfo()?.to_bytes();
        Some(js_sys::Uint8Array::from(&bytes[..]))
    }

    /// The track's file name: the torrent's name (`info.name`), or the
    /// played file's own for one file of a multi-file torrent.
    #[wasm_bindgen(getter)]
    pub fn name(&self) -> String {
        self.session.borrow().name().unwrap_or_default()
    }

    /// Bytes in the track (the one file played, or the whole torrent); 0
    /// until a magnet's metadata is known.
    #[wasm_bindgen(getter)]
    pub fn length(&self) -> f64 {
        self.session.borrow().span().1 as f64
    }

    /// The file of a multi-file torrent played (`file`), or `undefined`:
    /// the whole torrent.
    #[wasm_bindgen(getter)]
    pub fn file(&self) -> Option<u32> {
        let s = self.session.borrow();
        s.file().and_then(|f| u32::try_from(f.index).ok())
    }

    /// The torrent's files, each `{index, name, length, offset, audio}`
    /// (its own name, bytes, first byte in the torrent, whether an element
    /// can play it: not a cover or a `.cue`): one for a single-file
    /// torrent, an album's tracks in order; empty until a magnet's
    /// metadata is known.
    pub fn files(&self) -> js_sys::Array {
        let list = js_sys::Array::new();
        let s = self.session.borrow();
        for (index, f) in s.node().files().unwrap_or_default().iter().enumerate() {
            let o = js_sys::Object::new();
            let name = f.path.last().map_or("", String::as_str);
            for (k, v) in [
                ("index", JsValue::from(index as u32)),
                ("name", JsValue::from(name)),
                ("length", (f.length as f64).into()),
                ("offset", (f.offset as f64).into()),
                ("audio", file::playable(f).into()),
            ] {
                // Setting a property on a fresh plain object cannot throw.
                let _ = js_sys::Reflect::set(&o, &k.into(), &v);
            }
            list.push(&o);
        }
        list
    }

    /// Moves on to file `file` of the album (an index, as the `file`
    /// option) in the same session: the swarm and its peer connections
    /// stay, only that file is fetched from now on. With `audio` (an
    /// element already pointed at [`Track::file_stream_url`], e.g. a
    /// player's second element made ready while the last track played)
    /// that element becomes the track's, else the track's element is
    /// pointed at the file's stream. Throws, saying why, for an index the
    /// album lacks, a single-file torrent or a magnet still without its
    /// details.
    #[wasm_bindgen(js_name = playFile)]
    pub fn play_file(&self, file: JsValue, audio: Option<HtmlMediaElement>) -> Result<(), JsError> {
        let index = file_index(&file)?;
        let mut s = self
            .session
            .try_borrow_mut()
            .map_err(|_| JsError("playFile: called from inside a track's event".into()))?;
        s.play_file(index, audio).map_err(JsError)
    }

    /// The URL an element plays file `file` of the album from, through this
    /// track's session (see [`Track::play_file`]): an element may be made
    /// ready with it ahead of the file's turn. Throws as `playFile`.
    #[wasm_bindgen(js_name = fileStreamUrl)]
    pub fn file_stream_url(&self, file: JsValue) -> Result<String, JsError> {
        let index = file_index(&file)?;
        self.session
            .borrow()
            .file_stream_url(index)
            .map_err(JsError)
    }

    /// Where the track's bytes start in the torrent's (0 but for one file
    /// of a multi-file torrent): its first byte is in piece
    /// `floor(offset / pieceLength)`.
    #[wasm_bindgen(getter)]
    pub fn offset(&self) -> f64 {
        self.session.borrow().span().0 as f64
    }

    /// Listens for `metadata`, `progress`, `peers`, `done`, `nostreaming`,
    /// `warning`, `sharing` or `peerclose`.
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
    /// Useful bytes received, from peers and the web seed. Like every
    /// transfer figure here, whole pieces over the session (for a file of
    /// an album, boundary pieces, look-ahead and files played before
    /// included); the piece and byte counts below are the file played's.
    pub downloaded: f64,
    /// Useful bytes received from peers.
    pub from_peers: f64,
    /// Useful bytes received from the web seed.
    pub from_web_seed: f64,
    /// Bytes of pieces kept from an earlier visit.
    pub from_cache: f64,
    /// Bytes served to peers.
    pub uploaded: f64,
    /// Bytes per second received, last seconds.
    pub download_speed: f64,
    /// Bytes per second served, last seconds.
    pub upload_speed: f64,
    /// Bytes in the track: the file played, or the whole torrent.
    pub length: f64,
    /// Of `length`, the bytes in verified pieces ([`file::held`]).
    pub verified_bytes: f64,
    /// Of `total_pieces`, those verified.
    pub verified_pieces: u32,
    /// Pieces holding the track's bytes (the file played's, boundary
    /// pieces included: those `pieces()` draws).
    pub total_pieces: u32,
    /// Every piece of the track verified (the file played's).
    pub done: bool,
    /// Peers banned for sending data that failed its SHA-1 check.
    pub banned: u32,
    /// Bytes received that were not needed (duplicates, corrupt, unrequested).
    pub wasted: f64,
    /// Whether this fan uploads to fans now (it has WebRTC, and is not on
    /// a metered link under `auto`, nor told not to by the page).
    pub sharing: bool,
    /// Why not: "webrtc", "cellular", "saveData" or "page".
    pub sharing_off: Option<&'static str>,
    /// The upload cap in force, bytes per second.
    pub upload_cap: Option<u32>,
}

impl TrackStats {
    /// A plain object: survives `JSON.stringify` and `postMessage`, and
    /// needs no `free()`.
    pub fn to_js(&self) -> JsValue {
        let o = js_sys::Object::new();
        let fields: [(&str, JsValue); 18] = [
            ("peers", self.peers.into()),
            ("downloaded", self.downloaded.into()),
            ("fromPeers", self.from_peers.into()),
            ("fromWebSeed", self.from_web_seed.into()),
            ("fromCache", self.from_cache.into()),
            ("uploaded", self.uploaded.into()),
            ("downloadSpeed", self.download_speed.into()),
            ("uploadSpeed", self.upload_speed.into()),
            ("length", self.length.into()),
            ("verifiedBytes", self.verified_bytes.into()),
            ("verifiedPieces", self.verified_pieces.into()),
            ("totalPieces", self.total_pieces.into()),
            ("done", self.done.into()),
            ("banned", self.banned.into()),
            ("wasted", self.wasted.into()),
            ("sharing", self.sharing.into()),
            (
                "sharingOff",
                self.sharing_off.map_or(JsValue::NULL, JsValue::from_str),
            ),
            (
                "uploadCap",
                self.upload_cap.map_or(JsValue::NULL, JsValue::from),
            ),
        ];
        for (k, v) in fields {
            // Setting a property on a fresh plain object cannot throw.
            let _ = js_sys::Reflect::set(&o, &k.into(), &v);
        }
        o.into()
    }
}

/// A piece's byte in `Track::pieces()`.
fn piece_state(origin: Option<PieceOrigin>) -> u8 {
    match origin {
        None => 0,
        Some(PieceOrigin::Peers) => 1,
        Some(PieceOrigin::WebSeed) => 2,
        Some(PieceOrigin::Mixed) => 3,
        Some(PieceOrigin::Imported) => 4,
    }
}

/// The `file` option: a file's index, given as a number or as digits.
/// `prefetch`: "head" (true), "none" or absent (false); anything else is
/// an error that says what is accepted.
fn prefetch_head(value: Option<&JsValue>) -> Result<bool, JsError> {
    match value.map(JsValue::as_string) {
        None => Ok(false),
        Some(Some(mode)) if mode == "head" => Ok(true),
        Some(Some(mode)) if mode == "none" => Ok(false),
        Some(_) => Err(JsError(
            "prefetch: use \"head\" (the start fetched ahead of play) or \"none\"".into(),
        )),
    }
}

fn file_option(options: &JsValue) -> Result<Option<usize>, JsError> {
    let Some(value) = property(options, "file").filter(|v| !v.is_undefined() && !v.is_null())
    else {
        return Ok(None);
    };
    file_index(&value).map(Some)
}

/// A file's index given as a number or as digits.
fn file_index(value: &JsValue) -> Result<usize, JsError> {
    let text = match value.as_f64() {
        Some(n) => n.to_string(),
        None => value.as_string().unwrap_or_default(),
    };
    file::parse_index(&text).map_err(JsError)
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
