//! `signal-server`: not built yet (issue 3).

fn main() -> anyhow::Result<()> {
    anyhow::bail!("signal-server is not built yet")
}
