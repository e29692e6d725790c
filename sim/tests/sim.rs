//! Whole swarms in virtual time: the engine's behaviour where it matters,
//! many peers at once. Figures are printed (`cargo test -- --nocapture`) for
//! BENCHMARKS.md.
#![allow(clippy::unwrap_used)]

use std::time::{Duration, Instant};

use fanswarm_sim::{Role, Sim, World, summary};
use swarm::picker::{Playback, Urgency};

fn secs(s: f64) -> Duration {
    Duration::from_secs_f64(s)
}

fn assert_all_byte_identical(sim: &Sim) {
    for (i, node) in sim.nodes.iter().enumerate() {
        if node.left || node.role == Role::Liar {
            continue;
        }
        assert!(
            sim.assembled(i) == sim.data,
            "node {i} did not assemble the exact track"
        );
        if node.role == Role::Leecher {
            let st = node.node.as_ref().unwrap().stats().engine;
            assert_eq!(
                st.from_peers + st.from_web_seed,
                sim.data.len() as u64,
                "node {i}: useful bytes must add up to one copy: {st:?}"
            );
        }
    }
}

#[test]
fn flash_crowd_of_fifty_is_served_about_once_by_the_origin() {
    let started = Instant::now();
    let mut sim = Sim::new(World {
        seed: 50,
        ..World::default()
    });
    for i in 0..50 {
        let at = secs(2.0 * i as f64 / 50.0);
        sim.add_node(Role::Leecher, at, None);
    }
    assert!(sim.run(Duration::from_secs(600)), "every peer completes");
    assert_all_byte_identical(&sim);
    let figures = summary(&sim);
    println!("flash crowd 50: {figures:?}, wall {:?}", started.elapsed());
    assert!(
        sim.origin_copies() <= 1.3,
        "origin sent {:.2} copies of the track",
        sim.origin_copies()
    );
}

#[test]
fn a_liar_is_banned_by_everyone_it_served_and_nobody_is_fooled() {
    let mut sim = Sim::new(World {
        seed: 7,
        ..World::default()
    });
    let liar = sim.add_node(Role::Liar, Duration::ZERO, None);
    for i in 0..12 {
        sim.add_node(Role::Leecher, secs(0.1 * i as f64), None);
    }
    assert!(
        sim.run(Duration::from_secs(600)),
        "every honest peer completes"
    );
    assert_all_byte_identical(&sim);
    let liar_id = sim.nodes[liar].peer_id;
    let served: Vec<usize> = (0..sim.nodes.len())
        .filter(|&i| sim.nodes[i].received_from.contains(&liar_id))
        .collect();
    assert!(served.len() >= 3, "the liar served someone: {served:?}");
    for i in served {
        assert!(
            sim.nodes[i].banned.contains(&liar_id),
            "node {i} took blocks from the liar but did not ban it"
        );
    }
    for (i, node) in sim.nodes.iter().enumerate() {
        let honest_banned = node.banned.iter().any(|id| *id != liar_id);
        assert!(!honest_banned, "node {i} banned an honest peer");
    }
}

#[test]
fn half_the_swarm_leaves_mid_download_and_the_rest_complete() {
    let mut sim = Sim::new(World {
        seed: 11,
        file_len: 4 * 1024 * 1024,
        http_rate: 1_000_000,
        ..World::default()
    });
    sim.add_node(Role::Seeder, Duration::ZERO, None);
    let leechers: Vec<usize> = (0..20)
        .map(|i| sim.add_node(Role::Leecher, secs(0.1 * i as f64), None))
        .collect();
    for &n in leechers.iter().step_by(2) {
        sim.leave_at(n, secs(3.0));
    }
    assert!(
        sim.run(Duration::from_secs(900)),
        "the remaining peers complete"
    );
    // Prove the leavers really left mid-download.
    let unfinished_leavers = leechers
        .iter()
        .step_by(2)
        .filter(|&&n| sim.nodes[n].done_at.is_none())
        .count();
    assert!(
        unfinished_leavers >= 5,
        "only {unfinished_leavers} leavers were mid-download"
    );
    assert_all_byte_identical(&sim);
    println!("half leave: {:?}", summary(&sim));
}

#[test]
fn with_a_playhead_the_first_pieces_come_before_far_ones() {
    let mut sim = Sim::new(World {
        seed: 5,
        file_len: 4 * 1024 * 1024,
        ..World::default()
    });
    for _ in 0..4 {
        sim.add_node(Role::Seeder, Duration::ZERO, None);
    }
    let playback = Playback {
        offset: 0,
        bytes_per_sec: Some(40_000),
    };
    let listener = sim.add_node(Role::Leecher, secs(0.5), Some(playback));
    assert!(sim.run(Duration::from_secs(300)));
    assert_all_byte_identical(&sim);

    // "Far" is what the picker itself calls Normal at the start of playback.
    let mut rng = fastrand::Rng::with_seed(0);
    let mut picker = swarm::picker::Picker::new(
        World::default().engine.picker,
        sim.spec.piece_length,
        sim.spec.total_length,
        &mut rng,
    );
    picker.set_playback(Some(playback));
    let order = &sim.nodes[listener].verified;
    let position = |p: u32| order.iter().position(|&x| x == p).unwrap();
    let last_of_first_three = (0..3).map(position).max().unwrap();
    let first_far = order
        .iter()
        .position(|&p| picker.urgency(p) == Urgency::Normal)
        .unwrap();
    assert!(
        last_of_first_three < first_far,
        "pieces 0-2 verified at positions {:?}, first far piece at {first_far}: {order:?}",
        (0..3).map(position).collect::<Vec<_>>()
    );
}

#[test]
fn the_same_seed_replays_the_same_run() {
    let run = || {
        let mut sim = Sim::new(World {
            seed: 99,
            file_len: 512 * 1024,
            ..World::default()
        });
        for i in 0..8 {
            sim.add_node(Role::Leecher, secs(0.05 * i as f64), None);
        }
        assert!(sim.run(Duration::from_secs(300)));
        (
            sim.origin_bytes,
            sim.now,
            sim.nodes
                .iter()
                .map(|n| n.verified.clone())
                .collect::<Vec<_>>(),
        )
    };
    assert_eq!(run(), run());
}

/// Not a pass/fail test: the origin-offload figure over many seeds, for
/// BENCHMARKS.md. `cargo test -p swarm --release --test sim -- --ignored --nocapture`
#[test]
#[ignore]
fn origin_offload_across_seeds() {
    let mut copies = Vec::new();
    let mut finish = Vec::new();
    for seed in 1..=20 {
        let mut sim = Sim::new(World {
            seed,
            ..World::default()
        });
        for i in 0..50 {
            sim.add_node(Role::Leecher, secs(2.0 * i as f64 / 50.0), None);
        }
        assert!(sim.run(Duration::from_secs(600)));
        copies.push(sim.origin_copies());
        finish.push(summary(&sim)["max_leecher_secs"]);
    }
    let stats = |v: &[f64]| {
        let mean = v.iter().sum::<f64>() / v.len() as f64;
        let max = v.iter().copied().fold(f64::MIN, f64::max);
        let min = v.iter().copied().fold(f64::MAX, f64::min);
        (min, mean, max)
    };
    println!(
        "origin copies over 20 seeds (min, mean, max): {:?}",
        stats(&copies)
    );
    println!(
        "last peer done, virtual s (min, mean, max): {:?}",
        stats(&finish)
    );
}
