// b. Time to first audio, plain vs fanswarm: play() → the element's first
// `playing`, measured in the page. Plain = new Audio('/media/<file>').play()
// on a page of the server's origin; fanswarm = the /embed/<hex> page's
// <fanswarm-player>.play(). Cold = a fresh browser profile; second visit =
// the same profile, the page loaded again (HTTP cache, service worker warm).
// Chromium and Firefox ESR; play() at the load event and 1 s after it;
// plain and fanswarm alternate run by run. FANSWARM_BENCH_BROWSERS
// ("chromium firefox") and FANSWARM_BENCH_DELAYS ("0 1000", ms) narrow it
// down when chasing one case.
import { launch, load, openWindow } from '../lib/browser.mjs';
import { armFirstAudio, firstAudio } from '../lib/player.mjs';
import { startServer } from '../lib/server.mjs';
import { fixed, median, ratio, spread, table } from '../lib/stats.mjs';
import { TRACKS } from '../lib/tracks.mjs';

const BROWSERS = (process.env.FANSWARM_BENCH_BROWSERS ?? 'chromium firefox').split(' ');
const DELAYS_MS = (process.env.FANSWARM_BENCH_DELAYS ?? '0 1000').split(' ').map(Number);
const VISITS = ['cold', 'second visit'];

export async function run({ runs, library }) {
  const server = await startServer({ library, log: 'first-audio-server' });
  const samples = [];
  const errors = [];
  try {
    const meta = (await server.tracks()).find((t) => t.name === TRACKS.ogg.file);
    const urls = {
      plain: `${server.base}/bench-plain.html`,
      // FANSWARM_BENCH_EMBED_QUERY=prefetch=head (say): the embed's
      // options, for an A/B of one option in the same sitting.
      fanswarm: `${server.base}/embed/${meta.info_hash}${process.env.FANSWARM_BENCH_EMBED_QUERY ? `?${process.env.FANSWARM_BENCH_EMBED_QUERY}` : ''}`,
    };
    const media = new URL(meta.media_url).pathname;
    for (const browserName of BROWSERS) {
      for (let r = 0; r < runs; r++) {
        for (const delayMs of DELAYS_MS) {
          const kinds = r % 2 === 0 ? ['plain', 'fanswarm'] : ['fanswarm', 'plain'];
          for (const kind of kinds) {
            try {
              for (const s of await visitTwice(browserName, urls[kind], { kind, delayMs, media })) {
                samples.push({ browser: browserName, run: r, kind, delayMs, ...s });
              }
            } catch (e) {
              errors.push(`${browserName} ${kind} +${delayMs} ms run ${r + 1}: ${e.message ?? e}`);
            }
          }
        }
        console.log(`b ${browserName} run ${r + 1}/${runs} done`);
      }
    }
  } finally {
    await server.stop();
  }
  return { markdown: report(samples, errors, runs), data: { samples, errors } };
}

/** A fresh profile: the cold visit, then the same page loaded again. */
async function visitTwice(browserName, url, how) {
  const browser = await launch(browserName);
  try {
    const page = await openWindow(browser);
    await armFirstAudio(page, how);
    const out = [];
    for (const visit of VISITS) {
      await load(page, url);
      out.push({ visit, ...(await firstAudio(page)) });
    }
    return out;
  } finally {
    await browser.close().catch(() => {});
  }
}

function report(samples, errors, runs) {
  const pick = (b, visit, delayMs, kind) => samples.filter((s) => s.browser === b
    && s.visit === visit && s.delayMs === delayMs && s.kind === kind);
  const ms = (list) => list.map((s) => s.firstAudioMs);
  const rows = [];
  const steps = [];
  for (const b of BROWSERS) {
    for (const visit of VISITS) {
      for (const delayMs of DELAYS_MS) {
        const plain = pick(b, visit, delayMs, 'plain');
        const swarm = pick(b, visit, delayMs, 'fanswarm');
        const when = delayMs === 0 ? 'at load' : `${delayMs / 1000} s after load`;
        rows.push([b, visit, when, spread(ms(plain), 0), spread(ms(swarm), 0), ratio(ms(swarm), ms(plain))]);
        steps.push([b, visit, when, ...timelineCells(swarm)]);
      }
    }
  }
  const failed = errors.length ? `\n\nFailed measurements: ${errors.join('; ')}` : '';
  return [
    `Track: ${TRACKS.ogg.file}. play() → first \`playing\` in ms, median (min–max) of ${runs}; "at load" = play() in the load event's turn, "1 s after load" = the idle second in which a page can prefetch.`,
    table(['browser', 'visit', 'play() pressed', 'plain `<audio>` (ms)', 'fanswarm (ms)', 'fanswarm / plain'], rows),
    'Where the fanswarm page\'s time goes (resource timing, ms since navigation start, medians; "media before playing" = `/media/` (web seed) requests started before `playing`):',
    table(['browser', 'visit', 'play() pressed', 'load', 'wasm start–end', '.torrent start–end', 'first /media/ start–end', 'media before playing', 'press', 'playing'], steps),
  ].join('\n\n') + failed;
}

/** Median step times of the fanswarm samples, as table cells. */
function timelineCells(samples) {
  const first = (s, test) => s.resources.find((e) => test(e.name));
  const isWasm = (n) => /\.wasm(\?|$)/.test(n);
  const isTorrent = (n) => /\/t\/[0-9a-f]{40}\.torrent/.test(n);
  const isMedia = (n) => new URL(n).pathname.startsWith('/media/');
  const m = (f) => {
    const v = median(samples.map(f).filter((x) => x !== undefined));
    return Number.isFinite(v) ? fixed(v) : '–';
  };
  const span = (test) => {
    const [start, end] = [m((s) => first(s, test)?.start), m((s) => first(s, test)?.end)];
    return start === '–' ? 'none' : `${start}–${end}`;
  };
  return [
    m((s) => s.loadEnd), span(isWasm), span(isTorrent), span(isMedia),
    m((s) => s.resources.filter((e) => isMedia(e.name)).length),
    m((s) => s.pressAt), m((s) => s.playingAt),
  ];
}
