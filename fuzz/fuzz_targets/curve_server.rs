//! A CURVE server connection fed arbitrary bytes. Built with --cfg fuzzing,
//! boxes are transparent (zero tag, plain contents), so the fuzzer reaches
//! the cookie, vouch, nonce and metadata checks behind them.
#![no_main]
use libfuzzer_sys::fuzz_target;
use zeroguard_zmtp::{CurveKeyPair, MechanismConfig, SocketType};

#[path = "support.rs"]
mod support;

fuzz_target!(|data: &[u8]| {
    let Some((&selector, stream)) = data.split_first() else { return };
    let socket_type = if selector & 1 == 0 { SocketType::Router } else { SocketType::Pub };
    let keys = CurveKeyPair::from_secret([1u8; 32]);
    support::drive(socket_type, MechanismConfig::CurveServer { keys }, selector, stream);
});
