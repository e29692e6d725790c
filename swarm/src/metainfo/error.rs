//! Everything that can be wrong with a torrent file, an info dictionary or a builder's input.

/// Why a torrent (or an `info` dictionary fetched over ut_metadata) was refused.
///
/// Every way bytes from a file or a peer can be wrong ends here; nothing in
/// [`crate::metainfo`] panics on input.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MetainfoError {
    /// The bytes are not well-formed bencode (truncated, bad token, unsorted or duplicate keys, too deep).
    #[error("malformed bencode: {0}")]
    Bencode(String),
    /// The input was empty.
    #[error("no data: the input is empty")]
    Empty,
    /// Bytes follow the end of the top-level dictionary.
    #[error("unexpected data after the end of the dictionary")]
    TrailingData,
    /// A value has the wrong bencode type (for example a string where an integer belongs).
    #[error("`{field}` should be {expected}")]
    WrongType {
        /// The dictionary key (or a description of the position) that holds the value.
        field: &'static str,
        /// What the value should have been.
        expected: &'static str,
    },
    /// A required key is absent.
    #[error("missing required field `{0}`")]
    MissingField(&'static str),
    /// An integer does not fit in a signed 64-bit number.
    #[error("`{field}` is not a 64-bit integer: {value}")]
    IntegerOverflow {
        /// The dictionary key that holds the value.
        field: &'static str,
        /// The digits as found.
        value: String,
    },
    /// A length is negative.
    #[error("`{field}` is negative: {value}")]
    NegativeLength {
        /// The dictionary key that holds the value.
        field: &'static str,
        /// The value as found.
        value: i64,
    },
    /// A string that is shown or used as a name or URL is not valid UTF-8.
    #[error("`{0}` is not valid UTF-8")]
    InvalidUtf8(&'static str),
    /// `piece length` is zero, negative or above [`super::MAX_PIECE_LENGTH`].
    #[error("piece length {0} is outside 1..=64 MiB")]
    BadPieceLength(i64),
    /// `pieces` is not a whole number of 20-byte SHA-1 hashes.
    #[error("`pieces` is {0} bytes long, not a multiple of 20")]
    PiecesNotMultipleOf20(usize),
    /// The number of piece hashes does not match the total length and the piece length.
    #[error("expected {expected} piece hashes for the data's length, found {found}")]
    PieceCountMismatch {
        /// `ceil(total length / piece length)`.
        expected: u64,
        /// Hashes present in `pieces`.
        found: u64,
    },
    /// The info dictionary has both `length` (single-file) and `files` (multi-file).
    #[error("`info` has both `length` and `files`")]
    BothLengthAndFiles,
    /// The info dictionary has neither `length` nor `files`.
    #[error("`info` has neither `length` nor `files`")]
    NeitherLengthNorFiles,
    /// A BitTorrent v2-only torrent (`meta version` 2, `file tree`, no v1 pieces): WebTorrent speaks v1.
    #[error("v2-only torrent: no v1 `length`/`files`/`pieces` (hybrid v1+v2 torrents are fine)")]
    V2Only,
    /// A multi-file torrent lists no files.
    #[error("`files` is empty")]
    NoFiles,
    /// More files than [`super::MAX_FILES`].
    #[error("more than {0} files")]
    TooManyFiles(usize),
    /// The total length is above [`super::MAX_TOTAL_LENGTH`].
    #[error("total length is above the cap of {0} bytes")]
    TooLarge(u64),
    /// The total length is zero: there is nothing to share.
    #[error("the torrent holds no data (total length 0)")]
    NoData,
    /// A file's `path` list is empty.
    #[error("file {0} has an empty path")]
    EmptyPath(usize),
    /// A file's path has more components than [`super::MAX_PATH_DEPTH`].
    #[error("a file path has more than {0} components")]
    PathTooDeep(usize),
    /// A name or path component could escape the download directory or is otherwise unusable.
    #[error("unsafe path component {component:?}: {reason}")]
    UnsafePathComponent {
        /// The component as found.
        component: String,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// Two files have the same path, or one file's path is another's directory.
    #[error("path {0:?} is used twice (as a file, or as a file and a directory)")]
    PathCollision(String),
    /// Metadata fetched for a magnet link does not hash to the magnet's info hash.
    #[error("info dictionary hashes to {found}, expected {expected}")]
    InfoHashMismatch {
        /// The info hash of the magnet link.
        expected: crate::InfoHash,
        /// The SHA-1 of the bytes received.
        found: crate::InfoHash,
    },
    /// A multi-file builder was given no files.
    #[error("the builder has no files")]
    BuilderNoFiles,
}

impl From<bendy::decoding::Error> for MetainfoError {
    fn from(error: bendy::decoding::Error) -> Self {
        MetainfoError::Bencode(error.to_string())
    }
}
