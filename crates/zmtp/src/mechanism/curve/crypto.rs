//! The NaCl primitives CurveZMQ is made of, from RustCrypto: `crypto_box`
//! (X25519 + XSalsa20-Poly1305) and `crypto_secretbox` for the cookie.
//!
//! Boxes are laid out as NaCl lays them on the wire: the 16-byte
//! Poly1305 tag first, then the ciphertext. Sealing writes straight into
//! the caller's buffer, with no intermediate allocation.
//!
//! Built with `--cfg fuzzing` (only cargo-fuzz sets it) a box is transparent:
//! a zero tag followed by the plaintext. The fuzzer can then build valid
//! handshakes and reach the parsing that follows decryption, which real
//! MACs would hide from it. Randomness is then deterministic too.

use bytes::{BufMut, BytesMut};
use crypto_box::aead::consts::U24;
use crypto_box::aead::{AeadCore, AeadInPlace, KeyInit};

/// Both NaCl boxes are XSalsa20-Poly1305: 24-byte nonces.
trait NaclBox: AeadInPlace + AeadCore<NonceSize = U24> {}
impl<T: AeadInPlace + AeadCore<NonceSize = U24>> NaclBox for T {}
use crypto_box::SecretKey;
use crypto_secretbox::XSalsa20Poly1305;
use zeroize::Zeroizing;

/// Bytes of the Poly1305 tag in front of every box.
pub(crate) const TAG_LEN: usize = 16;

/// Encrypts `buf` in place; returns the tag.
#[cfg(not(fuzzing))]
fn seal_in_place(cipher: &impl NaclBox, nonce: &[u8; 24], buf: &mut [u8]) -> [u8; TAG_LEN] {
    let mut tag = [0u8; TAG_LEN];
    // Cannot fail: XSalsa20-Poly1305 accepts any length a buffer can have.
    if let Ok(t) = cipher.encrypt_in_place_detached(nonce.into(), b"", buf) {
        tag.copy_from_slice(&t);
    }
    tag
}

/// Decrypts `buf` in place if `tag` authenticates it.
#[cfg(not(fuzzing))]
fn open_in_place(cipher: &impl NaclBox, nonce: &[u8; 24], buf: &mut [u8], tag: &[u8]) -> bool {
    cipher
        .decrypt_in_place_detached(nonce.into(), b"", buf, tag.into())
        .is_ok()
}

/// Fuzz build: the box is transparent, its tag zero.
#[cfg(fuzzing)]
fn seal_in_place(_: &impl NaclBox, _: &[u8; 24], _: &mut [u8]) -> [u8; TAG_LEN] {
    [0u8; TAG_LEN]
}

/// Fuzz build: a zero tag authenticates.
#[cfg(fuzzing)]
fn open_in_place(_: &impl NaclBox, _: &[u8; 24], _: &mut [u8], tag: &[u8]) -> bool {
    tag.iter().all(|&b| b == 0)
}

/// Fills `buf` with random bytes.
pub(crate) fn random_bytes(buf: &mut [u8]) {
    #[cfg(not(fuzzing))]
    {
        use crypto_box::aead::rand_core::RngCore;
        crypto_box::aead::OsRng.fill_bytes(buf);
    }
    #[cfg(fuzzing)]
    {
        for (i, b) in buf.iter_mut().enumerate() {
            *b = (i as u8).wrapping_mul(31).wrapping_add(7);
        }
    }
}

/// A fresh secret key.
pub(crate) fn generate_secret() -> Zeroizing<[u8; 32]> {
    let mut secret = Zeroizing::new([0u8; 32]);
    random_bytes(&mut secret[..]);
    secret
}

/// The public key of a secret key.
pub(crate) fn public_of(secret: &[u8; 32]) -> [u8; 32] {
    *SecretKey::from(*secret).public_key().as_bytes()
}

/// A box between two keys with the shared secret computed once
/// (`crypto_box_beforenm`: X25519, then HSalsa20), as used for the
/// handshake's boxes and, through [`stream`](SessionBox::stream), for every
/// MESSAGE of a session.
pub(crate) struct SessionBox {
    inner: XSalsa20Poly1305,
    /// The precomputed key, for the session's MESSAGE streams.
    key: Zeroizing<[u8; 32]>,
}

impl SessionBox {
    pub(crate) fn new(their_public: &[u8; 32], our_secret: &[u8; 32]) -> SessionBox {
        let shared = Zeroizing::new(
            curve25519_dalek::montgomery::MontgomeryPoint(*their_public)
                .mul_clamped(*our_secret)
                .to_bytes(),
        );
        let key = super::stream::hsalsa20(&shared, &[0u8; 16]);
        SessionBox {
            inner: XSalsa20Poly1305::new((&*key).into()),
            key,
        }
    }

    /// The MESSAGE stream of one direction (its nonce prefix).
    pub(crate) fn stream(&self, prefix: &[u8; 16]) -> super::stream::MessageStream {
        super::stream::MessageStream::new(&self.key, prefix)
    }

    /// Appends `tag || ciphertext` of `parts` (concatenated) to `out`.
    pub(crate) fn seal(&self, nonce: &[u8; 24], parts: &[&[u8]], out: &mut BytesMut) {
        append_sealed(out, parts, |buf| seal_in_place(&self.inner, nonce, buf));
    }

    /// Opens `tag || ciphertext`; `None` if it was not sealed with this key and nonce.
    pub(crate) fn open(&self, nonce: &[u8; 24], boxed: &[u8]) -> Option<Vec<u8>> {
        if boxed.len() < TAG_LEN {
            return None;
        }
        let (tag, ciphertext) = boxed.split_at(TAG_LEN);
        let mut plain = ciphertext.to_vec();
        open_in_place(&self.inner, nonce, &mut plain, tag).then_some(plain)
    }
}

/// One box, sealed without keeping the shared secret.
pub(crate) fn seal(
    their_public: &[u8; 32],
    our_secret: &[u8; 32],
    nonce: &[u8; 24],
    parts: &[&[u8]],
) -> BytesMut {
    let mut out = BytesMut::new();
    SessionBox::new(their_public, our_secret).seal(nonce, parts, &mut out);
    out
}

/// Opens one box.
pub(crate) fn open(
    their_public: &[u8; 32],
    our_secret: &[u8; 32],
    nonce: &[u8; 24],
    boxed: &[u8],
) -> Option<Vec<u8>> {
    SessionBox::new(their_public, our_secret).open(nonce, boxed)
}

/// `crypto_secretbox` with `key`: appends `tag || ciphertext` to `out`.
pub(crate) fn secretbox_seal(
    key: &[u8; 32],
    nonce: &[u8; 24],
    plaintext: &[u8],
    out: &mut BytesMut,
) {
    let cipher = XSalsa20Poly1305::new(key.into());
    append_sealed(out, &[plaintext], |buf| seal_in_place(&cipher, nonce, buf));
}

/// Appends `tag || ciphertext` of `parts` (concatenated) to `out`, the
/// plaintext copied once and encrypted in place by `seal`, which returns
/// the tag.
pub(crate) fn append_sealed(
    out: &mut BytesMut,
    parts: &[&[u8]],
    seal: impl FnOnce(&mut [u8]) -> [u8; TAG_LEN],
) {
    let start = out.len();
    let len: usize = parts.iter().map(|p| p.len()).sum();
    out.reserve(TAG_LEN + len);
    out.put_bytes(0, TAG_LEN);
    for p in parts {
        out.put_slice(p);
    }
    let tag = seal(&mut out[start + TAG_LEN..]);
    out[start..start + TAG_LEN].copy_from_slice(&tag);
}

/// Opens a `crypto_secretbox`.
pub(crate) fn secretbox_open(
    key: &[u8; 32],
    nonce: &[u8; 24],
    boxed: &[u8],
) -> Option<Zeroizing<Vec<u8>>> {
    if boxed.len() < TAG_LEN {
        return None;
    }
    let (tag, ciphertext) = boxed.split_at(TAG_LEN);
    let mut plain = Zeroizing::new(ciphertext.to_vec());
    let cipher = XSalsa20Poly1305::new(key.into());
    open_in_place(&cipher, nonce, &mut plain, tag).then_some(plain)
}

/// A 24-byte nonce: a 16- or 8-byte label followed by the rest.
pub(crate) fn nonce(prefix: &[u8], rest: &[u8]) -> [u8; 24] {
    let mut n = [0u8; 24];
    n[..prefix.len()].copy_from_slice(prefix);
    n[prefix.len()..prefix.len() + rest.len()].copy_from_slice(rest);
    n
}

#[cfg(all(test, not(fuzzing)))]
mod tests {
    use super::*;

    #[test]
    fn box_round_trip_and_tamper_detection() {
        let (a, b) = (generate_secret(), generate_secret());
        let (pa, pb) = (public_of(&a), public_of(&b));
        let n = nonce(b"CurveZMQMESSAGEC", &7u64.to_be_bytes());
        let sealed = seal(&pb, &a, &n, &[b"hello ", b"world"]);
        assert_eq!(sealed.len(), TAG_LEN + 11);
        assert_eq!(open(&pa, &b, &n, &sealed).unwrap(), b"hello world");
        let mut flipped = sealed.to_vec();
        flipped[TAG_LEN] ^= 1;
        assert!(open(&pa, &b, &n, &flipped).is_none());
        let other = nonce(b"CurveZMQMESSAGEC", &8u64.to_be_bytes());
        assert!(open(&pa, &b, &other, &sealed).is_none());
    }

    #[test]
    fn secretbox_round_trip() {
        let key = [9u8; 32];
        let n = nonce(b"COOKIE--", &[1u8; 16]);
        let mut out = BytesMut::new();
        secretbox_seal(&key, &n, &[5u8; 64], &mut out);
        assert_eq!(out.len(), 80);
        assert_eq!(&secretbox_open(&key, &n, &out).unwrap()[..], &[5u8; 64][..]);
        assert!(secretbox_open(&[8u8; 32], &n, &out).is_none());
    }

    #[test]
    fn public_key_derivation_matches_x25519() {
        // RFC 7748 section 6.1 test vector.
        let alice_secret: [u8; 32] = [
            0x77, 0x07, 0x6d, 0x0a, 0x73, 0x18, 0xa5, 0x7d, 0x3c, 0x16, 0xc1, 0x72, 0x51, 0xb2,
            0x66, 0x45, 0xdf, 0x4c, 0x2f, 0x87, 0xeb, 0xc0, 0x99, 0x2a, 0xb1, 0x77, 0xfb, 0xa5,
            0x1d, 0xb9, 0x2c, 0x2a,
        ];
        let alice_public: [u8; 32] = [
            0x85, 0x20, 0xf0, 0x09, 0x89, 0x30, 0xa7, 0x54, 0x74, 0x8b, 0x7d, 0xdc, 0xb4, 0x3e,
            0xf7, 0x5a, 0x0d, 0xbf, 0x3a, 0x0d, 0x26, 0x38, 0x1a, 0xf4, 0xeb, 0xa4, 0xa9, 0x8e,
            0xaa, 0x9b, 0x4e, 0x6a,
        ];
        assert_eq!(public_of(&alice_secret), alice_public);
    }
}
