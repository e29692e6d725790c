// The player's markup and style, kept apart from its behaviour (player.js).
// No framework: a shadow root, one template, CSS custom properties an
// artist's page may set on the element (--fanswarm-accent, --fanswarm-bg,
// --fanswarm-fg) to match its colours.

export const STYLE = `
:host { display: block; min-width: 240px; max-width: 100%; box-sizing: border-box;
  --accent: var(--fanswarm-accent, #6d4aff); --bg: var(--fanswarm-bg, #fff);
  --fg: var(--fanswarm-fg, #1d1b26); --muted: color-mix(in srgb, var(--fg) 55%, transparent);
  --fans: #1fa37a; --server: #e0a030; --played: var(--accent);
  font: 14px/1.4 system-ui, -apple-system, "Segoe UI", sans-serif; color: var(--fg); }
.box { background: var(--bg); border: 1px solid color-mix(in srgb, var(--fg) 15%, transparent);
  border-radius: 12px; padding: 10px 12px; display: grid; gap: 8px; }
.row { display: flex; align-items: center; gap: 10px; min-width: 0; }
.head { flex: 1; min-width: 0; }
.title { font-weight: 600; overflow: hidden; text-overflow: ellipsis; white-space: nowrap; }
.byline { font-size: 12px; color: var(--muted); overflow: hidden; text-overflow: ellipsis; white-space: nowrap; }
.byline:empty { display: none; }
.cover { flex: none; width: 48px; height: 48px; border-radius: 6px; object-fit: cover; }
.cover[hidden], .download[hidden] { display: none; }
button.download { width: 32px; height: 32px; background: transparent; color: var(--accent);
  border: 1px solid color-mix(in srgb, var(--accent) 40%, transparent); }
button { flex: none; width: 40px; height: 40px; border-radius: 50%; border: 0; cursor: pointer;
  background: var(--accent); color: #fff; display: grid; place-items: center; padding: 0; }
button:disabled { opacity: .6; cursor: progress; }
button.forget { width: auto; height: auto; border-radius: 4px; padding: 0 6px; font: inherit;
  background: transparent; color: var(--accent); border: 1px solid color-mix(in srgb, var(--accent) 40%, transparent); }
[data-ui="keptbox"][hidden] { display: none; }
button svg { width: 18px; height: 18px; fill: currentColor; }
button .pause, button[data-playing="true"] .play { display: none; }
button[data-playing="true"] .pause { display: block; }
:focus-visible { outline: 2px solid var(--accent); outline-offset: 2px; }
input[type=range] { accent-color: var(--accent); margin: 0; min-width: 0; }
.seek { flex: 1; }
.time { font-variant-numeric: tabular-nums; color: var(--muted); font-size: 12px; white-space: nowrap; }
.volume { width: 64px; flex: none; }
.map { display: grid; gap: 1px; height: 18px; border-radius: 3px; overflow: hidden; }
.map:empty { background: color-mix(in srgb, var(--fg) 10%, transparent); }
.map i { background: color-mix(in srgb, var(--fg) 10%, transparent); min-width: 0; }
.map i[data-state=fans] { background: var(--fans); }
.map i[data-state=server] { background: var(--server); }
.map i[data-state=mixed] { background: linear-gradient(var(--fans) 50%, var(--server) 50%); }
.map i[data-state=local] { background: var(--muted); }
.map i[data-state=played] { background: var(--played); }
.figures { display: flex; flex-wrap: wrap; gap: 2px 14px; font-size: 12px; color: var(--muted); }
.figures b { color: var(--fg); font-variant-numeric: tabular-nums; font-weight: 600; }
.legend { display: flex; flex-wrap: wrap; gap: 2px 8px; font-size: 11px; color: var(--muted); }
.legend span::before { content: ""; display: inline-block; width: 8px; height: 8px; border-radius: 2px;
  margin-right: 4px; background: var(--c); }
.tracks { list-style: none; margin: 0; padding: 0; display: grid; gap: 2px; }
.tracks[hidden] { display: none; }
.tracks button { width: 100%; height: auto; border-radius: 6px; padding: 4px 8px; font: inherit;
  display: flex; gap: 8px; justify-content: space-between; text-align: left;
  background: transparent; color: var(--fg); }
.tracks button[aria-current="true"] { background: color-mix(in srgb, var(--accent) 15%, transparent); font-weight: 600; }
.tracks .time { flex: none; }
.status:empty { display: none; }
.status { font-size: 12px; color: var(--muted); }
@media (max-width: 360px) { .volume { display: none; } }
`;

/** The shadow root's markup; `data-ui` names what player.js wires up. */
export function template() {
  return `
<div class="box">
  <div class="row">
    <button type="button" data-ui="toggle" data-playing="false" aria-label="Play">
      <svg class="play" viewBox="0 0 24 24" aria-hidden="true"><path d="M7 4v16l13-8z"/></svg>
      <svg class="pause" viewBox="0 0 24 24" aria-hidden="true"><path d="M6 4h4v16H6zM14 4h4v16h-4z"/></svg>
    </button>
    <img class="cover" data-ui="cover" alt="" hidden>
    <div class="head">
      <div class="title" data-ui="title"></div>
      <div class="byline" data-ui="byline"></div>
    </div>
    <button type="button" class="download" data-ui="download" aria-label="Download" hidden>
      <svg viewBox="0 0 24 24" aria-hidden="true"><path d="M11 3h2v10l4-4 1.4 1.4L12 16.8 5.6 10.4 7 9l4 4zM5 19h14v2H5z"/></svg>
    </button>
  </div>
  <div class="row">
    <input class="seek" type="range" min="0" max="1000" value="0" step="1" disabled
      aria-label="Seek" data-ui="seek">
    <span class="time" data-ui="time" aria-live="off">0:00 / 0:00</span>
    <input class="volume" type="range" min="0" max="100" value="100" aria-label="Volume" data-ui="volume">
  </div>
  <ol class="tracks" data-ui="tracks" aria-label="Tracks" hidden></ol>
  <div class="map" data-ui="map"></div>
  <div class="legend" aria-hidden="true">
    <span style="--c:var(--fans)">from fans</span><span style="--c:var(--server)">from server</span>
    <span style="--c:var(--played)">played</span><span style="--c:color-mix(in srgb,var(--fg) 10%,transparent)">missing</span>
  </div>
  <div class="figures">
    <span><b data-ui="fans">0</b> fans connected</span>
    <span><b data-ui="share">–</b> of bytes from fans</span>
    <span>passed on <b data-ui="passed">0 B</b></span>
    <span data-ui="keptbox" hidden>kept in this browser <b data-ui="kept">0 B</b>
      <button type="button" class="forget" data-ui="forget">Forget</button></span>
  </div>
  <div class="status" data-ui="sharing" role="status"></div>
  <div class="status" data-ui="status" role="status"></div>
</div>`;
}

/** m:ss (h:mm:ss past an hour). */
export function formatTime(seconds) {
  const s = Number.isFinite(seconds) && seconds > 0 ? Math.floor(seconds) : 0;
  const h = Math.floor(s / 3600);
  const m = Math.floor((s % 3600) / 60);
  const ss = String(s % 60).padStart(2, '0');
  return h ? `${h}:${String(m).padStart(2, '0')}:${ss}` : `${m}:${ss}`;
}

/** Bytes in B, KB, MB or GB (powers of 1000, one decimal). */
export function formatBytes(n) {
  const units = ['B', 'KB', 'MB', 'GB'];
  let v = n;
  let u = 0;
  while (v >= 1000 && u < units.length - 1) { v /= 1000; u++; }
  return `${u === 0 ? v : v.toFixed(1)} ${units[u]}`;
}

/** The sharing line: why this fan uploads nothing (`stats.sharingOff`),
 *  or its upload cap; empty when it shares freely, and for a browser
 *  without WebRTC (the status line says that). */
export function sharingText(stats) {
  switch (stats?.sharingOff) {
    case 'cellular': return 'Not sharing: cellular data.';
    case 'saveData': return 'Not sharing: data saver on.';
    case 'page': return 'Not sharing: turned off by this page.';
    case 'webrtc': return '';
    default:
      return stats?.uploadCap > 0 ? `Sharing up to ${formatBytes(stats.uploadCap)}/s.` : '';
  }
}

/** "Artist · Album" (what is known of them), for the line under the title. */
export function byline(meta) {
  return [meta?.artist, meta?.album].filter((s) => typeof s === 'string' && s).join(' \u00b7 ');
}

/** The name a downloaded track is saved under: "Artist - Title.ext" when
 *  the tags say, else the file's own name; never a path separator or a
 *  character file systems refuse. */
export function downloadName(meta, fileName) {
  // eslint-disable-next-line no-control-regex
  const clean = (text) => text.replace(/[\u0000-\u001f\u007f/\\:*?"<>|]/g, '_').replace(/^[.\s]+/, '').trim();
  const name = clean(String(fileName || '').split('/').pop()) || 'track';
  const dot = name.lastIndexOf('.');
  const ext = dot > 0 ? name.slice(dot) : '';
  const title = meta?.title;
  const stem = title ? clean(meta.artist ? `${meta.artist} - ${title}` : title) : '';
  return stem ? stem + ext : name;
}

/** What MediaMetadata is made from: title, artist, album, artwork. */
export function mediaMetadata(meta, title) {
  const init = { title: title || '', artist: meta?.artist || '', album: meta?.album || '' };
  init.artwork = meta?.cover ? [{ src: meta.cover }] : [];
  return init;
}
