//! fanswarm's browser peer: Rust compiled to WebAssembly, driving the
//! `swarm` engine inside a page.
//!
//! One `swarm::node::Node` per track decides everything (the engine, the
//! tracker client, the connection table, web-seed planning); this crate is
//! the thin shell that does what it asks with browser objects:
//! - [`tracker_ws`]: one WebSocket per tracker;
//! - [`rtc`]: one `RTCPeerConnection` + ordered reliable data channel per peer;
//! - [`channel`]: message sizes and `bufferedAmount` backpressure;
//! - [`webseed`]: HTTP Range requests, bodies streamed back as they arrive;
//! - [`stream`]: the page's half of service-worker streaming;
//! - [`file`]: one file of a multi-file torrent (a track of an album);
//! - [`session`]: one playing track, owning all of the above;
//! - [`api`]: `play(audio, options)` and the `Track` object JavaScript sees;
//! - [`share`]: `share(file, options)`: a file hashed into a torrent and
//!   seeded from the tab.
#![forbid(unsafe_code)]

pub mod api;
pub mod channel;
pub mod file;
pub mod js;
pub mod rtc;
pub mod session;
pub mod share;
pub mod stream;
pub mod tracker_ws;
pub mod webseed;

use wasm_bindgen::prelude::wasm_bindgen;

pub use api::{Track, TrackStats, play};
pub use share::share;

/// The version of the fanswarm client, so a page can tell what it loaded.
#[wasm_bindgen]
pub fn version() -> String {
    env!("CARGO_PKG_VERSION").to_owned()
}
