//! What the player tests need besides the browser: a second origin serving
//! an artist's pages, screenshots kept as artifacts, a viewport size.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use anyhow::Context;
use axum::Router;
use axum::response::Html;
use axum::routing::get;
use serde_json::json;
use tokio::net::TcpListener;

use crate::browser::{Browser, Page};

/// A static site on another origin than the fanswarm server: the artist's.
pub struct ForeignSite {
    /// `http://127.0.0.1:<port>`: another host than the server's
    /// `localhost`, so another origin, and still a secure context.
    pub base: String,
    /// Where it listens.
    pub addr: SocketAddr,
}

/// Serves each `(path, html)` page on `127.0.0.1:<free port>` until the
/// runtime ends.
pub async fn foreign_site(pages: Vec<(&'static str, String)>) -> anyhow::Result<ForeignSite> {
    let mut router = Router::new();
    for (path, html) in pages {
        router = router.route(path, get(move || async move { Html(html) }));
    }
    let listener = TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    tokio::spawn(async move { axum::serve(listener, router).await });
    Ok(ForeignSite {
        base: format!("http://127.0.0.1:{}", addr.port()),
        addr,
    })
}

/// [`foreign_site`] over HTTPS with `tls`: `https://127.0.0.1:<port>`, the
/// artist's site as it really is.
pub async fn foreign_site_tls(
    pages: Vec<(&'static str, String)>,
    tls: tokio_rustls::TlsAcceptor,
) -> anyhow::Result<ForeignSite> {
    let mut router = Router::new();
    for (path, html) in pages {
        router = router.route(path, get(move || async move { Html(html) }));
    }
    let listener = TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    tokio::spawn(signal_server::listen::accept_loop(
        listener,
        router,
        std::time::Duration::from_secs(10),
        Some(tls),
    ));
    Ok(ForeignSite {
        base: format!("https://127.0.0.1:{}", addr.port()),
        addr,
    })
}

/// `target/artifacts/`, created if needed: screenshots land here (kept by
/// CI as artifacts, never committed).
pub fn artifacts_dir() -> anyhow::Result<PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../target/artifacts");
    std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
    Ok(dir)
}

/// Emulates a window of `width` × `height` CSS pixels (a phone at 320).
pub async fn set_viewport(
    browser: &mut Browser,
    page: &Page,
    width: u32,
    height: u32,
) -> anyhow::Result<()> {
    browser
        .call(
            Some(page),
            "Emulation.setDeviceMetricsOverride",
            json!({ "width": width, "height": height, "deviceScaleFactor": 1, "mobile": width < 600 }),
        )
        .await?;
    Ok(())
}

/// Saves a PNG of the page's viewport as `target/artifacts/<name>.png` and
/// returns the path.
pub async fn screenshot(browser: &mut Browser, page: &Page, name: &str) -> anyhow::Result<PathBuf> {
    let shot = browser
        .call(
            Some(page),
            "Page.captureScreenshot",
            json!({ "format": "png" }),
        )
        .await?;
    let data = shot["data"].as_str().context("screenshot data")?;
    let png = data_encoding::BASE64
        .decode(data.as_bytes())
        .context("screenshot base64")?;
    let path = artifacts_dir()?.join(format!("{name}.png"));
    std::fs::write(&path, png).with_context(|| format!("writing {}", path.display()))?;
    Ok(path)
}
