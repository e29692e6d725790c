//! An album (a multi-file torrent) through the node: web-seed ranges split
//! at file boundaries, one file selected, playback in a file's own bytes,
//! the next file's look-ahead, and indexes that do not exist.
#![allow(clippy::unwrap_used)]

use super::files::{MAX_READS, SMALL_FILE};
use super::*;
use crate::metainfo::TorrentBuilder;

const PIECE: u32 = 16 * 1024;
const BASE: &str = "http://origin.invalid/media/";

/// Files in stream order: two tracks share piece 2, with an empty file
/// between them; the second and third share piece 5.
const FILES: [(&str, u64); 4] = [
    ("01 a.wav", 40_960),
    ("empty", 0),
    ("02 b.wav", 50_000),
    ("03 c#.wav", 30_000),
];

fn content() -> Vec<u8> {
    let total: u64 = FILES.iter().map(|(_, l)| l).sum();
    (0..total as usize).map(|i| (i * 31 % 253) as u8).collect()
}

fn album() -> Metainfo {
    let data = content();
    let hashes = crate::metainfo::hash_pieces(&data, PIECE).unwrap();
    TorrentBuilder::multi_file(
        "My Album",
        FILES.iter().map(|(n, l)| (vec![n.to_string()], *l)),
    )
    .piece_length(PIECE)
    .tracker("ws://tracker.invalid/announce")
    .web_seed(BASE)
    .build(&hashes)
    .unwrap()
}

/// A listener alone with the web seed (no peers will come).
fn node() -> Node {
    node_with(Config::default())
}

/// [`node`] with the engine's `config`.
fn node_with(engine: Config) -> Node {
    let mut n = Node::new(
        NodeConfig {
            offer_grace: Duration::ZERO,
            engine,
            ..NodeConfig::default()
        },
        Source::Torrent(Box::new(album())),
        vec![],
        PeerId::generate([5; 12]),
        7,
        Time(0),
    )
    .unwrap();
    drain(&mut n);
    n
}

fn drain(node: &mut Node) -> Vec<Output> {
    let mut out = Vec::new();
    loop {
        match node.poll() {
            Output::Timeout(_) => return out,
            o => out.push(o),
        }
    }
}

fn http_gets(out: &[Output]) -> Vec<(HttpId, RangeRequest)> {
    out.iter()
        .filter_map(|o| match o {
            Output::HttpGet { id, request } => Some((*id, request.clone())),
            _ => None,
        })
        .collect()
}

/// The bytes a BEP 19 server holds at `url`.
fn file_at(url: &str) -> Vec<u8> {
    let data = content();
    let path = percent_encoding::percent_decode_str(url)
        .decode_utf8()
        .unwrap();
    let mut offset = 0usize;
    for (name, length) in FILES {
        if path == format!("{BASE}My Album/{name}") {
            return data[offset..offset + length as usize].to_vec();
        }
        offset += length as usize;
    }
    panic!("no file at {url}");
}

/// Answers every request as a BEP 19 server would until the selection is
/// complete or `until`; returns the requests, in order.
fn serve(n: &mut Node, mut at: u64, until: u64) -> Vec<RangeRequest> {
    let mut asked = Vec::new();
    let mut pending = http_gets(&drain(n));
    while at < until && !n.selection_complete() {
        while let Some((id, request)) = pending.pop() {
            let file = file_at(&request.url);
            asked.push(request.clone());
            n.http_data(
                Time(at),
                id,
                &file[request.start as usize..=request.end as usize],
            );
            n.http_end(Time(at), id);
            pending.extend(http_gets(&drain(n)));
        }
        at += 250;
        n.handle_timeout(Time(at));
        pending.extend(http_gets(&drain(n)));
    }
    asked
}

fn had(n: &Node) -> Vec<u32> {
    n.torrent().torrent().unwrap().have().ones().collect()
}

#[test]
fn file_pieces_include_the_boundary_pieces_and_an_empty_file_has_none() {
    let n = node();
    assert_eq!(n.file_pieces(0), Ok(0..3));
    assert_eq!(n.file_pieces(1), Ok(2..2), "zero-length");
    assert_eq!(n.file_pieces(2), Ok(2..6), "shares 2 and 5");
    assert_eq!(n.file_pieces(3), Ok(5..8));
    assert_eq!(n.file_complete(1), Ok(true));
    assert_eq!(n.files().unwrap()[2].path, ["My Album", "02 b.wav"]);
}

#[test]
fn a_run_across_files_is_one_range_request_per_file_joined_in_order() {
    let mut n = node();
    n.select_files(Time(1), &[2]).unwrap();
    drain(&mut n);
    // Playing the second track from its start, a piece a second: its
    // pieces are urgent, the first of them begins in the first track.
    n.set_file_playback(
        Time(2),
        2,
        Some(Playback {
            offset: 0,
            bytes_per_sec: Some(u64::from(PIECE)),
        }),
    )
    .unwrap();
    let gets = http_gets(&drain(&mut n));
    assert_eq!(gets.len(), 1, "one fetch of pieces 2..=5: {gets:?}");
    let (first, request) = gets[0].clone();
    assert_eq!(request.url, format!("{BASE}My%20Album/01%20a.wav"));
    assert_eq!(
        (request.start, request.end),
        (32_768, 40_959),
        "piece 2's head"
    );
    let a = file_at(&request.url);
    n.http_data(Time(3), first, &a[32_768..]);
    n.http_end(Time(3), first);
    let next = http_gets(&drain(&mut n));
    let (second, request) = next[0].clone();
    assert_eq!(request.url, format!("{BASE}My%20Album/02%20b.wav"));
    assert_eq!(
        (request.start, request.end),
        (0, 49_999),
        "the empty file is skipped"
    );
    let b = file_at(&request.url);
    n.http_data(Time(4), second, &b);
    n.http_end(Time(4), second);
    let next = http_gets(&drain(&mut n));
    let (third, request) = next[0].clone();
    assert_eq!(request.url, format!("{BASE}My%20Album/03%20c%23.wav"));
    assert_eq!(
        (request.start, request.end),
        (0, 98_304 - 90_960 - 1),
        "piece 5's tail"
    );
    let c = file_at(&request.url);
    n.http_data(Time(5), third, &c[..=request.end as usize]);
    n.http_end(Time(5), third);
    drain(&mut n);
    assert_eq!(had(&n), vec![2, 3, 4, 5], "joined bodies verify");
    assert_eq!(n.file_complete(2), Ok(true));
    assert!(n.selection_complete() && !n.is_complete());
}

#[test]
fn one_selected_file_fetches_only_its_pieces_then_stops() {
    let mut n = node();
    n.select_files(Time(1), &[2]).unwrap();
    let asked = serve(&mut n, 10, 60_000);
    assert!(n.selection_complete(), "the lone get fetches orphans");
    assert_eq!(had(&n), vec![2, 3, 4, 5]);
    assert_eq!(
        (n.file_complete(0), n.file_complete(3)),
        (Ok(false), Ok(false))
    );
    // Only the head of piece 2 and the tail of piece 5 came from the
    // neighbours' files.
    for r in &asked {
        if r.url.ends_with("01%20a.wav") {
            assert!(r.start >= 32_768, "{r:?}");
        }
        if r.url.ends_with("03%20c%23.wav") {
            assert!(r.end < 98_304 - 90_960, "{r:?}");
        }
    }
    let stats = n.stats().engine;
    assert_eq!(stats.from_web_seed, 4 * u64::from(PIECE));
    // Nothing more is asked once the selection is in.
    n.handle_timeout(Time(70_000));
    assert!(http_gets(&drain(&mut n)).is_empty());
    // Selecting everything fetches the rest.
    n.select_all_files(Time(70_001));
    serve(&mut n, 70_010, 140_000);
    assert!(n.is_complete());
}

#[test]
fn the_look_ahead_fetches_the_next_files_head_and_no_more() {
    let mut n = node();
    n.select_files(Time(1), &[0]).unwrap();
    // 20,000 bytes of the second track: pieces 2 and 3 (2 is shared).
    n.look_ahead(Time(2), 2, 20_000).unwrap();
    serve(&mut n, 10, 60_000);
    assert!(n.selection_complete());
    let mut at = 60_000;
    while had(&n) != vec![0, 1, 2, 3] && at < 120_000 {
        serve_more(&mut n, &mut at);
    }
    assert_eq!(had(&n), vec![0, 1, 2, 3]);
    // A new selection drops the look-ahead; 0 bytes takes it back too.
    n.look_ahead(Time(at), 2, 0).unwrap();
    assert_eq!(n.selected_files(), Some(&[0][..]));
}

/// Near the end of a track, a listener (web seed only while it plays)
/// made ready for the next waits on that file's last bytes: they are due
/// when the stream reaches the file's start, so they are fetched before
/// the playing file ends, though their own place in the stream is far
/// enough away that they would not be yet.
#[test]
fn bytes_a_next_player_reads_are_due_at_its_files_start() {
    let mut n = node_with(Config {
        web_seed_needs_playback: true,
        ..Config::default()
    });
    n.select_files(Time(1), &[2]).unwrap();
    // File 2 (pieces 2..=5, 50,000 B at 4,000 B/s) has 2.5 s left, in
    // piece 4; file 3 (pieces 5..=7) is next, all of it looked ahead.
    let near_the_end = Playback {
        offset: 40_000,
        bytes_per_sec: Some(4_000),
    };
    n.set_file_playback(Time(2), 2, Some(near_the_end)).unwrap();
    n.look_ahead(Time(3), 3, 30_000).unwrap();
    let mut at = 10;
    while at < 3_000 {
        serve_more(&mut n, &mut at);
    }
    // Pieces 2 and 3 are behind the playhead; 7 is due in 8.4 s.
    assert_eq!(had(&n), vec![4, 5, 6], "what is due within 6 s");
    // A player of file 3 waits on its last bytes (piece 7).
    n.look_ahead_read(Time(at), 3, 29_000..u64::MAX).unwrap();
    let asked = {
        let mut asked = Vec::new();
        let until = at + 1_000;
        while at < until {
            at += 250;
            n.handle_timeout(Time(at));
            for (id, request) in http_gets(&drain(&mut n)) {
                let file = file_at(&request.url);
                n.http_data(
                    Time(at),
                    id,
                    &file[request.start as usize..=request.end as usize],
                );
                n.http_end(Time(at), id);
                asked.push(request);
            }
        }
        asked
    };
    assert_eq!(had(&n), vec![4, 5, 6, 7], "due at file 3's start, in 2.5 s");
    assert_eq!(asked.len(), 1, "{asked:?}");
    assert!(asked[0].url.ends_with("03%20c%23.wav"), "{asked:?}");
    assert_eq!((asked[0].start, asked[0].end), (23_728, 29_999));
    // Taking the look-ahead back drops the wait; bad indexes are errors.
    n.look_ahead(Time(at), 3, 0).unwrap();
    assert!(n.early_reads().is_empty());
    assert_eq!(
        n.look_ahead_read(Time(at), 9, 0..1),
        Err(FileError::OutOfRange { index: 9, files: 4 })
    );
    n.look_ahead_read(Time(at), 3, 40_000..50_000).unwrap();
}

fn serve_more(n: &mut Node, at: &mut u64) {
    *at += 250;
    n.handle_timeout(Time(*at));
    for (id, request) in http_gets(&drain(n)) {
        let file = file_at(&request.url);
        n.http_data(
            Time(*at),
            id,
            &file[request.start as usize..=request.end as usize],
        );
        n.http_end(Time(*at), id);
    }
}

#[test]
fn unknown_files_are_errors_and_an_empty_selection_is_done_at_once() {
    let mut n = node();
    let out_of_range = FileError::OutOfRange { index: 4, files: 4 };
    assert_eq!(n.select_files(Time(1), &[0, 4]), Err(out_of_range.clone()));
    assert_eq!(
        n.selected_files(),
        None,
        "a refused selection changes nothing"
    );
    assert_eq!(n.look_ahead(Time(1), 4, 10), Err(out_of_range.clone()));
    assert_eq!(
        n.set_file_playback(Time(1), 4, None),
        Err(out_of_range.clone())
    );
    assert_eq!(n.file_pieces(4), Err(out_of_range.clone()));
    assert_eq!(
        n.file_complete(usize::MAX),
        Err(FileError::OutOfRange {
            index: usize::MAX,
            files: 4
        })
    );
    assert_eq!(
        out_of_range.to_string(),
        "no file 4: the torrent has 4 file(s), numbered from 0"
    );
    // The empty file alone: nothing to fetch, complete at once.
    n.select_files(Time(2), &[1]).unwrap();
    assert!(n.selection_complete());
    n.handle_timeout(Time(5_000));
    assert!(http_gets(&drain(&mut n)).is_empty());
    // A position past the end of a file is its end.
    n.set_file_playback(
        Time(6_000),
        0,
        Some(Playback {
            offset: u64::MAX,
            bytes_per_sec: None,
        }),
    )
    .unwrap();
    // Before the metadata of a magnet there are no files to name.
    let magnet = album().magnet();
    let m = Node::new(
        NodeConfig::default(),
        Source::Magnet(magnet),
        vec![],
        PeerId::generate([6; 12]),
        8,
        Time(0),
    )
    .unwrap();
    assert_eq!(m.file_pieces(0), Err(FileError::NoMetadata));
}

/// The early reads are bounded: a range starting inside one asked for
/// adds nothing, and a file takes at most `MAX_READS` ranges, twice that
/// when it is small (all of a short track, which Firefox reads through).
#[test]
fn early_reads_are_bounded_per_look_ahead() {
    let mut n = node();
    n.select_files(Time(1), &[0]).unwrap();
    n.look_ahead(Time(2), 2, 1_000).unwrap();
    n.look_ahead_read(Time(3), 2, 100..1_100).unwrap();
    n.look_ahead_read(Time(3), 2, 500..1_500).unwrap();
    assert_eq!(n.early_reads(), [(2, 100..1_100)]);
    for start in 1..40u64 {
        n.look_ahead_read(Time(4), 2, start * 1_000 + 200..start * 1_000 + 300)
            .unwrap();
    }
    // File 2 (50,000 B) is small: 16 ranges.
    assert_eq!(n.early_reads().len(), 2 * MAX_READS);
    assert!(FILES[2].1 <= SMALL_FILE);
    // Past the end of the file: nothing.
    n.select_files(Time(5), &[0]).unwrap();
    n.look_ahead_read(Time(6), 2, 60_000..70_000).unwrap();
    assert!(n.early_reads().is_empty());
}
