//! Helpers for fanswarm's end-to-end tests: a private network namespace,
//! the server with a track, real browsers (Chromium over DevTools, Firefox
//! ESR over WebDriver BiDi, WebKitGTK over classic WebDriver) behind one
//! API, and the `<fanswarm-player>` helpers the tests share.
//!
//! Why a crate of its own: these tests need the server, the built browser
//! bundle and a browser at once, so they belong to no single crate; kept
//! apart, `cargo test -p swarm` or `-p signal-server` stays fast and needs
//! no Chromium.

pub mod acme;
pub mod balancer;
pub mod bidi;
pub mod browser;
pub mod native;
pub mod netns;
pub mod player;
pub mod process;
pub mod redis;
pub mod server;
pub mod tls;
pub mod turn;
pub mod web;
pub mod webdriver;
