//! Files of a multi-file torrent (an album): which ones to fetch, where
//! the player is inside one, and whether the chosen ones are complete.
//!
//! The engine knows only pieces; here a file index becomes the pieces that
//! hold any of its bytes (`Info::file_pieces`: the pieces it shares with
//! its neighbours included) and a position in a file becomes one in the
//! torrent's stream. Every call checks the index: an unknown file is a
//! [`FileError`], never a panic. Without a selection every piece is wanted,
//! as for a single-file torrent.

use std::ops::Range;

use super::Node;
use crate::metainfo::{FileEntry, Info};
use crate::picker::Playback;
use crate::time::Time;

/// Why a call about a file was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FileError {
    /// No such file in the torrent.
    #[error("no file {index}: the torrent has {files} file(s), numbered from 0")]
    OutOfRange {
        /// The index asked for.
        index: usize,
        /// Files in the torrent.
        files: usize,
    },
    /// Joined by a bare magnet and the file list has not arrived yet.
    #[error("the torrent's file list is not known yet (metadata still coming)")]
    NoMetadata,
}

/// What the node fetches of a multi-file torrent.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(super) struct Selection {
    /// The files chosen; `None` is every piece.
    files: Option<Vec<usize>>,
    /// The next file's first bytes, fetched at low priority: (file, bytes).
    look_ahead: Option<(usize, u64)>,
    /// Bytes of files to come that a player made ready for them reads
    /// before it plays: (file, bytes of it), due at the file's start.
    reads: Vec<(usize, Range<u64>)>,
}

/// Byte ranges [`Node::look_ahead_read`] takes at most per look-ahead.
pub const MAX_READS: usize = 8;

/// A file this small may have twice as many ranges read early
/// ([`Node::look_ahead_read`]): Firefox reads a small file through to its
/// end (rather than seeking to an Ogg file's last page) before it plays,
/// so a short track made ready needs all of it, and all of it is little.
pub const SMALL_FILE: u64 = 1024 * 1024;

impl Node {
    /// The torrent's files in stream order (path with the torrent's name
    /// first, length, offset in the stream); `None` before the metadata.
    pub fn files(&self) -> Option<&[FileEntry]> {
        self.meta.as_ref().map(|m| m.info.files.as_slice())
    }

    /// Fetch only the pieces of `files` (by index into [`Node::files`]),
    /// boundary pieces included; any piece had is still served. Replaces
    /// the previous selection and drops the look-ahead. An empty list
    /// fetches nothing.
    pub fn select_files(&mut self, now: Time, files: &[usize]) -> Result<(), FileError> {
        let info = self.info()?;
        for &index in files {
            check(info, index)?;
        }
        self.now = now;
        let mut chosen = files.to_vec();
        chosen.sort_unstable();
        chosen.dedup();
        self.selection = Selection {
            files: Some(chosen),
            look_ahead: None,
            reads: Vec::new(),
        };
        self.apply_selection(now);
        Ok(())
    }

    /// Fetch every piece again (the default).
    pub fn select_all_files(&mut self, now: Time) {
        self.now = now;
        self.selection = Selection::default();
        if let Some(torrent) = self.torrent.torrent_mut() {
            torrent.want_all(now);
        }
        self.pump();
    }

    /// Also fetch the pieces holding the first `bytes` of `file`, below
    /// every selected piece: what a gapless player asks for the next track
    /// near the end of the current one. `bytes` 0 takes the look-ahead
    /// back; more than the file is the whole file. Without a selection
    /// every piece is fetched anyway and this only records it.
    pub fn look_ahead(&mut self, now: Time, file: usize, bytes: u64) -> Result<(), FileError> {
        check(self.info()?, file)?;
        self.now = now;
        self.selection.look_ahead = (bytes > 0).then_some((file, bytes));
        if bytes == 0 {
            self.selection.reads.clear();
        }
        self.apply_selection(now);
        Ok(())
    }

    /// A player made ready for `file` (the next track, see
    /// [`Node::look_ahead`]) waits on `bytes` of it before it can play: a
    /// browser reads an Ogg file's last page for its duration, far past
    /// the look-ahead. The pieces holding them are fetched with the
    /// look-ahead and due when the stream reaches the file's start, not at
    /// their own place in it, so from the web seed alone they come before
    /// the playing file ends. Kept until the selection changes or the
    /// look-ahead is taken back. At most [`MAX_READS`] ranges (twice that
    /// for a file of at most [`SMALL_FILE`] bytes): a range starting
    /// inside one already asked for, or any past that, asks for nothing
    /// (so a player preloading the whole file gets its first ranges early,
    /// not the file); bytes are clipped to the file.
    pub fn look_ahead_read(
        &mut self,
        now: Time,
        file: usize,
        bytes: Range<u64>,
    ) -> Result<(), FileError> {
        let entry = check(self.info()?, file)?;
        let bytes = bytes.start.min(entry.length)..bytes.end.min(entry.length);
        let known = |(f, r): &(usize, Range<u64>)| *f == file && r.contains(&bytes.start);
        let most = if entry.length <= SMALL_FILE {
            2 * MAX_READS
        } else {
            MAX_READS
        };
        if bytes.is_empty()
            || self.selection.reads.len() >= most
            || self.selection.reads.iter().any(known)
        {
            return Ok(());
        }
        self.now = now;
        self.selection.reads.push((file, bytes));
        self.apply_selection(now);
        Ok(())
    }

    /// The player is at `playback.offset` bytes into `file` (or stopped:
    /// `None`); pieces due soon become urgent as [`Node::set_playback`]
    /// says, counted in the torrent's stream. An offset past the file's end
    /// is its end. Only wanted pieces are fetched: with a selection, select
    /// the file first (and [`Node::look_ahead`] the next one near its end).
    pub fn set_file_playback(
        &mut self,
        now: Time,
        file: usize,
        playback: Option<Playback>,
    ) -> Result<(), FileError> {
        let entry = check(self.info()?, file)?;
        let stream = playback.map(|pb| Playback {
            offset: entry.offset + pb.offset.min(entry.length),
            bytes_per_sec: pb.bytes_per_sec,
        });
        self.set_playback(now, stream);
        Ok(())
    }

    /// The pieces holding any byte of `file` (empty for a zero-length one).
    pub fn file_pieces(&self, file: usize) -> Result<Range<u32>, FileError> {
        let info = self.info()?;
        check(info, file)?;
        info.file_pieces(file).ok_or(FileError::OutOfRange {
            index: file,
            files: info.files.len(),
        })
    }

    /// Whether every piece of `file` is verified (a zero-length file
    /// always is).
    pub fn file_complete(&self, file: usize) -> Result<bool, FileError> {
        let pieces = self.file_pieces(file)?;
        let Some(torrent) = self.torrent.torrent() else {
            return Ok(pieces.is_empty());
        };
        Ok(pieces.into_iter().all(|p| torrent.have().has(p)))
    }

    /// Whether every selected file (every piece, without a selection) is
    /// verified; the look-ahead does not count.
    pub fn selection_complete(&self) -> bool {
        match &self.selection.files {
            None => self.is_complete(),
            Some(files) => files
                .iter()
                .all(|&f| self.file_complete(f).unwrap_or(false)),
        }
    }

    /// The byte ranges of coming files read early ([`Node::look_ahead_read`]).
    #[cfg(test)]
    pub(super) fn early_reads(&self) -> &[(usize, Range<u64>)] {
        &self.selection.reads
    }

    /// The files selected; `None` for every piece.
    pub fn selected_files(&self) -> Option<&[usize]> {
        self.selection.files.as_deref()
    }

    fn info(&self) -> Result<&Info, FileError> {
        self.meta
            .as_ref()
            .map(|m| &m.info)
            .ok_or(FileError::NoMetadata)
    }

    /// Tells the engine the pieces of the selection and the look-ahead.
    fn apply_selection(&mut self, now: Time) {
        let Some(info) = self.meta.as_ref().map(|m| &m.info) else {
            return;
        };
        let Some(files) = &self.selection.files else {
            return;
        };
        let wanted: Vec<Range<u32>> = files.iter().filter_map(|&f| info.file_pieces(f)).collect();
        let look_ahead: Vec<Range<u32>> = self
            .selection
            .look_ahead
            .and_then(|(file, bytes)| {
                let entry = info.files.get(file)?;
                let head = bytes.min(entry.length);
                let length = u64::from(info.piece_length);
                let first = u32::try_from(entry.offset / length).ok()?;
                let last = u32::try_from((entry.offset + head).checked_sub(1)? / length).ok()?;
                (head > 0).then_some(first..last + 1)
            })
            .into_iter()
            .collect();
        let length = u64::from(info.piece_length);
        let due_by: Vec<(Range<u32>, u64)> = self
            .selection
            .reads
            .iter()
            .filter_map(|(file, bytes)| {
                let entry = info.files.get(*file)?;
                let first = u32::try_from((entry.offset + bytes.start) / length).ok()?;
                let last = u32::try_from((entry.offset + bytes.end - 1) / length).ok()?;
                Some((first..last + 1, entry.offset))
            })
            .collect();
        if let Some(torrent) = self.torrent.torrent_mut() {
            torrent.set_wanted(now, &wanted, &look_ahead, &due_by);
        }
        self.pump();
    }
}

/// `index`'s entry, or why there is none.
fn check(info: &Info, index: usize) -> Result<&FileEntry, FileError> {
    info.files.get(index).ok_or(FileError::OutOfRange {
        index,
        files: info.files.len(),
    })
}
