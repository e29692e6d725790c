//! Headless Chromium driven over the DevTools protocol, just enough for
//! end-to-end tests: open pages, navigate, evaluate JavaScript.
//!
//! The browser is Debian's `chromium`, never a downloaded one. It is killed
//! when the [`Browser`] drops, also when a test panics.

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use anyhow::{Context, anyhow, bail};
use futures_util::{SinkExt, StreamExt};
use serde_json::{Value, json};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

/// A running Chromium and the DevTools connection to it.
pub struct Browser {
    child: Child,
    ws: WebSocketStream<MaybeTlsStream<TcpStream>>,
    next_id: u64,
    _profile: tempfile::TempDir,
}

/// One tab, attached in flat mode.
#[derive(Debug, Clone)]
pub struct Page {
    session: String,
    target: String,
}

impl Browser {
    /// Starts headless Chromium with the flags WebRTC tests need
    /// (TOOLCHAIN.md): real host candidates instead of mDNS names, autoplay
    /// without a gesture.
    pub async fn launch() -> anyhow::Result<Browser> {
        Browser::launch_with(&[]).await
    }

    /// [`Browser::launch`] with more command-line flags.
    pub async fn launch_with(extra: &[String]) -> anyhow::Result<Browser> {
        let profile = tempfile::tempdir()?;
        let binary = std::env::var("CHROMIUM").unwrap_or_else(|_| "chromium".to_owned());
        let child = Command::new(&binary)
            .args([
                "--headless=new",
                "--no-sandbox",
                "--disable-gpu",
                "--no-first-run",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
                "--disable-features=WebRtcHideLocalIpsWithMdns",
                "--autoplay-policy=no-user-gesture-required",
                // Every tab is a listener's foreground page: no timer
                // throttling of the ones the test is not looking at.
                "--disable-background-timer-throttling",
                "--disable-renderer-backgrounding",
                "--disable-backgrounding-occluded-windows",
                "--remote-debugging-port=0",
            ])
            .args(extra)
            .arg(format!("--user-data-dir={}", profile.path().display()))
            .arg("about:blank")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .with_context(|| format!("starting {binary} (scripts/install-deps --test)"))?;
        let endpoint = devtools_endpoint(profile.path().join("DevToolsActivePort")).await?;
        let (ws, _) = tokio_tungstenite::connect_async(endpoint.as_str())
            .await
            .context("connecting to DevTools")?;
        Ok(Browser {
            child,
            ws,
            next_id: 0,
            _profile: profile,
        })
    }

    /// Opens a tab at `url` and waits until its document has loaded.
    pub async fn open(&mut self, url: &str) -> anyhow::Result<Page> {
        let page = self.create(url, false).await?;
        self.wait_loaded(&page, url).await?;
        Ok(page)
    }

    /// Opens a window of its own and starts loading `url` there without
    /// waiting, so several pages can load at once ([`Browser::wait_loaded`]
    /// waits). A window each, not tabs: Chromium defers media in a tab that
    /// was never shown, so only the last tab of a window would play.
    pub async fn open_unloaded(&mut self, url: &str) -> anyhow::Result<Page> {
        self.create(url, true).await
    }

    async fn create(&mut self, url: &str, new_window: bool) -> anyhow::Result<Page> {
        let target = self
            .call(
                None,
                "Target.createTarget",
                json!({ "url": "about:blank", "newWindow": new_window }),
            )
            .await?;
        let target_id = target["targetId"].as_str().context("targetId")?.to_owned();
        let attached = self
            .call(
                None,
                "Target.attachToTarget",
                json!({ "targetId": target_id, "flatten": true }),
            )
            .await?;
        let page = Page {
            session: attached["sessionId"]
                .as_str()
                .context("sessionId")?
                .to_owned(),
            target: target_id,
        };
        self.navigate(&page, url).await?;
        Ok(page)
    }

    /// Starts loading `url` in `page` without waiting for it.
    pub async fn navigate(&mut self, page: &Page, url: &str) -> anyhow::Result<()> {
        self.call(Some(page), "Page.navigate", json!({ "url": url }))
            .await?;
        Ok(())
    }

    /// Waits until `page` shows `url` with its document loaded.
    pub async fn wait_loaded(&mut self, page: &Page, url: &str) -> anyhow::Result<()> {
        for _ in 0..200 {
            let state = self
                .eval(page, "location.href + ' ' + document.readyState")
                .await
                .unwrap_or_default();
            if state.as_str() == Some(&format!("{url} complete")) {
                return Ok(());
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        bail!("{url} did not load")
    }

    /// Evaluates `test` (a JavaScript expression) every 250 ms until it is
    /// `true` or `limit` has passed; whether it became true.
    pub async fn became_true(&mut self, page: &Page, test: &str, limit: Duration) -> bool {
        let until = std::time::Instant::now() + limit;
        loop {
            if self.eval(page, test).await.ok().and_then(|v| v.as_bool()) == Some(true) {
                return true;
            }
            if std::time::Instant::now() > until {
                return false;
            }
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
    }

    /// Closes the tab at once, as a listener closing it would: no page
    /// script gets to say goodbye beyond what the browser itself does.
    pub async fn close(&mut self, page: &Page) -> anyhow::Result<()> {
        self.call(
            None,
            "Target.closeTarget",
            json!({ "targetId": page.target }),
        )
        .await?;
        Ok(())
    }

    /// Evaluates `expression` in the page, awaiting a promise, and returns
    /// its value (JSON). A thrown exception is an error.
    pub async fn eval(&mut self, page: &Page, expression: &str) -> anyhow::Result<Value> {
        let result = self
            .call(
                Some(page),
                "Runtime.evaluate",
                json!({ "expression": expression, "awaitPromise": true, "returnByValue": true }),
            )
            .await?;
        if let Some(details) = result.get("exceptionDetails") {
            bail!("page threw: {details}");
        }
        Ok(result["result"]["value"].clone())
    }

    /// Sends one DevTools command (to `page`'s session, or the browser's)
    /// and returns its result.
    pub async fn call(
        &mut self,
        page: Option<&Page>,
        method: &str,
        params: Value,
    ) -> anyhow::Result<Value> {
        self.next_id += 1;
        let id = self.next_id;
        let mut message = json!({ "id": id, "method": method, "params": params });
        if let Some(page) = page {
            message["sessionId"] = json!(page.session);
        }
        self.ws.send(Message::text(message.to_string())).await?;
        loop {
            let frame = tokio::time::timeout(Duration::from_secs(60), self.ws.next())
                .await
                .with_context(|| format!("{method}: no answer"))?
                .ok_or_else(|| anyhow!("DevTools connection closed"))??;
            let Message::Text(text) = frame else { continue };
            let reply: Value = serde_json::from_str(text.as_str())?;
            if reply["id"].as_u64() != Some(id) {
                continue; // an event, or another session's traffic
            }
            if let Some(error) = reply.get("error") {
                bail!("{method}: {error}");
            }
            return Ok(reply["result"].clone());
        }
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Waits for Chromium to write its DevTools port and browser path.
async fn devtools_endpoint(file: PathBuf) -> anyhow::Result<String> {
    for _ in 0..200 {
        if let Ok(text) = std::fs::read_to_string(&file) {
            let mut lines = text.lines();
            if let (Some(port), Some(path)) = (lines.next(), lines.next()) {
                return Ok(format!("ws://127.0.0.1:{port}{path}"));
            }
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    bail!("Chromium did not open its DevTools port")
}
