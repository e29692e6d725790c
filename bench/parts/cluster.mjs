// h. Tracker instances on one Redis (`--redis`): announces per second with
// 1, 2 and 4 instances of the release server sharing one redis-server,
// part d's load generator dealing each swarm's peers over them (as a
// balancer that knows nothing of swarms would). Same announces as part d:
// 5 offers of ~700-byte SDP, every relayed offer answered, 10 peers per
// swarm — so most offers cross instances once there are several. A server
// without --redis is the baseline. Everything on 127.0.0.1.
import { spawn } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import { OUT } from '../lib/paths.mjs';
import { startServer } from '../lib/server.mjs';
import { spread, table } from '../lib/stats.mjs';
import { cpuTicks, runLoadgen } from './tracker.mjs';

/** The loads: one server without `--redis` (the baseline, as in part d),
 *  then 1, 2 and 4 instances on one Redis. */
const LOADS = [
  { label: '1, no Redis', instances: 1, redis: false },
  { label: '1', instances: 1, redis: true },
  { label: '2', instances: 2, redis: true },
  { label: '4', instances: 4, redis: true },
];
const CONNECTIONS = Number(process.env.BENCH_CLUSTER_CONNECTIONS ?? 1000);
const SECONDS = Number(process.env.BENCH_CLUSTER_SECONDS ?? 10);
const TICK = 100; // CLK_TCK on Linux

export async function run({ runs }) {
  const rows = [];
  const data = [];
  const errors = [];
  for (let r = 0; r < runs; r++) {
    for (const load of LOADS) {
      try {
        const result = await measure(load);
        data.push({ run: r, load: load.label, ...result });
        console.log(`h ${load.label} run ${r + 1}: ${Math.round(result.announces_per_second)} announces/s, p99 ${result.latency_us.p99} µs`);
      } catch (e) { errors.push(`${load.label} run ${r + 1}: ${e.message ?? e}`); }
    }
  }
  for (const { label } of LOADS) {
    const d = data.filter((x) => x.load === label);
    rows.push([label, spread(d.map((x) => x.announces_per_second), 0),
      spread(d.map((x) => x.latency_us.p50 / 1000), 1), spread(d.map((x) => x.latency_us.p99 / 1000), 1),
      spread(d.map((x) => x.offers_received / x.replies), 2), spread(d.map((x) => x.answers_received / x.replies), 2),
      spread(d.map((x) => x.serverCpuSeconds), 1), spread(d.map((x) => x.redisCpuSeconds), 1),
      spread(d.map((x) => x.redisDropped), 0)]);
  }
  const failed = errors.length ? `\n\nNot measured: ${errors.join('; ')}` : '';
  const markdown = [
    `Instances: how many servers the load is dealt over, all on one redis-server but the first row's (no \`--redis\`, the baseline). ${CONNECTIONS} connections in a closed loop (2 announces in flight each), ${SECONDS} s per load, 5 offers per announce, every offer answered, 10 peers per swarm; each swarm's peers dealt over the instances; one redis-server (no persistence). Median (min–max) of ${runs}.`,
    table(['instances', 'announces/s', 'p50 latency (ms)', 'p99 latency (ms)', 'offers relayed per announce', 'answers back per announce', 'server CPU-s (all instances)', 'redis CPU-s', 'events dropped'], rows),
  ].join('\n\n') + failed;
  return { markdown, data: { data, errors, seconds: SECONDS, connections: CONNECTIONS } };
}

async function measure({ instances: n, redis: shared }) {
  const redis = await startRedis();
  const servers = [];
  try {
    const library = join(OUT, 'empty-library');
    mkdirSync(library, { recursive: true });
    for (let i = 0; i < n; i++) {
      servers.push(await startServer({ library, log: `cluster-${n}-${i}`, extra: [
        '--messages-per-second', '1000000', '--message-burst', '1000000',
        '--max-connections-per-address', '0', ...(shared ? ['--redis', `redis://127.0.0.1:${redis.port}`] : [])] }));
    }
    const before = servers.map((s) => cpuTicks(s.pid));
    const redisBefore = cpuTicks(redis.child.pid);
    const targets = servers.map((s) => `127.0.0.1:${s.port}`).join(',');
    const out = await runLoadgen(['--target', targets, '--connections', String(CONNECTIONS),
      '--swarms', String(CONNECTIONS / 10), '--offers', '5', '--seconds', String(SECONDS), '--window', '2', '--json'], SECONDS);
    const serverCpuSeconds = servers.reduce((a, s, i) => a + cpuTicks(s.pid) - before[i], 0) / TICK;
    const redisCpuSeconds = (cpuTicks(redis.child.pid) - redisBefore) / TICK;
    let redisDropped = 0;
    for (const s of servers) redisDropped += await s.metric('fanswarm_redis_dropped_total');
    const result = JSON.parse(out.split('\n').filter((l) => l.startsWith('{')).at(-1));
    return { ...result, serverCpuSeconds, redisCpuSeconds, redisDropped };
  } finally {
    for (const s of servers) await s.stop();
    await redis.stop();
  }
}

async function startRedis() {
  const dir = mkdtempSync(join(tmpdir(), 'fanswarm-bench-redis-'));
  const port = 20000 + Math.floor(Math.random() * 12000);
  const child = spawn('redis-server', ['--port', String(port), '--bind', '127.0.0.1', '--save', '',
    '--appendonly', 'no', '--dir', dir], { stdio: 'ignore' });
  const reap = () => child.kill('SIGKILL');
  process.once('exit', reap);
  const until = Date.now() + 10_000;
  while (!(await listening(port))) {
    if (child.exitCode !== null || Date.now() > until) throw new Error(`redis-server did not listen on ${port}`);
    await new Promise((r) => setTimeout(r, 100));
  }
  return {
    port, child,
    stop: async () => {
      if (child.exitCode === null) {
        child.kill('SIGTERM');
        await new Promise((r) => child.once('exit', r));
      }
      process.removeListener('exit', reap);
      rmSync(dir, { recursive: true, force: true });
    },
  };
}


function listening(port) {
  return new Promise((resolve) => {
    const s = net.connect(port, '127.0.0.1', () => { s.destroy(); resolve(true); });
    s.on('error', () => resolve(false));
  });
}
