//! Torrents made by mktorrent and transmission-create load, with their info hash and pieces;
//! torrents we make load in transmission-show with ours.

use std::path::{Path, PathBuf};
use std::process::Command;

use sha1::{Digest, Sha1};
use swarm::metainfo::{Metainfo, PieceHasher, TorrentBuilder, hash_pieces};

fn fixtures_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures")
}

/// `(file name, info hash the tool printed)` from `infohashes.txt`.
fn fixtures() -> Vec<(String, String)> {
    let list = std::fs::read_to_string(fixtures_dir().join("infohashes.txt")).unwrap();
    let fixtures: Vec<_> = list
        .lines()
        .map(|line| {
            let (name, hash) = line.split_once(' ').unwrap();
            (name.to_owned(), hash.trim().to_owned())
        })
        .collect();
    assert_eq!(fixtures.len(), 4, "infohashes.txt lists every fixture");
    fixtures
}

fn load(name: &str) -> (Vec<u8>, Metainfo) {
    let bytes = std::fs::read(fixtures_dir().join(name)).unwrap();
    let metainfo =
        Metainfo::from_bytes(&bytes).unwrap_or_else(|error| panic!("{name} should parse: {error}"));
    (bytes, metainfo)
}

/// The data `make-fixtures.sh` generated: the same LCG, seeded per file.
pub fn fixture_data(path: &[String]) -> Vec<u8> {
    let (length, seed) = match path.join("/").as_str() {
        "tone-a.bin" => (150_000, 1),
        "album/01 Intro.mp3" => (70_000, 2),
        "album/02 Song.mp3" => (45_555, 3),
        "album/extras/notes.txt" => (1_000, 4),
        other => panic!("no fixture data for {other}"),
    };
    lcg_bytes(length, seed)
}

pub fn lcg_bytes(length: usize, seed: u64) -> Vec<u8> {
    let mut state = seed;
    (0..length)
        .map(|_| {
            state = state
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            (state >> 56) as u8
        })
        .collect()
}

#[test]
fn every_fixture_parses_with_the_tools_info_hash() {
    for (name, tool_hash) in fixtures() {
        let (bytes, metainfo) = load(&name);
        assert_eq!(metainfo.info_hash.to_hex(), tool_hash, "{name}");
        let digest: [u8; 20] = Sha1::digest(&metainfo.info_bytes).into();
        assert_eq!(digest, metainfo.info_hash.0, "{name}: hash of info_bytes");
        let start = bytes
            .windows(metainfo.info_bytes.len())
            .position(|window| window == metainfo.info_bytes.as_slice());
        assert!(start.is_some(), "{name}: info_bytes is a slice of the file");
    }
}

#[test]
fn fixture_pieces_match_the_regenerated_data() {
    for (name, _) in fixtures() {
        let (_, metainfo) = load(&name);
        let info = &metainfo.info;
        let mut stream = Vec::new();
        for file in &info.files {
            assert_eq!(
                file.offset,
                stream.len() as u64,
                "{name}: offsets are running sums"
            );
            let data = fixture_data(&file.path);
            assert_eq!(file.length, data.len() as u64, "{name}: {:?}", file.path);
            stream.extend(data);
        }
        assert_eq!(info.total_length(), stream.len() as u64);
        assert_eq!(
            hash_pieces(&stream, info.piece_length).unwrap(),
            info.pieces,
            "{name}: piece hashes"
        );
        for piece in 0..info.piece_count() {
            let start = info.piece_offset(piece) as usize;
            let end = start + info.piece_size(piece) as usize;
            let digest: [u8; 20] = Sha1::digest(&stream[start..end]).into();
            assert_eq!(
                Some(&digest),
                info.piece_hash(piece),
                "{name}: piece {piece}"
            );
        }
        assert_eq!(info.piece_size(info.piece_count()), 0);
    }
}

#[test]
fn fixture_fields_are_read() {
    let (_, single) = load("mktorrent-single.torrent");
    assert!(single.info.is_single_file());
    assert_eq!(single.info.name, "tone-a.bin");
    assert_eq!(single.info.piece_length, 32 * 1024);
    assert_eq!(single.info.piece_count(), 5);
    assert_eq!(single.info.piece_size(4), 150_000 - 4 * 32 * 1024);
    assert_eq!(single.trackers(), ["wss://tracker.example/announce"]);
    assert_eq!(
        single.comment.as_deref(),
        Some("single file, 32 KiB pieces")
    );
    assert_eq!(single.created_by.as_deref(), Some("mktorrent 1.1"));
    assert!(single.creation_date.is_some());
    assert!(!single.info.private);

    let (_, multi) = load("mktorrent-multi.torrent");
    assert!(!multi.info.is_single_file());
    assert!(multi.info.private);
    let paths: Vec<_> = multi.info.files.iter().map(|f| f.path.join("/")).collect();
    assert_eq!(
        paths,
        [
            "album/01 Intro.mp3",
            "album/02 Song.mp3",
            "album/extras/notes.txt"
        ]
    );
    assert_eq!(
        multi.announce_list,
        [
            vec!["wss://a.example/announce", "wss://b.example/announce"],
            vec!["https://c.example/announce"],
        ]
    );
    assert_eq!(
        multi.trackers(),
        [
            "wss://a.example/announce",
            "wss://b.example/announce",
            "https://c.example/announce"
        ]
    );
    assert_eq!(
        multi.url_list,
        [
            "https://cdn.example/music/",
            "https://mirror.example/music/"
        ]
    );

    let (_, transmission) = load("transmission-single.torrent");
    assert_eq!(
        transmission.trackers(),
        [
            "https://tracker.example/announce",
            "udp://backup.example:6969/announce"
        ]
    );
}

#[test]
fn fixtures_survive_to_bytes_with_their_info_hash() {
    for (name, _) in fixtures() {
        let (_, metainfo) = load(&name);
        let again = Metainfo::from_bytes(&metainfo.to_bytes()).unwrap();
        assert_eq!(again, metainfo, "{name}");
    }
}

#[test]
fn streaming_hasher_matches_in_any_chunking() {
    let data = lcg_bytes(150_000, 1);
    let whole = hash_pieces(&data, 32 * 1024).unwrap();
    for chunk in [1, 7, 1000, 16 * 1024, 32 * 1024, 32 * 1024 + 1, 200_000] {
        let mut hasher = PieceHasher::new(32 * 1024).unwrap();
        for part in data.chunks(chunk) {
            hasher.update(part);
        }
        assert_eq!(hasher.bytes_hashed(), 150_000);
        assert_eq!(hasher.pieces().len(), 4, "complete pieces before finish");
        assert_eq!(hasher.finish(), whole, "chunks of {chunk}");
    }
    let (_, fixture) = load("mktorrent-single.torrent");
    assert_eq!(whole, fixture.info.pieces);
}

/// The torrent we make of the fixture album, in a temp file.
fn write_our_album_torrent() -> (Metainfo, PathBuf) {
    let files: Vec<(Vec<String>, u64)> = ["01 Intro.mp3", "02 Song.mp3", "extras/notes.txt"]
        .iter()
        .map(|path| {
            let path: Vec<String> = path.split('/').map(str::to_owned).collect();
            let full: Vec<String> = std::iter::once("album".to_owned())
                .chain(path.iter().cloned())
                .collect();
            (path, fixture_data(&full).len() as u64)
        })
        .collect();
    let builder = TorrentBuilder::multi_file("album", files.clone())
        .tracker_tier([
            "https://a.example/announce".to_owned(),
            "wss://b.example/announce".to_owned(),
        ])
        .tracker("udp://c.example:6969/announce")
        .web_seed("https://cdn.example/music/")
        .comment("made by fanswarm's tests")
        .created_by("fanswarm test")
        .creation_date(1_700_000_000);
    let mut hasher = builder.hasher().unwrap();
    for (path, _) in &files {
        let full: Vec<String> = std::iter::once("album".to_owned())
            .chain(path.iter().cloned())
            .collect();
        hasher.update(&fixture_data(&full));
    }
    let metainfo = builder.build(&hasher.finish()).unwrap();
    let file = std::env::temp_dir().join(format!("fanswarm-ours-{}.torrent", std::process::id()));
    std::fs::write(&file, metainfo.to_bytes()).unwrap();
    (metainfo, file)
}

#[test]
fn transmission_show_accepts_our_torrent_with_our_info_hash() {
    let (metainfo, file) = write_our_album_torrent();
    let output = match Command::new("transmission-show").arg(&file).output() {
        Ok(output) => output,
        Err(error) => {
            println!(
                "SKIPPED: transmission-show not runnable ({error}); apt-get install transmission-cli"
            );
            std::fs::remove_file(&file).ok();
            return;
        }
    };
    std::fs::remove_file(&file).ok();
    let text = String::from_utf8_lossy(&output.stdout);
    assert!(output.status.success(), "transmission-show failed: {text}");
    let hash = text
        .lines()
        .find_map(|line| line.trim().strip_prefix("Hash: "))
        .unwrap_or_else(|| panic!("no Hash line in: {text}"));
    assert_eq!(hash, metainfo.info_hash.to_hex());
    assert!(
        text.contains(&format!("Piece Count: {}", metainfo.info.piece_count())),
        "{text}"
    );
    assert!(text.contains("album/extras/notes.txt"), "{text}");
    assert!(
        text.contains("https://cdn.example/music/"),
        "web seed shown: {text}"
    );
    assert!(
        text.contains("udp://c.example:6969/announce"),
        "tier 2 shown: {text}"
    );
}

#[test]
fn our_album_torrent_has_the_same_pieces_as_the_tools() {
    let (ours, file) = write_our_album_torrent();
    std::fs::remove_file(&file).ok();
    let (_, theirs) = load("transmission-multi.torrent");
    let data: Vec<u8> = theirs
        .info
        .files
        .iter()
        .flat_map(|f| fixture_data(&f.path))
        .collect();
    assert_eq!(ours.info.files, theirs.info.files);
    assert_eq!(
        ours.info.pieces,
        hash_pieces(&data, ours.info.piece_length).unwrap()
    );
}

#[test]
fn our_encoding_of_mktorrents_single_file_info_is_byte_identical() {
    let (_, theirs) = load("mktorrent-single.torrent");
    let data = fixture_data(&["tone-a.bin".to_owned()]);
    let builder =
        TorrentBuilder::single_file("tone-a.bin", data.len() as u64).piece_length(32 * 1024);
    let mut hasher = builder.hasher().unwrap();
    hasher.update(&data);
    let ours = builder.build(&hasher.finish()).unwrap();
    assert_eq!(ours.info_bytes, theirs.info_bytes);
    assert_eq!(ours.info_hash, theirs.info_hash);
}
