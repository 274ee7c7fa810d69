//! A CURVE client connection fed arbitrary server bytes (boxes transparent
//! under --cfg fuzzing, so WELCOME and READY contents are reachable).
#![no_main]
use libfuzzer_sys::fuzz_target;
use zeroguard_zmtp::{CurveKeyPair, MechanismConfig, SocketType};

#[path = "support.rs"]
mod support;

fuzz_target!(|data: &[u8]| {
    let Some((&selector, stream)) = data.split_first() else { return };
    let socket_type = if selector & 1 == 0 { SocketType::Dealer } else { SocketType::Sub };
    let keys = CurveKeyPair::from_secret([2u8; 32]);
    let server_key = *CurveKeyPair::from_secret([1u8; 32]).public();
    support::drive(socket_type, MechanismConfig::CurveClient { keys, server_key }, selector, stream);
});
