//! Waiting on several sockets at once, like `zmq_poll`.

use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::AtomicU64;
use std::sync::Arc;
use std::task::{Context as TaskContext, Poll};
use std::time::{Duration, Instant};

use tokio::sync::futures::Notified;

use crate::socket::api::{core_of, Kind, Socket};
use crate::socket::SocketCore;
use crate::wait::{block_on_spin, Spin};

/// What to wait for on a socket.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Interest {
    /// A message can be received.
    pub readable: bool,
    /// A message can be sent without blocking.
    pub writable: bool,
}

impl Interest {
    /// Wait for input.
    pub const READABLE: Interest = Interest {
        readable: true,
        writable: false,
    };
    /// Wait for room to send.
    pub const WRITABLE: Interest = Interest {
        readable: false,
        writable: true,
    };
    /// Either.
    pub const BOTH: Interest = Interest {
        readable: true,
        writable: true,
    };
}

/// A socket that became ready.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Ready {
    /// The index `add` returned.
    pub index: usize,
    /// A receive would not block.
    pub readable: bool,
    /// A send would not block.
    pub writable: bool,
}

/// A set of sockets to wait on.
#[derive(Debug, Default)]
pub struct Poller {
    items: Vec<(Arc<SocketCore>, Interest)>,
    /// How long the last `poll` waited, in nanoseconds.
    last_wait: AtomicU64,
}

/// Completes when any of the registered notifications fires.
struct AnyOf<'a> {
    waits: Vec<Pin<Box<Notified<'a>>>>,
}

impl Future for AnyOf<'_> {
    type Output = ();
    fn poll(mut self: Pin<&mut Self>, cx: &mut TaskContext<'_>) -> Poll<()> {
        for w in self.waits.iter_mut() {
            if w.as_mut().poll(cx).is_ready() {
                return Poll::Ready(());
            }
        }
        Poll::Pending
    }
}

impl Poller {
    /// An empty poller.
    pub fn new() -> Poller {
        Poller::default()
    }

    /// Adds a socket; returns its index in [`Ready::index`].
    pub fn add<K: Kind>(&mut self, socket: &Socket<K>, interest: Interest) -> usize {
        self.items.push((core_of(socket).clone(), interest));
        self.items.len() - 1
    }

    pub(crate) fn add_core(&mut self, core: Arc<SocketCore>, interest: Interest) -> usize {
        self.items.push((core, interest));
        self.items.len() - 1
    }

    fn ready_now(&self) -> Vec<Ready> {
        self.items
            .iter()
            .enumerate()
            .filter_map(|(index, (core, interest))| {
                let readable = interest.readable && core.has_input();
                let writable = interest.writable && core.can_send();
                (readable || writable).then_some(Ready {
                    index,
                    readable,
                    writable,
                })
            })
            .collect()
    }

    /// Waits until at least one socket is ready, or `timeout` passes (`None`: forever).
    /// Returns the ready sockets; empty on timeout.
    ///
    /// Like a blocking receive, it keeps checking briefly before it sleeps
    /// while its waits are short: for the longest `spin` among the sockets
    /// it waits to read from.
    pub fn poll(&self, timeout: Option<Duration>) -> Vec<Ready> {
        let deadline = timeout.map(|t| Instant::now() + t);
        let window = self
            .items
            .iter()
            .filter(|(_, interest)| interest.readable)
            .map(|(core, _)| core.spin().window)
            .max()
            .unwrap_or_default();
        let spin = Spin {
            window,
            last_wait: &self.last_wait,
        };
        block_on_spin(self.wait(), deadline, Some(spin)).unwrap_or_default()
    }

    /// Async form of [`poll`](Poller::poll), without timeout.
    pub async fn wait(&self) -> Vec<Ready> {
        loop {
            let mut waits = Vec::with_capacity(self.items.len() * 2);
            for (core, interest) in &self.items {
                if interest.readable {
                    waits.push(Box::pin(core.readable.notified()));
                }
                if interest.writable {
                    waits.push(Box::pin(core.writable.notified()));
                }
            }
            for w in waits.iter_mut() {
                w.as_mut().enable();
            }
            let ready = self.ready_now();
            if !ready.is_empty() {
                return ready;
            }
            if self.items.iter().all(|(c, _)| c.is_closed()) {
                return Vec::new();
            }
            AnyOf { waits }.await;
        }
    }
}
