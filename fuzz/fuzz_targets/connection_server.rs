//! A server-side connection (NULL with authentication, or PLAIN) fed
//! arbitrary bytes in arbitrary chunks: no panic, errors are sticky and
//! blame the peer, and what it sends back is bounded by what it received
//! (no amplification).
#![no_main]
use libfuzzer_sys::fuzz_target;
use zeroguard_zmtp::{MechanismConfig, SocketType};

#[path = "support.rs"]
mod support;

fuzz_target!(|data: &[u8]| {
    let Some((&selector, stream)) = data.split_first() else { return };
    let (socket_type, mechanism) = match selector % 4 {
        0 => (SocketType::Router, MechanismConfig::Null { authenticate: true }),
        1 => (SocketType::Pub, MechanismConfig::Null { authenticate: false }),
        2 => (SocketType::Rep, MechanismConfig::PlainServer),
        _ => (SocketType::Pull, MechanismConfig::PlainServer),
    };
    support::drive(socket_type, mechanism, selector, stream);
});
