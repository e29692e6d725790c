//! Twenty-byte identifiers: info hashes and peer ids.
//!
//! Both are 20 bytes by type, so a value that exists has the right length.

use std::fmt;

/// The SHA-1 of a torrent's bencoded `info` dictionary: a swarm's name.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct InfoHash(pub [u8; 20]);

/// A peer's self-chosen 20-byte id (`-FS0100-` followed by 12 random bytes for ours).
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct PeerId(pub [u8; 20]);

/// A string that should have been 40 hex digits (or 32 base32 characters) was not.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("not a 20-byte id in hex (40 digits) or base32 (32 characters): {0:?}")]
pub struct IdParseError(pub String);

macro_rules! twenty_byte_id {
    ($ty:ident) => {
        impl $ty {
            /// The raw bytes.
            pub fn as_bytes(&self) -> &[u8; 20] {
                &self.0
            }

            /// Lower-case hex, 40 characters.
            pub fn to_hex(&self) -> String {
                encode_hex(&self.0)
            }

            /// Parses 40 hex digits (either case).
            pub fn from_hex(s: &str) -> Result<Self, IdParseError> {
                decode_hex(s)
                    .map(Self)
                    .ok_or_else(|| IdParseError(s.to_owned()))
            }

            /// Upper-case RFC 4648 base32, 32 characters (the older magnet form).
            pub fn to_base32(&self) -> String {
                encode_base32(&self.0)
            }

            /// Parses 32 base32 characters (either case), as old magnet links carry them.
            pub fn from_base32(s: &str) -> Result<Self, IdParseError> {
                decode_base32(s)
                    .map(Self)
                    .ok_or_else(|| IdParseError(s.to_owned()))
            }

            /// Takes exactly 20 bytes; anything else is `None`.
            pub fn from_slice(bytes: &[u8]) -> Option<Self> {
                <[u8; 20]>::try_from(bytes).ok().map(Self)
            }
        }

        impl fmt::Debug for $ty {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, concat!(stringify!($ty), "({})"), self.to_hex())
            }
        }

        impl fmt::Display for $ty {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.to_hex())
            }
        }
    };
}

twenty_byte_id!(InfoHash);
twenty_byte_id!(PeerId);

impl PeerId {
    /// Our client's prefix, Azureus style: `-FS` + version `0100` + `-`.
    pub const PREFIX: &'static [u8; 8] = b"-FS0100-";

    /// A peer id with our prefix; the 12 random bytes come from the caller.
    pub fn generate(random: [u8; 12]) -> Self {
        let mut id = [0u8; 20];
        id[..8].copy_from_slice(Self::PREFIX);
        id[8..].copy_from_slice(&random);
        PeerId(id)
    }
}

// Hex and base32 of exactly 20 bytes, by hand: a general codec crate
// (data-encoding) cost the browser bundle ~38 KB of wasm for these four
// functions, and 20 bytes are all we ever encode.

const HEX_DIGITS: &[u8; 16] = b"0123456789abcdef";
const BASE32_ALPHABET: &[u8; 32] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";

fn encode_hex(bytes: &[u8; 20]) -> String {
    let mut out = String::with_capacity(40);
    for &byte in bytes {
        out.push(char::from(HEX_DIGITS[usize::from(byte >> 4)]));
        out.push(char::from(HEX_DIGITS[usize::from(byte & 0xf)]));
    }
    out
}

/// Exactly 40 hex digits, either case; anything else is `None`.
fn decode_hex(s: &str) -> Option<[u8; 20]> {
    fn digit(c: u8) -> Option<u8> {
        match c {
            b'0'..=b'9' => Some(c - b'0'),
            b'a'..=b'f' => Some(c - b'a' + 10),
            b'A'..=b'F' => Some(c - b'A' + 10),
            _ => None,
        }
    }
    if s.len() != 40 {
        return None;
    }
    let mut out = [0u8; 20];
    for (byte, pair) in out.iter_mut().zip(s.as_bytes().chunks_exact(2)) {
        let &[high, low] = pair else { return None };
        *byte = digit(high)? << 4 | digit(low)?;
    }
    Some(out)
}

/// RFC 4648 base32 without padding: 20 bytes are 4 groups of 5 bytes, each
/// 8 characters of 5 bits.
fn encode_base32(bytes: &[u8; 20]) -> String {
    let mut out = String::with_capacity(32);
    for group in bytes.chunks_exact(5) {
        let bits = group.iter().fold(0u64, |acc, &b| acc << 8 | u64::from(b));
        for shift in (0..8).rev() {
            let index = (bits >> (shift * 5)) & 31;
            out.push(char::from(BASE32_ALPHABET[index as usize]));
        }
    }
    out
}

/// Exactly 32 base32 characters, either case, no padding; anything else is `None`.
fn decode_base32(s: &str) -> Option<[u8; 20]> {
    fn value(c: u8) -> Option<u64> {
        let v = match c {
            b'A'..=b'Z' => c - b'A',
            b'a'..=b'z' => c - b'a',
            b'2'..=b'7' => c - b'2' + 26,
            _ => return None,
        };
        Some(u64::from(v))
    }
    if s.len() != 32 {
        return None;
    }
    let mut out = [0u8; 20];
    for (bytes, chars) in out.chunks_exact_mut(5).zip(s.as_bytes().chunks_exact(8)) {
        let mut bits = 0u64;
        for &c in chars {
            bits = bits << 5 | value(c)?;
        }
        for (i, byte) in bytes.iter_mut().enumerate() {
            *byte = (bits >> (32 - 8 * i)) as u8;
        }
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hex_round_trip_and_bad_lengths() {
        let h = InfoHash([0xab; 20]);
        assert_eq!(InfoHash::from_hex(&h.to_hex()), Ok(h));
        assert_eq!(InfoHash::from_hex(&h.to_hex().to_uppercase()), Ok(h));
        assert!(InfoHash::from_hex("abcd").is_err());
        assert!(InfoHash::from_hex(&"zz".repeat(20)).is_err());
        assert!(InfoHash::from_slice(&[0; 19]).is_none());
    }

    #[test]
    fn base32_round_trip_either_case_and_bad_input() {
        let h = InfoHash(*b"\x01\x23\x45\x67\x89\xab\xcd\xef0123456789ab");
        let b32 = h.to_base32();
        assert_eq!(b32.len(), 32);
        assert_eq!(InfoHash::from_base32(&b32), Ok(h));
        assert_eq!(InfoHash::from_base32(&b32.to_lowercase()), Ok(h));
        assert!(InfoHash::from_base32(&b32[..31]).is_err());
        assert!(InfoHash::from_base32(&"1".repeat(32)).is_err());
        assert!(InfoHash::from_base32(&h.to_hex()).is_err());
    }

    #[test]
    fn known_vectors() {
        let h = InfoHash(
            *b"\x01\x23\x45\x67\x89\xab\xcd\xef\x01\x23\x45\x67\x89\xab\xcd\xef\x01\x23\x45\x67",
        );
        assert_eq!(h.to_hex(), "0123456789abcdef0123456789abcdef01234567");
        assert_eq!(h.to_base32(), "AERUKZ4JVPG66AJDIVTYTK6N54ASGRLH");
        let counting = PeerId(std::array::from_fn(|i| i as u8));
        assert_eq!(
            counting.to_hex(),
            "000102030405060708090a0b0c0d0e0f10111213"
        );
        assert_eq!(counting.to_base32(), "AAAQEAYEAUDAOCAJBIFQYDIOB4IBCEQT");
        assert_eq!(
            PeerId::from_base32("AAAQEAYEAUDAOCAJBIFQYDIOB4IBCEQT"),
            Ok(counting)
        );
    }

    #[test]
    fn garbage_is_an_error_not_a_panic() {
        let bad = [
            String::new(),
            "é".repeat(20),
            format!("{}g", "0".repeat(39)),
            format!("{} ", "0".repeat(39)),
            "0".repeat(41),
            "0".repeat(38),
            format!("{}=", "A".repeat(31)),
            format!("{}1", "A".repeat(31)),
            format!("{}8", "A".repeat(31)),
            "A".repeat(33),
            "\u{1F600}".repeat(8),
            "\u{1F600}".repeat(10),
        ];
        for s in bad.iter().map(String::as_str) {
            assert_eq!(
                InfoHash::from_hex(s),
                Err(IdParseError(s.to_owned())),
                "{s:?}"
            );
            assert_eq!(
                InfoHash::from_base32(s),
                Err(IdParseError(s.to_owned())),
                "{s:?}"
            );
        }
    }

    /// The hand-written codecs against data-encoding (the crate they
    /// replaced), on random ids and on random strings of the lengths that matter.
    #[test]
    fn same_answers_as_data_encoding() {
        let mut rng = fastrand::Rng::with_seed(20);
        let pick = |rng: &mut fastrand::Rng| {
            let alphabet = b"0123456789abcdefABCDEFghxyzGHXYZ=2345678 ";
            alphabet[rng.usize(..alphabet.len())]
        };
        for _ in 0..20_000 {
            let id = InfoHash(std::array::from_fn(|_| rng.u8(..)));
            assert_eq!(id.to_hex(), data_encoding::HEXLOWER.encode(&id.0));
            assert_eq!(id.to_base32(), data_encoding::BASE32_NOPAD.encode(&id.0));
            assert_eq!(InfoHash::from_hex(&id.to_hex()), Ok(id));
            assert_eq!(
                InfoHash::from_base32(&id.to_base32().to_lowercase()),
                Ok(id)
            );

            // A valid encoding, maybe with one character replaced, or random characters.
            let bytes = match rng.u8(..4) {
                0 => id.to_hex().into_bytes(),
                1 => id.to_base32().into_bytes(),
                2 => {
                    let mut valid = if rng.bool() {
                        id.to_hex()
                    } else {
                        id.to_base32()
                    };
                    let at = rng.usize(..valid.len());
                    valid.replace_range(at..=at, "");
                    let mut bytes = valid.into_bytes();
                    bytes.insert(at, pick(&mut rng));
                    bytes
                }
                _ => {
                    let len = [31, 32, 33, 39, 40, 41][rng.usize(..6)];
                    (0..len).map(|_| pick(&mut rng)).collect()
                }
            };
            let Ok(s) = String::from_utf8(bytes) else {
                continue;
            };
            let hex = data_encoding::HEXLOWER_PERMISSIVE.decode(s.as_bytes()).ok();
            let hex = hex.and_then(|d| InfoHash::from_slice(&d));
            assert_eq!(InfoHash::from_hex(&s).ok(), hex, "{s:?}");
            let b32 = data_encoding::BASE32_NOPAD
                .decode(s.to_ascii_uppercase().as_bytes())
                .ok();
            let b32 = b32.and_then(|d| InfoHash::from_slice(&d));
            assert_eq!(InfoHash::from_base32(&s).ok(), b32, "{s:?}");
        }
    }

    #[test]
    fn generated_peer_id_has_our_prefix() {
        let id = PeerId::generate([7; 12]);
        assert_eq!(&id.0[..8], PeerId::PREFIX);
        assert_eq!(id.0[8..], [7; 12]);
    }
}
