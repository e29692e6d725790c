// a. Flash crowd: N fans open the same track's /embed/<hex> 150 ms apart in
// one headless Chromium and each presses play `playDelayMs` after its page
// loaded. Web seed on, no other seeder. Copies = bytes the web seed sent
// (fanswarm_webseed_sent_bytes_total) ÷ the track's length, counted until
// every fan's stats().done.
import { spawnSync } from 'node:child_process';
import { existsSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

import { launch, load, openWindow } from '../lib/browser.mjs';
import { playerState, schedulePress, waitFor } from '../lib/player.mjs';
import { startServer } from '../lib/server.mjs';
import { fixed, spread, summary, table } from '../lib/stats.mjs';
import { ROOT } from '../lib/paths.mjs';
import { TRACKS } from '../lib/tracks.mjs';

const ARRIVAL_GAP_MS = 150;
const WEBSEED_BYTES = 'fanswarm_webseed_sent_bytes_total';

export async function run({ fans, runs, playDelayMs, library, runDir }) {
  const sections = [];
  const data = {};
  // FANSWARM_BENCH_TRACKS=wav (or ogg): one crowd only, for a quicker probe.
  for (const key of (process.env.FANSWARM_BENCH_TRACKS ?? 'ogg,wav').split(',')) {
    const track = TRACKS[key];
    const results = [];
    const errors = [];
    for (let r = 0; r < runs; r++) {
      try {
        results.push(await crowd({ fans, playDelayMs, library, track }));
      } catch (e) {
        errors.push(`run ${r + 1}: ${e.message ?? e}`);
      }
      console.log(`a ${track.file} run ${r + 1}/${runs}: ${results.at(-1)?.copies?.toFixed(3) ?? 'failed'} copies`);
    }
    data[key] = { track, results, errors };
    sections.push(report(track, fans, results, errors, playDelayMs));
  }
  for (const key of Object.keys(data)) data[key].simulated = simulate(key, fans, playDelayMs);
  for (const [i, key] of Object.keys(data).entries()) sections[i] += simulatedNote(data[key].simulated);
  writeFileSync(join(runDir, 'flash-timeline.json'), JSON.stringify(data, null, 1));
  return { markdown: sections.join('\n\n'), data };
}

/**
 * The same crowd in the simulator (target/release/crowd, built by
 * scripts/bench): the fans, the track, the press delay; seeds 1-3.
 */
function simulate(track, fans, playDelayMs) {
  const bin = join(ROOT, 'target/release/crowd');
  if (!existsSync(bin)) return { error: 'target/release/crowd not built' };
  const p = spawnSync(bin, ['--fans', String(fans), '--track', track, '--press-ms', String(playDelayMs),
    '--seeds', '3', '--json'], { encoding: 'utf8', timeout: 600_000 });
  if (p.status !== 0) return { error: `crowd exited ${p.status}: ${(p.stderr ?? '').slice(-300)}` };
  const runs = p.stdout.split('\n').filter((l) => l.startsWith('{')).map((l) => JSON.parse(l));
  return { runs };
}

function simulatedNote(sim) {
  if (!sim || sim.error) return `\n\nSimulated: ${sim?.error ?? 'not run'}.`;
  const copies = sim.runs.map((r) => r.origin_copies);
  return `\n\nThe same crowd simulated (\`crowd\`, seeds 1–3): origin copies ${spread(copies, 3)}, `
    + `press → first audio median ${spread(sim.runs.map((r) => r.first_audio_median_s * 1000), 0)} ms, `
    + `fans that stalled ${spread(sim.runs.map((r) => r.stalled_fans), 0)}.`;
}

/** One crowd on a fresh server and browser. */
async function crowd({ fans, playDelayMs, library, track }) {
  const server = await startServer({ library, log: 'flash-server' });
  const browser = await launch('chromium');
  try {
    const meta = (await server.tracks()).find((t) => t.name === track.file);
    if (!meta) throw new Error(`${track.file} not published`);
    // FANSWARM_BENCH_EMBED_QUERY=keep=start (say): the embed's options, for
    // an A/B of one option in the same sitting.
    const query = process.env.FANSWARM_BENCH_EMBED_QUERY;
    const url = `${server.base}/embed/${meta.info_hash}${query ? `?${query}` : ''}`;
    const pages = [];
    // Each fan in a context of its own: no HTTP cache shared between fans.
    for (let i = 0; i < fans; i++) pages.push(await openWindow(browser, { isolated: true }));
    const before = await server.metric(WEBSEED_BYTES);
    const t0 = Date.now();
    // Arrivals on a fixed schedule; each fan presses play on its own load.
    await Promise.all(pages.map(async (page, i) => {
      await new Promise((r) => setTimeout(r, i * ARRIVAL_GAP_MS - (Date.now() - t0)));
      await load(page, url);
      await schedulePress(page, playDelayMs);
    }));
    // Generous: a slow machine makes a slow figure, not a failure.
    const limitMs = (track.seconds * 3 + 180) * 1000;
    let states = [];
    await waitFor(async () => {
      states = await Promise.all(pages.map(playerState));
      const broken = states.find((s) => s.error);
      if (broken) throw new Error(`a fan failed: ${broken.error}`);
      return states.every((s) => s.done);
    }, { limitMs, what: `every fan done (${states.filter((s) => s.done).length}/${fans} were)` });
    const sent = (await server.metric(WEBSEED_BYTES)) - before;
    const origin = Math.min(...states.map((s) => s.timeOrigin));
    const at = (s, key) => (s[key] === undefined ? NaN : s.timeOrigin + s[key] - origin);
    const timeline = states.map((s, i) => ({
      fan: i, navigationStart: s.timeOrigin - origin, loaded: at(s, 'loadEnd'),
      press: at(s, 'pressAt'), firstPlaying: at(s, 'playingAt'), done: at(s, 'doneAt'),
      joined: at(s, 'joinedAt'), firstPeer: at(s, 'firstPeerAt'),
      downloaded: s.downloaded, fromPeers: s.fromPeers, fromWebSeed: s.fromWebSeed,
      uploaded: s.uploaded, wasted: s.wasted, peers: s.peers,
      controlled: s.controlled, audioSrc: s.audioSrc, stalls: s.stalls, stalledMs: s.stalledMs,
    }));
    return {
      length: meta.length, webSeedBytes: sent, copies: sent / meta.length,
      allDoneMs: Math.max(...timeline.map((f) => f.done)),
      allDoneAfterLastPressMs: Math.max(...timeline.map((f) => f.done)) - Math.max(...timeline.map((f) => f.press)),
      timeline,
    };
  } finally {
    await browser.close().catch(() => {});
    await server.stop();
  }
}

function report(track, fans, results, errors, playDelayMs) {
  const per = (f) => results.map(f);
  const fanMedian = (key) => per((r) => summary(r.timeline.map(key)).median);
  const kind = track.vorbisKbps ? `Ogg Vorbis ${track.vorbisKbps} kbit/s` : 'WAV 44.1 kHz stereo 16-bit';
  const length = results[0]?.length;
  const rows = [
    ['origin copies (web-seed bytes ÷ track length)', spread(per((r) => r.copies)), `1.00 ideal · ${fans}.00 plain HTTP`],
    ['fans\' share of bytes from peers, median fan (%)', spread(fanMedian((f) => 100 * f.fromPeers / f.downloaded), 0), '0 plain HTTP'],
    ['fans\' share of bytes from peers, lowest fan (%)', spread(per((r) => Math.min(...r.timeline.map((f) => 100 * f.fromPeers / f.downloaded))), 0), ''],
    ['wasted bytes per fan, median fan', spread(per((r) => summary(r.timeline.map((f) => f.wasted)).median), 0), '0'],
    ['first press → last press (s)', spread(per((r) => (Math.max(...r.timeline.map((f) => f.press)) - Math.min(...r.timeline.map((f) => f.press))) / 1000)), `arrivals ${ARRIVAL_GAP_MS} ms apart, play ${playDelayMs} ms after load`],
    ['press → first `playing`, median fan (ms)', spread(fanMedian((f) => f.firstPlaying - f.press), 0), ''],
    ['fans that stalled after first audio', spread(per((r) => r.timeline.filter((f) => f.stalls > 0).length), 0), '0'],
    ['time stalled after first audio, all fans (s)', spread(per((r) => r.timeline.reduce((a, f) => a + (f.stalledMs ?? 0), 0) / 1000), 1), '0'],
    ['first arrival → every fan done (s)', spread(per((r) => r.allDoneMs / 1000), 1), `track plays ${track.seconds} s`],
    ['last press → every fan done (s)', spread(per((r) => r.allDoneAfterLastPressMs / 1000), 1), ''],
  ];
  const head = `**${track.file}** (${kind}, ${track.seconds} s, ${length ? fixed(length) : '?'} bytes), ${fans} fans, ${results.length} run${results.length === 1 ? '' : 's'}: median (min–max)`;
  const failed = errors.length ? `\n\nFailed runs: ${errors.join('; ')}` : '';
  return `${head}\n\n${table(['figure', 'fanswarm', 'reference'], rows)}${failed}`;
}
