//! The 64-byte ZMTP 3.x greeting: building ours, validating the peer's as it arrives.
//!
//! Validation is incremental so that a ZMTP 1.0 or 2.0 peer, which sends a
//! short greeting and then waits, is refused as soon as its first bytes show
//! what it is, rather than being left to time out. Legacy versions are refused
//! outright (CVE-2014-9721), and the mechanism must match ours exactly
//! (CVE-2014-7202).

use std::fmt;

use crate::error::{lossy_name, Error};

/// Length of a ZMTP 3.x greeting.
pub const GREETING_LEN: usize = 64;

const MECHANISM_OFFSET: usize = 12;
const MECHANISM_LEN: usize = 20;
const AS_SERVER_OFFSET: usize = 32;

/// A security mechanism named in the greeting.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum MechanismKind {
    /// No security (RFC 23).
    Null,
    /// Clear-text user name and password (RFC 24).
    Plain,
    /// CurveZMQ (RFC 25/26).
    Curve,
}

impl MechanismKind {
    /// The name as sent in the greeting.
    pub fn as_str(self) -> &'static str {
        match self {
            MechanismKind::Null => "NULL",
            MechanismKind::Plain => "PLAIN",
            MechanismKind::Curve => "CURVE",
        }
    }

    /// The 20-byte, zero-padded greeting field.
    fn field(self) -> [u8; MECHANISM_LEN] {
        let mut field = [0u8; MECHANISM_LEN];
        let name = self.as_str().as_bytes();
        field[..name.len()].copy_from_slice(name);
        field
    }

    /// Whether the mechanism has distinct client and server roles.
    pub fn has_roles(self) -> bool {
        !matches!(self, MechanismKind::Null)
    }
}

impl fmt::Display for MechanismKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The ZMTP revision negotiated with a peer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
#[non_exhaustive]
pub enum Version {
    /// ZMTP 3.0 (RFC 23): subscriptions travel as messages, no heartbeats.
    V3_0,
    /// ZMTP 3.1 (RFC 37): SUBSCRIBE/CANCEL and PING/PONG commands.
    V3_1,
}

impl fmt::Display for Version {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Version::V3_0 => "3.0",
            Version::V3_1 => "3.1",
        })
    }
}

/// Builds our greeting: ZMTP 3.1, the given mechanism and role.
///
/// The padding carries the value 1 in its last byte, as libzmq's does, so a
/// peer probing for ZMTP 1.0 reads it as a versioned signature.
pub fn encode_greeting(mechanism: MechanismKind, as_server: bool) -> [u8; GREETING_LEN] {
    let mut g = [0u8; GREETING_LEN];
    g[0] = 0xFF;
    g[8] = 0x01;
    g[9] = 0x7F;
    g[10] = 3;
    g[11] = 1;
    g[MECHANISM_OFFSET..MECHANISM_OFFSET + MECHANISM_LEN].copy_from_slice(&mechanism.field());
    g[AS_SERVER_OFFSET] = u8::from(as_server);
    g
}

/// What a complete, valid peer greeting told us.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PeerGreeting {
    /// The revision both sides will speak.
    pub version: Version,
    /// Whether the peer claims the server role.
    pub as_server: bool,
}

/// Checks as much of a peer's greeting as has arrived.
///
/// Returns `Ok(None)` while fewer than 64 bytes are available and nothing
/// seen so far is wrong; `Ok(Some(_))` once the whole greeting is valid.
/// `ours` and `we_are_server` are our own mechanism and role.
pub fn check_peer_greeting(
    buf: &[u8],
    ours: MechanismKind,
    we_are_server: bool,
) -> Result<Option<PeerGreeting>, Error> {
    if let Some(&first) = buf.first() {
        if first != 0xFF {
            // A ZMTP 1.0 peer starts with the short length of its identity frame.
            return Err(Error::LegacyVersion { major: 1 });
        }
    }
    if buf.len() >= 10 && buf[9] & 0x01 == 0 {
        // ZMTP 1.0 with a long identity length: bit 0 of byte 9 is its flags byte.
        return Err(Error::LegacyVersion { major: 1 });
    }
    if buf.len() >= 11 && buf[10] < 3 {
        return Err(Error::LegacyVersion {
            major: buf[10].max(1),
        });
    }
    if buf.len() >= MECHANISM_OFFSET + MECHANISM_LEN {
        let field = &buf[MECHANISM_OFFSET..MECHANISM_OFFSET + MECHANISM_LEN];
        if field != ours.field() {
            let end = field.iter().position(|&b| b == 0).unwrap_or(MECHANISM_LEN);
            return Err(Error::MechanismMismatch {
                ours,
                theirs: lossy_name(&field[..end]),
            });
        }
    }
    if buf.len() > AS_SERVER_OFFSET {
        let as_server = match buf[AS_SERVER_OFFSET] {
            0 => false,
            1 => true,
            other => return Err(Error::BadAsServer(other)),
        };
        // libzmq 4.3 leaves as-server at 0 whatever its role, so a peer
        // claiming the client role may well be a server: only two servers
        // are a certain conflict. (Two clients fail on the first command.)
        // NULL has no roles at all.
        if ours.has_roles() && as_server && we_are_server {
            return Err(Error::RoleConflict {
                mechanism: ours,
                as_server,
            });
        }
    }
    if buf.len() < GREETING_LEN {
        return Ok(None);
    }
    // Byte 10 >= 3 here. A newer major version talks down to ours (RFC 23).
    let version = if buf[10] == 3 && buf[11] == 0 {
        Version::V3_0
    } else {
        Version::V3_1
    };
    Ok(Some(PeerGreeting {
        version,
        as_server: buf[AS_SERVER_OFFSET] == 1,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn our_greeting_layout() {
        let g = encode_greeting(MechanismKind::Plain, true);
        assert_eq!(g[0], 0xFF);
        assert_eq!(g[9], 0x7F);
        assert_eq!(&g[10..12], &[3, 1]);
        assert_eq!(&g[12..17], b"PLAIN");
        assert!(g[17..32].iter().all(|&b| b == 0));
        assert_eq!(g[32], 1);
        assert!(g[33..].iter().all(|&b| b == 0));
    }

    #[test]
    fn accepts_full_greeting_in_any_split() {
        let g = encode_greeting(MechanismKind::Null, false);
        for cut in 0..GREETING_LEN {
            assert_eq!(
                check_peer_greeting(&g[..cut], MechanismKind::Null, false),
                Ok(None)
            );
        }
        let peer = check_peer_greeting(&g, MechanismKind::Null, false)
            .unwrap()
            .unwrap();
        assert_eq!(peer.version, Version::V3_1);
    }

    #[test]
    fn zmtp_3_0_is_negotiated_down() {
        let mut g = encode_greeting(MechanismKind::Null, false);
        g[11] = 0;
        let peer = check_peer_greeting(&g, MechanismKind::Null, false)
            .unwrap()
            .unwrap();
        assert_eq!(peer.version, Version::V3_0);
        g[10] = 4;
        let peer = check_peer_greeting(&g, MechanismKind::Null, false)
            .unwrap()
            .unwrap();
        assert_eq!(peer.version, Version::V3_1);
    }

    #[test]
    fn role_conflict_is_refused_for_two_servers() {
        let g = encode_greeting(MechanismKind::Plain, true);
        assert_eq!(
            check_peer_greeting(&g, MechanismKind::Plain, true),
            Err(Error::RoleConflict {
                mechanism: MechanismKind::Plain,
                as_server: true
            })
        );
        // What a libzmq PLAIN server sends: as-server left at 0.
        let g = encode_greeting(MechanismKind::Plain, false);
        assert!(check_peer_greeting(&g, MechanismKind::Plain, false).is_ok());
        let g = encode_greeting(MechanismKind::Null, true);
        assert!(check_peer_greeting(&g, MechanismKind::Null, true).is_ok());
    }
}
