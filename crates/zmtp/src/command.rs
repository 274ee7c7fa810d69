//! ZMTP commands: splitting a command frame into name and data, and the
//! layouts of READY, ERROR, SUBSCRIBE, CANCEL, PING, PONG and PLAIN's HELLO,
//! WELCOME and INITIATE.
//!
//! Decoders take the data part of a command and check every length before
//! reading; encoders write a whole command frame into the caller's buffer.

use std::time::Duration;

use bytes::{BufMut, Bytes, BytesMut};

use crate::error::Error;
use crate::frame::encode_header;
use crate::metadata::Metadata;

/// Longest PING context a peer may send (RFC 37).
pub const MAX_PING_CONTEXT: usize = 16;
/// Bytes of a PING body before its context: name length, "PING", 16-bit TTL.
pub const PING_MIN_LEN: usize = 7;
/// Largest TTL a PING can carry, in deciseconds.
pub const MAX_TTL_DECISECONDS: u16 = u16::MAX;

/// A command frame split into its name and data.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RawCommand {
    /// The command name, e.g. `b"READY"`.
    pub name: Bytes,
    /// Everything after the name.
    pub data: Bytes,
}

impl RawCommand {
    /// Splits a command frame body: one length octet, the name, the data.
    pub fn parse(body: &Bytes) -> Result<RawCommand, Error> {
        let Some(&name_len) = body.first() else {
            return Err(Error::malformed(b"", "command frame is empty"));
        };
        let name_len = usize::from(name_len);
        if name_len == 0 {
            return Err(Error::malformed(b"", "command name is empty"));
        }
        if body.len() < 1 + name_len {
            return Err(Error::malformed(
                &body[1..],
                "command name is longer than the frame",
            ));
        }
        Ok(RawCommand {
            name: body.slice(1..1 + name_len),
            data: body.slice(1 + name_len..),
        })
    }

    /// Like [`parse`](RawCommand::parse), but also recognises the ERROR that
    /// libzmq 4.3's PLAIN server sends when it refuses credentials: its
    /// prefix is the C literal `"\x5ERROR"`, which compiles to the byte 0x5E
    /// and `RROR`, with no name length. Treating it as ERROR lets a refused
    /// client report "authentication failed" instead of a protocol error.
    pub fn parse_handshake(body: &Bytes) -> Result<RawCommand, Error> {
        if body.starts_with(b"\x5eRROR") {
            return Ok(RawCommand {
                name: Bytes::from_static(b"ERROR"),
                data: body.slice(5..),
            });
        }
        RawCommand::parse(body)
    }

    /// Whether the name is `name`.
    pub fn is(&self, name: &str) -> bool {
        self.name.as_ref() == name.as_bytes()
    }
}

/// Appends a command frame with the given name and data parts.
pub fn encode_command(out: &mut BytesMut, name: &str, parts: &[&[u8]]) {
    let name_len = u8::try_from(name.len()).unwrap_or(u8::MAX);
    let len = 1 + usize::from(name_len) + parts.iter().map(|p| p.len()).sum::<usize>();
    out.reserve(9 + len);
    encode_header(out, false, true, len);
    out.put_u8(name_len);
    out.put_slice(&name.as_bytes()[..usize::from(name_len)]);
    for part in parts {
        out.put_slice(part);
    }
}

/// Appends a command whose data is a metadata list (READY, INITIATE).
pub fn encode_metadata_command(out: &mut BytesMut, name: &str, md: &Metadata) {
    let mut body = BytesMut::with_capacity(md.encoded_len());
    md.encode(&mut body);
    encode_command(out, name, &[&body]);
}

/// Appends an ERROR command. The reason is cut to 255 bytes at a character boundary.
pub fn encode_error(out: &mut BytesMut, reason: &str) {
    let mut end = reason.len().min(255);
    while !reason.is_char_boundary(end) {
        end -= 1;
    }
    let reason = &reason.as_bytes()[..end];
    let len = [u8::try_from(reason.len()).unwrap_or(u8::MAX)];
    encode_command(out, "ERROR", &[&len, reason]);
}

/// Parses ERROR data: one length octet and that many bytes of reason.
pub fn parse_error(data: &[u8]) -> Result<String, Error> {
    let Some((&len, rest)) = data.split_first() else {
        return Err(Error::malformed(b"ERROR", "reason length is missing"));
    };
    let len = usize::from(len);
    if rest.len() < len {
        return Err(Error::malformed(
            b"ERROR",
            "reason is shorter than its declared length",
        ));
    }
    Ok(String::from_utf8_lossy(&rest[..len]).into_owned())
}

/// A parsed PING.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ping {
    /// How long the sender will wait for traffic before it gives us up; zero for never.
    pub ttl: Duration,
    /// Opaque context to echo in the PONG.
    pub context: Bytes,
}

/// Parses PING data: a 16-bit TTL in deciseconds and up to 16 bytes of context.
///
/// A PING without its TTL is refused rather than read past its end (libzmq
/// would echo stale memory), and the TTL is widened before scaling so values
/// above 655 deciseconds do not wrap.
pub fn parse_ping(data: &Bytes) -> Result<Ping, Error> {
    if data.len() < PING_MIN_LEN - 5 {
        return Err(Error::malformed(b"PING", "TTL is missing"));
    }
    let context = data.slice(2..);
    if context.len() > MAX_PING_CONTEXT {
        return Err(Error::malformed(b"PING", "context is longer than 16 bytes"));
    }
    let deciseconds = u16::from_be_bytes([data[0], data[1]]);
    Ok(Ping {
        ttl: Duration::from_millis(u64::from(deciseconds) * 100),
        context,
    })
}

/// Appends a PING. The TTL is rounded down to deciseconds and capped at 6553.5 s.
pub fn encode_ping(out: &mut BytesMut, ttl: Duration, context: &[u8]) {
    let deciseconds = u16::try_from(ttl.as_millis() / 100).unwrap_or(MAX_TTL_DECISECONDS);
    let context = &context[..context.len().min(MAX_PING_CONTEXT)];
    encode_command(out, "PING", &[&deciseconds.to_be_bytes(), context]);
}

/// Parses PONG data: the echoed context, at most 16 bytes.
pub fn parse_pong(data: &Bytes) -> Result<Bytes, Error> {
    if data.len() > MAX_PING_CONTEXT {
        return Err(Error::malformed(b"PONG", "context is longer than 16 bytes"));
    }
    Ok(data.clone())
}

/// Appends a PONG echoing `context` exactly.
pub fn encode_pong(out: &mut BytesMut, context: &[u8]) {
    encode_command(out, "PONG", &[context]);
}

/// PLAIN HELLO credentials.
#[derive(Clone, PartialEq, Eq)]
pub struct PlainHello {
    /// User name, 0 to 255 bytes.
    pub username: Bytes,
    /// Password, 0 to 255 bytes; wiped from memory when dropped.
    pub password: zeroize::Zeroizing<Vec<u8>>,
}

impl std::fmt::Debug for PlainHello {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PlainHello")
            .field("username", &String::from_utf8_lossy(&self.username))
            .field("password", &"<redacted>")
            .finish()
    }
}

/// Parses PLAIN HELLO data: a length-prefixed user name and password that fill it exactly.
pub fn parse_plain_hello(data: &[u8]) -> Result<PlainHello, Error> {
    let bad = |reason| Error::malformed(b"HELLO", reason);
    let (&ulen, rest) = data.split_first().ok_or(bad("user name is missing"))?;
    let ulen = usize::from(ulen);
    if rest.len() < ulen {
        return Err(bad("user name is shorter than its declared length"));
    }
    let (user, rest) = rest.split_at(ulen);
    let (&plen, rest) = rest.split_first().ok_or(bad("password is missing"))?;
    let plen = usize::from(plen);
    if rest.len() != plen {
        return Err(bad("password length does not match the command size"));
    }
    Ok(PlainHello {
        username: Bytes::copy_from_slice(user),
        password: zeroize::Zeroizing::new(rest.to_vec()),
    })
}

/// Appends a PLAIN HELLO. Callers check both fields are at most 255 bytes.
pub fn encode_plain_hello(out: &mut BytesMut, username: &[u8], password: &[u8]) {
    let ulen = [u8::try_from(username.len()).unwrap_or(u8::MAX)];
    let plen = [u8::try_from(password.len()).unwrap_or(u8::MAX)];
    encode_command(
        out,
        "HELLO",
        &[
            &ulen,
            &username[..usize::from(ulen[0])],
            &plen,
            &password[..usize::from(plen[0])],
        ],
    );
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::frame::{decode_frame, FrameLimits};

    fn decode_one(buf: &mut BytesMut) -> RawCommand {
        let limits = FrameLimits {
            max_message_frame: 1024,
            max_command_frame: 1024,
        };
        let frame = decode_frame(buf, &limits).unwrap().unwrap();
        assert!(frame.command);
        RawCommand::parse(&frame.body).unwrap()
    }

    #[test]
    fn ping_pong_round_trip() {
        let mut buf = BytesMut::new();
        encode_ping(&mut buf, Duration::from_millis(65_600), b"ctx");
        let cmd = decode_one(&mut buf);
        assert!(cmd.is("PING"));
        let ping = parse_ping(&cmd.data).unwrap();
        // 656 deciseconds survives: no 16-bit wrap of the scaled value.
        assert_eq!(ping.ttl, Duration::from_millis(65_600));
        assert_eq!(&ping.context[..], b"ctx");
    }

    #[test]
    fn error_reason_round_trip_and_truncation() {
        let mut buf = BytesMut::new();
        encode_error(&mut buf, &"é".repeat(200));
        let cmd = decode_one(&mut buf);
        let reason = parse_error(&cmd.data).unwrap();
        assert_eq!(reason.len(), 254);
        assert!(parse_error(&[5, b'a']).is_err());
        assert!(parse_error(&[]).is_err());
    }

    #[test]
    fn libzmq_4_3_plain_error_is_recognised() {
        // The exact bytes libzmq 4.3.5 sends when its PLAIN server refuses a client.
        let body = Bytes::from_static(b"^RROR\x03400");
        assert!(RawCommand::parse(&body).is_err());
        let cmd = RawCommand::parse_handshake(&body).unwrap();
        assert!(cmd.is("ERROR"));
        assert_eq!(parse_error(&cmd.data).unwrap(), "400");
    }

    #[test]
    fn raw_command_rejects_bad_names() {
        assert!(RawCommand::parse(&Bytes::new()).is_err());
        assert!(RawCommand::parse(&Bytes::from_static(b"\x00")).is_err());
        assert!(RawCommand::parse(&Bytes::from_static(b"\x05READ")).is_err());
    }

    #[test]
    fn plain_hello_is_bounded_and_redacted() {
        let mut buf = BytesMut::new();
        encode_plain_hello(&mut buf, b"admin", b"secret");
        let cmd = decode_one(&mut buf);
        assert!(cmd.is("HELLO"));
        let hello = parse_plain_hello(&cmd.data).unwrap();
        assert_eq!(&hello.username[..], b"admin");
        assert_eq!(&hello.password[..], b"secret");
        assert!(!format!("{hello:?}").contains("secret"));
        assert!(parse_plain_hello(&[9, b'a']).is_err());
        assert!(parse_plain_hello(&[1, b'a', 3, b'x']).is_err());
        assert!(parse_plain_hello(&[1, b'a', 1, b'x', b'y']).is_err());
    }
}
