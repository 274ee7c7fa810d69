//! Command and metadata parsers never panic, and whatever parses re-encodes
//! to something that parses to the same value.
#![no_main]
use bytes::{Bytes, BytesMut};
use libfuzzer_sys::fuzz_target;
use zeroguard_zmtp::command::{parse_error, parse_ping, parse_plain_hello, parse_pong, RawCommand};
use zeroguard_zmtp::Metadata;

fuzz_target!(|data: &[u8]| {
    let body = Bytes::copy_from_slice(data);
    if let Ok(cmd) = RawCommand::parse(&body) {
        assert!(!cmd.name.is_empty() && cmd.name.len() + cmd.data.len() < body.len());
        let _ = parse_error(&cmd.data);
        if let Ok(ping) = parse_ping(&cmd.data) {
            assert!(ping.context.len() <= 16);
        }
        let _ = parse_pong(&cmd.data);
        let _ = parse_plain_hello(&cmd.data);
    }
    if let Ok(md) = Metadata::parse(data) {
        let mut out = BytesMut::new();
        md.encode(&mut out);
        assert_eq!(&out[..], data, "metadata encoding is canonical");
        assert_eq!(Metadata::parse(&out).ok(), Some(md));
    }
});
