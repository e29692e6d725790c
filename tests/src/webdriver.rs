//! WebKitGTK's MiniBrowser driven over W3C classic WebDriver through
//! Debian's `WebKitWebDriver`, on a virtual X display (`xvfb-run`).
//!
//! Debian's WebKitGTK has service workers, WebAssembly and MediaSource but
//! no `RTCPeerConnection`: it is where the player's no-WebRTC path runs in
//! a real browser. HTTP/1.0 to the driver (one request per connection, no
//! chunked answers) keeps the client a screenful.

use std::net::SocketAddr;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use anyhow::{Context, bail};
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// Where Debian puts the MiniBrowser WebKitWebDriver starts.
const MINIBROWSER: &str = "/usr/lib/x86_64-linux-gnu/webkit2gtk-4.1/MiniBrowser";

/// A WebDriver session with a running MiniBrowser.
pub struct Classic {
    driver: SocketAddr,
    session: String,
    /// The window commands go to now.
    current: String,
    /// The first window, until a page takes it.
    spare: Option<String>,
}

/// Starts `xvfb-run -a WebKitWebDriver` (leading a process group of its
/// own: the display, the driver and the browser end together) and opens a
/// session with MiniBrowser.
pub async fn launch() -> anyhow::Result<(Child, Classic)> {
    let port = std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port();
    let child = crate::process::own_group(
        Command::new("xvfb-run")
            .args(["-a", "WebKitWebDriver"])
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null()),
    )
    .spawn()
    .context("starting xvfb-run WebKitWebDriver (scripts/install-deps --test)")?;
    let driver = SocketAddr::from(([127, 0, 0, 1], port));
    let mut up = false;
    for _ in 0..200 {
        if TcpStream::connect(driver).await.is_ok() {
            up = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    if !up {
        bail!("WebKitWebDriver did not listen on {driver} within 10 s");
    }
    let capabilities = json!({ "capabilities": { "alwaysMatch": {
        "browserName": "MiniBrowser",
        "pageLoadStrategy": "none",
        "webkitgtk:browserOptions": {
            "binary": MINIBROWSER,
            "args": ["--automation", "--autoplay-policy=allow"],
        },
    }}});
    let made = request(driver, "POST", "/session", Some(&capabilities)).await?;
    let session = made["sessionId"]
        .as_str()
        .context("new session: no sessionId")?
        .to_owned();
    let mut classic = Classic {
        driver,
        session,
        current: String::new(),
        spare: None,
    };
    let first = classic.command("GET", "/window", None).await?;
    let first = first.as_str().context("window handle")?.to_owned();
    classic.current.clone_from(&first);
    classic.spare = Some(first);
    Ok((child, classic))
}

impl Classic {
    /// A window for a new page: the first one, then new ones.
    pub async fn create(&mut self) -> anyhow::Result<String> {
        if let Some(first) = self.spare.take() {
            return Ok(first);
        }
        let made = self
            .command("POST", "/window/new", Some(&json!({ "type": "window" })))
            .await?;
        Ok(made["handle"]
            .as_str()
            .context("new window: no handle")?
            .to_owned())
    }

    /// Starts loading `url` in `window` (the session does not wait for loads).
    pub async fn navigate(&mut self, window: &str, url: &str) -> anyhow::Result<()> {
        self.switch(window).await?;
        self.command("POST", "/url", Some(&json!({ "url": url })))
            .await?;
        Ok(())
    }

    /// Closes `window`.
    pub async fn close(&mut self, window: &str) -> anyhow::Result<()> {
        self.switch(window).await?;
        self.command("DELETE", "/window", None).await?;
        self.current.clear();
        Ok(())
    }

    /// Evaluates `expression` in `window`'s page, awaiting a promise; its
    /// value as JSON (through `JSON.stringify`; undefined is null).
    pub async fn eval(&mut self, window: &str, expression: &str) -> anyhow::Result<Value> {
        self.switch(window).await?;
        let script = format!(
            "return (async () => (\n{expression}\n))().then((v) => v === undefined ? null : JSON.stringify(v));"
        );
        let text = self
            .command(
                "POST",
                "/execute/sync",
                Some(&json!({ "script": script, "args": [] })),
            )
            .await
            .map_err(|e| anyhow::anyhow!("page threw: {e:#}"))?;
        match text.as_str() {
            Some(json) => Ok(serde_json::from_str(json)?),
            None => Ok(Value::Null),
        }
    }

    /// Ends the session (the browser closes).
    pub async fn quit(&mut self) -> anyhow::Result<()> {
        request(
            self.driver,
            "DELETE",
            &format!("/session/{}", self.session),
            None,
        )
        .await?;
        Ok(())
    }

    async fn switch(&mut self, window: &str) -> anyhow::Result<()> {
        if self.current != window {
            self.command("POST", "/window", Some(&json!({ "handle": window })))
                .await?;
            window.clone_into(&mut self.current);
        }
        Ok(())
    }

    /// One command of this session: its `value`.
    async fn command(
        &self,
        method: &str,
        path: &str,
        body: Option<&Value>,
    ) -> anyhow::Result<Value> {
        let path = format!("/session/{}{path}", self.session);
        request(self.driver, method, &path, body).await
    }
}

/// One WebDriver request; the answer's `value`, or its error as an error.
async fn request(
    driver: SocketAddr,
    method: &str,
    path: &str,
    body: Option<&Value>,
) -> anyhow::Result<Value> {
    let body = body.map(Value::to_string).unwrap_or_default();
    let mut stream = TcpStream::connect(driver)
        .await
        .context("connecting to WebKitWebDriver")?;
    let head = format!(
        "{method} {path} HTTP/1.0\r\nHost: {driver}\r\nContent-Type: application/json; charset=utf-8\r\nContent-Length: {}\r\n\r\n",
        body.len()
    );
    stream.write_all(head.as_bytes()).await?;
    stream.write_all(body.as_bytes()).await?;
    let mut answer = Vec::new();
    tokio::time::timeout(Duration::from_secs(60), stream.read_to_end(&mut answer))
        .await
        .with_context(|| format!("{method} {path}: no answer within 60 s"))??;
    let text = String::from_utf8_lossy(&answer);
    let (status, json) = text
        .split_once("\r\n\r\n")
        .with_context(|| format!("{method} {path}: not an HTTP answer: {text:.200}"))?;
    let reply: Value = serde_json::from_str(json)
        .with_context(|| format!("{method} {path}: not JSON: {json:.200}"))?;
    let value = reply["value"].clone();
    if !status.starts_with("HTTP/1.1 200") && !status.starts_with("HTTP/1.0 200") {
        bail!(
            "{method} {path}: {} ({})",
            value["error"],
            value["message"].as_str().unwrap_or_default()
        );
    }
    Ok(value)
}
