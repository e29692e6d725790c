// The /share page: a dropped or picked file is hashed by the wasm peer
// (fanswarm.share, with progress) and seeded from this tab; the page shows
// the link, the magnet and both embed snippets, and what the tab has sent.
// The server's page (signal-server/src/share.rs) imports fanswarm.js by its
// hashed name and hands it to mount().

const TICK_MS = 1000;

/** Wires the page's drop zone and picker to `fanswarm.share`. */
export function mount(fanswarm) {
  const $ = (id) => document.getElementById(id);
  const drop = $('drop');
  const input = $('file');
  let current = null; // { track, timer }

  const take = (file) => {
    if (file) shareFile(file).catch(() => {}); // shareFile reports its own errors
  };
  input.addEventListener('change', () => take(input.files?.[0]));
  for (const button of document.querySelectorAll('[data-copy]')) {
    button.addEventListener('click', async () => {
      const text = $(button.dataset.copy).value;
      const label = button.textContent;
      try {
        await navigator.clipboard.writeText(text);
        button.textContent = 'Copied';
      } catch {
        $(button.dataset.copy).select(); // no clipboard access: selected, for Ctrl+C
        button.textContent = 'Selected: press Ctrl+C';
      }
      setTimeout(() => { button.textContent = label; }, 2000);
    });
  }
  drop.addEventListener('dragover', (e) => {
    e.preventDefault();
    drop.classList.add('over');
  });
  drop.addEventListener('dragleave', () => drop.classList.remove('over'));
  drop.addEventListener('drop', (e) => {
    e.preventDefault();
    drop.classList.remove('over');
    take(e.dataTransfer?.files?.[0]);
  });

  async function shareFile(file) {
    // One file at a time: a new one replaces the one shared before.
    stop();
    const status = $('status');
    const progress = $('progress');
    $('result').hidden = true;
    status.textContent = `Reading ${file.name}…`;
    progress.hidden = false;
    progress.value = 0;
    try {
      const rtcConfig = await fetch('/api/ice', { cache: 'no-store' })
        .then((r) => (r.ok ? r.json() : null)).catch(() => null);
      const tracker = `${location.protocol === 'https:' ? 'wss' : 'ws'}://${location.host}/announce`;
      const track = await fanswarm.share(file, {
        trackers: [tracker],
        ...(rtcConfig?.iceServers ? { rtcConfig } : {}),
        onProgress: ({ phase, done, total }) => {
          progress.value = done / total;
          status.textContent = `${phase === 'hashing' ? 'Hashing' : 'Getting ready to seed'} ${file.name}: ${Math.floor((100 * done) / total)} %`;
        },
      });
      progress.hidden = true;
      status.textContent = '';
      show(track);
      return track;
    } catch (e) {
      progress.hidden = true;
      status.textContent = `Could not share ${file.name}: ${e?.message ?? e}`;
      throw e;
    }
  }

  function show(track) {
    const link = `${location.origin}/embed/${track.infoHash}?magnet=${encodeURIComponent(track.magnet)}`;
    $('name').textContent = track.name;
    $('link').href = link;
    $('link').textContent = link;
    $('magnet').value = track.magnet;
    $('iframe').value = `<iframe src="${escapeHtml(link)}" allow="autoplay" title="${escapeHtml(track.name)}" style="border:0;width:100%;height:190px"></iframe>`;
    $('script').value = `<script type="module" src="${location.origin}/embed.js"></script>`
      + `<fanswarm-player src="${escapeHtml(track.magnet)}"></fanswarm-player>`;
    $('result').hidden = false;
    const update = () => {
      const stats = track.stats();
      $('peers').textContent = String(stats.peers);
      $('sent').textContent = formatBytes(stats.uploaded);
    };
    update();
    current = { track, timer: setInterval(update, TICK_MS) };
    // For pages and tests that script this one.
    window.fanswarmShared = { track, link };
  }

  function stop() {
    if (!current) return;
    clearInterval(current.timer);
    current.track.destroy();
    current = null;
    window.fanswarmShared = null;
  }

  return { share: shareFile, stop };
}

function escapeHtml(text) {
  return String(text).replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
}

function formatBytes(n) {
  if (n < 1024) return `${n} B`;
  const units = ['KiB', 'MiB', 'GiB'];
  let i = -1;
  do {
    n /= 1024;
    i += 1;
  } while (n >= 1024 && i < units.length - 1);
  return `${n.toFixed(n < 10 ? 1 : 0)} ${units[i]}`;
}
