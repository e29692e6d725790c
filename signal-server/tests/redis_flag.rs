//! `--redis` on the command line: a URL that cannot work stops the start
//! with a clear message, before anything is published or bound.

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

#[test]
fn a_redis_url_that_cannot_work_stops_the_start_with_a_clear_error() {
    let dir = tempfile::tempdir().unwrap();
    let mut child = Command::new(env!("CARGO_BIN_EXE_signal-server"))
        .args([
            "serve",
            "--listen",
            "127.0.0.1:0",
            "--redis",
            "http://10.0.0.5:6379",
        ])
        .arg("--library")
        .arg(dir.path())
        .arg("--cache-dir")
        .arg(dir.path())
        .env("NO_COLOR", "1")
        .env_remove("FANSWARM_PUBLIC_URL")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let until = Instant::now() + Duration::from_secs(20);
    while child.try_wait().unwrap().is_none() {
        if Instant::now() > until {
            let _ = child.kill();
            panic!("the server started with a URL Redis cannot be reached at");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let output = child.wait_with_output().unwrap();
    assert!(!output.status.success());
    let text = String::from_utf8_lossy(&output.stderr).to_string()
        + &String::from_utf8_lossy(&output.stdout);
    assert!(text.contains("--redis http://10.0.0.5:6379"), "{text}");
    assert!(!text.contains("panicked"), "{text}");
}
