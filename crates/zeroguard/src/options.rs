//! Socket options. Every limit has a finite default; values are checked
//! when the socket is built or the option is set, with errors that say
//! what is wrong.

use std::time::Duration;

use bytes::Bytes;
use zeroguard_zmtp::config::{
    DEFAULT_HANDSHAKE_TIMEOUT, DEFAULT_MAX_FRAMES, DEFAULT_MAX_MESSAGE_SIZE,
};
use zeroguard_zmtp::{HeartbeatConfig, Metadata};

use crate::error::Error;
use crate::rate::RateLimit;
use crate::security::Security;

/// Default high-water mark in messages, per peer and direction (as libzmq).
pub const DEFAULT_HWM: usize = 1000;
/// Default high-water mark in bytes, per peer and direction: 4 MiB.
///
/// Enough to keep a connection busy (the kernel's socket buffers queue more
/// behind it), and small enough that a message is still in the CPU's cache
/// when the I/O thread writes it: with 64 MiB a fast sender of 64 KiB
/// messages kept the queue full, every message had left the cache before it
/// was sent, and the sending side took half as much CPU again per message.
/// A single larger message is still taken when the queue is below the mark.
pub const DEFAULT_HWM_BYTES: usize = 4 * 1024 * 1024;
/// Default number of connections (accepted plus connected) per socket.
pub const DEFAULT_MAX_CONNECTIONS: usize = 1024;
/// Default number of connections from one source address on a bound socket.
pub const DEFAULT_MAX_CONNECTIONS_PER_ADDRESS: usize = 256;
/// Default per-peer rate limit: 40 million messages and 16 GiB a second,
/// above what one connection carries on a 100 Gbit/s link (12.5 GB/s) or
/// over loopback (this project's benchmark machine: 5.9 GB/s, 14 M small
/// messages a second, where the earlier 4 GiB and 10 M held a stream back).
pub const DEFAULT_RATE_LIMIT: RateLimit = RateLimit {
    messages_per_sec: 40_000_000,
    bytes_per_sec: 16 << 30,
};
/// Default number of connections from one source address still in their handshake.
pub const DEFAULT_MAX_HANDSHAKES_PER_ADDRESS: usize = 16;
/// Default number of accepted connections still in their handshake.
pub const DEFAULT_MAX_HANDSHAKES: usize = 256;
/// Default bound on bytes of incoming messages not yet complete, across all
/// of a socket's connections: 256 MiB.
pub const DEFAULT_MAX_PARTIAL_BYTES: usize = 256 * 1024 * 1024;
/// Default for [`SocketOptions::spin`].
pub const DEFAULT_SPIN: Duration = Duration::from_micros(50);

/// Everything configurable about a socket.
#[derive(Debug, Clone)]
pub struct SocketOptions {
    /// Outgoing queue limit per peer, in messages.
    pub sndhwm: usize,
    /// Incoming queue limit per peer, in messages; when reached the socket
    /// stops reading that peer, so TCP pushes back on it.
    pub rcvhwm: usize,
    /// Outgoing queue limit per peer, in bytes.
    pub sndhwm_bytes: usize,
    /// Incoming queue limit per peer, in bytes.
    pub rcvhwm_bytes: usize,
    /// How long queued messages may take to leave once the socket is closed.
    pub linger: Duration,
    /// How long a blocking send waits; `None` waits as long as it takes.
    pub send_timeout: Option<Duration>,
    /// How long a blocking receive waits; `None` waits as long as it takes.
    pub recv_timeout: Option<Duration>,
    /// First delay before reconnecting a connect endpoint.
    pub reconnect_interval: Duration,
    /// Largest delay between reconnection attempts (the delay doubles up to this).
    pub reconnect_interval_max: Duration,
    /// How long a TCP connect may take before it is retried.
    pub connect_timeout: Duration,
    /// Routing id announced to peers (REQ, DEALER, ROUTER); 1 to 255 bytes, not starting with 0.
    pub routing_id: Option<Bytes>,
    /// Largest message accepted from a peer, all frames together.
    pub max_message_size: u64,
    /// Largest number of frames in one message from a peer.
    pub max_frames: usize,
    /// Time a peer has to complete greeting and handshake.
    pub handshake_timeout: Duration,
    /// Heartbeats (ZMTP 3.1 PING/PONG).
    pub heartbeat: HeartbeatConfig,
    /// Most connections this socket holds at once; further ones are refused.
    pub max_connections: usize,
    /// Most connections accepted from one source IP address.
    pub max_connections_per_address: usize,
    /// Most accepted connections still in their handshake.
    pub max_handshakes: usize,
    /// Most connections from one source IP address still in their handshake,
    /// so that one address cannot take every handshake slot.
    pub max_handshakes_per_address: usize,
    /// Most bytes of incoming messages not yet complete that the socket
    /// holds across all its connections. A peer that declares a large
    /// frame and sends it slowly (or never finishes it) holds what it sent;
    /// beyond this budget the socket stops reading such peers until others
    /// finish or leave. Each connection may always hold 64 KiB, so small
    /// messages keep flowing however the budget is used.
    pub max_partial_bytes: usize,
    /// Per-peer allowance of messages and bytes per second; a peer over it
    /// is not read until it is back under (back-pressure, never loss).
    ///
    /// The default, 40 million messages and 16 GiB a second per peer, bounds
    /// the work one peer can cause without throttling any realistic link;
    /// tighten it for untrusted peers. Throttling a publisher makes it drop
    /// for that subscriber at its high-water mark, so leave room there.
    /// `None` removes the limit.
    pub rate_limit: Option<RateLimit>,
    /// ROUTER: fail a send to an unknown routing id instead of dropping it.
    pub router_mandatory: bool,
    /// ROUTER: a new peer with an id already in use takes it over (otherwise it is refused).
    pub router_handover: bool,
    /// XPUB: pass every subscription to the application, not only new topics.
    pub xpub_verbose: bool,
    /// XPUB: subscriptions are passed to the application but not applied;
    /// the application applies them with `Socket::<XPub>::manual_subscribe`
    /// (to the peer whose subscription it received last).
    pub xpub_manual: bool,
    /// Security mechanism and authenticator.
    pub security: Security,
    /// Allow NULL or PLAIN on TCP addresses that are not loopback (cleartext on the network).
    pub allow_plaintext: bool,
    /// Extra properties announced in the handshake (names start with `X-`).
    pub metadata: Metadata,
    /// How long a blocking receive keeps checking (yielding the CPU to any
    /// thread that wants it) before it puts its thread to sleep. A sleeping
    /// thread wakes tens of microseconds late, which dominates
    /// request/reply latency; checking happens only while an answer is due
    /// (the socket sent a message since it last received one) and this
    /// socket's waits are that short, so a thread that waits long, or one
    /// that only receives a stream, sleeps at once. Zero always sleeps at
    /// once (least CPU). At most 10 ms. (A blocked send never checks: it
    /// waits for its own I/O thread, whose CPU the checking would take.)
    pub spin: Duration,
}

impl Default for SocketOptions {
    fn default() -> SocketOptions {
        SocketOptions {
            sndhwm: DEFAULT_HWM,
            rcvhwm: DEFAULT_HWM,
            sndhwm_bytes: DEFAULT_HWM_BYTES,
            rcvhwm_bytes: DEFAULT_HWM_BYTES,
            linger: Duration::from_secs(5),
            send_timeout: None,
            recv_timeout: None,
            reconnect_interval: Duration::from_millis(100),
            reconnect_interval_max: Duration::from_secs(5),
            connect_timeout: Duration::from_secs(10),
            routing_id: None,
            max_message_size: DEFAULT_MAX_MESSAGE_SIZE,
            max_frames: DEFAULT_MAX_FRAMES,
            handshake_timeout: DEFAULT_HANDSHAKE_TIMEOUT,
            heartbeat: HeartbeatConfig::default(),
            max_connections: DEFAULT_MAX_CONNECTIONS,
            max_connections_per_address: DEFAULT_MAX_CONNECTIONS_PER_ADDRESS,
            max_handshakes: DEFAULT_MAX_HANDSHAKES,
            max_handshakes_per_address: DEFAULT_MAX_HANDSHAKES_PER_ADDRESS,
            max_partial_bytes: DEFAULT_MAX_PARTIAL_BYTES,
            rate_limit: Some(DEFAULT_RATE_LIMIT),
            router_mandatory: false,
            router_handover: false,
            xpub_verbose: false,
            xpub_manual: false,
            security: Security::Null,
            allow_plaintext: false,
            metadata: Metadata::new(),
            spin: DEFAULT_SPIN,
        }
    }
}

impl SocketOptions {
    /// Checks ranges and combinations.
    pub fn validate(&self) -> Result<(), Error> {
        let bad = |s: &str| Err(Error::InvalidOption(s.to_owned()));
        if self.sndhwm == 0 || self.rcvhwm == 0 || self.sndhwm_bytes == 0 || self.rcvhwm_bytes == 0
        {
            return bad("high-water marks must be at least 1 (there is no unlimited setting)");
        }
        if self.max_message_size == 0 || self.max_frames == 0 {
            return bad("max message size and max frames must be at least 1");
        }
        if self.rcvhwm_bytes < 1024 {
            return bad("receive high-water mark in bytes must be at least 1024");
        }
        if self.max_connections == 0
            || self.max_handshakes == 0
            || self.max_connections_per_address == 0
            || self.max_handshakes_per_address == 0
        {
            return bad("connection limits must be at least 1");
        }
        if self.max_partial_bytes == 0 {
            return bad("max partial bytes must be at least 1 (there is no unlimited setting)");
        }
        if self.spin > Duration::from_millis(10) {
            return bad("spin must be at most 10 ms (it keeps a thread busy; zero turns it off)");
        }
        if self.handshake_timeout.is_zero() {
            return bad("handshake timeout must be above zero");
        }
        if let Some(r) = self.rate_limit {
            if r.messages_per_sec == 0 || r.bytes_per_sec == 0 {
                return bad("a rate limit needs at least 1 message and 1 byte per second (use None for no limit)");
            }
        }
        if self.reconnect_interval.is_zero() {
            return bad("reconnect interval must be above zero");
        }
        if self.reconnect_interval_max < self.reconnect_interval {
            return bad("reconnect interval max must be at least the reconnect interval");
        }
        if let Some(hb) = self.heartbeat.interval {
            if !hb.is_zero() && self.heartbeat.timeout.is_zero() {
                return bad("heartbeat timeout must be above zero when heartbeats are on");
            }
        }
        if let Some(id) = &self.routing_id {
            if id.is_empty() || id.len() > 255 {
                return bad("routing id must be 1 to 255 bytes");
            }
            if id[0] == 0 {
                return bad("routing ids starting with a zero byte are reserved for generated ids");
            }
        }
        for (name, _) in self.metadata.iter() {
            if !name.starts_with("X-") && !name.starts_with("x-") {
                return Err(Error::InvalidOption(format!(
                    "metadata property {name:?} must start with X- (application properties)"
                )));
            }
        }
        self.security.validate()
    }
}
