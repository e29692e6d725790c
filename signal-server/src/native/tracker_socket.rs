//! One WebSocket to one tracker: text frames in and out, nothing else.
//!
//! The shared tracker client state machine (`swarm::announce`) decides what
//! to say and when to reconnect; this task only carries frames. It reports
//! [`Input::TrackerUp`] with a sender for outgoing frames once connected,
//! [`Input::TrackerText`] for each text frame, and [`Input::TrackerDown`]
//! when the socket ends for any reason. Each socket carries the generation
//! the driver gave it, so reports of a replaced socket are recognised.

use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use swarm::announce::TrackerIndex;
use tokio::sync::mpsc;
use tokio_tungstenite::tungstenite::Message;

use super::driver::{Inbox, Input};

/// Longest wait for a tracker's WebSocket handshake.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// Tracker frames larger than this are refused (aquatic allows 64 KiB).
const MAX_MESSAGE: usize = 256 * 1024;

/// Connects to `url` and carries frames until either side stops.
pub(super) fn spawn(tracker: TrackerIndex, generation: u64, url: String, inbox: Inbox) {
    tokio::spawn(async move {
        run(tracker, generation, &url, &inbox).await;
        let _ = inbox.send(Input::TrackerDown {
            tracker,
            generation,
        });
    });
}

async fn run(tracker: TrackerIndex, generation: u64, url: &str, inbox: &Inbox) {
    let config = tokio_tungstenite::tungstenite::protocol::WebSocketConfig::default()
        .max_message_size(Some(MAX_MESSAGE))
        .max_frame_size(Some(MAX_MESSAGE));
    let connect = tokio_tungstenite::connect_async_with_config(url, Some(config), false);
    let ws = match tokio::time::timeout(CONNECT_TIMEOUT, connect).await {
        Ok(Ok((ws, _))) => ws,
        Ok(Err(e)) => {
            tracing::debug!(%url, %e, "tracker connection failed");
            return;
        }
        Err(_) => {
            tracing::debug!(%url, "tracker connection timed out");
            return;
        }
    };
    let (mut sink, mut stream) = ws.split();
    let (tx, mut outgoing) = mpsc::unbounded_channel::<String>();
    if inbox
        .send(Input::TrackerUp {
            tracker,
            generation,
            sender: tx,
        })
        .is_err()
    {
        return;
    }
    loop {
        tokio::select! {
            frame = outgoing.recv() => match frame {
                Some(text) => {
                    if sink.send(Message::text(text)).await.is_err() {
                        return;
                    }
                }
                None => {
                    // The driver let go: leave politely.
                    let _ = sink.send(Message::Close(None)).await;
                    return;
                }
            },
            message = stream.next() => match message {
                Some(Ok(Message::Text(text))) => {
                    let input = Input::TrackerText { tracker, generation, text: text.to_string() };
                    if inbox.send(input).is_err() {
                        return;
                    }
                }
                // Some trackers send JSON in binary frames.
                Some(Ok(Message::Binary(bytes))) => {
                    let text = String::from_utf8_lossy(&bytes).into_owned();
                    if inbox.send(Input::TrackerText { tracker, generation, text }).is_err() {
                        return;
                    }
                }
                Some(Ok(Message::Close(_))) | Some(Err(_)) | None => return,
                Some(Ok(_)) => {}
            },
        }
    }
}
