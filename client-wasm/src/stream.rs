//! The page's half of service-worker streaming.
//!
//! The `<audio>` element requests byte ranges of a stream URL; the service
//! worker (`web/sw.js`) turns each request into a conversation with the page
//! over a `MessageChannel`:
//!
//! 1. worker → page (on `navigator.serviceWorker`):
//!    `{fanswarm: "open", stream: <key>, start, end | null}` with a port,
//!    the key being the first path segment after the prefix: the info hash
//!    in hex, with `-<file index>` after it for one file of a multi-file
//!    torrent; `start`/`end` count that file's bytes;
//! 2. page → worker: `{total, mime, start, end, chunk?}` (the range it will
//!    serve, `end` inclusive, and as `chunk` its first bytes if they are
//!    verified already) or `{status: 416, total}` for a range past the end;
//! 3. worker → page `{pull: true}` each time its response stream wants more;
//!    page → worker `{chunk: ArrayBuffer}` once the piece holding the next
//!    byte is verified, or `{done: true}` after the last byte. After a head
//!    short of the range's end the page also sends the next chunk as soon
//!    as it has it, without waiting for the first pull (which is already
//!    on its way: the element reads on);
//! 4. worker → page `{cancel: true}` when the element lets go of the
//!    response, or once the worker has every byte of the range.
//!
//! Every `chunk` holds all the verified bytes from the reader's position on,
//! piece after piece, up to [`MAX_CHUNK`]: each message is a hop between the
//! worker's thread and the page's main thread (busy with everything else the
//! page does), and the element's first request is answered in one, with its
//! head, when the first pieces are in (measured: a head, then one pull per
//! 32 KiB piece, cost the first audio tens of milliseconds per request).
//!
//! A [`Reader`] is one such conversation. Its port listener is owned by it.
//!
//! Besides, page → worker (`navigator.serviceWorker.controller`):
//! `{fanswarm: "bytes", stream, total, mime, start, chunk}`, verified bytes
//! of a stream given ahead (see [`given_range`]): the worker answers a
//! request whose first bytes it has from them, without a conversation,
//! and opens one only for the rest. `{fanswarm: "forget"}` drops them.
//! `{fanswarm: "fetch", …}` with a port hands the worker a web-seed request
//! for such bytes (see [`handover`]): it fetches them, checks each piece,
//! keeps them as if given, and sends the body on to the page's engine.

use std::rc::Rc;

use gloo_events::EventListener;
use wasm_bindgen::{JsCast, JsValue};
use web_sys::{MessageEvent, MessagePort};

use crate::js::{JsError, js_error, property};

/// What the worker asks on a reader's port.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PortRequest {
    /// The next chunk.
    Pull,
    /// The response was dropped.
    Cancel,
}

/// Where port requests go: the session, by reader id.
pub type PortSink = Rc<dyn Fn(u64, PortRequest)>;

/// Bytes sent in one message at most.
pub const MAX_CHUNK: usize = 1 << 20;

/// A range request the worker opened.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OpenRequest {
    /// The stream it names (info hash in hex).
    pub stream: String,
    /// First byte wanted.
    pub start: u64,
    /// Last byte wanted, inclusive; `None` for "to the end".
    pub end: Option<u64>,
}

/// One byte range being served to the worker.
pub struct Reader {
    port: MessagePort,
    /// Next byte to send.
    pub pos: u64,
    /// Last byte to send, inclusive.
    pub end: u64,
    /// A pull came and is not yet answered (its piece is missing).
    pub waiting: bool,
    /// Where the stream's byte 0 is in the torrent: a reader carries its
    /// own file's span, so two elements can read two files of an album.
    pub base: u64,
    /// The file of the torrent it reads, `None`: the whole torrent.
    pub file: Option<usize>,
    _listener: EventListener,
}

impl Reader {
    /// Accepts the range `[start, end]` of a stream of `total` bytes and
    /// listens for pulls; [`Reader::send_head`] answers the worker. Returns
    /// `None` (after telling the worker 416) for a range that starts past
    /// the end.
    pub fn open(
        id: u64,
        port: MessagePort,
        request: &OpenRequest,
        total: u64,
        sink: PortSink,
    ) -> Result<Option<Reader>, JsError> {
        let Some((start, end)) = clamp_range(request.start, request.end, total) else {
            post(
                &port,
                &[("status", 416.into()), ("total", (total as f64).into())],
            )?;
            port.close();
            return Ok(None);
        };
        let listener = EventListener::new(&port, "message", move |event| {
            let Some(data) = event.dyn_ref::<MessageEvent>().map(|e| e.data()) else {
                return;
            };
            if property(&data, "pull").is_some() {
                sink(id, PortRequest::Pull);
            } else if property(&data, "cancel").is_some() {
                sink(id, PortRequest::Cancel);
            }
        });
        port.start();
        Ok(Some(Reader {
            port,
            pos: start,
            end,
            waiting: false,
            base: 0,
            file: None,
            _listener: listener,
        }))
    }

    /// Answers the worker's `open`: the range served, the stream's length
    /// and type, and `first`, the bytes from the range's start that are
    /// ready now (see [`available`]; none is fine: the worker then pulls).
    pub fn send_head(&mut self, total: u64, mime: &str, first: &[&[u8]]) -> Result<(), JsError> {
        let mut fields = vec![
            ("total", (total as f64).into()),
            ("mime", mime.into()),
            ("start", (self.pos as f64).into()),
            ("end", (self.end as f64).into()),
        ];
        let mut transfer = None;
        if let Some(buffer) = concat(first) {
            fields.push(("chunk", buffer.clone().into()));
            transfer = Some(buffer);
        }
        post_with(&self.port, &fields, transfer.as_ref())?;
        self.pos += first.iter().map(|b| b.len() as u64).sum::<u64>();
        Ok(())
    }

    /// Whether every byte was sent.
    pub fn finished(&self) -> bool {
        self.pos > self.end
    }

    /// Sends the next chunk: `bytes`, in order, starting at `self.pos`
    /// (see [`available`]), as one message.
    pub fn send_chunk(&mut self, bytes: &[&[u8]]) -> Result<(), JsError> {
        let Some(buffer) = concat(bytes) else {
            return Ok(());
        };
        // Counted before the post: a transferred buffer reads as empty.
        let length = u64::from(buffer.byte_length());
        post_with(
            &self.port,
            &[("chunk", buffer.clone().into())],
            Some(&buffer),
        )?;
        self.pos += length;
        self.waiting = false;
        Ok(())
    }

    /// Tells the worker the range is complete.
    pub fn send_done(&mut self) -> Result<(), JsError> {
        self.waiting = false;
        post(&self.port, &[("done", true.into())])
    }
}

impl Drop for Reader {
    fn drop(&mut self) {
        self.port.close();
    }
}

/// Reads an `open` message from the worker; anything else is `None`.
pub fn parse_open(data: &JsValue) -> Option<OpenRequest> {
    if property(data, "fanswarm")?.as_string()? != "open" {
        return None;
    }
    let start = property(data, "start")?.as_f64()?;
    let end = property(data, "end").and_then(|v| v.as_f64());
    let whole = |v: f64| (v >= 0.0 && v.fract() == 0.0 && v < 9.0e15).then_some(v as u64);
    Some(OpenRequest {
        stream: property(data, "stream")?.as_string()?,
        start: whole(start)?,
        end: match end {
            Some(e) => Some(whole(e)?),
            None => None,
        },
    })
}

/// The range actually served for `start..=end` of `total` bytes, or `None`
/// when it starts past the end (HTTP 416).
pub fn clamp_range(start: u64, end: Option<u64>, total: u64) -> Option<(u64, u64)> {
    if start >= total {
        return None;
    }
    let last = end.unwrap_or(u64::MAX).min(total - 1);
    (last >= start).then_some((start, last))
}

/// The next chunk of a reader at `pos` (last byte `end`): the piece holding
/// `pos`, and the byte range within that piece to send.
pub fn next_chunk(piece_length: u32, pos: u64, end: u64) -> (u32, std::ops::Range<usize>) {
    let piece_length = u64::from(piece_length.max(1));
    let piece = pos / piece_length;
    let piece_start = piece * piece_length;
    let last_in_piece = (piece_start + piece_length - 1).min(end);
    let from = (pos - piece_start) as usize;
    let to = (last_in_piece - piece_start + 1) as usize;
    (u32::try_from(piece).unwrap_or(u32::MAX), from..to)
}

/// The bytes a reader at `pos` (last byte `end`) can be sent now: from
/// `pos` on, piece after piece as long as `verified` has them, at most
/// `max` bytes; empty while the piece holding `pos` is missing.
pub fn available<'a>(
    piece_length: u32,
    mut pos: u64,
    end: u64,
    max: usize,
    verified: impl Fn(u32) -> Option<&'a [u8]>,
) -> Vec<&'a [u8]> {
    let mut out = Vec::new();
    let mut room = max;
    while pos <= end && room > 0 {
        let (piece, range) = next_chunk(piece_length, pos, end);
        let Some(bytes) = verified(piece).and_then(|p| p.get(range)) else {
            break;
        };
        let bytes = &bytes[..bytes.len().min(room)];
        room -= bytes.len();
        pos += bytes.len() as u64;
        out.push(bytes);
    }
    out
}

/// The bytes of a file given to the worker ahead from its start: browsers
/// read a file's head, then its end (an Ogg file's last page for its
/// duration, an MP4's index), then the head again, a request each, before
/// they play.
pub const GIVEN_HEAD: u64 = 1 << 20;
/// The bytes of a file given to the worker ahead from its end.
pub const GIVEN_TAIL: u64 = 256 << 10;
/// Pieces larger than this are not given (a foreign torrent's 16 MiB
/// pieces would each be a copy that large, in the worker's memory too):
/// their streams ask the page, as before. The worker takes no larger part.
pub const GIVEN_PIECE_MAX: u32 = 1 << 20;

/// The bytes of piece `piece` (`size` bytes long, at `piece * piece_length`
/// in the torrent) that a file of `total` bytes at `base` in the torrent
/// gives its worker ahead, counted from the file's start: the piece's part
/// of the file when that touches the file's first [`GIVEN_HEAD`] or last
/// [`GIVEN_TAIL`] bytes, whole (the worker answers from runs of pieces);
/// `None` otherwise, and for a piece larger than [`GIVEN_PIECE_MAX`].
pub fn given_range(
    piece_length: u32,
    piece: u32,
    size: u32,
    base: u64,
    total: u64,
) -> Option<std::ops::Range<u64>> {
    let from = u64::from(piece) * u64::from(piece_length);
    let to = from + u64::from(size);
    let (start, end) = (
        from.max(base) - base,
        to.min(base + total).checked_sub(base)?,
    );
    if size > GIVEN_PIECE_MAX {
        return None;
    }
    let in_head = start < GIVEN_HEAD.min(total);
    let in_tail = end > total.saturating_sub(GIVEN_TAIL);
    (start < end && (in_head || in_tail)).then_some(start..end)
}

/// The pieces that may hold bytes [`given_range`] gives for a file of
/// `total` bytes at `base`: the head's, then the tail's (some twice in a
/// short file; the caller gives each once).
pub fn given_pieces(piece_length: u32, base: u64, total: u64) -> impl Iterator<Item = u32> {
    let length = u64::from(piece_length.max(1));
    let piece = |at: u64| u32::try_from(at / length).unwrap_or(u32::MAX);
    let last = base + total.max(1) - 1;
    let head = piece(base)..=piece(base + GIVEN_HEAD.min(total.max(1)) - 1);
    let tail = piece(base + total.saturating_sub(GIVEN_TAIL))..=piece(last);
    head.chain(tail)
}

/// Gives the worker `bytes`, the verified bytes of `stream` (`total` bytes
/// of type `mime`) from `start` on. Without a worker controlling the page,
/// nothing happens.
pub fn give(stream: &str, total: u64, mime: &str, start: u64, bytes: &[u8]) -> Result<(), JsError> {
    let (Some(worker), Some(buffer)) = (controller(), concat(&[bytes])) else {
        return Ok(());
    };
    let message = object(&[
        ("fanswarm", "bytes".into()),
        ("stream", stream.into()),
        ("total", (total as f64).into()),
        ("mime", mime.into()),
        ("start", (start as f64).into()),
        ("chunk", buffer.clone().into()),
    ])?;
    worker
        .post_message_with_transferable(&message, &js_sys::Array::of1(&buffer))
        .map_err(js_error)
}

/// The pieces a web-seed request of bytes `start..=end` of a file (`total`
/// bytes at `base` in a torrent of `torrent_total` bytes) covers, when the
/// worker can fetch it for the page and check it itself
/// ([`hand_over`]): whole pieces only, none larger than
/// [`GIVEN_PIECE_MAX`], each of the file's given head or tail (the bytes
/// an element reads before it plays). `None` otherwise: the page fetches
/// it as ever.
pub fn handed_pieces(
    piece_length: u32,
    torrent_total: u64,
    base: u64,
    total: u64,
    start: u64,
    end: u64,
) -> Option<std::ops::Range<u32>> {
    let length = u64::from(piece_length);
    if piece_length == 0 || piece_length > GIVEN_PIECE_MAX || start > end || end >= total {
        return None;
    }
    let (from, to) = (base + start, base + end + 1);
    if from % length != 0 || (to % length != 0 && to != torrent_total) {
        return None;
    }
    let first = u32::try_from(from / length).ok()?;
    let last = u32::try_from((to - 1) / length).ok()?;
    (first..=last)
        .all(|piece| {
            let size =
                ((u64::from(piece) + 1) * length).min(torrent_total) - u64::from(piece) * length;
            given_range(piece_length, piece, size as u32, base, total).is_some()
        })
        .then_some(first..last + 1)
}

/// What the page hands its worker to fetch: bytes `start..=end` of
/// `stream` (a file of `total` bytes, type `mime`) from `url`, whose
/// pieces (`piece_length` long from `start` on, the last maybe shorter)
/// have the SHA-1s `hashes`, one after another.
pub struct Handover<'a> {
    pub stream: &'a str,
    pub total: u64,
    pub mime: &'a str,
    pub url: &'a str,
    pub start: u64,
    pub end: u64,
    pub piece_length: u32,
    pub hashes: &'a [u8],
}

/// A web-seed request for the worker (see `fetchFor` in sw.js):
/// `{fanswarm: "fetch", stream, total, mime, url, start, end, pieceLength,
/// hashes}` with a port, on which the worker says `{accepted: true}` at
/// once, then sends the body as it arrives, `{chunk}` after `{chunk}`,
/// then `{end: true}` or `{failed: <why>}`; the page sends `{abort: true}`
/// to stop it. The worker keeps each piece that matches its hash, as if
/// given ahead, and answers the element from it: the bytes the element
/// first plays never wait on the page's main thread. Returns the message,
/// to post with [`hand_over`], and the page's end of its port.
pub fn handover(
    handover: &Handover<'_>,
) -> Result<((js_sys::Object, MessagePort), MessagePort), JsError> {
    let channel = web_sys::MessageChannel::new().map_err(js_error)?;
    let hashes = js_sys::Uint8Array::from(handover.hashes).buffer();
    let message = object(&[
        ("fanswarm", "fetch".into()),
        ("stream", handover.stream.into()),
        ("total", (handover.total as f64).into()),
        ("mime", handover.mime.into()),
        ("url", handover.url.into()),
        ("start", (handover.start as f64).into()),
        ("end", (handover.end as f64).into()),
        ("pieceLength", handover.piece_length.into()),
        ("hashes", hashes.into()),
    ])?;
    Ok(((message, channel.port2()), channel.port1()))
}

/// The service worker that controls the page, if one does.
fn controller() -> Option<web_sys::ServiceWorker> {
    crate::js::window()
        .ok()?
        .navigator()
        .service_worker()
        .controller()
}

/// Whether a worker controls the page (given bytes and handovers have
/// somewhere to go).
pub fn has_worker() -> bool {
    controller().is_some()
}

/// Posts a [`handover`] message, with its port, to the worker.
pub fn hand_over((message, port): (js_sys::Object, MessagePort)) -> Result<(), JsError> {
    let worker = controller().ok_or_else(|| JsError("no worker controls the page".into()))?;
    worker
        .post_message_with_transferable(&message, &js_sys::Array::of1(&port))
        .map_err(js_error)
}

/// What the worker says about a request handed to it, on its port.
#[derive(Debug)]
pub enum Handed {
    /// The worker runs it.
    Accepted,
    /// More of the body.
    Chunk(Vec<u8>),
    /// The body ended.
    End,
    /// The request failed, or the worker said something unreadable.
    Failed(String),
}

/// Reads one message of a handed request's port.
pub fn parse_handed(data: &JsValue) -> Handed {
    if let Some(chunk) = property(data, "chunk") {
        if let Some(buffer) = chunk.dyn_ref::<js_sys::ArrayBuffer>() {
            return Handed::Chunk(js_sys::Uint8Array::new(buffer).to_vec());
        }
    } else if property(data, "end").is_some() {
        return Handed::End;
    } else if property(data, "accepted").is_some() {
        return Handed::Accepted;
    } else if let Some(why) = property(data, "failed") {
        return Handed::Failed(
            why.as_string()
                .unwrap_or_else(|| "the worker's fetch failed".into()),
        );
    }
    Handed::Failed("the worker sent an unreadable message".into())
}

/// The URL the element plays, under the service worker's prefix: the
/// stream's key (the info hash, `-<file>` after it for one file of a
/// multi-file torrent), then its name for the reader's eyes.
pub fn stream_url(prefix: &str, key: &str, name: &str) -> String {
    let name: String = name
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '.' {
                c
            } else {
                '_'
            }
        })
        .collect();
    format!("{prefix}{key}/{name}")
}

/// The MIME type a stream is served with, from its file name.
pub fn mime_for(name: &str) -> &'static str {
    let ext = name.rsplit('.').next().unwrap_or("").to_ascii_lowercase();
    match ext.as_str() {
        "mp3" => "audio/mpeg",
        "ogg" | "oga" | "opus" => "audio/ogg",
        "flac" => "audio/flac",
        "m4a" | "mp4" | "aac" => "audio/mp4",
        "wav" => "audio/wav",
        "webm" => "audio/webm",
        _ => "application/octet-stream",
    }
}

/// Posts `{fields}` on `port`.
pub(crate) fn post(port: &MessagePort, fields: &[(&str, JsValue)]) -> Result<(), JsError> {
    post_with(port, fields, None)
}

/// Posts `{fields}`, transferring `buffer` (one of the fields) if given.
fn post_with(
    port: &MessagePort,
    fields: &[(&str, JsValue)],
    buffer: Option<&js_sys::ArrayBuffer>,
) -> Result<(), JsError> {
    let message = object(fields)?;
    match buffer {
        Some(buffer) => port
            .post_message_with_transferable(&message, &js_sys::Array::of1(buffer))
            .map_err(js_error),
        None => port.post_message(&message).map_err(js_error),
    }
}

/// `{fields}`, a message.
fn object(fields: &[(&str, JsValue)]) -> Result<js_sys::Object, JsError> {
    let message = js_sys::Object::new();
    for (name, value) in fields {
        js_sys::Reflect::set(&message, &JsValue::from_str(name), value).map_err(js_error)?;
    }
    Ok(message)
}

/// `parts` copied into one new buffer (one copy out of wasm memory);
/// `None` when they hold no byte.
fn concat(parts: &[&[u8]]) -> Option<js_sys::ArrayBuffer> {
    let total: usize = parts.iter().map(|p| p.len()).sum();
    if total == 0 {
        return None;
    }
    let array = js_sys::Uint8Array::new_with_length(u32::try_from(total).ok()?);
    let mut at = 0u32;
    for part in parts {
        let len = u32::try_from(part.len()).ok()?;
        array.subarray(at, at + len).copy_from(part);
        at += len;
    }
    Some(array.buffer())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges_are_clamped_to_the_stream() {
        assert_eq!(clamp_range(0, None, 100), Some((0, 99)));
        assert_eq!(clamp_range(10, Some(19), 100), Some((10, 19)));
        assert_eq!(clamp_range(90, Some(500), 100), Some((90, 99)));
        assert_eq!(clamp_range(100, None, 100), None);
        assert_eq!(clamp_range(0, None, 0), None);
        assert_eq!(clamp_range(50, Some(40), 100), None);
    }

    #[test]
    fn chunks_stop_at_piece_and_range_ends() {
        assert_eq!(next_chunk(1000, 0, 99_999), (0, 0..1000));
        assert_eq!(next_chunk(1000, 1500, 99_999), (1, 500..1000));
        assert_eq!(next_chunk(1000, 1500, 1700), (1, 500..701));
        assert_eq!(next_chunk(1000, 2999, 5000), (2, 999..1000));
        // Walking a range chunk by chunk covers every byte exactly once.
        let (mut pos, end, mut seen) = (123u64, 7_777u64, 0u64);
        while pos <= end {
            let (piece, r) = next_chunk(1000, pos, end);
            assert_eq!(u64::from(piece) * 1000 + r.start as u64, pos);
            seen += r.len() as u64;
            pos += r.len() as u64;
        }
        assert_eq!(seen, end - 123 + 1);
    }

    #[test]
    fn available_bytes_run_while_pieces_are_verified() {
        let pieces: Vec<Vec<u8>> = (0..5u8).map(|i| vec![i; 1000]).collect();
        let flat = |have: &[u32], pos, end, max| {
            let verified = |p: u32| have.contains(&p).then(|| &pieces[p as usize][..]);
            available(1000, pos, end, max, verified).concat()
        };
        // From the middle of piece 1 through 2; 3 is missing.
        let bytes = flat(&[0, 1, 2, 4], 1500, 4999, MAX_CHUNK);
        assert_eq!(bytes.len(), 1500);
        assert_eq!((bytes[0], bytes[499], bytes[500]), (1, 1, 2));
        // The range's end and the cap stop it, mid-piece too.
        assert_eq!(flat(&[0, 1, 2], 0, 1200, MAX_CHUNK).len(), 1201);
        assert_eq!(flat(&[0, 1, 2], 100, 4999, 1500).len(), 1500);
        // Nothing while the piece at the position is missing, or past the end.
        assert!(flat(&[1, 2], 999, 4999, MAX_CHUNK).is_empty());
        assert!(flat(&[0], 1000, 999, MAX_CHUNK).is_empty());
    }

    #[test]
    fn a_files_head_and_tail_pieces_are_given_ahead() {
        const L: u32 = 32 << 10;
        let total = 4_000_000u64;
        // A single-file torrent: the file is the torrent.
        assert_eq!(given_range(L, 0, L, 0, total), Some(0..32_768));
        let head_last = (GIVEN_HEAD / u64::from(L) - 1) as u32;
        assert!(given_range(L, head_last, L, 0, total).is_some());
        assert_eq!(given_range(L, head_last + 1, L, 0, total), None);
        let last = (total / u64::from(L)) as u32;
        let tail = (total % u64::from(L)) as u32;
        assert_eq!(
            given_range(L, last, tail, 0, total),
            Some(u64::from(last) * u64::from(L)..total)
        );
        let tail_first = ((total - GIVEN_TAIL) / u64::from(L)) as u32;
        assert!(given_range(L, tail_first, L, 0, total).is_some());
        assert_eq!(given_range(L, tail_first - 1, L, 0, total), None);
        // One file of an album, 10,000 bytes into piece 3: counted from the
        // file's own start, clipped to it; the pieces past it give nothing.
        let base = 3 * u64::from(L) + 10_000;
        assert_eq!(given_range(L, 3, L, base, 50_000), Some(0..22_768));
        assert_eq!(given_range(L, 4, L, base, 50_000), Some(22_768..50_000));
        assert_eq!(given_range(L, 2, L, base, 50_000), None);
        assert_eq!(given_range(L, 5, L, base, 50_000), None);
        // Every piece given is among those walked, and the walk is short.
        let walked: Vec<u32> = given_pieces(L, 0, total).collect();
        assert_eq!(walked.len(), 32 + 9);
        for piece in 0..=last {
            let size = if piece == last { tail } else { L };
            if given_range(L, piece, size, 0, total).is_some() {
                assert!(walked.contains(&piece), "{piece}");
            }
        }
        assert_eq!(
            given_pieces(L, base, 50_000).collect::<Vec<_>>(),
            [3, 4, 3, 4]
        );
        // Pieces too large to copy are never given.
        let big = GIVEN_PIECE_MAX * 2;
        assert_eq!(given_range(big, 0, big, 0, 10 * u64::from(big)), None);
        assert!(given_range(GIVEN_PIECE_MAX, 0, GIVEN_PIECE_MAX, 0, total).is_some());
    }

    #[test]
    fn the_worker_is_handed_whole_pieces_of_the_head_and_tail_only() {
        const L: u32 = 32 << 10;
        let l = u64::from(L);
        let total = 4_000_000u64;
        // A single-file torrent: the first 256 KiB, the last pieces.
        assert_eq!(handed_pieces(L, total, 0, total, 0, 8 * l - 1), Some(0..8));
        let last = (total / l) as u32;
        let tail_from = (u64::from(last) - 3) * l;
        assert_eq!(
            handed_pieces(L, total, 0, total, tail_from, total - 1),
            Some(last - 3..last + 1)
        );
        // Not piece-aligned, or past the head: the page fetches it.
        assert_eq!(handed_pieces(L, total, 0, total, 1, 8 * l - 1), None);
        assert_eq!(handed_pieces(L, total, 0, total, 0, 8 * l - 2), None);
        let middle = 40 * l;
        assert_eq!(
            handed_pieces(L, total, 0, total, middle, middle + 8 * l - 1),
            None
        );
        // A run from the head into the middle: not all of it is the head's.
        assert_eq!(handed_pieces(L, total, 0, total, 24 * l, 40 * l - 1), None);
        // Nonsense ranges.
        assert_eq!(handed_pieces(L, total, 0, total, 8 * l, 0), None);
        assert_eq!(handed_pieces(L, total, 0, total, 0, total), None);
        assert_eq!(handed_pieces(0, total, 0, total, 0, 10), None);
        // Pieces too large for the worker.
        let big = GIVEN_PIECE_MAX * 2;
        assert_eq!(
            handed_pieces(
                big,
                10 * u64::from(big),
                0,
                10 * u64::from(big),
                0,
                u64::from(big) - 1
            ),
            None
        );
        // One file of an album at a piece boundary: its own head, counted
        // from its start; a file starting mid-piece has no whole first piece.
        let torrent = 10 * l * 100;
        let base = 100 * l;
        assert_eq!(
            handed_pieces(L, torrent, base, 50 * l, 0, 4 * l - 1),
            Some(100..104)
        );
        assert_eq!(
            handed_pieces(L, torrent, base + 10, 50 * l, 0, 4 * l - 1),
            None
        );
        // The file's last piece, ending where the file (not the torrent)
        // does mid-piece: not whole.
        assert_eq!(
            handed_pieces(L, torrent, base, 50 * l + 10, 49 * l, 50 * l + 9),
            None
        );
    }

    #[test]
    fn mime_types_follow_the_extension() {
        assert_eq!(mime_for("a.MP3"), "audio/mpeg");
        assert_eq!(mime_for("b.opus"), "audio/ogg");
        assert_eq!(mime_for("c.flac"), "audio/flac");
        assert_eq!(mime_for("d.m4a"), "audio/mp4");
        assert_eq!(mime_for("noext"), "application/octet-stream");
    }
}
