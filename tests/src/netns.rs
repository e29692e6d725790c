//! Runs a test inside a network namespace of its own.
//!
//! Headless Chromium gathers no ICE candidates on loopback alone, so the
//! test re-executes itself through `scripts/in-netns`: a namespace with
//! loopback, a veth pair on 198.51.100.0/24 (a documentation range) and a
//! default route into it. Server and browser both live in there: no test
//! traffic can leave it.

use std::net::{IpAddr, Ipv4Addr};
use std::path::Path;
use std::process::Command;
use std::sync::Mutex;

use anyhow::{Context, bail};

/// This host's address on the namespace's veth (set by `scripts/in-netns`):
/// where native WebRTC peers bind so Chromium's host candidates reach them.
pub const ADDRESS: IpAddr = IpAddr::V4(Ipv4Addr::new(198, 51, 100, 1));

/// Set in the re-executed child.
const INSIDE: &str = "FANSWARM_E2E_NETNS";

/// Whether this process is the one inside the namespace.
pub fn inside() -> bool {
    std::env::var_os(INSIDE).is_some()
}

/// Held while a test's namespace runs: the tests of one binary run one at
/// a time (each starts browsers; together they would starve a 2-core
/// machine and time each other out).
static ONE_AT_A_TIME: Mutex<()> = Mutex::new(());

/// Test `name`'s body: `test` runs inside the network namespace (on a
/// runtime of its own); outside, the test re-runs itself there
/// ([`rerun_inside`]) and `test`, a future never polled, is dropped.
pub fn run(name: &str, test: impl Future<Output = anyhow::Result<()>>) -> anyhow::Result<()> {
    if !inside() {
        return rerun_inside(name);
    }
    tokio::runtime::Runtime::new()?.block_on(test)
}

/// Re-runs test `name` of the current test binary inside a fresh network
/// namespace and fails if it fails.
pub fn rerun_inside(name: &str) -> anyhow::Result<()> {
    let _serial = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    let exe = std::env::current_exe().context("current test binary")?;
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("../scripts/in-netns");
    let status = Command::new(script)
        .arg(exe)
        .args([name, "--exact", "--nocapture", "--test-threads=1"])
        .env(INSIDE, "1")
        .status()
        .context("running scripts/in-netns (unshare: needs root or CAP_SYS_ADMIN)")?;
    if !status.success() {
        bail!("{name} failed inside its network namespace: {status}");
    }
    Ok(())
}
