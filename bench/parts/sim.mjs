// e. The simulator with 1,000 and 10,000 fans, and with BENCH_SIM_100K=1
// also 100,000: `crowd --fans N --json` (sim/src/bin/crowd.rs: real
// swarm::node peers and the real tracker core over simulated links, the
// 4-minute Ogg), its origin copies, first audio and stalls, the wall time,
// the peak resident memory and the machine's load average around each run.
//
// 1,000 and 10,000 fans arrive as in the browser benchmark's crowd, 150 ms
// apart. The same spacing would stretch 100,000 fans over 4 hours, a
// steady trickle rather than a flash crowd; they arrive instead within the
// 10 minutes a big release's crowd gets (6 ms apart, ~40,000 listening at
// once), with the tracker's per-swarm cap raised as an operator expecting
// them would (`--max-peers-per-swarm`; the default 20,000 would refuse the
// rest). It takes an hour or more of one core, so it is opt-in and run once.
import { execFileSync, spawnSync } from 'node:child_process';

import { loadAverage } from '../lib/machine.mjs';
import { ROOT } from '../lib/paths.mjs';
import { fixed, spread, table } from '../lib/stats.mjs';

const CROWDS = [
  { fans: 1000, shape: '150 ms apart (2.5 min)', args: [] },
  { fans: 10000, shape: '150 ms apart (25 min)', args: [] },
  ...(process.env.BENCH_SIM_100K
    ? [{ fans: 100000, shape: '6 ms apart (10 min), tracker cap 100,000', args: ['--gap-ms', '6', '--max-peers-per-swarm', '100000'], once: true }]
    : []),
];

export async function run({ runs }) {
  if (!hasSimulator()) {
    return { markdown: 'not built yet (no `fanswarm-sim` package with a `crowd` binary in the workspace)', data: { built: false } };
  }
  const build = spawnSync('cargo', ['build', '--release', '--locked', '-q', '-p', 'fanswarm-sim', '--bin', 'crowd'],
    { cwd: ROOT, encoding: 'utf8' });
  if (build.status !== 0) throw new Error(`cargo build of crowd failed: ${(build.stderr ?? '').slice(-400)}`);
  const results = [];
  for (const crowd of CROWDS) {
    for (let r = 0; r < (crowd.once ? 1 : runs); r++) {
      const started = Date.now();
      const loadStart = loadAverage();
      const p = spawnSync('cargo', ['run', '--release', '--locked', '-q', '-p', 'fanswarm-sim', '--bin', 'crowd',
        '--', '--fans', String(crowd.fans), ...crowd.args, '--json'],
      { cwd: ROOT, encoding: 'utf8', maxBuffer: 64 << 20, timeout: 4 * 3600_000 });
      const wallSeconds = (Date.now() - started) / 1000;
      const load = `${loadStart} → ${loadAverage()}`;
      const line = (p.stdout ?? '').split('\n').filter((l) => l.trim().startsWith('{')).at(-1);
      if (p.status !== 0 || !line) {
        results.push({ fans: crowd.fans, run: r, load, error: `exit ${p.status}: ${(p.stderr ?? '').slice(-400)}` });
        continue;
      }
      results.push({ fans: crowd.fans, run: r, wallSeconds, load, ...JSON.parse(line) });
    }
  }
  const rows = CROWDS.map(({ fans, shape }) => {
    const ok = results.filter((x) => x.fans === fans && !x.error);
    return [fixed(fans), shape,
      spread(ok.map((x) => x.origin_copies), 3),
      spread(ok.map((x) => x.wall_s ?? x.wallSeconds), 0),
      spread(ok.map((x) => x.peak_rss_mb), 0),
      spread(ok.map((x) => x.virtual_s), 1),
      spread(ok.map((x) => x.first_audio_median_s), 2),
      spread(ok.map((x) => x.stalled_fans), 0),
      `${results.filter((x) => x.fans === fans && x.error).length}`,
      results.filter((x) => x.fans === fans).map((x) => x.load).join('; ')];
  });
  return {
    markdown: table(['fans', 'arrivals', 'origin copies', 'wall time (s)', 'peak resident (MB)',
      'simulated time to all done (s)', 'press → first audio, median fan (s)', 'fans that stalled', 'failed runs',
      'load average (1/5/15 min) before → after each run'], rows)
      + '\n\nReference: 1.00 copies ideal; N copies plain HTTP. Wall time and memory are the simulator\'s own cost on'
      + ' this machine, shared with whatever else ran (the load average says how much).'
      + (process.env.BENCH_SIM_100K ? '' : ' 100,000 fans: opt-in, `BENCH_SIM_100K=1`.'),
    data: { built: true, results },
  };
}

function hasSimulator() {
  try {
    const meta = JSON.parse(execFileSync('cargo', ['metadata', '--no-deps', '--format-version', '1'],
      { cwd: ROOT, encoding: 'utf8', maxBuffer: 64 << 20 }));
    const sim = meta.packages.find((p) => p.name === 'fanswarm-sim');
    return Boolean(sim?.targets.some((t) => t.name === 'crowd' && t.kind.includes('bin')));
  } catch {
    return false;
  }
}
