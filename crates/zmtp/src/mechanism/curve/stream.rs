//! The MESSAGE boxes of a session, made cheaper.
//!
//! A CURVE MESSAGE is a NaCl box (XSalsa20-Poly1305) under the session's
//! precomputed key, with a 24-byte nonce of a fixed 16-byte prefix
//! (`CurveZMQMESSAGEC` or `...S`) and an 8-byte counter. XSalsa20 first
//! derives a subkey from the key and the nonce's first 16 bytes (HSalsa20):
//! with a fixed prefix, that subkey is the same for every message of one
//! direction, so it is derived once per session here rather than once per
//! message, and each box is then plain Salsa20 under it (`salsa`, eight
//! blocks at a time) with a Poly1305 MAC (`poly1305`, four blocks a step). Opening
//! checks the MAC before decrypting. The result is byte for byte what
//! `crypto_box` produces (see the tests).
//!
//! Built with `--cfg fuzzing`, boxes are transparent, as in `crypto`.

#[cfg(not(fuzzing))]
use super::poly1305;
use zeroize::Zeroizing;

#[cfg(not(fuzzing))]
use super::salsa::{first_blocks, key_words, Keystream, BLOCK, EIGHT};

use super::crypto::TAG_LEN;

/// HSalsa20: a 32-byte subkey from a key and 16 bytes of nonce.
pub(crate) fn hsalsa20(key: &[u8; 32], input: &[u8; 16]) -> Zeroizing<[u8; 32]> {
    let out = salsa20::hsalsa::<salsa20::cipher::consts::U10>(key.into(), input.into());
    let mut subkey = Zeroizing::new([0u8; 32]);
    subkey.copy_from_slice(&out);
    subkey
}

/// One direction of a session: the subkey for its nonce prefix.
pub(crate) struct MessageStream {
    /// The subkey as the words Salsa20 reads.
    #[cfg(not(fuzzing))]
    subkey: Zeroizing<[u32; 8]>,
    /// Block 0 of the keystreams of the eight nonces from `ahead_from` on
    /// (see [`MessageStream::keystream`]).
    #[cfg(not(fuzzing))]
    ahead: Zeroizing<[u8; EIGHT]>,
    #[cfg(not(fuzzing))]
    ahead_from: u64,
    /// The first block of `ahead` not used yet (8: none left).
    #[cfg(not(fuzzing))]
    ahead_next: usize,
    /// The nonce of the last box sealed or opened.
    #[cfg(not(fuzzing))]
    last: Option<u64>,
}

impl MessageStream {
    /// The stream for `prefix` under the session key `key` (`crypto_box_beforenm`).
    pub(crate) fn new(key: &[u8; 32], prefix: &[u8; 16]) -> MessageStream {
        let subkey = hsalsa20(key, prefix);
        #[cfg(fuzzing)]
        let _ = subkey;
        MessageStream {
            #[cfg(not(fuzzing))]
            subkey: key_words(&subkey),
            #[cfg(not(fuzzing))]
            ahead: Zeroizing::new([0u8; EIGHT]),
            #[cfg(not(fuzzing))]
            ahead_from: 0,
            #[cfg(not(fuzzing))]
            ahead_next: 8,
            #[cfg(not(fuzzing))]
            last: None,
        }
    }

    /// The keystream of the box under `counter`. Its block 0 (the MAC key
    /// and the first 32 bytes, all a 16-byte message needs) is the one
    /// Salsa20 block of a small box, and computed alone it was a quarter
    /// of a CURVE receiver's time at 16 B. Each side counts its nonces
    /// up by one (libzmq does), so once a box follows the one before, the
    /// block 0s of it and the next seven are computed together, in vector
    /// lanes, for about the price of one; a used block is wiped. Boxes
    /// whose nonces skip take one block each, so a peer counting some
    /// other way costs no more than before.
    #[cfg(not(fuzzing))]
    fn keystream(&mut self, counter: &[u8; 8]) -> Keystream<'_> {
        let n = u64::from_be_bytes(*counter);
        let follows = self.last.is_some_and(|last| last.checked_add(1) == Some(n));
        self.last = Some(n);
        let mut index = n
            .checked_sub(self.ahead_from)
            .and_then(|i| usize::try_from(i).ok())
            .filter(|&i| i >= self.ahead_next && i < 8);
        if index.is_none() && follows && n.checked_add(7).is_some() {
            first_blocks(&self.subkey, n, &mut self.ahead);
            self.ahead_from = n;
            index = Some(0);
        }
        match index {
            Some(i) => {
                // Used once: a nonce seen again (a box that failed to
                // open, say) computes its own.
                self.ahead_next = i + 1;
                let block = &mut self.ahead[i * BLOCK..][..BLOCK];
                let keystream = Keystream::with_first(&self.subkey, counter, block);
                block.fill(0);
                keystream
            }
            None => Keystream::new(&self.subkey, counter),
        }
    }

    /// Encrypts `buf` in place under the nonce `prefix || counter`; returns the tag.
    #[cfg(not(fuzzing))]
    pub(crate) fn seal(&mut self, counter: &[u8; 8], buf: &mut [u8]) -> [u8; TAG_LEN] {
        let keystream = self.keystream(counter);
        keystream.apply(buf);
        poly1305::tag(keystream.poly1305_key(), buf)
    }

    /// Decrypts `buf` in place if `tag` authenticates it (checked first,
    /// in constant time); on failure `buf` is left as it was.
    #[cfg(not(fuzzing))]
    pub(crate) fn open(&mut self, counter: &[u8; 8], buf: &mut [u8], tag: &[u8]) -> bool {
        use subtle::ConstantTimeEq;
        let keystream = self.keystream(counter);
        let expected = poly1305::tag(keystream.poly1305_key(), buf);
        // One comparison of the whole tag: compared byte by byte, each
        // byte's result passed through an optimisation barrier of its own,
        // 4 % of a CURVE receiver's time at 16 B.
        let Ok(tag) = <[u8; TAG_LEN]>::try_from(tag) else {
            return false;
        };
        if !bool::from(u128::from_le_bytes(expected).ct_eq(&u128::from_le_bytes(tag))) {
            return false;
        }
        keystream.apply(buf);
        true
    }

    /// Fuzz build: the box is transparent, its tag zero.
    #[cfg(fuzzing)]
    pub(crate) fn seal(&mut self, _: &[u8; 8], _: &mut [u8]) -> [u8; TAG_LEN] {
        [0u8; TAG_LEN]
    }

    /// Fuzz build: a zero tag authenticates.
    #[cfg(fuzzing)]
    pub(crate) fn open(&mut self, _: &[u8; 8], _: &mut [u8], tag: &[u8]) -> bool {
        tag.iter().all(|&b| b == 0)
    }
}

#[cfg(all(test, not(fuzzing)))]
mod tests {
    use super::*;
    use crypto_box::aead::AeadInPlace;
    use crypto_secretbox::KeyInit;

    #[test]
    fn hsalsa20_matches_the_reference_vector() {
        // NaCl's test vector (core3 / firstkey): HSalsa20 of the shared
        // secret of the reference key pairs with a zero input.
        let shared: [u8; 32] = [
            0x4a, 0x5d, 0x9d, 0x5b, 0xa4, 0xce, 0x2d, 0xe1, 0x72, 0x8e, 0x3b, 0xf4, 0x80, 0x35,
            0x0f, 0x25, 0xe0, 0x7e, 0x21, 0xc9, 0x47, 0xd1, 0x9e, 0x33, 0x76, 0xf0, 0x9b, 0x3c,
            0x1e, 0x16, 0x17, 0x42,
        ];
        let expected: [u8; 32] = [
            0x1b, 0x27, 0x55, 0x64, 0x73, 0xe9, 0x85, 0xd4, 0x62, 0xcd, 0x51, 0x19, 0x7a, 0x9a,
            0x46, 0xc7, 0x60, 0x09, 0x54, 0x9e, 0xac, 0x64, 0x74, 0xf2, 0x06, 0xc4, 0xee, 0x08,
            0x44, 0xf6, 0x83, 0x89,
        ];
        assert_eq!(*hsalsa20(&shared, &[0u8; 16]), expected);
    }

    #[test]
    fn boxes_in_a_row_are_those_of_crypto_box() {
        // Nonces counting up by one take block 0 from the eight computed
        // together; runs broken by skips, a restart lower down and the
        // end of the counter's range take it alone. Every box must still
        // be crypto_box's, and open to its plaintext.
        let mut next = super::super::test_values(0x0bad_cafe_f00d_u64);
        let key: [u8; 32] = core::array::from_fn(|_| next().to_le_bytes()[0]);
        let prefix = b"CurveZMQMESSAGES";
        let reference = crypto_secretbox::XSalsa20Poly1305::new((&key).into());
        let mut sender = MessageStream::new(&key, prefix);
        let mut receiver = MessageStream::new(&key, prefix);
        let counters = (1u64..30)
            .chain([31, 32, 33, 40, 41])
            .chain(5..20)
            .chain(u64::MAX - 10..u64::MAX);
        for (i, counter) in counters.enumerate() {
            let len = [0, 1, 16, 31, 32, 33, 100, 600][i % 8];
            let plain: Vec<u8> = (0..len).map(|_| next().to_le_bytes()[0]).collect();
            let mut nonce = [0u8; 24];
            nonce[..16].copy_from_slice(prefix);
            nonce[16..].copy_from_slice(&counter.to_be_bytes());
            let mut theirs = plain.clone();
            let their_tag = reference
                .encrypt_in_place_detached((&nonce).into(), b"", &mut theirs)
                .unwrap_or_else(|_| panic!("reference refused {len} bytes"));

            let mut ours = plain.clone();
            let our_tag = sender.seal(&counter.to_be_bytes(), &mut ours);
            assert_eq!(ours, theirs, "ciphertext differs at nonce {counter}");
            assert_eq!(
                &our_tag[..],
                &their_tag[..],
                "tag differs at nonce {counter}"
            );
            if i % 5 == 4 {
                // A forgery under the next nonce is refused, and the box
                // that really has that nonce still opens after it.
                let mut forged = theirs.clone();
                let mut bad_tag = our_tag;
                bad_tag[i % TAG_LEN] ^= 1;
                assert!(!receiver.open(&counter.to_be_bytes(), &mut forged, &bad_tag));
            }
            assert!(receiver.open(&counter.to_be_bytes(), &mut ours, &our_tag));
            assert_eq!(ours, plain, "opened at nonce {counter}");
        }
    }

    #[test]
    fn boxes_are_byte_for_byte_those_of_crypto_box() {
        let mut next = super::super::test_values(0x1234_5678_9abc_def0u64);
        for len in (0..600).chain([1000, 4095, 4096, 4097, 65536]) {
            let mut key = [0u8; 32];
            key.iter_mut().for_each(|b| *b = next().to_le_bytes()[0]);
            let prefix = if len % 2 == 0 {
                b"CurveZMQMESSAGEC"
            } else {
                b"CurveZMQMESSAGES"
            };
            let counter = next().to_be_bytes();
            let mut nonce = [0u8; 24];
            nonce[..16].copy_from_slice(prefix);
            nonce[16..].copy_from_slice(&counter);
            let plain: Vec<u8> = (0..len).map(|_| next().to_le_bytes()[0]).collect();

            let reference = crypto_secretbox::XSalsa20Poly1305::new((&key).into());
            let mut theirs = plain.clone();
            let their_tag = reference
                .encrypt_in_place_detached((&nonce).into(), b"", &mut theirs)
                .unwrap_or_else(|_| panic!("reference refused {len} bytes"));

            let mut stream = MessageStream::new(&key, prefix);
            let mut ours = plain.clone();
            let our_tag = stream.seal(&counter, &mut ours);
            assert_eq!(ours, theirs, "ciphertext differs at {len} bytes");
            assert_eq!(&our_tag[..], &their_tag[..], "tag differs at {len} bytes");

            assert!(stream.open(&counter, &mut ours, &our_tag));
            assert_eq!(ours, plain);
            if len > 0 {
                let mut tampered = theirs.clone();
                tampered[len / 2] ^= 1;
                let before = tampered.clone();
                assert!(!stream.open(&counter, &mut tampered, &our_tag));
                assert_eq!(tampered, before, "a refused box was modified");
            }
            let mut wrong_tag = our_tag;
            wrong_tag[0] ^= 0x80;
            assert!(!stream.open(&counter, &mut theirs.clone(), &wrong_tag));
        }
    }
}
