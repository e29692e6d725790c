//! Runs a test inside a network namespace of its own.
//!
//! Headless Chromium gathers no ICE candidates on loopback alone, so the
//! test re-executes itself under `unshare -n` with loopback up plus a veth
//! pair on 198.51.100.0/24 (TEST-NET-2, a documentation range). Chromium
//! also wants a default route before it offers a host candidate (it picks
//! interfaces by the route to the internet), so one points into the veth
//! pair, where nothing answers. Server and browser both live in there: no
//! test traffic can leave it.

use std::process::Command;

use anyhow::{Context, bail};

/// Set in the re-executed child.
const INSIDE: &str = "FANSWARM_E2E_NETNS";

/// Sets up the namespace's links, then runs the command given after `_`.
const SETUP: &str = "ip link set lo up && ip link add v0 type veth peer name v1 && \
    ip addr add 198.51.100.1/24 dev v0 && ip link set v0 up && ip link set v1 up && \
    ip route add default via 198.51.100.2 dev v0 && exec \"$@\"";

/// Whether this process is the one inside the namespace.
pub fn inside() -> bool {
    std::env::var_os(INSIDE).is_some()
}

/// Re-runs test `name` of the current test binary inside a fresh network
/// namespace and fails if it fails.
pub fn rerun_inside(name: &str) -> anyhow::Result<()> {
    let exe = std::env::current_exe().context("current test binary")?;
    let status = Command::new("unshare")
        .args(["-n", "sh", "-c", SETUP, "_"])
        .arg(exe)
        .args([name, "--exact", "--nocapture", "--test-threads=1"])
        .env(INSIDE, "1")
        .status()
        .context("running unshare (util-linux; needs root or CAP_SYS_ADMIN)")?;
    if !status.success() {
        bail!("{name} failed inside its network namespace: {status}");
    }
    Ok(())
}
