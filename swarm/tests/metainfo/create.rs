//! Torrents we create: round trips, choices, and hashing the info bytes as found.

use sha1::{Digest, Sha1};
use swarm::metainfo::{
    Info, Metainfo, MetainfoError, PieceHasher, TorrentBuilder, hash_pieces, piece_length_for,
};

use crate::bencode::{self, bytes, dict, int, list, text};
use crate::fixtures::lcg_bytes;

#[test]
fn single_file_round_trip_keeps_every_field() {
    let data = lcg_bytes(5_000_000, 9);
    let builder = TorrentBuilder::single_file("Song – Ünïcode.mp3", data.len() as u64)
        .tracker("wss://tracker.example/announce")
        .web_seed("https://artist.example/music/song.mp3")
        .comment("first single")
        .created_by("fanswarm 0.1")
        .creation_date(1_763_000_000)
        .private(true);
    assert_eq!(
        builder.chosen_piece_length(),
        32 * 1024,
        "5 MB mp3 gets 32 KiB pieces"
    );
    let pieces = hash_pieces(&data, builder.chosen_piece_length()).unwrap();
    let built = builder.build(&pieces).unwrap();

    assert_eq!(built.info.name, "Song – Ünïcode.mp3");
    assert_eq!(built.info.total_length(), 5_000_000);
    assert_eq!(built.info.piece_count(), 153);
    assert_eq!(built.info.pieces, pieces);
    assert!(built.info.private);
    assert!(built.info.is_single_file());
    assert_eq!(
        built.announce.as_deref(),
        Some("wss://tracker.example/announce")
    );
    assert!(
        built.announce_list.is_empty(),
        "one tracker needs no announce-list"
    );
    assert_eq!(built.trackers(), ["wss://tracker.example/announce"]);
    assert_eq!(built.url_list, ["https://artist.example/music/song.mp3"]);
    assert_eq!(built.comment.as_deref(), Some("first single"));
    assert_eq!(built.created_by.as_deref(), Some("fanswarm 0.1"));
    assert_eq!(built.creation_date, Some(1_763_000_000));
    let digest: [u8; 20] = Sha1::digest(&built.info_bytes).into();
    assert_eq!(built.info_hash.0, digest);

    let bytes = built.to_bytes();
    let parsed = Metainfo::from_bytes(&bytes).unwrap();
    assert_eq!(parsed, built);
    assert_eq!(parsed.to_bytes(), bytes, "encoding is stable");
    assert_eq!(Info::from_bytes(&built.info_bytes).unwrap(), built.info);
}

#[test]
fn multi_file_round_trip_with_tiers() {
    let files = vec![
        (vec!["01 Intro.flac".to_owned()], 40_000),
        (vec!["bonus".to_owned(), "02 Demo.flac".to_owned()], 0),
        (vec!["bonus".to_owned(), "03 Live.flac".to_owned()], 70_001),
    ];
    let builder = TorrentBuilder::multi_file("Album", files)
        .tracker_tier(["wss://a.example".to_owned(), "wss://b.example".to_owned()])
        .tracker("wss://c.example")
        .tracker("wss://a.example")
        .web_seed("https://cdn.example/")
        .web_seed("https://mirror.example/")
        .piece_length(16 * 1024);
    let mut hasher = builder.hasher().unwrap();
    hasher.update(&lcg_bytes(110_001, 3));
    let built = builder.build(&hasher.finish()).unwrap();

    let layout: Vec<_> = built
        .info
        .files
        .iter()
        .map(|f| (f.path.join("/"), f.length, f.offset))
        .collect();
    assert_eq!(
        layout,
        [
            ("Album/01 Intro.flac".to_owned(), 40_000, 0),
            ("Album/bonus/02 Demo.flac".to_owned(), 0, 40_000),
            ("Album/bonus/03 Live.flac".to_owned(), 70_001, 40_000),
        ]
    );
    assert!(!built.info.is_single_file());
    assert_eq!(built.info.piece_count(), 7);
    assert_eq!(built.info.piece_size(6), 110_001 - 6 * 16384);
    assert_eq!(built.info.piece_offset(6), 6 * 16384);
    assert_eq!(built.announce.as_deref(), Some("wss://a.example"));
    assert_eq!(built.announce_list.len(), 3);
    assert_eq!(
        built.trackers(),
        ["wss://a.example", "wss://b.example", "wss://c.example"],
        "flattened and deduplicated"
    );
    assert_eq!(Metainfo::from_bytes(&built.to_bytes()).unwrap(), built);

    let magnet = built.magnet();
    assert_eq!(magnet.info_hash, built.info_hash);
    assert_eq!(magnet.display_name.as_deref(), Some("Album"));
    assert_eq!(magnet.trackers, built.trackers());
    assert_eq!(magnet.web_seeds, built.url_list);
    assert_eq!(magnet.exact_length, Some(110_001));
}

#[test]
fn builder_refuses_what_a_parser_would() {
    let wrong_count = TorrentBuilder::single_file("a", 40_000).piece_length(16384);
    assert_eq!(
        wrong_count.build(&[[0; 20]; 2]),
        Err(MetainfoError::PieceCountMismatch {
            expected: 3,
            found: 2
        })
    );
    let escaping = TorrentBuilder::multi_file("a", [(vec!["..".to_owned(), "x".to_owned()], 5)]);
    assert!(matches!(
        escaping.build(&[[0; 20]]),
        Err(MetainfoError::UnsafePathComponent { .. })
    ));
    let empty = TorrentBuilder::multi_file("a", Vec::new());
    assert_eq!(empty.build(&[]), Err(MetainfoError::BuilderNoFiles));
    assert!(PieceHasher::new(0).is_err());
    assert!(PieceHasher::new(128 * 1024 * 1024).is_err());
}

#[test]
fn info_hash_is_over_the_bytes_as_found_not_a_reencoding() {
    // An info dict with keys we do not model (`source`, a nested `x-extra`), inside a
    // torrent with unknown outer keys and a string-form url-list.
    let info = dict([
        ("length", int(20_000)),
        ("name", text("track.ogg")),
        ("piece length", int(16384)),
        ("pieces", bytes(&[7u8; 40])),
        ("source", text("somewhere")),
        ("x-extra", list([dict([("deep", list([int(-3)]))])])),
    ]);
    let file = dict([
        ("announce", text("wss://t.example/a")),
        ("info", info.clone()),
        ("nodes", list([list([text("router.example"), int(6881)])])),
        ("url-list", text("https://cdn.example/track.ogg")),
        ("zzz", int(1)),
    ]);
    let parsed = Metainfo::from_bytes(&file).unwrap();
    assert_eq!(parsed.info_bytes, info);
    let digest: [u8; 20] = Sha1::digest(&info).into();
    assert_eq!(parsed.info_hash.0, digest);
    assert_eq!(parsed.url_list, ["https://cdn.example/track.ogg"]);

    let reencoded = TorrentBuilder::single_file("track.ogg", 20_000)
        .piece_length(16384)
        .build(&parsed.info.pieces)
        .unwrap();
    assert_eq!(reencoded.info, parsed.info, "same modelled fields");
    assert_ne!(
        reencoded.info_hash, parsed.info_hash,
        "but other bytes, other swarm"
    );

    let again = Metainfo::from_bytes(&parsed.to_bytes()).unwrap();
    assert_eq!(again.info_bytes, info, "to_bytes keeps info verbatim");
    assert_eq!(again.info_hash, parsed.info_hash);
}

#[test]
fn utf8_name_variants_win_over_legacy_names() {
    let info = dict([
        (
            "files",
            list([dict([
                ("length", int(10)),
                ("path", list([bytes(b"caf\xe9.mp3")])),
                ("path.utf-8", bencode::path(&["café.mp3"])),
            ])]),
        ),
        ("name", bytes(b"\xe9t\xe9")),
        ("name.utf-8", text("été")),
        ("piece length", int(16384)),
        ("pieces", bytes(&[0; 20])),
    ]);
    let parsed = Metainfo::from_bytes(&bencode::torrent(info)).unwrap();
    assert_eq!(parsed.info.files[0].path, ["été", "café.mp3"]);
}

#[test]
fn piece_length_for_suits_tracks_and_grows_for_huge_inputs() {
    assert_eq!(piece_length_for(5_000_000), 32 * 1024);
    assert_eq!(piece_length_for(50_000_000), 256 * 1024);
    assert_eq!(piece_length_for(1), 16 * 1024);
    assert_eq!(piece_length_for(0), 16 * 1024);
    let mut previous = 0;
    let mut total = 1u64;
    while total <= 1 << 40 {
        let length = piece_length_for(total);
        let pieces = total.div_ceil(u64::from(length));
        assert!(length.is_power_of_two(), "{total}");
        assert!(length >= previous, "monotonic at {total}");
        assert!(length <= 16 << 20, "{total}");
        if total <= 250 << 20 {
            assert!(
                (16 << 10..=256 << 10).contains(&length),
                "track {total}: {length}"
            );
            assert!(pieces <= 1000, "track {total}: {pieces} pieces");
        }
        if (1 << 20..=50 << 20).contains(&total) {
            assert!(
                (20..=200).contains(&pieces),
                "track {total}: {pieces} pieces"
            );
        }
        previous = length;
        total = total * 5 / 4 + 1;
    }
}
