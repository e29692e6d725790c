//! ICE servers from a fanswarm server's `GET /api/ice`: STUN, and TURN with
//! credentials that expire, asked for again before they do.

use std::sync::Arc;
use std::time::Duration;

use crate::http::HttpClient;
use crate::rtc::IceServer;

/// What `/api/ice` says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServerIce {
    /// Each URL with its credentials.
    pub servers: Vec<IceServer>,
    /// Relay only (`iceTransportPolicy: "relay"`).
    pub relay_only: bool,
    /// How long the credentials live, if they expire.
    pub ttl: Option<Duration>,
}

/// `https://host/api/ice` for a tracker at `wss://host/announce` (and
/// `http` for `ws`); `None` for any other URL.
pub fn url_for_tracker(tracker: &str) -> Option<String> {
    let (scheme, rest) = tracker.split_once("://")?;
    let http = match scheme {
        "wss" => "https",
        "ws" => "http",
        _ => return None,
    };
    let host = rest.split('/').next().filter(|h| !h.is_empty())?;
    Some(format!("{http}://{host}/api/ice"))
}

/// Reads an `/api/ice` answer.
pub fn parse(json: &[u8]) -> Result<ServerIce, String> {
    let value: serde_json::Value =
        serde_json::from_slice(json).map_err(|e| format!("not JSON: {e}"))?;
    let list = value["iceServers"].as_array().ok_or("no iceServers list")?;
    let mut servers = Vec::new();
    for entry in list {
        let urls: Vec<String> = match &entry["urls"] {
            serde_json::Value::String(url) => vec![url.clone()],
            serde_json::Value::Array(urls) => urls
                .iter()
                .filter_map(|u| u.as_str().map(str::to_owned))
                .collect(),
            _ => return Err("an ICE server without urls".into()),
        };
        let text = |name: &str| entry[name].as_str().unwrap_or_default().to_owned();
        for url in urls {
            servers.push(IceServer {
                url,
                username: text("username"),
                credential: text("credential"),
            });
        }
    }
    Ok(ServerIce {
        servers,
        relay_only: value["iceTransportPolicy"] == "relay",
        ttl: value["ttlSeconds"].as_u64().map(Duration::from_secs),
    })
}

/// Asks `url` (a server's `/api/ice`).
pub async fn fetch(url: &str, tls: &Arc<rustls::ClientConfig>) -> Result<ServerIce, String> {
    let body = HttpClient::new(Arc::clone(tls))
        .get(url, 64 * 1024)
        .await
        .map_err(|e| e.to_string())?;
    parse(&body)
}

/// When to ask again: with a fifth of the credentials' life left (at least
/// 5 s from now).
pub fn renew_after(ttl: Duration) -> Duration {
    (ttl.mul_f64(0.8)).max(Duration::from_secs(5))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_ice_url_is_the_trackers_host() {
        assert_eq!(
            url_for_tracker("wss://music.example/announce").as_deref(),
            Some("https://music.example/api/ice")
        );
        assert_eq!(
            url_for_tracker("ws://127.0.0.1:8080/announce").as_deref(),
            Some("http://127.0.0.1:8080/api/ice")
        );
        assert_eq!(url_for_tracker("udp://tracker.example:80"), None);
        assert_eq!(url_for_tracker("wss:///announce"), None);
    }

    #[test]
    fn an_answer_is_read_server_by_url_and_garbage_is_an_error() {
        let ice = parse(
            br#"{"iceServers":[{"urls":["stun:a:3478"]},
                {"urls":["turn:b:3478?transport=udp","turns:b:5349"],"username":"99:fanswarm","credential":"pw"}],
                "iceTransportPolicy":"relay","ttlSeconds":600}"#,
        )
        .unwrap();
        assert_eq!(ice.servers.len(), 3);
        assert_eq!(ice.servers[0].username, "");
        assert_eq!(ice.servers[2].url, "turns:b:5349");
        assert_eq!(ice.servers[2].credential, "pw");
        assert!(ice.relay_only);
        assert_eq!(ice.ttl, Some(Duration::from_secs(600)));
        assert!(parse(b"<html>").is_err());
        assert!(parse(br#"{"iceServers":[{"username":"x"}]}"#).is_err());
        assert!(parse(br#"{}"#).is_err());
    }
}
