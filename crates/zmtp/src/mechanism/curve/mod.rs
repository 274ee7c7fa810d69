//! CurveZMQ (RFC 25/26): long-term keys, the client and server handshakes,
//! and the MESSAGE cipher of an established session.
//!
//! What is checked, and why:
//! - the server's long-term key is pinned by the client: a WELCOME that does
//!   not open with it fails the handshake (an impostor learns nothing);
//! - the cookie and the vouch are opened and compared with what the server
//!   holds, in constant time;
//! - short nonces strictly increase in each direction, across the handshake
//!   and every MESSAGE, so nothing can be replayed (CVE-2014-7203);
//! - INITIATE's size is bounded by the handshake command limit before its
//!   box is opened, and its metadata parsed with every length checked
//!   (CVE-2019-13132).

use std::fmt;

use zeroize::Zeroizing;

use crate::z85::{self, Z85Error};

pub(crate) mod cipher;
pub(crate) mod client;
pub(crate) mod crypto;
#[cfg(not(fuzzing))]
mod poly1305;
#[cfg(not(fuzzing))]
mod salsa;
pub(crate) mod server;
pub(crate) mod stream;

/// A long-term CURVE key pair. The secret half is wiped from memory when
/// dropped and never shown by `Debug`.
#[derive(Clone)]
pub struct CurveKeyPair {
    public: [u8; 32],
    secret: Zeroizing<[u8; 32]>,
}

impl fmt::Debug for CurveKeyPair {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CurveKeyPair")
            .field("public", &self.public_z85())
            .field("secret", &"<redacted>")
            .finish()
    }
}

impl PartialEq for CurveKeyPair {
    fn eq(&self, other: &Self) -> bool {
        use subtle::ConstantTimeEq;
        self.public == other.public && bool::from(self.secret[..].ct_eq(&other.secret[..]))
    }
}

impl Eq for CurveKeyPair {}

impl CurveKeyPair {
    /// A new random key pair.
    pub fn generate() -> CurveKeyPair {
        CurveKeyPair::from_secret(*crypto::generate_secret())
    }

    /// The key pair of a secret key.
    pub fn from_secret(secret: [u8; 32]) -> CurveKeyPair {
        let secret = Zeroizing::new(secret);
        CurveKeyPair {
            public: crypto::public_of(&secret),
            secret,
        }
    }

    /// Reads a key pair from its Z85 forms (40 characters each), checking
    /// that the public key belongs to the secret key.
    pub fn from_z85(public: &str, secret: &str) -> Result<CurveKeyPair, Z85Error> {
        let secret = Zeroizing::new(z85::decode_key(secret)?);
        let pair = CurveKeyPair::from_secret(*secret);
        if z85::decode_key(public)? != pair.public {
            return Err(Z85Error::KeyMismatch);
        }
        Ok(pair)
    }

    /// The public key.
    pub fn public(&self) -> &[u8; 32] {
        &self.public
    }

    /// The public key in Z85 (40 characters).
    pub fn public_z85(&self) -> String {
        z85::encode(&self.public).unwrap_or_default()
    }

    /// The secret key in Z85, wiped on drop. Handle with care.
    pub fn secret_z85(&self) -> Zeroizing<String> {
        Zeroizing::new(z85::encode(&self.secret[..]).unwrap_or_default())
    }

    pub(crate) fn secret(&self) -> &[u8; 32] {
        &self.secret
    }
}

/// A deterministic stream of test values (xorshift64) for the cipher tests.
#[cfg(all(test, not(fuzzing)))]
pub(crate) fn test_values(mut seed: u64) -> impl FnMut() -> u64 {
    move || {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        seed
    }
}
