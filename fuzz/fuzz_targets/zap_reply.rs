//! ZAP replies: parsing never panics; only a well-formed reply to our
//! request with status 200 admits, and then with what it says.
#![no_main]
use bytes::Bytes;
use libfuzzer_sys::fuzz_target;
use zeroguard::zap::parse_reply;
use zeroguard::AuthDecision;

fuzz_target!(|data: &[u8]| {
    // Frames as 2-byte lengths followed by contents.
    let mut frames = Vec::new();
    let mut rest = data;
    while rest.len() >= 2 && frames.len() < 16 {
        let n = usize::from(u16::from_be_bytes([rest[0], rest[1]])).min(rest.len() - 2);
        frames.push(Bytes::copy_from_slice(&rest[2..2 + n]));
        rest = &rest[2 + n..];
    }
    match parse_reply(&frames, b"1") {
        Ok(AuthDecision::Accept { user_id, .. }) => {
            assert_eq!(frames.len(), 6);
            assert_eq!(&frames[2][..], b"200");
            assert_eq!(user_id, frames[4]);
        }
        Ok(AuthDecision::Refuse { status, .. }) => assert!(matches!(status, 300 | 400 | 500)),
        Ok(_) | Err(_) => {}
    }
});
