//! The process's file-descriptor limit, and the share of it tracker sockets
//! may hold.
//!
//! Every tracker socket holds a descriptor for as long as its fan's page is
//! open; so does every web-seed connection (and the file it reads), the
//! listener, the WebRTC seed's sockets, the log. A server out of
//! descriptors fails every `accept`, for the web seed and the player's
//! files as much as for the tracker, so tracker sockets stop short of it:
//! past [`tracker_budget`] they are refused with 503
//! ([`crate::listen::AddressTable`]) and the rest is kept for everything
//! else.

/// Raises the soft `RLIMIT_NOFILE` to the hard limit, as Go's runtime does
/// for every program (the soft 1024 of many systems is there for
/// `select(2)`, which nothing here uses), and returns the soft limit now in
/// force; `None` if it cannot be read.
pub fn raise_limit() -> Option<u64> {
    match rlimit::increase_nofile_limit(u64::MAX) {
        Ok(soft) => Some(soft),
        Err(e) => {
            tracing::warn!(%e, "cannot raise the file-descriptor limit");
            rlimit::Resource::NOFILE.get().ok().map(|(soft, _)| soft)
        }
    }
}

/// Tracker sockets a descriptor limit of `nofile` allows: all but a reserve
/// of a quarter (at least 128, at most half) for the web seed, the files it
/// reads and the rest.
pub fn tracker_budget(nofile: u64) -> usize {
    let reserve = (nofile / 4).max(128).min(nofile / 2);
    usize::try_from(nofile - reserve).unwrap_or(usize::MAX)
}

/// The overall cap on tracker sockets: `flag` (`--max-connections`) when
/// given, else [`tracker_budget`] of the descriptor limit once raised, else
/// (the limit unreadable) `fallback`. A flag over the budget is obeyed
/// but warned about: past it, `accept` itself will fail.
pub fn max_connections(flag: Option<usize>, fallback: usize) -> usize {
    let nofile = raise_limit();
    let budget = nofile.map(tracker_budget);
    match (flag, budget) {
        (Some(max), Some(budget)) if max == 0 || max > budget => {
            tracing::warn!(
                max_connections = max,
                descriptor_limit = nofile,
                budget,
                "--max-connections is past what the file-descriptor limit leaves for \
                 tracker sockets: at that point the server cannot accept anything, \
                 the web seed's requests included (0 means no cap)"
            );
            max
        }
        (Some(max), _) => max,
        (None, Some(budget)) => budget,
        (None, None) => fallback,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_budget_keeps_a_reserve_for_everything_else() {
        assert_eq!(tracker_budget(1024), 768, "Debian's soft default");
        assert_eq!(tracker_budget(524_288), 393_216, "systemd's hard default");
        assert_eq!(tracker_budget(256), 128, "at least 128 kept");
        assert_eq!(tracker_budget(100), 50, "at most half kept");
        assert_eq!(tracker_budget(0), 0);
    }

    #[test]
    fn the_flag_wins_and_the_budget_is_the_default() {
        let budget = raise_limit().map(tracker_budget);
        assert_eq!(max_connections(Some(7), 99), 7);
        assert_eq!(max_connections(None, 99), budget.unwrap_or(99));
    }
}
