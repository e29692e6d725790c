use super::*;

/// An announce as the webtorrent 3 client sends it (ids built with
/// `String.fromCharCode`, so bytes above 0x7f appear as U+0080–U+00FF).
fn captured_announce() -> String {
    let info_hash: String = (0..20u8).map(|b| char::from(b.wrapping_mul(13))).collect();
    let peer_id = "-WW0300-\u{00e9}\u{00ff}abcdefghij";
    let offer_id: String = (0..20u8).map(|b| char::from(0x80 + b)).collect();
    serde_json::json!({
        "action": "announce",
        "info_hash": info_hash,
        "peer_id": peer_id,
        "numwant": 50,
        "uploaded": 0,
        "downloaded": 0,
        "left": null,
        "event": "started",
        "offers": [{"offer": {"type": "offer", "sdp": "v=0\r\no=- 1 2 IN IP4 127.0.0.1\r\n"}, "offer_id": offer_id}]
    })
    .to_string()
}

#[test]
fn parses_a_reference_client_announce() {
    let msg = parse_client_message(captured_announce().as_bytes()).unwrap();
    let ClientMessage::Announce(a) = msg else {
        panic!("expected announce, got {msg:?}")
    };
    assert_eq!(a.info_hash.0[1], 13);
    assert_eq!(a.info_hash.0[19], 19u8.wrapping_mul(13));
    assert_eq!(&a.peer_id.0[..8], b"-WW0300-");
    assert_eq!(a.peer_id.0[8], 0xe9);
    assert_eq!(a.peer_id.0[9], 0xff);
    assert_eq!(a.event, Some(AnnounceEvent::Started));
    assert_eq!(a.numwant, Some(50));
    assert_eq!(a.left, None);
    let offers = a.offers.unwrap();
    assert_eq!(offers.len(), 1);
    assert_eq!(offers[0].offer.kind, SdpKind::Offer);
    assert_eq!(offers[0].offer_id.0[0], 0x80);
}

#[test]
fn round_trips_through_json() {
    let msg = parse_client_message(captured_announce().as_bytes()).unwrap();
    let again = serde_json::to_string(&msg).unwrap();
    assert_eq!(parse_client_message(again.as_bytes()).unwrap(), msg);
}

#[test]
fn every_event_and_a_missing_one_are_accepted() {
    for (event, expected) in [
        ("\"started\"", Some(AnnounceEvent::Started)),
        ("\"stopped\"", Some(AnnounceEvent::Stopped)),
        ("\"completed\"", Some(AnnounceEvent::Completed)),
        ("\"update\"", Some(AnnounceEvent::Update)),
        ("\"paused\"", Some(AnnounceEvent::Paused)),
        ("null", None),
    ] {
        let text = format!(
            r#"{{"action":"announce","info_hash":"aaaaaaaaaaaaaaaaaaaa","peer_id":"bbbbbbbbbbbbbbbbbbbb","event":{event}}}"#
        );
        let Ok(ClientMessage::Announce(a)) = parse_client_message(text.as_bytes()) else {
            panic!("event {event} refused")
        };
        assert_eq!(a.event, expected);
    }
    let bare = r#"{"action":"announce","info_hash":"aaaaaaaaaaaaaaaaaaaa","peer_id":"bbbbbbbbbbbbbbbbbbbb"}"#;
    assert!(parse_client_message(bare.as_bytes()).is_ok());
}

#[test]
fn float_counters_are_tolerated_and_negative_ones_refused() {
    let ok = r#"{"action":"announce","info_hash":"aaaaaaaaaaaaaaaaaaaa","peer_id":"bbbbbbbbbbbbbbbbbbbb","left":12.0,"uploaded":3}"#;
    let Ok(ClientMessage::Announce(a)) = parse_client_message(ok.as_bytes()) else {
        panic!("refused")
    };
    assert_eq!((a.left, a.uploaded), (Some(12), Some(3)));
    let bad = r#"{"action":"announce","info_hash":"aaaaaaaaaaaaaaaaaaaa","peer_id":"bbbbbbbbbbbbbbbbbbbb","left":-1}"#;
    assert!(parse_client_message(bad.as_bytes()).is_err());
}

#[test]
fn wrong_length_ids_are_refused_with_action_and_hash_recovered() {
    let text = r#"{"action":"announce","info_hash":"aaaaaaaaaaaaaaaaaaaa","peer_id":"short"}"#;
    let err = parse_client_message(text.as_bytes()).unwrap_err();
    assert_eq!(err.action, Some(Action::Announce));
    assert_eq!(err.info_hash, Some(InfoHash([b'a'; 20])));
    assert!(err.reason.contains("20 characters"), "{}", err.reason);
}

#[test]
fn characters_above_latin1_are_refused() {
    let hash = format!("{}\u{0100}", "a".repeat(19));
    let text =
        format!(r#"{{"action":"announce","info_hash":"{hash}","peer_id":"bbbbbbbbbbbbbbbbbbbb"}}"#);
    let err = parse_client_message(text.as_bytes()).unwrap_err();
    assert!(err.reason.contains("U+00FF"), "{}", err.reason);
    assert_eq!(err.info_hash, None);
    assert_eq!(
        id_bytes(&hash),
        Err(IdStringError::CharOutOfRange('\u{0100}'))
    );
}

#[test]
fn unknown_action_and_garbage_are_errors() {
    let err = parse_client_message(br#"{"action":"dance"}"#).unwrap_err();
    assert_eq!(err.action, None);
    let err = parse_client_message(b"\xff\x00 not json").unwrap_err();
    assert_eq!((err.action, err.info_hash), (None, None));
    assert!(parse_client_message(b"[]").is_err());
    let err = parse_client_message(br#"{"action":"scrape","info_hash":7}"#).unwrap_err();
    assert_eq!(err.action, Some(Action::Scrape));
}

#[test]
fn scrape_takes_one_hash_or_a_list() {
    let one = r#"{"action":"scrape","info_hash":"aaaaaaaaaaaaaaaaaaaa"}"#;
    let many = r#"{"action":"scrape","info_hash":["aaaaaaaaaaaaaaaaaaaa","bbbbbbbbbbbbbbbbbbbb"]}"#;
    let none = r#"{"action":"scrape"}"#;
    let hashes = |t: &str| match parse_client_message(t.as_bytes()).unwrap() {
        ClientMessage::Scrape(s) => s.info_hashes,
        other => panic!("not a scrape: {other:?}"),
    };
    assert_eq!(hashes(one), vec![InfoHash([b'a'; 20])]);
    assert_eq!(
        hashes(many),
        vec![InfoHash([b'a'; 20]), InfoHash([b'b'; 20])]
    );
    assert!(hashes(none).is_empty());
}

#[test]
fn server_messages_have_the_reference_shapes() {
    let hash = InfoHash([0xfe; 20]);
    let fail = ServerMessage::Failure(Failure {
        action: Some(Action::Announce),
        info_hash: Some(hash),
        reason: "too many offers".into(),
    });
    let v: serde_json::Value = serde_json::to_value(&fail).unwrap();
    assert_eq!(v["failure reason"], "too many offers");
    assert_eq!(v["action"], "announce");
    assert_eq!(v["info_hash"].as_str().unwrap().chars().count(), 20);
    assert!(
        v["info_hash"]
            .as_str()
            .unwrap()
            .chars()
            .all(|c| c == '\u{fe}')
    );

    let mut files = BTreeMap::new();
    files.insert(
        hash,
        ScrapeStatistics {
            complete: 1,
            incomplete: 2,
            downloaded: 3,
        },
    );
    let scrape = ServerMessage::Scrape(ScrapeResponse {
        action: Action::Scrape,
        files,
    });
    let text = serde_json::to_string(&scrape).unwrap();
    assert!(
        text.contains(r#""complete":1,"incomplete":2,"downloaded":3"#),
        "{text}"
    );
    assert_eq!(
        serde_json::from_str::<ServerMessage>(&text).unwrap(),
        scrape
    );

    let offer = ServerMessage::Offer(OfferRelay {
        action: Action::Announce,
        info_hash: hash,
        peer_id: PeerId([1; 20]),
        offer_id: OfferId([2; 20]),
        offer: SessionDescription {
            kind: SdpKind::Offer,
            sdp: "v=0".into(),
        },
    });
    let text = serde_json::to_string(&offer).unwrap();
    assert_eq!(serde_json::from_str::<ServerMessage>(&text).unwrap(), offer);

    let answer = ServerMessage::Answer(AnswerRelay {
        action: Action::Announce,
        info_hash: hash,
        peer_id: PeerId([1; 20]),
        offer_id: OfferId([2; 20]),
        answer: SessionDescription {
            kind: SdpKind::Answer,
            sdp: "v=0".into(),
        },
    });
    let text = serde_json::to_string(&answer).unwrap();
    assert_eq!(
        serde_json::from_str::<ServerMessage>(&text).unwrap(),
        answer
    );

    let reply = ServerMessage::Announce(AnnounceResponse {
        action: Action::Announce,
        info_hash: hash,
        complete: 4,
        incomplete: 5,
        interval: 120,
    });
    let text = serde_json::to_string(&reply).unwrap();
    assert_eq!(serde_json::from_str::<ServerMessage>(&text).unwrap(), reply);
}

#[test]
fn id_string_round_trips_every_byte() {
    let bytes: [u8; 20] = std::array::from_fn(|i| (i as u8).wrapping_mul(37).wrapping_add(200));
    assert_eq!(id_bytes(&id_to_string(&bytes)), Ok(bytes));
    assert_eq!(id_bytes("abc"), Err(IdStringError::Length(3)));
    assert_eq!(id_bytes(&"a".repeat(21)), Err(IdStringError::Length(21)));
}
