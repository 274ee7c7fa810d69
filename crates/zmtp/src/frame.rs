//! The frame decoder and encoder (RFC 23 "Framing").
//!
//! The decoder works on the caller's accumulating buffer and returns one
//! frame at a time, only once the whole frame is there, so its results do not
//! depend on how the input was split. Every declared size is checked against
//! the limit as soon as the header is complete, before a single byte of the
//! body is buffered for it: a peer's declaration never causes an allocation.
//! Sizes are handled as `u64` with checked conversion (CVE-2019-6250; JeroMQ
//! #440 and NetMQ #1168 for sizes with the sign bit set).

use bytes::{Buf, BufMut, Bytes, BytesMut};

use crate::error::Error;
use crate::message::INLINE_MAX;

/// Flag bit: more frames of this message follow.
pub const FLAG_MORE: u8 = 0x01;
/// Flag bit: the size is an 8-byte big-endian integer.
pub const FLAG_LONG: u8 = 0x02;
/// Flag bit: the frame is a command.
pub const FLAG_COMMAND: u8 = 0x04;
/// Bits 3 to 7, which must be zero.
pub const FLAGS_RESERVED: u8 = 0xF8;

/// Frames smaller than this are copied out of the read buffer into their own
/// allocation; larger ones are shared with it without copying.
///
/// Copying small frames means a message the application keeps cannot pin a
/// whole read buffer: the memory a held frame keeps alive is at most a small
/// multiple of its own size, so byte-counted queue limits mean what they say.
pub const ZERO_COPY_THRESHOLD: usize = 8 * 1024;

/// One decoded frame.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WireFrame {
    /// MORE flag: another frame of the same message follows.
    pub more: bool,
    /// COMMAND flag.
    pub command: bool,
    /// The body.
    pub body: Bytes,
}

/// Size limits the decoder enforces, from the frame header alone.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FrameLimits {
    /// Largest message frame accepted.
    pub max_message_frame: u64,
    /// Largest command frame accepted.
    pub max_command_frame: u64,
}

/// Frame header length and body size once the header is complete.
pub(crate) fn parse_header(
    buf: &[u8],
    limits: &FrameLimits,
) -> Result<Option<(usize, usize)>, Error> {
    let Some(&flags) = buf.first() else {
        return Ok(None);
    };
    if flags & FLAGS_RESERVED != 0 {
        return Err(Error::ReservedFlags { flags });
    }
    let command = flags & FLAG_COMMAND != 0;
    if command && flags & FLAG_MORE != 0 {
        return Err(Error::CommandWithMore);
    }
    let (header_len, size) = if flags & FLAG_LONG != 0 {
        if buf.len() < 9 {
            return Ok(None);
        }
        let mut raw = [0u8; 8];
        raw.copy_from_slice(&buf[1..9]);
        (9, u64::from_be_bytes(raw))
    } else {
        if buf.len() < 2 {
            return Ok(None);
        }
        (2, u64::from(buf[1]))
    };
    if size > i64::MAX as u64 {
        return Err(Error::FrameSizeOverflow { size });
    }
    let (kind, limit) = if command {
        ("command", limits.max_command_frame)
    } else {
        ("message", limits.max_message_frame)
    };
    if size > limit {
        return Err(Error::FrameTooLarge { kind, size, limit });
    }
    // Cannot fail for any limit that fits in memory; checked anyway so that a
    // limit above usize::MAX on a small target is still an error, not a wrap.
    let size = usize::try_from(size).map_err(|_| Error::FrameTooLarge { kind, size, limit })?;
    Ok(Some((header_len, size)))
}

/// The header length and body size of the frame at the head of `buf` when
/// it is the whole of a message: complete, a message frame without MORE,
/// within `limit` and under [`ZERO_COPY_THRESHOLD`]. `None` for anything
/// else, including every malformed header: such frames take the checked
/// path of [`decode_frame`], which says what is wrong with them. This is
/// the receiving side's common case, decoded without building a result per
/// frame.
pub(crate) fn whole_small_message(buf: &[u8], limit: u64) -> Option<(usize, usize)> {
    let (header_len, size) = match *buf.first()? {
        0 => (2, u64::from(*buf.get(1)?)),
        FLAG_LONG => {
            let raw: [u8; 8] = buf.get(1..9)?.try_into().ok()?;
            (9, u64::from_be_bytes(raw))
        }
        _ => return None,
    };
    if size > limit {
        return None;
    }
    let size = usize::try_from(size)
        .ok()
        .filter(|&s| s < ZERO_COPY_THRESHOLD)?;
    (buf.len() >= header_len + size).then_some((header_len, size))
}

/// Takes one complete frame off the front of `buf`, if there is one.
///
/// Returns `Ok(None)` when more bytes are needed; `buf` is then untouched.
/// An error means the stream is corrupt and the connection must be closed.
/// Frames under [`ZERO_COPY_THRESHOLD`] get their own allocation.
pub fn decode_frame(buf: &mut BytesMut, limits: &FrameLimits) -> Result<Option<WireFrame>, Error> {
    decode(buf, limits, Bytes::copy_from_slice)
}

/// A frame body as [`decode_frame_with`] hands it over.
pub(crate) enum FrameBody<'a> {
    /// Under [`ZERO_COPY_THRESHOLD`]: still in the read buffer.
    Lent(&'a [u8]),
    /// Larger: cut from the read buffer without copying.
    Owned(Bytes),
}

/// As [`decode_frame`], handing `take` the frame's flags (more, command)
/// and body: a small body in place, so that whoever takes it copies it
/// once, where it is going (a CURVE body straight into the arena, where it
/// is decrypted).
pub(crate) fn decode_frame_with<T>(
    buf: &mut BytesMut,
    limits: &FrameLimits,
    take: impl FnOnce(bool, bool, FrameBody<'_>) -> Result<T, Error>,
) -> Result<Option<T>, Error> {
    let Some((header_len, size)) = parse_header(buf, limits)? else {
        return Ok(None);
    };
    let Some(total) = header_len.checked_add(size) else {
        return Err(Error::FrameSizeOverflow { size: size as u64 });
    };
    if buf.len() < total {
        return Ok(None);
    }
    let flags = buf[0];
    let (more, command) = (flags & FLAG_MORE != 0, flags & FLAG_COMMAND != 0);
    buf.advance(header_len);
    if size < ZERO_COPY_THRESHOLD {
        let taken = take(more, command, FrameBody::Lent(&buf[..size]));
        buf.advance(size);
        taken.map(Some)
    } else {
        let body = buf.split_to(size).freeze();
        take(more, command, FrameBody::Owned(body)).map(Some)
    }
}

/// As [`decode_frame`], with small frame bodies copied into `arena`: many
/// small frames share one allocation instead of one each.
pub fn decode_frame_in(
    buf: &mut BytesMut,
    limits: &FrameLimits,
    arena: &mut Arena,
) -> Result<Option<WireFrame>, Error> {
    decode(buf, limits, |body| arena.copy(body))
}

fn decode(
    buf: &mut BytesMut,
    limits: &FrameLimits,
    copy_small: impl FnOnce(&[u8]) -> Bytes,
) -> Result<Option<WireFrame>, Error> {
    decode_frame_with(buf, limits, |more, command, body| {
        let body = match body {
            FrameBody::Lent(b) => copy_small(b),
            FrameBody::Owned(b) => b,
        };
        Ok(WireFrame {
            more,
            command,
            body,
        })
    })
}

/// Bytes of a block of the smallest size class: frames of up to
/// [`ARENA_CLASS_FRAME`] bytes.
const ARENA_BLOCK: usize = 4096;
/// The largest frame of the smallest size class. Each class above holds
/// frames up to twice the size of the one below, in blocks twice as large:
/// at least eight frames share a block, whatever the class.
const ARENA_CLASS_FRAME: usize = 512;
/// Size classes: frames of up to 512 bytes, 1, 2, 4 and 8 KiB.
const ARENA_CLASSES: usize = 5;
/// Frames above this get their own allocation rather than arena space.
const ARENA_MAX_FRAME: usize = ARENA_CLASS_FRAME << (ARENA_CLASSES - 1);

/// Where frame bodies of up to 8 KiB are copied as [`Bytes`]: blocks
/// shared by the bodies cut from them, so that a body costs a reference
/// count rather than an allocation. A CURVE session's bodies are copied
/// here and decrypted in place, and [`decode_frame_in`] copies here;
/// cleartext frames that become messages get buffers of their own
/// instead (`message::pooled`), which no count ties to their neighbours.
///
/// A body goes to the block of its size class: 4 KiB blocks for bodies
/// of up to 512 bytes, and for each class above twice the size in twice
/// the block, up to 64 KiB blocks for 4 to 8 KiB. Bodies built on one
/// thread and freed on another with an allocation each made the two
/// threads queue for the allocator's lock. A body kept long pins its
/// block: at most 4 KiB or sixteen times its own size, never a whole
/// read buffer.
#[derive(Debug, Default)]
pub struct Arena {
    blocks: [BytesMut; ARENA_CLASSES],
}

impl Arena {
    /// An empty arena (it allocates on first use).
    pub fn new() -> Arena {
        Arena::default()
    }

    /// The block a body of `len` bytes (at most [`ARENA_MAX_FRAME`]) goes
    /// to, a new one when the current one has no room left.
    fn block_for(&mut self, len: usize) -> &mut BytesMut {
        debug_assert!(len <= ARENA_MAX_FRAME);
        // 0 up to 512 bytes, 1 up to 1 KiB, ... 4 up to 8 KiB.
        let class = if len <= ARENA_CLASS_FRAME {
            0
        } else {
            (((len - 1) / ARENA_CLASS_FRAME).ilog2() as usize + 1).min(ARENA_CLASSES - 1)
        };
        let block = &mut self.blocks[class];
        if block.capacity() - block.len() < len {
            *block = BytesMut::with_capacity(ARENA_BLOCK << class);
        }
        block
    }

    /// Copies `body` into its block; bodies over 8 KiB get an allocation
    /// of their own.
    pub(crate) fn copy(&mut self, body: &[u8]) -> Bytes {
        if body.len() > ARENA_MAX_FRAME {
            return Bytes::copy_from_slice(body);
        }
        let block = self.block_for(body.len());
        block.extend_from_slice(body);
        block.split().freeze()
    }

    /// Copies `body` into the arena and lets `change` work on the copy in
    /// place before it is shared (decryption); if `change` fails, the copy
    /// is dropped. Bodies over 8 KiB get an allocation of their own.
    pub(crate) fn copy_then(
        &mut self,
        body: &[u8],
        change: impl FnOnce(&mut [u8]) -> Result<(), Error>,
    ) -> Result<Bytes, Error> {
        if body.len() > ARENA_MAX_FRAME {
            let mut own = BytesMut::from(body);
            change(&mut own)?;
            return Ok(own.freeze());
        }
        let block = self.block_for(body.len());
        let start = block.len();
        block.extend_from_slice(body);
        if let Err(e) = change(&mut block[start..]) {
            block.truncate(start);
            return Err(e);
        }
        Ok(block.split().freeze())
    }

    /// Lets go of the current blocks (a quiet connection holds none).
    pub fn release(&mut self) {
        self.blocks = Default::default();
    }
}

/// How many bytes the frame at the front of `buf` needs in total, once its
/// header is complete. Lets a caller size one read instead of many.
pub fn pending_frame_len(buf: &[u8], limits: &FrameLimits) -> Result<Option<usize>, Error> {
    Ok(parse_header(buf, limits)?.and_then(|(h, s)| h.checked_add(s)))
}

/// Appends a frame header for a body of `len` bytes.
pub fn encode_header(out: &mut BytesMut, more: bool, command: bool, len: usize) {
    let mut flags = 0u8;
    if more {
        flags |= FLAG_MORE;
    }
    if command {
        flags |= FLAG_COMMAND;
    }
    // One append per header, not one per field: on a stream of small
    // frames the header is a good part of the encoding.
    match u8::try_from(len) {
        Ok(short) => out.put_slice(&[flags, short]),
        Err(_) => {
            let mut long = [flags | FLAG_LONG; 9];
            long[1..].copy_from_slice(&(len as u64).to_be_bytes());
            out.put_slice(&long);
        }
    }
}

/// Appends a whole message frame (no MORE, not a command) held inline: the
/// header and the frame's whole inline array in one fixed-size copy, then
/// the buffer cut back to the body's end, which costs less than a copy of
/// the body's own, variable, length.
pub(crate) fn encode_inline(out: &mut BytesMut, data: &[u8; INLINE_MAX], len: usize) {
    let mut frame = [0u8; INLINE_MAX + 2];
    frame[2..].copy_from_slice(data);
    // An inline body is under 256 bytes: a short frame's one-byte size.
    frame[1] = u8::try_from(len).unwrap_or(u8::MAX);
    let end = out.len() + 2 + len.min(INLINE_MAX);
    out.extend_from_slice(&frame);
    out.truncate(end);
}

/// Appends a whole frame.
pub fn encode_frame(out: &mut BytesMut, more: bool, command: bool, body: &[u8]) {
    out.reserve(9 + body.len());
    encode_header(out, more, command, body.len());
    out.put_slice(body);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn arena_copies_changed_in_place_and_failures_leave_nothing() {
        let mut arena = Arena::new();
        let a = arena
            .copy_then(b"abc", |b| {
                b.make_ascii_uppercase();
                Ok(())
            })
            .unwrap_or_default();
        assert_eq!(a, &b"ABC"[..]);
        let refused = arena.copy_then(b"xyz", |_| Err(Error::CommandWithMore));
        assert!(refused.is_err());
        // The refused copy took no room: the next one follows the first.
        let b = arena.copy_then(b"def", |_| Ok(())).unwrap_or_default();
        assert_eq!(b, &b"def"[..]);
        assert_eq!(b.as_ptr(), a.as_ptr().wrapping_add(3));
        let big = vec![1u8; 600];
        let c = arena
            .copy_then(&big, |b| {
                b[0] = 2;
                Ok(())
            })
            .unwrap_or_default();
        assert_eq!(c.len(), 600);
        assert_eq!(c[0], 2);
    }

    #[test]
    fn inline_frames_encode_as_any_frame_does() {
        let body: Vec<u8> = (100..100 + INLINE_MAX)
            .map(|i| u8::try_from(i).unwrap_or(0))
            .collect();
        for n in 0..=INLINE_MAX {
            let frame = crate::message::Frame::copy_from_slice(&body[..n]);
            let Some((data, len)) = frame.inline_parts() else {
                panic!("{n} bytes are held inline");
            };
            let mut fast = BytesMut::from(&b"before"[..]);
            encode_inline(&mut fast, data, len);
            let mut plain = BytesMut::from(&b"before"[..]);
            encode_frame(&mut plain, false, false, &body[..n]);
            assert_eq!(fast, plain, "{n} bytes");
        }
    }

    const LIMITS: FrameLimits = FrameLimits {
        max_message_frame: 1 << 20,
        max_command_frame: 1024,
    };

    /// Which size class the arena puts a body of `n` bytes in, as the
    /// arena's own documentation states it.
    fn documented_class(n: usize) -> Option<usize> {
        [512, 1024, 2048, 4096, 8192]
            .iter()
            .position(|&max| n <= max)
    }

    #[test]
    fn small_frames_share_arena_blocks_and_decode_the_same() {
        let sizes = [
            0usize, 1, 16, 255, 512, 513, 4000, 16, 1000, 8191, 8192, 16, 16, 4096, 2048, 3000,
        ];
        let mut wire = BytesMut::new();
        for (i, &n) in sizes.iter().enumerate() {
            encode_frame(&mut wire, i % 2 == 0, false, &vec![i.to_le_bytes()[0]; n]);
        }
        let mut plain = wire.clone();
        let mut arena = Arena::new();
        // The last body of each class: the next of that class follows it.
        let mut last: [Option<Bytes>; ARENA_CLASSES] = Default::default();
        for &n in &sizes {
            let a = decode_frame_in(&mut wire, &LIMITS, &mut arena)
                .unwrap()
                .unwrap();
            let b = decode_frame(&mut plain, &LIMITS).unwrap().unwrap();
            assert_eq!(a, b);
            assert_eq!(a.body.len(), n);
            let in_arena = n > 0 && n < ZERO_COPY_THRESHOLD;
            if let Some(class) = documented_class(n).filter(|_| in_arena) {
                if let Some(p) = &last[class] {
                    assert_eq!(
                        p.as_ptr().wrapping_add(p.len()),
                        a.body.as_ptr(),
                        "frames of {} and {n} bytes not packed",
                        p.len()
                    );
                }
                last[class] = Some(a.body.clone());
            }
        }
        assert!(wire.is_empty() && plain.is_empty());
    }

    #[test]
    fn at_least_eight_frames_share_a_block_in_every_class() {
        let mut arena = Arena::new();
        for max in [512usize, 1024, 2048, 4096, 8192] {
            let bodies: Vec<Bytes> = (0..9).map(|_| arena.copy(&vec![7; max])).collect();
            for pair in bodies[..8].windows(2) {
                assert_eq!(
                    pair[0].as_ptr().wrapping_add(max),
                    pair[1].as_ptr(),
                    "frames of {max} bytes not packed"
                );
            }
            // A block is eight of the class's largest frames: the ninth
            // starts another, and a frame pins at most sixteen times itself.
            assert_ne!(bodies[7].as_ptr().wrapping_add(max), bodies[8].as_ptr());
        }
        let own = arena.copy(&[1; 8193]);
        let next = arena.copy(&[1; 8192]);
        assert_ne!(own.as_ptr().wrapping_add(8193), next.as_ptr());
        arena.release();
        assert!(arena.blocks.iter().all(|b| b.capacity() == 0));
    }

    #[test]
    fn short_and_long_frames_round_trip() {
        let mut buf = BytesMut::new();
        encode_frame(&mut buf, true, false, b"abc");
        encode_frame(&mut buf, false, false, &[9u8; 300]);
        assert_eq!(&buf[..2], &[0x01, 3]);
        assert_eq!(buf[5], 0x02);
        let a = decode_frame(&mut buf, &LIMITS).unwrap().unwrap();
        assert!(a.more && !a.command);
        assert_eq!(&a.body[..], b"abc");
        let b = decode_frame(&mut buf, &LIMITS).unwrap().unwrap();
        assert_eq!(b.body.len(), 300);
        assert!(buf.is_empty());
    }

    #[test]
    fn incomplete_input_leaves_buffer_untouched() {
        let mut full = BytesMut::new();
        encode_frame(&mut full, false, false, b"hello");
        for cut in 0..full.len() {
            let mut part = BytesMut::from(&full[..cut]);
            assert_eq!(decode_frame(&mut part, &LIMITS), Ok(None));
            assert_eq!(part.len(), cut);
        }
    }

    #[test]
    fn size_limit_checked_before_body() {
        // Header alone declares 2^20 + 1 bytes.
        let mut buf = BytesMut::from(&[0x02, 0, 0, 0, 0, 0, 0x10, 0, 1][..]);
        assert_eq!(
            decode_frame(&mut buf, &LIMITS),
            Err(Error::FrameTooLarge {
                kind: "message",
                size: (1 << 20) + 1,
                limit: 1 << 20
            })
        );
        let mut buf = BytesMut::from(&[0x06, 0, 0, 0, 0, 0, 0, 0x04, 1][..]);
        assert!(matches!(
            decode_frame(&mut buf, &LIMITS),
            Err(Error::FrameTooLarge {
                kind: "command",
                ..
            })
        ));
    }

    #[test]
    fn large_frames_share_the_read_buffer() {
        let mut buf = BytesMut::new();
        encode_frame(&mut buf, false, false, &vec![5u8; ZERO_COPY_THRESHOLD]);
        let base = buf.as_ptr() as usize;
        let frame = decode_frame(&mut buf, &LIMITS).unwrap().unwrap();
        assert_eq!(frame.body.as_ptr() as usize, base + 9);
    }
}
