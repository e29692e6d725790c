// The benchmark library: music-like synthetic tracks, the same bytes on
// every machine and run (seeded generator; ffmpeg with bitexact flags), so
// figures of different runs are of the same files. Like the server's
// demo.rs: a pad playing vi–IV–I–V, a bass line, kick/snare/hi-hat from
// seeded noise and a pentatonic melody, here in stereo at 44.1 kHz.
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, renameSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

export const SAMPLE_RATE = 44100;

/** The tracks the parts use, by role. Durations and formats are fixed: the
 *  figures of different runs compare only if the files are the same. */
export const TRACKS = {
  // a: a long compressed track, the common case.
  ogg: { file: 'crowd-4min.ogg', seconds: 240, seed: 1, vorbisKbps: 137 },
  // a: a short uncompressed one at ~2.8 Mbit/s (88.2 kHz stereo 16-bit,
  // 10.6 MB): twenty times the Ogg's bytes per second, the worst case.
  wav: { file: 'crowd-30s-88k.wav', seconds: 30, seed: 2, rate: 88200 },
  // c: ~32 MiB, so one peer's rate is not all connection set-up.
  big: { file: 'one-peer-190s.wav', seconds: 190, seed: 3 },
};

/** Makes every track under `dir` that is not there yet; returns `dir`. */
export function ensureLibrary(dir) {
  mkdirSync(dir, { recursive: true });
  for (const track of Object.values(TRACKS)) {
    const path = join(dir, track.file);
    if (existsSync(path)) continue;
    const rate = track.rate ?? SAMPLE_RATE;
    const pcm = synthesize(track.seconds, track.seed, rate);
    const partial = `${path}.partial`;
    if (track.vorbisKbps) {
      encodeVorbis(pcm, track.vorbisKbps, partial);
    } else {
      writeFileSync(partial, wav(pcm, rate));
    }
    renameSync(partial, path);
  }
  return dir;
}

/** Interleaved stereo 16-bit samples, deterministic for a seed. */
export function synthesize(seconds, seed, rate = SAMPLE_RATE) {
  const rng = mulberry32(seed);
  const frames = seconds * rate;
  const out = new Int16Array(frames * 2);
  const bpm = 96;
  const beat = 60 / bpm;
  const eighth = beat / 2;
  const progression = [[57, 60, 64], [53, 57, 60], [55, 60, 64], [55, 59, 62]];
  const scale = [69, 72, 74, 76, 79, 81];
  const eighths = Math.ceil(seconds / eighth) + 1;
  const melody = Array.from({ length: eighths }, () =>
    (rng() < 0.7 ? scale[Math.floor(rng() * scale.length)] : null));
  const hz = (note) => 440 * 2 ** ((note - 69) / 12);
  for (let n = 0; n < frames; n++) {
    const t = n / rate;
    const b = t / beat;
    const bar = Math.floor(b / 4);
    const inBar = b % 4;
    const sinceBeat = (b % 1) * beat;
    const e = Math.floor(t / eighth);
    const sinceEighth = t - e * eighth;
    const chord = progression[bar % 4];
    let pad = 0;
    for (const note of chord) {
      const f = hz(note);
      pad += Math.sin(2 * Math.PI * f * t) + 0.3 * Math.sin(4 * Math.PI * f * t);
    }
    pad *= 0.05 * (1 + 0.15 * Math.sin(2 * Math.PI * 0.25 * t));
    const bass = 0.18 * Math.sin(2 * Math.PI * hz(chord[0] - 24) * t) * Math.exp(-2.5 * sinceBeat);
    const kick = inBar % 2 < 1
      ? 0.4 * Math.sin(2 * Math.PI * (45 + 90 * Math.exp(-30 * sinceBeat)) * sinceBeat) * Math.exp(-8 * sinceBeat) : 0;
    const noise = rng() * 2 - 1;
    const snare = inBar % 2 >= 1 ? 0.18 * noise * Math.exp(-18 * sinceBeat) : 0;
    const hat = 0.06 * (rng() * 2 - 1) * Math.exp(-60 * sinceEighth);
    const m = melody[e];
    const lead = m === null ? 0 : 0.09 * Math.sin(2 * Math.PI * hz(m) * t) * Math.exp(-3 * sinceEighth);
    // A little width: melody left of centre, hi-hat right.
    const left = pad + bass + kick + snare + 0.6 * hat + 1.2 * lead;
    const right = pad + bass + kick + snare + 1.4 * hat + 0.8 * lead;
    out[2 * n] = clip(left);
    out[2 * n + 1] = clip(right);
  }
  return out;
}

function clip(x) {
  return Math.max(-32768, Math.min(32767, Math.round(x * 26000)));
}

/** A canonical 44-byte-header PCM WAV. */
function wav(pcm, rate) {
  const data = Buffer.from(pcm.buffer, pcm.byteOffset, pcm.byteLength);
  const h = Buffer.alloc(44);
  h.write('RIFF', 0); h.writeUInt32LE(36 + data.length, 4); h.write('WAVE', 8);
  h.write('fmt ', 12); h.writeUInt32LE(16, 16); h.writeUInt16LE(1, 20); h.writeUInt16LE(2, 22);
  h.writeUInt32LE(rate, 24); h.writeUInt32LE(rate * 4, 28); h.writeUInt16LE(4, 32);
  h.writeUInt16LE(16, 34); h.write('data', 36); h.writeUInt32LE(data.length, 40);
  return Buffer.concat([h, data]);
}

/** Ogg Vorbis at a managed (min = max) bit rate with Debian's ffmpeg; bitexact
 *  so the Ogg serial number and tags do not change from run to run. */
function encodeVorbis(pcm, kbps, out) {
  const rate = `${kbps}k`;
  const r = spawnSync('ffmpeg', [
    '-hide_banner', '-loglevel', 'error', '-y',
    '-f', 's16le', '-ar', String(SAMPLE_RATE), '-ac', '2', '-i', 'pipe:0',
    '-c:a', 'libvorbis', '-b:a', rate, '-minrate', rate, '-maxrate', rate,
    '-fflags', '+bitexact', '-flags:a', '+bitexact', '-f', 'ogg', out,
  ], { input: Buffer.from(pcm.buffer), maxBuffer: 1 << 20 });
  if (r.status !== 0) throw new Error(`ffmpeg failed: ${r.stderr}`);
}

function mulberry32(seed) {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}
