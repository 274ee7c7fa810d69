//! What each socket kind does with its peers (RFC 28 to 31, libzmq's socket docs):
//!
//! - round-robin sending over peers with room (PUSH, DEALER, PAIR, REQ);
//! - fair-queued receiving (PULL, DEALER, PAIR, SUB, XSUB, ROUTER, REP, XPUB);
//! - fan-out with prefix matching, dropping only for the subscriber whose
//!   queue is full (PUB, XPUB);
//! - routing by id (ROUTER), reply envelopes (REP), strict alternation (REQ).
//!
//! Every message a kind drops is counted in [`Statistics`](super::Statistics).

use std::sync::atomic::Ordering;

use bytes::Bytes;
use zeroguard_zmtp::{Message, SocketType};

use super::{run_deferred, send_subscription, Deferred, PeerId, SocketCore, State};
use crate::error::{Error, Result};
use crate::pipe::Item;

/// The result of one attempt to send.
pub(crate) enum SendOutcome {
    /// Queued (or dropped by design, and counted).
    Done,
    /// No peer can take it now; try again when the socket becomes writable.
    WouldBlock(Message),
}

/// The `i`-th peer of `n` counting from `start`, wrapping round: what
/// `(start + i) % n` gives, without a division per message (`start` may be
/// `n`, or past it when peers left).
fn turn(start: usize, i: usize, n: usize) -> usize {
    let start = if start < n { start } else { 0 };
    let idx = start + i;
    if idx >= n {
        idx - n
    } else {
        idx
    }
}

/// Queues `msg` to the next peer with room, round-robin. Always inlined,
/// as are the calls above and below it on the sending path: left to the
/// compiler they stayed calls, each moving the message once more and saving
/// registers, 77 of the 325 instructions a 16 B message cost the sending
/// thread.
#[inline(always)]
fn round_robin(state: &mut State, msg: Message) -> std::result::Result<PeerId, Message> {
    let n = state.peers.len();
    let mut item = Item::Msg(msg);
    for i in 0..n {
        let idx = turn(state.rr, i, n);
        let peer = &mut state.peers[idx];
        if peer.detached {
            continue;
        }
        match peer.send(item) {
            Ok(()) => {
                state.rr = idx + 1;
                return Ok(peer.id);
            }
            Err(back) => item = back,
        }
    }
    match item {
        Item::Msg(m) => Err(m),
        Item::Subscribe(_) | Item::Cancel(_) => Err(Message::new()),
    }
}

/// Bytes taken from one peer's queue at a time by a receiving socket: one
/// lock per batch rather than per message. A peer's queue may hold this
/// much beyond its high-water mark.
const PREFETCH_BYTES: usize = 64 * 1024;

/// Takes the next message from the peers in turn, one message per peer,
/// with the index of the peer it came from (in `state.peers`, valid until
/// the state changes). Inlined: a message returned through one more call
/// is one more copy of it, on the path every received message takes.
#[inline(always)]
fn fair_queue(state: &mut State) -> Option<(usize, Message)> {
    let n = state.peers.len();
    for i in 0..n {
        let idx = turn(state.fq, i, n);
        let peer = &mut state.peers[idx];
        if peer.pending.is_empty() {
            peer.inq.pop_batch(&mut peer.pending, PREFETCH_BYTES);
        }
        // Only messages travel towards the application.
        while let Some(Item::Subscribe(_) | Item::Cancel(_)) = peer.pending.front() {
            peer.pending.pop_front();
        }
        if let Some(Item::Msg(mut m)) = peer.pending.pop_front() {
            state.fq = idx + 1;
            if let Some(metadata) = &peer.metadata {
                m.share_metadata(metadata);
            }
            return Some((idx, m));
        }
    }
    state.reap();
    None
}

/// Before a message goes to each of several peers: its bodies counted
/// once, so that each peer's clone shares them rather than copies them.
fn share_for_fan_out(state: &State, msg: &mut Message) {
    if state.peers.len() > 1 {
        msg.share();
    }
}

fn is_subscription_message(msg: &Message) -> Option<(bool, Bytes)> {
    if msg.len() != 1 {
        return None;
    }
    let frame = msg.first()?;
    match frame.first() {
        Some(1) => Some((true, frame.slice_from(1).into_bytes())),
        Some(0) => Some((false, frame.slice_from(1).into_bytes())),
        _ => None,
    }
}

impl SocketCore {
    /// One attempt to send, by the rules of this socket's kind.
    #[inline(always)]
    pub(crate) fn try_send(&self, msg: Message) -> Result<SendOutcome> {
        if matches!(
            self.kind,
            SocketType::Push | SocketType::Dealer | SocketType::Pair
        ) && !msg.is_empty()
            && !self.is_closed()
        {
            // The streaming kinds, on every message: straight through, as
            // on the receiving side.
            let sent = round_robin(&mut self.lock(), msg);
            return Ok(match sent {
                Ok(_) => {
                    self.note_answer_due(true);
                    SendOutcome::Done
                }
                Err(m) => SendOutcome::WouldBlock(m),
            });
        }
        let outcome = self.route_out(msg)?;
        if matches!(outcome, SendOutcome::Done) {
            self.note_answer_due(true);
        }
        Ok(outcome)
    }

    #[inline]
    fn route_out(&self, mut msg: Message) -> Result<SendOutcome> {
        if self.is_closed() {
            return Err(Error::Closed);
        }
        if msg.is_empty() {
            return Err(Error::InvalidMessage("a message needs at least one frame"));
        }
        let mut state = self.lock();
        match self.kind {
            // Reached only by a call that skips `try_send`'s straight path.
            SocketType::Push | SocketType::Dealer | SocketType::Pair => {
                match round_robin(&mut state, msg) {
                    Ok(_) => Ok(SendOutcome::Done),
                    Err(m) => Ok(SendOutcome::WouldBlock(m)),
                }
            }
            SocketType::Req => {
                if state.req_awaiting.is_some() {
                    return Err(Error::InvalidState(
                        "a REQ socket must receive the reply before it sends another request",
                    ));
                }
                msg.push_front(Bytes::new());
                match round_robin(&mut state, msg) {
                    Ok(peer) => {
                        state.req_awaiting = Some(peer);
                        Ok(SendOutcome::Done)
                    }
                    Err(mut m) => {
                        m.pop_front();
                        Ok(SendOutcome::WouldBlock(m))
                    }
                }
            }
            SocketType::Rep => {
                let Some((peer, envelope)) = state.rep_envelope.take() else {
                    return Err(Error::InvalidState(
                        "a REP socket must receive a request before it sends a reply",
                    ));
                };
                let mut frames = envelope;
                frames.extend(msg.into_frames());
                // A reply to a peer that left, or whose queue is full, is dropped (as libzmq).
                let queued = state
                    .peer(peer)
                    .filter(|p| !p.detached)
                    .is_some_and(|p| p.out.try_push(Item::Msg(Message::from(frames))).is_ok());
                if !queued {
                    self.stats.dropped_full.fetch_add(1, Ordering::Relaxed);
                }
                Ok(SendOutcome::Done)
            }
            SocketType::Router => {
                let Some(id) = msg.pop_front() else {
                    return Err(Error::InvalidMessage(
                        "a ROUTER message starts with the routing id frame",
                    ));
                };
                if msg.is_empty() {
                    return Err(Error::InvalidMessage(
                        "a ROUTER message needs frames after the routing id",
                    ));
                }
                let mandatory = self.with_options(|o| o.router_mandatory);
                let target = state
                    .by_id
                    .get(&id[..])
                    .and_then(|&pid| state.peer(pid))
                    .filter(|p| !p.detached);
                match target {
                    None if mandatory => Err(Error::HostUnreachable(id.into_bytes())),
                    None => {
                        self.stats
                            .dropped_unroutable
                            .fetch_add(1, Ordering::Relaxed);
                        Ok(SendOutcome::Done)
                    }
                    Some(peer) => match peer.out.try_push(Item::Msg(msg)) {
                        Ok(()) => Ok(SendOutcome::Done),
                        Err(Item::Msg(mut back)) if mandatory => {
                            back.push_front(id);
                            Ok(SendOutcome::WouldBlock(back))
                        }
                        Err(_) => {
                            self.stats.dropped_full.fetch_add(1, Ordering::Relaxed);
                            Ok(SendOutcome::Done)
                        }
                    },
                }
            }
            SocketType::Pub | SocketType::XPub => {
                share_for_fan_out(&state, &mut msg);
                let first: &[u8] = msg.first().map_or(&[], |f| f);
                for peer in state.peers.iter().filter(|p| !p.detached) {
                    if peer.subs.matches(first)
                        && peer.out.try_push(Item::Msg(msg.clone())).is_err()
                    {
                        // Only this subscriber misses the message; the others are unaffected.
                        self.stats.dropped_full.fetch_add(1, Ordering::Relaxed);
                    }
                }
                Ok(SendOutcome::Done)
            }
            SocketType::XSub => {
                if let Some((subscribe, topic)) = is_subscription_message(&msg) {
                    let deferred = self.update_own_subscriptions(&mut state, topic, subscribe);
                    drop(state);
                    run_deferred(deferred);
                    return Ok(SendOutcome::Done);
                }
                share_for_fan_out(&state, &mut msg);
                for peer in state.peers.iter().filter(|p| !p.detached) {
                    if peer.out.try_push(Item::Msg(msg.clone())).is_err() {
                        self.stats.dropped_full.fetch_add(1, Ordering::Relaxed);
                    }
                }
                Ok(SendOutcome::Done)
            }
            _ => Err(Error::InvalidState("this socket type cannot send")),
        }
    }

    /// One attempt to receive, by the rules of this socket's kind.
    #[inline(always)]
    pub(crate) fn try_recv(&self) -> Result<Option<Message>> {
        if matches!(
            self.kind,
            SocketType::Pull | SocketType::Dealer | SocketType::Pair | SocketType::XSub
        ) {
            // The streaming kinds, on every message: straight through,
            // without the result passing through the other kinds' checks.
            let mut state = self.lock();
            if let Some((_, m)) = fair_queue(&mut state) {
                drop(state);
                self.note_answer_due(false);
                return Ok(Some(m));
            }
            drop(state);
            return match self.is_closed() {
                true => Err(Error::Closed),
                false => Ok(None),
            };
        }
        let got = self.take_in()?;
        if got.is_some() {
            self.note_answer_due(false);
        }
        Ok(got)
    }

    #[inline]
    fn take_in(&self) -> Result<Option<Message>> {
        let mut state = self.lock();
        let result = match self.kind {
            // Reached only by a call that skips `try_recv`'s straight path.
            SocketType::Pull | SocketType::Dealer | SocketType::Pair | SocketType::XSub => {
                Ok(fair_queue(&mut state).map(|(_, m)| m))
            }
            SocketType::Sub => loop {
                let Some((_, m)) = fair_queue(&mut state) else {
                    break Ok(None);
                };
                let first = m.first().map(|f| &f[..]).unwrap_or_default();
                if state.own_subs.matches(first) {
                    break Ok(Some(m));
                }
                self.stats
                    .dropped_unsubscribed
                    .fetch_add(1, Ordering::Relaxed);
            },
            SocketType::Router => Ok(fair_queue(&mut state).map(|(idx, mut m)| {
                m.push_front(state.peers[idx].routing_id.clone());
                m
            })),
            SocketType::Rep => {
                if state.rep_envelope.is_some() {
                    return Err(Error::InvalidState(
                        "a REP socket must send its reply before it receives the next request",
                    ));
                }
                loop {
                    let Some((idx, mut m)) = fair_queue(&mut state) else {
                        break Ok(None);
                    };
                    let Some(delimiter) = m.frames().iter().position(|f| f.is_empty()) else {
                        self.stats.dropped_malformed.fetch_add(1, Ordering::Relaxed);
                        continue;
                    };
                    if delimiter + 1 == m.len() {
                        self.stats.dropped_malformed.fetch_add(1, Ordering::Relaxed);
                        continue;
                    }
                    // Taken off the front, so the request keeps the
                    // connection's properties that fair queueing gave it.
                    let envelope = (0..=delimiter).filter_map(|_| m.pop_front()).collect();
                    state.rep_envelope = Some((state.peers[idx].id, envelope));
                    break Ok(Some(m));
                }
            }
            SocketType::Req => {
                let Some(awaited) = state.req_awaiting else {
                    return Err(Error::InvalidState(
                        "a REQ socket must send a request before it receives",
                    ));
                };
                // Replies from anyone else are stale: drop them so their senders are not stalled.
                for peer in state.peers.iter().filter(|p| p.id != awaited) {
                    while peer.inq.try_pop().is_some() {
                        self.stats.dropped_malformed.fetch_add(1, Ordering::Relaxed);
                    }
                }
                loop {
                    let Some(peer) = state.peer(awaited) else {
                        state.req_awaiting = None;
                        break Err(Error::InvalidState(
                            "the peer that took the request disconnected before replying; send it again",
                        ));
                    };
                    match peer.inq.try_pop() {
                        Some(Item::Msg(mut m)) => {
                            if m.first().is_some_and(|f| f.is_empty()) && m.len() > 1 {
                                m.pop_front();
                                if let Some(metadata) = &peer.metadata {
                                    m.share_metadata(metadata);
                                }
                                state.req_awaiting = None;
                                break Ok(Some(m));
                            }
                            self.stats.dropped_malformed.fetch_add(1, Ordering::Relaxed);
                        }
                        Some(_) => {}
                        None if peer.detached => {
                            state.req_awaiting = None;
                            state.reap();
                            break Err(Error::InvalidState(
                                "the peer that took the request disconnected before replying; send it again",
                            ));
                        }
                        None => break Ok(None),
                    }
                }
            }
            SocketType::XPub => {
                if let Some((from, m)) = state.xpub_pending.pop_front() {
                    state.xpub_last = Some(from);
                    Ok(Some(m))
                } else {
                    Ok(fair_queue(&mut state).map(|(_, m)| m))
                }
            }
            _ => Err(Error::InvalidState("this socket type cannot receive")),
        };
        if matches!(result, Ok(None)) && self.is_closed() {
            return Err(Error::Closed);
        }
        result
    }

    /// SUB/XSUB: adds or removes one of our subscriptions and tells every peer.
    /// Returns the work for inproc publishers, to run once the lock is released.
    #[must_use]
    fn update_own_subscriptions(
        &self,
        state: &mut State,
        topic: Bytes,
        subscribe: bool,
    ) -> Vec<Deferred> {
        let mut deferred = Vec::new();
        if subscribe {
            state.own_subs.add(topic.clone());
        } else if state.own_subs.count(&topic) > 0 {
            state.own_subs.remove(&topic);
        } else {
            return deferred;
        }
        for peer in state.peers.iter().filter(|p| !p.detached) {
            send_subscription(
                &peer.out,
                peer.remote.as_ref(),
                topic.clone(),
                subscribe,
                &mut deferred,
            );
        }
        deferred
    }

    /// SUB: subscribe or unsubscribe.
    pub(crate) fn subscribe(&self, topic: Bytes, subscribe: bool) -> Result<()> {
        if self.is_closed() {
            return Err(Error::Closed);
        }
        let mut state = self.lock();
        let deferred = self.update_own_subscriptions(&mut state, topic, subscribe);
        drop(state);
        run_deferred(deferred);
        Ok(())
    }

    /// Waits until a message is sent (or the socket closes).
    pub(crate) async fn send_async(&self, msg: Message) -> Result<()> {
        let mut msg = msg;
        loop {
            let notified = self.writable.notified();
            let mut notified = std::pin::pin!(notified);
            notified.as_mut().enable();
            match self.try_send(msg)? {
                SendOutcome::Done => return Ok(()),
                SendOutcome::WouldBlock(back) => msg = back,
            }
            notified.await;
        }
    }

    /// Waits until a message arrives (or the socket closes).
    pub(crate) async fn recv_async(&self) -> Result<Message> {
        loop {
            let notified = self.readable.notified();
            let mut notified = std::pin::pin!(notified);
            notified.as_mut().enable();
            if let Some(m) = self.try_recv()? {
                return Ok(m);
            }
            notified.await;
        }
    }

    /// Whether a message is ready to be received (for pollers).
    pub(crate) fn has_input(&self) -> bool {
        let state = self.lock();
        if self.kind == SocketType::XPub && !state.xpub_pending.is_empty() {
            return true;
        }
        match self.kind {
            SocketType::Req => state
                .req_awaiting
                .and_then(|id| state.peer(id))
                .is_some_and(|p| !p.inq.is_empty() || p.detached),
            SocketType::Pub => false,
            _ => state
                .peers
                .iter()
                .any(|p| !p.pending.is_empty() || !p.inq.is_empty()),
        }
    }

    /// Whether a send would not block (for pollers).
    pub(crate) fn can_send(&self) -> bool {
        let state = self.lock();
        match self.kind {
            SocketType::Pub | SocketType::XPub | SocketType::XSub | SocketType::Router => true,
            SocketType::Rep => state.rep_envelope.is_some(),
            SocketType::Req => {
                state.req_awaiting.is_none()
                    && state.peers.iter().any(|p| !p.detached && p.out.has_room())
            }
            SocketType::Sub | SocketType::Pull => false,
            _ => state.peers.iter().any(|p| !p.detached && p.out.has_room()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::turn;
    use crate::socket::api::core_of;
    use crate::{Context, Pull, Push, Rep, Req, Socket};
    use std::time::Duration;
    use zeroguard_zmtp::Message;

    #[test]
    fn only_a_socket_awaiting_an_answer_checks_before_sleeping() {
        let ctx = Context::new().unwrap();
        let rep = Socket::<Rep>::new(&ctx).unwrap();
        let ep = rep.bind("inproc://answer-due").unwrap();
        let req = Socket::<Req>::new(&ctx).unwrap();
        req.connect(&ep).unwrap();
        let window = |core: &crate::socket::SocketCore| core.spin().window;
        let (req_core, rep_core) = (core_of(&req), core_of(&rep));
        assert_eq!(
            window(rep_core),
            Duration::ZERO,
            "nothing sent yet: no answer due"
        );
        req.send("ping").unwrap();
        assert!(window(req_core) > Duration::ZERO, "a request is out");
        assert_eq!(rep.recv().unwrap(), Message::from("ping"));
        assert_eq!(window(rep_core), Duration::ZERO, "REP has sent nothing");
        rep.send("pong").unwrap();
        assert!(
            window(rep_core) > Duration::ZERO,
            "the next request may follow the reply"
        );
        assert_eq!(req.recv().unwrap(), Message::from("pong"));
        assert_eq!(window(req_core), Duration::ZERO, "the answer came");

        // A stream's receiver never awaits an answer: it sleeps at once.
        let pull = Socket::<Pull>::new(&ctx).unwrap();
        let ep = pull.bind("inproc://stream").unwrap();
        let push = Socket::<Push>::new(&ctx).unwrap();
        push.connect(&ep).unwrap();
        for _ in 0..3 {
            push.send("data").unwrap();
            assert_eq!(pull.recv().unwrap(), Message::from("data"));
            assert_eq!(window(core_of(&pull)), Duration::ZERO);
        }
    }

    #[test]
    fn a_turn_visits_every_peer_once_from_any_start() {
        for n in 1..6 {
            for start in 0..n + 3 {
                let mut seen: Vec<usize> = (0..n).map(|i| turn(start, i, n)).collect();
                if start < n {
                    assert_eq!(seen[0], start, "the turn starts where it was left");
                }
                seen.sort_unstable();
                assert_eq!(seen, (0..n).collect::<Vec<_>>(), "n {n} start {start}");
            }
        }
    }
}
