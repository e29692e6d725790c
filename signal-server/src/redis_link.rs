//! The sockets' end of `--redis`: where the tracker's cluster events are
//! queued for the Redis task (`redis_cluster`), never waiting.

use fanswarm_tracker::{ClusterOut, InstanceId};
use tokio::sync::mpsc;

use crate::metrics::Metrics;

/// This instance's end of the cluster, kept in the server's state.
#[derive(Debug)]
pub struct ClusterLink {
    /// This instance's number (random at start).
    pub instance: InstanceId,
    jobs: mpsc::Sender<Job>,
}

/// What the Redis task works on.
#[derive(Debug)]
pub(crate) enum Job {
    /// Something the tracker decided.
    Event(ClusterOut),
    /// Re-add every local member now (Redis came back).
    Refresh,
}

impl ClusterLink {
    pub(crate) fn new(instance: InstanceId, jobs: mpsc::Sender<Job>) -> Self {
        ClusterLink { instance, jobs }
    }

    /// Queues the tracker's events for Redis; what does not fit is dropped
    /// and counted.
    pub fn forward(&self, metrics: &Metrics, events: Vec<ClusterOut>) {
        for event in events {
            if self.jobs.try_send(Job::Event(event)).is_err() {
                metrics.count_redis_dropped("queue_full");
            }
        }
    }

    /// Asks for every local member to be re-added now; a full queue
    /// already holds a refresh's worth of work.
    pub(crate) fn refresh(&self) {
        let _ = self.jobs.try_send(Job::Refresh);
    }
}
