//! Which swarms the tracker serves: any (an open tracker), or only a list
//! (the tracks its server published), as aquatic's access lists make it.

use std::collections::HashSet;

use swarm::InfoHash;

/// The swarms a [`Tracker`](crate::Tracker) accepts announces for.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum Access {
    /// Every swarm: anyone's magnet may use this tracker.
    #[default]
    Open,
    /// Only these info hashes; an announce for any other is refused with
    /// [`Refusal::NotAllowed`](crate::Refusal::NotAllowed).
    Only(HashSet<InfoHash>),
}

impl Access {
    /// Only the swarms of `info_hashes`.
    pub fn only(info_hashes: impl IntoIterator<Item = InfoHash>) -> Self {
        Access::Only(info_hashes.into_iter().collect())
    }

    /// Whether announces for `info_hash` are accepted.
    pub fn allows(&self, info_hash: &InfoHash) -> bool {
        match self {
            Access::Open => true,
            Access::Only(hashes) => hashes.contains(info_hash),
        }
    }
}
