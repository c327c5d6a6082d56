//! Sample types (`u8`, `u16`), rebuilding an image around new samples, and buffer geometry.

use clarity_image::{Image, Samples};

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
    /// Bilinear blend of the taps `[p00, p01, p10, p11]` with weights `wx, wy` in 1/1024
    /// (`< 1024`), rounded half up: `((p00·(1024−wx) + p01·wx)·(1024−wy) + (p10·(1024−wx) +
    /// p11·wx)·wy + 2^19) >> 20`, in the narrowest integer that holds it (`u32` for 8-bit).
    fn bilerp(p: [Self; 4], wx: u32, wy: u32) -> Self;
    /// The samples as bytes when `Self` is `u8` (for byte-specific fast paths), else `None`.
    fn bytes(s: &[Self]) -> Option<&[u8]>;
    /// [`Sample::bytes`], mutable.
    fn bytes_mut(s: &mut [Self]) -> Option<&mut [u8]>;
    /// The samples as `u16`s when `Self` is `u16` (for 16-bit fast paths), else `None`.
    fn words(s: &[Self]) -> Option<&[u16]>;
    /// [`Sample::words`], mutable.
    fn words_mut(s: &mut [Self]) -> Option<&mut [u16]>;
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
    #[inline(always)]
    fn bilerp(p: [u8; 4], wx: u32, wy: u32) -> u8 {
        // `a·(1024 − w) + b·w` as `a·1024 + (b − a)·w`: half the multiplies, and the masked
        // weights and tap differences fit 16 bits, so the first two are 16-bit multiply-adds
        // (`pmaddwd`) in vectorised loops. All terms < 2^29 in magnitude.
        let [p00, p01, p10, p11] = p.map(i32::from);
        let (wx, wy) = ((wx & 1023) as i32, (wy & 1023) as i32);
        let top = (p00 << 10) + (p01 - p00) * wx;
        let bot = (p10 << 10) + (p11 - p10) * wx;
        (((top << 10) + (bot - top) * wy + (1 << 19)) >> 20) as u8
    }
    #[inline(always)]
    fn bytes(s: &[u8]) -> Option<&[u8]> {
        Some(s)
    }
    #[inline(always)]
    fn bytes_mut(s: &mut [u8]) -> Option<&mut [u8]> {
        Some(s)
    }
    #[inline(always)]
    fn words(_: &[u8]) -> Option<&[u16]> {
        None
    }
    #[inline(always)]
    fn words_mut(_: &mut [u8]) -> Option<&mut [u16]> {
        None
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
    #[inline(always)]
    fn bilerp(p: [u16; 4], wx: u32, wy: u32) -> u16 {
        // As for u8; rows fit i32 (< 2^26), the blend of rows needs 64 bits (< 2^37), the
        // product of two sign-extended i32s (one `pmuldq`).
        let [p00, p01, p10, p11] = p.map(i32::from);
        let (wx, wy) = ((wx & 1023) as i32, (wy & 1023) as i32);
        let top = (p00 << 10) + (p01 - p00) * wx;
        let bot = (p10 << 10) + (p11 - p10) * wx;
        ((((top as i64) << 10) + (bot - top) as i64 * wy as i64 + (1 << 19)) >> 20) as u16
    }
    #[inline(always)]
    fn bytes(_: &[u16]) -> Option<&[u8]> {
        None
    }
    #[inline(always)]
    fn bytes_mut(_: &mut [u16]) -> Option<&mut [u8]> {
        None
    }
    #[inline(always)]
    fn words(s: &[u16]) -> Option<&[u16]> {
        Some(s)
    }
    #[inline(always)]
    fn words_mut(s: &mut [u16]) -> Option<&mut [u16]> {
        Some(s)
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bilerp_equals_the_i64_formula() {
        let reference = |p: [u32; 4], wx: i64, wy: i64| {
            let p = p.map(i64::from);
            let top = p[0] * (1024 - wx) + p[1] * wx;
            let bot = p[2] * (1024 - wx) + p[3] * wx;
            (top * (1024 - wy) + bot * wy + (1 << 19)) >> 20
        };
        let taps8 = [
            [0, 0, 0, 0],
            [255, 255, 255, 255],
            [0, 255, 255, 0],
            [1, 254, 17, 128],
        ];
        let taps16 = [[65535; 4], [0, 65535, 65535, 0], [1, 65534, 4097, 32768]];
        for w in [0u32, 1, 2, 511, 512, 513, 1022, 1023] {
            for u in [0u32, 1, 512, 1023] {
                for p in taps8 {
                    let got = u8::bilerp(p.map(|x| x as u8), w, u) as i64;
                    assert_eq!(got, reference(p, w as i64, u as i64), "{p:?} {w} {u}");
                }
                for p in taps16 {
                    let got = u16::bilerp(p.map(|x| x as u16), w, u) as i64;
                    assert_eq!(got, reference(p, w as i64, u as i64), "{p:?} {w} {u}");
                }
            }
        }
    }

    #[test]
    fn simd_and_scalar_conversions_round_the_same_way() {
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
}
