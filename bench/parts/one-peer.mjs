// c. One-peer download rate vs a bare RTCDataChannel, two pages (windows)
// of the same Chromium, side by side in each run (order alternating).
// Reference: one ordered reliable channel between the pages, signalled by
// the driver, 16 KiB messages, the sender under a bufferedAmount high mark
// (1 MiB, resumed on `bufferedamountlow` at 256 KiB: the player's own
// marks), MiB/s over 32 MiB at the receiver (first byte → last byte).
// fanswarm: page A gets the whole track from the web seed (playing at 16×),
// then page B joins with { webSeed: false }: every byte from A. Figure =
// B's fromPeers ÷ (done − first byte from a peer).
import { launch, load, openWindow } from '../lib/browser.mjs';
import { playerState, schedulePress, waitFor } from '../lib/player.mjs';
import { startServer } from '../lib/server.mjs';
import { ratio, spread, table } from '../lib/stats.mjs';
import { TRACKS } from '../lib/tracks.mjs';

const MIB = 1024 * 1024;
const CHANNEL_BYTES = 32 * MIB;

export async function run({ runs, library }) {
  const server = await startServer({ library, log: 'one-peer-server' });
  const results = [];
  const errors = [];
  try {
    const meta = (await server.tracks()).find((t) => t.name === TRACKS.big.file);
    for (let r = 0; r < runs; r++) {
      const browser = await launch('chromium');
      const result = { run: r };
      try {
        const steps = [['channel', () => bareChannel(browser, server)],
          ['fanswarm', () => fromOnePeer(browser, server, meta)]];
        if (r % 2) steps.reverse();
        for (const [name, step] of steps) {
          try { result[name] = await step(); } catch (e) { errors.push(`run ${r + 1} ${name}: ${e.message ?? e}`); }
        }
      } finally {
        await browser.close().catch(() => {});
      }
      results.push(result);
      console.log(`c run ${r + 1}/${runs}: channel ${result.channel?.mibPerSecond?.toFixed(2)} MiB/s, fanswarm ${result.fanswarm?.mibPerSecond?.toFixed(2)} MiB/s`);
    }
  } finally {
    await server.stop();
  }
  const channel = results.map((r) => r.channel?.mibPerSecond);
  const swarm = results.map((r) => r.fanswarm?.mibPerSecond);
  const fromConnect = results.map((r) => r.fanswarm?.mibPerSecondFromConnect);
  const rows = [
    ['bare RTCDataChannel, 32 MiB (first → last byte)', spread(channel), 'reference'],
    [`fanswarm page B from page A, ${TRACKS.big.file} (first peer byte → done)`, spread(swarm), `${ratio(swarm, channel)} of the channel`],
    ['fanswarm, from the connection (`peers` event) → done', spread(fromConnect), `${ratio(fromConnect, channel)} of the channel`],
  ];
  const failed = errors.length ? `\n\nFailed steps: ${errors.join('; ')}` : '';
  return {
    markdown: `MiB/s, median (min–max) of ${results.length} runs, one Chromium, two windows.\n\n${table(['figure', 'MiB/s', 'vs channel'], rows)}${failed}`,
    data: { results, errors },
  };
}

/** The reference: a bare data channel between two pages of the server's origin. */
async function bareChannel(browser, server) {
  const [a, b] = [await openWindow(browser), await openWindow(browser)];
  try {
    await load(a, `${server.base}/bench-plain.html`);
    await load(b, `${server.base}/bench-plain.html`);
    const offer = await a.evaluate(async () => {
      const pc = window.pc = new RTCPeerConnection({ iceServers: [] });
      window.dc = pc.createDataChannel('bench', { ordered: true });
      await pc.setLocalDescription(await pc.createOffer());
      await gathered(pc);
      return pc.localDescription.toJSON();
      function gathered(pc) {
        return new Promise((r) => (pc.iceGatheringState === 'complete' ? r()
          : pc.addEventListener('icegatheringstatechange', () => pc.iceGatheringState === 'complete' && r())));
      }
    });
    const answer = await b.evaluate(async (offer, total) => {
      const pc = window.pc = new RTCPeerConnection({ iceServers: [] });
      window.received = new Promise((resolve) => pc.addEventListener('datachannel', ({ channel }) => {
        channel.binaryType = 'arraybuffer';
        let bytes = 0;
        let first = null;
        channel.addEventListener('message', (e) => {
          first ??= performance.now();
          bytes += e.data.byteLength;
          if (bytes >= total) resolve({ bytes, ms: performance.now() - first });
        });
      }));
      await pc.setRemoteDescription(offer);
      await pc.setLocalDescription(await pc.createAnswer());
      await new Promise((r) => (pc.iceGatheringState === 'complete' ? r()
        : pc.addEventListener('icegatheringstatechange', () => pc.iceGatheringState === 'complete' && r())));
      return pc.localDescription.toJSON();
    }, offer, CHANNEL_BYTES);
    await a.evaluate(async (answer, total) => {
      await window.pc.setRemoteDescription(answer);
      const dc = window.dc;
      if (dc.readyState !== 'open') await new Promise((r) => dc.addEventListener('open', r, { once: true }));
      const HIGH = 1 << 20;
      dc.bufferedAmountLowThreshold = 256 << 10;
      const message = new Uint8Array(16 << 10);
      let sent = 0;
      while (sent < total) {
        while (sent < total && dc.bufferedAmount < HIGH) { dc.send(message); sent += message.length; }
        if (sent < total) await new Promise((r) => dc.addEventListener('bufferedamountlow', r, { once: true }));
      }
    }, answer, CHANNEL_BYTES);
    const { bytes, ms } = await b.evaluate(() => window.received);
    return { bytes, ms, mibPerSecond: bytes / MIB / (ms / 1000) };
  } finally {
    await a.close();
    await b.close();
  }
}

/** Page A seeds the track (from the web seed), page B takes it from A only. */
async function fromOnePeer(browser, server, meta) {
  const [a, b] = [await openWindow(browser), await openWindow(browser)];
  try {
    const embed = `${server.base}/embed/${meta.info_hash}`;
    await load(a, embed);
    await schedulePress(a, 0);
    // Through the file at 16× (muted), so A has every piece soon.
    await waitFor(() => a.evaluate(() => {
      const audio = document.querySelector('fanswarm-player').audio;
      audio.muted = true;
      audio.defaultPlaybackRate = 16; // a new src resets playbackRate to this
      audio.playbackRate = 16;
      return !audio.paused || window.__bench?.error;
    }), { limitMs: 120_000, everyMs: 100, what: 'page A playing' });
    await waitFor(async () => {
      const s = await playerState(a);
      if (s.error) throw new Error(`page A: ${s.error}`);
      return s.done;
    }, { limitMs: (TRACKS.big.seconds * 2 + 120) * 1000, what: 'page A has the whole track' });
    // B: the same page, but the JS API itself (the element has no webSeed
    // switch), found by its module URL so a hashed file name works too.
    await load(b, embed);
    await b.evaluate((torrent) => {
      const url = performance.getEntriesByType('resource').map((e) => e.name)
        .find((n) => /\/fanswarm[.\w-]*\.js(\?|$)/.test(new URL(n).pathname));
      const r = window.__peer = { error: null };
      (async () => {
        const fanswarm = (await import(url ?? '/fanswarm.js')).default;
        const audio = new Audio();
        audio.muted = true;
        const track = await fanswarm.play(audio, { torrent, webSeed: false, iceServers: [] });
        r.track = track;
        track.addEventListener('peers', () => { r.peerAt ??= performance.now(); });
        track.addEventListener('done', () => { r.doneAt ??= performance.now(); });
        const poll = setInterval(() => {
          const s = track.stats();
          if (s.fromPeers > 0) r.firstByteAt ??= performance.now();
          if (s.done) { r.doneAt ??= performance.now(); clearInterval(poll); }
        }, 20);
      })().catch((e) => { r.error = String(e); });
    }, `/t/${meta.info_hash}.torrent`);
    const peer = await waitFor(() => b.evaluate(() => {
      const r = window.__peer;
      if (r.error) return { error: r.error };
      if (!r.doneAt) return null;
      return { ...r.track.stats(), peerAt: r.peerAt, firstByteAt: r.firstByteAt, doneAt: r.doneAt };
    }), { limitMs: 300_000, everyMs: 100, what: 'page B done from page A' });
    if (peer.error) throw new Error(`page B: ${peer.error}`);
    const ms = peer.doneAt - peer.firstByteAt;
    return {
      ...peer, ms, mibPerSecond: peer.fromPeers / MIB / (ms / 1000),
      mibPerSecondFromConnect: peer.fromPeers / MIB / ((peer.doneAt - peer.peerAt) / 1000),
    };
  } finally {
    await a.close();
    await b.close();
  }
}
