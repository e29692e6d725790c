// fanswarm: play a track from its swarm.
//
//   import fanswarm from '/fanswarm.js';
//   const track = await fanswarm.play(audioElement, { torrent: '/t/<hex>.torrent' });
//   // or { magnet: 'magnet:?xt=urn:btih:<hex>&tr=wss://…' }: metadata from peers
//   track.addEventListener('progress', () => console.log(track.stats().toJSON()));
//   track.destroy();
//
// Loads the WebAssembly peer once and makes sure the stream service worker
// controls the page before the first track plays. A worker only serves its
// own origin: loaded from another origin (or where workers cannot register)
// the element plays the web seed URL directly while the page still swarms.
import init, { play as wasmPlay, version } from './pkg/client_wasm.js';

let ready = null;

/** Resolves to whether our stream worker controls this page. */
async function setup() {
  await init();
  const ours = new URL(import.meta.url).origin === location.origin;
  if (!ours || !('serviceWorker' in navigator)) return false;
  try {
    await navigator.serviceWorker.register(new URL('./sw.js', import.meta.url), { scope: './' });
  } catch {
    return false; // e.g. blocked storage in a third-party frame
  }
  await navigator.serviceWorker.ready;
  if (!navigator.serviceWorker.controller) {
    await new Promise((resolve) =>
      navigator.serviceWorker.addEventListener('controllerchange', resolve, { once: true }));
  }
  return true;
}

/** Joins the swarm of `options.torrent` (or `magnet`) and plays it in `audio`. */
export async function play(audio, options) {
  ready ??= setup();
  const streaming = await ready;
  return wasmPlay(audio, { ...options, streaming });
}

export { version };
export default { play, version };
