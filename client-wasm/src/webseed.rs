//! One HTTP Range request of the web seed, its body streamed: each chunk is
//! handed on as the network delivers it, so the node verifies the first
//! piece while the rest is still on the wire. What to ask for is the node's
//! business (`swarm::node` plans the ranges file by file).

use wasm_bindgen::{JsCast, JsValue};
use wasm_bindgen_futures::JsFuture;
use web_sys::{AbortSignal, ReadableStreamDefaultReader, Request, RequestInit, Response};

use swarm::node::RangeRequest;

use crate::js::{self, js_error, property};

/// What a streamed body reports, in order.
#[derive(Debug)]
pub enum BodyEvent {
    /// More bytes.
    Chunk(Vec<u8>),
    /// The body ended (the node tells a short one from a whole one).
    End,
    /// The request or the body failed.
    Failed(String),
}

/// Fetches `request` and reports its body to `sink` as it arrives.
pub async fn stream_range(request: &RangeRequest, signal: &AbortSignal, sink: impl Fn(BodyEvent)) {
    match read_body(request, signal, &sink).await {
        Ok(()) => sink(BodyEvent::End),
        Err(e) => sink(BodyEvent::Failed(e)),
    }
}

async fn read_body(
    range: &RangeRequest,
    signal: &AbortSignal,
    sink: &impl Fn(BodyEvent),
) -> Result<(), String> {
    let init = RequestInit::new();
    init.set_signal(Some(signal));
    let request = Request::new_with_str_and_init(&range.url, &init).map_err(describe)?;
    request
        .headers()
        .set("Range", &format!("bytes={}-{}", range.start, range.end))
        .map_err(describe)?;
    let response: Response = JsFuture::from(js::fetch(&request).map_err(|e| e.0)?)
        .await
        .map_err(describe)?
        .dyn_into()
        .map_err(describe)?;
    let status = response.status();
    if !range.accepts_status(status) {
        return Err(format!("web seed answered {status} to a range request"));
    }
    let Some(body) = response.body() else {
        return Ok(());
    };
    let reader: ReadableStreamDefaultReader = body.get_reader().unchecked_into();
    loop {
        let result = JsFuture::from(reader.read()).await.map_err(describe)?;
        if property(&result, "done").and_then(|d| d.as_bool()) == Some(true) {
            return Ok(());
        }
        if let Some(chunk) = property(&result, "value") {
            sink(BodyEvent::Chunk(js_sys::Uint8Array::new(&chunk).to_vec()));
        }
    }
}

fn describe(value: JsValue) -> String {
    js_error(value).0
}
