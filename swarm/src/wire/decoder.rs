//! Placeholder: being written.

/// Placeholder.
#[derive(Debug)]
pub struct Decoder;

/// Placeholder.
#[derive(Debug, thiserror::Error)]
#[error("placeholder")]
pub struct WireError;
