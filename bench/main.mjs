// scripts/bench's driver: prepares the library, runs each part in its own
// process (browser parts inside scripts/in-netns), prints every part's
// table and appends one dated section to BENCHMARKS.md.
//
//   node bench/main.mjs [--fans N] [--runs R] [--only a,b,…] [--play-delay-ms MS] [--no-record]
import { spawnSync } from 'node:child_process';
import { appendFileSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

import { machine, loadAverage, revision } from './lib/machine.mjs';
import { OUT, ROOT } from './lib/paths.mjs';
import { prepareWebDir } from './lib/server.mjs';
import { ensureLibrary } from './lib/tracks.mjs';

/** Every part: its letter, module, whether it needs the namespace, default runs. */
const PARTS = [
  { id: 'a', name: 'flash', title: 'a. Flash crowd', netns: true, runs: 3 },
  { id: 'b', name: 'first-audio', title: 'b. Time to first audio', netns: true, runs: 5 },
  { id: 'c', name: 'one-peer', title: 'c. One-peer download rate', netns: true, runs: 3 },
  { id: 'd', name: 'tracker', title: 'd. Tracker', netns: false, runs: 3 },
  { id: 'e', name: 'sim', title: 'e. Simulator', netns: false, runs: 1 },
  { id: 'f', name: 'bundle', title: 'f. Bundle bytes', netns: true, runs: 1 },
  { id: 'g', name: 'tls-load', title: 'g. Tracker over TLS, aquatic\'s load tester', netns: false, runs: 3 },
  { id: 'h', name: 'seek', title: 'h. Seek to playing, a part not fetched yet', netns: true, runs: 3 },
  { id: 'i', name: 'cluster', title: 'i. Tracker instances on one Redis', netns: false, runs: 3 },
];

const options = parseOptions(process.argv.slice(2));
const selected = PARTS.filter((p) => options.only.includes(p.id) || options.only.includes(p.name));
if (selected.length === 0) fail(`--only ${options.only.join(',')}: no such part (a–h)`);

const stamp = new Date().toISOString().replace(/\.\d+Z$/, 'Z');
const runDir = join(OUT, stamp.replace(/:/g, ''));
mkdirSync(runDir, { recursive: true });
const startInfo = { date: stamp, ...revision(), machine: machine(), loadStart: loadAverage() };
console.log(`fanswarm bench ${stamp}: ${startInfo.commit}${startInfo.dirty ? ' (dirty)' : ''}, load ${startInfo.loadStart}`);

const library = ensureLibrary(join(OUT, 'library'));
prepareWebDir();

const results = [];
for (const part of selected) {
  const runs = options.runs ?? part.runs;
  console.log(`\n==> ${part.title} (${runs} run${runs === 1 ? '' : 's'})`);
  const context = { ...options, runs, library, runDir, part: part.name };
  const contextPath = join(runDir, `${part.name}.context.json`);
  const resultPath = join(runDir, `${part.name}.json`);
  writeFileSync(contextPath, JSON.stringify(context));
  writeFileSync(resultPath, JSON.stringify({ ok: false, error: 'the part process wrote no result' }));
  const command = ['node', join(ROOT, 'bench/run-part.mjs'), part.name, contextPath, resultPath];
  const wrapped = part.netns ? [join(ROOT, 'scripts/in-netns'), ...command] : command;
  const p = spawnSync(wrapped[0], wrapped.slice(1), { stdio: 'inherit', cwd: ROOT });
  const result = JSON.parse(readFileSync(resultPath, 'utf8'));
  if (p.status !== 0 && result.ok) Object.assign(result, { ok: false, error: `exit ${p.status}` });
  const body = result.ok ? result.markdown : `**Did not run to the end**: ${firstLines(result.error)}`;
  console.log(`\n${body}\n(${Math.round(result.seconds ?? 0)} s)`);
  results.push({ part, runs, result, body });
}

const endInfo = { loadEnd: loadAverage() };
writeFileSync(join(runDir, 'run.json'), JSON.stringify({ ...startInfo, ...endInfo, options,
  parts: results.map((r) => ({ id: r.part.id, runs: r.runs, ...r.result })) }, null, 1));
if (options.record) {
  appendFileSync(join(ROOT, 'BENCHMARKS.md'), section(startInfo, endInfo, results));
  console.log(`\nAppended to BENCHMARKS.md; raw results in ${runDir}`);
} else {
  console.log(`\n--no-record: BENCHMARKS.md left alone; raw results in ${runDir}`);
}

/** The dated BENCHMARKS.md section of this run. */
function section(start, end, parts) {
  const m = start.machine;
  const lines = [
    '', `### scripts/bench run ${start.date}`, '',
    `- commit \`${start.commit}\`${start.dirty ? ' (work tree dirty)' : ''}; command \`scripts/bench ${process.argv.slice(2).join(' ')}\``.trimEnd(),
    `- machine: ${m.cpu}, ${m.cores} cores, ${m.ramGiB} GiB RAM, Linux ${m.kernel}; ${m.chromium}; ${m.firefox}`,
    `- load average (1/5/15 min) at start ${start.loadStart}, at end ${end.loadEnd}`,
    `- raw results: \`${runDir.slice(ROOT.length + 1)}/\` (not committed)`,
  ];
  for (const { part, runs, result, body } of parts) {
    lines.push('', `#### ${part.title} (${runs} run${runs === 1 ? '' : 's'}, ${Math.round(result.seconds ?? 0)} s)`, '', body);
  }
  return `${lines.join('\n')}\n`;
}

function parseOptions(args) {
  const o = { fans: 10, runs: null, only: PARTS.map((p) => p.id), playDelayMs: 1000, record: true };
  for (let i = 0; i < args.length; i++) {
    const [flag, inline] = args[i].split('=', 2);
    const value = () => inline ?? args[++i];
    const count = (name, min) => {
      const n = Number(value());
      if (!Number.isInteger(n) || n < min) fail(`${name} needs an integer ≥ ${min}`);
      return n;
    };
    if (flag === '--fans') o.fans = count('--fans', 2);
    else if (flag === '--runs') o.runs = count('--runs', 1);
    else if (flag === '--play-delay-ms') o.playDelayMs = count('--play-delay-ms', 0);
    else if (flag === '--only') o.only = value().split(',').map((s) => s.trim()).filter(Boolean);
    else if (flag === '--no-record') o.record = false;
    else if (flag === '--help' || flag === '-h') { usage(); process.exit(0); }
    else fail(`unknown option ${args[i]}`);
  }
  return o;
}

function usage() {
  console.log(`usage: scripts/bench [--fans N] [--runs R] [--only a,b,…] [--play-delay-ms MS]
  --fans N           fans of the flash crowd (a); default 10 (the simulator, e, runs 1,000 and 10,000)
  --runs R           repeats per part (medians); default per part: ${PARTS.map((p) => `${p.id} ${p.runs}`).join(', ')}
  --only a,b,…       parts to run: ${PARTS.map((p) => `${p.id} (${p.name})`).join(', ')}
  --play-delay-ms MS flash crowd: a fan presses play MS after its page loaded; default 1000
  --no-record        print the tables but do not append them to BENCHMARKS.md`);
}

function firstLines(text) {
  return String(text).split('\n').slice(0, 6).join('\n\n    ');
}

function fail(message) {
  console.error(`bench: ${message}`);
  process.exit(2);
}
