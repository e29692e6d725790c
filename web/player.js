// <fanswarm-player torrent="/t/<hex>.torrent">: one track, plain controls.
// play(), pause() and stats() are the element's API; the web issue makes it pretty.
import fanswarm from './fanswarm.js';

class FanswarmPlayer extends HTMLElement {
  #audio = document.createElement('audio');
  #track = null;
  #starting = null;

  connectedCallback() {
    this.#audio.controls = true;
    this.#audio.preload = 'none';
    this.appendChild(this.#audio);
  }

  disconnectedCallback() {
    this.#track?.destroy();
    this.#track = null;
    this.#starting = null;
  }

  /** Starts (or resumes) playback; joins the swarm on first use. */
  async play() {
    if (!this.#track) {
      this.#starting ??= fanswarm.play(this.#audio, this.#options());
      this.#track = await this.#starting;
      this.#track.addEventListener('progress', () =>
        this.dispatchEvent(new CustomEvent('progress', { detail: this.stats() })));
      return;
    }
    await this.#audio.play();
  }

  /** The playing track (null before play()): stats, events, streamUrl. */
  get track() {
    return this.#track;
  }

  /** The element that plays. */
  get audio() {
    return this.#audio;
  }

  pause() {
    this.#audio.pause();
  }

  /** The track's stats as a plain object (zeros before play()). */
  stats() {
    return this.#track ? this.#track.stats() : {
      peers: 0, downloaded: 0, fromPeers: 0, fromWebSeed: 0, uploaded: 0,
      downloadSpeed: 0, uploadSpeed: 0, verifiedPieces: 0, totalPieces: 0, done: false,
    };
  }

  #options() {
    const options = { torrent: this.getAttribute('torrent') };
    const trackers = this.getAttribute('trackers');
    if (trackers) options.trackers = trackers.split(/\s+/).filter(Boolean);
    const ice = this.getAttribute('ice-servers');
    if (ice !== null) options.iceServers = ice.split(/\s+/).filter(Boolean);
    return options;
  }
}

customElements.define('fanswarm-player', FanswarmPlayer);
