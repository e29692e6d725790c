//! The session's side of service-worker streaming: range requests become
//! [`Reader`]s, answered from verified pieces; the first byte a reader
//! waits for is the engine's playhead when the element stalls on it.

use std::rc::Rc;

use gloo_events::EventListener;
use gloo_timers::callback::Timeout;
use wasm_bindgen::JsCast;
use web_sys::{MessageEvent, MessagePort};

use swarm::node::{HttpId, RangeRequest};
use swarm::sorted::SortedSet;

use super::{Session, dispatch};
use crate::file;
use crate::js;
use crate::stream::{self, Handed, PortRequest, PortSink, Reader};

/// A stream whose head and tail the worker is given ahead.
pub(super) struct Given {
    /// Where its byte 0 is in the torrent.
    base: u64,
    total: u64,
    mime: &'static str,
    /// The pieces given already.
    sent: SortedSet<u32>,
}

/// A web-seed request the worker runs for the session (`hand_to_worker`).
pub(super) struct HandedRequest {
    port: MessagePort,
    /// The stream whose pieces it brings, and which.
    key: String,
    pieces: std::ops::Range<u32>,
    /// The request, fetched by the page after all if the worker does not
    /// take it ([`HANDOVER_ACCEPT_MS`]): a worker of an older version,
    /// still controlling the page after a deploy, ignores the handover.
    request: RangeRequest,
    accept_timer: Option<Timeout>,
    _listener: EventListener,
}

/// How long the worker has to take a handed request before the page runs
/// it itself.
const HANDOVER_ACCEPT_MS: u32 = 1000;

impl HandedRequest {
    /// Tells the worker to stop.
    pub(super) fn abort(&self) {
        let _ = stream::post(&self.port, &[("abort", true.into())]);
        self.port.close();
    }
}

impl Session {
    /// Hands the node's web-seed request `id` to the worker when it
    /// fetches the head or tail of the stream this session plays (see
    /// [`stream::handed_pieces`]): the worker checks each piece itself and
    /// answers the element from it at once, while the page's engine gets
    /// the same body over a port, as from its own `fetch`. The bytes come
    /// from the server once, and the element's first bytes no longer wait
    /// on the page's main thread (a task per body read there, queued
    /// behind the press's own work: 10-25 ms of a cold start, measured).
    /// `false`: the page fetches it itself.
    ///
    /// Only before the element's first audio, and only while no fan is
    /// connected: that is what it is for, and otherwise the body reaches
    /// the engine a hop later (worker, then page) and an abort takes a hop
    /// more to reach the server, which in a crowd could make neighbours
    /// hear later what the elected fetcher has. (Measured, 10 fans of the
    /// 10.6 MB WAV, three runs each back to back: 1.40 origin copies with
    /// handovers, 1.51 without, 1.27 before this change; spreads 1.17-1.67,
    /// so no difference shows.)
    pub(super) fn hand_to_worker(&mut self, id: HttpId, request: &RangeRequest) -> bool {
        if self.streaming != Some(true)
            || !self.settings.worker_fetches
            || self.first_audio
            || self.node.stats().engine.peers > 0
            || !stream::has_worker()
        {
            return false;
        }
        let Some(meta) = self.node.metainfo() else {
            return false;
        };
        let file = self.file().map_or(0, |f| f.index);
        let ours = meta
            .url_list
            .iter()
            .any(|base| meta.info.web_seed_url(base, file).as_deref() == Some(&request.url));
        let (base, total) = self.span();
        let piece_length = self.node.torrent().piece_length();
        let torrent_total = meta.info.total_length();
        let Some(pieces) = ours
            .then(|| {
                stream::handed_pieces(
                    piece_length,
                    torrent_total,
                    base,
                    total,
                    request.start,
                    request.end,
                )
            })
            .flatten()
        else {
            return false;
        };
        let mut hashes = Vec::with_capacity(pieces.len() * 20);
        for piece in pieces.clone() {
            match meta.info.piece_hash(piece) {
                Some(hash) => hashes.extend_from_slice(hash),
                None => return false,
            }
        }
        let key = self.stream_key();
        let mime = stream::mime_for(&self.name().unwrap_or_default());
        let handover = stream::Handover {
            stream: &key,
            total,
            mime,
            url: &request.url,
            start: request.start,
            end: request.end,
            piece_length,
            hashes: &hashes,
        };
        let (message, port) = match stream::handover(&handover) {
            Ok(made) => made,
            Err(e) => {
                self.warn(&format!("stream: {e}"));
                return false;
            }
        };
        // Posted once the node has said all it has to say now, the file's
        // head first (`post_handovers`).
        self.handovers.push((request.start, message));
        let weak = self.me.clone();
        let listener = EventListener::new(&port, "message", move |event| {
            let Some(data) = event.dyn_ref::<MessageEvent>().map(|e| e.data()) else {
                return;
            };
            let handed = stream::parse_handed(&data);
            dispatch(&weak, move |s| s.on_handed(id, handed));
        });
        port.start();
        let weak = self.me.clone();
        let accept_timer = Timeout::new(HANDOVER_ACCEPT_MS, move || {
            dispatch(&weak, move |s| s.handover_not_taken(id));
        });
        self.given.entry(key.clone()).or_insert_with(|| Given {
            base,
            total,
            mime,
            sent: SortedSet::new(),
        });
        self.handed.insert(
            id,
            HandedRequest {
                port,
                key,
                pieces,
                request: request.clone(),
                accept_timer: Some(accept_timer),
                _listener: listener,
            },
        );
        true
    }

    /// Posts the requests handed over in this drain to the worker, the
    /// lowest byte first: an Ogg file's tail is asked for just before its
    /// head (`want_ogg_tail`), and the element's first request is for the
    /// head, so the head's fetch is the one to begin first.
    pub(super) fn post_handovers(&mut self) {
        let mut handovers = std::mem::take(&mut self.handovers);
        handovers.sort_by_key(|(start, _)| *start);
        for (_, message) in handovers {
            if let Err(e) = stream::hand_over(message) {
                // The accept timer hands the request back to the page.
                self.warn(&format!("stream: {e}"));
            }
        }
    }

    /// The worker did not take request `id`: the page runs it, and every
    /// request from now on.
    fn handover_not_taken(&mut self, id: HttpId) {
        let Some(request) = self
            .handed
            .get(&id)
            .filter(|h| h.accept_timer.is_some())
            .map(|h| h.request.clone())
        else {
            return;
        };
        // An old worker stays old while this page lives: the page fetches
        // the rest itself.
        self.settings.worker_fetches = false;
        self.drop_handed(id, true);
        self.fetch_here(id, request);
    }

    fn on_handed(&mut self, id: HttpId, handed: Handed) {
        let Some(request) = self.handed.get_mut(&id) else {
            return; // cancelled meanwhile
        };
        request.accept_timer = None;
        match handed {
            Handed::Accepted => {}
            Handed::Chunk(bytes) => self.node.http_data(js::now(), id, &bytes),
            Handed::End => {
                self.drop_handed(id, false);
                self.node.http_end(js::now(), id);
            }
            Handed::Failed(error) => {
                self.drop_handed(id, false);
                self.node.http_failed(js::now(), id, error);
            }
        }
    }

    /// Forgets a handed request (telling the worker to stop if `abort`).
    pub(super) fn drop_handed(&mut self, id: HttpId, abort: bool) {
        if let Some(handed) = self.handed.remove(&id)
            && abort
        {
            handed.abort();
        }
    }

    /// Whether the worker checked and kept `piece` of stream `key` itself:
    /// a request handed to it brings the piece, and the piece came from
    /// the web seed (so through that request). A piece of a handed range
    /// that came from fans first is given to the worker like any other:
    /// the element waiting there for it need not wait for the web seed.
    fn fetched_by_worker(&self, key: &str, piece: u32) -> bool {
        self.handed
            .values()
            .any(|h| h.key == key && h.pieces.contains(&piece))
            && self.node.piece_origin(piece) == Some(swarm::engine::PieceOrigin::WebSeed)
    }

    pub(super) fn open_reader(&mut self, port: MessagePort, request: &stream::OpenRequest) {
        // The element is pointed at the stream only once the metadata is known.
        if self.node.metainfo().is_none() {
            return;
        }
        let Some((file, base, total, name)) = self.reader_span(&request.stream) else {
            return;
        };
        self.next_reader += 1;
        let id = self.next_reader;
        let weak = self.me.clone();
        let sink: PortSink = Rc::new(move |id, request| {
            dispatch(&weak, move |s| s.on_port(id, request));
        });
        match Reader::open(id, port, request, total, sink) {
            Ok(Some(mut reader)) => {
                // A reader's positions are its element's: bytes of the
                // file it plays, at `base` in the torrent.
                reader.base = base;
                reader.file = file;
                // The head carries whatever is verified from the range's
                // start: on the first request, usually the first pieces.
                let piece_length = self.node.torrent().piece_length();
                let first = stream::available(
                    piece_length,
                    base + reader.pos,
                    base + reader.end,
                    stream::MAX_CHUNK,
                    |p| self.node.piece(p),
                );
                let mime = stream::mime_for(&name);
                match reader.send_head(total, mime, &first) {
                    Ok(()) => {
                        // A head without bytes: the element waits for
                        // them (its first pull is on the way), so they are
                        // wanted now, not a round trip later. With bytes it
                        // has something to read, and says when it wants
                        // more: were that taken as the playhead, its read-
                        // ahead would make the next pieces urgent too.
                        reader.waiting = first.is_empty();
                        self.readers.insert(id, reader);
                        self.note_waiting_readers();
                        self.give_stream(&request.stream, base, total, mime);
                    }
                    Err(e) => self.warn(&format!("stream: {e}")),
                }
            }
            Ok(None) => {}
            Err(e) => self.warn(&format!("stream: {e}")),
        }
    }

    /// The file a stream key names and its span: this session's own stream,
    /// or (one file of an album being played) any other file of the same
    /// torrent: the player's second element, made ready for the next
    /// track, reads it from the same session. `None`: not ours.
    fn reader_span(&self, key: &str) -> Option<(Option<usize>, u64, u64, String)> {
        if key == self.stream_key() {
            let (base, total) = self.span();
            return Some((self.file().map(|f| f.index), base, total, self.name()?));
        }
        self.file()?;
        let index = file::stream_file(key, &self.node.info_hash().to_hex())??;
        let view = file::choose(self.node.files()?, index).ok()??;
        Some((Some(view.index), view.offset, view.length, view.name))
    }

    fn on_port(&mut self, id: u64, request: PortRequest) {
        match request {
            PortRequest::Cancel => {
                self.readers.remove(&id);
            }
            PortRequest::Pull => {
                if let Some(reader) = self.readers.get_mut(&id) {
                    reader.waiting = true;
                }
                self.serve_reader(id);
            }
        }
        self.note_waiting_readers();
    }

    /// Answers every waiting reader whose next byte is in `piece`.
    pub(super) fn serve_waiting(&mut self, piece: u32) {
        let piece_length = self.node.torrent().piece_length();
        let ready: Vec<u64> = self
            .readers
            .iter()
            .filter(|(_, r)| {
                r.waiting
                    && stream::next_chunk(piece_length, r.base + r.pos, r.base + r.end).0 == piece
            })
            .map(|(id, _)| *id)
            .collect();
        for id in ready {
            self.serve_reader(id);
        }
        self.note_waiting_readers();
    }

    /// Sends a waiting reader every verified byte from its position on (up
    /// to [`stream::MAX_CHUNK`]), if the piece holding it is verified.
    fn serve_reader(&mut self, id: u64) {
        let piece_length = self.node.torrent().piece_length();
        let Some(reader) = self.readers.get_mut(&id) else {
            return;
        };
        if !reader.waiting {
            return;
        }
        let result = if reader.finished() {
            reader.send_done()
        } else {
            let node = &self.node;
            let bytes = stream::available(
                piece_length,
                reader.base + reader.pos,
                reader.base + reader.end,
                stream::MAX_CHUNK,
                |p| node.piece(p),
            );
            if bytes.is_empty() {
                return; // still waiting for the piece
            }
            reader.send_chunk(&bytes)
        };
        if result.is_err() {
            self.readers.remove(&id);
        }
    }

    /// Gives the worker what it lacks of the head and tail of a stream an
    /// element reads (see `stream::given_range`): what is verified now,
    /// and from then on each piece as it verifies ([`Session::give_ahead`]).
    fn give_stream(&mut self, key: &str, base: u64, total: u64, mime: &'static str) {
        if !self.given.contains_key(key) {
            let given = Given {
                base,
                total,
                mime,
                sent: SortedSet::new(),
            };
            self.given.insert(key.to_owned(), given);
        }
        let piece_length = self.node.torrent().piece_length();
        // `give` skips a piece not verified yet, or given already.
        for piece in stream::given_pieces(piece_length, base, total) {
            self.give(key, piece);
        }
    }

    /// Gives the worker the newly verified `piece` of every stream an
    /// element read, where it is of that stream's head or tail.
    pub(super) fn give_ahead(&mut self, piece: u32) {
        let keys: Vec<String> = self.given.keys().cloned().collect();
        for key in keys {
            self.give(&key, piece);
        }
    }

    /// Gives the worker `piece`'s part of stream `key` once, if the piece
    /// is verified and of the stream's head or tail.
    fn give(&mut self, key: &str, piece: u32) {
        let piece_length = self.node.torrent().piece_length();
        let kept_there = self.fetched_by_worker(key, piece);
        let Some(given) = self.given.get_mut(key) else {
            return;
        };
        let Some(bytes) = self.node.piece(piece) else {
            return;
        };
        let size = u32::try_from(bytes.len()).unwrap_or(u32::MAX);
        let Some(range) = stream::given_range(piece_length, piece, size, given.base, given.total)
        else {
            return;
        };
        if !given.sent.insert(piece) {
            return;
        }
        // The worker keeps what it checks: giving it again would only copy
        // it over once more.
        if kept_there {
            return;
        }
        // `range` lies within the piece: it is the piece's part of the file.
        let offset = u64::from(piece) * u64::from(piece_length);
        let from = (given.base + range.start - offset) as usize;
        let to = (given.base + range.end - offset) as usize;
        let Some(part) = bytes.get(from..to) else {
            return;
        };
        if let Err(e) = stream::give(key, given.total, given.mime, range.start, part) {
            self.warn(&format!("stream: {e}"));
        }
    }

    /// Notes the first byte any reader of the file played waits for (see
    /// `update_playback`). A reader of the next file, made ready ahead, is
    /// no playhead, but what it waits for the element may need before it
    /// can play: more of the head than the playing file's deadlines have
    /// brought (a next track of a higher bitrate), and an Ogg file's last
    /// page, which browsers read for its duration. So the next
    /// [`file::NEXT_READ_BYTES`] from where it waits are due when that
    /// file starts (`Node::look_ahead_read`, a few such ranges per track),
    /// and come before the playing file ends, from the web seed alone too.
    pub(super) fn note_waiting_readers(&mut self) {
        let playing = self.file().map(|f| f.index);
        if self.settings.look_ahead {
            let ahead: Vec<(usize, std::ops::Range<u64>)> = self
                .readers
                .values()
                .filter(|r| r.waiting && !r.finished() && r.file != playing)
                .filter_map(|r| {
                    let end = (r.end + 1).min(r.pos + file::NEXT_READ_BYTES);
                    Some((r.file?, r.pos..end))
                })
                .collect();
            for (index, bytes) in ahead {
                // The reader's file was checked when it opened.
                let _ = self.node.look_ahead_read(js::now(), index, bytes);
            }
        }
        let first = self
            .readers
            .values()
            .filter(|r| r.waiting && !r.finished() && r.file == playing)
            .map(|r| r.pos)
            .min();
        if first != self.waiting_reader_pos {
            self.waiting_reader_pos = first;
            self.update_playback();
        }
    }
}
