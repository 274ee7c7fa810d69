//! Command-line arguments, exactly as CLI.md specifies them.

use clap::{Args, Parser, Subcommand};

/// ZeroMQ, wire-compatible with libzmq, secure by default.
#[derive(Debug, Parser)]
#[command(name = "zeroguard", version, about)]
pub(crate) struct Cli {
    #[command(subcommand)]
    pub(crate) command: Command,
}

#[derive(Debug, Subcommand)]
pub(crate) enum Command {
    /// A self-contained tour on loopback: request/reply, publish/subscribe, monitor events.
    Demo,
    /// Receive messages and print one per line.
    Recv(RecvArgs),
    /// Send messages (from --message or standard input).
    Send(SendArgs),
    /// Send every received message back.
    Echo(EchoArgs),
    /// Forward between two sockets, like zmq_proxy.
    Proxy(ProxyArgs),
}

/// Where a socket binds and connects.
#[derive(Debug, Args)]
pub(crate) struct Endpoints {
    /// Bind to this endpoint (repeatable).
    #[arg(long = "bind", value_name = "EP")]
    pub(crate) bind: Vec<String>,
    /// Connect to this endpoint (repeatable).
    #[arg(long = "connect", value_name = "EP")]
    pub(crate) connect: Vec<String>,
}

/// Limits; defaults are the library's.
#[derive(Debug, Args)]
pub(crate) struct Limits {
    /// Largest message accepted, in bytes.
    #[arg(long, value_name = "BYTES")]
    pub(crate) max_msg_size: Option<u64>,
    /// Send high-water mark, in messages.
    #[arg(long, value_name = "N")]
    pub(crate) sndhwm: Option<usize>,
    /// Receive high-water mark, in messages.
    #[arg(long, value_name = "N")]
    pub(crate) rcvhwm: Option<usize>,
    /// Time allowed for the handshake, in milliseconds.
    #[arg(long, value_name = "MS")]
    pub(crate) handshake_timeout: Option<u64>,
    /// Most connections the socket holds.
    #[arg(long, value_name = "N")]
    pub(crate) max_connections: Option<usize>,
    /// Heartbeat interval in milliseconds (0 turns heartbeats off).
    #[arg(long, value_name = "MS")]
    pub(crate) heartbeat: Option<u64>,
}

/// Security options.
#[derive(Debug, Args)]
pub(crate) struct SecurityArgs {
    /// Allow NULL or PLAIN on a TCP address that is not loopback.
    #[arg(long)]
    pub(crate) allow_plaintext: bool,
}

#[derive(Debug, Args)]
pub(crate) struct RecvArgs {
    /// Socket type: pair pub sub xpub xsub push pull req rep dealer router.
    #[arg(value_name = "TYPE")]
    pub(crate) socket_type: String,
    #[command(flatten)]
    pub(crate) endpoints: Endpoints,
    /// Exit 0 after this many messages.
    #[arg(long, value_name = "N")]
    pub(crate) count: Option<u64>,
    /// Exit 3 if this many milliseconds pass without a message.
    #[arg(long, value_name = "MS")]
    pub(crate) timeout: Option<u64>,
    /// Subscribe to this prefix (sub); without any, subscribe to everything.
    #[arg(long = "subscribe", value_name = "PREFIX")]
    pub(crate) subscribe: Vec<String>,
    #[command(flatten)]
    pub(crate) security: SecurityArgs,
    #[command(flatten)]
    pub(crate) limits: Limits,
    /// Print socket events to standard error.
    #[arg(long)]
    pub(crate) monitor: bool,
}

#[derive(Debug, Args)]
pub(crate) struct SendArgs {
    /// Socket type: pair pub sub xpub xsub push pull req rep dealer router.
    #[arg(value_name = "TYPE")]
    pub(crate) socket_type: String,
    #[command(flatten)]
    pub(crate) endpoints: Endpoints,
    /// A message to send: TAB separates frames, \xNN is a byte (repeatable).
    #[arg(long = "message", value_name = "TEXT")]
    pub(crate) message: Vec<String>,
    /// Send the messages this many times, in order.
    #[arg(long, value_name = "N", default_value_t = 1)]
    pub(crate) repeat: u64,
    /// Wait this long after bind/connect before the first send.
    #[arg(long, value_name = "MS")]
    pub(crate) delay: Option<u64>,
    /// Wait at most this long for queued messages to leave before exit.
    #[arg(long, value_name = "MS", default_value_t = 5000)]
    pub(crate) linger: u64,
    #[command(flatten)]
    pub(crate) security: SecurityArgs,
    #[command(flatten)]
    pub(crate) limits: Limits,
    /// Print socket events to standard error.
    #[arg(long)]
    pub(crate) monitor: bool,
}

#[derive(Debug, Args)]
pub(crate) struct EchoArgs {
    /// Socket type: rep, router, dealer or pair.
    #[arg(value_name = "TYPE")]
    pub(crate) socket_type: String,
    #[command(flatten)]
    pub(crate) endpoints: Endpoints,
    /// Exit 0 after echoing this many messages.
    #[arg(long, value_name = "N")]
    pub(crate) count: Option<u64>,
    #[command(flatten)]
    pub(crate) security: SecurityArgs,
    #[command(flatten)]
    pub(crate) limits: Limits,
    /// Print socket events to standard error.
    #[arg(long)]
    pub(crate) monitor: bool,
}

#[derive(Debug, Args)]
pub(crate) struct ProxyArgs {
    /// Frontend socket as TYPE=ENDPOINT (binds; prefix the endpoint with > to connect).
    #[arg(long, value_name = "TYPE=ENDPOINT")]
    pub(crate) frontend: String,
    /// Backend socket as TYPE=ENDPOINT (binds; prefix the endpoint with > to connect).
    #[arg(long, value_name = "TYPE=ENDPOINT")]
    pub(crate) backend: String,
    #[command(flatten)]
    pub(crate) security: SecurityArgs,
    #[command(flatten)]
    pub(crate) limits: Limits,
    /// Print socket events to standard error.
    #[arg(long)]
    pub(crate) monitor: bool,
}
