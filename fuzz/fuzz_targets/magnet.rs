//! Magnet URIs from arbitrary text: parsing never panics, and a parsed link
//! written with `Display` parses back to the same value.
#![no_main]

use libfuzzer_sys::fuzz_target;
use swarm::magnet::Magnet;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(magnet) = Magnet::parse(text) {
        let written = magnet.to_string();
        assert_eq!(
            Magnet::parse(&written).as_ref(),
            Ok(&magnet),
            "round trip via {written}"
        );
        assert_eq!(
            written.parse::<Magnet>().map(|m| m.to_string()),
            Ok(written)
        );
    }
});
