//! The fanswarm server, in process, with a library of one synthesized track.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use anyhow::Context;
use tokio::net::TcpListener;

use signal_server::catalog::Track;
use signal_server::state::{AppState, Paths};
use signal_server::tracker::Limits;

/// A running server and what it publishes.
pub struct TestServer {
    /// `http://localhost:<port>`: a secure context, so service workers run.
    pub base: String,
    /// Where it listens (all interfaces of the namespace).
    pub addr: SocketAddr,
    /// The one published track.
    pub track: Track,
    /// The track's bytes, to compare pages against.
    pub file: Vec<u8>,
    _library: tempfile::TempDir,
}

/// The repository's `web/` directory (with `pkg/` from `scripts/build-web`).
pub fn web_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../web")
}

/// Publishes a WAV track of `seconds` and serves it with the real router.
pub async fn start(seconds: u32) -> anyhow::Result<TestServer> {
    let web = web_dir();
    anyhow::ensure!(
        web.join("pkg/client_wasm_bg.wasm").is_file(),
        "{}/pkg is missing: run scripts/build-web first",
        web.display()
    );
    let library = tempfile::tempdir()?;
    let samples = signal_server::demo::synthesize(seconds, 7);
    let file = signal_server::demo::wav_bytes(&samples, signal_server::demo::SAMPLE_RATE);
    std::fs::write(library.path().join("e2e track.wav"), &file)?;

    let listener = TcpListener::bind("0.0.0.0:0").await?;
    let addr = listener.local_addr()?;
    let base = format!("http://localhost:{}", addr.port());
    let catalog =
        signal_server::publish::publish_library(library.path().to_path_buf(), base.clone())
            .await
            .context("publishing the test library")?;
    let track = catalog
        .tracks()
        .first()
        .cloned()
        .context("the library published no track")?;
    let paths = Paths {
        media_dir: library.path().to_path_buf(),
        web_dir: web,
    };
    let state = AppState::new(catalog, paths, Limits::default());
    tokio::spawn(signal_server::serve(listener, state));
    Ok(TestServer {
        base,
        addr,
        track,
        file,
        _library: library,
    })
}
