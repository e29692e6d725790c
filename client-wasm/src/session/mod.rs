//! One track being played: a `swarm::node::Node` and every browser object
//! it asks for, behind one `Rc<RefCell<_>>`.
//!
//! The node decides everything (what to announce, which connections to
//! make and when to give up on them, what to fetch from the web seed); the
//! session only opens the WebSockets, RTCPeerConnections and `fetch`es it
//! asks for, and reports back what happened. Callbacks (sockets, channels,
//! timers, fetches, the service worker) hold only a `Weak` to the session
//! and go through [`dispatch`]: borrow, apply the event, then
//! [`Session::drive`] — drain the node's `poll()` until it says "wake me at
//! T", and set one timer for T. Dropping the session drops every listener,
//! socket, connection, request and timer it owns.

mod outputs;
mod streaming;
mod upload;

pub use upload::{SharingOff, UploadSetting};

use std::cell::RefCell;
use std::rc::{Rc, Weak};

use gloo_events::EventListener;
use gloo_timers::callback::Timeout;
use swarm::announce::TrackerIndex;
use swarm::engine::PeerKey;
use swarm::node::{HttpId, Node};
use swarm::picker::Playback;
use swarm::sorted::SortedMap;
use swarm::time::Time;
use web_sys::{AbortController, EventTarget, HtmlMediaElement};

use crate::file::{self, FileView};
use crate::js;
use crate::rtc::PeerConn;
use crate::stream::{self, Reader};
use crate::tracker_ws::TrackerSocket;

/// Shared handle to a session.
pub type SessionRef = Rc<RefCell<Session>>;

/// What a session was started with.
#[derive(Debug, Clone)]
pub struct Settings {
    /// STUN/TURN server URLs.
    pub ice_servers: Vec<String>,
    /// A whole `RTCConfiguration` (the server's `/api/ice`: TURN
    /// credentials, relay-only policy); when set, it is used as it is and
    /// [`Settings::ice_servers`] is not.
    pub rtc_config: Option<wasm_bindgen::JsValue>,
    /// URL prefix the service worker streams under.
    pub stream_prefix: String,
    /// Start playing as soon as the element has its source; `false` joins
    /// the swarm and waits for the page to call `audio.play()` (a page that
    /// joins on load: it costs the origin nothing until played).
    pub autoplay: bool,
    /// Connect to the trackers (and so make and answer WebRTC offers) only
    /// once the element plays, or [`PEERS_AT_THE_LATEST_MS`] after the start.
    /// For a track whose metadata is known and which has a web seed: its
    /// first audio comes from the web seed anyway (a connection takes longer
    /// to make than the first pieces take over HTTP), and making
    /// RTCPeerConnections busies the main thread for tens of milliseconds
    /// (measured in Chromium: up to 47 ms for the first one) just when it
    /// must answer the worker's first requests.
    pub peers_after_first_audio: bool,
    /// What the browser lacks (`js::lacking`), detected once: said once,
    /// in one `warning` when the track starts, never again per peer.
    pub lacks: Vec<&'static str>,
    /// Whether and how much to upload (`upload`, `uploadCap`).
    pub upload: UploadSetting,
    /// The file of a multi-file torrent to play (`file`), if one was
    /// named; resolved once the metadata is known ([`Session::select_file`]).
    pub file: Option<usize>,
    /// Near the end of one file, fetch the next one's start (`lookAhead`:
    /// a player that moves on to the next track by itself).
    pub look_ahead: bool,
    /// Let the element load before it is told to play (`preload`), once it
    /// reads through the worker and its first piece is here: from what is
    /// here only (kept, imported, from fans), never the web seed, so a
    /// press plays what it has decoded already.
    pub preload: bool,
    /// Joined without play (a page that joins on load), fetch the start
    /// from the web seed ahead of play (`prefetch: 'head'`): what the
    /// element needs to start ([`PREFETCH_BYTES`] and an Ogg file's tail),
    /// once no fan is on its way (`Node::fans_coming`: the tracker said the
    /// swarm is only us, or those it named did not connect within the
    /// node's offer grace) and none is connected. Where fans are, they send
    /// the start instead. With `preload` the element then decodes it, so a
    /// press plays at once. Off unless asked for (the player asks, unless
    /// its page says `prefetch="none"`): a page that is never played then
    /// costs the artist's server nothing.
    pub prefetch_head: bool,
    /// Hand the web seed's requests for the played file's head and tail
    /// to the stream worker (`workerFetch`, see `streaming.rs`).
    pub worker_fetches: bool,
}

/// What an element reads from the end of an Ogg file before it plays: a
/// page (at most 65,307 bytes) and the block that holds its start.
const OGG_TAIL_BYTES: u64 = 96 * 1024;

/// Bytes after the playhead due at once until the first audio, while no
/// fan is connected (`Node::set_start_window`; see `sync_start_window`):
/// an element reads what it needs to start as
/// fast as it comes (~100-200 KiB and, of an Ogg file, its tail), as plain
/// HTTP streams it. At the file's own pace (40 kB/s assumed until its
/// duration is known, 17 kB/s for a 137 kbit/s Ogg file) only the next
/// piece was due within the web seed's fallback while fans were on their
/// way, so the head came a piece per round trip, each asked only when the
/// element waited on it (pressed at load: pieces at +60, +85-113,
/// +107-132, +154-179 ms), and the Ogg tail's last two pieces only when
/// the element asked for them.
const START_WINDOW_BYTES: u64 = 128 * 1024;

/// What a page that joined without play fetches of the start ahead of
/// play ([`Settings::prefetch_head`]). More than the start window: an
/// element let load before play reads further before it has even the
/// metadata (Chromium, a WAV file: `readyState` still 0 with 128 KiB
/// here, 3 with 256 KiB).
const PREFETCH_BYTES: u64 = 256 * 1024;

/// How often a page that joined without play looks whether fans are on
/// their way before it prefetches its start from the web seed
/// ([`Settings::prefetch_head`]).
const PREFETCH_CHECK_MS: u32 = 100;

/// How long after the start the trackers wait for the first audio at most
/// (see [`Settings::peers_after_first_audio`]).
pub const PEERS_AT_THE_LATEST_MS: u32 = 1000;

/// Everything one playing track owns.
pub struct Session {
    me: Weak<RefCell<Session>>,
    settings: Settings,
    node: Node,
    /// The one file of the torrent the element plays (`Settings::file` of
    /// a multi-file torrent, once the metadata is known); `None`: the
    /// whole torrent.
    file: Option<FileView>,
    /// The next file's first pieces were asked for (`Node::look_ahead`),
    /// the track being near its end.
    looked_ahead: bool,
    /// The element was let load before play (`preload_when_worth_it`).
    preloading: bool,
    /// The URL the element plays, once the metadata is known and whether a
    /// worker controls the page is.
    stream_url: Option<String>,
    /// Whether our service worker controls the page (the element then plays
    /// the stream; without one, the web seed directly); `None` until known.
    streaming: Option<bool>,
    /// [`Session::start`] was called: the node runs. Before, the track is
    /// only prepared (parsed, the element pointed at its source) and
    /// nothing goes on the network.
    started: bool,
    /// The element was told to play by the track (`start` with `play`):
    /// it plays as soon as it has its source, and until then the first
    /// pieces are wanted as if it played.
    play_requested: bool,
    /// Inside [`Session::start`], the element about to be told to play.
    about_to_play: bool,
    /// The element has played (a `playing` event came).
    first_audio: bool,
    /// The start window the node has now (see `sync_start_window`).
    start_window: u64,
    /// Joined without play, the start is being fetched ahead of play
    /// ([`Settings::prefetch_head`]); until play is pressed.
    prefetching: bool,
    /// The next look whether fans are on their way, before prefetching
    /// (see `begin_prefetch`).
    prefetch_timer: Option<Timeout>,
    /// Trackers the node asked to connect to, held until the first audio
    /// (see [`Settings::peers_after_first_audio`]); `None` once released.
    held_trackers: Option<Vec<(TrackerIndex, String)>>,
    peers_timer: Option<Timeout>,
    audio: HtmlMediaElement,
    events: EventTarget,
    sockets: SortedMap<TrackerIndex, TrackerSocket>,
    conns: SortedMap<PeerKey, PeerConn>,
    requests: SortedMap<HttpId, AbortController>,
    /// Web-seed requests the worker runs instead (`streaming.rs`).
    handed: SortedMap<HttpId, streaming::HandedRequest>,
    /// Handovers made in this drain, to post at its end, by first byte.
    handovers: Vec<(u64, (js_sys::Object, web_sys::MessagePort))>,
    readers: SortedMap<u64, Reader>,
    next_reader: u64,
    /// Streams an element has read, by key: their head and tail pieces
    /// are given to the worker ahead as they verify (`streaming.rs`).
    given: SortedMap<String, streaming::Given>,
    timer: Option<(Time, Timeout)>,
    listeners: Vec<EventListener>,
    /// The element's listeners: replaced when another element takes over
    /// ([`Session::play_file`]).
    element_listeners: Vec<EventListener>,
    waiting_reader_pos: Option<u64>,
    /// The browser refused an RTCPeerConnection once and the page was
    /// told; the same refusal for the next offers is not news.
    told_no_connection: bool,
    /// Why this fan uploads nothing now (see `upload.rs`), as last told.
    sharing_off: Option<SharingOff>,
    done: bool,
    destroyed: bool,
}

/// Runs `f` on the session behind `weak`, then drives it. When the session
/// is busy (an event fired from inside a call of ours) the event is retried
/// from a microtask instead of being lost; when it is gone, nothing happens.
///
/// Generic over `f` but kept thin: the retry goes through one boxed type
/// and `drive` is not inlined, or each of the dozen callers would carry its
/// own copy of both (~20 KB of wasm).
pub fn dispatch(weak: &Weak<RefCell<Session>>, f: impl FnOnce(&mut Session) + 'static) {
    let Some(session) = weak.upgrade() else {
        return;
    };
    let Ok(mut s) = session.try_borrow_mut() else {
        retry(weak.clone(), Box::new(f));
        return;
    };
    if s.destroyed {
        return;
    }
    f(&mut s);
    s.drive();
}

/// [`dispatch`] again from a microtask.
fn retry(weak: Weak<RefCell<Session>>, f: Box<dyn FnOnce(&mut Session)>) {
    wasm_bindgen_futures::spawn_local(async move { dispatch(&weak, f) });
}

impl Session {
    /// A session around `node`; nothing runs until [`Session::start`].
    pub fn new(
        settings: Settings,
        node: Node,
        audio: HtmlMediaElement,
    ) -> Result<SessionRef, js::JsError> {
        let events = EventTarget::new().map_err(js::js_error)?;
        Ok(Rc::new_cyclic(|me| {
            RefCell::new(Session {
                me: me.clone(),
                held_trackers: settings.peers_after_first_audio.then(Vec::new),
                settings,
                node,
                file: None,
                looked_ahead: false,
                preloading: false,
                stream_url: None,
                streaming: None,
                started: false,
                play_requested: false,
                about_to_play: false,
                first_audio: false,
                start_window: 0,
                prefetching: false,
                prefetch_timer: None,
                peers_timer: None,
                audio,
                events,
                sockets: SortedMap::new(),
                conns: SortedMap::new(),
                requests: SortedMap::new(),
                handed: SortedMap::new(),
                handovers: Vec::new(),
                readers: SortedMap::new(),
                next_reader: 0,
                given: SortedMap::new(),
                timer: None,
                listeners: Vec::new(),
                element_listeners: Vec::new(),
                waiting_reader_pos: None,
                told_no_connection: false,
                sharing_off: None,
                done: false,
                destroyed: false,
            })
        }))
    }

    /// Listens to the worker and the element and points the element at the
    /// stream, if `streaming` (whether our worker controls the page) is
    /// known; else [`Session::set_streaming`] tells it later. All a track
    /// needs before play, none of it on the network.
    pub fn prepare(&mut self, streaming: Option<bool>) -> Result<(), js::JsError> {
        self.listen()?;
        self.listen_to_link();
        self.apply_upload();
        self.streaming = streaming;
        self.point_element_at_stream();
        Ok(())
    }

    /// Runs the node (joins the swarm) and, with `play`, plays the
    /// element; the first pieces are wanted at once, not once the element
    /// has asked for them. Joined without `play` (a page that joins on
    /// load), the trackers connect at once and a later `start(true)` plays.
    /// Each of the two happens once.
    pub fn start(&mut self, play: bool) {
        if self.destroyed || (self.started && (!play || self.play_requested)) {
            return;
        }
        let joining = !self.started;
        if joining {
            // The link as it is now (a data saver fires no `change`).
            self.apply_upload();
        }
        self.started = true;
        if joining && !self.settings.lacks.is_empty() {
            self.warn(&lacking_message(&self.settings.lacks));
        }
        if joining && self.sharing_off.is_some() {
            self.tell_sharing();
        }
        if joining && self.held_trackers.is_some() {
            if play {
                let weak = self.me.clone();
                self.peers_timer = Some(Timeout::new(PEERS_AT_THE_LATEST_MS, move || {
                    wasm_bindgen_futures::spawn_local(async move {
                        dispatch(&weak, |s| s.release_trackers());
                    });
                }));
            } else {
                // Joined ahead of play: the peers are what joining is for.
                self.release_trackers_soon();
            }
        }
        if joining && !play && self.settings.prefetch_head {
            self.check_prefetch_soon();
        }
        if play {
            self.play_requested = true;
            self.prefetching = false;
            self.prefetch_timer = None;
            self.sync_start_window();
            self.want_ogg_tail();
        }
        // The element is told to play only after the node's first web-seed
        // requests went out: those handed to the worker (`streaming.rs`)
        // reach it before the element's first request, which then waits
        // for them there, not for the page. Until then it counts as playing.
        let play_now = play && self.stream_url.is_some();
        self.about_to_play = play_now;
        self.update_playback();
        self.drive();
        self.about_to_play = false;
        if play_now {
            self.play_element();
        }
    }

    /// Whether [`Track::start`](crate::api::Track::start) plays: the
    /// `autoplay` option.
    pub fn autoplays(&self) -> bool {
        self.settings.autoplay
    }

    fn check_prefetch_soon(&mut self) {
        let weak = self.me.clone();
        self.prefetch_timer = Some(Timeout::new(PREFETCH_CHECK_MS, move || {
            wasm_bindgen_futures::spawn_local(async move {
                dispatch(&weak, |s| s.begin_prefetch());
            });
        }));
    }

    /// Fetches the start ahead of play ([`Settings::prefetch_head`]) once
    /// no fan is on its way or connected: [`PREFETCH_BYTES`] from the
    /// file's start and, of an Ogg file, its tail; nothing past them (the
    /// playhead at the start, at 1 byte a second, until play is pressed).
    /// While fans may be coming it looks again soon; once one is connected
    /// it leaves the start to the fans.
    fn begin_prefetch(&mut self) {
        self.prefetch_timer = None;
        if self.destroyed || self.play_requested || self.node.stats().engine.peers > 0 {
            return;
        }
        if self.node.fans_coming() {
            self.check_prefetch_soon();
            return;
        }
        self.prefetching = true;
        self.sync_start_window();
        self.want_ogg_tail();
        self.update_playback();
    }

    /// Gives the node the start window ([`START_WINDOW_BYTES`]) while the
    /// element, told to play, has not made its first sound, or
    /// [`PREFETCH_BYTES`] while the start is prefetched before play; only
    /// while no fan is connected; none otherwise. With fans connected the crowd's policy
    /// decides: a piece due at once leaves a neighbour no time to deliver
    /// it (measured: the WAV crowd 1.15 origin copies with the window
    /// regardless of fans, 1.07 without).
    pub(super) fn sync_start_window(&mut self) {
        let alone = self.node.stats().engine.peers == 0;
        // `prefetching` ends when play is asked for.
        let window = if !alone {
            0
        } else if self.play_requested && !self.first_audio {
            START_WINDOW_BYTES
        } else if self.prefetching {
            PREFETCH_BYTES
        } else {
            0
        };
        if window != self.start_window {
            self.start_window = window;
            self.node.set_start_window(js::now(), window);
        }
    }

    /// An Ogg file's duration is in its last page, and browsers read it
    /// before they play: after the first 64 KiB, Chromium asks for the last
    /// 64 KiB (rounded down to its 32 KiB blocks) and Firefox for the last
    /// block, each a request through the worker of its own, and then waited
    /// a web-seed round trip more for those pieces (10-40 ms, measured).
    /// So the tail is wanted with the start: the playhead is put there for
    /// a moment, then at the start (`update_playback`), and the engine
    /// fetches both runs at once (it keeps a fetch in flight when the
    /// playhead moves); with the start window every piece of the tail is
    /// due at once, so the tail is one request. The shell knows the
    /// format; the engine need not.
    /// Pieces already verified (imported) are not fetched again.
    fn want_ogg_tail(&mut self) {
        let Some(name) = self.name() else {
            return;
        };
        if stream::mime_for(&name) != "audio/ogg" {
            return;
        }
        let (_, total) = self.span();
        let playback = Playback {
            offset: total.saturating_sub(OGG_TAIL_BYTES),
            bytes_per_sec: None,
        };
        self.set_stream_playback(Some(playback));
    }

    /// Resolves `Settings::file` against the torrent's files once the
    /// metadata is known, and selects that file: only its pieces are
    /// fetched. Unsaid, a multi-file torrent plays its first audio file
    /// (an album's files one after another are no one stream an element
    /// can play; a foreign one may open with its cover). An index the
    /// torrent does not have, or no audio file, is an error saying which
    /// files it has (`file::resolve`).
    pub fn select_file(&mut self) -> Result<(), String> {
        if self.file.is_some() {
            return Ok(());
        }
        let Some(files) = self.node.files() else {
            return Ok(()); // a magnet: once its metadata comes
        };
        let Some(view) = file::resolve(files, self.settings.file)? else {
            return Ok(());
        };
        self.node
            .select_files(js::now(), &[view.index])
            .map_err(|e| e.to_string())?;
        self.file = Some(view);
        Ok(())
    }

    /// Moves on to file `index` of the album inside the running session:
    /// only it is selected from now on (`Node::select_files`: the peer
    /// connections stay, pieces had stay), its look-ahead and `done` start
    /// over, and, given `audio`, that element becomes the one whose
    /// playhead the node follows (the player's second element, made ready
    /// with [`Session::file_stream_url`] while the last track played: its
    /// reader is already open). The element is pointed at the file's
    /// stream unless it already is. An index the album lacks, a
    /// single-file torrent or a magnet without its metadata yet is an
    /// error saying so; nothing changes then.
    pub fn play_file(
        &mut self,
        index: usize,
        audio: Option<HtmlMediaElement>,
    ) -> Result<(), String> {
        if self.destroyed {
            return Err("this track was destroyed".into());
        }
        let Some(files) = self.node.files() else {
            return Err(format!(
                "file={index}: the torrent's files are not known yet"
            ));
        };
        let Some(view) = file::choose(files, index)? else {
            return Err(format!(
                "file={index}: this torrent is a single track, not an album"
            ));
        };
        let other_element = audio.as_ref().is_some_and(|a| *a != self.audio);
        if self.file.as_ref() == Some(&view) && !other_element {
            return Ok(());
        }
        self.node
            .select_files(js::now(), &[view.index])
            .map_err(|e| e.to_string())?;
        self.file = Some(view);
        self.settings.file = Some(index);
        self.looked_ahead = false;
        self.done = false;
        if let Some(audio) = audio.filter(|_| other_element) {
            self.audio = audio;
            self.element_listeners.clear();
            self.listen_to_element();
        }
        self.stream_url = None;
        self.point_element_at_stream();
        if self.node.file_complete(index) == Ok(true) {
            self.mark_done();
        }
        self.note_waiting_readers();
        self.update_playback();
        self.drive();
        Ok(())
    }

    /// The URL an element plays file `index` of this album from (through
    /// this session's worker stream, or the file's web seed without a
    /// worker), for an element made ready ahead of its turn. Nothing of
    /// the file is fetched for it until [`Session::play_file`] selects it
    /// (but its look-ahead). Errors as `play_file`'s.
    pub fn file_stream_url(&self, index: usize) -> Result<String, String> {
        let (Some(files), Some(meta)) = (self.node.files(), self.node.metainfo()) else {
            return Err(format!(
                "file={index}: the torrent's files are not known yet"
            ));
        };
        let Some(view) = file::choose(files, index)? else {
            return Err(format!(
                "file={index}: this torrent is a single track, not an album"
            ));
        };
        let hex = self.node.info_hash().to_hex();
        let url = stream::stream_url(
            &self.settings.stream_prefix,
            &format!("{hex}-{index}"),
            &view.name,
        );
        let direct = (self.streaming == Some(false))
            .then(|| meta.url_list.first())
            .flatten()
            .and_then(|base| meta.info.web_seed_url(base, index));
        Ok(direct.unwrap_or(url))
    }

    /// The file played, if one file of a multi-file torrent is.
    pub fn file(&self) -> Option<&FileView> {
        self.file.as_ref()
    }

    /// The bytes the element plays: their offset in the torrent and how
    /// many (the whole torrent, or the one file).
    pub fn span(&self) -> (u64, u64) {
        match &self.file {
            Some(f) => (f.offset, f.length),
            None => (0, self.node.torrent().total_length()),
        }
    }

    /// The name of what the element plays: the file's, else the torrent's.
    pub fn name(&self) -> Option<String> {
        match &self.file {
            Some(f) => Some(f.name.clone()),
            None => self.node.metainfo().map(|m| m.info.name.clone()),
        }
    }

    /// What the worker's `open` names this stream by: the info hash, and
    /// for one file of a multi-file torrent `-<index>` after it.
    pub fn stream_key(&self) -> String {
        let hex = self.node.info_hash().to_hex();
        match &self.file {
            Some(f) => format!("{hex}-{}", f.index),
            None => hex,
        }
    }

    /// Near the end of one file of an album, the next file's first pieces
    /// are fetched ahead (at low priority: after the playing file's), so
    /// the next track starts from them (the player moves on at `ended`;
    /// the pieces are kept and imported by its load). Once per track.
    fn look_ahead_near_the_end(&mut self, played: u64, total: u64, rate: Option<u64>) {
        let Some(f) = &self.file else {
            return;
        };
        let next = f.index + 1;
        let has_next = self.node.files().is_some_and(|files| next < files.len());
        let due = file::look_ahead_due(played, total, rate);
        if !self.settings.look_ahead || self.looked_ahead || !has_next || !due {
            return;
        }
        self.looked_ahead = true;
        // `next` is a file of the torrent: checked just above.
        let _ = self
            .node
            .look_ahead(js::now(), next, file::LOOK_AHEAD_BYTES);
    }

    /// The playhead in the element's bytes, told to the node in the
    /// torrent's.
    fn set_stream_playback(&mut self, playback: Option<Playback>) {
        let now = js::now();
        match &self.file {
            Some(f) => {
                // The index was checked when the file was selected.
                let _ = self.node.set_file_playback(now, f.index, playback);
            }
            None => self.node.set_playback(now, playback),
        }
    }

    /// Whether a worker controls the page, once known (`prepare` was told
    /// `None`): the element gets its source now.
    pub fn set_streaming(&mut self, streaming: bool) {
        if self.streaming.is_none() {
            self.streaming = Some(streaming);
            self.point_element_at_stream();
        }
    }

    /// The element plays: the trackers held for the first audio connect,
    /// from a task of their own (opening sockets and making offers is work
    /// the `playing` event's other listeners need not wait for).
    pub(super) fn release_trackers_soon(&mut self) {
        if !self.started || self.held_trackers.is_none() {
            return;
        }
        let weak = self.me.clone();
        self.peers_timer = Some(Timeout::new(0, move || {
            wasm_bindgen_futures::spawn_local(async move {
                dispatch(&weak, |s| s.release_trackers());
            });
        }));
    }

    /// The trackers held for the first audio connect.
    fn release_trackers(&mut self) {
        self.peers_timer = None;
        for (tracker, url) in self.held_trackers.take().unwrap_or_default() {
            self.connect_tracker(tracker, &url);
        }
    }

    /// Lets the element load before it is told to play (`preload`) once
    /// it reads through the worker (a direct web-seed source would load
    /// from the artist's server for a page that may never play) and its
    /// stream's first piece is here (kept from an earlier visit, or from
    /// fans): on a cold page nothing is, and its element would only hold
    /// a request open on a stream the web seed does not fill before play.
    pub(super) fn preload_when_worth_it(&mut self) {
        if !self.settings.preload
            || self.preloading
            || self.play_requested
            || self.streaming != Some(true)
            || self.stream_url.as_deref().is_none_or(str::is_empty)
        {
            return;
        }
        let (base, _) = self.span();
        let length = u64::from(self.node.torrent().piece_length()).max(1);
        let Ok(first) = u32::try_from(base / length) else {
            return;
        };
        if self.node.piece(first).is_some() {
            self.preloading = true;
            self.audio.set_preload("auto");
        }
    }

    /// The node (for the track's figures and pieces).
    pub fn node(&self) -> &Node {
        &self.node
    }

    /// A piece held elsewhere; kept if it verifies (see `Node::import_piece`).
    pub fn import_piece(&mut self, piece: u32, bytes: &[u8]) -> bool {
        let kept = self.node.import_piece(piece, bytes);
        self.drive();
        kept
    }

    /// Metadata that arrived by another way (the magnet's `xs` torrent).
    pub fn offer_metadata(&mut self, info_bytes: &[u8]) -> bool {
        self.node.offer_metadata(js::now(), info_bytes)
    }

    /// Once the metadata is known (at once for a `.torrent`) and whether a
    /// worker controls the page, sets the element's `src`: the worker's
    /// stream URL, or the web seed directly without a worker (the track
    /// then emits `nostreaming`).
    fn point_element_at_stream(&mut self) {
        if self.stream_url.is_some() {
            return;
        }
        let Some(controlled) = self.streaming else {
            return;
        };
        if self.node.metainfo().is_none() {
            return;
        }
        // A magnet's file is known only now.
        if let Err(e) = self.select_file() {
            // The element gets no source: this track cannot play.
            self.warn(&e);
            self.settings.file = None;
            self.stream_url = Some(String::new());
            return;
        }
        let Some(meta) = self.node.metainfo() else {
            return;
        };
        let name = self.name().unwrap_or_default();
        let url = stream::stream_url(&self.settings.stream_prefix, &self.stream_key(), &name);
        let file = self.file.as_ref().map_or(0, |f| f.index);
        let direct = (!controlled)
            .then(|| meta.url_list.first())
            .flatten()
            .and_then(|base| meta.info.web_seed_url(base, file));
        let src = direct.as_deref().unwrap_or(&url);
        // A page may have pointed the element at this stream already
        // (fanswarm.js `resume`, on a return visit): setting it again would
        // restart the element's load.
        if self.audio.get_attribute("src").as_deref() != Some(src) {
            self.audio.set_src(src);
        }
        self.preload_when_worth_it();
        self.stream_url = Some(url);
        if self.play_requested {
            self.play_element();
            self.update_playback();
        }
        if !controlled {
            self.emit("nostreaming", wasm_bindgen::JsValue::UNDEFINED);
        }
    }

    fn play_element(&self) {
        if let Ok(promise) = self.audio.play() {
            // Autoplay may be refused until the listener interacts: not an error.
            wasm_bindgen_futures::spawn_local(async move {
                let _ = wasm_bindgen_futures::JsFuture::from(promise).await;
            });
        }
    }

    /// STUN/TURN servers for the connections made from now on.
    pub fn set_ice_servers(&mut self, urls: Vec<String>) {
        self.settings.ice_servers = urls;
        self.settings.rtc_config = None;
    }

    /// The `RTCConfiguration` for the connections made from now on, and
    /// for the open ones too: renewed TURN credentials keep their relays.
    pub fn set_rtc_config(&mut self, config: wasm_bindgen::JsValue) {
        for conn in self.conns.values() {
            conn.reconfigure(&config);
        }
        self.settings.rtc_config = Some(config);
    }

    /// The target `track.addEventListener` registers on.
    pub fn events(&self) -> &EventTarget {
        &self.events
    }

    /// The URL the element plays; empty until the metadata is known.
    pub fn stream_url(&self) -> &str {
        self.stream_url.as_deref().unwrap_or("")
    }

    /// Whether every byte the element plays is verified (every piece, or
    /// every piece of the one file played).
    pub fn is_done(&self) -> bool {
        self.done
    }

    /// Everything the element plays is verified: `done`, once.
    pub(super) fn mark_done(&mut self) {
        if !self.done {
            self.done = true;
            self.emit("done", wasm_bindgen::JsValue::UNDEFINED);
        }
    }

    /// Leaves the swarm and releases everything: `stopped` to the trackers,
    /// every connection, socket, request, reader, listener and the timer.
    pub fn destroy(&mut self) {
        if self.destroyed {
            return;
        }
        // A track never started has told nobody anything.
        if self.started {
            self.node.stop(js::now());
            self.drain();
        }
        self.destroyed = true;
        self.timer = None;
        self.peers_timer = None;
        self.prefetch_timer = None;
        self.held_trackers = None;
        self.listeners.clear();
        self.element_listeners.clear();
        self.readers.clear();
        self.given.clear();
        for (_, request) in std::mem::take(&mut self.requests) {
            request.abort();
        }
        for (_, handed) in std::mem::take(&mut self.handed) {
            handed.abort();
        }
        self.conns.clear();
        self.sockets.clear();
        self.audio.remove_attribute("src").ok();
        self.audio.load();
    }

    /// Drains the node and re-arms the timer (once started).
    #[inline(never)]
    pub fn drive(&mut self) {
        if self.destroyed || !self.started {
            return;
        }
        let wake = self.drain();
        self.arm_timer(wake);
    }

    fn arm_timer(&mut self, at: Time) {
        if let Some((scheduled, _)) = &self.timer
            && *scheduled <= at
        {
            return; // an earlier wake-up is already set
        }
        let now = js::now();
        let delay = u32::try_from(at.as_millis().saturating_sub(now.as_millis()))
            .unwrap_or(u32::MAX)
            .min(60_000);
        let weak = self.me.clone();
        let timeout = Timeout::new(delay, move || {
            // From a microtask, so the timer's own closure is not dropped
            // while it runs.
            wasm_bindgen_futures::spawn_local(async move {
                dispatch(&weak, |s| {
                    s.timer = None;
                    s.node.handle_timeout(js::now());
                });
            });
        });
        self.timer = Some((at, timeout));
    }

    /// Where the node should think the player is: the element's position
    /// scaled to bytes, or the first byte a waiting reader needs if that is
    /// earlier (the element is stalled on it) or the scale is not known yet.
    ///
    /// Not the reader's byte whenever one waits: the element buffers far
    /// ahead of what it plays, so its reader walks the whole file within
    /// seconds, and every piece it touched would turn urgent and come from
    /// the web seed instead of from peers (measured: each of four pages
    /// fetched ~95 % of the track from the origin that way).
    fn update_playback(&mut self) {
        let (_, total) = self.span();
        if total == 0 {
            return;
        }
        let duration = self.audio.duration();
        let rate =
            (duration.is_finite() && duration > 0.0).then(|| (total as f64 / duration) as u64);
        let played = rate.map(|r| (self.audio.current_time() * r as f64) as u64);
        // Told to play, though the element may have no source yet (the
        // worker is not in control yet on a first visit).
        let playing = !self.audio.paused()
            || (self.play_requested && self.stream_url.is_none())
            || self.about_to_play;
        // An element that cannot play on (below HAVE_FUTURE_DATA) while a
        // reader waits is blocked on that reader: the bytes it waits for
        // are needed now, wherever the playhead is. WebKit fills a buffer
        // from the start before its first sample, its playhead still at 0:
        // with the playhead taken, the pieces it waited for were not due
        // yet, never fetched, and it never started (seen: 54 of 64 pieces,
        // stalled at 0 s).
        let blocked = self.audio.ready_state() < HtmlMediaElement::HAVE_FUTURE_DATA;
        let offset = match (self.waiting_reader_pos, played) {
            (Some(waiting), Some(_)) if blocked => Some(waiting),
            (Some(waiting), Some(played)) => Some(waiting.min(played)),
            // Told to play from the start before the element has asked for
            // a byte or knows its duration: the first pieces are wanted now,
            // not once its first request has come back through the worker
            // (~85 ms later, measured), nor once the worker controls the page.
            (None, None) if playing && self.audio.current_time() == 0.0 => Some(0),
            (waiting, played) => waiting.or(played),
        };
        // A paused element that nothing waits on is not playing: the
        // swarm may still trade, but the web seed is not used for it. Nor
        // for an element preloading before it was ever told to play (the
        // player preloads on page load): it reads what is here (kept,
        // imported, from fans, prefetched), and a page that is never
        // played costs the artist's server at most the prefetched start.
        let idle = !playing && (self.waiting_reader_pos.is_none() || !self.play_requested);
        // Prefetching the start (`prefetch_head`): the playhead at the
        // start, moving at 1 byte a second, so that only the start window
        // is due, and nothing past it ever is before play.
        let playback = if idle && self.prefetching {
            Some(Playback {
                offset: 0,
                bytes_per_sec: Some(1),
            })
        } else {
            offset.filter(|_| !idle).map(|offset| Playback {
                offset: offset.min(total.saturating_sub(1)),
                bytes_per_sec: rate,
            })
        };
        self.set_stream_playback(playback);
        if let Some(played) = played.filter(|_| !idle) {
            self.look_ahead_near_the_end(played, total, rate);
        }
    }

    /// Fires `kind` on the track once the current call into the session has
    /// returned, in order. Fired at once, a listener that calls back into
    /// the track (`track.stats()` in a `progress` listener, as player.js and
    /// fanswarm.js's own example do) would find the session borrowed, and
    /// the wasm call traps ("RuntimeError: unreachable").
    fn emit(&self, kind: &str, detail: wasm_bindgen::JsValue) {
        let init = web_sys::CustomEventInit::new();
        init.set_detail(&detail);
        if let Ok(event) = web_sys::CustomEvent::new_with_event_init_dict(kind, &init) {
            let events = self.events.clone();
            wasm_bindgen_futures::spawn_local(async move {
                // A listener that throws is the page's problem, not ours.
                let _ = events.dispatch_event(&event);
            });
        }
    }

    fn emit_peers(&self) {
        self.emit("peers", self.node.stats().engine.peers.into());
    }

    /// Whether this browser can trade with fans (it has WebRTC).
    pub fn can_share(&self) -> bool {
        !self.settings.lacks.contains(&js::WEBRTC)
    }

    /// What the browser lacks, as [`Settings::lacks`].
    pub fn lacks(&self) -> &[&'static str] {
        &self.settings.lacks
    }

    pub(crate) fn warn(&self, message: &str) {
        self.emit("warning", message.into());
    }
}

impl Drop for Session {
    fn drop(&mut self) {
        self.destroy();
    }
}

/// The one warning of a browser that lacks something: what, and what the
/// track does instead.
fn lacking_message(lacks: &[&str]) -> String {
    let mut consequences = Vec::new();
    if lacks.contains(&js::WEBRTC) {
        consequences.push("it cannot share with other fans and plays from the server alone");
    }
    if lacks.contains(&js::SERVICE_WORKERS) {
        consequences.push("the player streams the server's file directly");
    }
    format!(
        "this browser lacks {}: {}",
        lacks.join(" and "),
        consequences.join("; ")
    )
}
