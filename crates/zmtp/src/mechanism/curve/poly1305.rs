//! The Poly1305 tag of a MESSAGE box, four blocks per step in SSE2 lanes.
//!
//! Poly1305 evaluates the message as a polynomial in the key's `r` modulo
//! 2^130 − 5, one 16-byte block after another; RustCrypto's portable
//! backend does that with scalar 26-bit limbs, and at 4 KiB it was about
//! 40 % of a CURVE box (its AVX2 backend is slower still on the machines
//! measured, see `.cargo/config.toml`). Here, on x86-64, the blocks go
//! through two 64-bit lanes of SSE2 vectors: with `r²` and `r⁴` computed
//! once per tag, each step takes four blocks as `h·r⁴ + (m₀, m₁)·r² +
//! (m₂, m₃)` (even blocks in one lane, odd in the other, one `pmuludq`
//! per pair of limb products), and the lanes are folded together with
//! `(r², r)` at the end. That is about twice the scalar speed. Whatever
//! does not fill a step (and every input on other targets) takes the same
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
    #[cfg(all(target_arch = "x86_64", target_feature = "sse2"))]
    let (h, rest) = lanes::steps(&r, data);
    #[cfg(not(all(target_arch = "x86_64", target_feature = "sse2")))]
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

/// Four blocks per step in two SSE2 lanes.
#[cfg(all(target_arch = "x86_64", target_feature = "sse2"))]
mod lanes {
    use super::{carry, mul, Limbs, BLOCK, HIBIT, LIMB};
    use safe_arch::{
        add_i64_m128i, bitand_m128i, bitor_m128i, load_unaligned_m128i, m128i,
        mul_widen_u32_odd_m128i, shl_imm_u64_m128i, shr_imm_u64_m128i, unpack_high_i64_m128i,
        unpack_low_i64_m128i, zeroed_m128i,
    };

    /// Bytes of one step: four blocks.
    const STEP: usize = 4 * BLOCK;

    /// Five limbs, each vector holding one limb of two numbers.
    type Lanes = [m128i; 5];

    #[inline(always)]
    fn pair(a: u64, b: u64) -> m128i {
        m128i::from([a, b])
    }

    #[inline(always)]
    fn add(a: m128i, b: m128i) -> m128i {
        add_i64_m128i(a, b)
    }

    /// The low 32 bits of each lane of `a` times those of `b`, 64-bit results.
    #[inline(always)]
    fn mul32(a: m128i, b: m128i) -> m128i {
        mul_widen_u32_odd_m128i(a, b)
    }

    /// The limbs of two consecutive whole blocks (32 bytes), one per lane.
    #[inline(always)]
    fn two_blocks(bytes: &[u8; 2 * BLOCK]) -> Lanes {
        let (first, second) = bytes.split_at(BLOCK);
        let (Ok(first), Ok(second)) = (<&[u8; BLOCK]>::try_from(first), second.try_into()) else {
            unreachable!("32 bytes split into two blocks of 16");
        };
        let a = load_unaligned_m128i(first);
        let b = load_unaligned_m128i(second);
        let lo = unpack_low_i64_m128i(a, b);
        let hi = unpack_high_i64_m128i(a, b);
        let limb = pair(LIMB, LIMB);
        [
            bitand_m128i(lo, limb),
            bitand_m128i(shr_imm_u64_m128i::<26>(lo), limb),
            bitand_m128i(
                bitor_m128i(shr_imm_u64_m128i::<52>(lo), shl_imm_u64_m128i::<12>(hi)),
                limb,
            ),
            bitand_m128i(shr_imm_u64_m128i::<14>(hi), limb),
            bitor_m128i(shr_imm_u64_m128i::<40>(hi), pair(HIBIT, HIBIT)),
        ]
    }

    /// A multiplier per lane: its limbs and the limbs times 5.
    struct Multiplier {
        r: Lanes,
        s: Lanes,
    }

    impl Multiplier {
        fn new(a: &Limbs, b: &Limbs) -> Multiplier {
            Multiplier {
                r: core::array::from_fn(|i| pair(a[i], b[i])),
                s: core::array::from_fn(|i| pair(a[i] * 5, b[i] * 5)),
            }
        }

        /// `h·r` per lane, not yet reduced (the same sums as `super::mul`).
        #[inline(always)]
        fn times(&self, h: &Lanes) -> Lanes {
            let (r, s) = (&self.r, &self.s);
            let dot = |a: [m128i; 5]| {
                add(
                    add(
                        add(mul32(h[0], a[0]), mul32(h[1], a[1])),
                        add(mul32(h[2], a[2]), mul32(h[3], a[3])),
                    ),
                    mul32(h[4], a[4]),
                )
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
    fn carry_lanes(mut d: Lanes) -> Lanes {
        let limb = pair(LIMB, LIMB);
        let mut step = |from: usize, to: usize, times5: bool| {
            let c = shr_imm_u64_m128i::<26>(d[from]);
            d[from] = bitand_m128i(d[from], limb);
            let c = if times5 {
                add(c, shl_imm_u64_m128i::<2>(c))
            } else {
                c
            };
            d[to] = add(d[to], c);
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

    /// Absorbs every whole step of `data`; returns the accumulator (reduced)
    /// and the bytes left for block-at-a-time processing.
    pub(super) fn steps<'a>(r: &Limbs, data: &'a [u8]) -> (Limbs, &'a [u8]) {
        let whole = data.len() / STEP * STEP;
        if whole == 0 {
            return ([0; 5], data);
        }
        let (head, rest) = data.split_at(whole);
        let r2 = carry(mul(r, r));
        let r4 = carry(mul(&r2, &r2));
        let by_r2 = Multiplier::new(&r2, &r2);
        let by_r4 = Multiplier::new(&r4, &r4);
        // The loop carries the unreduced sums and reduces them at the top
        // of the next step: the reduction and the products then sit in one
        // block of code, where the compiler can see that every multiplied
        // limb fits 32 bits and emit one `pmuludq` per product (reduced at
        // the bottom, it falls back to a 64-bit multiply of three).
        let mut d = [zeroed_m128i(); 5];
        for step in head.chunks_exact(STEP) {
            let (Ok(front), Ok(back)) = (
                <&[u8; 2 * BLOCK]>::try_from(&step[..2 * BLOCK]),
                <&[u8; 2 * BLOCK]>::try_from(&step[2 * BLOCK..]),
            ) else {
                unreachable!("a step is four blocks");
            };
            let h = carry_lanes(d);
            let older = by_r2.times(&two_blocks(front));
            let newer = two_blocks(back);
            let h = by_r4.times(&h);
            d = core::array::from_fn(|i| add(add(h[i], older[i]), newer[i]));
        }
        // Lane 0 holds the blocks two places from the end (times r²), lane 1
        // those one place from it (times r): fold both into one number.
        let folded = Multiplier::new(&r2, r).times(&carry_lanes(d));
        let sum = core::array::from_fn(|i| {
            let [a, b] = <[u64; 2]>::from(folded[i]);
            a + b
        });
        (carry(sum), rest)
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
