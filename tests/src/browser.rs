//! Real browsers for end-to-end tests, one API for three engines: open
//! pages, navigate, evaluate JavaScript, close pages.
//!
//! - [`Engine::Chromium`] (the default): headless Chromium over the
//!   DevTools protocol;
//! - [`Engine::Firefox`]: headless Firefox ESR over WebDriver BiDi
//!   (`crate::bidi`);
//! - [`Engine::WebKit`]: WebKitGTK's MiniBrowser on a virtual display over
//!   classic WebDriver (`crate::webdriver`); it has no WebRTC.
//!
//! Every browser is Debian's, never a downloaded one. It is killed when
//! the [`Browser`] drops, also when a test panics.

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use anyhow::{Context, anyhow, bail};
use futures_util::{SinkExt, StreamExt};
use serde_json::{Value, json};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

use crate::bidi::{self, Bidi};
use crate::webdriver::{self, Classic};

/// Which browser engine a [`Browser`] runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Engine {
    /// Debian's `chromium`, headless, over DevTools.
    Chromium,
    /// Debian's `firefox-esr`, headless, over WebDriver BiDi.
    Firefox,
    /// WebKitGTK's MiniBrowser under `xvfb-run`, over `WebKitWebDriver`.
    WebKit,
}

impl Engine {
    /// The engine's name, for logs and failure messages.
    pub fn name(self) -> &'static str {
        match self {
            Engine::Chromium => "Chromium",
            Engine::Firefox => "Firefox",
            Engine::WebKit => "WebKit",
        }
    }
}

/// A running browser and the automation connection to it.
pub struct Browser {
    engine: Engine,
    child: Child,
    protocol: Protocol,
    /// The browser leads its own process group, killed as a whole.
    group: bool,
    /// Its profile directory (taken by [`Browser::close_keeping_profile`]).
    profile: Option<tempfile::TempDir>,
}

/// The automation protocol of each engine.
enum Protocol {
    Cdp {
        ws: WebSocketStream<MaybeTlsStream<TcpStream>>,
        next_id: u64,
    },
    Bidi(Bidi),
    WebDriver(Classic),
}

/// One page: a tab attached in flat mode (Chromium), a browsing context
/// (Firefox) or a window handle (WebKit).
#[derive(Debug, Clone)]
pub struct Page {
    session: String,
    target: String,
    /// The browser context (Chromium) or user context (Firefox) made for
    /// this page alone, removed when the page closes; `None` for a page of
    /// the profile's own context.
    context: Option<String>,
}

/// Whose storage a new page gets.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Storage {
    /// A context of its own: another fan, in another browser.
    Own,
    /// The profile's: the same fan again.
    Profile,
}

impl Browser {
    /// Starts headless Chromium with the flags WebRTC tests need
    /// (TOOLCHAIN.md): real host candidates instead of mDNS names, autoplay
    /// without a gesture.
    pub async fn launch() -> anyhow::Result<Browser> {
        Browser::launch_with(&[]).await
    }

    /// Starts a browser of `engine`, set up as [`Browser::launch`] sets up
    /// Chromium (for Firefox, by the prefs of its profile).
    pub async fn launch_engine(engine: Engine) -> anyhow::Result<Browser> {
        match engine {
            Engine::Chromium => Browser::launch().await,
            Engine::Firefox => {
                let profile = tempfile::tempdir()?;
                let (child, bidi) = bidi::launch(profile.path()).await?;
                Ok(Browser {
                    engine,
                    child,
                    protocol: Protocol::Bidi(bidi),
                    group: true,
                    profile: Some(profile),
                })
            }
            Engine::WebKit => {
                let profile = tempfile::tempdir()?;
                let (child, classic) = webdriver::launch().await?;
                Ok(Browser {
                    engine,
                    child,
                    protocol: Protocol::WebDriver(classic),
                    group: true,
                    profile: Some(profile),
                })
            }
        }
    }

    /// Which engine this is.
    pub fn engine(&self) -> Engine {
        self.engine
    }

    /// [`Browser::launch`] with more command-line flags.
    pub async fn launch_with(extra: &[String]) -> anyhow::Result<Browser> {
        Self::launch_chromium(extra, tempfile::tempdir()?).await
    }

    /// Chromium again on a profile an earlier one left
    /// ([`Browser::close_keeping_profile`]): what a fan's browser keeps
    /// across a restart (its caches, storage, service workers).
    pub async fn launch_with_profile(profile: tempfile::TempDir) -> anyhow::Result<Browser> {
        Self::launch_chromium(&[], profile).await
    }

    /// Closes Chromium as a user would (DevTools `Browser.close`: storage
    /// written out) and hands back its profile for
    /// [`Browser::launch_with_profile`].
    pub async fn close_keeping_profile(mut self) -> anyhow::Result<tempfile::TempDir> {
        // The browser may close before it answers.
        let _ = tokio::time::timeout(
            Duration::from_secs(5),
            self.call(None, "Browser.close", serde_json::json!({})),
        )
        .await;
        for _ in 0..200 {
            if self.child.try_wait()?.is_some() {
                return self.profile.take().context("the profile was taken already");
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        bail!("Chromium did not exit within 10 s of Browser.close")
    }

    async fn launch_chromium(
        extra: &[String],
        profile: tempfile::TempDir,
    ) -> anyhow::Result<Browser> {
        // A port file left by an earlier run of this profile is stale.
        let _ = std::fs::remove_file(profile.path().join("DevToolsActivePort"));
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
            engine: Engine::Chromium,
            child,
            protocol: Protocol::Cdp { ws, next_id: 0 },
            group: false,
            profile: Some(profile),
        })
    }

    /// Opens a page at `url` as another fan would, and waits until its
    /// document has loaded. Each page gets storage of its own (a browser
    /// context in Chromium, a user context in Firefox): no cache, service
    /// worker or kept track of an earlier page of the test. WebKit's
    /// classic WebDriver has no such contexts: there, pages share the
    /// profile. [`Browser::open_in_profile`] is the same fan again.
    pub async fn open(&mut self, url: &str) -> anyhow::Result<Page> {
        let page = self.create(url, false, Storage::Own).await?;
        self.wait_loaded(&page, url).await?;
        Ok(page)
    }

    /// Opens a page at `url` in the profile's own storage, shared with
    /// every other page opened so, and kept across
    /// [`Browser::close_keeping_profile`]: a second visit of one fan.
    pub async fn open_in_profile(&mut self, url: &str) -> anyhow::Result<Page> {
        let page = self.create(url, false, Storage::Profile).await?;
        self.wait_loaded(&page, url).await?;
        Ok(page)
    }

    /// Opens a window of its own (storage too, as [`Browser::open`]) and
    /// starts loading `url` there without waiting, so several pages can
    /// load at once ([`Browser::wait_loaded`] waits). A window each, not
    /// tabs: Chromium defers media in a tab that was never shown, so only
    /// the last tab of a window would play.
    pub async fn open_unloaded(&mut self, url: &str) -> anyhow::Result<Page> {
        self.create(url, true, Storage::Own).await
    }

    async fn create(
        &mut self,
        url: &str,
        new_window: bool,
        storage: Storage,
    ) -> anyhow::Result<Page> {
        let own = storage == Storage::Own;
        let made = match &mut self.protocol {
            Protocol::Cdp { .. } => None,
            Protocol::Bidi(bidi) => {
                let context = if own {
                    Some(bidi.create_user_context().await?)
                } else {
                    None
                };
                Some((bidi.create(context.as_deref()).await?, context))
            }
            Protocol::WebDriver(classic) => Some((classic.create().await?, None)),
        };
        if let Some((id, context)) = made {
            let page = Page {
                session: id.clone(),
                target: id,
                context,
            };
            self.navigate(&page, url).await?;
            return Ok(page);
        }
        let context = if own {
            let made = self
                .call(None, "Target.createBrowserContext", json!({}))
                .await?;
            Some(
                made["browserContextId"]
                    .as_str()
                    .context("browserContextId")?
                    .to_owned(),
            )
        } else {
            None
        };
        // A context of its own has no window yet: its first page must be one.
        let new_window = new_window || context.is_some();
        let mut params = json!({ "url": "about:blank", "newWindow": new_window });
        if let Some(context) = &context {
            params["browserContextId"] = json!(context);
        }
        let target = self.call(None, "Target.createTarget", params).await?;
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
            context,
        };
        self.navigate(&page, url).await?;
        Ok(page)
    }

    /// Starts loading `url` in `page` without waiting for it.
    pub async fn navigate(&mut self, page: &Page, url: &str) -> anyhow::Result<()> {
        match &mut self.protocol {
            Protocol::Cdp { .. } => {
                self.call(Some(page), "Page.navigate", json!({ "url": url }))
                    .await?;
                Ok(())
            }
            Protocol::Bidi(bidi) => bidi.navigate(&page.target, url).await,
            Protocol::WebDriver(classic) => classic.navigate(&page.target, url).await,
        }
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
        match &mut self.protocol {
            Protocol::Cdp { .. } => {}
            Protocol::Bidi(bidi) => {
                bidi.close(&page.target).await?;
                if let Some(context) = &page.context {
                    bidi.remove_user_context(context).await?;
                }
                return Ok(());
            }
            Protocol::WebDriver(classic) => return classic.close(&page.target).await,
        }
        self.call(
            None,
            "Target.closeTarget",
            json!({ "targetId": page.target }),
        )
        .await?;
        if let Some(context) = &page.context {
            self.call(
                None,
                "Target.disposeBrowserContext",
                json!({ "browserContextId": context }),
            )
            .await?;
        }
        Ok(())
    }

    /// Evaluates `expression` in the page, awaiting a promise, and returns
    /// its value (JSON). A thrown exception is an error.
    pub async fn eval(&mut self, page: &Page, expression: &str) -> anyhow::Result<Value> {
        match &mut self.protocol {
            Protocol::Cdp { .. } => {}
            Protocol::Bidi(bidi) => return bidi.eval(&page.target, expression).await,
            Protocol::WebDriver(classic) => return classic.eval(&page.target, expression).await,
        }
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
    /// and returns its result. Chromium only: a test that needs it tests a
    /// Chromium feature (or needs an engine-neutral method here).
    pub async fn call(
        &mut self,
        page: Option<&Page>,
        method: &str,
        params: Value,
    ) -> anyhow::Result<Value> {
        let engine = self.engine;
        let Protocol::Cdp { ws, next_id } = &mut self.protocol else {
            bail!(
                "{method}: a DevTools command, and this browser is {}",
                engine.name()
            );
        };
        *next_id += 1;
        let id = *next_id;
        let mut message = json!({ "id": id, "method": method, "params": params });
        if let Some(page) = page {
            message["sessionId"] = json!(page.session);
        }
        ws.send(Message::text(message.to_string())).await?;
        loop {
            let frame = tokio::time::timeout(Duration::from_secs(60), ws.next())
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
        if self.group {
            // The whole group: Firefox's content processes; the X server,
            // driver and browser under xvfb-run.
            let _ = Command::new("kill")
                .args(["-KILL", "--", &format!("-{}", self.child.id())])
                .stderr(Stdio::null())
                .status();
        }
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
