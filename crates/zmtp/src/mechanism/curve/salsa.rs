//! The Salsa20/20 keystream of a MESSAGE box, eight blocks at a time.
//!
//! RustCrypto's `salsa20` computes one 64-byte block after another with
//! scalar code; at 4 KiB the keystream was then 45 % of a CURVE peer's
//! time. Here consecutive blocks are computed side by side, block `i` in
//! lane `i` of vectors. On x86-64 the instructions are chosen at run time,
//! as libsodium does: where the CPU has AVX2, the eight lanes are one
//! 256-bit vector (`pulp`, which proves the CPU has the instructions
//! before any runs); elsewhere they are two 128-bit SSE2 vectors (`wide`,
//! about 1.8× the scalar speed; AVX2 is about 1.5× that again). NEON on
//! AArch64, plain arrays elsewhere. Shorter tails take four lanes or one
//! block on plain `u32`, with the same rounds. The output is checked byte
//! for byte against `salsa20` in the tests, on every path the CPU running
//! them has, and the boxes built on it against `crypto_box`.
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
pub(crate) const BLOCK: usize = 64;
/// Bytes of the eight blocks computed together.
pub(crate) const EIGHT: usize = 8 * BLOCK;
/// Bytes of four blocks, computed together for shorter tails.
const FOUR: usize = 4 * BLOCK;

/// One 32-bit word of the state, in one block or in several at once.
trait Lane: Copy {
    /// What it takes to build one: nothing, or for instructions chosen at
    /// run time the proof that the CPU has them.
    type Maker: Copy;
    /// The word with the same value in every lane.
    fn splat(maker: Self::Maker, word: u32) -> Self;
    /// Salsa20's step: `self ^ ((a + b) <<< r)`.
    fn step(self, a: Self, b: Self, r: u32) -> Self;
    /// Lane-wise wrapping addition.
    fn add(self, other: Self) -> Self;
}

impl Lane for u32 {
    type Maker = ();
    #[inline(always)]
    fn splat((): (), word: u32) -> u32 {
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
fn initial<L: Lane>(
    maker: L::Maker,
    key: &[u32; 8],
    nonce: &[u32; 2],
    counter_lo: L,
    counter_hi: L,
) -> [L; 16] {
    let nonce = [L::splat(maker, nonce[0]), L::splat(maker, nonce[1])];
    initial_lanes(maker, key, nonce, [counter_lo, counter_hi])
}

/// The initial state for `key`, with the nonce and block counter words given.
#[inline(always)]
fn initial_lanes<L: Lane>(
    maker: L::Maker,
    key: &[u32; 8],
    nonce: [L; 2],
    counter: [L; 2],
) -> [L; 16] {
    let s = |word| L::splat(maker, word);
    [
        s(SIGMA[0]),
        s(key[0]),
        s(key[1]),
        s(key[2]),
        s(key[3]),
        s(SIGMA[1]),
        nonce[0],
        nonce[1],
        counter[0],
        counter[1],
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
    let input = initial((), key, nonce, lo, hi);
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
    fn from_fn(maker: Self::Maker, f: impl FnMut(usize) -> u32) -> Self;
    /// Writes lane `i` to `out[i]`.
    fn write_lanes(self, out: &mut [u32]);

    /// XORs the blocks whose words `state` holds (lane `i` of word `w` is
    /// word `w` of block `i`) into `dst` (`BLOCKS` × 64 bytes): word by
    /// word, unless the vectors can turn the lanes into blocks themselves.
    #[inline(always)]
    fn xor_blocks(state: &[Self; 16], dst: &mut [u8]) {
        let mut lanes = [0u32; 16 * 8];
        for (w, word) in state.iter().enumerate() {
            word.write_lanes(&mut lanes[w * Self::BLOCKS..][..Self::BLOCKS]);
        }
        for (block, dst) in dst.chunks_exact_mut(BLOCK).enumerate() {
            for (w, chunk) in dst.chunks_exact_mut(4).enumerate() {
                xor_word(chunk, lanes[w * Self::BLOCKS + block]);
            }
        }
    }
}

/// `Lane` and `Wide` for a vector of `$n` `u32` lanes.
macro_rules! vector {
    ($t:ty, $n:literal) => {
        impl Lane for $t {
            type Maker = ();
            #[inline(always)]
            fn splat((): (), word: u32) -> $t {
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
            fn from_fn((): (), f: impl FnMut(usize) -> u32) -> $t {
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
fn xor_wide<L: Wide>(
    maker: L::Maker,
    key: &[u32; 8],
    nonce: &[u32; 2],
    counter: u64,
    dst: &mut [u8],
) {
    let words = |i: usize| counter_words(counter.wrapping_add(i as u64));
    let lo = L::from_fn(maker, |i| words(i).0);
    let hi = L::from_fn(maker, |i| words(i).1);
    let out = core(&initial(maker, key, nonce, lo, hi));
    L::xor_blocks(&out, dst);
}

/// XORs block 0 of the keystreams of nonces `nonce .. nonce + L::BLOCKS`
/// into `dst` (`L::BLOCKS` × 64 bytes), nonce `i` in lane `i`.
#[inline(always)]
fn xor_firsts<L: Wide>(maker: L::Maker, key: &[u32; 8], nonce: u64, dst: &mut [u8]) {
    let words = |i: usize| nonce_words(&nonce.wrapping_add(i as u64).to_be_bytes());
    let n0 = L::from_fn(maker, |i| words(i)[0]);
    let n1 = L::from_fn(maker, |i| words(i)[1]);
    let zero = L::splat(maker, 0);
    let out = core(&initial_lanes(maker, key, [n0, n1], [zero, zero]));
    L::xor_blocks(&out, dst);
}

/// Block 0 of the keystreams of the eight nonces `nonce .. nonce + 8`
/// (each the big-endian counter a CurveZMQ MESSAGE carries), computed side
/// by side with the widest vectors this CPU has: a box of up to 32 bytes
/// needs nothing else, and eight in lanes cost about two fifths of eight
/// computed one by one. Written over `out`.
pub(crate) fn first_blocks(key: &[u32; 8], nonce: u64, out: &mut [u8; EIGHT]) {
    out.fill(0);
    #[cfg(target_arch = "x86_64")]
    if avx2::first_blocks(key, nonce, out) {
        return;
    }
    xor_firsts::<u32x8>((), key, nonce, out);
}

/// XORs the keystream from block `counter` on into `dst`, a whole number
/// of eight-block runs, with the widest vectors this CPU has.
fn xor_eights(key: &[u32; 8], nonce: &[u32; 2], counter: u64, dst: &mut [u8]) {
    #[cfg(target_arch = "x86_64")]
    if avx2::xor_eights(key, nonce, counter, dst) {
        return;
    }
    xor_runs::<u32x8>((), key, nonce, counter, dst);
}

/// [`xor_wide`] over consecutive runs of `L::BLOCKS` blocks.
#[inline(always)]
fn xor_runs<L: Wide>(
    maker: L::Maker,
    key: &[u32; 8],
    nonce: &[u32; 2],
    mut counter: u64,
    dst: &mut [u8],
) {
    for run in dst.chunks_exact_mut(L::BLOCKS * BLOCK) {
        xor_wide::<L>(maker, key, nonce, counter, run);
        counter = counter.wrapping_add(L::BLOCKS as u64);
    }
}

/// Eight lanes as one AVX2 vector, chosen at run time.
#[cfg(target_arch = "x86_64")]
mod avx2 {
    use core::arch::x86_64::__m256i;

    use pulp::x86::V3;
    use pulp::{u32x8, NullaryFnOnce};

    use super::{xor_firsts, xor_runs, Lane, Wide, BLOCK};

    /// One state word of eight blocks, with the proof that the CPU has
    /// AVX2 (which takes no room).
    #[derive(Clone, Copy)]
    struct Avx2(V3, u32x8);

    /// The rotation by a constant, so it compiles to immediate shifts
    /// (every Salsa20 step rotates by one of four constants).
    #[inline(always)]
    fn rotate(s: V3, t: u32x8, r: u32) -> u32x8 {
        match r {
            7 => s.or_u32x8(s.shl_const_u32x8::<7>(t), s.shr_const_u32x8::<25>(t)),
            9 => s.or_u32x8(s.shl_const_u32x8::<9>(t), s.shr_const_u32x8::<23>(t)),
            13 => s.or_u32x8(s.shl_const_u32x8::<13>(t), s.shr_const_u32x8::<19>(t)),
            18 => s.or_u32x8(s.shl_const_u32x8::<18>(t), s.shr_const_u32x8::<14>(t)),
            _ => {
                let left = s.splat_u32x8(r);
                let right = s.splat_u32x8(32 - r);
                s.or_u32x8(s.shl_dyn_u32x8(t, left), s.shr_dyn_u32x8(t, right))
            }
        }
    }

    impl Lane for Avx2 {
        type Maker = V3;
        #[inline(always)]
        fn splat(s: V3, word: u32) -> Avx2 {
            Avx2(s, s.splat_u32x8(word))
        }
        #[inline(always)]
        fn step(self, a: Avx2, b: Avx2, r: u32) -> Avx2 {
            let s = self.0;
            let t = s.wrapping_add_u32x8(a.1, b.1);
            Avx2(s, s.xor_u32x8(self.1, rotate(s, t, r)))
        }
        #[inline(always)]
        fn add(self, other: Avx2) -> Avx2 {
            Avx2(self.0, self.0.wrapping_add_u32x8(self.1, other.1))
        }
    }

    impl Wide for Avx2 {
        const BLOCKS: usize = 8;
        #[inline(always)]
        fn from_fn(s: V3, f: impl FnMut(usize) -> u32) -> Avx2 {
            Avx2(s, pulp::cast(core::array::from_fn::<u32, 8, _>(f)))
        }
        #[inline(always)]
        fn write_lanes(self, out: &mut [u32]) {
            let lanes: [u32; 8] = pulp::cast(self.1);
            out.copy_from_slice(&lanes);
        }

        /// Two 8×8 transposes in registers (words 0–7, then 8–15), each
        /// row then the half of a block, XORed in 32 bytes at a time:
        /// word by word, this was a quarter of the instructions.
        #[inline(always)]
        fn xor_blocks(state: &[Avx2; 16], dst: &mut [u8]) {
            let s = state[0].0;
            let a = s.avx2;
            for (half, words) in state.chunks_exact(8).enumerate() {
                let w: [__m256i; 8] = core::array::from_fn(|i| pulp::cast(words[i].1));
                // t[2j], t[2j + 1]: words 2j and 2j + 1 interleaved, per
                // 128-bit half (blocks 0–3 low, 4–7 high).
                let t: [__m256i; 8] = core::array::from_fn(|i| {
                    let (x, y) = (w[i & !1], w[i | 1]);
                    match i % 2 {
                        0 => a._mm256_unpacklo_epi32(x, y),
                        _ => a._mm256_unpackhi_epi32(x, y),
                    }
                });
                // u[k], k < 4: words 0–3 of block k (low half) and of block
                // k + 4 (high half); u[k + 4]: words 4–7 of the same blocks.
                let u: [__m256i; 8] = core::array::from_fn(|j| {
                    let base = (j / 4) * 4 + (j % 4) / 2;
                    let (x, y) = (t[base], t[base + 2]);
                    match j % 2 {
                        0 => a._mm256_unpacklo_epi64(x, y),
                        _ => a._mm256_unpackhi_epi64(x, y),
                    }
                });
                for block in 0..8 {
                    let (k, high) = (block % 4, block >= 4);
                    let row = match high {
                        false => a._mm256_permute2x128_si256::<0x20>(u[k], u[k + 4]),
                        true => a._mm256_permute2x128_si256::<0x31>(u[k], u[k + 4]),
                    };
                    let at = block * BLOCK + half * 32;
                    let Ok(bytes) = <[u8; 32]>::try_from(&dst[at..at + 32]) else {
                        unreachable!("eight blocks of 64 bytes");
                    };
                    let data: __m256i = pulp::cast(bytes);
                    let out: [u8; 32] = pulp::cast(a._mm256_xor_si256(data, row));
                    dst[at..at + 32].copy_from_slice(&out);
                }
            }
        }
    }

    /// The runs of eight blocks, compiled for AVX2 (inlined into pulp's
    /// function that enables it).
    struct Eights<'a> {
        s: V3,
        key: &'a [u32; 8],
        nonce: &'a [u32; 2],
        counter: u64,
        dst: &'a mut [u8],
    }

    impl NullaryFnOnce for Eights<'_> {
        type Output = ();
        #[inline(always)]
        fn call(self) {
            xor_runs::<Avx2>(self.s, self.key, self.nonce, self.counter, self.dst);
        }
    }

    /// Block 0 of eight nonces' keystreams, compiled for AVX2.
    struct Firsts<'a> {
        s: V3,
        key: &'a [u32; 8],
        nonce: u64,
        dst: &'a mut [u8],
    }

    impl NullaryFnOnce for Firsts<'_> {
        type Output = ();
        #[inline(always)]
        fn call(self) {
            xor_firsts::<Avx2>(self.s, self.key, self.nonce, self.dst);
        }
    }

    /// What [`super::first_blocks`] does, where the CPU has AVX2; says
    /// whether it did.
    pub(super) fn first_blocks(key: &[u32; 8], nonce: u64, dst: &mut [u8]) -> bool {
        let Some(s) = V3::try_new() else {
            return false;
        };
        s.vectorize(Firsts { s, key, nonce, dst });
        true
    }

    /// What [`super::xor_eights`] does, where the CPU has AVX2 (and the
    /// rest of x86-64-v3, which `pulp` checks together); says whether it did.
    pub(super) fn xor_eights(
        key: &[u32; 8],
        nonce: &[u32; 2],
        counter: u64,
        dst: &mut [u8],
    ) -> bool {
        let Some(s) = V3::try_new() else {
            return false;
        };
        s.vectorize(Eights {
            s,
            key,
            nonce,
            counter,
            dst,
        });
        true
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
        let nonce = nonce_words(nonce);
        let mut first = Zeroizing::new([[0u8; 32]; 2]);
        xor_one(key, &nonce, 0, first.as_flattened_mut());
        Keystream { key, nonce, first }
    }

    /// The same, with block 0 computed already (see [`first_blocks`]).
    pub(crate) fn with_first(key: &'k [u32; 8], nonce: &[u8; 8], block: &[u8]) -> Keystream<'k> {
        let mut first = Zeroizing::new([[0u8; 32]; 2]);
        first.as_flattened_mut().copy_from_slice(&block[..BLOCK]);
        Keystream {
            key,
            nonce: nonce_words(nonce),
            first,
        }
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
        let whole = rest.len() - rest.len() % EIGHT;
        let (eights, tail) = rest.split_at_mut(whole);
        if !eights.is_empty() {
            xor_eights(self.key, &self.nonce, 1, eights);
        }
        if tail.is_empty() {
            return;
        }
        let counter = 1 + (whole / BLOCK) as u64;
        // The narrowest computation that covers the tail.
        let mut spare = [0u8; EIGHT];
        if tail.len() > FOUR {
            xor_eights(self.key, &self.nonce, counter, &mut spare);
        } else if tail.len() > BLOCK {
            xor_wide::<u32x4>((), self.key, &self.nonce, counter, &mut spare[..FOUR]);
        } else {
            xor_one(self.key, &self.nonce, counter, &mut spare[..BLOCK]);
        }
        for (d, k) in tail.iter_mut().zip(spare.iter()) {
            *d ^= k;
        }
    }
}

/// An 8-byte nonce as the two little-endian words Salsa20 reads.
#[inline(always)]
fn nonce_words(nonce: &[u8; 8]) -> [u32; 2] {
    [
        u32::from_le_bytes([nonce[0], nonce[1], nonce[2], nonce[3]]),
        u32::from_le_bytes([nonce[4], nonce[5], nonce[6], nonce[7]]),
    ]
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
        xor_wide::<u32x8>((), &key, &nonce, start, &mut eight);
        let mut four = [0u8; FOUR];
        xor_wide::<u32x4>((), &key, &nonce, start, &mut four);
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

    #[test]
    fn the_portable_and_the_avx2_eight_block_runs_match_salsa20() {
        // `apply` takes whichever the CPU running the tests has; both are
        // checked here (AVX2 where the CPU has it), with counters that
        // cross into the high word.
        let key_bytes = [0x5a_u8; 32];
        let key = key_words(&key_bytes);
        let nonce_bytes = *b"\x01\x02\x03\x04\x05\x06\x07\x08";
        let nonce = [0x0403_0201, 0x0807_0605];
        for start in [1u64, u64::from(u32::MAX) - 3] {
            let expected = reference(&key_bytes, &nonce_bytes, start * BLOCK as u64, 3 * EIGHT);
            let mut portable = vec![0u8; 3 * EIGHT];
            xor_runs::<u32x8>((), &key, &nonce, start, &mut portable);
            assert_eq!(portable, expected, "portable, from block {start}");
            #[cfg(target_arch = "x86_64")]
            {
                let mut avx2 = vec![0u8; 3 * EIGHT];
                if avx2::xor_eights(&key, &nonce, start, &mut avx2) {
                    assert_eq!(avx2, expected, "AVX2, from block {start}");
                }
            }
        }
    }

    #[test]
    fn first_blocks_of_consecutive_nonces_match_salsa20() {
        // Nonce i in lane i, as the big-endian counters CurveZMQ sends,
        // from starts whose lanes carry across bytes and words; the
        // portable lanes and AVX2 (where the CPU has it) alike.
        let mut key_bytes = [0u8; 32];
        for (b, v) in key_bytes
            .iter_mut()
            .zip((0u8..).map(|i| i.wrapping_mul(29) ^ 0xa5))
        {
            *b = v;
        }
        let key = key_words(&key_bytes);
        for start in [1u64, 0xff, 0xffff_fffc, 0x0102_0304_0506_07f9, u64::MAX - 7] {
            let expected: Vec<u8> = (0..8)
                .flat_map(|i| reference(&key_bytes, &(start + i).to_be_bytes(), 0, BLOCK))
                .collect();
            let mut best = [7u8; EIGHT];
            first_blocks(&key, start, &mut best);
            assert_eq!(&best[..], &expected[..], "from {start:#x}");
            let mut portable = [0u8; EIGHT];
            xor_firsts::<u32x8>((), &key, start, &mut portable);
            assert_eq!(&portable[..], &expected[..], "portable, from {start:#x}");
            #[cfg(target_arch = "x86_64")]
            {
                let mut wide = [0u8; EIGHT];
                if avx2::first_blocks(&key, start, &mut wide) {
                    assert_eq!(&wide[..], &expected[..], "AVX2, from {start:#x}");
                }
            }
            // A keystream built on a precomputed block is the keystream.
            let nonce = (start + 3).to_be_bytes();
            let built = Keystream::with_first(&key, &nonce, &expected[3 * BLOCK..]);
            let mut data = vec![0u8; 300];
            built.apply(&mut data);
            assert_eq!(&built.poly1305_key()[..], &expected[3 * BLOCK..][..32]);
            assert_eq!(data, reference(&key_bytes, &nonce, 32, 300));
        }
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
