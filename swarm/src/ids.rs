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
                data_encoding::HEXLOWER.encode(&self.0)
            }

            /// Parses 40 hex digits (either case).
            pub fn from_hex(s: &str) -> Result<Self, IdParseError> {
                let decoded = data_encoding::HEXLOWER_PERMISSIVE
                    .decode(s.as_bytes())
                    .map_err(|_| IdParseError(s.to_owned()))?;
                Self::from_slice(&decoded).ok_or_else(|| IdParseError(s.to_owned()))
            }

            /// Upper-case RFC 4648 base32, 32 characters (the older magnet form).
            pub fn to_base32(&self) -> String {
                data_encoding::BASE32_NOPAD.encode(&self.0)
            }

            /// Parses 32 base32 characters (either case), as old magnet links carry them.
            pub fn from_base32(s: &str) -> Result<Self, IdParseError> {
                let decoded = data_encoding::BASE32_NOPAD
                    .decode(s.to_ascii_uppercase().as_bytes())
                    .map_err(|_| IdParseError(s.to_owned()))?;
                Self::from_slice(&decoded).ok_or_else(|| IdParseError(s.to_owned()))
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
    fn generated_peer_id_has_our_prefix() {
        let id = PeerId::generate([7; 12]);
        assert_eq!(&id.0[..8], PeerId::PREFIX);
        assert_eq!(id.0[8..], [7; 12]);
    }
}
