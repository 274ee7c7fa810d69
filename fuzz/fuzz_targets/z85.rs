//! Z85 decoding never panics; valid text round-trips exactly, and binary
//! input round-trips through encoding.
#![no_main]
use libfuzzer_sys::fuzz_target;
use zeroguard_zmtp::z85;

fuzz_target!(|data: &[u8]| {
    if let Ok(text) = std::str::from_utf8(data) {
        if let Ok(bytes) = z85::decode(text) {
            assert_eq!(z85::encode(&bytes).unwrap(), text);
        }
        let _ = z85::decode_key(text);
    }
    let whole = &data[..data.len() / 4 * 4];
    let text = z85::encode(whole).unwrap();
    assert_eq!(z85::decode(&text).unwrap(), whole);
});
