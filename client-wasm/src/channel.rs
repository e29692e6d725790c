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
}
