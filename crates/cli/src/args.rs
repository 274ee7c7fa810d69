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
    /// A self-contained tour on loopback: a CURVE service admitting one key and refusing another.
    Demo,
    /// Write a CURVE certificate pair DIR/NAME.key and DIR/NAME.key_secret.
    Keygen(KeygenArgs),
    /// Receive messages and print one per line.
    Recv(RecvArgs),
    /// Send messages (from --message or standard input).
    Send(SendArgs),
    /// Send every received message back.
    Echo(EchoArgs),
    /// Forward between two sockets, like zmq_proxy.
    Proxy(ProxyArgs),
    /// libzmq's perf tools: local-thr, remote-thr, local-lat, remote-lat.
    Perf(PerfArgs),
}

/// Which perf tool.
#[derive(Debug, Clone, Copy, clap::ValueEnum)]
pub(crate) enum PerfTool {
    /// Bind PULL, time from the first message to the last, print throughput.
    LocalThr,
    /// Connect PUSH, send COUNT messages of SIZE bytes.
    RemoteThr,
    /// Bind REP, echo ROUNDTRIPS messages.
    LocalLat,
    /// Connect REQ, time ROUNDTRIPS round trips, print one-way latency.
    RemoteLat,
}

#[derive(Debug, Args)]
pub(crate) struct PerfArgs {
    /// local-thr, remote-thr, local-lat or remote-lat.
    #[arg(value_enum, value_name = "TOOL")]
    pub(crate) tool: PerfTool,
    /// Where to bind (local-*) or connect (remote-*).
    #[arg(value_name = "ENDPOINT")]
    pub(crate) endpoint: String,
    /// Message size in bytes.
    #[arg(value_name = "SIZE")]
    pub(crate) size: usize,
    /// Message count (thr) or roundtrip count (lat).
    #[arg(value_name = "COUNT")]
    pub(crate) count: u64,
    /// Use CURVE with the fixed benchmark keys.
    #[arg(long)]
    pub(crate) curve: bool,
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
    /// How long a waiting receive keeps checking before it sleeps, when
    /// an answer is due (the socket sent since it last received), in
    /// microseconds (0: sleep at once, least CPU; at most 10000).
    #[arg(long, value_name = "US")]
    pub(crate) spin: Option<u64>,
}

/// Security options.
#[derive(Debug, Args)]
pub(crate) struct SecurityArgs {
    /// Be a CURVE server (needs --cert, and --allow-certs or --allow-any-client).
    #[arg(long)]
    pub(crate) curve_server: bool,
    /// Be a CURVE client (needs --cert, and --server-key or --server-cert).
    #[arg(long)]
    pub(crate) curve_client: bool,
    /// Our secret certificate file, as written by keygen.
    #[arg(long, value_name = "FILE")]
    pub(crate) cert: Option<std::path::PathBuf>,
    /// Admit CURVE clients whose public certificate is in this directory.
    #[arg(long, value_name = "DIR")]
    pub(crate) allow_certs: Option<std::path::PathBuf>,
    /// Encrypt, but admit any CURVE client key.
    #[arg(long)]
    pub(crate) allow_any_client: bool,
    /// The CURVE server's public key (40 characters of Z85).
    #[arg(long, value_name = "Z85")]
    pub(crate) server_key: Option<String>,
    /// The CURVE server's public certificate file.
    #[arg(long, value_name = "FILE")]
    pub(crate) server_cert: Option<std::path::PathBuf>,
    /// Be a PLAIN server (needs --passwords).
    #[arg(long)]
    pub(crate) plain_server: bool,
    /// File of user=password lines (# comments) for --plain-server.
    #[arg(long, value_name = "FILE")]
    pub(crate) passwords: Option<std::path::PathBuf>,
    /// Be a PLAIN client (needs --user and --password).
    #[arg(long)]
    pub(crate) plain_client: bool,
    /// PLAIN user name.
    #[arg(long, value_name = "U")]
    pub(crate) user: Option<String>,
    /// PLAIN password.
    #[arg(long, value_name = "P")]
    pub(crate) password: Option<String>,
    /// Admit only peers from this address or CIDR range (repeatable).
    #[arg(long = "allow", value_name = "ADDR/CIDR")]
    pub(crate) allow: Vec<String>,
    /// Refuse peers from this address or CIDR range (repeatable).
    #[arg(long = "deny", value_name = "ADDR/CIDR")]
    pub(crate) deny: Vec<String>,
    /// Allow NULL or PLAIN on a TCP address that is not loopback.
    #[arg(long)]
    pub(crate) allow_plaintext: bool,
}

/// What every socket command takes: the socket, where it goes, its
/// security and limits, and whether to print its events.
#[derive(Debug, Args)]
pub(crate) struct SocketArgs {
    /// Socket type: pair pub sub xpub xsub push pull req rep dealer router.
    #[arg(value_name = "TYPE")]
    pub(crate) socket_type: String,
    #[command(flatten)]
    pub(crate) endpoints: Endpoints,
    #[command(flatten)]
    pub(crate) security: SecurityArgs,
    #[command(flatten)]
    pub(crate) limits: Limits,
    /// Print socket events to standard error.
    #[arg(long)]
    pub(crate) monitor: bool,
}

#[derive(Debug, Args)]
pub(crate) struct KeygenArgs {
    /// Certificate name (file names NAME.key and NAME.key_secret).
    #[arg(value_name = "NAME")]
    pub(crate) name: String,
    /// Directory to write into (created if missing).
    #[arg(long, value_name = "DIR", default_value = ".")]
    pub(crate) dir: std::path::PathBuf,
}

#[derive(Debug, Args)]
pub(crate) struct RecvArgs {
    #[command(flatten)]
    pub(crate) socket: SocketArgs,
    /// Exit 0 after this many messages.
    #[arg(long, value_name = "N")]
    pub(crate) count: Option<u64>,
    /// Exit 3 if this many milliseconds pass without a message.
    #[arg(long, value_name = "MS")]
    pub(crate) timeout: Option<u64>,
    /// Subscribe to this prefix (sub); without any, subscribe to everything.
    #[arg(long = "subscribe", value_name = "PREFIX")]
    pub(crate) subscribe: Vec<String>,
}

#[derive(Debug, Args)]
pub(crate) struct SendArgs {
    #[command(flatten)]
    pub(crate) socket: SocketArgs,
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
}

#[derive(Debug, Args)]
pub(crate) struct EchoArgs {
    #[command(flatten)]
    pub(crate) socket: SocketArgs,
    /// Exit 0 after echoing this many messages.
    #[arg(long, value_name = "N")]
    pub(crate) count: Option<u64>,
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
