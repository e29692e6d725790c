//! `.torrent` files and bare `info` dictionaries from arbitrary bytes.
//!
//! When parsing succeeds: `to_bytes` re-parses to the same value with the
//! same info hash, the info hash is the SHA-1 of the `info` bytes as found,
//! those bytes parse alone to the same `Info`, the layout helpers stay in
//! range, and the torrent's magnet link parses back to itself.
#![no_main]

use libfuzzer_sys::fuzz_target;
use sha1::{Digest, Sha1};
use swarm::magnet::Magnet;
use swarm::metainfo::{Info, Metainfo};

fuzz_target!(|data: &[u8]| {
    if let Ok(info) = Info::from_bytes(data) {
        check_info(&info);
    }
    let Ok(meta) = Metainfo::from_bytes(data) else {
        return;
    };
    assert_eq!(
        meta.info_hash.0,
        <[u8; 20]>::from(Sha1::digest(&meta.info_bytes))
    );
    assert_eq!(Info::from_bytes(&meta.info_bytes).as_ref(), Ok(&meta.info));
    let again = Metainfo::from_bytes(&meta.to_bytes()).expect("our own encoding parses");
    assert_eq!(again, meta, "to_bytes round trip");
    assert_eq!(again.info_hash, meta.info_hash);
    let magnet = meta.magnet();
    assert_eq!(
        Magnet::parse(&magnet.to_string()).as_ref(),
        Ok(&magnet),
        "magnet round trip"
    );
    assert_eq!(
        Metainfo::from_magnet(&magnet, &meta.info_bytes).map(|m| m.info),
        Ok(meta.info.clone())
    );
    check_info(&meta.info);
});

/// Layout facts that must hold for any `Info` the parser accepts.
fn check_info(info: &Info) {
    let total = info.total_length();
    let count = info.piece_count();
    assert_eq!(count as usize, info.pieces.len());
    let mut sum = 0u64;
    for piece in 0..count.min(64) {
        let size = u64::from(info.piece_size(piece));
        assert!(size > 0 && size <= u64::from(info.piece_length));
        assert!(info.piece_hash(piece).is_some());
        let slices = info.piece_file_slices(piece);
        assert_eq!(
            slices.iter().map(|s| s.length).sum::<u64>(),
            size,
            "piece {piece} slices"
        );
        for s in &slices {
            let file = &info.files[s.file];
            assert!(s.offset + s.length <= file.length);
        }
        sum += size;
    }
    if count <= 64 {
        assert_eq!(sum, total);
    }
    assert!(info.piece_hash(count).is_none());
}
