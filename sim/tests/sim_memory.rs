//! Swarms whose peers keep less than the whole track in memory: evicted
//! pieces are rejected to peers that ask, nobody is fooled, everyone
//! completes, and every engine's invariants hold throughout.
#![allow(clippy::unwrap_used)]

use std::time::Duration;

use fanswarm_sim::{Role, Sim, World};
use swarm::engine::Config;
use swarm::picker::Playback;

#[test]
fn peers_bounded_to_half_the_track_still_all_complete() {
    let limit = 1024 * 1024;
    let mut sim = Sim::new(World {
        seed: 31,
        engine: Config {
            memory_limit: limit,
            ..Config::default()
        },
        ..World::default()
    });
    // The seeder too: it keeps the first half and rejects the rest.
    sim.add_node(Role::Seeder, Duration::ZERO, None);
    let playback = Playback {
        offset: 0,
        // Slow enough that most of the track is not needed soon (evictable).
        bytes_per_sec: Some(20_000),
    };
    for i in 0..6 {
        sim.add_node(
            Role::Leecher,
            Duration::from_millis(200 * i),
            Some(playback),
        );
    }
    assert!(sim.run(Duration::from_secs(600)), "every peer completes");
    let piece = u64::from(sim.world.piece_length);
    for (i, node) in sim.nodes.iter().enumerate() {
        let torrent = node.node.as_ref().unwrap().torrent().torrent().unwrap();
        assert!(
            torrent.memory_bytes() <= limit + piece,
            "node {i} holds {} bytes",
            torrent.memory_bytes()
        );
        assert!(torrent.evicted().count() > 0, "node {i} never evicted");
        // What it still holds is exactly the track's bytes.
        for p in 0..torrent.have().len() {
            if let Some(bytes) = torrent.piece(p) {
                let start = (u64::from(p) * piece) as usize;
                assert!(bytes == &sim.data[start..start + bytes.len()]);
            }
        }
        assert!(node.banned.is_empty(), "node {i} banned an honest peer");
    }
    println!(
        "memory-bounded swarm: origin sent {:.2} copies",
        sim.origin_copies()
    );
}

/// What lets a crowd of 100,000 fit in memory: every node verifies every
/// piece it receives itself, but the simulator's nodes then hold one shared
/// copy of each piece, not a copy per node. Without it each present fan
/// costs the whole track (4.1 MB for the benchmark's song); with it a
/// fan's memory is its own state.
#[test]
fn nodes_hold_one_shared_copy_of_each_verified_piece() {
    let mut sim = Sim::new(World {
        seed: 32,
        ..World::default()
    });
    sim.add_node(Role::Seeder, Duration::ZERO, None);
    // A liar too: what it sends fails verification and is never shared.
    sim.add_node(Role::Liar, Duration::ZERO, None);
    for i in 0..8 {
        sim.add_node(Role::Leecher, Duration::from_millis(100 * i), None);
    }
    assert!(sim.run(Duration::from_secs(600)), "every peer completes");
    let pieces = u32::try_from(sim.spec.piece_hashes.len()).unwrap();
    let shared = sim.world.engine.shared_pieces.clone().unwrap();
    assert_eq!(
        shared.live_pieces(),
        pieces as usize,
        "one live copy per piece, however many nodes hold it"
    );
    let leechers: Vec<usize> = (0..sim.nodes.len())
        .filter(|&i| sim.nodes[i].role == Role::Leecher)
        .collect();
    for p in 0..pieces {
        let first = sim.nodes[leechers[0]].node.as_ref().unwrap().piece(p);
        let first = first.unwrap();
        for &i in &leechers {
            let bytes = sim.nodes[i].node.as_ref().unwrap().piece(p).unwrap();
            assert!(
                std::ptr::eq(bytes, first),
                "node {i} holds its own copy of piece {p}"
            );
        }
    }
    for &i in &leechers {
        assert_eq!(sim.assembled(i), sim.data, "node {i} holds the track");
        let stats = sim.engine_stats(i);
        // Each received the track itself (from peers or the web seed):
        // sharing saves memory, not downloads or checks.
        assert!(
            stats.from_peers + stats.from_web_seed >= sim.data.len() as u64,
            "node {i} received {} bytes",
            stats.from_peers + stats.from_web_seed
        );
        let torrent = sim.nodes[i]
            .node
            .as_ref()
            .unwrap()
            .torrent()
            .torrent()
            .unwrap();
        assert_eq!(
            torrent.memory_bytes(),
            sim.data.len() as u64,
            "node {i} counts shared pieces in full toward its bound"
        );
    }
}
