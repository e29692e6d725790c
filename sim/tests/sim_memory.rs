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
