// The stream service worker's choice of requests, without a browser: sw.js
// runs in a node `vm` context with a stand-in `self`, and fake fetch events
// show which URLs it answers. Its prefix comes from its own URL
// (`/sw.js?prefix=…`, set by fanswarm.js from `streamPrefix`); it was once
// hard-coded to /fanswarm/stream/. The page side is in tests/tests/play_options.rs.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import vm from 'node:vm';

const SOURCE = readFileSync(new URL('../../web/sw.js', import.meta.url), 'utf8');
const HASH = 'ab'.repeat(20);

/** Runs sw.js as if registered at `scriptUrl`; returns its listeners and routes. */
function worker(scriptUrl, { router = false } = {}) {
  const listeners = {};
  const routes = [];
  const self = {
    location: new URL(scriptUrl),
    addEventListener: (type, fn) => { listeners[type] = fn; },
    skipWaiting: () => {},
    clients: { claim: async () => {}, get: async () => null },
  };
  const context = { self, URL, Response: class {}, MessageChannel: class {}, setTimeout, clearTimeout };
  if (router) {
    context.URLPattern = class { constructor(init) { this.init = init; } };
  }
  vm.runInNewContext(SOURCE, context);
  const install = { waitUntil: () => {}, addRoutes: router ? async (r) => { routes.push(r); } : undefined };
  listeners.install(install);
  return { listeners, routes };
}

/** Whether the worker answers a page's request for `url`. */
function answers({ listeners }, url) {
  let answered = false;
  listeners.fetch({
    request: { url, headers: new Map() },
    clientId: 'page',
    respondWith: (promise) => { answered = true; promise.catch(() => {}); },
  });
  return answered;
}

test('the prefix in the worker URL is the one it streams under, and only that', () => {
  const w = worker('https://music.example/sw.js?prefix=%2Fmusic%2Flive%2F');
  assert.ok(answers(w, `https://music.example/music/live/${HASH}/song.mp3`));
  assert.ok(!answers(w, `https://music.example/fanswarm/stream/${HASH}/song.mp3`));
  assert.ok(!answers(w, 'https://music.example/media/song.mp3'), 'the web seed passes through');
  assert.ok(!answers(w, `https://elsewhere.example/music/live/${HASH}/song.mp3`), 'other origins pass');
});

test('without a prefix parameter it streams under the default', () => {
  const w = worker('https://music.example/sw.js');
  assert.ok(answers(w, `https://music.example/fanswarm/stream/${HASH}/song.mp3`));
  assert.ok(!answers(w, `https://music.example/music/live/${HASH}/song.mp3`));
});

test('where the browser routes statically, everything but the stream skips the worker', () => {
  const { routes } = worker('https://music.example/sw.js?prefix=%2Fa(b)%2F', { router: true });
  assert.equal(routes.length, 1);
  assert.equal(routes[0].source, 'network');
  assert.equal(routes[0].condition.not.urlPattern.init.pathname, '/a\\(b\\)/*',
    'pattern syntax in the prefix is taken literally');
});
