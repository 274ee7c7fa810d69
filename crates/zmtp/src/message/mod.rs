//! The multipart message: an ordered list of frames delivered atomically.

mod frame;

pub use frame::{Frame, INLINE_MAX};

use std::cell::RefCell;
use std::sync::Arc;

use bytes::Bytes;

use crate::frame::Arena;
use crate::metadata::Metadata;

thread_local! {
    /// Blocks that small frames built on this thread are copied into.
    static SEND_ARENA: RefCell<Arena> = RefCell::new(Arena::new());
}

/// A multipart message. Small frames are held inline and large ones are
/// reference-counted, so cloning a message or fanning it out to many peers
/// copies no large payload.
///
/// A received message also carries the properties of the connection it came
/// from (`Socket-Type`, `Identity`, `User-Id` set by the authenticator,
/// `Peer-Address`, and the authenticator's own properties), shared by all
/// messages of that connection. Equality and hashing look at frames only.
#[derive(Debug, Clone, Default)]
pub struct Message {
    frames: Frames,
    metadata: Option<Arc<Metadata>>,
}

/// Most messages have one frame: it is held inline, so building, queueing
/// and dropping such a message allocates no frame list.
#[derive(Debug, Clone, Default)]
enum Frames {
    #[default]
    None,
    One(Frame),
    Many(Vec<Frame>),
}

impl Frames {
    fn as_slice(&self) -> &[Frame] {
        match self {
            Frames::None => &[],
            Frames::One(f) => std::slice::from_ref(f),
            Frames::Many(v) => v,
        }
    }

    fn from_vec(mut v: Vec<Frame>) -> Frames {
        match v.len() {
            0 => Frames::None,
            1 => v.pop().map_or(Frames::None, Frames::One),
            _ => Frames::Many(v),
        }
    }
}

fn copy_frame(data: &[u8]) -> Frame {
    // Most messages fit inline: they need neither the thread's arena nor
    // the thread-local look-up that reaches it.
    Frame::inline(data).unwrap_or_else(|| {
        if let Some(large) = crate::body::copy_for_sending(data) {
            return Frame::from(large);
        }
        SEND_ARENA
            .try_with(|arena| Some(arena.try_borrow_mut().ok()?.frame(data)))
            .ok()
            .flatten()
            // A thread being torn down has no arena left, and a `fill` given
            // to `build_frame` runs while it is lent: allocate.
            .unwrap_or_else(|| Frame::copy_from_slice(data))
    })
}

fn build_frame(len: usize, fill: impl FnOnce(&mut [u8])) -> Frame {
    if len <= INLINE_MAX {
        return Frame::inline_built(len, fill);
    }
    let fill = match crate::body::build_for_sending(len, fill) {
        Ok(large) => return Frame::from(large),
        Err(fill) => fill,
    };
    let mut fill = Some(fill);
    let built = SEND_ARENA
        .try_with(|arena| {
            // `fill` may build messages itself while the arena is lent to
            // it: those get allocations of their own (see `copy_frame`).
            let mut arena = arena.try_borrow_mut().ok()?;
            Some(arena.build(len, fill.take()?))
        })
        .ok()
        .flatten();
    if let Some(body) = built {
        return Frame::from(body);
    }
    let mut own = bytes::BytesMut::zeroed(len);
    if let Some(fill) = fill {
        fill(&mut own);
    }
    Frame::from(own.freeze())
}

impl PartialEq for Message {
    fn eq(&self, other: &Message) -> bool {
        self.frames() == other.frames()
    }
}

impl Eq for Message {}

impl std::hash::Hash for Message {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        self.frames().hash(state);
    }
}

impl Message {
    /// A message with no frames yet.
    pub fn new() -> Message {
        Message::default()
    }

    /// A message made of the given frames.
    pub fn from_frames<I, F>(frames: I) -> Message
    where
        I: IntoIterator<Item = F>,
        F: Into<Frame>,
    {
        let mut it = frames.into_iter().map(Into::into);
        let frames = match (it.next(), it.next()) {
            (None, _) => Frames::None,
            (Some(one), None) => Frames::One(one),
            (Some(a), Some(b)) => {
                let mut v = Vec::with_capacity(2 + it.size_hint().0);
                v.push(a);
                v.push(b);
                v.extend(it);
                Frames::Many(v)
            }
        };
        Message {
            frames,
            metadata: None,
        }
    }

    /// A one-frame message holding a copy of `data`. Up to
    /// [`INLINE_MAX`] bytes are held in the message itself; up to 8 KiB
    /// are copied into a block shared with the next messages of about the
    /// same size built on the same thread (4 KiB blocks for up to 512
    /// bytes, up to 64 KiB ones for 4 to 8 KiB), so a stream of messages
    /// allocates once per block rather than once per message (a message
    /// kept long pins at most its block: 4 KiB, or sixteen times its own
    /// size). Larger data gets an allocation of its own; from
    /// 32 KiB to 1 MiB, a buffer that a written message gave back (so its
    /// pages are not faulted in again), from a pool of at most 1 MiB.
    pub fn copy_from_slice(data: &[u8]) -> Message {
        Message::from(copy_frame(data))
    }

    /// Appends a copy of `data` as a frame (small frames share blocks, as
    /// with [`copy_from_slice`](Message::copy_from_slice)).
    pub fn push_back_copy(&mut self, data: &[u8]) {
        self.push_back(copy_frame(data));
    }

    /// A one-frame message of `len` bytes that `fill` writes in place, as
    /// `zmq_msg_init_size` and then writing into `zmq_msg_data` do: the
    /// body is placed as [`copy_from_slice`](Message::copy_from_slice)
    /// would place it (inline, in a shared block, or in a recycled buffer),
    /// but nothing is copied into it. `fill` sees the body zeroed.
    ///
    /// ```
    /// # use zeroguard_zmtp::Message;
    /// let m = Message::build(4, |body| body.copy_from_slice(&7u32.to_be_bytes()));
    /// assert_eq!(&m.frames()[0][..], &[0, 0, 0, 7]);
    /// ```
    pub fn build(len: usize, fill: impl FnOnce(&mut [u8])) -> Message {
        Message::from(build_frame(len, fill))
    }

    /// Appends a frame of `len` bytes that `fill` writes in place (see
    /// [`build`](Message::build)).
    pub fn push_back_build(&mut self, len: usize, fill: impl FnOnce(&mut [u8])) {
        self.push_back(build_frame(len, fill));
    }

    /// Appends a frame.
    pub fn push_back(&mut self, frame: impl Into<Frame>) {
        let frame = frame.into();
        self.frames = match std::mem::take(&mut self.frames) {
            Frames::None => Frames::One(frame),
            Frames::One(a) => Frames::Many(vec![a, frame]),
            Frames::Many(mut v) => {
                v.push(frame);
                Frames::Many(v)
            }
        };
    }

    /// Prepends a frame (routing envelopes).
    pub fn push_front(&mut self, frame: impl Into<Frame>) {
        let frame = frame.into();
        self.frames = match std::mem::take(&mut self.frames) {
            Frames::None => Frames::One(frame),
            Frames::One(a) => Frames::Many(vec![frame, a]),
            Frames::Many(mut v) => {
                v.insert(0, frame);
                Frames::Many(v)
            }
        };
    }

    /// Removes and returns the first frame.
    pub fn pop_front(&mut self) -> Option<Frame> {
        match std::mem::take(&mut self.frames) {
            Frames::None => None,
            Frames::One(a) => Some(a),
            Frames::Many(mut v) => {
                let first = v.remove(0);
                self.frames = Frames::from_vec(v);
                Some(first)
            }
        }
    }

    /// The frames in order.
    pub fn frames(&self) -> &[Frame] {
        self.frames.as_slice()
    }

    /// Takes the frames out.
    pub fn into_frames(self) -> Vec<Frame> {
        match self.frames {
            Frames::None => Vec::new(),
            Frames::One(a) => vec![a],
            Frames::Many(v) => v,
        }
    }

    /// The first frame, if any.
    pub fn first(&self) -> Option<&Frame> {
        self.frames().first()
    }

    /// Number of frames.
    pub fn len(&self) -> usize {
        self.frames().len()
    }

    /// True when the message has no frames.
    pub fn is_empty(&self) -> bool {
        matches!(self.frames, Frames::None)
    }

    /// The properties of the connection the message arrived on.
    pub fn metadata(&self) -> Option<&Metadata> {
        self.metadata.as_deref()
    }

    /// One property of the connection the message arrived on (`User-Id`, ...).
    pub fn property(&self, name: &str) -> Option<&Bytes> {
        self.metadata.as_deref().and_then(|m| m.get(name))
    }

    /// Attaches connection properties (done by the socket layer on receipt).
    pub fn set_metadata(&mut self, metadata: Arc<Metadata>) {
        self.metadata = Some(metadata);
    }

    /// Sum of the frame sizes in bytes.
    #[inline]
    pub fn payload_len(&self) -> usize {
        match &self.frames {
            // Queues count every message they take and give: most have one frame.
            Frames::One(f) => f.len(),
            frames => frames.as_slice().iter().map(|f| f.len()).sum(),
        }
    }
}

impl From<Frame> for Message {
    fn from(frame: Frame) -> Message {
        Message {
            frames: Frames::One(frame),
            metadata: None,
        }
    }
}

impl From<Bytes> for Message {
    fn from(frame: Bytes) -> Message {
        Message::from(Frame::from(frame))
    }
}

impl From<Vec<u8>> for Message {
    fn from(frame: Vec<u8>) -> Message {
        Message::from(Frame::from(frame))
    }
}

impl From<String> for Message {
    fn from(frame: String) -> Message {
        Message::from(frame.into_bytes())
    }
}

impl From<&'static str> for Message {
    fn from(frame: &'static str) -> Message {
        Message::from(Frame::from(frame))
    }
}

impl From<&'static [u8]> for Message {
    fn from(frame: &'static [u8]) -> Message {
        Message::from(Frame::from(frame))
    }
}

impl From<Vec<Frame>> for Message {
    fn from(frames: Vec<Frame>) -> Message {
        Message {
            frames: Frames::from_vec(frames),
            metadata: None,
        }
    }
}

impl From<Vec<Bytes>> for Message {
    fn from(frames: Vec<Bytes>) -> Message {
        Message::from(frames.into_iter().map(Frame::from).collect::<Vec<_>>())
    }
}

impl IntoIterator for Message {
    type Item = Frame;
    type IntoIter = std::vec::IntoIter<Frame>;
    fn into_iter(self) -> Self::IntoIter {
        self.into_frames().into_iter()
    }
}

impl<'a> IntoIterator for &'a Message {
    type Item = &'a Frame;
    type IntoIter = std::slice::Iter<'a, Frame>;
    fn into_iter(self) -> Self::IntoIter {
        self.frames().iter()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn small_copies_are_inline_mid_sized_ones_share_a_block_and_large_ones_do_not() {
        let tiny = Message::copy_from_slice(b"tiny");
        assert!(tiny.frames()[0].is_inline());
        assert_eq!(tiny.frames()[0], &b"tiny"[..]);
        let first = [1u8; 100];
        let second = [2u8; 200];
        let a = Message::copy_from_slice(&first);
        let b = Message::copy_from_slice(&second);
        assert_eq!(a.frames()[0], first);
        assert_eq!(b.frames()[0], second);
        // Cut one after the other from the same block.
        let end_of_a = a.frames()[0].as_ptr().wrapping_add(100);
        assert_eq!(b.frames()[0].as_ptr(), end_of_a);
        // A few KiB share a block of their own size class.
        let mid = vec![7u8; 4000];
        let c = Message::copy_from_slice(&mid);
        let d = Message::copy_from_slice(&mid);
        assert_eq!(c.frames()[0], mid);
        assert_eq!(
            d.frames()[0].as_ptr(),
            c.frames()[0].as_ptr().wrapping_add(4000)
        );
        assert_ne!(c.frames()[0].as_ptr(), end_of_a.wrapping_add(200));
        // Past 8 KiB, each copy has its own allocation.
        let big = vec![8u8; 9000];
        let e = Message::copy_from_slice(&big);
        let f = Message::copy_from_slice(&big);
        assert_eq!(e.frames()[0], big);
        assert_ne!(
            f.frames()[0].as_ptr(),
            e.frames()[0].as_ptr().wrapping_add(9000)
        );
        let mut m = Message::copy_from_slice(b"id");
        m.push_back_copy(b"body");
        assert_eq!(m.len(), 2);
        assert_eq!(m.frames()[1], &b"body"[..]);
        // Dropping the first message of a block leaves the others intact.
        drop(a);
        assert_eq!(b.frames()[0], second);
    }

    #[test]
    fn built_bodies_start_zeroed_and_are_placed_as_copies_are() {
        let small = [0, 5, INLINE_MAX, INLINE_MAX + 1, 300, 600, 4000, 8192, 9000];
        let large = [40_000, 64 * 1024, crate::body::BODY_MAX + 1];
        for len in small.into_iter().chain(large) {
            // Stale bytes where the body may go: a dropped large copy's
            // buffer goes back to the send pool, a block keeps its bytes.
            drop(Message::copy_from_slice(&vec![0xAA; len]));
            let mut zeroed = false;
            let m = Message::build(len, |body| {
                zeroed = body.len() == len && body.iter().all(|&b| b == 0);
                body.fill(3);
            });
            assert!(zeroed, "{len} bytes");
            let frame = &m.frames()[0];
            assert_eq!(frame.len(), len);
            assert!(frame.iter().all(|&b| b == 3), "{len} bytes");
            assert_eq!(frame.is_inline(), len <= INLINE_MAX);
        }
        let a = Message::build(100, |b| b.fill(1));
        let mut m = Message::build(200, |b| b.fill(2));
        assert_eq!(
            m.frames()[0].as_ptr(),
            a.frames()[0].as_ptr().wrapping_add(100)
        );
        m.push_back_build(2, |b| b.copy_from_slice(b"ok"));
        assert_eq!(m.frames()[1], &b"ok"[..]);
    }

    #[test]
    fn a_body_may_be_filled_by_building_other_messages() {
        let mut inner = Vec::new();
        let outer = Message::build(300, |body| {
            inner.push(Message::copy_from_slice(&[7; 300]));
            inner.push(Message::build(300, |b| b.fill(8)));
            body.copy_from_slice(&inner[0].frames()[0]);
        });
        assert!(outer.frames()[0].iter().all(|&b| b == 7));
        assert!(inner[1].frames()[0].iter().all(|&b| b == 8));
    }
}
