//! The Poly1305 tag of a MESSAGE box, several blocks per step in vector lanes.
//!
//! Poly1305 evaluates the message as a polynomial in the key's `r` modulo
//! 2^130 − 5, one 16-byte block after another; RustCrypto's portable
//! backend does that with scalar 26-bit limbs, and at 4 KiB it was about
//! 40 % of a CURVE box (its AVX2 backend is slower still on the machines
//! measured, see `.cargo/config.toml`). Here, on x86-64, the blocks go
//! through 64-bit vector lanes, one `pmuludq` per pair (or quadruple) of
//! limb products: with powers of `r` computed once per tag, each lane
//! absorbs every second block (two SSE2 lanes, four blocks per step, about
//! twice the scalar speed) or every fourth (four AVX2 lanes where the CPU
//! has them, chosen at run time, eight blocks per step, about 1.4× SSE2 at
//! 4 KiB), and the lanes are folded together at the end. Whatever does not
//! fill a step (and every input on other targets) takes the same
//! arithmetic one block at a time on `u64`.
//!
//! Every operation is data-independent (no branch or index depends on the
//! key or the message), as the MAC requires. The tags are checked against
//! RustCrypto's `poly1305` and published vectors in the tests, and the
//! boxes built on them against `crypto_box`.

/// Bytes of one Poly1305 block.
const BLOCK: usize = 16;
/// The low 26 bits: one limb.
const LIMB: u64 = 0x3ff_ffff;
/// The 2^128 bit every whole block carries, as seen from the top limb.
const HIBIT: u64 = 1 << 24;

/// A number modulo 2^130 − 5 as five 26-bit limbs, least significant
/// first; between steps a limb may exceed 26 bits by a small carry.
type Limbs = [u64; 5];

/// Bytes 0..4 of `b`, little-endian.
#[inline(always)]
fn le32(b: &[u8]) -> u64 {
    u64::from(u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
}

/// The limbs of one 16-byte block plus `hibit` (2^128, or 0 for the padded last block).
#[inline(always)]
fn block_limbs(block: &[u8], hibit: u64) -> Limbs {
    [
        le32(&block[0..]) & LIMB,
        (le32(&block[3..]) >> 2) & LIMB,
        (le32(&block[6..]) >> 4) & LIMB,
        (le32(&block[9..]) >> 6) & LIMB,
        (le32(&block[12..]) >> 8) | hibit,
    ]
}

/// `h·r`, not yet reduced. With limbs below 2^27 and `r` clamped, every
/// sum stays below 2^59.
#[inline(always)]
fn mul(h: &Limbs, r: &Limbs) -> Limbs {
    // 2^130 ≡ 5: products that reach past the top limb wrap around times 5.
    let s = [0, r[1] * 5, r[2] * 5, r[3] * 5, r[4] * 5];
    [
        h[0] * r[0] + h[1] * s[4] + h[2] * s[3] + h[3] * s[2] + h[4] * s[1],
        h[0] * r[1] + h[1] * r[0] + h[2] * s[4] + h[3] * s[3] + h[4] * s[2],
        h[0] * r[2] + h[1] * r[1] + h[2] * r[0] + h[3] * s[4] + h[4] * s[3],
        h[0] * r[3] + h[1] * r[2] + h[2] * r[1] + h[3] * r[0] + h[4] * s[4],
        h[0] * r[4] + h[1] * r[3] + h[2] * r[2] + h[3] * r[1] + h[4] * r[0],
    ]
}

/// Carries `d` back to limbs of about 26 bits (the value is unchanged modulo p).
#[inline(always)]
fn carry(d: Limbs) -> Limbs {
    let [mut d0, mut d1, mut d2, mut d3, mut d4] = d;
    d1 += d0 >> 26;
    d0 &= LIMB;
    d2 += d1 >> 26;
    d1 &= LIMB;
    d3 += d2 >> 26;
    d2 &= LIMB;
    d4 += d3 >> 26;
    d3 &= LIMB;
    d0 += (d4 >> 26) * 5;
    d4 &= LIMB;
    d1 += d0 >> 26;
    d0 &= LIMB;
    [d0, d1, d2, d3, d4]
}

/// `(h + m)·r`, reduced.
#[inline(always)]
fn absorb(h: &Limbs, m: &Limbs, r: &Limbs) -> Limbs {
    let sum = core::array::from_fn(|i| h[i] + m[i]);
    carry(mul(&sum, r))
}

/// The clamped `r` of a one-time key.
fn clamped_r(key: &[u8; 32]) -> Limbs {
    [
        le32(&key[0..]) & 0x3ff_ffff,
        (le32(&key[3..]) >> 2) & 0x3ff_ff03,
        (le32(&key[6..]) >> 4) & 0x3ff_c0ff,
        (le32(&key[9..]) >> 6) & 0x3f0_3fff,
        (le32(&key[12..]) >> 8) & 0x00f_ffff,
    ]
}

/// The Poly1305 tag of `data` under the one-time key `key` (`r || s`).
pub(crate) fn tag(key: &[u8; 32], data: &[u8]) -> [u8; 16] {
    let r = clamped_r(key);
    #[cfg(target_arch = "x86_64")]
    let (h, rest) = lanes::steps(&r, data);
    #[cfg(not(target_arch = "x86_64"))]
    let (h, rest) = ([0; 5], data);
    finish(blocks(h, &r, rest), &key[16..])
}

/// Absorbs `data` one block at a time into `h`, the last block padded.
fn blocks(mut h: Limbs, r: &Limbs, data: &[u8]) -> Limbs {
    let mut whole = data.chunks_exact(BLOCK);
    for block in &mut whole {
        h = absorb(&h, &block_limbs(block, HIBIT), r);
    }
    let tail = whole.remainder();
    if !tail.is_empty() {
        let mut last = [0u8; BLOCK];
        last[..tail.len()].copy_from_slice(tail);
        last[tail.len()] = 1;
        h = absorb(&h, &block_limbs(&last, 0), r);
    }
    h
}

/// `(h mod p) + s mod 2^128`, little-endian.
fn finish(h: Limbs, s: &[u8]) -> [u8; 16] {
    let [mut h0, mut h1, mut h2, mut h3, mut h4] = carry(h);
    // h is now below 2^130 + small, so it is fully reduced after at most
    // one subtraction of p: g = h − p = h + 5 − 2^130, kept when it does
    // not go negative. Selected with a mask, not a branch.
    let mut g0 = h0 + 5;
    let mut g1 = h1 + (g0 >> 26);
    g0 &= LIMB;
    let mut g2 = h2 + (g1 >> 26);
    g1 &= LIMB;
    let mut g3 = h3 + (g2 >> 26);
    g2 &= LIMB;
    let g4 = (h4 + (g3 >> 26)).wrapping_sub(1 << 26);
    g3 &= LIMB;
    let keep_g = (g4 >> 63).wrapping_sub(1);
    h0 = (h0 & !keep_g) | (g0 & keep_g);
    h1 = (h1 & !keep_g) | (g1 & keep_g);
    h2 = (h2 & !keep_g) | (g2 & keep_g);
    h3 = (h3 & !keep_g) | (g3 & keep_g);
    h4 = (h4 & !keep_g) | (g4 & keep_g);
    let words = [
        (h0 | (h1 << 26)) & 0xffff_ffff,
        ((h1 >> 6) | (h2 << 20)) & 0xffff_ffff,
        ((h2 >> 12) | (h3 << 14)) & 0xffff_ffff,
        ((h3 >> 18) | (h4 << 8)) & 0xffff_ffff,
    ];
    let mut out = [0u8; 16];
    let mut sum = 0u64;
    for (i, word) in words.iter().enumerate() {
        sum = word + le32(&s[4 * i..]) + (sum >> 32);
        out[4 * i..4 * i + 4].copy_from_slice(&sum.to_le_bytes()[..4]);
    }
    out
}

/// Whole steps in vector lanes: two SSE2 lanes on every x86-64, four AVX2
/// lanes first where the CPU has AVX2 (chosen at run time, as in
/// `salsa.rs`).
///
/// With `L` lanes a step takes `2L` blocks as `h·r^2L + older·r^L +
/// newer`, lane `i` holding block `i` of each half, so every lane absorbs
/// every `L`-th block; at the end lane `i` is multiplied by `r^(L−i)` and
/// the lanes are added. A starting accumulator (from the wider lanes) joins
/// the first block, which the steps then multiply by `r^n` in all.
#[cfg(target_arch = "x86_64")]
mod lanes {
    use super::{carry, mul, Limbs, BLOCK, HIBIT, LIMB};

    /// The 64-bit lanes of one vector, with the operations the limb
    /// arithmetic takes.
    trait Vector: Copy {
        /// Lanes per vector: blocks absorbed side by side.
        const LANES: usize;
        /// What it takes to build one: nothing, or for instructions chosen
        /// at run time the proof that the CPU has them.
        type Maker: Copy;
        /// The vector whose lane `i` is `f(i)`.
        fn from_fn(maker: Self::Maker, f: impl FnMut(usize) -> u64) -> Self;
        /// The lanes, in order.
        fn lanes(self) -> [u64; 4];
        fn add(self, other: Self) -> Self;
        /// The low 32 bits of each lane times those of `other`, 64-bit results.
        fn mul32(self, other: Self) -> Self;
        fn and(self, other: Self) -> Self;
        fn or(self, other: Self) -> Self;
        fn shr<const N: i32>(self) -> Self;
        fn shl<const N: i32>(self) -> Self;
        /// The low and the high eight bytes of `LANES` consecutive blocks,
        /// block `i` in lane `i`.
        fn halves(maker: Self::Maker, blocks: &[u8]) -> (Self, Self);
    }

    /// The limbs of `V::LANES` consecutive whole blocks, one per lane.
    #[inline(always)]
    fn block_limbs<V: Vector>(maker: V::Maker, blocks: &[u8]) -> [V; 5] {
        let (lo, hi) = V::halves(maker, blocks);
        let limb = V::from_fn(maker, |_| LIMB);
        [
            lo.and(limb),
            lo.shr::<26>().and(limb),
            lo.shr::<52>().or(hi.shl::<12>()).and(limb),
            hi.shr::<14>().and(limb),
            hi.shr::<40>().or(V::from_fn(maker, |_| HIBIT)),
        ]
    }

    /// A multiplier per lane: its limbs and the limbs times 5.
    struct Multiplier<V> {
        r: [V; 5],
        s: [V; 5],
    }

    impl<V: Vector> Multiplier<V> {
        /// Multiplies lane `i` by `per_lane(i)`.
        #[inline(always)]
        fn new(maker: V::Maker, per_lane: impl Fn(usize) -> Limbs) -> Multiplier<V> {
            Multiplier {
                r: core::array::from_fn(|i| V::from_fn(maker, |lane| per_lane(lane)[i])),
                s: core::array::from_fn(|i| V::from_fn(maker, |lane| per_lane(lane)[i] * 5)),
            }
        }

        /// `h·r` per lane, not yet reduced (the same sums as `super::mul`).
        #[inline(always)]
        fn times(&self, h: &[V; 5]) -> [V; 5] {
            let (r, s) = (&self.r, &self.s);
            let dot = |a: [V; 5]| {
                (h[0].mul32(a[0]).add(h[1].mul32(a[1])))
                    .add(h[2].mul32(a[2]).add(h[3].mul32(a[3])))
                    .add(h[4].mul32(a[4]))
            };
            [
                dot([r[0], s[4], s[3], s[2], s[1]]),
                dot([r[1], r[0], s[4], s[3], s[2]]),
                dot([r[2], r[1], r[0], s[4], s[3]]),
                dot([r[3], r[2], r[1], r[0], s[4]]),
                dot([r[4], r[3], r[2], r[1], r[0]]),
            ]
        }
    }

    /// Carries each lane back to limbs of about 26 bits: two chains side
    /// by side (0→1→2→3 and 3→4→0→1) to halve the latency.
    #[inline(always)]
    fn carry_lanes<V: Vector>(maker: V::Maker, mut d: [V; 5]) -> [V; 5] {
        let limb = V::from_fn(maker, |_| LIMB);
        let mut step = |from: usize, to: usize, times5: bool| {
            let c = d[from].shr::<26>();
            d[from] = d[from].and(limb);
            let c = if times5 { c.add(c.shl::<2>()) } else { c };
            d[to] = d[to].add(c);
        };
        step(0, 1, false);
        step(3, 4, false);
        step(1, 2, false);
        step(4, 0, true);
        step(2, 3, false);
        step(0, 1, false);
        step(3, 4, false);
        d
    }

    /// Absorbs every whole step of `data` into `h`; returns the accumulator
    /// (reduced) and the bytes left over.
    #[inline(always)]
    fn steps_in<'a, V: Vector>(
        maker: V::Maker,
        r: &Limbs,
        h: Limbs,
        data: &'a [u8],
    ) -> (Limbs, &'a [u8]) {
        let half = V::LANES * BLOCK;
        let whole = data.len() / (2 * half) * (2 * half);
        if whole == 0 {
            return (h, data);
        }
        let (head, rest) = data.split_at(whole);
        // powers[i] = r^(i+1), up to r^LANES.
        let mut powers = [*r; 4];
        for i in 1..V::LANES {
            powers[i] = carry(mul(&powers[i - 1], r));
        }
        let top = powers[V::LANES - 1];
        let twice = carry(mul(&top, &top));
        let by_half = Multiplier::<V>::new(maker, |_| top);
        let by_step = Multiplier::<V>::new(maker, |_| twice);
        let mut start = Some(core::array::from_fn::<V, 5, _>(|i| {
            V::from_fn(maker, |lane| if lane == 0 { h[i] } else { 0 })
        }));
        // The loop carries the unreduced sums and reduces them at the top
        // of the next step, so reduction and products sit in one block of
        // code and every multiplied limb is known to fit 32 bits.
        let mut d = [V::from_fn(maker, |_| 0); 5];
        for step in head.chunks_exact(2 * half) {
            let (front, back) = step.split_at(half);
            let mut older = block_limbs::<V>(maker, front);
            if let Some(start) = start.take() {
                older = core::array::from_fn(|i| older[i].add(start[i]));
            }
            let acc = by_step.times(&carry_lanes(maker, d));
            let older = by_half.times(&older);
            let newer = block_limbs::<V>(maker, back);
            d = core::array::from_fn(|i| acc[i].add(older[i]).add(newer[i]));
        }
        // Lane i holds the blocks LANES − i places from the end of each
        // group: times r^(LANES − i), then all lanes into one number.
        let fold = Multiplier::<V>::new(maker, |lane| powers[V::LANES - 1 - lane]);
        let folded = fold.times(&carry_lanes(maker, d));
        let sum = core::array::from_fn(|i| folded[i].lanes()[..V::LANES].iter().sum());
        (carry(sum), rest)
    }

    /// Absorbs every whole four-block step of `data` (eight-block steps
    /// first where the CPU has AVX2); returns the accumulator (reduced) and
    /// the bytes left for block-at-a-time processing.
    pub(super) fn steps<'a>(r: &Limbs, data: &'a [u8]) -> (Limbs, &'a [u8]) {
        let (h, rest) = avx2::steps(r, data).unwrap_or(([0; 5], data));
        steps_in::<sse2::Sse2>((), r, h, rest)
    }

    /// Two lanes of SSE2, which every x86-64 has.
    mod sse2 {
        use safe_arch::{
            add_i64_m128i, bitand_m128i, bitor_m128i, load_unaligned_m128i, m128i,
            mul_widen_u32_odd_m128i, shl_imm_u64_m128i, shr_imm_u64_m128i, unpack_high_i64_m128i,
            unpack_low_i64_m128i,
        };

        use super::{Vector, BLOCK};

        #[derive(Clone, Copy)]
        pub(super) struct Sse2(m128i);

        impl Vector for Sse2 {
            const LANES: usize = 2;
            type Maker = ();
            #[inline(always)]
            fn from_fn((): (), mut f: impl FnMut(usize) -> u64) -> Sse2 {
                Sse2(m128i::from([f(0), f(1)]))
            }
            #[inline(always)]
            fn lanes(self) -> [u64; 4] {
                let [a, b] = <[u64; 2]>::from(self.0);
                [a, b, 0, 0]
            }
            #[inline(always)]
            fn add(self, other: Sse2) -> Sse2 {
                Sse2(add_i64_m128i(self.0, other.0))
            }
            #[inline(always)]
            fn mul32(self, other: Sse2) -> Sse2 {
                Sse2(mul_widen_u32_odd_m128i(self.0, other.0))
            }
            #[inline(always)]
            fn and(self, other: Sse2) -> Sse2 {
                Sse2(bitand_m128i(self.0, other.0))
            }
            #[inline(always)]
            fn or(self, other: Sse2) -> Sse2 {
                Sse2(bitor_m128i(self.0, other.0))
            }
            #[inline(always)]
            fn shr<const N: i32>(self) -> Sse2 {
                Sse2(shr_imm_u64_m128i::<N>(self.0))
            }
            #[inline(always)]
            fn shl<const N: i32>(self) -> Sse2 {
                Sse2(shl_imm_u64_m128i::<N>(self.0))
            }
            #[inline(always)]
            fn halves((): (), blocks: &[u8]) -> (Sse2, Sse2) {
                let (Ok(first), Ok(second)) = (
                    <&[u8; BLOCK]>::try_from(&blocks[..BLOCK]),
                    <&[u8; BLOCK]>::try_from(&blocks[BLOCK..2 * BLOCK]),
                ) else {
                    unreachable!("two blocks of 16 bytes");
                };
                let a = load_unaligned_m128i(first);
                let b = load_unaligned_m128i(second);
                (
                    Sse2(unpack_low_i64_m128i(a, b)),
                    Sse2(unpack_high_i64_m128i(a, b)),
                )
            }
        }
    }

    /// Four lanes of AVX2, where the CPU has it.
    mod avx2 {
        use core::arch::x86_64::__m256i;

        use pulp::x86::V3;
        use pulp::NullaryFnOnce;

        use super::{steps_in, Limbs, Vector, BLOCK};

        /// Four lanes, with the proof that the CPU has AVX2 (no room taken).
        #[derive(Clone, Copy)]
        struct Avx2(V3, __m256i);

        impl Vector for Avx2 {
            const LANES: usize = 4;
            type Maker = V3;
            #[inline(always)]
            fn from_fn(s: V3, f: impl FnMut(usize) -> u64) -> Avx2 {
                Avx2(s, pulp::cast(core::array::from_fn::<u64, 4, _>(f)))
            }
            #[inline(always)]
            fn lanes(self) -> [u64; 4] {
                pulp::cast(self.1)
            }
            #[inline(always)]
            fn add(self, other: Avx2) -> Avx2 {
                Avx2(self.0, self.0.avx2._mm256_add_epi64(self.1, other.1))
            }
            #[inline(always)]
            fn mul32(self, other: Avx2) -> Avx2 {
                Avx2(self.0, self.0.avx2._mm256_mul_epu32(self.1, other.1))
            }
            #[inline(always)]
            fn and(self, other: Avx2) -> Avx2 {
                Avx2(self.0, self.0.avx2._mm256_and_si256(self.1, other.1))
            }
            #[inline(always)]
            fn or(self, other: Avx2) -> Avx2 {
                Avx2(self.0, self.0.avx2._mm256_or_si256(self.1, other.1))
            }
            #[inline(always)]
            fn shr<const N: i32>(self) -> Avx2 {
                Avx2(self.0, self.0.avx2._mm256_srli_epi64::<N>(self.1))
            }
            #[inline(always)]
            fn shl<const N: i32>(self) -> Avx2 {
                Avx2(self.0, self.0.avx2._mm256_slli_epi64::<N>(self.1))
            }
            #[inline(always)]
            fn halves(s: V3, blocks: &[u8]) -> (Avx2, Avx2) {
                let (Ok(front), Ok(back)) = (
                    <[u8; 2 * BLOCK]>::try_from(&blocks[..2 * BLOCK]),
                    <[u8; 2 * BLOCK]>::try_from(&blocks[2 * BLOCK..4 * BLOCK]),
                ) else {
                    unreachable!("four blocks of 16 bytes");
                };
                // (lo0, hi0, lo1, hi1) and (lo2, hi2, lo3, hi3); unpacking
                // works within 128-bit halves, giving (lo0, lo2, lo1, lo3),
                // which the permutation puts in block order.
                let a: __m256i = pulp::cast(front);
                let b: __m256i = pulp::cast(back);
                let lo = s.avx2._mm256_unpacklo_epi64(a, b);
                let hi = s.avx2._mm256_unpackhi_epi64(a, b);
                const IN_ORDER: i32 = 0b11_01_10_00;
                (
                    Avx2(s, s.avx2._mm256_permute4x64_epi64::<IN_ORDER>(lo)),
                    Avx2(s, s.avx2._mm256_permute4x64_epi64::<IN_ORDER>(hi)),
                )
            }
        }

        /// The eight-block steps, compiled for AVX2 (inlined into pulp's
        /// function that enables it).
        pub(super) struct Steps<'r, 'a> {
            pub(super) s: V3,
            pub(super) r: &'r Limbs,
            /// The accumulator so far.
            pub(super) h: Limbs,
            pub(super) data: &'a [u8],
        }

        impl<'a> NullaryFnOnce for Steps<'_, 'a> {
            type Output = (Limbs, &'a [u8]);
            #[inline(always)]
            fn call(self) -> (Limbs, &'a [u8]) {
                steps_in::<Avx2>(self.s, self.r, self.h, self.data)
            }
        }

        /// Below this many bytes the two-lane steps are as fast: the four
        /// lanes take more powers of `r` and a wider fold to set up (in a
        /// loop, 129 against 97 ns at 128 bytes, even at 512, 307
        /// against 346 ns at 1 KiB, 945 against 1,209 ns at 4 KiB).
        const WORTH_IT: usize = 32 * BLOCK;

        /// The eight-block steps of `data`, where the CPU has AVX2 and
        /// `data` is long enough to gain from them.
        pub(super) fn steps<'a>(r: &Limbs, data: &'a [u8]) -> Option<(Limbs, &'a [u8])> {
            if data.len() < WORTH_IT {
                return None;
            }
            let s = V3::try_new()?;
            Some(s.vectorize(Steps {
                s,
                r,
                h: [0; 5],
                data,
            }))
        }
    }

    #[cfg(test)]
    mod tests {
        use super::super::{blocks, clamped_r, finish};
        use super::*;

        #[test]
        fn two_lanes_and_four_lanes_each_agree_with_one_block_at_a_time() {
            // `tag` takes four lanes first where the CPU has AVX2: each kind
            // is checked alone here, from a fresh and from a carried-in
            // accumulator.
            let key: [u8; 32] = core::array::from_fn(|i| (i * 37).to_le_bytes()[0] ^ 0xa5);
            let r = clamped_r(&key);
            let data: Vec<u8> = (0..4097u32)
                .map(|i| (i * 89 + 3).to_le_bytes()[0])
                .collect();
            let carried = blocks([0; 5], &r, &data[..48]);
            for len in [64, 127, 128, 200, 256, 1000, 4096, 4097] {
                let data = &data[..len];
                let expected = finish(blocks(carried, &r, data), &key[16..]);
                let (h, rest) = steps_in::<sse2::Sse2>((), &r, carried, data);
                assert_eq!(
                    finish(blocks(h, &r, rest), &key[16..]),
                    expected,
                    "two lanes, {len} bytes"
                );
                if let Some(s) = pulp::x86::V3::try_new() {
                    let (h, rest) = s.vectorize(avx2::Steps {
                        s,
                        r: &r,
                        h: carried,
                        data,
                    });
                    assert_eq!(
                        finish(blocks(h, &r, rest), &key[16..]),
                        expected,
                        "four lanes, {len} bytes"
                    );
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ::poly1305::universal_hash::KeyInit;
    use proptest::prelude::*;

    /// RustCrypto's tag, the reference.
    fn reference(key: &[u8; 32], data: &[u8]) -> [u8; 16] {
        let mut out = [0u8; 16];
        out.copy_from_slice(&::poly1305::Poly1305::new(key.into()).compute_unpadded(data));
        out
    }

    fn hex(s: &str) -> Vec<u8> {
        let digits: Vec<u8> = s.bytes().filter(u8::is_ascii_hexdigit).collect();
        digits
            .chunks(2)
            .map(|pair| {
                u8::from_str_radix(std::str::from_utf8(pair).unwrap_or("zz"), 16).unwrap_or(0)
            })
            .collect()
    }

    fn key_of(r: &str, s: &str) -> [u8; 32] {
        let mut key = [0u8; 32];
        key[..16].copy_from_slice(&hex(r));
        key[16..].copy_from_slice(&hex(s));
        key
    }

    #[test]
    fn rfc8439_vectors_give_their_tags() {
        // RFC 8439 §2.5.2, then appendix A.3 #5–#11: inputs chosen to
        // land the accumulator on the edges of the final reduction.
        let cases: [(&str, &str, Vec<u8>, &str); 8] = [
            (
                "85d6be7857556d337f4452fe42d506a8",
                "0103808afb0db2fd4abff6af4149f51b",
                b"Cryptographic Forum Research Group".to_vec(),
                "a8061dc1305136c6c22b8baf0c0127a9",
            ),
            (
                "02000000000000000000000000000000",
                "00000000000000000000000000000000",
                hex("ffffffffffffffffffffffffffffffff"),
                "03000000000000000000000000000000",
            ),
            (
                "02000000000000000000000000000000",
                "ffffffffffffffffffffffffffffffff",
                hex("02000000000000000000000000000000"),
                "03000000000000000000000000000000",
            ),
            (
                "01000000000000000000000000000000",
                "00000000000000000000000000000000",
                hex(
                    "ffffffffffffffffffffffffffffffff f0ffffffffffffffffffffffffffffff
                     11000000000000000000000000000000",
                ),
                "05000000000000000000000000000000",
            ),
            (
                "01000000000000000000000000000000",
                "00000000000000000000000000000000",
                hex(
                    "ffffffffffffffffffffffffffffffff fbfefefefefefefefefefefefefefefe
                     01010101010101010101010101010101",
                ),
                "00000000000000000000000000000000",
            ),
            (
                "02000000000000000000000000000000",
                "00000000000000000000000000000000",
                hex("fdffffffffffffffffffffffffffffff"),
                "faffffffffffffffffffffffffffffff",
            ),
            (
                "01000000000000000400000000000000",
                "00000000000000000000000000000000",
                hex(
                    "e33594d7505e43b90000000000000000 3394d7505e4379cd0100000000000000
                     00000000000000000000000000000000 01000000000000000000000000000000",
                ),
                "14000000000000005500000000000000",
            ),
            (
                "01000000000000000400000000000000",
                "00000000000000000000000000000000",
                hex(
                    "e33594d7505e43b90000000000000000 3394d7505e4379cd0100000000000000
                     00000000000000000000000000000000",
                ),
                "13000000000000000000000000000000",
            ),
        ];
        for (r, s, data, expected) in cases {
            let key = key_of(r, s);
            assert_eq!(
                tag(&key, &data).to_vec(),
                hex(expected),
                "r {r}, {} bytes",
                data.len()
            );
            assert_eq!(tag(&key, &data), reference(&key, &data));
        }
    }

    #[test]
    fn every_length_around_the_step_boundaries_matches_poly1305() {
        let mut next = super::super::test_values(0x0123_4567_89ab_cdefu64);
        for len in 0..=600 {
            for round in 0..3 {
                let mut key = [0u8; 32];
                key.iter_mut().for_each(|b| *b = next().to_le_bytes()[0]);
                let data: Vec<u8> = (0..len).map(|_| next().to_le_bytes()[0]).collect();
                assert_eq!(
                    tag(&key, &data),
                    reference(&key, &data),
                    "{len} bytes, round {round}"
                );
            }
        }
    }

    #[test]
    fn the_largest_limbs_do_not_overflow() {
        // r at its clamped maximum, every message bit set, s all ones:
        // each product and each carry at its bound, in the lanes and out.
        let key = [0xffu8; 32];
        for len in [63, 64, 65, 127, 128, 129, 255, 256, 1024, 4096, 4097, 65536] {
            let data = vec![0xffu8; len];
            assert_eq!(tag(&key, &data), reference(&key, &data), "{len} bytes");
        }
    }

    #[test]
    fn the_lanes_agree_with_one_block_at_a_time() {
        let key = key_of(
            "85d6be7857556d337f4452fe42d506a8",
            "0103808afb0db2fd4abff6af4149f51b",
        );
        let r = clamped_r(&key);
        let data: Vec<u8> = (0..4097u32)
            .map(|i| (i * 131 + 7).to_le_bytes()[0])
            .collect();
        for len in [64, 128, 200, 4096, 4097] {
            let one_at_a_time = finish(blocks([0; 5], &r, &data[..len]), &key[16..]);
            assert_eq!(tag(&key, &data[..len]), one_at_a_time, "{len} bytes");
        }
    }

    proptest! {
        #[test]
        fn any_key_and_message_match_poly1305(
            key in any::<[u8; 32]>(),
            data in proptest::collection::vec(any::<u8>(), 0..2048),
        ) {
            prop_assert_eq!(tag(&key, &data), reference(&key, &data));
        }
    }
}
