// What a figure was measured on: commit, machine, load.
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import os from 'node:os';

import { ROOT } from './paths.mjs';

/** `{ commit, dirty }` of the work tree. */
export function revision() {
  const git = (...args) => execFileSync('git', args, { cwd: ROOT, encoding: 'utf8' }).trim();
  try {
    return { commit: git('rev-parse', '--short=12', 'HEAD'), dirty: git('status', '--porcelain') !== '' };
  } catch {
    return { commit: 'unknown', dirty: true };
  }
}

/** CPU model, cores, RAM, kernel, browser versions. */
export function machine() {
  const cpuinfo = readFileSync('/proc/cpuinfo', 'utf8');
  const cpu = /model name\s*:\s*(.+)/.exec(cpuinfo)?.[1] ?? os.cpus()[0]?.model ?? 'unknown CPU';
  const version = (cmd) => {
    try { return execFileSync(cmd, ['--version'], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }).trim().split('\n')[0]; } catch { return `no ${cmd}`; }
  };
  return {
    cpu, cores: os.cpus().length, ramGiB: Math.round(os.totalmem() / 2 ** 30), kernel: os.release(),
    chromium: version('chromium'), firefox: version('firefox-esr'),
  };
}

/** "1.23 / 1.00 / 0.80". */
export function loadAverage() {
  return os.loadavg().map((x) => x.toFixed(2)).join(' / ');
}
