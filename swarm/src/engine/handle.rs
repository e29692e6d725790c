//! What the engine does with each frame a peer sends, and with the blocks
//! that result: requesting, serving, verifying, banning.

use crate::bitfield::Bitfield;
use crate::wire::extension::{self, ExtendedHandshake};
use crate::wire::metadata::{MetadataMessage, metadata_piece};
use crate::wire::{BlockRef, Frame, Handshake, MAX_REQUEST_LEN, Message};

use super::crowd;
use super::origin::Source;
use super::peer::{Outstanding, Phase};
use super::pieces::Verdict;
use super::{Event, PeerError, PeerKey, Torrent};

/// Our extension id for ut_metadata, advertised in our extended handshake.
pub(crate) const UT_METADATA_ID: u8 = 1;

/// Our extension id for lt_donthave ("I no longer have piece N", 4-byte
/// index), which WebTorrent speaks: how evictions are announced.
pub(crate) const LT_DONTHAVE_ID: u8 = 2;

/// Requests for urgent blocks allowed beyond a peer's pipeline target.
const URGENT_EXTRA: usize = 4;

/// Unrequested blocks tolerated from one peer (in flight across a choke)
/// before it is dropped.
const MAX_UNREQUESTED_BLOCKS: u32 = 64;

impl Torrent {
    pub(super) fn on_frame(&mut self, key: PeerKey, frame: Frame) -> Result<(), PeerError> {
        match frame {
            Frame::Handshake(h) => self.on_handshake(key, h),
            Frame::Message(m) => self.on_message(key, m),
        }
    }

    fn on_handshake(&mut self, key: PeerKey, h: Handshake) -> Result<(), PeerError> {
        if h.info_hash != self.spec.info_hash {
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
        let metadata_size = self.spec.metadata.as_ref().map(|m| m.len() as u64);
        let Some(peer) = self.peers.get_mut(&key) else {
            return Ok(());
        };
        peer.id = Some(h.peer_id);
        peer.phase = Phase::Connected {
            first_message_seen: false,
        };
        peer.fast = h.reserved.fast();
        peer.extended = h.reserved.extension_protocol();
        let (fast, extended) = (peer.fast, peer.extended);
        if extended {
            let mut ours = ExtendedHandshake::default();
            ours.m
                .insert(extension::UT_METADATA.to_owned(), UT_METADATA_ID);
            ours.m
                .insert(extension::LT_DONTHAVE.to_owned(), LT_DONTHAVE_ID);
            ours.m
                .insert(crowd::FS_CROWD.to_owned(), crowd::FS_CROWD_ID);
            ours.v = Some(self.config.client_name.clone());
            ours.reqq = Some(self.config.max_requests_per_peer);
            ours.metadata_size = metadata_size;
            self.send(
                key,
                &Message::Extended {
                    id: extension::HANDSHAKE_ID,
                    payload: ours.encode(),
                },
            );
        }
        // Evicted pieces are not offered to new peers (PIECES.md).
        let have = self.advertised();
        let announce = if fast && have.is_full() {
            Message::HaveAll
        } else if fast && have.count() == 0 {
            Message::HaveNone
        } else {
            Message::Bitfield(have.as_bytes().to_vec())
        };
        self.send(key, &announce);
        self.event(Event::PeerConnected {
            peer: key,
            id: h.peer_id,
        });
        Ok(())
    }

    fn on_message(&mut self, key: PeerKey, message: Message) -> Result<(), PeerError> {
        let piece_count = self.picker.piece_count();
        let Some(peer) = self.peers.get_mut(&key) else {
            return Ok(());
        };
        let Phase::Connected { first_message_seen } = peer.phase else {
            return Err(PeerError::Protocol("message before handshake".into()));
        };
        let is_extended = matches!(message, Message::Extended { .. });
        if !is_extended {
            peer.phase = Phase::Connected {
                first_message_seen: true,
            };
        }
        let check_piece = |piece: u32| -> Result<(), PeerError> {
            if piece < piece_count {
                Ok(())
            } else {
                Err(PeerError::Protocol(format!(
                    "piece {piece} out of range (torrent has {piece_count})"
                )))
            }
        };
        match message {
            Message::KeepAlive | Message::Port(_) | Message::Unknown { .. } => {}
            Message::Choke => {
                peer.peer_choking = true;
                let dropped = std::mem::take(&mut peer.outstanding);
                for o in dropped {
                    self.picker.unrequest(o.block);
                }
            }
            Message::Unchoke => peer.peer_choking = false,
            Message::Interested => {
                peer.peer_interested = true;
                self.unchoke_if_slot_free(key);
            }
            Message::NotInterested => peer.peer_interested = false,
            Message::Have { piece } => {
                check_piece(piece)?;
                peer.crowd.getting.remove(&piece);
                if peer.pieces.set(piece) {
                    self.picker.add_peer_piece(piece);
                    self.update_interest(key);
                }
            }
            Message::Bitfield(bytes) => {
                if first_message_seen {
                    return Err(PeerError::Protocol("bitfield after other messages".into()));
                }
                let pieces = Bitfield::from_wire(&bytes, piece_count)
                    .map_err(|e| PeerError::Protocol(e.to_string()))?;
                self.set_peer_pieces(key, pieces);
            }
            Message::HaveAll | Message::HaveNone => {
                if first_message_seen || !peer.fast {
                    return Err(PeerError::Protocol(
                        "have_all/have_none out of place".into(),
                    ));
                }
                let pieces = if matches!(message, Message::HaveAll) {
                    Bitfield::full(piece_count)
                } else {
                    Bitfield::empty(piece_count)
                };
                self.set_peer_pieces(key, pieces);
            }
            Message::Request(block) => self.on_request(key, block)?,
            Message::Cancel(block) => peer.queued.retain(|b| *b != block),
            Message::Reject(block) => {
                if peer.take_outstanding(block) {
                    self.picker.unrequest(block);
                    // Rejected while unchoked: it no longer has the piece
                    // (evicted; the core protocol has no "don't have").
                    // Not a source of it until it says `have` again.
                    if !peer.peer_choking {
                        self.peer_lost_piece(key, block.piece);
                    }
                }
            }
            Message::Piece {
                piece,
                offset,
                data,
            } => self.on_block(key, piece, offset, &data)?,
            Message::Suggest { piece } | Message::AllowedFast { piece } => check_piece(piece)?,
            Message::Extended { id, payload } => self.on_extended(key, id, &payload),
        }
        Ok(())
    }

    /// The peer no longer has `piece` (lt_donthave, or a reject while it
    /// unchokes us): not a source of it until it says `have` again.
    fn peer_lost_piece(&mut self, key: PeerKey, piece: u32) {
        if self
            .peers
            .get_mut(&key)
            .is_some_and(|p| p.pieces.clear(piece))
        {
            self.picker.remove_peer_piece(piece);
            self.update_interest(key);
        }
    }

    fn set_peer_pieces(&mut self, key: PeerKey, pieces: Bitfield) {
        let Some(peer) = self.peers.get_mut(&key) else {
            return;
        };
        self.picker.remove_peer_pieces(&peer.pieces);
        self.picker.add_peer_pieces(&pieces);
        peer.pieces = pieces;
        self.update_interest(key);
    }

    fn on_extended(&mut self, key: PeerKey, id: u8, payload: &[u8]) {
        if id == extension::HANDSHAKE_ID {
            // A malformed extended handshake only costs the peer its extensions.
            if let (Ok(theirs), Some(peer)) =
                (ExtendedHandshake::decode(payload), self.peers.get_mut(&key))
            {
                peer.ut_metadata = theirs.id_of(extension::UT_METADATA);
                peer.lt_donthave = theirs.id_of(extension::LT_DONTHAVE);
                if let Some(reqq) = theirs.reqq {
                    peer.reqq = reqq.clamp(1, self.config.max_requests_per_peer);
                }
                match theirs.id_of(crowd::FS_CROWD) {
                    Some(id) => self.crowd_peer_joined(key, id),
                    // Not one of us: it never fetches for the crowd.
                    None => peer.crowd.stance_known = true,
                }
            }
            return;
        }
        if id == crowd::FS_CROWD_ID {
            self.on_crowd_message(key, payload);
            return;
        }
        if id == LT_DONTHAVE_ID {
            // Four bytes, a piece index; anything else is ignored.
            let piece = <[u8; 4]>::try_from(payload).map(u32::from_be_bytes);
            if let Ok(piece) = piece {
                self.peer_lost_piece(key, piece);
            }
            return;
        }
        if id != UT_METADATA_ID {
            return;
        }
        let Ok(MetadataMessage::Request { piece }) = MetadataMessage::decode(payload) else {
            return; // data and rejects matter only when fetching metadata
        };
        let Some(their_id) = self.peers.get(&key).and_then(|p| p.ut_metadata) else {
            return;
        };
        let reply = match self.spec.metadata.as_deref() {
            Some(meta) => match metadata_piece(meta, piece) {
                Some(data) => MetadataMessage::Data {
                    piece,
                    total_size: meta.len() as u64,
                    data: data.to_vec(),
                },
                None => MetadataMessage::Reject { piece },
            },
            None => MetadataMessage::Reject { piece },
        };
        self.send(
            key,
            &Message::Extended {
                id: their_id,
                payload: reply.encode(),
            },
        );
    }

    fn on_request(&mut self, key: PeerKey, block: BlockRef) -> Result<(), PeerError> {
        let size = self.picker.piece_size(block.piece);
        let in_range = block.length > 0
            && block.length <= MAX_REQUEST_LEN
            && u64::from(block.offset) + u64::from(block.length) <= u64::from(size);
        if !in_range {
            return Err(PeerError::Protocol(format!("bad request {block:?}")));
        }
        let max_queue = self.config.max_requests_per_peer as usize;
        let have = self.can_serve(block.piece);
        let Some(peer) = self.peers.get_mut(&key) else {
            return Ok(());
        };
        if peer.am_choking || !have || peer.queued.len() >= max_queue {
            if peer.fast {
                self.send(key, &Message::Reject(block));
            }
            return Ok(());
        }
        if !peer.queued.contains(&block) {
            peer.queued.push_back(block);
        }
        Ok(())
    }

    fn on_block(
        &mut self,
        key: PeerKey,
        piece: u32,
        offset: u32,
        data: &[u8],
    ) -> Result<(), PeerError> {
        let block = BlockRef {
            piece,
            offset,
            length: u32::try_from(data.len()).unwrap_or(u32::MAX),
        };
        let now = self.now;
        let Some(peer) = self.peers.get_mut(&key) else {
            return Ok(());
        };
        let Some(id) = peer.id else {
            return Ok(());
        };
        let requested = peer.take_outstanding(block);
        if requested {
            peer.timeouts_in_row = 0;
        } else {
            peer.unrequested_blocks += 1;
            if peer.unrequested_blocks > MAX_UNREQUESTED_BLOCKS {
                return Err(PeerError::Protocol("too many unrequested blocks".into()));
            }
        }
        if !self.picker.is_valid_block(block) {
            self.stats.wasted += u64::from(block.length);
            return if requested {
                Err(PeerError::Protocol(format!("malformed block {block:?}")))
            } else {
                Ok(())
            };
        }
        peer.download.record(now, u64::from(block.length));
        if self.picker.have().has(piece) {
            self.stats.wasted += u64::from(block.length);
            // An evicted piece has no bytes to compare with: not evidence.
            if !self.evicted.has(piece) && !self.store.matches_verified(piece, offset, data) {
                self.ban(id);
            }
            return Ok(());
        }
        let source = Source::Peer(id);
        self.store.write_block(piece, offset, data, source);
        if !self.picker.block_received(block) {
            self.stats.wasted += u64::from(block.length);
            return Ok(());
        }
        self.stats.from_peers += u64::from(block.length);
        self.event(Event::Downloaded {
            source,
            bytes: block.length,
        });
        self.cancel_duplicates(block, Some(key));
        if self.picker.piece_blocks_done(piece) {
            self.verify_piece(piece);
        }
        Ok(())
    }

    /// A block arrived: nobody else needs to send it any more.
    pub(super) fn cancel_duplicates(&mut self, block: BlockRef, except: Option<PeerKey>) {
        let holders: Vec<PeerKey> = self
            .peers
            .iter()
            .filter(|(k, p)| Some(**k) != except && p.outstanding.iter().any(|o| o.block == block))
            .map(|(k, _)| *k)
            .collect();
        for k in holders {
            if let Some(p) = self.peers.get_mut(&k) {
                p.take_outstanding(block);
            }
            self.send(k, &Message::Cancel(block));
        }
    }

    /// Verifies the piece just completed. Returns whether it failed with
    /// the web seed its only source.
    pub(super) fn verify_piece(&mut self, piece: u32) -> bool {
        match self.store.verify(piece) {
            Verdict::Good { liars, origin } => {
                // A web seed blamed when the piece failed is the same
                // offence seen again now: counted once.
                let blamed = self.web_seed.take_blamed(piece);
                for liar in liars {
                    if !(blamed && liar == Source::WebSeed) {
                        self.ban_source(liar, piece);
                    }
                }
                self.web_seed.take_blamed(piece);
                self.origins.record(piece, origin);
                self.on_piece_verified(piece);
                false
            }
            Verdict::Bad {
                sole_source,
                web_seed_bytes,
            } => {
                // Its bytes were counted as useful on arrival; they were not.
                let size = u64::from(self.picker.piece_size(piece));
                let peer_bytes = size.saturating_sub(web_seed_bytes);
                self.stats.from_peers = self.stats.from_peers.saturating_sub(peer_bytes);
                self.stats.from_web_seed = self.stats.from_web_seed.saturating_sub(web_seed_bytes);
                self.stats.wasted += size;
                self.picker.piece_failed(piece);
                self.forget_intent(piece);
                // The reset also cleared the blocks a web-seed fetch of this
                // piece had claimed; its answer no longer counts (PIECES.md).
                self.web_seed.forget_piece(piece);
                self.event(Event::PieceFailed { piece });
                if let Some(source) = sole_source {
                    self.ban_source(source, piece);
                }
                sole_source == Some(Source::WebSeed)
            }
        }
    }

    pub(super) fn on_piece_verified(&mut self, piece: u32) {
        self.picker.piece_verified(piece);
        self.stats.verified_pieces += 1;
        self.event(Event::PieceVerified { piece });
        let keys: Vec<PeerKey> = self.peers.keys().copied().collect();
        for key in keys {
            if self.peers.get(&key).is_some_and(|p| p.is_connected()) {
                self.send(key, &Message::Have { piece });
                self.update_interest(key);
            }
        }
        if self.picker.is_complete() && !self.done_announced {
            self.done_announced = true;
            self.event(Event::Done);
            self.sync_crowd_state();
        }
        self.enforce_memory_limit(piece);
    }

    fn ban_source(&mut self, source: Source, piece: u32) {
        match source {
            Source::Peer(id) => self.ban(id),
            Source::WebSeed => {
                self.web_seed.record_corruption(piece);
                self.event(Event::WebSeedCorrupt { piece });
            }
        }
    }

    fn ban(&mut self, id: crate::ids::PeerId) {
        if !self.banned.insert(id) {
            return;
        }
        self.event(Event::PeerBanned { id });
        let keys: Vec<PeerKey> = self
            .peers
            .iter()
            .filter(|(_, p)| p.id == Some(id))
            .map(|(k, _)| *k)
            .collect();
        for key in keys {
            self.close(key, PeerError::Banned(id));
        }
    }

    /// Recomputes whether we want something from `key` and tells it.
    pub(super) fn update_interest(&mut self, key: PeerKey) {
        let Some(peer) = self.peers.get(&key) else {
            return;
        };
        let wanted = peer.pieces.ones().any(|p| self.picker.wants(p));
        if wanted != peer.am_interested {
            let now = self.now;
            if let Some(peer) = self.peers.get_mut(&key) {
                peer.am_interested = wanted;
                peer.interested_since = wanted.then_some(now);
            }
            let msg = if wanted {
                Message::Interested
            } else {
                Message::NotInterested
            };
            self.send(key, &msg);
        }
    }

    /// Tops up our requests to `key`.
    pub(super) fn fill_requests(&mut self, key: PeerKey) {
        let now = self.now;
        let max = self.config.max_requests_per_peer;
        let Some(peer) = self.peers.get(&key) else {
            return;
        };
        if peer.peer_choking || !peer.am_interested || !peer.is_connected() {
            return;
        }
        let target = peer.pipeline_target(now, max);
        let mut already = peer.outstanding_blocks();
        let mut picked = if already.len() < target {
            self.picker
                .pick_blocks(&peer.pieces, &already, target - already.len())
        } else {
            Vec::new()
        };
        // Blocks the player needs now do not queue behind the pipeline's
        // read-ahead: up to URGENT_EXTRA more may be in flight for them.
        let room = (target + URGENT_EXTRA)
            .min(max as usize)
            .saturating_sub(already.len() + picked.len());
        if room > 0 {
            already.extend_from_slice(&picked);
            let urgent = self.picker.pick_urgent_blocks(&peer.pieces, &already, room);
            picked.extend(urgent);
        }
        if picked.is_empty() {
            return;
        }
        let mut data = Vec::new();
        let mut soon: Vec<u32> = Vec::new();
        if let Some(peer) = self.peers.get_mut(&key) {
            for block in picked {
                peer.outstanding.push(Outstanding { block, since: now });
                Message::Request(block).encode(&mut data);
                if soon.last() != Some(&block.piece) {
                    soon.push(block.piece);
                }
            }
        }
        self.send_raw(key, data);
        soon.retain(|&p| self.picker.urgency(p) <= crate::picker::Urgency::ReadAhead);
        self.announce_getting(&soon);
    }

    pub(super) fn request_everywhere(&mut self) {
        // Fastest peers pick first: urgent blocks go where they arrive
        // soonest; equally fast ones in key order.
        let mut keys: Vec<(u64, u64, u64)> = self
            .peers
            .iter()
            .map(|(k, p)| (u64::MAX - p.download.bytes_per_sec(self.now), 0, k.0))
            .collect();
        crate::sorted::sort_keys(&mut keys);
        for (_, _, key) in keys {
            self.fill_requests(PeerKey(key));
        }
    }

    /// Sends queued blocks while the peer's channel has room.
    pub(super) fn serve(&mut self, key: PeerKey) {
        let now = self.now;
        let burst = self.config.serve_burst;
        for _ in 0..burst {
            let Some(peer) = self.peers.get_mut(&key) else {
                return;
            };
            if peer.send_blocked || peer.am_choking || peer.queued.is_empty() {
                return;
            }
            if !self.upload_credit() {
                return; // capped: next_wake says when there is credit again
            }
            let Some(peer) = self.peers.get_mut(&key) else {
                return;
            };
            let Some(block) = peer.queued.pop_front() else {
                return;
            };
            let Some(bytes) = self.store.verified(block.piece).and_then(|d| {
                d.get(block.offset as usize..block.offset as usize + block.length as usize)
            }) else {
                continue; // checked when queued; a piece is never un-verified
            };
            let message = Message::Piece {
                piece: block.piece,
                offset: block.offset,
                data: bytes.to_vec(),
            };
            peer.upload.record(now, u64::from(block.length));
            self.stats.uploaded += u64::from(block.length);
            self.charge_upload(block.length);
            self.send(key, &message);
            self.event(Event::Uploaded {
                peer: key,
                bytes: block.length,
            });
        }
    }

    /// Handshake, request, keep-alive and idle timers of every peer.
    pub(super) fn check_peer_timers(&mut self) {
        let now = self.now;
        let cfg = self.config.clone();
        let mut to_close = Vec::new();
        let mut keepalive = Vec::new();
        let mut expired = Vec::new();
        for (key, peer) in self.peers.iter_mut() {
            if !peer.is_connected() && now.since(peer.connected_at) >= cfg.handshake_timeout {
                to_close.push((*key, PeerError::Timeout("handshake")));
                continue;
            }
            if now.since(peer.last_received) >= cfg.idle_timeout {
                to_close.push((*key, PeerError::Timeout("peer silent")));
                continue;
            }
            let before = peer.outstanding.len();
            peer.outstanding.retain(|o| {
                let late = now.since(o.since) >= cfg.request_timeout;
                if late {
                    expired.push(o.block);
                }
                !late
            });
            if peer.outstanding.len() < before {
                peer.timeouts_in_row += 1;
            }
            if peer.is_connected() && now.since(peer.last_sent) >= cfg.keepalive_interval {
                keepalive.push(*key);
            }
        }
        for block in expired {
            self.picker.unrequest(block);
        }
        for (key, reason) in to_close {
            self.close(key, reason);
        }
        for key in keepalive {
            self.send(key, &Message::KeepAlive);
        }
    }
}
