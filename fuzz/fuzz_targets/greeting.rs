//! The greeting check never panics, and its verdict on a prefix never
//! contradicts its verdict on the whole: bytes that were refused stay refused.
#![no_main]
use libfuzzer_sys::fuzz_target;
use zeroguard_zmtp::greeting::{check_peer_greeting, GREETING_LEN};
use zeroguard_zmtp::MechanismKind;

fuzz_target!(|data: &[u8]| {
    for (kind, server) in [
        (MechanismKind::Null, false),
        (MechanismKind::Plain, true),
        (MechanismKind::Plain, false),
        (MechanismKind::Curve, true),
    ] {
        let whole = check_peer_greeting(&data[..data.len().min(GREETING_LEN)], kind, server);
        if data.len() >= GREETING_LEN {
            assert!(!matches!(whole, Ok(None)), "a full greeting gets a verdict");
        }
        for cut in 0..data.len().min(GREETING_LEN) {
            let part = check_peer_greeting(&data[..cut], kind, server);
            assert!(!matches!(part, Ok(Some(_))), "a partial greeting is never accepted");
            if let Err(e) = part {
                assert_eq!(whole.as_ref().err(), Some(&e), "refusal is stable as bytes arrive");
            }
        }
    }
});
