//! Connection configuration, with finite defaults for every limit.

use std::time::Duration;

use bytes::Bytes;

use crate::error::Error;
use crate::greeting::MechanismKind;
use crate::heartbeat::HeartbeatConfig;
use crate::mechanism::curve::CurveKeyPair;
use crate::metadata::{self, Metadata};
use crate::socket_type::SocketType;

/// Default largest multipart message accepted: 16 MiB.
pub const DEFAULT_MAX_MESSAGE_SIZE: u64 = 16 * 1024 * 1024;
/// Default largest number of frames in one message.
pub const DEFAULT_MAX_FRAMES: usize = 4096;
/// Default largest handshake command (READY, HELLO, INITIATE...): 64 KiB.
pub const DEFAULT_MAX_HANDSHAKE_COMMAND: u64 = 64 * 1024;
/// Default time allowed from connection to completed handshake.
pub const DEFAULT_HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// The security mechanism of a connection and the local side's role in it.
#[derive(Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum MechanismConfig {
    /// No security. With `authenticate`, the peer is admitted only after the
    /// caller answers an [`AuthRequest`](crate::AuthRequest) (address-based checks).
    Null {
        /// Ask the caller to admit each peer.
        authenticate: bool,
    },
    /// PLAIN client presenting a user name and password (each at most 255 bytes).
    PlainClient {
        /// User name.
        username: Bytes,
        /// Password, wiped from memory on drop.
        password: zeroize::Zeroizing<Vec<u8>>,
    },
    /// PLAIN server: every client's credentials are raised as an authentication request.
    PlainServer,
    /// CURVE client: our long-term keys, and the server's public key, pinned.
    CurveClient {
        /// Our long-term key pair.
        keys: CurveKeyPair,
        /// The server's long-term public key.
        server_key: [u8; 32],
    },
    /// CURVE server: every client's long-term key is raised as an authentication request.
    CurveServer {
        /// Our long-term key pair.
        keys: CurveKeyPair,
    },
}

impl std::fmt::Debug for MechanismConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            MechanismConfig::Null { authenticate } => f
                .debug_struct("Null")
                .field("authenticate", authenticate)
                .finish(),
            MechanismConfig::PlainClient { username, .. } => f
                .debug_struct("PlainClient")
                .field("username", &String::from_utf8_lossy(username))
                .field("password", &"<redacted>")
                .finish(),
            MechanismConfig::PlainServer => f.write_str("PlainServer"),
            MechanismConfig::CurveClient { keys, server_key } => f
                .debug_struct("CurveClient")
                .field("keys", keys)
                .field(
                    "server_key",
                    &crate::z85::encode(server_key).unwrap_or_default(),
                )
                .finish(),
            MechanismConfig::CurveServer { keys } => {
                f.debug_struct("CurveServer").field("keys", keys).finish()
            }
        }
    }
}

impl MechanismConfig {
    /// The mechanism named in the greeting.
    pub fn kind(&self) -> MechanismKind {
        match self {
            MechanismConfig::Null { .. } => MechanismKind::Null,
            MechanismConfig::PlainClient { .. } | MechanismConfig::PlainServer => {
                MechanismKind::Plain
            }
            MechanismConfig::CurveClient { .. } | MechanismConfig::CurveServer { .. } => {
                MechanismKind::Curve
            }
        }
    }

    /// Whether the local side takes the server role (greeting as-server bit).
    pub fn as_server(&self) -> bool {
        matches!(
            self,
            MechanismConfig::PlainServer | MechanismConfig::CurveServer { .. }
        )
    }

    /// A PLAIN client configuration.
    pub fn plain_client(username: impl Into<Bytes>, password: impl AsRef<[u8]>) -> MechanismConfig {
        MechanismConfig::PlainClient {
            username: username.into(),
            password: zeroize::Zeroizing::new(password.as_ref().to_vec()),
        }
    }
}

/// Size limits enforced on what the peer sends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Largest multipart message, all frames together, in bytes.
    pub max_message_size: u64,
    /// Largest number of frames in one message.
    pub max_frames: usize,
    /// Largest command accepted during the handshake, in bytes.
    pub max_handshake_command: u64,
}

impl Default for Limits {
    fn default() -> Limits {
        Limits {
            max_message_size: DEFAULT_MAX_MESSAGE_SIZE,
            max_frames: DEFAULT_MAX_FRAMES,
            max_handshake_command: DEFAULT_MAX_HANDSHAKE_COMMAND,
        }
    }
}

/// Everything a [`Connection`](crate::Connection) needs to know about the local side.
#[derive(Debug, Clone)]
pub struct Config {
    /// Our socket type, announced to the peer and checked against its type.
    pub socket_type: SocketType,
    /// Our routing id (0 to 255 bytes), announced by REQ, DEALER and ROUTER.
    pub routing_id: Bytes,
    /// Security mechanism and role.
    pub mechanism: MechanismConfig,
    /// Extra properties to announce (names should start with `X-`).
    pub metadata: Metadata,
    /// Limits on what the peer may send.
    pub limits: Limits,
    /// Time allowed for greeting and handshake.
    pub handshake_timeout: Duration,
    /// Heartbeats.
    pub heartbeat: HeartbeatConfig,
}

impl Config {
    /// A configuration with the default limits, timeouts and heartbeats.
    pub fn new(socket_type: SocketType, mechanism: MechanismConfig) -> Config {
        Config {
            socket_type,
            routing_id: Bytes::new(),
            mechanism,
            metadata: Metadata::new(),
            limits: Limits::default(),
            handshake_timeout: DEFAULT_HANDSHAKE_TIMEOUT,
            heartbeat: HeartbeatConfig::default(),
        }
    }

    /// Checks the configuration and builds the metadata we announce.
    pub(crate) fn validate(&self) -> Result<Metadata, Error> {
        let invalid = |s: String| Err(Error::InvalidConfig(s));
        if self.routing_id.len() > 255 {
            return invalid(format!(
                "routing id is {} bytes; it must be at most 255",
                self.routing_id.len()
            ));
        }
        if let MechanismConfig::PlainClient { username, password } = &self.mechanism {
            if username.len() > 255 || password.len() > 255 {
                return invalid(
                    "PLAIN user name and password must each be at most 255 bytes".into(),
                );
            }
        }
        if self.limits.max_message_size == 0 || self.limits.max_frames == 0 {
            return invalid("max message size and max frames must be at least 1".into());
        }
        if self.limits.max_handshake_command < 512 {
            return invalid("max handshake command must be at least 512 bytes".into());
        }
        if self.handshake_timeout.is_zero() {
            return invalid("handshake timeout must be above zero".into());
        }
        let mut ours = Metadata::new();
        ours.insert(metadata::SOCKET_TYPE, self.socket_type.as_str())?;
        if self.socket_type.sends_identity() {
            ours.insert(metadata::IDENTITY, self.routing_id.clone())?;
        }
        for (name, value) in self.metadata.iter() {
            if ours.get(name).is_some() {
                return invalid(format!(
                    "metadata property {name:?} is set by the protocol; use a name starting with X-"
                ));
            }
            ours.insert(name, value.clone())?;
        }
        let size = ours.encoded_len() as u64 + 16;
        if size > self.limits.max_handshake_command {
            return invalid(format!(
                "metadata takes {size} bytes, above the {} byte handshake command limit",
                self.limits.max_handshake_command
            ));
        }
        Ok(ours)
    }
}
