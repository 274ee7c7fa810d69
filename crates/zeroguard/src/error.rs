//! The socket layer's error type.

use std::io;

/// Why a socket operation failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The endpoint string could not be parsed or is not allowed here.
    #[error("invalid endpoint {endpoint:?}: {reason}")]
    InvalidEndpoint {
        /// The endpoint as given.
        endpoint: String,
        /// What is wrong with it and how to write it instead.
        reason: String,
    },
    /// An option value is out of range or inconsistent with others.
    #[error("invalid option: {0}")]
    InvalidOption(String),
    /// Binding failed (address in use, permission denied, no such interface...).
    #[error("cannot bind {endpoint}: {source}")]
    Bind {
        /// The endpoint.
        endpoint: String,
        /// The system's reason.
        source: io::Error,
    },
    /// An inproc endpoint was bound twice, or connected to with no binder.
    #[error("inproc endpoint {0:?} is already bound by another socket")]
    InprocInUse(String),
    /// The operation is not valid in the socket's current state (e.g. REQ sending twice).
    #[error("operation not valid now: {0}")]
    InvalidState(&'static str),
    /// The operation did not complete within the socket's timeout (or at once, for `try_` calls).
    #[error("operation would block (timed out or no peer ready)")]
    WouldBlock,
    /// ROUTER with mandatory routing: no peer has this routing id.
    #[error("no peer with routing id {0:?} (router mandatory is on)")]
    HostUnreachable(bytes::Bytes),
    /// The message has no frames, or a frame shape the socket type requires is missing.
    #[error("invalid message: {0}")]
    InvalidMessage(&'static str),
    /// The socket or its context was closed.
    #[error("socket is closed")]
    Closed,
    /// An endpoint given to unbind/disconnect was never bound/connected.
    #[error("endpoint {0} is not bound or connected on this socket")]
    UnknownEndpoint(String),
    /// A certificate file could not be read or is not valid.
    #[error("certificate {path}: {reason}")]
    Certificate {
        /// The file.
        path: String,
        /// What is wrong, with the line where it helps.
        reason: String,
    },
    /// The protocol core refused a call (configuration or misuse).
    #[error(transparent)]
    Protocol(#[from] zeroguard_zmtp::Error),
    /// Another I/O failure.
    #[error("I/O error: {0}")]
    Io(#[from] io::Error),
}

/// Shorthand for results of this crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;
