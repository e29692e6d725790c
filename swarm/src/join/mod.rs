//! Joining a swarm by a bare magnet link: the metadata phase, then the engine.
//!
//! [`Joining`] is what a shell drives when it may not have the info
//! dictionary yet. It has the engine's shape — `add_peer`,
//! `handle_peer_data`, `poll`, … with the same [`Output`]s — so a shell
//! drives one object from the first connection to the last piece:
//!
//! 1. From a magnet it starts as a [`MetadataFetch`] (see `fetch.rs`): peers
//!    handshake, metadata pieces come over ut_metadata and are checked
//!    against the info hash.
//! 2. When the metadata verifies, the [`Metainfo`] is built from the magnet
//!    and the bytes (its `ws` web seeds become the `url-list`), a
//!    [`Torrent`] is made, and every connection is handed to it with what
//!    the peer sent so far ([`Torrent::adopt_peer`]): no connection is lost.
//!    The shell notices by [`Joining::metainfo`] turning `Some` (open files,
//!    map web-seed ranges then).
//!
//! Why a separate fetch rather than a metadata phase inside `Torrent`: every
//! field of the engine (picker, store, peers' bitfields) is sized by the piece
//! count, and PIECES.md's invariants are stated over it. Keeping the phase
//! outside leaves the engine's invariants and its fuzz target untouched; the
//! only engine change is `adopt_peer`, which replays bytes through the normal
//! path, so a bitfield that arrived before the piece count was known is
//! checked exactly like one arriving now.

mod fetch;

#[cfg(test)]
mod tests;

use std::collections::VecDeque;
use std::time::Duration;

pub use crate::error::MetadataPeerError;
pub use fetch::{FetchConfig, Handover, MAX_WAITING_NOTICE_GAP, MetadataFetch};

use crate::engine::{
    Config, FetchId, Output, PeerKey, PieceOrigin, SpecError, Stats, Torrent, TorrentSpec, Upload,
};
use crate::ids::{InfoHash, PeerId};
use crate::magnet::Magnet;
use crate::metainfo::{Metainfo, MetainfoError};
use crate::picker::Playback;
use crate::time::Time;

/// The metadata verified but describes no torrent we can run.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum JoinError {
    /// The info dictionary (which hashes right) is not a valid torrent.
    #[error("the swarm's metadata is not a usable torrent: {0}")]
    Metainfo(#[from] MetainfoError),
    /// Its piece hashes do not describe its length.
    #[error(transparent)]
    Spec(#[from] SpecError),
}

/// What a shell tells its user for [`crate::engine::Event::MetadataWaiting`].
pub fn waiting_message(waited: Duration, peers: usize, offering: usize) -> String {
    let secs = waited.as_secs();
    match (peers, offering) {
        (0, _) => format!(
            "no metadata after {secs} s: no peer has connected; a bare magnet needs a peer \
             that has the track (or an xs= link to its .torrent)"
        ),
        (1, 0) => format!("no metadata after {secs} s: the one peer connected does not have it"),
        (_, 0) => format!("no metadata after {secs} s: none of the {peers} peers connected has it"),
        _ => format!(
            "no metadata after {secs} s: {offering} of {peers} peers have it, still fetching"
        ),
    }
}

/// One swarm being joined: fetching metadata, running, or failed. See the
/// module documentation.
#[derive(Debug)]
pub struct Joining {
    state: State,
    /// Outputs of the fetch not drained when the torrent took over.
    pending: VecDeque<Output>,
}

#[derive(Debug)]
enum State {
    Fetching(Box<Fetching>),
    Running {
        torrent: Box<Torrent>,
        meta: Option<Box<Metainfo>>,
    },
    Failed {
        error: JoinError,
        info_hash: InfoHash,
        our_id: PeerId,
        now: Time,
    },
}

#[derive(Debug)]
struct Fetching {
    fetch: MetadataFetch,
    magnet: Magnet,
    config: Config,
    seed: u64,
    playback: Option<Playback>,
    start_window: u64,
}

impl Joining {
    /// Starts from a magnet: metadata first. `config` and `seed` are for the
    /// engine made once the metadata is in.
    pub fn from_magnet(
        config: Config,
        fetch_config: FetchConfig,
        magnet: Magnet,
        our_id: PeerId,
        seed: u64,
        now: Time,
    ) -> Self {
        let fetch = MetadataFetch::new(fetch_config, magnet.info_hash, our_id, now);
        Joining {
            state: State::Fetching(Box::new(Fetching {
                fetch,
                magnet,
                config,
                seed,
                playback: None,
                start_window: 0,
            })),
            pending: VecDeque::new(),
        }
    }

    /// An engine that has its metadata already (a `.torrent`).
    pub fn from_torrent(torrent: Torrent) -> Self {
        Joining {
            state: State::Running {
                torrent: Box::new(torrent),
                meta: None,
            },
            pending: VecDeque::new(),
        }
    }

    /// The engine, once the metadata is known.
    pub fn torrent(&self) -> Option<&Torrent> {
        match &self.state {
            State::Running { torrent, .. } => Some(torrent),
            _ => None,
        }
    }

    /// The engine, once the metadata is known.
    pub fn torrent_mut(&mut self) -> Option<&mut Torrent> {
        match &mut self.state {
            State::Running { torrent, .. } => Some(torrent),
            _ => None,
        }
    }

    /// The torrent built from the magnet and the fetched metadata; `None`
    /// while fetching, and for a join that started from a `.torrent`.
    pub fn metainfo(&self) -> Option<&Metainfo> {
        match &self.state {
            State::Running { meta, .. } => meta.as_deref(),
            _ => None,
        }
    }

    /// Whether the metadata phase is over (or never was).
    pub fn has_metadata(&self) -> bool {
        matches!(self.state, State::Running { .. })
    }

    /// Why the join cannot go on, if it cannot.
    pub fn error(&self) -> Option<&JoinError> {
        match &self.state {
            State::Failed { error, .. } => Some(error),
            _ => None,
        }
    }

    /// The swarm.
    pub fn info_hash(&self) -> InfoHash {
        match &self.state {
            State::Fetching(f) => f.fetch.info_hash(),
            State::Running { torrent, .. } => torrent.info_hash(),
            State::Failed { info_hash, .. } => *info_hash,
        }
    }

    /// Our peer id.
    pub fn peer_id(&self) -> PeerId {
        match &self.state {
            State::Fetching(f) => f.fetch.peer_id(),
            State::Running { torrent, .. } => torrent.peer_id(),
            State::Failed { our_id, .. } => *our_id,
        }
    }

    /// The info dictionary from another source (the magnet's `xs` torrent
    /// fetched over HTTP, a cache): if it hashes to the info hash the fetch
    /// ends and the torrent takes over at once. Returns whether it was used.
    pub fn offer_metadata(&mut self, now: Time, info_bytes: &[u8]) -> bool {
        let State::Fetching(f) = &mut self.state else {
            return false;
        };
        let used = f.fetch.provide_metadata(info_bytes);
        self.advance(now);
        used
    }

    /// See [`Torrent::add_peer`].
    pub fn add_peer(&mut self, now: Time, key: PeerKey) {
        match &mut self.state {
            State::Fetching(f) => f.fetch.add_peer(now, key),
            State::Running { torrent, .. } => torrent.add_peer(now, key),
            State::Failed { .. } => self.pending.push_back(Output::Close {
                peer: key,
                reason: crate::engine::PeerError::TooManyPeers,
            }),
        }
        self.advance(now);
    }

    /// See [`Torrent::handle_peer_data`].
    pub fn handle_peer_data(&mut self, now: Time, key: PeerKey, bytes: &[u8]) {
        match &mut self.state {
            State::Fetching(f) => f.fetch.handle_peer_data(now, key, bytes),
            State::Running { torrent, .. } => torrent.handle_peer_data(now, key, bytes),
            State::Failed { .. } => {}
        }
        self.advance(now);
    }

    /// See [`Torrent::handle_peer_closed`].
    pub fn handle_peer_closed(&mut self, now: Time, key: PeerKey) {
        match &mut self.state {
            State::Fetching(f) => f.fetch.handle_peer_closed(now, key),
            State::Running { torrent, .. } => torrent.handle_peer_closed(now, key),
            State::Failed { .. } => {}
        }
    }

    /// See [`Torrent::set_send_blocked`]. While fetching, sends are tiny.
    pub fn set_send_blocked(&mut self, now: Time, key: PeerKey, blocked: bool) {
        if let State::Running { torrent, .. } = &mut self.state {
            torrent.set_send_blocked(now, key, blocked);
        }
    }

    /// See [`Torrent::set_peers_coming`]; ignored while fetching (the
    /// engine starts without it and the node tells it again).
    pub fn set_peers_coming(&mut self, now: Time, coming: bool, crowd: u64) {
        if let State::Running { torrent, .. } = &mut self.state {
            torrent.set_peers_coming(now, coming, crowd);
        }
    }

    /// See [`Torrent::set_playback`]; remembered while fetching.
    pub fn set_playback(&mut self, now: Time, playback: Option<Playback>) {
        match &mut self.state {
            State::Fetching(f) => f.playback = playback,
            State::Running { torrent, .. } => torrent.set_playback(now, playback),
            State::Failed { .. } => {}
        }
    }

    /// See [`Torrent::set_start_window`]; remembered while fetching.
    pub fn set_start_window(&mut self, now: Time, bytes: u64) {
        match &mut self.state {
            State::Fetching(f) => f.start_window = bytes,
            State::Running { torrent, .. } => torrent.set_start_window(now, bytes),
            State::Failed { .. } => {}
        }
    }

    /// See [`Torrent::set_upload`]; while fetching the metadata there is
    /// nothing to upload, and the engine made once it is in starts with it.
    pub fn set_upload(&mut self, now: Time, upload: Upload) {
        match &mut self.state {
            State::Fetching(f) => f.config.upload = upload,
            State::Running { torrent, .. } => torrent.set_upload(now, upload),
            State::Failed { .. } => {}
        }
    }

    /// See [`Torrent::handle_timeout`].
    pub fn handle_timeout(&mut self, now: Time) {
        match &mut self.state {
            State::Fetching(f) => f.fetch.handle_timeout(now),
            State::Running { torrent, .. } => torrent.handle_timeout(now),
            State::Failed { now: t, .. } => *t = now,
        }
        self.advance(now);
    }

    /// See [`Torrent::handle_web_seed_data`]; fetches exist only once running.
    pub fn handle_web_seed_data(&mut self, now: Time, id: FetchId, data: &[u8]) {
        if let State::Running { torrent, .. } = &mut self.state {
            torrent.handle_web_seed_data(now, id, data);
        }
    }

    /// See [`Torrent::handle_web_seed_end`].
    pub fn handle_web_seed_end(&mut self, now: Time, id: FetchId) {
        if let State::Running { torrent, .. } = &mut self.state {
            torrent.handle_web_seed_end(now, id);
        }
    }

    /// See [`Torrent::handle_web_seed_error`].
    pub fn handle_web_seed_error(&mut self, now: Time, id: FetchId) {
        if let State::Running { torrent, .. } = &mut self.state {
            torrent.handle_web_seed_error(now, id);
        }
    }

    /// See [`Torrent::poll`].
    pub fn poll(&mut self) -> Output {
        if let Some(out) = self.pending.pop_front() {
            return out;
        }
        match &mut self.state {
            State::Fetching(f) => f.fetch.poll(),
            State::Running { torrent, .. } => torrent.poll(),
            State::Failed { now, .. } => Output::Timeout(*now + Duration::from_secs(3600)),
        }
    }

    /// See [`Torrent::piece`].
    pub fn piece(&self, piece: u32) -> Option<&[u8]> {
        self.torrent()?.piece(piece)
    }

    /// See [`Torrent::import_piece`]; nothing to import into while fetching.
    pub fn import_piece(&mut self, piece: u32, data: &[u8]) -> bool {
        self.torrent_mut()
            .is_some_and(|t| t.import_piece(piece, data))
    }

    /// See [`Torrent::piece_origin`]; `None` while fetching.
    pub fn piece_origin(&self, piece: u32) -> Option<PieceOrigin> {
        self.torrent()?.piece_origin(piece)
    }

    /// See [`Torrent::is_complete`].
    pub fn is_complete(&self) -> bool {
        self.torrent().is_some_and(Torrent::is_complete)
    }

    /// See [`Torrent::stats`]; while fetching, only `peers` is counted.
    pub fn stats(&self) -> Stats {
        match &self.state {
            State::Fetching(f) => Stats {
                peers: f.fetch.peer_count(),
                ..Stats::default()
            },
            State::Running { torrent, .. } => torrent.stats(),
            State::Failed { .. } => Stats::default(),
        }
    }

    /// See [`Torrent::piece_length`]; 0 until the metadata is known.
    pub fn piece_length(&self) -> u32 {
        self.torrent().map_or(0, Torrent::piece_length)
    }

    /// See [`Torrent::total_length`]; 0 until the metadata is known.
    pub fn total_length(&self) -> u64 {
        self.torrent().map_or(0, Torrent::total_length)
    }

    /// See [`Torrent::check_invariants`]; trivially true while fetching.
    pub fn check_invariants(&self) -> Result<(), String> {
        self.torrent().map_or(Ok(()), Torrent::check_invariants)
    }

    /// If the fetch just completed, builds the torrent and hands it every
    /// connection.
    fn advance(&mut self, now: Time) {
        let State::Fetching(f) = &self.state else {
            return;
        };
        let Some(bytes) = f.fetch.metadata().map(<[u8]>::to_vec) else {
            return;
        };
        let (info_hash, our_id) = (f.fetch.info_hash(), f.fetch.peer_id());
        // Only to move the fetch out; every path below sets the real state.
        let moving = State::Failed {
            error: JoinError::Metainfo(MetainfoError::InfoHashMismatch {
                expected: info_hash,
                found: info_hash,
            }),
            info_hash,
            our_id,
            now,
        };
        let State::Fetching(f) = std::mem::replace(&mut self.state, moving) else {
            return; // matched just above
        };
        let Fetching {
            fetch,
            magnet,
            config,
            seed,
            playback,
            start_window,
        } = *f;
        let (_, handovers, outputs) = fetch.finish();
        self.pending.extend(outputs);
        let built = Metainfo::from_magnet(&magnet, &bytes)
            .map_err(JoinError::from)
            .and_then(|meta| {
                let spec = TorrentSpec::from_metainfo(&meta);
                Ok((Torrent::new(config, spec, our_id, seed, now)?, meta))
            });
        match built {
            Ok((mut torrent, meta)) => {
                if start_window > 0 {
                    torrent.set_start_window(now, start_window);
                }
                if playback.is_some() {
                    torrent.set_playback(now, playback);
                }
                for handover in handovers {
                    torrent.adopt_peer(now, handover.key, &handover.received);
                }
                self.state = State::Running {
                    torrent: Box::new(torrent),
                    meta: Some(Box::new(meta)),
                };
            }
            Err(error) => {
                for handover in handovers {
                    self.pending.push_back(Output::Close {
                        peer: handover.key,
                        reason: crate::engine::PeerError::Protocol(error.to_string()),
                    });
                }
                self.state = State::Failed {
                    error,
                    info_hash,
                    our_id,
                    now,
                };
            }
        }
    }
}
