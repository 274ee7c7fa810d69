//! Buffers for frame bodies too large to hold inline and small enough to
//! copy (39 bytes up to [`ZERO_COPY_THRESHOLD`]), recycled through caches
//! of the threads that drop them.
//!
//! Such a body used to be cut from a block shared with its neighbours: one
//! allocation per block, but a count in the block that the thread building
//! each message incremented and the thread dropping it decremented (the
//! application and the I/O thread, both ways). The locked increment waited
//! for the copy's stores into memory last used on the other core, and the
//! block went back to the allocator from the wrong thread: at 256 B that
//! was a quarter of the receiving side's time. Here each body has a buffer
//! of its own, of a power-of-two size, owned outright by its frame: no
//! count at all. A dropped buffer goes to its thread's cache; a cache that
//! fills passes a magazine of buffers to a depot shared by all threads, and
//! one that runs dry takes a magazine from it. One lock per magazine rather
//! than per message, and in steady state no allocator call at all.
//!
//! Everything held is bounded: a thread's cache keeps at most two
//! magazines per size class (32 KiB each, or eight buffers), the depot
//! [`DEPOT_MAGAZINES`] per class, or as many as hold [`DEPOT_BUFFERS`]
//! where magazines are short (2 KiB to 8 KiB: 1 MiB, 2 MiB and 4 MiB);
//! past that, buffers are freed.

use std::cell::RefCell;
use std::sync::{Mutex, MutexGuard};

use crate::frame::ZERO_COPY_THRESHOLD;

/// The smallest buffer, 64 bytes, is `1 << MIN_SHIFT`.
const MIN_SHIFT: u32 = 6;
/// Size classes: 64 bytes to 8 KiB, each twice the one before.
const CLASSES: usize = 8;
/// Bytes of buffers in one magazine of small buffers.
const MAGAZINE_BYTES: usize = 32 * 1024;
/// Buffers in one magazine of large ones, at least.
const MAGAZINE_MIN: usize = 8;
/// Full magazines the depot keeps per class, at least.
const DEPOT_MAGAZINES: usize = 16;
/// Buffers the depot keeps per class, at least: a queue at the default
/// high-water mark of 1000 messages swings between half and all of it, and
/// what the swing gives back is taken again soon after. Sixteen magazines
/// of eight 4 KiB buffers held 128 of them: a 4 KiB stream freed buffers
/// and allocated (and zeroed) new ones all the time, a tenth of the
/// throughput.
const DEPOT_BUFFERS: usize = 512;

/// Whether a body of `len` bytes goes into a pooled buffer.
pub(crate) fn fits(len: usize) -> bool {
    len < ZERO_COPY_THRESHOLD
}

/// The class of a body of `len` bytes (at most 8 KiB): the smallest
/// buffer that holds it.
fn class_of(len: usize) -> usize {
    let bits = usize::BITS - len.saturating_sub(1).leading_zeros();
    (bits.saturating_sub(MIN_SHIFT) as usize).min(CLASSES - 1)
}

fn class_size(class: usize) -> usize {
    1 << (MIN_SHIFT as usize + class)
}

fn magazine_len(class: usize) -> usize {
    (MAGAZINE_BYTES / class_size(class)).max(MAGAZINE_MIN)
}

fn depot_magazines(class: usize) -> usize {
    DEPOT_BUFFERS
        .div_ceil(magazine_len(class))
        .max(DEPOT_MAGAZINES)
}

type Buffer = Box<[u8]>;

/// Magazines shared by all threads, for one class.
struct Depot {
    full: Vec<Vec<Buffer>>,
    /// Storage of magazines emptied into a cache, for the next full one.
    empty: Vec<Vec<Buffer>>,
}

static DEPOTS: [Mutex<Depot>; CLASSES] = [const {
    Mutex::new(Depot {
        full: Vec::new(),
        empty: Vec::new(),
    })
}; CLASSES];

thread_local! {
    /// This thread's spare buffers, by class.
    static CACHE: RefCell<[Vec<Buffer>; CLASSES]> =
        const { RefCell::new([const { Vec::new() }; CLASSES]) };
}

fn depot(class: usize) -> MutexGuard<'static, Depot> {
    // Every change to a depot is a single push or pop: a panic elsewhere
    // cannot leave it inconsistent.
    DEPOTS[class].lock().unwrap_or_else(|p| p.into_inner())
}

/// A buffer of `class`: from this thread's cache, else a magazine from the
/// depot, else a new one.
fn take(class: usize) -> Buffer {
    let cached = CACHE
        .try_with(|cache| {
            let mut cache = cache.try_borrow_mut().ok()?;
            let list = &mut cache[class];
            if list.is_empty() {
                let mut depot = depot(class);
                if let Some(mut magazine) = depot.full.pop() {
                    std::mem::swap(list, &mut magazine);
                    if depot.empty.len() < depot_magazines(class) {
                        depot.empty.push(magazine);
                    }
                }
            }
            list.pop()
        })
        .ok()
        .flatten();
    cached.unwrap_or_else(|| {
        #[cfg(test)]
        FRESH[class].fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        vec![0; class_size(class)].into_boxed_slice()
    })
}

/// Buffers allocated because neither the cache nor the depot had one.
#[cfg(test)]
static FRESH: [std::sync::atomic::AtomicUsize; CLASSES] =
    [const { std::sync::atomic::AtomicUsize::new(0) }; CLASSES];

/// Keeps `buffer` for the next body of its class: in this thread's cache,
/// whose surplus goes to the depot as a magazine (or is freed when the
/// depot is full too).
fn give_back(buffer: Buffer) {
    // Every pooled buffer is a power of two from 64 bytes on; anything
    // else (the empty box a dropped frame leaves) is not kept.
    let class = (buffer.len().trailing_zeros().wrapping_sub(MIN_SHIFT)) as usize;
    if class >= CLASSES || !buffer.len().is_power_of_two() {
        return;
    }
    let _ = CACHE.try_with(|cache| {
        let Ok(mut cache) = cache.try_borrow_mut() else {
            return;
        };
        let list = &mut cache[class];
        list.push(buffer);
        let per = magazine_len(class);
        if list.len() < 2 * per {
            return;
        }
        let mut depot = depot(class);
        if depot.full.len() < depot_magazines(class) {
            let mut magazine = depot.empty.pop().unwrap_or_default();
            magazine.extend(list.drain(list.len() - per..));
            depot.full.push(magazine);
        } else {
            drop(depot);
            list.truncate(list.len() - per);
        }
    });
}

/// A frame body in a buffer of its own, which goes back to the pool when
/// the frame is dropped.
pub(crate) struct Pooled {
    buffer: Buffer,
    len: usize,
}

impl Pooled {
    /// A copy of `data` (shorter than [`ZERO_COPY_THRESHOLD`]).
    pub(crate) fn copy(data: &[u8]) -> Pooled {
        let mut buffer = take(class_of(data.len()));
        buffer[..data.len()].copy_from_slice(data);
        Pooled {
            buffer,
            len: data.len(),
        }
    }

    /// A body of `len` bytes (shorter than [`ZERO_COPY_THRESHOLD`]),
    /// zeroed and then written by `fill`.
    pub(crate) fn build(len: usize, fill: impl FnOnce(&mut [u8])) -> Pooled {
        let mut buffer = take(class_of(len));
        // A recycled buffer still holds its last body.
        let body = &mut buffer[..len];
        body.fill(0);
        fill(body);
        Pooled { buffer, len }
    }

    /// The body.
    pub(crate) fn as_slice(&self) -> &[u8] {
        self.buffer.get(..self.len).unwrap_or_default()
    }
}

impl Clone for Pooled {
    fn clone(&self) -> Pooled {
        Pooled::copy(self.as_slice())
    }
}

impl Drop for Pooled {
    fn drop(&mut self) {
        give_back(std::mem::take(&mut self.buffer));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Buffers in this thread's cache and the depot, for `class`.
    fn held(class: usize) -> (usize, usize) {
        let cached = CACHE.with(|c| c.borrow()[class].len());
        let depot = depot(class);
        (cached, depot.full.iter().map(Vec::len).sum())
    }

    #[test]
    fn classes_are_the_smallest_buffer_that_holds_the_body() {
        for (len, size) in [
            (39, 64),
            (64, 64),
            (65, 128),
            (256, 256),
            (257, 512),
            (4096, 4096),
            (4097, 8192),
            (8191, 8192),
        ] {
            assert_eq!(class_size(class_of(len)), size, "{len} bytes");
        }
        assert!(fits(8191) && !fits(ZERO_COPY_THRESHOLD));
    }

    #[test]
    fn a_dropped_body_lends_its_buffer_to_the_next_on_its_thread() {
        let a = Pooled::copy(&[1; 300]);
        let at = a.as_slice().as_ptr();
        drop(a);
        let b = Pooled::build(400, |body| {
            assert!(
                body.iter().all(|&x| x == 0),
                "a recycled body starts zeroed"
            );
            body[0] = 9;
        });
        assert_eq!(b.as_slice().as_ptr(), at);
        assert_eq!(b.as_slice().len(), 400);
        assert_eq!(b.as_slice()[0], 9);
        let c = b.clone();
        assert_eq!(c.as_slice(), b.as_slice());
        assert_ne!(c.as_slice().as_ptr(), at);
    }

    #[test]
    fn bodies_dropped_on_another_thread_come_back_through_the_depot() {
        // 2 KiB bodies: a class no other test here uses.
        let class = class_of(2000);
        let fresh = || FRESH[class].load(std::sync::atomic::Ordering::Relaxed);
        let mut after_warm_up = 0;
        for round in 0..50u8 {
            if round == 10 {
                after_warm_up = fresh();
            }
            let bodies: Vec<Pooled> = (0..200).map(|_| Pooled::copy(&[round; 2000])).collect();
            assert!(bodies.iter().all(|b| b.as_slice() == [round; 2000]));
            std::thread::spawn(move || drop(bodies))
                .join()
                .unwrap_or_default();
        }
        // Each dropping thread passed all but its last magazines to the
        // depot before it ended, so after the first rounds most bodies
        // reuse buffers: 200 a round would be new without the depot.
        let late = fresh() - after_warm_up;
        assert!(late <= 40 * 2 * magazine_len(class), "{late} new buffers");
        let (_, in_depot) = held(class);
        assert!(in_depot <= depot_magazines(class) * magazine_len(class));
    }

    #[test]
    fn what_a_thread_and_the_depot_keep_is_bounded() {
        // 8 KiB class: magazines of eight.
        let class = class_of(8000);
        let bodies: Vec<Pooled> = (0..1000).map(|_| Pooled::copy(&[5; 8000])).collect();
        drop(bodies);
        let (cached, in_depot) = held(class);
        assert!(cached < 2 * magazine_len(class), "{cached} cached");
        assert!(
            in_depot <= depot_magazines(class) * magazine_len(class),
            "{in_depot} in the depot"
        );
        assert!(
            in_depot * class_size(class) <= 4 << 20,
            "{in_depot} 8 KiB buffers in the depot"
        );
    }

    #[test]
    fn the_depot_keeps_what_security_md_promises() {
        let shared = |class: usize| depot_magazines(class) * magazine_len(class);
        for class in 0..CLASSES {
            assert!(shared(class) >= DEPOT_BUFFERS, "{} B", class_size(class));
        }
        // T8: 4 MiB for the largest size, 9.5 MiB over all sizes.
        assert_eq!(shared(CLASSES - 1) * class_size(CLASSES - 1), 4 << 20);
        let total: usize = (0..CLASSES).map(|c| shared(c) * class_size(c)).sum();
        assert_eq!(total, (19 << 20) / 2);
    }

    #[test]
    fn half_a_default_mark_given_back_elsewhere_is_taken_again_without_allocating() {
        // 4 KiB class: magazines of eight, a class no other test here uses.
        let class = class_of(4000);
        let fresh = || FRESH[class].load(std::sync::atomic::Ordering::Relaxed);
        for round in 0..3u8 {
            let before = fresh();
            let bodies: Vec<Pooled> = (0..500).map(|_| Pooled::copy(&[round; 4000])).collect();
            let new = fresh() - before;
            // The first round allocates them all; after it, all but what
            // the dropping threads' caches took with them (sixteen at most)
            // come from the depot, where sixteen magazines held 128.
            assert!(round == 0 || new <= 32, "round {round}: {new} new buffers");
            std::thread::spawn(move || drop(bodies))
                .join()
                .unwrap_or_default();
        }
    }
}
