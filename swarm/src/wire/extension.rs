//! BEP 10, the extension protocol: the extended handshake and the bencode
//! helpers that BEP 9 ([`super::metadata`]) shares.
//!
//! Each side announces in its extended handshake (extension message id
//! [`HANDSHAKE_ID`]) which extensions it speaks and under which message id it
//! wants to *receive* each one. WebTorrent sends
//! `{m: {ut_metadata: 1, lt_donthave: 2}, metadata_size: N}` (no `ut_pex` in
//! browsers), with `metadata_size` only once it has the metadata.
//!
//! Decoding is lenient the way real clients are: unknown keys are skipped and
//! an optional key of the wrong type or out of range reads as absent. What is
//! not a bencoded dictionary at all is an error. The bencode itself is parsed
//! by `bendy`, which insists on canonical bencode (sorted, unique keys), as
//! every client we interoperate with sends it.

use std::str::FromStr;

use bendy::decoding::{Decoder as BencodeDecoder, Object};
use bendy::encoding::Encoder;

use super::Message;
use crate::sorted::SortedMap;

/// Extension message id of the extended handshake itself.
pub const HANDSHAKE_ID: u8 = 0;

/// BEP 9 metadata exchange, the name in `m`.
pub const UT_METADATA: &str = "ut_metadata";

/// libtorrent's "I no longer have this piece", which WebTorrent also speaks.
pub const LT_DONTHAVE: &str = "lt_donthave";

/// The BEP 10 extended handshake dictionary.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ExtendedHandshake {
    /// Extension name to the message id the sender wants to receive it under;
    /// id 0 means "disabled" (sent to switch an extension off again).
    pub m: SortedMap<String, u8>,
    /// Client name and version, e.g. "WebTorrent 3.0.21" (not sent by WebTorrent).
    pub v: Option<String>,
    /// How many outstanding requests the sender queues (libtorrent: 250).
    pub reqq: Option<u32>,
    /// Bytes of the info dictionary (BEP 9); absent while the sender has no metadata.
    pub metadata_size: Option<u64>,
    /// The sender's listen port; meaningless over WebRTC.
    pub p: Option<u16>,
    /// The receiver's address as the sender sees it (4 or 16 bytes, as received).
    pub yourip: Option<Vec<u8>>,
}

/// Why an extension payload could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ExtensionError {
    /// The payload does not start with valid (canonical) bencode.
    #[error("invalid bencode: {0}")]
    Bencode(String),
    /// The payload is valid bencode but not a dictionary.
    #[error("extension payload is not a bencoded dictionary")]
    NotADict,
    /// A key the message cannot do without is absent.
    #[error("required key {0:?} is missing")]
    MissingKey(&'static str),
    /// A key the message cannot do without has the wrong type or range.
    #[error("key {0:?} has the wrong type or is out of range")]
    BadValue(&'static str),
    /// A ut_metadata `msg_type` other than 0, 1 or 2.
    #[error("unknown ut_metadata msg_type {0}")]
    UnknownMetadataType(i64),
    /// A ut_metadata data message carries more than one 16 KiB metadata piece.
    #[error("ut_metadata data of {0} bytes exceeds one 16 KiB metadata piece")]
    MetadataPieceTooLong(usize),
}

impl ExtendedHandshake {
    /// The message id the peer wants `name` sent under; `None` if it does not
    /// speak it or disabled it (id 0).
    pub fn id_of(&self, name: &str) -> Option<u8> {
        self.m.get(name).copied().filter(|&id| id != 0)
    }

    /// This handshake as the wire message that carries it.
    pub fn to_message(&self) -> Message {
        Message::Extended {
            id: HANDSHAKE_ID,
            payload: self.encode(),
        }
    }

    /// The bencoded dictionary, keys sorted; absent fields are left out.
    pub fn encode(&self) -> Vec<u8> {
        let mut encoder = Encoder::new();
        encoder
            .emit_dict(|mut dict| {
                dict.emit_pair_with(b"m", |m| {
                    m.emit_dict(|mut m| {
                        for (name, id) in &self.m {
                            m.emit_pair(name.as_bytes(), id)?;
                        }
                        Ok(())
                    })
                })?;
                if let Some(size) = self.metadata_size {
                    dict.emit_pair(b"metadata_size", size)?;
                }
                if let Some(port) = self.p {
                    dict.emit_pair(b"p", port)?;
                }
                if let Some(reqq) = self.reqq {
                    dict.emit_pair(b"reqq", reqq)?;
                }
                if let Some(v) = &self.v {
                    dict.emit_pair(b"v", v)?;
                }
                if let Some(ip) = &self.yourip {
                    dict.emit_pair_with(b"yourip", |e| e.emit_bytes(ip))?;
                }
                Ok(())
            })
            .expect("keys are emitted in sorted order: m, metadata_size, p, reqq, v, yourip");
        encoder
            .get_output()
            .expect("one complete dictionary was emitted")
    }

    /// Reads an extended handshake payload (after the extension id byte).
    /// Bytes after the dictionary are ignored, as libtorrent does.
    pub fn decode(payload: &[u8]) -> Result<Self, ExtensionError> {
        let mut handshake = ExtendedHandshake::default();
        for_each_pair(payload, |key, value| {
            match key {
                b"m" => handshake.m = extension_map(value)?,
                b"v" => handshake.v = bytes(value).map(|v| String::from_utf8_lossy(v).into()),
                b"reqq" => handshake.reqq = integer(value),
                b"metadata_size" => handshake.metadata_size = integer(value),
                b"p" => handshake.p = integer(value),
                b"yourip" => handshake.yourip = bytes(value).map(<[u8]>::to_vec),
                _ => {}
            }
            Ok(())
        })?;
        Ok(handshake)
    }
}

/// Nesting depth allowed in extension payloads: ours are two deep; the bound
/// keeps hostile nesting from recursing deep (bendy's default is 2048).
const MAX_DEPTH: usize = 32;

/// Calls `f` with each key and value of the bencoded dictionary at the start
/// of `payload`; returns the dictionary's length in bytes. Values `f` does not
/// read are skipped (and still checked to be valid bencode).
pub(super) fn for_each_pair<'a>(
    payload: &'a [u8],
    mut f: impl FnMut(&'a [u8], Object<'_, 'a>) -> Result<(), ExtensionError>,
) -> Result<usize, ExtensionError> {
    let mut decoder = BencodeDecoder::new(payload).with_max_depth(MAX_DEPTH);
    let Some(Object::Dict(mut dict)) = decoder.next_object().map_err(bencode_error)? else {
        return Err(ExtensionError::NotADict);
    };
    while let Some((key, value)) = dict.next_pair().map_err(bencode_error)? {
        f(key, value)?;
    }
    let raw = dict.into_raw().map_err(bencode_error)?;
    Ok(raw.len())
}

/// An integer value that fits `T`; `None` for other types or out of range.
pub(super) fn integer<T: FromStr>(value: Object<'_, '_>) -> Option<T> {
    match value {
        Object::Integer(digits) => digits.parse().ok(),
        _ => None,
    }
}

/// A byte-string value; `None` for other types.
pub(super) fn bytes<'a>(value: Object<'_, 'a>) -> Option<&'a [u8]> {
    match value {
        Object::Bytes(bytes) => Some(bytes),
        _ => None,
    }
}

fn bencode_error(error: bendy::decoding::Error) -> ExtensionError {
    ExtensionError::Bencode(error.to_string())
}

/// The `m` dictionary: entries with a UTF-8 name and an id in 0..=255 are
/// kept, others skipped; an `m` that is not a dictionary reads as empty.
fn extension_map(value: Object<'_, '_>) -> Result<SortedMap<String, u8>, ExtensionError> {
    let mut map = SortedMap::new();
    let Object::Dict(mut dict) = value else {
        return Ok(map);
    };
    while let Some((name, id)) = dict.next_pair().map_err(bencode_error)? {
        if let (Ok(name), Some(id)) = (std::str::from_utf8(name), integer::<u8>(id)) {
            map.insert(name.to_owned(), id);
        }
    }
    Ok(map)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// What WebTorrent in a browser sends once it has the metadata.
    const WEBTORRENT: &[u8] = b"d1:md11:lt_donthavei2e11:ut_metadatai1ee13:metadata_sizei31235ee";

    #[test]
    fn decodes_webtorrent_handshake() {
        let handshake = ExtendedHandshake::decode(WEBTORRENT).unwrap();
        assert_eq!(handshake.id_of(UT_METADATA), Some(1));
        assert_eq!(handshake.id_of(LT_DONTHAVE), Some(2));
        assert_eq!(handshake.id_of("ut_pex"), None);
        assert_eq!(handshake.metadata_size, Some(31235));
        assert_eq!(handshake.v, None);
        assert_eq!(handshake.encode(), WEBTORRENT);
    }

    #[test]
    fn full_round_trip() {
        let handshake = ExtendedHandshake {
            m: SortedMap::from([
                ("lt_donthave".to_owned(), 7),
                ("ut_metadata".to_owned(), 3),
                ("ut_pex".to_owned(), 0),
            ]),
            v: Some("fanswarm 0.1.0 ✓".to_owned()),
            reqq: Some(250),
            metadata_size: Some(10_000_000),
            p: Some(6881),
            yourip: Some(vec![198, 51, 100, 7]),
        };
        let bytes = handshake.encode();
        assert_eq!(ExtendedHandshake::decode(&bytes), Ok(handshake.clone()));
        // A disabled extension is kept in `m` but has no id.
        assert_eq!(handshake.id_of("ut_pex"), None);
        assert_eq!(handshake.id_of("ut_metadata"), Some(3));
        assert_eq!(
            ExtendedHandshake::default().encode(),
            b"d1:mdee",
            "m is always sent"
        );
    }

    #[test]
    fn unknown_keys_and_wrong_types_are_ignored() {
        let payload = b"d\
            12:complete_agoi-1e\
            1:md11:lt_donthave3:bad6:ut_hexi999e11:ut_metadatai2e6:ut_pexi-1ee\
            13:metadata_size5:large\
            1:pi70000e\
            4:reqqi-5e\
            1:vi12e\
            6:yourip4:\xc6\x33\x64\x07\
            e";
        let handshake = ExtendedHandshake::decode(payload).unwrap();
        assert_eq!(
            handshake.m,
            SortedMap::from([("ut_metadata".to_owned(), 2)])
        );
        assert_eq!(handshake.metadata_size, None);
        assert_eq!(handshake.p, None);
        assert_eq!(handshake.reqq, None);
        assert_eq!(handshake.v, None);
        assert_eq!(handshake.yourip, Some(vec![198, 51, 100, 7]));
    }

    #[test]
    fn m_of_the_wrong_type_reads_as_empty() {
        let handshake = ExtendedHandshake::decode(b"d1:mli1eee").unwrap();
        assert!(handshake.m.is_empty());
        let handshake = ExtendedHandshake::decode(b"de").unwrap();
        assert_eq!(handshake, ExtendedHandshake::default());
    }

    #[test]
    fn non_utf8_client_name_is_kept_lossily() {
        let handshake = ExtendedHandshake::decode(b"d1:v3:a\xffbe").unwrap();
        assert_eq!(handshake.v.as_deref(), Some("a\u{fffd}b"));
    }

    #[test]
    fn not_a_dict_is_rejected() {
        for payload in [&b"i42e"[..], b"4:spam", b"li1ee"] {
            assert_eq!(
                ExtendedHandshake::decode(payload),
                Err(ExtensionError::NotADict),
                "{payload:?}"
            );
        }
        for payload in [
            &b""[..],
            b"e",
            b"x",
            b"d1:m",
            b"d1:mde",
            b"d3:fooe",
            b"di1ei2ee",
        ] {
            assert!(
                matches!(
                    ExtendedHandshake::decode(payload),
                    Err(ExtensionError::Bencode(_) | ExtensionError::NotADict)
                ),
                "{payload:?}"
            );
        }
    }

    #[test]
    fn broken_bencode_inside_m_is_an_error() {
        assert!(matches!(
            ExtendedHandshake::decode(b"d1:md3:fooi1x"),
            Err(ExtensionError::Bencode(_))
        ));
    }

    #[test]
    fn hostile_nesting_is_an_error_not_a_stack_overflow() {
        let mut payload = b"d1:x".to_vec();
        payload.extend(std::iter::repeat_n(b'l', 100_000));
        payload.extend(std::iter::repeat_n(b'e', 100_000));
        payload.push(b'e');
        assert!(matches!(
            ExtendedHandshake::decode(&payload),
            Err(ExtensionError::Bencode(_))
        ));
    }

    #[test]
    fn trailing_bytes_after_the_dict_are_ignored() {
        let mut payload = WEBTORRENT.to_vec();
        payload.extend_from_slice(b"garbage");
        assert!(ExtendedHandshake::decode(&payload).is_ok());
    }
}
