//! What the session does with each node output and each browser event:
//! I/O only, no decisions.

use std::rc::Rc;

use gloo_events::EventListener;
use wasm_bindgen::JsCast;
use web_sys::MessageEvent;

use swarm::announce::{TrackerIndex, TrackerNotice};
use swarm::engine::{Event, PeerError, PeerKey};
use swarm::node::{GoneReason, HttpId, NodeEvent, Output, RangeRequest};
use swarm::time::Time;

use super::{Session, dispatch};
use crate::js;
use crate::rtc::{self, ChannelEvent, EventSink, PeerConn};
use crate::stream;
use crate::tracker_ws::{SocketEvent, SocketSink, TrackerSocket};
use crate::webseed::{self, BodyEvent};

impl Session {
    /// Does everything the node asks until it names its next wake-up.
    pub(super) fn drain(&mut self) -> Time {
        loop {
            match self.node.poll() {
                Output::ConnectTracker { tracker, url } => match &mut self.held_trackers {
                    Some(held) => held.push((tracker, url)),
                    None => self.connect_tracker(tracker, &url),
                },
                Output::SendTracker { tracker, text } => {
                    if let Some(socket) = self.sockets.get(&tracker) {
                        // A socket that just closed drops it; the node
                        // announces again after reconnecting.
                        let _ = socket.send(&text);
                    }
                }
                Output::CloseTracker { tracker } => {
                    self.sockets.remove(&tracker);
                }
                Output::CreateOffer { conn } => self.create_offer(conn),
                Output::AnswerOffer { conn, sdp } => self.answer_offer(conn, sdp),
                Output::AcceptAnswer { conn, sdp } => self.accept_answer(conn, sdp),
                Output::SendPeer { conn, data } => self.send_to_peer(conn, &data),
                Output::CloseConn { conn } => {
                    self.conns.remove(&conn);
                }
                Output::HttpGet { id, request } => self.fetch(id, request),
                Output::CancelHttp { id } => {
                    if let Some(request) = self.requests.remove(&id) {
                        request.abort();
                    }
                    self.drop_handed(id, true);
                }
                Output::Event(event) => self.on_event(event),
                Output::Timeout(at) => {
                    self.post_handovers();
                    self.point_element_at_stream();
                    return at;
                }
            }
        }
    }

    /// Registers the worker's `open` messages and the element's position.
    pub(super) fn listen(&mut self) -> Result<(), js::JsError> {
        if js::has_service_workers() {
            self.listen_to_worker()?;
        }
        self.listen_to_element();
        Ok(())
    }

    /// The worker's `open` messages: a reader for each stream request.
    fn listen_to_worker(&mut self) -> Result<(), js::JsError> {
        let weak = self.me.clone();
        let container = js::window()?.navigator().service_worker();
        let on_open = EventListener::new(&container, "message", move |event| {
            let Some(event) = event.dyn_ref::<MessageEvent>() else {
                return;
            };
            let Some(request) = stream::parse_open(&event.data()) else {
                return;
            };
            // Heard: fanswarm.js does not hand it to a track again (it
            // keeps the ones that came before any track listened).
            let _ = js_sys::Reflect::set(event, &"fanswarmHeard".into(), &true.into());
            let Some(port) = event.ports().get(0).dyn_into::<web_sys::MessagePort>().ok() else {
                return;
            };
            dispatch(&weak, move |s| s.open_reader(port, &request));
        });
        // Messages queue until the page says it listens (web-sys lacks
        // `startMessages`, so call it by name).
        if let Some(start) = js::property(&container, "startMessages")
            && let Some(f) = start.dyn_ref::<js_sys::Function>()
        {
            let _ = f.call0(&container);
        }
        self.listeners.push(on_open);
        Ok(())
    }

    /// The element's position, and its first `playing`.
    pub(super) fn listen_to_element(&mut self) {
        // `waiting` and `canplay`: whether the element is blocked on its
        // readers changed (see `update_playback`).
        for kind in [
            "timeupdate",
            "seeking",
            "durationchange",
            "play",
            "pause",
            "waiting",
            "canplay",
        ] {
            let weak = self.me.clone();
            self.element_listeners
                .push(EventListener::new(&self.audio, kind, move |_| {
                    dispatch(&weak, |s| s.update_playback())
                }));
        }
        let weak = self.me.clone();
        self.element_listeners
            .push(EventListener::new(&self.audio, "playing", move |_| {
                dispatch(&weak, |s| {
                    s.first_audio = true;
                    s.sync_start_window(); // at the file's own pace from now on
                    s.release_trackers_soon();
                })
            }));
    }

    fn on_event(&mut self, event: NodeEvent) {
        match event {
            NodeEvent::Engine(event) => self.on_engine_event(event),
            NodeEvent::PeerGone { conn, reason } => {
                self.conns.remove(&conn);
                self.emit_peers();
                self.sync_start_window();
                if let GoneReason::Peer(e @ PeerError::Banned(_)) = &reason {
                    self.warn(&e.to_string());
                }
                self.emit("peerclose", reason.to_string().into());
            }
            NodeEvent::MetadataReady => {
                self.point_element_at_stream();
                let length = self.span().1 as f64;
                self.emit("metadata", length.into());
            }
            NodeEvent::WebSeedFailed { url, error } => {
                self.warn(&format!("web seed {url}: {error}"))
            }
            NodeEvent::WebSeedDropped { url, reason } => {
                self.warn(&format!("web seed {url} no longer used: {reason}"))
            }
            NodeEvent::Tracker(TrackerNotice::Failure { reason, .. }) => {
                self.warn(&format!("tracker: {reason}"))
            }
            NodeEvent::Tracker(TrackerNotice::BadMessage { error, .. }) => {
                self.warn(&format!("tracker sent garbage: {error}"))
            }
            NodeEvent::Tracker(TrackerNotice::Swarm {
                complete,
                incomplete,
                ..
            }) => self.emit(
                "tracker",
                format!("{complete} seeders, {incomplete} leechers").into(),
            ),
        }
    }

    fn on_engine_event(&mut self, event: Event) {
        match event {
            Event::PieceVerified { piece } => {
                self.serve_waiting(piece);
                self.give_ahead(piece);
                self.preload_when_worth_it();
                self.emit("progress", piece.into());
                // One file played: done once it is (the rest is not fetched).
                let file_done = self
                    .file()
                    .is_some_and(|f| self.node.file_complete(f.index) == Ok(true));
                if file_done {
                    self.mark_done();
                }
            }
            Event::PeerConnected { .. } => {
                self.emit_peers();
                self.sync_start_window();
            }
            Event::PeerBanned { id } => self.warn(&format!("peer {id} sent corrupt data")),
            Event::WebSeedCorrupt { piece } => {
                self.warn(&format!("web seed sent a corrupt piece {piece}"))
            }
            Event::MetadataWaiting {
                waited,
                peers,
                offering,
            } => self.warn(&swarm::join::waiting_message(waited, peers, offering)),
            Event::Done => self.mark_done(),
            Event::Downloaded { .. } | Event::Uploaded { .. } | Event::PieceFailed { .. } => {}
        }
    }

    fn send_to_peer(&mut self, key: PeerKey, data: &[u8]) {
        let Some(conn) = self.conns.get_mut(&key) else {
            return;
        };
        match conn.send(data) {
            Ok(Some(blocked)) => self.node.send_blocked(js::now(), key, blocked),
            Ok(None) => {}
            Err(_) => {
                self.conns.remove(&key);
                self.node.connection_closed(js::now(), key);
            }
        }
    }

    /// Runs one Range request, handing its body to the node as it arrives:
    /// the worker runs it when it can (`hand_to_worker`), else the page.
    fn fetch(&mut self, id: HttpId, request: RangeRequest) {
        if !self.hand_to_worker(id, &request) {
            self.fetch_here(id, request);
        }
    }

    /// Runs a Range request on the page.
    pub(super) fn fetch_here(&mut self, id: HttpId, request: RangeRequest) {
        let Ok(abort) = web_sys::AbortController::new() else {
            self.node
                .http_failed(js::now(), id, "no AbortController".into());
            return;
        };
        let signal = abort.signal();
        self.requests.insert(id, abort);
        let weak = self.me.clone();
        wasm_bindgen_futures::spawn_local(async move {
            let sink = |event: BodyEvent| {
                dispatch(&weak, move |s| match event {
                    BodyEvent::Chunk(bytes) => s.node.http_data(js::now(), id, &bytes),
                    BodyEvent::End => {
                        s.requests.remove(&id);
                        s.node.http_end(js::now(), id);
                    }
                    BodyEvent::Failed(error) => {
                        s.requests.remove(&id);
                        s.node.http_failed(js::now(), id, error);
                    }
                });
            };
            webseed::stream_range(&request, &signal, sink).await;
        });
    }

    pub(super) fn connect_tracker(&mut self, tracker: TrackerIndex, url: &str) {
        let weak = self.me.clone();
        let sink: SocketSink = Rc::new(move |index, event| {
            dispatch(&weak, move |s| s.on_socket(index, event));
        });
        match TrackerSocket::connect(tracker, url, sink) {
            Ok(socket) => {
                self.sockets.insert(tracker, socket);
            }
            Err(e) => {
                self.warn(&format!("tracker {url}: {e}"));
                self.node.tracker_closed(js::now(), tracker);
            }
        }
    }

    fn on_socket(&mut self, tracker: TrackerIndex, event: SocketEvent) {
        let now = js::now();
        match event {
            SocketEvent::Open => self.node.tracker_opened(now, tracker),
            SocketEvent::Text(text) => self.node.tracker_message(now, tracker, &text),
            SocketEvent::Closed => {
                // "error" and "close" both come: count the loss once.
                if self.sockets.remove(&tracker).is_some() {
                    self.node.tracker_closed(now, tracker);
                }
            }
        }
    }

    fn channel_sink(&self) -> EventSink {
        let weak = self.me.clone();
        Rc::new(move |key, event| dispatch(&weak, move |s| s.on_channel(key, event)))
    }

    /// A connection for `key`, or `None` (after telling the node) if the
    /// browser refuses to make one.
    fn new_conn(&mut self, key: PeerKey) -> Option<&mut PeerConn> {
        let settings = &self.settings;
        let made = PeerConn::new(
            key,
            &settings.ice_servers,
            settings.rtc_config.as_ref(),
            self.channel_sink(),
        );
        match made {
            Ok(rtc) => Some(self.conns.entry(key).or_insert(rtc)),
            Err(e) => {
                if !self.told_no_connection {
                    self.told_no_connection = true;
                    self.warn(&format!("cannot create a peer connection: {e}"));
                }
                None
            }
        }
    }

    fn create_offer(&mut self, key: PeerKey) {
        let Some(conn) = self.new_conn(key) else {
            self.node
                .offer_made(js::now(), key, Err("no RTCPeerConnection".into()));
            return;
        };
        let pc = conn.start_offer();
        let weak = self.me.clone();
        wasm_bindgen_futures::spawn_local(async move {
            let result = rtc::create_offer(&pc).await.map_err(|e| e.0);
            dispatch(&weak, move |s| {
                if result.is_err() {
                    s.conns.remove(&key);
                }
                s.node.offer_made(js::now(), key, result);
            });
        });
    }

    fn accept_answer(&mut self, key: PeerKey, sdp: String) {
        let Some(conn) = self.conns.get(&key) else {
            return;
        };
        let pc = conn.connection();
        let weak = self.me.clone();
        wasm_bindgen_futures::spawn_local(async move {
            if rtc::accept_answer(&pc, &sdp).await.is_err() {
                dispatch(&weak, move |s| {
                    s.conns.remove(&key);
                    s.node.connection_closed(js::now(), key);
                });
            }
        });
    }

    fn answer_offer(&mut self, key: PeerKey, sdp: String) {
        let Some(conn) = self.new_conn(key) else {
            self.node
                .answer_made(js::now(), key, Err("no RTCPeerConnection".into()));
            return;
        };
        let pc = conn.expect_channel();
        let weak = self.me.clone();
        wasm_bindgen_futures::spawn_local(async move {
            let result = rtc::create_answer(&pc, &sdp).await.map_err(|e| e.0);
            dispatch(&weak, move |s| {
                if result.is_err() {
                    s.conns.remove(&key);
                }
                s.node.answer_made(js::now(), key, result);
            });
        });
    }

    fn on_channel(&mut self, key: PeerKey, event: ChannelEvent) {
        let now = js::now();
        match event {
            ChannelEvent::Incoming(dc) => {
                let open = self
                    .conns
                    .get_mut(&key)
                    .is_some_and(|c| c.adopt_channel(dc));
                if open {
                    self.on_channel(key, ChannelEvent::Open);
                }
            }
            ChannelEvent::Open => {
                // `send` throws while `readyState` still says "connecting".
                if self.conns.get(&key).is_some_and(PeerConn::is_open) {
                    self.node.channel_open(now, key);
                }
            }
            ChannelEvent::Data(bytes) => self.node.channel_data(now, key, &bytes),
            ChannelEvent::Drained => {
                if self.conns.get_mut(&key).is_some_and(|c| c.drained()) {
                    self.node.send_blocked(now, key, false);
                }
            }
            ChannelEvent::Closed => {
                if self.conns.remove(&key).is_some() {
                    self.node.connection_closed(now, key);
                }
            }
        }
    }
}
