//! Metainfo and magnet tests: fixtures made by other tools, torrents we make,
//! round trips, and input that must be refused without panicking.
#![allow(clippy::unwrap_used)]

mod bad_input;
mod bencode;
mod create;
mod fixtures;
mod layout;
mod magnet;
