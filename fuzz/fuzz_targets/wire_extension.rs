//! BEP 10 extended handshakes, BEP 9 ut_metadata messages and the metadata
//! assembler, from arbitrary bytes.
//!
//! Byte 0 picks the parser; the rest is its input.
//! - 0: `ExtendedHandshake::decode`; a decoded handshake re-encodes to one
//!   that decodes to itself.
//! - 1: `MetadataMessage::decode`; likewise.
//! - 2: a `MetadataAssembler` fed a sequence of inserts, checked against a
//!   plain model: it accepts exactly the in-range pieces of the right length,
//!   counts what is missing, and `finish` returns the bytes only when complete
//!   and matching the hash.
#![no_main]

use arbitrary::{Result, Unstructured};
use libfuzzer_sys::fuzz_target;
use sha1::{Digest, Sha1};
use swarm::InfoHash;
use swarm::wire::extension::ExtendedHandshake;
use swarm::wire::metadata::{
    MAX_METADATA_SIZE, METADATA_PIECE_SIZE, MetadataAssembler, MetadataError, MetadataMessage,
};

fuzz_target!(|data: &[u8]| {
    let Some((&mode, rest)) = data.split_first() else {
        return;
    };
    match mode % 3 {
        0 => {
            if let Ok(h) = ExtendedHandshake::decode(rest) {
                let again = ExtendedHandshake::decode(&h.encode());
                assert_eq!(again.as_ref(), Ok(&h), "extended handshake round trip");
                assert_eq!(h.to_message(), again.expect("checked").to_message());
            }
        }
        1 => {
            if let Ok(m) = MetadataMessage::decode(rest) {
                assert_eq!(
                    MetadataMessage::decode(&m.encode()),
                    Ok(m.clone()),
                    "round trip"
                );
            }
        }
        _ => {
            let _ = assemble(&mut Unstructured::new(rest));
        }
    }
});

/// Drives an assembler and a model side by side.
fn assemble(u: &mut Unstructured<'_>) -> Result<()> {
    let total: u64 = if u.ratio(1, 64)? {
        u.arbitrary()?
    } else {
        u.int_in_range(0..=5 * METADATA_PIECE_SIZE as u64)?
    };
    let assembler = MetadataAssembler::new(total);
    let valid_size = (1..=MAX_METADATA_SIZE).contains(&total);
    let mut assembler = match assembler {
        Ok(a) => {
            assert!(valid_size, "accepted size {total}");
            a
        }
        Err(e) => {
            assert!(!valid_size, "refused size {total}: {e}");
            return Ok(());
        }
    };
    let size = total as usize;
    let count = size.div_ceil(METADATA_PIECE_SIZE);
    assert_eq!(assembler.piece_count() as usize, count);
    assert_eq!(assembler.total_size(), total);
    let mut model: Vec<Option<Vec<u8>>> = vec![None; count];
    while !u.is_empty() {
        let piece: u32 = if u.ratio(1, 16)? {
            u.arbitrary()?
        } else {
            u.int_in_range(0..=6)?
        };
        let expected_len = if (piece as usize) < count {
            (size - piece as usize * METADATA_PIECE_SIZE).min(METADATA_PIECE_SIZE)
        } else {
            METADATA_PIECE_SIZE
        };
        let len = if u.ratio(3, 4)? {
            expected_len
        } else {
            u.int_in_range(0..=METADATA_PIECE_SIZE + 1)?
        };
        let fill: u8 = u.arbitrary()?;
        let bytes = vec![fill; len];
        let result = assembler.insert(piece, &bytes);
        if (piece as usize) < count && len == expected_len {
            assert_eq!(result, Ok(()));
            model[piece as usize] = Some(bytes);
        } else {
            assert!(result.is_err(), "piece {piece} of {len} bytes accepted");
        }
        let missing: Vec<u32> = assembler.missing().collect();
        let model_missing: Vec<u32> = (0..count as u32)
            .filter(|&p| model[p as usize].is_none())
            .collect();
        assert_eq!(missing, model_missing);
        assert_eq!(assembler.is_complete(), model_missing.is_empty());
    }
    let complete = model.iter().all(Option::is_some);
    let bytes: Vec<u8> = model.into_iter().flatten().flatten().collect();
    let hash = InfoHash(Sha1::digest(&bytes).into());
    let wrong = InfoHash([0xee; 20]);
    match (
        complete,
        assembler.clone().finish(wrong),
        assembler.finish(hash),
    ) {
        (true, Err(MetadataError::HashMismatch), Ok(found)) => assert_eq!(found, bytes),
        (false, Err(MetadataError::Incomplete { .. }), Err(MetadataError::Incomplete { .. })) => {}
        other => panic!("finish disagrees with the model: complete {}", other.0),
    }
    Ok(())
}
