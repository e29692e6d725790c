//! Magnet URIs: the forms clients write, errors, and the canonical round trip.

use swarm::InfoHash;
use swarm::magnet::{Magnet, MagnetError};
use swarm::metainfo::Metainfo;

const HEX: &str = "d8a24dba2b29e39e45c202a81834680302fe3d63";

fn hash() -> InfoHash {
    InfoHash::from_hex(HEX).unwrap()
}

#[test]
fn hex_and_base32_in_either_case_name_the_same_swarm() {
    let base32 = hash().to_base32();
    for xt in [
        HEX.to_owned(),
        HEX.to_uppercase(),
        base32.clone(),
        base32.to_lowercase(),
    ] {
        let magnet = Magnet::parse(&format!("magnet:?xt=urn:btih:{xt}")).unwrap();
        assert_eq!(magnet.info_hash, hash(), "{xt}");
        assert_eq!(magnet, Magnet::new(hash()));
    }
    let upper = format!("MAGNET:?XT=urn:btih:{HEX}");
    assert_eq!(
        Magnet::parse(&upper),
        Err(MagnetError::MissingInfoHash),
        "keys are case-sensitive"
    );
    let upper_scheme = format!("MAGNET:?xt=URN:BTIH:{HEX}");
    assert_eq!(Magnet::parse(&upper_scheme).unwrap().info_hash, hash());
}

#[test]
fn every_parameter_is_read_and_unknown_ones_ignored() {
    let s = format!(
        "magnet:?xt=urn:btih:{HEX}&dn=Caf%C3%A9+del+Mar%20(live)&tr=wss%3A%2F%2Fa.example%2Fannounce\
         &tr=udp://b.example:6969&tr.1=wss%3A%2F%2Fa.example%2Fannounce&ws=https%3A%2F%2Fcdn.example%2Fx.mp3\
         &ws=https://mirror.example/x.mp3&xs=https%3A%2F%2Fartist.example%2Fx.torrent&xl=5000000\
         &so=0-3&x.pe=1.2.3.4:5&kt=a+b&&novalue"
    );
    let magnet: Magnet = s.parse().unwrap();
    assert_eq!(magnet.info_hash, hash());
    assert_eq!(magnet.display_name.as_deref(), Some("Café del Mar (live)"));
    assert_eq!(
        magnet.trackers,
        ["wss://a.example/announce", "udp://b.example:6969"]
    );
    assert_eq!(
        magnet.web_seeds,
        ["https://cdn.example/x.mp3", "https://mirror.example/x.mp3"]
    );
    assert_eq!(magnet.exact_sources, ["https://artist.example/x.torrent"]);
    assert_eq!(magnet.exact_length, Some(5_000_000));
}

#[test]
fn a_v2_only_xt_is_skipped_for_the_btih_one() {
    let s = format!(
        "magnet:?xt=urn:btmh:1220{}&xt=urn:btih:{HEX}",
        "ab".repeat(32)
    );
    assert_eq!(Magnet::parse(&s).unwrap().info_hash, hash());
    let v2_only = format!("magnet:?xt=urn:btmh:1220{}", "ab".repeat(32));
    assert_eq!(Magnet::parse(&v2_only), Err(MagnetError::MissingInfoHash));
}

#[test]
fn bad_magnets_are_clear_errors() {
    assert_eq!(
        Magnet::parse("https://example.com/?xt=urn:btih:00"),
        Err(MagnetError::NotMagnet)
    );
    assert_eq!(
        Magnet::parse("magnet:xt=urn:btih:00"),
        Err(MagnetError::NotMagnet)
    );
    assert_eq!(Magnet::parse(""), Err(MagnetError::NotMagnet));
    assert_eq!(
        Magnet::parse("magnet:?dn=x"),
        Err(MagnetError::MissingInfoHash)
    );
    for bad in [
        &HEX[..39],
        &"g".repeat(40),
        &"1".repeat(32),
        "",
        &format!("{HEX}00"),
    ] {
        assert_eq!(
            Magnet::parse(&format!("magnet:?xt=urn:btih:{bad}")),
            Err(MagnetError::InvalidInfoHash(bad.to_owned())),
            "{bad}"
        );
    }
    for bad in ["-1", "abc", "", "1e3", "99999999999999999999999"] {
        assert_eq!(
            Magnet::parse(&format!("magnet:?xt=urn:btih:{HEX}&xl={bad}")),
            Err(MagnetError::InvalidLength(bad.to_owned())),
            "{bad}"
        );
    }
    assert_eq!(
        Magnet::parse(&format!("magnet:?xt=urn:btih:{HEX}&dn=%FF")),
        Err(MagnetError::InvalidUtf8("dn"))
    );
}

#[test]
fn display_is_canonical_and_parses_back() {
    let magnet = Magnet {
        info_hash: hash(),
        display_name: Some("A & B = 100% + \"more\" / ünïcode?#".to_owned()),
        trackers: vec![
            "wss://t.example/announce?key=a&b=c".to_owned(),
            "udp://u.example:1".to_owned(),
        ],
        web_seeds: vec!["https://cdn.example/a b.mp3".to_owned()],
        exact_sources: vec!["https://x.example/t.torrent".to_owned()],
        exact_length: Some(123),
    };
    let text = magnet.to_string();
    assert!(text.starts_with(&format!(
        "magnet:?xt=urn:btih:{HEX}&dn=A%20%26%20B%20%3D%20100%25%20%2B"
    )));
    assert!(!text.contains(' ') && !text.contains('#'), "{text}");
    assert_eq!(Magnet::parse(&text).unwrap(), magnet);
    assert_eq!(
        Magnet::new(hash()).to_string(),
        format!("magnet:?xt=urn:btih:{HEX}")
    );
}

#[test]
fn a_torrents_magnet_carries_its_name_trackers_seeds_and_length() {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/mktorrent-multi.torrent");
    let metainfo = Metainfo::from_bytes(&std::fs::read(path).unwrap()).unwrap();
    let magnet = metainfo.magnet();
    assert_eq!(
        magnet.info_hash.to_hex(),
        "f4e43a4ee1c2f3e38882a8636f0455587b9feaa5"
    );
    assert_eq!(magnet.display_name.as_deref(), Some("album"));
    assert_eq!(magnet.trackers.len(), 3);
    assert_eq!(magnet.web_seeds, metainfo.url_list);
    assert_eq!(magnet.exact_length, Some(116_555));
    assert_eq!(Magnet::parse(&magnet.to_string()).unwrap(), magnet);
}

#[test]
fn random_magnet_like_strings_never_panic() {
    let alphabet: Vec<char> = "magnet:?xt=urn:btih:&dn=%+.trwsxsxl0123456789abcdefABCDEFZ2ü "
        .chars()
        .collect();
    let valid = format!("magnet:?xt=urn:btih:{HEX}&dn=a%20b&tr=wss%3A%2F%2Ft&xl=5");
    let mut state = 7u64;
    let mut next = |bound: usize| {
        state = state
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        (state >> 33) as usize % bound
    };
    let mut parsed = 0;
    for _ in 0..20_000 {
        let mut chars: Vec<char> = valid.chars().collect();
        for _ in 0..1 + next(3) {
            let at = next(chars.len());
            chars[at] = alphabet[next(alphabet.len())];
        }
        let text: String = chars.into_iter().collect();
        if let Ok(magnet) = Magnet::parse(&text) {
            parsed += 1;
            assert_eq!(
                Magnet::parse(&magnet.to_string()).unwrap(),
                magnet,
                "{text}"
            );
        }
    }
    assert!(parsed > 0, "some mutations stay valid");
}
