//! Certificate files: parsing never panics, and what parses is consistent
//! (a secret certificate's key pair matches its public key) and writes back
//! to a file that parses to the same certificate.
#![no_main]
use libfuzzer_sys::fuzz_target;
use zeroguard::Certificate;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    let Ok(cert) = Certificate::parse(text, "fuzz") else { return };
    if let Some(keys) = cert.keys() {
        assert_eq!(keys.public(), cert.public());
    }
    let dir = std::env::temp_dir().join(format!("zg-fuzz-cert-{}", std::process::id()));
    let _ = std::fs::create_dir_all(&dir);
    let Ok(written) = cert.write(&dir, "c") else { return };
    let path = written.1.unwrap_or(written.0);
    let again = Certificate::load(&path).expect("a written certificate loads");
    assert_eq!(again.public(), cert.public());
    assert_eq!(again.keys().is_some(), cert.keys().is_some());
});
