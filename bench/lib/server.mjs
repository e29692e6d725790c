// The release server (`signal-server serve`) on a library the benchmark
// prepared, on a port of its own; its /api/tracks and /metrics.
import { spawn } from 'node:child_process';
import net from 'node:net';
import { existsSync, mkdirSync, mkdtempSync, openSync, readdirSync, rmSync, symlinkSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import { OUT, ROOT, SERVER_BIN } from './paths.mjs';

/**
 * The folder served at `/`: every entry of web/ (linked, so the player and
 * web/pkg are exactly what the repository builds) plus bench/pages (the
 * plain-HTTP reference pages), so those pages share the player's origin.
 */
export function prepareWebDir() {
  const dir = join(OUT, 'web');
  rmSync(dir, { recursive: true, force: true });
  mkdirSync(dir, { recursive: true });
  for (const [from, names] of [['web', readdirSync(join(ROOT, 'web'))],
    ['bench/pages', readdirSync(join(ROOT, 'bench/pages'))]]) {
    for (const name of names) symlinkSync(join(ROOT, from, name), join(dir, name));
  }
  return dir;
}

/**
 * Starts `signal-server serve --library <library>` on 127.0.0.1 and waits
 * until it answers. `extra` are more `serve` flags; `log` names the log file.
 */
export async function startServer({ library, log, extra = [], port = randomPort(), tls = false }) {
  const cache = mkdtempSync(join(tmpdir(), 'fanswarm-bench-cache-'));
  mkdirSync(join(OUT, 'logs'), { recursive: true });
  const out = openSync(join(OUT, 'logs', `${log}.log`), 'a');
  const web = existsSync(join(OUT, 'web')) ? join(OUT, 'web') : join(ROOT, 'web');
  // No ICE server for the players: the namespace has no route out.
  const args = ['serve', '--listen', `127.0.0.1:${port}`, '--web-dir', web,
    '--cache-dir', cache, '--stun', 'none',
    ...(library ? ['--library', library] : []), ...extra];
  const child = spawn(SERVER_BIN, args, {
    stdio: ['ignore', out, out], env: { ...process.env, RUST_LOG: process.env.RUST_LOG ?? 'warn' },
  });
  // A part that dies must not leave its server running (in the namespace).
  const reap = () => child.kill('SIGKILL');
  process.once('exit', reap);
  child.once('exit', () => process.removeListener('exit', reap));
  const base = `http://127.0.0.1:${port}`;
  const server = {
    base, port, pid: child.pid, child,
    async tracks() { return (await fetch(`${base}/api/tracks`)).json(); },
    /** One sample of a metric (summed over its labels), 0 when absent. */
    async metric(name) { return metricValue(await (await fetch(`${base}/metrics`)).text(), name); },
    async stop() {
      if (child.exitCode === null) {
        child.kill('SIGTERM');
        await new Promise((resolve) => child.once('exit', resolve));
      }
      rmSync(cache, { recursive: true, force: true });
    },
  };
  // Publishing hashes the library first: allow a slow machine a while.
  const until = Date.now() + 180_000;
  for (;;) {
    if (child.exitCode !== null) throw new Error(`server exited (${child.exitCode}); see target/bench/logs/${log}.log`);
    try {
      // Over TLS (part g, a self-signed certificate) a TCP connect is enough.
      if (tls ? await connects(port) : (await fetch(`${base}/api/tracks`)).ok) return server;
    } catch { /* not listening yet */ }
    if (Date.now() > until) { await server.stop(); throw new Error('server did not answer within 180 s'); }
    await new Promise((r) => setTimeout(r, 200));
  }
}

/** The value of `name` in Prometheus/OpenMetrics text (labels summed). */
export function metricValue(text, name) {
  let sum = 0;
  for (const line of text.split('\n')) {
    if (line.startsWith('#')) continue;
    const m = /^([a-zA-Z_:][\w:]*)(\{[^}]*\})?\s+([0-9.eE+-]+)/.exec(line);
    if (m && m[1] === name) sum += Number(m[3]);
  }
  return sum;
}

function connects(port) {
  return new Promise((resolve) => {
    const s = net.connect(port, '127.0.0.1', () => { s.destroy(); resolve(true); });
    s.on('error', () => resolve(false));
  });
}

/** Below Linux's ephemeral range (32768–60999), where client sockets live. */
function randomPort() {
  return 20000 + Math.floor(Math.random() * 12000);
}
