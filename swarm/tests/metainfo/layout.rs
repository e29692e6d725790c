//! Pieces to file runs, web seed URLs, metadata from a magnet, and hasher edge cases.

use swarm::magnet::Magnet;
use swarm::metainfo::{FileSlice, Metainfo, MetainfoError, PieceHasher, TorrentBuilder};

fn album() -> Metainfo {
    // 16 KiB pieces over files of 20 000, 0, 12 768 and 1 bytes: 32 769 bytes, 3 pieces.
    let files = [
        (vec!["01 Intro.mp3".to_owned()], 20_000),
        (vec!["empty".to_owned()], 0),
        (
            vec!["bonus".to_owned(), "02 Ünï #1?.mp3".to_owned()],
            12_768,
        ),
        (vec!["z".to_owned()], 1),
    ];
    TorrentBuilder::multi_file("My Album", files)
        .piece_length(16384)
        .tracker("wss://a.example")
        .tracker("wss://b.example")
        .web_seed("https://cdn.example/m")
        .build(&[[1; 20], [2; 20], [3; 20]])
        .unwrap()
}

fn slice(file: usize, offset: u64, length: u64) -> FileSlice {
    FileSlice {
        file,
        offset,
        length,
    }
}

#[test]
fn pieces_map_onto_the_files_they_span() {
    let info = album().info;
    assert_eq!(info.piece_file_slices(0), [slice(0, 0, 16384)]);
    assert_eq!(
        info.piece_file_slices(1),
        [slice(0, 16384, 3616), slice(2, 0, 12768)],
        "the empty file is skipped"
    );
    assert_eq!(info.piece_file_slices(2), [slice(3, 0, 1)]);
    assert_eq!(info.piece_file_slices(3), []);
    assert_eq!(
        info.file_slices(19_999, 2),
        [slice(0, 19_999, 1), slice(2, 0, 1)]
    );
    assert_eq!(
        info.file_slices(32_768, 100),
        [slice(3, 0, 1)],
        "clamped to the stream"
    );
    assert_eq!(info.file_slices(40_000, 10), []);
    assert_eq!(info.file_slices(u64::MAX, u64::MAX), []);
    let covered: u64 = (0..3)
        .flat_map(|p| info.piece_file_slices(p))
        .map(|s| s.length)
        .sum();
    assert_eq!(covered, info.total_length());
}

#[test]
fn web_seed_urls_follow_bep_19() {
    let info = album().info;
    assert_eq!(
        info.web_seed_url("https://cdn.example/m", 2).unwrap(),
        "https://cdn.example/m/My%20Album/bonus/02%20%C3%9Cn%C3%AF%20%231%3F.mp3"
    );
    assert_eq!(
        info.web_seed_url("https://cdn.example/m/", 0).unwrap(),
        "https://cdn.example/m/My%20Album/01%20Intro.mp3"
    );
    assert_eq!(info.web_seed_url("https://cdn.example/m/", 4), None);

    let single = TorrentBuilder::single_file("a track.mp3", 5)
        .build(&[[0; 20]])
        .unwrap()
        .info;
    assert_eq!(
        single.web_seed_url("https://cdn.example/x.mp3", 0).unwrap(),
        "https://cdn.example/x.mp3"
    );
    assert_eq!(
        single
            .web_seed_url("https://cdn.example/music/", 0)
            .unwrap(),
        "https://cdn.example/music/a%20track.mp3"
    );
}

#[test]
fn metadata_from_a_magnet_must_hash_to_it() {
    let original = album();
    let magnet = Magnet::parse(&original.magnet().to_string()).unwrap();
    let fetched = Metainfo::from_magnet(&magnet, &original.info_bytes).unwrap();
    assert_eq!(fetched.info, original.info);
    assert_eq!(fetched.info_hash, original.info_hash);
    assert_eq!(fetched.trackers(), original.trackers());
    assert_eq!(fetched.url_list, original.url_list);

    let mut forged = original.info_bytes.clone();
    let last_hash_byte = forged.len() - 3;
    forged[last_hash_byte] ^= 1;
    assert!(matches!(
        Metainfo::from_magnet(&magnet, &forged),
        Err(MetainfoError::InfoHashMismatch { expected, .. }) if expected == original.info_hash
    ));
}

#[test]
fn hasher_edges_empty_and_exact_multiples() {
    assert_eq!(
        PieceHasher::new(4).unwrap().finish(),
        Vec::<[u8; 20]>::new()
    );
    let mut exact = PieceHasher::new(4).unwrap();
    exact.update(b"abcdefgh");
    exact.update(b"");
    assert_eq!(exact.bytes_hashed(), 8);
    let pieces = exact.finish();
    assert_eq!(pieces.len(), 2, "no empty trailing piece");
    let mut short = PieceHasher::new(4).unwrap();
    short.update(b"abcdefghi");
    let with_tail = short.finish();
    assert_eq!(with_tail.len(), 3);
    assert_eq!(with_tail[..2], pieces[..]);
}
