//! Shell pieces that need a real browser, run by wasm-bindgen-test in
//! headless Chromium (`scripts/test-wasm`, inside a private network
//! namespace so WebRTC finds a host candidate).
#![cfg(target_arch = "wasm32")]
#![allow(clippy::unwrap_used)]

use std::cell::RefCell;
use std::rc::Rc;

use gloo_timers::future::TimeoutFuture;
use wasm_bindgen::{JsCast, JsValue};
use wasm_bindgen_futures::JsFuture;
use wasm_bindgen_test::{wasm_bindgen_test, wasm_bindgen_test_configure};
use web_sys::{MessageChannel, MessageEvent, MessagePort};

use client_wasm::rtc::{self, ChannelEvent, PeerConn};
use client_wasm::stream::{OpenRequest, PortRequest, Reader};
use client_wasm::tracker_ws::{SocketEvent, TrackerSocket};
use swarm::announce::TrackerIndex;
use swarm::engine::PeerKey;

wasm_bindgen_test_configure!(run_in_browser);

/// The next message on `port`, as the worker side sees it.
async fn next_message(port: &MessagePort) -> JsValue {
    let promise = js_sys::Promise::new(&mut |resolve, _| port.set_onmessage(Some(&resolve)));
    let event: MessageEvent = JsFuture::from(promise).await.unwrap().dyn_into().unwrap();
    event.data()
}

fn get(value: &JsValue, name: &str) -> JsValue {
    js_sys::Reflect::get(value, &name.into()).unwrap()
}

#[wasm_bindgen_test]
async fn reader_answers_a_range_in_chunks_then_done() {
    let channel = MessageChannel::new().unwrap();
    let worker = channel.port1();
    let pulls = Rc::new(RefCell::new(Vec::new()));
    let seen = pulls.clone();
    let request = OpenRequest {
        stream: "ab".into(),
        start: 5,
        end: Some(20),
    };
    let sink = Rc::new(move |id, r| seen.borrow_mut().push((id, r)));
    let mut reader = Reader::open(7, channel.port2(), &request, 100, sink)
        .unwrap()
        .expect("range inside the stream");
    // The head brings the bytes that are ready, in one buffer.
    reader
        .send_head(100, "audio/wav", &[&[9], &[8, 7]])
        .unwrap();
    let head = next_message(&worker).await;
    assert_eq!(get(&head, "total").as_f64(), Some(100.0));
    assert_eq!(get(&head, "start").as_f64(), Some(5.0));
    assert_eq!(get(&head, "end").as_f64(), Some(20.0));
    assert_eq!(get(&head, "mime").as_string().as_deref(), Some("audio/wav"));
    let first = js_sys::Uint8Array::new(&get(&head, "chunk")).to_vec();
    assert_eq!(first, vec![9, 8, 7]);
    assert_eq!(reader.pos, 8);

    worker
        .post_message(&js_sys::JSON::parse(r#"{"pull":true}"#).unwrap())
        .unwrap();
    TimeoutFuture::new(50).await;
    assert_eq!(*pulls.borrow(), vec![(7, PortRequest::Pull)]);

    reader.send_chunk(&[&[1, 2], &[3]]).unwrap();
    let chunk = next_message(&worker).await;
    let bytes = js_sys::Uint8Array::new(&get(&chunk, "chunk")).to_vec();
    assert_eq!(bytes, vec![1, 2, 3]);
    assert_eq!(reader.pos, 11);
    reader.send_done().unwrap();
    let done = next_message(&worker).await;
    assert_eq!(get(&done, "done").as_bool(), Some(true));

    worker
        .post_message(&js_sys::JSON::parse(r#"{"cancel":true}"#).unwrap())
        .unwrap();
    TimeoutFuture::new(50).await;
    assert_eq!(pulls.borrow().last(), Some(&(7, PortRequest::Cancel)));
}

#[wasm_bindgen_test]
async fn a_head_without_ready_bytes_has_no_chunk() {
    let channel = MessageChannel::new().unwrap();
    let worker = channel.port1();
    let request = OpenRequest {
        stream: "ab".into(),
        start: 0,
        end: None,
    };
    let mut reader = Reader::open(2, channel.port2(), &request, 100, Rc::new(|_, _| {}))
        .unwrap()
        .expect("range inside the stream");
    reader.send_head(100, "audio/ogg", &[]).unwrap();
    let head = next_message(&worker).await;
    assert_eq!(get(&head, "end").as_f64(), Some(99.0));
    assert!(get(&head, "chunk").is_undefined());
    assert_eq!(reader.pos, 0);
}

#[wasm_bindgen_test]
async fn reader_refuses_a_range_past_the_end_with_416() {
    let channel = MessageChannel::new().unwrap();
    let worker = channel.port1();
    let request = OpenRequest {
        stream: "ab".into(),
        start: 100,
        end: None,
    };
    let reader = Reader::open(1, channel.port2(), &request, 100, Rc::new(|_, _| {})).unwrap();
    assert!(reader.is_none());
    let head = next_message(&worker).await;
    assert_eq!(get(&head, "status").as_f64(), Some(416.0));
    assert_eq!(get(&head, "total").as_f64(), Some(100.0));
}

#[wasm_bindgen_test]
async fn a_dropped_socket_calls_back_nothing() {
    // Nothing listens on port 9 (discard): the socket fails at once.
    let kept_events = Rc::new(RefCell::new(0));
    let dropped_events = Rc::new(RefCell::new(0));
    let count = |c: &Rc<RefCell<u32>>| {
        let c = c.clone();
        Rc::new(move |_: TrackerIndex, _: SocketEvent| *c.borrow_mut() += 1)
    };
    let kept = TrackerSocket::connect(TrackerIndex(0), "ws://127.0.0.1:9/", count(&kept_events));
    let dropped =
        TrackerSocket::connect(TrackerIndex(1), "ws://127.0.0.1:9/", count(&dropped_events));
    drop(dropped);
    TimeoutFuture::new(500).await;
    assert!(
        *kept_events.borrow() > 0,
        "the kept socket reports its failure"
    );
    assert_eq!(
        *dropped_events.borrow(),
        0,
        "listeners went with the socket"
    );
    drop(kept);
}

#[wasm_bindgen_test]
async fn data_channel_carries_a_byte_stream_between_two_connections() {
    type Log = Rc<RefCell<Vec<(PeerKey, ChannelEvent)>>>;
    let log: Log = Rc::new(RefCell::new(Vec::new()));
    let sink = {
        let log = log.clone();
        Rc::new(move |k, e| log.borrow_mut().push((k, e)))
    };
    let (a_key, b_key) = (PeerKey(1), PeerKey(2));
    let mut a = PeerConn::new(a_key, &[], None, sink.clone()).unwrap();
    // The other made from a whole RTCConfiguration, as the server's
    // `/api/ice` gives it (no server in the test's private network).
    let config =
        js_sys::JSON::parse(r#"{"iceServers":[],"iceTransportPolicy":"all","ttlSeconds":null}"#)
            .unwrap();
    let mut b = PeerConn::new(b_key, &[], Some(&config), sink).unwrap();
    let a_pc = a.start_offer();
    let b_pc = b.expect_channel();
    let offer = rtc::create_offer(&a_pc).await.unwrap();
    assert!(offer.contains("a=candidate"), "offer is complete: {offer}");
    let answer = rtc::create_answer(&b_pc, &offer).await.unwrap();
    rtc::accept_answer(&a_pc, &answer).await.unwrap();

    for _ in 0..100 {
        let incoming = log
            .borrow_mut()
            .iter()
            .position(|(_, e)| matches!(e, ChannelEvent::Incoming(_)));
        if let Some(i) = incoming
            && let (_, ChannelEvent::Incoming(dc)) = log.borrow_mut().remove(i)
        {
            b.adopt_channel(dc);
        }
        if a.is_open() && b.is_open() {
            break;
        }
        TimeoutFuture::new(50).await;
    }
    assert!(a.is_open() && b.is_open(), "both ends open");

    // 300 KiB in one engine write: split into channel messages, reassembled.
    let data: Vec<u8> = (0..300 * 1024u32).map(|i| (i * 7 % 251) as u8).collect();
    a.send(&data).unwrap();
    let mut received = Vec::new();
    for _ in 0..100 {
        received = log
            .borrow()
            .iter()
            .filter_map(|(k, e)| match e {
                ChannelEvent::Data(d) if *k == b_key => Some(d.clone()),
                _ => None,
            })
            .collect::<Vec<_>>()
            .concat();
        if received.len() >= data.len() {
            break;
        }
        TimeoutFuture::new(50).await;
    }
    assert_eq!(received, data, "bytes arrive whole and in order");

    drop(a);
    TimeoutFuture::new(300).await;
    assert!(
        log.borrow()
            .iter()
            .any(|(k, e)| *k == b_key && matches!(e, ChannelEvent::Closed)),
        "the other end sees the close"
    );
    assert!(
        !log.borrow()
            .iter()
            .any(|(k, e)| *k == a_key && matches!(e, ChannelEvent::Closed)),
        "the dropped end calls back nothing"
    );
}
