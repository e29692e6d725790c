// f. Bundle bytes: everything a fan downloads before first audio, other than
// the audio itself. The list is taken from a real cold visit (Chromium,
// fresh profile: the /embed/<hex> page, every resource it fetched before
// `playing` other than /media/ and the stream, and the service worker
// script), so it follows whatever the page loads (hashed names, prefetch).
// Each URL is then fetched three ways: raw, and as the server sends it to
// `Accept-Encoding: gzip` and `br`; gzip -9 and brotli -11 of the raw bytes
// show what a compressing proxy or CDN would send. Reference: the npm
// `webtorrent` package's dist/webtorrent.min.js, measured the same way.
import { existsSync, readFileSync } from 'node:fs';
import http from 'node:http';
import { join } from 'node:path';
import zlib from 'node:zlib';

import { launch, load, openWindow } from '../lib/browser.mjs';
import { ROOT } from '../lib/paths.mjs';
import { armFirstAudio, firstAudio } from '../lib/player.mjs';
import { startServer } from '../lib/server.mjs';
import { fixed, table } from '../lib/stats.mjs';
import { TRACKS } from '../lib/tracks.mjs';

const WEBTORRENT_DIST = join(ROOT, 'target/bench-npm/webtorrent/package/dist');
const WEBTORRENT = join(WEBTORRENT_DIST, 'webtorrent.min.js');
/** WebTorrent's own streaming service worker, for a like-for-like row. */
const WEBTORRENT_SW = join(WEBTORRENT_DIST, 'sw.min.js');

export async function run({ library }) {
  const server = await startServer({ library, log: 'bundle-server' });
  try {
    const meta = (await server.tracks()).find((t) => t.name === TRACKS.ogg.file);
    const page = `${server.base}/embed/${meta.info_hash}`;
    const visit = await coldVisit(page);
    const urls = [page, ...visit.resources.map((e) => e.name), visit.serviceWorker]
      .filter((u) => u && !/^\/(media|fanswarm\/stream)\//.test(new URL(u).pathname));
    const files = [];
    const missing = [];
    for (const url of [...new Set(urls)]) {
      const raw = await get(url, 'identity');
      if (raw.status !== 200) { missing.push(`${new URL(url).pathname} (${raw.status})`); continue; }
      const gzip = await get(url, 'gzip');
      const br = await get(url, 'br');
      files.push({ path: new URL(url).pathname.replace(meta.info_hash, '<hex>'), ...sizes(raw.body),
        servedGzip: gzip.body.length, servedGzipEncoding: gzip.encoding ?? 'identity',
        servedBr: br.body.length, servedBrEncoding: br.encoding ?? 'identity' });
    }
    const reference = existsSync(WEBTORRENT) ? sizes(readFileSync(WEBTORRENT)) : null;
    const withWorker = reference && existsSync(WEBTORRENT_SW) ? sumSizes(reference, sizes(readFileSync(WEBTORRENT_SW))) : null;
    const note = missing.length ? `\n\nAlso requested, not served (no body): ${missing.join(', ')}.` : '';
    return { markdown: report(files, reference, withWorker) + note, data: { files, missing, reference, withWorker, webtorrentVersion: webtorrentVersion() } };
  } finally {
    await server.stop();
  }
}

async function coldVisit(url) {
  const browser = await launch('chromium');
  try {
    const page = await openWindow(browser);
    await armFirstAudio(page, { kind: 'fanswarm', delayMs: 0 });
    await load(page, url);
    return await firstAudio(page);
  } finally {
    await browser.close().catch(() => {});
  }
}

function sizes(bytes) {
  return {
    raw: bytes.length,
    gzip9: zlib.gzipSync(bytes, { level: 9 }).length,
    brotli11: zlib.brotliCompressSync(bytes, { params: { [zlib.constants.BROTLI_PARAM_QUALITY]: 11 } }).length,
  };
}

function sumSizes(a, b) {
  return { raw: a.raw + b.raw, gzip9: a.gzip9 + b.gzip9, brotli11: a.brotli11 + b.brotli11 };
}

/** The body as sent (not decoded) for one Accept-Encoding. */
function get(url, encoding) {
  return new Promise((resolve, reject) => {
    http.get(url, { agent: false, headers: { 'accept-encoding': encoding } }, (res) => {
      const chunks = [];
      res.on('data', (c) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode, body: Buffer.concat(chunks),
        encoding: res.headers['content-encoding'] }));
    }).on('error', reject);
  });
}

function report(files, reference, withWorker) {
  const sum = (key) => files.reduce((n, f) => n + f[key], 0);
  const rows = files.map((f) => [`\`${f.path}\``, fixed(f.raw), fixed(f.gzip9), fixed(f.brotli11),
    `${fixed(f.servedGzip)}${f.servedGzipEncoding === 'gzip' ? '' : ' (raw)'}`,
    `${fixed(f.servedBr)}${f.servedBrEncoding === 'br' ? '' : f.servedBrEncoding === 'identity' ? ' (raw)' : ` (${f.servedBrEncoding})`}`]);
  rows.push(['**total**', `**${fixed(sum('raw'))}**`, `**${fixed(sum('gzip9'))}**`, `**${fixed(sum('brotli11'))}**`,
    `**${fixed(sum('servedGzip'))}**`, `**${fixed(sum('servedBr'))}**`]);
  if (reference) {
    rows.push([`reference: webtorrent.min.js (npm webtorrent ${webtorrentVersion()}), the library alone`, fixed(reference.raw),
      fixed(reference.gzip9), fixed(reference.brotli11), '', '']);
    if (withWorker) {
      rows.push(['reference: webtorrent.min.js + its sw.min.js (streaming worker)', fixed(withWorker.raw),
        fixed(withWorker.gzip9), fixed(withWorker.brotli11), '', '']);
    }
    rows.push(['fanswarm total ÷ webtorrent.min.js', (sum('raw') / reference.raw).toFixed(2), (sum('gzip9') / reference.gzip9).toFixed(2),
      (sum('brotli11') / reference.brotli11).toFixed(2), '', '']);
  }
  return [
    'Bytes of every file a fan fetched before first audio on a cold visit (audio excluded), in bytes.',
    table(['file', 'raw', 'gzip -9', 'brotli -11', 'served for `Accept-Encoding: gzip`', 'served for `br`'], rows),
    reference ? '' : 'Reference not measured: target/bench-npm/webtorrent missing (scripts/bench fetches it with npm pack).',
  ].filter(Boolean).join('\n\n');
}

function webtorrentVersion() {
  try {
    return JSON.parse(readFileSync(join(ROOT, 'target/bench-npm/webtorrent/package/package.json'), 'utf8')).version;
  } catch {
    return '?';
  }
}
