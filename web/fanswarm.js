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
import init, { load as wasmLoad, version } from './pkg/client_wasm.js';

/** Where the worker streams by default (the wasm peer's default too). */
export const STREAM_PREFIX = '/fanswarm/stream/';

/** How long to wait for the worker to take the page before playing the
 *  web seed directly (a hard reload leaves a page uncontrolled). */
const CONTROL_TIMEOUT_MS = 5000;

/** What prepare() started, once per page: the wasm and the worker. */
let started = null;

function start(streamPrefix) {
  if (started && streamPrefix !== started.prefix) {
    throw new Error(
      `the stream worker serves ${started.prefix}, not ${streamPrefix}: one streamPrefix per page`);
  }
  if (!started) {
    const wasm = initWasm();
    started = { prefix: streamPrefix, wasm, worker: controlledBy(streamPrefix) };
    wasm.catch(() => { started = null; }); // a later call tries again
  }
  return started;
}

/**
 * Starts, once per page, what every track needs: the wasm (streaming
 * compilation: the glue fetches it and `instantiateStreaming` compiles as the
 * bytes arrive) and the stream worker for `streamPrefix`. Resolves to whether
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
  const [, torrentBytes] = await Promise.all([
    wasm,
    Promise.resolve(options.torrentBytes).catch(() => undefined), // fetched again below
  ]);
  return wasmLoad(audio, {
    ...options,
    streamPrefix,
    torrentBytes,
    // Whether our worker controls the page, when it is known: the track
    // does not wait for it to start fetching.
    streaming: options.streaming === false ? false : worker,
  });
}

/** Joins the swarm of `options.torrent` (or `magnet`) and plays it in
 *  `audio`: `load`, then `track.start()`. */
export async function play(audio, options) {
  const track = await load(audio, options);
  track.start();
  return track;
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

export { version };
export default { play, load, prepare, fetchTorrent, version, STREAM_PREFIX };
