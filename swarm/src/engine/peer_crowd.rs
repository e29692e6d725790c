//! What a peer's connection knows of that peer's part in the crowd's
//! web-seed election (see [`super::crowd`]): its own module so that the
//! peer's state ([`super::peer`]) and the election can both use it without
//! depending on each other.

use std::collections::BTreeMap;
use std::ops::Range;
use std::time::Duration;

use crate::bitfield::Bitfield;
use crate::time::Time;

/// What we know of one peer's crowd state.
#[derive(Debug, Clone)]
pub(crate) struct PeerCrowd {
    /// Our id for its messages, from its extended handshake.
    pub id: Option<u8>,
    /// It said it fetches from the web seed.
    pub web_seed: bool,
    /// We know whether it takes part in elections: it sent its state, or
    /// its extended handshake showed it does not speak the extension.
    pub stance_known: bool,
    /// Pieces it said it is getting, and when it said so.
    pub getting: BTreeMap<u32, Time>,
    /// The runs of pieces it said it wants (one track of an album);
    /// `None`: every piece.
    pub wants: Option<Vec<Range<u32>>>,
    /// Pieces we told it we are getting (never twice).
    pub told: Bitfield,
    /// The last state we sent it: whether we fetch from the web seed, and
    /// the generation of our wanted pieces.
    pub told_state: Option<(bool, u32)>,
}

impl PeerCrowd {
    pub fn new(piece_count: u32) -> Self {
        PeerCrowd {
            id: None,
            web_seed: false,
            stance_known: false,
            getting: BTreeMap::new(),
            wants: None,
            told: Bitfield::empty(piece_count),
            told_state: None,
        }
    }

    /// Speaks the extension.
    pub fn speaks(&self) -> bool {
        self.id.is_some()
    }

    /// It fetches `piece` (it said nothing of a selection, or `piece` is in
    /// one of its runs).
    pub fn wants(&self, piece: u32) -> bool {
        self.wants
            .as_ref()
            .is_none_or(|runs| runs.iter().any(|r| r.contains(&piece)))
    }

    /// How long ago it said it is getting `piece`, if that is younger
    /// than `ttl`.
    pub fn getting_for(&self, piece: u32, now: Time, ttl: Duration) -> Option<Duration> {
        let age = now.since(*self.getting.get(&piece)?);
        (age < ttl).then_some(age)
    }

    /// Forgets intents older than `ttl`.
    pub fn expire(&mut self, now: Time, ttl: Duration) {
        self.getting.retain(|_, since| now.since(*since) < ttl);
    }
}
