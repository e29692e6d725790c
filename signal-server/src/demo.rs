//! The bundled demo track, synthesized here so it is ours to ship.
//!
//! A few minutes of "music-like" audio: a four-chord progression on a pad, a
//! bass line, kick/snare/hi-hat from a seeded noise generator and a
//! pentatonic melody chosen by the same generator. Same seed, same bytes, so
//! the demo's info hash is stable across machines and runs. Written once as a
//! 22.05 kHz mono 16-bit WAV (~8 MB for 3 minutes) into the cache directory.

use std::f64::consts::TAU;
use std::io::{self, Write};
use std::path::{Path, PathBuf};

/// Samples per second of the demo.
pub const SAMPLE_RATE: u32 = 22_050;
/// File name of the demo inside its cache directory.
pub const FILE_NAME: &str = "fanswarm-demo.wav";
/// Length of the published demo.
pub const SECONDS: u32 = 180;
/// Seed of the published demo.
pub const SEED: u64 = 0xfa45_3a7d;

const BPM: f64 = 96.0;
/// vi–IV–I–V in C major, as MIDI note numbers.
const PROGRESSION: [[u8; 3]; 4] = [[57, 60, 64], [53, 57, 60], [55, 60, 64], [55, 59, 62]];
/// A minor pentatonic, two octaves up from the pad.
const MELODY_SCALE: [u8; 6] = [69, 72, 74, 76, 79, 81];

/// Makes sure `<cache_dir>/fanswarm-demo.wav` exists with the right bytes'
/// length, synthesizing it if not; returns the directory to publish.
pub fn ensure(cache_dir: &Path) -> io::Result<PathBuf> {
    let dir = cache_dir.join("demo");
    let path = dir.join(FILE_NAME);
    let expected = 44 + u64::from(SECONDS) * u64::from(SAMPLE_RATE) * 2;
    if std::fs::metadata(&path).is_ok_and(|m| m.len() == expected) {
        return Ok(dir);
    }
    std::fs::create_dir_all(&dir)?;
    tracing::info!(path = %path.display(), "synthesizing the demo track");
    let bytes = wav_bytes(&synthesize(SECONDS, SEED), SAMPLE_RATE);
    // Write aside, then rename: a crash never leaves a half file to publish.
    let partial = dir.join(format!("{FILE_NAME}.partial"));
    let mut file = std::fs::File::create(&partial)?;
    file.write_all(&bytes)?;
    file.sync_all()?;
    std::fs::rename(&partial, &path)?;
    Ok(dir)
}

/// `seconds` of mono audio at [`SAMPLE_RATE`], deterministic for a seed.
pub fn synthesize(seconds: u32, seed: u64) -> Vec<i16> {
    let mut rng = fastrand::Rng::with_seed(seed);
    let rate = f64::from(SAMPLE_RATE);
    let total = seconds as usize * SAMPLE_RATE as usize;
    let beat_len = 60.0 / BPM;
    let eighth_len = beat_len / 2.0;
    let eighths = (f64::from(seconds) / eighth_len).ceil() as usize + 1;
    // One melody note (or rest) per eighth, drawn up front.
    let melody: Vec<Option<u8>> = (0..eighths)
        .map(|_| (rng.u8(..10) >= 3).then(|| MELODY_SCALE[rng.usize(..MELODY_SCALE.len())]))
        .collect();
    let mut previous_noise = 0.0;
    let mut out = Vec::with_capacity(total);
    for n in 0..total {
        let t = n as f64 / rate;
        let beat = t / beat_len;
        let bar = (beat / 4.0) as usize;
        let beat_in_bar = beat % 4.0;
        let since_beat = (beat.fract()) * beat_len;
        let since_eighth = (t % eighth_len).max(0.0);
        let eighth = (t / eighth_len) as usize;
        let chord = PROGRESSION[bar % PROGRESSION.len()];
        let section = bar / 8;

        let mut pad = 0.0;
        for &note in &chord {
            let f = frequency(note);
            pad += (TAU * f * t).sin() + 0.3 * (TAU * 2.0 * f * t).sin();
        }
        pad *= 0.05 * (1.0 + 0.15 * (TAU * 0.25 * t).sin());

        let bass_f = frequency(chord[0] - 24);
        let bass_env = (-since_eighth * 5.0).exp();
        let bass =
            0.22 * bass_env * ((TAU * bass_f * t).sin() + 0.4 * (TAU * 2.0 * bass_f * t).sin());

        let noise = rng.f64() * 2.0 - 1.0;
        let drums_on = bar >= 4;
        let mut drums = 0.0;
        if drums_on {
            let on_kick = beat_in_bar < 1.0 || (2.0..3.0).contains(&beat_in_bar);
            if on_kick {
                let sweep = 50.0 + 110.0 * (-since_beat * 30.0).exp();
                drums += 0.5 * (-since_beat * 9.0).exp() * (TAU * sweep * since_beat).sin();
            } else {
                drums += 0.22 * (-since_beat * 16.0).exp() * noise;
                drums += 0.15 * (-since_beat * 20.0).exp() * (TAU * 185.0 * since_beat).sin();
            }
            // High-passed noise (first difference) for the hi-hat, every eighth.
            drums += 0.12 * (-since_eighth * 55.0).exp() * (noise - previous_noise);
        }
        previous_noise = noise;

        let mut lead = 0.0;
        if section % 2 == 1
            && let Some(Some(note)) = melody.get(eighth)
        {
            let f = frequency(*note);
            let phase = (f * t).fract();
            let triangle = 4.0 * (phase - 0.5).abs() - 1.0;
            lead = 0.12 * (-since_eighth * 4.0).exp() * triangle;
        }

        let fade_in = (t / 1.0).min(1.0);
        let fade_out = ((f64::from(seconds) - t) / 4.0).clamp(0.0, 1.0);
        let mixed = (pad + bass + drums + lead) * fade_in * fade_out;
        let sample = (mixed.tanh() * 0.85 * f64::from(i16::MAX)).round();
        out.push(sample as i16);
    }
    out
}

/// A canonical 44-byte-header PCM WAV of mono 16-bit samples.
pub fn wav_bytes(samples: &[i16], sample_rate: u32) -> Vec<u8> {
    let data_len = u32::try_from(samples.len() * 2).unwrap_or(u32::MAX);
    let mut out = Vec::with_capacity(44 + samples.len() * 2);
    out.extend_from_slice(b"RIFF");
    out.extend_from_slice(&(36u32.saturating_add(data_len)).to_le_bytes());
    out.extend_from_slice(b"WAVEfmt ");
    out.extend_from_slice(&16u32.to_le_bytes()); // fmt chunk size
    out.extend_from_slice(&1u16.to_le_bytes()); // PCM
    out.extend_from_slice(&1u16.to_le_bytes()); // mono
    out.extend_from_slice(&sample_rate.to_le_bytes());
    out.extend_from_slice(&(sample_rate * 2).to_le_bytes()); // byte rate
    out.extend_from_slice(&2u16.to_le_bytes()); // block align
    out.extend_from_slice(&16u16.to_le_bytes()); // bits per sample
    out.extend_from_slice(b"data");
    out.extend_from_slice(&data_len.to_le_bytes());
    for s in samples {
        out.extend_from_slice(&s.to_le_bytes());
    }
    out
}

/// Equal-tempered frequency of a MIDI note (A4 = 69 = 440 Hz).
fn frequency(note: u8) -> f64 {
    440.0 * 2f64.powf((f64::from(note) - 69.0) / 12.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn same_seed_same_audio_other_seed_other_audio() {
        // 25 s reaches the drums (bar 4) and the melody (bars 8-15).
        let a = synthesize(25, 1);
        assert_eq!(a.len(), 25 * SAMPLE_RATE as usize);
        assert!(
            a == synthesize(25, 1),
            "same seed must give the same samples"
        );
        assert!(
            a != synthesize(25, 2),
            "another seed must change the samples"
        );
    }

    #[test]
    fn audio_is_neither_silent_nor_clipped() {
        // Bars 4+ have drums: take 12 s so every part plays.
        let s = synthesize(12, SEED);
        let peak = s.iter().map(|v| v.unsigned_abs()).max().unwrap();
        assert!(peak > 8_000, "peak {peak}");
        assert!(peak < i16::MAX as u16, "peak {peak} clips");
        let rms = (s.iter().map(|&v| f64::from(v).powi(2)).sum::<f64>() / s.len() as f64).sqrt();
        assert!(rms > 1_000.0, "rms {rms}");
    }

    #[test]
    fn wav_header_describes_the_samples() {
        let bytes = wav_bytes(&[1, -2, 3], 22_050);
        assert_eq!(bytes.len(), 44 + 6);
        assert_eq!(&bytes[0..4], b"RIFF");
        assert_eq!(u32::from_le_bytes(bytes[4..8].try_into().unwrap()), 42);
        assert_eq!(
            u32::from_le_bytes(bytes[24..28].try_into().unwrap()),
            22_050
        );
        assert_eq!(u32::from_le_bytes(bytes[40..44].try_into().unwrap()), 6);
        assert_eq!(i16::from_le_bytes([bytes[46], bytes[47]]), -2);
    }
}
