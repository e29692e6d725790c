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

use swarm::metainfo::FileEntry;

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
        let mut offset = 0;
        [("a.mp3", 100u64), ("b.ogg", 250), ("c.flac", 40)]
            .into_iter()
            .map(|(name, length)| {
                let entry = FileEntry {
                    path: vec!["Album".into(), name.into()],
                    length,
                    offset,
                };
                offset += length;
                entry
            })
            .collect()
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
