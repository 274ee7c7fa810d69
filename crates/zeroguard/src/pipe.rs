//! Per-peer pipes: bounded queues between a socket and one connection.
//!
//! Each direction is a [`Queue`] with a high-water mark in messages and in
//! bytes. Whoever reads a queue is woken when it goes from empty to
//! non-empty, whoever writes it when it drains to half its mark (as
//! libzmq's low-water mark), so in steady state a busy queue costs no
//! wake-ups at all. Waking the writer as soon as one message fits again
//! made a full queue of large messages cost a wake-up of the sending
//! thread, and a sleep, every message or two. For an inproc
//! connection one socket's outgoing queue is the other socket's incoming
//! queue: messages move between threads without copying or I/O. A network
//! connection that sleeps with nothing to write may open a [`Bypass`], so a
//! lone message goes out from the sending thread without waking it; one
//! that sleeps for want of room in the incoming queue may open a
//! [`Refill`], so the thread that empties the queue decodes (and reads)
//! the next messages itself instead of waking it at half the mark.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, OnceLock, Weak};

use bytes::Bytes;
use tokio::sync::Notify;
use zeroguard_zmtp::Message;

/// What travels through a pipe.
#[derive(Debug, Clone)]
pub(crate) enum Item {
    /// An application message.
    Msg(Message),
    /// Ask the peer to send messages starting with this prefix.
    Subscribe(Bytes),
    /// Withdraw one such request.
    Cancel(Bytes),
}

impl Item {
    /// Bytes counted against the high-water mark.
    pub(crate) fn size(&self) -> usize {
        match self {
            Item::Msg(m) => m.payload_len(),
            Item::Subscribe(t) | Item::Cancel(t) => t.len(),
        }
    }
}

/// What a queued item costs besides its payload, for batch sizes.
const ITEM_OVERHEAD: usize = 16;

/// Who to wake, and how: one dedicated task, or every waiting thread.
#[derive(Debug, Clone)]
pub(crate) struct Signal {
    notify: Arc<Notify>,
    all: bool,
}

impl Signal {
    /// For a single consumer (a connection task): a wake-up is kept if nobody waits yet.
    pub(crate) fn one(notify: Arc<Notify>) -> Signal {
        Signal { notify, all: false }
    }

    /// For application threads, which register before they check.
    pub(crate) fn all(notify: Arc<Notify>) -> Signal {
        Signal { notify, all: true }
    }

    pub(crate) fn raise(&self) {
        if self.all {
            self.notify.notify_waiters();
        } else {
            self.notify.notify_one();
        }
    }
}

/// A way round the queue: the connection, while it sleeps with nothing to
/// write, lets the sending thread encode and write a message itself, which
/// saves a thread hand-off (a wake-up of the I/O thread) per message where
/// latency matters most: request and reply, one at a time.
pub(crate) trait Bypass: Send + Sync {
    /// Writes `item` straight to the connection, or gives it back when the
    /// queue must take it (the connection is busy, or `queue` holds
    /// messages that must leave first).
    fn try_send(&self, item: Item, queue: &Queue) -> Result<(), Item>;
}

/// A way to fill an empty queue without waking its writer: the connection,
/// while it sleeps for want of room with complete messages still in its
/// input, lets the thread that emptied the queue decode the next ones
/// itself, and read more while the peer keeps sending. The messages are
/// then decoded on the core that reads them, and the writer is not woken
/// at all while the stream keeps pace.
pub(crate) trait Refill: Send + Sync {
    /// Decodes what it can into `queue`, reading more when the input is
    /// spent. Whatever it cannot (nothing more has come, or the input holds
    /// what only the connection may handle), it closes the way and wakes
    /// the connection, which then fills the queue as before.
    fn refill(&self, queue: &Queue);
}

/// Batches of at least this many items are queued whole behind what is
/// there (see [`Inner::later`]); smaller ones are appended item by item.
const CHUNK_MIN: usize = 32;

/// Emptied batch storage kept for the next batch, at most.
const SPARE_MAX: usize = 2;

#[derive(Debug, Default)]
struct Inner {
    /// The oldest items, taken from the front.
    items: VecDeque<Item>,
    /// Batches queued whole behind `items`, oldest first, with their
    /// bytes. A busy connection hands over batches while the application
    /// is still reading earlier ones; appending each batch to the queue
    /// copied every item once more on its way (a tenth of the receiving
    /// side's instructions on a stream of small messages), where queueing
    /// the batch itself copies none. Empty whenever `items` is.
    later: VecDeque<(VecDeque<Item>, usize)>,
    /// Items and bytes in `later`.
    later_len: usize,
    later_bytes: usize,
    /// Bytes in all.
    bytes: usize,
    /// Storage of batches taken whole, for the batches handed over next:
    /// in steady state batches move without an allocation. Dropped when the
    /// queue empties.
    spare: Vec<VecDeque<Item>>,
    closed: bool,
}

impl Inner {
    #[inline]
    fn len(&self) -> usize {
        self.items.len() + self.later_len
    }

    #[inline]
    fn is_empty(&self) -> bool {
        self.items.is_empty()
    }

    /// Adds one item behind everything queued; returns its size.
    #[inline(always)]
    fn push_back(&mut self, item: Item) -> usize {
        let size = item.size();
        self.bytes += size;
        match self.later.back_mut() {
            Some((batch, bytes)) => {
                batch.push_back(item);
                *bytes += size;
                self.later_len += 1;
                self.later_bytes += size;
            }
            None => self.items.push_back(item),
        }
        size
    }

    /// Takes the oldest item, with its size.
    #[inline]
    fn pop_front(&mut self) -> Option<(Item, usize)> {
        let item = self.items.pop_front()?;
        let size = item.size();
        self.bytes -= size;
        if self.items.is_empty() {
            self.next_batch();
        }
        Some((item, size))
    }

    /// Once `items` is empty: the next whole batch takes its place, or,
    /// when nothing is left, the spare storage goes.
    fn next_batch(&mut self) {
        match self.later.pop_front() {
            Some((batch, bytes)) => {
                self.later_len -= batch.len();
                self.later_bytes -= bytes;
                let used = std::mem::replace(&mut self.items, batch);
                self.keep_spare(used);
            }
            None => self.spare = Vec::new(),
        }
    }

    fn keep_spare(&mut self, mut storage: VecDeque<Item>) {
        if storage.capacity() > 0 && self.spare.len() < SPARE_MAX {
            storage.clear();
            self.spare.push(storage);
        }
    }

    fn clear(&mut self) {
        self.items.clear();
        self.later.clear();
        self.later_len = 0;
        self.later_bytes = 0;
        self.bytes = 0;
        self.spare = Vec::new();
    }
}

/// A bounded single-direction queue.
#[derive(Debug)]
pub(crate) struct Queue {
    inner: Mutex<Inner>,
    reader: Signal,
    writer: Signal,
    hwm_msgs: usize,
    hwm_bytes: usize,
    /// Where senders may go round the queue, once the connection offers it.
    bypass: OnceLock<Weak<dyn Bypass>>,
    /// Whether the bypass is worth trying now (a hint: the bypass decides).
    bypass_open: AtomicBool,
    /// The connection has written all it had and waits for more (see
    /// [`Peer::send`](crate::socket::Peer::send)).
    reader_idle: AtomicBool,
    /// A sender holds messages set aside for this queue.
    staged: AtomicBool,
    /// Where readers may fill the queue themselves, once the connection
    /// offers it.
    refill: OnceLock<Weak<dyn Refill>>,
    /// Whether the refill is open now (a hint: the refill decides). While
    /// it is, draining the queue wakes no writer: the reader that empties
    /// it refills it, or wakes the writer then.
    refill_open: AtomicBool,
}

impl Queue {
    pub(crate) fn new(
        hwm_msgs: usize,
        hwm_bytes: usize,
        reader: Signal,
        writer: Signal,
    ) -> Arc<Queue> {
        Arc::new(Queue {
            inner: Mutex::new(Inner::default()),
            reader,
            writer,
            hwm_msgs: hwm_msgs.max(1),
            hwm_bytes: hwm_bytes.max(1),
            bypass: OnceLock::new(),
            bypass_open: AtomicBool::new(false),
            reader_idle: AtomicBool::new(true),
            staged: AtomicBool::new(false),
            refill: OnceLock::new(),
            refill_open: AtomicBool::new(false),
        })
    }

    /// Lets readers fill this queue through `refill` while it is open (see
    /// [`open_refill`](Queue::open_refill)). Set once, by the connection.
    pub(crate) fn set_refill(&self, refill: Weak<dyn Refill>) {
        let _ = self.refill.set(refill);
    }

    /// Opens or closes the refill (the connection went to sleep for want
    /// of room, or woke).
    pub(crate) fn open_refill(&self, open: bool) {
        self.refill_open.store(open, Ordering::Release);
    }

    /// Called by a reader that found the queue empty: fills it through the
    /// refill if that is open.
    #[cold]
    fn try_refill(&self) {
        if let Some(refill) = self.refill.get().and_then(Weak::upgrade) {
            refill.refill(self);
        }
    }

    /// Called by a reader that has just emptied the queue: fills it again
    /// at once if the refill is open, not when the reader comes back. The
    /// reader may not come back (it took the last message it wanted), and
    /// while the refill is open the connection reads nothing: the peer's
    /// next messages, its end or its heartbeats would wait with the reader.
    #[inline]
    fn refill_if_open(&self) {
        if self.refill_open.load(Ordering::Acquire) {
            self.try_refill();
        }
    }

    /// Locks the queue for a reader, filling it first if it is empty and
    /// the refill is open.
    #[inline]
    fn lock_for_reader(&self) -> MutexGuard<'_, Inner> {
        let inner = self.lock();
        if !inner.is_empty() || !self.refill_open.load(Ordering::Acquire) {
            return inner;
        }
        drop(inner);
        self.try_refill();
        self.lock()
    }

    /// Lets senders write through `bypass` while it is open (see
    /// [`open_bypass`](Queue::open_bypass)). Set once, by the connection.
    pub(crate) fn set_bypass(&self, bypass: Weak<dyn Bypass>) {
        let _ = self.bypass.set(bypass);
    }

    /// Opens or closes the bypass (the connection went to sleep, or woke).
    pub(crate) fn open_bypass(&self, open: bool) {
        self.bypass_open.store(open, Ordering::Release);
    }

    /// Marks the connection as waiting for messages (`true`) or busy. The
    /// connection marks itself idle, then looks whether a sender holds
    /// messages for it ([`has_staged`](Queue::has_staged)); a sender marks
    /// that it holds some, then looks whether the connection is idle. Both
    /// in sequentially consistent order, so at least one of them sees the
    /// other's mark and the messages are handed over either way.
    pub(crate) fn set_reader_idle(&self, idle: bool) {
        match idle {
            true => self.reader_idle.store(true, Ordering::SeqCst),
            false if self.reader_idle.load(Ordering::Relaxed) => {
                self.reader_idle.store(false, Ordering::Relaxed);
            }
            false => {}
        }
    }

    /// Whether the connection waits for messages (or has none: inproc).
    #[inline]
    pub(crate) fn reader_idle(&self) -> bool {
        self.reader_idle.load(Ordering::SeqCst)
    }

    /// Records whether a sender holds messages set aside for this queue
    /// (see [`set_reader_idle`](Queue::set_reader_idle)).
    pub(crate) fn set_staged(&self, staged: bool) {
        self.staged.store(staged, Ordering::SeqCst);
    }

    /// Whether a sender may hold messages set aside for this queue.
    pub(crate) fn has_staged(&self) -> bool {
        self.staged.load(Ordering::SeqCst)
    }

    /// Whether nothing is queued and the queue still takes messages: a
    /// message written round it now leaves in order.
    pub(crate) fn is_idle(&self) -> bool {
        let inner = self.lock();
        !inner.closed && inner.is_empty()
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        // A panic while holding this lock cannot leave the queue inconsistent
        // (every mutation is a single push/pop), so poisoning is ignored.
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn full(&self, inner: &Inner) -> bool {
        inner.len() >= self.hwm_msgs || inner.bytes >= self.hwm_bytes
    }

    /// At or under half the mark, in messages and in bytes: where a writer
    /// that found the queue full is woken (see the module docs).
    fn low(&self, inner: &Inner) -> bool {
        inner.len() <= self.hwm_msgs / 2 && inner.bytes <= self.hwm_bytes / 2
    }

    /// Whether taking from a queue that was not `low` before woke its
    /// writer: when it has drained to `low`, unless the reader refills it.
    fn wakes_writer(&self, was_low: bool, inner: &Inner) -> bool {
        !was_low && self.low(inner) && !self.refill_open.load(Ordering::Acquire)
    }

    /// Adds an item unless the queue is at its high-water mark or closed
    /// (or writes it through the bypass, when that is open).
    #[inline(always)]
    pub(crate) fn try_push(&self, item: Item) -> Result<(), Item> {
        let item = match self.bypass_open.load(Ordering::Acquire) {
            true => match self.bypass.get().and_then(Weak::upgrade) {
                Some(bypass) => match bypass.try_send(item, self) {
                    Ok(()) => return Ok(()),
                    Err(item) => item,
                },
                None => item,
            },
            false => item,
        };
        let mut inner = self.lock();
        if inner.closed || self.full(&inner) {
            return Err(item);
        }
        self.push_locked(&mut inner, item);
        Ok(())
    }

    /// Adds an item even above the high-water mark (subscriptions, which must not be lost).
    pub(crate) fn push_force(&self, item: Item) -> bool {
        let mut inner = self.lock();
        if inner.closed {
            return false;
        }
        self.push_locked(&mut inner, item);
        true
    }

    #[inline]
    fn push_locked(&self, inner: &mut Inner, item: Item) {
        let was_empty = inner.is_empty();
        inner.push_back(item);
        // Raising under the queue lock is fine: Notify never calls back into us.
        if was_empty {
            self.reader.raise();
        }
    }

    /// How many more messages (and bytes) fit before the high-water mark;
    /// zero when closed.
    pub(crate) fn room(&self) -> (usize, usize) {
        let inner = self.lock();
        if inner.closed || self.full(&inner) {
            return (0, 0);
        }
        (self.hwm_msgs - inner.len(), self.hwm_bytes - inner.bytes)
    }

    /// Adds a batch under one lock, waking the reader once. The caller
    /// checked `room`; a closed queue drops the batch. The batch moves
    /// whole, its items uncopied: into an empty queue the two swap storage,
    /// behind queued items it is queued as it is and the caller gets spare
    /// storage for the next (small batches are appended).
    pub(crate) fn push_batch(&self, batch: &mut VecDeque<Item>) {
        if batch.is_empty() {
            return;
        }
        let bytes: usize = batch.iter().map(Item::size).sum();
        let mut inner = self.lock();
        if inner.closed {
            batch.clear();
            return;
        }
        let was_empty = inner.is_empty();
        if was_empty {
            inner.bytes += bytes;
            std::mem::swap(&mut inner.items, batch);
        } else if batch.len() < CHUNK_MIN {
            for item in batch.drain(..) {
                inner.push_back(item);
            }
        } else {
            let storage = inner
                .spare
                .pop()
                .unwrap_or_else(|| VecDeque::with_capacity(batch.len()));
            let whole = std::mem::replace(batch, storage);
            inner.bytes += bytes;
            inner.later_len += whole.len();
            inner.later_bytes += bytes;
            inner.later.push_back((whole, bytes));
        }
        drop(inner);
        if was_empty {
            self.reader.raise();
        }
    }

    /// Moves `staged` (messages a sender set aside) to the back of the
    /// queue under one lock, as far as the high-water mark lets one push at
    /// a time, or all of them if `force`; returns their bytes. The items are
    /// copied so that `staged` keeps its storage, whose lines stay in the
    /// sender's cache. A closed queue drops them.
    pub(crate) fn hand_over(&self, staged: &mut VecDeque<Item>, force: bool) -> usize {
        if staged.is_empty() {
            return 0;
        }
        let mut inner = self.lock();
        if inner.closed {
            let bytes = staged.iter().map(Item::size).sum();
            staged.clear();
            return bytes;
        }
        let was_empty = inner.is_empty();
        let mut moved = 0;
        while force || !self.full(&inner) {
            let Some(item) = staged.pop_front() else {
                break;
            };
            moved += inner.push_back(item);
        }
        let now_empty = inner.is_empty();
        drop(inner);
        if was_empty && !now_empty {
            self.reader.raise();
        }
        moved
    }

    /// Takes the oldest item.
    pub(crate) fn try_pop(&self) -> Option<Item> {
        let mut inner = self.lock_for_reader();
        let was_low = self.low(&inner);
        let (item, _) = inner.pop_front()?;
        let now_low = self.wakes_writer(was_low, &inner);
        let emptied = inner.is_empty();
        drop(inner);
        if now_low {
            self.writer.raise();
        }
        if emptied {
            self.refill_if_open();
        }
        Some(item)
    }

    /// Moves up to `max_bytes` worth of items (at least one) into `out`.
    /// When the oldest items (everything queued, or the oldest batch queued
    /// whole) fit and `out` is empty, the two swap (the queue keeps `out`'s
    /// storage), so the lock is held for no time at all however many small
    /// messages move. Returns whether the take left items in the queue
    /// (one that emptied it may have refilled it since).
    pub(crate) fn pop_batch(&self, out: &mut VecDeque<Item>, max_bytes: usize) -> bool {
        let mut inner = self.lock_for_reader();
        let was_low = self.low(&inner);
        let front_bytes = inner.bytes - inner.later_bytes;
        if out.is_empty()
            && !inner.is_empty()
            && front_bytes + ITEM_OVERHEAD * inner.items.len() <= max_bytes
        {
            std::mem::swap(&mut inner.items, out);
            inner.bytes -= front_bytes;
            inner.next_batch();
        } else {
            let mut taken = 0;
            while let Some((item, size)) = inner.pop_front() {
                taken += size + ITEM_OVERHEAD;
                out.push_back(item);
                if taken >= max_bytes {
                    break;
                }
            }
        }
        let now_low = self.wakes_writer(was_low, &inner);
        let more = !inner.is_empty();
        drop(inner);
        if now_low {
            self.writer.raise();
        }
        if !more {
            self.refill_if_open();
        }
        more
    }

    /// Whether a push would succeed now.
    pub(crate) fn has_room(&self) -> bool {
        let inner = self.lock();
        !inner.closed && !self.full(&inner)
    }

    /// Messages and bytes queued now.
    pub(crate) fn len(&self) -> (usize, usize) {
        let inner = self.lock();
        (inner.len(), inner.bytes)
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.lock_for_reader().is_empty()
    }

    /// Refuses further pushes; what is queued can still be read.
    pub(crate) fn close(&self) {
        self.lock().closed = true;
        self.reader.raise();
        self.writer.raise();
    }

    /// Drops everything queued.
    pub(crate) fn clear(&self) {
        let mut inner = self.lock();
        inner.clear();
        drop(inner);
        self.writer.raise();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::future::Future;

    fn queue(msgs: usize, bytes: usize) -> Arc<Queue> {
        let n = Arc::new(Notify::new());
        Queue::new(msgs, bytes, Signal::one(n.clone()), Signal::one(n))
    }

    #[test]
    fn high_water_mark_in_messages_and_bytes() {
        let q = queue(2, 1000);
        assert!(q.try_push(Item::Msg(Message::from("a"))).is_ok());
        assert!(q.try_push(Item::Msg(Message::from("b"))).is_ok());
        assert!(q.try_push(Item::Msg(Message::from("c"))).is_err());
        let q = queue(100, 10);
        assert!(q.try_push(Item::Msg(Message::from(vec![0u8; 8]))).is_ok());
        assert!(q.try_push(Item::Msg(Message::from(vec![0u8; 8]))).is_ok());
        assert!(
            q.try_push(Item::Msg(Message::from("x"))).is_err(),
            "16 bytes >= 10"
        );
        assert!(q.try_pop().is_some());
        assert!(q.has_room());
    }

    /// Whether `n` holds a wake-up (a permit stored by `notify_one`).
    fn woken(n: &Notify) -> bool {
        let notified = std::pin::pin!(n.notified());
        let mut cx = std::task::Context::from_waker(std::task::Waker::noop());
        notified.poll(&mut cx).is_ready()
    }

    #[test]
    fn a_full_queue_wakes_its_writer_once_drained_to_half_its_mark() {
        let writer = Arc::new(Notify::new());
        let reader = Signal::one(Arc::new(Notify::new()));
        let q = Queue::new(10, 1 << 20, reader.clone(), Signal::one(writer.clone()));
        while q.try_push(Item::Msg(Message::from("m"))).is_ok() {}
        assert_eq!(q.len().0, 10);
        for left in (6..10).rev() {
            assert!(q.try_pop().is_some());
            assert!(!woken(&writer), "woken with {left} of 10 queued");
        }
        assert!(q.try_pop().is_some());
        assert!(woken(&writer), "half the mark (5 of 10) wakes the writer");
        assert!(q.try_pop().is_some());
        assert!(!woken(&writer), "once per drain, not per message");

        // The same by bytes: four messages of 30 reach a mark of 100.
        let q = Queue::new(1000, 100, reader.clone(), Signal::one(writer.clone()));
        while q.try_push(Item::Msg(Message::from(vec![0u8; 30]))).is_ok() {}
        assert_eq!(q.len(), (4, 120));
        assert!(q.try_pop().is_some() && q.try_pop().is_some());
        assert!(!woken(&writer), "60 bytes of 100 queued");
        assert!(q.try_pop().is_some());
        assert!(woken(&writer), "30 bytes of 100 queued");

        // A batch that takes a full queue at once wakes it too.
        let q = Queue::new(10, 1 << 20, reader, Signal::one(writer.clone()));
        while q.try_push(Item::Msg(Message::from("m"))).is_ok() {}
        let mut out = VecDeque::new();
        q.pop_batch(&mut out, 1 << 20);
        assert_eq!(out.len(), 10);
        assert!(woken(&writer));
    }

    /// A connection's input as the refill sees it: `left` messages of
    /// which at most `per_call` are decoded per call; once spent, the
    /// refill closes and wakes the writer, as the engine's does.
    struct Input {
        next: Mutex<u32>,
        end: u32,
        per_call: u32,
        calls: Mutex<u32>,
        writer: Arc<Notify>,
    }

    impl Refill for Input {
        fn refill(&self, queue: &Queue) {
            *self.calls.lock().unwrap() += 1;
            let mut next = self.next.lock().unwrap();
            let until = self.end.min(*next + self.per_call);
            let mut batch: VecDeque<Item> = (*next..until).map(msg).collect();
            *next = until;
            let spent = *next == self.end;
            queue.push_batch(&mut batch);
            if spent {
                queue.open_refill(false);
                self.writer.notify_one();
            }
        }
    }

    #[test]
    fn a_reader_that_empties_the_queue_refills_it_and_wakes_no_writer_meanwhile() {
        let writer = Arc::new(Notify::new());
        let reader = Signal::one(Arc::new(Notify::new()));
        let q = Queue::new(10, 1 << 20, reader, Signal::one(writer.clone()));
        let input = Arc::new(Input {
            next: Mutex::new(10),
            end: 35,
            per_call: 10,
            calls: Mutex::new(0),
            writer: writer.clone(),
        });
        let weak: Weak<dyn Refill> = Arc::downgrade(&input) as Weak<Input>;
        q.set_refill(weak);
        for n in 0..10 {
            assert!(q.try_push(msg(n)).is_ok());
        }
        // Closed, the queue neither asks the input nor keeps quiet.
        while q.try_pop().is_some() {}
        assert_eq!(*input.calls.lock().unwrap(), 0);
        assert!(woken(&writer), "drained to half with the refill closed");

        for n in 0..10 {
            assert!(q.try_push(msg(n)).is_ok());
        }
        q.open_refill(true);
        let mut got = Vec::new();
        let mut out = VecDeque::new();
        let mut woken_at = None;
        while let Some(item) = q.try_pop() {
            got.push(number(&item));
            if got.len() == 12 {
                // A batch taken whole refills the same way.
                q.pop_batch(&mut out, 1 << 20);
                got.extend(out.drain(..).map(|i| number(&i)));
            }
            if woken_at.is_none() && woken(&writer) {
                woken_at = Some(got.len());
            }
        }
        assert_eq!(got, (0..35).collect::<Vec<_>>(), "in order, once each");
        assert_eq!(*input.calls.lock().unwrap(), 3);
        // Not as the queue drained past half, ten times over: only when
        // the input handed over its last messages (30 to 34), at once
        // when the take of 29 emptied the queue.
        assert_eq!(woken_at, Some(30));
        assert!(q.is_empty());
        assert_eq!(*input.calls.lock().unwrap(), 3, "closed once spent");
    }

    fn msg(n: u32) -> Item {
        Item::Msg(Message::from(n.to_be_bytes().to_vec()))
    }

    fn number(item: &Item) -> u32 {
        match item {
            Item::Msg(m) => m
                .first()
                .and_then(|f| <[u8; 4]>::try_from(&f[..]).ok())
                .map_or(u32::MAX, u32::from_be_bytes),
            _ => u32::MAX,
        }
    }

    #[test]
    fn a_batch_behind_queued_items_moves_whole_and_uncopied() {
        let q = queue(10_000, 1 << 20);
        assert!(q.try_push(msg(0)).is_ok());
        let mut batch: VecDeque<Item> = (1..=100).map(msg).collect();
        let storage = batch.as_slices().0.as_ptr();
        q.push_batch(&mut batch);
        assert!(batch.is_empty());
        assert_ne!(
            batch.as_slices().0.as_ptr(),
            storage,
            "the caller gets other storage"
        );
        assert_eq!(q.len(), (101, 404));
        let mut out = VecDeque::new();
        assert!(q.pop_batch(&mut out, 1 << 20), "the batch is left");
        assert_eq!(out.iter().map(number).collect::<Vec<_>>(), [0]);
        out.clear();
        assert!(!q.pop_batch(&mut out, 1 << 20));
        assert_eq!(
            out.as_slices().0.as_ptr(),
            storage,
            "the batch's own storage"
        );
        assert_eq!(
            out.iter().map(number).collect::<Vec<_>>(),
            (1..=100).collect::<Vec<_>>()
        );
        assert_eq!(q.len(), (0, 0));
    }

    #[test]
    fn every_way_in_and_out_keeps_order_and_counts() {
        // Pushes, small and large batches, pops and bounded batch pops in a
        // pseudo-random mix, against a plain list.
        let q = queue(usize::MAX, usize::MAX);
        let mut model: VecDeque<u32> = VecDeque::new();
        let mut next = 0u32;
        let mut seed = 0x2545_f491_u64;
        let mut roll = |n: u64| {
            seed = seed.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1);
            usize::try_from((seed >> 33) % n).unwrap_or(0)
        };
        let mut batch = VecDeque::new();
        let mut out = VecDeque::new();
        for _ in 0..20_000 {
            match roll(6) {
                0 => {
                    assert!(q.try_push(msg(next)).is_ok());
                    model.push_back(next);
                    next += 1;
                }
                1 | 2 => {
                    let n = [1, 5, CHUNK_MIN - 1, CHUNK_MIN, 100][roll(5)];
                    for _ in 0..n {
                        batch.push_back(msg(next));
                        model.push_back(next);
                        next += 1;
                    }
                    q.push_batch(&mut batch);
                    assert!(batch.is_empty());
                }
                3 => {
                    let got = q.try_pop().map(|i| number(&i));
                    assert_eq!(got, model.pop_front());
                }
                _ => {
                    out.clear();
                    let max = [1, 64, 1000, 1 << 20][roll(4)];
                    let more = q.pop_batch(&mut out, max);
                    for item in &out {
                        assert_eq!(Some(number(item)), model.pop_front());
                    }
                    assert_eq!(more, !model.is_empty());
                }
            }
            assert_eq!(q.len(), (model.len(), 4 * model.len()));
            assert_eq!(q.is_empty(), model.is_empty());
        }
    }

    #[test]
    fn closed_queue_refuses_but_drains() {
        let q = queue(10, 1000);
        assert!(q.try_push(Item::Msg(Message::from("a"))).is_ok());
        q.close();
        assert!(q.try_push(Item::Msg(Message::from("b"))).is_err());
        assert!(!q.push_force(Item::Subscribe(Bytes::new())));
        assert!(q.try_pop().is_some());
        assert!(q.try_pop().is_none());
    }
}
