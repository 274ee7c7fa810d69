//! A client-side connection (NULL or PLAIN) fed arbitrary server bytes:
//! no panic, errors sticky and blamed on the peer, output bounded.
#![no_main]
use libfuzzer_sys::fuzz_target;
use zeroguard_zmtp::{MechanismConfig, SocketType};

#[path = "support.rs"]
mod support;

fuzz_target!(|data: &[u8]| {
    let Some((&selector, stream)) = data.split_first() else { return };
    let (socket_type, mechanism) = match selector % 4 {
        0 => (SocketType::Dealer, MechanismConfig::Null { authenticate: false }),
        1 => (SocketType::Sub, MechanismConfig::Null { authenticate: false }),
        2 => (SocketType::Req, MechanismConfig::plain_client("admin", "secret")),
        _ => (SocketType::Push, MechanismConfig::plain_client("", "")),
    };
    support::drive(socket_type, mechanism, selector, stream);
});
