//! The STUN and TURN servers fans' browsers use, handed out by the server
//! (`GET /api/ice`) so that no server is built into the player.
//!
//! TURN credentials are the time-limited kind of the "TURN REST API" that
//! coturn checks with `use-auth-secret` / `static-auth-secret`: the user
//! name is `<unix expiry>:<label>` and the password is
//! `base64(HMAC-SHA1(secret, user name))`. The TURN server needs only the
//! shared secret; a leaked credential stops working at its expiry, and a
//! player asks for fresh ones before then.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde::Serialize;

/// What the server tells players about ICE.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IceConfig {
    /// `stun:` URLs.
    pub stun: Vec<String>,
    /// `turn:`/`turns:` URLs, all sharing [`IceConfig::turn_secret`].
    pub turn: Vec<String>,
    /// coturn's `static-auth-secret`; without it TURN URLs are not handed out.
    pub turn_secret: Option<String>,
    /// How long a TURN credential is valid.
    pub turn_ttl: Duration,
    /// Relay only (`iceTransportPolicy: "relay"`): fans never see each
    /// other's addresses, at the TURN server's cost.
    pub relay_only: bool,
}

/// The public STUN server used when the operator names none.
pub const DEFAULT_STUN: &str = "stun:stun.l.google.com:19302";

impl Default for IceConfig {
    fn default() -> Self {
        IceConfig {
            stun: vec![DEFAULT_STUN.to_owned()],
            turn: Vec::new(),
            turn_secret: None,
            turn_ttl: Duration::from_secs(6 * 3600),
            relay_only: false,
        }
    }
}

impl IceConfig {
    /// No server at all: host candidates only (a LAN, a test's private
    /// network).
    pub fn none() -> Self {
        IceConfig {
            stun: Vec::new(),
            ..IceConfig::default()
        }
    }
}

/// One entry of `RTCConfiguration.iceServers`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct IceServer {
    /// The server's URLs.
    pub urls: Vec<String>,
    /// TURN user name.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub username: Option<String>,
    /// TURN password.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub credential: Option<String>,
}

/// `GET /api/ice`: an `RTCConfiguration` a page can pass to
/// `new RTCPeerConnection()` as it is, plus when its credentials expire.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ClientIce {
    /// STUN and TURN servers.
    pub ice_servers: Vec<IceServer>,
    /// `"all"` or `"relay"`.
    pub ice_transport_policy: &'static str,
    /// Seconds the TURN credentials stay valid (ask again well before);
    /// `None` when there are none.
    pub ttl_seconds: Option<u64>,
}

impl IceConfig {
    /// The configuration for one client, with TURN credentials valid from
    /// `now` for [`IceConfig::turn_ttl`].
    pub fn for_client(&self, now: SystemTime) -> ClientIce {
        let mut ice_servers = Vec::new();
        if !self.stun.is_empty() {
            ice_servers.push(IceServer {
                urls: self.stun.clone(),
                username: None,
                credential: None,
            });
        }
        let mut ttl_seconds = None;
        if let (false, Some(secret)) = (self.turn.is_empty(), &self.turn_secret) {
            let since_epoch = now.duration_since(UNIX_EPOCH).unwrap_or_default();
            let expiry = (since_epoch + self.turn_ttl).as_secs();
            let username = format!("{expiry}:fanswarm");
            ice_servers.push(IceServer {
                urls: self.turn.clone(),
                credential: Some(turn_password(secret, &username)),
                username: Some(username),
            });
            ttl_seconds = Some(self.turn_ttl.as_secs());
        }
        ClientIce {
            ice_servers,
            ice_transport_policy: if self.relay_only { "relay" } else { "all" },
            ttl_seconds,
        }
    }
}

/// coturn's REST-API password for `username`: base64(HMAC-SHA1(secret, username)).
pub fn turn_password(secret: &str, username: &str) -> String {
    let key = ring::hmac::Key::new(ring::hmac::HMAC_SHA1_FOR_LEGACY_USE_ONLY, secret.as_bytes());
    let tag = ring::hmac::sign(&key, username.as_bytes());
    data_encoding::BASE64.encode(tag.as_ref())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn turn_password_is_base64_hmac_sha1_of_the_user_name() {
        // RFC 2202 test case 2: HMAC-SHA1("Jefe", "what do ya want for nothing?").
        let expected = data_encoding::BASE64.encode(
            &data_encoding::HEXLOWER
                .decode(b"effcdf6ae5eb2fa2d27416d5f184df9c259a7c79")
                .unwrap(),
        );
        assert_eq!(
            turn_password("Jefe", "what do ya want for nothing?"),
            expected
        );
    }

    #[test]
    fn credentials_expire_ttl_after_now_and_turn_needs_a_secret() {
        let now = UNIX_EPOCH + Duration::from_secs(1_000_000);
        let mut config = IceConfig {
            stun: vec!["stun:a.example:3478".into()],
            turn: vec!["turn:b.example:3478?transport=udp".into()],
            turn_secret: None,
            turn_ttl: Duration::from_secs(600),
            relay_only: true,
        };
        let without = config.for_client(now);
        assert_eq!(without.ice_servers.len(), 1, "no secret, no TURN");
        assert_eq!(without.ttl_seconds, None);
        config.turn_secret = Some("s3cret".into());
        let with = config.for_client(now);
        let turn = &with.ice_servers[1];
        assert_eq!(turn.username.as_deref(), Some("1000600:fanswarm"));
        assert_eq!(
            turn.credential.as_deref(),
            Some(turn_password("s3cret", "1000600:fanswarm").as_str())
        );
        assert_eq!(with.ttl_seconds, Some(600));
        assert_eq!(with.ice_transport_policy, "relay");
        let json = serde_json::to_value(&with).unwrap();
        assert_eq!(json["iceServers"][0]["urls"][0], "stun:a.example:3478");
        assert!(json["iceServers"][0].get("username").is_none());
        assert_eq!(json["iceTransportPolicy"], "relay");
    }

    #[test]
    fn none_hands_out_no_server() {
        assert!(
            IceConfig::none()
                .for_client(SystemTime::now())
                .ice_servers
                .is_empty()
        );
    }
}
