//! Swarms whose leechers start from a bare magnet: the metadata comes over
//! ut_metadata from peers, then the same connections carry the pieces.
//! Figures are printed (`cargo test -- --nocapture`).
#![allow(clippy::unwrap_used)]

use std::time::Duration;

use fanswarm_sim::{Role, Sim, World, summary};

fn secs(s: f64) -> Duration {
    Duration::from_secs_f64(s)
}

/// Mean and maximum seconds from joining to knowing the metadata.
fn time_to_metadata(sim: &Sim) -> (f64, f64) {
    let waits: Vec<f64> = sim
        .nodes
        .iter()
        .filter(|n| n.role == Role::Leecher)
        .map(|n| (n.metadata_at.unwrap() - n.joined_at.unwrap()) as f64 / 1e6)
        .collect();
    let mean = waits.iter().sum::<f64>() / waits.len() as f64;
    (mean, waits.iter().copied().fold(0.0, f64::max))
}

#[test]
fn magnet_leechers_fetch_metadata_from_peers_and_complete_byte_identical() {
    let mut sim = Sim::new(World {
        seed: 21,
        magnet: true,
        ..World::default()
    });
    sim.add_node(Role::Seeder, Duration::ZERO, None);
    for i in 0..20 {
        sim.add_node(Role::Leecher, secs(0.1 * f64::from(i)), None);
    }
    assert!(sim.run(Duration::from_secs(600)), "every leecher completes");
    for (i, node) in sim.nodes.iter().enumerate() {
        assert!(
            node.metadata_at.is_some(),
            "node {i} never got the metadata"
        );
        assert!(
            sim.assembled(i) == sim.data,
            "node {i} is not byte-identical"
        );
        let st = node.node.as_ref().unwrap().stats().engine;
        if node.role == Role::Leecher {
            assert_eq!(st.from_peers + st.from_web_seed, sim.data.len() as u64);
        }
    }
    let (mean, max) = time_to_metadata(&sim);
    println!(
        "magnet, 1 seeder + 20 leechers: metadata mean {mean:.3} s, max {max:.3} s; {:?}",
        summary(&sim)
    );
}

#[test]
fn magnet_leechers_without_web_seed_get_everything_from_peers() {
    let mut sim = Sim::new(World {
        seed: 22,
        magnet: true,
        web_seed: false,
        ..World::default()
    });
    sim.add_node(Role::Seeder, Duration::ZERO, None);
    for i in 0..8 {
        sim.add_node(Role::Leecher, secs(0.5 * f64::from(i)), None);
    }
    assert!(sim.run(Duration::from_secs(600)), "every leecher completes");
    for i in 0..sim.nodes.len() {
        assert!(
            sim.assembled(i) == sim.data,
            "node {i} is not byte-identical"
        );
    }
    assert_eq!(sim.origin_bytes, 0);
    let (mean, max) = time_to_metadata(&sim);
    println!("magnet, no web seed: metadata mean {mean:.3} s, max {max:.3} s");
}

#[test]
fn a_magnet_listener_uses_the_magnets_web_seed_once_the_info_is_known() {
    // One slow seeder: the listener's urgent pieces must come from the `ws`
    // web seed of the magnet, which only becomes usable with the metadata.
    let mut sim = Sim::new(World {
        seed: 23,
        magnet: true,
        peer_up: 20_000,
        ..World::default()
    });
    sim.add_node(Role::Seeder, Duration::ZERO, None);
    let playback = swarm::picker::Playback {
        offset: 0,
        bytes_per_sec: Some(40_000),
    };
    let listener = sim.add_node(Role::Leecher, secs(0.2), Some(playback));
    assert!(sim.run(Duration::from_secs(600)), "the listener completes");
    assert!(sim.assembled(listener) == sim.data);
    let st = sim.nodes[listener].node.as_ref().unwrap().stats().engine;
    assert!(st.from_web_seed > 0, "the web seed was never used: {st:?}");
    assert!(st.from_peers > 0, "the seeder was never used: {st:?}");
}
