//! The socket core shared by every socket kind: the table of attached
//! peers and their pipes, endpoints bound and connected, options, monitor
//! and counters. What each kind does with its peers lives in `routing`;
//! the typed public face in `api`.
//!
//! A peer is attached only once its handshake (and authentication) has
//! completed, so a connection that never finishes its handshake can neither
//! receive messages nor hold a place in load balancing (CVE-2020-15166).

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, RwLock, Weak};
use std::time::Duration;

use bytes::Bytes;
use tokio::sync::{watch, Notify};
use zeroguard_zmtp::{Frame, Message, Metadata, SocketType};

use crate::context::{Context, InprocEntry};
use crate::endpoint::{Direction, Endpoint};
use crate::error::{Error, Result};
use crate::lock::{Guard, Lock};
use crate::monitor::{Monitor, MonitorEvent, MonitorQueue};
use crate::options::SocketOptions;
use crate::pipe::{Item, Queue, Signal};
use crate::subscriptions::Subscriptions;
use crate::wait::Spin;

pub(crate) mod api;
pub(crate) mod routing;

/// Identifies an attached peer within one socket.
pub(crate) type PeerId = u64;

/// Subscriptions one subscriber may hold at a publisher; more are ignored.
const MAX_SUBSCRIPTIONS_PER_PEER: usize = 100_000;

/// One attached peer.
#[derive(Debug)]
pub(crate) struct Peer {
    pub(crate) id: PeerId,
    /// Routing id (announced or generated), used by ROUTER.
    pub(crate) routing_id: Bytes,
    /// Messages to the peer.
    pub(crate) out: Arc<Queue>,
    /// Messages from the peer.
    pub(crate) inq: Arc<Queue>,
    /// Messages taken from `inq` in one batch and not yet received: one
    /// lock per batch, while fair queueing still goes message by message.
    pub(crate) pending: std::collections::VecDeque<crate::pipe::Item>,
    /// Messages sent to a busy connection and not yet handed to `out`
    /// (see [`send`](Peer::send)), with their bytes.
    staged: std::collections::VecDeque<Item>,
    staged_bytes: usize,
    /// What the peer subscribed to (PUB, XPUB).
    pub(crate) subs: Subscriptions,
    /// The connection is gone; only what is left in `inq` remains to be read.
    pub(crate) detached: bool,
    /// For inproc: the socket at the other end and our id there.
    pub(crate) remote: Option<(Weak<SocketCore>, PeerId)>,
    /// The connection's properties, given to each message as the
    /// application takes it: the count of this `Arc` then changes on the
    /// application's thread alone, where attaching it on the I/O thread
    /// made its cache line cross between cores twice per message.
    pub(crate) metadata: Option<Arc<Metadata>>,
}

/// Messages a sender sets aside for a busy connection before it hands
/// them over together, and their bytes: the most a connection holds beyond
/// its high-water mark.
const STAGE_MSGS: usize = 32;
const STAGE_BYTES: usize = 32 * 1024;

impl Peer {
    /// Queues `item` for the peer, or gives it back when the queue is at
    /// its high-water mark (or closed).
    ///
    /// While the connection is busy writing, messages are set aside here,
    /// under the socket's lock, and handed over `STAGE_MSGS` at a time;
    /// the connection takes what is left when it runs out of work
    /// ([`SocketCore::take_staged`]). Queued one by one, each message cost
    /// the sending thread the queue's lock, and its locked instructions
    /// waited for the store of the message before it into queue storage
    /// whose lines the connection's thread, on the other core, had just
    /// read: with the two threads on different cores the sending process
    /// spent 206–301 ns of CPU per 16 B message, against 149–164 this way,
    /// where the message goes to storage the sending thread keeps. A
    /// connection with nothing to do gets each message at once, as before,
    /// so a request never waits here.
    #[inline]
    pub(crate) fn send(&mut self, item: Item) -> std::result::Result<(), Item> {
        if self.staged.is_empty()
            && (self.remote.is_some() || self.out.reader_idle() || item.size() >= STAGE_BYTES)
        {
            return self.out.try_push(item);
        }
        if self.staged_full() {
            // Left over from a full queue: what fits now goes first.
            self.hand_over();
            if self.staged_full() {
                return Err(item);
            }
        }
        self.staged_bytes += item.size();
        self.staged.push_back(item);
        if self.staged.len() == 1 {
            self.out.set_staged(true);
        }
        if self.staged_full() || self.out.reader_idle() {
            self.hand_over();
        }
        Ok(())
    }

    fn staged_full(&self) -> bool {
        self.staged.len() >= STAGE_MSGS || self.staged_bytes >= STAGE_BYTES
    }

    /// Moves what is staged to the queue, as far as its mark allows.
    fn hand_over(&mut self) {
        let moved = self.out.hand_over(&mut self.staged, false);
        self.staged_bytes = self.staged_bytes.saturating_sub(moved);
        if self.staged.is_empty() {
            self.out.set_staged(false);
        }
    }
}

/// Per-kind routing state, guarded by one lock.
#[derive(Debug, Default)]
pub(crate) struct State {
    /// In attachment order (round-robin and fair queueing walk it).
    pub(crate) peers: Vec<Peer>,
    /// Where each peer is in `peers`: routing by id must not scan them all.
    index: HashMap<PeerId, usize>,
    /// Next peer to try for round-robin sending.
    pub(crate) rr: usize,
    /// Next peer to try for fair-queued receiving.
    pub(crate) fq: usize,
    /// REQ: the peer whose reply we await.
    pub(crate) req_awaiting: Option<PeerId>,
    /// REP: where the reply to the last request goes, and its envelope.
    pub(crate) rep_envelope: Option<(PeerId, Vec<Frame>)>,
    /// SUB, XSUB: our own subscriptions, replayed to every new peer.
    pub(crate) own_subs: Subscriptions,
    /// XPUB: the union of the peers' subscriptions.
    pub(crate) all_subs: Subscriptions,
    /// XPUB: subscription messages waiting for the application, and who sent each.
    pub(crate) xpub_pending: std::collections::VecDeque<(PeerId, Message)>,
    /// XPUB manual mode: the peer whose subscription message was received last.
    pub(crate) xpub_last: Option<PeerId>,
    /// ROUTER: routing id to peer.
    pub(crate) by_id: HashMap<Bytes, PeerId>,
    /// ROUTER: counter for generated ids.
    pub(crate) next_generated: u32,
}

impl State {
    pub(crate) fn peer(&self, id: PeerId) -> Option<&Peer> {
        self.index.get(&id).and_then(|&i| self.peers.get(i))
    }

    fn peer_mut(&mut self, id: PeerId) -> Option<&mut Peer> {
        self.index.get(&id).and_then(|&i| self.peers.get_mut(i))
    }

    fn push_peer(&mut self, peer: Peer) {
        self.index.insert(peer.id, self.peers.len());
        self.peers.push(peer);
    }

    /// Forgets detached peers that have nothing left to read.
    pub(crate) fn reap(&mut self) {
        let before = self.peers.len();
        self.peers
            .retain(|p| !(p.detached && p.inq.is_empty() && p.pending.is_empty()));
        if self.peers.len() != before {
            self.index.clear();
            for (i, p) in self.peers.iter().enumerate() {
                self.index.insert(p.id, i);
            }
            self.rr = 0;
            self.fq = 0;
        }
    }
}

/// Counters of messages a socket did not deliver, by reason, and gauges of
/// what it holds.
#[derive(Debug, Default)]
pub struct Statistics {
    /// Dropped because a peer's queue was at its high-water mark (PUB, XPUB, ROUTER).
    pub dropped_full: AtomicU64,
    /// Dropped because no peer had the routing id (ROUTER).
    pub dropped_unroutable: AtomicU64,
    /// Dropped because the message lacked the envelope its socket type needs (REQ, REP).
    pub dropped_malformed: AtomicU64,
    /// Dropped because it did not match our subscriptions (SUB).
    pub dropped_unsubscribed: AtomicU64,
    /// Subscriptions ignored because a peer held too many.
    pub dropped_subscriptions: AtomicU64,
    /// Bytes now held for incoming messages not yet complete, across all
    /// connections (bounded by `max_partial_bytes` plus 320 KiB per connection).
    pub partial_bytes: AtomicU64,
}

/// What a socket holds in its queues at one moment, summed over its peers.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct Queued {
    /// Messages received and not yet read by the application.
    pub incoming_messages: usize,
    /// Bytes of those messages.
    pub incoming_bytes: usize,
    /// Messages waiting to be sent.
    pub outgoing_messages: usize,
    /// Bytes of those messages.
    pub outgoing_bytes: usize,
    /// Peers holding any of them.
    pub peers: usize,
}

/// Connections, and handshakes among them, from one source address.
#[derive(Debug, Default, Clone, Copy)]
pub(crate) struct AddressCount {
    pub(crate) connections: usize,
    pub(crate) handshakes: usize,
}

/// A bound or connected endpoint, and the switch that stops its tasks.
struct EndpointEntry {
    given: String,
    resolved: String,
    stop: watch::Sender<bool>,
    inproc_bound: Option<String>,
    ipc_file: Option<crate::transport::ipc::SocketFile>,
}

impl EndpointEntry {
    /// Stops the endpoint's tasks and releases its name or file at once,
    /// so the endpoint can be bound again as soon as this returns.
    fn stop(&self, core: &SocketCore) {
        let _ = self.stop.send(true);
        if let Some(name) = &self.inproc_bound {
            core.unregister_inproc(name);
        }
        if let Some(file) = &self.ipc_file {
            file.remove();
        }
    }
}

/// State shared by a socket's handles and its I/O tasks.
pub(crate) struct SocketCore {
    pub(crate) ctx: Context,
    pub(crate) kind: SocketType,
    options: RwLock<SocketOptions>,
    state: Lock<State>,
    /// Raised when a peer's incoming queue gets a message, or XPUB gets a subscription.
    pub(crate) readable: Arc<Notify>,
    /// Raised when a peer's outgoing queue drops below its mark, or a peer attaches.
    pub(crate) writable: Arc<Notify>,
    closed: AtomicBool,
    monitors: Mutex<Vec<Arc<MonitorQueue>>>,
    pub(crate) stats: Statistics,
    next_peer: AtomicU64,
    endpoints: Mutex<Vec<EndpointEntry>>,
    pub(crate) connections: AtomicUsize,
    pub(crate) handshakes: AtomicUsize,
    pub(crate) per_address: Mutex<HashMap<IpAddr, AddressCount>>,
    /// How long the last blocking send or receive waited, in nanoseconds.
    last_wait: AtomicU64,
    /// A message went out since the last one came in: an answer may be on
    /// its way, so a blocking receive checks before it sleeps (see
    /// [`spin`](SocketCore::spin)).
    answer_due: AtomicBool,
}

impl std::fmt::Debug for SocketCore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Socket")
            .field("kind", &self.kind)
            .finish_non_exhaustive()
    }
}

impl Drop for SocketCore {
    fn drop(&mut self) {
        for m in self
            .monitors
            .get_mut()
            .unwrap_or_else(|p| p.into_inner())
            .drain(..)
        {
            m.close();
        }
    }
}

impl SocketCore {
    pub(crate) fn new(
        ctx: &Context,
        kind: SocketType,
        options: SocketOptions,
    ) -> Result<Arc<SocketCore>> {
        options.validate()?;
        let core = Arc::new(SocketCore {
            ctx: ctx.clone(),
            kind,
            options: RwLock::new(options),
            state: Lock::new(State::default()),
            readable: Arc::new(Notify::new()),
            writable: Arc::new(Notify::new()),
            closed: AtomicBool::new(false),
            monitors: Mutex::new(Vec::new()),
            stats: Statistics::default(),
            next_peer: AtomicU64::new(1),
            endpoints: Mutex::new(Vec::new()),
            connections: AtomicUsize::new(0),
            handshakes: AtomicUsize::new(0),
            per_address: Mutex::new(HashMap::new()),
            last_wait: AtomicU64::new(0),
            answer_due: AtomicBool::new(false),
        });
        ctx.register(&core);
        Ok(core)
    }

    /// Sums the peers' queues (under the socket's lock: for monitoring, not
    /// for the hot path).
    pub(crate) fn queued(&self) -> Queued {
        let state = self.lock();
        let mut q = Queued {
            peers: state.peers.len(),
            ..Queued::default()
        };
        for p in &state.peers {
            q.incoming_messages += p.pending.len();
            q.incoming_bytes += p.pending.iter().map(crate::pipe::Item::size).sum::<usize>();
            let (m, b) = p.inq.len();
            q.incoming_messages += m;
            q.incoming_bytes += b;
            let (m, b) = p.out.len();
            q.outgoing_messages += m + p.staged.len();
            q.outgoing_bytes += b + p.staged_bytes;
        }
        q
    }

    /// Takes the socket's state (see [`crate::lock`]).
    #[inline(always)]
    pub(crate) fn lock(&self) -> Guard<'_, State> {
        self.state.lock()
    }

    /// A snapshot of the options (used when a connection starts).
    pub(crate) fn options(&self) -> SocketOptions {
        self.options
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    /// Reads the options without copying them (for hot paths).
    pub(crate) fn with_options<R>(&self, f: impl FnOnce(&SocketOptions) -> R) -> R {
        f(&self.options.read().unwrap_or_else(|p| p.into_inner()))
    }

    /// When a blocking send started now must give up.
    pub(crate) fn send_deadline(&self) -> Option<std::time::Instant> {
        self.with_options(|o| o.send_timeout)
            .map(|t| std::time::Instant::now() + t)
    }

    /// How a blocking receive on this socket waits before it sleeps: it
    /// checks only while an answer is due. A receiver that only receives (a
    /// stream's PULL or SUB) sleeps at once: its checking would take the CPU
    /// from the I/O threads that bring its messages, and it gains nothing,
    /// since the next message is in its queue as soon as it wakes.
    pub(crate) fn spin(&self) -> Spin<'_> {
        let window = match self.answer_due.load(Ordering::Relaxed) {
            true => self.with_options(|o| o.spin),
            false => Duration::ZERO,
        };
        Spin {
            window,
            last_wait: &self.last_wait,
        }
    }

    /// Records that a message went out (`true`) or came in (`false`),
    /// writing only on a change, so a stream costs no store per message.
    pub(crate) fn note_answer_due(&self, due: bool) {
        if self.answer_due.load(Ordering::Relaxed) != due {
            self.answer_due.store(due, Ordering::Relaxed);
        }
    }

    /// When a blocking receive started now must give up.
    pub(crate) fn recv_deadline(&self) -> Option<std::time::Instant> {
        self.with_options(|o| o.recv_timeout)
            .map(|t| std::time::Instant::now() + t)
    }

    pub(crate) fn set_options(&self, options: SocketOptions) -> Result<()> {
        options.validate()?;
        *self.options.write().unwrap_or_else(|p| p.into_inner()) = options;
        Ok(())
    }

    pub(crate) fn linger(&self) -> Duration {
        self.options
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .linger
    }

    pub(crate) fn is_closed(&self) -> bool {
        self.closed.load(Ordering::Acquire)
    }

    pub(crate) fn emit(&self, event: MonitorEvent) {
        let monitors = self.monitors.lock().unwrap_or_else(|p| p.into_inner());
        for m in monitors.iter() {
            m.push(event.clone());
        }
    }

    pub(crate) fn monitor(&self) -> Monitor {
        let queue = Arc::new(MonitorQueue::default());
        self.monitors
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push(queue.clone());
        Monitor { queue }
    }

    pub(crate) fn next_peer_id(&self) -> PeerId {
        self.next_peer.fetch_add(1, Ordering::Relaxed)
    }

    /// Queues for a new peer: `out` read by `out_reader`, `inq` written by `in_writer`.
    pub(crate) fn new_pipes(
        &self,
        out_reader: Signal,
        in_writer: Signal,
        opts: &SocketOptions,
    ) -> (Arc<Queue>, Arc<Queue>) {
        let out = Queue::new(
            opts.sndhwm,
            opts.sndhwm_bytes,
            out_reader,
            Signal::all(self.writable.clone()),
        );
        let inq = Queue::new(
            opts.rcvhwm,
            opts.rcvhwm_bytes,
            Signal::all(self.readable.clone()),
            in_writer,
        );
        (out, inq)
    }

    /// Adds a peer whose handshake is complete. Returns the refusal reason if
    /// this socket cannot take it (PAIR already paired, ROUTER id in use).
    pub(crate) fn attach(
        &self,
        id: PeerId,
        announced_id: Option<Bytes>,
        out: Arc<Queue>,
        inq: Arc<Queue>,
        remote: Option<(Weak<SocketCore>, PeerId)>,
        metadata: Option<Arc<Metadata>>,
    ) -> std::result::Result<(), String> {
        if self.is_closed() {
            return Err("socket is closed".into());
        }
        let mut deferred = Vec::new();
        let mut state = self.lock();
        state.reap();
        let live = state.peers.iter().filter(|p| !p.detached).count();
        if matches!(self.kind, SocketType::Pair | SocketType::Channel) && live > 0 {
            return Err("a PAIR socket takes only one peer".into());
        }
        let mut routing_id = Bytes::new();
        if self.kind == SocketType::Router {
            let options = self.options();
            match announced_id.filter(|id| !id.is_empty()) {
                Some(wanted) => {
                    if let Some(&holder) = state.by_id.get(&wanted) {
                        if !options.router_handover {
                            return Err("routing id already in use by another peer".into());
                        }
                        self.detach_locked(&mut state, holder, &mut deferred);
                    }
                    routing_id = wanted;
                }
                None => loop {
                    // libzmq's scheme: a zero byte, then a 32-bit counter.
                    state.next_generated = state.next_generated.wrapping_add(1);
                    let mut generated = vec![0u8];
                    generated.extend_from_slice(&state.next_generated.to_be_bytes());
                    let generated = Bytes::from(generated);
                    if !state.by_id.contains_key(&generated) {
                        routing_id = generated;
                        break;
                    }
                },
            }
            state.by_id.insert(routing_id.clone(), id);
        }
        if matches!(self.kind, SocketType::Sub | SocketType::XSub) {
            for topic in state.own_subs.topics() {
                for _ in 0..state.own_subs.count(topic) {
                    send_subscription(&out, remote.as_ref(), topic.clone(), true, &mut deferred);
                }
            }
        }
        state.push_peer(Peer {
            id,
            routing_id,
            out,
            inq,
            pending: std::collections::VecDeque::new(),
            staged: std::collections::VecDeque::new(),
            staged_bytes: 0,
            subs: Subscriptions::default(),
            detached: false,
            remote,
            metadata,
        });
        drop(state);
        run_deferred(deferred);
        self.writable.notify_waiters();
        Ok(())
    }

    /// Hands what senders staged for peer `id` to its queue, whatever its
    /// mark (they were accepted); called by the connection before it waits
    /// for more, after marking itself idle, if its queue says a sender
    /// holds some. Returns whether anything moved.
    pub(crate) fn take_staged(&self, id: PeerId) -> bool {
        let mut state = self.lock();
        let Some(peer) = state.peer_mut(id) else {
            return false;
        };
        if peer.staged.is_empty() {
            return false;
        }
        peer.out.hand_over(&mut peer.staged, true);
        peer.staged_bytes = 0;
        peer.out.set_staged(false);
        true
    }

    /// The connection of a peer is gone.
    pub(crate) fn detach(&self, id: PeerId) {
        let mut deferred = Vec::new();
        let mut state = self.lock();
        self.detach_locked(&mut state, id, &mut deferred);
        drop(state);
        run_deferred(deferred);
        self.readable.notify_waiters();
        self.writable.notify_waiters();
    }

    fn detach_locked(&self, state: &mut State, id: PeerId, deferred: &mut Vec<Deferred>) {
        let Some(peer) = state.peer_mut(id) else {
            return;
        };
        if peer.detached {
            return;
        }
        peer.detached = true;
        peer.out.close();
        if peer.remote.is_none() {
            // The connection is gone: what it had not written is lost.
            // An inproc peer's outgoing queue is the other socket's incoming
            // queue: what we sent before closing stays for it to read.
            peer.out.clear();
            peer.staged = std::collections::VecDeque::new();
            peer.staged_bytes = 0;
            peer.out.set_staged(false);
        }
        peer.inq.close();
        let routing_id = peer.routing_id.clone();
        let subs = std::mem::take(&mut peer.subs);
        let remote = peer.remote.clone();
        if state.by_id.get(&routing_id) == Some(&id) {
            state.by_id.remove(&routing_id);
        }
        if self.kind == SocketType::XPub {
            for topic in subs.topics() {
                for _ in 0..subs.count(topic) {
                    if state.all_subs.remove(topic) {
                        state
                            .xpub_pending
                            .push_back((id, subscription_message(false, topic)));
                    }
                }
            }
        }
        if let Some((remote, remote_id)) = remote {
            if let Some(remote) = remote.upgrade() {
                deferred.push(Deferred::Detach(remote, remote_id));
            }
        }
        state.reap();
    }

    /// A peer subscribed (or cancelled): PUB and XPUB keep it per peer;
    /// XPUB also tells the application (new topics only, unless verbose).
    /// In XPUB manual mode nothing is applied: the application decides with
    /// [`manual_subscription`](SocketCore::manual_subscription).
    pub(crate) fn on_subscription(&self, id: PeerId, topic: Bytes, subscribe: bool) {
        if !self.kind.accepts_subscriptions() {
            return;
        }
        let (manual_option, verbose, rcvhwm) =
            self.with_options(|o| (o.xpub_manual, o.xpub_verbose, o.rcvhwm));
        let xpub = self.kind == SocketType::XPub;
        let manual = xpub && manual_option;
        let mut state = self.lock();
        let notify = if manual {
            state.peer(id).is_some()
        } else {
            let Some(peer) = state.peer_mut(id) else {
                return;
            };
            if subscribe {
                if peer.subs.len() >= MAX_SUBSCRIPTIONS_PER_PEER {
                    self.stats
                        .dropped_subscriptions
                        .fetch_add(1, Ordering::Relaxed);
                    return;
                }
                peer.subs.add(topic.clone());
            } else if peer.subs.count(&topic) > 0 {
                peer.subs.remove(&topic);
            } else {
                // Cancelling what was never subscribed changes nothing.
                return;
            }
            if !xpub {
                return;
            }
            if subscribe {
                state.all_subs.add(topic.clone()) || verbose
            } else {
                state.all_subs.remove(&topic)
            }
        };
        if notify {
            if state.xpub_pending.len() >= rcvhwm {
                self.stats
                    .dropped_subscriptions
                    .fetch_add(1, Ordering::Relaxed);
                return;
            }
            state
                .xpub_pending
                .push_back((id, subscription_message(subscribe, &topic)));
            drop(state);
            self.readable.notify_waiters();
        }
    }

    /// XPUB manual mode: applies a subscription to the peer whose
    /// subscription message the application received last.
    pub(crate) fn manual_subscription(&self, topic: Bytes, subscribe: bool) -> Result<()> {
        if self.kind != SocketType::XPub || !self.options().xpub_manual {
            return Err(Error::InvalidState(
                "manual subscriptions need an XPUB socket with xpub_manual set",
            ));
        }
        let mut state = self.lock();
        let Some(last) = state.xpub_last else {
            return Err(Error::InvalidState(
                "no subscription message has been received yet",
            ));
        };
        if let Some(peer) = state.peer_mut(last) {
            if subscribe {
                peer.subs.add(topic);
            } else {
                peer.subs.remove(&topic);
            }
        }
        Ok(())
    }

    /// Stops every endpoint and connection; queued messages get `linger` to leave.
    pub(crate) fn close(&self) {
        if self.closed.swap(true, Ordering::AcqRel) {
            return;
        }
        let entries: Vec<EndpointEntry> =
            std::mem::take(&mut *self.endpoints.lock().unwrap_or_else(|p| p.into_inner()));
        for e in &entries {
            e.stop(self);
        }
        // Inproc peers have no task to notice the close: detach both ends now.
        let inproc: Vec<PeerId> = self
            .lock()
            .peers
            .iter()
            .filter(|p| p.remote.is_some())
            .map(|p| p.id)
            .collect();
        for id in inproc {
            self.detach(id);
        }
        self.readable.notify_waiters();
        self.writable.notify_waiters();
    }

    /// Registers an endpoint; returns the switch its tasks watch.
    pub(crate) fn add_endpoint(
        &self,
        given: &str,
        resolved: &str,
        inproc_bound: Option<String>,
        ipc_file: Option<crate::transport::ipc::SocketFile>,
    ) -> watch::Receiver<bool> {
        let (stop, rx) = watch::channel(false);
        self.endpoints
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push(EndpointEntry {
                given: given.to_owned(),
                resolved: resolved.to_owned(),
                stop,
                inproc_bound,
                ipc_file,
            });
        rx
    }

    /// Stops the tasks of a bound or connected endpoint (by the string given or the resolved one).
    pub(crate) fn remove_endpoint(&self, endpoint: &str) -> Result<()> {
        let mut entries = self.endpoints.lock().unwrap_or_else(|p| p.into_inner());
        let Some(pos) = entries
            .iter()
            .position(|e| e.given == endpoint || e.resolved == endpoint)
        else {
            return Err(Error::UnknownEndpoint(endpoint.to_owned()));
        };
        let entry = entries.remove(pos);
        drop(entries);
        entry.stop(self);
        Ok(())
    }

    /// Endpoints as resolved (bound port filled in), in the order they were added.
    pub(crate) fn endpoints(&self) -> Vec<String> {
        self.endpoints
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .iter()
            .map(|e| e.resolved.clone())
            .collect()
    }

    fn unregister_inproc(&self, name: &str) {
        let mut reg = self
            .ctx
            .inner
            .inproc
            .lock()
            .unwrap_or_else(|p| p.into_inner());
        if let Some(InprocEntry::Bound(w)) = reg.get(name) {
            if std::ptr::eq(w.as_ptr(), self) {
                reg.remove(name);
            }
        }
    }

    /// Checks the endpoint against the security policy: no cleartext on the network by accident.
    pub(crate) fn check_endpoint_policy(&self, endpoint: &Endpoint, given: &str) -> Result<()> {
        let options = self.options();
        if matches!(endpoint, Endpoint::Tcp { .. })
            && !endpoint.is_loopback()
            && options.security.is_plaintext()
            && !options.allow_plaintext
        {
            return Err(Error::InvalidEndpoint {
                endpoint: given.to_owned(),
                reason: format!(
                    "{} security sends everything in clear text and this address is not loopback; \
                     use CURVE, or set allow_plaintext (CLI: --allow-plaintext) to accept that",
                    options.security.mechanism()
                ),
            });
        }
        Ok(())
    }

    pub(crate) fn parse_endpoint(&self, given: &str, direction: Direction) -> Result<Endpoint> {
        if self.is_closed() {
            return Err(Error::Closed);
        }
        let endpoint = Endpoint::parse(given, direction)?;
        self.check_endpoint_policy(&endpoint, given)?;
        Ok(endpoint)
    }
}

/// The message XPUB delivers for a subscription (1) or cancellation (0).
pub(crate) fn subscription_message(subscribe: bool, topic: &[u8]) -> Message {
    let mut m = Vec::with_capacity(topic.len() + 1);
    m.push(u8::from(subscribe));
    m.extend_from_slice(topic);
    Message::from(m)
}

/// Sends a subscription to one peer: through its pipe, or straight to the
/// publisher for an inproc peer (which has no connection task to decode it).
pub(crate) fn send_subscription(
    out: &Arc<Queue>,
    remote: Option<&(Weak<SocketCore>, PeerId)>,
    topic: Bytes,
    subscribe: bool,
    deferred: &mut Vec<Deferred>,
) {
    match remote {
        Some((core, remote_id)) => {
            if let Some(core) = core.upgrade() {
                deferred.push(Deferred::Subscription {
                    core,
                    peer: *remote_id,
                    topic,
                    subscribe,
                });
            }
        }
        None => {
            let item = if subscribe {
                Item::Subscribe(topic)
            } else {
                Item::Cancel(topic)
            };
            out.push_force(item);
        }
    }
}

/// Work on another socket that must wait until our lock is released, so
/// that no thread ever holds two sockets' locks at once (inproc peers call
/// into each other).
pub(crate) enum Deferred {
    /// Detach our peer id at the far socket.
    Detach(Arc<SocketCore>, PeerId),
    /// Deliver a subscription to an inproc publisher.
    Subscription {
        core: Arc<SocketCore>,
        peer: PeerId,
        topic: Bytes,
        subscribe: bool,
    },
}

/// Runs deferred work (which may defer more).
pub(crate) fn run_deferred(mut work: Vec<Deferred>) {
    while let Some(item) = work.pop() {
        match item {
            Deferred::Detach(core, id) => {
                let mut state = core.lock();
                core.detach_locked(&mut state, id, &mut work);
                drop(state);
                core.readable.notify_waiters();
                core.writable.notify_waiters();
            }
            Deferred::Subscription {
                core,
                peer,
                topic,
                subscribe,
            } => {
                core.on_subscription(peer, topic, subscribe);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn peer(hwm: usize) -> Peer {
        let n = Arc::new(Notify::new());
        Peer {
            id: 1,
            routing_id: Bytes::new(),
            out: Queue::new(
                hwm,
                usize::MAX,
                Signal::one(n.clone()),
                Signal::one(n.clone()),
            ),
            inq: Queue::new(hwm, usize::MAX, Signal::one(n.clone()), Signal::one(n)),
            pending: std::collections::VecDeque::new(),
            staged: std::collections::VecDeque::new(),
            staged_bytes: 0,
            subs: Subscriptions::default(),
            detached: false,
            remote: None,
            metadata: None,
        }
    }

    fn msg(n: usize) -> Item {
        Item::Msg(Message::from(n.to_string()))
    }

    #[test]
    fn a_busy_connection_gets_messages_handed_over_together() {
        let mut p = peer(1000);
        // Idle: each message is queued at once.
        assert!(p.send(msg(0)).is_ok());
        assert_eq!(p.out.len().0, 1);
        // Busy: set aside, then handed over a batch at a time, in order.
        p.out.set_reader_idle(false);
        for i in 1..STAGE_MSGS {
            assert!(p.send(msg(i)).is_ok());
        }
        assert_eq!(p.out.len().0, 1, "set aside while the connection is busy");
        assert!(p.send(msg(STAGE_MSGS)).is_ok());
        assert_eq!(p.out.len().0, 1 + STAGE_MSGS);
        assert!(p.send(msg(STAGE_MSGS + 1)).is_ok());
        // Once idle again, the next message takes the rest with it.
        p.out.set_reader_idle(true);
        assert!(p.send(msg(STAGE_MSGS + 2)).is_ok());
        assert_eq!(p.out.len().0, STAGE_MSGS + 3);
        let order: Vec<String> = std::iter::from_fn(|| p.out.try_pop())
            .map(|i| match i {
                Item::Msg(m) => String::from_utf8_lossy(&m.frames()[0]).into_owned(),
                _ => String::new(),
            })
            .collect();
        let expected: Vec<String> = (0..STAGE_MSGS + 3).map(|i| i.to_string()).collect();
        assert_eq!(order, expected);
    }

    #[test]
    fn a_full_queue_holds_at_most_one_batch_besides() {
        let mut p = peer(10);
        p.out.set_reader_idle(false);
        let mut accepted = 0;
        while p.send(msg(accepted)).is_ok() {
            accepted += 1;
            assert!(accepted <= 10 + STAGE_MSGS, "staging went past its bound");
        }
        assert_eq!(accepted, 10 + STAGE_MSGS, "one batch besides the mark");
        assert_eq!(p.out.len().0, 10);
        // Room again: what was set aside goes first, then the new message.
        while p.out.len().0 > 5 {
            assert!(p.out.try_pop().is_some());
        }
        assert!(p.send(msg(accepted)).is_ok());
        assert_eq!(p.out.len().0, 10);
        // The connection takes what is left, whatever the mark.
        assert!(p.out.hand_over(&mut p.staged, true) > 0);
        assert!(p.staged.is_empty());
        assert_eq!(p.out.len().0, accepted + 1 - 5);
    }
}
