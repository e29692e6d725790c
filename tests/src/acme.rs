//! A real ACME server for a test: Debian's `pebble` (Let's Encrypt's test
//! CA), on loopback, validating HTTP-01 challenges on the port the test
//! says, with its HTTPS under a test CA's certificate.

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;

use crate::tls::{TestCa, https_request, trusting};

/// A running `pebble`, stopped when dropped.
pub struct Pebble {
    /// The ACME directory URL.
    pub directory: String,
    /// The CA file a client needs for `directory` (the test CA).
    pub ca_file: PathBuf,
    management: std::net::SocketAddr,
    client: Arc<rustls::ClientConfig>,
    log: PathBuf,
    child: Child,
    _dir: tempfile::TempDir,
}

fn free_port() -> anyhow::Result<u16> {
    Ok(std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port())
}

impl Pebble {
    /// Starts pebble; it validates HTTP-01 challenges on `http_port` of the
    /// names ordered (e.g. `localhost`).
    pub async fn start(http_port: u16) -> anyhow::Result<Pebble> {
        let dir = tempfile::tempdir()?;
        let ca = TestCa::new()?;
        let leaf = ca.leaf(&["localhost", "127.0.0.1"])?;
        let (cert, key) = leaf.write(dir.path())?;
        let ca_file = ca.write(dir.path())?;
        let (listen, management) = (free_port()?, free_port()?);
        let config = serde_json::json!({ "pebble": {
            "listenAddress": format!("127.0.0.1:{listen}"),
            "managementListenAddress": format!("127.0.0.1:{management}"),
            "certificate": cert, "privateKey": key,
            "httpPort": http_port, "tlsPort": free_port()?,
            "ocspResponderURL": "", "externalAccountBindingRequired": false,
        }});
        let config_path = dir.path().join("pebble.json");
        std::fs::write(&config_path, config.to_string())?;
        let log = dir.path().join("pebble.log");
        let binary = std::env::var("PEBBLE").unwrap_or_else(|_| "pebble".to_owned());
        let child = Command::new(&binary)
            .arg("-config")
            .arg(&config_path)
            // Validate at once, and accept every nonce: a test wants the
            // protocol, not pebble's deliberate chaos.
            .env("PEBBLE_VA_NOSLEEP", "1")
            .env("PEBBLE_WFE_NONCEREJECT", "0")
            .stdout(Stdio::from(std::fs::File::create(&log)?))
            .stderr(Stdio::from(std::fs::File::create(
                dir.path().join("pebble.err"),
            )?))
            .spawn()
            .with_context(|| {
                format!("starting {binary} (scripts/install-deps --test installs pebble)")
            })?;
        let pebble = Pebble {
            directory: format!("https://127.0.0.1:{listen}/dir"),
            ca_file,
            management: format!("127.0.0.1:{management}").parse()?,
            client: ca.client_config()?,
            log,
            child,
            _dir: dir,
        };
        for _ in 0..200 {
            if tokio::net::TcpStream::connect(("127.0.0.1", listen))
                .await
                .is_ok()
                && tokio::net::TcpStream::connect(pebble.management)
                    .await
                    .is_ok()
            {
                return Ok(pebble);
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        anyhow::bail!("pebble did not start: {}", pebble.log())
    }

    /// The root that pebble's certificates chain to (made anew per run).
    pub async fn root(&self) -> anyhow::Result<Arc<rustls::ClientConfig>> {
        let (status, body, _) =
            https_request(&self.client, self.management, "/roots/0", "").await?;
        anyhow::ensure!(status == 200, "pebble /roots/0: {status}");
        trusting(std::str::from_utf8(&body)?)
    }

    /// What pebble has logged.
    pub fn log(&self) -> String {
        let mut text = std::fs::read_to_string(&self.log).unwrap_or_default();
        text.push_str(&std::fs::read_to_string(self.log.with_extension("err")).unwrap_or_default());
        text
    }

    /// Stops it now.
    pub fn stop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Pebble {
    fn drop(&mut self) {
        self.stop();
    }
}
