//! WebRTC plumbing for the native peer: one `RTCPeerConnection` and one
//! ordered, reliable data channel per remote peer, made the way WebTorrent
//! makes them (non-trickle: the SDP goes out only once ICE gathering is
//! complete, or its time is up).
//!
//! Nothing here decides anything. Every connection reports [`ConnEvent`]s to
//! the [`ConnSink`] it was made with, tagged with the [`PeerKey`] the node
//! gave it: the remote's channel arrived, the channel opened, bytes arrived,
//! the send buffer crossed a watermark, the channel or the connection went
//! away. Bytes to send go through one writer task per channel, so they
//! leave in the order the node produced them. This module knows nothing of
//! the driver: the sink is how it is told where reports go.

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use bytes::BytesMut;
use tokio::sync::{Notify, mpsc};
use webrtc::data_channel::{DataChannel, DataChannelEvent, RTCDataChannelState};
use webrtc::peer_connection::{
    PeerConnection, PeerConnectionBuilder, PeerConnectionEventHandler, RTCConfigurationBuilder,
    RTCIceGatheringState, RTCIceServer, RTCIceTransportPolicy, RTCPeerConnectionState,
    RTCSessionDescription,
};

use swarm::engine::PeerKey;

/// A peer connection, shared between the driver and the tasks that use it.
pub(crate) type Pc = Arc<dyn PeerConnection>;
/// A data channel, shared between its reader and writer tasks.
pub(crate) type Dc = Arc<dyn DataChannel>;

/// Above this many unsent bytes in a channel the node stops serving it…
pub(crate) const HIGH_WATER: u32 = 1024 * 1024;
/// …and below this it starts again. Both far under Chromium's 16 MiB queue.
pub(crate) const LOW_WATER: u32 = 256 * 1024;
/// Largest message we hand the channel: the channel is a byte stream to the
/// wire protocol, and 16 KiB messages are what every browser accepts.
const MAX_MESSAGE: usize = 16 * 1024;

/// What a connection reports.
pub(crate) enum ConnEvent {
    /// The remote created a data channel on a connection we answered.
    Channel(Dc),
    /// The data channel opened.
    Open,
    /// Bytes arrived on the channel.
    Data(BytesMut),
    /// The send buffer crossed [`HIGH_WATER`] (`true`) or drained below
    /// [`LOW_WATER`] (`false`).
    SendBlocked(bool),
    /// The channel closed, or the connection failed or closed.
    Gone,
}

/// Where a connection's events go; returns `false` once nobody listens.
pub(crate) type ConnSink = Arc<dyn Fn(PeerKey, ConnEvent) -> bool + Send + Sync>;

/// How connections are made.
#[derive(Debug, Clone)]
pub struct RtcConfig {
    /// Local address the UDP sockets bind (port 0). `0.0.0.0` means every
    /// non-loopback interface; tests on one machine use `127.0.0.1`.
    pub bind: IpAddr,
    /// STUN and TURN servers, for peers behind NAT on the real internet.
    pub ice_servers: Vec<IceServer>,
    /// Longest wait for ICE gathering before the SDP goes out as it is.
    pub gather_timeout: Duration,
    /// Relayed candidates only (`iceTransportPolicy: "relay"`).
    pub relay_only: bool,
}

/// One STUN or TURN server.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct IceServer {
    /// `stun:host:port` or `turn:host:port?transport=udp`.
    pub url: String,
    /// TURN user name (empty for STUN).
    pub username: String,
    /// TURN password (empty for STUN).
    pub credential: String,
}

impl Default for RtcConfig {
    fn default() -> Self {
        RtcConfig {
            bind: IpAddr::from([0, 0, 0, 0]),
            ice_servers: Vec::new(),
            gather_timeout: Duration::from_secs(5),
            relay_only: false,
        }
    }
}

/// Why a connection could not be set up.
#[derive(Debug, thiserror::Error)]
pub enum RtcError {
    /// The WebRTC stack refused (bad SDP from the remote, socket errors…).
    #[error("WebRTC: {0}")]
    Webrtc(#[from] webrtc::error::Error),
    /// The connection has no local description after gathering.
    #[error("no local description after ICE gathering")]
    NoLocalDescription,
}

/// A fresh connection with our data channel and a complete offer.
pub(crate) async fn make_offer(
    config: &RtcConfig,
    key: PeerKey,
    sink: ConnSink,
) -> Result<(Pc, Dc, String), RtcError> {
    let gathered = Arc::new(Notify::new());
    let pc = build(config, key, sink, gathered.clone()).await?;
    let result = async {
        // The label is arbitrary; WebTorrent peers accept any.
        let dc = pc.create_data_channel("fanswarm", None).await?;
        let offer = pc.create_offer(None).await?;
        pc.set_local_description(offer).await?;
        let sdp = gathered_sdp(&pc, &gathered, config.gather_timeout).await?;
        Ok((dc, sdp))
    }
    .await;
    match result {
        Ok((dc, sdp)) => Ok((pc, dc, sdp)),
        Err(e) => {
            close(pc);
            Err(e)
        }
    }
}

/// A fresh connection answering `offer_sdp`; the remote's channel arrives
/// later as [`ConnEvent::Channel`].
pub(crate) async fn make_answer(
    config: &RtcConfig,
    key: PeerKey,
    sink: ConnSink,
    offer_sdp: String,
) -> Result<(Pc, String), RtcError> {
    let gathered = Arc::new(Notify::new());
    let pc = build(config, key, sink, gathered.clone()).await?;
    let result = async {
        pc.set_remote_description(RTCSessionDescription::offer(offer_sdp)?)
            .await?;
        let answer = pc.create_answer(None).await?;
        pc.set_local_description(answer).await?;
        gathered_sdp(&pc, &gathered, config.gather_timeout).await
    }
    .await;
    match result {
        Ok(sdp) => Ok((pc, sdp)),
        Err(e) => {
            close(pc);
            Err(e)
        }
    }
}

/// Applies the remote's answer to one of our offers.
pub(crate) async fn accept_answer(pc: &Pc, sdp: String) -> Result<(), RtcError> {
    pc.set_remote_description(RTCSessionDescription::answer(sdp)?)
        .await?;
    Ok(())
}

/// Closes a connection in the background (closing waits on its driver).
pub(crate) fn close(pc: Pc) {
    tokio::spawn(async move {
        if let Err(e) = pc.close().await {
            tracing::debug!(%e, "closing a peer connection");
        }
    });
}

/// Closes a data channel nobody will use (a second one, or one for a
/// connection already given up).
pub(crate) fn close_channel(dc: Dc) {
    tokio::spawn(async move {
        let _ = dc.close().await;
    });
}

/// Starts the reader and writer tasks of a data channel. The returned sender
/// takes whole wire messages; dropping it ends the writer and closes the
/// channel.
pub(crate) fn start_channel(
    key: PeerKey,
    dc: Dc,
    sink: ConnSink,
) -> mpsc::UnboundedSender<Vec<u8>> {
    let (tx, mut rx) = mpsc::unbounded_channel::<Vec<u8>>();
    let reader = dc.clone();
    tokio::spawn(async move {
        let _ = reader.set_buffered_amount_low_threshold(LOW_WATER).await;
        let _ = reader.set_buffered_amount_high_threshold(HIGH_WATER).await;
        if matches!(reader.ready_state().await, Ok(RTCDataChannelState::Open)) {
            sink(key, ConnEvent::Open);
        }
        while let Some(event) = reader.poll().await {
            let event = match event {
                DataChannelEvent::OnOpen => ConnEvent::Open,
                DataChannelEvent::OnMessage(message) => ConnEvent::Data(message.data),
                DataChannelEvent::OnBufferedAmountHigh => ConnEvent::SendBlocked(true),
                DataChannelEvent::OnBufferedAmountLow => ConnEvent::SendBlocked(false),
                DataChannelEvent::OnClose => break,
                _ => continue,
            };
            if !sink(key, event) {
                return; // the driver is gone
            }
        }
        sink(key, ConnEvent::Gone);
    });
    tokio::spawn(async move {
        while let Some(data) = rx.recv().await {
            for chunk in data.chunks(MAX_MESSAGE) {
                if dc.send(BytesMut::from(chunk)).await.is_err() {
                    return; // closed: the reader reports it
                }
            }
        }
        // The driver let go: the connection is being closed.
        let _ = dc.close().await;
    });
    tx
}

/// Reports connection-level events of one connection to its sink.
struct Events {
    key: PeerKey,
    sink: ConnSink,
    gathered: Arc<Notify>,
}

#[async_trait::async_trait]
impl PeerConnectionEventHandler for Events {
    async fn on_ice_gathering_state_change(&self, state: RTCIceGatheringState) {
        if state == RTCIceGatheringState::Complete {
            // notify_one keeps a permit if nobody waits yet.
            self.gathered.notify_one();
        }
    }

    async fn on_connection_state_change(&self, state: RTCPeerConnectionState) {
        if matches!(
            state,
            RTCPeerConnectionState::Failed | RTCPeerConnectionState::Closed
        ) {
            (self.sink)(self.key, ConnEvent::Gone);
        }
    }

    async fn on_data_channel(&self, dc: Arc<dyn DataChannel>) {
        // Runs on the connection's driver: hand over, never wait here.
        (self.sink)(self.key, ConnEvent::Channel(dc));
    }
}

async fn build(
    config: &RtcConfig,
    key: PeerKey,
    sink: ConnSink,
    gathered: Arc<Notify>,
) -> Result<Pc, RtcError> {
    let ice_servers = config
        .ice_servers
        .iter()
        .map(|s| RTCIceServer {
            urls: vec![s.url.clone()],
            username: s.username.clone(),
            credential: s.credential.clone(),
        })
        .collect();
    let pc = PeerConnectionBuilder::new()
        .with_configuration(
            RTCConfigurationBuilder::new()
                .with_ice_servers(ice_servers)
                .with_ice_transport_policy(if config.relay_only {
                    RTCIceTransportPolicy::Relay
                } else {
                    RTCIceTransportPolicy::All
                })
                .build(),
        )
        .with_handler(Arc::new(Events {
            key,
            sink,
            gathered,
        }))
        .with_udp_addrs(vec![SocketAddr::new(config.bind, 0)])
        .build()
        .await?;
    Ok(Arc::new(pc))
}

/// The local SDP once gathering completed (or its time ran out: what was
/// gathered by then still makes a usable, if poorer, description).
async fn gathered_sdp(pc: &Pc, gathered: &Notify, wait: Duration) -> Result<String, RtcError> {
    if tokio::time::timeout(wait, gathered.notified())
        .await
        .is_err()
    {
        tracing::debug!("ICE gathering timed out; sending the candidates found so far");
    }
    pc.local_description()
        .await
        .map(|d| d.sdp)
        .ok_or(RtcError::NoLocalDescription)
}
