//! The per-torrent state machine: events in, actions out.
//!
//! A shell owns one [`Torrent`] per track. It calls
//! - [`Torrent::add_peer`] when a data channel opens (both sides handshake at once),
//! - [`Torrent::handle_peer_data`] with whatever bytes the channel delivered,
//! - [`Torrent::handle_peer_closed`] when the channel or connection goes away,
//! - [`Torrent::handle_web_seed_data`] / [`Torrent::handle_web_seed_error`] with
//!   the outcome of a range fetch the engine asked for,
//! - [`Torrent::set_playback`] as the player moves,
//! - [`Torrent::set_send_blocked`] from the channel's `bufferedAmount` watermarks,
//! - [`Torrent::handle_timeout`] when the time it asked for comes,
//!
//! and after each call drains [`Torrent::poll`] until it returns
//! [`Output::Timeout`]. Everything the engine wants done — bytes to send, a
//! connection to close, a range to fetch — and everything it wants known —
//! a piece verified, a peer banned, the download done — comes out of `poll`.
//!
//! Piece-state invariants are written down in `PIECES.md` beside this file.

mod choke;
pub mod crowd;
mod evict;
mod handle;
mod invariants;
mod origin;
mod peer;
mod peer_crowd;
mod pieces;
pub mod store;
mod upload;
mod webseed;

use std::collections::VecDeque;
use std::ops::Range;
use std::time::Duration;

pub use crate::error::PeerError;
pub use origin::{PieceOrigin, Source};
pub use upload::Upload;

pub(crate) use handle::{LT_DONTHAVE_ID, UT_METADATA_ID};

use crate::bitfield::Bitfield;
use crate::ids::{InfoHash, PeerId};
use crate::metainfo::Metainfo;
use crate::picker::{Picker, PickerConfig, Playback};
use crate::sorted::{SortedMap, SortedSet};
use crate::time::Time;
use crate::wire::{self, Handshake, Message, Reserved};
use origin::Origins;
use peer::Peer;
use pieces::PieceStore;
use upload::Bucket;
use webseed::WebSeed;

/// The shell's handle for one peer connection; the engine never invents one.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct PeerKey(pub u64);

/// The engine's id for one web-seed fetch, echoed back with its result.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct FetchId(pub u64);

/// Tunables. The defaults follow WebTorrent where it has a number (INTEROP.md).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Config {
    /// Connections at most; more are closed at once.
    pub max_peers: usize,
    /// Peers we upload to at once, besides the optimistic slot.
    pub upload_slots: usize,
    /// A request unanswered this long goes to another peer.
    pub request_timeout: Duration,
    /// A connection that has not handshaken by then is closed.
    pub handshake_timeout: Duration,
    /// We send a keep-alive after this much silence.
    pub keepalive_interval: Duration,
    /// A peer silent this long is closed.
    pub idle_timeout: Duration,
    /// How often choking is reconsidered.
    pub rechoke_interval: Duration,
    /// The optimistic unchoke moves every this many rechokes.
    pub optimistic_every: u32,
    /// Requests in flight to one peer at most; also the `reqq` we advertise.
    pub max_requests_per_peer: u32,
    /// Blocks served to one peer per wake-up while its channel has room.
    pub serve_burst: usize,
    /// Web-seed fetches in flight at once.
    pub web_seed_parallel: usize,
    /// Longest random wait before an idle peer falls back to the web seed for
    /// a piece nobody has; the wait spreads a crowd's fetches over distinct
    /// pieces. Scaled up by the number of connected peers.
    pub web_seed_idle_wait: Duration,
    /// Bytes of consecutive pieces a peer is elected to fetch from the web
    /// seed together (see `crowd.rs`): about 256 KiB.
    pub web_seed_group: u32,
    /// Bytes one web-seed fetch asks for at most (consecutive urgent pieces).
    pub web_seed_max_run: u32,
    /// An urgent piece a neighbour has or is getting is taken from the web
    /// seed only once it is due within this; the elected fetcher does not wait.
    pub web_seed_fallback: Duration,
    /// The fallback time while no neighbour is connected yet but some are
    /// on their way (see [`Torrent::set_peers_coming`]): just in time.
    pub web_seed_fallback_coming: Duration,
    /// The elected fetcher of an urgent piece waits up to this (less the
    /// higher its rendezvous weight) before taking it from the web seed
    /// early, so that of several fans elected at the same moment in
    /// different neighbourhoods the first one's "getting" reaches the
    /// others before they fetch too (see `webseed.rs`). Zero (the
    /// default): at once. 1 s in the simulator: 2,000 fans 6 ms apart
    /// 1.66 -> 1.28 copies, but 10,000 fans 150 ms apart 1.072 -> 1.112
    /// (BENCHMARKS.md, issue 18): not yet a policy for every crowd.
    pub web_seed_stagger: Duration,
    /// See [`Torrent::set_peers_coming`].
    pub web_seed_hold_crowd: u64,
    /// See [`Torrent::set_peers_coming`].
    pub first_peer_wait: Duration,
    /// Requests to a peer for an urgent piece are given this long before
    /// the web seed may take it (when it is due within the fallback time);
    /// less as its deadline nears, but at least `peer_patience_min`.
    pub peer_patience: Duration,
    /// See `peer_patience`.
    pub peer_patience_min: Duration,
    /// A neighbour's "getting" is believed this long (or until its `have`).
    pub intent_ttl: Duration,
    /// A neighbour that connected this recently and has not yet said what
    /// it has and whether it fetches from the web seed holds our web-seed
    /// elections (see `crowd.rs`).
    pub crowd_settle: Duration,
    /// Use the web seed only while something plays (the browser: a page that
    /// joined on load but was never played costs the origin nothing).
    pub web_seed_needs_playback: bool,
    /// Longest message accepted from a peer.
    pub max_message_len: usize,
    /// Client name sent in the extended handshake (`v`).
    pub client_name: String,
    /// Bytes of verified pieces kept in memory at most; beyond it pieces
    /// far from the playhead are evicted (see `store.rs`). A track smaller
    /// than this is never evicted.
    pub memory_limit: u64,
    /// What we may upload: everything, a capped rate, or nothing (a fan
    /// on a metered link); see `upload.rs` and [`Torrent::set_upload`].
    pub upload: Upload,
    /// Piece picker tunables.
    pub picker: PickerConfig,
    /// Share verified piece bytes with the other engines given the same
    /// table (the simulator's many nodes in one process); `None`, each
    /// engine keeping its own, everywhere else. See `store.rs`.
    pub shared_pieces: Option<store::SharedPieces>,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            max_peers: 55,
            upload_slots: 20,
            request_timeout: Duration::from_secs(15),
            handshake_timeout: Duration::from_secs(25),
            keepalive_interval: Duration::from_secs(55),
            idle_timeout: Duration::from_secs(150),
            rechoke_interval: Duration::from_secs(10),
            optimistic_every: 3,
            max_requests_per_peer: 250,
            serve_burst: 16,
            web_seed_parallel: 2,
            web_seed_idle_wait: Duration::from_millis(1500),
            web_seed_group: 256 * 1024,
            web_seed_max_run: 2 * 1024 * 1024,
            web_seed_fallback: Duration::from_secs(2),
            web_seed_fallback_coming: Duration::from_millis(750),
            web_seed_stagger: Duration::ZERO,
            web_seed_hold_crowd: 2,
            first_peer_wait: Duration::from_millis(1500),
            peer_patience: Duration::from_millis(500),
            peer_patience_min: Duration::from_millis(150),
            intent_ttl: Duration::from_secs(10),
            crowd_settle: Duration::from_secs(2),
            web_seed_needs_playback: false,
            max_message_len: wire::DEFAULT_MAX_MESSAGE_LEN,
            client_name: concat!("fanswarm ", env!("CARGO_PKG_VERSION")).to_owned(),
            memory_limit: store::DEFAULT_MEMORY_LIMIT,
            upload: Upload::Unlimited,
            picker: PickerConfig::default(),
            shared_pieces: None,
        }
    }
}

/// What a torrent is, as far as the engine cares.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TorrentSpec {
    /// The swarm.
    pub info_hash: InfoHash,
    /// Bytes per piece (the last piece may be shorter).
    pub piece_length: u32,
    /// Bytes in the whole stream.
    pub total_length: u64,
    /// SHA-1 of each piece.
    pub piece_hashes: Vec<[u8; 20]>,
    /// The bencoded `info` dictionary, served to peers over ut_metadata.
    pub metadata: Option<Vec<u8>>,
    /// The torrent has a web seed (`url-list`) the shell can fetch from.
    pub web_seed: bool,
}

impl TorrentSpec {
    /// The spec of a parsed torrent file.
    pub fn from_metainfo(meta: &Metainfo) -> Self {
        TorrentSpec {
            info_hash: meta.info_hash,
            piece_length: meta.info.piece_length,
            total_length: meta.info.total_length(),
            piece_hashes: meta.info.pieces.clone(),
            metadata: Some(meta.info_bytes.clone()),
            web_seed: !meta.url_list.is_empty(),
        }
    }
}

/// The torrent cannot be run at all.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SpecError {
    /// Piece length 0, no pieces, or a hash count that does not match the length.
    #[error(
        "{pieces} piece hashes do not describe {total_length} bytes in pieces of {piece_length}"
    )]
    Inconsistent {
        /// Hashes given.
        pieces: usize,
        /// Bytes in the stream.
        total_length: u64,
        /// Bytes per piece.
        piece_length: u32,
    },
}

/// Things worth knowing that need no action.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    /// A connection finished its handshake.
    PeerConnected {
        /// The connection.
        peer: PeerKey,
        /// Who it is.
        id: PeerId,
    },
    /// Bytes of a block we wanted arrived.
    Downloaded {
        /// From whom.
        source: Source,
        /// How many.
        bytes: u32,
    },
    /// We served a block.
    Uploaded {
        /// To whom.
        peer: PeerKey,
        /// How many.
        bytes: u32,
    },
    /// A piece passed its SHA-1 check; its bytes can be played and re-served.
    PieceVerified {
        /// Which.
        piece: u32,
    },
    /// A piece failed its SHA-1 check and will be fetched again.
    PieceFailed {
        /// Which.
        piece: u32,
    },
    /// A peer is banned for sending corrupt data.
    PeerBanned {
        /// Who.
        id: PeerId,
    },
    /// The web seed sent data that failed verification.
    WebSeedCorrupt {
        /// Which piece.
        piece: u32,
    },
    /// Every piece is verified.
    Done,
    /// Joining by a bare magnet: still no metadata (from
    /// [`crate::join::MetadataFetch`], never from a running torrent).
    MetadataWaiting {
        /// Since the join started.
        waited: Duration,
        /// Peers connected and handshaken.
        peers: usize,
        /// Of those, how many said they have the metadata (ut_metadata
        /// with a size); 0 with peers connected means none of them can help.
        offering: usize,
    },
}

/// One thing the shell must do, or the time to call back.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Output {
    /// Write these bytes to the peer's channel, in order.
    Send {
        /// To whom.
        peer: PeerKey,
        /// Bytes of one or more whole wire messages.
        data: Vec<u8>,
    },
    /// Close this connection; the engine has forgotten it already.
    Close {
        /// Which.
        peer: PeerKey,
        /// Why.
        reason: PeerError,
    },
    /// Fetch `length` bytes at `offset` of the torrent's stream from the web
    /// seed (map to files and HTTP Range), then call
    /// [`Torrent::handle_web_seed_data`] or [`Torrent::handle_web_seed_error`].
    FetchWebSeed {
        /// Echo this back.
        id: FetchId,
        /// Byte offset in the stream.
        offset: u64,
        /// Bytes.
        length: u32,
    },
    /// Something happened.
    Event(Event),
    /// Nothing more to do now: call [`Torrent::handle_timeout`] at this time
    /// (or earlier, with any other input).
    Timeout(Time),
}

/// Running totals, for the shell's stats and the simulator's checks.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Stats {
    /// Useful bytes received from peers: blocks of pieces that verified or
    /// are still being assembled (a failed piece's bytes move to `wasted`).
    pub from_peers: u64,
    /// Useful bytes received from the web seed, counted the same way.
    pub from_web_seed: u64,
    /// Bytes of pieces the shell held already and handed in verified
    /// ([`Torrent::import_piece`]: e.g. a browser's start cache).
    pub imported: u64,
    /// Bytes received that were not needed (duplicates, corrupt, unrequested).
    pub wasted: u64,
    /// Bytes served to peers.
    pub uploaded: u64,
    /// Pieces verified.
    pub verified_pieces: u32,
    /// Pieces in the torrent.
    pub total_pieces: u32,
    /// Connections that finished the handshake.
    pub peers: usize,
    /// Peer ids banned.
    pub banned: usize,
    /// Verified pieces whose bytes were evicted to stay within the memory bound.
    pub evicted_pieces: u32,
}

/// One torrent's engine. See the module documentation for how to drive it.
#[derive(Debug)]
pub struct Torrent {
    config: Config,
    spec: TorrentSpec,
    our_id: PeerId,
    now: Time,
    rng: fastrand::Rng,
    picker: Picker,
    store: PieceStore,
    /// Verified pieces whose bytes were evicted (always a subset of `have`).
    evicted: Bitfield,
    origins: Origins,
    /// Pieces we told neighbours we are getting (see `crowd.rs`).
    intents: Bitfield,
    /// Bumped whenever the wanted pieces change, so neighbours hear our
    /// new selection ([`Torrent::sync_crowd_state`]).
    wanted_generation: u32,
    peers: SortedMap<PeerKey, Peer>,
    banned: SortedSet<PeerId>,
    web_seed: WebSeed,
    outputs: VecDeque<Output>,
    stats: Stats,
    next_rechoke: Time,
    rechokes: u32,
    optimistic: Option<PeerKey>,
    done_announced: bool,
    /// The shell is connecting to peers of a crowd (see `crowd.rs`): until
    /// one is connected we are nobody's elected web-seed fetcher.
    peers_coming: bool,
    /// Other peers in the swarm, by the tracker (see `set_peers_coming`).
    crowd_size: u64,
    /// When this engine started.
    started: Time,
    /// Credit under [`Config::upload`]'s cap.
    upload_bucket: Bucket,
}

impl Torrent {
    /// An engine for `spec` with nothing downloaded. `seed` feeds all of its
    /// random choices, so a run is reproducible.
    pub fn new(
        config: Config,
        spec: TorrentSpec,
        our_id: PeerId,
        seed: u64,
        now: Time,
    ) -> Result<Self, SpecError> {
        let expected = crate::picker::piece_count(spec.piece_length, spec.total_length);
        if spec.piece_length == 0 || expected == 0 || expected as usize != spec.piece_hashes.len() {
            return Err(SpecError::Inconsistent {
                pieces: spec.piece_hashes.len(),
                total_length: spec.total_length,
                piece_length: spec.piece_length,
            });
        }
        let mut rng = fastrand::Rng::with_seed(seed);
        let picker = Picker::new(
            config.picker.clone(),
            spec.piece_length,
            spec.total_length,
            &mut rng,
        );
        let store = PieceStore::new(
            spec.piece_length,
            spec.total_length,
            spec.piece_hashes.clone(),
            config.memory_limit,
            config.shared_pieces.clone(),
        );
        let stats = Stats {
            total_pieces: expected,
            ..Stats::default()
        };
        Ok(Torrent {
            upload_bucket: Bucket::new(config.upload.cap().unwrap_or(0), now),
            web_seed: WebSeed::new(spec.web_seed),
            next_rechoke: now + config.rechoke_interval,
            config,
            spec,
            our_id,
            now,
            rng,
            picker,
            store,
            evicted: Bitfield::empty(expected),
            origins: Origins::default(),
            intents: Bitfield::empty(expected),
            wanted_generation: 0,
            peers: SortedMap::new(),
            banned: SortedSet::new(),
            outputs: VecDeque::new(),
            stats,
            rechokes: 0,
            optimistic: None,
            done_announced: false,
            peers_coming: false,
            crowd_size: 0,
            started: now,
        })
    }

    /// Our peer id.
    pub fn peer_id(&self) -> PeerId {
        self.our_id
    }

    /// The swarm this engine is in.
    pub fn info_hash(&self) -> InfoHash {
        self.spec.info_hash
    }

    /// Hands the engine a piece the shell already holds (a seeder's file);
    /// it is kept only if its hash matches. Returns whether it was kept.
    pub fn import_piece(&mut self, piece: u32, data: &[u8]) -> bool {
        if self.picker.have().has(piece) || !self.store.import(piece, data) {
            return false;
        }
        self.origins.record(piece, PieceOrigin::Imported);
        self.stats.imported += data.len() as u64;
        self.on_piece_verified(piece);
        true
    }

    /// A data channel to a peer opened. We send our handshake at once, as
    /// both sides do on WebRTC.
    pub fn add_peer(&mut self, now: Time, key: PeerKey) {
        self.now = now;
        if self.peers.contains_key(&key) {
            return;
        }
        if self.peers.len() >= self.config.max_peers {
            self.outputs.push_back(Output::Close {
                peer: key,
                reason: PeerError::TooManyPeers,
            });
            return;
        }
        let peer = Peer::new(now, self.picker.piece_count(), self.config.max_message_len);
        self.peers.insert(key, peer);
        let handshake = Handshake {
            reserved: Reserved::FANSWARM,
            info_hash: self.spec.info_hash,
            peer_id: self.our_id,
        };
        self.send_raw(key, handshake.encode().to_vec());
    }

    /// Takes over a connection from a [`crate::join::MetadataFetch`]: our
    /// handshake went out already, and `received` is what the peer sent
    /// (its handshake first), replayed as if it arrived now. Bitfields and
    /// haves sent before the piece count was known are checked here.
    pub fn adopt_peer(&mut self, now: Time, key: PeerKey, received: &[u8]) {
        self.now = now;
        if self.peers.contains_key(&key) {
            return;
        }
        if self.peers.len() >= self.config.max_peers {
            self.outputs.push_back(Output::Close {
                peer: key,
                reason: PeerError::TooManyPeers,
            });
            return;
        }
        let peer = Peer::new(now, self.picker.piece_count(), self.config.max_message_len);
        self.peers.insert(key, peer);
        self.handle_peer_data(now, key, received);
    }

    /// Bytes arrived on a peer's channel.
    pub fn handle_peer_data(&mut self, now: Time, key: PeerKey, bytes: &[u8]) {
        self.now = now;
        let Some(peer) = self.peers.get_mut(&key) else {
            return;
        };
        peer.last_received = now;
        peer.decoder.push(bytes);
        loop {
            let Some(peer) = self.peers.get_mut(&key) else {
                return; // closed while handling an earlier frame
            };
            match peer.decoder.next() {
                Ok(Some(frame)) => {
                    if let Err(reason) = self.on_frame(key, frame) {
                        self.close(key, reason);
                        return;
                    }
                }
                Ok(None) => break,
                Err(e) => {
                    self.close(key, PeerError::Wire(e));
                    return;
                }
            }
        }
        self.fill_requests(key);
        self.serve(key);
        self.schedule_web_seed();
    }

    /// A peer's connection went away (closed by it, or failed).
    pub fn handle_peer_closed(&mut self, now: Time, key: PeerKey) {
        self.now = now;
        self.forget_peer(key);
        self.request_everywhere();
    }

    /// The shell's send buffer for a peer crossed its high-water mark
    /// (`true`) or drained below the low mark (`false`).
    pub fn set_send_blocked(&mut self, now: Time, key: PeerKey, blocked: bool) {
        self.now = now;
        if let Some(peer) = self.peers.get_mut(&key) {
            peer.send_blocked = blocked;
        }
        if !blocked {
            self.serve(key);
        }
    }

    /// Whether connections to other peers of the swarm are being made (the
    /// tracker said there are others, or a remote is answering us). While
    /// that is so and no peer is connected yet, the web seed is asked only
    /// for what the player needs before a connection could deliver it
    /// (see `crowd.rs`), not for the whole urgent window.
    ///
    /// `crowd` is how many other peers the tracker says the swarm has (0
    /// when it has not said). In a crowd of at least `web_seed_hold_crowd`,
    /// a peer with no neighbour yet asks the web seed for nothing, not even
    /// what it needs now, until `first_peer_wait` after it started: its
    /// neighbours have it, and a thousand first pieces from the web seed
    /// would cost the artist more copies than the track itself.
    pub fn set_peers_coming(&mut self, now: Time, coming: bool, crowd: u64) {
        self.now = now;
        if (self.peers_coming, self.crowd_size) != (coming, crowd) {
            self.peers_coming = coming;
            self.crowd_size = crowd;
            self.schedule_web_seed();
        }
    }

    /// Pieces within `bytes` after the playhead are due now (see
    /// [`crate::picker::Picker::set_start_window`]); 0 takes it back.
    pub fn set_start_window(&mut self, now: Time, bytes: u64) {
        self.now = now;
        self.picker.set_start_window(bytes);
        self.request_everywhere();
        self.schedule_web_seed();
    }

    /// The player moved (or stopped: `None`). Pieces near `offset` become urgent.
    pub fn set_playback(&mut self, now: Time, playback: Option<Playback>) {
        self.now = now;
        self.picker.set_playback(playback);
        self.revive_near_playhead();
        self.sync_crowd_state();
        self.request_everywhere();
        self.schedule_web_seed();
    }

    /// Fetch only these pieces (ranges, clipped to the torrent), and
    /// `look_ahead` ones besides at low priority: an album's one-track
    /// player wants its file's pieces, then the next file's first ones,
    /// and `due_by` ones due when the stream reaches the offset given with
    /// them (the next file's last page, due at its start). Every piece had
    /// is still served. See the picker's "Selection".
    pub fn set_wanted(
        &mut self,
        now: Time,
        wanted: &[Range<u32>],
        look_ahead: &[Range<u32>],
        due_by: &[(Range<u32>, u64)],
    ) {
        self.now = now;
        let before = self.picker.wanted_runs();
        self.picker.set_wanted(wanted, look_ahead, due_by);
        self.wanted_changed(before);
    }

    /// Fetch every piece again (the default).
    pub fn want_all(&mut self, now: Time) {
        self.now = now;
        let before = self.picker.wanted_runs();
        self.picker.want_all();
        self.wanted_changed(before);
    }

    /// The wanted pieces were `before` and may have changed.
    fn wanted_changed(&mut self, before: Option<Vec<Range<u32>>>) {
        if self.picker.wanted_runs() != before {
            self.wanted_generation = self.wanted_generation.wrapping_add(1);
            self.sync_crowd_state();
        }
        let keys: Vec<PeerKey> = self.peers.keys().copied().collect();
        for key in keys {
            if self.peers.get(&key).is_some_and(|p| p.is_connected()) {
                self.update_interest(key);
            }
        }
        self.request_everywhere();
        self.schedule_web_seed();
    }

    /// Whether `piece` is wanted and missing.
    pub fn wants(&self, piece: u32) -> bool {
        self.picker.wants(piece)
    }

    /// Every wanted piece is verified (every piece, without a selection).
    pub fn is_wanted_complete(&self) -> bool {
        self.picker.is_wanted_complete()
    }

    /// The time asked for in [`Output::Timeout`] came (or any time later).
    pub fn handle_timeout(&mut self, now: Time) {
        self.now = now;
        self.check_peer_timers();
        if now >= self.next_rechoke {
            self.rechoke();
        }
        self.sync_crowd_state();
        self.request_everywhere();
        self.schedule_web_seed();
        let keys: Vec<PeerKey> = self.peers.keys().copied().collect();
        for key in keys {
            self.serve(key);
        }
    }

    /// The next thing to do; call until it returns [`Output::Timeout`].
    pub fn poll(&mut self) -> Output {
        if let Some(out) = self.outputs.pop_front() {
            return out;
        }
        Output::Timeout(self.next_wake())
    }

    /// Verified bytes of `piece`, for playback and for writing to disk.
    pub fn piece(&self, piece: u32) -> Option<&[u8]> {
        self.store.verified(piece)
    }

    /// Where the bytes of verified `piece` came from (peers, the web seed,
    /// both, or the shell); `None` while it is not verified. For the
    /// player's piece map.
    pub fn piece_origin(&self, piece: u32) -> Option<PieceOrigin> {
        self.origins.get(piece)
    }

    /// What each connected peer means for `piece` right now, as text: has
    /// it or not, chokes us or not, our requests for it and their age, its
    /// "getting". For diagnosing why a piece came from where it did.
    pub fn explain_piece(&self, piece: u32) -> Vec<String> {
        let now = self.now;
        let us = format!(
            "us: peers coming {}, elected {}, due {:?}",
            self.peers_coming,
            self.elected(piece),
            self.picker.due_in(piece)
        );
        std::iter::once(us)
            .chain(self.peers.iter()
            .map(|(key, p)| {
                let asked: Vec<u64> = p
                    .outstanding
                    .iter()
                    .filter(|o| o.block.piece == piece)
                    .map(|o| now.since(o.since).as_millis() as u64)
                    .collect();
                format!(
                    "{key:?} has {} choking {} interested {:?} asked {asked:?} getting {:?} outstanding {}",
                    p.pieces.has(piece),
                    p.peer_choking,
                    p.interested_since.map(|t| now.since(t).as_millis()),
                    p.crowd.getting.get(&piece).map(|t| now.since(*t).as_millis()),
                    p.outstanding.len(),
                )
            }))
            .collect()
    }

    /// How long until the player needs `piece`, if something plays.
    pub fn due_in(&self, piece: u32) -> Option<Duration> {
        self.picker.due_in(piece)
    }

    /// Pieces we have.
    pub fn have(&self) -> &Bitfield {
        self.picker.have()
    }

    /// Every piece is verified.
    pub fn is_complete(&self) -> bool {
        self.picker.is_complete()
    }

    /// Whether this peer id is banned here.
    pub fn is_banned(&self, id: &PeerId) -> bool {
        self.banned.contains(id)
    }

    /// Running totals.
    pub fn stats(&self) -> Stats {
        Stats {
            peers: self.peers.values().filter(|p| p.is_connected()).count(),
            banned: self.banned.len(),
            ..self.stats.clone()
        }
    }

    /// Bytes per piece.
    pub fn piece_length(&self) -> u32 {
        self.spec.piece_length
    }

    /// Bytes in the stream.
    pub fn total_length(&self) -> u64 {
        self.spec.total_length
    }

    fn send(&mut self, key: PeerKey, message: &Message) {
        self.send_raw(key, message.to_bytes());
    }

    fn send_raw(&mut self, key: PeerKey, data: Vec<u8>) {
        if let Some(peer) = self.peers.get_mut(&key) {
            peer.last_sent = self.now;
        }
        // Coalesce with a send to the same peer still in the queue tail.
        if let Some(Output::Send { peer, data: queued }) = self.outputs.back_mut()
            && *peer == key
        {
            queued.extend_from_slice(&data);
            return;
        }
        self.outputs.push_back(Output::Send { peer: key, data });
    }

    fn event(&mut self, event: Event) {
        self.outputs.push_back(Output::Event(event));
    }

    /// Closes a connection and forgets it.
    fn close(&mut self, key: PeerKey, reason: PeerError) {
        if self.peers.contains_key(&key) {
            self.forget_peer(key);
            self.outputs.push_back(Output::Close { peer: key, reason });
        }
    }

    fn forget_peer(&mut self, key: PeerKey) {
        let Some(peer) = self.peers.remove(&key) else {
            return;
        };
        self.picker.remove_peer_pieces(&peer.pieces);
        for o in &peer.outstanding {
            self.picker.unrequest(o.block);
        }
        if self.optimistic == Some(key) {
            self.optimistic = None;
        }
    }

    fn next_wake(&self) -> Time {
        // Requests left after a serving burst, to a peer whose channel has
        // room: come straight back (the shell yields to its event loop first,
        // so its send-buffer watermarks are seen between bursts).
        // Under an upload cap, when the bucket has credit again.
        let can_serve = |p: &Peer| !p.queued.is_empty() && !p.send_blocked && !p.am_choking;
        let capped_until = if self.peers.values().any(can_serve) {
            let ready = self.upload_ready_at();
            if ready <= self.now {
                return self.now;
            }
            Some(ready)
        } else {
            None
        };
        let busy = !self.is_complete() || self.peers.values().any(|p| !p.queued.is_empty());
        let tick = if busy {
            Duration::from_millis(250)
        } else {
            Duration::from_secs(1)
        };
        let mut at = (self.now + tick).min(self.next_rechoke);
        if let Some(t) = self.web_seed.wake_at() {
            at = at.min(t.max(self.now));
        }
        if let Some(t) = self.web_seed_held_until() {
            at = at.min(t);
        }
        if let Some(t) = capped_until {
            at = at.min(t);
        }
        at
    }
}
