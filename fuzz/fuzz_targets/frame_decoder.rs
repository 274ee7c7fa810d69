//! Decoding gives identical frames and errors however the input is split,
//! and re-encoding every decoded frame gives back bytes that decode the same.
#![no_main]
use bytes::BytesMut;
use libfuzzer_sys::fuzz_target;
use zeroguard_zmtp::frame::{decode_frame, encode_frame, FrameLimits};
use zeroguard_zmtp::Error;

const LIMITS: FrameLimits = FrameLimits { max_message_frame: 1 << 16, max_command_frame: 1 << 12 };

fn decode_all(chunks: &mut dyn Iterator<Item = &[u8]>) -> (Vec<zeroguard_zmtp::frame::WireFrame>, Option<Error>) {
    let mut buf = BytesMut::new();
    let mut frames = Vec::new();
    for chunk in chunks {
        buf.extend_from_slice(chunk);
        loop {
            match decode_frame(&mut buf, &LIMITS) {
                Ok(Some(f)) => frames.push(f),
                Ok(None) => break,
                Err(e) => return (frames, Some(e)),
            }
        }
    }
    (frames, None)
}

fuzz_target!(|data: &[u8]| {
    let Some((&split, stream)) = data.split_first() else { return };
    let step = usize::from(split % 64) + 1;
    let (whole, whole_err) = decode_all(&mut std::iter::once(stream));
    let (parts, parts_err) = decode_all(&mut stream.chunks(step));
    assert_eq!(whole, parts);
    assert_eq!(whole_err, parts_err);
    let mut again = BytesMut::new();
    for f in &whole {
        encode_frame(&mut again, f.more, f.command, &f.body);
    }
    let (round, err) = decode_all(&mut std::iter::once(&again[..]));
    assert_eq!(err, None);
    assert_eq!(round, whole);
});
