//! What the driver does with each node output: I/O only, no decisions.

use std::sync::Arc;
use swarm::announce::{TrackerIndex, TrackerNotice};
use swarm::engine::{Event, PeerKey, PieceOrigin, Source as BlockSource};
use swarm::node::{HttpId, NodeEvent, Output, RangeRequest};
use swarm::time::Time;

use super::{Conn, Driver, Files, Report, TrackerLink, conn_sink};
use crate::fault::Liar;
use crate::rtc::{self, ConnEvent};
use crate::storage::Storage;
use crate::tracker_socket;

impl Driver {
    /// Does everything the node asks until it names its next wake-up.
    pub(super) fn drain(&mut self) -> Time {
        loop {
            match self.node.poll() {
                Output::ConnectTracker { tracker, url } => self.connect_tracker(tracker, url),
                Output::SendTracker { tracker, text } => {
                    // A socket not up (yet, or any more) drops it; the node
                    // announces again once it is.
                    let link = self.trackers.get(&tracker);
                    if let Some(sender) = link.and_then(|l| l.sender.as_ref()) {
                        let _ = sender.send(text);
                    }
                }
                Output::CloseTracker { tracker } => {
                    if let Some(link) = self.trackers.remove(&tracker) {
                        link.close();
                    }
                }
                Output::CreateOffer { conn } => self.create_offer(conn),
                Output::AnswerOffer { conn, sdp } => self.answer_offer(conn, sdp),
                Output::AcceptAnswer { conn, sdp } => self.accept_answer(conn, sdp),
                Output::SendPeer { conn, data } => self.send_to_peer(conn, data),
                Output::CloseConn { conn } => {
                    if let Some(c) = self.conns.remove(&conn) {
                        c.close();
                    }
                }
                Output::HttpGet { id, request } => self.fetch(id, request),
                Output::CancelHttp { id } => {
                    if let Some(request) = self.requests.remove(&id) {
                        request.abort();
                    }
                }
                Output::Event(event) => self.on_event(event),
                Output::Timeout(at) => {
                    self.publish();
                    return at;
                }
            }
        }
    }

    fn connect_tracker(&mut self, tracker: TrackerIndex, url: String) {
        self.next_generation += 1;
        let generation = self.next_generation;
        let inbox = self.inbox.clone();
        let task = tracker_socket::spawn(url, Arc::clone(&self.tls), move |event| {
            let report = Report::Socket {
                tracker,
                generation,
                event,
            };
            inbox.send(report).is_ok()
        });
        let link = TrackerLink {
            generation,
            sender: None,
            task,
        };
        if let Some(old) = self.trackers.insert(tracker, link) {
            old.close();
        }
    }

    fn new_conn(&mut self, conn: PeerKey) {
        let liar = self.corrupt_uploads.then(Liar::new);
        let c = Conn {
            pc: None,
            writer: None,
            liar,
        };
        self.conns.insert(conn, c);
    }

    fn create_offer(&mut self, conn: PeerKey) {
        self.new_conn(conn);
        let (rtc, sink, inbox) = (self.rtc.clone(), conn_sink(&self.inbox), self.inbox.clone());
        tokio::spawn(async move {
            let result = rtc::make_offer(&rtc, conn, sink).await;
            let _ = inbox.send(Report::OfferMade { conn, result });
        });
    }

    fn answer_offer(&mut self, conn: PeerKey, sdp: String) {
        self.new_conn(conn);
        let (rtc, sink, inbox) = (self.rtc.clone(), conn_sink(&self.inbox), self.inbox.clone());
        tokio::spawn(async move {
            let result = rtc::make_answer(&rtc, conn, sink, sdp).await;
            let _ = inbox.send(Report::AnswerMade { conn, result });
        });
    }

    fn accept_answer(&mut self, conn: PeerKey, sdp: String) {
        let Some(pc) = self.conns.get(&conn).and_then(|c| c.pc.clone()) else {
            return;
        };
        let inbox = self.inbox.clone();
        tokio::spawn(async move {
            if let Err(e) = rtc::accept_answer(&pc, sdp).await {
                tracing::debug!(%e, "bad answer");
                let event = ConnEvent::Gone;
                let _ = inbox.send(Report::Conn { conn, event });
            }
        });
    }

    fn send_to_peer(&mut self, conn: PeerKey, data: Vec<u8>) {
        let Some(c) = self.conns.get_mut(&conn) else {
            return;
        };
        let data = match c.liar.as_mut() {
            Some(liar) => liar.corrupt(&data),
            None => data,
        };
        if let Some(writer) = &c.writer {
            // A writer that ended has a closed channel: its reader says so.
            let _ = writer.send(data);
        }
    }

    /// Runs one Range request, handing its body to the node as it arrives.
    fn fetch(&mut self, id: HttpId, request: RangeRequest) {
        let (http, inbox) = (self.http.clone(), self.inbox.clone());
        let task = tokio::spawn(async move {
            let sink = |event| inbox.send(Report::Http { id, event }).is_ok();
            http.stream_range(&request, sink).await;
        });
        self.requests.insert(id, task);
    }

    fn on_event(&mut self, event: NodeEvent) {
        match event {
            NodeEvent::Engine(event) => self.on_engine_event(event),
            NodeEvent::PeerGone { conn, reason } => {
                tracing::debug!(%reason, "a peer is gone");
                if let Some(c) = self.conns.remove(&conn) {
                    c.close();
                }
            }
            NodeEvent::MetadataReady => self.open_files(),
            NodeEvent::WebSeedFailed { url, error } => {
                tracing::warn!(%url, %error, "web seed request failed")
            }
            NodeEvent::WebSeedDropped { url, reason } => {
                tracing::warn!(%url, %reason, "web seed no longer used")
            }
            NodeEvent::Tracker(TrackerNotice::Swarm {
                complete,
                incomplete,
                ..
            }) => tracing::debug!(complete, incomplete, "tracker replied"),
            NodeEvent::Tracker(TrackerNotice::Failure { reason, .. }) => {
                tracing::warn!(%reason, "tracker refused an announce")
            }
            NodeEvent::Tracker(TrackerNotice::BadMessage { error, .. }) => {
                tracing::debug!(%error, "unreadable tracker message")
            }
        }
    }

    fn on_engine_event(&mut self, event: Event) {
        match event {
            Event::PieceVerified { piece } => self.write_piece(piece),
            Event::Downloaded {
                source: BlockSource::Peer(id),
                bytes,
            } => *self.figures.received_from.entry(id).or_default() += u64::from(bytes),
            Event::PeerBanned { id } => {
                tracing::warn!(peer = %id, "banned a peer for corrupt data");
                self.figures.banned.push(id);
            }
            Event::WebSeedCorrupt { piece } => {
                tracing::warn!(piece, "the web seed sent a piece that does not verify")
            }
            Event::PieceFailed { piece } => tracing::debug!(piece, "piece failed its hash check"),
            Event::MetadataWaiting {
                waited,
                peers,
                offering,
            } => tracing::warn!("{}", swarm::join::waiting_message(waited, peers, offering)),
            // A seeder's own file imported in full is no download.
            Event::Done if self.figures.imported_pieces < self.node.stats().engine.total_pieces => {
                tracing::info!(peer = %self.node.peer_id(), "download complete")
            }
            _ => {}
        }
    }

    /// Writes a verified piece to disk, unless it came from there.
    fn write_piece(&mut self, piece: u32) {
        if self.node.piece_origin(piece) == Some(PieceOrigin::Imported) {
            return;
        }
        let pieces = self.node.stats().engine.total_pieces;
        self.figures
            .received
            .get_or_insert_with(|| swarm::bitfield::Bitfield::empty(pieces))
            .set(piece);
        self.open_files();
        let (Files::Open(storage), Some(data)) = (&self.files, self.node.piece(piece)) else {
            return;
        };
        // A page-cache write of one piece: short enough to do inline.
        if let Err(e) = storage.write_piece(piece, data) {
            tracing::error!(%e, piece, "cannot write a verified piece");
            self.figures.storage_error = Some(e.to_string());
        }
    }

    /// A magnet's metadata is known: open its files under the directory
    /// given, by the torrent's name.
    fn open_files(&mut self) {
        let (Files::Pending(out), Some(meta)) = (&self.files, self.node.metainfo()) else {
            return;
        };
        let target = out.join(&meta.info.name);
        tracing::info!(
            name = %meta.info.name,
            pieces = meta.info.piece_count(),
            bytes = meta.info.total_length(),
            "metadata received"
        );
        self.files = match Storage::new(&meta.info, &target) {
            Ok(storage) => Files::Open(storage),
            Err(e) => {
                tracing::error!(%e, "cannot open the files of a magnet download");
                self.figures.storage_error = Some(e.to_string());
                Files::Failed
            }
        };
        self.figures.target = Some(target);
    }
}
