// fanswarm: play a track from its swarm.
//
//   import fanswarm from '/fanswarm.js';
//   const track = await fanswarm.play(audioElement, { torrent: '/t/<hex>.torrent' });
//   // or { magnet: 'magnet:?xt=urn:btih:<hex>&tr=wss://…' }: metadata from peers
//   track.addEventListener('progress', () => console.log(track.stats().toJSON()));
//   track.destroy();
//
// Loads the WebAssembly peer once and makes sure the stream service worker
// controls the page before the first track plays.
import init, { play as wasmPlay, version } from './pkg/client_wasm.js';

let ready = null;

async function setup() {
  await init();
  if (!('serviceWorker' in navigator)) return; // plays the web seed directly
  await navigator.serviceWorker.register(new URL('./sw.js', import.meta.url), { scope: './' });
  await navigator.serviceWorker.ready;
  if (!navigator.serviceWorker.controller) {
    await new Promise((resolve) =>
      navigator.serviceWorker.addEventListener('controllerchange', resolve, { once: true }));
  }
}

/** Joins the swarm of `options.torrent` (or `magnet`) and plays it in `audio`. */
export async function play(audio, options) {
  ready ??= setup();
  await ready;
  return wasmPlay(audio, options);
}

export { version };
export default { play, version };
