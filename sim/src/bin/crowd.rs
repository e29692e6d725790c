//! `crowd`: a simulated flash crowd, for BENCHMARKS.md and `scripts/bench`.
//!
//! ```text
//! cargo run --release -p fanswarm-sim --bin crowd -- --fans 1000 [--track ogg|wav]
//!     [--gap-ms 150] [--press-ms 1000] [--join-on-press] [--peer-up BYTES_PER_S]
//!     [--offer-grace-ms MS] [--max-peers-per-swarm N] [--set TUNABLE=NUMBER]…
//!     [--seeds 1] [--seed 1]
//!     [--json] [--verbose]
//! ```
//!
//! Prints origin copies, each fan's share from peers, first audio and
//! stalls, the wall time of the run and the process's peak resident memory
//! (per seed).
//! `SIM_PROGRESS=1` prints a line every simulated minute of a long run.

use std::process::ExitCode;
use std::time::{Duration, Instant};

use fanswarm_sim::crowd::{self, Crowd, Track};

fn main() -> ExitCode {
    let mut crowd = Crowd::default();
    let mut seeds = 1u64;
    let mut first_seed = 1u64;
    let mut json = false;
    let mut verbose = false;
    let mut peer_up: Option<u64> = None;
    let mut offer_grace: Option<u64> = None;
    let mut max_peers_per_swarm: Option<u64> = None;
    let mut settings: Vec<(String, u64)> = Vec::new();
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        let mut value = |name: &str| -> Result<u64, String> {
            args.next()
                .and_then(|v| v.parse().ok())
                .ok_or_else(|| format!("{name} needs a number"))
        };
        let result = match arg.as_str() {
            "--fans" => value("--fans").map(|v| crowd.fans = v as usize),
            "--gap-ms" => value("--gap-ms").map(|v| crowd.arrival_gap = Duration::from_millis(v)),
            "--press-ms" => {
                value("--press-ms").map(|v| crowd.press_after = Duration::from_millis(v))
            }
            "--set" => match args.next().as_deref().and_then(|kv| kv.split_once('=')) {
                Some((key, v)) => match v.parse::<u64>() {
                    Ok(v) => {
                        settings.push((key.to_owned(), v));
                        Ok(())
                    }
                    Err(_) => Err(format!("--set {key}: {v:?} is not a number")),
                },
                None => Err("--set takes KEY=NUMBER".to_owned()),
            },
            "--join-on-press" => {
                crowd.join = crowd::Join::OnPress;
                Ok(())
            }
            "--seeds" => value("--seeds").map(|v| seeds = v.max(1)),
            "--peer-up" => value("--peer-up").map(|v| peer_up = Some(v)),
            "--offer-grace-ms" => value("--offer-grace-ms").map(|v| offer_grace = Some(v)),
            "--max-peers-per-swarm" => {
                value("--max-peers-per-swarm").map(|v| max_peers_per_swarm = Some(v))
            }
            "--seed" => value("--seed").map(|v| first_seed = v),
            "--json" => {
                json = true;
                Ok(())
            }
            "--verbose" => {
                verbose = true;
                Ok(())
            }
            "--track" => match args.next().as_deref() {
                Some("ogg") => {
                    crowd.track = Track::OGG;
                    Ok(())
                }
                Some("wav") => {
                    crowd.track = Track::WAV;
                    Ok(())
                }
                _ => Err("--track is ogg or wav".to_owned()),
            },
            other => Err(format!("unknown argument {other:?}")),
        };
        if let Err(e) = result {
            eprintln!("crowd: {e}");
            return ExitCode::from(2);
        }
    }
    let mut rows = Vec::new();
    for seed in first_seed..first_seed + seeds {
        let started = Instant::now();
        let mut world = crowd::world(&crowd, seed);
        if let Some(up) = peer_up {
            world.peer_up = up;
        }
        if let Some(ms) = offer_grace {
            world.offer_grace = Duration::from_millis(ms);
        }
        if let Some(n) = max_peers_per_swarm {
            world.tracker_limits.max_peers_per_swarm = usize::try_from(n).unwrap_or(usize::MAX);
        }
        for (key, v) in &settings {
            if let Err(e) = set(&mut world, key, *v) {
                eprintln!("crowd: {e}");
                return ExitCode::from(2);
            }
        }
        let (sim, report) = crowd::run(&crowd, world);
        let wall = started.elapsed().as_secs_f64();
        if verbose {
            print_duplicates(&sim);
        }
        let median = |v: &[f64]| {
            let mut v = v.to_vec();
            v.sort_by(f64::total_cmp);
            v.get(v.len() / 2).copied().unwrap_or(0.0)
        };
        let min = report.from_peers.iter().copied().fold(1.0, f64::min);
        let row = serde_json::json!({
            "seed": seed,
            "fans": crowd.fans,
            "track_bytes": crowd.track.bytes,
            "origin_copies": report.origin_copies,
            "complete": report.complete,
            "from_peers_median": median(&report.from_peers),
            "from_peers_min": min,
            "first_audio_median_s": median(&report.first_audio),
            "first_audio_max_s": report.first_audio.iter().copied().fold(0.0, f64::max),
            "first_peer_median_s": median(&report.first_peer),
            "wasted_median": median(&report.wasted.iter().map(|&w| w as f64).collect::<Vec<_>>()),
            "origin_unused_copies": report.origin_unused_copies,
            "stalled_fans": report.stalled_fans,
            "stalled_s": report.stalled_secs,
            "virtual_s": report.virtual_secs,
            "wall_s": wall,
            "peak_rss_mb": peak_rss_mb(),
        });
        if !json {
            println!(
                "seed {seed}: {} fans, origin {:.3} copies ({:.3} unused), from peers median {:.1} % \
                 (min {:.1} %), wasted median {:.0} kB, joined to first peer median {:.2} s, \
                 first audio median {:.3} s, {} fans stalled \
                 ({:.1} s), complete {}, {:.0} virtual s in {wall:.1} s wall, \
                 peak resident {} MB",
                crowd.fans,
                report.origin_copies,
                report.origin_unused_copies,
                100.0 * median(&report.from_peers),
                100.0 * min,
                median(&report.wasted.iter().map(|&w| w as f64).collect::<Vec<_>>()) / 1e3,
                median(&report.first_peer),
                median(&report.first_audio),
                report.stalled_fans,
                report.stalled_secs,
                report.complete,
                report.virtual_secs,
                peak_rss_mb().map_or("?".to_owned(), |mb| format!("{mb:.0}")),
            );
        }
        rows.push(row);
    }
    if json {
        // One object per line (JSON lines), each seed's figures.
        for row in rows {
            println!("{row}");
        }
    }
    ExitCode::SUCCESS
}

/// This process's peak resident memory so far (Linux's `VmHWM`), in MB;
/// with several seeds, the largest run's. `None` where `/proc` has no such
/// line.
fn peak_rss_mb() -> Option<f64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kb: f64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb / 1024.0)
}

/// An engine tunable by name, for trying policies from the command line
/// (durations in milliseconds, sizes in bytes).
fn set(world: &mut fanswarm_sim::World, key: &str, v: u64) -> Result<(), String> {
    let ms = Duration::from_millis(v);
    let engine = &mut world.engine;
    match key {
        "peer_up" => world.peer_up = v,
        "gather_ms_min" => world.gather_ms.0 = v,
        "gather_ms_max" => world.gather_ms.1 = v,
        "setup_extra_ms_min" => world.setup_extra_ms.0 = v,
        "setup_extra_ms_max" => world.setup_extra_ms.1 = v,
        "latency_ms_min" => world.latency_ms.0 = v,
        "latency_ms_max" => world.latency_ms.1 = v,
        "upload_slots" => engine.upload_slots = v as usize,
        "web_seed_fallback" => engine.web_seed_fallback = ms,
        "web_seed_fallback_coming" => engine.web_seed_fallback_coming = ms,
        "web_seed_hold_crowd" => engine.web_seed_hold_crowd = v,
        "web_seed_stagger" => engine.web_seed_stagger = ms,
        "first_peer_wait" => engine.first_peer_wait = ms,
        "peer_patience" => engine.peer_patience = ms,
        "peer_patience_min" => engine.peer_patience_min = ms,
        "crowd_settle" => engine.crowd_settle = ms,
        "web_seed_max_run" => engine.web_seed_max_run = v as u32,
        "web_seed_group" => engine.web_seed_group = v as u32,
        "web_seed_parallel" => engine.web_seed_parallel = v as usize,
        "duplicate_within" => engine.picker.duplicate_within = ms,
        "urgent" => engine.picker.urgent = ms,
        "max_requests_per_peer" => engine.max_requests_per_peer = v as u32,
        _ => return Err(format!("no tunable {key:?}")),
    }
    Ok(())
}

/// Every piece the origin sent more than once: when, to whom, and where
/// each of those fans' players were.
fn print_duplicates(sim: &fanswarm_sim::Sim) {
    let pl = u64::from(sim.world.piece_length);
    let pieces = sim.data.len().div_ceil(pl as usize);
    let mut by_piece: Vec<Vec<(u64, usize, &[usize])>> = vec![Vec::new(); pieces];
    for (at, node, start, end, open) in &sim.web_seed_log {
        for p in start / pl..=end / pl {
            by_piece[p as usize].push((*at, *node, open));
        }
    }
    for (p, fetches) in by_piece.iter().enumerate() {
        if fetches.len() > 1 {
            let who: Vec<String> = fetches
                .iter()
                .map(|(at, n, open)| {
                    format!("fan {n} at {:.2} s (linked {open:?})", *at as f64 / 1e6)
                })
                .collect();
            println!("piece {p}: {}", who.join(", "));
        }
    }
}
