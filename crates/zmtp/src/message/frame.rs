//! One frame of a message: small bodies held in place, larger ones shared.
//!
//! Most messages on a busy link are a few dozen bytes. Held inline, such a
//! frame costs no allocation and, above all, no reference count: a shared
//! buffer's count is touched by the thread that builds a message and again
//! by the one that drops it, and on a stream of small messages that count's
//! cache line moves between the cores with every message. libzmq keeps
//! messages of up to 33 bytes inline for the same reason.

use std::borrow::Borrow;
use std::fmt;
use std::hash::{Hash, Hasher};
use std::ops::Deref;

use bytes::Bytes;

use super::pooled::{self, Pooled};

/// Bodies of up to this many bytes are held inline: a frame is then six
/// words, the tag's and five (a shared body takes four). One byte more
/// would fit as well, but measured slower: the copies of the body then
/// split otherwise.
pub const INLINE_MAX: usize = 38;

/// One frame of a [`Message`](super::Message): a read-only byte string.
///
/// Up to [`INLINE_MAX`] bytes are held in the frame itself; bodies the
/// library copies (under 8 KiB) get a recycled buffer of their own; other
/// bodies are reference-counted [`Bytes`], so cloning a frame never copies
/// a large body. A frame dereferences to `[u8]` and compares by content
/// with byte slices, arrays, strings and `Bytes`.
#[derive(Clone)]
pub struct Frame(Repr);

/// The tag takes a whole word so that what follows it is word-aligned.
/// With a one-byte tag, every enum wrapped round a frame (the message's
/// frame list, `Option`, `Result`, a queue's item) kept its own tag in that
/// byte, and moving a message from one layer to the next copied the bytes
/// after it at odd offsets; the next load of them straddled two of those
/// stores, which the processor cannot forward, and waited for the cache
/// instead. On the path of a received message those waits were the
/// hottest instructions (16 B, `zeroguard perf`: 130 → 115 ns of CPU per
/// message on the receiving side, 147 → 122 ns on the sending side).
#[derive(Clone)]
#[repr(u64)]
enum Repr {
    Inline {
        len: u8,
        data: [u8; INLINE_MAX],
    },
    Shared(Bytes),
    /// Owned outright: no count for two threads to touch (see `pooled`).
    Pooled(Pooled),
}

impl Frame {
    /// An empty frame (a delimiter, say).
    pub const fn new() -> Frame {
        Frame(Repr::Inline {
            len: 0,
            data: [0; INLINE_MAX],
        })
    }

    /// A frame holding a copy of `data`: inline when it fits, otherwise in
    /// an allocation of its own.
    pub fn copy_from_slice(data: &[u8]) -> Frame {
        Frame::inline(data).unwrap_or_else(|| Frame(Repr::Shared(Bytes::copy_from_slice(data))))
    }

    /// A copy of `data` as the library makes one (a message the application
    /// copies, a frame cut from the read buffer): inline when it fits, in a
    /// recycled buffer of its own up to 8 KiB, otherwise in an allocation
    /// of its own.
    pub(crate) fn copied(data: &[u8]) -> Frame {
        Frame::inline(data).unwrap_or_else(|| match pooled::fits(data.len()) {
            true => Frame(Repr::Pooled(Pooled::copy(data))),
            false => Frame(Repr::Shared(Bytes::copy_from_slice(data))),
        })
    }

    /// A body of `len` bytes (under 8 KiB) in a recycled buffer, zeroed
    /// and then written by `fill`.
    pub(crate) fn pooled_built(len: usize, fill: impl FnOnce(&mut [u8])) -> Frame {
        Frame(Repr::Pooled(Pooled::build(len, fill)))
    }

    /// `data` held inline, if it fits.
    pub(crate) fn inline(data: &[u8]) -> Option<Frame> {
        let len = u8::try_from(data.len())
            .ok()
            .filter(|&n| usize::from(n) <= INLINE_MAX)?;
        let mut buf = [0; INLINE_MAX];
        buf[..data.len()].copy_from_slice(data);
        Some(Frame(Repr::Inline { len, data: buf }))
    }

    /// The inline body's whole array and the length used of it, for an
    /// encoder that copies the array whole (a fixed-size copy) and then
    /// cuts what it appended to the length.
    pub(crate) fn inline_parts(&self) -> Option<(&[u8; INLINE_MAX], usize)> {
        match &self.0 {
            Repr::Inline { len, data } => Some((data, usize::from(*len))),
            Repr::Shared(_) | Repr::Pooled(_) => None,
        }
    }

    /// A body of `len` bytes (at most [`INLINE_MAX`]; more is cut to it)
    /// held inline, zeroed and then written by `fill`.
    pub(crate) fn inline_built(len: usize, fill: impl FnOnce(&mut [u8])) -> Frame {
        let len = len.min(INLINE_MAX);
        let mut data = [0; INLINE_MAX];
        fill(&mut data[..len]);
        Frame(Repr::Inline {
            len: u8::try_from(len).unwrap_or(0),
            data,
        })
    }

    /// Makes a body the frame owns outright reference-counted (see
    /// [`Message::share`](super::Message::share)).
    pub(crate) fn share(&mut self) {
        if let Repr::Pooled(p) = &self.0 {
            self.0 = Repr::Shared(Bytes::copy_from_slice(p.as_slice()));
        }
    }

    /// Whether the body is held inline (no allocation, no shared count).
    pub fn is_inline(&self) -> bool {
        matches!(self.0, Repr::Inline { .. })
    }

    /// The body as [`Bytes`]: shared without copying when it is shared
    /// already, copied otherwise.
    pub fn to_bytes(&self) -> Bytes {
        match &self.0 {
            Repr::Shared(b) => b.clone(),
            Repr::Inline { .. } | Repr::Pooled(_) => Bytes::copy_from_slice(self),
        }
    }

    /// The body as [`Bytes`], copied unless it is shared already.
    pub fn into_bytes(self) -> Bytes {
        match self.0 {
            Repr::Shared(b) => b,
            Repr::Pooled(p) => Bytes::copy_from_slice(p.as_slice()),
            Repr::Inline { len, data } => Bytes::copy_from_slice(&data[..usize::from(len)]),
        }
    }

    /// The shared body, if the frame holds one (large frames): whoever
    /// writes it out can pass it on without copying.
    pub fn as_shared(&self) -> Option<&Bytes> {
        match &self.0 {
            Repr::Shared(b) => Some(b),
            Repr::Inline { .. } | Repr::Pooled(_) => None,
        }
    }

    /// The bytes from `start` on, as a frame (shared bodies are not
    /// copied, others are).
    pub fn slice_from(&self, start: usize) -> Frame {
        match &self.0 {
            Repr::Shared(b) => Frame::from(b.slice(start.min(b.len())..)),
            Repr::Inline { .. } | Repr::Pooled(_) => {
                Frame::copied(self.get(start..).unwrap_or_default())
            }
        }
    }
}

impl Default for Frame {
    fn default() -> Frame {
        Frame::new()
    }
}

impl Deref for Frame {
    type Target = [u8];
    fn deref(&self) -> &[u8] {
        match &self.0 {
            Repr::Inline { len, data } => &data[..usize::from(*len)],
            Repr::Shared(b) => b,
            Repr::Pooled(p) => p.as_slice(),
        }
    }
}

impl AsRef<[u8]> for Frame {
    fn as_ref(&self) -> &[u8] {
        self
    }
}

impl Borrow<[u8]> for Frame {
    fn borrow(&self) -> &[u8] {
        self
    }
}

impl fmt::Debug for Frame {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // As `Bytes` shows itself: b"..." with escapes.
        write!(f, "b\"")?;
        for &b in self.iter() {
            for c in std::ascii::escape_default(b) {
                write!(f, "{}", char::from(c))?;
            }
        }
        write!(f, "\"")
    }
}

impl PartialEq for Frame {
    fn eq(&self, other: &Frame) -> bool {
        **self == **other
    }
}

impl Eq for Frame {}

impl Hash for Frame {
    // As `[u8]` hashes, which `Borrow<[u8]>` requires.
    fn hash<H: Hasher>(&self, state: &mut H) {
        (**self).hash(state);
    }
}

impl PartialOrd for Frame {
    fn partial_cmp(&self, other: &Frame) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for Frame {
    fn cmp(&self, other: &Frame) -> std::cmp::Ordering {
        (**self).cmp(&**other)
    }
}

macro_rules! eq_with {
    ($($t:ty),*) => {$(
        impl PartialEq<$t> for Frame {
            fn eq(&self, other: &$t) -> bool {
                **self == *AsRef::<[u8]>::as_ref(other)
            }
        }
        impl PartialEq<Frame> for $t {
            fn eq(&self, other: &Frame) -> bool {
                *AsRef::<[u8]>::as_ref(self) == **other
            }
        }
    )*};
}

eq_with!([u8], Vec<u8>, str, String, Bytes);

impl<const N: usize> PartialEq<[u8; N]> for Frame {
    fn eq(&self, other: &[u8; N]) -> bool {
        **self == other[..]
    }
}

impl<T: ?Sized> PartialEq<&T> for Frame
where
    Frame: PartialEq<T>,
{
    fn eq(&self, other: &&T) -> bool {
        *self == **other
    }
}

impl From<Bytes> for Frame {
    /// Keeps `Bytes` as it is (shared, not copied), whatever its size.
    fn from(b: Bytes) -> Frame {
        Frame(Repr::Shared(b))
    }
}

impl From<Frame> for Bytes {
    fn from(f: Frame) -> Bytes {
        f.into_bytes()
    }
}

impl From<Vec<u8>> for Frame {
    fn from(v: Vec<u8>) -> Frame {
        Frame::inline(&v).unwrap_or_else(|| Frame::from(Bytes::from(v)))
    }
}

impl From<String> for Frame {
    fn from(s: String) -> Frame {
        Frame::from(s.into_bytes())
    }
}

impl From<&'static str> for Frame {
    fn from(s: &'static str) -> Frame {
        Frame::from(s.as_bytes())
    }
}

impl From<&'static [u8]> for Frame {
    fn from(s: &'static [u8]) -> Frame {
        Frame::inline(s).unwrap_or_else(|| Frame::from(Bytes::from_static(s)))
    }
}

impl<const N: usize> From<&'static [u8; N]> for Frame {
    fn from(s: &'static [u8; N]) -> Frame {
        Frame::from(&s[..])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn small_bodies_are_inline_and_large_ones_shared() {
        for n in [0, 1, 16, INLINE_MAX] {
            let data = vec![7u8; n];
            let f = Frame::copy_from_slice(&data);
            assert!(f.is_inline(), "{n} bytes");
            assert_eq!(f, data);
            assert_eq!(f.len(), n);
            assert_eq!(Frame::from(data.clone()), f);
        }
        let big = vec![9u8; INLINE_MAX + 1];
        let f = Frame::copy_from_slice(&big);
        assert!(!f.is_inline());
        assert_eq!(f, big);
        // A `Bytes` given is kept, not copied, so large bodies stay zero-copy.
        let b = Bytes::from(vec![1u8; 4096]);
        let f = Frame::from(b.clone());
        assert_eq!(f.as_shared().map(|s| s.as_ptr()), Some(b.as_ptr()));
        assert_eq!(f.into_bytes().as_ptr(), b.as_ptr());
    }

    #[test]
    fn a_one_frame_message_takes_seven_words() {
        // Six words: the tag's, then the length and the inline body.
        assert_eq!(std::mem::size_of::<Frame>(), 48);
        // The frame list keeps its own tag in the frame's, so only the
        // connection's properties come on top.
        assert_eq!(std::mem::size_of::<super::super::Message>(), 56);
    }

    #[test]
    fn equal_content_is_equal_whatever_the_storage() {
        let inline = Frame::copy_from_slice(b"hello");
        let shared = Frame::from(Bytes::from_static(b"hello"));
        assert_eq!(inline, shared);
        let hash = |f: &Frame| {
            let mut h = std::collections::hash_map::DefaultHasher::new();
            f.hash(&mut h);
            h.finish()
        };
        assert_eq!(hash(&inline), hash(&shared));
        assert_eq!(inline, &b"hello"[..]);
        assert_eq!(inline, "hello");
        assert_eq!(inline, *b"hello");
        assert_eq!(
            format!("{inline:?}"),
            format!("{:?}", Bytes::from_static(b"hello"))
        );
        assert_eq!(inline.slice_from(2), "llo");
        assert_eq!(shared.slice_from(9), "");
        assert_eq!(inline.to_bytes(), shared.to_bytes());
    }
}
