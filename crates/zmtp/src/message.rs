//! The multipart message: an ordered list of `Bytes` frames delivered atomically.

use std::sync::Arc;

use bytes::Bytes;

use crate::metadata::Metadata;

/// A multipart message. Frames are reference-counted, so cloning a message
/// or fanning it out to many peers copies no payload.
///
/// A received message also carries the properties of the connection it came
/// from (`Socket-Type`, `Identity`, `User-Id` set by the authenticator,
/// `Peer-Address`, and the authenticator's own properties), shared by all
/// messages of that connection. Equality and hashing look at frames only.
#[derive(Debug, Clone, Default)]
pub struct Message {
    frames: Vec<Bytes>,
    metadata: Option<Arc<Metadata>>,
}

impl PartialEq for Message {
    fn eq(&self, other: &Message) -> bool {
        self.frames == other.frames
    }
}

impl Eq for Message {}

impl std::hash::Hash for Message {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        self.frames.hash(state);
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
        F: Into<Bytes>,
    {
        Message {
            frames: frames.into_iter().map(Into::into).collect(),
            metadata: None,
        }
    }

    /// Appends a frame.
    pub fn push_back(&mut self, frame: impl Into<Bytes>) {
        self.frames.push(frame.into());
    }

    /// Prepends a frame (routing envelopes).
    pub fn push_front(&mut self, frame: impl Into<Bytes>) {
        self.frames.insert(0, frame.into());
    }

    /// Removes and returns the first frame.
    pub fn pop_front(&mut self) -> Option<Bytes> {
        if self.frames.is_empty() {
            None
        } else {
            Some(self.frames.remove(0))
        }
    }

    /// The frames in order.
    pub fn frames(&self) -> &[Bytes] {
        &self.frames
    }

    /// Takes the frames out.
    pub fn into_frames(self) -> Vec<Bytes> {
        self.frames
    }

    /// The first frame, if any.
    pub fn first(&self) -> Option<&Bytes> {
        self.frames.first()
    }

    /// Number of frames.
    pub fn len(&self) -> usize {
        self.frames.len()
    }

    /// True when the message has no frames.
    pub fn is_empty(&self) -> bool {
        self.frames.is_empty()
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
    pub fn payload_len(&self) -> usize {
        self.frames.iter().map(Bytes::len).sum()
    }
}

impl From<Bytes> for Message {
    fn from(frame: Bytes) -> Message {
        Message {
            frames: vec![frame],
            metadata: None,
        }
    }
}

impl From<Vec<u8>> for Message {
    fn from(frame: Vec<u8>) -> Message {
        Message::from(Bytes::from(frame))
    }
}

impl From<String> for Message {
    fn from(frame: String) -> Message {
        Message::from(frame.into_bytes())
    }
}

impl From<&'static str> for Message {
    fn from(frame: &'static str) -> Message {
        Message::from(Bytes::from_static(frame.as_bytes()))
    }
}

impl From<&'static [u8]> for Message {
    fn from(frame: &'static [u8]) -> Message {
        Message::from(Bytes::from_static(frame))
    }
}

impl From<Vec<Bytes>> for Message {
    fn from(frames: Vec<Bytes>) -> Message {
        Message {
            frames,
            metadata: None,
        }
    }
}

impl IntoIterator for Message {
    type Item = Bytes;
    type IntoIter = std::vec::IntoIter<Bytes>;
    fn into_iter(self) -> Self::IntoIter {
        self.frames.into_iter()
    }
}

impl<'a> IntoIterator for &'a Message {
    type Item = &'a Bytes;
    type IntoIter = std::slice::Iter<'a, Bytes>;
    fn into_iter(self) -> Self::IntoIter {
        self.frames.iter()
    }
}
