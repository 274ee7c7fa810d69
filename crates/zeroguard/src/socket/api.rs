//! The typed public face of sockets.
//!
//! A socket kind is a type parameter, and what a kind cannot do does not
//! compile: a `Socket<Pull>` has no `send`, a `Socket<Pub>` no `recv`, only a
//! `Socket<Sub>` has `subscribe`. [`Socket`] blocks (with the socket's
//! timeouts); [`AsyncSocket`] has the same methods as futures, usable from
//! any executor. Both are cheap handles on the same socket, `Send + Sync`,
//! so several threads may send and receive on one socket.

use std::marker::PhantomData;
use std::sync::Arc;
use std::time::Instant;

use bytes::Bytes;
use zeroguard_zmtp::{Message, SocketType};

use super::routing::SendOutcome;
use super::{Queued, SocketCore, Statistics};
use crate::context::Context;
use crate::endpoint::Direction;
use crate::error::{Error, Result};
use crate::monitor::Monitor;
use crate::options::SocketOptions;
use crate::transport;
use crate::wait::{block_on, block_on_spin};

mod sealed {
    pub trait Sealed {}
}

/// A socket kind.
pub trait Kind: sealed::Sealed + Send + Sync + 'static {
    /// The wire socket type.
    const TYPE: SocketType;
}

/// Kinds that can send.
pub trait CanSend: Kind {}
/// Kinds that can receive.
pub trait CanRecv: Kind {}

macro_rules! kinds {
    ($($(#[$doc:meta])* $name:ident => $ty:ident : $($cap:ident),*;)*) => {
        $(
            $(#[$doc])*
            #[derive(Debug, Clone, Copy)]
            pub struct $name;
            impl sealed::Sealed for $name {}
            impl Kind for $name {
                const TYPE: SocketType = SocketType::$ty;
            }
            $(impl $cap for $name {})*
        )*
    };
}

kinds! {
    /// Exclusive pair: one peer, both directions.
    Pair => Pair: CanSend, CanRecv;
    /// Publisher: fans out to matching subscribers, never blocks, drops for a full subscriber.
    Pub => Pub: CanSend;
    /// Subscriber: receives what matches its subscriptions.
    Sub => Sub: CanRecv;
    /// Publisher that receives subscriptions as messages (`\x01topic`, `\x00topic`).
    XPub => XPub: CanSend, CanRecv;
    /// Subscriber that sends subscriptions as messages.
    XSub => XSub: CanSend, CanRecv;
    /// Pipeline sender: round-robin to pullers.
    Push => Push: CanSend;
    /// Pipeline receiver: fair-queued from pushers.
    Pull => Pull: CanRecv;
    /// Request side: send, then receive the reply, strictly alternating.
    Req => Req: CanSend, CanRecv;
    /// Reply side: receive a request, then send its reply.
    Rep => Rep: CanSend, CanRecv;
    /// Asynchronous request side: round-robin out, fair-queued in.
    Dealer => Dealer: CanSend, CanRecv;
    /// Asynchronous reply side: received messages start with the sender's routing id;
    /// sent messages start with the routing id of the peer to send to.
    Router => Router: CanSend, CanRecv;
}

/// Closes the socket when the last handle is dropped.
struct Handle {
    core: Arc<SocketCore>,
}

impl Drop for Handle {
    fn drop(&mut self) {
        self.core.close();
    }
}

/// A blocking socket of kind `K`.
pub struct Socket<K: Kind> {
    handle: Arc<Handle>,
    _kind: PhantomData<fn() -> K>,
}

/// The same socket, with `async` methods.
pub struct AsyncSocket<K: Kind> {
    handle: Arc<Handle>,
    _kind: PhantomData<fn() -> K>,
}

impl<K: Kind> Clone for Socket<K> {
    fn clone(&self) -> Self {
        Socket {
            handle: self.handle.clone(),
            _kind: PhantomData,
        }
    }
}

impl<K: Kind> Clone for AsyncSocket<K> {
    fn clone(&self) -> Self {
        AsyncSocket {
            handle: self.handle.clone(),
            _kind: PhantomData,
        }
    }
}

impl<K: Kind> std::fmt::Debug for Socket<K> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Socket")
            .field("type", &K::TYPE)
            .finish_non_exhaustive()
    }
}

impl<K: Kind> std::fmt::Debug for AsyncSocket<K> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AsyncSocket")
            .field("type", &K::TYPE)
            .finish_non_exhaustive()
    }
}

/// Operations every kind has, shared by the blocking and async faces.
macro_rules! common_methods {
    () => {
        /// Binds to an endpoint and returns it resolved (`tcp://127.0.0.1:0`
        /// comes back with the port the system chose).
        pub fn bind(&self, endpoint: &str) -> Result<String> {
            let core = &self.handle.core;
            let parsed = core.parse_endpoint(endpoint, Direction::Bind)?;
            transport::bind(core, parsed, endpoint)
        }

        /// Connects to an endpoint. The connection is made, and remade after
        /// failures, in the background; messages flow once its handshake completes.
        pub fn connect(&self, endpoint: &str) -> Result<()> {
            let core = &self.handle.core;
            let parsed = core.parse_endpoint(endpoint, Direction::Connect)?;
            transport::connect(core, parsed, endpoint)
        }

        /// Stops listening on an endpoint given to `bind` (as given or as resolved).
        pub fn unbind(&self, endpoint: &str) -> Result<()> {
            self.handle.core.remove_endpoint(endpoint)
        }

        /// Stops connecting to an endpoint given to `connect`.
        pub fn disconnect(&self, endpoint: &str) -> Result<()> {
            self.handle.core.remove_endpoint(endpoint)
        }

        /// Every endpoint bound or connected, resolved.
        pub fn endpoints(&self) -> Vec<String> {
            self.handle.core.endpoints()
        }

        /// A stream of this socket's events.
        #[must_use]
        pub fn monitor(&self) -> Monitor {
            self.handle.core.monitor()
        }

        /// The current options.
        pub fn options(&self) -> SocketOptions {
            self.handle.core.options()
        }

        /// Replaces the options; they apply to connections made from now on.
        pub fn set_options(&self, options: SocketOptions) -> Result<()> {
            self.handle.core.set_options(options)
        }

        /// Counters of messages the socket did not deliver, by reason.
        pub fn statistics(&self) -> &Statistics {
            &self.handle.core.stats
        }

        /// Messages and bytes now held in this socket's queues: bounded by
        /// the high-water marks times the number of peers.
        pub fn queued(&self) -> Queued {
            self.handle.core.queued()
        }

        /// Whether a receive would find a message now.
        pub fn has_input(&self) -> bool {
            self.handle.core.has_input()
        }

        /// Whether a send would not block now.
        pub fn can_send(&self) -> bool {
            self.handle.core.can_send()
        }

        /// Closes the socket now (every handle): connections get the linger time to flush.
        pub fn close(&self) {
            self.handle.core.close();
        }
    };
}

impl<K: Kind> Socket<K> {
    /// A socket with default options.
    ///
    /// ```
    /// use zeroguard::{Context, Message, Router, Dealer, Socket, SocketOptions};
    ///
    /// let ctx = Context::new()?;
    /// let router = Socket::<Router>::new(&ctx)?;
    /// let endpoint = router.bind("tcp://127.0.0.1:0")?;
    /// let options = SocketOptions { routing_id: Some("worker-7".into()), ..SocketOptions::default() };
    /// let dealer = Socket::<Dealer>::with_options(&ctx, options)?;
    /// dealer.connect(&endpoint)?;
    /// dealer.send("ready")?;
    /// let msg = router.recv()?;                      // [routing id, "ready"]
    /// assert_eq!(msg.frames()[0], "worker-7");
    /// router.send(Message::from_frames(["worker-7", "job 1"]))?;
    /// assert_eq!(dealer.recv()?.frames()[0], "job 1");
    /// # Ok::<(), zeroguard::Error>(())
    /// ```
    pub fn new(ctx: &Context) -> Result<Socket<K>> {
        Socket::with_options(ctx, SocketOptions::default())
    }

    /// A socket with the given options (checked now).
    pub fn with_options(ctx: &Context, options: SocketOptions) -> Result<Socket<K>> {
        let core = SocketCore::new(ctx, K::TYPE, options)?;
        Ok(Socket {
            handle: Arc::new(Handle { core }),
            _kind: PhantomData,
        })
    }

    /// The async face of this socket.
    pub fn to_async(&self) -> AsyncSocket<K> {
        AsyncSocket {
            handle: self.handle.clone(),
            _kind: PhantomData,
        }
    }

    fn core(&self) -> &Arc<SocketCore> {
        &self.handle.core
    }

    /// The socket type.
    pub fn socket_type(&self) -> SocketType {
        K::TYPE
    }

    common_methods!();
}

impl<K: Kind> AsyncSocket<K> {
    /// A socket with default options.
    pub fn new(ctx: &Context) -> Result<AsyncSocket<K>> {
        Ok(Socket::<K>::new(ctx)?.to_async())
    }

    /// A socket with the given options (checked now).
    pub fn with_options(ctx: &Context, options: SocketOptions) -> Result<AsyncSocket<K>> {
        Ok(Socket::<K>::with_options(ctx, options)?.to_async())
    }

    /// The blocking face of this socket.
    pub fn to_blocking(&self) -> Socket<K> {
        Socket {
            handle: self.handle.clone(),
            _kind: PhantomData,
        }
    }

    common_methods!();
}

impl<K: CanSend> Socket<K> {
    /// Sends a message, waiting while no peer can take it (up to the send timeout).
    pub fn send(&self, msg: impl Into<Message>) -> Result<()> {
        match self.core().try_send(msg.into())? {
            SendOutcome::Done => Ok(()),
            SendOutcome::WouldBlock(msg) => {
                let deadline = self.core().send_deadline();
                // A send waits for its own I/O thread to drain the queue:
                // checking meanwhile would take that thread's CPU.
                block_on(self.core().send_async(msg), deadline).unwrap_or(Err(Error::WouldBlock))
            }
        }
    }

    /// Sends a message only if that can be done without waiting.
    pub fn try_send(&self, msg: impl Into<Message>) -> Result<()> {
        match self.core().try_send(msg.into())? {
            SendOutcome::Done => Ok(()),
            SendOutcome::WouldBlock(_) => Err(Error::WouldBlock),
        }
    }
}

impl<K: CanRecv> Socket<K> {
    /// Receives a message, waiting up to the receive timeout.
    pub fn recv(&self) -> Result<Message> {
        if let Some(m) = self.core().try_recv()? {
            return Ok(m);
        }
        let deadline = self.core().recv_deadline();
        block_on_spin(self.core().recv_async(), deadline, Some(self.core().spin()))
            .unwrap_or(Err(Error::WouldBlock))
    }

    /// Receives a message if one is waiting.
    pub fn try_recv(&self) -> Result<Option<Message>> {
        self.core().try_recv()
    }
}

impl<K: CanSend> AsyncSocket<K> {
    /// Sends a message, waiting while no peer can take it.
    pub async fn send(&self, msg: impl Into<Message>) -> Result<()> {
        self.handle.core.send_async(msg.into()).await
    }

    /// Sends a message only if that can be done without waiting.
    pub fn try_send(&self, msg: impl Into<Message>) -> Result<()> {
        self.to_blocking().try_send(msg)
    }
}

impl<K: CanRecv> AsyncSocket<K> {
    /// Receives a message, waiting as long as it takes.
    pub async fn recv(&self) -> Result<Message> {
        self.handle.core.recv_async().await
    }

    /// Receives a message if one is waiting.
    pub fn try_recv(&self) -> Result<Option<Message>> {
        self.handle.core.try_recv()
    }
}

impl Socket<Sub> {
    /// Receives messages whose first frame starts with `prefix` (empty: everything).
    ///
    /// ```
    /// use zeroguard::{Context, Pub, Socket, Sub};
    ///
    /// let ctx = Context::new()?;
    /// let publisher = Socket::<Pub>::new(&ctx)?;
    /// publisher.bind("inproc://quotes")?;
    /// let sub = Socket::<Sub>::new(&ctx)?;
    /// sub.subscribe("EUR")?;
    /// sub.connect("inproc://quotes")?;
    /// publisher.send("USD 1.00")?;
    /// publisher.send("EUR 0.92")?;
    /// assert_eq!(sub.recv()?.frames()[0], "EUR 0.92");
    /// # Ok::<(), zeroguard::Error>(())
    /// ```
    pub fn subscribe(&self, prefix: impl AsRef<[u8]>) -> Result<()> {
        self.core()
            .subscribe(Bytes::copy_from_slice(prefix.as_ref()), true)
    }

    /// Withdraws one `subscribe` of the same prefix.
    pub fn unsubscribe(&self, prefix: impl AsRef<[u8]>) -> Result<()> {
        self.core()
            .subscribe(Bytes::copy_from_slice(prefix.as_ref()), false)
    }
}

impl Socket<XPub> {
    /// Manual mode: makes the peer whose subscription message was received
    /// last get messages starting with `prefix`.
    pub fn manual_subscribe(&self, prefix: impl AsRef<[u8]>) -> Result<()> {
        self.core()
            .manual_subscription(Bytes::copy_from_slice(prefix.as_ref()), true)
    }

    /// Manual mode: withdraws one `manual_subscribe` from that peer.
    pub fn manual_unsubscribe(&self, prefix: impl AsRef<[u8]>) -> Result<()> {
        self.core()
            .manual_subscription(Bytes::copy_from_slice(prefix.as_ref()), false)
    }
}

impl AsyncSocket<Sub> {
    /// Receives messages whose first frame starts with `prefix` (empty: everything).
    pub fn subscribe(&self, prefix: impl AsRef<[u8]>) -> Result<()> {
        self.to_blocking().subscribe(prefix)
    }

    /// Withdraws one `subscribe` of the same prefix.
    pub fn unsubscribe(&self, prefix: impl AsRef<[u8]>) -> Result<()> {
        self.to_blocking().unsubscribe(prefix)
    }
}

/// Pair socket.
pub type PairSocket = Socket<Pair>;
/// PUB socket.
pub type PubSocket = Socket<Pub>;
/// SUB socket.
pub type SubSocket = Socket<Sub>;
/// XPUB socket.
pub type XPubSocket = Socket<XPub>;
/// XSUB socket.
pub type XSubSocket = Socket<XSub>;
/// PUSH socket.
pub type PushSocket = Socket<Push>;
/// PULL socket.
pub type PullSocket = Socket<Pull>;
/// REQ socket.
pub type ReqSocket = Socket<Req>;
/// REP socket.
pub type RepSocket = Socket<Rep>;
/// DEALER socket.
pub type DealerSocket = Socket<Dealer>;
/// ROUTER socket.
pub type RouterSocket = Socket<Router>;

/// Access to the untyped core for the poller and proxy.
pub(crate) fn core_of<K: Kind>(s: &Socket<K>) -> &Arc<SocketCore> {
    &s.handle.core
}

/// A socket whose type is chosen at run time, for tools and language
/// bindings. Operations the type lacks fail with [`Error::InvalidState`]
/// instead of not compiling; prefer [`Socket`] in Rust code.
#[derive(Clone)]
pub struct DynSocket {
    handle: Arc<Handle>,
    kind: SocketType,
}

impl std::fmt::Debug for DynSocket {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DynSocket")
            .field("type", &self.kind)
            .finish_non_exhaustive()
    }
}

impl DynSocket {
    /// A socket of one of the eleven standard types.
    pub fn new(ctx: &Context, kind: SocketType, options: SocketOptions) -> Result<DynSocket> {
        if !kind.is_standard() {
            return Err(Error::InvalidOption(format!(
                "socket type {kind} is not supported yet"
            )));
        }
        let core = SocketCore::new(ctx, kind, options)?;
        Ok(DynSocket {
            handle: Arc::new(Handle { core }),
            kind,
        })
    }

    /// The socket type.
    pub fn socket_type(&self) -> SocketType {
        self.kind
    }

    fn check_send(&self) -> Result<()> {
        match self.kind {
            SocketType::Sub | SocketType::Pull => {
                Err(Error::InvalidState("this socket type cannot send"))
            }
            _ => Ok(()),
        }
    }

    fn check_recv(&self) -> Result<()> {
        match self.kind {
            SocketType::Pub | SocketType::Push => {
                Err(Error::InvalidState("this socket type cannot receive"))
            }
            _ => Ok(()),
        }
    }

    /// Sends, waiting up to the send timeout.
    pub fn send(&self, msg: impl Into<Message>) -> Result<()> {
        self.check_send()?;
        let core = &self.handle.core;
        match core.try_send(msg.into())? {
            SendOutcome::Done => Ok(()),
            SendOutcome::WouldBlock(msg) => {
                let deadline = core.send_deadline();
                block_on(core.send_async(msg), deadline).unwrap_or(Err(Error::WouldBlock))
            }
        }
    }

    /// Receives, waiting up to the receive timeout.
    pub fn recv(&self) -> Result<Message> {
        self.check_recv()?;
        let core = &self.handle.core;
        if let Some(m) = core.try_recv()? {
            return Ok(m);
        }
        let deadline = core.recv_deadline();
        block_on_spin(core.recv_async(), deadline, Some(core.spin()))
            .unwrap_or(Err(Error::WouldBlock))
    }

    /// Receives, waiting up to `timeout` (`None`: forever), whatever the socket's own timeout.
    pub fn recv_timeout(&self, timeout: Option<std::time::Duration>) -> Result<Message> {
        self.check_recv()?;
        let core = &self.handle.core;
        let deadline = timeout.map(|t| Instant::now() + t);
        block_on_spin(core.recv_async(), deadline, Some(core.spin()))
            .unwrap_or(Err(Error::WouldBlock))
    }

    /// Subscribes (SUB), or sends the subscription upstream (XSUB).
    pub fn subscribe(&self, prefix: impl AsRef<[u8]>) -> Result<()> {
        let prefix = Bytes::copy_from_slice(prefix.as_ref());
        match self.kind {
            SocketType::Sub => self.handle.core.subscribe(prefix, true),
            SocketType::XSub => {
                let mut m = vec![1u8];
                m.extend_from_slice(&prefix);
                self.send(m)
            }
            _ => Err(Error::InvalidState("only SUB and XSUB sockets subscribe")),
        }
    }

    common_methods!();
}

/// [`proxy`](crate::proxy::proxy) for sockets typed at run time.
pub fn proxy_dyn(frontend: &DynSocket, backend: &DynSocket) -> Result<()> {
    crate::proxy::proxy_cores(frontend.handle.core.clone(), backend.handle.core.clone())
}
