//! Magnet URIs (BEP 9): an info hash plus hints for finding the swarm.
//!
//! Parsing accepts what WebTorrent and the common desktop clients write:
//! `xt=urn:btih:` in 40 hex digits or 32 base32 characters (either case),
//! `dn`, `tr`, `ws`, `xs` (each possibly repeated, also as `tr.1`, `tr.2` …),
//! `xl`. Values are percent-decoded; `+` in `dn` means a space. Unknown
//! parameters are ignored. [`Magnet`]'s `Display` writes the canonical form
//! (hex info hash, every value percent-encoded) that [`Magnet::parse`] reads back.

use std::collections::HashSet;
use std::fmt;
use std::str::FromStr;

use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, percent_decode_str, utf8_percent_encode};

use crate::InfoHash;

/// A parsed magnet link.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Magnet {
    /// The swarm: `xt=urn:btih:…`.
    pub info_hash: InfoHash,
    /// `dn`: a name to show until the metadata arrives.
    pub display_name: Option<String>,
    /// `tr`: tracker URLs, each once, in order.
    pub trackers: Vec<String>,
    /// `ws`: BEP 19 web seed URLs.
    pub web_seeds: Vec<String>,
    /// `xs`: exact sources, URLs of the `.torrent` file.
    pub exact_sources: Vec<String>,
    /// `xl`: the total length in bytes.
    pub exact_length: Option<u64>,
}

/// Why a string is not a usable magnet link.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MagnetError {
    /// The string does not start with `magnet:?`.
    #[error("not a magnet link (expected `magnet:?…`)")]
    NotMagnet,
    /// No `xt=urn:btih:` parameter.
    #[error("no `xt=urn:btih:` parameter: a magnet link needs a BitTorrent info hash")]
    MissingInfoHash,
    /// The `urn:btih:` value is neither 40 hex digits nor 32 base32 characters.
    #[error("`xt` info hash {0:?} is neither 40 hex digits nor 32 base32 characters")]
    InvalidInfoHash(String),
    /// `xl` is not a non-negative integer.
    #[error("`xl` is not a length in bytes: {0:?}")]
    InvalidLength(String),
    /// A known parameter's value is not valid UTF-8 once percent-decoded.
    #[error("`{0}` is not valid UTF-8 once percent-decoded")]
    InvalidUtf8(&'static str),
}

impl Magnet {
    /// A magnet with only an info hash.
    pub fn new(info_hash: InfoHash) -> Self {
        Magnet {
            info_hash,
            display_name: None,
            trackers: Vec::new(),
            web_seeds: Vec::new(),
            exact_sources: Vec::new(),
            exact_length: None,
        }
    }

    /// Parses a magnet URI.
    pub fn parse(s: &str) -> Result<Magnet, MagnetError> {
        let query = strip_scheme(s.trim()).ok_or(MagnetError::NotMagnet)?;
        let mut info_hash = None;
        let mut magnet = Magnet::new(InfoHash([0; 20]));
        for pair in query.split('&').filter(|pair| !pair.is_empty()) {
            let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
            match base_key(key) {
                "xt" if info_hash.is_none() => info_hash = parse_xt(&decode(value, "xt")?)?,
                "dn" => magnet.display_name = Some(decode(&value.replace('+', " "), "dn")?),
                "tr" => magnet.trackers.push(decode(value, "tr")?),
                "ws" => magnet.web_seeds.push(decode(value, "ws")?),
                "xs" => magnet.exact_sources.push(decode(value, "xs")?),
                "xl" => {
                    let length = decode(value, "xl")?;
                    magnet.exact_length = Some(
                        length
                            .parse()
                            .map_err(|_| MagnetError::InvalidLength(length))?,
                    );
                }
                _ => {}
            }
        }
        magnet.info_hash = info_hash.ok_or(MagnetError::MissingInfoHash)?;
        for list in [
            &mut magnet.trackers,
            &mut magnet.web_seeds,
            &mut magnet.exact_sources,
        ] {
            dedup_non_empty(list);
        }
        Ok(magnet)
    }
}

impl FromStr for Magnet {
    type Err = MagnetError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Magnet::parse(s)
    }
}

impl fmt::Display for Magnet {
    /// `magnet:?xt=urn:btih:<hex>&dn=…&xl=…&tr=…&ws=…&xs=…`, values percent-encoded.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "magnet:?xt=urn:btih:{}", self.info_hash.to_hex())?;
        if let Some(name) = &self.display_name {
            write!(f, "&dn={}", utf8_percent_encode(name, COMPONENT))?;
        }
        if let Some(length) = self.exact_length {
            write!(f, "&xl={length}")?;
        }
        let lists = [
            ("tr", &self.trackers),
            ("ws", &self.web_seeds),
            ("xs", &self.exact_sources),
        ];
        for (key, values) in lists {
            for value in values {
                write!(f, "&{key}={}", utf8_percent_encode(value, COMPONENT))?;
            }
        }
        Ok(())
    }
}

/// What JavaScript's `encodeURIComponent` leaves alone, minus `!'()*` which it
/// also keeps: encoding them too is always safe to decode.
const COMPONENT: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'_')
    .remove(b'.')
    .remove(b'~');

/// The query after `magnet:?` (scheme in any case).
fn strip_scheme(s: &str) -> Option<&str> {
    let (scheme, rest) = s.split_once(':')?;
    if !scheme.eq_ignore_ascii_case("magnet") {
        return None;
    }
    rest.strip_prefix('?')
}

/// `tr.1` → `tr`: some clients number repeated parameters.
fn base_key(key: &str) -> &str {
    match key.split_once('.') {
        Some((base, index)) if index.bytes().all(|b| b.is_ascii_digit()) => base,
        _ => key,
    }
}

/// The info hash of an `xt` value, `None` for other URN kinds (`urn:btmh:` …).
fn parse_xt(value: &str) -> Result<Option<InfoHash>, MagnetError> {
    let Some((urn, hash)) = value.rsplit_once(':') else {
        return Ok(None);
    };
    if !urn.eq_ignore_ascii_case("urn:btih") {
        return Ok(None);
    }
    let parsed = match hash.len() {
        40 => InfoHash::from_hex(hash),
        32 => InfoHash::from_base32(hash),
        _ => return Err(MagnetError::InvalidInfoHash(hash.to_owned())),
    };
    parsed
        .map(Some)
        .map_err(|_| MagnetError::InvalidInfoHash(hash.to_owned()))
}

fn decode(value: &str, key: &'static str) -> Result<String, MagnetError> {
    percent_decode_str(value)
        .decode_utf8()
        .map(|decoded| decoded.into_owned())
        .map_err(|_| MagnetError::InvalidUtf8(key))
}

/// Drops empty and repeated values, keeping the first of each in order.
pub(crate) fn dedup_non_empty(list: &mut Vec<String>) {
    let mut seen = HashSet::new();
    list.retain(|value| !value.is_empty() && seen.insert(value.clone()));
}
