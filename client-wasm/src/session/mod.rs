//! One track being played: the engine, the tracker client and every browser
//! object they drive, behind one `Rc<RefCell<_>>`.
//!
//! Callbacks (sockets, channels, timers, fetches, the service worker) hold
//! only a `Weak` to the session and go through [`dispatch`]: borrow, apply
//! the event, then [`Session::drive`] — drain the engine's `poll()` and the
//! announcer's `poll()` until both say "wake me at T", and set one timer for
//! the earlier T. Dropping the session drops every listener, socket,
//! connection and timer it owns.

mod handlers;
mod streaming;

use std::cell::RefCell;
use std::collections::BTreeMap;
use std::rc::{Rc, Weak};

use gloo_events::EventListener;
use gloo_timers::callback::Timeout;
use swarm::announce::{Announcer, Progress, TrackerIndex};
use swarm::engine::PeerKey;
use swarm::join::Joining;
use swarm::metainfo::Metainfo;
use swarm::picker::Playback;
use swarm::time::Time;
use swarm::tracker::OfferId;
use web_sys::{EventTarget, HtmlMediaElement};

use crate::channel::EarlyBytes;
use crate::js;
use crate::rate::RateMeter;
use crate::rtc::PeerConn;
use crate::stream::Reader;
use crate::tracker_ws::TrackerSocket;

/// How long a connection may take from offer/answer to an open channel
/// (the reference client: 25 s).
const CONNECT_TIMEOUT_MS: u64 = 25_000;

/// Shared handle to a session.
pub type SessionRef = Rc<RefCell<Session>>;

/// What a session was started with.
#[derive(Debug, Clone)]
pub struct Settings {
    /// STUN/TURN server URLs.
    pub ice_servers: Vec<String>,
    /// Concurrent peer connections at most (offers included).
    pub max_peers: usize,
    /// URL prefix the service worker streams under.
    pub stream_prefix: String,
    /// A service worker controls the page; without one the element plays
    /// the web seed directly.
    pub controlled: bool,
}

/// One connection's bookkeeping besides the browser object.
struct Conn {
    rtc: PeerConn,
    /// When the offer was answered or our answer made: the connect clock.
    since: Option<Time>,
    /// The engine knows it (`add_peer` was called).
    in_engine: bool,
    /// Bytes that arrived before our `open` was handled.
    early: EarlyBytes,
}

/// Everything one playing track owns.
pub struct Session {
    me: Weak<RefCell<Session>>,
    settings: Settings,
    /// The torrent; `None` while a bare magnet's metadata is fetched.
    meta: Option<Metainfo>,
    /// The URL the element plays, once the metadata is known.
    stream_url: Option<String>,
    torrent: Joining,
    announcer: Announcer,
    audio: HtmlMediaElement,
    events: EventTarget,
    sockets: BTreeMap<TrackerIndex, TrackerSocket>,
    conns: BTreeMap<PeerKey, Conn>,
    offers: BTreeMap<OfferId, PeerKey>,
    next_key: u64,
    readers: BTreeMap<u64, Reader>,
    next_reader: u64,
    timer: Option<(Time, Timeout)>,
    listeners: Vec<EventListener>,
    down: RateMeter,
    up: RateMeter,
    waiting_reader_pos: Option<u64>,
    done: bool,
    destroyed: bool,
}

/// Runs `f` on the session behind `weak`, then drives it. When the session
/// is busy (an event fired from inside a call of ours) the event is retried
/// from a microtask instead of being lost; when it is gone, nothing happens.
pub fn dispatch(weak: &Weak<RefCell<Session>>, f: impl FnOnce(&mut Session) + 'static) {
    let Some(session) = weak.upgrade() else {
        return;
    };
    let Ok(mut s) = session.try_borrow_mut() else {
        let weak = weak.clone();
        wasm_bindgen_futures::spawn_local(async move { dispatch(&weak, f) });
        return;
    };
    if s.destroyed {
        return;
    }
    f(&mut s);
    s.drive();
}

impl Session {
    /// A session for `meta` (or a magnet whose metadata `torrent` fetches);
    /// nothing runs until [`Session::start`].
    pub fn new(
        settings: Settings,
        meta: Option<Metainfo>,
        torrent: Joining,
        announcer: Announcer,
        audio: HtmlMediaElement,
    ) -> Result<SessionRef, js::JsError> {
        let events = EventTarget::new().map_err(js::js_error)?;
        Ok(Rc::new_cyclic(|me| {
            RefCell::new(Session {
                me: me.clone(),
                settings,
                meta,
                stream_url: None,
                torrent,
                announcer,
                audio,
                events,
                sockets: BTreeMap::new(),
                conns: BTreeMap::new(),
                offers: BTreeMap::new(),
                next_key: 0,
                readers: BTreeMap::new(),
                next_reader: 0,
                timer: None,
                listeners: Vec::new(),
                down: RateMeter::default(),
                up: RateMeter::default(),
                waiting_reader_pos: None,
                done: false,
                destroyed: false,
            })
        }))
    }

    /// Listens to the worker and the element, points the element at the
    /// stream, and runs the first round of the engine and the announcer.
    pub fn start(&mut self) -> Result<(), js::JsError> {
        self.listen()?;
        self.point_element_at_stream();
        self.drive();
        Ok(())
    }

    /// Metadata that arrived by another way (the magnet's `xs` torrent):
    /// used if it hashes to the info hash and peers have not delivered yet.
    pub fn offer_metadata(&mut self, info_bytes: &[u8]) -> bool {
        self.torrent.offer_metadata(js::now(), info_bytes)
    }

    /// Once the metadata is known (at once for a `.torrent`), sets the
    /// element's `src`: the worker's stream URL, or the web seed directly
    /// without a worker (the track then emits `nostreaming`).
    fn point_element_at_stream(&mut self) {
        if self.stream_url.is_some() {
            return;
        }
        let fetched = self.meta.is_none();
        if fetched {
            self.meta = self.torrent.metainfo().cloned();
        }
        let Some(meta) = &self.meta else {
            return;
        };
        let url = crate::api::stream_url(
            &self.settings.stream_prefix,
            meta.info_hash,
            &meta.info.name,
        );
        let direct = (!self.settings.controlled)
            .then(|| meta.url_list.first().cloned())
            .flatten();
        self.audio.set_src(direct.as_deref().unwrap_or(&url));
        self.stream_url = Some(url);
        if let Ok(promise) = self.audio.play() {
            // Autoplay may be refused until the listener interacts: not an error.
            wasm_bindgen_futures::spawn_local(async move {
                let _ = wasm_bindgen_futures::JsFuture::from(promise).await;
            });
        }
        if fetched {
            self.emit("metadata", (self.torrent.total_length() as f64).into());
        }
        if !self.settings.controlled {
            self.emit("nostreaming", wasm_bindgen::JsValue::UNDEFINED);
        }
    }

    /// The target `track.addEventListener` registers on.
    pub fn events(&self) -> &EventTarget {
        &self.events
    }

    /// The URL the element plays; empty until the metadata is known.
    pub fn stream_url(&self) -> &str {
        self.stream_url.as_deref().unwrap_or("")
    }

    /// The parsed torrent, once known.
    pub fn meta(&self) -> Option<&Metainfo> {
        self.meta.as_ref()
    }

    /// The engine (fetching metadata, or running).
    pub fn torrent(&self) -> &Joining {
        &self.torrent
    }

    /// Bytes per second down and up, over the last seconds.
    pub fn speeds(&mut self) -> (f64, f64) {
        let now = js::now_ms();
        (self.down.per_second(now), self.up.per_second(now))
    }

    /// Whether every piece is verified.
    pub fn is_done(&self) -> bool {
        self.done
    }

    /// Leaves the swarm and releases everything: `stopped` to the trackers,
    /// every connection, socket, reader, listener and the timer.
    pub fn destroy(&mut self) {
        if self.destroyed {
            return;
        }
        self.announcer.stop(js::now());
        self.drain_announcer();
        self.destroyed = true;
        self.timer = None;
        self.listeners.clear();
        self.readers.clear();
        self.offers.clear();
        self.conns.clear();
        self.sockets.clear();
        self.audio.remove_attribute("src").ok();
        self.audio.load();
    }

    /// Drains both state machines and re-arms the timer.
    pub fn drive(&mut self) {
        if self.destroyed {
            return;
        }
        let engine_wake = self.drain_engine();
        self.point_element_at_stream();
        let stats = self.torrent.stats();
        let verified = u64::from(stats.verified_pieces) * u64::from(self.torrent.piece_length());
        // Unknown while fetching metadata: announcing 0 would make us a seeder.
        let left = self
            .torrent
            .has_metadata()
            .then(|| self.torrent.total_length().saturating_sub(verified));
        self.announcer.set_progress(
            js::now(),
            Progress {
                uploaded: stats.uploaded,
                downloaded: stats.from_peers + stats.from_web_seed,
                left,
            },
        );
        self.announcer
            .set_want_peers(self.conns.len() < self.settings.max_peers);
        let announce_wake = self.drain_announcer();
        self.arm_timer(engine_wake.min(announce_wake));
    }

    fn arm_timer(&mut self, at: Time) {
        if let Some((scheduled, _)) = &self.timer {
            if *scheduled <= at {
                return; // an earlier wake-up is already set
            }
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
                dispatch(&weak, |s| s.on_timer());
            });
        });
        self.timer = Some((at, timeout));
    }

    fn on_timer(&mut self) {
        self.timer = None;
        let now = js::now();
        self.torrent.handle_timeout(now);
        self.announcer.handle_timeout(now);
        let stale: Vec<PeerKey> = self
            .conns
            .iter()
            .filter(|(_, c)| {
                !c.rtc.is_open()
                    && c.since
                        .is_some_and(|t| now.as_millis() > t.as_millis() + CONNECT_TIMEOUT_MS)
            })
            .map(|(k, _)| *k)
            .collect();
        for key in stale {
            self.remove_conn(key);
        }
    }

    /// Where the engine should think the player is: the element's position
    /// scaled to bytes, or the first byte a waiting reader needs if that is
    /// earlier (the element is stalled on it) or the scale is not known yet.
    ///
    /// Not the reader's byte whenever one waits: the element buffers far
    /// ahead of what it plays, so its reader walks the whole file within
    /// seconds, and every piece it touched would turn urgent and come from
    /// the web seed instead of from peers (measured: each of four pages
    /// fetched ~95 % of the track from the origin).
    fn update_playback(&mut self) {
        let total = self.torrent.total_length();
        let duration = self.audio.duration();
        let rate =
            (duration.is_finite() && duration > 0.0).then(|| (total as f64 / duration) as u64);
        let played = rate.map(|r| (self.audio.current_time() * r as f64) as u64);
        let offset = match (self.waiting_reader_pos, played) {
            (Some(waiting), Some(played)) => Some(waiting.min(played)),
            (waiting, played) => waiting.or(played),
        };
        if let Some(offset) = offset {
            self.torrent.set_playback(
                js::now(),
                Some(Playback {
                    offset: offset.min(total.saturating_sub(1)),
                    bytes_per_sec: rate,
                }),
            );
        }
    }

    fn new_key(&mut self) -> PeerKey {
        self.next_key += 1;
        PeerKey(self.next_key)
    }

    fn remove_conn(&mut self, key: PeerKey) {
        if let Some(conn) = self.conns.remove(&key) {
            self.offers.retain(|_, k| *k != key);
            if conn.in_engine {
                self.torrent.handle_peer_closed(js::now(), key);
                self.emit_peers();
                self.emit("peerclose", "the connection closed".into());
                self.after_peer_gone();
            }
        }
    }

    /// The last peer the engine knew went away while pieces are missing:
    /// look for peers again soon instead of after the tracker's interval
    /// (one failed connection would otherwise leave the listener alone,
    /// on the web seed, for minutes).
    pub(crate) fn after_peer_gone(&mut self) {
        if !self.torrent.is_complete() && !self.conns.values().any(|c| c.in_engine) {
            self.announcer.peers_lost(js::now());
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
        self.emit("peers", self.torrent.stats().peers.into());
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
