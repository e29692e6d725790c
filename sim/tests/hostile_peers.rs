//! One hostile peer joins an honest swarm (a seeder, six leechers, no web
//! seed, everyone connected to everyone): for each kind of hostility, that
//! peer is dropped or ignored as the case demands, the honest peers never
//! drop each other, and every honest leecher completes byte-identical.
//! Nothing panics, and every engine keeps its invariants (the simulator
//! checks them at the end of every run).
#![allow(clippy::unwrap_used)]

use std::time::Duration;

use fanswarm_sim::{Behaviour, Role, Sim, World};
use swarm::engine::PeerError;
use swarm::wire::{FrameError, WireError};

/// Honest nodes: one seeder and six leechers.
const HONEST: usize = 7;

/// Runs the swarm with one hostile node and checks what holds in every case;
/// returns the finished simulation and the hostile node's index.
fn swarm_with(behaviour: Behaviour, seed: u64) -> (Sim, usize) {
    let mut sim = Sim::new(World {
        seed,
        // 31 pieces, the last one short: the bitfield has spare bits.
        file_len: 1_000_000,
        piece_length: 32 * 1024,
        // Without a web seed every byte must come from a peer, so a hostile
        // one cannot hide behind the origin.
        web_seed: false,
        offers_per_announce: 8,
        ..World::default()
    });
    let hostile = sim.add_node(Role::Hostile(behaviour), Duration::ZERO, None);
    sim.add_node(Role::Seeder, Duration::ZERO, None);
    for i in 0..HONEST - 1 {
        sim.add_node(Role::Leecher, Duration::from_millis(100 * i as u64), None);
    }
    assert!(
        sim.run(Duration::from_secs(600)),
        "{behaviour:?}: every honest leecher completes"
    );
    // Let what is in flight arrive: handshakes, closes, and the hostile
    // node's injected bytes (1.6 MB per connection for `Unrequested`, over
    // an uplink of 1 MB/s shared by seven connections).
    sim.settle(Duration::from_secs(20));

    for i in honest(&sim) {
        assert!(
            sim.assembled(i) == sim.data,
            "{behaviour:?}: node {i} did not assemble the exact track"
        );
        let st = sim.nodes[i].node.as_ref().unwrap().stats().engine;
        if sim.nodes[i].role == Role::Leecher {
            assert_eq!(
                st.from_peers,
                sim.data.len() as u64,
                "{behaviour:?}: node {i}'s useful bytes add up to one copy: {st:?}"
            );
        }
        let against_honest: Vec<_> = sim.nodes[i]
            .closed
            .iter()
            .filter(|(remote, _)| *remote != hostile)
            .collect();
        assert!(
            against_honest.is_empty(),
            "{behaviour:?}: node {i} dropped honest peers: {against_honest:?}"
        );
    }
    (sim, hostile)
}

fn honest(sim: &Sim) -> impl Iterator<Item = usize> + '_ {
    (0..sim.nodes.len()).filter(|&i| !matches!(sim.nodes[i].role, Role::Hostile(_)))
}

/// Every honest node dropped the hostile one, each time for a reason `ok`
/// accepts. (It may be connected again by now: a hostile node that loses its
/// connections re-announces and is offered to the same peers, as through a
/// real tracker, and is dropped again.)
fn assert_dropped_by_everyone(sim: &Sim, hostile: usize, ok: impl Fn(&PeerError) -> bool) {
    for i in honest(sim) {
        let reasons: Vec<&PeerError> = sim.nodes[i]
            .closed
            .iter()
            .filter(|(remote, _)| *remote == hostile)
            .map(|(_, reason)| reason)
            .collect();
        assert!(
            !reasons.is_empty(),
            "node {i} never dropped the hostile peer; the hostile peer closed {:?}",
            sim.nodes[hostile].closed
        );
        for reason in reasons {
            assert!(ok(reason), "node {i} dropped the hostile peer for {reason}");
        }
    }
}

/// No honest node took a useful byte from the hostile one.
fn assert_nothing_taken_from(sim: &Sim, hostile: usize) {
    let id = sim.nodes[hostile].peer_id;
    for i in honest(sim) {
        assert!(
            !sim.nodes[i].received_from.contains(&id),
            "node {i} took blocks from the hostile peer"
        );
    }
}

fn protocol(reason: &PeerError, what: &str) -> bool {
    matches!(reason, PeerError::Protocol(text) if text.contains(what))
}

#[test]
fn a_peer_with_the_wrong_info_hash_is_dropped_at_its_handshake() {
    let (sim, hostile) = swarm_with(Behaviour::WrongInfoHash, 101);
    assert_dropped_by_everyone(
        &sim,
        hostile,
        |r| matches!(r, PeerError::WrongInfoHash(h) if *h != sim.spec.info_hash),
    );
    assert_nothing_taken_from(&sim, hostile);
}

#[test]
fn a_flood_of_have_for_missing_pieces_is_dropped_at_the_first() {
    let (sim, hostile) = swarm_with(Behaviour::HaveFlood, 102);
    assert_dropped_by_everyone(&sim, hostile, |r| protocol(r, "out of range"));
    assert_nothing_taken_from(&sim, hostile);
}

#[test]
fn a_request_for_a_piece_past_the_end_is_dropped() {
    let (sim, hostile) = swarm_with(Behaviour::RequestBadPiece, 103);
    assert_dropped_by_everyone(&sim, hostile, |r| protocol(r, "bad request"));
}

#[test]
fn a_request_past_the_end_of_its_piece_is_dropped() {
    let (sim, hostile) = swarm_with(Behaviour::RequestPastPieceEnd, 104);
    assert_dropped_by_everyone(&sim, hostile, |r| protocol(r, "bad request"));
}

#[test]
fn a_request_larger_than_128_kib_is_dropped() {
    let (sim, hostile) = swarm_with(Behaviour::RequestTooLarge, 105);
    assert_dropped_by_everyone(&sim, hostile, |r| protocol(r, "bad request"));
}

#[test]
fn requests_far_beyond_reqq_are_rejected_and_the_peer_kept() {
    let (sim, hostile) = swarm_with(Behaviour::RequestFlood, 106);
    let seen = sim.nodes[hostile].seen;
    let reqq = u64::from(sim.world.engine.max_requests_per_peer);
    // It asked each honest node for every block twenty times over.
    let asked_each = 20 * sim.data.len().div_ceil(16 * 1024) as u64;
    assert!(asked_each > 2 * reqq, "the flood exceeds reqq");
    // Beyond the reqq queued, a request is rejected — or absorbed, when
    // the same block is already queued (the flood repeats each block), and
    // each delivery lets the queue drain by a serving burst first: so at
    // least the flood less twice reqq is rejected on every connection.
    assert!(
        seen.rejects >= HONEST as u64 * (asked_each - 2 * reqq),
        "the excess is rejected: {seen:?}"
    );
    assert!(
        seen.blocks <= HONEST as u64 * reqq,
        "at most reqq blocks served per connection: {seen:?}"
    );
    for i in honest(&sim) {
        let dropped = sim.nodes[i].closed.iter().any(|(r, _)| *r == hostile);
        assert!(!dropped, "node {i} dropped a peer that only asked too much");
    }
}

#[test]
fn a_bitfield_of_the_wrong_length_is_dropped() {
    let (sim, hostile) = swarm_with(Behaviour::BitfieldWrongLength, 107);
    assert_dropped_by_everyone(&sim, hostile, |r| matches!(r, PeerError::Protocol(_)));
    assert_nothing_taken_from(&sim, hostile);
}

#[test]
fn a_bitfield_with_spare_bits_set_is_dropped() {
    let (sim, hostile) = swarm_with(Behaviour::BitfieldSpareBits, 108);
    assert_dropped_by_everyone(&sim, hostile, |r| matches!(r, PeerError::Protocol(_)));
    assert_nothing_taken_from(&sim, hostile);
}

#[test]
fn a_message_longer_than_the_limit_is_dropped() {
    let (sim, hostile) = swarm_with(Behaviour::OversizedMessage, 109);
    assert_dropped_by_everyone(&sim, hostile, |r| {
        matches!(
            r,
            PeerError::Wire(WireError::Message(FrameError::TooLong { .. }))
        )
    });
    assert_nothing_taken_from(&sim, hostile);
}

#[test]
fn requests_to_a_silent_peer_time_out_and_go_elsewhere() {
    let (sim, hostile) = swarm_with(Behaviour::Silent, 110);
    assert!(
        sim.nodes[hostile].seen.requests > 0,
        "honest peers did ask the silent one"
    );
    assert_nothing_taken_from(&sim, hostile);
}

#[test]
fn a_peer_sending_unrequested_garbage_is_dropped() {
    let (sim, hostile) = swarm_with(Behaviour::Unrequested, 111);
    let id = sim.nodes[hostile].peer_id;
    assert_dropped_by_everyone(&sim, hostile, |r| {
        protocol(r, "unrequested") || *r == PeerError::Banned(id)
    });
}

#[test]
fn a_peer_serving_corrupt_blocks_is_banned_and_its_pieces_fetched_again() {
    let (sim, hostile) = swarm_with(Behaviour::Corrupt, 112);
    let id = sim.nodes[hostile].peer_id;
    let fooled: Vec<usize> = honest(&sim)
        .filter(|&i| sim.nodes[i].banned.contains(&id))
        .collect();
    assert!(!fooled.is_empty(), "someone took blocks from the liar");
    for i in fooled {
        let reasons: Vec<_> = sim.nodes[i]
            .closed
            .iter()
            .filter(|(r, _)| *r == hostile)
            .collect();
        assert!(
            reasons.iter().all(|(_, r)| *r == PeerError::Banned(id)),
            "node {i}: {reasons:?}"
        );
    }
}

#[test]
fn every_kind_of_hostile_peer_at_once_and_the_honest_still_complete() {
    let mut sim = Sim::new(World {
        seed: 113,
        file_len: 1_000_000,
        piece_length: 32 * 1024,
        web_seed: false,
        offers_per_announce: 10,
        max_connections: 24,
        ..World::default()
    });
    let hostile: Vec<usize> = Behaviour::ALL
        .iter()
        .map(|&b| sim.add_node(Role::Hostile(b), Duration::ZERO, None))
        .collect();
    sim.add_node(Role::Seeder, Duration::ZERO, None);
    for i in 0..HONEST - 1 {
        sim.add_node(Role::Leecher, Duration::from_millis(100 * i as u64), None);
    }
    assert!(
        sim.run(Duration::from_secs(900)),
        "every honest leecher completes"
    );
    for i in honest(&sim) {
        assert!(sim.assembled(i) == sim.data, "node {i}");
        let against_honest: Vec<_> = sim.nodes[i]
            .closed
            .iter()
            .filter(|(remote, _)| !hostile.contains(remote))
            .collect();
        assert!(against_honest.is_empty(), "node {i}: {against_honest:?}");
    }
}
