//! The engine: drives one `zeroguard_zmtp::Connection` over one stream.
//!
//! One task per connection does all of it: reads as much as the socket has
//! and decodes every complete message, writes as many queued messages as fit
//! in one buffer with one system call, and sleeps until the stream, a queue
//! or a deadline needs it. Input is decoded only while the peer's incoming
//! queue has room; when it is full the engine stops reading, and TCP pushes
//! back on the sender. While it waits for room with a run of small
//! messages in its input, the application's thread decodes them when it
//! has emptied the queue, and reads on while the peer keeps sending
//! (`Refill for Link`), under the same checks and the same rate
//! allowance. The peer is attached to the socket, and so takes part in
//! routing, only after its handshake and authentication succeeded.

use std::cell::Cell;
use std::collections::{HashMap, VecDeque};
use std::io;
use std::net::IpAddr;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex, MutexGuard, Weak};
use std::time::{Duration, Instant};

use bytes::BufMut;
use tokio::io::Interest;
use tokio::net::{TcpStream, UnixStream};
use tokio::sync::{watch, Notify};
use zeroguard_zmtp::{Config, Connection, Error as ProtocolError, Event};

use crate::monitor::MonitorEvent;
use crate::outgoing::Outgoing;
use crate::pipe::{Bypass, Item, Queue, Refill, Signal};
use crate::rate::Bucket;
use crate::security::AuthContext;
use crate::socket::{AddressCount, PeerId, SocketCore};

/// Most bytes read per system call (a busy, established connection).
const READ_CHUNK: usize = 64 * 1024;
/// Fewest bytes read per system call (handshakes, quiet connections).
const SMALL_READ: usize = 4 * 1024;
/// Least time between two yields of one I/O thread to the threads
/// waiting for its core (see [`give_way`]).
const GIVE_WAY_EVERY: Duration = Duration::from_micros(50);

thread_local! {
    /// When this I/O thread last yielded its core.
    static LAST_GIVE_WAY: Cell<Option<Instant>> = const { Cell::new(None) };
}

/// Yields this thread's core, at most once per [`GIVE_WAY_EVERY`], before
/// an engine that has just emptied a stream of small messages sleeps.
/// Where the sending thread shares the core, it was preempted by this
/// thread's wake-up and has messages to queue: asleep, the engine would be
/// woken again (a system call and two context switches) for each handful
/// of them and write each handful alone; after a yield it finds hundreds
/// and writes them together. With the core to itself the yield returns at
/// once. Bounded in rate so that a thread serving many streams (a
/// publisher's subscribers) does not pay a system call per stream.
fn give_way() -> bool {
    let now = Instant::now();
    let due = LAST_GIVE_WAY
        .get()
        .is_none_or(|t| now.duration_since(t) >= GIVE_WAY_EVERY);
    if due {
        LAST_GIVE_WAY.set(Some(now));
        std::thread::yield_now();
    }
    due
}

/// Messages decoded before they are handed to the socket in one go.
const DELIVERY_BATCH: usize = 256;
/// Bytes of queued messages encoded before a write.
const WRITE_BATCH: usize = 128 * 1024;
/// How long one connection may decode, or encode, before the other
/// connections on its I/O thread get their turn. The runtime looks for
/// readiness only when the thread runs out of work or every few dozen
/// turns; without a bound, a peer whose messages the application took as
/// fast as they were decoded kept the thread as long as its input lasted,
/// and under a CURVE flood a quiet client's request waited for the
/// flooders' turns, tens of milliseconds (seconds under valgrind). A bound
/// in time rather than in messages, because a message costs ~50 ns in
/// plain text and ~1.5 µs with CURVE: a turn of a thousand messages fits
/// CURVE and cut plain 16-byte throughput by 7 %, every extra yield
/// costing the application thread a wake-up.
const TURN_TIME: Duration = Duration::from_millis(1);
/// Messages decoded between looks at the clock.
const TURN_CHECK: usize = 64;
/// Bytes of queued messages taken at a time for encoding, between looks at
/// the clock (a full queue of small messages still comes in one take).
const ENCODE_SLICE: usize = 32 * 1024;
/// Bytes of incomplete messages a connection may hold whatever the socket's
/// partial budget says, so that small messages never wait for the budget.
const PARTIAL_ALLOWANCE: usize = 64 * 1024;
/// How soon a connection paused by the partial budget looks at it again
/// (releases are not signalled: only large transfers under attack pay this).
const BUDGET_RECHECK: Duration = Duration::from_millis(20);
/// How long the wire must have been quiet (since the end of its last
/// write, by either path) before a message may go round the queue. A sender
/// streaming back to back then fills the queue and the engine writes in
/// batches, while one that sends and waits for an answer (a request, a
/// reply) writes each message itself, a thread hand-off sooner. Counted
/// from the end of the write, not its start: on loopback a write carries
/// the receiver's side of TCP too, and where that takes longer than the gap
/// a streaming sender would otherwise go round the queue with every
/// message, one system call each (at 4 KiB that halved throughput).
const BYPASS_GAP: Duration = Duration::from_micros(5);
/// The largest message that may go round the queue after a quiet gap.
/// Up to [`BYPASS_LARGE_BYTES`], larger ones always go through the queue:
/// their write takes longer than the hand-off it saves, and through the
/// queue the engine writes one while the application builds the next
/// (between 16 and 32 KiB the two ways measured even).
const BYPASS_MAX_BYTES: usize = 16 * 1024;
/// From this size on, a message goes round the queue whenever the
/// connection has nothing else to write, however recent its last write.
/// Copying the body into the kernel is most of the cost of such a message,
/// and that copy reads memory the sending thread has just written: from
/// the engine's thread, on the other core, it read cold lines (a stream of
/// 64 KiB messages cost the sending process 23–25 µs of CPU each, its I/O
/// thread nearly a whole core); from the sending thread's own cache, 17 µs.
/// 64 KiB: 39–44 k to 55–58 k msg/s; 256 KiB: 12.1–14.8 k to 15.0–17.8 k.
const BYPASS_LARGE_BYTES: usize = 32 * 1024;

/// A connected byte stream.
pub(crate) enum Stream {
    Tcp(TcpStream),
    Unix(UnixStream),
}

impl Stream {
    async fn readable(&self) -> io::Result<()> {
        match self {
            Stream::Tcp(s) => s.readable().await,
            Stream::Unix(s) => s.readable().await,
        }
    }

    /// Whether bytes wait to be read, and whether the peer has closed its
    /// side, as far as the reactor knows now (never waits).
    async fn read_state_now(&self) -> (bool, bool) {
        let ready = async {
            match self {
                Stream::Tcp(s) => s.ready(Interest::READABLE).await,
                Stream::Unix(s) => s.ready(Interest::READABLE).await,
            }
        };
        tokio::select! {
            biased;
            r = ready => match r {
                Ok(r) => (r.is_readable(), r.is_read_closed()),
                Err(_) => (true, true),
            },
            () = std::future::ready(()) => (false, false),
        }
    }

    async fn writable(&self) -> io::Result<()> {
        match self {
            Stream::Tcp(s) => s.writable().await,
            Stream::Unix(s) => s.writable().await,
        }
    }

    fn try_read_buf(&self, mut buf: &mut dyn BufMut) -> io::Result<usize> {
        match self {
            Stream::Tcp(s) => s.try_read_buf(&mut buf),
            Stream::Unix(s) => s.try_read_buf(&mut buf),
        }
    }

    fn try_write(&self, buf: &[u8]) -> io::Result<usize> {
        match self {
            Stream::Tcp(s) => s.try_write(buf),
            Stream::Unix(s) => s.try_write(buf),
        }
    }

    fn try_write_vectored(&self, bufs: &[io::IoSlice<'_>]) -> io::Result<usize> {
        match self {
            Stream::Tcp(s) => s.try_write_vectored(bufs),
            Stream::Unix(s) => s.try_write_vectored(bufs),
        }
    }

    /// Writes what `out` holds, as much as the stream takes now.
    fn write_out(&self, out: &mut Outgoing) -> io::Result<usize> {
        out.write_to(|b| self.try_write(b), |s| self.try_write_vectored(s))
    }
}

/// Who the engine works for.
pub(crate) struct EngineParams {
    pub(crate) core: Arc<SocketCore>,
    /// This connection's place in the socket's counters.
    pub(crate) counted: Counted,
    pub(crate) endpoint: String,
    pub(crate) peer_address: Option<IpAddr>,
    pub(crate) stop: watch::Receiver<bool>,
}

/// How a connection ended.
pub(crate) struct Outcome {
    /// The handshake completed (a connector resets its back-off).
    pub(crate) handshake_done: bool,
}

/// Keeps the socket's connection counters right however the connection
/// ends. Taken by the accept loop (or connector) before the connection's
/// task starts, so a burst of accepts cannot overshoot the limits.
pub(crate) struct Counted {
    core: Arc<SocketCore>,
    address: Option<IpAddr>,
    in_handshake: bool,
}

impl Counted {
    pub(crate) fn new(core: &Arc<SocketCore>, address: Option<IpAddr>) -> Counted {
        core.connections.fetch_add(1, Ordering::AcqRel);
        core.handshakes.fetch_add(1, Ordering::AcqRel);
        if let Some(ip) = address {
            let mut map = core.per_address.lock().unwrap_or_else(|p| p.into_inner());
            let count = map.entry(ip).or_default();
            count.connections += 1;
            count.handshakes += 1;
        }
        Counted {
            core: core.clone(),
            address,
            in_handshake: true,
        }
    }

    /// Updates this connection's source address entry, if it has one.
    fn for_address(&self, f: impl FnOnce(&mut HashMap<IpAddr, AddressCount>, IpAddr)) {
        if let Some(ip) = self.address {
            f(
                &mut self
                    .core
                    .per_address
                    .lock()
                    .unwrap_or_else(|p| p.into_inner()),
                ip,
            );
        }
    }

    fn handshake_over(&mut self) {
        if std::mem::take(&mut self.in_handshake) {
            self.core.handshakes.fetch_sub(1, Ordering::AcqRel);
            self.for_address(|map, ip| {
                if let Some(count) = map.get_mut(&ip) {
                    count.handshakes -= 1;
                }
            });
        }
    }
}

impl Drop for Counted {
    fn drop(&mut self) {
        self.handshake_over();
        self.core.connections.fetch_sub(1, Ordering::AcqRel);
        self.for_address(|map, ip| {
            if let Some(count) = map.get_mut(&ip) {
                count.connections -= 1;
                if count.connections == 0 {
                    map.remove(&ip);
                }
            }
        });
    }
}

/// This connection's share of the socket's partial-message gauge, given
/// back whenever it shrinks and when the connection ends.
struct PartialCharge {
    core: Arc<SocketCore>,
    charged: usize,
}

impl PartialCharge {
    fn set(&mut self, held: usize) {
        let gauge = &self.core.stats.partial_bytes;
        if held > self.charged {
            gauge.fetch_add((held - self.charged) as u64, Ordering::AcqRel);
        } else if held < self.charged {
            gauge.fetch_sub((self.charged - held) as u64, Ordering::AcqRel);
        }
        self.charged = held;
    }

    /// Whether reading more would go over the socket's budget.
    fn over_budget(&self, budget: usize) -> bool {
        self.charged >= PARTIAL_ALLOWANCE
            && self.core.stats.partial_bytes.load(Ordering::Acquire) >= budget as u64
    }
}

impl Drop for PartialCharge {
    fn drop(&mut self) {
        self.set(0);
    }
}

struct Attached {
    id: PeerId,
    out: Arc<Queue>,
    inq: Arc<Queue>,
}

/// The properties every message of a connection carries: what the peer
/// announced, what the authenticator attached, the user id and the peer's
/// address. Built once per connection and shared.
fn connection_metadata(
    info: &zeroguard_zmtp::PeerInfo,
    address: Option<IpAddr>,
) -> Arc<zeroguard_zmtp::Metadata> {
    let mut md = info.metadata.clone();
    for (name, value) in info.auth_metadata.iter() {
        let _ = md.insert(name, value.clone());
    }
    if let Some(user) = &info.user_id {
        let _ = md.insert(zeroguard_zmtp::metadata::USER_ID, user.clone());
    }
    if let Some(ip) = address {
        let _ = md.insert("Peer-Address", ip.to_string());
    }
    Arc::new(md)
}

/// Builds the protocol configuration from the socket's options.
fn protocol_config(core: &SocketCore) -> Config {
    let o = core.options();
    let mut c = Config::new(core.kind, o.security.mechanism_config());
    if let Some(id) = &o.routing_id {
        c.routing_id = id.clone();
    }
    c.metadata = o.metadata.clone();
    c.limits.max_message_size = o.max_message_size;
    c.limits.max_frames = o.max_frames;
    c.handshake_timeout = o.handshake_timeout;
    c.heartbeat = o.heartbeat;
    c
}

/// The protocol state and the bytes encoded but not yet written. The engine
/// holds the lock while it works (never across an await); a sending thread
/// takes it only with `try_lock`, so it never waits for the engine.
struct Wire {
    conn: Connection,
    wbuf: Outgoing,
    /// When the last write to the stream ended (see [`BYPASS_GAP`]).
    last_write: Option<Instant>,
    /// The peer's allowance (see `rate`), spent by whoever decodes.
    bucket: Option<Bucket>,
    /// The engine sleeps for want of room and lets the application decode
    /// (see [`Refill`]); only the engine sets it, and clears it on waking.
    refill: bool,
    /// Storage for what the application decodes, kept between refills.
    refilled: VecDeque<Item>,
    /// How the stream failed when the application read it, for the
    /// engine to report.
    read_failed: Option<io::Error>,
}

/// What the engine shares with sending threads once the peer is attached.
struct Link {
    wire: Mutex<Wire>,
    stream: Stream,
    wake: Arc<Notify>,
}

impl Link {
    fn lock(&self) -> MutexGuard<'_, Wire> {
        // Every update of the wire is complete before anything that could
        // panic, so a poisoned lock still guards a consistent state.
        self.wire.lock().unwrap_or_else(|p| p.into_inner())
    }
}

impl Bypass for Link {
    fn try_send(&self, item: Item, queue: &Queue) -> Result<(), Item> {
        let Item::Msg(msg) = &item else {
            return Err(item);
        };
        // Refused, the message is queued and wakes the engine, which opens
        // the bypass again when it next sleeps: until then senders need not
        // ask (a streaming sender asks once per engine sleep, not per message).
        let refuse = |item| {
            queue.open_bypass(false);
            Err(item)
        };
        let len = msg.payload_len();
        if len > BYPASS_MAX_BYTES && len < BYPASS_LARGE_BYTES {
            return refuse(item);
        }
        let Ok(mut guard) = self.wire.try_lock() else {
            return refuse(item);
        };
        let w = &mut *guard;
        // Messages already queued or encoded go first; a sender streaming
        // small messages back to back is better served by the engine's
        // batches.
        if !w.wbuf.is_empty()
            || !may_go_round(len, w.last_write, Instant::now())
            || !queue.is_idle()
        {
            drop(guard);
            return refuse(item);
        }
        if w.wbuf.encode(&mut w.conn, msg).is_err() {
            // Queued instead, the message meets the same error in the
            // engine, which closes the connection and says why.
            return Err(item);
        }
        let _ = self.stream.write_out(&mut w.wbuf);
        w.last_write = Some(Instant::now());
        if !w.wbuf.is_empty() {
            // The stream is full (or failed): waiting for it, or reporting
            // the failure, is the engine's work.
            queue.open_bypass(false);
            self.wake.notify_one();
        }
        Ok(())
    }
}

impl Refill for Link {
    fn refill(&self, queue: &Queue) {
        let Ok(mut guard) = self.wire.try_lock() else {
            // Whoever holds the wire, the engine must look at the room now.
            queue.open_refill(false);
            self.wake.notify_one();
            return;
        };
        let w = &mut *guard;
        if !w.refill {
            // The engine is awake and sees the room itself.
            return;
        }
        let (room_msgs, room_bytes) = queue.room();
        let max = room_msgs.min(DELIVERY_BATCH);
        let mut out = std::mem::take(&mut w.refilled);
        let (mut n, mut bytes) = w
            .conn
            .poll_messages(max, room_bytes, |m| out.push_back(Item::Msg(m)));
        // Whether the input may hold more for the next refill.
        let mut more = n >= max.max(1);
        if !more && w.read_failed.is_none() && w.conn.wants_input() {
            // The buffered messages are spent: the next ones are read here
            // too, rather than by the engine woken for them. While the peer
            // keeps sending, the receiving process then works on this one
            // thread, its I/O thread mostly asleep (at 16 B that thread's
            // CPU went from 164–383 to 26–162 ms/s, and throughput in five
            // alternating pairs from 11.9 M to 13.7 M msg/s median). Bytes
            // that complete no small message (a large frame's start) close
            // the refill: what the connection holds beyond its last message
            // stays within one read, as when the engine reads, and the
            // engine charges it to the partial budget when it wakes.
            match w.conn.read_input(Instant::now(), READ_CHUNK, |buf| {
                self.stream.try_read_buf(buf)
            }) {
                Ok(0) => {} // The end of the stream, which the engine meets too.
                Ok(_) => {
                    let (m, b) =
                        w.conn
                            .poll_messages(max - n, room_bytes.saturating_sub(bytes), |m| {
                                out.push_back(Item::Msg(m))
                            });
                    n += m;
                    bytes += b;
                    more = m > 0;
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                // Reported by the engine, as its own read's failure would be.
                Err(e) => w.read_failed = Some(e),
            }
        }
        let paused = w.bucket.as_mut().is_some_and(|b| {
            b.consume(n, bytes);
            b.paused_until(Instant::now()).is_some()
        });
        queue.push_batch(&mut out);
        w.refilled = out;
        if !more || paused {
            // The input is spent (or the peer's allowance): the engine
            // waits for more while these are taken.
            w.refill = false;
            queue.open_refill(false);
            drop(guard);
            self.wake.notify_one();
        }
    }
}

/// Whether a message of `len` bytes may go round the queue, at `now`, of a
/// connection with nothing else to write, whose last write ended at
/// `last_write`.
fn may_go_round(len: usize, last_write: Option<Instant>, now: Instant) -> bool {
    len >= BYPASS_LARGE_BYTES || (len <= BYPASS_MAX_BYTES && quiet_since(last_write, now))
}

/// Whether the wire has been quiet long enough, at `now`, since the end of
/// its last write for a message to go round the queue (see [`BYPASS_GAP`]).
fn quiet_since(last_write: Option<Instant>, now: Instant) -> bool {
    last_write.is_none_or(|end| now.saturating_duration_since(end) >= BYPASS_GAP)
}

/// Whether a socket's messages may go round the queue: those that send each
/// message to one peer. A publisher writing to each of its subscribers from
/// the application's thread would make that thread do every peer's I/O
/// (XSUB sends its data messages to every publisher alike).
fn may_bypass(kind: zeroguard_zmtp::SocketType) -> bool {
    use zeroguard_zmtp::SocketType as T;
    !matches!(kind, T::Pub | T::XPub | T::XSub)
}

/// Asks the socket's authenticator about a peer (on a blocking thread if the
/// authenticator may block).
async fn authenticate(
    core: &SocketCore,
    request: zeroguard_zmtp::AuthRequest,
    address: Option<IpAddr>,
    endpoint: &str,
) -> zeroguard_zmtp::AuthDecision {
    let options = core.options();
    let peer = AuthContext {
        mechanism: request.mechanism,
        credentials: request.credentials,
        address,
        endpoint: endpoint.to_owned(),
    };
    match options.security.authenticator().cloned() {
        Some(auth) if auth.may_block() => {
            match tokio::task::spawn_blocking(move || auth.authenticate(&peer)).await {
                Ok(d) => d,
                Err(_) => zeroguard_zmtp::AuthDecision::Refuse {
                    status: 500,
                    reason: "the authenticator failed".into(),
                },
            }
        }
        Some(auth) => auth.authenticate(&peer),
        None => zeroguard_zmtp::AuthDecision::refuse("no authenticator configured"),
    }
}

/// Runs a connection to its end.
pub(crate) async fn run(stream: Stream, params: EngineParams) -> Outcome {
    let EngineParams {
        core,
        counted,
        endpoint,
        peer_address,
        mut stop,
    } = params;
    let mut counted = counted;
    let conn = match Connection::new(protocol_config(&core), Instant::now()) {
        Ok(c) => c,
        Err(e) => {
            core.emit(MonitorEvent::HandshakeFailed {
                endpoint,
                category: e.category(),
                detail: e.to_string(),
            });
            return Outcome {
                handshake_done: false,
            };
        }
    };
    let wake = Arc::new(Notify::new());
    // Buffers grow when used and are given back when the connection is
    // quiet (see the timer arm), so idle connections stay small.
    let link = Arc::new(Link {
        wire: Mutex::new(Wire {
            conn,
            wbuf: Outgoing::default(),
            last_write: None,
            bucket: core
                .options()
                .rate_limit
                .map(|l| Bucket::new(l, Instant::now())),
            refill: false,
            refilled: VecDeque::new(),
            read_failed: None,
        }),
        stream,
        wake: wake.clone(),
    });
    let stream = &link.stream;
    let bypass_allowed = may_bypass(core.kind);
    let mut read_room = SMALL_READ;
    let mut attached: Option<Attached> = None;
    let mut batch: VecDeque<Item> = VecDeque::new();
    let mut linger_deadline: Option<Instant> = None;
    let mut handshake_done = false;
    let mut eof = false;
    let mut rate_pause: Option<Instant>;
    let partial_budget = core.options().max_partial_bytes;
    let mut partial = PartialCharge {
        core: core.clone(),
        charged: 0,
    };
    let mut delivered: VecDeque<Item> = VecDeque::new();

    let end: Result<(), String> = 'run: loop {
        // Decode what can be delivered (and what the peer's allowance
        // permits), and hand it over in one batch: one lock, one wake-up.
        let (mut room_msgs, mut room_bytes) = attached
            .as_ref()
            .map_or((usize::MAX, usize::MAX), |a| a.inq.room());
        // Why decoding stopped: for want of queue room, or of input, or
        // because this connection's turn is over.
        let mut stopped_for_room = false;
        // Messages came in runs (see `Refill for Link`).
        let mut in_runs = false;
        let mut turn_over = false;
        let mut turn_msgs = 0usize;
        let turn_start = Instant::now();
        let mut auth_request = None;
        // The wire is held in blocks that end before any await.
        let buffered = {
            let mut guard = link.lock();
            let w = &mut *guard;
            rate_pause = w
                .bucket
                .as_mut()
                .and_then(|b| b.paused_until(Instant::now()));
            loop {
                if rate_pause.is_some() {
                    break;
                }
                if turn_msgs == TURN_CHECK {
                    turn_msgs = 0;
                    if turn_start.elapsed() >= TURN_TIME {
                        turn_over = true;
                        break;
                    }
                }
                if room_msgs == 0 || room_bytes == 0 {
                    // The estimate ran out: the application may have drained
                    // some meanwhile. Stop only if the queue is really full,
                    // because only then will taking from it wake us again.
                    if let Some(a) = &attached {
                        a.inq.push_batch(&mut delivered);
                        (room_msgs, room_bytes) = a.inq.room();
                    }
                    if room_msgs == 0 || room_bytes == 0 {
                        stopped_for_room = true;
                        break;
                    }
                }
                if let Some(a) = &attached {
                    // The common case, a run of small one-frame messages,
                    // decoded in one call; anything else comes as events.
                    let max = room_msgs.min(TURN_CHECK - turn_msgs);
                    let (n, bytes) = w.conn.poll_messages(max, room_bytes, |m| {
                        delivered.push_back(Item::Msg(m));
                    });
                    if n > 0 {
                        in_runs = true;
                        room_msgs -= n;
                        room_bytes = room_bytes.saturating_sub(bytes);
                        turn_msgs += n;
                        if let Some(b) = w.bucket.as_mut() {
                            b.consume(n, bytes);
                            // The clock once per 64 messages, as below.
                            if turn_msgs == TURN_CHECK {
                                rate_pause = b.paused_until(Instant::now());
                            }
                        }
                        if delivered.len() >= DELIVERY_BATCH {
                            a.inq.push_batch(&mut delivered);
                        }
                        continue;
                    }
                }
                match w.conn.poll_event() {
                    Ok(None) => break,
                    Ok(Some(Event::Authenticate(request))) => {
                        // Asked without holding the wire (it may take a while).
                        auth_request = Some(request);
                        break;
                    }
                    Ok(Some(Event::Ready(info))) => {
                        let options = core.options();
                        let id = core.next_peer_id();
                        let (out, inq) = core.new_pipes(
                            Signal::one(wake.clone()),
                            Signal::one(wake.clone()),
                            &options,
                        );
                        if bypass_allowed {
                            let bypass: Weak<dyn Bypass> = Arc::downgrade(&link) as Weak<Link>;
                            out.set_bypass(bypass);
                        }
                        let refill: Weak<dyn Refill> = Arc::downgrade(&link) as Weak<Link>;
                        inq.set_refill(refill);
                        let announced = info.routing_id.clone();
                        let metadata = connection_metadata(&info, peer_address);
                        if let Err(reason) = core.attach(
                            id,
                            announced,
                            out.clone(),
                            inq.clone(),
                            None,
                            Some(metadata),
                        ) {
                            core.emit(MonitorEvent::HandshakeFailed {
                                endpoint: endpoint.clone(),
                                category: zeroguard_zmtp::ErrorCategory::Incompatible,
                                detail: reason.clone(),
                            });
                            break 'run Err(reason);
                        }
                        counted.handshake_over();
                        handshake_done = true;
                        core.emit(MonitorEvent::HandshakeSucceeded {
                            endpoint: endpoint.clone(),
                            mechanism: info.mechanism,
                        });
                        // Messages that follow the handshake in the same read
                        // count against the new queue's mark from the start.
                        (room_msgs, room_bytes) = inq.room();
                        attached = Some(Attached { id, out, inq });
                    }
                    Ok(Some(Event::Message(msg))) => {
                        if let Some(a) = &attached {
                            if core.kind == zeroguard_zmtp::SocketType::Pub {
                                continue; // PUB has no receive side; libzmq drops these too.
                            }
                            if let Some(b) = w.bucket.as_mut() {
                                // The clock is read once per batch, not per
                                // message: the bucket may overdraw by a batch.
                                b.consume(1, msg.payload_len());
                                if delivered.len() % 64 == 63 {
                                    rate_pause = b.paused_until(Instant::now());
                                }
                            }
                            room_msgs -= 1;
                            room_bytes = room_bytes.saturating_sub(msg.payload_len());
                            turn_msgs += 1;
                            delivered.push_back(Item::Msg(msg));
                            if delivered.len() >= DELIVERY_BATCH {
                                a.inq.push_batch(&mut delivered);
                            }
                        }
                    }
                    Ok(Some(Event::Subscribe(topic))) => {
                        if let Some(a) = &attached {
                            core.on_subscription(a.id, topic, true);
                        }
                    }
                    Ok(Some(Event::Cancel(topic))) => {
                        if let Some(a) = &attached {
                            core.on_subscription(a.id, topic, false);
                        }
                    }
                    Ok(Some(_)) => {}
                    Err(e) => {
                        // What was decoded before the failure is still delivered.
                        if let Some(a) = &attached {
                            a.inq.push_batch(&mut delivered);
                        }
                        report_failure(&core, &endpoint, &e, handshake_done);
                        // Let the peer read why (an ERROR command), best effort.
                        w.wbuf.clear();
                        w.conn.poll_transmit(&mut w.wbuf.buf);
                        let _ = stream.write_out(&mut w.wbuf);
                        break 'run Err(String::new());
                    }
                }
            }
            if let Some(a) = &attached {
                a.inq.push_batch(&mut delivered);
            }
            partial.set(w.conn.retained_input());
            if read_room == SMALL_READ && w.conn.retained_input() == 0 {
                // Quiet: hold no buffer between messages.
                w.conn.release_idle_buffers();
            }
            w.conn.buffered_input()
        };
        if let Some(request) = auth_request {
            let decision = authenticate(&core, *request, peer_address, &endpoint).await;
            if let Err(e) = link.lock().conn.complete_auth(decision) {
                break 'run Err(e.to_string());
            }
            continue;
        }

        if eof {
            // Deliver everything the peer sent before closing, as the
            // application makes room for it, then end. If decoding stopped
            // for want of room, decode again (waiting for room if the queue
            // is still full); if it stopped for want of input, what is left
            // is a partial frame the peer will never finish.
            if turn_over && !*stop.borrow() {
                tokio::task::yield_now().await;
                continue;
            }
            if stopped_for_room && !*stop.borrow() {
                if attached.as_ref().is_some_and(|a| !a.inq.has_room()) {
                    wake.notified().await;
                }
                continue;
            }
            if let (Some(until), true) = (rate_pause, buffered > 0) {
                sleep_until(Some(until)).await;
                continue;
            }
            break 'run Err("peer closed the connection".into());
        }

        // Encode what is ready to go. Taking from the queue and encoding
        // happen under one hold of the wire, so a message written round the
        // queue (which needs both empty) can never overtake these.
        let mut streamed = 0usize;
        let streamed_bytes;
        let (want_write, wants_input) = {
            let mut guard = link.lock();
            let w = &mut *guard;
            w.conn.poll_transmit(&mut w.wbuf.buf);
            let before = w.wbuf.len();
            if let Some(a) = &attached {
                while w.wbuf.len() < WRITE_BATCH {
                    batch.clear();
                    let more = a
                        .out
                        .pop_batch(&mut batch, (WRITE_BATCH - w.wbuf.len()).min(ENCODE_SLICE));
                    if batch.is_empty() {
                        break;
                    }
                    streamed += batch.len();
                    // Runs of messages are encoded in one call each; the
                    // subscriptions between them one by one.
                    let mut items = batch.iter().peekable();
                    while items.peek().is_some() {
                        let run = std::iter::from_fn(|| {
                            items
                                .next_if(|i| matches!(i, Item::Msg(_)))
                                .and_then(|i| match i {
                                    Item::Msg(m) => Some(m),
                                    Item::Subscribe(_) | Item::Cancel(_) => None,
                                })
                        });
                        let sent = match w.wbuf.encode_all(&mut w.conn, run) {
                            Ok(()) => match items.next() {
                                Some(Item::Subscribe(t)) => {
                                    w.conn.send_subscribe(t, &mut w.wbuf.buf)
                                }
                                Some(Item::Cancel(t)) => w.conn.send_cancel(t, &mut w.wbuf.buf),
                                Some(Item::Msg(_)) | None => Ok(()),
                            },
                            Err(e) => Err(e),
                        };
                        if let Err(e) = sent {
                            break 'run Err(e.to_string());
                        }
                    }
                    // Checked after a batch, not before: however long the
                    // decoding took, a peer that never stops sending still
                    // gets its replies. A pop that emptied the queue ends
                    // the batch too: what comes in meanwhile is a sender
                    // keeping pace from another core, and taking it as it
                    // came took a message or two a pop, the queue's lock and
                    // storage crossing between the cores each time (750 ns
                    // of the sending process's CPU per 16 B message). Written
                    // now, the next pop finds what came during the write.
                    if turn_start.elapsed() >= TURN_TIME || !more {
                        break;
                    }
                }
            }
            streamed_bytes = w.wbuf.len() - before;
            if !w.wbuf.is_empty() {
                match stream.write_out(&mut w.wbuf) {
                    Ok(_) => {}
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                    Err(e) => break 'run Err(e.to_string()),
                }
                w.last_write = Some(Instant::now());
            }
            // The messages just encoded are dropped together, after the
            // write, not one by one between encodings: a shared send block's
            // count, which the sending thread raises for every message it
            // builds, then moves to this core once per batch.
            batch.clear();

            // Closing: flush what is queued, within the linger time.
            if *stop.borrow() {
                if let Some(a) = attached.as_ref().filter(|a| a.out.has_staged()) {
                    core.take_staged(a.id);
                }
                let now = Instant::now();
                let deadline = *linger_deadline.get_or_insert_with(|| now + core.linger());
                let drained =
                    w.wbuf.is_empty() && attached.as_ref().is_none_or(|a| a.out.is_empty());
                if attached.is_none() || drained || now >= deadline {
                    break 'run Ok(());
                }
            }
            (!w.wbuf.is_empty(), w.conn.wants_input())
        };
        if turn_over {
            // The rest of the input waits, already buffered, for the next turn.
            tokio::task::yield_now().await;
            continue;
        }

        let mut budget_pause = partial
            .over_budget(partial_budget)
            .then(|| Instant::now() + BUDGET_RECHECK);
        let mut want_read = !eof
            && rate_pause.is_none()
            && budget_pause.is_none()
            && wants_input
            && attached.as_ref().is_none_or(|a| a.inq.has_room());
        if !want_read && !eof {
            let (pending, peer_closed) = stream.read_state_now().await;
            if budget_pause.is_some() && peer_closed {
                // What a departed peer left in the kernel is finite: read it
                // to the end (and so release its share) despite the budget.
                budget_pause = None;
                want_read = rate_pause.is_none()
                    && wants_input
                    && attached.as_ref().is_none_or(|a| a.inq.has_room());
            } else if pending {
                // Its bytes wait for us: the silence is ours, not the peer's.
                link.lock().conn.input_held_back();
            }
        }
        // One write takes at most WRITE_BATCH of the queue. If the socket
        // took it all and more is queued, go round again: nothing else will
        // wake us, since the queue never went empty.
        if !want_write && attached.as_ref().is_some_and(|a| !a.out.is_empty()) {
            tokio::task::yield_now().await;
            continue;
        }
        // The queue ran dry before a full write: its writer, if it waits
        // for this core, may fill it for the next one (see `give_way`).
        if !want_write && streamed >= 2 && streamed_bytes < WRITE_BATCH / 2 {
            if let Some(a) = attached.as_ref().filter(|_| give_way()) {
                if !a.out.is_empty() {
                    continue;
                }
            }
        }
        let deadline = [
            link.lock().conn.poll_timeout(),
            linger_deadline,
            rate_pause,
            budget_pause,
        ]
        .into_iter()
        .flatten()
        .min();
        // Out of work: from now on senders hand each message over at once,
        // and what they set aside while we were busy is taken now.
        if let Some(a) = attached.as_ref().filter(|_| !want_write) {
            a.out.set_reader_idle(true);
            if a.out.has_staged() && core.take_staged(a.id) {
                a.out.set_reader_idle(false);
                continue;
            }
        }
        // Asleep with nothing to write: a sender may write a lone message
        // itself rather than wake us for it.
        let bypass = match &attached {
            Some(a) if bypass_allowed && !want_write => {
                a.out.open_bypass(true);
                Some(&a.out)
            }
            _ => None,
        };
        // Asleep for want of room, with messages decoded in runs: the
        // application decodes the next ones itself when it has taken these.
        // Only for a queue found full: an application that drains it before
        // the refill opens crosses the half mark with the refill still
        // closed, which wakes us. Opened on a queue with room, the refill
        // could meet an application that had already found the queue empty
        // and gone to sleep, and neither side would decode what is left.
        let refill = match &attached {
            Some(a) if stopped_for_room && in_runs && rate_pause.is_none() => {
                let mut w = link.lock();
                w.refill = true;
                a.inq.open_refill(true);
                Some(&a.inq)
            }
            _ => None,
        };
        let stopped = *stop.borrow();
        tokio::select! {
            r = stream.readable(), if want_read => {
                if let Some(out) = bypass {
                    out.open_bypass(false);
                }
                if let Err(e) = r {
                    break 'run Err(e.to_string());
                }
                // The application's last read failed (see `Refill for Link`).
                if let Some(e) = link.lock().read_failed.take() {
                    break 'run Err(e.to_string());
                }
                let now = Instant::now();
                let mut total = 0;
                loop {
                    let (read, more) = {
                        let mut w = link.lock();
                        let read = w.conn.read_input(now, read_room, |buf| stream.try_read_buf(buf));
                        (read, w.conn.wants_input())
                    };
                    match read {
                        Ok(0) => { eof = true; break; }
                        Ok(n) => {
                            // Read sizes follow the traffic: a busy peer
                            // gets full reads, a quiet one (or one still
                            // in its handshake) costs only a small buffer.
                            if n >= read_room && attached.is_some() {
                                read_room = (read_room * 2).min(READ_CHUNK);
                            } else if n < read_room / 4 {
                                read_room = (read_room / 2).max(SMALL_READ);
                            }
                            total += n;
                            if !more {
                                // A large frame is complete, or much input
                                // waits: decode before reading on.
                                break;
                            }
                            if total >= 4 * READ_CHUNK {
                                // More is waiting: this peer could keep a
                                // thread busy as long as it sends. Let the
                                // other connections have their turn first
                                // (tokio would only force it after many
                                // rounds: hundreds of ms of CURVE work).
                                tokio::task::yield_now().await;
                                break;
                            }
                        }
                        Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                        Err(e) => break 'run Err(e.to_string()),
                    }
                }
            }
            r = stream.writable(), if want_write => {
                if let Err(e) = r {
                    break 'run Err(e.to_string());
                }
            }
            _ = wake.notified(), if !want_write => {}
            _ = sleep_until(deadline), if deadline.is_some() => {
                let mut w = link.lock();
                if let Err(e) = w.conn.handle_timeout(Instant::now()) {
                    report_failure(&core, &endpoint, &e, handshake_done);
                    break 'run Err(String::new());
                }
                // Timers fire on quiet connections (heartbeats every few
                // seconds): a good moment to give back idle buffers.
                if w.conn.buffered_input() == 0 && w.wbuf.is_empty() {
                    w.conn.release_idle_buffers();
                    w.wbuf.release();
                    delivered = VecDeque::new();
                    batch = VecDeque::new();
                }
            }
            _ = stop.changed(), if !stopped => {}
        }
        if let Some(out) = bypass {
            out.open_bypass(false);
        }
        if let Some(inq) = refill {
            let mut w = link.lock();
            w.refill = false;
            inq.open_refill(false);
        }
        if let Some(a) = &attached {
            a.out.set_reader_idle(false);
        }
    };

    if let Some(a) = attached {
        a.out.open_bypass(false);
        a.inq.open_refill(false);
        core.detach(a.id);
        let reason = match &end {
            Ok(()) => "closed".to_owned(),
            Err(r) if r.is_empty() => String::new(),
            Err(r) => r.clone(),
        };
        if !reason.is_empty() {
            core.emit(MonitorEvent::Disconnected { endpoint, reason });
        }
    } else if let Err(reason) = end {
        if !reason.is_empty() {
            core.emit(MonitorEvent::HandshakeFailed {
                endpoint,
                category: zeroguard_zmtp::ErrorCategory::PeerClosed,
                detail: reason,
            });
        }
    }
    Outcome { handshake_done }
}

fn report_failure(core: &SocketCore, endpoint: &str, e: &ProtocolError, handshake_done: bool) {
    let event = if handshake_done {
        MonitorEvent::Disconnected {
            endpoint: endpoint.to_owned(),
            reason: format!("{} {e}", e.category()),
        }
    } else {
        MonitorEvent::HandshakeFailed {
            endpoint: endpoint.to_owned(),
            category: e.category(),
            detail: e.to_string(),
        }
    };
    core.emit(event);
}

async fn sleep_until(deadline: Option<Instant>) {
    if let Some(d) = deadline {
        tokio::time::sleep_until(tokio::time::Instant::from_std(d)).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_a_quiet_wire_lets_a_message_round_the_queue() {
        let end = Instant::now();
        assert!(quiet_since(None, end), "a wire that never wrote");
        // A sender streaming back to back sends again within the gap of the
        // previous write's end, however long that write itself took.
        assert!(!quiet_since(Some(end), end + BYPASS_GAP / 2));
        assert!(
            !quiet_since(Some(end + BYPASS_GAP), end),
            "clock read before the write ended"
        );
        // One that waited for an answer comes back after at least a round trip.
        assert!(quiet_since(Some(end), end + BYPASS_GAP));
        assert!(quiet_since(Some(end), end + Duration::from_micros(40)));
    }

    #[test]
    fn large_messages_round_the_queue_however_busy_the_wire() {
        let end = Instant::now();
        let (busy, quiet) = (end + BYPASS_GAP / 2, end + BYPASS_GAP);
        for len in [BYPASS_LARGE_BYTES, 64 * 1024, 1 << 20] {
            assert!(may_go_round(len, Some(end), busy), "{len} bytes");
        }
        // Small ones wait for a quiet wire; those between never go round.
        assert!(!may_go_round(16, Some(end), busy));
        assert!(may_go_round(16, Some(end), quiet));
        assert!(may_go_round(BYPASS_MAX_BYTES, Some(end), quiet));
        assert!(!may_go_round(BYPASS_MAX_BYTES + 1, None, quiet));
        assert!(!may_go_round(BYPASS_LARGE_BYTES - 1, None, quiet));
    }
}
