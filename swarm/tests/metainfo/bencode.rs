//! Tiny bencode writers for hand-made (often deliberately wrong) test torrents.
//!
//! Tests need to write what no encoder would: wrong types, bad UTF-8, unsafe
//! paths. These helpers do exactly what they are told.

/// `<len>:<bytes>`
pub fn bytes(value: &[u8]) -> Vec<u8> {
    let mut out = format!("{}:", value.len()).into_bytes();
    out.extend_from_slice(value);
    out
}

/// A UTF-8 string.
pub fn text(value: &str) -> Vec<u8> {
    bytes(value.as_bytes())
}

/// `i<n>e`, from any integer text (so overflow can be written).
pub fn int(value: impl std::fmt::Display) -> Vec<u8> {
    format!("i{value}e").into_bytes()
}

/// `l…e` of already-encoded items.
pub fn list(items: impl IntoIterator<Item = Vec<u8>>) -> Vec<u8> {
    let mut out = vec![b'l'];
    for item in items {
        out.extend(item);
    }
    out.push(b'e');
    out
}

/// `d…e` with keys sorted, values already encoded.
pub fn dict(pairs: impl IntoIterator<Item = (&'static str, Vec<u8>)>) -> Vec<u8> {
    let mut pairs: Vec<_> = pairs.into_iter().collect();
    pairs.sort_by(|a, b| a.0.cmp(b.0));
    let mut out = vec![b'd'];
    for (key, value) in pairs {
        out.extend(text(key));
        out.extend(value);
    }
    out.push(b'e');
    out
}

/// A list of path components.
pub fn path(components: &[&str]) -> Vec<u8> {
    list(components.iter().map(|c| text(c)))
}

/// A valid single-file info dict's pairs: `length` bytes in pieces of `piece_length`, zero hashes.
pub fn single_info_pairs(length: u64, piece_length: u32) -> Vec<(&'static str, Vec<u8>)> {
    let pieces = length.div_ceil(u64::from(piece_length)) as usize;
    vec![
        ("length", int(length)),
        ("name", text("track.mp3")),
        ("piece length", int(piece_length)),
        ("pieces", bytes(&vec![0u8; pieces * 20])),
    ]
}

/// A multi-file info dict with these file entries (each an encoded dict) and matching pieces.
pub fn multi_info(files: Vec<Vec<u8>>, total: u64) -> Vec<u8> {
    let pieces = total.div_ceil(16384) as usize;
    dict([
        ("files", list(files)),
        ("name", text("album")),
        ("piece length", int(16384)),
        ("pieces", bytes(&vec![0u8; pieces * 20])),
    ])
}

/// A `files` entry.
pub fn file(components: &[&str], length: u64) -> Vec<u8> {
    dict([("length", int(length)), ("path", path(components))])
}

/// A torrent around an encoded info dict.
pub fn torrent(info: Vec<u8>) -> Vec<u8> {
    dict([("announce", text("wss://t.example/a")), ("info", info)])
}
