//! One WebRTC peer: an `RTCPeerConnection` with one ordered, reliable data
//! channel, complete (non-trickle) offers and answers, and the listeners
//! that report what happens to the session.
//!
//! Every listener is a gloo `EventListener` stored in the [`PeerConn`] it
//! belongs to, so dropping the connection removes them; none is leaked.

use std::rc::Rc;

use gloo_events::EventListener;
use gloo_timers::future::TimeoutFuture;
use wasm_bindgen::{JsCast, JsValue};
use wasm_bindgen_futures::JsFuture;
use web_sys::{
    MessageEvent, RtcConfiguration, RtcDataChannel, RtcDataChannelEvent, RtcDataChannelInit,
    RtcDataChannelType, RtcIceGatheringState, RtcPeerConnection, RtcPeerConnectionState,
    RtcSdpType, RtcSessionDescriptionInit,
};

use swarm::engine::PeerKey;

use crate::channel::{LOW_WATER, MAX_CHANNEL_MESSAGE, split_messages, watermark_crossing};
use crate::js::{JsError, js_error};

/// Longest wait for ICE gathering; an offer goes out with the candidates
/// found by then (the reference client waits 5 s too).
const ICE_GATHER_TIMEOUT_MS: u32 = 5_000;

/// What a connection reports to the session.
#[derive(Debug)]
pub enum ChannelEvent {
    /// The remote side created its data channel (answering side).
    Incoming(RtcDataChannel),
    /// The data channel opened: the engine can handshake.
    Open,
    /// Bytes arrived.
    Data(Vec<u8>),
    /// The send buffer drained below the low-water mark.
    Drained,
    /// The channel or the connection closed or failed.
    Closed,
}

/// Where a connection's events go: the session, by connection key.
pub type EventSink = Rc<dyn Fn(PeerKey, ChannelEvent)>;

/// One peer connection and everything registered on it.
pub struct PeerConn {
    key: PeerKey,
    pc: RtcPeerConnection,
    channel: Option<RtcDataChannel>,
    sink: EventSink,
    blocked: bool,
    pc_listeners: Vec<EventListener>,
    channel_listeners: Vec<EventListener>,
}

impl PeerConn {
    /// Hands an open connection a new configuration (fresh TURN
    /// credentials, so its relay outlives the old ones). A browser that
    /// refuses (a changed policy) keeps the old one.
    pub fn reconfigure(&self, config: &JsValue) {
        let _ = self
            .pc
            .set_configuration_with_configuration(config.unchecked_ref());
    }

    /// A connection with the given `RTCConfiguration`, or else with these
    /// ICE servers (STUN/TURN URLs).
    pub fn new(
        key: PeerKey,
        ice_servers: &[String],
        rtc_config: Option<&JsValue>,
        sink: EventSink,
    ) -> Result<Self, JsError> {
        let pc = match rtc_config {
            Some(config) => RtcPeerConnection::new_with_configuration(config.unchecked_ref()),
            None => {
                let config = RtcConfiguration::new();
                let servers = js_sys::Array::new();
                for url in ice_servers {
                    let server = js_sys::Object::new();
                    js_sys::Reflect::set(&server, &"urls".into(), &JsValue::from_str(url))
                        .map_err(js_error)?;
                    servers.push(&server);
                }
                config.set_ice_servers(&servers);
                RtcPeerConnection::new_with_configuration(&config)
            }
        }
        .map_err(js_error)?;
        let on_state = {
            let sink = sink.clone();
            let pc2 = pc.clone();
            EventListener::new(&pc, "connectionstatechange", move |_| {
                if matches!(
                    pc2.connection_state(),
                    RtcPeerConnectionState::Failed | RtcPeerConnectionState::Closed
                ) {
                    sink(key, ChannelEvent::Closed);
                }
            })
        };
        Ok(PeerConn {
            key,
            pc,
            channel: None,
            sink,
            blocked: false,
            pc_listeners: vec![on_state],
            channel_listeners: Vec::new(),
        })
    }

    /// The offering side: creates the data channel; then [`create_offer`]
    /// on the returned connection.
    pub fn start_offer(&mut self) -> RtcPeerConnection {
        let init = RtcDataChannelInit::new();
        init.set_ordered(true);
        let dc = self
            .pc
            .create_data_channel_with_data_channel_dict("fanswarm", &init);
        self.attach_channel(dc);
        self.pc.clone()
    }

    /// The answering side: the offerer creates the channel, which arrives
    /// as [`ChannelEvent::Incoming`]; hand it to [`PeerConn::adopt_channel`].
    pub fn expect_channel(&mut self) -> RtcPeerConnection {
        let sink = self.sink.clone();
        let key = self.key;
        let listener = EventListener::new(&self.pc, "datachannel", move |event| {
            if let Some(event) = event.dyn_ref::<RtcDataChannelEvent>() {
                sink(key, ChannelEvent::Incoming(event.channel()));
            }
        });
        self.pc_listeners.push(listener);
        self.pc.clone()
    }

    /// Takes the channel the remote side created (the first one only);
    /// returns whether it is open already.
    pub fn adopt_channel(&mut self, dc: RtcDataChannel) -> bool {
        if self.channel.is_some() {
            dc.close();
            return false;
        }
        let open = dc.ready_state() == web_sys::RtcDataChannelState::Open;
        self.attach_channel(dc);
        open
    }

    /// Writes engine bytes to the channel; returns `Some(blocked)` when the
    /// engine must be told the send buffer crossed a watermark.
    pub fn send(&mut self, data: &[u8]) -> Result<Option<bool>, JsError> {
        let Some(dc) = &self.channel else {
            return Err(JsError("no data channel yet".into()));
        };
        for part in split_messages(data, MAX_CHANNEL_MESSAGE) {
            dc.send_with_u8_array(part).map_err(js_error)?;
        }
        let crossing = watermark_crossing(dc.buffered_amount(), self.blocked);
        if let Some(b) = crossing {
            self.blocked = b;
        }
        Ok(crossing)
    }

    /// Called on `bufferedamountlow`: whether the engine may serve again.
    pub fn drained(&mut self) -> bool {
        let buffered = self.channel.as_ref().map_or(0, |dc| dc.buffered_amount());
        match watermark_crossing(buffered, self.blocked) {
            Some(b) => {
                self.blocked = b;
                !b
            }
            None => false,
        }
    }

    /// The browser connection, for the async offer/answer steps.
    pub fn connection(&self) -> RtcPeerConnection {
        self.pc.clone()
    }

    /// Whether the data channel is open.
    pub fn is_open(&self) -> bool {
        self.channel
            .as_ref()
            .is_some_and(|dc| dc.ready_state() == web_sys::RtcDataChannelState::Open)
    }

    fn attach_channel(&mut self, dc: RtcDataChannel) {
        dc.set_binary_type(RtcDataChannelType::Arraybuffer);
        dc.set_buffered_amount_low_threshold(LOW_WATER);
        let key = self.key;
        let sink = &self.sink;
        let listeners = vec![
            {
                let sink = sink.clone();
                EventListener::new(&dc, "open", move |_| sink(key, ChannelEvent::Open))
            },
            {
                let sink = sink.clone();
                EventListener::new(&dc, "message", move |event| {
                    let Some(event) = event.dyn_ref::<MessageEvent>() else {
                        return;
                    };
                    // Text messages are not part of the wire protocol: ignored.
                    if let Ok(buffer) = event.data().dyn_into::<js_sys::ArrayBuffer>() {
                        sink(
                            key,
                            ChannelEvent::Data(js_sys::Uint8Array::new(&buffer).to_vec()),
                        );
                    }
                })
            },
            {
                let sink = sink.clone();
                EventListener::new(&dc, "bufferedamountlow", move |_| {
                    sink(key, ChannelEvent::Drained)
                })
            },
            {
                let sink = sink.clone();
                EventListener::new(&dc, "close", move |_| sink(key, ChannelEvent::Closed))
            },
            {
                let sink = sink.clone();
                EventListener::new(&dc, "error", move |_| sink(key, ChannelEvent::Closed))
            },
        ];
        self.channel_listeners = listeners;
        self.channel = Some(dc);
    }
}

impl Drop for PeerConn {
    fn drop(&mut self) {
        // Listeners go first (fields drop after this), so closing fires
        // nothing into a session that is letting go of this connection.
        self.channel_listeners.clear();
        self.pc_listeners.clear();
        if let Some(dc) = &self.channel {
            dc.close();
        }
        self.pc.close();
    }
}

/// Creates a complete offer on `pc` (whose channel exists): SDP with every
/// candidate gathered within the timeout.
pub async fn create_offer(pc: &RtcPeerConnection) -> Result<String, JsError> {
    let offer = JsFuture::from(pc.create_offer()).await.map_err(js_error)?;
    let init: RtcSessionDescriptionInit = offer.unchecked_into();
    JsFuture::from(pc.set_local_description(&init))
        .await
        .map_err(js_error)?;
    local_sdp_after_gathering(pc).await
}

/// Answers a remote offer on `pc`: SDP with every candidate gathered.
pub async fn create_answer(pc: &RtcPeerConnection, offer_sdp: &str) -> Result<String, JsError> {
    let remote = RtcSessionDescriptionInit::new(RtcSdpType::Offer);
    remote.set_sdp(offer_sdp);
    JsFuture::from(pc.set_remote_description(&remote))
        .await
        .map_err(js_error)?;
    let answer = JsFuture::from(pc.create_answer()).await.map_err(js_error)?;
    let init: RtcSessionDescriptionInit = answer.unchecked_into();
    JsFuture::from(pc.set_local_description(&init))
        .await
        .map_err(js_error)?;
    local_sdp_after_gathering(pc).await
}

/// Applies the remote answer to our offer.
pub async fn accept_answer(pc: &RtcPeerConnection, answer_sdp: &str) -> Result<(), JsError> {
    let remote = RtcSessionDescriptionInit::new(RtcSdpType::Answer);
    remote.set_sdp(answer_sdp);
    JsFuture::from(pc.set_remote_description(&remote))
        .await
        .map_err(js_error)?;
    Ok(())
}

async fn local_sdp_after_gathering(pc: &RtcPeerConnection) -> Result<String, JsError> {
    let step = 20;
    let mut waited = 0;
    while pc.ice_gathering_state() != RtcIceGatheringState::Complete
        && waited < ICE_GATHER_TIMEOUT_MS
    {
        TimeoutFuture::new(step).await;
        waited += step;
    }
    if pc.connection_state() == RtcPeerConnectionState::Closed {
        return Err(JsError("connection closed while gathering".into()));
    }
    pc.local_description()
        .map(|d| d.sdp())
        .ok_or_else(|| JsError("no local description after gathering".into()))
}
