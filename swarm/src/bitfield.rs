//! Which pieces a peer (or we) have: one bit per piece, BitTorrent's layout.
//!
//! Bit 7 of byte 0 is piece 0. A `Bitfield` always has exactly `len` pieces;
//! spare bits in the last byte are zero, which is what the wire format
//! requires and what [`Bitfield::from_wire`] checks.

/// A fixed-length set of piece indices.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Bitfield {
    bytes: Vec<u8>,
    len: u32,
    ones: u32,
}

/// A received bitfield that does not fit the torrent.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BitfieldError {
    /// The byte count is not `ceil(pieces / 8)`.
    #[error("bitfield has {got} bytes, the torrent needs {expected}")]
    WrongLength {
        /// Bytes received.
        got: usize,
        /// Bytes the torrent's piece count needs.
        expected: usize,
    },
    /// A bit past the last piece is set.
    #[error("bitfield sets spare bits past piece {pieces}")]
    SpareBitsSet {
        /// The torrent's piece count.
        pieces: u32,
    },
}

impl Bitfield {
    /// No piece set.
    pub fn empty(len: u32) -> Self {
        Bitfield {
            bytes: vec![0; byte_len(len)],
            len,
            ones: 0,
        }
    }

    /// Every piece set.
    pub fn full(len: u32) -> Self {
        let mut bf = Self::empty(len);
        for i in 0..len {
            bf.set(i);
        }
        bf
    }

    /// Parses a `bitfield` message payload for a torrent of `len` pieces.
    pub fn from_wire(bytes: &[u8], len: u32) -> Result<Self, BitfieldError> {
        let expected = byte_len(len);
        if bytes.len() != expected {
            return Err(BitfieldError::WrongLength {
                got: bytes.len(),
                expected,
            });
        }
        let spare = (expected as u64 * 8 - u64::from(len)) as u32;
        if spare > 0 {
            let mask = (1u8 << spare) - 1;
            if bytes[expected - 1] & mask != 0 {
                return Err(BitfieldError::SpareBitsSet { pieces: len });
            }
        }
        let ones = bytes.iter().map(|b| b.count_ones()).sum();
        Ok(Bitfield {
            bytes: bytes.to_vec(),
            len,
            ones,
        })
    }

    /// The wire form.
    pub fn as_bytes(&self) -> &[u8] {
        &self.bytes
    }

    /// Number of pieces the field covers.
    pub fn len(&self) -> u32 {
        self.len
    }

    /// True for a zero-piece torrent.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Number of pieces set.
    pub fn count(&self) -> u32 {
        self.ones
    }

    /// Every piece is set.
    pub fn is_full(&self) -> bool {
        self.ones == self.len
    }

    /// Whether `piece` is set; false for an index out of range.
    pub fn has(&self, piece: u32) -> bool {
        if piece >= self.len {
            return false;
        }
        self.bytes[(piece / 8) as usize] & mask(piece) != 0
    }

    /// Sets `piece`; returns whether it was newly set (false if out of range).
    pub fn set(&mut self, piece: u32) -> bool {
        if piece >= self.len || self.has(piece) {
            return false;
        }
        self.bytes[(piece / 8) as usize] |= mask(piece);
        self.ones += 1;
        true
    }

    /// Clears `piece`; returns whether it was set.
    pub fn clear(&mut self, piece: u32) -> bool {
        if !self.has(piece) {
            return false;
        }
        self.bytes[(piece / 8) as usize] &= !mask(piece);
        self.ones -= 1;
        true
    }

    /// The set piece indices, ascending.
    pub fn ones(&self) -> impl Iterator<Item = u32> + '_ {
        (0..self.len).filter(|&i| self.has(i))
    }
}

fn byte_len(len: u32) -> usize {
    len.div_ceil(8) as usize
}

fn mask(piece: u32) -> u8 {
    0x80 >> (piece % 8)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn set_clear_count() {
        let mut bf = Bitfield::empty(10);
        assert_eq!(bf.as_bytes().len(), 2);
        assert!(bf.set(0));
        assert!(!bf.set(0));
        assert!(bf.set(9));
        assert!(!bf.set(10), "out of range is refused");
        assert_eq!(bf.count(), 2);
        assert_eq!(bf.as_bytes(), &[0x80, 0x40]);
        assert!(bf.clear(0));
        assert!(!bf.clear(0));
        assert_eq!(bf.ones().collect::<Vec<_>>(), vec![9]);
        assert!(!bf.has(1000));
    }

    #[test]
    fn full_has_no_spare_bits() {
        let bf = Bitfield::full(10);
        assert_eq!(bf.as_bytes(), &[0xff, 0xc0]);
        assert!(bf.is_full());
        assert_eq!(Bitfield::from_wire(bf.as_bytes(), 10), Ok(bf));
    }

    #[test]
    fn wire_errors() {
        assert_eq!(
            Bitfield::from_wire(&[0xff], 10),
            Err(BitfieldError::WrongLength {
                got: 1,
                expected: 2
            })
        );
        assert_eq!(
            Bitfield::from_wire(&[0xff, 0xe0], 10),
            Err(BitfieldError::SpareBitsSet { pieces: 10 })
        );
        let exact = Bitfield::from_wire(&[0xff], 8).expect("8 pieces fit one byte");
        assert_eq!(exact.count(), 8);
        assert!(
            Bitfield::from_wire(&[], 0)
                .expect("empty torrent")
                .is_full()
        );
    }
}
