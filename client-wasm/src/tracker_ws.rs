//! One WebSocket to a WebTorrent tracker. It only moves text frames; what
//! to say and when is `swarm::announce`'s business.

use std::rc::Rc;

use gloo_events::EventListener;
use wasm_bindgen::JsCast;
use web_sys::{BinaryType, MessageEvent, WebSocket};

use swarm::announce::TrackerIndex;

use crate::js::{JsError, js_error};

/// What a tracker socket reports to the session.
#[derive(Debug)]
pub enum SocketEvent {
    /// Connected.
    Open,
    /// A frame (binary frames are read as UTF-8, as some trackers send them).
    Text(String),
    /// Closed or failed; the announcer schedules the reconnect.
    Closed,
}

/// Where socket events go.
pub type SocketSink = Rc<dyn Fn(TrackerIndex, SocketEvent)>;

/// A tracker connection and its listeners.
pub struct TrackerSocket {
    ws: WebSocket,
    _listeners: [EventListener; 4],
}

impl TrackerSocket {
    /// Opens a socket to `url`.
    pub fn connect(index: TrackerIndex, url: &str, sink: SocketSink) -> Result<Self, JsError> {
        let ws = WebSocket::new(url).map_err(js_error)?;
        ws.set_binary_type(BinaryType::Arraybuffer);
        let listener = |name: &'static str, handler: fn(&web_sys::Event) -> Option<SocketEvent>| {
            let sink = sink.clone();
            EventListener::new(&ws, name, move |event| {
                if let Some(e) = handler(event) {
                    sink(index, e);
                }
            })
        };
        let listeners = [
            listener("open", |_| Some(SocketEvent::Open)),
            listener("message", |event| {
                let data = event.dyn_ref::<MessageEvent>()?.data();
                if let Some(text) = data.as_string() {
                    return Some(SocketEvent::Text(text));
                }
                let buffer = data.dyn_into::<js_sys::ArrayBuffer>().ok()?;
                let bytes = js_sys::Uint8Array::new(&buffer).to_vec();
                String::from_utf8(bytes).ok().map(SocketEvent::Text)
            }),
            listener("close", |_| Some(SocketEvent::Closed)),
            listener("error", |_| Some(SocketEvent::Closed)),
        ];
        Ok(TrackerSocket {
            ws,
            _listeners: listeners,
        })
    }

    /// Sends one text frame; a socket that is not open drops it (the
    /// announcer re-announces after reconnecting).
    pub fn send(&self, text: &str) -> Result<(), JsError> {
        if self.ws.ready_state() != WebSocket::OPEN {
            return Err(JsError("tracker socket is not open".into()));
        }
        self.ws.send_with_str(text).map_err(js_error)
    }
}

impl Drop for TrackerSocket {
    fn drop(&mut self) {
        // Listeners are dropped with the struct right after; close quietly.
        let _ = self.ws.close();
    }
}
