//! Debian's Firefox ESR driven over WebDriver BiDi, which it speaks
//! natively: no geckodriver, no downloaded browser.
//!
//! `firefox-esr --headless --remote-debugging-port=0` prints
//! "WebDriver BiDi listening on ws://…" on stderr; a session opened at
//! `<that>/session` then creates windows, navigates and evaluates scripts.
//! The profile's `user.js` holds the prefs WebRTC tests need
//! (TOOLCHAIN.md): real host candidates instead of mDNS names, autoplay
//! without a gesture, no timer throttling of windows the test is not
//! looking at.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use anyhow::{Context, anyhow, bail};
use futures_util::{SinkExt, StreamExt};
use serde_json::{Map, Value, json};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

/// Prefs for a test profile, on top of what Firefox's remote agent already
/// sets for automation (`remote.prefs.recommended`).
const USER_JS: &str = r#"
user_pref("media.peerconnection.ice.obfuscate_host_addresses", false);
user_pref("media.autoplay.default", 0);
user_pref("media.autoplay.blocking_policy", 0);
user_pref("dom.min_background_timeout_value", 4);
user_pref("dom.min_background_timeout_value_without_budget_throttling", 4);
user_pref("dom.timeout.enable_budget_timer_throttling", false);
user_pref("browser.shell.checkDefaultBrowser", false);
user_pref("datareporting.policy.dataSubmissionEnabled", false);
user_pref("app.update.disabledForTesting", true);
user_pref("network.captive-portal-service.enabled", false);
user_pref("network.connectivity-service.enabled", false);
"#;

/// A BiDi session with a running Firefox.
pub struct Bidi {
    ws: WebSocketStream<MaybeTlsStream<TcpStream>>,
    next_id: u64,
    _sound: Sound,
}

/// A PulseAudio server of the browser's own with one null sink: a sound
/// card that plays into nothing at real-time pace. A test machine has
/// none, and without an audio device Firefox errors an `<audio>` element
/// mid-track ("OnMediaSinkAudioError") where Chromium plays on a clock of
/// its own; ALSA's `null` device is no answer either (it takes audio as
/// fast as it comes, so the element races ahead of its data).
struct Sound {
    child: Child,
}

impl Sound {
    /// Starts `pulseaudio` with its socket at `dir/pulse.sock`.
    async fn start(dir: &Path) -> anyhow::Result<(Sound, String)> {
        let socket = dir.join("pulse.sock");
        let child = crate::process::own_group(
            Command::new("pulseaudio")
                .args([
                    "-n",
                    "--daemonize=no",
                    "--exit-idle-time=-1",
                    "--use-pid-file=no",
                    "--system=false",
                    "--log-target=stderr",
                ])
                .arg(format!(
                    "--load=module-native-protocol-unix auth-anonymous=1 socket={}",
                    socket.display()
                ))
                .arg("--load=module-null-sink sink_name=fanswarm_e2e")
                .env("HOME", dir)
                .env("XDG_RUNTIME_DIR", dir)
                .stdout(Stdio::null())
                .stderr(Stdio::null()),
        )
        .spawn()
        .context("starting pulseaudio, Firefox's sound card (scripts/install-deps --test)")?;
        let sound = Sound { child };
        for _ in 0..100 {
            if socket.exists() {
                return Ok((sound, format!("unix:{}", socket.display())));
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        bail!("pulseaudio did not open {} within 5 s", socket.display())
    }
}

impl Drop for Sound {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Starts headless Firefox ESR (`FIREFOX` overrides the binary) with a
/// fresh profile in `profile` and opens a BiDi session to it. The browser
/// leads a process group of its own, so that its content processes end
/// with it.
pub async fn launch(profile: &Path) -> anyhow::Result<(Child, Bidi)> {
    std::fs::write(profile.join("user.js"), USER_JS).context("writing the profile's user.js")?;
    let sound_dir = profile.join("sound");
    std::fs::create_dir_all(&sound_dir)?;
    let (sound, pulse_server) = Sound::start(&sound_dir).await?;
    let binary = std::env::var("FIREFOX").unwrap_or_else(|_| "firefox-esr".to_owned());
    let mut child = crate::process::own_group(
        Command::new(&binary)
            .args(["--headless", "--no-remote", "--remote-debugging-port=0"])
            .arg("--profile")
            .arg(profile)
            .arg("about:blank")
            .env("PULSE_SERVER", pulse_server)
            .stdout(Stdio::null())
            .stderr(Stdio::piped()),
    )
    .spawn()
    .with_context(|| format!("starting {binary} (scripts/install-deps --test)"))?;
    let stderr = child.stderr.take().context("Firefox's stderr")?;
    // One thread reads stderr to its end (a full pipe would stop Firefox)
    // and hands over the line that names the BiDi endpoint.
    let (found, listening) = tokio::sync::oneshot::channel();
    std::thread::spawn(move || {
        let mut found = Some(found);
        for line in BufReader::new(stderr).lines() {
            let Ok(line) = line else { break };
            if let Some(url) = line.split("WebDriver BiDi listening on ").nth(1)
                && let Some(found) = found.take()
            {
                let _ = found.send(url.trim().to_owned());
            }
        }
    });
    let url = tokio::time::timeout(Duration::from_secs(30), listening)
        .await
        .context("Firefox did not open its WebDriver BiDi port within 30 s")?
        .context("Firefox exited before opening its WebDriver BiDi port")?;
    let (ws, _) = tokio_tungstenite::connect_async(format!("{url}/session"))
        .await
        .context("connecting to Firefox's WebDriver BiDi")?;
    let mut bidi = Bidi {
        ws,
        next_id: 0,
        _sound: sound,
    };
    bidi.command("session.new", json!({ "capabilities": {} }))
        .await?;
    Ok((child, bidi))
}

impl Bidi {
    /// Creates a top-level browsing context (a window of its own, so that
    /// no page is a background tab), in `user_context` (the profile's own
    /// when `None`), and returns its id.
    pub async fn create(&mut self, user_context: Option<&str>) -> anyhow::Result<String> {
        let mut params = json!({ "type": "window" });
        if let Some(user_context) = user_context {
            params["userContext"] = json!(user_context);
        }
        let made = self.command("browsingContext.create", params).await?;
        Ok(made["context"]
            .as_str()
            .context("browsingContext.create: no context")?
            .to_owned())
    }

    /// A new user context: storage, caches and service workers of its own,
    /// as another person's browser has.
    pub async fn create_user_context(&mut self) -> anyhow::Result<String> {
        let made = self.command("browser.createUserContext", json!({})).await?;
        Ok(made["userContext"]
            .as_str()
            .context("browser.createUserContext: no userContext")?
            .to_owned())
    }

    /// Removes a user context made by [`Bidi::create_user_context`] (its
    /// pages close with it).
    pub async fn remove_user_context(&mut self, user_context: &str) -> anyhow::Result<()> {
        self.command(
            "browser.removeUserContext",
            json!({ "userContext": user_context }),
        )
        .await?;
        Ok(())
    }

    /// Starts loading `url` in `context` without waiting for it.
    pub async fn navigate(&mut self, context: &str, url: &str) -> anyhow::Result<()> {
        self.command(
            "browsingContext.navigate",
            json!({ "context": context, "url": url, "wait": "none" }),
        )
        .await?;
        Ok(())
    }

    /// Closes `context` at once.
    pub async fn close(&mut self, context: &str) -> anyhow::Result<()> {
        self.command("browsingContext.close", json!({ "context": context }))
            .await?;
        Ok(())
    }

    /// Evaluates `expression` in `context`'s page, awaiting a promise; its
    /// value as JSON (undefined, NaN and objects JSON cannot hold are null).
    pub async fn eval(&mut self, context: &str, expression: &str) -> anyhow::Result<Value> {
        let result = self
            .command(
                "script.evaluate",
                json!({
                    "expression": expression,
                    "target": { "context": context },
                    "awaitPromise": true,
                    "resultOwnership": "none",
                    "serializationOptions": { "maxObjectDepth": 32 },
                }),
            )
            .await?;
        if result["type"] == "exception" {
            bail!("page threw: {}", result["exceptionDetails"]);
        }
        Ok(to_json(&result["result"]))
    }

    /// Sends one BiDi command and returns its result.
    pub async fn command(&mut self, method: &str, params: Value) -> anyhow::Result<Value> {
        self.next_id += 1;
        let id = self.next_id;
        let message = json!({ "id": id, "method": method, "params": params });
        self.ws.send(Message::text(message.to_string())).await?;
        loop {
            let frame = tokio::time::timeout(Duration::from_secs(60), self.ws.next())
                .await
                .with_context(|| format!("{method}: no answer"))?
                .ok_or_else(|| anyhow!("WebDriver BiDi connection closed"))??;
            let Message::Text(text) = frame else { continue };
            let reply: Value = serde_json::from_str(text.as_str())?;
            if reply["id"].as_u64() != Some(id) {
                continue; // an event
            }
            if reply["type"] == "error" {
                bail!("{method}: {} ({})", reply["error"], reply["message"]);
            }
            return Ok(reply["result"].clone());
        }
    }
}

/// A BiDi `RemoteValue` as plain JSON, as DevTools' `returnByValue` gives
/// it: what JSON can hold, null for the rest.
fn to_json(remote: &Value) -> Value {
    let value = &remote["value"];
    match remote["type"].as_str().unwrap_or_default() {
        "string" | "boolean" => value.clone(),
        "number" => match value {
            Value::Number(_) => value.clone(),
            Value::String(s) if s == "-0" => json!(0),
            _ => Value::Null, // NaN, ±Infinity
        },
        "bigint" => value.clone(),
        "array" | "set" => Value::Array(
            value
                .as_array()
                .map(|items| items.iter().map(to_json).collect())
                .unwrap_or_default(),
        ),
        "object" | "map" => {
            let mut object = Map::new();
            for entry in value.as_array().into_iter().flatten() {
                let key = match &entry[0] {
                    Value::String(s) => s.clone(),
                    other => match to_json(other) {
                        Value::String(s) => s,
                        v => v.to_string(),
                    },
                };
                object.insert(key, to_json(&entry[1]));
            }
            Value::Object(object)
        }
        _ => Value::Null,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn remote_values_become_plain_json() {
        let remote = json!({ "type": "object", "value": [
            ["a", { "type": "number", "value": 1.5 }],
            ["b", { "type": "array", "value": [{ "type": "string", "value": "x" }, { "type": "null" }] }],
            ["c", { "type": "number", "value": "NaN" }],
            ["d", { "type": "boolean", "value": true }],
            ["e", { "type": "undefined" }],
        ]});
        assert_eq!(
            to_json(&remote),
            json!({ "a": 1.5, "b": ["x", null], "c": null, "d": true, "e": null })
        );
    }
}
