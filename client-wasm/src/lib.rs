//! fanswarm's browser peer. Not built yet beyond this facade: the shell that
//! drives `swarm`'s engine from a page (WebSocket tracker client, WebRTC data
//! channels, web seed, service-worker streaming) is issue 4.

use wasm_bindgen::prelude::wasm_bindgen;

/// The version of the fanswarm client, so a page can tell what it loaded.
#[wasm_bindgen]
pub fn version() -> String {
    env!("CARGO_PKG_VERSION").to_owned()
}
