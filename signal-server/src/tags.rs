//! What a track says about itself, read once at publish time: its tags
//! (title, artist, album, track number, cover art) and its duration, with
//! the `lofty` crate, which reads ID3v2/ID3v1/APE (MP3), MP4 atoms (M4A),
//! Vorbis comments (Ogg Vorbis, Opus, FLAC) and RIFF INFO / ID3 (WAV).
//!
//! Tags are the artist's words, not ours, and a file's tags may be broken:
//! [`read`] returns an error for a file it cannot read and the publisher
//! publishes that file under its file name all the same (and logs why).
//! Nothing here trusts what a tag claims about its picture: the cover's
//! type is taken from its first bytes, and a picture that is not a JPEG,
//! PNG, GIF or WebP image, or is larger than [`MAX_COVER_BYTES`], is left
//! out.

use std::io;
use std::path::Path;

use axum::body::Bytes;
use lofty::config::ParseOptions;
use lofty::file::{AudioFile, TaggedFileExt};
use lofty::picture::{Picture, PictureType};
use lofty::probe::Probe;
use lofty::tag::{Accessor, Tag};
use serde::Serialize;

/// The largest cover picture served; a larger one is left out.
pub const MAX_COVER_BYTES: usize = 8 * 1024 * 1024;

/// The longest title, artist or album kept, in characters; longer ones are
/// cut (a tag can hold megabytes; `/api/tracks` should not).
pub const MAX_TEXT_CHARS: usize = 500;

/// What `/api/tracks` says about a track beyond its file: every field is
/// `null` when the file does not say (or its tags could not be read).
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct TrackTags {
    /// The title tag.
    pub title: Option<String>,
    /// The (track) artist tag.
    pub artist: Option<String>,
    /// The album title tag.
    pub album: Option<String>,
    /// The track number on its album.
    pub track_number: Option<u32>,
    /// Seconds, from the file's audio properties (known before playback).
    pub duration: Option<f64>,
    /// `<base>/cover/<hex>` when the file has a cover picture.
    pub cover_url: Option<String>,
    /// The cover picture, served at `cover_url`.
    #[serde(skip)]
    pub cover: Option<Cover>,
}

/// A cover picture and its type, as found in the file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cover {
    /// `image/jpeg`, `image/png`, `image/gif` or `image/webp`.
    pub mime: &'static str,
    /// The picture's bytes.
    pub bytes: Bytes,
}

/// Why a file's tags could not be read.
#[derive(Debug, thiserror::Error)]
pub enum TagError {
    /// The file could not be opened or read.
    #[error("cannot read the file: {0}")]
    Io(#[from] io::Error),
    /// lofty refused the file or its tags.
    #[error("{0}")]
    Tags(#[from] lofty::error::LoftyError),
    /// The tag reader panicked on this file (a bug in it; the file is
    /// published without tags).
    #[error("the tag reader failed on this file")]
    Panicked,
}

/// Reads the tags and duration of the audio file at `path`. The format is
/// guessed from the file's first bytes (then its extension).
pub fn read(path: &Path) -> Result<TrackTags, TagError> {
    // A panic in the reader must not take the publishing of the whole
    // library with it: it becomes this file's error.
    std::panic::catch_unwind(|| read_unguarded(path)).unwrap_or(Err(TagError::Panicked))
}

fn read_unguarded(path: &Path) -> Result<TrackTags, TagError> {
    let file = Probe::open(path)?
        .options(ParseOptions::new())
        .guess_file_type()?
        .read()?;
    let tag = file.primary_tag().or_else(|| file.first_tag());
    let text = |get: fn(&Tag) -> Option<std::borrow::Cow<'_, str>>| {
        tag.and_then(get).and_then(|s| clean_text(&s))
    };
    let seconds = file.properties().duration().as_secs_f64();
    Ok(TrackTags {
        title: text(|t| t.title()),
        artist: text(|t| t.artist()),
        album: text(|t| t.album()),
        track_number: tag.and_then(|t| t.track()).filter(|&n| n > 0),
        duration: (seconds.is_finite() && seconds > 0.0).then_some(seconds),
        cover_url: None,
        cover: file.tags().iter().find_map(|t| cover_of(t.pictures())),
    })
}

/// The front cover if there is one, else the first picture: if it is an
/// image of a type browsers show, and not too large.
fn cover_of(pictures: &[Picture]) -> Option<Cover> {
    let picture = pictures
        .iter()
        .find(|p| p.pic_type() == PictureType::CoverFront)
        .or_else(|| pictures.first())?;
    let bytes = picture.data();
    if bytes.len() > MAX_COVER_BYTES {
        tracing::warn!(bytes = bytes.len(), "cover picture too large: not served");
        return None;
    }
    let Some(mime) = image_type(bytes) else {
        tracing::warn!("cover picture of an unknown image type: not served");
        return None;
    };
    Some(Cover {
        mime,
        bytes: Bytes::copy_from_slice(bytes),
    })
}

/// The image type of `bytes` from its signature, or `None`.
pub fn image_type(bytes: &[u8]) -> Option<&'static str> {
    if bytes.starts_with(&[0xff, 0xd8, 0xff]) {
        Some("image/jpeg")
    } else if bytes.starts_with(b"\x89PNG\r\n\x1a\n") {
        Some("image/png")
    } else if bytes.starts_with(b"GIF87a") || bytes.starts_with(b"GIF89a") {
        Some("image/gif")
    } else if bytes.len() >= 12 && bytes.starts_with(b"RIFF") && bytes.get(8..12) == Some(b"WEBP") {
        Some("image/webp")
    } else {
        None
    }
}

/// A tag's text trimmed, control characters dropped, cut to
/// [`MAX_TEXT_CHARS`]; `None` when nothing is left.
fn clean_text(text: &str) -> Option<String> {
    let cleaned: String = text
        .chars()
        .filter(|c| !c.is_control())
        .take(MAX_TEXT_CHARS)
        .collect();
    let trimmed = cleaned.trim();
    (!trimmed.is_empty()).then(|| trimmed.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn image_types_come_from_the_bytes() {
        assert_eq!(image_type(b"\xff\xd8\xff\xe0rest"), Some("image/jpeg"));
        assert_eq!(image_type(b"\x89PNG\r\n\x1a\nrest"), Some("image/png"));
        assert_eq!(image_type(b"GIF89a..."), Some("image/gif"));
        assert_eq!(image_type(b"RIFF\0\0\0\0WEBPVP8 "), Some("image/webp"));
        assert_eq!(image_type(b"RIFF\0\0\0\0WAVEfmt "), None);
        assert_eq!(image_type(b"<svg"), None);
        assert_eq!(image_type(b""), None);
    }

    #[test]
    fn text_is_trimmed_cleaned_and_bounded() {
        assert_eq!(clean_text("  Song\u{0}  ").as_deref(), Some("Song"));
        assert_eq!(clean_text(" \t\n"), None);
        let long = "x".repeat(MAX_TEXT_CHARS * 2);
        assert_eq!(
            clean_text(&long).map(|s| s.chars().count()),
            Some(MAX_TEXT_CHARS)
        );
    }

    #[test]
    fn a_plain_wav_has_a_duration_and_no_tags() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("tone.wav");
        let samples = crate::demo::synthesize(2, 3);
        std::fs::write(
            &path,
            crate::demo::wav_bytes(&samples, crate::demo::SAMPLE_RATE),
        )
        .unwrap();
        let tags = read(&path).unwrap();
        assert_eq!(tags.title, None);
        assert_eq!(tags.cover, None);
        let seconds = tags.duration.unwrap();
        assert!((seconds - 2.0).abs() < 0.01, "{seconds}");
    }

    #[test]
    fn garbage_is_an_error_not_a_panic() {
        let dir = tempfile::tempdir().unwrap();
        for (name, bytes) in [
            ("a.mp3", b"ID3\x04\x00\x00\x7f\x7f\x7f\x7fjunk".as_slice()),
            ("b.flac", b"fLaC\x00\x00\x00\x22short"),
            ("c.m4a", b"\x00\x00\x00\x18ftypM4A \x00\x00\x00\x00"),
            ("d.ogg", b"OggS\x00\x02garbage"),
            ("e.wav", b"RIFF\xff\xff\xff\xffWAVEjunk"),
            ("f.opus", b""),
        ] {
            let path = dir.path().join(name);
            std::fs::write(&path, bytes).unwrap();
            // Either way: no panic, and an error says what went wrong.
            if let Err(e) = read(&path) {
                assert!(!e.to_string().is_empty(), "{name}");
            }
        }
    }
}
