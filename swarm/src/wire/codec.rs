//! Placeholder: being written.

/// Placeholder.
#[derive(Debug, thiserror::Error)]
#[error("placeholder")]
pub struct DecodeError;
