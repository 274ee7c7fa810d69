//! The multipart message: an ordered list of `Bytes` frames delivered atomically.

use bytes::Bytes;

/// A multipart message. Frames are reference-counted, so cloning a message
/// or fanning it out to many peers copies no payload.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash)]
pub struct Message {
    frames: Vec<Bytes>,
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

    /// Sum of the frame sizes in bytes.
    pub fn payload_len(&self) -> usize {
        self.frames.iter().map(Bytes::len).sum()
    }
}

impl From<Bytes> for Message {
    fn from(frame: Bytes) -> Message {
        Message {
            frames: vec![frame],
        }
    }
}

impl From<Vec<u8>> for Message {
    fn from(frame: Vec<u8>) -> Message {
        Message::from(Bytes::from(frame))
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
        Message { frames }
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
