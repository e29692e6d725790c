use super::*;
use crate::tracker::{
    Action as WireAction, AnnounceResponse, AnswerRelay, ClientMessage, Failure, OfferRelay,
};

const HASH: InfoHash = InfoHash([7; 20]);
const ME: PeerId = PeerId([1; 20]);
const OTHER: PeerId = PeerId([2; 20]);
const T0: TrackerIndex = TrackerIndex(0);
const T1: TrackerIndex = TrackerIndex(1);

fn announcer(trackers: usize, seed: u64) -> Announcer {
    let urls = (0..trackers)
        .map(|i| format!("ws://t{i}/announce"))
        .collect();
    Announcer::new(AnnounceConfig::default(), HASH, ME, urls, seed, Time::ZERO)
}

/// Every action up to the timeout, and the timeout.
fn drain(a: &mut Announcer) -> (Vec<Action>, Time) {
    let mut out = Vec::new();
    loop {
        match a.poll() {
            Action::Timeout(t) => return (out, t),
            other => out.push(other),
        }
    }
}

fn sent(actions: &[Action]) -> Vec<(TrackerIndex, AnnounceRequest)> {
    actions
        .iter()
        .filter_map(|a| match a {
            Action::Send { tracker, text } => match serde_json::from_str(text) {
                Ok(ClientMessage::Announce(r)) => Some((*tracker, r)),
                other => panic!("not an announce: {other:?}"),
            },
            _ => None,
        })
        .collect()
}

fn offers_asked(actions: &[Action]) -> Vec<OfferId> {
    actions
        .iter()
        .flat_map(|a| match a {
            Action::CreateOffers { offers } => offers.clone(),
            _ => Vec::new(),
        })
        .collect()
}

/// Connects tracker `t`, makes every offer asked for, returns the offer ids.
fn connect_and_offer(a: &mut Announcer, now: Time, t: TrackerIndex) -> Vec<OfferId> {
    a.tracker_connected(now, t);
    let ids = offers_asked(&drain(a).0);
    for id in &ids {
        a.offer_ready(now, *id, format!("sdp-{}", id.0[0]));
    }
    ids
}

fn server(message: ServerMessage) -> String {
    serde_json::to_string(&message).unwrap()
}

fn answer(offer: OfferId, from: PeerId) -> String {
    server(ServerMessage::Answer(AnswerRelay {
        action: WireAction::Announce,
        info_hash: HASH,
        peer_id: from,
        offer_id: offer,
        answer: SessionDescription {
            kind: SdpKind::Answer,
            sdp: "answer-sdp".into(),
        },
    }))
}

fn reply(interval: u64) -> String {
    server(ServerMessage::Announce(AnnounceResponse {
        action: WireAction::Announce,
        info_hash: HASH,
        complete: 1,
        incomplete: 2,
        interval,
    }))
}

#[test]
fn connects_to_every_tracker_at_start() {
    let mut a = announcer(2, 1);
    let (actions, _) = drain(&mut a);
    assert_eq!(
        actions,
        vec![
            Action::Connect {
                tracker: T0,
                url: "ws://t0/announce".into()
            },
            Action::Connect {
                tracker: T1,
                url: "ws://t1/announce".into()
            },
        ]
    );
}

#[test]
fn first_announce_is_started_with_five_complete_offers() {
    let mut a = announcer(1, 1);
    drain(&mut a);
    let ids = connect_and_offer(&mut a, Time(5), T0);
    assert_eq!(ids.len(), 5);
    let (actions, _) = drain(&mut a);
    let sends = sent(&actions);
    assert_eq!(sends.len(), 1, "one announce once all offers are made");
    let (tracker, r) = &sends[0];
    assert_eq!(*tracker, T0);
    assert_eq!(r.event, Some(AnnounceEvent::Started));
    assert_eq!(r.numwant, Some(50));
    assert_eq!((r.info_hash, r.peer_id), (HASH, ME));
    let carried: Vec<OfferId> = r
        .offers
        .as_ref()
        .unwrap()
        .iter()
        .map(|o| o.offer_id)
        .collect();
    assert_eq!(carried.len(), 5);
    for id in &ids {
        assert!(carried.contains(id));
    }
}

#[test]
fn announce_waits_for_offers_then_goes_with_those_ready() {
    let mut a = announcer(1, 2);
    drain(&mut a);
    a.tracker_connected(Time(0), T0);
    let ids = offers_asked(&drain(&mut a).0);
    a.offer_ready(Time(10), ids[0], "a".into());
    a.offer_failed(Time(10), ids[1]);
    a.offer_ready(Time(10), ids[2], "c".into());
    let (actions, wake) = drain(&mut a);
    assert!(sent(&actions).is_empty(), "two offers are still gathering");
    assert_eq!(wake, Time(10_000), "woken at the gathering deadline");
    a.handle_timeout(wake);
    let (actions, _) = drain(&mut a);
    let sends = sent(&actions);
    assert_eq!(sends.len(), 1);
    assert_eq!(sends[0].1.offers.as_ref().unwrap().len(), 2);
    let dropped: Vec<&Action> = actions
        .iter()
        .filter(|x| matches!(x, Action::DropOffer { .. }))
        .collect();
    assert_eq!(dropped.len(), 2, "the two unfinished offers are dropped");
    assert_eq!(a.pending_offers(), 2);
}

#[test]
fn answer_is_matched_to_its_offer_once() {
    let mut a = announcer(1, 3);
    drain(&mut a);
    let ids = connect_and_offer(&mut a, Time(0), T0);
    drain(&mut a);
    a.handle_message(Time(100), T0, &answer(ids[3], OTHER));
    let (actions, _) = drain(&mut a);
    assert_eq!(
        actions,
        vec![Action::AcceptAnswer {
            offer: ids[3],
            peer: OTHER,
            sdp: "answer-sdp".into()
        }]
    );
    a.handle_message(Time(101), T0, &answer(ids[3], PeerId([3; 20])));
    assert!(
        drain(&mut a).0.is_empty(),
        "a second answer to one offer is ignored"
    );
    a.handle_message(Time(102), T0, &answer(OfferId([9; 20]), OTHER));
    assert!(
        drain(&mut a).0.is_empty(),
        "an answer to an unknown offer is ignored"
    );
    a.handle_message(Time(103), T0, &answer(ids[0], ME));
    assert!(drain(&mut a).0.is_empty(), "our own answer is ignored");
}

#[test]
fn answer_through_another_tracker_is_ignored() {
    let mut a = announcer(2, 4);
    drain(&mut a);
    let ids = connect_and_offer(&mut a, Time(0), T0);
    a.tracker_connected(Time(0), T1);
    drain(&mut a);
    a.handle_message(Time(1), T1, &answer(ids[0], OTHER));
    assert!(drain(&mut a).0.is_empty());
}

#[test]
fn unanswered_offers_expire_after_their_ttl() {
    let mut a = announcer(1, 5);
    drain(&mut a);
    connect_and_offer(&mut a, Time(0), T0);
    drain(&mut a);
    a.handle_message(Time(0), T0, &reply(120));
    drain(&mut a);
    a.handle_timeout(Time(49_999));
    assert!(drain(&mut a).0.is_empty());
    a.handle_timeout(Time(50_000));
    let (actions, _) = drain(&mut a);
    assert_eq!(
        actions
            .iter()
            .filter(|x| matches!(x, Action::DropOffer { .. }))
            .count(),
        5
    );
    assert_eq!(a.pending_offers(), 0);
}

#[test]
fn reannounces_at_the_trackers_interval_without_event() {
    let mut a = announcer(1, 6);
    drain(&mut a);
    connect_and_offer(&mut a, Time(0), T0);
    drain(&mut a);
    a.handle_message(Time(0), T0, &reply(120));
    let (actions, _) = drain(&mut a);
    assert_eq!(
        actions,
        vec![Action::Event(TrackerNotice::Swarm {
            tracker: T0,
            complete: 1,
            incomplete: 2
        })]
    );
    assert_eq!(a.interval(T0), Some(Duration::from_secs(120)));
    a.handle_timeout(Time(60_000));
    assert!(
        offers_asked(&drain(&mut a).0).is_empty(),
        "not due before 120 s"
    );
    a.handle_timeout(Time(120_000));
    let ids = offers_asked(&drain(&mut a).0);
    assert_eq!(ids.len(), 5, "due at 120 s");
    for id in ids {
        a.offer_ready(Time(120_001), id, "x".into());
    }
    let sends = sent(&drain(&mut a).0);
    assert_eq!(sends.len(), 1);
    assert_eq!(sends[0].1.event, None, "periodic announces carry no event");
}

#[test]
fn absurd_intervals_are_clamped() {
    let mut a = announcer(1, 7);
    drain(&mut a);
    connect_and_offer(&mut a, Time(0), T0);
    a.handle_message(Time(0), T0, &reply(0));
    assert_eq!(a.interval(T0), Some(Duration::from_secs(10)));
    a.handle_message(Time(0), T0, &reply(u64::MAX));
    assert_eq!(a.interval(T0), Some(Duration::from_secs(3600)));
}

#[test]
fn relayed_offer_is_answered_through_its_tracker() {
    let mut a = announcer(2, 8);
    drain(&mut a);
    a.set_want_peers(false);
    a.tracker_connected(Time(0), T1);
    drain(&mut a);
    a.set_want_peers(true);
    let offer = |from: PeerId, hash: InfoHash| {
        server(ServerMessage::Offer(OfferRelay {
            action: WireAction::Announce,
            info_hash: hash,
            peer_id: from,
            offer_id: OfferId([4; 20]),
            offer: SessionDescription {
                kind: SdpKind::Offer,
                sdp: "offer-sdp".into(),
            },
        }))
    };
    a.handle_message(Time(1), T1, &offer(OTHER, HASH));
    let (actions, _) = drain(&mut a);
    assert_eq!(
        actions,
        vec![Action::AnswerOffer {
            tracker: T1,
            offer: OfferId([4; 20]),
            peer: OTHER,
            sdp: "offer-sdp".into()
        }]
    );
    a.answer_ready(Time(2), T1, OfferId([4; 20]), OTHER, "my-answer".into());
    let sends = sent(&drain(&mut a).0);
    assert_eq!(sends.len(), 1);
    let (tracker, r) = &sends[0];
    assert_eq!(*tracker, T1);
    assert_eq!(r.to_peer_id, Some(OTHER));
    assert_eq!(r.offer_id, Some(OfferId([4; 20])));
    assert_eq!(r.answer.as_ref().map(|s| s.sdp.as_str()), Some("my-answer"));
    assert!(r.offers.is_none());

    a.handle_message(Time(3), T1, &offer(ME, HASH));
    assert!(drain(&mut a).0.is_empty(), "our own offer is not answered");
    a.handle_message(Time(3), T1, &offer(OTHER, InfoHash([8; 20])));
    assert!(
        drain(&mut a).0.is_empty(),
        "another swarm's offer is ignored"
    );
    a.set_want_peers(false);
    a.handle_message(Time(3), T1, &offer(OTHER, HASH));
    assert!(drain(&mut a).0.is_empty(), "no answers at the peer cap");
}

#[test]
fn completed_once_then_stopped_and_silent() {
    let mut a = announcer(2, 9);
    drain(&mut a);
    let ids = connect_and_offer(&mut a, Time(0), T0);
    drain(&mut a);
    let done = Progress {
        uploaded: 5,
        downloaded: 100,
        left: Some(0),
    };
    a.set_progress(Time(1), done);
    let sends = sent(&drain(&mut a).0);
    assert_eq!(sends.len(), 1, "only the started tracker hears completed");
    assert_eq!(sends[0].1.event, Some(AnnounceEvent::Completed));
    assert_eq!(sends[0].1.left, Some(0));
    assert!(sends[0].1.offers.is_none());
    a.set_progress(Time(2), done);
    assert!(sent(&drain(&mut a).0).is_empty(), "completed is sent once");

    a.stop(Time(3));
    let (actions, _) = drain(&mut a);
    let sends = sent(&actions);
    assert_eq!(sends.len(), 1);
    assert_eq!(sends[0].1.event, Some(AnnounceEvent::Stopped));
    for id in ids {
        assert!(actions.contains(&Action::DropOffer { offer: id }));
    }
    assert!(actions.contains(&Action::Disconnect { tracker: T0 }));
    assert!(actions.contains(&Action::Disconnect { tracker: T1 }));
    a.tracker_closed(Time(4), T0);
    a.handle_timeout(Time(1_000_000));
    assert!(drain(&mut a).0.is_empty(), "nothing after stop");
}

#[test]
fn reconnects_with_growing_jittered_backoff() {
    let mut a = announcer(1, 10);
    drain(&mut a);
    let mut now = Time(0);
    for failures in 0..12u32 {
        a.tracker_closed(now, T0);
        let (actions, wake) = drain(&mut a);
        assert!(actions.is_empty());
        let delay = wake.as_millis() - now.as_millis();
        let base = (2_000u64 << failures).min(300_000);
        assert!(
            (base..=base + base / 2).contains(&delay),
            "failure {failures}: {delay} ms not in [{base}, {}]",
            base + base / 2
        );
        a.handle_timeout(wake);
        let (actions, _) = drain(&mut a);
        assert_eq!(
            actions,
            vec![Action::Connect {
                tracker: T0,
                url: "ws://t0/announce".into()
            }]
        );
        now = wake;
    }
    // A good reply resets the back-off.
    connect_and_offer(&mut a, now, T0);
    a.handle_message(now, T0, &reply(120));
    drain(&mut a);
    a.tracker_closed(now, T0);
    let (_, wake) = drain(&mut a);
    assert!(wake.as_millis() - now.as_millis() <= 3_000);
}

#[test]
fn jitter_differs_between_seeds() {
    let delays: Vec<u64> = (0..8)
        .map(|seed| {
            let mut a = announcer(1, seed);
            drain(&mut a);
            a.tracker_closed(Time(0), T0);
            drain(&mut a).1.as_millis()
        })
        .collect();
    let mut distinct = delays.clone();
    distinct.sort_unstable();
    distinct.dedup();
    assert!(
        distinct.len() > 4,
        "a crowd reconnects spread out: {delays:?}"
    );
}

#[test]
fn closing_a_tracker_drops_its_offers() {
    let mut a = announcer(1, 11);
    drain(&mut a);
    let ids = connect_and_offer(&mut a, Time(0), T0);
    drain(&mut a);
    a.tracker_closed(Time(1), T0);
    let (actions, _) = drain(&mut a);
    for id in ids {
        assert!(actions.contains(&Action::DropOffer { offer: id }));
    }
    assert_eq!(a.pending_offers(), 0);
}

#[test]
fn bad_frames_and_failures_are_reported_not_fatal() {
    let mut a = announcer(1, 12);
    drain(&mut a);
    connect_and_offer(&mut a, Time(0), T0);
    drain(&mut a);
    for junk in [
        "",
        "{",
        "[1,2]",
        "{\"action\":\"announce\"}",
        "\u{0}\u{ffff}",
    ] {
        a.handle_message(Time(1), T0, junk);
        let (actions, _) = drain(&mut a);
        assert!(
            matches!(
                actions.as_slice(),
                [Action::Event(TrackerNotice::BadMessage { .. })]
            ),
            "{junk:?} gave {actions:?}"
        );
    }
    let failure = server(ServerMessage::Failure(Failure {
        action: Some(WireAction::Announce),
        info_hash: Some(HASH),
        reason: "too many offers".into(),
    }));
    a.handle_message(Time(2), T0, &failure);
    assert_eq!(
        drain(&mut a).0,
        vec![Action::Event(TrackerNotice::Failure {
            tracker: T0,
            reason: "too many offers".into()
        })]
    );
    a.handle_message(Time(2), TrackerIndex(9), &failure);
    assert!(
        drain(&mut a).0.is_empty(),
        "unknown tracker index is ignored"
    );
}

#[test]
fn no_offers_when_peers_are_not_wanted() {
    let mut a = announcer(1, 13);
    drain(&mut a);
    a.set_want_peers(false);
    a.tracker_connected(Time(0), T0);
    let (actions, _) = drain(&mut a);
    assert!(offers_asked(&actions).is_empty());
    let sends = sent(&actions);
    assert_eq!(sends.len(), 1);
    assert_eq!(sends[0].1.event, Some(AnnounceEvent::Started));
    assert!(sends[0].1.offers.is_none());
}

#[test]
fn losing_every_peer_brings_the_next_announce_forward_but_not_before_min_interval() {
    let mut a = announcer(1, 8);
    drain(&mut a);
    connect_and_offer(&mut a, Time(0), T0);
    drain(&mut a);
    a.handle_message(Time(0), T0, &reply(120));
    drain(&mut a);
    // At 3 s the only peer went away: not at once (10 s since the last
    // announce have not passed), but at 10 s rather than 120 s.
    a.peers_lost(Time(3_000));
    let (_, wake) = drain(&mut a);
    assert_eq!(wake, Time(10_000), "next announce brought forward to 10 s");
    a.handle_timeout(Time(9_999));
    assert!(offers_asked(&drain(&mut a).0).is_empty(), "not before 10 s");
    a.handle_timeout(Time(10_000));
    let ids = offers_asked(&drain(&mut a).0);
    assert_eq!(ids.len(), 5, "fresh offers at 10 s");
    for id in ids {
        a.offer_ready(Time(10_001), id, "x".into());
    }
    assert_eq!(sent(&drain(&mut a).0).len(), 1);
    // Lost again right after: the gap counts from this announce.
    a.peers_lost(Time(10_500));
    assert_eq!(drain(&mut a).1, Time(20_001));
}

#[test]
fn peers_lost_is_ignored_at_the_peer_cap_and_after_stop() {
    let mut a = announcer(1, 9);
    drain(&mut a);
    connect_and_offer(&mut a, Time(0), T0);
    drain(&mut a);
    a.handle_message(Time(0), T0, &reply(120));
    drain(&mut a);
    a.set_want_peers(false);
    a.peers_lost(Time(30_000));
    drain(&mut a);
    a.handle_timeout(Time(45_000));
    let (actions, _) = drain(&mut a);
    assert!(
        sent(&actions).is_empty() && offers_asked(&actions).is_empty(),
        "at the cap: no early announce"
    );
    a.set_want_peers(true);
    a.stop(Time(31_000));
    drain(&mut a);
    a.peers_lost(Time(32_000));
    assert!(sent(&drain(&mut a).0).is_empty());
}
