//! A real TURN server for a test: Debian's `coturn` (`turnserver`), started
//! on the namespace's address with the shared-secret ("TURN REST API")
//! authentication the fanswarm server hands out credentials for.

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use anyhow::Context;

use crate::netns;

/// A running `turnserver`, stopped when dropped.
pub struct TurnServer {
    /// `turn:<address>:<port>?transport=udp`.
    pub url: String,
    /// The `static-auth-secret` it checks credentials against.
    pub secret: String,
    log: PathBuf,
    child: Child,
    _dir: tempfile::TempDir,
}

impl TurnServer {
    /// Starts `turnserver` on a free UDP port of the namespace's address,
    /// relaying from the same address; waits until it listens.
    pub async fn start() -> anyhow::Result<TurnServer> {
        let dir = tempfile::tempdir()?;
        let port = std::net::UdpSocket::bind((netns::ADDRESS, 0))?
            .local_addr()?
            .port();
        let secret = format!("fanswarm-test-{:016x}", fastrand_u64());
        let log = dir.path().join("turn.log");
        let address = netns::ADDRESS.to_string();
        let binary = std::env::var("TURNSERVER").unwrap_or_else(|_| "turnserver".to_owned());
        let child = Command::new(&binary)
            .args([
                "-n", // no configuration file
                "--listening-ip",
                &address,
                "--listening-port",
                &port.to_string(),
                "--relay-ip",
                &address,
                "--min-port",
                "49160",
                "--max-port",
                "49400",
                "--use-auth-secret",
                "--static-auth-secret",
                &secret,
                "--realm",
                "fanswarm.test",
                "--no-tls",
                "--no-dtls",
                "--no-cli",
                "--fingerprint",
                "--simple-log",
                // Allocations and their refusals are logged only so.
                "--verbose",
            ])
            .arg("--userdb")
            .arg(dir.path().join("turndb"))
            .arg("--log-file")
            .arg(&log)
            .arg("--pidfile")
            .arg(dir.path().join("turn.pid"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .with_context(|| {
                format!("starting {binary} (scripts/install-deps --test installs coturn)")
            })?;
        let server = TurnServer {
            url: format!("turn:{address}:{port}?transport=udp"),
            secret,
            log,
            child,
            _dir: dir,
        };
        // Listening once its port is taken.
        for _ in 0..100 {
            if std::net::UdpSocket::bind((netns::ADDRESS, port)).is_err() {
                return Ok(server);
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        anyhow::bail!("turnserver did not start listening: {}", server.log())
    }

    /// Everything it has logged so far.
    pub fn log(&self) -> String {
        let mut all = String::new();
        if let Some(dir) = self.log.parent()
            && let Ok(entries) = std::fs::read_dir(dir)
        {
            for entry in entries.flatten() {
                if entry.file_name().to_string_lossy().starts_with("turn")
                    && entry.file_name().to_string_lossy().ends_with(".log")
                {
                    all.push_str(&std::fs::read_to_string(entry.path()).unwrap_or_default());
                }
            }
        }
        all
    }
}

impl Drop for TurnServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn fastrand_u64() -> u64 {
    use std::hash::{BuildHasher, RandomState};
    RandomState::new().hash_one(std::time::SystemTime::now())
}
