//! The context: I/O threads of its own, the inproc registry, and the
//! bookkeeping that lets `terminate` wait for lingering messages.
//!
//! Users need no async runtime: the context runs a small tokio runtime on
//! its own threads, and socket calls from any thread (or any executor) talk
//! to it through queues and wake-ups, never by entering it.

use std::collections::HashMap;
use std::future::Future;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, Weak};
use std::time::{Duration, Instant};

use tokio::runtime::{Handle, Runtime};
use tokio::sync::Notify;

use crate::error::{Error, Result};
use crate::socket::SocketCore;
use crate::wait::block_on;

/// What an inproc name refers to.
pub(crate) enum InprocEntry {
    /// A socket bound the name.
    Bound(Weak<SocketCore>),
    /// Sockets that connected before anyone bound it.
    Pending(Vec<Weak<SocketCore>>),
}

pub(crate) struct ContextInner {
    runtime: Mutex<Option<Runtime>>,
    handle: Handle,
    tasks: AtomicUsize,
    tasks_done: Notify,
    pub(crate) inproc: Mutex<HashMap<String, InprocEntry>>,
    sockets: Mutex<Vec<Weak<SocketCore>>>,
}

impl Drop for ContextInner {
    fn drop(&mut self) {
        // The last reference may be dropped on one of our own I/O threads (a
        // connection task finishing its linger), where blocking is not
        // allowed; every task is finished or detached by then anyway.
        let runtime = self
            .runtime
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .take();
        if let Some(rt) = runtime {
            rt.shutdown_background();
        }
    }
}

/// A ZeroMQ context: owns the I/O threads that serve its sockets.
///
/// Cheap to clone; the threads stop when the last clone and the last socket are gone.
#[derive(Clone)]
pub struct Context {
    pub(crate) inner: Arc<ContextInner>,
}

impl std::fmt::Debug for Context {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Context")
            .field("tasks", &self.inner.tasks.load(Ordering::Relaxed))
            .finish_non_exhaustive()
    }
}

/// Decrements the task count when a spawned task ends, however it ends.
struct TaskGuard(Arc<ContextInner>);

impl Drop for TaskGuard {
    fn drop(&mut self) {
        if self.0.tasks.fetch_sub(1, Ordering::AcqRel) == 1 {
            self.0.tasks_done.notify_waiters();
        }
    }
}

impl Context {
    /// A context with one I/O thread, which is plenty for most applications.
    pub fn new() -> Result<Context> {
        Context::with_io_threads(1)
    }

    /// A context with `threads` I/O threads (1 to 64).
    pub fn with_io_threads(threads: usize) -> Result<Context> {
        if !(1..=64).contains(&threads) {
            return Err(Error::InvalidOption("I/O threads must be 1 to 64".into()));
        }
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(threads)
            .thread_name("zeroguard-io")
            .enable_io()
            .enable_time()
            .build()?;
        let handle = runtime.handle().clone();
        Ok(Context {
            inner: Arc::new(ContextInner {
                runtime: Mutex::new(Some(runtime)),
                handle,
                tasks: AtomicUsize::new(0),
                tasks_done: Notify::new(),
                inproc: Mutex::new(HashMap::new()),
                sockets: Mutex::new(Vec::new()),
            }),
        })
    }

    /// Runs a task on the I/O threads, counted so `terminate` can wait for it.
    pub(crate) fn spawn<F>(&self, fut: F)
    where
        F: Future<Output = ()> + Send + 'static,
    {
        self.inner.tasks.fetch_add(1, Ordering::AcqRel);
        let guard = TaskGuard(self.inner.clone());
        self.inner.handle.spawn(async move {
            let _guard = guard;
            fut.await;
        });
    }

    /// Makes the I/O runtime current on this thread (to adopt std sockets).
    pub(crate) fn enter(&self) -> tokio::runtime::EnterGuard<'_> {
        self.inner.handle.enter()
    }

    /// Whether an inproc name is bound by a live socket.
    pub(crate) fn is_inproc_bound(&self, name: &str) -> bool {
        let reg = self.inner.inproc.lock().unwrap_or_else(|p| p.into_inner());
        matches!(reg.get(name), Some(InprocEntry::Bound(w)) if w.strong_count() > 0)
    }

    pub(crate) fn register(&self, socket: &Arc<SocketCore>) {
        let mut sockets = self.inner.sockets.lock().unwrap_or_else(|p| p.into_inner());
        sockets.retain(|w| w.strong_count() > 0);
        sockets.push(Arc::downgrade(socket));
    }

    /// Closes every socket of this context and waits, up to the longest
    /// linger among them, for queued messages to be sent.
    ///
    /// Call it before the process exits so messages still queued are not lost.
    pub fn terminate(&self) {
        let sockets: Vec<Arc<SocketCore>> = {
            let sockets = self.inner.sockets.lock().unwrap_or_else(|p| p.into_inner());
            sockets.iter().filter_map(Weak::upgrade).collect()
        };
        let linger = sockets
            .iter()
            .map(|s| s.linger())
            .max()
            .unwrap_or(Duration::ZERO);
        for s in &sockets {
            s.close();
        }
        drop(sockets);
        self.wait_idle(Instant::now() + linger + Duration::from_millis(50));
    }

    /// Waits until no task runs, or until `deadline`; true if idle.
    pub(crate) fn wait_idle(&self, deadline: Instant) -> bool {
        let inner = self.inner.clone();
        block_on(
            async move {
                loop {
                    let notified = inner.tasks_done.notified();
                    let mut notified = std::pin::pin!(notified);
                    notified.as_mut().enable();
                    if inner.tasks.load(Ordering::Acquire) == 0 {
                        return;
                    }
                    notified.await;
                }
            },
            Some(deadline),
        )
        .is_some()
    }
}
