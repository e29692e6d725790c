use std::time::Duration;

use swarm::tracker::{Offer, SdpKind, SessionDescription};

use super::*;

const HASH: InfoHash = InfoHash([0xaa; 20]);

fn peer(n: u8) -> PeerId {
    PeerId([n; 20])
}

fn offer(n: u8) -> Offer {
    Offer {
        offer: SessionDescription {
            kind: SdpKind::Offer,
            sdp: format!("v=0 offer {n}"),
        },
        offer_id: OfferId([n; 20]),
    }
}

fn announce(peer_id: PeerId, offers: Vec<Offer>) -> AnnounceRequest {
    AnnounceRequest {
        info_hash: HASH,
        peer_id,
        event: None,
        numwant: None,
        uploaded: None,
        downloaded: None,
        left: Some(1),
        offers: Some(offers),
        answer: None,
        to_peer_id: None,
        offer_id: None,
    }
}

fn answer(from: PeerId, to: PeerId, offer_id: OfferId) -> AnnounceRequest {
    AnnounceRequest {
        answer: Some(SessionDescription {
            kind: SdpKind::Answer,
            sdp: "v=0 answer".into(),
        }),
        to_peer_id: Some(to),
        offer_id: Some(offer_id),
        offers: None,
        ..announce(from, vec![])
    }
}

struct Harness {
    tracker: Tracker,
    rng: fastrand::Rng,
    now: Time,
    out: Outbox,
}

impl Harness {
    fn new() -> Self {
        Self::with_limits(Limits::default())
    }

    fn with_limits(limits: Limits) -> Self {
        Harness {
            tracker: Tracker::new(limits),
            rng: fastrand::Rng::with_seed(42),
            now: Time(1_000_000),
            out: Vec::new(),
        }
    }

    fn send(&mut self, conn: u64, a: AnnounceRequest) -> Outbox {
        self.send_msg(conn, ClientMessage::Announce(a))
    }

    fn send_msg(&mut self, conn: u64, msg: ClientMessage) -> Outbox {
        self.tracker.handle(
            self.now,
            &mut self.rng,
            ConnectionId(conn),
            Ok(msg),
            &mut self.out,
        );
        std::mem::take(&mut self.out)
    }
}

fn refusal_of(out: &Outbox) -> Option<&Refusal> {
    out.iter().find_map(|(_, m)| match m {
        OutMessage::Failure { refusal, .. } => Some(refusal),
        _ => None,
    })
}

fn offers_in(out: &Outbox) -> Vec<(ConnectionId, &OfferRelay)> {
    out.iter()
        .filter_map(|(c, m)| match m {
            OutMessage::Offer(o) => Some((*c, o)),
            _ => None,
        })
        .collect()
}

#[test]
fn offers_go_to_distinct_other_peers_and_announcer_gets_counts() {
    let mut h = Harness::new();
    for n in 1..=6 {
        h.send(u64::from(n), announce(peer(n), vec![]));
    }
    let out = h.send(7, announce(peer(7), (1..=5).map(offer).collect()));
    let relayed = offers_in(&out);
    assert_eq!(relayed.len(), 5);
    let mut targets: Vec<_> = relayed.iter().map(|(c, _)| *c).collect();
    targets.sort();
    targets.dedup();
    assert_eq!(targets.len(), 5, "each offer to a different peer");
    assert!(targets.iter().all(|c| *c != ConnectionId(7)));
    assert!(relayed.iter().all(|(_, o)| o.peer_id == peer(7)));
    let reply = out.iter().find_map(|(c, m)| match m {
        OutMessage::Announce(r) if *c == ConnectionId(7) => Some(r),
        _ => None,
    });
    let reply = reply.expect("announcer gets a reply");
    assert_eq!(
        (reply.complete, reply.incomplete, reply.interval),
        (0, 7, 120)
    );
}

#[test]
fn offers_are_capped_by_numwant_and_swarm_size() {
    let mut h = Harness::new();
    h.send(1, announce(peer(1), vec![]));
    h.send(2, announce(peer(2), vec![]));
    let out = h.send(3, announce(peer(3), (1..=5).map(offer).collect()));
    assert_eq!(offers_in(&out).len(), 2, "only two other peers exist");
    let mut a = announce(peer(3), (1..=5).map(offer).collect());
    a.numwant = Some(1);
    assert_eq!(offers_in(&h.send(3, a)).len(), 1);
}

#[test]
fn too_many_offers_is_refused_with_context() {
    let mut h = Harness::new();
    let out = h.send(1, announce(peer(1), (1..=11).map(offer).collect()));
    assert_eq!(out.len(), 1);
    match &out[0].1 {
        OutMessage::Failure {
            refusal,
            action,
            info_hash,
        } => {
            assert_eq!(refusal, &Refusal::TooManyOffers(10));
            assert_eq!((*action, *info_hash), (Some(Action::Announce), Some(HASH)));
        }
        other => panic!("expected failure, got {other:?}"),
    }
    assert_eq!(
        h.tracker.peer_count(),
        0,
        "a refused announce joins nothing"
    );
}

#[test]
fn answer_routed_back_only_for_a_relayed_offer() {
    let mut h = Harness::new();
    h.send(1, announce(peer(1), vec![]));
    let out = h.send(2, announce(peer(2), vec![offer(9)]));
    let (target, relay) = offers_in(&out)[0];
    assert_eq!(target, ConnectionId(1));
    assert_eq!(relay.offer_id, OfferId([9; 20]));

    // A third peer that never got the offer cannot answer it.
    h.send(3, announce(peer(3), vec![]));
    let out = h.send(3, answer(peer(3), peer(2), OfferId([9; 20])));
    assert_eq!(refusal_of(&out), Some(&Refusal::UnknownOffer));

    // The right answerer, but to the wrong offerer id.
    let out = h.send(1, answer(peer(1), peer(3), OfferId([9; 20])));
    assert_eq!(refusal_of(&out), Some(&Refusal::UnknownOffer));

    let out = h.send(1, answer(peer(1), peer(2), OfferId([9; 20])));
    assert_eq!(out.len(), 1);
    match &out[0] {
        (c, OutMessage::Answer(a)) => {
            assert_eq!(*c, ConnectionId(2));
            assert_eq!((a.peer_id, a.offer_id), (peer(1), OfferId([9; 20])));
        }
        other => panic!("expected an answer relay, got {other:?}"),
    }
    // Only once.
    let out = h.send(1, answer(peer(1), peer(2), OfferId([9; 20])));
    assert_eq!(refusal_of(&out), Some(&Refusal::UnknownOffer));
}

#[test]
fn expired_offer_cannot_be_answered() {
    let mut h = Harness::new();
    h.send(1, announce(peer(1), vec![]));
    h.send(2, announce(peer(2), vec![offer(9)]));
    h.now = h.now + Duration::from_secs(121);
    let out = h.send(1, answer(peer(1), peer(2), OfferId([9; 20])));
    assert_eq!(refusal_of(&out), Some(&Refusal::UnknownOffer));
}

#[test]
fn answer_without_routing_fields_is_refused() {
    let mut h = Harness::new();
    let mut a = answer(peer(1), peer(2), OfferId([1; 20]));
    a.offer_id = None;
    assert_eq!(refusal_of(&h.send(1, a)), Some(&Refusal::IncompleteAnswer));
}

#[test]
fn peer_id_cannot_be_taken_over_or_changed() {
    let mut h = Harness::new();
    h.send(1, announce(peer(1), vec![]));
    let out = h.send(2, announce(peer(1), vec![]));
    assert_eq!(refusal_of(&out), Some(&Refusal::PeerIdTaken));
    let out = h.send(1, announce(peer(5), vec![]));
    assert_eq!(refusal_of(&out), Some(&Refusal::PeerIdChanged));
    assert_eq!(h.tracker.peer_count(), 1);
    // Once the owner leaves, the id is free again.
    h.tracker.disconnect(ConnectionId(1));
    assert_eq!(refusal_of(&h.send(2, announce(peer(1), vec![]))), None);
}

#[test]
fn events_update_counts_and_stopped_leaves() {
    let mut h = Harness::new();
    h.send(1, announce(peer(1), vec![]));
    let mut done = announce(peer(1), vec![]);
    done.event = Some(AnnounceEvent::Completed);
    done.left = None;
    h.send(1, done);
    for event in [
        None,
        Some(AnnounceEvent::Update),
        Some(AnnounceEvent::Paused),
    ] {
        let mut a = announce(peer(2), vec![]);
        a.event = event;
        assert_eq!(refusal_of(&h.send(2, a)), None);
    }
    let out = h.send_msg(
        3,
        ClientMessage::Scrape(ScrapeRequest {
            info_hashes: vec![HASH, InfoHash([1; 20])],
        }),
    );
    let OutMessage::Scrape(s) = &out[0].1 else {
        panic!("expected scrape, got {out:?}")
    };
    let expected = ScrapeStatistics {
        complete: 1,
        incomplete: 1,
        downloaded: 1,
    };
    assert_eq!(s.files[&HASH], expected);
    assert_eq!(s.files[&InfoHash([1; 20])], ScrapeStatistics::default());

    let mut stop = announce(peer(1), vec![offer(1)]);
    stop.event = Some(AnnounceEvent::Stopped);
    let out = h.send(1, stop);
    assert!(offers_in(&out).is_empty(), "stopped relays no offers");
    assert_eq!(h.tracker.peer_count(), 1);
}

#[test]
fn scrape_limits() {
    let mut h = Harness::new();
    let none = ClientMessage::Scrape(ScrapeRequest {
        info_hashes: vec![],
    });
    assert_eq!(refusal_of(&h.send_msg(1, none)), Some(&Refusal::FullScrape));
    let many = ClientMessage::Scrape(ScrapeRequest {
        info_hashes: (0..256u32)
            .map(|i| InfoHash(std::array::from_fn(|j| (i >> (j % 4)) as u8)))
            .collect(),
    });
    assert_eq!(
        refusal_of(&h.send_msg(1, many)),
        Some(&Refusal::TooManyScrapeHashes(255))
    );
}

#[test]
fn swarm_and_connection_caps() {
    let mut h = Harness::with_limits(Limits {
        max_peers_per_swarm: 2,
        max_swarms_per_connection: 1,
        ..Limits::default()
    });
    h.send(1, announce(peer(1), vec![]));
    h.send(2, announce(peer(2), vec![]));
    assert_eq!(
        refusal_of(&h.send(3, announce(peer(3), vec![]))),
        Some(&Refusal::SwarmFull)
    );
    let mut other = announce(peer(1), vec![]);
    other.info_hash = InfoHash([2; 20]);
    assert_eq!(
        refusal_of(&h.send(1, other)),
        Some(&Refusal::TooManySwarms(1))
    );
}

#[test]
fn rate_limit_refuses_then_refills() {
    let mut h = Harness::with_limits(Limits {
        messages_per_second: 2,
        message_burst: 3,
        ..Limits::default()
    });
    for _ in 0..3 {
        assert_eq!(refusal_of(&h.send(1, announce(peer(1), vec![]))), None);
    }
    assert_eq!(
        refusal_of(&h.send(1, announce(peer(1), vec![]))),
        Some(&Refusal::RateLimited)
    );
    // Another connection is unaffected.
    assert_eq!(refusal_of(&h.send(2, announce(peer(2), vec![]))), None);
    h.now = h.now + Duration::from_millis(500);
    assert_eq!(refusal_of(&h.send(1, announce(peer(1), vec![]))), None);
}

#[test]
fn malformed_request_gets_failure_with_known_context() {
    let mut h = Harness::new();
    let err = ParseError {
        action: Some(Action::Announce),
        info_hash: Some(HASH),
        reason: "bad peer_id".into(),
    };
    h.tracker
        .handle(h.now, &mut h.rng, ConnectionId(1), Err(err), &mut h.out);
    let msg = h.out[0].1.clone().into_server_message();
    let text = serde_json::to_string(&msg).unwrap();
    assert!(
        text.contains(r#""failure reason":"invalid request: bad peer_id""#),
        "{text}"
    );
    assert!(text.contains(r#""action":"announce""#), "{text}");
}

#[test]
fn silent_peers_expire_and_disconnect_leaves_swarms() {
    let mut h = Harness::new();
    h.send(1, announce(peer(1), vec![]));
    h.now = h.now + Duration::from_secs(100);
    h.send(2, announce(peer(2), vec![]));
    h.now = h.now + Duration::from_secs(100);
    h.tracker.expire(h.now);
    assert_eq!(
        h.tracker.peer_count(),
        1,
        "peer 1 is 200 s silent, peer 2 100 s"
    );
    // Peer 1's id is free now, and its connection can rejoin.
    assert_eq!(refusal_of(&h.send(1, announce(peer(1), vec![]))), None);
    h.tracker.disconnect(ConnectionId(1));
    h.tracker.disconnect(ConnectionId(2));
    assert_eq!((h.tracker.peer_count(), h.tracker.swarm_count()), (0, 0));
    assert_eq!(h.tracker.connection_count(), 0);
}

#[test]
fn answer_to_a_departed_offerer_is_dropped() {
    let mut h = Harness::new();
    h.send(1, announce(peer(1), vec![]));
    h.send(2, announce(peer(2), vec![offer(9)]));
    h.tracker.disconnect(ConnectionId(2));
    let out = h.send(1, answer(peer(1), peer(2), OfferId([9; 20])));
    assert_eq!(refusal_of(&out), Some(&Refusal::UnknownOffer));
    assert!(out.iter().all(|(c, _)| *c == ConnectionId(1)));
}

#[test]
fn an_access_list_refuses_other_swarms_and_serves_its_own() {
    let mut h = Harness::new();
    let other = InfoHash([0xbb; 20]);
    h.tracker.set_access(Access::only([other]));
    let out = h.send(1, announce(peer(1), vec![offer(1)]));
    assert_eq!(out.len(), 1, "only the refusal: {out:?}");
    match &out[0].1 {
        OutMessage::Failure {
            refusal,
            action,
            info_hash,
        } => {
            assert_eq!(refusal, &Refusal::NotAllowed);
            assert_eq!((*action, *info_hash), (Some(Action::Announce), Some(HASH)));
            let text = out[0].1.clone().into_server_message();
            let json = serde_json::to_string(&text).expect("serializes");
            assert!(
                json.contains(r#""failure reason":"info_hash not allowed"#),
                "{json}"
            );
        }
        other => panic!("expected failure, got {other:?}"),
    }
    assert_eq!(
        h.tracker.peer_count(),
        0,
        "a refused announce joins nothing"
    );
    assert!(!h.tracker.allows(&HASH));

    // An answer in a swarm not on the list is refused the same way.
    let out = h.send(2, answer(peer(2), peer(1), OfferId([1; 20])));
    assert_eq!(refusal_of(&out), Some(&Refusal::NotAllowed));

    // The listed swarm is served as usual.
    let mut own = announce(peer(1), Vec::new());
    own.info_hash = other;
    let out = h.send(1, own);
    assert!(refusal_of(&out).is_none(), "{out:?}");
    assert_eq!(h.tracker.swarm_peers(&other), (0, 1));

    // Open again: any swarm.
    h.tracker.set_access(Access::Open);
    let out = h.send(3, announce(peer(3), Vec::new()));
    assert!(refusal_of(&out).is_none(), "{out:?}");
}

// --- Several instances (cluster mode) -------------------------------------

fn clustered() -> Harness {
    let mut h = Harness::new();
    h.tracker.enable_cluster();
    h
}

const ELSEWHERE: RemoteConnection = RemoteConnection {
    instance: InstanceId(77),
    connection: ConnectionId(5),
};

fn incoming(from_peer: PeerId, to: PeerId, n: u8) -> IncomingOffer {
    IncomingOffer {
        from: ELSEWHERE,
        to,
        relay: OfferRelay {
            action: Action::Announce,
            info_hash: HASH,
            peer_id: from_peer,
            offer_id: OfferId([n; 20]),
            offer: offer(n).offer,
        },
    }
}

#[test]
fn without_cluster_mode_nothing_is_pushed_for_a_shell() {
    let mut h = Harness::new();
    h.send(1, announce(peer(1), (1..=5).map(offer).collect()));
    assert!(h.tracker.drain_cluster().is_empty());
    let mut out = Vec::new();
    assert_eq!(
        h.tracker
            .remote_offer(h.now, incoming(peer(9), peer(1), 1), &mut out),
        Err(Undeliverable::NotClustered)
    );
    assert!(out.is_empty());
}

#[test]
fn membership_changes_are_pushed_for_the_store() {
    let mut h = clustered();
    h.send(1, announce(peer(1), vec![]));
    // A periodic announce with nothing new pushes nothing.
    h.send(1, announce(peer(1), vec![]));
    let mut done = announce(peer(1), vec![]);
    done.left = Some(0);
    h.send(1, done);
    let mut stop = announce(peer(1), vec![]);
    stop.event = Some(AnnounceEvent::Stopped);
    h.send(1, stop);
    h.send(2, announce(peer(2), vec![]));
    h.tracker.disconnect(ConnectionId(2));
    let joined = |seeder, n: u8| ClusterOut::Joined {
        info_hash: HASH,
        peer_id: peer(n),
        connection: ConnectionId(u64::from(n)),
        seeder,
    };
    let left = |n: u8| ClusterOut::Left {
        info_hash: HASH,
        peer_id: peer(n),
        connection: ConnectionId(u64::from(n)),
    };
    assert_eq!(
        h.tracker.drain_cluster(),
        vec![
            joined(false, 1),
            joined(true, 1),
            left(1),
            joined(false, 2),
            left(2)
        ]
    );
    h.send(3, announce(peer(3), vec![]));
    h.tracker.drain_cluster();
    h.now = h.now + Duration::from_secs(181);
    h.tracker.expire(h.now);
    assert_eq!(h.tracker.drain_cluster(), vec![left(3)]);
}

#[test]
fn a_peer_alone_here_sends_its_offers_to_other_instances() {
    let mut h = clustered();
    let mut a = announce(peer(1), (1..=5).map(offer).collect());
    a.numwant = Some(3);
    let out = h.send(1, a);
    assert!(offers_in(&out).is_empty());
    let pushed = h.tracker.drain_cluster();
    let offers: Vec<_> = pushed
        .iter()
        .filter_map(|e| match e {
            ClusterOut::Offers(o) => Some(o),
            _ => None,
        })
        .collect();
    assert_eq!(offers.len(), 1);
    assert_eq!(offers[0].offers.len(), 3, "numwant still caps them");
    assert_eq!(
        (offers[0].offerer, offers[0].connection),
        (peer(1), ConnectionId(1))
    );
}

#[test]
fn offers_split_between_local_and_remote_peers_by_their_numbers() {
    let mut h = clustered();
    for n in 1..=5 {
        h.send(u64::from(n), announce(peer(n), vec![]));
    }
    // The store counts 5 here and 15 elsewhere.
    h.tracker.set_swarm_totals(&HASH, 0, 20);
    let (mut local, mut remote) = (0, 0);
    for round in 0..200u8 {
        h.tracker.drain_cluster();
        let offers = (0..5)
            .map(|i| offer(round.wrapping_mul(5).wrapping_add(i)))
            .collect();
        let out = h.send(6, announce(peer(6), offers));
        local += offers_in(&out).len();
        for e in h.tracker.drain_cluster() {
            if let ClusterOut::Offers(o) = e {
                remote += o.offers.len();
            }
        }
        h.now = h.now + Duration::from_secs(1);
    }
    assert_eq!(local + remote, 1000, "every offer placed somewhere");
    // 5 of 20 candidates are here: about a quarter of the offers.
    assert!(
        (150..350).contains(&local),
        "local {local}, remote {remote}"
    );
    let reply = h.send(6, announce(peer(6), vec![]));
    match &reply[0].1 {
        OutMessage::Announce(r) => assert_eq!(r.incomplete, 21, "6 here, 15 elsewhere"),
        other => panic!("expected the announce reply, got {other:?}"),
    }
}

#[test]
fn an_offer_from_another_instance_is_answered_back_there_once() {
    let mut h = clustered();
    h.send(1, announce(peer(1), vec![]));
    let mut out = Vec::new();
    h.tracker
        .remote_offer(h.now, incoming(peer(9), peer(1), 4), &mut out)
        .expect("delivered");
    assert_eq!(out.len(), 1);
    assert_eq!(out[0].0, ConnectionId(1));
    // Another local peer cannot answer an offer it was not given.
    h.send(2, announce(peer(2), vec![]));
    let refused = h.send(2, answer(peer(2), peer(9), OfferId([4; 20])));
    assert_eq!(refusal_of(&refused), Some(&Refusal::UnknownOffer));
    h.tracker.drain_cluster();

    let out = h.send(1, answer(peer(1), peer(9), OfferId([4; 20])));
    assert!(out.is_empty(), "nothing for a local socket: {out:?}");
    match h.tracker.drain_cluster().as_slice() {
        [ClusterOut::Answer(a)] => {
            assert_eq!((a.to, a.offerer), (ELSEWHERE, peer(9)));
            assert_eq!(
                (a.relay.peer_id, a.relay.offer_id),
                (peer(1), OfferId([4; 20]))
            );
        }
        other => panic!("expected one answer for the other instance, got {other:?}"),
    }
    let again = h.send(1, answer(peer(1), peer(9), OfferId([4; 20])));
    assert_eq!(
        refusal_of(&again),
        Some(&Refusal::UnknownOffer),
        "only once"
    );
}

#[test]
fn remote_offers_keep_the_pending_limit_and_need_the_peer_here() {
    let mut h = Harness::with_limits(Limits {
        max_pending_offers_per_connection: 2,
        ..Limits::default()
    });
    h.tracker.enable_cluster();
    h.send(1, announce(peer(1), vec![]));
    let mut out = Vec::new();
    for n in 1..=2 {
        h.tracker
            .remote_offer(h.now, incoming(peer(9), peer(1), n), &mut out)
            .expect("room for two");
    }
    assert_eq!(
        h.tracker
            .remote_offer(h.now, incoming(peer(9), peer(1), 3), &mut out),
        Err(Undeliverable::TooManyPending)
    );
    assert_eq!(
        h.tracker
            .remote_offer(h.now, incoming(peer(9), peer(8), 4), &mut out),
        Err(Undeliverable::PeerGone)
    );
    assert_eq!(out.len(), 2);
}

#[test]
fn an_answer_from_another_instance_reaches_only_the_same_connection() {
    let mut h = clustered();
    h.send(1, announce(peer(1), vec![]));
    let relay = AnswerRelay {
        action: Action::Announce,
        info_hash: HASH,
        peer_id: peer(9),
        offer_id: OfferId([3; 20]),
        answer: SessionDescription {
            kind: SdpKind::Answer,
            sdp: "v=0 answer".into(),
        },
    };
    let mut out = Vec::new();
    assert_eq!(
        h.tracker
            .remote_answer(ConnectionId(2), peer(1), relay.clone(), &mut out),
        Err(Undeliverable::PeerGone),
        "the peer id is held by another connection"
    );
    h.tracker
        .remote_answer(ConnectionId(1), peer(1), relay.clone(), &mut out)
        .expect("delivered");
    assert_eq!(
        out,
        vec![(ConnectionId(1), OutMessage::Answer(relay.clone()))]
    );
    h.tracker.disconnect(ConnectionId(1));
    assert_eq!(
        h.tracker
            .remote_answer(ConnectionId(1), peer(1), relay, &mut Vec::new()),
        Err(Undeliverable::PeerGone),
        "gone with its socket"
    );
}

#[test]
fn the_swarm_limit_counts_peers_on_other_instances() {
    let mut h = Harness::with_limits(Limits {
        max_peers_per_swarm: 3,
        ..Limits::default()
    });
    h.tracker.enable_cluster();
    h.send(1, announce(peer(1), vec![]));
    h.tracker.set_swarm_totals(&HASH, 0, 3);
    let out = h.send(2, announce(peer(2), vec![]));
    assert_eq!(refusal_of(&out), Some(&Refusal::SwarmFull));
}

#[test]
fn offers_placed_here_ask_for_fresh_totals() {
    let mut h = clustered();
    h.send(1, announce(peer(1), vec![]));
    h.tracker.drain_cluster();
    // Another instance's peers are unknown yet (no totals): all go local,
    // and the shell is asked for the totals so the next split sees them.
    let out = h.send(2, announce(peer(2), vec![offer(1)]));
    assert_eq!(offers_in(&out).len(), 1);
    assert!(
        h.tracker
            .drain_cluster()
            .contains(&ClusterOut::Totals(HASH))
    );
    // A busy swarm asks at most once a second.
    h.send(2, announce(peer(2), vec![offer(2)]));
    assert!(
        !h.tracker
            .drain_cluster()
            .contains(&ClusterOut::Totals(HASH))
    );
    h.now = h.now + Duration::from_secs(1);
    h.send(2, announce(peer(2), vec![offer(3)]));
    assert!(
        h.tracker
            .drain_cluster()
            .contains(&ClusterOut::Totals(HASH))
    );
    h.tracker.set_swarm_totals(&HASH, 0, 12);
    let reply = h.send(2, announce(peer(2), vec![]));
    match &reply[0].1 {
        OutMessage::Announce(r) => assert_eq!(r.incomplete, 12),
        other => panic!("expected the announce reply, got {other:?}"),
    }
}
