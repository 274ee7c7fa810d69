//! The multipart message: an ordered list of frames delivered atomically.

mod frame;
mod pooled;
mod properties;

pub use frame::{Frame, INLINE_MAX};

use properties::Properties;

use std::sync::Arc;

use bytes::Bytes;

use crate::metadata::Metadata;

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
    metadata: Properties,
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
    if pooled::fits(data.len()) {
        return Frame::copied(data);
    }
    match crate::body::copy_for_sending(data) {
        Some(large) => Frame::from(large),
        None => Frame::from(Bytes::copy_from_slice(data)),
    }
}

fn build_frame(len: usize, fill: impl FnOnce(&mut [u8])) -> Frame {
    if len <= INLINE_MAX {
        return Frame::inline_built(len, fill);
    }
    if pooled::fits(len) {
        return Frame::pooled_built(len, fill);
    }
    let fill = match crate::body::build_for_sending(len, fill) {
        Ok(large) => return Frame::from(large),
        Err(fill) => fill,
    };
    let mut own = bytes::BytesMut::zeroed(len);
    fill(&mut own);
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
            metadata: Properties::default(),
        }
    }

    /// A one-frame message holding a copy of `data`. Up to
    /// [`INLINE_MAX`] bytes are held in the message itself; under 8 KiB
    /// they are copied into a buffer of their own (the next power of two)
    /// that a dropped message gave back to its thread, so a stream of
    /// messages needs no allocation and no count shared between the
    /// building and the dropping thread. Larger data gets an allocation of
    /// its own; from
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
    /// would place it (inline or in a recycled buffer),
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

    /// Makes every frame's body reference-counted, so that clones of the
    /// message share the bodies instead of copying them: what a message
    /// sent to many peers wants. (A body the library copied is otherwise
    /// owned by its frame, which a clone copies: for one owner, that costs
    /// less than a count two threads would touch.)
    pub fn share(&mut self) {
        match &mut self.frames {
            Frames::None => {}
            Frames::One(f) => f.share(),
            Frames::Many(v) => v.iter_mut().for_each(Frame::share),
        }
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
        self.metadata.get()
    }

    /// One property of the connection the message arrived on (`User-Id`, ...).
    pub fn property(&self, name: &str) -> Option<&Bytes> {
        self.metadata.get().and_then(|m| m.get(name))
    }

    /// Attaches connection properties (done by the socket layer on receipt).
    pub fn set_metadata(&mut self, metadata: Arc<Metadata>) {
        self.metadata = Properties::new(metadata);
    }

    /// Attaches connection properties shared by many messages, as a
    /// receiving socket does: the hold that the last message dropped on
    /// this thread left, if it was on the same properties, so a stream of
    /// messages taken and dropped one by one touches no shared count.
    #[inline]
    pub fn share_metadata(&mut self, metadata: &Arc<Metadata>) {
        self.metadata = Properties::of(metadata);
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
            metadata: Properties::default(),
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
            metadata: Properties::default(),
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
    fn small_copies_are_inline_and_others_own_their_bodies() {
        let tiny = Message::copy_from_slice(b"tiny");
        assert!(tiny.frames()[0].is_inline());
        assert_eq!(tiny.frames()[0], &b"tiny"[..]);
        for len in [INLINE_MAX + 1, 256, 4000, 8191, 9000, 40_000] {
            let body: Vec<u8> = (0..len).map(|i| i.to_le_bytes()[0] ^ 0x5a).collect();
            let a = Message::copy_from_slice(&body);
            let frame = &a.frames()[0];
            assert_eq!(frame, &body);
            assert!(!frame.is_inline());
            // Under 8 KiB the body is the frame's own: nothing to share.
            assert_eq!(frame.as_shared().is_none(), len < 8192, "{len} bytes");
            // A copy of a message made by the library is a copy, whatever
            // its size; a shared one shares.
            let b = a.clone();
            assert_eq!(b, a);
            let apart = b.frames()[0].as_ptr() != frame.as_ptr();
            assert_eq!(apart, len < 8192, "{len} bytes");
            let mut c = a.clone();
            c.share();
            assert_eq!(c, a);
            let d = c.clone();
            assert_eq!(d.frames()[0].as_ptr(), c.frames()[0].as_ptr());
        }
        // The buffer of a dropped body carries the next of its size.
        let a = Message::copy_from_slice(&[1; 300]);
        let at = a.frames()[0].as_ptr();
        drop(a);
        let b = Message::copy_from_slice(&[2; 290]);
        assert_eq!(b.frames()[0].as_ptr(), at);
        assert_eq!(b.frames()[0], [2u8; 290]);
        let mut m = Message::copy_from_slice(b"id");
        m.push_back_copy(b"body");
        assert_eq!(m.len(), 2);
        assert_eq!(m.frames()[1], &b"body"[..]);
    }

    #[test]
    fn built_bodies_start_zeroed_and_are_placed_as_copies_are() {
        let small = [0, 5, INLINE_MAX, INLINE_MAX + 1, 300, 600, 4000, 8192, 9000];
        let large = [40_000, 64 * 1024, crate::body::BODY_MAX + 1];
        for len in small.into_iter().chain(large) {
            // Stale bytes where the body may go: a dropped copy's buffer
            // goes back to its pool with its bytes.
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
        let a = Message::copy_from_slice(&[1; 100]);
        let at = a.frames()[0].as_ptr();
        drop(a);
        let mut m = Message::build(120, |b| b.fill(2));
        assert_eq!(m.frames()[0].as_ptr(), at, "built where a copy would be");
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
