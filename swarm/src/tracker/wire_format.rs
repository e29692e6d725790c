//! How the tracker types meet JSON: 20-byte ids as 20-character strings
//! (alone, optional, in a list, as map keys) and lenient byte counters.

use std::collections::BTreeMap;
use std::fmt;

use serde::de::{self, Deserializer, SeqAccess, Visitor};
use serde::ser::{SerializeMap, SerializeSeq, Serializer};
use serde::{Deserialize, Serialize};

use super::{OfferId, ScrapeStatistics, id_bytes, id_to_string};
use crate::ids::{InfoHash, PeerId};

/// Types carried as 20-character id strings.
pub(in crate::tracker) trait TwentyBytes: Sized {
    fn bytes(&self) -> &[u8; 20];
    fn from_bytes(bytes: [u8; 20]) -> Self;
}

impl TwentyBytes for InfoHash {
    fn bytes(&self) -> &[u8; 20] {
        &self.0
    }
    fn from_bytes(bytes: [u8; 20]) -> Self {
        InfoHash(bytes)
    }
}

impl TwentyBytes for PeerId {
    fn bytes(&self) -> &[u8; 20] {
        &self.0
    }
    fn from_bytes(bytes: [u8; 20]) -> Self {
        PeerId(bytes)
    }
}

impl TwentyBytes for OfferId {
    fn bytes(&self) -> &[u8; 20] {
        &self.0
    }
    fn from_bytes(bytes: [u8; 20]) -> Self {
        OfferId(bytes)
    }
}

/// Serde wrapper for one id, used inside sequences and map keys.
struct Wire<T>(T);

impl<T: TwentyBytes> Serialize for Wire<&T> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&id_to_string(self.0.bytes()))
    }
}

impl<'de, T: TwentyBytes> Deserialize<'de> for Wire<T> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct IdVisitor;
        impl Visitor<'_> for IdVisitor {
            type Value = [u8; 20];
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a 20-character string, one character per byte")
            }
            fn visit_str<E: de::Error>(self, s: &str) -> Result<[u8; 20], E> {
                id_bytes(s).map_err(E::custom)
            }
        }
        deserializer
            .deserialize_str(IdVisitor)
            .map(|b| Wire(T::from_bytes(b)))
    }
}

pub(super) mod id_string {
    use super::*;

    pub(in crate::tracker) fn serialize<T: TwentyBytes, S: Serializer>(
        id: &T,
        serializer: S,
    ) -> Result<S::Ok, S::Error> {
        Wire(id).serialize(serializer)
    }

    pub(in crate::tracker) fn deserialize<'de, T: TwentyBytes, D: Deserializer<'de>>(
        deserializer: D,
    ) -> Result<T, D::Error> {
        Wire::<T>::deserialize(deserializer).map(|w| w.0)
    }
}

pub(super) mod opt_id_string {
    use super::*;

    pub(in crate::tracker) fn serialize<T: TwentyBytes, S: Serializer>(
        id: &Option<T>,
        serializer: S,
    ) -> Result<S::Ok, S::Error> {
        match id {
            Some(id) => Wire(id).serialize(serializer),
            None => serializer.serialize_none(),
        }
    }

    pub(in crate::tracker) fn deserialize<'de, T: TwentyBytes, D: Deserializer<'de>>(
        deserializer: D,
    ) -> Result<Option<T>, D::Error> {
        Option::<Wire<T>>::deserialize(deserializer).map(|o| o.map(|w| w.0))
    }
}

pub(super) mod one_or_many_ids {
    use super::*;

    pub(in crate::tracker) fn serialize<S: Serializer>(
        ids: &[InfoHash],
        serializer: S,
    ) -> Result<S::Ok, S::Error> {
        let mut seq = serializer.serialize_seq(Some(ids.len()))?;
        for id in ids {
            seq.serialize_element(&Wire(id))?;
        }
        seq.end()
    }

    pub(in crate::tracker) fn deserialize<'de, D: Deserializer<'de>>(
        deserializer: D,
    ) -> Result<Vec<InfoHash>, D::Error> {
        struct OneOrMany;
        impl<'de> Visitor<'de> for OneOrMany {
            type Value = Vec<InfoHash>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("an info hash string or a list of them")
            }
            fn visit_str<E: de::Error>(self, s: &str) -> Result<Self::Value, E> {
                id_bytes(s).map(|b| vec![InfoHash(b)]).map_err(E::custom)
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
                // Capacity is not taken from the peer: the tracker caps the count.
                let mut out = Vec::new();
                while let Some(Wire(id)) = seq.next_element::<Wire<InfoHash>>()? {
                    out.push(id);
                }
                Ok(out)
            }
        }
        deserializer.deserialize_any(OneOrMany)
    }
}

pub(super) mod id_keyed_map {
    use super::*;

    pub(in crate::tracker) fn serialize<S: Serializer>(
        map: &BTreeMap<InfoHash, ScrapeStatistics>,
        serializer: S,
    ) -> Result<S::Ok, S::Error> {
        let mut out = serializer.serialize_map(Some(map.len()))?;
        for (id, stats) in map {
            out.serialize_entry(&Wire(id), stats)?;
        }
        out.end()
    }

    pub(in crate::tracker) fn deserialize<'de, D: Deserializer<'de>>(
        deserializer: D,
    ) -> Result<BTreeMap<InfoHash, ScrapeStatistics>, D::Error> {
        let raw = BTreeMap::<String, ScrapeStatistics>::deserialize(deserializer)?;
        raw.into_iter()
            .map(|(k, v)| {
                id_bytes(&k)
                    .map(|b| (InfoHash(b), v))
                    .map_err(de::Error::custom)
            })
            .collect()
    }
}

/// Counters a JS client may send as integers, floats or `null`.
pub(super) mod lenient_count {
    use super::*;

    pub(in crate::tracker) fn serialize<S: Serializer>(
        v: &Option<u64>,
        s: S,
    ) -> Result<S::Ok, S::Error> {
        match v {
            Some(v) => s.serialize_u64(*v),
            None => s.serialize_none(),
        }
    }

    pub(in crate::tracker) fn deserialize<'de, D: Deserializer<'de>>(
        d: D,
    ) -> Result<Option<u64>, D::Error> {
        match Option::<serde_json::Number>::deserialize(d)? {
            None => Ok(None),
            Some(n) => match (n.as_u64(), n.as_f64()) {
                (Some(v), _) => Ok(Some(v)),
                (None, Some(f)) if f.is_finite() && f >= 0.0 => {
                    // Saturating float-to-int: a fractional byte count is a client quirk.
                    #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
                    Ok(Some(f as u64))
                }
                _ => Err(de::Error::custom(format!(
                    "expected a non-negative count, got {n}"
                ))),
            },
        }
    }
}
