// <fanswarm-player src="/t/<hex>.torrent"> — one track: play/pause, seek,
// time, volume, a piece map and the swarm's figures, in a shadow root so the
// host page's CSS cannot break it (nor ours leak out).
//
// API: play(), pause(), stats() (the JS API's stats object), pieces() (one
// state name per piece), `track`, `audio`, `ready`; a `fanswarm-stats` event
// (detail: stats) whenever the figures change; a `warning` event (detail:
// text) for each of the track's warnings and for a press of play that failed.
// Attributes: `title`, `artist`,
// `album`, `artwork` (a cover URL), `duration` (seconds) say what to show
// before and while it plays; without `duration` the player asks the track's
// server (`/api/tracks/<hex>`: the tags read at publish time) and shows what
// it says where no attribute does. `src` (a .torrent
// URL or a magnet; `torrent` and `magnet` are aliases; changing it leaves
// the old swarm for the new track), `title`, `trackers`, `ice-servers` (space-separated
// STUN/TURN URLs, empty: none; without it the player asks the track's server
// for its `/api/ice` — STUN, TURN with credentials that expire, asked again
// before they do — and uses none if that fails), `join` ("load", the default: join the swarm as soon as
// everything is prefetched, before play; "play": only when played — for a
// page with many players), `upload` ("auto", the default: this fan uploads
// nothing on cellular data or with a data saver on, by the Network
// Information API where the browser has it; "on"; "off") and `upload-cap`
// (piece bytes per second at most; 0: none) — the sharing line then says
// "Not sharing: cellular data." and why, `stats().sharingOff` too.
// `keep` ("track", the default: every piece, so a returning fan plays and
// shares the track with nothing from the server, up to `keep-quota-mb`
// (256) for all tracks, least recently played out first; "start": only the
// first pieces, for a fast second visit; "none") says what this browser
// keeps between visits. The player shows what is kept and offers to
// forget it; `fanswarm.forget()` deletes it all. `prefetch` ("head", the
// default: joined on load, with no fan on its way, the page fetches the
// start a press needs — 256 KiB and an Ogg file's tail — from the web
// seed, so play starts from decoded audio; where fans are, they send it;
// "none": a page never played costs the artist's server nothing).
// `file` (an index from 0) plays one file of a multi-file torrent (a track
// of an album: `/embed/<album>?file=N`): the player joins the album's swarm,
// fetches only that file's pieces and shows that file's title (the
// server's `files` list); a bad index is said in the status line. Without
// `file`, an album (a multi-file torrent) shows its track list (titles
// from the server's `files`, else the file names; `title` is then the
// album's name) and plays its first track; pressing a track plays that
// one, and at a track's end the next one plays by itself, gaplessly: the
// whole album is one track (one swarm, its peers kept), and the next file
// is made ready in a second element before the playing one ends.
//
// Nothing the first audio needs waits for the press of play: as soon as the
// element is on the page it compiles the wasm, registers the stream worker
// and fetches the .torrent, all at once, then makes the track without
// starting it (`fanswarm.load`: nothing on the network); `ready` resolves
// when all that is done, and play() only has to start the track.
//
// Phones and keyboards: the Media Session gets the track's title, artist,
// album and cover when it plays, and its play/pause/seek actions; Space or
// K plays and pauses, arrows on the seek slider move 5 s (Page Up/Down
// 30 s, Home/End the ends); once every piece is verified a download button
// saves the verified bytes under the track's name.
//
// Two modes, chosen by origin:
// - on the server's own origin (the /embed/<hex> page, the demo page) the
//   element plays here, streamed by the service worker from verified pieces;
//   inside a frame it forwards its stats to the parent with postMessage and
//   takes `play`/`pause` commands from it;
// - on any other origin (an artist's page that loaded /embed.js) a service
//   worker of ours cannot run, so the element shows the /embed/<hex> frame
//   and proxies play/pause/stats to it: the fan still streams from the swarm.
import fanswarm from './fanswarm.js';
import { PieceMap, STATES, statesOf } from './piecemap.js';
import {
  STYLE, byline, downloadName, formatBytes, formatTime, mediaMetadata, sharingText, template,
} from './player-view.js';

const MODULE_ORIGIN = new URL(import.meta.url).origin;
const REMOTE = MODULE_ORIGIN !== location.origin;
const TICK_MS = 1000;
// Seconds before a track's end the album's next one is made ready in the
// second element (the session fetches its start from 20 s before).
const PREPARE_SECS = 15;
/** Seconds an arrow key (and Page Up/Down) moves the seek slider. */
const SEEK_STEP = 5;
const SEEK_PAGE = 30;

/** The player whose track the Media Session shows (the one played last). */
let sessionOwner = null;

const EMPTY_STATS = Object.freeze({
  peers: 0, downloaded: 0, fromPeers: 0, fromWebSeed: 0, fromCache: 0, uploaded: 0,
  downloadSpeed: 0, uploadSpeed: 0, length: 0, verifiedBytes: 0, verifiedPieces: 0,
  totalPieces: 0, done: false, banned: 0, wasted: 0, sharing: false, sharingOff: null, uploadCap: null,
});

class FanswarmPlayer extends HTMLElement {
  #root = this.attachShadow({ mode: 'open' });
  // The element playing, and a second one: in an album's list the next
  // track is made ready in it while this one plays (`#prepareNext`), and
  // it takes over at `ended` (`#next`): the two swap roles.
  #audio = document.createElement('audio');
  #spare = document.createElement('audio');
  // The album file the spare element is ready to play, or null.
  #nextReady = null;
  #track = null;
  #starting = null;
  // The track was told to play (it plays a bare magnet once its details
  // come); a later play() resumes the element.
  #played = false;
  // A change of `src`/`torrent`/`magnet` is applied once, after the others
  // made in the same task (removing `src` then setting `magnet` is one change).
  #resourcing = false;
  // Bumped on leaving: a join still under way for an older source is undone.
  #generation = 0;
  #timer = null;
  // The server's RTCConfiguration (a promise), and the timer renewing it.
  #ice = null;
  #iceTimer = 0;
  #redraw = 0;
  #heard = false;
  #announcing = false;
  #lastStats = '';
  #map = null;
  #ui = null;
  // What the track's server says of it (`/api/tracks/<hex>`), once known.
  #meta = {};
  // An album's track chosen from its list (without a `file` attribute).
  #albumIndex = null;
  // Remote mode: the frame and what it last reported.
  #frame = null;
  #frameOrigin = MODULE_ORIGIN;
  #remote = null;
  // What was started on connect: the .torrent's bytes (a promise) for `src`,
  // and the track made from them, not started (a promise).
  #prefetched = null;
  #ready = deferred();
  #onMessage = (e) => this.#message(e);
  #onKey = (e) => this.#key(e);

  static get observedAttributes() {
    return ['src', 'torrent', 'magnet', 'file', 'upload', 'upload-cap'];
  }

  /** A new source: leave the old swarm and prepare (and join) the new one.
   *  A new upload policy: the track (or the frame) uses it from now on. */
  attributeChangedCallback(name, before, after) {
    if (before === after) return;
    if (name === 'upload' || name === 'upload-cap') {
      this.#applyUpload();
      return;
    }
    if (!this.#ui || this.#resourcing) return;
    this.#resourcing = true;
    queueMicrotask(() => {
      this.#resourcing = false;
      this.#applySource();
    });
  }

  /** Hands the `upload` and `upload-cap` attributes to the track (or, on
   *  another origin, to the frame's player); a bad value is a `warning`
   *  that says what is accepted, and the policy in force stays. */
  #applyUpload() {
    const { upload, uploadCap } = this.#uploadOptions();
    if (this.#frame) {
      this.#frame.contentWindow?.postMessage({ fanswarm: 'upload', upload, uploadCap }, this.#frameOrigin);
      return;
    }
    if (!this.#track) return; // the track is made with them
    try {
      this.#track.setUpload(upload, uploadCap);
    } catch (e) {
      this.dispatchEvent(new CustomEvent('warning', { detail: String(e?.message ?? e) }));
    }
    this.#showSharing();
  }

  /** `upload` and `uploadCap` for the track, from the attributes. */
  #uploadOptions() {
    const cap = this.getAttribute('upload-cap');
    return {
      upload: this.getAttribute('upload') ?? undefined,
      uploadCap: cap === null || cap.trim() === '' ? undefined : Number(cap),
    };
  }

  /** The sharing line: why this fan is not sharing, or its cap. */
  #showSharing(stats = this.#track?.stats()) {
    if (this.#ui && stats) this.#ui.sharing.textContent = sharingText(stats);
  }

  /** If the source is not the one prepared, leaves and prepares the new one. */
  #applySource() {
    if (!this.isConnected || !this.#ui || this.#isPrepared()) return;
    // Another track of the same album: what its server said still holds.
    const sameSource = this.#prefetched?.src === this.#source();
    const meta = this.#meta;
    this.#leave();
    if (sameSource) this.#meta = meta;
    else this.#albumIndex = null;
    this.#ready = deferred();
    this.#showMeta();
    this.#prefetch();
  }

  connectedCallback() {
    window.addEventListener('message', this.#onMessage);
    // Mounted before: removing the element left the swarm; play() rejoins.
    if (this.#ui || this.#frame) return;
    const hex = infoHashOf(this.#source());
    if (REMOTE && hex) {
      this.#mountFrame(hex);
    } else {
      this.#mountPlayer();
      this.#prefetch();
    }
  }

  disconnectedCallback() {
    window.removeEventListener('message', this.#onMessage);
    this.#leave();
  }

  /** Leaves the swarm: a removed player holds no connection or timer. */
  #leave() {
    this.#generation += 1;
    clearInterval(this.#timer);
    this.#timer = null;
    clearTimeout(this.#iceTimer);
    this.#ice = null;
    cancelAnimationFrame(this.#redraw);
    this.#redraw = 0;
    this.#track?.destroy();
    this.#track = null;
    this.#dropSpare();
    this.#starting = null;
    this.#played = false;
    this.#lastStats = '';
    this.#prefetched?.track?.then((t) => t.destroy(), () => {});
    this.#prefetched = null;
    this.#meta = {};
    if (this.#ui) this.#ui.download.hidden = true;
    this.#releaseMediaSession();
  }

  /** Starts (or resumes) playback; joins the swarm first if the page has
   *  not (see `join`). */
  async play() {
    if (this.#frame) {
      this.#frame.contentWindow?.postMessage({ fanswarm: 'play' }, this.#frameOrigin);
      return;
    }
    this.#applySource(); // a source set just now, in this same task
    const resumed = this.#played;
    if (!this.#track) await this.#joining(true);
    if (!this.#played) {
      // Joined on load: now it plays (first, before anything else the page
      // does: the element's first requests wait for this thread).
      this.#played = true;
      this.#track.start();
    } else if (resumed) {
      await this.#audio.play();
    }
  }

  pause() {
    if (this.#frame) {
      this.#frame.contentWindow?.postMessage({ fanswarm: 'pause' }, this.#frameOrigin);
      return;
    }
    this.#audio.pause();
  }

  /** The figures right now, as track.stats() gives them (zeros before play). */
  stats() {
    if (this.#frame) return this.#remote?.stats ?? { ...EMPTY_STATS };
    return this.#track ? this.#track.stats() : { ...EMPTY_STATS };
  }

  /** One state name per piece: missing, fans, server, mixed, local, played. */
  pieces() {
    if (this.#frame) return (this.#remote?.pieces ?? []).slice();
    return this.#track ? this.#pieceStates() : [];
  }

  /** The playing track (null before play(), and in remote mode). */
  get track() {
    return this.#track;
  }

  /**
   * Resolves once the player can start at once: wasm compiled and
   * instantiated, stream worker in control (or known unavailable), .torrent
   * fetched; in remote mode, once the frame's player says so. Rejects if one
   * of them failed (play() then tries again and says why).
   */
  get ready() {
    return this.#ready.promise;
  }

  /** The element that plays (in remote mode it is in the frame). */
  get audio() {
    return this.#audio;
  }

  // ---- local mode ----

  #mountPlayer() {
    this.#root.innerHTML = `<style>${STYLE}</style>${template()}`;
    const $ = (name) => this.#root.querySelector(`[data-ui="${name}"]`);
    this.#ui = {
      title: $('title'), byline: $('byline'), cover: $('cover'), download: $('download'),
      toggle: $('toggle'), seek: $('seek'), time: $('time'),
      volume: $('volume'), map: $('map'), fans: $('fans'), share: $('share'),
      passed: $('passed'), status: $('status'), sharing: $('sharing'),
      keptbox: $('keptbox'), kept: $('kept'), forget: $('forget'), tracks: $('tracks'),
    };
    this.#map = new PieceMap(this.#ui.map);
    this.#audio.preload = 'none';
    this.#spare.preload = 'none';
    this.#root.append(this.#audio, this.#spare);
    this.#showMeta();
    const ui = this.#ui;
    ui.toggle.addEventListener('click', () => this.#toggle());
    ui.download.addEventListener('click', () => this.#saveFile());
    ui.forget.addEventListener('click', () => {
      fanswarm.forget().then(() => {
        ui.kept.textContent = formatBytes(0);
        ui.status.textContent = 'Tracks kept in this browser deleted.';
      }, (e) => { ui.status.textContent = `Could not delete the kept tracks: ${e}`; });
    });
    ui.cover.addEventListener('error', () => { ui.cover.hidden = true; });
    ui.seek.addEventListener('input', () => {
      const d = this.#audio.duration;
      if (Number.isFinite(d)) this.#audio.currentTime = (ui.seek.value / 1000) * d;
    });
    ui.volume.addEventListener('input', () => {
      this.#audio.volume = ui.volume.value / 100;
      this.#spare.volume = this.#audio.volume;
    });
    // Both elements, each heard only while it is the one playing.
    for (const element of [this.#audio, this.#spare]) {
      const on = (kind, f) => element.addEventListener(kind, (e) => {
        if (e.target === this.#audio) f();
      });
      for (const kind of ['play', 'pause', 'timeupdate', 'durationchange', 'seeked', 'volumechange']) {
        on(kind, () => this.#render());
      }
      on('timeupdate', () => this.#prepareNext());
      on('play', () => this.#claimMediaSession());
      on('ended', () => this.#next());
      on('playing', () => {
        this.#heard = true;
        this.#updateSoon();
      });
    }
    this.addEventListener('keydown', this.#onKey);
    // A press is coming: the stream worker should be running when it lands.
    this.addEventListener('pointerdown', () => fanswarm.wake(), { passive: true });
    this.#render();
    if (window.parent !== window) {
      // Framed (the /embed page): tell the parent our height, so an
      // embed.js element can size its frame to fit.
      const box = this.#root.querySelector('.box');
      new ResizeObserver(() => window.parent.postMessage(
        { fanswarm: 'size', height: Math.ceil(this.getBoundingClientRect().height) + 2 }, '*'))
        .observe(box);
    }
  }

  async #toggle() {
    if (this.#track && !this.#audio.paused) {
      this.pause();
      return;
    }
    this.#ui.toggle.disabled = true;
    try {
      await this.play();
    } catch (e) {
      this.#ui.status.textContent = `Could not play: ${e?.message ?? e}`;
      this.dispatchEvent(new CustomEvent('warning', { detail: String(e) }));
    } finally {
      this.#ui.toggle.disabled = false;
    }
  }

  /** Starts everything play() needs, in parallel, as the page loads, and
   *  makes the track; then, unless `join="play"`, joins the swarm without
   *  playing: by the time the fan presses play the page knows its
   *  neighbours, so the crowd rather than the artist's server sends what
   *  they already have (a page that is never played costs the server at
   *  most the start, `prefetch`, and only where no fan is on its way). */
  #prefetch() {
    this.#ice = this.#askIce();
    const src = this.#source();
    this.#askMeta(src);
    const torrent = src && !src.startsWith('magnet:') ? fanswarm.fetchTorrent(src) : null;
    torrent?.catch(() => {}); // play() fetches it again and reports the error
    this.#prefetched = { src, torrent }; // #options() hands these bytes on
    const options = this.#options();
    const track = fanswarm.load(this.#audio, options);
    const made = { src, file: this.#chosen(), torrent, track, trackers: String(options.trackers), ready: false };
    track.then(() => { made.ready = true; }, (e) => {
      // Said now (e.g. a `file` the torrent lacks); play() tries again.
      if (this.#prefetched === made) this.#ui.status.textContent = `Could not play: ${e?.message ?? e}`;
    });
    this.#prefetched = made;
    const ready = this.#ready;
    Promise.all([fanswarm.prepare(), torrent, track]).then(() => {
      if (this.#prefetched !== made) return; // given another source meanwhile
      ready.resolve();
      // Framed: an embed.js element on the parent page resolves its own `ready`.
      if (window.parent !== window) window.parent.postMessage({ fanswarm: 'ready' }, '*');
      if (this.getAttribute('join') !== 'play' && this.isConnected) {
        this.#joining(false).catch(() => {}); // play() tries again and says why
      }
    }, ready.reject);
  }

  /** Joins the swarm once; a failed join is tried again by the next call. */
  #joining(play) {
    if (!this.#starting) {
      const joining = this.#start(play).catch((e) => {
        if (this.#starting === joining) this.#starting = null;
        throw e;
      });
      this.#starting = joining;
    }
    return this.#starting;
  }

  /** The track made on connect, joined (and with `play` started); made
   *  now if that failed or its trackers changed since. */
  async #start(play) {
    const generation = this.#generation;
    const options = this.#options();
    const made = this.#isPrepared() ? this.#prefetched : null;
    // Pressed before the track is made (the wasm still compiling): on a
    // return visit the element can start now all the same.
    if (play && made && !made.ready) fanswarm.resume(this.#audio, options);
    let track = made && await made.track.catch(() => null);
    if (track && made.trackers !== String(options.trackers)) {
      track.destroy();
      track = null;
    }
    if (!track) {
      this.#ui.status.textContent = 'Joining the swarm…';
      track = await fanswarm.load(this.#audio, options);
    }
    const ice = await (this.#ice ??= this.#askIce());
    if (!this.isConnected || generation !== this.#generation) {
      // Removed, or given another source, while joining: leave again.
      track.destroy();
      throw new Error(this.isConnected ? 'the player was given another track'
        : 'the player was removed from the page');
    }
    if (options.iceServers) track.setIceServers(options.iceServers);
    else if (ice) this.#useIce(track, ice, generation);
    // First, before anything else the page does: the element's first
    // requests wait for this thread.
    if (play) {
      this.#played = true;
      track.start();
    } else {
      track.join();
    }
    this.#track = track;
    // A bare magnet: no details until a fan sends them (the `metadata`
    // event); the engine's `warning`s say why it is taking long.
    this.#ui.status.textContent = track.length > 0 ? '' : 'Waiting for the track\u2019s details from fans\u2026';
    this.#showMeta();
    // A browser without WebRTC (or service workers) is told once, here,
    // and in the stats (`sharing`); the track's one `warning` says the same.
    const lacks = track.lacks ?? [];
    if (lacks.length > 0) this.#ui.status.textContent = lackingText(lacks);
    track.addEventListener('metadata', () => {
      this.#ui.status.textContent = '';
      this.#showMeta();
    });
    // Not sharing (a metered link, or the page said so), and why: said
    // in words, kept current as the link changes.
    this.#showSharing();
    track.addEventListener('sharing', () => this.#showSharing());
    track.addEventListener('warning', (e) => {
      // A magnet's details that never came, or (known only once they do)
      // a file it cannot play: the player's own line says so.
      const said = String(e.detail);
      if (track.length === 0 && said.startsWith('no metadata')) this.#ui.status.textContent = said;
      if (/^(file=|no file of this torrent)/.test(said)) this.#ui.status.textContent = `Could not play: ${said}`;
      // The page hears every warning from the element, from the track's
      // first (this listener is in place before the track fires any).
      this.dispatchEvent(new CustomEvent('warning', { detail: e.detail }));
    });
    this.#ui.seek.disabled = false;
    const update = () => this.#update();
    const soon = () => this.#updateSoon();
    for (const kind of ['progress', 'peers', 'done']) track.addEventListener(kind, soon);
    track.addEventListener('progress', () =>
      this.dispatchEvent(new CustomEvent('progress', { detail: this.stats() })));
    // Not while the element starts to play: see `#updateSoon`.
    this.#timer = setInterval(() => {
      if (this.#heard || this.#audio.paused) update();
    }, TICK_MS);
    soon();
  }

  /** Redraws at the next frame, once however many pieces verified or
   *  media events came since, and not before the first sound: until then
   *  the main thread must answer the worker's requests for the element,
   *  and a redraw per piece or event delayed them (measured: 7 ms for one
   *  on `durationchange`); only the figures are announced, once per burst.
   *  The 1 s tick redraws a page that shows no frames. */
  #updateSoon() {
    if (!this.#track) return;
    if (!this.#heard) {
      if (this.#announcing) return;
      this.#announcing = true;
      queueMicrotask(() => {
        this.#announcing = false;
        if (this.#track) this.#announce();
      });
      return;
    }
    if (this.#redraw) return;
    this.#redraw = requestAnimationFrame(() => {
      this.#redraw = 0;
      this.#update();
    });
  }

  /** Redraws figures and map from the engine; announces changed stats. */
  #update() {
    if (!this.#track) return;
    const stats = this.#track.stats();
    const pieces = this.#track.pieces();
    this.#map.draw(pieces, playedPieces(this.#audio, pieces.length, this.#track.pieceLength,
      this.#track.length, this.#track.offset));
    const ui = this.#ui;
    ui.fans.textContent = String(stats.peers);
    ui.share.textContent = stats.downloaded > 0
      ? `${Math.round((100 * stats.fromPeers) / stats.downloaded)}%` : '–';
    ui.passed.textContent = formatBytes(stats.uploaded);
    this.#showSharing(stats);
    if (stats.done && ui.download.hidden) ui.download.hidden = false;
    if ((this.getAttribute('keep') ?? 'track') === 'track' && fanswarm.kept().tracks > 0) {
      ui.keptbox.hidden = false;
      ui.kept.textContent = formatBytes(fanswarm.kept().bytes);
    }
    this.#announce(stats);
  }

  /** Every piece's state now, from the engine: the map is not redrawn
   *  before the first sound, but what a page asks for must be current. */
  #pieceStates() {
    const pieces = this.#track.pieces();
    return statesOf(pieces, playedPieces(this.#audio, pieces.length, this.#track.pieceLength,
      this.#track.length, this.#track.offset));
  }

  /** Fires `fanswarm-stats` (and tells a parent page) if the figures changed. */
  #announce(stats = this.#track.stats()) {
    const text = JSON.stringify(stats);
    if (text !== this.#lastStats) {
      this.#lastStats = text;
      this.dispatchEvent(new CustomEvent('fanswarm-stats', { detail: stats, bubbles: true, composed: true }));
      this.#forward(stats);
    }
  }

  /** Inside a frame: tells the parent page (any origin: stats are public). */
  #forward(stats) {
    if (window.parent === window) return;
    window.parent.postMessage({
      fanswarm: 'stats',
      infoHash: this.#track.infoHash,
      name: this.#track.name,
      stats,
      pieces: this.#pieceStates(),
      paused: this.#audio.paused,
      currentTime: this.#audio.currentTime,
    }, '*');
  }

  #render() {
    const a = this.#audio;
    const ui = this.#ui;
    const playing = !a.paused;
    ui.toggle.dataset.playing = String(playing);
    ui.toggle.setAttribute('aria-label', `${playing ? 'Pause' : 'Play'} ${this.#titleText()}`);
    const d = this.#duration();
    ui.time.textContent = `${formatTime(a.currentTime)} / ${formatTime(d)}`;
    if (d > 0 && this.#root.activeElement !== ui.seek) ui.seek.value = String(Math.round((a.currentTime / d) * 1000));
    ui.seek.setAttribute('aria-valuetext', `${formatTime(a.currentTime)} of ${formatTime(d)}`);
    ui.volume.value = String(Math.round(a.volume * 100));
    if (sessionOwner === this) this.#sessionPosition(d);
    this.#updateSoon();
  }

  /** Seconds: the element's once it knows, else the tags' (known before play). */
  #duration() {
    const d = this.#audio.duration;
    if (Number.isFinite(d) && d > 0) return d;
    return this.#info().duration ?? 0;
  }

  /** What to show: the attributes, else the server's tags, else the file name. */
  #info() {
    const attr = (name) => this.getAttribute(name) || undefined;
    // One file of an album: its own tags, the album's name and cover.
    const all = this.#meta;
    const index = Number(this.#chosen() ?? this.#track?.file ?? 0);
    const f = Array.isArray(all.files) ? all.files.find((x) => x.index === index) : null;
    // In an album's list (no `file`), `title` names the album.
    const listing = f && this.#file() === null;
    const m = f ? {
      name: f.name, title: f.title || f.name, artist: f.artist ?? all.artist,
      album: all.album || all.title, duration: f.duration, cover: all.cover,
    } : all;
    const duration = Number(attr('duration') ?? m.duration);
    const fileName = this.#track?.name || m.name || undefined;
    return {
      title: (listing ? undefined : attr('title')) || m.title || fileName || 'fanswarm track',
      artist: attr('artist') || m.artist || undefined,
      album: attr('album') || (listing ? attr('title') : undefined) || m.album || undefined,
      cover: attr('artwork') || m.cover || undefined,
      duration: duration > 0 ? duration : undefined,
      fileName,
    };
  }

  /** Asks the track's server what its tags say (title, artist, album, cover,
   *  duration), unless the page said (`duration`) or there is no server. */
  #askMeta(src) {
    const hex = infoHashOf(src);
    if (!hex || src.startsWith('magnet:') || this.hasAttribute('duration')) return;
    const generation = this.#generation;
    let origin;
    try {
      origin = new URL(src, location.href).origin;
    } catch {
      return; // a bad src is reported by the load
    }
    fetch(`${origin}/api/tracks/${hex}`)
      .then((r) => (r.ok ? r.json() : null))
      .then((t) => {
        if (!t || generation !== this.#generation) return;
        // An album's `files` too: #info shows the one played.
        this.#meta = {
          name: t.name, title: t.title, artist: t.artist, album: t.album,
          duration: t.duration, cover: t.cover_url, files: t.files,
        };
        this.#showMeta();
      })
      .catch(() => {}); // the player shows the file name
  }

  /** Title, artist · album, cover and the download's name, as known now. */
  #showMeta() {
    const ui = this.#ui;
    if (!ui) return;
    const info = this.#info();
    ui.title.textContent = info.title;
    ui.byline.textContent = byline(info);
    if (info.cover) {
      if (ui.cover.getAttribute('src') !== info.cover) ui.cover.src = info.cover;
      ui.cover.alt = `Cover of ${info.album || info.title}`;
      ui.cover.hidden = false;
    } else {
      ui.cover.removeAttribute('src');
      ui.cover.hidden = true;
    }
    ui.download.setAttribute('aria-label', `Download ${info.title}`);
    this.#showTracks();
    if (sessionOwner === this) this.#sessionMetadata(info);
    this.#render();
  }

  /** Saves the verified bytes as a file named after the track: a Blob of
   *  every piece, as the engine verified them. */
  #saveFile() {
    const track = this.#track;
    if (!track || !track.stats().done) return;
    const parts = [];
    let bytes = 0;
    // The track's bytes: the whole torrent, or one file of an album (from
    // `offset`, its first and last pieces shared with its neighbours).
    const size = track.pieceLength;
    const first = track.offset;
    const end = first + track.length;
    for (let i = Math.floor(first / size); i * size < end; i++) {
      const piece = track.piece(i);
      if (!piece) {
        this.#ui.status.textContent = 'Part of the track is no longer kept in memory: it cannot be saved now.';
        return;
      }
      const part = piece.subarray(Math.max(0, first - i * size), Math.min(piece.length, end - i * size));
      parts.push(part);
      bytes += part.length;
    }
    if (bytes !== track.length) return;
    const url = URL.createObjectURL(new Blob(parts));
    const link = document.createElement('a');
    link.href = url;
    link.download = downloadName(this.#info(), track.name);
    link.hidden = true;
    this.#root.append(link);
    link.click();
    link.remove();
    // The download has its own reference by then; the page's goes soon.
    setTimeout(() => URL.revokeObjectURL(url), 60_000);
  }

  // ---- the Media Session (lock screens, headsets, media keys) ----

  /** This player plays: the Media Session shows its track and its
   *  play/pause/seek actions come here. */
  #claimMediaSession() {
    const session = navigator.mediaSession;
    if (!session) return;
    sessionOwner = this;
    const audio = this.#audio;
    const to = (t) => {
      const d = this.#duration();
      audio.currentTime = Math.max(0, d > 0 ? Math.min(t, d) : t);
    };
    const handlers = {
      play: () => { this.play().catch(() => {}); },
      pause: () => this.pause(),
      seekto: (d) => { if (Number.isFinite(d.seekTime)) to(d.seekTime); },
      seekbackward: (d) => to(audio.currentTime - (d.seekOffset || 10)),
      seekforward: (d) => to(audio.currentTime + (d.seekOffset || 10)),
    };
    for (const [action, handler] of Object.entries(handlers)) {
      try {
        session.setActionHandler(action, handler);
      } catch { /* an action this browser does not know */ }
    }
    this.#sessionMetadata(this.#info());
  }

  #sessionMetadata(info) {
    if (typeof MediaMetadata !== 'function') return;
    const init = mediaMetadata(info, info.title);
    if (init.artwork.length) init.artwork[0].src = new URL(init.artwork[0].src, location.href).href;
    navigator.mediaSession.metadata = new MediaMetadata(init);
  }

  #sessionPosition(duration) {
    const session = navigator.mediaSession;
    session.playbackState = this.#audio.paused ? 'paused' : 'playing';
    if (!(duration > 0) || !session.setPositionState) return;
    try {
      session.setPositionState({
        duration,
        position: Math.min(this.#audio.currentTime, duration),
        playbackRate: this.#audio.playbackRate || 1,
      });
    } catch { /* a position the browser refuses: it keeps the last one */ }
  }

  #releaseMediaSession() {
    if (sessionOwner !== this) return;
    sessionOwner = null;
    const session = navigator.mediaSession;
    session.metadata = null;
    for (const action of ['play', 'pause', 'seekto', 'seekbackward', 'seekforward']) {
      try {
        session.setActionHandler(action, null);
      } catch { /* not known here */ }
    }
  }

  /** Space or k: play/pause; arrows (outside the volume slider): ±5 s;
   *  on the seek slider also Page Up/Down (±30 s), Home and End. */
  #key(e) {
    if (e.ctrlKey || e.metaKey || e.altKey) return; // the browser's shortcuts
    const target = e.composedPath()[0];
    if (target === this.#ui?.seek && this.#seekKey(e)) return;
    const onSlider = target?.type === 'range';
    if ((e.key === ' ' && e.composedPath()[0]?.tagName !== 'BUTTON') || e.key === 'k') {
      e.preventDefault();
      this.#toggle();
    } else if (!onSlider && (e.key === 'ArrowLeft' || e.key === 'ArrowRight') && this.#track) {
      e.preventDefault();
      this.#audio.currentTime = Math.max(0, this.#audio.currentTime + (e.key === 'ArrowLeft' ? -5 : 5));
    }
  }

  /** A key on the seek slider, in seconds rather than the slider's
   *  thousandths (a 3-minute track would move 0.18 s a press); whether
   *  it was one. */
  #seekKey(e) {
    const steps = {
      ArrowLeft: -SEEK_STEP, ArrowDown: -SEEK_STEP, ArrowRight: SEEK_STEP, ArrowUp: SEEK_STEP,
      PageDown: -SEEK_PAGE, PageUp: SEEK_PAGE,
    };
    const a = this.#audio;
    const d = this.#duration();
    let to;
    if (e.key in steps) to = a.currentTime + steps[e.key];
    else if (e.key === 'Home') to = 0;
    else if (e.key === 'End') to = d;
    else return false;
    e.preventDefault();
    if (this.#track) a.currentTime = Math.max(0, d > 0 ? Math.min(to, d) : to);
    return true;
  }

  #titleText() {
    return this.#ui.title.textContent;
  }

  #source() {
    return this.getAttribute('src') || this.getAttribute('torrent')
      || this.getAttribute('magnet') || '';
  }

  /** The `file` attribute as given (checked by the load), or null. */
  #file() {
    return this.getAttribute('file');
  }

  /** The file to play: the `file` attribute, else the album track
   *  chosen from the list (null: the torrent's first). */
  #chosen() {
    return this.#file() ?? (this.#albumIndex === null ? null : String(this.#albumIndex));
  }

  /** Whether the track prepared is the one the attributes name now. */
  #isPrepared() {
    return this.#prefetched?.src === this.#source() && this.#prefetched.file === this.#chosen();
  }

  /** Plays track `index` of the album shown in the list: in the running
   *  track (its swarm and peers stay) once it has joined, else joined now. */
  #playFile(index) {
    const track = this.#track;
    if (track && track.file !== undefined && this.#isPrepared()) {
      if (track.file === index) return this.play();
      this.#dropSpare();
      track.playFile(index); // throws for a file the album lacks
      this.#movedTo(index);
      return this.play();
    }
    this.#albumIndex = index;
    this.#applySource();
    return this.play();
  }

  /** At a track's end, the album's next one, if the list is shown: at once
   *  from the element made ready for it (gapless), else loaded now. */
  #next() {
    const at = this.#track?.file;
    const index = this.#nextIndex(at);
    if (this.#file() !== null || index === null) return;
    if (this.#nextReady === index) {
      const [ended, next] = [this.#audio, this.#spare];
      // First, before anything else: the gap is from here to its sound.
      next.play().catch(() => {});
      this.#audio = next;
      this.#spare = ended;
      this.#nextReady = null;
      try {
        this.#track.playFile(index, next);
      } catch (e) {
        this.#ui.status.textContent = `Could not play: ${e?.message ?? e}`;
        return;
      }
      this.#movedTo(index);
      this.#dropSpare();
      return;
    }
    this.#playFile(index).catch((e) => {
      this.#ui.status.textContent = `Could not play: ${e?.message ?? e}`;
    });
  }

  /** The track moved on to album file `index` in the same session. */
  #movedTo(index) {
    this.#albumIndex = index;
    // The prepared track is still the one the attributes name.
    if (this.#prefetched) this.#prefetched.file = this.#chosen();
    this.#showMeta();
    this.#render();
  }

  /** In an album's list, near a playing track's end and once the next
   *  file's first piece is in (fetched ahead by the track's look-ahead),
   *  points the spare element at the next file's stream, read ahead
   *  (`preload`): at `ended` it has its first seconds decoded. */
  #prepareNext() {
    const track = this.#track;
    const a = this.#audio;
    if (!track || this.#file() !== null || a.paused || track.file === undefined) return;
    const index = this.#nextIndex(track.file);
    const next = index === null ? undefined : track.files()[index];
    if (!next || this.#nextReady === index || !(a.duration - a.currentTime <= PREPARE_SECS)) return;
    if (next.length > 0 && track.piece(Math.floor(next.offset / track.pieceLength)) === undefined) return;
    let url;
    try {
      url = track.fileStreamUrl(index);
    } catch {
      return; // said when it is played
    }
    this.#nextReady = index;
    this.#spare.volume = a.volume;
    this.#spare.preload = 'auto';
    this.#spare.src = url;
  }

  /** The spare element lets go of its stream. */
  #dropSpare() {
    this.#nextReady = null;
    const spare = this.#spare;
    if (spare.hasAttribute('src')) {
      spare.pause();
      spare.preload = 'none';
      spare.removeAttribute('src');
      spare.load();
    }
  }

  /** The album's files, each `{index, name, title?, duration?}`: the
   *  server's list, else the torrent's playable ones (a foreign album's
   *  cover or `.cue` is no track); null for a single track. */
  #albumFiles() {
    const files = Array.isArray(this.#meta.files)
      ? this.#meta.files
      : this.#track?.files().filter((f) => f.audio !== false);
    return files && files.length > 1 ? files : null;
  }

  /** The album track after file `at` (an index of the torrent's files),
   *  or null: the last, or no album list. */
  #nextIndex(at) {
    if (at === undefined || at === null) return null;
    return this.#albumFiles()?.find((f) => f.index > at)?.index ?? null;
  }

  /** The track list of an album played without `file`: one button per
   *  track, the playing one marked. */
  #showTracks() {
    const list = this.#ui?.tracks;
    const files = this.#file() === null ? this.#albumFiles() : null;
    if (!list) return;
    list.hidden = !files;
    if (!files) return;
    const playing = this.#track?.file ?? Number(this.#chosen() ?? 0);
    // Drawn again when what it says changes (the torrent's names first,
    // the server's titles and durations once they come).
    const key = JSON.stringify(files.map((f) => [f.title || f.name, f.duration]));
    if (list.dataset.key !== key) {
      list.dataset.key = key;
      list.replaceChildren(...files.map((f) => {
        const item = document.createElement('li');
        const button = document.createElement('button');
        button.type = 'button';
        const name = document.createElement('span');
        name.textContent = `${f.index + 1}. ${f.title || f.name}`;
        const time = document.createElement('span');
        time.className = 'time';
        time.textContent = f.duration > 0 ? formatTime(f.duration) : '';
        button.append(name, time);
        button.setAttribute('aria-label', `Play ${f.title || f.name}`);
        button.addEventListener('click', () => this.#playFile(f.index).catch((e) => {
          this.#ui.status.textContent = `Could not play: ${e?.message ?? e}`;
        }));
        item.append(button);
        return item;
      }));
    }
    [...list.querySelectorAll('button')].forEach((b, i) => {
      b.setAttribute('aria-current', String(files[i]?.index === playing));
    });
  }

  #options() {
    const src = this.#source();
    const options = src.startsWith('magnet:') ? { magnet: src } : { torrent: src };
    if (this.#prefetched?.torrent && this.#prefetched.src === src) options.torrentBytes = this.#prefetched.torrent;
    const trackers = this.getAttribute('trackers');
    if (trackers) options.trackers = trackers.split(/\s+/).filter(Boolean);
    const ice = this.getAttribute('ice-servers');
    if (ice !== null) options.iceServers = ice.split(/\s+/).filter(Boolean);
    const { upload, uploadCap } = this.#uploadOptions();
    if (upload !== undefined) options.upload = upload;
    if (uploadCap !== undefined) options.uploadCap = uploadCap;
    const file = this.#chosen();
    if (file !== null) options.file = file;
    // An album's list moves on to the next track: its start is fetched ahead.
    if (this.#file() === null) options.lookAhead = true;
    // Joined on load, the element loads what the page has before play
    // (never from the web seed): a press plays decoded audio. Not on a
    // page of many players (`join="play"`).
    if (this.getAttribute('join') !== 'play') options.preload = true;
    const keep = this.getAttribute('keep');
    if (keep) options.keep = keep;
    // Joined on load, the start comes from the web seed ahead of play when
    // no fan is on its way (`prefetch`, "head" unless the page says "none";
    // see `PlayOptions`). Not with `join="play"`: nothing before play.
    if (this.getAttribute('join') !== 'play') options.prefetch = this.getAttribute('prefetch') ?? 'head';
    const quota = Number(this.getAttribute('keep-quota-mb'));
    if (quota > 0) options.keepQuota = quota * 1024 * 1024;
    return options;
  }

  /** The track's server's RTCConfiguration (`/api/ice`), or null: the
   *  `ice-servers` attribute says otherwise, or the server has none. */
  #askIce() {
    if (this.hasAttribute('ice-servers')) return Promise.resolve(null);
    const src = this.#source();
    let origin = MODULE_ORIGIN;
    try {
      if (src && !src.startsWith('magnet:')) origin = new URL(src, location.href).origin;
    } catch { /* a bad src is reported by the load */ }
    return fetch(`${origin}/api/ice`, { cache: 'no-store' })
      .then((r) => (r.ok ? r.json() : null))
      .then((c) => (c && Array.isArray(c.iceServers) ? c : null))
      .catch(() => null);
  }

  /** Uses `ice` for the track's connections and, if its TURN credentials
   *  expire, asks for fresh ones with a fifth of their life left (every
   *  30 s while the server does not answer). */
  #useIce(track, ice, generation) {
    track.setRtcConfig(ice);
    clearTimeout(this.#iceTimer);
    if (!(ice.ttlSeconds > 0)) return;
    const renew = (ms) => {
      this.#iceTimer = setTimeout(async () => {
        const fresh = await this.#askIce();
        if (generation !== this.#generation) return;
        if (fresh) this.#useIce(track, fresh, generation);
        else renew(30_000);
      }, ms);
    };
    renew(Math.max(5, ice.ttlSeconds * 0.8) * 1000);
  }

  // ---- remote mode (another origin) ----

  /** The player page of the server that publishes the track: the one
   *  serving the .torrent, or (for a magnet) the one serving this module. */
  #mountFrame(hex) {
    const src = this.#source();
    if (!src.startsWith('magnet:')) this.#frameOrigin = new URL(src, location.href).origin;
    const frame = document.createElement('iframe');
    // A magnet goes along whole: the frame plays a swarm the server did not
    // publish through the magnet's trackers (its metadata from peers).
    const query = new URLSearchParams();
    if (src.startsWith('magnet:')) query.set('magnet', src);
    const { upload, uploadCap } = this.#uploadOptions();
    if (upload !== undefined) query.set('upload', upload);
    if (this.#file() !== null) query.set('file', this.#file());
    if (uploadCap !== undefined) query.set('upload-cap', String(uploadCap));
    const search = String(query) ? `?${query}` : '';
    frame.src = `${this.#frameOrigin}/embed/${hex}${search}`;
    frame.allow = 'autoplay';
    frame.title = this.getAttribute('title') || 'fanswarm player';
    frame.style.cssText = 'border:0;width:100%;height:100%;display:block';
    this.#root.innerHTML = '<style>:host{display:block;height:190px;min-width:240px}</style>';
    this.#root.append(frame);
    this.#frame = frame;
  }

  // ---- messages: commands from our parent, or stats from our frame ----

  #message(e) {
    const data = e.data;
    if (!data || typeof data.fanswarm !== 'string') return;
    const fromFrame = this.#frame && e.source === this.#frame.contentWindow
      && e.origin === this.#frameOrigin;
    if (fromFrame && data.fanswarm === 'ready') {
      this.#ready.resolve();
    } else if (fromFrame && data.fanswarm === 'refused') {
      // The server does not serve this swarm; its frame says so in words.
      this.#ready.reject(new Error(String(data.reason)));
    } else if (fromFrame && data.fanswarm === 'size') {
      const height = Number(data.height);
      if (height > 0 && height < 2000) this.style.height = `${height}px`;
    } else if (fromFrame && data.fanswarm === 'stats') {
      this.#remote = data;
      this.dispatchEvent(new CustomEvent('fanswarm-stats', { detail: data.stats, bubbles: true, composed: true }));
    } else if (!this.#frame && e.source === window.parent && window.parent !== window
      && document.querySelectorAll('fanswarm-player').length === 1) {
      if (data.fanswarm === 'play') this.play().catch(() => {});
      if (data.fanswarm === 'pause') this.pause();
      if (data.fanswarm === 'upload') {
        // The parent page's `upload` and `upload-cap`, changed after load.
        const set = (name, value) => (value === undefined || value === null
          ? this.removeAttribute(name) : this.setAttribute(name, String(value)));
        set('upload', data.upload);
        set('upload-cap', data.uploadCap);
      }
    }
  }
}

/** A promise with its resolve/reject; a rejection nobody awaits is not reported. */
function deferred() {
  const d = {};
  d.promise = new Promise((resolve, reject) => { d.resolve = resolve; d.reject = reject; });
  d.promise.catch(() => {});
  return d;
}

/** 40 hex digits of a `/t/<hex>.torrent` URL or a hex `btih` magnet. */
function infoHashOf(src) {
  const m = /\/t\/([0-9a-f]{40})\.torrent$/i.exec(src) ?? /xt=urn:btih:([0-9a-f]{40})/i.exec(src);
  return m ? m[1].toLowerCase() : null;
}

/** Which pieces the listener has heard: `audio.played` mapped to bytes.
 *  `offset`: where the track starts in the torrent (one file of an album,
 *  whose pieces the map shows from the one holding its first byte). */
function playedPieces(audio, count, pieceLength, length, offset = 0) {
  const played = new Uint8Array(count);
  const d = audio.duration;
  if (!Number.isFinite(d) || d <= 0 || !pieceLength) return played;
  const perSec = length / d;
  const skew = offset % pieceLength;
  for (let i = 0; i < audio.played.length; i++) {
    const from = Math.floor((skew + audio.played.start(i) * perSec) / pieceLength);
    const to = Math.min(count - 1, Math.floor((skew + audio.played.end(i) * perSec) / pieceLength));
    for (let p = from; p <= to; p++) played[p] = 1;
  }
  return played;
}

export { STATES };
customElements.define('fanswarm-player', FanswarmPlayer);

/** What the status line says in a browser that lacks `lacks` (see
 *  `track.lacks`): what is missing and what the player does instead. */
function lackingText(lacks) {
  const what = lacks.includes('WebRTC data channels')
    ? 'it plays from the server and cannot share with other fans'
    : 'it plays the server\u2019s file directly';
  return `This browser lacks ${lacks.join(' and ')}: ${what}.`;
}
