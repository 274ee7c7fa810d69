//! The protocol core's error type.
//!
//! Every error names who was at fault through [`Error::category`]: the peer
//! (it broke the protocol, is incompatible, failed authentication or went
//! silent) or the local caller (misuse of the API). Attacker-controlled input
//! can only ever produce a peer-side category, which the socket layer answers
//! by closing that one connection.

use crate::greeting::MechanismKind;
use crate::socket_type::SocketType;

/// What kind of failure an [`Error`] is, for monitor events and metrics.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ErrorCategory {
    /// The peer sent bytes that break ZMTP (malformed, out of order, reserved bits).
    Protocol,
    /// The peer is well-formed but cannot talk to us (version, mechanism, socket type).
    Incompatible,
    /// The peer's credentials were refused, by us or by the peer.
    Authentication,
    /// The peer exceeded a configured limit (frame size, message size, frame count).
    Limit,
    /// The peer did not complete the handshake or stopped answering heartbeats in time.
    Timeout,
    /// The peer closed the session with an ERROR command.
    PeerClosed,
    /// The local caller used the API wrongly; the peer did nothing wrong.
    Usage,
}

impl ErrorCategory {
    /// A short lower-case name, used in monitor output (`protocol`, `authentication`, ...).
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorCategory::Protocol => "protocol",
            ErrorCategory::Incompatible => "incompatible",
            ErrorCategory::Authentication => "authentication",
            ErrorCategory::Limit => "limit",
            ErrorCategory::Timeout => "timeout",
            ErrorCategory::PeerClosed => "peer-closed",
            ErrorCategory::Usage => "usage",
        }
    }
}

impl std::fmt::Display for ErrorCategory {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Why a ZMTP connection failed, or why a call was refused.
///
/// Errors are sticky: once a [`Connection`](crate::Connection) has failed,
/// every later call returns the same error.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The first bytes were not a ZMTP 3.x greeting signature.
    #[error("peer did not send a ZMTP greeting (signature byte {offset} was {byte:#04x}); it is not a ZMTP 3.x peer")]
    BadSignature {
        /// Offset of the offending byte in the greeting.
        offset: usize,
        /// The byte received.
        byte: u8,
    },
    /// The peer speaks ZMTP 1.0 or 2.0, which are refused because they allow a
    /// security downgrade (CVE-2014-9721).
    #[error("peer speaks ZMTP {major}.x, which is refused because it permits security downgrade (CVE-2014-9721); upgrade the peer to ZMTP 3.0 or later (libzmq 4.0+)")]
    LegacyVersion {
        /// The major version the peer announced (1 for unversioned ZMTP 1.0).
        major: u8,
    },
    /// The peer asked for a different security mechanism (CVE-2014-7202).
    #[error("peer uses security mechanism {theirs:?} but this socket requires {ours}; configure both sides with the same mechanism")]
    MechanismMismatch {
        /// Our mechanism.
        ours: MechanismKind,
        /// The mechanism name the peer sent, lossily decoded.
        theirs: String,
    },
    /// Both peers claim the same role in a mechanism that needs one client and one server.
    #[error("both peers claim to be the {} of the {mechanism} handshake; exactly one side must be the server", if *as_server { "server" } else { "client" })]
    RoleConflict {
        /// The mechanism in use.
        mechanism: MechanismKind,
        /// The role both sides claimed.
        as_server: bool,
    },
    /// The as-server field of the greeting was neither 0 nor 1.
    #[error("peer sent as-server value {0:#04x} in its greeting; only 0 and 1 are valid")]
    BadAsServer(u8),
    /// A frame had one of the reserved flag bits (3 to 7) set.
    #[error("peer sent a frame with reserved flag bits set (flags {flags:#04x})")]
    ReservedFlags {
        /// The flags byte received.
        flags: u8,
    },
    /// A command frame had the MORE flag set.
    #[error("peer sent a command frame with the MORE flag set")]
    CommandWithMore,
    /// A frame declared a size above `i64::MAX` (negative in signed implementations).
    #[error(
        "peer declared a frame size of {size} bytes, which does not fit a signed 64-bit length"
    )]
    FrameSizeOverflow {
        /// The declared size.
        size: u64,
    },
    /// A frame declared a size above the configured limit. Nothing was allocated for it.
    #[error("peer declared a {kind} frame of {size} bytes, above the limit of {limit} bytes; raise the limit (max message size) if such frames are legitimate")]
    FrameTooLarge {
        /// "message" or "command".
        kind: &'static str,
        /// The declared size.
        size: u64,
        /// The limit in force.
        limit: u64,
    },
    /// The frames of one multipart message add up to more than the configured limit.
    #[error("peer sent a multipart message of more than {limit} bytes; raise the max message size if such messages are legitimate")]
    MessageTooLarge {
        /// The limit in force.
        limit: u64,
    },
    /// One multipart message had more frames than the configured limit.
    #[error("peer sent a multipart message of more than {limit} frames; raise the frame limit if such messages are legitimate")]
    TooManyFrames {
        /// The limit in force.
        limit: usize,
    },
    /// A command body could not be parsed.
    #[error("peer sent a malformed {command} command: {reason}")]
    MalformedCommand {
        /// The command name (lossily decoded), or "unnamed".
        command: String,
        /// What was wrong with it.
        reason: &'static str,
    },
    /// A command arrived where the protocol does not allow it.
    #[error("peer sent a {command} command {state}, where it is not allowed")]
    UnexpectedCommand {
        /// The command name (lossily decoded).
        command: String,
        /// Where we were, e.g. "during the NULL handshake".
        state: &'static str,
    },
    /// A message frame arrived before the handshake was complete.
    #[error("peer sent a message frame before the security handshake completed")]
    MessageBeforeHandshake,
    /// Metadata (READY/INITIATE properties) could not be parsed.
    #[error("peer sent invalid metadata: {reason}")]
    InvalidMetadata {
        /// What was wrong with it.
        reason: &'static str,
    },
    /// The peer's metadata lacks the mandatory Socket-Type property.
    #[error("peer did not announce its Socket-Type in its metadata")]
    MissingSocketType,
    /// The peer's socket type cannot be connected to ours.
    #[error("peer socket type {theirs} cannot talk to a {ours} socket; see the compatible pairs in RFC 23")]
    IncompatibleSocketType {
        /// Our socket type.
        ours: SocketType,
        /// The peer's announced socket type (lossily decoded).
        theirs: String,
    },
    /// The local authenticator refused the peer.
    #[error("peer credentials refused (status {status}: {reason})")]
    AuthenticationRefused {
        /// ZAP status code: 300 (temporary), 400 (refused) or 500 (internal error).
        status: u16,
        /// Text given by the authenticator.
        reason: String,
    },
    /// The peer closed the handshake or session with an ERROR command.
    #[error("peer closed the connection with ERROR {reason:?}")]
    PeerError {
        /// The reason text the peer sent (lossily decoded, at most 255 bytes).
        reason: String,
    },
    /// A CURVE box did not open: wrong keys, or data tampered with.
    #[error("could not open {what}")]
    Decryption {
        /// Which box, and what that most likely means.
        what: &'static str,
    },
    /// A CURVE short nonce did not increase: a replayed or reordered command (CVE-2014-7203).
    #[error("peer reused or reordered a CURVE nonce in {command}; replayed data is refused")]
    NonceNotIncreasing {
        /// The command that carried it.
        command: &'static str,
    },
    /// The handshake did not finish within the configured time.
    #[error("peer did not complete the handshake within {millis} ms")]
    HandshakeTimeout {
        /// The timeout in force.
        millis: u64,
    },
    /// No traffic arrived within the heartbeat timeout after a PING, or within the TTL the peer asked for.
    #[error("peer sent nothing for {millis} ms after a heartbeat; it is presumed dead")]
    HeartbeatTimeout {
        /// The timeout that expired.
        millis: u64,
    },
    /// The caller tried to send before the handshake completed.
    #[error("cannot send before the handshake has completed; wait for the Ready event")]
    NotReady,
    /// The caller tried to send a message with no frames.
    #[error("cannot send a message with no frames; add at least one (possibly empty) frame")]
    EmptyMessage,
    /// The caller answered an authentication request that was not pending.
    #[error("no authentication request is pending; answer only after an Authenticate event")]
    NoAuthenticationPending,
    /// The caller configured the connection inconsistently.
    #[error("invalid configuration: {0}")]
    InvalidConfig(String),
    /// The caller gave an invalid authentication status.
    #[error("invalid ZAP status {0}; a refusal must be 300, 400 or 500")]
    InvalidStatus(u16),
}

impl Error {
    /// Which side was at fault, and how, for monitor events.
    pub fn category(&self) -> ErrorCategory {
        use Error::*;
        match self {
            BadSignature { .. }
            | BadAsServer(_)
            | ReservedFlags { .. }
            | CommandWithMore
            | FrameSizeOverflow { .. }
            | MalformedCommand { .. }
            | UnexpectedCommand { .. }
            | MessageBeforeHandshake
            | InvalidMetadata { .. }
            | NonceNotIncreasing { .. }
            | MissingSocketType => ErrorCategory::Protocol,
            LegacyVersion { .. }
            | MechanismMismatch { .. }
            | RoleConflict { .. }
            | IncompatibleSocketType { .. } => ErrorCategory::Incompatible,
            FrameTooLarge { .. } | MessageTooLarge { .. } | TooManyFrames { .. } => {
                ErrorCategory::Limit
            }
            AuthenticationRefused { .. } | Decryption { .. } => ErrorCategory::Authentication,
            PeerError { reason } => {
                // A peer that refuses our credentials answers with a ZAP status code.
                if matches!(reason.as_str(), "300" | "400" | "500") {
                    ErrorCategory::Authentication
                } else {
                    ErrorCategory::PeerClosed
                }
            }
            HandshakeTimeout { .. } | HeartbeatTimeout { .. } => ErrorCategory::Timeout,
            NotReady
            | EmptyMessage
            | NoAuthenticationPending
            | InvalidConfig(_)
            | InvalidStatus(_) => ErrorCategory::Usage,
        }
    }

    /// True when the peer caused the error (anything but [`ErrorCategory::Usage`]).
    pub fn is_peer_fault(&self) -> bool {
        self.category() != ErrorCategory::Usage
    }

    pub(crate) fn malformed(command: &[u8], reason: &'static str) -> Error {
        Error::MalformedCommand {
            command: lossy_name(command),
            reason,
        }
    }

    pub(crate) fn unexpected(command: &[u8], state: &'static str) -> Error {
        Error::UnexpectedCommand {
            command: lossy_name(command),
            state,
        }
    }
}

/// Decodes a peer-supplied name for an error message, bounded so a hostile
/// peer cannot make error strings large.
pub(crate) fn lossy_name(bytes: &[u8]) -> String {
    if bytes.is_empty() {
        return "unnamed".to_owned();
    }
    let bounded = &bytes[..bytes.len().min(64)];
    String::from_utf8_lossy(bounded)
        .chars()
        .map(|c| if c.is_control() { '?' } else { c })
        .collect()
}
