//! The ZeroMQ wire protocol, ZMTP 3.0 and 3.1, as a sans-IO state machine.
//!
//! This crate knows bytes and time, never sockets or clocks. A
//! [`Connection`] is fed received bytes and the current time, and yields
//! bytes to send, events (handshake done, messages, subscriptions,
//! authentication requests) and the next deadline. Everything is
//! deterministic, so every path can be tested with byte vectors and fuzzed
//! without a network.
//!
//! What it refuses, by construction:
//! - ZMTP 1.0 and 2.0 peers (downgrade, CVE-2014-9721) and mechanism
//!   mismatches (CVE-2014-7202);
//! - frames with reserved flag bits, sizes with the sign bit set
//!   (CVE-2019-6250, JeroMQ #440), frames or messages above the configured
//!   limits, checked before any byte of the body is buffered;
//! - malformed commands and metadata, every length checked against what is
//!   left (CVE-2019-13132), PINGs without a TTL or with an oversized context;
//! - messages before the handshake is complete.
//!
//! ```
//! use std::time::Instant;
//! use bytes::BytesMut;
//! use zeroguard_zmtp::{Config, Connection, Event, MechanismConfig, Message, SocketType};
//!
//! let now = Instant::now();
//! let null = MechanismConfig::Null { authenticate: false };
//! let mut client = Connection::new(Config::new(SocketType::Push, null.clone()), now)?;
//! let mut server = Connection::new(Config::new(SocketType::Pull, null), now)?;
//!
//! // Exchange bytes until both sides are ready.
//! let mut received = Vec::new();
//! for _ in 0..4 {
//!     let (mut a, mut b) = (BytesMut::new(), BytesMut::new());
//!     client.poll_transmit(&mut a);
//!     server.poll_transmit(&mut b);
//!     server.handle_input(now, &a);
//!     client.handle_input(now, &b);
//!     while let Some(event) = client.poll_event()? {}
//!     while let Some(event) = server.poll_event()? {
//!         if let Event::Message(m) = event { received.push(m); }
//!     }
//!     if client.is_ready() && received.is_empty() {
//!         let mut wire = BytesMut::new();
//!         client.send(&Message::from("hello"), &mut wire)?;
//!         server.handle_input(now, &wire);
//!     }
//! }
//! assert!(server.is_ready());
//! assert_eq!(received, vec![Message::from("hello")]);
//! # Ok::<(), zeroguard_zmtp::Error>(())
//! ```

#![forbid(unsafe_code)]
#![warn(missing_docs)]

mod body;
pub mod command;
pub mod config;
pub mod connection;
pub mod error;
pub mod frame;
pub mod greeting;
mod heartbeat;
pub mod mechanism;
pub mod message;
pub mod metadata;
pub mod socket_type;
pub mod z85;

pub use config::{Config, Limits, MechanismConfig};
pub use connection::{Connection, Event, PeerInfo};
pub use error::{Error, ErrorCategory};
pub use greeting::{MechanismKind, Version};
pub use heartbeat::HeartbeatConfig;
pub use mechanism::curve::CurveKeyPair;
pub use mechanism::{AuthDecision, AuthRequest, Credentials};
pub use message::{Frame, Message};
pub use metadata::Metadata;
pub use socket_type::SocketType;
