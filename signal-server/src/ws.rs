//! The WebSocket shell around the tracker: one task per connection plus a
//! writer task fed by a bounded channel.
//!
//! Per frame: parse JSON (no lock held), lock the hub, let the tracker
//! decide, copy out the senders, unlock, serialize and queue. A slow reader
//! whose queue is full loses messages instead of holding memory; a silent
//! socket is closed after `idle_timeout`; an oversized message closes it.

use std::net::SocketAddr;

use axum::Extension;
use axum::extract::ws::{CloseFrame, Message, WebSocket, WebSocketUpgrade, close_code};
use axum::extract::{ConnectInfo, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use fanswarm_tracker::{ConnectionId, OutMessage, Outbox};
use futures_util::{Sink, SinkExt, Stream, StreamExt};
use swarm::tracker::{ClientMessage, parse_client_message};
use tokio::sync::mpsc;

use crate::listen::Refused;
use crate::state::AppState;

/// `GET /announce`: upgrade to the tracker protocol, unless the client's
/// address already holds `max_connections_per_address` tracker sockets
/// (429) or the server holds `max_connections` in all (503: the listener's
/// descriptors are kept for the web seed and the sockets already open).
/// Requests without an address (tests calling the router directly) are
/// not counted.
pub async fn announce(
    ws: WebSocketUpgrade,
    State(state): State<AppState>,
    peer: Option<Extension<ConnectInfo<SocketAddr>>>,
) -> Response {
    let slot = match peer {
        Some(Extension(ConnectInfo(addr))) => match state.addresses.claim(addr.ip()) {
            Ok(slot) => Some(slot),
            Err(Refused::Address) => {
                state.metrics.count_refused_address();
                tracing::debug!(%addr, "too many tracker sockets from one address");
                return (
                    StatusCode::TOO_MANY_REQUESTS,
                    "too many tracker connections from your address\n",
                )
                    .into_response();
            }
            Err(Refused::Full { max }) => {
                // Logged once per burst by the table, not here per socket.
                state.metrics.count_refused_full();
                return (
                    StatusCode::SERVICE_UNAVAILABLE,
                    [(header::RETRY_AFTER, "30")],
                    format!(
                        "the tracker is full: {max} connections open, its limit \
                         (--max-connections); try again later\n"
                    ),
                )
                    .into_response();
            }
        },
        None => None,
    };
    let limits = &state.limits;
    let max = limits.max_message_bytes;
    ws.max_message_size(max)
        .max_frame_size(max)
        .read_buffer_size(limits.read_buffer_bytes)
        // Each send is flushed at once anyway: no write batching buffer.
        .write_buffer_size(0)
        .max_write_buffer_size(limits.max_write_buffer_bytes)
        .on_upgrade(move |socket: WebSocket| {
            let (sink, stream) = socket.split();
            async move {
                // Held for as long as the socket is served.
                let _slot = slot;
                serve_connection(state, sink, stream).await;
            }
        })
}

/// Runs one tracker connection until it closes, errs or goes silent.
///
/// Generic over the socket halves so it can be driven by channels.
pub async fn serve_connection<Tx, Rx, E>(state: AppState, mut sink: Tx, mut stream: Rx)
where
    Tx: Sink<Message> + Unpin + Send + 'static,
    Rx: Stream<Item = Result<Message, E>> + Unpin,
{
    let id = state.next_connection();
    let (tx, mut rx) = mpsc::channel::<Message>(state.limits.outgoing_queue);
    {
        let now = state.now();
        let mut hub = state.hub();
        hub.tracker.connect(now, id);
        hub.senders.insert(id, tx);
    }
    let writer = tokio::spawn(async move {
        while let Some(message) = rx.recv().await {
            if sink.send(message).await.is_err() {
                break;
            }
        }
        let _ = sink.close().await;
    });

    let idle = state.limits.idle_timeout;
    let mut shutdown = state.shutdown();
    loop {
        let next = tokio::select! {
            next = tokio::time::timeout(idle, stream.next()) => next,
            () = crate::listen::stopped(&mut shutdown) => {
                // The peer reconnects (to this server restarted, or to
                // another) rather than wait for a timeout.
                let going_away = Message::Close(Some(CloseFrame {
                    code: close_code::AWAY,
                    reason: "server shutting down".into(),
                }));
                if let Some(tx) = state.hub().senders.get(&id) {
                    let _ = tx.try_send(going_away);
                }
                break;
            }
        };
        let frame = match next {
            Ok(Some(Ok(frame))) => frame,
            Ok(Some(Err(_))) | Ok(None) => break,
            Err(_) => {
                tracing::debug!(?id, "closing idle tracker connection");
                break;
            }
        };
        match frame {
            Message::Text(text) => handle_frame(&state, id, text.as_bytes()),
            Message::Binary(bytes) => handle_frame(&state, id, &bytes),
            Message::Ping(_) | Message::Pong(_) => {}
            Message::Close(_) => break,
        }
    }

    let events = {
        let mut hub = state.hub();
        hub.tracker.disconnect(id);
        // Dropping the last sender ends the writer task.
        hub.senders.remove(&id);
        hub.tracker.drain_cluster()
    };
    state.to_cluster(events);
    state.offload.forget_connection(id);
    let _ = writer.await;
}

/// Parses, decides, then queues every resulting message.
fn handle_frame(state: &AppState, id: ConnectionId, frame: &[u8]) {
    let request = parse_client_message(frame);
    match &request {
        Ok(ClientMessage::Announce(a)) => {
            state.metrics.announces.inc();
            if let (Some(uploaded), Some(track)) = (a.uploaded, state.catalog().get(&a.info_hash)) {
                let day = state.today();
                let length = track.length;
                state
                    .offload
                    .report_uploaded(day, id, a.info_hash, uploaded, length);
            }
        }
        Ok(ClientMessage::Scrape(_)) => {
            state.metrics.scrapes.inc();
        }
        Err(_) => {}
    }
    let now = state.now();
    let mut out = Vec::new();
    let events = {
        let mut hub = state.hub();
        let hub = &mut *hub;
        hub.tracker.handle(now, &mut hub.rng, id, request, &mut out);
        hub.tracker.drain_cluster()
    };
    state.to_cluster(events);
    deliver(state, out);
}

/// Serializes and queues each message to its connection, outside the
/// hub's lock (it is taken briefly to copy the senders).
pub(crate) fn deliver(state: &AppState, out: Outbox) {
    if out.is_empty() {
        return;
    }
    let deliveries: Vec<(Option<mpsc::Sender<Message>>, OutMessage)> = {
        let hub = state.hub();
        out.into_iter()
            .map(|(to, msg)| (hub.senders.get(&to).cloned(), msg))
            .collect()
    };
    for (sender, message) in deliveries {
        state.metrics.count_out(&message);
        let Some(sender) = sender else { continue };
        let text = match serde_json::to_string(&message.into_server_message()) {
            Ok(text) => text,
            Err(e) => {
                tracing::error!(%e, "tracker message failed to serialize");
                continue;
            }
        };
        if sender.try_send(Message::Text(text.into())).is_err() {
            state.metrics.outgoing_dropped.inc();
        }
    }
}
