//! The Salsa20/20 keystream of a MESSAGE box, eight blocks at a time.
//!
//! RustCrypto's `salsa20` computes one 64-byte block after another with
//! scalar code; at 4 KiB the keystream was then 45 % of a CURVE peer's
//! time. Here consecutive blocks are computed side by side, block `i` in
//! lane `i` of vectors (`wide`): eight lanes as two 128-bit SSE2 vectors on
//! baseline x86-64 (about 1.8× the scalar speed: the two halves keep the
//! core busier than one), one 256-bit vector where the build enables AVX2
//! (`-C target-cpu=...`, about 3.5×), NEON on AArch64, plain arrays
//! elsewhere. Shorter tails take four lanes or one block on plain `u32`,
//! with the same rounds. The output is checked byte for byte against
//! `salsa20` in the tests, and the boxes built on it against `crypto_box`.
//!
//! A NaCl box takes block 0's first 32 bytes as the one-time Poly1305 key
//! and encrypts with the keystream from byte 32 on, so [`Keystream`] keeps
//! block 0 (zeroized when dropped: it holds the MAC key) and starts the
//! message there. Keystream past the MAC key is not wiped: it reveals only
//! its own message, which is in the same memory as plaintext, and wiping
//! byte by byte cost more than computing it for small messages.

use wide::{u32x4, u32x8};
use zeroize::Zeroizing;

/// Salsa20's constant words ("expand 32-byte k").
const SIGMA: [u32; 4] = [0x6170_7865, 0x3320_646e, 0x7962_2d32, 0x6b20_6574];
/// Bytes of one keystream block.
const BLOCK: usize = 64;
/// Bytes of the eight blocks computed together.
const EIGHT: usize = 8 * BLOCK;
/// Bytes of four blocks, computed together for shorter tails.
const FOUR: usize = 4 * BLOCK;

/// One 32-bit word of the state, in one block or in several at once.
trait Lane: Copy {
    /// The word with the same value in every lane.
    fn splat(word: u32) -> Self;
    /// Salsa20's step: `self ^ ((a + b) <<< r)`.
    fn step(self, a: Self, b: Self, r: u32) -> Self;
    /// Lane-wise wrapping addition.
    fn add(self, other: Self) -> Self;
}

impl Lane for u32 {
    #[inline(always)]
    fn splat(word: u32) -> u32 {
        word
    }
    #[inline(always)]
    fn step(self, a: u32, b: u32, r: u32) -> u32 {
        self ^ a.wrapping_add(b).rotate_left(r)
    }
    #[inline(always)]
    fn add(self, other: u32) -> u32 {
        self.wrapping_add(other)
    }
}

/// The initial state for `key` and `nonce`, with the block counter words given.
#[inline(always)]
fn initial<L: Lane>(key: &[u32; 8], nonce: &[u32; 2], counter_lo: L, counter_hi: L) -> [L; 16] {
    let s = L::splat;
    [
        s(SIGMA[0]),
        s(key[0]),
        s(key[1]),
        s(key[2]),
        s(key[3]),
        s(SIGMA[1]),
        s(nonce[0]),
        s(nonce[1]),
        counter_lo,
        counter_hi,
        s(SIGMA[2]),
        s(key[4]),
        s(key[5]),
        s(key[6]),
        s(key[7]),
        s(SIGMA[3]),
    ]
}

/// Salsa20/20: ten double rounds, then the input added back.
#[inline(always)]
fn core<L: Lane>(input: &[L; 16]) -> [L; 16] {
    // Locals rather than an indexed array keep the state in registers.
    let [mut x0, mut x1, mut x2, mut x3, mut x4, mut x5, mut x6, mut x7, mut x8, mut x9, mut x10, mut x11, mut x12, mut x13, mut x14, mut x15] =
        *input;
    for _ in 0..10 {
        // Column round.
        x4 = x4.step(x0, x12, 7);
        x8 = x8.step(x4, x0, 9);
        x12 = x12.step(x8, x4, 13);
        x0 = x0.step(x12, x8, 18);
        x9 = x9.step(x5, x1, 7);
        x13 = x13.step(x9, x5, 9);
        x1 = x1.step(x13, x9, 13);
        x5 = x5.step(x1, x13, 18);
        x14 = x14.step(x10, x6, 7);
        x2 = x2.step(x14, x10, 9);
        x6 = x6.step(x2, x14, 13);
        x10 = x10.step(x6, x2, 18);
        x3 = x3.step(x15, x11, 7);
        x7 = x7.step(x3, x15, 9);
        x11 = x11.step(x7, x3, 13);
        x15 = x15.step(x11, x7, 18);
        // Row round.
        x1 = x1.step(x0, x3, 7);
        x2 = x2.step(x1, x0, 9);
        x3 = x3.step(x2, x1, 13);
        x0 = x0.step(x3, x2, 18);
        x6 = x6.step(x5, x4, 7);
        x7 = x7.step(x6, x5, 9);
        x4 = x4.step(x7, x6, 13);
        x5 = x5.step(x4, x7, 18);
        x11 = x11.step(x10, x9, 7);
        x8 = x8.step(x11, x10, 9);
        x9 = x9.step(x8, x11, 13);
        x10 = x10.step(x9, x8, 18);
        x12 = x12.step(x15, x14, 7);
        x13 = x13.step(x12, x15, 9);
        x14 = x14.step(x13, x12, 13);
        x15 = x15.step(x14, x13, 18);
    }
    let x = [
        x0, x1, x2, x3, x4, x5, x6, x7, x8, x9, x10, x11, x12, x13, x14, x15,
    ];
    let mut out = x;
    for (o, i) in out.iter_mut().zip(input) {
        *o = o.add(*i);
    }
    out
}

/// XORs `word` into the 4 bytes of `dst` (little-endian, as Salsa20 serialises).
#[inline(always)]
fn xor_word(dst: &mut [u8], word: u32) {
    let mut bytes = [0u8; 4];
    bytes.copy_from_slice(dst);
    dst.copy_from_slice(&(u32::from_le_bytes(bytes) ^ word).to_le_bytes());
}

/// A 64-bit block counter as Salsa20's two words, low word first.
#[inline(always)]
fn counter_words(counter: u64) -> (u32, u32) {
    let b = counter.to_le_bytes();
    (
        u32::from_le_bytes([b[0], b[1], b[2], b[3]]),
        u32::from_le_bytes([b[4], b[5], b[6], b[7]]),
    )
}

/// XORs block `counter` of the keystream into `dst` (64 bytes).
fn xor_one(key: &[u32; 8], nonce: &[u32; 2], counter: u64, dst: &mut [u8]) {
    let (lo, hi) = counter_words(counter);
    let input = initial(key, nonce, lo, hi);
    let out = core(&input);
    for (chunk, word) in dst.chunks_exact_mut(4).zip(out.iter()) {
        xor_word(chunk, *word);
    }
}

/// Several blocks side by side, block `i` in lane `i`.
trait Wide: Lane {
    /// Blocks computed at once.
    const BLOCKS: usize;
    /// The vector whose lane `i` is `f(i)`.
    fn from_fn(f: impl FnMut(usize) -> u32) -> Self;
    /// Writes lane `i` to `out[i]`.
    fn write_lanes(self, out: &mut [u32]);
}

/// `Lane` and `Wide` for a vector of `$n` `u32` lanes.
macro_rules! vector {
    ($t:ty, $n:literal) => {
        impl Lane for $t {
            #[inline(always)]
            fn splat(word: u32) -> $t {
                <$t>::splat(word)
            }
            #[inline(always)]
            fn step(self, a: $t, b: $t, r: u32) -> $t {
                // No vector rotate before AVX-512: two shifts and an OR.
                let t = a + b;
                self ^ ((t << r) | (t >> (32 - r)))
            }
            #[inline(always)]
            fn add(self, other: $t) -> $t {
                self + other
            }
        }

        impl Wide for $t {
            const BLOCKS: usize = $n;
            #[inline(always)]
            fn from_fn(f: impl FnMut(usize) -> u32) -> $t {
                <$t>::new(core::array::from_fn(f))
            }
            #[inline(always)]
            fn write_lanes(self, out: &mut [u32]) {
                out.copy_from_slice(&self.to_array());
            }
        }
    };
}
vector!(u32x4, 4);
vector!(u32x8, 8);

/// XORs blocks `counter .. counter + L::BLOCKS` of the keystream into
/// `dst` (`L::BLOCKS` × 64 bytes).
#[inline(always)]
fn xor_wide<L: Wide>(key: &[u32; 8], nonce: &[u32; 2], counter: u64, dst: &mut [u8]) {
    let words = |i: usize| counter_words(counter.wrapping_add(i as u64));
    let lo = L::from_fn(|i| words(i).0);
    let hi = L::from_fn(|i| words(i).1);
    let out = core(&initial(key, nonce, lo, hi));
    // Lane i of word w is word w of block i.
    let mut lanes = [0u32; 16 * 8];
    for (w, word) in out.iter().enumerate() {
        word.write_lanes(&mut lanes[w * L::BLOCKS..][..L::BLOCKS]);
    }
    for (block, dst) in dst.chunks_exact_mut(BLOCK).enumerate() {
        for (w, chunk) in dst.chunks_exact_mut(4).enumerate() {
            xor_word(chunk, lanes[w * L::BLOCKS + block]);
        }
    }
}

/// The keystream of one box: Salsa20/20 under a key and an 8-byte nonce.
pub(crate) struct Keystream<'k> {
    key: &'k [u32; 8],
    nonce: [u32; 2],
    /// Block 0: the Poly1305 key, then the keystream of the box's first 32 bytes.
    first: Zeroizing<[[u8; 32]; 2]>,
}

impl<'k> Keystream<'k> {
    /// The keystream under `key` (as little-endian words) and `nonce`.
    pub(crate) fn new(key: &'k [u32; 8], nonce: &[u8; 8]) -> Keystream<'k> {
        let nonce = [
            u32::from_le_bytes([nonce[0], nonce[1], nonce[2], nonce[3]]),
            u32::from_le_bytes([nonce[4], nonce[5], nonce[6], nonce[7]]),
        ];
        let mut first = Zeroizing::new([[0u8; 32]; 2]);
        xor_one(key, &nonce, 0, first.as_flattened_mut());
        Keystream { key, nonce, first }
    }

    /// The one-time Poly1305 key: the first 32 bytes of the keystream.
    pub(crate) fn poly1305_key(&self) -> &[u8; 32] {
        &self.first[0]
    }

    /// XORs the keystream from byte 32 on into `data`.
    pub(crate) fn apply(&self, data: &mut [u8]) {
        let head = data.len().min(32);
        let (head_data, rest) = data.split_at_mut(head);
        for (d, k) in head_data.iter_mut().zip(&self.first[1]) {
            *d ^= k;
        }
        // `rest` starts at block 1.
        let mut counter = 1u64;
        let mut eights = rest.chunks_exact_mut(EIGHT);
        for chunk in &mut eights {
            xor_wide::<u32x8>(self.key, &self.nonce, counter, chunk);
            counter += 8;
        }
        let tail = eights.into_remainder();
        if tail.is_empty() {
            return;
        }
        // The narrowest computation that covers the tail.
        let mut spare = [0u8; EIGHT];
        if tail.len() > FOUR {
            xor_wide::<u32x8>(self.key, &self.nonce, counter, &mut spare[..]);
        } else if tail.len() > BLOCK {
            xor_wide::<u32x4>(self.key, &self.nonce, counter, &mut spare[..FOUR]);
        } else {
            xor_one(self.key, &self.nonce, counter, &mut spare[..BLOCK]);
        }
        for (d, k) in tail.iter_mut().zip(spare.iter()) {
            *d ^= k;
        }
    }
}

/// `key` as the eight little-endian words Salsa20 reads.
pub(crate) fn key_words(key: &[u8; 32]) -> Zeroizing<[u32; 8]> {
    let mut words = Zeroizing::new([0u32; 8]);
    for (word, bytes) in words.iter_mut().zip(key.chunks_exact(4)) {
        *word = u32::from_le_bytes([bytes[0], bytes[1], bytes[2], bytes[3]]);
    }
    words
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use salsa20::cipher::{KeyIvInit, StreamCipher, StreamCipherSeek};

    /// RustCrypto's keystream from byte `from` on, `len` bytes of it.
    fn reference(key: &[u8; 32], nonce: &[u8; 8], from: u64, len: usize) -> Vec<u8> {
        let mut cipher = salsa20::Salsa20::new(key.into(), nonce.into());
        cipher.seek(from);
        let mut out = vec![0u8; len];
        cipher.apply_keystream(&mut out);
        out
    }

    fn ours(key: &[u8; 32], nonce: &[u8; 8], len: usize) -> ([u8; 32], Vec<u8>) {
        let words = key_words(key);
        let stream = Keystream::new(&words, nonce);
        let mut out = vec![0u8; len];
        stream.apply(&mut out);
        (*stream.poly1305_key(), out)
    }

    #[test]
    fn every_length_around_the_block_boundaries_matches_salsa20() {
        let mut key = [0u8; 32];
        for (i, b) in (3u8..).step_by(7).zip(key.iter_mut()) {
            *b = i;
        }
        let nonce = *b"\x00\x00\x00\x00\x00\x00\x01\x2a";
        for len in 0..=(32 + 2 * EIGHT + FOUR + 2 * BLOCK) {
            let (poly, stream) = ours(&key, &nonce, len);
            assert_eq!(&poly[..], &reference(&key, &nonce, 0, 32)[..]);
            assert_eq!(stream, reference(&key, &nonce, 32, len), "length {len}");
        }
    }

    #[test]
    fn block_counters_carry_into_the_high_word() {
        // Lanes straddling 2^32: the carry must reach word 9 in each lane.
        let key = key_words(&[9u8; 32]);
        let nonce = [5u32, 6];
        let start = u64::from(u32::MAX) - 2;
        let mut eight = [0u8; EIGHT];
        xor_wide::<u32x8>(&key, &nonce, start, &mut eight);
        let mut four = [0u8; FOUR];
        xor_wide::<u32x4>(&key, &nonce, start, &mut four);
        assert_eq!(&four[..], &eight[..FOUR]);
        for (i, block) in eight.chunks_exact(BLOCK).enumerate() {
            let mut one = [0u8; BLOCK];
            let counter = start + u64::try_from(i).expect("eight blocks");
            xor_one(&key, &nonce, counter, &mut one);
            assert_eq!(block, &one[..], "block {i}");
        }
        let mut nonce_bytes = [0u8; 8];
        nonce_bytes[..4].copy_from_slice(&5u32.to_le_bytes());
        nonce_bytes[4..].copy_from_slice(&6u32.to_le_bytes());
        let expected = reference(&[9u8; 32], &nonce_bytes, start * BLOCK as u64, EIGHT);
        assert_eq!(&eight[..], &expected[..]);
    }

    proptest! {
        #[test]
        fn any_key_nonce_and_length_match_salsa20(
            key in any::<[u8; 32]>(),
            nonce in any::<[u8; 8]>(),
            len in 0usize..3000,
        ) {
            let (poly, stream) = ours(&key, &nonce, len);
            prop_assert_eq!(&poly[..], &reference(&key, &nonce, 0, 32)[..]);
            prop_assert_eq!(stream, reference(&key, &nonce, 32, len));
        }
    }
}
