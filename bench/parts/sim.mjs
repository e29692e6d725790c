// e. The simulator with 1,000 and 10,000 fans: `crowd --fans N --json`
// (sim/src/bin/crowd.rs: the browser benchmark's crowd shape, the 4-minute
// Ogg, real swarm::node peers and the real tracker core over simulated
// links), its origin copies, first audio and stalls, and the wall time.
import { execFileSync, spawnSync } from 'node:child_process';

import { ROOT } from '../lib/paths.mjs';
import { fixed, spread, table } from '../lib/stats.mjs';

const FANS = [1000, 10000];

export async function run({ runs }) {
  if (!hasSimulator()) {
    return { markdown: 'not built yet (no `fanswarm-sim` package with a `crowd` binary in the workspace)', data: { built: false } };
  }
  const results = [];
  for (const fans of FANS) {
    for (let r = 0; r < runs; r++) {
      const started = Date.now();
      const p = spawnSync('cargo', ['run', '--release', '--locked', '-q', '-p', 'fanswarm-sim', '--bin', 'crowd',
        '--', '--fans', String(fans), '--json'], { cwd: ROOT, encoding: 'utf8', maxBuffer: 64 << 20, timeout: 3600_000 });
      const wallSeconds = (Date.now() - started) / 1000;
      const line = (p.stdout ?? '').split('\n').filter((l) => l.trim().startsWith('{')).at(-1);
      if (p.status !== 0 || !line) {
        results.push({ fans, run: r, error: `exit ${p.status}: ${(p.stderr ?? '').slice(-400)}` });
        continue;
      }
      results.push({ fans, run: r, wallSeconds, ...JSON.parse(line) });
    }
  }
  const pick = (x, names) => names.map((n) => x[n]).find((v) => typeof v === 'number');
  const rows = FANS.map((fans) => {
    const ok = results.filter((x) => x.fans === fans && !x.error);
    return [fixed(fans),
      spread(ok.map((x) => pick(x, ['origin_copies', 'originCopies', 'copies'])), 3),
      spread(ok.map((x) => pick(x, ['wall_s', 'wall_seconds', 'wallSeconds']) ?? x.wallSeconds), 1),
      spread(ok.map((x) => pick(x, ['virtual_s', 'simulated_seconds'])), 1),
      spread(ok.map((x) => x.first_audio_median_s), 2),
      spread(ok.map((x) => x.stalled_fans), 0),
      `${results.filter((x) => x.fans === fans && x.error).length}`];
  });
  return {
    markdown: table(['fans', 'origin copies', 'wall time (s)', 'simulated time to all done (s)',
      'press → first audio, median fan (s)', 'fans that stalled', 'failed runs'], rows)
      + '\n\nReference: 1.00 copies ideal; N copies plain HTTP.',
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
