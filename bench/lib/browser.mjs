// Headless Chromium and Firefox ESR through puppeteer-core, with the flags
// and prefs of /work/shared/TOOLCHAIN.md. Debian's browsers only: puppeteer
// is installed with PUPPETEER_SKIP_DOWNLOAD=1 and always gets an
// executablePath. Every launch gets a fresh profile directory.
import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import { ROOT } from './paths.mjs';

const require = createRequire(join(ROOT, 'target/bench-npm/'));
const puppeteer = require('puppeteer-core');

const CHROMIUM_ARGS = [
  '--no-sandbox', '--disable-gpu', '--no-first-run',
  '--disable-background-networking', '--disable-component-update', '--disable-sync',
  // Host candidates instead of mDNS names, which do not resolve in a netns.
  '--disable-features=WebRtcHideLocalIpsWithMdns',
  '--autoplay-policy=no-user-gesture-required',
  // Every page is a listener's foreground page: no throttled timers.
  '--disable-background-timer-throttling', '--disable-renderer-backgrounding',
  '--disable-backgrounding-occluded-windows',
];

const FIREFOX_PREFS = {
  'media.peerconnection.ice.obfuscate_host_addresses': false,
  'media.autoplay.default': 0,
  'media.autoplay.blocking_policy': 0,
  // Service workers on http://127.0.0.1 need no extra pref; keep updates quiet.
  'app.update.enabled': false,
  'browser.shell.checkDefaultBrowser': false,
};

/**
 * A PulseAudio server of the browser's own with one null sink: Firefox
 * needs a sound card to play `<audio>` (without one it errors the element
 * mid-track, or never finishes a seek); a null sink plays into nothing at
 * real-time pace. Resolves to `{ server, stop }`.
 */
async function startSound(dir) {
  const socket = join(dir, 'pulse.sock');
  const child = spawn('pulseaudio', [
    '-n', '--daemonize=no', '--exit-idle-time=-1', '--use-pid-file=no', '--system=false',
    `--load=module-native-protocol-unix auth-anonymous=1 socket=${socket}`,
    '--load=module-null-sink sink_name=fanswarm_bench',
  ], { env: { ...process.env, HOME: dir, XDG_RUNTIME_DIR: dir }, stdio: 'ignore' });
  const failed = new Promise((_, reject) => child.on('error', (e) =>
    reject(new Error(`starting pulseaudio, Firefox's sound card (scripts/install-deps --test): ${e.message}`))));
  for (let i = 0; i < 100; i++) {
    if (existsSync(socket)) return { server: `unix:${socket}`, stop: () => child.kill() };
    await Promise.race([new Promise((r) => setTimeout(r, 50)), failed]);
  }
  child.kill();
  throw new Error(`pulseaudio did not open ${socket} within 5 s`);
}

/** Browser names as the parts report them. */
export const BROWSERS = ['chromium', 'firefox'];

/**
 * Launches `name` ("chromium" or "firefox") headless with a fresh profile.
 * The returned browser's `close()` also removes the profile.
 */
export async function launch(name) {
  const profile = mkdtempSync(join(tmpdir(), `fanswarm-bench-${name}-`));
  const soundDir = name === 'firefox' ? mkdtempSync(join(tmpdir(), 'fanswarm-bench-sound-')) : null;
  const sound = soundDir ? await startSound(soundDir) : null;
  const options = name === 'firefox'
    ? {
      browser: 'firefox', executablePath: '/usr/bin/firefox-esr', headless: true,
      userDataDir: profile, extraPrefsFirefox: FIREFOX_PREFS, protocolTimeout: 600_000,
      env: { ...process.env, PULSE_SERVER: sound.server },
    }
    : {
      browser: 'chrome', executablePath: '/usr/bin/chromium', headless: true,
      userDataDir: profile, args: CHROMIUM_ARGS, protocolTimeout: 600_000,
    };
  let browser;
  try {
    browser = await puppeteer.launch(options);
  } catch (e) {
    sound?.stop();
    throw e;
  }
  const close = browser.close.bind(browser);
  browser.close = async () => {
    try { await close(); } finally {
      sound?.stop();
      rmSync(profile, { recursive: true, force: true });
      if (soundDir) rmSync(soundDir, { recursive: true, force: true });
    }
  };
  return browser;
}

/**
 * A new page in a window of its own: Chromium defers media in a tab that was
 * never shown, so each fan that must play gets a window (as the e2e tests do).
 * `isolated`: in a browser context of its own (its own HTTP cache, service
 * worker and storage, as a fan on another machine has), so one fan's
 * web-seed responses are not served to another from a shared cache — with
 * one shared cache the origin's figure depended on cache hits between fans.
 */
export async function openWindow(browser, { isolated = false } = {}) {
  const owner = isolated ? await browser.createBrowserContext() : browser;
  let page;
  try {
    page = await owner.newPage({ type: 'window' });
  } catch {
    page = await owner.newPage(); // Firefox over BiDi: a tab plays fine there
  }
  await noIceServers(page);
  return page;
}

/**
 * Before `page` loads anything (every page of the benchmark): every `<fanswarm-player>` the page creates
 * gets `ice-servers=""` before its module upgrades it, so a player that
 * joins its swarm on load makes its offers with no STUN server (the
 * namespace has no route out, and a STUN server that never answers holds
 * each offer for the 5 s gathering bound).
 */
export async function noIceServers(page) {
  await page.evaluateOnNewDocument(() => {
    const mark = (root) => {
      for (const el of root.querySelectorAll?.('fanswarm-player') ?? []) {
        if (!el.hasAttribute('ice-servers')) el.setAttribute('ice-servers', '');
      }
    };
    new MutationObserver((changes) => {
      for (const c of changes) for (const n of c.addedNodes) {
        if (n.nodeType !== 1) continue;
        if (n.localName === 'fanswarm-player' && !n.hasAttribute('ice-servers')) n.setAttribute('ice-servers', '');
        mark(n);
      }
    }).observe(document, { childList: true, subtree: true });
  });
}


/** Loads `url` in `page` and waits for its load event (generous timeout). */
export async function load(page, url) {
  await page.goto(url, { waitUntil: 'load', timeout: 120_000 });
}
