// <fanswarm-player torrent="/t/<hex>.torrent">: one track, plain controls.
// play(), pause() and stats() are the element's API; the web issue makes it pretty.
import fanswarm from './fanswarm.js';

class FanswarmPlayer extends HTMLElement {
  #audio = document.createElement('audio');
  #button = document.createElement('button');
  #track = null;
  #starting = null;

  constructor() {
    super();
    // The audio element has no source until the swarm is joined, so its own
    // controls cannot start anything: this button does. Listeners are on the
    // element's own children and go with them.
    this.#button.type = 'button';
    this.#button.textContent = 'Play';
    this.#button.addEventListener('click', () => this.#toggle());
    this.#audio.addEventListener('play', () => { this.#button.textContent = 'Pause'; });
    this.#audio.addEventListener('pause', () => { this.#button.textContent = 'Play'; });
  }

  connectedCallback() {
    const title = this.getAttribute('title') || 'track';
    this.#button.setAttribute('aria-label', `Play or pause ${title}`);
    this.#audio.controls = true;
    this.#audio.preload = 'none';
    this.append(this.#button, this.#audio);
  }

  async #toggle() {
    if (this.#track && !this.#audio.paused) {
      this.pause();
      return;
    }
    this.#button.disabled = true;
    try {
      await this.play();
    } catch (e) {
      this.dispatchEvent(new CustomEvent('warning', { detail: String(e) }));
    } finally {
      this.#button.disabled = false;
    }
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
      banned: 0, wasted: 0,
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
