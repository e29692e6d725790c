// Unit tests of the player's DOM-free parts, with node's own test runner
// (`node --test tests/js/`): the piece map's states, grouping and spoken
// counts, the time and byte formats, and what the tags become (the line
// under the title, the download's file name, the Media Session's metadata). A stand-in `document` makes cells.
import { test } from 'node:test';
import assert from 'node:assert/strict';

globalThis.document = { createElement: () => ({ dataset: {} }) };
const { PieceMap, STATES } = await import('../../web/piecemap.js');
const {
  byline, downloadName, formatBytes, formatTime, mediaMetadata, sharingText,
} = await import('../../web/player-view.js');

function fakeElement() {
  return {
    attrs: {},
    style: {},
    children: [],
    setAttribute(k, v) { this.attrs[k] = v; },
    replaceChildren(...c) { this.children = c; },
  };
}

const cellStates = (el) => el.children.map((c) => c.dataset.state);

test('engine bytes name the source; played covers only verified pieces', () => {
  const el = fakeElement();
  const map = new PieceMap(el);
  map.draw(Uint8Array.from([0, 1, 2, 3, 4, 2]), Uint8Array.from([1, 0, 0, 0, 0, 1]));
  assert.deepEqual(map.states(), ['missing', 'fans', 'server', 'mixed', 'local', 'played']);
  assert.deepEqual(cellStates(el), map.states(), 'one cell per piece');
  assert.equal(el.attrs['aria-label'],
    'Piece map of 6 pieces: 1 missing, 1 from fans, 1 from the server, '
    + '1 from fans and the server, 1 from this device, 1 played');
  assert.equal(STATES.length, 5);
});

test('a redraw changes only what changed, and the DOM follows', () => {
  const el = fakeElement();
  const map = new PieceMap(el);
  map.draw(new Uint8Array(4), new Uint8Array(4));
  const before = el.children;
  map.draw(Uint8Array.from([2, 2, 0, 1]), Uint8Array.from([1, 0, 0, 0]));
  assert.equal(el.children, before, 'cells are reused');
  assert.deepEqual(cellStates(el), ['played', 'server', 'missing', 'fans']);
});

test('long tracks group pieces per cell by the most common state', () => {
  const el = fakeElement();
  const map = new PieceMap(el);
  const engine = new Uint8Array(1000);
  engine.fill(2, 0, 300); // server
  engine.fill(1, 300, 600); // fans
  map.draw(engine, new Uint8Array(1000));
  assert.equal(el.children.length, 250, '4 pieces per cell');
  assert.equal(map.states().length, 1000, 'states stay per piece');
  const count = (s) => cellStates(el).filter((x) => x === s).length;
  assert.deepEqual([count('server'), count('fans'), count('missing')], [75, 75, 100]);
  assert.match(el.attrs['aria-label'], /^Piece map of 1000 pieces: 300 from the server, 300 from fans, 400 missing$/);
});

test('times and byte counts read as people write them', () => {
  assert.equal(formatTime(0), '0:00');
  assert.equal(formatTime(65.9), '1:05');
  assert.equal(formatTime(3725), '1:02:05');
  assert.equal(formatTime(NaN), '0:00');
  assert.equal(formatBytes(999), '999 B');
  assert.equal(formatBytes(5_726_248), '5.7 MB');
  assert.equal(formatBytes(1_500_000_000), '1.5 GB');
});

test('the line under the title says what the tags know', () => {
  assert.equal(byline({ artist: 'The Fans', album: 'Swarm Songs' }), 'The Fans \u00b7 Swarm Songs');
  assert.equal(byline({ artist: 'The Fans' }), 'The Fans');
  assert.equal(byline({ album: '' }), '');
  assert.equal(byline(undefined), '');
});

test('a download is named by the track, safely', () => {
  assert.equal(downloadName({ title: 'Night Bus', artist: 'The Fans' }, 'x/01 night.flac'), 'The Fans - Night Bus.flac');
  assert.equal(downloadName({}, 'x/01 night.flac'), '01 night.flac', 'never a path');
  assert.equal(downloadName({ title: 'Night Bus' }, 'a.mp3'), 'Night Bus.mp3');
  assert.equal(downloadName({}, 'broken tags.mp3'), 'broken tags.mp3', 'no tags: the file name');
  assert.equal(downloadName({ title: 'AC/DC: "Live"?', artist: 'A\\B' }, 'l.ogg'), 'A_B - AC_DC_ _Live__.ogg');
  assert.equal(downloadName({ title: '..' }, 'x.wav'), 'x.wav', 'never a dot name');
  assert.equal(downloadName({}, ''), 'track');
  assert.equal(downloadName({ title: 'Tab\there' }, ''), 'Tab_here');
});

test('the Media Session gets title, artist, album and the cover', () => {
  assert.deepEqual(mediaMetadata({ artist: 'A', album: 'B', cover: '/cover/ab' }, 'T'),
    { title: 'T', artist: 'A', album: 'B', artwork: [{ src: '/cover/ab' }] });
  assert.deepEqual(mediaMetadata({}, 'file.mp3'), { title: 'file.mp3', artist: '', album: '', artwork: [] });
});

test('the sharing line says why a fan does not upload, or its cap', () => {
  assert.equal(sharingText({ sharing: false, sharingOff: 'cellular' }), 'Not sharing: cellular data.');
  assert.equal(sharingText({ sharing: false, sharingOff: 'saveData' }), 'Not sharing: data saver on.');
  assert.equal(sharingText({ sharing: false, sharingOff: 'page' }), 'Not sharing: turned off by this page.');
  assert.equal(sharingText({ sharing: false, sharingOff: 'webrtc' }), '', 'the status line says it');
  assert.equal(sharingText({ sharing: true, sharingOff: null, uploadCap: 64_000 }), 'Sharing up to 64.0 KB/s.');
  assert.equal(sharingText({ sharing: true, sharingOff: null, uploadCap: null }), '');
  assert.equal(sharingText(undefined), '');
});
