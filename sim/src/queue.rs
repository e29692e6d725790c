//! The simulator's queue of events in flight: a calendar of one-millisecond
//! buckets, earliest first, ties in the order scheduled.
//!
//! A crowd of tens of thousands keeps 100,000 and more events in flight
//! (every chunk on every link, every timer). One binary heap of them made
//! each pop walk ~17 levels of a heap far larger than the CPU's caches;
//! nearly everything is due within a few seconds, so a ring of buckets
//! covering that span puts each event in its bucket in O(1) and sorts
//! only the few dozen of the bucket being drained. Events beyond the ring
//! (the tracker's 30 s sweep, long timers) wait in a small heap of their own.
//!
//! Pops come out in exactly the order one heap of (time, sequence) gives,
//! so a run replays bit for bit as before.

use std::cmp::Reverse;
use std::collections::BinaryHeap;

/// Microseconds of virtual time one bucket spans.
const WIDTH: u64 = 1000;
/// Buckets in the ring: 8 s of virtual time.
const RING: u64 = 8192;

/// Something that happens at a time; ordered by (time, sequence).
pub(crate) trait Timed: Ord {
    /// When, in virtual microseconds.
    fn at(&self) -> u64;
}

/// A calendar queue of `T`, popped in `Ord` order as a min-heap would.
pub(crate) struct Calendar<T> {
    /// Bucket `b % RING` holds the events of bucket `b`, for `b` in
    /// `cursor + 1 .. cursor + RING`, unsorted.
    ring: Vec<Vec<Reverse<T>>>,
    /// Events in `ring`.
    in_ring: usize,
    /// The events of bucket `cursor` (and any scheduled in the past),
    /// earliest first.
    current: BinaryHeap<Reverse<T>>,
    /// The bucket `current` drains.
    cursor: u64,
    /// Events of bucket `cursor + RING` and later.
    far: BinaryHeap<Reverse<T>>,
}

impl<T: Timed> Calendar<T> {
    pub fn new() -> Self {
        Calendar {
            ring: (0..RING).map(|_| Vec::new()).collect(),
            in_ring: 0,
            current: BinaryHeap::new(),
            cursor: 0,
            far: BinaryHeap::new(),
        }
    }

    /// Events waiting.
    pub fn len(&self) -> usize {
        self.current.len() + self.in_ring + self.far.len()
    }

    pub fn push(&mut self, item: T) {
        let bucket = item.at() / WIDTH;
        if bucket <= self.cursor {
            self.current.push(Reverse(item));
        } else if bucket < self.cursor + RING {
            self.ring[(bucket % RING) as usize].push(Reverse(item));
            self.in_ring += 1;
        } else {
            self.far.push(Reverse(item));
        }
    }

    /// The earliest event.
    pub fn peek(&mut self) -> Option<&T> {
        self.fill();
        self.current.peek().map(|Reverse(t)| t)
    }

    /// Takes the earliest event.
    pub fn pop(&mut self) -> Option<T> {
        self.fill();
        self.current.pop().map(|Reverse(t)| t)
    }

    /// Moves the cursor to the next bucket holding events until `current`
    /// has some (or nothing waits at all).
    fn fill(&mut self) {
        while self.current.is_empty() {
            if self.in_ring == 0 {
                // Nothing within the ring: jump to the far heap's first.
                let Some(Reverse(first)) = self.far.peek() else {
                    return;
                };
                self.cursor = self.cursor.max(first.at() / WIDTH - 1);
            }
            self.cursor += 1;
            let slot = (self.cursor % RING) as usize;
            // (The drained bucket's allocation is dropped, not handed to the
            // ring: 8,192 slots each keeping the largest bucket's capacity
            // would cost more memory than the events themselves.)
            let bucket = std::mem::take(&mut self.ring[slot]);
            self.in_ring -= bucket.len();
            self.current = BinaryHeap::from(bucket);
            // The bucket now at the ring's far end, from the far heap.
            let horizon = self.cursor + RING - 1;
            while self
                .far
                .peek()
                .is_some_and(|Reverse(t)| t.at() / WIDTH <= horizon)
            {
                let Some(Reverse(t)) = self.far.pop() else {
                    break;
                };
                self.push(t);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, PartialEq, Eq, PartialOrd, Ord, Clone, Copy)]
    struct E(u64, u64);

    impl Timed for E {
        fn at(&self) -> u64 {
            self.0
        }
    }

    #[test]
    fn pops_in_the_order_of_one_heap() {
        let mut rng = fastrand::Rng::with_seed(7);
        let mut cal = Calendar::new();
        let mut heap = BinaryHeap::new();
        let mut seq = 0;
        let mut now = 0;
        for round in 0..20_000 {
            // Mostly near, some far, some at the current time or before it.
            for _ in 0..rng.usize(0..3) {
                seq += 1;
                let at = match rng.u8(0..10) {
                    0 => now + rng.u64(0..100_000_000),
                    1 => now.saturating_sub(rng.u64(0..2000)),
                    2 => now,
                    _ => now + rng.u64(0..3_000_000),
                };
                cal.push(E(at, seq));
                heap.push(Reverse(E(at, seq)));
            }
            assert_eq!(cal.len(), heap.len(), "round {round}");
            let expected = heap.pop().map(|Reverse(e)| e);
            assert_eq!(cal.peek().copied(), expected);
            assert_eq!(cal.pop(), expected, "round {round}");
            if let Some(e) = expected {
                now = now.max(e.0);
            }
        }
        while let Some(Reverse(e)) = heap.pop() {
            assert_eq!(cal.pop(), Some(e));
        }
        assert_eq!(cal.pop(), None);
    }
}
