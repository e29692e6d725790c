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
});

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

async function serve(event, url) {
  const stream = url.pathname.slice(PREFIX.length).split('/')[0];
  const range = parseRange(event.request.headers.get('range'));
  const open = { fanswarm: 'open', stream, start: range ? range.start : 0, end: range ? range.end : null };
  let port;
  let head;
  // Asked again, through a freshly looked-up client, if the page is silent:
  // a first visit's very first request sometimes went unanswered for good.
  for (let attempt = 0; !head; attempt++) {
    const client = attempt === 0 ? await pageOf(event.clientId) : await self.clients.get(event.clientId);
    if (!client) return new Response('no page to stream from', { status: 503 });
    const channel = new MessageChannel();
    port = channel.port1;
    try {
      const wait = attempt < RETRIES ? RETRY_MS : HEAD_TIMEOUT_MS;
      head = await ask(port, wait, () => client.postMessage(open, [channel.port2]));
    } catch (e) {
      port.close();
      if (attempt >= RETRIES) {
        pages.delete(event.clientId);
        return new Response(String(e), { status: 504 });
      }
    }
  }
  if (head.status === 416) {
    port.close();
    return new Response(null, { status: 416, headers: { 'Content-Range': `bytes */${head.total}` } });
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
    port.postMessage({ cancel: true });
    port.close();
  };
  port.onmessage = (e) => {
    const m = e.data;
    if (m.chunk) take(m.chunk);
    else { out.close(); port.close(); }
    pulled?.();
    pulled = null;
  };
  const body = new ReadableStream({
    // The head brings the first bytes when the page has them already.
    start(controller) {
      out = controller;
      if (head.chunk) take(head.chunk);
    },
    pull() {
      return new Promise((resolve) => {
        pulled = resolve;
        port.postMessage({ pull: true });
      });
    },
    cancel() {
      port.postMessage({ cancel: true });
      port.close();
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
