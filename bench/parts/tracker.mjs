// d. Tracker: announces/s and announce latency (send → its reply) under the
// same load generator (signal-server/examples/loadgen.rs: realistic
// announces with 5 offers of ~700-byte SDP, every relayed offer answered),
// fanswarm's tracker and aquatic_ws 0.9 one after the other in the same run;
// and each one's memory per idle connection (RSS delta over N idle sockets
// that announced once). Everything on 127.0.0.1.
import { execFileSync, spawn } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import { join } from 'node:path';

import { OUT, ROOT } from '../lib/paths.mjs';
import { startServer } from '../lib/server.mjs';
import { fixed, ratio, spread, table } from '../lib/stats.mjs';

export const LOADGEN = join(ROOT, 'target/release/examples/loadgen');
const AQUATIC = join(ROOT, 'target/bench-tools/bin/aquatic_ws');
/** The busy loads, 10 peers per swarm: two closed loops for throughput
 *  (2 announces in flight per connection), one open loop for latency below
 *  saturation (each connection announces every 4 s: 500 announces/s). */
const LOADS = [
  { label: '1,000 conns, closed loop', connections: 1000, args: ['--window', '2'] },
  { label: '4,000 conns, closed loop', connections: 4000, args: ['--window', '2'] },
  { label: '2,000 conns, 1 announce / 4 s each', connections: 2000, args: ['--interval-ms', '4000'] },
];
const SECONDS = Number(process.env.BENCH_TRACKER_SECONDS ?? 20);
const IDLE = Number(process.env.BENCH_TRACKER_IDLE ?? 10000);
const TICK = 100; // CLK_TCK on Linux

const TRACKERS = {
  fanswarm: {
    // The loader multiplexes far more announces per socket than a browser
    // sends, so the per-connection rate limit and the per-address socket cap
    // (every loader socket is from 127.0.0.1) are lifted; nothing else.
    start: async (port) => {
      // An empty library: no demo track to synthesize, the tracker alone.
      const library = join(OUT, 'empty-library');
      mkdirSync(library, { recursive: true });
      const server = await startServer({ library, log: 'tracker-fanswarm', port, extra: [
        '--messages-per-second', '1000000', '--message-burst', '1000000',
        '--max-connections-per-address', '0'] });
      return { pid: server.pid, stop: () => server.stop() };
    },
    loadgen: [],
  },
  aquatic: {
    start: (port) => startAquatic(port),
    // aquatic_ws replies to each answer with an announce response too.
    loadgen: ['--answer-replies'],
  },
};

export async function run({ runs }) {
  const names = Object.keys(TRACKERS).filter((n) => n !== 'aquatic' || existsSync(AQUATIC));
  const busy = [];
  const idle = [];
  const errors = existsSync(AQUATIC) ? [] : ['aquatic_ws not installed (target/bench-tools/bin): only fanswarm measured'];
  for (let r = 0; r < runs; r++) {
    for (const name of names) {
      for (const load of LOADS) {
        try {
          busy.push({ run: r, name, load: load.label, ...(await busyLoad(name, load)) });
        } catch (e) { errors.push(`${name} ${load.label} run ${r + 1}: ${e.message ?? e}`); }
        const last = busy.at(-1);
        if (last?.name === name && last.load === load.label && last.run === r) {
          console.log(`d ${name} ${load.label} run ${r + 1}: ${Math.round(last.announces_per_second)} announces/s, p99 ${last.latency_us.p99} µs`);
        }
      }
      try {
        idle.push({ run: r, name, ...(await idleLoad(name)) });
      } catch (e) { errors.push(`${name} idle run ${r + 1}: ${e.message ?? e}`); }
      if (idle.at(-1)?.run === r && idle.at(-1).name === name) console.log(`d ${name} idle run ${r + 1}: ${idle.at(-1).bytesPerConnection} B/connection`);
    }
  }
  return { markdown: report(names, busy, idle, errors, runs), data: { busy, idle, errors, seconds: SECONDS } };
}

async function busyLoad(name, { connections, args }) {
  const { port, tracker } = await startOnFreePort(name);
  try {
    const before = cpuTicks(tracker.pid);
    const started = Date.now();
    const out = await runLoadgen(['--target', `127.0.0.1:${port}`, '--connections', String(connections),
      '--swarms', String(connections / 10), '--offers', '5', '--seconds', String(SECONDS),
      '--json', ...args, ...TRACKERS[name].loadgen], SECONDS);
    const cpuSeconds = (cpuTicks(tracker.pid) - before) / TICK;
    const result = JSON.parse(out.split('\n').filter((l) => l.startsWith('{')).at(-1));
    return { ...result, serverCpuSeconds: cpuSeconds, wallSeconds: (Date.now() - started) / 1000 };
  } finally {
    await tracker.stop();
  }
}

async function idleLoad(name) {
  const { port, tracker } = await startOnFreePort(name);
  try {
    await new Promise((r) => setTimeout(r, 1000));
    const base = rssKiB(tracker.pid);
    const loader = spawn(LOADGEN, ['--target', `127.0.0.1:${port}`, '--idle', '--connections', String(IDLE),
      '--swarms', '100', '--hold-seconds', '120'], { stdio: ['ignore', 'pipe', 'ignore'] });
    let text = '';
    const announced = new Promise((resolve, reject) => {
      loader.stdout.on('data', (d) => { text += d; if (/announced=\d+/.test(text)) resolve(); });
      loader.on('exit', () => reject(new Error(`loadgen ended before all ${IDLE} announced: ${text.trim()}`)));
    });
    const limit = setTimeout(() => loader.kill(), 110_000);
    try {
      await announced;
      await new Promise((r) => setTimeout(r, 2000)); // let replies and buffers settle
      const held = rssKiB(tracker.pid);
      return { connections: IDLE, rssBeforeKiB: base, rssHeldKiB: held, bytesPerConnection: Math.round(((held - base) * 1024) / IDLE) };
    } finally {
      clearTimeout(limit);
      loader.kill();
    }
  } finally {
    await tracker.stop();
  }
}

/**
 * Starts tracker `name` on a random port below Linux's ephemeral range
 * (32768–60999), where thousands of the loader's closed client sockets sit
 * in TIME_WAIT; a port that is taken anyway gets another try.
 */
async function startOnFreePort(name) {
  for (let attempt = 1; ; attempt++) {
    const port = 20000 + Math.floor(Math.random() * 12000);
    try {
      return { port, tracker: await TRACKERS[name].start(port) };
    } catch (e) {
      if (attempt >= 3) throw e;
    }
  }
}

/** Runs the load generator with `args` (a load of `seconds`); its stdout. */
export function runLoadgen(args, seconds) {
  return new Promise((resolve, reject) => {
    const p = spawn(LOADGEN, args, { stdio: ['ignore', 'pipe', 'ignore'] });
    let out = '';
    p.stdout.on('data', (d) => { out += d; });
    const limit = setTimeout(() => p.kill(), (seconds + 120) * 1000);
    p.on('exit', (code) => {
      clearTimeout(limit);
      if (code === 0) resolve(out); else reject(new Error(`loadgen exit ${code}: ${out.slice(-500)}`));
    });
  });
}

/** aquatic_ws with its own printed default config, changed only where the
 *  comparison needs it (address, no TLS, limits like ours: see the doc). */
async function startAquatic(port) {
  const config = aquaticConfig(execFileSync(AQUATIC, ['-p'], { encoding: 'utf8' }), port);
  const path = join(OUT, 'aquatic_ws.toml');
  writeFileSync(path, config);
  const child = spawn(AQUATIC, ['-c', path], { stdio: ['ignore', 'ignore', 'pipe'] });
  const reap = () => child.kill('SIGKILL');
  process.once('exit', reap);
  child.once('exit', () => process.removeListener('exit', reap));
  let log = '';
  child.stderr.on('data', (d) => { log += d; });
  const until = Date.now() + 30_000;
  for (;;) {
    if (child.exitCode !== null) throw new Error(`aquatic_ws exited ${child.exitCode}: ${log.slice(-800)}`);
    if (await listening(port)) break;
    if (Date.now() > until) { child.kill(); throw new Error(`aquatic_ws did not listen: ${log.slice(-800)}`); }
    await new Promise((r) => setTimeout(r, 200));
  }
  return {
    pid: child.pid,
    stop: async () => {
      if (child.exitCode === null) {
        child.kill('SIGTERM');
        await new Promise((r) => child.once('exit', r));
      }
    },
  };
}

/** The lines of aquatic's default TOML that the comparison changes. */
export function aquaticConfig(defaults, port) {
  const set = { network: { address: `"127.0.0.1:${port}"`, enable_tls: 'false' } };
  let section = '';
  return defaults.split('\n').map((line) => {
    const header = /^\[([\w.]+)\]/.exec(line);
    if (header) { section = header[1]; return line; }
    const kv = /^(\s*)([\w]+)\s*=/.exec(line);
    const value = kv && set[section]?.[kv[2]];
    return value === undefined || value === null ? line : `${kv[1]}${kv[2]} = ${value}`;
  }).join('\n');
}

function listening(port) {
  return new Promise((resolve) => {
    const s = net.connect(port, '127.0.0.1', () => { s.destroy(); resolve(true); });
    s.on('error', () => resolve(false));
  });
}

export function cpuTicks(pid) {
  const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1].split(' ');
  return Number(fields[11]) + Number(fields[12]); // utime + stime (fields 14, 15)
}

export function rssKiB(pid) {
  return Number(/VmRSS:\s+(\d+)/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))[1]);
}

function report(names, busy, idle, errors, runs) {
  const rows = [];
  for (const { label } of LOADS) {
    const of = (name) => busy.filter((b) => b.name === name && b.load === label);
    for (const name of names) {
      const b = of(name);
      rows.push([label, name,
        spread(b.map((x) => x.announces_per_second), 0),
        spread(b.map((x) => x.latency_us.p50 / 1000), 1), spread(b.map((x) => x.latency_us.p99 / 1000), 1),
        spread(b.map((x) => x.latency_us.max / 1000), 0),
        spread(b.map((x) => x.replies / x.serverCpuSeconds), 0),
        spread(b.map((x) => x.failures), 0), spread(b.map((x) => x.offers_received / x.replies), 2)]);
    }
    if (names.length === 2) {
      rows.push(['', 'fanswarm ÷ aquatic', ratio(of('fanswarm').map((x) => x.announces_per_second), of('aquatic').map((x) => x.announces_per_second)),
        ratio(of('fanswarm').map((x) => x.latency_us.p50), of('aquatic').map((x) => x.latency_us.p50)),
        ratio(of('fanswarm').map((x) => x.latency_us.p99), of('aquatic').map((x) => x.latency_us.p99)), '', '', '', '']);
    }
  }
  const memory = names.map((name) => {
    const i = idle.filter((x) => x.name === name);
    return [name, fixed(IDLE), spread(i.map((x) => x.rssBeforeKiB / 1024), 1), spread(i.map((x) => x.rssHeldKiB / 1024), 1),
      spread(i.map((x) => x.bytesPerConnection), 0)];
  });
  const failed = errors.length ? `\n\nNot measured: ${errors.join('; ')}` : '';
  return [
    `${SECONDS} s per load, 5 offers per announce, every offer answered, 10 peers per swarm, median (min–max) of ${runs}. Latency: from sending an announce to its reply, over every announce of the run (in a closed loop mostly queueing; the open loop shows a tracker that keeps up).`,
    table(['load', 'tracker', 'announces/s', 'p50 latency (ms)', 'p99 latency (ms)', 'max latency (ms)', 'announces per server CPU-second', 'failures', 'offers relayed per announce'], rows),
    'Idle connections (each announced once, no offers, then silent):',
    table(['tracker', 'sockets', 'RSS before (MiB)', 'RSS held (MiB)', 'bytes per connection'], memory),
  ].join('\n\n') + failed;
}
