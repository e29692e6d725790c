//! One WebSocket to one tracker: text frames in and out, nothing else.
//!
//! The node's tracker client (`swarm::announce`, inside `swarm::node`)
//! decides what to say and when to reconnect; this task only carries
//! frames. It reports [`SocketEvent::Up`] with a sender for outgoing frames
//! once connected, [`SocketEvent::Text`] for each text frame, and
//! [`SocketEvent::Down`] when the socket ends for any reason, to the sink
//! it was started with. Dropping the sender sends a close frame after every
//! frame queued before it (the `stopped` announce when leaving). How long
//! a connect may take is the node's to say (it closes the tracker): the
//! owner then aborts the task.

use std::sync::Arc;

use futures_util::{SinkExt, StreamExt};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tokio_tungstenite::Connector;
use tokio_tungstenite::tungstenite::Message;

/// Tracker frames larger than this are refused (aquatic allows 64 KiB).
const MAX_MESSAGE: usize = 256 * 1024;

/// What a tracker socket reports.
pub(crate) enum SocketEvent {
    /// Connected: frames sent here go out in order.
    Up(mpsc::UnboundedSender<String>),
    /// A frame arrived (binary frames are taken as UTF-8 text: some
    /// trackers send JSON that way).
    Text(String),
    /// The socket ended, failed or never connected.
    Down,
}

/// Connects to `url` and carries frames until either side stops; `sink`
/// returns `false` once nobody listens.
pub(crate) fn spawn(
    url: String,
    tls: Arc<rustls::ClientConfig>,
    sink: impl Fn(SocketEvent) -> bool + Send + Sync + 'static,
) -> JoinHandle<()> {
    tokio::spawn(async move {
        run(&url, tls, &sink).await;
        sink(SocketEvent::Down);
    })
}

async fn run(url: &str, tls: Arc<rustls::ClientConfig>, sink: &impl Fn(SocketEvent) -> bool) {
    let config = tokio_tungstenite::tungstenite::protocol::WebSocketConfig::default()
        .max_message_size(Some(MAX_MESSAGE))
        .max_frame_size(Some(MAX_MESSAGE));
    // `wss://` is checked against `tls`; `ws://` ignores it.
    let connect = tokio_tungstenite::connect_async_tls_with_config(
        url,
        Some(config),
        false,
        Some(Connector::Rustls(tls)),
    );
    let ws = match connect.await {
        Ok((ws, _)) => ws,
        Err(e) => {
            tracing::debug!(%url, %e, "tracker connection failed");
            return;
        }
    };
    let (mut out, mut stream) = ws.split();
    let (tx, mut outgoing) = mpsc::unbounded_channel::<String>();
    if !sink(SocketEvent::Up(tx)) {
        return;
    }
    loop {
        tokio::select! {
            frame = outgoing.recv() => match frame {
                Some(text) => {
                    if out.send(Message::text(text)).await.is_err() {
                        return;
                    }
                }
                None => {
                    // The driver let go: leave politely.
                    let _ = out.send(Message::Close(None)).await;
                    return;
                }
            },
            message = stream.next() => match message {
                Some(Ok(Message::Text(text))) => {
                    if !sink(SocketEvent::Text(text.to_string())) {
                        return;
                    }
                }
                Some(Ok(Message::Binary(bytes))) => {
                    let text = String::from_utf8_lossy(&bytes).into_owned();
                    if !sink(SocketEvent::Text(text)) {
                        return;
                    }
                }
                Some(Ok(Message::Close(_))) | Some(Err(_)) | None => return,
                Some(Ok(_)) => {}
            },
        }
    }
}
