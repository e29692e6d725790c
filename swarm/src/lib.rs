//! fanswarm's engine: everything a peer decides and nothing it does.
//!
//! This crate has no I/O, no clock, no timers and no randomness of its own.
//! Shells (the browser peer in `client-wasm`, the native peer in
//! `signal-server`) feed it events with the current time — `handle_*(now, …)`
//! — and then drain what it wants done with `poll()` until it answers
//! "nothing more, wake me at T". The same engine therefore runs in a page,
//! in a native process, and a thousand times over in the deterministic
//! simulator of this crate's tests.
//!
//! Modules, bottom up:
//! - [`ids`]: `InfoHash` and `PeerId`, 20 bytes by type.
//! - [`metainfo`] and [`magnet`]: BEP 3 torrents and magnet URIs.
//! - [`wire`]: the peer wire codec (BEP 3, 6, 9, 10) over a byte stream.
//! - [`tracker`]: the WebTorrent WebSocket tracker messages (serde types).
//! - [`announce`]: the tracker client state machine built on them.
//! - [`bitfield`], [`picker`]: which pieces exist where, and what to ask next.
//! - [`engine`]: the per-torrent state machine that ties them together.
//! - [`join`]: joining by a bare magnet: metadata from peers, then the engine.
//! - [`sorted`]: small ordered maps and sets (a sorted `Vec`, not a B-tree).
//! - [`node`]: one running peer: engine, tracker client, connection table
//!   and web-seed planning, driven alike by both shells and the simulator.
#![forbid(unsafe_code)]

pub mod announce;
pub mod bitfield;
pub mod engine;
pub mod error;
pub mod ids;
pub mod join;
pub mod magnet;
pub mod metainfo;
pub mod node;
pub mod picker;
pub mod sorted;
pub mod time;
pub mod tracker;
pub mod wire;

pub use ids::{InfoHash, PeerId};
