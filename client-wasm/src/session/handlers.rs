//! What the session does with each engine output, announcer action and
//! browser event.

use std::rc::Rc;

use gloo_events::EventListener;
use wasm_bindgen::JsCast;
use web_sys::MessageEvent;

use swarm::announce::{Action, TrackerIndex, TrackerNotice};
use swarm::engine::{Event, FetchId, Output, PeerKey};
use swarm::time::Time;

use super::{Conn, Session, dispatch};
use crate::channel::EarlyBytes;
use crate::js;
use crate::rtc::{self, ChannelEvent, EventSink, PeerConn};
use crate::stream;
use crate::tracker_ws::{SocketEvent, SocketSink, TrackerSocket};
use crate::webseed;

impl Session {
    /// Does everything the engine asks until it names its next wake-up.
    pub(super) fn drain_engine(&mut self) -> Time {
        loop {
            match self.torrent.poll() {
                Output::Send { peer, data } => self.send_to_peer(peer, &data),
                Output::Close { peer, reason } => {
                    // The engine has forgotten it already.
                    if let Some(mut conn) = self.conns.remove(&peer) {
                        conn.in_engine = false;
                        self.offers.retain(|_, k| *k != peer);
                        self.emit_peers();
                        self.emit("peerclose", reason.to_string().into());
                        self.after_peer_gone();
                    }
                    if matches!(reason, swarm::engine::PeerError::Banned(_)) {
                        self.warn(&reason.to_string());
                    }
                }
                Output::FetchWebSeed { id, offset, length } => {
                    self.fetch_web_seed(id, offset, length)
                }
                Output::Event(event) => self.on_engine_event(event),
                Output::Timeout(at) => return at,
            }
        }
    }

    /// Does everything the announcer asks until it names its next wake-up.
    pub(super) fn drain_announcer(&mut self) -> Time {
        loop {
            match self.announcer.poll() {
                Action::Connect { tracker, url } => self.connect_tracker(tracker, &url),
                Action::Send { tracker, text } => {
                    if let Some(socket) = self.sockets.get(&tracker) {
                        // A socket that just closed drops it; the announcer
                        // announces again after reconnecting.
                        let _ = socket.send(&text);
                    }
                }
                Action::Disconnect { tracker } => {
                    self.sockets.remove(&tracker);
                }
                Action::CreateOffers { offers } => {
                    for offer in offers {
                        self.create_offer(offer);
                    }
                }
                Action::AcceptAnswer { offer, sdp, .. } => self.accept_answer(offer, sdp),
                Action::DropOffer { offer } => {
                    if let Some(key) = self.offers.remove(&offer) {
                        self.conns.remove(&key);
                    }
                }
                Action::AnswerOffer {
                    tracker,
                    offer,
                    peer,
                    sdp,
                } => self.answer_offer(tracker, offer, peer, sdp),
                Action::Event(TrackerNotice::Failure { reason, .. }) => {
                    self.warn(&format!("tracker: {reason}"))
                }
                Action::Event(TrackerNotice::BadMessage { error, .. }) => {
                    self.warn(&format!("tracker sent garbage: {error}"))
                }
                Action::Event(TrackerNotice::Swarm {
                    complete,
                    incomplete,
                    ..
                }) => self.emit(
                    "tracker",
                    format!("{complete} seeders, {incomplete} leechers").into(),
                ),
                Action::Timeout(at) => return at,
            }
        }
    }

    /// Registers the worker's `open` messages and the element's position.
    pub(super) fn listen(&mut self) -> Result<(), js::JsError> {
        let weak = self.me.clone();
        let container = js::window()?.navigator().service_worker();
        let on_open = EventListener::new(&container, "message", move |event| {
            let Some(event) = event.dyn_ref::<MessageEvent>() else {
                return;
            };
            let Some(request) = stream::parse_open(&event.data()) else {
                return;
            };
            let Some(port) = event.ports().get(0).dyn_into::<web_sys::MessagePort>().ok() else {
                return;
            };
            dispatch(&weak, move |s| s.open_reader(port, &request));
        });
        // Messages queue until the page says it listens (web-sys lacks
        // `startMessages`, so call it by name).
        if let Some(start) = js::property(&container, "startMessages") {
            if let Some(f) = start.dyn_ref::<js_sys::Function>() {
                let _ = f.call0(&container);
            }
        }
        self.listeners.push(on_open);
        for kind in ["timeupdate", "seeking", "durationchange"] {
            let weak = self.me.clone();
            self.listeners
                .push(EventListener::new(&self.audio, kind, move |_| {
                    dispatch(&weak, |s| s.update_playback())
                }));
        }
        Ok(())
    }

    fn on_engine_event(&mut self, event: Event) {
        let now = js::now_ms();
        match event {
            Event::Downloaded { bytes, .. } => self.down.add(now, u64::from(bytes)),
            Event::Uploaded { bytes, .. } => self.up.add(now, u64::from(bytes)),
            Event::PieceVerified { piece } => {
                self.serve_waiting(piece);
                self.emit("progress", piece.into());
            }
            Event::PeerConnected { .. } => self.emit_peers(),
            Event::PeerBanned { id } => self.warn(&format!("peer {id} sent corrupt data")),
            Event::WebSeedCorrupt { piece } => {
                self.warn(&format!("web seed sent a corrupt piece {piece}"))
            }
            Event::PieceFailed { .. } => {}
            Event::MetadataWaiting {
                waited,
                peers,
                offering,
            } => self.warn(&swarm::join::waiting_message(waited, peers, offering)),
            Event::Done => {
                self.done = true;
                self.emit("done", wasm_bindgen::JsValue::UNDEFINED);
            }
        }
    }

    fn send_to_peer(&mut self, key: PeerKey, data: &[u8]) {
        let Some(conn) = self.conns.get_mut(&key) else {
            return;
        };
        match conn.rtc.send(data) {
            Ok(Some(blocked)) => self.torrent.set_send_blocked(js::now(), key, blocked),
            Ok(None) => {}
            Err(_) => self.remove_conn(key),
        }
    }

    fn fetch_web_seed(&mut self, id: FetchId, offset: u64, length: u32) {
        let Some((base, meta)) = self
            .meta
            .as_ref()
            .and_then(|m| Some((m.url_list.first()?, m)))
        else {
            self.torrent.handle_web_seed_error(js::now(), id);
            return;
        };
        let plan = webseed::plan_ranges(&meta.info, base, offset, length);
        let weak = self.me.clone();
        wasm_bindgen_futures::spawn_local(async move {
            let result = webseed::fetch_ranges(&plan).await;
            dispatch(&weak, move |s| match result {
                Ok(data) => s.torrent.handle_web_seed_data(js::now(), id, &data),
                Err(e) => {
                    s.warn(&format!("web seed: {e}"));
                    s.torrent.handle_web_seed_error(js::now(), id);
                }
            });
        });
    }

    fn connect_tracker(&mut self, tracker: TrackerIndex, url: &str) {
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
                self.announcer.tracker_closed(js::now(), tracker);
            }
        }
    }

    fn on_socket(&mut self, tracker: TrackerIndex, event: SocketEvent) {
        let now = js::now();
        match event {
            SocketEvent::Open => self.announcer.tracker_connected(now, tracker),
            SocketEvent::Text(text) => self.announcer.handle_message(now, tracker, &text),
            SocketEvent::Closed => {
                // "error" and "close" both come: count the loss once.
                if self.sockets.remove(&tracker).is_some() {
                    self.announcer.tracker_closed(now, tracker);
                }
            }
        }
    }

    fn channel_sink(&self) -> EventSink {
        let weak = self.me.clone();
        Rc::new(move |key, event| dispatch(&weak, move |s| s.on_channel(key, event)))
    }

    fn new_conn(&mut self) -> Option<PeerKey> {
        if self.conns.len() >= self.settings.max_peers {
            return None;
        }
        let key = self.new_key();
        match PeerConn::new(key, &self.settings.ice_servers, self.channel_sink()) {
            Ok(rtc) => {
                self.conns.insert(
                    key,
                    Conn {
                        rtc,
                        since: None,
                        in_engine: false,
                        early: EarlyBytes::default(),
                    },
                );
                Some(key)
            }
            Err(e) => {
                self.warn(&format!("cannot create a peer connection: {e}"));
                None
            }
        }
    }

    fn create_offer(&mut self, offer: swarm::tracker::OfferId) {
        let Some(key) = self.new_conn() else {
            self.announcer.offer_failed(js::now(), offer);
            return;
        };
        let Some(conn) = self.conns.get_mut(&key) else {
            return;
        };
        let pc = conn.rtc.start_offer();
        self.offers.insert(offer, key);
        let weak = self.me.clone();
        wasm_bindgen_futures::spawn_local(async move {
            let result = rtc::create_offer(&pc).await;
            dispatch(&weak, move |s| match result {
                Ok(sdp) => s.announcer.offer_ready(js::now(), offer, sdp),
                Err(_) => {
                    if let Some(key) = s.offers.remove(&offer) {
                        s.conns.remove(&key);
                    }
                    s.announcer.offer_failed(js::now(), offer);
                }
            });
        });
    }

    fn accept_answer(&mut self, offer: swarm::tracker::OfferId, sdp: String) {
        let Some(key) = self.offers.remove(&offer) else {
            return;
        };
        let Some(conn) = self.conns.get_mut(&key) else {
            return;
        };
        conn.since = Some(js::now());
        let pc = conn.rtc.connection();
        let weak = self.me.clone();
        wasm_bindgen_futures::spawn_local(async move {
            if rtc::accept_answer(&pc, &sdp).await.is_err() {
                dispatch(&weak, move |s| s.remove_conn(key));
            }
        });
    }

    fn answer_offer(
        &mut self,
        tracker: TrackerIndex,
        offer: swarm::tracker::OfferId,
        peer: swarm::PeerId,
        sdp: String,
    ) {
        let Some(key) = self.new_conn() else {
            return;
        };
        let Some(conn) = self.conns.get_mut(&key) else {
            return;
        };
        conn.since = Some(js::now());
        let pc = conn.rtc.expect_channel();
        let weak = self.me.clone();
        wasm_bindgen_futures::spawn_local(async move {
            let result = rtc::create_answer(&pc, &sdp).await;
            dispatch(&weak, move |s| match result {
                Ok(answer) => s
                    .announcer
                    .answer_ready(js::now(), tracker, offer, peer, answer),
                Err(_) => s.remove_conn(key),
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
                    .is_some_and(|c| c.rtc.adopt_channel(dc));
                if open {
                    self.on_channel(key, ChannelEvent::Open);
                }
            }
            ChannelEvent::Open => {
                let Some(conn) = self.conns.get_mut(&key) else {
                    return;
                };
                if conn.in_engine || !conn.rtc.is_open() {
                    return;
                }
                conn.in_engine = true;
                let early = conn.early.take();
                self.torrent.add_peer(now, key);
                if !early.is_empty() {
                    self.torrent.handle_peer_data(now, key, &early);
                }
            }
            ChannelEvent::Data(bytes) => {
                let Some(conn) = self.conns.get_mut(&key) else {
                    return;
                };
                if conn.in_engine {
                    self.torrent.handle_peer_data(now, key, &bytes);
                } else if !conn.early.push(&bytes) {
                    self.warn("a peer sent too much before its channel opened");
                    self.remove_conn(key);
                }
            }
            ChannelEvent::Drained => {
                if self.conns.get_mut(&key).is_some_and(|c| c.rtc.drained()) {
                    self.torrent.set_send_blocked(now, key, false);
                }
            }
            ChannelEvent::Closed => self.remove_conn(key),
        }
    }
}
