// fanswarm stream service worker.
//
// Answers the <audio> element's requests under the stream prefix
// (`<prefix><info hash>/…`) by asking the page that made them for the bytes,
// over a MessageChannel (protocol in client-wasm/src/stream.rs). The page
// answers from verified pieces only, waiting for them as needed, so playback
// starts with the first pieces and seeking is the browser's own. Everything
// else passes through: where the browser has static routing (Chromium), it
// never even starts this worker for those requests.
//
// Before it plays, an element reads a file's start and end again and again
// (an Ogg file: the head, its last page, the head again), each a request
// of its own. Each conversation with the page costs a hop to the page's
// main thread and back (6-25 ms measured, bytes there or not), so pages
// give this worker those bytes ahead: every verified piece of a file's
// first PUSH_HEAD and last PUSH_TAIL bytes once an element reads the file
// (`{fanswarm: 'bytes'}`, see stream.rs). A request whose first bytes are
// here is answered from them at once, and the page is asked only for the
// rest. Kept in memory for a few streams; the browser stopping the worker
// loses them, which costs only the round trips again.
//
// The page goes further for the web seed's requests of those bytes: it
// hands them to this worker (`{fanswarm: 'fetch'}` with the pieces' SHA-1s,
// see `hand_over` in stream.rs), which fetches them, sends the page's
// engine the body as it arrives, and keeps each piece whose hash matches,
// as if given. An element's request for those bytes waits for the piece
// here instead of asking the page: its first bytes come off the network
// on this thread, and the page's main thread (busy with the press of play)
// is no longer on their way.
//
// The prefix is a parameter of the worker's own URL
// (`/sw.js?prefix=/fanswarm/stream/`), set by fanswarm.js from the same
// value it gives the wasm peer (`streamPrefix`), so the two cannot disagree.
// Served `no-cache` at a fixed URL: never an immutable hashed name.
'use strict';

const PREFIX = streamPrefix(self.location.href);
const HEAD_TIMEOUT_MS = 10000;
// Silent for RETRY_MS, the page is asked again (RETRIES times), then given
// HEAD_TIMEOUT_MS.
const RETRY_MS = 750;
const RETRIES = 2;
/** Client id → Client, see `pageOf`. */
const pages = new Map();
/** Stream key → {total, mime, parts: Map(start → Uint8Array), used}: the
 *  verified bytes pages gave ahead, by their first byte (a piece each, so
 *  one part ends where the next begins). Least recently used first. */
const given = new Map();
/** Streams whose bytes are kept at most, and for how long unused. */
const GIVEN_STREAMS = 8;
const GIVEN_MS = 5 * 60 * 1000;
/** A part's bytes at most (a piece; pages give none larger:
 *  GIVEN_PIECE_MAX in stream.rs), so 8 streams hold ~20 MiB at most. */
const GIVEN_PART = 1 << 20;
/** Stream key → the web-seed fetches pages handed over, under way:
 *  `{start, from, to, waiters}`, the stream's bytes `start..to` it brings
 *  (checked and kept up to `from`) and the requests waiting for its next
 *  piece. */
const fetching = new Map();

/** The `prefix` parameter of the worker's URL; the default without one. */
function streamPrefix(href) {
  const given = new URL(href).searchParams.get('prefix');
  return given && given.startsWith('/') ? given : '/fanswarm/stream/';
}

self.addEventListener('install', (event) => {
  self.skipWaiting();
  // Only stream URLs need this worker: every other request of the pages it
  // controls (the page itself, modules, wasm, .torrent, the web seed) goes
  // straight to the network instead of waiting for the worker to start.
  if (event.addRoutes && typeof URLPattern === 'function') {
    const literal = PREFIX.replace(/[\\:*?+(){}]/g, '\\$&'); // pattern syntax taken literally
    event.waitUntil(event.addRoutes({
      condition: { not: { urlPattern: new URLPattern({ pathname: `${literal}*` }) } },
      source: 'network',
    }).catch(() => {})); // an older router without `not`: the fetch handler decides
  }
});
self.addEventListener('activate', (event) => event.waitUntil(self.clients.claim()));

// A page about to play posts {fanswarm: 'wake'}: delivering it starts this
// worker, which the browser stops when idle and, with static routing, does
// not start for the page's own requests. The element's first request then
// finds it running (starting it there cost 10-20 ms, measured), and the
// page already known (see `pageOf`).
// A page that loaded while this worker activated missed its claim and posts
// {fanswarm: 'claim'}: claiming again takes it (and changes nothing for the
// pages already ours).
self.addEventListener('message', (event) => {
  if (event.data?.fanswarm === 'wake' && event.source?.id) pages.set(event.source.id, event.source);
  if (event.data?.fanswarm === 'claim') event.waitUntil(self.clients.claim());
  if (event.data?.fanswarm === 'bytes') keep(event.data);
  if (event.data?.fanswarm === 'forget') given.clear();
  if (event.data?.fanswarm === 'fetch') event.waitUntil(fetchFor(event.data, event.ports[0]));
});

/** Runs a web-seed request a page handed over (see the top of the file):
 *  `{stream, total, mime, url, start, end, pieceLength, hashes}`, its
 *  answers on `port`: `{accepted: true}` at once, `{chunk}` as the body
 *  arrives, then `{end: true}` or `{failed}`; `{abort: true}` from the
 *  page stops it. */
async function fetchFor(m, port) {
  if (!(port instanceof MessagePort)) return;
  const whole = (n) => Number.isSafeInteger(n) && n >= 0;
  const { stream, total, mime, url, start, end, pieceLength, hashes } = m;
  const pieces = whole(pieceLength) && pieceLength > 0 && whole(start) && whole(end) && start <= end
    ? Math.ceil((end - start + 1) / pieceLength) : 0;
  if (typeof stream !== 'string' || typeof mime !== 'string' || typeof url !== 'string'
    || !whole(total) || end >= total || pieces === 0 || pieceLength > GIVEN_PART
    || !(hashes instanceof ArrayBuffer) || hashes.byteLength !== pieces * 20) {
    port.postMessage({ failed: 'the worker was handed a malformed request' });
    port.close();
    return;
  }
  port.postMessage({ accepted: true });
  const job = { start, from: start, to: end + 1, waiters: [] };
  if (!fetching.has(stream)) fetching.set(stream, new Set());
  fetching.get(stream).add(job);
  const abort = new AbortController();
  port.onmessage = (e) => { if (e.data?.abort) abort.abort(); };
  try {
    await fetchPieces(job, m, port, abort.signal);
    port.postMessage({ end: true });
  } catch (e) {
    port.postMessage({ failed: String(e?.message ?? e) });
  } finally {
    fetching.get(stream)?.delete(job);
    if (fetching.get(stream)?.size === 0) fetching.delete(stream);
    job.to = job.from; // covers nothing now: its waiters ask the page
    wake(job);
    port.close();
  }
}

/** Fetches `job`'s bytes, each chunk to the page as it comes, and keeps
 *  each piece whose SHA-1 is the one the page named; after a piece that
 *  is not, it keeps none (the page's engine judges the bytes itself). */
async function fetchPieces(job, { stream, total, mime, url, start, end, pieceLength, hashes }, port, signal) {
  const response = await fetch(url, { headers: { Range: `bytes=${start}-${end}` }, signal });
  if (!(response.status === 206 || (response.status === 200 && start === 0))) {
    throw new Error(`web seed answered ${response.status} to a range request`);
  }
  if (!response.body) return;
  const expected = new Uint8Array(hashes);
  const reader = response.body.getReader();
  let at = start; // the range's next byte
  let index = 0; // the piece being filled
  let piece = null;
  let filled = 0;
  while (at <= end) {
    const { done, value } = await reader.read();
    if (done) return;
    const bytes = value.subarray(0, Math.min(value.length, end + 1 - at));
    const copy = bytes.slice();
    port.postMessage({ chunk: copy.buffer }, [copy.buffer]);
    at += bytes.length;
    for (let used = 0; used < bytes.length && job.to > job.from;) {
      const pieceStart = start + index * pieceLength;
      piece ??= new Uint8Array(Math.min(pieceLength, end + 1 - pieceStart));
      const n = Math.min(piece.length - filled, bytes.length - used);
      piece.set(bytes.subarray(used, used + n), filled);
      filled += n;
      used += n;
      if (filled < piece.length) break;
      const digest = new Uint8Array(await crypto.subtle.digest('SHA-1', piece));
      const hash = expected.subarray(index * 20, index * 20 + 20);
      if (digest.every((b, i) => b === hash[i])) {
        keep({ stream, total, mime, start: pieceStart, chunk: piece.buffer });
        job.from = pieceStart + piece.length;
      } else {
        job.to = job.from; // a bad piece: what follows is not trusted here
      }
      wake(job);
      piece = null;
      filled = 0;
      index += 1;
    }
  }
  await reader.cancel().catch(() => {}); // a 200: the whole file, cut off
}

function wake(job) {
  const waiters = job.waiters;
  job.waiters = [];
  for (const resolve of waiters) resolve();
}

/** The handed-over fetch that will bring `stream`'s byte `at`, if any. */
function fetchAt(stream, at) {
  for (const job of fetching.get(stream) ?? []) if (job.start <= at && at < job.to) return job;
  return null;
}

/** `givenFrom(stream, start, end)` once a fetch under way brings the byte
 *  at `start`; null at once when none will. */
async function fetched(stream, start, end) {
  for (;;) {
    const ahead = givenFrom(stream, start, end);
    const job = ahead ? null : fetchAt(stream, start);
    if (!job) return ahead;
    await new Promise((resolve) => job.waiters.push(resolve));
  }
}

/** Keeps a page's `{stream, total, mime, start, chunk}`; anything malformed
 *  is dropped (it only costs the round trips it would have saved). */
function keep({ stream, total, mime, start, chunk }) {
  const whole = (n) => Number.isSafeInteger(n) && n >= 0;
  if (typeof stream !== 'string' || typeof mime !== 'string' || !whole(total) || !whole(start)
    || !(chunk instanceof ArrayBuffer) || chunk.byteLength === 0 || chunk.byteLength > GIVEN_PART
    || start + chunk.byteLength > total) return;
  const now = Date.now();
  for (const [key, entry] of given) if (now - entry.used > GIVEN_MS) given.delete(key);
  let entry = given.get(stream);
  if (!entry || entry.total !== total) entry = { total, mime, parts: new Map() };
  given.delete(stream);
  entry.used = now;
  entry.parts.set(start, new Uint8Array(chunk));
  given.set(stream, entry);
  while (given.size > GIVEN_STREAMS) given.delete(given.keys().next().value);
  // A request waiting here for a fetch under way may have its bytes now
  // (from fans, through the page, before the web seed's came).
  for (const job of fetching.get(stream) ?? []) wake(job);
}

/** The bytes given ahead of `stream` from `start` on, in order, through
 *  `end` at most (null: the stream's end): `{total, mime, end, parts}`, or
 *  null when the byte at `start` is not here. */
function givenFrom(stream, start, end) {
  const entry = given.get(stream);
  if (!entry || start >= entry.total) return null;
  const last = Math.min(end ?? Infinity, entry.total - 1);
  let part = null;
  for (const [at, bytes] of entry.parts) {
    if (at <= start && start < at + bytes.length) part = bytes.subarray(start - at);
  }
  if (!part || last < start) return null;
  entry.used = Date.now();
  const parts = [];
  let at = start;
  while (part && at <= last) {
    const bytes = part.subarray(0, Math.min(part.length, last - at + 1));
    parts.push(bytes);
    at += bytes.length;
    part = entry.parts.get(at);
  }
  return { total: entry.total, mime: entry.mime, end: at - 1, parts };
}

self.addEventListener('fetch', (event) => {
  const url = new URL(event.request.url);
  if (url.origin !== self.location.origin || !url.pathname.startsWith(PREFIX)) return;
  event.respondWith(serve(event, url));
});

/** Parses `bytes=a-b` / `bytes=a-`; null when absent or not one plain range. */
function parseRange(header) {
  const m = /^bytes=(\d+)-(\d*)$/.exec((header || '').trim());
  if (!m) return null;
  return { start: Number(m[1]), end: m[2] === '' ? null : Number(m[2]) };
}

function ask(port, timeoutMs, transfer) {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error('page did not answer')), timeoutMs);
    port.onmessage = (e) => { clearTimeout(timer); resolve(e.data); };
    transfer();
  });
}

/** The page that made a request. Kept per client (and learnt from its
 *  `wake`): each lookup is a round trip to the browser (3-12 ms, measured),
 *  and the element makes several requests per page. */
async function pageOf(clientId) {
  let page = pages.get(clientId);
  if (!page) {
    page = await self.clients.get(clientId);
    if (page) pages.set(clientId, page);
  }
  return page;
}

/** Opens a conversation with the page `clientId` about `stream`'s bytes
 *  `start`..=`end` (null: to the end): `{port, head}`, or the Response to
 *  give when no page answers. */
async function openPage(clientId, stream, start, end) {
  const open = { fanswarm: 'open', stream, start, end };
  // Asked again, through a freshly looked-up client, if the page is silent:
  // a first visit's very first request sometimes went unanswered for good.
  for (let attempt = 0; ; attempt++) {
    const client = attempt === 0 ? await pageOf(clientId) : await self.clients.get(clientId);
    if (!client) return { failed: new Response('no page to stream from', { status: 503 }) };
    const channel = new MessageChannel();
    const port = channel.port1;
    try {
      const wait = attempt < RETRIES ? RETRY_MS : HEAD_TIMEOUT_MS;
      const head = await ask(port, wait, () => client.postMessage(open, [channel.port2]));
      return { port, head };
    } catch (e) {
      port.close();
      if (attempt >= RETRIES) {
        pages.delete(clientId);
        return { failed: new Response(String(e), { status: 504 }) };
      }
    }
  }
}

async function serve(event, url) {
  const stream = url.pathname.slice(PREFIX.length).split('/')[0];
  const range = parseRange(event.request.headers.get('range'));
  const start = range ? range.start : 0;
  const end = range ? range.end : null;
  // Bytes given ahead (or fetched here, once they are) answer the start of
  // the range at once; the page is asked for the rest (if any) right away,
  // so its answer is under way while the element reads them.
  const ahead = await fetched(stream, start, end);
  let head;
  let port = null;
  let rest = null;
  if (ahead) {
    head = { total: ahead.total, mime: ahead.mime, start, end: Math.min(end ?? Infinity, ahead.total - 1) };
    // Unless a fetch under way here brings the next bytes (`pull`).
    const next = ahead.end + 1;
    if (ahead.end < head.end && !fetchAt(stream, next) && !givenFrom(stream, next, end)) {
      rest = openPage(event.clientId, stream, next, end);
    }
  } else {
    const opened = await openPage(event.clientId, stream, start, end);
    if (opened.failed) return opened.failed;
    ({ port, head } = opened);
    if (head.status === 416) {
      port.close();
      return new Response(null, { status: 416, headers: { 'Content-Range': `bytes */${head.total}` } });
    }
  }
  const length = head.end - head.start + 1;
  let received = 0;
  let out = null;
  let pulled = null;
  // Every chunk goes into the response, asked for by a pull or sent
  // ahead by the page; once every byte of the range is here, the response
  // ends and the page drops its reader.
  const take = (buffer) => {
    out.enqueue(new Uint8Array(buffer));
    received += buffer.byteLength;
    if (received < length) return;
    out.close();
    port?.postMessage({ cancel: true });
    port?.close();
  };
  const listen = () => {
    port.onmessage = (e) => {
      const m = e.data;
      if (m.chunk) take(m.chunk);
      else { out.close(); port.close(); }
      pulled?.();
      pulled = null;
    };
  };
  if (port) listen();
  const body = new ReadableStream({
    // The head brings the first bytes when the page has them already.
    start(controller) {
      out = controller;
      if (ahead) for (const bytes of ahead.parts) take(bytes);
      else if (head.chunk) take(head.chunk);
    },
    async pull() {
      if (!port) {
        const from = head.start + received;
        if (!rest) {
          // Past the bytes here: more of them, once fetched here, else
          // the page's answer for the rest.
          const more = await fetched(stream, from, end);
          if (more) {
            for (const bytes of more.parts) take(bytes);
            return undefined;
          }
          rest = openPage(event.clientId, stream, from, end);
        }
        // Past the bytes given ahead: the page's answer for the rest.
        const opened = await rest;
        if (opened?.failed || opened?.head?.start !== from || opened.head.end !== head.end) {
          opened?.port?.close();
          out.error(new Error(`the page did not serve bytes ${from}-${head.end}`));
          return undefined;
        }
        ({ port } = opened);
        listen();
        if (opened.head.chunk) {
          take(opened.head.chunk);
          return undefined;
        }
      }
      return new Promise((resolve) => {
        pulled = resolve;
        port.postMessage({ pull: true });
      });
    },
    cancel() {
      const drop = (p) => {
        p.postMessage({ cancel: true });
        p.close();
      };
      if (port) drop(port);
      else rest?.then((opened) => opened.port && drop(opened.port));
    },
  }, { highWaterMark: 0 });
  const headers = {
    'Content-Type': head.mime,
    'Content-Length': String(length),
    'Accept-Ranges': 'bytes',
    'Cache-Control': 'no-store',
  };
  if (!range) return new Response(body, { status: 200, headers });
  headers['Content-Range'] = `bytes ${head.start}-${head.end}/${head.total}`;
  return new Response(body, { status: 206, headers });
}
