// fanswarm: play a track from its swarm.
//
//   import fanswarm from '/fanswarm.js';
//   const track = await fanswarm.play(audioElement, { torrent: '/t/<hex>.torrent' });
//   // or { magnet: 'magnet:?xt=urn:btih:<hex>&tr=wss://…' }: metadata from peers
//   track.addEventListener('progress', () => console.log(track.stats().toJSON()));
//   track.destroy();
//
// Loads the WebAssembly peer once and registers the stream service worker;
// the element plays the stream once the worker controls the page. A worker
// only serves its own origin: loaded from another origin (or where workers
// cannot register) the element plays the web seed URL directly while the
// page still swarms.
//
// Nothing the first audio needs should wait for the press of play: a page
// calls `prepare()` as it loads (compiles the wasm as it downloads, registers
// the worker) and `fetchTorrent(url)`, then `load(audio, {torrent,
// torrentBytes})`, which makes the track without starting it; play is then
// `track.start()`. `<fanswarm-player>` does all of it when it is connected.
// Neither waits for the worker to take control of the page (on a first
// visit that takes 100-300 ms after registering): the track starts fetching
// its first pieces at once and the element gets its source when the worker
// is in control.
import init, { load as wasmLoad, share as wasmShare, version } from './pkg/client_wasm.js';

/** Where the worker streams by default (the wasm peer's default too). */
export const STREAM_PREFIX = '/fanswarm/stream/';

/** How long to wait for the worker to take the page before playing the
 *  web seed directly (a hard reload leaves a page uncontrolled). */
const CONTROL_TIMEOUT_MS = 5000;

/** Where the first pieces of recently played tracks are kept (see
 *  `keepStart`), and for how many tracks; which tracks, in localStorage. */
const START_CACHE = 'fanswarm-start-v1';
const START_TRACKS = 20;
// What is kept of a track: pieces within its first START_HEAD_BYTES (the
// first audio and a margin) and its last START_TAIL_BYTES (an Ogg file's
// last page, which browsers read before they play).
const START_HEAD_BYTES = 512 * 1024;
const START_TAIL_BYTES = 128 * 1024;
const START_LIST = 'fanswarm-start-v1';

/** Whole tracks kept between visits (`keep: 'track'`, the default; see `keepTrack`):
 *  Cache API entries of a few pieces each; which tracks, their bytes and
 *  when each was last played, in localStorage. */
const TRACK_CACHE = 'fanswarm-tracks-v1';
const TRACK_LIST = 'fanswarm-tracks-v1';
/** A kept track's pieces are written together, an entry per KEEP_BATCH_BYTES
 *  or per KEEP_BATCH_MS, whichever comes first (and when the page hides). */
const KEEP_BATCH_BYTES = 1024 * 1024;
const KEEP_BATCH_MS = 2000;
/** Bytes kept at most, all tracks together, unless `keepQuota` says. */
const TRACK_QUOTA = 256 * 1024 * 1024;
/** `HTMLMediaElement.HAVE_FUTURE_DATA`: it can play on. */
const HAVE_FUTURE_DATA = 3;
/** Bumped by forget(): tracks kept before stop writing. */
let keepGeneration = 0;

/** What prepare() started, once per page: the wasm and the worker. */
let started = null;

// The worker's `open` messages (an element's request for the stream) that
// came before any track listened: on a return visit the element plays
// before its track is made (`resume`), and Chromium dispatched those
// messages to no one (the element then waited for the worker to ask again:
// 750 ms, measured). Kept here from the start and handed to each track as
// it is made; a track takes only its own stream's.
// A track marks each message it hears `fanswarmHeard`; this listener runs
// before the tracks' (it was added first), so it looks once they all have.
const unheard = [];
if (typeof navigator !== 'undefined' && navigator.serviceWorker) {
  navigator.serviceWorker.addEventListener('message', (e) => {
    if (e.data?.fanswarm !== 'open' || e.ports.length === 0) return;
    queueMicrotask(() => {
      if (e.fanswarmHeard) return;
      unheard.push(e);
      if (unheard.length > 64) unheard.shift(); // a page with no track: keep a few
    });
  });
}

/** Hands the `open` messages no track heard to the tracks now listening. */
function replayUnheard() {
  const container = navigator.serviceWorker;
  for (const e of unheard.splice(0)) {
    container?.dispatchEvent(new MessageEvent('message', { data: e.data, ports: [...e.ports] }));
  }
}

function start(streamPrefix) {
  if (started && streamPrefix !== started.prefix) {
    throw new Error(
      `the stream worker serves ${started.prefix}, not ${streamPrefix}: one streamPrefix per page`);
  }
  if (!started) {
    const wasm = initWasm();
    const worker = controlledBy(streamPrefix);
    started = { prefix: streamPrefix, wasm, worker };
    wasm.catch(() => { started = null; }); // a later call tries again
    worker.then((ours) => ours && wake(), () => {}); // in control at last: it knows the page
  }
  return started;
}

/**
 * Starts, once per page, what every track needs: the wasm (compiled as its
 * bytes arrive: by the embed page's head, else by the glue's
 * `instantiateStreaming`) and the stream worker for `streamPrefix`. Resolves to whether
 * our worker controls the page. load() and play() call it too; calling it
 * early is what makes them fast. One prefix per page (and per origin: the
 * worker is registered at the origin's root).
 */
export function prepare({ streamPrefix = STREAM_PREFIX } = {}) {
  try {
    const { wasm, worker } = start(streamPrefix);
    return Promise.all([wasm, worker]).then(([, ours]) => ours);
  } catch (e) {
    return Promise.reject(e);
  }
}

/** The bytes of a `.torrent`, for `play(audio, { torrent, torrentBytes })`. */
export async function fetchTorrent(url) {
  const response = await fetch(url);
  if (!response.ok) throw new Error(`${url}: HTTP ${response.status}`);
  return new Uint8Array(await response.arrayBuffer());
}

/**
 * Makes the track of `options.torrent` (or `magnet`) for `audio` without
 * starting it: nothing goes on the network until `track.start()` (which
 * joins the swarm and plays). `options.torrentBytes` may be the torrent's
 * bytes or a promise of them (`fetchTorrent`): then the wasm does not fetch
 * `torrent` again, unless that promise failed. `streaming: false` plays the
 * web seed directly.
 */
export async function load(audio, options) {
  // Unsaid, the page's prefix (the worker's): one prefix per page.
  const streamPrefix = options.streamPrefix ?? started?.prefix ?? STREAM_PREFIX;
  const { wasm, worker } = start(streamPrefix);
  const keep = options.keep ?? 'track';
  if (!['start', 'track', 'none'].includes(keep)) {
    throw new Error(`keep: ${JSON.stringify(keep)} is not 'start', 'track' or 'none'`);
  }
  const key = keep === 'none' ? null : startKey(options);
  const whole = keep === 'track' ? trackKey(key) : null;
  const [, torrentBytes, kept] = await Promise.all([
    wasm,
    Promise.resolve(options.torrentBytes).catch(() => undefined), // fetched again below
    // The whole track if it is kept, else its start (kept by an older
    // default, or by `keep: 'start'`).
    readTrack(whole).then((pieces) => (pieces.length > 0 ? pieces : readStart(key))),
  ]);
  const track = await wasmLoad(audio, {
    ...options,
    streamPrefix,
    torrentBytes,
    // Whether our worker controls the page, when it is known: the track
    // does not wait for it to start fetching.
    streaming: options.streaming === false ? false : worker,
  });
  const imported = new Set();
  // The kept track's entries holding a piece refused here (its SHA-1 is not
  // the torrent's: a disk error, a truncated write).
  const damaged = new Set();
  for (const [index, bytes, entry] of kept) {
    if (imported.has(index)) continue; // in two entries: one is enough
    if (track.importPiece(index, bytes)) imported.add(index);
    else if (entry) damaged.add(entry);
  }
  if (whole) {
    // A damaged entry's good pieces are written again, then it goes.
    const rewrite = kept.filter(([index, , entry]) => damaged.has(entry) && imported.has(index))
      .map(([index]) => index);
    keepTrack(track, audio, whole, { damaged, rewrite, imported, quota: options.keepQuota ?? TRACK_QUOTA });
  }
  // The start too, whole track or not: `resume` plays from its entry.
  // So for each file an album's session moves on to, under its own key.
  if (key) {
    keepStart(track, audio, key);
    keepFileStarts(track, audio, options);
  }
  replayUnheard();
  wake();
  return track;
}

/** Starts the stream worker if the browser stopped it (it does when the
 *  worker is idle), so that it is running when the element asks: call it
 *  when play is near (the player does on pointerdown). Cheap; no-op
 *  without a worker in control. */
export function wake() {
  navigator.serviceWorker?.controller?.postMessage({ fanswarm: 'wake' });
}

/** Joins the swarm of `options.torrent` (or `magnet`) and plays it in
 *  `audio`: `load`, then `track.start()`. */
export async function play(audio, options) {
  const track = await load(audio, options);
  track.start();
  return track;
}

// ---- the first pieces, kept for the next visit ----
//
// Plain <audio> starts a second visit from the browser's cache. So does a
// track: the pieces it had verified when it first played (its first seconds,
// and whatever else the element read before playing, e.g. an Ogg file's last
// page) are kept in the Cache API, one entry per track, for the last
// START_TRACKS tracks; the next load() hands them back with importPiece,
// which checks each against the torrent's SHA-1 like any piece. So a second
// visit starts without waiting for the web seed, and shares those pieces at
// once. Only the start: what plays after comes from fans and the web seed.
// Which tracks have an entry is also noted in localStorage, read at once:
// opening the Cache API the first time takes 50-100 ms in a fresh profile
// (measured), and a first visit must not wait for it to learn it is empty.

/** The cache key of a track's start: what names its torrent, and the
 *  file played of a multi-file one (each file of an album has a start of
 *  its own, and a stream URL of its own to resume). */
function startKey(options) {
  const name = options.torrent ?? options.magnet
    ?? (options.infoHash && `${options.server ?? ''}/t/${options.infoHash}.torrent`);
  if (typeof name !== 'string' || !('caches' in self)) return null;
  const source = name.startsWith('magnet:') ? name : new URL(name, location.href).href;
  const file = options.file === undefined || options.file === null || options.file === ''
    ? '' : `&file=${encodeURIComponent(String(options.file))}`;
  return new URL(`/fanswarm/start?source=${encodeURIComponent(source)}${file}`, location.href).href;
}

/** The tracks whose start is kept, oldest first: `{key, stream}`, the
 *  cache key and the stream URL the element played. */
function startList() {
  return readList(START_LIST);
}

/** The `{key, …}` entries listed in localStorage under `name` (none if
 *  storage is blocked or the item is not ours). */
function readList(name) {
  try {
    const list = JSON.parse(localStorage.getItem(name) ?? '[]');
    return Array.isArray(list) ? list.filter((e) => typeof e?.key === 'string') : [];
  } catch {
    return []; // storage blocked, or not ours
  }
}

/** The pieces kept under `key`: [index, bytes] pairs (none on any failure). */
async function readStart(key) {
  if (!key || !startList().some((e) => e.key === key)) return [];
  try {
    const response = await (await caches.open(START_CACHE)).match(key);
    if (!response) return [];
    const bytes = new Uint8Array(await response.arrayBuffer());
    return piecesOf(response.headers.get('x-fanswarm-pieces') ?? '', bytes);
  } catch {
    return [];
  }
}

/** Keeps, once `audio` first plays, the pieces `track` verified until then. */
function keepStart(track, audio, key) {
  const verified = new Set();
  const onProgress = (e) => verified.add(e.detail);
  track.addEventListener('progress', onProgress);
  // Opened now, and the write begun in the `playing` event itself (a copy
  // of the pieces, then `put` from a microtask): a page left right after
  // its first sound still keeps its entry. Measured: written from a later
  // task, 4 of 10 entries were lost when the benchmark reloaded the page
  // at once.
  const cache = caches.open(START_CACHE);
  cache.catch(() => {});
  audio.addEventListener('playing', () => {
    track.removeEventListener('progress', onProgress);
    writeStart(cache, key, track, [...verified].sort((a, b) => a - b)).catch(() => {});
  }, { once: true });
}

/** `track.playFile(n, element?)`, which also keeps file n's start under
 *  its own key once its element plays: of the pieces the file has then
 *  (its look-ahead came before the move, not as `progress` after it). */
function keepFileStarts(track, audio, options) {
  const playFile = track.playFile.bind(track);
  let element = audio;
  track.playFile = (file, next) => {
    playFile(file, next); // throws for a file the album lacks: nothing kept
    element = next ?? element;
    const key = startKey({ ...options, file });
    const cache = caches.open(START_CACHE);
    cache.catch(() => {});
    element.addEventListener('playing', () => {
      if (track.file !== file) return; // moved on again before it played
      const first = Math.floor(track.offset / track.pieceLength);
      const had = [...track.pieces()].flatMap((state, i) => (state ? [first + i] : []));
      writeStart(cache, key, track, had).catch(() => {});
    }, { once: true });
  };
}

async function writeStart(opened, key, track, indexes) {
  // Only the start and the end: a page that joined on load may have the
  // whole track from its peers before it plays. Of the track's own bytes:
  // one file of an album starts at `offset` in the torrent.
  const size = track.pieceLength;
  const first = track.offset;
  const end = first + track.length;
  const start = (i) => i * size < end && (i + 1) * size > first
    && (i * size < first + START_HEAD_BYTES || (i + 1) * size > end - START_TAIL_BYTES);
  const pieces = indexes.filter(start).map((i) => [i, track.piece(i)]).filter(([, bytes]) => bytes);
  if (pieces.length === 0) return;
  const body = new Blob(pieces.map(([, bytes]) => bytes));
  const headers = { 'x-fanswarm-pieces': pieces.map(([i, bytes]) => `${i}:${bytes.length}`).join(',') };
  // Listed first (oldest first: a track played again moves to the end);
  // a listed entry that never got written is only a miss.
  const list = [...startList().filter((e) => e.key !== key), { key, stream: track.streamUrl }];
  const gone = list.splice(0, Math.max(0, list.length - START_TRACKS));
  localStorage.setItem(START_LIST, JSON.stringify(list));
  const cache = await opened;
  await Promise.all([cache.put(key, new Response(body, { headers })),
    ...gone.map((e) => cache.delete(e.key))]);
}

// ---- whole tracks, kept for the next visit (`keep: 'track'`, the default) ----
//
// Every piece the track verifies is written soon after it verifies, a few
// together: an entry per MiB or per 2 s (none while the element starts to
// play; see `keepTrack`), never the whole track again. Each entry's body is
// its pieces one after another, their indexes and lengths in a header, as
// in a start's entry; its URL is in its own track's folder, so one `keys`
// lists a track. A write per piece, as at first, made most fans of a flash
// crowd of ten on one machine stall (BENCHMARKS, "keeping a track in
// batches"); entries of one piece written so are still read. A returning
// page imports them (each checked against the torrent's SHA-1 like any
// piece: a corrupt piece is refused, its entry deleted once the entry's
// good pieces are written again, and the piece fetched again; a truncated
// entry yields the pieces before the cut), plays with nothing from the origin, and
// shares them at once. Tracks are evicted least recently played first to
// stay within the quota; `forget()` deletes them all. The Cache API rather
// than OPFS: it is in every engine that has service workers (OPFS writes
// from a page go through a whole-file swap in Chromium), and its entries
// die with the origin's storage like IndexedDB's.

/** The folder URL of a whole track kept under start key `key`: one per
 *  torrent, whichever file of it is played (pieces are the torrent's, each
 *  checked against its SHA-1 when read back). */
function trackKey(key) {
  if (!key) return null;
  const source = new URL(key).searchParams.get('source');
  return new URL(`/fanswarm/track/${encodeURIComponent(source)}/`, location.href).href;
}

function trackList() {
  return readList(TRACK_LIST);
}

function saveTrackList(list) {
  try {
    localStorage.setItem(TRACK_LIST, JSON.stringify(list));
  } catch {} // storage blocked or full: the entries are only found by a later listing
}

/** The pieces kept of the track at `folder`: [index, bytes, entry URL]
 *  (null for an entry that does not say its URL: never deleted). */
async function readTrack(folder) {
  if (!folder || !trackList().some((e) => e.key === folder)) return [];
  try {
    const cache = await caches.open(TRACK_CACHE);
    // One round trip for every entry (a matched Response has no URL: each
    // entry names its own in a header).
    const responses = await cache.matchAll(folder + 'piece', { ignoreSearch: true });
    const entries = await Promise.all(responses.map(async (response) => {
      const bytes = new Uint8Array(await response.arrayBuffer());
      const one = response.headers.get('x-fanswarm-piece'); // written before batches
      const list = one === null ? response.headers.get('x-fanswarm-pieces') ?? ''
        : `${one}:${bytes.length}`;
      // Only an entry of this folder is ever deleted as damaged.
      const named = response.headers.get('x-fanswarm-entry');
      const entry = one !== null ? `${folder}piece?i=${one}` : named?.startsWith(folder) ? named : null;
      return piecesOf(list, bytes).map(([index, piece]) => [index, piece, entry]);
    }));
    return entries.flat();
  } catch {
    return [];
  }
}

/** The [index, bytes] pairs of an entry's body, as its `x-fanswarm-pieces`
 *  header lists them (`index:length,…`); a truncated body yields those
 *  before the cut. */
function piecesOf(list, bytes) {
  const pieces = [];
  let at = 0;
  for (const entry of list.split(',')) {
    const [index, length] = entry.split(':').map(Number);
    if (!Number.isInteger(index) || !(length > 0) || at + length > bytes.length) break;
    pieces.push([index, bytes.subarray(at, at + length)]);
    at += length;
  }
  return pieces;
}

/** Whether `audio` is starting to play: told to play and still silent.
 *  Then the main thread is the first audio's (it answers the stream
 *  worker), and a Cache API `put` holds it 1-5 ms, a localStorage write
 *  ~0.5 ms (measured, Chromium: ~15 ms of them before a cold first audio). */
function starting(audio) {
  return !audio.paused && audio.readyState < HAVE_FUTURE_DATA;
}

/** Calls `f` in the first of `audio`'s events that end its start. */
function whenStarted(audio, f) {
  const kinds = ['playing', 'pause', 'error', 'emptied'];
  const done = () => {
    for (const kind of kinds) audio.removeEventListener(kind, done);
    f();
  };
  for (const kind of kinds) audio.addEventListener(kind, done);
}

/** Writes each piece `track` verifies from now on under `folder` (but the
 *  `imported` ones: kept already; their `progress` events come after the
 *  import), a batch at a time; deletes the `damaged` entries once their
 *  good pieces (`rewrite`) are written again; keeps the kept tracks' bytes
 *  within `quota` (least recently played first out). Writes wait while
 *  `audio` starts to play (`starting`). */
function keepTrack(track, audio, folder, { damaged, rewrite, imported, quota }) {
  const opened = caches.open(TRACK_CACHE);
  opened.catch(() => {});
  const generation = keepGeneration;
  let bytes = 0;
  for (const index of imported) bytes += track.piece(index)?.length ?? 0;
  const note = () => {
    const list = [...trackList().filter((e) => e.key !== folder),
      { key: folder, bytes, used: Date.now() }];
    let total = list.reduce((sum, e) => sum + (e.bytes || 0), 0);
    const gone = [];
    while (total > quota && list.length > 1) {
      const oldest = list.shift();
      total -= oldest.bytes || 0;
      gone.push(oldest.key);
    }
    saveTrackList(list);
    return gone;
  };
  note();
  let pending = Promise.resolve();
  let batch = [];
  let batchBytes = 0;
  let timer = null;
  let waiting = false; // for the element to start
  const flush = () => {
    clearTimeout(timer);
    timer = null;
    unflushed.delete(flush);
    const pieces = batch;
    batch = [];
    batchBytes = 0;
    if (generation !== keepGeneration) return; // not after a forget()
    const drop = [...damaged];
    damaged.clear();
    if (pieces.length === 0 && drop.length === 0) return;
    const gone = pieces.length > 0 ? note() : [];
    // A URL of its own (never `piece?i=N`, an older single piece's), so a
    // later batch holding the same piece again replaces nothing.
    const url = `${folder}piece?from=${pieces[0][0]}&n=${pieces.length}`
      + `&w=${Date.now().toString(36)}${Math.random().toString(36).slice(2, 8)}`;
    const body = new Blob(pieces.map(([, piece]) => piece));
    const headers = {
      'x-fanswarm-pieces': pieces.map(([index, piece]) => `${index}:${piece.length}`).join(','),
      'x-fanswarm-entry': url,
      'content-type': 'application/octet-stream',
    };
    pending = pending.then(async () => {
      const cache = await opened;
      if (pieces.length > 0) await cache.put(url, new Response(body, { headers }));
      await Promise.all(drop.map((entry) => cache.delete(entry)));
      for (const old of gone) await forgetTrack(cache, old);
    }).catch(() => {});
  };
  // Pieces verified while the element starts wait, and are written at
  // once when it has started (begun in that event: a page left right
  // after its first sound keeps them, as with the start's entry).
  const soon = () => {
    if (waiting) return;
    if (starting(audio)) {
      waiting = true;
      clearTimeout(timer);
      timer = null;
      whenStarted(audio, () => {
        waiting = false;
        flush();
      });
    } else if (batchBytes >= KEEP_BATCH_BYTES) {
      flush();
    } else if (timer === null) {
      timer = setTimeout(() => {
        timer = null;
        if (starting(audio)) soon();
        else flush();
      }, KEEP_BATCH_MS);
    }
  };
  const add = (index, piece) => {
    batch.push([index, piece]);
    batchBytes += piece.length;
    unflushed.add(flush);
  };
  for (const index of rewrite) {
    const piece = track.piece(index);
    if (piece) add(index, piece);
  }
  // Damaged entries go at once when none of their pieces is good, else
  // with the first batch (which holds their good ones).
  if (batch.length > 0) soon();
  else if (damaged.size > 0) flush();
  track.addEventListener('progress', (e) => {
    const index = e.detail;
    if (imported.has(index) || generation !== keepGeneration) return;
    const piece = track.piece(index);
    // A track larger than the whole quota keeps what fits.
    if (!piece || bytes + piece.length > quota) return;
    bytes += piece.length;
    add(index, piece);
    soon();
  });
}

/** The flush of each kept track with pieces not yet written: done at once
 *  when the page hides or goes (the Cache API finishes a `put` begun then). */
const unflushed = new Set();
addEventListener('pagehide', () => {
  for (const flush of [...unflushed]) flush();
});
addEventListener('visibilitychange', () => {
  if (document.visibilityState === 'hidden') for (const flush of [...unflushed]) flush();
});

async function forgetTrack(cache, folder) {
  const requests = await cache.keys(folder + 'piece', { ignoreSearch: true });
  await Promise.all(requests.map((r) => cache.delete(r)));
}

/** What is kept of tracks on this origin: `{tracks, bytes}`. */
export function kept() {
  const list = trackList();
  return { tracks: list.length, bytes: list.reduce((sum, e) => sum + (e.bytes || 0), 0) };
}

/** Deletes every track and track start kept on this origin. */
export async function forget() {
  keepGeneration += 1;
  saveTrackList([]);
  try {
    localStorage.removeItem(START_LIST);
  } catch {}
  // The stream worker's copies of tracks' heads and tails (sw.js).
  navigator.serviceWorker?.controller?.postMessage({ fanswarm: 'forget' });
  if (!('caches' in self)) return;
  await Promise.all([caches.delete(TRACK_CACHE), caches.delete(START_CACHE)]);
}

/**
 * On a return visit, plays `audio` at once, before its track is even made
 * (on a first visit, or if anything is missing, it does nothing and returns
 * false): the stream URL the element played last time, when our worker
 * controls the page. The element's request waits in the page's message
 * queue for the track, which answers it as soon as `load` has made it,
 * from the pieces it imports; Firefox answers it from its media cache at
 * once. So the press does not wait for the wasm to compile (Firefox keeps
 * no compiled code between visits: 20-40 ms after a press at load,
 * measured). `options` as for `load`; the track, once made, keeps that
 * source if it is its own.
 */
export function resume(audio, options) {
  const key = options.streaming === false || options.autoplay === false ? null : startKey(options);
  const stream = key && startList().find((e) => e.key === key)?.stream;
  const worker = navigator.serviceWorker?.controller;
  const prefix = options.streamPrefix ?? started?.prefix ?? STREAM_PREFIX;
  if (!stream || !worker || !stream.startsWith(prefix)
    || new URL(worker.scriptURL).searchParams.get('prefix') !== prefix) return false;
  audio.src = stream;
  audio.play().catch(() => {}); // refused autoplay: the track's start says so again
  return true;
}

/** Instantiates the wasm: the module the embed page's head started to
 *  compile as it downloaded (`self.fanswarmWasm`), else the glue's own. */
function initWasm() {
  const early = self.fanswarmWasm;
  if (!early) return init();
  return init({ module_or_path: early }).catch(() => init());
}

/** Registers the worker (at the origin's root, so it controls every page of
 *  ours: /embed/<hex> and /) and waits until it controls this page. */
async function controlledBy(streamPrefix) {
  const ours = new URL(import.meta.url).origin === location.origin;
  if (!ours || !('serviceWorker' in navigator)) return false;
  const worker = new URL('/sw.js', import.meta.url);
  worker.searchParams.set('prefix', streamPrefix);
  try {
    await navigator.serviceWorker.register(worker, { scope: '/' });
  } catch {
    return false; // e.g. blocked storage in a third-party frame
  }
  // Ours, for this prefix: an earlier worker (another prefix, an older
  // build) may control the page until the new one claims it.
  const container = navigator.serviceWorker;
  const deadline = Date.now() + CONTROL_TIMEOUT_MS;
  // A page that was still loading when the worker activated and claimed
  // its pages is not among them, and would stay uncontrolled (seen with
  // four pages opened at once): ask the active worker to claim again.
  container.ready.then((active) => {
    if (container.controller?.scriptURL !== worker.href) active.active?.postMessage({ fanswarm: 'claim' });
  }, () => {});
  while (container.controller?.scriptURL !== worker.href) {
    const left = deadline - Date.now();
    if (left <= 0) return false; // e.g. a hard reload: play the web seed directly
    await new Promise((resolve) => {
      container.addEventListener('controllerchange', resolve, { once: true });
      setTimeout(resolve, left);
    });
  }
  return true;
}

/** Shares `file` (a File or Blob) from this page: the wasm hashes it into
 *  a torrent (`options.onProgress` hears how far), then seeds it to
 *  `options.trackers` while the page stays open. Resolves to the seeding
 *  track: `track.magnet`, `track.torrent()`, `track.stats()`, `destroy()`. */
export async function share(file, options) {
  await start(started?.prefix ?? STREAM_PREFIX).wasm;
  return wasmShare(file, options);
}

export { version };
export default {
  play, load, resume, prepare, fetchTorrent, wake, share, kept, forget, version, STREAM_PREFIX,
};
