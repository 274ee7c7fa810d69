//! Socket events as a stream: what happened to each connection and why.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::sync::Notify;
use zeroguard_zmtp::{ErrorCategory, MechanismKind};

use crate::wait::block_on;

/// Events kept for a slow monitor reader before the oldest are dropped.
const MONITOR_CAPACITY: usize = 4096;

/// One thing that happened on a socket.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum MonitorEvent {
    /// A bind succeeded; the endpoint is the resolved one (real port).
    Listening {
        /// Endpoint.
        endpoint: String,
    },
    /// A connect attempt reached the peer.
    Connected {
        /// Endpoint.
        endpoint: String,
    },
    /// A connect attempt failed; another follows after `retry_in`.
    ConnectRetried {
        /// Endpoint.
        endpoint: String,
        /// Delay before the next attempt.
        retry_in: Duration,
    },
    /// A peer connected to a bound endpoint.
    Accepted {
        /// Endpoint (ours).
        endpoint: String,
        /// The peer's address.
        peer: String,
    },
    /// A connection was refused before its handshake because a limit was reached.
    AcceptRefused {
        /// Endpoint.
        endpoint: String,
        /// Which limit.
        reason: String,
    },
    /// The handshake succeeded: the peer now takes part in routing.
    HandshakeSucceeded {
        /// Endpoint.
        endpoint: String,
        /// Mechanism in force on this connection.
        mechanism: MechanismKind,
    },
    /// The handshake failed; no message was exchanged.
    HandshakeFailed {
        /// Endpoint.
        endpoint: String,
        /// Category: protocol, incompatible, authentication, limit, timeout...
        category: ErrorCategory,
        /// The full reason.
        detail: String,
    },
    /// An established connection ended.
    Disconnected {
        /// Endpoint.
        endpoint: String,
        /// Why.
        reason: String,
    },
    /// A bound endpoint stopped listening.
    Closed {
        /// Endpoint.
        endpoint: String,
    },
}

impl MonitorEvent {
    /// The event's name in CLI output (`handshake-failed`, ...).
    pub fn name(&self) -> &'static str {
        match self {
            MonitorEvent::Listening { .. } => "listening",
            MonitorEvent::Connected { .. } => "connected",
            MonitorEvent::ConnectRetried { .. } => "connect-retried",
            MonitorEvent::Accepted { .. } => "accepted",
            MonitorEvent::AcceptRefused { .. } => "accept-refused",
            MonitorEvent::HandshakeSucceeded { .. } => "handshake-succeeded",
            MonitorEvent::HandshakeFailed { .. } => "handshake-failed",
            MonitorEvent::Disconnected { .. } => "disconnected",
            MonitorEvent::Closed { .. } => "closed",
        }
    }

    /// The endpoint the event concerns.
    pub fn endpoint(&self) -> &str {
        match self {
            MonitorEvent::Listening { endpoint }
            | MonitorEvent::Connected { endpoint }
            | MonitorEvent::ConnectRetried { endpoint, .. }
            | MonitorEvent::Accepted { endpoint, .. }
            | MonitorEvent::AcceptRefused { endpoint, .. }
            | MonitorEvent::HandshakeSucceeded { endpoint, .. }
            | MonitorEvent::HandshakeFailed { endpoint, .. }
            | MonitorEvent::Disconnected { endpoint, .. }
            | MonitorEvent::Closed { endpoint } => endpoint,
        }
    }

    /// The detail printed after the endpoint, if any.
    pub fn detail(&self) -> Option<String> {
        match self {
            MonitorEvent::ConnectRetried { retry_in, .. } => {
                Some(format!("{}ms", retry_in.as_millis()))
            }
            MonitorEvent::Accepted { peer, .. } => Some(peer.clone()),
            MonitorEvent::AcceptRefused { reason, .. } => Some(reason.clone()),
            MonitorEvent::HandshakeSucceeded { mechanism, .. } => Some(mechanism.to_string()),
            MonitorEvent::HandshakeFailed {
                category, detail, ..
            } => Some(format!("{category} {detail}")),
            MonitorEvent::Disconnected { reason, .. } => Some(reason.clone()),
            _ => None,
        }
    }
}

impl std::fmt::Display for MonitorEvent {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} {}", self.name(), self.endpoint())?;
        if let Some(d) = self.detail() {
            write!(f, " {d}")?;
        }
        Ok(())
    }
}

#[derive(Debug, Default)]
struct Inner {
    events: VecDeque<MonitorEvent>,
    dropped: u64,
    closed: bool,
}

/// The shared queue between a socket and its monitor.
#[derive(Debug, Default)]
pub(crate) struct MonitorQueue {
    inner: Mutex<Inner>,
    notify: Notify,
}

impl MonitorQueue {
    pub(crate) fn push(&self, event: MonitorEvent) {
        let mut inner = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        if inner.events.len() >= MONITOR_CAPACITY {
            inner.events.pop_front();
            inner.dropped += 1;
        }
        inner.events.push_back(event);
        drop(inner);
        self.notify.notify_waiters();
    }

    pub(crate) fn close(&self) {
        self.inner.lock().unwrap_or_else(|p| p.into_inner()).closed = true;
        self.notify.notify_waiters();
    }

    fn try_pop(&self) -> (Option<MonitorEvent>, bool) {
        let mut inner = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        let e = inner.events.pop_front();
        (e, inner.closed)
    }
}

/// Receives a socket's events. Made by `Socket::monitor`.
#[derive(Debug, Clone)]
pub struct Monitor {
    pub(crate) queue: Arc<MonitorQueue>,
}

impl Monitor {
    /// The next event, if one is waiting.
    pub fn try_recv(&self) -> Option<MonitorEvent> {
        self.queue.try_pop().0
    }

    /// Waits for the next event; `None` once the socket is closed and all events were read.
    pub async fn recv_async(&self) -> Option<MonitorEvent> {
        loop {
            let notified = self.queue.notify.notified();
            let mut notified = std::pin::pin!(notified);
            notified.as_mut().enable();
            match self.queue.try_pop() {
                (Some(e), _) => return Some(e),
                (None, true) => return None,
                (None, false) => notified.await,
            }
        }
    }

    /// Waits up to `timeout` (or forever) for the next event.
    pub fn recv(&self, timeout: Option<Duration>) -> Option<MonitorEvent> {
        let deadline = timeout.map(|t| Instant::now() + t);
        block_on(self.recv_async(), deadline).flatten()
    }

    /// Events dropped because the reader fell more than 4096 behind.
    pub fn dropped(&self) -> u64 {
        self.queue
            .inner
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .dropped
    }
}
