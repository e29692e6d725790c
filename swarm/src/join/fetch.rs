//! Fetching a magnet's info dictionary from peers (BEP 9 over BEP 10),
//! sans-IO, keeping every connection so the torrent can adopt it.
//!
//! Each connection handshakes (BEP 3, our handshake at once as on WebRTC),
//! sends our extended handshake and waits for the peer's. Peers that speak
//! `ut_metadata` and state a `metadata_size` within the bound are asked for
//! 16 KiB metadata pieces, a few at a time, spread over all of them. Whatever
//! else a peer sends (its extended handshake, bitfield, haves, unchoke…) is
//! kept byte for byte as its *replay*: when the metadata is complete, the
//! [`crate::engine::Torrent`] is built and each connection handed to it with
//! that replay, so no WebRTC connection (a signalling round trip each) is
//! lost to the metadata phase.
//!
//! Trust: the assembled bytes count only if their SHA-1 is the info hash. If
//! one peer sent every piece of a failed assembly it is dropped at once;
//! after a mixed failure the next attempt takes every piece from one peer and
//! the digests of the failed pieces judge the others once the good bytes are
//! known (the engine's smart ban, for metadata).

use std::collections::VecDeque;
use std::time::Duration;

use sha1::{Digest, Sha1};

mod pieces;

use crate::engine::{Event, Output, PeerKey};
use crate::error::{MetadataPeerError, PeerError};
use crate::ids::{InfoHash, PeerId};
use crate::sorted::{SortedMap, SortedSet};
use crate::time::Time;
use crate::wire::extension::{self, ExtendedHandshake};
use crate::wire::metadata::{MetadataAssembler, MetadataMessage};
use crate::wire::{self, Decoder, Frame, Handshake, Message, Reserved};

/// Our extension id for ut_metadata: the same as the engine's, so what a
/// peer learnt from our first extended handshake stays true after handover.
pub(crate) const UT_METADATA_ID: u8 = crate::engine::UT_METADATA_ID;
/// Likewise for lt_donthave.
const LT_DONTHAVE_ID: u8 = crate::engine::LT_DONTHAVE_ID;

/// Tunables of the metadata phase.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FetchConfig {
    /// Largest `metadata_size` we accept; a track's info dictionary is a few
    /// KiB, so a peer claiming more is refused (and dropped).
    pub max_metadata_size: u64,
    /// A metadata request unanswered this long goes to another peer, and
    /// this peer is not asked again.
    pub request_timeout: Duration,
    /// A connection that has not handshaken by then is closed.
    pub handshake_timeout: Duration,
    /// A peer that sent nothing for this long is closed.
    pub idle_timeout: Duration,
    /// Metadata requests in flight to one peer at most.
    pub requests_per_peer: usize,
    /// Bytes kept per connection for the handover; a peer sending more
    /// before the metadata is known is dropped.
    pub max_replay: usize,
    /// Connections at most; more are closed at once.
    pub max_peers: usize,
    /// Longest wire message accepted.
    pub max_message_len: usize,
    /// Client name sent in the extended handshake (`v`).
    pub client_name: String,
    /// With no metadata this long after the start, an
    /// [`Event::MetadataWaiting`] tells the shell (so a user is not left
    /// staring at a silent join); again after twice as long, and so on, at
    /// most [`MAX_WAITING_NOTICE_GAP`] apart. Zero: never.
    pub waiting_notice: Duration,
}

/// The longest gap between two [`Event::MetadataWaiting`] notices.
pub const MAX_WAITING_NOTICE_GAP: Duration = Duration::from_secs(300);

impl Default for FetchConfig {
    fn default() -> Self {
        FetchConfig {
            max_metadata_size: 8 * 1024 * 1024,
            request_timeout: Duration::from_secs(10),
            handshake_timeout: Duration::from_secs(25),
            idle_timeout: Duration::from_secs(150),
            requests_per_peer: 2,
            max_replay: 256 * 1024,
            max_peers: 55,
            max_message_len: wire::DEFAULT_MAX_MESSAGE_LEN,
            client_name: concat!("fanswarm ", env!("CARGO_PKG_VERSION")).to_owned(),
            waiting_notice: Duration::from_secs(15),
        }
    }
}

/// A connection handed from the fetch to the torrent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Handover {
    /// The shell's key of the connection.
    pub key: PeerKey,
    /// Every byte the peer sent except our ut_metadata traffic, in order,
    /// ending with any partial message: for `Torrent::adopt_peer`.
    pub received: Vec<u8>,
}

/// The metadata phase of a magnet join. Driven like the engine: inputs with
/// the time, then [`MetadataFetch::poll`] until [`Output::Timeout`]. Only
/// `Send`, `Close`, `Timeout` and [`Event::MetadataWaiting`] come out.
#[derive(Debug)]
pub struct MetadataFetch {
    config: FetchConfig,
    info_hash: InfoHash,
    our_id: PeerId,
    now: Time,
    started: Time,
    /// When the next [`Event::MetadataWaiting`] is due, and the gap after it.
    next_notice: Option<(Time, Duration)>,
    peers: SortedMap<PeerKey, FetchPeer>,
    /// The size we committed to (the first acceptable one stated).
    size: Option<u64>,
    assembler: Option<MetadataAssembler>,
    /// Who sent each piece of the current attempt.
    senders: SortedMap<u32, PeerKey>,
    /// Digests of pieces of failed attempts: (piece, sender, SHA-1).
    suspects: Vec<(u32, PeerKey, [u8; 20])>,
    /// After a mixed failure, every piece comes from one peer.
    single_source: bool,
    /// Peer ids that sent corrupt metadata: refused if they come back.
    banned: SortedSet<PeerId>,
    done: Option<Vec<u8>>,
    outputs: VecDeque<Output>,
}

#[derive(Debug)]
struct FetchPeer {
    decoder: Decoder,
    id: Option<PeerId>,
    connected_at: Time,
    last_received: Time,
    /// Their ut_metadata id, once their extended handshake named one.
    ut_metadata: Option<u8>,
    /// Their `metadata_size`, once stated.
    metadata_size: Option<u64>,
    /// Rejected or timed out: not asked again.
    unhelpful: bool,
    /// Metadata pieces asked of this peer, with the time.
    outstanding: Vec<(u32, Time)>,
    /// Bytes for the handover: whole frames kept so far.
    replay: Vec<u8>,
    /// Raw bytes pushed into the decoder and not yet returned as frames.
    pending: Vec<u8>,
}

impl MetadataFetch {
    /// A fetch for `info_hash` with no connection yet.
    pub fn new(config: FetchConfig, info_hash: InfoHash, our_id: PeerId, now: Time) -> Self {
        let notice = config.waiting_notice;
        MetadataFetch {
            next_notice: (!notice.is_zero()).then(|| (now + notice, notice)),
            started: now,
            config,
            info_hash,
            our_id,
            now,
            peers: SortedMap::new(),
            size: None,
            assembler: None,
            senders: SortedMap::new(),
            suspects: Vec::new(),
            single_source: false,
            banned: SortedSet::new(),
            done: None,
            outputs: VecDeque::new(),
        }
    }

    /// A data channel opened: our handshake goes out at once.
    pub fn add_peer(&mut self, now: Time, key: PeerKey) {
        self.now = now;
        if self.peers.contains_key(&key) || self.done.is_some() {
            return;
        }
        if self.peers.len() >= self.config.max_peers {
            self.outputs.push_back(Output::Close {
                peer: key,
                reason: PeerError::TooManyPeers,
            });
            return;
        }
        self.peers.insert(
            key,
            FetchPeer {
                decoder: Decoder::new(self.config.max_message_len),
                id: None,
                connected_at: now,
                last_received: now,
                ut_metadata: None,
                metadata_size: None,
                unhelpful: false,
                outstanding: Vec::new(),
                replay: Vec::new(),
                pending: Vec::new(),
            },
        );
        let handshake = Handshake {
            reserved: Reserved::FANSWARM,
            info_hash: self.info_hash,
            peer_id: self.our_id,
        };
        self.send_raw(key, handshake.encode().to_vec());
    }

    /// Bytes arrived on a peer's channel.
    pub fn handle_peer_data(&mut self, now: Time, key: PeerKey, bytes: &[u8]) {
        self.now = now;
        let Some(peer) = self.peers.get_mut(&key) else {
            return;
        };
        peer.last_received = now;
        peer.decoder.push(bytes);
        peer.pending.extend_from_slice(bytes);
        if let Err(reason) = self.read_frames(key) {
            self.close(key, reason);
        }
        self.request_pieces();
    }

    /// A peer's connection went away.
    pub fn handle_peer_closed(&mut self, now: Time, key: PeerKey) {
        self.now = now;
        self.forget(key);
        self.request_pieces();
    }

    /// The time asked for in [`Output::Timeout`] came (or any time later).
    pub fn handle_timeout(&mut self, now: Time) {
        self.now = now;
        let cfg = &self.config;
        let mut to_close = Vec::new();
        for (key, peer) in &mut self.peers {
            if peer.id.is_none() && now.since(peer.connected_at) >= cfg.handshake_timeout {
                to_close.push((*key, PeerError::Timeout("handshake")));
            } else if now.since(peer.last_received) >= cfg.idle_timeout {
                to_close.push((*key, PeerError::Timeout("peer silent")));
            } else if peer
                .outstanding
                .iter()
                .any(|(_, since)| now.since(*since) >= cfg.request_timeout)
            {
                // Slow or silent about metadata: ask others. It stays
                // connected: it may still be a good source of pieces.
                peer.outstanding.clear();
                peer.unhelpful = true;
            }
        }
        for (key, reason) in to_close {
            self.close(key, reason);
        }
        self.request_pieces();
        self.notice_waiting(now);
    }

    /// Tells the shell the metadata is still missing, when a notice is due.
    fn notice_waiting(&mut self, now: Time) {
        let Some((due, gap)) = self.next_notice else {
            return;
        };
        if self.done.is_some() {
            self.next_notice = None;
            return;
        }
        if now < due {
            return;
        }
        let handshaken = self.peers.values().filter(|p| p.id.is_some());
        let offering = handshaken
            .clone()
            .filter(|p| p.ut_metadata.is_some() && p.metadata_size.is_some())
            .count();
        self.outputs
            .push_back(Output::Event(Event::MetadataWaiting {
                waited: now.since(self.started),
                peers: handshaken.count(),
                offering,
            }));
        let next_gap = (gap * 2).min(MAX_WAITING_NOTICE_GAP);
        self.next_notice = Some((now + next_gap, next_gap));
    }

    /// The next thing to do; call until it returns [`Output::Timeout`].
    pub fn poll(&mut self) -> Output {
        if let Some(out) = self.outputs.pop_front() {
            return out;
        }
        let mut at = self.now + Duration::from_secs(1);
        if let (None, Some((due, _))) = (&self.done, self.next_notice) {
            at = at.min(due);
        }
        for peer in self.peers.values() {
            for (_, since) in &peer.outstanding {
                at = at.min(*since + self.config.request_timeout);
            }
        }
        Output::Timeout(at.max(self.now))
    }

    /// Metadata from elsewhere (the magnet's `xs` torrent, a cache): kept
    /// and the fetch ends if it hashes to the info hash. Returns whether it did.
    pub fn provide_metadata(&mut self, bytes: &[u8]) -> bool {
        if self.done.is_some() {
            return true;
        }
        if Sha1::digest(bytes).as_slice() != self.info_hash.as_bytes() {
            return false;
        }
        for peer in self.peers.values_mut() {
            peer.outstanding.clear();
        }
        self.assembler = None;
        self.done = Some(bytes.to_vec());
        true
    }

    /// The verified info dictionary, once assembled.
    pub fn metadata(&self) -> Option<&[u8]> {
        self.done.as_deref()
    }

    /// The size we are assembling, once a peer stated an acceptable one.
    pub fn metadata_size(&self) -> Option<u64> {
        self.size
    }

    /// Connections, for the shell's stats.
    pub fn peer_count(&self) -> usize {
        self.peers.len()
    }

    /// The swarm.
    pub fn info_hash(&self) -> InfoHash {
        self.info_hash
    }

    /// Our peer id.
    pub fn peer_id(&self) -> PeerId {
        self.our_id
    }

    /// Ends the fetch: the verified metadata (if complete) and every
    /// connection with the bytes the torrent must see, plus any output not
    /// drained yet (sends to deliver before the torrent's own).
    pub fn finish(self) -> (Option<Vec<u8>>, Vec<Handover>, VecDeque<Output>) {
        let handovers = self
            .peers
            .into_iter()
            .map(|(key, mut peer)| {
                peer.replay.extend_from_slice(&peer.pending);
                Handover {
                    key,
                    received: peer.replay,
                }
            })
            .collect();
        (self.done, handovers, self.outputs)
    }

    /// Decodes and handles every whole frame buffered for `key`.
    fn read_frames(&mut self, key: PeerKey) -> Result<(), PeerError> {
        loop {
            let Some(peer) = self.peers.get_mut(&key) else {
                return Ok(()); // closed while handling an earlier frame
            };
            let before = peer.decoder.buffered_len();
            let Some(frame) = peer.decoder.next()? else {
                return Ok(());
            };
            let used = before - peer.decoder.buffered_len();
            let raw: Vec<u8> = peer.pending.drain(..used.min(peer.pending.len())).collect();
            if !self.on_frame(key, frame)? {
                continue;
            }
            let limit = self.config.max_replay;
            let Some(peer) = self.peers.get_mut(&key) else {
                return Ok(());
            };
            if peer.replay.len() + raw.len() > limit {
                return Err(MetadataPeerError::ReplayTooLong(limit).into());
            }
            peer.replay.extend_from_slice(&raw);
        }
    }

    /// Handles one frame; `Ok(true)` keeps its bytes for the handover.
    fn on_frame(&mut self, key: PeerKey, frame: Frame) -> Result<bool, PeerError> {
        match frame {
            Frame::Handshake(h) => self.on_handshake(key, h).map(|()| true),
            Frame::Message(Message::Extended { id, payload }) => {
                if id == extension::HANDSHAKE_ID {
                    self.on_extended_handshake(key, &payload)?;
                    Ok(true)
                } else if id == UT_METADATA_ID {
                    self.on_metadata(key, &payload)?;
                    Ok(false)
                } else {
                    Ok(true)
                }
            }
            Frame::Message(_) => Ok(true),
        }
    }

    fn on_handshake(&mut self, key: PeerKey, h: Handshake) -> Result<(), PeerError> {
        if h.info_hash != self.info_hash {
            return Err(PeerError::WrongInfoHash(h.info_hash));
        }
        if h.peer_id == self.our_id {
            return Err(PeerError::SelfConnection);
        }
        if self.banned.contains(&h.peer_id) {
            return Err(PeerError::Banned(h.peer_id));
        }
        if self
            .peers
            .iter()
            .any(|(k, p)| *k != key && p.id == Some(h.peer_id))
        {
            return Err(PeerError::DuplicatePeerId(h.peer_id));
        }
        if let Some(peer) = self.peers.get_mut(&key) {
            peer.id = Some(h.peer_id);
        }
        if h.reserved.extension_protocol() {
            let mut ours = ExtendedHandshake::default();
            ours.m
                .insert(extension::UT_METADATA.to_owned(), UT_METADATA_ID);
            ours.m
                .insert(extension::LT_DONTHAVE.to_owned(), LT_DONTHAVE_ID);
            ours.v = Some(self.config.client_name.clone());
            self.send(key, &ours.to_message());
        }
        Ok(())
    }

    fn on_extended_handshake(&mut self, key: PeerKey, payload: &[u8]) -> Result<(), PeerError> {
        // A malformed extended handshake only costs the peer its extensions.
        let Ok(theirs) = ExtendedHandshake::decode(payload) else {
            return Ok(());
        };
        if let Some(size) = theirs.metadata_size {
            let limit = self.config.max_metadata_size;
            if size == 0 || size > limit {
                return Err(MetadataPeerError::TooLarge { size, limit }.into());
            }
        }
        if let Some(peer) = self.peers.get_mut(&key) {
            peer.ut_metadata = theirs.id_of(extension::UT_METADATA);
            peer.metadata_size = theirs.metadata_size;
        }
        if self.size.is_none() && theirs.id_of(extension::UT_METADATA).is_some() {
            self.commit_size(theirs.metadata_size);
        }
        Ok(())
    }

    fn on_metadata(&mut self, key: PeerKey, payload: &[u8]) -> Result<(), PeerError> {
        let Ok(message) = MetadataMessage::decode(payload) else {
            return Ok(()); // unreadable metadata traffic is ignored, as the engine does
        };
        match message {
            MetadataMessage::Request { piece } => {
                // We have no metadata to give yet.
                if let Some(their_id) = self.peers.get(&key).and_then(|p| p.ut_metadata) {
                    let reject = MetadataMessage::Reject { piece };
                    self.send(key, &reject.to_message(their_id));
                }
                Ok(())
            }
            MetadataMessage::Reject { piece } => {
                if let Some(peer) = self.peers.get_mut(&key) {
                    peer.outstanding.retain(|(p, _)| *p != piece);
                    peer.unhelpful = true;
                }
                Ok(())
            }
            MetadataMessage::Data {
                piece,
                total_size,
                data,
            } => self.on_metadata_piece(key, piece, total_size, &data),
        }
    }

    fn send(&mut self, key: PeerKey, message: &Message) {
        self.send_raw(key, message.to_bytes());
    }

    fn send_raw(&mut self, key: PeerKey, data: Vec<u8>) {
        if let Some(Output::Send { peer, data: queued }) = self.outputs.back_mut()
            && *peer == key
        {
            queued.extend_from_slice(&data);
            return;
        }
        self.outputs.push_back(Output::Send { peer: key, data });
    }

    fn close(&mut self, key: PeerKey, reason: PeerError) {
        if self.peers.contains_key(&key) {
            self.forget(key);
            self.outputs.push_back(Output::Close { peer: key, reason });
        }
    }
}
