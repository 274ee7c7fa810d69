//! Security configuration: the mechanism a socket speaks and, for servers,
//! who judges the peers.

use std::fmt;
use std::net::IpAddr;
use std::sync::Arc;

use bytes::Bytes;
use zeroguard_zmtp::{AuthDecision, Credentials, CurveKeyPair, MechanismConfig, MechanismKind};

use crate::error::Error;

/// What an authenticator is told about a peer.
#[derive(Debug, Clone)]
pub struct AuthContext {
    /// The mechanism in use.
    pub mechanism: MechanismKind,
    /// What the peer presented.
    pub credentials: Credentials,
    /// The peer's IP address (TCP only).
    pub address: Option<IpAddr>,
    /// The endpoint the connection came through.
    pub endpoint: String,
}

/// Decides whether a peer may connect.
pub trait Authenticator: Send + Sync {
    /// Judges one peer.
    fn authenticate(&self, peer: &AuthContext) -> AuthDecision;

    /// Whether `authenticate` may wait (on a handler, a file server...).
    /// Such authenticators run on a pool of blocking threads instead of an
    /// I/O thread, so other connections are not held up meanwhile.
    fn may_block(&self) -> bool {
        false
    }
}

impl<F> Authenticator for F
where
    F: Fn(&AuthContext) -> AuthDecision + Send + Sync,
{
    fn authenticate(&self, peer: &AuthContext) -> AuthDecision {
        self(peer)
    }
}

/// A socket's security, chosen as one value when the socket is built.
#[derive(Clone, Default)]
#[non_exhaustive]
pub enum Security {
    /// No authentication, no encryption. Refused on non-loopback TCP unless
    /// `allow_plaintext` is set.
    #[default]
    Null,
    /// NULL with every peer judged by an authenticator (by address).
    NullAuthenticated(Arc<dyn Authenticator>),
    /// PLAIN client (clear-text credentials).
    PlainClient {
        /// User name, at most 255 bytes.
        username: Bytes,
        /// Password, at most 255 bytes; wiped on drop.
        password: zeroize::Zeroizing<Vec<u8>>,
    },
    /// PLAIN server: every client's credentials go to the authenticator.
    PlainServer(Arc<dyn Authenticator>),
    /// CURVE client: encrypts everything and talks only to the server whose
    /// public key is pinned here.
    CurveClient {
        /// Our long-term key pair.
        keys: CurveKeyPair,
        /// The server's long-term public key.
        server_key: [u8; 32],
    },
    /// CURVE server. The authenticator judges every client's long-term key:
    /// there is no CURVE server without one (see [`Security::curve_server_allow_any`]).
    CurveServer {
        /// Our long-term key pair.
        keys: CurveKeyPair,
        /// Who judges the clients.
        authenticator: Arc<dyn Authenticator>,
    },
}

/// Admits every peer. Only reachable through names that say so.
struct AllowAny;

impl Authenticator for AllowAny {
    fn authenticate(&self, _: &AuthContext) -> AuthDecision {
        AuthDecision::accept()
    }
}

impl fmt::Debug for Security {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Security::Null => f.write_str("Null"),
            Security::NullAuthenticated(_) => f.write_str("NullAuthenticated"),
            Security::PlainClient { username, .. } => f
                .debug_struct("PlainClient")
                .field("username", &String::from_utf8_lossy(username))
                .field("password", &"<redacted>")
                .finish(),
            Security::PlainServer(_) => f.write_str("PlainServer"),
            Security::CurveClient { keys, server_key } => f
                .debug_struct("CurveClient")
                .field("keys", keys)
                .field(
                    "server_key",
                    &zeroguard_zmtp::z85::encode(server_key).unwrap_or_default(),
                )
                .finish(),
            Security::CurveServer { keys, .. } => f
                .debug_struct("CurveServer")
                .field("keys", keys)
                .finish_non_exhaustive(),
        }
    }
}

impl Security {
    /// NULL security.
    pub fn null() -> Security {
        Security::Null
    }

    /// A PLAIN client.
    pub fn plain_client(username: impl Into<Bytes>, password: impl AsRef<[u8]>) -> Security {
        Security::PlainClient {
            username: username.into(),
            password: zeroize::Zeroizing::new(password.as_ref().to_vec()),
        }
    }

    /// A PLAIN server judging clients with `authenticator`.
    pub fn plain_server(authenticator: impl Authenticator + 'static) -> Security {
        Security::PlainServer(Arc::new(authenticator))
    }

    /// A CURVE client talking only to the server with public key `server_key`.
    pub fn curve_client(keys: CurveKeyPair, server_key: [u8; 32]) -> Security {
        Security::CurveClient { keys, server_key }
    }

    /// A CURVE server admitting the clients `authenticator` accepts.
    ///
    /// ```
    /// use zeroguard::{AuthContext, AuthDecision, Context, Credentials, CurveKeyPair, Push, Pull};
    /// use zeroguard::{Security, Socket, SocketOptions};
    ///
    /// let ctx = Context::new()?;
    /// let (server_keys, client_keys) = (CurveKeyPair::generate(), CurveKeyPair::generate());
    /// let admitted = *client_keys.public();
    /// let server = SocketOptions {
    ///     security: Security::curve_server(server_keys.clone(), move |peer: &AuthContext| match peer.credentials {
    ///         Credentials::Curve { public_key } if public_key == admitted => AuthDecision::accept(),
    ///         _ => AuthDecision::refuse("unknown key"),
    ///     }),
    ///     ..SocketOptions::default()
    /// };
    /// let pull = Socket::<Pull>::with_options(&ctx, server)?;
    /// let endpoint = pull.bind("tcp://127.0.0.1:0")?;
    /// let client = SocketOptions {
    ///     security: Security::curve_client(client_keys, *server_keys.public()),
    ///     ..SocketOptions::default()
    /// };
    /// let push = Socket::<Push>::with_options(&ctx, client)?;
    /// push.connect(&endpoint)?;
    /// push.send("encrypted")?;
    /// assert_eq!(pull.recv()?.frames()[0], "encrypted");
    /// # Ok::<(), zeroguard::Error>(())
    /// ```
    pub fn curve_server(
        keys: CurveKeyPair,
        authenticator: impl Authenticator + 'static,
    ) -> Security {
        Security::CurveServer {
            keys,
            authenticator: Arc::new(authenticator),
        }
    }

    /// A CURVE server that encrypts but admits any client key. This is what
    /// libzmq does without a ZAP handler; here it has to be asked for by name.
    pub fn curve_server_allow_any(keys: CurveKeyPair) -> Security {
        Security::CurveServer {
            keys,
            authenticator: Arc::new(AllowAny),
        }
    }

    /// The mechanism.
    pub fn mechanism(&self) -> MechanismKind {
        match self {
            Security::Null | Security::NullAuthenticated(_) => MechanismKind::Null,
            Security::PlainClient { .. } | Security::PlainServer(_) => MechanismKind::Plain,
            Security::CurveClient { .. } | Security::CurveServer { .. } => MechanismKind::Curve,
        }
    }

    /// Whether traffic is readable by anyone on the path.
    pub fn is_plaintext(&self) -> bool {
        matches!(self.mechanism(), MechanismKind::Null | MechanismKind::Plain)
    }

    pub(crate) fn authenticator(&self) -> Option<&Arc<dyn Authenticator>> {
        match self {
            Security::NullAuthenticated(a) | Security::PlainServer(a) => Some(a),
            Security::CurveServer { authenticator, .. } => Some(authenticator),
            _ => None,
        }
    }

    pub(crate) fn validate(&self) -> Result<(), Error> {
        if let Security::PlainClient { username, password } = self {
            if username.len() > 255 || password.len() > 255 {
                return Err(Error::InvalidOption(
                    "PLAIN user name and password must each be at most 255 bytes".into(),
                ));
            }
        }
        Ok(())
    }

    pub(crate) fn mechanism_config(&self) -> MechanismConfig {
        match self {
            Security::Null => MechanismConfig::Null {
                authenticate: false,
            },
            Security::NullAuthenticated(_) => MechanismConfig::Null { authenticate: true },
            Security::PlainClient { username, password } => MechanismConfig::PlainClient {
                username: username.clone(),
                password: password.clone(),
            },
            Security::PlainServer(_) => MechanismConfig::PlainServer,
            Security::CurveClient { keys, server_key } => MechanismConfig::CurveClient {
                keys: keys.clone(),
                server_key: *server_key,
            },
            Security::CurveServer { keys, .. } => {
                MechanismConfig::CurveServer { keys: keys.clone() }
            }
        }
    }
}
