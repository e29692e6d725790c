//! Bad torrents are clear errors, never panics.

use swarm::metainfo::{Info, Metainfo, MetainfoError};

use crate::bencode::{
    bytes, dict, file, int, list, multi_info, path, single_info_pairs, text, torrent,
};

fn parse_info(info: Vec<u8>) -> Result<Metainfo, MetainfoError> {
    Metainfo::from_bytes(&torrent(info))
}

fn single_with(replace: &'static str, value: Vec<u8>) -> Vec<u8> {
    let mut pairs = single_info_pairs(40_000, 16384);
    pairs.retain(|(key, _)| *key != replace);
    pairs.push((replace, value));
    dict(pairs)
}

fn unsafe_component(result: Result<Metainfo, MetainfoError>) -> String {
    match result {
        Err(MetainfoError::UnsafePathComponent { component, .. }) => component,
        other => panic!("expected an unsafe path error, got {other:?}"),
    }
}

#[test]
fn the_valid_baseline_parses() {
    let parsed = parse_info(dict(single_info_pairs(40_000, 16384))).unwrap();
    assert_eq!(parsed.info.piece_count(), 3);
}

#[test]
fn every_truncation_and_byte_flip_of_every_fixture_is_handled() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures");
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().and_then(|e| e.to_str()) != Some("torrent") {
            continue;
        }
        let original = std::fs::read(&path).unwrap();
        for end in 0..original.len() {
            assert!(
                Metainfo::from_bytes(&original[..end]).is_err(),
                "{path:?} cut at {end} must not parse"
            );
        }
        let mut accepted = 0;
        for index in 0..original.len() {
            for value in [0u8, b'0', b'9', b'e', b'd', b'l', b'i', b':', b'-', 0xff] {
                let mut mutated = original.clone();
                mutated[index] = value;
                // Must return, either way; a mutation inside `pieces` stays valid.
                accepted += usize::from(Metainfo::from_bytes(&mutated).is_ok());
            }
        }
        assert!(accepted > 0, "some mutations (piece hash bytes) stay valid");
    }
}

#[test]
fn structural_garbage_is_a_bencode_error() {
    for garbage in [
        &b"d"[..],
        b"de5",
        b"i5e",
        b"le",
        b"d4:infoi1e",
        b"\xff",
        b"d3:foo",
    ] {
        assert!(Metainfo::from_bytes(garbage).is_err(), "{garbage:?}");
    }
    assert_eq!(Metainfo::from_bytes(b""), Err(MetainfoError::Empty));
    assert_eq!(
        Metainfo::from_bytes(b"de"),
        Err(MetainfoError::MissingField("info"))
    );
    assert!(matches!(
        Metainfo::from_bytes(b"d3:zzzi1e3:aaai1ee"),
        Err(MetainfoError::Bencode(_))
    ));
    let mut trailing = torrent(dict(single_info_pairs(100, 16384)));
    trailing.extend_from_slice(b"junk");
    assert_eq!(
        Metainfo::from_bytes(&trailing),
        Err(MetainfoError::TrailingData)
    );
    let mut nested = vec![b'l'; 10_000];
    nested.extend(vec![b'e'; 10_000]);
    let deep = dict([("info", dict(single_info_pairs(100, 16384))), ("x", nested)]);
    assert!(matches!(
        Metainfo::from_bytes(&deep),
        Err(MetainfoError::Bencode(_))
    ));
}

#[test]
fn wrong_types_name_their_field() {
    let cases = [
        ("name", int(5), "name"),
        ("length", text("5"), "length"),
        ("piece length", text("16384"), "piece length"),
        ("pieces", list([]), "pieces"),
        ("private", text("1"), "private"),
    ];
    for (key, value, field) in cases {
        match parse_info(single_with(key, value)) {
            Err(MetainfoError::WrongType { field: found, .. }) => assert_eq!(found, field),
            other => panic!("{key}: {other:?}"),
        }
    }
    let info_not_dict = dict([("info", list([]))]);
    assert!(matches!(
        Metainfo::from_bytes(&info_not_dict),
        Err(MetainfoError::WrongType { field: "info", .. })
    ));
    let bad_tiers = dict([
        ("announce-list", list([text("wss://flat.example")])),
        ("info", dict(single_info_pairs(100, 16384))),
    ]);
    assert!(matches!(
        Metainfo::from_bytes(&bad_tiers),
        Err(MetainfoError::WrongType {
            field: "announce-list",
            ..
        })
    ));
}

#[test]
fn pieces_must_fit_the_lengths() {
    assert_eq!(
        parse_info(single_with("pieces", bytes(&[0; 59]))),
        Err(MetainfoError::PiecesNotMultipleOf20(59))
    );
    assert_eq!(
        parse_info(single_with("pieces", bytes(&[0; 40]))),
        Err(MetainfoError::PieceCountMismatch {
            expected: 3,
            found: 2
        })
    );
    assert_eq!(
        parse_info(single_with("pieces", bytes(&[0; 80]))),
        Err(MetainfoError::PieceCountMismatch {
            expected: 3,
            found: 4
        })
    );
    for bad in [0i64, -16384, 128 * 1024 * 1024, 1 << 40] {
        assert_eq!(
            parse_info(single_with("piece length", int(bad))),
            Err(MetainfoError::BadPieceLength(bad))
        );
    }
    let missing: Vec<_> = single_info_pairs(40_000, 16384)
        .into_iter()
        .filter(|(key, _)| *key != "pieces")
        .collect();
    assert_eq!(
        parse_info(dict(missing)),
        Err(MetainfoError::MissingField("pieces"))
    );
}

#[test]
fn lengths_are_bounded() {
    assert_eq!(
        parse_info(single_with("length", int(-1))),
        Err(MetainfoError::NegativeLength {
            field: "length",
            value: -1
        })
    );
    assert!(matches!(
        parse_info(single_with("length", int("99999999999999999999999"))),
        Err(MetainfoError::IntegerOverflow {
            field: "length",
            ..
        })
    ));
    assert_eq!(
        parse_info(single_with("length", int(1u64 << 50))),
        Err(MetainfoError::TooLarge(1 << 40))
    );
    assert_eq!(
        parse_info(single_with("length", int(0))),
        Err(MetainfoError::NoData)
    );
    let huge = multi_info(
        vec![file(&["a"], i64::MAX as u64), file(&["b"], i64::MAX as u64)],
        1,
    );
    assert_eq!(parse_info(huge), Err(MetainfoError::TooLarge(1 << 40)));
}

#[test]
fn length_and_files_are_exclusive_and_files_not_empty() {
    assert_eq!(
        parse_info(single_with("files", list([file(&["a"], 1)]))),
        Err(MetainfoError::BothLengthAndFiles)
    );
    let neither: Vec<_> = single_info_pairs(100, 16384)
        .into_iter()
        .filter(|(key, _)| *key != "length")
        .collect();
    assert_eq!(
        parse_info(dict(neither)),
        Err(MetainfoError::NeitherLengthNorFiles)
    );
    assert_eq!(
        parse_info(multi_info(vec![], 1)),
        Err(MetainfoError::NoFiles)
    );
    assert_eq!(
        parse_info(multi_info(vec![file(&[], 5)], 5)),
        Err(MetainfoError::EmptyPath(0))
    );
    let no_path = dict([("length", int(5))]);
    assert_eq!(
        parse_info(multi_info(vec![no_path], 5)),
        Err(MetainfoError::MissingField("path"))
    );
}

#[test]
fn paths_cannot_escape_the_download_dir() {
    for bad in [
        "..",
        ".",
        "",
        "a/b",
        "a\\b",
        "/etc",
        "nul\0byte",
        "C:",
        "c:evil",
    ] {
        let info = multi_info(vec![file(&["ok", bad], 5)], 5);
        assert_eq!(unsafe_component(parse_info(info)), bad);
        assert_eq!(
            unsafe_component(parse_info(single_with("name", text(bad)))),
            bad
        );
    }
    let fine = multi_info(vec![file(&["..hidden", "a.b", "Track 1: Intro.mp3"], 5)], 5);
    assert!(
        parse_info(fine).is_ok(),
        "dots and colons inside names are fine"
    );
    let deep = multi_info(vec![file(&["d"; 65], 5)], 5);
    assert_eq!(parse_info(deep), Err(MetainfoError::PathTooDeep(64)));
}

#[test]
fn colliding_paths_are_refused() {
    let twice = multi_info(vec![file(&["a.mp3"], 5), file(&["a.mp3"], 5)], 10);
    assert_eq!(
        parse_info(twice),
        Err(MetainfoError::PathCollision("album/a.mp3".into()))
    );
    let file_then_dir = multi_info(vec![file(&["a"], 5), file(&["a", "b"], 5)], 10);
    assert_eq!(
        parse_info(file_then_dir),
        Err(MetainfoError::PathCollision("album/a".into()))
    );
    let dir_then_file = multi_info(vec![file(&["a", "b"], 5), file(&["a"], 5)], 10);
    assert_eq!(
        parse_info(dir_then_file),
        Err(MetainfoError::PathCollision("album/a".into()))
    );
}

#[test]
fn bad_utf8_in_names_is_an_error_in_comments_is_replaced() {
    assert_eq!(
        parse_info(single_with("name", bytes(b"\xff\xfe"))),
        Err(MetainfoError::InvalidUtf8("name"))
    );
    let bad_path = multi_info(
        vec![dict([("length", int(5)), ("path", list([bytes(b"\xc3")]))])],
        5,
    );
    assert_eq!(
        parse_info(bad_path),
        Err(MetainfoError::InvalidUtf8("path"))
    );
    let commented = dict([
        ("comment", bytes(b"caf\xe9")),
        ("info", dict(single_info_pairs(100, 16384))),
    ]);
    assert_eq!(
        Metainfo::from_bytes(&commented).unwrap().comment.as_deref(),
        Some("caf\u{fffd}")
    );
}

#[test]
fn too_many_files_is_refused_early() {
    let files: Vec<Vec<u8>> = (0..100_001).map(|i| file(&[&format!("{i}")], 1)).collect();
    assert_eq!(
        parse_info(multi_info(files, 100_001)),
        Err(MetainfoError::TooManyFiles(100_000))
    );
}

#[test]
fn info_from_bytes_wants_exactly_one_dict() {
    let info = dict(single_info_pairs(100, 16384));
    assert!(Info::from_bytes(&info).is_ok());
    let mut trailing = info.clone();
    trailing.push(b'e');
    assert_eq!(
        Info::from_bytes(&trailing),
        Err(MetainfoError::TrailingData)
    );
    assert!(Info::from_bytes(&info[..info.len() - 1]).is_err());
    assert!(Info::from_bytes(&path(&["a"])).is_err());
}

#[test]
fn random_splices_and_mutations_never_panic() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures");
    let originals: Vec<Vec<u8>> = ["mktorrent-multi.torrent", "transmission-single.torrent"]
        .iter()
        .map(|name| std::fs::read(dir.join(name)).unwrap())
        .collect();
    let mut state = 0x5eed_u64;
    let mut next = |bound: usize| {
        state = state
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        (state >> 33) as usize % bound
    };
    for round in 0..20_000 {
        let mut bytes = originals[round % originals.len()].clone();
        for _ in 0..1 + next(4) {
            let at = next(bytes.len());
            match next(3) {
                0 => bytes[at] = next(256) as u8,
                1 => {
                    bytes.remove(at);
                }
                _ => {
                    let from = next(bytes.len());
                    let chunk: Vec<u8> = bytes[from..(from + next(16)).min(bytes.len())].to_vec();
                    bytes.splice(at..at, chunk);
                }
            }
        }
        if let Ok(metainfo) = Metainfo::from_bytes(&bytes) {
            // Whatever parses is consistent and survives a round trip.
            let info = &metainfo.info;
            assert_eq!(
                info.total_length().div_ceil(u64::from(info.piece_length)),
                u64::from(info.piece_count())
            );
            assert_eq!(
                Metainfo::from_bytes(&metainfo.to_bytes()).unwrap(),
                metainfo
            );
        }
        let _ = Info::from_bytes(&bytes);
        let _ = swarm::magnet::Magnet::parse(&String::from_utf8_lossy(&bytes));
    }
}
