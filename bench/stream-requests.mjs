// Which requests a cold first audio makes, and when: the element's
// through the stream worker (`sw=true`) and the engine's web-seed Range
// requests, from Chromium's Network domain, play pressed 1 s after load,
// ms from the element's first request; and, on the page's clock from the
// press, when each of the worker's `open`s reached the page and when each
// piece was verified. Not a part of scripts/bench: a
// probe for where the cold time goes (BENCHMARKS.md, issue 13). Needs what
// `scripts/bench --only b` built (release server, web/pkg, the library).
//   CARGO_TARGET_DIR=… [FANSWARM_PROBE_BROWSER=firefox] node bench/stream-requests.mjs [runs]
// FANSWARM_PROBE_VISIT=second: the same for a second visit (the page
// played once in the same profile, then loaded again).
import { launch, load, openWindow } from './lib/browser.mjs';
import { armFirstAudio, firstAudio } from './lib/player.mjs';
import { startServer } from './lib/server.mjs';
import { TRACKS } from './lib/tracks.mjs';

// FANSWARM_PROBE_BROWSER=firefox: the page's side only (no Network log).
const ENGINE = process.env.FANSWARM_PROBE_BROWSER ?? 'chromium';
const server = await startServer({ library: 'target/bench/library', log: 'probe-server' });
try {
  const meta = (await server.tracks()).find((t) => t.name === TRACKS.ogg.file);
  for (let run = 0; run < Number(process.argv[2] ?? 3); run++) {
    const browser = await launch(ENGINE);
    const page = await openWindow(browser);
    const seen = [];
    if (ENGINE === 'chromium') {
      const cdp = await page.target().createCDPSession();
      await cdp.send('Network.enable');
      cdp.on('Network.requestWillBeSent', (e) => {
        if (e.request.url.includes('/fanswarm/stream/') || e.request.url.includes('/media/'))
          seen.push({ id: e.requestId, url: e.request.url.split('/').slice(-2).join('/').slice(0, 30), range: e.request.headers.Range ?? e.request.headers.range, at: e.timestamp });
      });
      cdp.on('Network.responseReceived', (e) => { const s = seen.find((x) => x.id === e.requestId); if (s) { s.resp = e.timestamp; s.sw = e.response.fromServiceWorker; } });
      cdp.on('Network.loadingFinished', (e) => { const s = seen.find((x) => x.id === e.requestId); if (s) s.done = e.timestamp; });
    }
    // The page's side: when each `open` of the worker reaches the page's
    // main thread, and when each piece is verified.
    await page.evaluateOnNewDocument(() => {
      window.__pageLog = [];
      // The web-seed requests the page hands its worker (`fetch`).
      const post = ServiceWorker.prototype.postMessage;
      ServiceWorker.prototype.postMessage = function (message, ...rest) {
        if (message?.fanswarm === 'fetch') window.__pageLog.push([`handed ${message.start}-${message.end}`, performance.now()]);
        return post.call(this, message, ...rest);
      };
      navigator.serviceWorker?.addEventListener('message', (e) => {
        if (e.data?.fanswarm === 'open') window.__pageLog.push([`open ${e.data.start}`, performance.now()]);
      });
      document.addEventListener('DOMContentLoaded', () => {
        customElements.whenDefined('fanswarm-player').then(() => document.querySelector('fanswarm-player')
          ?.ready.then(() => window.__pageLog.push(['ready', performance.now()])));
        const hook = () => {
          const track = document.querySelector('fanswarm-player')?.track;
          if (!track) return void setTimeout(hook, 20);
          track.addEventListener('progress', (e) => window.__pageLog.push([`piece ${e.detail}`, performance.now()]));
        };
        hook();
      });
    });
    await armFirstAudio(page, { kind: 'fanswarm', delayMs: Number(process.env.FANSWARM_PROBE_DELAY_MS ?? 1000), media: new URL(meta.media_url).pathname });
    await load(page, `${server.base}/embed/${meta.info_hash}${process.env.FANSWARM_BENCH_EMBED_QUERY ? `?${process.env.FANSWARM_BENCH_EMBED_QUERY}` : ''}`);
    if (process.env.FANSWARM_PROBE_VISIT === 'second') {
      await firstAudio(page);
      await new Promise((r) => setTimeout(r, 1000)); // its kept start written
      seen.length = 0;
      await load(page, `${server.base}/embed/${meta.info_hash}${process.env.FANSWARM_BENCH_EMBED_QUERY ? `?${process.env.FANSWARM_BENCH_EMBED_QUERY}` : ''}`);
    }
    const r = await firstAudio(page);
    const base = seen.length ? Math.min(...seen.map((s) => s.at)) : 0;
    console.log(`run ${run}: press ${r.pressAt} playing ${r.playingAt} (${r.firstAudioMs} ms)`);
    const log = await page.evaluate(() => [...window.__pageLog, ...performance.getEntriesByType('mark').map((m) => [m.name, m.startTime])].sort((a, b) => a[1] - b[1]));
    console.log(`  page, ms after the press: ${log.filter(([, at]) => at <= r.playingAt + 50)
      .map(([what, at]) => `${what} +${(at - r.pressAt).toFixed(0)}`).join(', ')}`);
    for (const s of seen) console.log(`  +${((s.at - base) * 1000).toFixed(0)} resp +${s.resp ? ((s.resp - base) * 1000).toFixed(0) : '-'} done +${s.done ? ((s.done - base) * 1000).toFixed(0) : '-'} sw=${s.sw} ${s.url} ${s.range ?? ''}`);
    await browser.close();
  }
} finally {
  await server.stop();
}
