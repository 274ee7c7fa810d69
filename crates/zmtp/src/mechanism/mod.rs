//! Security handshakes. Each mechanism is a small state machine driven by
//! the [`Connection`](crate::Connection): it is started once the greetings
//! are exchanged, fed one command at a time, and may pause on an
//! authentication request that the caller answers. Mechanisms never see raw
//! bytes, only parsed command frames, so framing limits apply before they run.

use bytes::{Bytes, BytesMut};

use crate::command::{parse_error, PlainHello, RawCommand};
use crate::error::Error;
use crate::greeting::MechanismKind;
use crate::metadata::{self, Metadata};
use crate::socket_type::SocketType;

pub mod curve;
pub(crate) mod null;
pub(crate) mod plain;

/// Credentials presented by a peer, for the authenticator to judge.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Credentials {
    /// NULL: no credentials; only the peer's address (known to the caller) can be judged.
    Null,
    /// PLAIN user name and password (the password is wiped on drop and redacted in Debug).
    Plain(PlainHello),
    /// CURVE long-term public key of the client.
    Curve {
        /// The client's permanent public key.
        public_key: [u8; 32],
    },
}

/// A request to authenticate the peer, raised as [`Event::Authenticate`](crate::Event::Authenticate).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuthRequest {
    /// The mechanism in use.
    pub mechanism: MechanismKind,
    /// What the peer presented.
    pub credentials: Credentials,
}

/// The caller's answer to an [`AuthRequest`], mirroring a ZAP reply (RFC 27).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum AuthDecision {
    /// Admit the peer.
    Accept {
        /// The user id the authenticator assigned (may be empty).
        user_id: Bytes,
        /// Extra properties the authenticator attached to the connection.
        metadata: Metadata,
    },
    /// Refuse the peer. The status is sent to it in an ERROR command.
    Refuse {
        /// 300 (temporary failure), 400 (refused) or 500 (internal error).
        status: u16,
        /// Text for logs and the local error; not sent to the peer.
        reason: String,
    },
}

impl AuthDecision {
    /// Admit with no user id and no extra metadata.
    pub fn accept() -> AuthDecision {
        AuthDecision::Accept {
            user_id: Bytes::new(),
            metadata: Metadata::new(),
        }
    }

    /// Refuse with status 400.
    pub fn refuse(reason: impl Into<String>) -> AuthDecision {
        AuthDecision::Refuse {
            status: 400,
            reason: reason.into(),
        }
    }
}

/// What a mechanism asks of the connection after a step.
#[derive(Debug)]
pub(crate) enum Step {
    /// Nothing to report; keep feeding commands.
    Continue,
    /// Pause until the caller answers this request.
    Authenticate(AuthRequest),
    /// Handshake complete: the peer's metadata (validated), and the cipher
    /// every later frame goes through (CURVE only).
    Done(Metadata, Option<Box<curve::cipher::CurveCipher>>),
}

/// What every mechanism needs from the connection while it runs.
pub(crate) struct Ctx<'a> {
    /// Where handshake commands are written.
    pub(crate) out: &'a mut BytesMut,
    /// Our metadata for READY/INITIATE.
    pub(crate) ours: &'a Metadata,
    /// Our socket type, against which the peer's is checked.
    pub(crate) socket_type: SocketType,
}

impl Ctx<'_> {
    /// Parses and validates the peer's metadata: well-formed, with a
    /// Socket-Type compatible with ours and an Identity of at most 255 bytes.
    pub(crate) fn peer_metadata(&self, data: &[u8]) -> Result<Metadata, Error> {
        let md = Metadata::parse(data)?;
        let theirs = md
            .get(metadata::SOCKET_TYPE)
            .ok_or(Error::MissingSocketType)?;
        let compatible =
            SocketType::from_wire(theirs).is_some_and(|t| self.socket_type.is_compatible_with(t));
        if !compatible {
            return Err(Error::IncompatibleSocketType {
                ours: self.socket_type,
                theirs: crate::error::lossy_name(theirs),
            });
        }
        if md.get(metadata::IDENTITY).is_some_and(|id| id.len() > 255) {
            return Err(Error::InvalidMetadata {
                reason: "Identity is longer than 255 bytes",
            });
        }
        Ok(md)
    }
}

/// Turns an ERROR command received during a handshake into the failure it reports.
pub(crate) fn peer_error(cmd: &RawCommand) -> Error {
    match parse_error(&cmd.data) {
        Ok(reason) => Error::PeerError { reason },
        Err(e) => e,
    }
}

/// The running handshake of a connection.
#[derive(Debug)]
pub(crate) enum Handshake {
    Null(null::NullHandshake),
    PlainClient(plain::PlainClient),
    PlainServer(plain::PlainServer),
    CurveClient(Box<curve::client::CurveClient>),
    CurveServer(Box<curve::server::CurveServer>),
}

impl Handshake {
    pub(crate) fn start(&mut self, ctx: &mut Ctx<'_>) -> Result<Step, Error> {
        match self {
            Handshake::Null(h) => h.start(ctx),
            Handshake::PlainClient(h) => h.start(ctx),
            Handshake::CurveClient(h) => h.start(ctx),
            Handshake::PlainServer(_) | Handshake::CurveServer(_) => Ok(Step::Continue),
        }
    }

    pub(crate) fn on_command(&mut self, cmd: RawCommand, ctx: &mut Ctx<'_>) -> Result<Step, Error> {
        match self {
            Handshake::Null(h) => h.on_command(cmd, ctx),
            Handshake::PlainClient(h) => h.on_command(cmd, ctx),
            Handshake::PlainServer(h) => h.on_command(cmd, ctx),
            Handshake::CurveClient(h) => h.on_command(cmd, ctx),
            Handshake::CurveServer(h) => h.on_command(cmd, ctx),
        }
    }

    pub(crate) fn on_decision(
        &mut self,
        decision: &AuthDecision,
        ctx: &mut Ctx<'_>,
    ) -> Result<Step, Error> {
        match self {
            Handshake::Null(h) => h.on_decision(decision, ctx),
            Handshake::PlainServer(h) => h.on_decision(decision, ctx),
            Handshake::CurveServer(h) => h.on_decision(decision, ctx),
            Handshake::PlainClient(_) | Handshake::CurveClient(_) => {
                Err(Error::NoAuthenticationPending)
            }
        }
    }
}

/// Applies a refusal: the error the local side reports.
pub(crate) fn refused(decision: &AuthDecision) -> Option<Error> {
    match decision {
        AuthDecision::Accept { .. } => None,
        AuthDecision::Refuse { status, reason } => Some(Error::AuthenticationRefused {
            status: *status,
            reason: reason.clone(),
        }),
    }
}
