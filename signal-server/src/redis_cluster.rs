//! `--redis URL`: tracker instances that share their swarms through Redis.
//!
//! Each instance keeps its sockets and its own sans-IO tracker; the
//! tracker decides ([`fanswarm_tracker::ClusterOut`]), this shell carries
//! it out over Redis:
//!
//! - **Membership.** Each swarm is a sorted set `fanswarm:swarm:<hex>`
//!   (seeders also in `fanswarm:seeds:<hex>`) of members
//!   `<instance>:<connection>:<peer id hex>`, scored by their expiry in
//!   Redis's own clock (`TIME`, so instances' clocks need not agree).
//!   A join is added at once; every instance re-adds all its members every
//!   quarter of the announce interval, with an expiry one interval away.
//!   So a dead instance's peers vanish within one interval, and a Redis
//!   that restarted empty has every live swarm back within a quarter of
//!   one (at once when the subscriber reconnects).
//! - **Relays.** Offers for peers of other instances go to random members
//!   of the set (not ours) by `PUBLISH` on the holder's channel
//!   `fanswarm:instance:<id>`; the answer goes back the same way to the
//!   offerer's instance and connection. Each instance subscribes to its
//!   own channel and hands what arrives to its tracker, which keeps the
//!   answer rule and the per-connection limits.
//! - **Never in the socket loop.** Sockets queue their events with
//!   `try_send` on a bounded channel; one task talks to Redis, a batch per
//!   pipeline. When Redis is slow or gone, the queue fills and what does
//!   not fit is dropped and counted (`fanswarm_redis_dropped`), as are
//!   batches that fail: local swarms carry on regardless.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::Duration;

use fanswarm_tracker::{
    ClusterOut, ConnectionId, IncomingOffer, InstanceId, LocalMember, RemoteConnection,
};
use futures_util::StreamExt;
use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use serde::{Deserialize, Serialize};
use swarm::tracker::{AnswerRelay, OfferRelay};
use swarm::{InfoHash, PeerId};
use tokio::sync::mpsc;

use crate::redis_link::{ClusterLink, Job};
use crate::state::AppState;

/// How to reach Redis, and how much may wait for it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RedisOptions {
    /// `redis://[user:password@]host[:port][/db]` (or `rediss://`, `unix://`).
    pub url: String,
    /// Events waiting for Redis; beyond it they are dropped and counted.
    pub queue: usize,
}

impl RedisOptions {
    /// Refuses a URL that cannot work, before anything starts.
    pub fn check(&self) -> Result<(), ClusterError> {
        redis::Client::open(self.url.as_str())
            .map(drop)
            .map_err(|source| ClusterError::Url {
                url: self.url.clone(),
                source,
            })
    }

    /// Options for `url` with the default queue.
    pub fn new(url: impl Into<String>) -> Self {
        RedisOptions {
            url: url.into(),
            queue: DEFAULT_QUEUE,
        }
    }
}

/// Events that may wait for Redis by default: a few seconds of a busy
/// instance's announces.
pub const DEFAULT_QUEUE: usize = 8192;

/// Why `--redis` could not be set up.
#[derive(Debug, thiserror::Error)]
pub enum ClusterError {
    /// The URL does not parse.
    #[error("--redis {url}: {source}")]
    Url {
        /// The URL given.
        url: String,
        /// What is wrong with it.
        source: redis::RedisError,
    },
    /// The state already belongs to a cluster.
    #[error("this server already shares its swarms through Redis")]
    AlreadyJoined,
}

/// Joins `state` to the cluster on `options.url`: the tracker turns its
/// cluster mode on at once; the returned future talks to Redis until it is
/// dropped (spawn it beside the server). Fails only on a URL that cannot
/// work; an unreachable Redis is retried, and logged, for ever.
pub fn start(
    state: &AppState,
    options: &RedisOptions,
) -> Result<impl Future<Output = ()> + Send + 'static, ClusterError> {
    let client = redis::Client::open(options.url.as_str()).map_err(|source| ClusterError::Url {
        url: options.url.clone(),
        source,
    })?;
    let instance = InstanceId(fastrand::u64(..));
    let (jobs, rx) = mpsc::channel(options.queue.max(1));
    let link = Arc::new(ClusterLink::new(instance, jobs));
    if !state.join_cluster(Arc::clone(&link)) {
        return Err(ClusterError::AlreadyJoined);
    }
    let state = state.clone();
    Ok(async move {
        tracing::info!(instance = %hex(instance), "sharing swarms through Redis");
        let config = ConnectionManagerConfig::new()
            .set_connection_timeout(Some(REDIS_TIMEOUT))
            .set_response_timeout(Some(REDIS_TIMEOUT))
            .set_number_of_retries(1)
            .set_max_delay(Duration::from_secs(2));
        let manager = loop {
            match ConnectionManager::new_lazy_with_config(client.clone(), config.clone()) {
                Ok(manager) => break manager,
                Err(e) => {
                    tracing::warn!(%e, "Redis: cannot set up a connection; retrying");
                    tokio::time::sleep(RETRY).await;
                }
            }
        };
        let refresh = refresh_period(state.limits.announce_interval);
        tokio::join!(
            worker(state.clone(), link.clone(), manager, rx, refresh),
            subscriber(state, link, client),
        );
    })
}

/// How long one Redis round trip may take before it counts as failed.
const REDIS_TIMEOUT: Duration = Duration::from_secs(1);
/// Wait before reconnecting the subscription.
const RETRY: Duration = Duration::from_millis(500);
/// Events sent to Redis in one pipeline at most.
const BATCH: usize = 1024;

/// Members are re-added four times per announce interval (1 s to 30 s).
fn refresh_period(interval: Duration) -> Duration {
    (interval / 4).clamp(Duration::from_secs(1), Duration::from_secs(30))
}

/// A message on an instance's channel.
#[derive(Debug, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "lowercase")]
enum Wire {
    /// An offer for our peer `to` from a peer on `from_instance`.
    Offer {
        from_instance: u64,
        from_connection: u64,
        to: String,
        relay: OfferRelay,
    },
    /// An answer for our peer `offerer` on `connection`.
    Answer {
        connection: u64,
        offerer: String,
        relay: AnswerRelay,
    },
}

/// Adds members (ARGV: ttl ms, then member, seeder flag pairs), drops the
/// expired ones, keeps the keys alive one interval, returns the counts.
const TOUCH: &str = r"
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local expiry = now + tonumber(ARGV[1])
for i = 2, #ARGV, 2 do
  redis.call('ZADD', KEYS[1], expiry, ARGV[i])
  if ARGV[i + 1] == '1' then
    redis.call('ZADD', KEYS[2], expiry, ARGV[i])
  else
    redis.call('ZREM', KEYS[2], ARGV[i])
  end
end
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now)
redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', now)
redis.call('PEXPIRE', KEYS[1], ARGV[1])
redis.call('PEXPIRE', KEYS[2], ARGV[1])
return {redis.call('ZCARD', KEYS[1]), redis.call('ZCARD', KEYS[2])}
";

/// Drops the expired, returns the counts and up to ARGV[1] random members.
const PICK: &str = r"
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now)
redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', now)
local picked = redis.call('ZRANDMEMBER', KEYS[1], ARGV[1])
return {redis.call('ZCARD', KEYS[1]), redis.call('ZCARD', KEYS[2]), picked}
";

fn hex(instance: InstanceId) -> String {
    format!("{:016x}", instance.0)
}

fn peers_key(info_hash: &InfoHash) -> String {
    format!("fanswarm:swarm:{}", info_hash.to_hex())
}

fn seeds_key(info_hash: &InfoHash) -> String {
    format!("fanswarm:seeds:{}", info_hash.to_hex())
}

/// The channel an instance listens on.
pub fn channel(instance: InstanceId) -> String {
    format!("fanswarm:instance:{}", hex(instance))
}

fn member(instance: InstanceId, connection: ConnectionId, peer_id: &PeerId) -> String {
    format!("{}:{}:{}", hex(instance), connection.0, peer_id.to_hex())
}

/// `(instance, connection, peer id)` of a member; `None` if it is not one
/// of ours (another program's key, a corrupted entry).
fn parse_member(text: &str) -> Option<(InstanceId, ConnectionId, PeerId)> {
    let mut parts = text.splitn(3, ':');
    let instance = u64::from_str_radix(parts.next()?, 16).ok()?;
    let connection = parts.next()?.parse().ok()?;
    let peer = PeerId::from_hex(parts.next()?).ok()?;
    Some((InstanceId(instance), ConnectionId(connection), peer))
}

/// The one task that talks to Redis: events in batches, one pipeline each,
/// and every `refresh` all local members again.
async fn worker(
    state: AppState,
    link: Arc<ClusterLink>,
    mut conn: ConnectionManager,
    mut rx: mpsc::Receiver<Job>,
    refresh: Duration,
) {
    let ttl = state.limits.announce_interval;
    let mut tick = tokio::time::interval(refresh);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut batch = Vec::with_capacity(BATCH);
    loop {
        tokio::select! {
            n = rx.recv_many(&mut batch, BATCH) => {
                if n == 0 {
                    return;
                }
            }
            _ = tick.tick() => batch.push(Job::Refresh),
        }
        let jobs = std::mem::take(&mut batch);
        let lost = jobs.len();
        if let Err(e) = run_batch(&state, &link, &mut conn, jobs, ttl).await {
            tracing::debug!(%e, "Redis batch failed");
            state.metrics.count_redis_failed(lost);
        }
    }
}

/// A batch's commands in one pipeline, then the offers' `PUBLISH`es.
async fn run_batch(
    state: &AppState,
    link: &ClusterLink,
    conn: &mut ConnectionManager,
    jobs: Vec<Job>,
    ttl: Duration,
) -> redis::RedisResult<()> {
    let me = link.instance;
    let ttl_ms = u64::try_from(ttl.as_millis()).unwrap_or(u64::MAX).max(1);
    let mut pipe = redis::pipe();
    // What each command's reply is for.
    let mut replies: Vec<Reply> = Vec::new();
    let mut members: Vec<LocalMember> = Vec::new();
    // Swarms whose totals are wanted, once per batch however many asked.
    let mut wanted: HashSet<InfoHash> = HashSet::new();
    for job in jobs {
        match job {
            Job::Refresh => {
                if members.is_empty() {
                    members = state.hub().tracker.local_members();
                }
            }
            Job::Event(ClusterOut::Joined {
                info_hash,
                peer_id,
                connection,
                seeder,
            }) => {
                touch(
                    &mut pipe,
                    &info_hash,
                    ttl_ms,
                    [(member(me, connection, &peer_id), seeder)],
                );
                replies.push(Reply::Counts(info_hash));
            }
            Job::Event(ClusterOut::Left {
                info_hash,
                peer_id,
                connection,
            }) => {
                let m = member(me, connection, &peer_id);
                pipe.cmd("ZREM").arg(peers_key(&info_hash)).arg(&m).ignore();
                pipe.cmd("ZREM").arg(seeds_key(&info_hash)).arg(&m).ignore();
            }
            Job::Event(ClusterOut::Offers(offers)) => {
                // Ask for more than needed: some will be ours.
                let want = (offers.offers.len() * 2 + 8).min(64);
                pipe.cmd("EVAL")
                    .arg(PICK)
                    .arg(2)
                    .arg(peers_key(&offers.info_hash))
                    .arg(seeds_key(&offers.info_hash))
                    .arg(want);
                replies.push(Reply::Pick(offers));
            }
            Job::Event(ClusterOut::Totals(info_hash)) => {
                wanted.insert(info_hash);
            }
            Job::Event(ClusterOut::Answer(answer)) => {
                let wire = Wire::Answer {
                    connection: answer.to.connection.0,
                    offerer: answer.offerer.to_hex(),
                    relay: answer.relay,
                };
                if let Ok(text) = serde_json::to_string(&wire) {
                    pipe.cmd("PUBLISH")
                        .arg(channel(answer.to.instance))
                        .arg(text)
                        .ignore();
                    state.metrics.count_redis_relayed("answer_out");
                }
            }
        }
    }
    let mut by_swarm: HashMap<InfoHash, Vec<(String, bool)>> = HashMap::new();
    for m in members {
        by_swarm
            .entry(m.info_hash)
            .or_default()
            .push((member(me, m.connection, &m.peer_id), m.seeder));
    }
    for (info_hash, list) in by_swarm {
        wanted.remove(&info_hash);
        touch(&mut pipe, &info_hash, ttl_ms, list);
        replies.push(Reply::Counts(info_hash));
    }
    for info_hash in wanted {
        // No member to add: prune and count.
        touch(&mut pipe, &info_hash, ttl_ms, []);
        replies.push(Reply::Counts(info_hash));
    }
    if replies.is_empty() && pipe.cmd_iter().next().is_none() {
        return Ok(());
    }
    let values: Vec<redis::Value> = pipe.query_async(conn).await?;

    let mut publish = redis::pipe();
    let mut totals = Vec::new();
    for (reply, value) in replies.into_iter().zip(values) {
        match reply {
            Reply::Counts(info_hash) => {
                if let Ok((peers, seeds)) = redis::from_redis_value::<(usize, usize)>(value) {
                    totals.push((info_hash, peers, seeds));
                }
            }
            Reply::Pick(offers) => {
                let Ok((peers, seeds, mut picked)) =
                    redis::from_redis_value::<(usize, usize, Vec<String>)>(value)
                else {
                    continue;
                };
                // ZRANDMEMBER returns the whole set, in its own order, when
                // asked for more than it holds: shuffle, or the same peer
                // would get every offer.
                fastrand::shuffle(&mut picked);
                totals.push((offers.info_hash, peers, seeds));
                let targets = picked
                    .iter()
                    .filter_map(|m| parse_member(m))
                    .filter(|(instance, _, _)| *instance != me);
                for ((instance, _, to), offer) in targets.zip(offers.offers) {
                    let wire = Wire::Offer {
                        from_instance: me.0,
                        from_connection: offers.connection.0,
                        to: to.to_hex(),
                        relay: OfferRelay {
                            action: swarm::tracker::Action::Announce,
                            info_hash: offers.info_hash,
                            peer_id: offers.offerer,
                            offer_id: offer.offer_id,
                            offer: offer.offer,
                        },
                    };
                    if let Ok(text) = serde_json::to_string(&wire) {
                        publish
                            .cmd("PUBLISH")
                            .arg(channel(instance))
                            .arg(text)
                            .ignore();
                        state.metrics.count_redis_relayed("offer_out");
                    }
                }
            }
        }
    }
    if !totals.is_empty() {
        let mut hub = state.hub();
        for (info_hash, peers, seeds) in totals {
            hub.tracker
                .set_swarm_totals(&info_hash, seeds, peers.saturating_sub(seeds));
        }
    }
    if publish.cmd_iter().next().is_some() {
        publish.query_async::<()>(conn).await?;
    }
    Ok(())
}

/// What a command of the batch's pipeline answers.
enum Reply {
    /// `[peers, seeders]` of a swarm.
    Counts(InfoHash),
    /// `[peers, seeders, members…]` for these offers.
    Pick(fanswarm_tracker::RemoteOffers),
}

fn touch(
    pipe: &mut redis::Pipeline,
    info_hash: &InfoHash,
    ttl_ms: u64,
    members: impl IntoIterator<Item = (String, bool)>,
) {
    let cmd = pipe
        .cmd("EVAL")
        .arg(TOUCH)
        .arg(2)
        .arg(peers_key(info_hash))
        .arg(seeds_key(info_hash))
        .arg(ttl_ms);
    for (m, seeder) in members {
        cmd.arg(m).arg(if seeder { "1" } else { "0" });
    }
}

/// Listens on this instance's channel, reconnecting for ever; after a
/// reconnect every local member is re-added at once (Redis may have
/// restarted empty).
async fn subscriber(state: AppState, link: Arc<ClusterLink>, client: redis::Client) {
    let name = channel(link.instance);
    let mut connected_before = false;
    loop {
        let subscribed = async {
            let mut pubsub = client.get_async_pubsub().await?;
            pubsub.subscribe(&name).await?;
            Ok::<_, redis::RedisError>(pubsub)
        };
        match tokio::time::timeout(REDIS_TIMEOUT * 2, subscribed).await {
            Ok(Ok(pubsub)) => {
                if connected_before {
                    tracing::info!("Redis is back: re-adding this instance's peers");
                    // A full queue already holds a refresh's worth of work.
                    link.refresh();
                }
                connected_before = true;
                let mut messages = pubsub.into_on_message();
                while let Some(message) = messages.next().await {
                    receive(&state, message.get_payload_bytes());
                }
                tracing::warn!("Redis subscription lost; reconnecting");
            }
            Ok(Err(e)) => tracing::warn!(%e, "Redis: cannot subscribe; retrying"),
            Err(_) => tracing::warn!("Redis: no answer to subscribe; retrying"),
        }
        tokio::time::sleep(RETRY).await;
    }
}

/// One message from another instance, handed to the tracker and delivered.
fn receive(state: &AppState, payload: &[u8]) {
    let Ok(wire) = serde_json::from_slice::<Wire>(payload) else {
        state.metrics.count_redis_undeliverable("malformed");
        return;
    };
    let now = state.now();
    let mut out = Vec::new();
    let result = {
        let mut hub = state.hub();
        match wire {
            Wire::Offer {
                from_instance,
                from_connection,
                to,
                relay,
            } => {
                state.metrics.count_redis_relayed("offer_in");
                let Ok(to) = PeerId::from_hex(&to) else {
                    state.metrics.count_redis_undeliverable("malformed");
                    return;
                };
                let offer = IncomingOffer {
                    from: RemoteConnection {
                        instance: InstanceId(from_instance),
                        connection: ConnectionId(from_connection),
                    },
                    to,
                    relay,
                };
                hub.tracker.remote_offer(now, offer, &mut out)
            }
            Wire::Answer {
                connection,
                offerer,
                relay,
            } => {
                state.metrics.count_redis_relayed("answer_in");
                let Ok(offerer) = PeerId::from_hex(&offerer) else {
                    state.metrics.count_redis_undeliverable("malformed");
                    return;
                };
                hub.tracker
                    .remote_answer(ConnectionId(connection), offerer, relay, &mut out)
            }
        }
    };
    if let Err(why) = result {
        state.metrics.count_redis_undeliverable(why.label());
    }
    crate::ws::deliver(state, out);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn members_round_trip_and_foreign_entries_are_skipped() {
        let m = member(InstanceId(0xabc), ConnectionId(42), &PeerId([7; 20]));
        assert_eq!(
            parse_member(&m),
            Some((InstanceId(0xabc), ConnectionId(42), PeerId([7; 20])))
        );
        for bad in ["", "zz:1:00", "1:x:0707", "1:2:0707", "1:2"] {
            assert_eq!(parse_member(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn the_refresh_runs_four_times_an_interval_within_bounds() {
        assert_eq!(
            refresh_period(Duration::from_secs(120)),
            Duration::from_secs(30)
        );
        assert_eq!(
            refresh_period(Duration::from_secs(8)),
            Duration::from_secs(2)
        );
        assert_eq!(
            refresh_period(Duration::from_secs(2)),
            Duration::from_secs(1)
        );
    }

    #[test]
    fn a_bad_url_is_a_clear_error() {
        let state = AppState::new(
            crate::catalog::Catalog::new(Vec::new()),
            crate::state::Paths {
                media_dir: ".".into(),
                web_dir: ".".into(),
            },
            fanswarm_tracker::Limits::default(),
        );
        let err = start(&state, &RedisOptions::new("http://nope")).err();
        let text = err.map(|e| e.to_string()).unwrap_or_default();
        assert!(text.starts_with("--redis http://nope:"), "{text}");
        assert!(!state.hub().tracker.is_clustered());
    }
}
