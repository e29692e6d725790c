//! Where bytes of the torrent's stream live: which files a piece spans, and
//! the BEP 19 web seed URL of each file.
//!
//! Storage writes a verified piece file by file; the web seed asks the origin
//! for a piece with one HTTP Range request per file it spans.

use std::ops::Range;

use percent_encoding::{AsciiSet, CONTROLS, utf8_percent_encode};

use super::Info;

/// A run of bytes inside one file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FileSlice {
    /// Index into [`Info::files`].
    pub file: usize,
    /// Offset of the run inside that file.
    pub offset: u64,
    /// Bytes in the run (never 0).
    pub length: u64,
}

impl Info {
    /// The file runs holding stream bytes `start .. start + length`, in order.
    ///
    /// Empty files are skipped; the part of the range past the end of the
    /// stream is ignored, so an out-of-range request yields no slices.
    pub fn file_slices(&self, start: u64, length: u64) -> Vec<FileSlice> {
        let end = start.saturating_add(length).min(self.total_length());
        // The first file whose end lies past `start`: files are sorted by offset.
        let first = self
            .files
            .partition_point(|file| file.offset.saturating_add(file.length) <= start);
        let mut slices = Vec::new();
        for (index, file) in self.files.iter().enumerate().skip(first) {
            if file.offset >= end {
                break;
            }
            let from = start.max(file.offset);
            let to = end.min(file.offset.saturating_add(file.length));
            if to > from {
                slices.push(FileSlice {
                    file: index,
                    offset: from - file.offset,
                    length: to - from,
                });
            }
        }
        slices
    }

    /// The file runs holding `piece`; empty for an out-of-range index.
    pub fn piece_file_slices(&self, piece: u32) -> Vec<FileSlice> {
        self.file_slices(self.piece_offset(piece), u64::from(self.piece_size(piece)))
    }

    /// The pieces holding any byte of file `file` (the pieces it shares
    /// with its neighbours included), `None` for an out-of-range index. A
    /// zero-length file holds no piece: an empty range.
    pub fn file_pieces(&self, file: usize) -> Option<Range<u32>> {
        let entry = self.files.get(file)?;
        let length = u64::from(self.piece_length);
        let first = entry.offset / length;
        if entry.length == 0 {
            let at = u32::try_from(first).unwrap_or(u32::MAX);
            return Some(at..at);
        }
        let last = (entry.offset + entry.length - 1) / length;
        let clip = |p: u64| u32::try_from(p).unwrap_or(u32::MAX).min(self.piece_count());
        Some(clip(first)..clip(last + 1))
    }

    /// The URL a BEP 19 web seed serves file `file` at, `None` for an out-of-range index.
    ///
    /// Single-file: `base` itself, or `base` + name when `base` ends in `/`.
    /// Multi-file: `base` + `/` (if missing) + name + `/` + path, each component
    /// percent-encoded.
    pub fn web_seed_url(&self, base: &str, file: usize) -> Option<String> {
        let entry = self.files.get(file)?;
        if self.is_single_file() && !base.ends_with('/') {
            return Some(base.to_owned());
        }
        let mut url = base.to_owned();
        for component in &entry.path {
            if !url.ends_with('/') {
                url.push('/');
            }
            url.extend(utf8_percent_encode(component, PATH_COMPONENT));
        }
        Some(url)
    }
}

/// Bytes that cannot stand literally in a URL path segment.
const PATH_COMPONENT: &AsciiSet = &CONTROLS
    .add(b' ')
    .add(b'"')
    .add(b'#')
    .add(b'%')
    .add(b'/')
    .add(b'<')
    .add(b'>')
    .add(b'?')
    .add(b'[')
    .add(b'\\')
    .add(b']')
    .add(b'^')
    .add(b'`')
    .add(b'{')
    .add(b'|')
    .add(b'}');
