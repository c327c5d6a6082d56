//! Point operations: per-sample functions through 8-bit lookup tables (vectorised on
//! AVX-512BW), 16-bit tables, and the exact affine fast paths (brightness, contrast).

use std::sync::Mutex;

use clarity_image::{Image, Samples};

use super::{same_layout, vectorized, vectorized_job};

/// The quantisation of every point op: `f(s)` rounded half up and clamped to `[0, max]` (the
/// caller truncates with `as`). Clamping first, then truncating, equals `floor` then clamp for
/// every finite value, maps NaN to 0, and vectorises.
#[inline(always)]
fn quantise(v: f64, max: f64) -> f64 {
    (v + 0.5).clamp(0.0, max)
}

fn lut8(f: &impl Fn(f64) -> f64) -> [u8; 256] {
    let mut lut = [0u8; 256];
    for (s, o) in lut.iter_mut().enumerate() {
        *o = quantise(f(s as f64), 255.0) as u8;
    }
    lut
}

/// An 8-bit table lookup, the same bytes on every path. On AVX-512BW CPUs the 256 entries are
/// held as 16-bit words in eight registers and 32 samples are looked up at once with two-register
/// word permutes (`vpermi2w`, four per sample vector, the top two bits of the sample choosing
/// among them), reached safely through pulp's `V4` token: a scalar table loop is one load per
/// byte, and no crate offers a vectorised 256-entry byte table (this is the route albucore takes
/// with byte permutes, which pulp does not expose).
pub(crate) fn apply_lut8(v: &[u8], lut: &[u8; 256]) -> Vec<u8> {
    #[cfg(target_arch = "x86_64")]
    if let Some(simd) = pulp::x86::V4::try_new() {
        return pulp::Simd::vectorize(simd, Lut8V4 { simd, v, lut });
    }
    lut8_scalar(v, lut)
}

pub(crate) fn lut8_scalar(v: &[u8], lut: &[u8; 256]) -> Vec<u8> {
    v.iter().map(|&s| lut[s as usize]).collect()
}

#[cfg(target_arch = "x86_64")]
struct Lut8V4<'a> {
    simd: pulp::x86::V4,
    v: &'a [u8],
    lut: &'a [u8; 256],
}

/// 32 samples held as words → their table entries. A function, not a closure: only code inlined
/// into pulp's dispatched function gets AVX-512, and a closure may be left out of line (then every
/// intrinsic is a call).
#[cfg(target_arch = "x86_64")]
#[inline(always)]
fn lut8_words(
    bw: pulp::core_arch::x86::Avx512bw,
    table: &[core::arch::x86_64::__m512i; 8],
    (bit6, bit7): (core::arch::x86_64::__m512i, core::arch::x86_64::__m512i),
    w: core::arch::x86_64::__m512i,
) -> core::arch::x86_64::__m512i {
    // Each pair of registers covers 64 entries; bits 6 and 7 of the sample pick the pair.
    let r0 = bw._mm512_permutex2var_epi16(table[0], w, table[1]);
    let r1 = bw._mm512_permutex2var_epi16(table[2], w, table[3]);
    let r2 = bw._mm512_permutex2var_epi16(table[4], w, table[5]);
    let r3 = bw._mm512_permutex2var_epi16(table[6], w, table[7]);
    let m6 = bw._mm512_test_epi16_mask(w, bit6);
    let m7 = bw._mm512_test_epi16_mask(w, bit7);
    let low = bw._mm512_mask_blend_epi16(m6, r0, r1);
    let high = bw._mm512_mask_blend_epi16(m6, r2, r3);
    bw._mm512_mask_blend_epi16(m7, low, high)
}

#[cfg(target_arch = "x86_64")]
impl pulp::WithSimd for Lut8V4<'_> {
    type Output = Vec<u8>;
    #[inline(always)]
    fn with_simd<S: pulp::Simd>(self, _: S) -> Vec<u8> {
        use core::arch::x86_64::__m512i;
        let Self { simd, v, lut } = self;
        let (bw, f) = (simd.avx512bw, simd.avx512f);
        let words: [[u16; 32]; 8] =
            std::array::from_fn(|t| std::array::from_fn(|i| lut[32 * t + i] as u16));
        let table: [__m512i; 8] = words.map(pulp::cast);
        let bits = (f._mm512_set1_epi16(64), f._mm512_set1_epi16(128));
        let zero = f._mm512_setzero_si512();
        let mut out = vec![0u8; v.len()];
        let (chunks, tail) = pulp::as_arrays::<64, u8>(v);
        let (out_chunks, out_tail) = pulp::as_arrays_mut::<64, u8>(&mut out);
        for (o, c) in out_chunks.iter_mut().zip(chunks) {
            let x: __m512i = pulp::cast(*c);
            // Unpacking with zero and packing back are both per 128-bit lane, so the bytes
            // come back in their original order.
            let lo = lut8_words(bw, &table, bits, bw._mm512_unpacklo_epi8(x, zero));
            let hi = lut8_words(bw, &table, bits, bw._mm512_unpackhi_epi8(x, zero));
            *o = pulp::cast(bw._mm512_packus_epi16(lo, hi));
        }
        for (o, &s) in out_tail.iter_mut().zip(tail) {
            *o = lut[s as usize];
        }
        out
    }
}

/// A point operation through a lookup table: `f(sample)` rounded half up and clamped, 256
/// entries for 8-bit, 65 536 for 16-bit samples (small 16-bit images evaluate `f` per sample:
/// same numbers, less set-up).
pub(crate) fn point_op(image: &Image, key: PointKey, f: impl Fn(f64) -> f64) -> Image {
    let samples = match image.samples() {
        Samples::U8(v) => Samples::U8(apply_lut8(v, &key.lut8(&f))),
        Samples::U16(v) if v.len() <= 65536 => Samples::U16(
            v.iter()
                .map(|&s| quantise(f(s as f64), 65535.0) as u16)
                .collect(),
        ),
        Samples::U16(v) => {
            let lut: Box<[u16; 65536]> = (0..=65535u32)
                .map(|s| quantise(f(s as f64), 65535.0) as u16)
                .collect::<Vec<u16>>()
                .try_into()
                .expect("65536 entries");
            Samples::U16(v.iter().map(|&s| lut[s as usize]).collect())
        }
    };
    same_layout(image, samples)
}

/// [`point_op`] for an `f` that is affine in the sample (brightness, contrast, windowing), with
/// the same output bytes: 8-bit samples go through the integer form `(A·s + B) >> 16` when it
/// reproduces the 256-entry table exactly (checked on all 256 values, else the table is used);
/// 16-bit samples evaluate `f` in f64 per sample, which is what the table would hold.
pub(crate) fn affine_point_op(
    image: &Image,
    key: PointKey,
    f: impl Fn(f64) -> f64 + Copy,
) -> Image {
    let samples = match image.samples() {
        Samples::U8(v) => {
            let lut = lut8(&f);
            Samples::U8(match fixed_point_fit(&lut, &f) {
                Some((a, b)) => vectorized(FixedAffine8 { v, a, b }),
                None => apply_lut8(v, &lut),
            })
        }
        Samples::U16(v) => {
            // An f32 form `a·s + b` is twice as wide per vector; it is used only when it gives
            // the f64 result for all 65 536 inputs (checked here, worth it for large images).
            let a = ((f(65535.0) - f(0.0)) / 65535.0) as f32;
            let b = (f(0.0) + 0.5) as f32;
            let exact = v.len() >= 1 << 18
                && a.is_finite()
                && b.is_finite()
                && key.checked(|| {
                    vectorized(CheckAffine16 {
                        f,
                        a,
                        b,
                        lifetime: std::marker::PhantomData,
                    })
                });
            Samples::U16(if exact {
                vectorized(FastAffine16 { v, a, b })
            } else {
                vectorized(Affine16 { v, f })
            })
        }
    };
    same_layout(image, samples)
}

/// What determines a point op's `f` exactly: the kernel and the f64 values its closure
/// captures. [`affine_point_op`] remembers, per key, whether the f32 form matched the f64 values
/// on all 65 536 inputs, so the check (about 15 % of a 1024² call) runs once per parameter set
/// and process; [`point_op`] remembers its 8-bit table. Either is what would be computed again,
/// so the caches cannot change an output.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct PointKey {
    kernel: &'static str,
    bits: [u64; 3],
}

impl PointKey {
    pub fn new(kernel: &'static str, values: &[f64]) -> PointKey {
        assert!(values.len() <= 3, "PointKey holds three values");
        let mut bits = [0u64; 3];
        for (b, v) in bits.iter_mut().zip(values) {
            *b = v.to_bits();
        }
        PointKey { kernel, bits }
    }

    /// The 8-bit table of `f`, memoised like [`PointKey::checked`] (256 `powf` calls are 7 % of
    /// a 512² gamma call). `f` is determined by the key, so the memo cannot change an output.
    fn lut8(self, f: &impl Fn(f64) -> f64) -> [u8; 256] {
        static SEEN: Memo<[u8; 256]> = Mutex::new(Vec::new());
        self.memo(&SEEN, || lut8(f))
    }

    /// `check()`, memoised.
    fn checked(self, check: impl FnOnce() -> bool) -> bool {
        static SEEN: Memo<bool> = Mutex::new(Vec::new());
        self.memo(&SEEN, check)
    }

    /// `compute()` for this key, remembered in `seen` (a small most-recent-first list; 64
    /// entries).
    fn memo<V: Copy>(self, seen: &Memo<V>, compute: impl FnOnce() -> V) -> V {
        let hit = seen
            .lock()
            .ok()
            .and_then(|s| s.iter().find(|(k, _)| *k == self).map(|e| e.1));
        if let Some(v) = hit {
            return v;
        }
        let v = compute();
        if let Ok(mut s) = seen.lock() {
            s.insert(0, (self, v));
            s.truncate(64);
        }
        v
    }
}

/// A [`PointKey`] memo: values by key, most recent first.
type Memo<V> = Mutex<Vec<(PointKey, V)>>;

/// `clamp(a·s + b, 0, 65535)` truncated, in f32 (`b` includes the +½ of rounding); NaN → 0.
#[inline(always)]
fn affine16_f32(s: u16, a: f32, b: f32) -> u16 {
    // Not `clamp`: it keeps NaN, which must become 0.
    #[allow(clippy::manual_clamp)]
    let y = (a * s as f32 + b).max(0.0).min(65535.0).floor();
    ((y + 8_388_608.0).to_bits() - 0x4B00_0000) as u16
}

/// [`Affine16`]'s value for one sample.
#[inline(always)]
fn affine16_f64(s: u16, f: &impl Fn(f64) -> f64) -> u16 {
    // `quantise` then truncation, read off the mantissa bits of `y + 2^52` (a float to int
    // `as` would not vectorise). Not `clamp`: it keeps NaN, which must become 0.
    #[allow(clippy::manual_clamp)]
    let y = (f(s as f64) + 0.5).max(0.0).min(65535.0).floor();
    ((y + 4_503_599_627_370_496.0).to_bits() - 0x4330_0000_0000_0000) as u16
}

vectorized_job! {
    /// Whether the f32 form matches the f64 one on every 16-bit input.
    struct CheckAffine16<'a, F: Fn(f64) -> f64> {
        f: F,
        a: f32,
        b: f32,
        lifetime: std::marker::PhantomData<&'a ()>,
    } -> bool {
        (0..=65535u16)
            .map(|s| (affine16_f32(s, a, b) != affine16_f64(s, &f)) as u32)
            .sum::<u32>()
            == 0
    }
}

vectorized_job! {
    struct FastAffine16<'a> { v: &'a [u16], a: f32, b: f32 } -> Vec<u16> {
        v.iter().map(|&s| affine16_f32(s, a, b)).collect()
    }
}

vectorized_job! {
    struct FixedAffine8<'a> { v: &'a [u8], a: i32, b: i32 } -> Vec<u8> {
        v.iter()
            .map(|&s| ((s as i32 * a + b) >> 16).clamp(0, 255) as u8)
            .collect()
    }
}

vectorized_job! {
    struct Affine16<'a, F: Fn(f64) -> f64> { v: &'a [u16], f: F } -> Vec<u16> {
        v.iter().map(|&s| affine16_f64(s, &f)).collect()
    }
}

/// Integer constants `(A, B)` with `clamp((A·s + B) >> 16, 0, 255) == lut[s]` for every 8-bit
/// `s`, for an affine `f`; `None` when rounding makes no such pair (then the table is used).
fn fixed_point_fit(lut: &[u8; 256], f: &impl Fn(f64) -> f64) -> Option<(i32, i32)> {
    let a = (f(255.0) - f(0.0)) / 255.0 * 65536.0;
    let b = (f(0.0) + 0.5) * 65536.0;
    // |A·255| + |B| must stay inside i32.
    if !(a.is_finite() && b.is_finite()) || a.abs() * 255.0 + b.abs() > 2.0e9 {
        return None;
    }
    let (a, b) = (a.round() as i32, b.round() as i32);
    [0, -1, 1, -2, 2, -4, 4].into_iter().find_map(|nudge| {
        let b = b + nudge;
        (0..256i32)
            .all(|s| ((a * s + b) >> 16).clamp(0, 255) as u8 == lut[s as usize])
            .then_some((a, b))
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kernels::common::{noise, scalar};

    #[test]
    fn table_lookup_paths_agree() {
        // Every byte value, in every position of a 64-byte vector, plus a ragged tail.
        let lut: [u8; 256] = std::array::from_fn(|i| (i as u8).wrapping_mul(151).wrapping_add(7));
        for n in [0, 1, 63, 64, 65, 1000, 64 * 256 + 17] {
            let v = noise::<u8>(n);
            let got = apply_lut8(&v, &lut);
            assert_eq!(got, lut8_scalar(&v, &lut), "n = {n}");
            assert!(got.iter().zip(&v).all(|(&g, &s)| g == lut[s as usize]));
        }
        let all: Vec<u8> = (0..=255u8).cycle().take(64 * 64).collect();
        assert_eq!(apply_lut8(&all, &lut), lut8_scalar(&all, &lut));
    }

    #[test]
    fn affine_16_bit_fast_path_equals_the_f64_values() {
        // Large enough (2^18 samples) for the checked f32 path; every sample must equal
        // `f` evaluated in f64, rounded half up and clamped, whichever path runs.
        fn check(id: f64, f: impl Fn(f64) -> f64 + Copy) {
            let v = noise::<u16>(1 << 18);
            let img =
                Image::from_u16(512, 512, clarity_image::Channels::Gray, v.clone()).expect("size");
            // Twice: the second call takes the memoised check.
            for _ in 0..2 {
                let out = affine_point_op(&img, PointKey::new("test", &[id]), f);
                let Samples::U16(got) = out.samples() else {
                    panic!("16-bit in, 16-bit out")
                };
                for (&s, &g) in v.iter().zip(got) {
                    assert_eq!(g, quantise(f(s as f64), 65535.0) as u16, "s = {s}");
                }
            }
        }
        check(1.0, |s| s * 1.2);
        check(2.0, |s| 31234.56 + 0.8 * (s - 31234.56));
        check(3.0, |s| s * 1.333_333_3);
        check(4.0, |s| (s - 32767.5 - 0.1 * 65535.0) / 0.7 + 32767.5);
    }

    #[test]
    fn simd_and_baseline_paths_give_the_same_bytes() {
        // The dispatched path (AVX2 or AVX-512 here) against the baseline build of the same
        // loops: integer and uncontracted float arithmetic must not depend on the vector width.
        let v8 = noise::<u8>(67 * 23 * 3);
        let v16 = noise::<u16>(67 * 23 * 3);
        let f = |s: f64| 12.5 + 0.8 * (s - 12.5);
        let aff = || Affine16 { v: &v16, f };
        assert_eq!(vectorized(aff()), scalar(aff()));
        let fast = || FastAffine16 {
            v: &v16,
            a: 0.8,
            b: 3.0,
        };
        assert_eq!(vectorized(fast()), scalar(fast()));
        let fixed = || FixedAffine8 {
            v: &v8,
            a: 78643,
            b: 32768,
        };
        assert_eq!(vectorized(fixed()), scalar(fixed()));
    }
}
