//! How bytes go onto a data channel: message sizes and the send-buffer
//! watermarks that turn `bufferedAmount` into the engine's backpressure.
//!
//! Pure logic, so it is tested natively; the shell applies it to a real
//! `RTCDataChannel` in `rtc.rs`.

/// Largest message we put on a channel. Every browser accepts 64 KiB (the
/// SCTP default when a peer announces no `max-message-size`), and the peer
/// reads a byte stream, so larger engine writes are split.
pub const MAX_CHANNEL_MESSAGE: usize = 64 * 1024;

/// Above this many buffered bytes the engine is told to stop serving.
/// Far below Chrome's 16 MiB "send queue is full", high enough to keep a
/// fast link busy between two `bufferedamountlow` events.
pub const HIGH_WATER: u32 = 1024 * 1024;

/// `bufferedAmountLowThreshold`: when the buffer drains below this the
/// engine may serve again. It must be below [`HIGH_WATER`] or the event
/// never fires.
pub const LOW_WATER: u32 = 256 * 1024;

/// Splits one engine write into channel messages of at most `max` bytes.
pub fn split_messages(data: &[u8], max: usize) -> impl Iterator<Item = &[u8]> {
    data.chunks(max.max(1))
}

/// Whether the channel must report itself blocked after a send, given its
/// `bufferedAmount` and whether it was blocked before.
///
/// Returns `Some(new_state)` only when the state changes, so the engine is
/// told once per crossing.
pub fn watermark_crossing(buffered: u32, blocked: bool) -> Option<bool> {
    match (blocked, buffered) {
        (false, b) if b > HIGH_WATER => Some(true),
        (true, b) if b <= LOW_WATER => Some(false),
        _ => None,
    }
}

/// Bytes a channel delivered before its `open` event was handled.
///
/// Chromium can run a channel's first `message` before its `open` under
/// load (the remote's handshake, seen in the end-to-end suite). Those bytes
/// are kept here and replayed to the engine right after `add_peer`; the
/// channel cannot be admitted at once, since `send` throws while
/// `readyState` still says "connecting".
#[derive(Debug, Default)]
pub struct EarlyBytes {
    bytes: Vec<u8>,
}

impl EarlyBytes {
    /// Most bytes kept. Before the remote hears our handshake it sends at
    /// most its handshake, extended handshake and bitfield, far below this.
    pub const LIMIT: usize = 256 * 1024;

    /// Keeps `data`; `false` (keeping nothing more) past [`Self::LIMIT`]:
    /// the peer is misbehaving and its connection should go.
    pub fn push(&mut self, data: &[u8]) -> bool {
        if self.bytes.len() + data.len() > Self::LIMIT {
            return false;
        }
        self.bytes.extend_from_slice(data);
        true
    }

    /// Everything kept, in arrival order; leaves the buffer empty.
    pub fn take(&mut self) -> Vec<u8> {
        std::mem::take(&mut self.bytes)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn split_keeps_every_byte_in_order() {
        let data: Vec<u8> = (0..200_000u32).map(|i| (i % 251) as u8).collect();
        let parts: Vec<&[u8]> = split_messages(&data, MAX_CHANNEL_MESSAGE).collect();
        assert_eq!(parts.len(), 4);
        assert!(parts.iter().all(|p| p.len() <= MAX_CHANNEL_MESSAGE));
        assert_eq!(parts.concat(), data);
        assert_eq!(split_messages(&[], 10).count(), 0);
        assert_eq!(
            split_messages(&[1, 2, 3], 0).count(),
            3,
            "a zero max still progresses"
        );
    }

    #[test]
    fn watermarks_report_each_crossing_once() {
        assert_eq!(watermark_crossing(HIGH_WATER, false), None);
        assert_eq!(watermark_crossing(HIGH_WATER + 1, false), Some(true));
        assert_eq!(watermark_crossing(HIGH_WATER + 1, true), None);
        assert_eq!(watermark_crossing(LOW_WATER + 1, true), None);
        assert_eq!(watermark_crossing(LOW_WATER, true), Some(false));
        assert_eq!(watermark_crossing(0, false), None);
        const { assert!(LOW_WATER < HIGH_WATER) };
    }

    #[test]
    fn early_bytes_replay_in_order_and_refuse_past_the_limit() {
        let mut early = EarlyBytes::default();
        assert!(early.push(&[19, b'B']));
        assert!(early.push(b"it"));
        assert_eq!(early.take(), vec![19, b'B', b'i', b't']);
        assert!(early.take().is_empty(), "take leaves it empty");
        assert!(early.push(&vec![0; EarlyBytes::LIMIT]));
        assert!(!early.push(&[1]), "one byte past the limit is refused");
        assert_eq!(early.take().len(), EarlyBytes::LIMIT, "nothing more kept");
    }
}
