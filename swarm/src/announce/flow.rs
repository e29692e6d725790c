//! How the announcer reacts to tracker messages and builds its announces.

use std::time::Duration;

use crate::time::Time;
use crate::tracker::{
    AnnounceEvent, AnnounceRequest, Offer, OfferId, SdpKind, ServerMessage, SessionDescription,
    announce_json,
};

use super::state::{Conn, PendingOffer};
use super::{Action, Announcer, TrackerIndex, TrackerNotice};

impl Announcer {
    pub(super) fn on_message(&mut self, tracker: TrackerIndex, message: ServerMessage) {
        match message {
            ServerMessage::Failure(f) if f.info_hash.is_none_or(|h| h == self.info_hash) => {
                self.event(TrackerNotice::Failure {
                    tracker,
                    reason: f.reason,
                });
            }
            ServerMessage::Announce(r) if r.info_hash == self.info_hash => {
                let interval = Duration::from_secs(r.interval)
                    .clamp(self.config.min_interval, self.config.max_interval);
                if let Some(t) = self.trackers.get_mut(tracker.0) {
                    t.failures = 0;
                    // Like the reference client: the next announce is one
                    // interval after the tracker's reply.
                    if let Conn::Connected {
                        interval: i,
                        next_announce,
                        gathering: None,
                        ..
                    } = &mut t.conn
                    {
                        *i = interval;
                        *next_announce = self.now + interval;
                    }
                }
                self.event(TrackerNotice::Swarm {
                    tracker,
                    complete: r.complete,
                    incomplete: r.incomplete,
                });
            }
            ServerMessage::Offer(o)
                if o.info_hash == self.info_hash
                    && o.peer_id != self.peer_id
                    && self.want_peers
                    && o.offer.kind == SdpKind::Offer =>
            {
                self.actions.push_back(Action::AnswerOffer {
                    tracker,
                    offer: o.offer_id,
                    peer: o.peer_id,
                    sdp: o.offer.sdp,
                });
            }
            ServerMessage::Answer(a) if a.info_hash == self.info_hash => {
                if a.peer_id == self.peer_id || a.answer.kind != SdpKind::Answer {
                    return;
                }
                // Only an offer we made through this very tracker, still
                // waiting: anything else is stale or spoofed.
                let matches = self
                    .pending
                    .get(&a.offer_id)
                    .is_some_and(|p| p.tracker == tracker && p.sdp.is_some());
                if matches {
                    self.pending.remove(&a.offer_id);
                    self.actions.push_back(Action::AcceptAnswer {
                        offer: a.offer_id,
                        peer: a.peer_id,
                        sdp: a.answer.sdp,
                    });
                }
            }
            // Scrape replies and other swarms' messages are not ours.
            _ => {}
        }
    }

    pub(super) fn connect(&mut self, tracker: TrackerIndex) {
        let Some(t) = self.trackers.get_mut(tracker.0) else {
            return;
        };
        t.conn = Conn::Connecting;
        self.actions.push_back(Action::Connect {
            tracker,
            url: t.url.clone(),
        });
    }

    /// Starts an announce on every connected tracker whose time has come:
    /// first asks for offers when peers are wanted, else sends it at once.
    pub(super) fn announce_due(&mut self) {
        for i in 0..self.trackers.len() {
            let tracker = TrackerIndex(i);
            let Conn::Connected {
                next_announce,
                gathering,
                ..
            } = &self.trackers[i].conn
            else {
                continue;
            };
            if self.now < *next_announce || gathering.is_some() {
                continue;
            }
            if self.want_peers && self.config.offers_per_announce > 0 {
                let ids: Vec<OfferId> = (0..self.config.offers_per_announce)
                    .map(|_| OfferId(std::array::from_fn(|_| self.rng.u8(..))))
                    .collect();
                for &id in &ids {
                    self.pending
                        .insert(id, PendingOffer::new(tracker, self.now));
                }
                self.trackers[i].set_gathering(self.now + self.config.offer_gathering);
                self.actions.push_back(Action::CreateOffers { offers: ids });
            } else {
                self.send_announce(tracker, Vec::new());
            }
        }
    }

    pub(super) fn resolve_offer(&mut self, offer: OfferId, sdp: Option<String>) {
        match (self.pending.get_mut(&offer), sdp) {
            (Some(p), Some(sdp)) if p.sdp.is_none() => p.sdp = Some(sdp),
            (Some(_), None) => {
                self.pending.remove(&offer);
            }
            _ => {}
        }
    }

    /// Sends the announce of every tracker whose offers are all made, or
    /// whose gathering time ran out (with those that are ready; the rest are
    /// dropped).
    pub(super) fn send_ready_announces(&mut self) {
        for i in 0..self.trackers.len() {
            let tracker = TrackerIndex(i);
            let Some(deadline) = self.trackers[i].gathering() else {
                continue;
            };
            let unready: Vec<OfferId> = self
                .pending
                .iter()
                .filter(|(_, p)| p.tracker == tracker && p.sdp.is_none())
                .map(|(id, _)| *id)
                .collect();
            if !unready.is_empty() && self.now < deadline {
                continue;
            }
            for offer in unready {
                self.pending.remove(&offer);
                self.actions.push_back(Action::DropOffer { offer });
            }
            let offers: Vec<Offer> = self
                .pending
                .iter_mut()
                .filter(|(_, p)| p.tracker == tracker && !p.sent)
                .filter_map(|(id, p)| {
                    p.sent = true;
                    p.sent_at = self.now;
                    Some(Offer {
                        offer: SessionDescription {
                            kind: SdpKind::Offer,
                            sdp: p.sdp.clone()?,
                        },
                        offer_id: *id,
                    })
                })
                .collect();
            self.send_announce(tracker, offers);
        }
    }

    /// Sends an announce now and schedules the next one.
    pub(super) fn send_announce(&mut self, tracker: TrackerIndex, offers: Vec<Offer>) {
        let Some(t) = self.trackers.get_mut(tracker.0) else {
            return;
        };
        let Conn::Connected {
            next_announce,
            interval,
            started,
            gathering,
        } = &mut t.conn
        else {
            return;
        };
        let event = if *started {
            None
        } else if self.completed {
            Some(AnnounceEvent::Completed)
        } else {
            Some(AnnounceEvent::Started)
        };
        *started = true;
        *gathering = None;
        *next_announce = self.now + *interval;
        let mut request = self.request(event);
        if !offers.is_empty() {
            request.numwant = Some(self.config.numwant);
            request.offers = Some(offers);
        }
        self.send(tracker, request);
    }

    pub(super) fn expire_offers(&mut self) {
        let ttl = self.config.offer_ttl;
        let now = self.now;
        let expired: Vec<OfferId> = self
            .pending
            .iter()
            .filter(|(_, p)| p.sent && now >= p.sent_at + ttl)
            .map(|(id, _)| *id)
            .collect();
        for offer in expired {
            self.pending.remove(&offer);
            self.actions.push_back(Action::DropOffer { offer });
        }
    }

    pub(super) fn request(&self, event: Option<AnnounceEvent>) -> AnnounceRequest {
        AnnounceRequest {
            info_hash: self.info_hash,
            peer_id: self.peer_id,
            event,
            numwant: None,
            uploaded: Some(self.progress.uploaded),
            downloaded: Some(self.progress.downloaded),
            left: self.progress.left,
            offers: None,
            answer: None,
            to_peer_id: None,
            offer_id: None,
        }
    }

    pub(super) fn send(&mut self, tracker: TrackerIndex, request: AnnounceRequest) {
        let text = announce_json(&request);
        self.actions.push_back(Action::Send { tracker, text });
    }

    pub(super) fn event(&mut self, event: TrackerNotice) {
        self.actions.push_back(Action::Event(event));
    }

    pub(super) fn next_wake(&self) -> Time {
        let mut at = self.now + Duration::from_secs(3600);
        for t in &self.trackers {
            if let Some(w) = t.wake_at() {
                at = at.min(w);
            }
        }
        for p in self.pending.values() {
            if p.sent {
                at = at.min(p.sent_at + self.config.offer_ttl);
            }
        }
        at.max(self.now)
    }
}
