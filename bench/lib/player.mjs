// What the parts do inside a page, through the player's stable hook: the
// `<fanswarm-player>` element's play(), stats() and audio. All times are
// taken in the page (performance.now(), ms since its navigation start) and
// returned with performance.timeOrigin so pages can be put on one clock.

/**
 * Presses play on the page's `<fanswarm-player>` `delayMs` after the page's
 * load event (0: at once), without waiting. No ICE servers: the namespace
 * has no route out, and a STUN server that never answers would hold every
 * offer for the 5 s gathering bound. The page records `window.__bench`.
 */
export async function schedulePress(page, delayMs) {
  await page.evaluate(async (delay) => {
    await customElements.whenDefined('fanswarm-player');
    const player = document.querySelector('fanswarm-player');
    player.setAttribute('ice-servers', '');
    const b = window.__bench = { timeOrigin: performance.timeOrigin, error: null };
    const nav = performance.getEntriesByType('navigation')[0];
    b.loadEnd = nav?.loadEventEnd || performance.now();
    // When the player joined its swarm (on load, before the press) and
    // when its first neighbour connected: polled, for the timeline.
    const watch = setInterval(() => {
      const now = performance.now();
      if (player.track) b.joinedAt ??= now;
      if (player.stats().peers > 0) {
        b.firstPeerAt ??= now;
        clearInterval(watch);
      }
    }, 25);
    // Stalls after first audio: `waiting` until the next `playing`.
    b.stalls = 0;
    b.stalledMs = 0;
    player.audio.addEventListener('waiting', () => {
      if (b.playingAt !== undefined && b.waitingSince === undefined) b.waitingSince = performance.now();
    });
    player.audio.addEventListener('playing', () => {
      b.playingAt ??= performance.now();
      if (b.waitingSince !== undefined) {
        b.stalls += 1;
        b.stalledMs += performance.now() - b.waitingSince;
        b.waitingSince = undefined;
      }
    });
    player.audio.addEventListener('error', () => { b.error ??= `audio: ${player.audio.error?.message || player.audio.error?.code}`; });
    setTimeout(() => {
      b.pressAt = performance.now();
      player.play().then(() => {
        player.track?.addEventListener('done', () => { b.doneAt ??= performance.now(); });
      }, (e) => { b.error ??= `play(): ${e}`; });
    }, Math.max(0, b.loadEnd + delay - performance.now()));
  }, delayMs);
}

/** The player's stats() plus what `schedulePress` recorded. */
export async function playerState(page) {
  return page.evaluate(() => {
    const player = document.querySelector('fanswarm-player');
    const b = window.__bench ?? {};
    const stats = player.stats();
    if (stats.done) b.doneAt ??= performance.now(); // polled, in case `done` came first
    // How the element plays: through our worker, or the web seed directly
    // (an uncontrolled page), which costs the origin a whole copy.
    const controlled = navigator.serviceWorker?.controller?.scriptURL ?? null;
    return { ...stats, ...b, currentTime: player.audio.currentTime, controlled,
      audioSrc: player.audio.currentSrc };
  });
}

/**
 * Arms the time-to-first-audio measurement for every document `page` loads
 * from now on: in the page itself, `delayMs` after its load event (0: the
 * next turn), `play()` — of a plain `new Audio(media)` or of the page's
 * `<fanswarm-player>` — then the element's first `playing`. Injected before
 * the navigation, so no driver round trip sits between load and press.
 * `firstAudio(page)` returns the result.
 */
export async function armFirstAudio(page, { kind, delayMs, media }) {
  await page.evaluateOnNewDocument(({ kind, delayMs, media }) => {
    window.__firstAudio = new Promise((resolve) => {
      window.addEventListener('load', () => setTimeout(() => measure().then(resolve,
        (e) => resolve({ error: String(e?.message ?? e) })), delayMs));
    });
    async function measure() {
      const loadEnd = performance.getEntriesByType('navigation')[0]?.loadEventEnd || performance.now();
      let audio;
      let player;
      if (kind === 'plain') {
        audio = new Audio(media);
      } else {
        player = document.querySelector('fanswarm-player');
        player.setAttribute('ice-servers', '');
        audio = player.audio;
      }
      let pressAt = performance.now();
      const playing = new Promise((resolve, reject) => {
        audio.addEventListener('playing', () => resolve(performance.now()), { once: true });
        audio.addEventListener('error', () => reject(new Error(`audio error ${audio.error?.code}`
          + ` (${audio.error?.message || 'no message'}) ${Math.round(performance.now() - pressAt)} ms after the press,`
          + ` src ${audio.currentSrc || audio.getAttribute('src')},`
          + ` ${navigator.serviceWorker?.controller ? 'a worker in control' : 'no worker in control'}`)), { once: true });
        setTimeout(() => reject(new Error('no playing within 60 s')), 60_000);
      });
      pressAt = performance.now();
      const started = kind === 'plain' ? audio.play() : player.play();
      const playingAt = await Promise.race([playing, started.then(() => playing)]);
      audio.pause();
      const resources = performance.getEntriesByType('resource')
        .filter((e) => e.startTime <= playingAt)
        .map((e) => ({ name: e.name, start: e.startTime, end: e.responseEnd,
          transfer: e.transferSize, encoded: e.encodedBodySize, decoded: e.decodedBodySize }));
      return { loadEnd, pressAt, playingAt, firstAudioMs: playingAt - pressAt, resources,
        controlled: Boolean(navigator.serviceWorker?.controller),
        serviceWorker: navigator.serviceWorker?.controller?.scriptURL ?? null };
    }
  }, { kind, delayMs, media });
}

/** The armed measurement's result for the document `page` shows now. */
export async function firstAudio(page) {
  const result = await page.evaluate(() => window.__firstAudio);
  if (!result) throw new Error('no measurement armed in this page');
  if (result.error) throw new Error(result.error);
  return result;
}

/** Polls `check()` every `everyMs` until it returns a truthy value or `limitMs` passes. */
export async function waitFor(check, { limitMs, everyMs = 500, what }) {
  const until = Date.now() + limitMs;
  for (;;) {
    const value = await check();
    if (value) return value;
    if (Date.now() > until) throw new Error(`${what}: not within ${Math.round(limitMs / 1000)} s`);
    await new Promise((r) => setTimeout(r, everyMs));
  }
}
