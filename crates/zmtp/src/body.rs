//! Large frame bodies in buffers that are recycled: received ones read
//! straight into their connection's, sent ones copied into a shared pool's.
//!
//! A 64 KiB message read into the ordinary input buffer costs a fresh
//! allocation per message (the buffer is shared with the frames cut from
//! it, so it cannot be reused), and the allocator hands that memory back to
//! the kernel whenever the application drains its queue: the next messages
//! then pay a page fault for every 4 KiB they touch. Here, once the header
//! of a large frame has arrived, the rest of its body is read into a buffer
//! of its own; when the application drops the message, the buffer returns
//! to its connection's pool and carries the next one, its pages already
//! mapped.
//!
//! A peer's declaration alone never allocates: a buffer is either taken
//! from the pool (memory the connection already holds because earlier
//! messages needed it) or allocated once at least half the body has
//! arrived, no more than the ordinary buffer would have grown to.
//!
//! The sending side has the same problem the other way round: a large
//! frame the application copies into a message is freed by the I/O thread
//! once written, and the next copy faults its pages in again (on a 64 KiB
//! stream, more than one fault per message and a fifth of the sender's
//! time). Such copies go into buffers from one process-wide pool, which
//! written messages return to.

use std::sync::{Arc, Mutex, Weak};

use bytes::{BufMut, Bytes, BytesMut};

/// Bodies from this size on are read into buffers of their own.
pub(crate) const BODY_MIN: usize = 32 * 1024;
/// Larger bodies stay in the ordinary input buffer: a recycled buffer is
/// held for as long as the connection is busy.
pub(crate) const BODY_MAX: usize = 1024 * 1024;
/// How many spare buffers a connection keeps.
const POOL_BUFFERS: usize = 8;
/// How much spare memory a connection keeps at most, whatever sizes its
/// peer sends: one buffer of the largest body, or eight of 128 KiB. A busy
/// connection holds this beyond its queued messages, a quiet one nothing.
const POOL_BYTES: usize = BODY_MAX + NEXT_HEADER;
/// Complete bodies a connection sets aside while it reads on, before they
/// are decoded: up to four 64 KiB messages per hand-over to the
/// application, so a stream of them costs the receiving thread one wake-up
/// per four rather than one each. Counted in the connection's retained
/// input, as the same bytes in its input buffer would be.
pub(crate) const HELD_BODIES_BYTES: usize = 4 * (64 * 1024 + NEXT_HEADER);
/// After a large body, the next read into the input buffer stops here: it
/// should bring the next header and little of its body, which would
/// otherwise be copied from the input buffer into the body's own.
pub(crate) const LEAD_READ: usize = 8 * 1024;

/// Room a body's buffer keeps beyond the body: the longest frame header.
/// The read that ends a body may bring the next frame's header with it, so
/// that when the next frame is large too, its body goes straight into a
/// buffer of its own: one read per frame and nothing copied, where a read
/// of the header alone would cost a second system call per frame.
pub(crate) const NEXT_HEADER: usize = 9;

/// Spare body buffers of one connection. Messages hold it weakly, so a
/// message that outlives its connection frees its buffer.
#[derive(Debug, Default)]
pub(crate) struct BodyPool {
    spare: Mutex<Vec<Vec<u8>>>,
}

/// Spare buffers for large frames copied by the application, shared by all
/// sending threads (the thread that builds a message is rarely the one that
/// frees it). Bounded as a connection's pool is.
static SEND_POOL: BodyPool = BodyPool::new();

/// A frame body holding a copy of `data`, in a buffer from the shared send
/// pool when its size is one the pools recycle (`None` otherwise).
pub(crate) fn copy_for_sending(data: &[u8]) -> Option<Bytes> {
    copy_into_spare(&SEND_POOL, data)
}

/// A frame body of `len` bytes, zeroed and then written in place by
/// `fill`, in a buffer from the shared send pool when its size is one the
/// pools recycle (`fill` is given back otherwise).
pub(crate) fn build_for_sending<F: FnOnce(&mut [u8])>(len: usize, fill: F) -> Result<Bytes, F> {
    build_into_spare(&SEND_POOL, len, fill)
}

fn build_into_spare<F: FnOnce(&mut [u8])>(
    pool: &'static BodyPool,
    len: usize,
    fill: F,
) -> Result<Bytes, F> {
    if !(BODY_MIN..=BODY_MAX).contains(&len) {
        return Err(fill);
    }
    Ok(into_spare(pool, len, |buffer| {
        buffer.resize(len, 0);
        fill(buffer);
    }))
}

fn copy_into_spare(pool: &'static BodyPool, data: &[u8]) -> Option<Bytes> {
    if !(BODY_MIN..=BODY_MAX).contains(&data.len()) {
        return None;
    }
    Some(into_spare(pool, data.len(), |buffer| {
        buffer.extend_from_slice(data);
    }))
}

/// A buffer of at least `len` bytes from `pool` (or a new one), which
/// `put` fills, shared so that it goes back to `pool` when dropped.
fn into_spare(pool: &'static BodyPool, len: usize, put: impl FnOnce(&mut Vec<u8>)) -> Bytes {
    let mut buffer = pool.take(len).unwrap_or_else(|| Vec::with_capacity(len));
    put(&mut buffer);
    Bytes::from_owner(Recycled {
        data: buffer,
        home: Home::Shared(pool),
    })
}

impl BodyPool {
    const fn new() -> BodyPool {
        BodyPool {
            spare: Mutex::new(Vec::new()),
        }
    }

    /// A buffer with room for `size` bytes from the pool, if one is spare.
    /// The smallest that fits, so a large spare buffer is not spent on a
    /// small body (its unused part would be memory no queue limit counts).
    pub(crate) fn take(&self, size: usize) -> Option<Vec<u8>> {
        let mut spare = self.spare.lock().unwrap_or_else(|e| e.into_inner());
        let (i, _) = spare
            .iter()
            .enumerate()
            .filter(|(_, b)| b.capacity() >= size)
            .min_by_key(|(_, b)| b.capacity())?;
        Some(spare.swap_remove(i))
    }

    fn give_back(&self, mut buffer: Vec<u8>) {
        buffer.clear();
        let mut spare = self.spare.lock().unwrap_or_else(|e| e.into_inner());
        let held: usize = spare.iter().map(Vec::capacity).sum();
        if spare.len() < POOL_BUFFERS && held + buffer.capacity() <= POOL_BYTES {
            spare.push(buffer);
        }
    }

    /// Frees the spare buffers (a quiet connection holds none).
    pub(crate) fn release(&self) {
        let mut spare = self.spare.lock().unwrap_or_else(|e| e.into_inner());
        *spare = Vec::new();
    }

    /// Bytes held by spare buffers.
    #[cfg(test)]
    fn spare_bytes(&self) -> usize {
        let spare = self.spare.lock().unwrap_or_else(|e| e.into_inner());
        spare.iter().map(Vec::capacity).sum()
    }
}

/// Where a recycled buffer goes back to.
enum Home {
    /// Its connection's pool, if the connection is still there.
    Connection(Weak<BodyPool>),
    /// The process-wide pool of sent frames.
    Shared(&'static BodyPool),
}

/// A buffer that goes back to its pool when the last message sharing it is
/// dropped.
struct Recycled {
    data: Vec<u8>,
    home: Home,
}

impl AsRef<[u8]> for Recycled {
    fn as_ref(&self) -> &[u8] {
        &self.data
    }
}

impl Drop for Recycled {
    fn drop(&mut self) {
        let data = std::mem::take(&mut self.data);
        match &self.home {
            Home::Connection(pool) => {
                if let Some(pool) = pool.upgrade() {
                    pool.give_back(data);
                }
            }
            Home::Shared(pool) => pool.give_back(data),
        }
    }
}

/// A message frame whose body is being read into its own buffer.
#[derive(Debug)]
pub(crate) struct LargeBody {
    /// The frame's MORE flag.
    pub(crate) more: bool,
    size: usize,
    data: Vec<u8>,
}

impl LargeBody {
    /// Starts a body of `size` bytes with the `start` already received, in
    /// a buffer from `pool` or, when none is spare, a new one if `start` is
    /// at least half the body (otherwise `None`: keep buffering as usual).
    pub(crate) fn start(
        pool: &BodyPool,
        more: bool,
        size: usize,
        start: &[u8],
    ) -> Option<LargeBody> {
        debug_assert!(start.len() < size);
        let mut data = match pool.take(size + NEXT_HEADER) {
            Some(data) => data,
            None if start.len() >= size / 2 => Vec::with_capacity(size + NEXT_HEADER),
            None => return None,
        };
        data.extend_from_slice(start);
        Some(LargeBody { more, size, data })
    }

    /// Bytes still to come.
    pub(crate) fn missing(&self) -> usize {
        self.size.saturating_sub(self.data.len())
    }

    /// Memory the body holds.
    pub(crate) fn held(&self) -> usize {
        self.data.capacity()
    }

    /// Hands the unfilled part of the body to `read`, and room for the
    /// next frame's header after it (see [`NEXT_HEADER`]): what `read`
    /// appends beyond the body goes to `after`, which must be empty.
    pub(crate) fn read_into<E>(
        &mut self,
        after: &mut BytesMut,
        read: impl FnOnce(&mut dyn BufMut) -> Result<usize, E>,
    ) -> Result<usize, E> {
        debug_assert!(after.is_empty());
        let missing = self.missing();
        let mut room = (&mut self.data).limit(missing + NEXT_HEADER);
        let read = read(&mut room);
        if let Some(beyond) = self.data.get(self.size..) {
            after.extend_from_slice(beyond);
            self.data.truncate(self.size);
        }
        read
    }

    /// Appends what the body still misses from `data`; returns how much.
    pub(crate) fn fill_from(&mut self, data: &[u8]) -> usize {
        let n = self.missing().min(data.len());
        self.data.extend_from_slice(&data[..n]);
        n
    }

    /// The complete body, which returns its buffer to `pool` when dropped.
    pub(crate) fn finish(self, pool: &Arc<BodyPool>) -> Bytes {
        debug_assert_eq!(self.missing(), 0);
        Bytes::from_owner(Recycled {
            data: self.data,
            home: Home::Connection(Arc::downgrade(pool)),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Reads the rest of the body and nothing after it.
    fn fill(body: &mut LargeBody, byte: u8) {
        let missing = body.missing();
        let mut after = BytesMut::new();
        let n = body
            .read_into(&mut after, |b| {
                b.put_bytes(byte, missing);
                Ok::<_, ()>(missing)
            })
            .unwrap();
        assert!(n > 0);
        assert!(after.is_empty());
    }

    /// A complete body of `size` bytes, half of which came with its header.
    fn complete(pool: &Arc<BodyPool>, size: usize) -> Bytes {
        let mut b = LargeBody::start(pool, false, size, &vec![0; size / 2]).unwrap();
        fill(&mut b, 1);
        b.finish(pool)
    }

    #[test]
    fn a_dropped_body_carries_the_next_one() {
        let pool = Arc::new(BodyPool::default());
        let mut first = LargeBody::start(&pool, false, 40_000, &[1; 30_000]).unwrap();
        fill(&mut first, 2);
        let first = first.finish(&pool);
        assert_eq!(first.len(), 40_000);
        assert_eq!(&first[29_999..30_001], &[1, 2]);
        let address = first.as_ptr();
        assert_eq!(pool.spare_bytes(), 0);
        drop(first);
        assert!(pool.spare_bytes() >= 40_000);
        // From the pool, a body starts with its header alone.
        let second = LargeBody::start(&pool, true, 40_000, &[]).unwrap();
        assert_eq!(second.data.as_ptr(), address);
        assert_eq!(second.missing(), 40_000);
    }

    #[test]
    fn a_written_copy_carries_the_next_one() {
        static POOL: BodyPool = BodyPool::new();
        assert!(copy_into_spare(&POOL, &[1; BODY_MIN - 1]).is_none());
        assert!(copy_into_spare(&POOL, &vec![1; BODY_MAX + 1]).is_none());
        let first = copy_into_spare(&POOL, &[1; 64 * 1024]).unwrap();
        assert_eq!(&first[..], &[1; 64 * 1024][..]);
        let address = first.as_ptr();
        let shared = first.clone();
        drop(first);
        assert_eq!(POOL.spare_bytes(), 0, "still shared");
        drop(shared);
        assert!(POOL.spare_bytes() >= 64 * 1024);
        let second = copy_into_spare(&POOL, &[2; 40_000]).unwrap();
        assert_eq!(second.as_ptr(), address);
        assert_eq!(&second[..], &[2; 40_000][..]);
        assert_eq!(POOL.spare_bytes(), 0);
    }

    #[test]
    fn a_built_body_never_shows_what_its_buffer_carried_before() {
        static POOL: BodyPool = BodyPool::new();
        assert!(build_into_spare(&POOL, BODY_MIN - 1, |_| {}).is_err());
        let first = copy_into_spare(&POOL, &[0xAA; 64 * 1024]).unwrap();
        let address = first.as_ptr();
        drop(first);
        let mut zeroed = false;
        let second = build_into_spare(&POOL, 50_000, |body| {
            zeroed = body.len() == 50_000 && body.iter().all(|&b| b == 0);
            body[..2].copy_from_slice(b"ok");
        })
        .unwrap_or_default();
        assert!(zeroed);
        assert_eq!(second.as_ptr(), address, "the recycled buffer carries it");
        assert_eq!((second.len(), &second[..3]), (50_000, &b"ok\0"[..]));
    }

    #[test]
    fn a_declaration_alone_allocates_nothing() {
        let pool = Arc::new(BodyPool::default());
        assert!(LargeBody::start(&pool, false, 1 << 20, &[0; 100]).is_none());
        assert!(LargeBody::start(&pool, false, 1 << 20, &[0; (1 << 19) - 1]).is_none());
        assert!(LargeBody::start(&pool, false, 1 << 20, &[0; 1 << 19]).is_some());
    }

    #[test]
    fn a_read_ends_with_the_next_frames_header_and_no_more() {
        let pool = Arc::new(BodyPool::default());
        let mut body = LargeBody::start(&pool, false, 50_000, &[0; 25_000]).unwrap();
        let mut after = BytesMut::new();
        let n = body
            .read_into(&mut after, |b| {
                // As much as offered: the rest of the body, then what follows.
                let n = b.remaining_mut();
                for i in 0..n {
                    b.put_u8(u8::try_from(i % 251).unwrap_or(0));
                }
                Ok::<_, ()>(n)
            })
            .unwrap();
        assert_eq!(n, 25_000 + NEXT_HEADER);
        assert_eq!(body.missing(), 0);
        let body = body.finish(&pool);
        assert_eq!(body.len(), 50_000);
        assert_eq!(body[49_999], u8::try_from(24_999 % 251).unwrap_or(0));
        let next: Vec<u8> = (25_000..25_000 + NEXT_HEADER)
            .map(|i| u8::try_from(i % 251).unwrap_or(0))
            .collect();
        assert_eq!(&after[..], &next[..]);
    }

    #[test]
    fn spare_body_buffers_never_exceed_a_megabyte_per_connection() {
        let pool = Arc::new(BodyPool::default());
        for size in [BODY_MAX, BODY_MAX / 2, 200_000, BODY_MIN] {
            let bodies: Vec<Bytes> = (0..POOL_BUFFERS + 2)
                .map(|_| complete(&pool, size))
                .collect();
            drop(bodies);
            assert!(pool.spare_bytes() <= POOL_BYTES, "{size}");
            assert!(pool.spare_bytes() > 0, "{size}");
        }
    }

    #[test]
    fn a_small_body_takes_the_smallest_spare_buffer_that_fits() {
        let pool = Arc::new(BodyPool::default());
        let made: Vec<Bytes> = [600_000, 40_000, 100_000]
            .into_iter()
            .map(|size| complete(&pool, size))
            .collect();
        drop(made);
        let body = LargeBody::start(&pool, false, 50_000, &[]).unwrap();
        assert!(body.held() >= 100_000 && body.held() < 600_000);
        let body = LargeBody::start(&pool, false, 35_000, &[]).unwrap();
        assert!(body.held() < 100_000);
    }

    #[test]
    fn the_pool_keeps_a_few_buffers_and_none_once_released() {
        let pool = Arc::new(BodyPool::default());
        let bodies: Vec<Bytes> = (0..POOL_BUFFERS + 3)
            .map(|_| complete(&pool, 40_000))
            .collect();
        drop(bodies);
        assert_eq!(pool.spare.lock().unwrap().len(), POOL_BUFFERS);
        assert!(pool.spare_bytes() <= POOL_BYTES);
        pool.release();
        assert_eq!(pool.spare_bytes(), 0);
        // A message that outlives its connection frees its own buffer.
        let kept = complete(&pool, 40_000);
        drop(pool);
        drop(kept);
    }
}
