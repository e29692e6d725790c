// h. Seek to playing, plain vs fanswarm: a fan alone plays the 4-minute
// Ogg from the start, then seeks to 3:00 — a part nobody has and the
// engine has not read ahead (40 s) — and the time from setting
// `currentTime` to the playhead moving past the new position is measured
// in the page (polled every 10 ms). Plain = new Audio('/media/<file>') on
// a page of the server's origin; fanswarm = the /embed/<hex> page's
// <fanswarm-player>, whose element asks the stream worker for the new
// range and waits for verified pieces from the web seed. Fresh profile
// each, plain and fanswarm alternating run by run, in Chromium and Firefox
// ESR (FANSWARM_BENCH_BROWSERS picks). Firefox plays only with a sound
// card: `launch` gives it a PulseAudio null sink (without one its seek
// never finished, plain element included).
import { launch, load, openWindow } from '../lib/browser.mjs';
import { startServer } from '../lib/server.mjs';
import { ratio, spread, table } from '../lib/stats.mjs';
import { TRACKS } from '../lib/tracks.mjs';

const BROWSERS = (process.env.FANSWARM_BENCH_BROWSERS ?? 'chromium firefox').split(' ');
/** Where the seek lands, seconds into the 4-minute track. */
const TARGET = 180;

export async function run({ runs, library }) {
  const server = await startServer({ library, log: 'seek-server' });
  const samples = [];
  const errors = [];
  try {
    const meta = (await server.tracks()).find((t) => t.name === TRACKS.ogg.file);
    const urls = {
      plain: `${server.base}/bench-plain.html`,
      fanswarm: `${server.base}/embed/${meta.info_hash}`,
    };
    const media = new URL(meta.media_url).pathname;
    for (const browserName of BROWSERS) {
      for (let r = 0; r < runs; r++) {
        const kinds = r % 2 === 0 ? ['plain', 'fanswarm'] : ['fanswarm', 'plain'];
        for (const kind of kinds) {
          try {
            samples.push({ browser: browserName, run: r, kind,
              ...(await seekOnce(browserName, urls[kind], kind, media)) });
          } catch (e) {
            errors.push(`${browserName} ${kind} run ${r + 1}: ${e.message ?? e}`);
          }
        }
        console.log(`h ${browserName} run ${r + 1}/${runs} done`);
      }
    }
  } finally {
    await server.stop();
  }
  return { markdown: report(samples, errors, runs), data: { samples, errors } };
}

/** A fresh profile: load, play, seek to TARGET once playing. */
async function seekOnce(browserName, url, kind, media) {
  const browser = await launch(browserName);
  try {
    const page = await openWindow(browser);
    await load(page, url);
    const result = await page.evaluate(async ({ kind, media, target }) => {
      let audio;
      if (kind === 'plain') {
        audio = new Audio(media);
        await audio.play();
      } else {
        await customElements.whenDefined('fanswarm-player');
        const player = document.querySelector('fanswarm-player');
        player.setAttribute('ice-servers', '');
        await player.ready;
        audio = player.audio;
        await player.play();
      }
      const until = (test, limitMs, what) => new Promise((resolve, reject) => {
        const t0 = performance.now();
        const timer = setInterval(() => {
          if (test()) { clearInterval(timer); resolve(performance.now()); }
          else if (performance.now() - t0 > limitMs) {
            clearInterval(timer);
            reject(new Error(`${what}: not within ${limitMs / 1000} s (currentTime ${audio.currentTime},`
              + ` paused ${audio.paused}, seeking ${audio.seeking}, readyState ${audio.readyState})`));
          }
        }, 10);
      });
      await until(() => audio.currentTime > 1, 30_000, 'playing past 0:01');
      const seekAt = performance.now();
      audio.currentTime = target;
      const movedAt = await until(() => !audio.seeking && !audio.paused
        && audio.currentTime > target + 0.02 && audio.currentTime < target + 5, 30_000, 'playing after the seek');
      audio.pause();
      const webSeedRequests = performance.getEntriesByType('resource')
        .filter((e) => new URL(e.name).pathname.startsWith('/media/') && e.startTime >= seekAt).length;
      return { seekMs: movedAt - seekAt, webSeedRequests };
    }, { kind, media, target: TARGET });
    return result;
  } finally {
    await browser.close().catch(() => {});
  }
}

function report(samples, errors, runs) {
  const rows = BROWSERS.map((b) => {
    const ms = (kind) => samples.filter((s) => s.browser === b && s.kind === kind).map((s) => s.seekMs);
    return [b, spread(ms('plain'), 0), spread(ms('fanswarm'), 0), ratio(ms('fanswarm'), ms('plain'))];
  });
  const failed = errors.length ? `\n\nFailed measurements: ${errors.join('; ')}` : '';
  return [
    `Track: ${TRACKS.ogg.file}, a fan alone, seeking from ~0:01 to ${TARGET / 60}:00 (not fetched yet). \`currentTime\` set → playhead past the new position, ms, median (min–max) of ${runs}; target ≤ 1.2×.`,
    table(['browser', 'plain `<audio>` (ms)', 'fanswarm (ms)', 'fanswarm / plain'], rows),
  ].join('\n\n') + failed;
}
