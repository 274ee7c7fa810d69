//! Endpoint strings: parsing never panics, and what parses prints to a
//! string that parses to the same endpoint.
#![no_main]
use libfuzzer_sys::fuzz_target;
use zeroguard::endpoint::{Direction, Endpoint};

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    for direction in [Direction::Bind, Direction::Connect] {
        if let Ok(ep) = Endpoint::parse(text, direction) {
            let again = Endpoint::parse(&ep.to_string(), direction).expect("printed endpoints parse");
            assert_eq!(again, ep);
        }
    }
});
