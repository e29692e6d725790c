//! The few things the shell asks of the browser itself: the clock, random
//! bytes, `fetch`, and turning JavaScript exceptions into Rust errors.

use wasm_bindgen::{JsCast, JsValue};

use swarm::time::Time;

/// A JavaScript exception or a browser API that misbehaved, as text.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct JsError(pub String);

impl From<JsError> for JsValue {
    fn from(e: JsError) -> JsValue {
        js_sys::Error::new(&e.0).into()
    }
}

/// Describes a thrown JavaScript value.
pub fn js_error(value: JsValue) -> JsError {
    if let Some(e) = value.dyn_ref::<js_sys::Error>() {
        return JsError(String::from(e.message()));
    }
    JsError(value.as_string().unwrap_or_else(|| format!("{value:?}")))
}

/// The page's window; every shell API needs one.
pub fn window() -> Result<web_sys::Window, JsError> {
    web_sys::window().ok_or_else(|| JsError("no window: fanswarm runs in a page".into()))
}

/// Milliseconds on the page's monotonic clock (`performance.now()`).
pub fn now_ms() -> f64 {
    web_sys::window()
        .and_then(|w| w.performance())
        .map_or(0.0, |p| p.now())
}

/// The engine's time: `performance.now()` in whole milliseconds.
pub fn now() -> Time {
    // performance.now() is non-negative and far below 2^53.
    Time::from_millis(now_ms().max(0.0) as u64)
}

/// Fills an array from `crypto.getRandomValues`.
pub fn random_bytes<const N: usize>() -> Result<[u8; N], JsError> {
    let mut bytes = [0u8; N];
    window()?
        .crypto()
        .map_err(js_error)?
        .get_random_values_with_u8_array(&mut bytes)
        .map_err(js_error)?;
    Ok(bytes)
}

/// `fetch(request)` on the window.
pub fn fetch(request: &web_sys::Request) -> Result<js_sys::Promise, JsError> {
    Ok(window()?.fetch_with_request(request))
}

/// Reads an optional property of an options object.
pub fn property(object: &JsValue, name: &str) -> Option<JsValue> {
    js_sys::Reflect::get(object, &JsValue::from_str(name))
        .ok()
        .filter(|v| !v.is_undefined() && !v.is_null())
}

/// What this browser lacks that fanswarm uses, detected once per track:
/// [`WEBRTC`] (it can then neither share nor receive from fans, and plays
/// from the server alone) and [`SERVICE_WORKERS`] (the element then plays
/// the web seed directly). Empty in current Chromium, Firefox and Safari.
pub fn lacking() -> Vec<&'static str> {
    let global = js_sys::global();
    let mut lacks = Vec::new();
    if !property(&global, "RTCPeerConnection").is_some_and(|v| v.is_function()) {
        lacks.push(WEBRTC);
    }
    if !has_service_workers() {
        lacks.push(SERVICE_WORKERS);
    }
    lacks
}

/// [`lacking`]'s name for a browser with no `RTCPeerConnection`.
pub const WEBRTC: &str = "WebRTC data channels";

/// [`lacking`]'s name for a page with no `navigator.serviceWorker`
/// (an insecure origin, a private window of some browsers).
pub const SERVICE_WORKERS: &str = "service workers";

/// Whether `navigator.serviceWorker` exists: web-sys's getters throw
/// through the wasm when it does not.
pub fn has_service_workers() -> bool {
    web_sys::window().is_some_and(|w| property(&w.navigator(), "serviceWorker").is_some())
}
