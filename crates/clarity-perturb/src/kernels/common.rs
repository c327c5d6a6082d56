//! Shared helpers: parameter declarations, sample types, borders, separable filtering, point
//! operations and random draws used by several kernel families.

use clarity_image::{Image, Samples};
use rand::Rng;

use crate::KernelRng;
use crate::params::{DefaultValue, ParamKind, ParamSpec, ParamValue, Params, PerturbError};

/// `const` constructor for a float parameter declaration.
pub(crate) const fn float(
    name: &'static str,
    doc: &'static str,
    unit: &'static str,
    min: f64,
    max: f64,
    default: f64,
    identity: Option<f64>,
) -> ParamSpec {
    ParamSpec {
        name,
        doc,
        unit,
        kind: ParamKind::Float { min, max },
        default: DefaultValue::Num(default),
        identity: match identity {
            Some(x) => Some(DefaultValue::Num(x)),
            None => None,
        },
    }
}

/// `const` constructor for an integer parameter declaration.
pub(crate) const fn int(
    name: &'static str,
    doc: &'static str,
    unit: &'static str,
    min: i64,
    max: i64,
    default: i64,
    identity: Option<i64>,
) -> ParamSpec {
    ParamSpec {
        name,
        doc,
        unit,
        kind: ParamKind::Int { min, max },
        default: DefaultValue::Num(default as f64),
        identity: match identity {
            Some(x) => Some(DefaultValue::Num(x as f64)),
            None => None,
        },
    }
}

/// `const` constructor for a choice parameter declaration (no identity value).
pub(crate) const fn choice(
    name: &'static str,
    doc: &'static str,
    names: &'static [&'static str],
    default: &'static str,
) -> ParamSpec {
    ParamSpec {
        name,
        doc,
        unit: "",
        kind: ParamKind::Choice(names),
        default: DefaultValue::Text(default),
        identity: None,
    }
}

/// Builds a parameter set from numeric pairs.
pub(crate) fn nums(pairs: &[(&str, f64)]) -> Params {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), ParamValue::Num(*v)))
        .collect()
}

/// Five presets of a single numeric parameter.
pub(crate) fn presets1(name: &str, levels: [f64; 5]) -> [Params; 5] {
    levels.map(|v| nums(&[(name, v)]))
}

/// A sample type: `u8` or `u16`.
pub(crate) trait Sample: Copy + Default + PartialEq + Send + Sync + 'static {
    const MAX: u32;
    fn to_u32(self) -> u32;
    fn to_f32(self) -> f32;
    /// Rounds half up and clamps to `[0, MAX]`. NaN maps to 0.
    fn from_f32(v: f32) -> Self;
    /// Clamps to `[0, MAX]`.
    fn from_i64(v: i64) -> Self;
    /// Truncates a value already in `[0, MAX]`.
    fn from_u32_trunc(v: u32) -> Self;
    /// [`Sample::from_f32`] for loops inside [`vectorized`]: the same values without a float to
    /// int `as` (its saturation blocks vectorisation): the clamped, floored value is read off the
    /// mantissa bits of `y + 2^23`.
    #[inline(always)]
    fn from_f32_simd(v: f32) -> Self {
        // Not `clamp`: it keeps NaN, which must become 0.
        #[allow(clippy::manual_clamp)]
        let y = (v + 0.5).max(0.0).min(Self::MAX as f32).floor();
        Self::from_u32_trunc((y + 8_388_608.0).to_bits() - 0x4B00_0000)
    }
}

impl Sample for u8 {
    const MAX: u32 = 255;
    #[inline(always)]
    fn to_u32(self) -> u32 {
        self as u32
    }
    #[inline(always)]
    fn to_f32(self) -> f32 {
        self as f32
    }
    #[inline(always)]
    fn from_f32(v: f32) -> Self {
        // +0.5 then truncation rounds half up; clamping first (NaN stays NaN, which `as` maps
        // to 0) gives the same values as a saturating `as u8` but vectorises.
        (v + 0.5).clamp(0.0, 255.0) as i32 as u8
    }
    #[inline(always)]
    fn from_i64(v: i64) -> Self {
        v.clamp(0, 255) as u8
    }
    #[inline(always)]
    fn from_u32_trunc(v: u32) -> Self {
        v as u8
    }
}

impl Sample for u16 {
    const MAX: u32 = 65535;
    #[inline(always)]
    fn to_u32(self) -> u32 {
        self as u32
    }
    #[inline(always)]
    fn to_f32(self) -> f32 {
        self as f32
    }
    #[inline(always)]
    fn from_f32(v: f32) -> Self {
        (v + 0.5).clamp(0.0, 65535.0) as i32 as u16
    }
    #[inline(always)]
    fn from_i64(v: i64) -> Self {
        v.clamp(0, 65535) as u16
    }
    #[inline(always)]
    fn from_u32_trunc(v: u32) -> Self {
        v as u16
    }
}

/// Rebuilds an image with the same layout from a new sample buffer.
pub(crate) fn same_layout(image: &Image, samples: Samples) -> Image {
    Image::new(image.width(), image.height(), image.channels(), samples)
        .expect("kernel output keeps the input layout")
}

/// Applies a generic per-depth function to the samples and rebuilds the image.
macro_rules! map_samples {
    ($image:expr, |$v:ident| $body:expr) => {{
        let img: &clarity_image::Image = $image;
        let samples = match img.samples() {
            clarity_image::Samples::U8($v) => clarity_image::Samples::U8($body),
            clarity_image::Samples::U16($v) => clarity_image::Samples::U16($body),
        };
        $crate::kernels::common::same_layout(img, samples)
    }};
}
pub(crate) use map_samples;

/// Geometry of an interleaved sample buffer.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Dims {
    pub w: usize,
    pub h: usize,
    pub c: usize,
}

impl Dims {
    pub fn of(image: &Image) -> Self {
        Dims {
            w: image.width() as usize,
            h: image.height() as usize,
            c: image.channels().count(),
        }
    }
    pub fn row_len(self) -> usize {
        self.w * self.c
    }
}

/// Reflect-101 border index (OpenCV's `BORDER_REFLECT_101`: `gfedcb|abcdefgh|gfedcba`), valid for
/// any offset, however far outside.
#[inline]
pub(crate) fn reflect101(i: isize, n: usize) -> usize {
    if n == 1 {
        return 0;
    }
    let n = n as isize;
    let period = 2 * (n - 1);
    let mut i = i.rem_euclid(period);
    if i >= n {
        i = period - i;
    }
    i as usize
}

/// A loop nest to run compiled for the best instruction set of this CPU (AVX-512 or AVX2/FMA on x86-64
/// through pulp's safe runtime dispatch, else the baseline), so the plain slice loops inside
/// autovectorise wider. `run` must be `#[inline(always)]` (and so must what it calls that holds
/// loops): only inlined code gets the wider instruction set. Integer and IEEE float arithmetic
/// (Rust never contracts `a * b + c` into an FMA) give the same bits on every path.
pub(crate) trait Vectorized {
    type Out;
    fn run(self) -> Self::Out;
}

struct Dispatch<J>(J);

impl<J: Vectorized> pulp::WithSimd for Dispatch<J> {
    type Output = J::Out;
    #[inline(always)]
    fn with_simd<S: pulp::Simd>(self, _simd: S) -> J::Out {
        self.0.run()
    }
}

/// Runs `job` through [`Vectorized`] dispatch.
pub(crate) fn vectorized<J: Vectorized>(job: J) -> J::Out {
    pulp::Arch::new().dispatch(Dispatch(job))
}

/// Runs `job` on the baseline path only (tests compare it with [`vectorized`]).
#[cfg(test)]
pub(crate) fn scalar<J: Vectorized>(job: J) -> J::Out {
    use pulp::WithSimd;
    Dispatch(job).with_simd(pulp::Scalar::new())
}

/// Implements [`Vectorized`] for a struct of borrowed inputs with an inlined body.
macro_rules! vectorized_job {
    ($(#[$m:meta])* struct $name:ident<$lt:lifetime $(, $g:ident: $b:path)*> { $($f:ident: $t:ty),* $(,)? } -> $out:ty $body:block) => {
        $(#[$m])*
        struct $name<$lt $(, $g: $b)*> { $($f: $t),* }
        impl<$lt $(, $g: $b)*> $crate::kernels::common::Vectorized for $name<$lt $(, $g)*> {
            type Out = $out;
            #[inline(always)]
            #[allow(unused_variables)]
            fn run(self) -> $out {
                let $name { $($f),* } = self;
                $body
            }
        }
    };
}
pub(crate) use vectorized_job;

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
pub(crate) fn point_op(image: &Image, f: impl Fn(f64) -> f64) -> Image {
    let samples = match image.samples() {
        Samples::U8(v) => Samples::U8(apply_lut8(v, &lut8(&f))),
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
    key: AffineKey,
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

/// What determines an affine point op's `f` exactly: the kernel and the f64 values its closure
/// captures. [`affine_point_op`] remembers, per key, whether the f32 form matched the f64 values
/// on all 65 536 inputs, so the check (about 15 % of a 1024² call) runs once per parameter set
/// and process. Either answer gives the same bytes (the check only picks the faster of two exact
/// paths), so the cache cannot change an output.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct AffineKey {
    kernel: &'static str,
    bits: [u64; 3],
}

impl AffineKey {
    pub fn new(kernel: &'static str, values: &[f64]) -> AffineKey {
        assert!(values.len() <= 3, "AffineKey holds three values");
        let mut bits = [0u64; 3];
        for (b, v) in bits.iter_mut().zip(values) {
            *b = v.to_bits();
        }
        AffineKey { kernel, bits }
    }

    /// `check()`, memoised (a small most-recent-first list; 64 entries).
    fn checked(self, check: impl FnOnce() -> bool) -> bool {
        use std::sync::Mutex;
        static SEEN: Mutex<Vec<(AffineKey, bool)>> = Mutex::new(Vec::new());
        let hit = SEEN
            .lock()
            .ok()
            .and_then(|s| s.iter().find(|(k, _)| *k == self).map(|e| e.1));
        if let Some(ok) = hit {
            return ok;
        }
        let ok = check();
        if let Ok(mut s) = SEEN.lock() {
            s.insert(0, (self, ok));
            s.truncate(64);
        }
        ok
    }
}

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

/// Normalised 1-D Gaussian weights of radius `r`.
pub(crate) fn gaussian_weights(sigma: f64, r: usize) -> Vec<f32> {
    let w: Vec<f64> = (0..=2 * r)
        .map(|i| {
            let d = i as f64 - r as f64;
            (-(d * d) / (2.0 * sigma * sigma)).exp()
        })
        .collect();
    let sum: f64 = w.iter().sum();
    w.iter().map(|x| (x / sum) as f32).collect()
}

/// Separable convolution of an interleaved `f32` plane with reflect-101 borders. `kx`/`ky` have
/// odd lengths, centred. Accumulation order is fixed (tap by tap), so results are bit-exact.
pub(crate) fn convolve_separable(src: &[f32], d: Dims, kx: &[f32], ky: &[f32]) -> Vec<f32> {
    let rl = d.row_len();
    let rx = kx.len() / 2;
    let ry = ky.len() / 2;
    // Horizontal pass.
    let mut tmp = vec![0f32; src.len()];
    let mut padded = vec![0f32; (d.w + 2 * rx) * d.c];
    for (row, out) in src.chunks_exact(rl).zip(tmp.chunks_exact_mut(rl)) {
        for (px, chunk) in padded.chunks_exact_mut(d.c).enumerate() {
            let sx = reflect101(px as isize - rx as isize, d.w);
            chunk.copy_from_slice(&row[sx * d.c..sx * d.c + d.c]);
        }
        for (k, &wk) in kx.iter().enumerate() {
            let window = &padded[k * d.c..k * d.c + rl];
            for (o, &s) in out.iter_mut().zip(window) {
                *o += wk * s;
            }
        }
    }
    // Vertical pass.
    let mut dst = vec![0f32; src.len()];
    for (y, out) in dst.chunks_exact_mut(rl).enumerate() {
        for (k, &wk) in ky.iter().enumerate() {
            let sy = reflect101(y as isize + k as isize - ry as isize, d.h);
            let row = &tmp[sy * rl..sy * rl + rl];
            for (o, &s) in out.iter_mut().zip(row) {
                *o += wk * s;
            }
        }
    }
    dst
}

/// Gaussian blur of a sample buffer (OpenCV's kernel size rule: `ksize = round(2·k·σ + 1) | 1`
/// with k = 3 for 8-bit and 4 for 16-bit samples; reflect-101 borders).
pub(crate) fn gaussian_blur_samples<T: Sample>(v: &[T], d: Dims, sigma: f64) -> Vec<T> {
    let k = gaussian_weights(sigma, gaussian_radius::<T>(sigma));
    vectorized(Separable { v, d, k: &k })
}

/// The `gaussian_blur` kernel (v3) on 8-bit samples: 16-bit fixed point
/// ([`symmetric_separable_u8_fixed`]); 16-bit samples use [`gaussian_blur_samples`].
pub(crate) fn gaussian_blur_u8(v: &[u8], d: Dims, sigma: f64) -> Vec<u8> {
    let k = gaussian_weights(sigma, gaussian_radius::<u8>(sigma));
    symmetric_separable_u8_fixed(v, d, &k).unwrap_or_else(|| gaussian_blur_samples(v, d, sigma))
}

vectorized_job! {
    struct Separable<'a, T: Sample> { v: &'a [T], d: Dims, k: &'a [f32] } -> Vec<T> {
        symmetric_separable(v, d, k)
    }
}

/// Reflect-101 horizontal padding by `r` pixels: the source columns of the `r` pixels left and
/// right of a row, which a horizontal pass with radius `r` reads.
pub(crate) struct RowPad {
    pub left: Vec<usize>,
    pub right: Vec<usize>,
    r: usize,
    w: usize,
    c: usize,
}

impl RowPad {
    pub fn new(d: Dims, r: usize) -> RowPad {
        RowPad {
            left: (0..r)
                .map(|p| reflect101(p as isize - r as isize, d.w))
                .collect(),
            right: (0..r)
                .map(|p| reflect101((d.w + p) as isize, d.w))
                .collect(),
            r,
            w: d.w,
            c: d.c,
        }
    }

    /// Writes `row`, converted by `f`, into `padded` (`(w + 2r)·c` long) with its borders.
    #[inline(always)]
    pub fn fill<T: Copy, U>(&self, row: &[T], padded: &mut [U], f: impl Fn(T) -> U) {
        let (r, c, rl) = (self.r, self.c, self.w * self.c);
        for (o, &s) in padded[r * c..r * c + rl].iter_mut().zip(row) {
            *o = f(s);
        }
        for (p, &sx) in self.left.iter().enumerate() {
            for ch in 0..c {
                padded[p * c + ch] = f(row[sx * c + ch]);
            }
        }
        for (p, &sx) in self.right.iter().enumerate() {
            for ch in 0..c {
                padded[(r + self.w + p) * c + ch] = f(row[sx * c + ch]);
            }
        }
    }
}

/// Rows per block of the vertical pass of [`symmetric_separable`] (kept in L1).
const BLOCK: usize = 256;

/// Separable convolution with one symmetric odd kernel `k` on both axes, reflect-101 borders,
/// rounded back to the sample type. Symmetric taps are paired (`k[r−j]·(a + b)`) and summed in
/// a fixed order, so the result is the same on every machine and vector width; the loops are
/// plain slices so they autovectorise.
#[inline(always)]
pub(crate) fn symmetric_separable<T: Sample>(v: &[T], d: Dims, k: &[f32]) -> Vec<T> {
    let r = k.len() / 2;
    let (rl, c) = (d.row_len(), d.c);
    // Horizontal pass into an f32 image.
    let mut tmp = vec![0f32; v.len()];
    let mut padded = vec![0f32; (d.w + 2 * r) * c];
    let pad = RowPad::new(d, r);
    for (row, out) in v.chunks_exact(rl).zip(tmp.chunks_exact_mut(rl)) {
        pad.fill(row, &mut padded, |s| s.to_f32());
        let centre = &padded[r * c..r * c + rl];
        let k0 = k[r];
        for (o, &s) in out.iter_mut().zip(centre) {
            *o = k0 * s;
        }
        for j in 1..=r {
            let kj = k[r - j];
            let a = &padded[(r - j) * c..(r - j) * c + rl];
            let b = &padded[(r + j) * c..(r + j) * c + rl];
            for ((o, &x), &y) in out.iter_mut().zip(a).zip(b) {
                *o += kj * (x + y);
            }
        }
    }
    // Vertical pass, in column blocks so the accumulator stays in L1.
    let mut dst = vec![T::default(); v.len()];
    let mut acc = [0f32; BLOCK];
    let row = |y: isize| -> &[f32] {
        let sy = reflect101(y, d.h);
        &tmp[sy * rl..sy * rl + rl]
    };
    for (y, orow) in dst.chunks_exact_mut(rl).enumerate() {
        let y = y as isize;
        let centre = row(y);
        let pairs: Vec<(&[f32], &[f32], f32)> = (1..=r)
            .map(|j| (row(y - j as isize), row(y + j as isize), k[r - j]))
            .collect();
        for (bi, oblock) in orow.chunks_mut(BLOCK).enumerate() {
            let lo = bi * BLOCK;
            let n = oblock.len();
            let acc = &mut acc[..n];
            for (a, &s) in acc.iter_mut().zip(&centre[lo..lo + n]) {
                *a = k[r] * s;
            }
            for &(above, below, kj) in &pairs {
                for ((a, &x), &y) in acc
                    .iter_mut()
                    .zip(&above[lo..lo + n])
                    .zip(&below[lo..lo + n])
                {
                    *a += kj * (x + y);
                }
            }
            for (o, &a) in oblock.iter_mut().zip(acc.iter()) {
                *o = T::from_f32_simd(a);
            }
        }
    }
    dst
}

/// Weights of `k` quantised to integers summing to `one` (nearest, the centre absorbing the
/// remainder), or `None` when the centre would not fit in 16 bits.
fn quantised_weights(k: &[f32], one: u32) -> Option<Vec<u16>> {
    let r = k.len() / 2;
    let mut q: Vec<u32> = k
        .iter()
        .map(|&w| (w as f64 * one as f64).round() as u32)
        .collect();
    let sides: u32 = (1..=r).map(|j| 2 * q[r - j]).sum();
    q[r] = one.checked_sub(sides)?;
    q.into_iter().map(|w| u16::try_from(w).ok()).collect()
}

/// 8-bit [`symmetric_separable`] in 16-bit fixed point, as OpenCV's 8-bit separable filters
/// do: the horizontal pass sums `sample · w` with weights in 1/256 (exact in 16 bits: at most
/// 255 · 256), the vertical pass sums `⌊h · w / 65536⌋` with weights in 1/65536 (`vpmulhuw`),
/// and the result is rounded half up from 1/256. Twice the lanes of the f32 form; within a level
/// of it. `None` when a weight does not fit (then the f32 form runs).
fn symmetric_separable_u8_fixed(v: &[u8], d: Dims, k: &[f32]) -> Option<Vec<u8>> {
    let (hq, vq) = (quantised_weights(k, 256)?, quantised_weights(k, 65536)?);
    Some(vectorized(FixedSeparable8 {
        v,
        d,
        hq: &hq,
        vq: &vq,
    }))
}

vectorized_job! {
    struct FixedSeparable8<'a> { v: &'a [u8], d: Dims, hq: &'a [u16], vq: &'a [u16] } -> Vec<u8> {
        let r = hq.len() / 2;
        let (rl, c) = (d.row_len(), d.c);
        // Horizontal pass into a 16-bit image (values in 1/256).
        let mut tmp = vec![0u16; v.len()];
        let mut padded = vec![0u16; (d.w + 2 * r) * c];
        let pad = RowPad::new(d, r);
        for (row, out) in v.chunks_exact(rl).zip(tmp.chunks_exact_mut(rl)) {
            pad.fill(row, &mut padded, |s| s as u16);
            let k0 = hq[r];
            for (o, &s) in out.iter_mut().zip(&padded[r * c..r * c + rl]) {
                *o = k0.wrapping_mul(s);
            }
            for j in 1..=r {
                let kj = hq[r - j];
                let a = &padded[(r - j) * c..(r - j) * c + rl];
                let b = &padded[(r + j) * c..(r + j) * c + rl];
                for ((o, &x), &y) in out.iter_mut().zip(a).zip(b) {
                    *o = o.wrapping_add(kj.wrapping_mul(x + y));
                }
            }
        }
        fixed_vertical(&tmp, d, vq)
    }
}

/// The vertical pass of [`FixedSeparable8`]:
/// `out = (Σ_j ⌊h[y + j − r]·vq[j] / 65536⌋ + 128) >> 8` (the sum of floors never exceeds
/// 255 · 256). On AVX-512BW CPUs 32 outputs at a time
/// with `vpmulhuw` through pulp's `V4` token (the autovectoriser widens this pattern to 32-bit
/// lanes and back); elsewhere the same integers one by one.
fn fixed_vertical(tmp: &[u16], d: Dims, vq: &[u16]) -> Vec<u8> {
    #[cfg(target_arch = "x86_64")]
    if let Some(simd) = pulp::x86::V4::try_new() {
        return pulp::Simd::vectorize(simd, VerticalV4 { simd, tmp, d, vq });
    }
    fixed_vertical_scalar(tmp, d, vq)
}

/// `taps[j]` = the row read by vertical tap `j` for output row `y` (reflect-101).
#[inline(always)]
fn vertical_rows(tmp: &[u16], d: Dims, r: usize, y: usize) -> impl Iterator<Item = &[u16]> {
    let rl = d.row_len();
    (0..=2 * r).map(move |j| {
        let sy = reflect101(y as isize + j as isize - r as isize, d.h);
        &tmp[sy * rl..sy * rl + rl]
    })
}

/// One output sample of the vertical pass: `(Σ_j ⌊rows[j][x]·vq[j] / 65536⌋ + 128) >> 8`.
#[inline(always)]
fn vertical_at(rows: &[&[u16]], vq: &[u16], x: usize) -> u8 {
    let a = rows.iter().zip(vq).fold(0u16, |a, (src, &w)| {
        a.wrapping_add(((src[x] as u32 * w as u32) >> 16) as u16)
    });
    ((a as u32 + 128) >> 8) as u8
}

fn fixed_vertical_scalar(tmp: &[u16], d: Dims, vq: &[u16]) -> Vec<u8> {
    let (r, rl) = (vq.len() / 2, d.row_len());
    let mut dst = vec![0u8; tmp.len()];
    for (y, orow) in dst.chunks_exact_mut(rl).enumerate() {
        let rows: Vec<&[u16]> = vertical_rows(tmp, d, r, y).collect();
        for (x, o) in orow.iter_mut().enumerate() {
            *o = vertical_at(&rows, vq, x);
        }
    }
    dst
}

#[cfg(target_arch = "x86_64")]
struct VerticalV4<'a> {
    simd: pulp::x86::V4,
    tmp: &'a [u16],
    d: Dims,
    vq: &'a [u16],
}

#[cfg(target_arch = "x86_64")]
impl pulp::WithSimd for VerticalV4<'_> {
    type Output = Vec<u8>;
    #[inline(always)]
    fn with_simd<S: pulp::Simd>(self, _: S) -> Vec<u8> {
        use core::arch::x86_64::{__m256i, __m512i};
        let Self { simd, tmp, d, vq } = self;
        let (bw, f) = (simd.avx512bw, simd.avx512f);
        let (r, rl) = (vq.len() / 2, d.row_len());
        let weights: Vec<__m512i> = vq.iter().map(|&w| f._mm512_set1_epi16(w as i16)).collect();
        let half = f._mm512_set1_epi16(128);
        let full = rl / 32 * 32;
        let mut dst = vec![0u8; tmp.len()];
        let mut rows: Vec<&[u16]> = Vec::with_capacity(2 * r + 1);
        for (y, orow) in dst.chunks_exact_mut(rl).enumerate() {
            rows.clear();
            rows.extend(vertical_rows(tmp, d, r, y));
            for (ci, o) in orow[..full].chunks_exact_mut(32).enumerate() {
                let lo = ci * 32;
                let mut acc = f._mm512_setzero_si512();
                for (src, &w) in rows.iter().zip(&weights) {
                    let h: [u16; 32] = src[lo..lo + 32].try_into().expect("32 lanes");
                    let h: __m512i = pulp::cast(h);
                    acc = bw._mm512_add_epi16(acc, bw._mm512_mulhi_epu16(h, w));
                }
                let q = bw._mm512_srli_epi16::<8>(bw._mm512_add_epi16(acc, half));
                let bytes: __m256i = bw._mm512_cvtepi16_epi8(q);
                let bytes: [u8; 32] = pulp::cast(bytes);
                o.copy_from_slice(&bytes);
            }
            for (x, o) in orow.iter_mut().enumerate().skip(full) {
                *o = vertical_at(&rows, vq, x);
            }
        }
        dst
    }
}

pub(crate) fn gaussian_radius<T: Sample>(sigma: f64) -> usize {
    let per_side = if T::MAX == 255 { 3.0 } else { 4.0 };
    let ksize = ((sigma * per_side * 2.0 + 1.0).round() as usize) | 1;
    ksize / 2
}

/// Standard-normal quantiles at the midpoints of 65 536 equal-probability bins, in units of
/// 1/4096 σ. A 16-bit uniform draw indexes it: one table lookup per normal deviate, tails cut at
/// ±4.4 σ. Quantised to integers so the table is the same on every platform even if `ln`/`sqrt`
/// differ in the last bit.
pub(crate) fn normal_table() -> &'static [i32; 65536] {
    use std::sync::OnceLock;
    static TABLE: OnceLock<Box<[i32; 65536]>> = OnceLock::new();
    TABLE.get_or_init(|| {
        let mut t = Box::new([0i32; 65536]);
        for (i, slot) in t.iter_mut().enumerate() {
            let p = (i as f64 + 0.5) / 65536.0;
            *slot = (inverse_normal_cdf(p) * 4096.0).round() as i32;
        }
        t
    })
}

/// Acklam's rational approximation of the standard normal quantile (relative error < 1.2e-9).
fn inverse_normal_cdf(p: f64) -> f64 {
    const A: [f64; 6] = [
        -3.969683028665376e+01,
        2.209460984245205e+02,
        -2.759285104469687e+02,
        1.38357751867269e+02,
        -3.066479806614716e+01,
        2.506628277459239e+00,
    ];
    const B: [f64; 5] = [
        -5.447609879822406e+01,
        1.615858368580409e+02,
        -1.556989798598866e+02,
        6.680131188771972e+01,
        -1.328068155288572e+01,
    ];
    const C: [f64; 6] = [
        -7.784894002430293e-03,
        -3.223964580411365e-01,
        -2.400758277161838e+00,
        -2.549732539343734e+00,
        4.374664141464968e+00,
        2.938163982698783e+00,
    ];
    const D: [f64; 4] = [
        7.784695709041462e-03,
        3.224671290700398e-01,
        2.445134137142996e+00,
        3.754408661907416e+00,
    ];
    let plow = 0.02425;
    if p < plow {
        let q = (-2.0 * p.ln()).sqrt();
        (((((C[0] * q + C[1]) * q + C[2]) * q + C[3]) * q + C[4]) * q + C[5])
            / ((((D[0] * q + D[1]) * q + D[2]) * q + D[3]) * q + 1.0)
    } else if p <= 1.0 - plow {
        let q = p - 0.5;
        let r = q * q;
        (((((A[0] * r + A[1]) * r + A[2]) * r + A[3]) * r + A[4]) * r + A[5]) * q
            / (((((B[0] * r + B[1]) * r + B[2]) * r + B[3]) * r + B[4]) * r + 1.0)
    } else {
        let q = (-2.0 * (1.0 - p).ln()).sqrt();
        -(((((C[0] * q + C[1]) * q + C[2]) * q + C[3]) * q + C[4]) * q + C[5])
            / ((((D[0] * q + D[1]) * q + D[2]) * q + D[3]) * q + 1.0)
    }
}

/// Draws standard-normal deviates (in 1/4096 σ units) in bulk: four per `u64` of ChaCha output.
pub(crate) struct NormalStream<'a> {
    rng: &'a mut KernelRng,
    buf: [u64; 64],
    pos: usize,
}

impl<'a> NormalStream<'a> {
    pub fn new(rng: &'a mut KernelRng) -> Self {
        NormalStream {
            rng,
            buf: [0; 64],
            pos: 256,
        }
    }
    /// Fills `out` with deviates (units of 1/4096 σ). The buffer of 64 words is read as 256
    /// little-endian 16-bit indices, low half first: the same deviates, in the same order, as
    /// one word at a time.
    pub fn fill(&mut self, out: &mut [i32]) {
        let table = normal_table();
        let mut idx = [0u16; 256];
        let mut rest = out;
        while !rest.is_empty() {
            if self.pos == 256 {
                for b in self.buf.iter_mut() {
                    *b = self.rng.next_u64();
                }
                self.pos = 0;
            }
            for (pair, &w) in idx.chunks_exact_mut(4).zip(&self.buf) {
                pair.copy_from_slice(&[
                    w as u16,
                    (w >> 16) as u16,
                    (w >> 32) as u16,
                    (w >> 48) as u16,
                ]);
            }
            let take = (256 - self.pos).min(rest.len());
            let (now, later) = rest.split_at_mut(take);
            for (o, &i) in now.iter_mut().zip(&idx[self.pos..self.pos + take]) {
                *o = table[i as usize];
            }
            self.pos += take;
            rest = later;
        }
    }
}

/// A uniform float in `[0, 1)` with 53 random bits.
pub(crate) fn unit_f64(rng: &mut KernelRng) -> f64 {
    (rng.next_u64() >> 11) as f64 * (1.0 / (1u64 << 53) as f64)
}

/// Error for a kernel that cannot process an input.
pub(crate) fn unsupported(kernel: &str, message: impl Into<String>) -> PerturbError {
    PerturbError::Unsupported {
        perturbation: kernel.to_string(),
        message: message.into(),
    }
}

/// Implements the descriptive methods of [`crate::Perturbation`].
macro_rules! meta {
    ($name:literal, $version:literal, $family:ident, random = $random:literal, $desc:literal, $params:expr) => {
        fn name(&self) -> &'static str {
            $name
        }
        fn version(&self) -> u32 {
            $version
        }
        fn family(&self) -> crate::Family {
            crate::Family::$family
        }
        fn description(&self) -> &'static str {
            $desc
        }
        fn params(&self) -> &'static [crate::ParamSpec] {
            &$params
        }
        fn is_random(&self) -> bool {
            $random
        }
    };
}
pub(crate) use meta;

#[cfg(test)]
mod tests {
    use super::*;

    /// Pseudo-random samples covering the whole range.
    fn noise<T: Sample>(n: usize) -> Vec<T> {
        let mut x = 0x2545_f491_4f6c_dd1du64;
        (0..n)
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                T::from_u32_trunc((x >> 20) as u32 % (T::MAX + 1))
            })
            .collect()
    }

    #[test]
    fn fixed_point_gaussian_is_close_to_the_float_one_on_every_path() {
        // Noise is the hardest case for weight quantisation (no smooth regions to cancel in).
        for (w, h, c) in [(67, 23, 1), (31, 17, 3), (300, 2, 1)] {
            let d = Dims { w, h, c };
            let v = noise::<u8>(w * h * c);
            for sigma in [0.3, 0.8, 1.0, 2.0, 5.0] {
                let fixed = gaussian_blur_u8(&v, d, sigma);
                let float = gaussian_blur_samples(&v, d, sigma);
                let diffs: Vec<u32> = fixed
                    .iter()
                    .zip(&float)
                    .map(|(&a, &b)| a.abs_diff(b) as u32)
                    .collect();
                let max = diffs.iter().copied().max().unwrap();
                let mean = diffs.iter().sum::<u32>() as f64 / diffs.len() as f64;
                eprintln!("{w}x{h}x{c} sigma {sigma}: max {max}, mean {mean:.3}");
                assert!(
                    max <= 2 && mean < 0.3,
                    "{w}x{h}x{c} sigma {sigma}: max {max}, mean {mean}"
                );
                // Dispatched (AVX-512/AVX2) and baseline builds give the same bytes.
                let k = gaussian_weights(sigma, gaussian_radius::<u8>(sigma));
                let (hq, vq) = (
                    quantised_weights(&k, 256).unwrap(),
                    quantised_weights(&k, 65536).unwrap(),
                );
                let job = || FixedSeparable8 {
                    v: &v,
                    d,
                    hq: &hq,
                    vq: &vq,
                };
                assert_eq!(vectorized(job()), scalar(job()));
                assert_eq!(vectorized(job()), fixed);
            }
        }
    }

    #[test]
    fn fixed_vertical_pass_paths_agree() {
        // Horizontal results are at most 255·256; widths with and without a ragged tail.
        for (w, h, c) in [(64, 9, 1), (67, 23, 1), (31, 17, 3), (5, 4, 1)] {
            let d = Dims { w, h, c };
            let tmp: Vec<u16> = noise::<u16>(w * h * c)
                .into_iter()
                .map(|x| x % 65281)
                .collect();
            for sigma in [0.8, 2.0, 5.0] {
                let k = gaussian_weights(sigma, gaussian_radius::<u8>(sigma));
                let vq = quantised_weights(&k, 65536).unwrap();
                assert_eq!(
                    fixed_vertical(&tmp, d, &vq),
                    fixed_vertical_scalar(&tmp, d, &vq),
                    "{w}x{h}x{c} sigma {sigma}"
                );
            }
        }
    }

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
                let out = affine_point_op(&img, AffineKey::new("test", &[id]), f);
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
        let d = Dims { w: 67, h: 23, c: 3 };
        let k = gaussian_weights(2.0, 6);
        let v8 = noise::<u8>(d.w * d.h * d.c);
        let v16 = noise::<u16>(d.w * d.h * d.c);
        let job8 = || Separable { v: &v8, d, k: &k };
        let job16 = || Separable { v: &v16, d, k: &k };
        assert_eq!(vectorized(job8()), scalar(job8()));
        assert_eq!(vectorized(job16()), scalar(job16()));
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
        // NaN and out-of-range values round the same way on both paths.
        let odd = [
            f32::NAN,
            -3.0,
            0.49,
            0.5,
            254.5,
            255.49,
            300.0,
            65534.5,
            1e9,
        ];
        for x in odd {
            assert_eq!(u8::from_f32_simd(x), u8::from_f32(x), "{x}");
            assert_eq!(u16::from_f32_simd(x), u16::from_f32(x), "{x}");
        }
    }

    #[test]
    fn reflect101_matches_opencv() {
        // gfedcb|abcdefgh|gfedcba on n = 8 (a = 0).
        let got: Vec<usize> = (-3..11).map(|i| reflect101(i, 8)).collect();
        assert_eq!(got, vec![3, 2, 1, 0, 1, 2, 3, 4, 5, 6, 7, 6, 5, 4]);
        assert_eq!(reflect101(-5, 1), 0);
        // Far outside: keeps bouncing.
        assert_eq!(reflect101(-4, 3), 0);
        assert_eq!(reflect101(5, 3), 1);
    }

    #[test]
    fn normal_table_is_a_standard_normal() {
        let t = normal_table();
        assert!(t.windows(2).all(|w| w[0] <= w[1]), "quantiles increase");
        assert_eq!(t[32767], -t[32768], "symmetric");
        let n = t.len() as f64;
        let mean = t.iter().map(|&z| z as f64 / 4096.0).sum::<f64>() / n;
        let var = t.iter().map(|&z| (z as f64 / 4096.0).powi(2)).sum::<f64>() / n;
        assert!(mean.abs() < 1e-6, "mean {mean}");
        assert!((var - 1.0).abs() < 2e-3, "variance {var}");
        // The 97.5 % quantile is 1.95996.
        let q = t[(0.975 * 65536.0) as usize] as f64 / 4096.0;
        assert!((q - 1.96).abs() < 1e-3, "q97.5 = {q}");
    }

    #[test]
    fn opencv_kernel_size_rule() {
        // sigma 2: 8-bit ksize 13, 16-bit ksize 17.
        assert_eq!(gaussian_radius::<u8>(2.0), 6);
        assert_eq!(gaussian_radius::<u16>(2.0), 8);
        let k = gaussian_weights(2.0, 6);
        assert!((k.iter().sum::<f32>() - 1.0).abs() < 1e-6);
        assert_eq!(k[0], k[12]);
    }
}
