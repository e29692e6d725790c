//! What every request handler shares.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, OnceLock, RwLock};
use std::time::{Instant, SystemTime};

use axum::extract::ws::Message;
use fanswarm_tracker::{Access, ClusterOut, ConnectionId, Limits, Tracker};
use swarm::time::Time;
use tokio::sync::mpsc;

use crate::assets::WebAssets;
use crate::catalog::Catalog;
use crate::listen::AddressTable;
use crate::metrics::Metrics;
use crate::offload::{Day, Offload};
use crate::redis_link::ClusterLink;

/// Cheap to clone: one `Arc`.
#[derive(Clone, Debug)]
pub struct AppState(Arc<Shared>);

/// Where the server finds its files.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Paths {
    /// Root of the web seed (`/media/`): the library, or the demo cache.
    pub media_dir: PathBuf,
    /// Served at `/` and every path no other route takes.
    pub web_dir: PathBuf,
}

/// The shared parts behind [`AppState`].
#[derive(Debug)]
pub struct Shared {
    hub: Mutex<Hub>,
    /// Exported at `/metrics`.
    pub metrics: Metrics,
    /// Today's web-seed and fan-to-fan bytes, for `/api/swarm`.
    pub offload: Offload,
    /// Published tracks: replaced whole as the library changes
    /// ([`AppState::publish`]); a request holds the one it started with.
    catalog: RwLock<Arc<Catalog>>,
    /// File locations.
    pub paths: Paths,
    /// The player's code names (hashed by `scripts/build-web`), read at start.
    pub assets: WebAssets,
    /// Copy of the tracker's limits, readable without the lock.
    pub limits: Limits,
    /// Tracker sockets open, per address and in all (its own lock, not the
    /// hub's).
    pub addresses: Arc<AddressTable>,
    /// What the embed page tells each fan's player.
    pub player: PlayerSettings,
    /// Set when this instance shares its swarms through Redis (`--redis`).
    cluster: OnceLock<Arc<ClusterLink>>,
    epoch: Instant,
    next_connection: AtomicU64,
    /// True once the server is shutting down.
    shutdown: tokio::sync::watch::Sender<bool>,
}

/// The tracker and the queues to every connection, behind one lock.
///
/// One lock is enough on the machines we target: the tracker's work per
/// message is a few hash lookups; JSON parsing and serialization happen
/// outside it.
#[derive(Debug)]
pub struct Hub {
    /// Swarm bookkeeping.
    pub tracker: Tracker,
    /// Chooses which peers get offers.
    pub rng: fastrand::Rng,
    /// Each connection's outgoing queue.
    pub senders: HashMap<ConnectionId, mpsc::Sender<Message>>,
}

/// Settings the server hands to fans' players.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PlayerSettings {
    /// Their STUN and TURN servers (`GET /api/ice`).
    pub ice: crate::ice::IceConfig,
}

impl AppState {
    /// State for a server publishing `catalog`, with the given limits and
    /// the player's defaults.
    pub fn new(catalog: Catalog, paths: Paths, limits: Limits) -> Self {
        Self::with_player(catalog, paths, limits, PlayerSettings::default())
    }

    /// State for a server publishing `catalog`, whose embed pages give
    /// their players `player`.
    pub fn with_player(
        catalog: Catalog,
        paths: Paths,
        limits: Limits,
        player: PlayerSettings,
    ) -> Self {
        AppState(Arc::new(Shared {
            hub: Mutex::new(Hub {
                tracker: Tracker::new(limits.clone()),
                rng: fastrand::Rng::new(),
                senders: HashMap::new(),
            }),
            metrics: Metrics::default(),
            offload: Offload::default(),
            catalog: RwLock::new(Arc::new(catalog)),
            assets: WebAssets::load(&paths.web_dir),
            paths,
            addresses: AddressTable::new(
                limits.max_connections_per_address,
                limits.max_connections,
            ),
            player,
            limits,
            cluster: OnceLock::new(),
            epoch: Instant::now(),
            next_connection: AtomicU64::new(1),
            shutdown: tokio::sync::watch::Sender::new(false),
        }))
    }

    /// The published tracks now.
    pub fn catalog(&self) -> Arc<Catalog> {
        Arc::clone(&self.0.catalog.read().unwrap_or_else(|e| e.into_inner()))
    }

    /// Publishes `catalog` in place of the current one: tracks no longer
    /// in it are not served from now on, and, when the tracker admits only
    /// published swarms, their swarms are refused at the next announce.
    pub fn publish(&self, catalog: Catalog) {
        let hashes: Vec<_> = catalog.tracks().iter().map(|t| t.info_hash).collect();
        self.metrics
            .library
            .tracks
            .set(i64::try_from(hashes.len()).unwrap_or(i64::MAX));
        *self.0.catalog.write().unwrap_or_else(|e| e.into_inner()) = Arc::new(catalog);
        let mut hub = self.hub();
        if matches!(hub.tracker.access(), Access::Only(_)) {
            hub.tracker.set_access(Access::only(hashes));
        }
    }

    /// Starts the shutdown: listeners stop accepting, responses under way
    /// finish, tracker sockets are closed with "going away".
    pub fn shut_down(&self) {
        self.0.shutdown.send_replace(true);
    }

    /// Turns true when the server shuts down.
    pub fn shutdown(&self) -> tokio::sync::watch::Receiver<bool> {
        self.0.shutdown.subscribe()
    }

    /// Tracker sockets still open.
    pub fn tracker_sockets(&self) -> usize {
        self.hub().senders.len()
    }

    /// Locks the hub; a panic elsewhere while holding it does not poison
    /// the tracker for everyone else (its state stays consistent per call).
    pub fn hub(&self) -> MutexGuard<'_, Hub> {
        self.0.hub.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Milliseconds since the server started, as the tracker's clock.
    pub fn now(&self) -> Time {
        Time(u64::try_from(self.0.epoch.elapsed().as_millis()).unwrap_or(u64::MAX))
    }

    /// Today (UTC) by the wall clock, for the daily figures.
    pub fn today(&self) -> Day {
        let secs = SystemTime::now()
            .duration_since(SystemTime::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs());
        Day(secs / 86_400)
    }

    /// Makes this state one instance of a cluster (started by `--redis`):
    /// the tracker's cluster mode goes on. False if it already was one.
    pub fn join_cluster(&self, link: Arc<ClusterLink>) -> bool {
        if self.0.cluster.set(link).is_err() {
            return false;
        }
        self.hub().tracker.enable_cluster();
        true
    }

    /// The cluster link, when there is one.
    pub fn cluster(&self) -> Option<&ClusterLink> {
        self.0.cluster.get().map(|l| &**l)
    }

    /// Hands the tracker's cluster events (drained under the hub's lock) to
    /// the Redis task; never waits.
    pub fn to_cluster(&self, events: Vec<ClusterOut>) {
        if events.is_empty() {
            return;
        }
        if let Some(link) = self.cluster() {
            link.forward(&self.metrics, events);
        }
    }

    /// A fresh connection id.
    pub fn next_connection(&self) -> ConnectionId {
        ConnectionId(self.0.next_connection.fetch_add(1, Ordering::Relaxed))
    }
}

impl std::ops::Deref for AppState {
    type Target = Shared;
    fn deref(&self) -> &Shared {
        &self.0
    }
}
