//! Helpers for fanswarm's end-to-end tests: a private network namespace,
//! the server with a track, and headless Chromium driven over the DevTools
//! protocol.
//!
//! Why a crate of its own: these tests need the server, the built browser
//! bundle and a browser at once, so they belong to no single crate; kept
//! apart, `cargo test -p swarm` or `-p signal-server` stays fast and needs
//! no Chromium.

pub mod browser;
pub mod netns;
pub mod server;
pub mod web;
