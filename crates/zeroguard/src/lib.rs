//! ZeroMQ in pure Rust, wire-compatible with libzmq 4.3, secure by default.
//!
//! - Every standard socket type, over `tcp://`, `ipc://` and `inproc://`,
//!   interoperating with libzmq peers in both directions.
//! - Socket kinds are types: `Socket<Push>` cannot `recv`, `Socket<Pub>`
//!   cannot `recv`, only `Socket<Sub>` can `subscribe`.
//! - Blocking ([`Socket`]) and async ([`AsyncSocket`]) faces with the same
//!   method names, both `Send + Sync`; no runtime needed: the [`Context`]
//!   runs its own I/O threads.
//! - Every limit finite by default: high-water marks in messages and bytes,
//!   message size, frames per message, connections, handshakes in progress,
//!   handshake time, heartbeats. A peer takes part in routing only once its
//!   handshake and authentication completed.
//! - Cleartext (NULL, PLAIN) on a non-loopback TCP address is refused
//!   unless [`SocketOptions::allow_plaintext`] is set.
//!
//! ```
//! use zeroguard::{Context, Socket, Push, Pull};
//!
//! let ctx = Context::new()?;
//! let pull = Socket::<Pull>::new(&ctx)?;
//! let endpoint = pull.bind("tcp://127.0.0.1:0")?;
//! let push = Socket::<Push>::new(&ctx)?;
//! push.connect(&endpoint)?;
//! push.send("hello")?;
//! assert_eq!(pull.recv()?.frames()[0], "hello");
//! # Ok::<(), zeroguard::Error>(())
//! ```

#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod authenticators;
pub mod certificate;
mod context;
pub mod endpoint;
mod engine;
mod error;
mod lock;
pub mod monitor;
pub mod options;
mod outgoing;
mod pipe;
pub mod poller;
pub mod proxy;
mod rate;
pub mod security;
mod socket;
mod subscriptions;
mod transport;
mod wait;
pub mod zap;

pub use authenticators::{AddressFilter, CertificateDirectory, Cidr, PasswordFile};
pub use certificate::Certificate;
pub use context::Context;
pub use endpoint::Endpoint;
pub use error::{Error, Result};
pub use monitor::{Monitor, MonitorEvent};
pub use options::SocketOptions;
pub use poller::{Interest, Poller, Ready};
pub use proxy::proxy;
pub use rate::RateLimit;
pub use security::{AuthContext, Authenticator, Security};
pub use socket::api::{
    proxy_dyn, AsyncSocket, CanRecv, CanSend, Dealer, DealerSocket, DynSocket, Kind, Pair,
    PairSocket, Pub, PubSocket, Pull, PullSocket, Push, PushSocket, Rep, RepSocket, Req, ReqSocket,
    Router, RouterSocket, Socket, Sub, SubSocket, XPub, XPubSocket, XSub, XSubSocket,
};
pub use socket::{Queued, Statistics};
pub use zap::Zap;

/// The protocol core, re-exported for its types (messages, metadata, errors).
pub use zeroguard_zmtp as zmtp;
pub use zeroguard_zmtp::{
    AuthDecision, Credentials, CurveKeyPair, Frame, HeartbeatConfig, MechanismKind, Message,
    Metadata, SocketType,
};
