// g. Both trackers over TLS, driven by aquatic's own load generator
// (aquatic_ws_load_test 0.9: WebTorrent announces with offers, answers to
// the offers it receives, over wss:// only), one after the other in the
// same run: responses per second, responses per second per CPU-second of
// the tracker (the "per core" figure), and the tracker's resident memory
// at the end of the load. Both serve the same self-signed certificate on
// 127.0.0.1; the load generator shares the machine with them.
import { execFileSync, spawn } from 'node:child_process';
import { existsSync, mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

import { OUT, ROOT } from '../lib/paths.mjs';
import { startServer } from '../lib/server.mjs';
import { fixed, ratio, spread, table } from '../lib/stats.mjs';
import { aquaticConfig, cpuTicks, rssKiB } from './tracker.mjs';

const LOAD_TEST = join(ROOT, 'target/bench-tools/bin/aquatic_ws_load_test');
const AQUATIC = join(ROOT, 'target/bench-tools/bin/aquatic_ws');
const SECONDS = Number(process.env.BENCH_TLS_SECONDS ?? 30);
const CONNECTIONS = Number(process.env.BENCH_TLS_CONNECTIONS ?? 1000);
const TICK = 100; // CLK_TCK on Linux, as in part d

export async function run({ runs }) {
  const missing = [LOAD_TEST, AQUATIC].filter((p) => !existsSync(p));
  if (missing.length) {
    return { markdown: `Not measured: ${missing.join(', ')} not installed (scripts/bench installs them).`, data: { missing } };
  }
  const tls = certificate();
  const rows = [];
  const errors = [];
  for (let r = 0; r < runs; r++) {
    for (const name of ['fanswarm', 'aquatic']) {
      try {
        const result = await measure(name, tls);
        rows.push({ run: r, name, ...result });
        console.log(`g ${name} run ${r + 1}: ${Math.round(result.responsesPerSecond)} responses/s, ${Math.round(result.perCpuSecond)} per CPU-s, ${result.rssMiB.toFixed(1)} MiB`);
      } catch (e) { errors.push(`${name} run ${r + 1}: ${e.message ?? e}`); if (process.env.BENCH_DEBUG) console.error(e.stack); }
    }
  }
  return { markdown: report(rows, errors, runs), data: { rows, errors, seconds: SECONDS, connections: CONNECTIONS } };
}

/** A self-signed P-256 certificate for 127.0.0.1 (PKCS#8 key: both read it). */
function certificate() {
  const dir = join(OUT, 'tls');
  mkdirSync(dir, { recursive: true });
  const cert = join(dir, 'cert.pem');
  const key = join(dir, 'key.pem');
  execFileSync('openssl', ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1',
    '-nodes', '-keyout', key, '-out', cert, '-days', '2', '-subj', '/CN=127.0.0.1',
    '-addext', 'subjectAltName=IP:127.0.0.1'], { stdio: 'ignore' });
  return { cert, key };
}

async function measure(name, tls) {
  const port = 20000 + Math.floor(Math.random() * 12000);
  const tracker = name === 'fanswarm' ? await startFanswarm(port, tls) : await startAquatic(port, tls);
  try {
    const before = cpuTicks(tracker.pid);
    const started = Date.now();
    const out = await loadTest(port);
    const cpuSeconds = (cpuTicks(tracker.pid) - before) / TICK;
    const rssMiB = rssKiB(tracker.pid) / 1024;
    const average = /Average responses per second: ([\d.]+)/.exec(out);
    if (!average) throw new Error(`no report from the load tester: ${out.slice(-600)}`);
    const errorsPerSecond = [...out.matchAll(/Error responses:\s+([\d.]+)/g)].map((m) => Number(m[1]));
    const responsesPerSecond = Number(average[1]);
    const wall = (Date.now() - started) / 1000;
    return {
      responsesPerSecond,
      cpuSeconds,
      wallSeconds: wall,
      // Responses over the measured window per CPU-second over the whole
      // run (ramp-up included: a slight underestimate for both).
      perCpuSecond: (responsesPerSecond * SECONDS) / cpuSeconds,
      rssMiB,
      errorResponsesPerSecond: errorsPerSecond.length ? Math.max(...errorsPerSecond) : 0,
    };
  } finally {
    await tracker.stop();
  }
}

function loadTest(port) {
  const config = join(OUT, 'aquatic_ws_load_test.toml');
  const defaults = execFileSync(LOAD_TEST, ['-p'], { encoding: 'utf8' });
  const set = {
    '': { server_address: `"127.0.0.1:${port}"`, num_workers: '1', num_connections_per_worker: String(CONNECTIONS), duration: String(SECONDS) },
  };
  let section = '';
  writeFileSync(config, defaults.split('\n').map((line) => {
    const header = /^\[([\w.]+)\]/.exec(line);
    if (header) { section = header[1]; return line; }
    const kv = /^(\s*)([\w]+)\s*=/.exec(line);
    const value = kv && set[section]?.[kv[2]];
    return value === undefined || value === null ? line : `${kv[1]}${kv[2]} = ${value}`;
  }).join('\n'));
  return new Promise((resolve, reject) => {
    const p = spawn(LOAD_TEST, ['-c', config], { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    p.stdout.on('data', (d) => { out += d; });
    p.stderr.on('data', (d) => { out += d; });
    const limit = setTimeout(() => p.kill(), (SECONDS + 180) * 1000);
    p.on('exit', (code) => {
      clearTimeout(limit);
      if (/Average responses per second/.test(out)) resolve(out);
      else reject(new Error(`load tester exit ${code}: ${out.slice(-600)}`));
    });
  });
}

async function startFanswarm(port, tls) {
  const library = join(OUT, 'empty-library');
  mkdirSync(library, { recursive: true });
  // As in part d: the per-connection rate limit and per-address cap are
  // lifted (every loader socket is from 127.0.0.1), nothing else.
  const server = await startServer({ library, log: 'tls-fanswarm', port, tls: true, extra: [
    '--tls-cert', tls.cert, '--tls-key', tls.key,
    '--messages-per-second', '1000000', '--message-burst', '1000000',
    '--max-connections-per-address', '0'] });
  return { pid: server.pid, stop: () => server.stop() };
}

async function startAquatic(port, tls) {
  const defaults = execFileSync(AQUATIC, ['-p'], { encoding: 'utf8' });
  let config = aquaticConfig(defaults, port);
  config = config.replace(/^(\s*)enable_tls\s*=.*$/m, '$1enable_tls = true')
    .replace(/^(\s*)tls_certificate_path\s*=.*$/m, `$1tls_certificate_path = "${tls.cert}"`)
    .replace(/^(\s*)tls_private_key_path\s*=.*$/m, `$1tls_private_key_path = "${tls.key}"`);
  const path = join(OUT, 'aquatic_ws_tls.toml');
  writeFileSync(path, config);
  const child = spawn(AQUATIC, ['-c', path], { stdio: ['ignore', 'ignore', 'pipe'] });
  const reap = () => child.kill('SIGKILL');
  process.once('exit', reap);
  child.once('exit', () => process.removeListener('exit', reap));
  let log = '';
  child.stderr.on('data', (d) => { log += d; });
  await new Promise((r) => setTimeout(r, 1500));
  if (child.exitCode !== null) throw new Error(`aquatic_ws exited ${child.exitCode}: ${log.slice(-800)}`);
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

function report(rows, errors, runs) {
  const of = (name) => rows.filter((r) => r.name === name);
  const line = (name) => [name, spread(of(name).map((r) => r.responsesPerSecond), 0),
    spread(of(name).map((r) => r.perCpuSecond), 0), spread(of(name).map((r) => r.rssMiB), 1),
    spread(of(name).map((r) => r.errorResponsesPerSecond), 1)];
  const body = [line('fanswarm'), line('aquatic'),
    ['fanswarm ÷ aquatic', ratio(of('fanswarm').map((r) => r.responsesPerSecond), of('aquatic').map((r) => r.responsesPerSecond)),
      ratio(of('fanswarm').map((r) => r.perCpuSecond), of('aquatic').map((r) => r.perCpuSecond)),
      ratio(of('fanswarm').map((r) => r.rssMiB), of('aquatic').map((r) => r.rssMiB)), '']];
  const failed = errors.length ? `\n\nNot measured: ${errors.join('; ')}` : '';
  return [
    `aquatic_ws_load_test 0.9 (defaults otherwise: 10 offers per announce, 10,000 torrents, gamma-distributed popularity), ${fixed(CONNECTIONS)} connections from one worker, ${SECONDS} s measured after all connected, median (min–max) of ${runs}; both trackers on one self-signed P-256 certificate, on the same 2 cores as the load tester.`,
    table(['tracker', 'responses/s', 'responses per tracker CPU-second', 'RSS at the end (MiB)', 'error responses/s (peak)'], body),
  ].join('\n\n') + failed;
}
