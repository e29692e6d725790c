//! One file of a multi-file torrent, played as a track of its own (a track
//! of an album: `/embed/<album>?file=N`, `load(audio, {torrent, file})`).
//!
//! The swarm is the album's: the session joins it whole, selects only the
//! file (`Node::select_files`) and tells the node where the element plays
//! within the file (`Node::set_file_playback`). The element sees the file
//! alone: its stream is the file's bytes, `[offset, offset + length)` of
//! the torrent's, typed by the file's own name. Pieces stay the torrent's
//! (a boundary piece holds the end of one file and the start of the next),
//! so what is kept per piece is kept per torrent, whichever file fetched it.

use std::ops::Range;

use swarm::metainfo::FileEntry;

use crate::stream;

/// The file a track plays, resolved against the torrent's file list.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileView {
    /// Index into the torrent's files.
    pub index: usize,
    /// Its first byte in the torrent's stream.
    pub offset: u64,
    /// Bytes in it.
    pub length: u64,
    /// Its own name (the last path component): title and MIME type.
    pub name: String,
}

/// Reads the `file` option (or the `file` attribute, a string): a file's
/// index, a whole number from 0. Anything else is an error that says what
/// is accepted.
pub fn parse_index(text: &str) -> Result<usize, String> {
    let digits = text.trim();
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return Err(format!(
            "file={text:?}: give the index of a file of the torrent, a whole number from 0"
        ));
    }
    digits
        .parse::<u32>()
        .map(|n| n as usize)
        .map_err(|_| format!("file={digits}: no torrent has that many files"))
}

/// The file `index` of a torrent whose files are `files`: `None` when it
/// is the whole torrent (file 0 of a single-file torrent plays as before),
/// an error naming the files there are when it does not exist.
pub fn choose(files: &[FileEntry], index: usize) -> Result<Option<FileView>, String> {
    if files.len() <= 1 {
        return match index {
            0 => Ok(None),
            _ => Err(format!(
                "file={index}: this torrent is a single track (only file=0)"
            )),
        };
    }
    let Some(entry) = files.get(index) else {
        return Err(format!(
            "file={index}: this album has {} files (file=0 to file={})",
            files.len(),
            files.len() - 1
        ));
    };
    Ok(Some(FileView {
        index,
        offset: entry.offset,
        length: entry.length,
        name: entry.path.last().cloned().unwrap_or_default(),
    }))
}

/// The file a track plays: `index` when the page named one (`file`, as
/// [`choose`]), else for a multi-file torrent its first audio file, one
/// whose name [`stream::mime_for`] types as audio and which holds bytes (a
/// foreign album may open with a cover, a `.nfo` or a `.cue`). A torrent
/// with no such file is an error naming its files: there is nothing an
/// element can play.
pub fn resolve(files: &[FileEntry], index: Option<usize>) -> Result<Option<FileView>, String> {
    match index {
        Some(index) => choose(files, index),
        None if files.len() <= 1 => Ok(None),
        None => choose(files, first_audio(files)?),
    }
}

/// How much of what a track plays is verified: what `track.stats()` says
/// of the file played (or of the whole torrent), so that its figures
/// agree with `pieces()` and `done`, not with the album around the file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Held {
    /// Of `total_pieces`, those verified.
    pub verified_pieces: u32,
    /// The pieces holding any of its bytes (boundary pieces included).
    pub total_pieces: u32,
    /// Its own bytes in verified pieces: a boundary piece counts only the
    /// part that is the file's, so this reaches its length exactly when it
    /// is complete.
    pub bytes: u64,
}

/// [`Held`] of the bytes `[offset, offset + length)` of a torrent of
/// `piece_length`-byte pieces, held in `pieces` (`Node::file_pieces`, or
/// every piece), of which those for which `verified` says so are in.
pub fn held(
    (offset, length): (u64, u64),
    piece_length: u32,
    pieces: Range<u32>,
    verified: impl Fn(u32) -> bool,
) -> Held {
    let end = offset.saturating_add(length);
    let size = u64::from(piece_length);
    let mut held = Held {
        verified_pieces: 0,
        total_pieces: pieces.len() as u32,
        bytes: 0,
    };
    for piece in pieces.filter(|&p| verified(p)) {
        let start = u64::from(piece).saturating_mul(size);
        let overlap = end
            .min(start.saturating_add(size))
            .saturating_sub(start.max(offset));
        held.verified_pieces += 1;
        held.bytes += overlap;
    }
    held
}

/// Which stream of the torrent whose info hash is `hex` the worker's key
/// names: `Some(None)` the whole torrent (`<hex>`), `Some(Some(n))` its
/// file `n` (`<hex>-<n>`), `None` another torrent's or no key of ours.
/// Whether file `n` exists is for [`choose`] to say.
pub fn stream_file(key: &str, hex: &str) -> Option<Option<usize>> {
    let rest = key.strip_prefix(hex)?;
    if rest.is_empty() {
        return Some(None);
    }
    let digits = rest.strip_prefix('-')?;
    parse_index(digits)
        .ok()
        .filter(|_| digits == digits.trim())
        .map(Some)
}

/// Whether an element can play `file`: it holds bytes and its name is
/// typed as audio ([`stream::mime_for`]). A cover, a `.cue` or a `.nfo`
/// of a foreign album is not.
pub fn playable(file: &FileEntry) -> bool {
    let name = file.path.last().map_or("", String::as_str);
    file.length > 0 && stream::mime_for(name).starts_with("audio/")
}

/// The index of the first file of `files` an element can play, or an
/// error naming the files (the first [`NAMES_SAID`] of them).
fn first_audio(files: &[FileEntry]) -> Result<usize, String> {
    let name = |f: &FileEntry| f.path.last().map_or("", String::as_str).to_owned();
    if let Some(index) = files.iter().position(playable) {
        return Ok(index);
    }
    let mut names: Vec<String> = files.iter().take(NAMES_SAID).map(name).collect();
    if files.len() > NAMES_SAID {
        names.push(format!("and {} more", files.len() - NAMES_SAID));
    }
    Err(format!(
        "no file of this torrent is audio a browser can play (mp3, ogg, opus, flac, m4a, \
         wav, webm): {}",
        names.join(", ")
    ))
}

/// How many file names an error lists before "and n more".
const NAMES_SAID: usize = 8;

/// How many seconds before a track's end the next file's first pieces
/// are fetched ahead (`Node::look_ahead`): enough for a web-seed round
/// trip or a few from fans, late enough that a listener who stops early
/// costs little.
pub const LOOK_AHEAD_SECS: u64 = 20;

/// Bytes of the next file fetched ahead: its first seconds, which the
/// next track starts from (kept pieces are imported by the next load).
pub const LOOK_AHEAD_BYTES: u64 = 512 * 1024;

/// Bytes from where an element made ready for the next file waits that
/// are fetched ahead with it (`Node::look_ahead_read`): an Ogg file's
/// last page, which browsers look for in the file's last 65,307 bytes.
pub const NEXT_READ_BYTES: u64 = 64 * 1024;

/// Whether a track whose element is at byte `played` of `length`, playing
/// `bytes_per_sec`, is near enough its end to fetch the next one's start.
/// Not while the rate is unknown (the element has no duration yet).
pub fn look_ahead_due(played: u64, length: u64, bytes_per_sec: Option<u64>) -> bool {
    let left = length.saturating_sub(played);
    bytes_per_sec.is_some_and(|rate| rate > 0 && left <= rate.saturating_mul(LOOK_AHEAD_SECS))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn album() -> Vec<FileEntry> {
        files_in("Album", &[("a.mp3", 100), ("b.ogg", 250), ("c.flac", 40)])
    }

    #[test]
    fn a_file_of_an_album_is_its_own_span_and_name() {
        let view = choose(&album(), 1).expect("in range").expect("a file");
        assert_eq!(
            view,
            FileView {
                index: 1,
                offset: 100,
                length: 250,
                name: "b.ogg".into()
            }
        );
    }

    #[test]
    fn bad_indexes_say_what_there_is() {
        let e = choose(&album(), 3).unwrap_err();
        assert!(e.contains("3 files (file=0 to file=2)"), "{e}");
        let single = vec![FileEntry {
            path: vec!["song.mp3".into()],
            length: 10,
            offset: 0,
        }];
        assert_eq!(choose(&single, 0), Ok(None), "the whole torrent");
        let e = choose(&single, 3).unwrap_err();
        assert!(e.contains("single track (only file=0)"), "{e}");
    }

    fn files(names: &[(&str, u64)]) -> Vec<FileEntry> {
        files_in("Foreign", names)
    }

    /// A torrent `folder`'s files `names` (name, bytes), in stream order.
    fn files_in(folder: &str, names: &[(&str, u64)]) -> Vec<FileEntry> {
        let mut offset = 0;
        names
            .iter()
            .map(|&(name, length)| {
                let entry = FileEntry {
                    path: vec![folder.into(), name.into()],
                    length,
                    offset,
                };
                offset += length;
                entry
            })
            .collect()
    }

    #[test]
    fn unsaid_an_album_plays_its_first_audio_file() {
        let album = files(&[
            ("cover.jpg", 5000),
            ("album.nfo", 300),
            ("album.cue", 200),
            ("empty.mp3", 0),
            ("1 Song.FLAC", 9000),
            ("2 Song.flac", 8000),
        ]);
        let view = resolve(&album, None).expect("playable").expect("a file");
        assert_eq!((view.index, view.name.as_str()), (4, "1 Song.FLAC"));
        assert_eq!(view.offset, 5500);
        // Named, a file is played as named, audio or not.
        assert_eq!(resolve(&album, Some(0)).unwrap().unwrap().index, 0);
        // A single-file torrent is the torrent, whatever its name.
        let single = files(&[("notes.txt", 10)]);
        assert_eq!(resolve(&single, None), Ok(None));
    }

    #[test]
    fn an_album_with_no_audio_is_an_error_naming_its_files() {
        let e = resolve(&files(&[("cover.jpg", 5), ("info.nfo", 3)]), None).unwrap_err();
        assert!(e.contains("no file of this torrent is audio"), "{e}");
        assert!(e.contains("cover.jpg, info.nfo"), "{e}");
        let many: Vec<(String, u64)> = (0..20).map(|i| (format!("scan{i}.png"), 1)).collect();
        let many: Vec<(&str, u64)> = many.iter().map(|(n, l)| (n.as_str(), *l)).collect();
        let e = resolve(&files(&many), None).unwrap_err();
        assert!(e.contains("scan7.png, and 12 more"), "{e}");
        assert!(!e.contains("scan8.png"), "{e}");
    }

    #[test]
    fn what_is_held_is_the_file_played_not_the_album() {
        // Pieces of 64 B; file 1 is bytes [100, 350): pieces 1 to 5, the
        // first and last shared with files 0 and 2.
        let album = album();
        let span = (album[1].offset, album[1].length);
        let have = |set: &'static [u32]| move |p: u32| set.contains(&p);
        let none = held(span, 64, 1..6, have(&[]));
        assert_eq!(
            (none.verified_pieces, none.total_pieces, none.bytes),
            (0, 5, 0)
        );
        // Pieces of files 0 and 2 alone (0, 6) are no part of it; of the
        // boundary pieces 1 and 5 only its own bytes count.
        let ends = held(span, 64, 1..6, have(&[0, 1, 5, 6]));
        assert_eq!(
            (ends.verified_pieces, ends.bytes),
            (2, (128 - 100) + (350 - 320))
        );
        let all = held(span, 64, 1..6, have(&[0, 1, 2, 3, 4, 5, 6]));
        assert_eq!(
            (all.verified_pieces, all.bytes),
            (5, 250),
            "its length, exactly"
        );
        // The whole torrent: 390 B, the last piece short.
        let whole = held((0, 390), 64, 0..7, |_| true);
        assert_eq!(
            (whole.verified_pieces, whole.total_pieces, whole.bytes),
            (7, 7, 390)
        );
        // Before a magnet's metadata: nothing, and no panic.
        assert_eq!(held((0, 0), 0, 0..0, |_| true).total_pieces, 0);
    }

    #[test]
    fn the_next_track_is_fetched_ahead_near_the_end_only() {
        let rate = Some(40_000);
        // A 3-minute track: not at its start, yes in its last 20 s.
        assert!(!look_ahead_due(0, 7_200_000, rate));
        assert!(!look_ahead_due(6_000_000, 7_200_000, rate));
        assert!(look_ahead_due(6_400_000, 7_200_000, rate));
        assert!(look_ahead_due(7_200_000, 7_200_000, rate));
        // A track shorter than that: at once.
        assert!(look_ahead_due(0, 120_000, rate));
        // Not while the rate is unknown.
        assert!(!look_ahead_due(7_100_000, 7_200_000, None));
        assert!(!look_ahead_due(7_100_000, 7_200_000, Some(0)));
    }

    #[test]
    fn a_stream_key_names_the_torrent_or_one_of_its_files() {
        let hex = "ab12";
        assert_eq!(stream_file("ab12", hex), Some(None));
        assert_eq!(stream_file("ab12-0", hex), Some(Some(0)));
        assert_eq!(stream_file("ab12-2", hex), Some(Some(2)));
        for other in [
            "cd34-1", "ab1", "ab12-", "ab12-x", "ab12-1-2", "ab12- 1", "ab12+1",
        ] {
            assert_eq!(stream_file(other, hex), None, "{other}");
        }
    }

    #[test]
    fn an_index_is_a_whole_number() {
        assert_eq!(parse_index("1"), Ok(1));
        assert_eq!(parse_index(" 12 "), Ok(12));
        for bad in ["", "x", "-1", "1.5", "1e3", "0x1"] {
            let e = parse_index(bad).unwrap_err();
            assert!(e.contains("a whole number from 0"), "{bad}: {e}");
        }
        assert!(parse_index("99999999999999999999").is_err());
    }
}
