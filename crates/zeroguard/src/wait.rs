//! Blocking on the socket futures from plain threads, with a deadline.
//!
//! The socket API is built on futures that wait on `tokio::sync::Notify`,
//! which needs no runtime. Blocking calls drive those futures on the calling
//! thread, parking it between wake-ups, so they work from any thread,
//! including threads that belong to some other async runtime.
//!
//! A thread put to sleep is woken tens of microseconds after what it waits
//! for happens (on virtual machines often more): longer than a whole
//! request and reply over loopback. So a blocking receive first keeps
//! checking for a short while, yielding the CPU to any thread that wants
//! it, when an answer is due (the socket sent a message since it last
//! received one) and the previous wait on the same socket was that short;
//! a thread whose waits are long (an idle server), or that only receives
//! (a stream's consumer), sleeps at once.

use std::future::Future;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll, Wake, Waker};
use std::thread::{self, Thread};
use std::time::{Duration, Instant};

struct Unparker(Thread);

impl Wake for Unparker {
    fn wake(self: Arc<Self>) {
        self.0.unpark();
    }
    fn wake_by_ref(self: &Arc<Self>) {
        self.0.unpark();
    }
}

/// Checking is worth it while the previous wait took at most this many
/// windows: a wait that ended in sleep took the wake-up delay on top of
/// itself, so one just over the window is likely to fit in it next time.
const SPIN_ELIGIBLE: u32 = 4;

/// How long a blocking call may keep checking before its thread sleeps.
pub(crate) struct Spin<'a> {
    /// The longest spell of checking; zero never checks.
    pub(crate) window: Duration,
    /// How long the previous wait took, in nanoseconds: checking is worth
    /// it only if that one was short (see [`SPIN_ELIGIBLE`]).
    pub(crate) last_wait: &'a AtomicU64,
}

impl Spin<'_> {
    /// Until when a wait starting at `start` keeps checking, if at all.
    fn until(&self, start: Instant) -> Option<Instant> {
        let eligible = self.last_wait.load(Ordering::Relaxed) <= nanos(self.window * SPIN_ELIGIBLE);
        (eligible && !self.window.is_zero()).then(|| start + self.window)
    }
}

/// Runs `fut` to completion on this thread; `None` if `deadline` passes first.
pub(crate) fn block_on<F: Future>(fut: F, deadline: Option<Instant>) -> Option<F::Output> {
    block_on_spin(fut, deadline, None)
}

/// [`block_on`], checking for up to `spin.window` before sleeping when the
/// previous wait was short.
pub(crate) fn block_on_spin<F: Future>(
    fut: F,
    deadline: Option<Instant>,
    spin: Option<Spin<'_>>,
) -> Option<F::Output> {
    let waker = Waker::from(Arc::new(Unparker(thread::current())));
    let mut cx = Context::from_waker(&waker);
    let mut fut = std::pin::pin!(fut);
    let spin = spin.filter(|s| !s.window.is_zero());
    let start = spin.as_ref().map(|_| Instant::now());
    let spin_until = match (&spin, start) {
        (Some(s), Some(start)) => s.until(start),
        _ => None,
    };
    let record = |now: Instant| {
        if let (Some(s), Some(start)) = (&spin, start) {
            s.last_wait.store(
                nanos(now.saturating_duration_since(start)),
                Ordering::Relaxed,
            );
        }
    };
    loop {
        if let Poll::Ready(out) = fut.as_mut().poll(&mut cx) {
            if start.is_some() {
                record(Instant::now());
            }
            return Some(out);
        }
        let now = Instant::now();
        if deadline.is_some_and(|d| now >= d) {
            record(now);
            return None;
        }
        if spin_until.is_some_and(|until| now < until) {
            thread::yield_now();
            continue;
        }
        match deadline {
            None => thread::park(),
            Some(deadline) => thread::park_timeout(deadline - now),
        }
    }
}

fn nanos(d: Duration) -> u64 {
    u64::try_from(d.as_nanos()).unwrap_or(u64::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::AtomicBool;

    #[test]
    fn checks_only_after_short_waits() {
        let last = AtomicU64::new(0);
        let spin = Spin {
            window: Duration::from_micros(50),
            last_wait: &last,
        };
        let t = Instant::now();
        assert_eq!(spin.until(t), Some(t + Duration::from_micros(50)));
        last.store(150_000, Ordering::Relaxed);
        assert!(
            spin.until(t).is_some(),
            "a wait that slept just past the window"
        );
        last.store(1_000_000, Ordering::Relaxed);
        assert_eq!(spin.until(t), None, "long waits sleep at once");
        last.store(0, Ordering::Relaxed);
        let off = Spin {
            window: Duration::ZERO,
            last_wait: &last,
        };
        assert_eq!(off.until(t), None);
    }

    #[test]
    fn a_wait_records_how_long_it_took() {
        let last = AtomicU64::new(0);
        let done = Arc::new(AtomicBool::new(false));
        let d = done.clone();
        let setter = thread::spawn(move || {
            thread::sleep(Duration::from_millis(5));
            d.store(true, Ordering::Release);
        });
        let ready = std::future::poll_fn(|cx| {
            if done.load(Ordering::Acquire) {
                Poll::Ready(())
            } else {
                // Polled again after a short park: no waker is kept here.
                cx.waker().wake_by_ref();
                Poll::Pending
            }
        });
        let spin = Spin {
            window: Duration::from_micros(50),
            last_wait: &last,
        };
        assert_eq!(block_on_spin(ready, None, Some(spin)), Some(()));
        setter.join().unwrap_or_default();
        assert!(last.load(Ordering::Relaxed) >= 5_000_000);
    }
}
