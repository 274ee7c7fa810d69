//! The MESSAGE box of an established CURVE session.
//!
//! Every ZMTP frame after the handshake, commands included, travels as one
//! MESSAGE: `\x07MESSAGE`, an 8-byte short nonce, and a box of one flags byte
//! (bit 0 MORE, bit 1 COMMAND, as libzmq encodes them) followed by the frame
//! body. The outer frame carries neither flag.

use bytes::{Buf, BufMut, Bytes, BytesMut};

use super::crypto::{append_sealed, SessionBox, TAG_LEN};
use super::stream::MessageStream;
use crate::error::Error;
use crate::frame::{encode_header, Arena};
use crate::message::{Frame, INLINE_MAX};

const MESSAGE: &[u8] = b"\x07MESSAGE";
/// Bytes a MESSAGE adds to the frame body it carries.
pub(crate) const OVERHEAD: usize = 8 + 8 + TAG_LEN + 1;

pub(crate) struct CurveCipher {
    send: MessageStream,
    recv: MessageStream,
    next_nonce: u64,
    peer_nonce: u64,
}

impl std::fmt::Debug for CurveCipher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CurveCipher")
            .field("next_nonce", &self.next_nonce)
            .field("peer_nonce", &self.peer_nonce)
            .finish_non_exhaustive()
    }
}

impl CurveCipher {
    pub(crate) fn new(
        session: SessionBox,
        client: bool,
        next_nonce: u64,
        peer_nonce: u64,
    ) -> CurveCipher {
        let (send_prefix, recv_prefix) = if client {
            (b"CurveZMQMESSAGEC", b"CurveZMQMESSAGES")
        } else {
            (b"CurveZMQMESSAGES", b"CurveZMQMESSAGEC")
        };
        CurveCipher {
            send: session.stream(send_prefix),
            recv: session.stream(recv_prefix),
            next_nonce,
            peer_nonce,
        }
    }

    /// Appends one frame, boxed, as a MESSAGE frame.
    pub(crate) fn encrypt_frame(
        &mut self,
        more: bool,
        command: bool,
        body: &[u8],
        out: &mut BytesMut,
    ) {
        let n = self.next_nonce;
        self.next_nonce = n.saturating_add(1);
        encode_header(out, false, false, OVERHEAD + body.len());
        out.put_slice(MESSAGE);
        out.put_u64(n);
        let flags = [u8::from(more) | (u8::from(command) << 1)];
        let send = &mut self.send;
        append_sealed(out, &[&flags, body], |buf| send.seal(&n.to_be_bytes(), buf));
    }

    /// Opens one MESSAGE frame: (more, command, body). The frame is
    /// decrypted in its own buffer when nothing else shares it (always the
    /// case for frames under the zero-copy threshold), so the body costs
    /// neither an allocation nor a copy.
    pub(crate) fn decrypt_frame(&mut self, frame: Bytes) -> Result<(bool, bool, Bytes), Error> {
        let (raw, n) = self.check_message(&frame)?;
        let mut buf = match frame.try_into_mut() {
            Ok(unique) => unique,
            Err(shared) => BytesMut::from(&shared[..]),
        };
        let (tag, boxed) = buf[16..].split_at_mut(TAG_LEN);
        if !self.recv.open(&raw, boxed, tag) {
            return Err(not_opened());
        }
        self.peer_nonce = n;
        // Layout now: MESSAGE (8), nonce (8), tag (16), flags (1), body.
        let flags = check_flags(buf[32])?;
        let body = buf.freeze().slice(33..);
        Ok((flags & 0x01 != 0, flags & 0x02 != 0, body))
    }

    /// Opens one MESSAGE frame that is still in the read buffer: the box is
    /// copied once, into `arena`, and opened there (small messages share
    /// the arena's blocks instead of an allocation each).
    pub(crate) fn decrypt_frame_in(
        &mut self,
        frame: &[u8],
        arena: &mut Arena,
    ) -> Result<(bool, bool, Frame), Error> {
        let (raw, n) = self.check_message(frame)?;
        let (tag, boxed) = frame[16..].split_at(TAG_LEN);
        let recv = &mut self.recv;
        let mut open = |b: &mut [u8]| {
            if recv.open(&raw, b, tag) {
                Ok(())
            } else {
                Err(not_opened())
            }
        };
        let (flags, body) = if boxed.len() <= INLINE_MAX + 1 {
            // A small body is opened on the stack and held inline: no
            // shared block whose count two threads would touch.
            let mut plain = [0u8; INLINE_MAX + 1];
            let plain = &mut plain[..boxed.len()];
            plain.copy_from_slice(boxed);
            open(plain)?;
            let body = Frame::inline(&plain[1..]).unwrap_or_default();
            (plain[0], body)
        } else {
            let mut plain = arena.copy_then(boxed, open)?;
            let flags = plain[0];
            plain.advance(1);
            (flags, Frame::from(plain))
        };
        self.peer_nonce = n;
        let flags = check_flags(flags)?;
        Ok((flags & 0x01 != 0, flags & 0x02 != 0, body))
    }

    /// Checks a MESSAGE's name, length and nonce (which must grow, against
    /// replays); returns the nonce as sent and as a number.
    fn check_message(&self, frame: &[u8]) -> Result<([u8; 8], u64), Error> {
        if frame.len() < OVERHEAD {
            return Err(Error::malformed(b"MESSAGE", "shorter than 33 bytes"));
        }
        if !frame.starts_with(MESSAGE) {
            return Err(Error::unexpected(
                frame
                    .get(1..)
                    .map_or(&b""[..], |n| &n[..n.len().min(usize::from(frame[0]))]),
                "in a CURVE session, where every frame must be a MESSAGE",
            ));
        }
        let mut raw = [0u8; 8];
        raw.copy_from_slice(&frame[8..16]);
        let n = u64::from_be_bytes(raw);
        if n <= self.peer_nonce {
            return Err(Error::NonceNotIncreasing { command: "MESSAGE" });
        }
        Ok((raw, n))
    }
}

fn not_opened() -> Error {
    Error::Decryption {
        what: "a MESSAGE (tampered with, or not from this session)",
    }
}

fn check_flags(flags: u8) -> Result<u8, Error> {
    if flags & !0x03 != 0 {
        return Err(Error::malformed(
            b"MESSAGE",
            "reserved bits set in the flags byte",
        ));
    }
    Ok(flags)
}
