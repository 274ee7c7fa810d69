//! Bytes encoded for one connection and not yet written.
//!
//! Small frames are encoded into one buffer; a large cleartext frame is not
//! copied at all: the buffer so far (ending with the frame's header) and the
//! frame's own bytes become segments, and one vectored write sends the
//! segments and the buffer together.

use std::collections::VecDeque;
use std::io::{self, IoSlice};

use bytes::{Buf, Bytes, BytesMut};
use zeroguard_zmtp::{Connection, Error as ProtocolError, Message};

/// Most buffers handed to one vectored write (Linux takes up to 1024).
const MAX_SLICES: usize = 64;

/// What a connection has encoded and the stream has not yet taken, in order:
/// the segments, then the buffer.
#[derive(Debug, Default)]
pub(crate) struct Outgoing {
    segments: Segments,
    /// Where small frames, headers and commands are encoded.
    pub(crate) buf: BytesMut,
}

/// Large frames and the buffer before each, by reference. A field of its
/// own, so that encoding borrows it beside the buffer rather than moving
/// the buffer out and back for every message.
#[derive(Debug, Default)]
struct Segments {
    list: VecDeque<Bytes>,
    bytes: usize,
}

impl Extend<Bytes> for Segments {
    fn extend<I: IntoIterator<Item = Bytes>>(&mut self, iter: I) {
        for b in iter {
            if !b.is_empty() {
                self.bytes += b.len();
                self.list.push_back(b);
            }
        }
    }
}

impl Outgoing {
    /// Bytes waiting to be written.
    pub(crate) fn len(&self) -> usize {
        self.segments.bytes + self.buf.len()
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.segments.list.is_empty() && self.buf.is_empty()
    }

    /// Encodes a message (large cleartext frames by reference).
    pub(crate) fn encode(
        &mut self,
        conn: &mut Connection,
        msg: &Message,
    ) -> Result<(), ProtocolError> {
        conn.send_segmented(msg, &mut self.buf, &mut self.segments)
    }

    /// Encodes messages in order, checking the connection once for them all.
    pub(crate) fn encode_all<'a>(
        &mut self,
        conn: &mut Connection,
        msgs: impl IntoIterator<Item = &'a Message>,
    ) -> Result<(), ProtocolError> {
        conn.send_all(msgs, &mut self.buf, &mut self.segments)
    }

    /// Drops everything not yet written.
    pub(crate) fn clear(&mut self) {
        self.segments.list.clear();
        self.segments.bytes = 0;
        self.buf.clear();
    }

    /// Gives back the buffer's memory (nothing may be waiting).
    pub(crate) fn release(&mut self) {
        if self.is_empty() {
            self.segments = Segments::default();
            self.buf = BytesMut::new();
        }
    }

    /// Writes as much as the stream takes with one system call.
    pub(crate) fn write_to(
        &mut self,
        write: impl FnOnce(&[u8]) -> io::Result<usize>,
        write_vectored: impl FnOnce(&[IoSlice<'_>]) -> io::Result<usize>,
    ) -> io::Result<usize> {
        if self.segments.list.is_empty() {
            let n = write(&self.buf)?;
            self.buf.advance(n);
            return Ok(n);
        }
        let mut slices = [IoSlice::new(&[]); MAX_SLICES];
        let mut used = 0;
        for (slot, segment) in slices.iter_mut().zip(&self.segments.list) {
            *slot = IoSlice::new(segment);
            used += 1;
        }
        if used == self.segments.list.len() && used < MAX_SLICES && !self.buf.is_empty() {
            slices[used] = IoSlice::new(&self.buf);
            used += 1;
        }
        let written = write_vectored(&slices[..used])?;
        let mut n = written;
        while n > 0 {
            match self.segments.list.front_mut() {
                Some(front) if n >= front.len() => {
                    n -= front.len();
                    self.segments.bytes -= front.len();
                    self.segments.list.pop_front();
                }
                Some(front) => {
                    front.advance(n);
                    self.segments.bytes -= n;
                    n = 0;
                }
                None => {
                    self.buf.advance(n);
                    n = 0;
                }
            }
        }
        Ok(written)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn partial_vectored_writes_resume_where_they_stopped() {
        let mut out = Outgoing::default();
        out.buf.extend_from_slice(b"head");
        let tail = out.buf.split().freeze();
        out.segments
            .extend([tail, Bytes::from_static(b"0123456789")]);
        out.buf.extend_from_slice(b"end");
        assert_eq!(out.len(), 17);
        // The stream takes 3 bytes at a time.
        let wire = std::cell::RefCell::new(Vec::new());
        let take3 = |bytes: &mut dyn Iterator<Item = u8>| -> io::Result<usize> {
            let mut wire = wire.borrow_mut();
            let before = wire.len();
            wire.extend(bytes.take(3));
            Ok(wire.len() - before)
        };
        while !out.is_empty() {
            let taken = out.write_to(
                |b| take3(&mut b.iter().copied()),
                |s| take3(&mut s.iter().flat_map(|s| s.iter().copied())),
            );
            assert!(matches!(taken, Ok(1..=3)));
        }
        let wire = wire.into_inner();
        assert_eq!(wire, b"head0123456789end");
        assert_eq!(out.len(), 0);
    }
}
