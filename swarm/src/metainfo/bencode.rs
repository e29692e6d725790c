//! Typed accessors over bendy's streaming decoder, and dictionary splicing for the encoder.
//!
//! bendy does the bencode work (tokens, nesting, key order, exact raw bytes of
//! a dictionary); this module only turns its objects into our types and its
//! failures into [`MetainfoError`]s, so the parsers above read like the spec.

use bendy::decoding::{Decoder, DictDecoder, Object};
use bendy::encoding::{Encoder, SortedDictEncoder};

use super::MetainfoError;

/// Deepest nesting accepted. A torrent needs five levels (torrent, info, files,
/// file, path); the cap keeps bendy's recursive skipping of unknown values shallow
/// enough for wasm's small stack.
const MAX_DEPTH: usize = 32;

/// Decodes `bytes` as exactly one dictionary and hands it to `read`.
///
/// Whatever `read` leaves unread is still checked for well-formedness, and any
/// byte after the dictionary is [`MetainfoError::TrailingData`].
pub(crate) fn read_dict<'ser, T>(
    bytes: &'ser [u8],
    read: impl FnOnce(&mut DictDecoder<'_, 'ser>) -> Result<T, MetainfoError>,
) -> Result<T, MetainfoError> {
    if bytes.is_empty() {
        return Err(MetainfoError::Empty);
    }
    let mut decoder = Decoder::new(bytes).with_max_depth(MAX_DEPTH);
    let value = {
        let Some(object) = decoder.next_object()? else {
            return Err(MetainfoError::Empty);
        };
        let Object::Dict(mut dict) = object else {
            return Err(MetainfoError::WrongType {
                field: "top level",
                expected: "a dictionary",
            });
        };
        let value = read(&mut dict)?;
        dict.consume_all()?;
        value
    };
    match decoder.next_object() {
        Ok(None) => Ok(value),
        Ok(Some(_)) | Err(_) => Err(MetainfoError::TrailingData),
    }
}

/// A bencode integer as `i64`.
pub(crate) fn integer(object: Object<'_, '_>, field: &'static str) -> Result<i64, MetainfoError> {
    match object {
        Object::Integer(digits) => digits.parse().map_err(|_| MetainfoError::IntegerOverflow {
            field,
            value: digits.to_owned(),
        }),
        _ => Err(MetainfoError::WrongType {
            field,
            expected: "an integer",
        }),
    }
}

/// A bencode integer that must not be negative.
pub(crate) fn length(object: Object<'_, '_>, field: &'static str) -> Result<u64, MetainfoError> {
    let value = integer(object, field)?;
    u64::try_from(value).map_err(|_| MetainfoError::NegativeLength { field, value })
}

/// A byte string, borrowed from the input.
pub(crate) fn bytes<'ser>(
    object: Object<'_, 'ser>,
    field: &'static str,
) -> Result<&'ser [u8], MetainfoError> {
    match object {
        Object::Bytes(bytes) => Ok(bytes),
        _ => Err(MetainfoError::WrongType {
            field,
            expected: "a string",
        }),
    }
}

/// A byte string that must be UTF-8.
pub(crate) fn text(object: Object<'_, '_>, field: &'static str) -> Result<String, MetainfoError> {
    utf8(bytes(object, field)?, field)
}

/// A byte string shown to people only: invalid UTF-8 is replaced, not refused,
/// because old tools wrote comments in local code pages.
pub(crate) fn text_lossy(
    object: Object<'_, '_>,
    field: &'static str,
) -> Result<String, MetainfoError> {
    Ok(String::from_utf8_lossy(bytes(object, field)?).into_owned())
}

/// A list of byte strings, borrowed from the input.
pub(crate) fn bytes_list<'ser>(
    object: Object<'_, 'ser>,
    field: &'static str,
) -> Result<Vec<&'ser [u8]>, MetainfoError> {
    let Object::List(mut list) = object else {
        return Err(MetainfoError::WrongType {
            field,
            expected: "a list of strings",
        });
    };
    let mut out = Vec::new();
    while let Some(item) = list.next_object()? {
        out.push(bytes(item, field)?);
    }
    Ok(out)
}

/// A list of UTF-8 strings.
pub(crate) fn text_list(
    object: Object<'_, '_>,
    field: &'static str,
) -> Result<Vec<String>, MetainfoError> {
    bytes_list(object, field)?
        .into_iter()
        .map(|item| utf8(item, field))
        .collect()
}

/// Owned UTF-8 text, or [`MetainfoError::InvalidUtf8`] naming the field.
pub(crate) fn utf8(bytes: &[u8], field: &'static str) -> Result<String, MetainfoError> {
    String::from_utf8(bytes.to_vec()).map_err(|_| MetainfoError::InvalidUtf8(field))
}

/// A whole bencoded dictionary; `pairs` emits its entries in sorted key order.
pub(crate) fn dict(
    pairs: impl FnOnce(&mut SortedDictEncoder<'_>) -> Result<(), bendy::encoding::Error>,
) -> Vec<u8> {
    let mut encoder = Encoder::new();
    encoder
        .emit_dict(|mut dict| pairs(&mut dict))
        .and_then(|()| encoder.get_output())
        .expect("callers emit well-formed pairs with keys in sorted order")
}

/// The encoded key/value pairs of a dictionary, without its `d` and `e`.
///
/// A bencoded dictionary is `d`, its pairs in key order, `e`; concatenating
/// bodies around a verbatim value therefore yields a valid dictionary. That is
/// how the torrent file keeps the `info` bytes exactly as hashed.
pub(crate) fn dict_body(
    pairs: impl FnOnce(&mut SortedDictEncoder<'_>) -> Result<(), bendy::encoding::Error>,
) -> Vec<u8> {
    let encoded = dict(pairs);
    encoded
        .get(1..encoded.len().saturating_sub(1))
        .expect("an encoded dictionary starts with `d` and ends with `e`")
        .to_vec()
}
