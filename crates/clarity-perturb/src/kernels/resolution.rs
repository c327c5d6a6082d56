//! Resolution kernel: downscale-then-upscale.

use clarity_image::{Channels, Image, Samples};
use fast_image_resize as fir;
use fir::pixels::{U8, U8x3, U16, U16x3};

use super::common::{
    Dims, Sample, choice, float, map_samples, meta, nums, same_layout, vectorized, vectorized_job,
};
use crate::params::{ParamSpec, Params, PerturbError, ResolvedParams};
use crate::{KernelRng, Perturbation};

/// Downscale by `factor`, then upscale back to the original size.
pub struct Downscale;

static DOWNSCALE_FILTERS: [&str; 4] = ["bilinear", "nearest", "area", "bicubic"];

static DOWNSCALE_PARAMS: [ParamSpec; 2] = [
    float(
        "factor",
        "intermediate size as a fraction of the original (each side, at least 1 px)",
        "×",
        0.01,
        1.0,
        1.0,
        Some(1.0),
    ),
    choice(
        "filter",
        "resampling filter: bilinear/bicubic (OpenCV-like interpolation, no anti-aliasing), nearest, area (box average down, bilinear up)",
        &DOWNSCALE_FILTERS,
        "bilinear",
    ),
];

/// One resize with fast_image_resize (hand-written resampling would be slower and its SIMD
/// paths are tested to give the same bytes as its scalar path). Also the onnx adapter's
/// preprocessing resize.
pub fn fir_resize<P: fir::PixelTrait>(
    pixels: Vec<P>,
    (w, h): (u32, u32),
    (nw, nh): (u32, u32),
    alg: fir::ResizeAlg,
) -> Vec<P> {
    let src = fir::images::TypedImage::from_pixels(w, h, pixels).expect("buffer matches size");
    let mut dst = fir::images::TypedImage::<P>::new(nw, nh);
    fir::Resizer::new()
        .resize_typed(&src, &mut dst, &fir::ResizeOptions::new().resize_alg(alg))
        .expect("pixel types match");
    dst.pixels().to_vec()
}

fn down_up<P: fir::PixelTrait>(
    pixels: Vec<P>,
    size: (u32, u32),
    small: (u32, u32),
    (down, up): (fir::ResizeAlg, fir::ResizeAlg),
) -> Vec<P> {
    let reduced = fir_resize(pixels, size, small, down);
    fir_resize(reduced, small, size, up)
}

/// Weight bits of [`bilinear_resize`] (OpenCV's `INTER_RESIZE_COEF_BITS`).
const COEF_BITS: u32 = 11;
const COEF_ONE: i32 = 1 << COEF_BITS;

/// Per output coordinate: the first source index and the weight of the second (of `COEF_ONE`),
/// OpenCV `INTER_LINEAR` geometry (`src = (dst + ½)·in/out − ½`, clamped at the borders, no
/// anti-aliasing).
fn bilinear_taps(n_in: usize, n_out: usize) -> Vec<(usize, i32)> {
    let scale = n_in as f64 / n_out as f64;
    (0..n_out)
        .map(|o| {
            let s = (o as f64 + 0.5) * scale - 0.5;
            let i = s.floor();
            let f = s - i;
            let i = i as i64;
            if i < 0 {
                (0, 0)
            } else if i as usize >= n_in - 1 {
                (n_in - 1, 0)
            } else {
                (i as usize, (f * COEF_ONE as f64).round() as i32)
            }
        })
        .collect()
}

/// Separable bilinear resize in fixed point (weights of 1/2048, exact integer sums, rounded
/// half up): each source row is filtered horizontally once, and output rows blend two of them.
fn bilinear_resize<T: Sample>(v: &[T], d: Dims, nw: usize, nh: usize) -> Vec<T> {
    match d.c {
        1 => resize_c::<T, 1>(v, d, nw, nh),
        _ => resize_c::<T, 3>(v, d, nw, nh),
    }
}

fn resize_c<T: Sample, const C: usize>(v: &[T], d: Dims, nw: usize, nh: usize) -> Vec<T> {
    // Horizontal taps as sample offsets of the two source pixels, and the second's weight.
    let tx: Vec<(usize, usize, i32)> = bilinear_taps(d.w, nw)
        .into_iter()
        .map(|(x0, wx)| (x0 * C, (x0 + 1).min(d.w - 1) * C, wx))
        .collect();
    let ty = bilinear_taps(d.h, nh);
    let (rl, nrl) = (d.row_len(), nw * C);
    let hrow = |y: usize, out: &mut [i32]| {
        let row = &v[y * rl..(y + 1) * rl];
        if C == 1 {
            for (o, &(i0, i1, wx)) in out.iter_mut().zip(&tx) {
                *o = row[i0].to_u32() as i32 * (COEF_ONE - wx) + row[i1].to_u32() as i32 * wx;
            }
            return;
        }
        for (o, &(i0, i1, wx)) in out.chunks_exact_mut(C).zip(&tx) {
            let (a, b) = (&row[i0..i0 + C], &row[i1..i1 + C]);
            for ch in 0..C {
                o[ch] = a[ch].to_u32() as i32 * (COEF_ONE - wx) + b[ch].to_u32() as i32 * wx;
            }
        }
    };
    let mut out = vec![T::default(); nrl * nh];
    let (mut r0, mut r1) = (vec![0i32; nrl], vec![0i32; nrl]);
    let mut cached: Option<usize> = None;
    for (orow, &(y0, wy)) in out.chunks_exact_mut(nrl).zip(&ty) {
        if cached != Some(y0) {
            if cached.is_some_and(|c| c + 1 == y0) {
                std::mem::swap(&mut r0, &mut r1);
            } else {
                hrow(y0, &mut r0);
            }
            hrow((y0 + 1).min(d.h - 1), &mut r1);
            cached = Some(y0);
        }
        vectorized(BlendRows {
            a: &r0,
            b: &r1,
            wy,
            out: orow,
        });
    }
    out
}

vectorized_job! {
    /// `out = (a·(1 − wy) + b·wy)` rounded, in i32: 16-bit rows first drop 8 of their 11
    /// fractional bits (rounded) so the products fit.
    struct BlendRows<'a, T: Sample> { a: &'a [i32], b: &'a [i32], wy: i32, out: &'a mut [T] } -> () {
        let pre = if T::MAX == 255 { 0 } else { 8 };
        let bias = (1i32 << pre) >> 1;
        let shift = 2 * COEF_BITS - pre;
        let round = 1i32 << (shift - 1);
        let w0 = COEF_ONE - wy;
        for ((o, &a), &b) in out.iter_mut().zip(a).zip(b) {
            let (a, b) = ((a + bias) >> pre, (b + bias) >> pre);
            *o = T::from_u32_trunc(((a * w0 + b * wy + round) >> shift) as u32);
        }
    }
}

/// [`bilinear_resize`] to exactly half size and back, in closed form (same bytes; the test
/// `halve_double_equals_two_resizes` checks it). With in/out ratios of exactly 2 the fixed-point
/// weights are multiples of 512, so the down pass is the 2×2 average `(a + b + c + d + 2) >> 2`
/// and the up pass weights neighbours 3:1 (4:0 at the borders) on both axes:
/// `(Σ cy·cx·p + 8) >> 4`. Written as contiguous row loops, which vectorise, where the general
/// resampler gathers its taps one by one.
fn halve_double<T: Sample>(v: &[T], d: Dims) -> Vec<T> {
    vectorized(HalveDouble { v, d })
}

vectorized_job! {
    struct HalveDouble<'a, T: Sample> { v: &'a [T], d: Dims } -> Vec<T> {
        let (c, rl) = (d.c, d.row_len());
        let (m, mh) = (d.w / 2, d.h / 2);
        let srl = m * c;
        // Down: pair rows, then pair columns.
        let mut small = vec![0u32; srl * mh];
        let mut pair = vec![0u32; rl];
        for (y, srow) in small.chunks_exact_mut(srl).enumerate() {
            let (r0, r1) = (&v[2 * y * rl..][..rl], &v[(2 * y + 1) * rl..][..rl]);
            for ((p, &a), &b) in pair.iter_mut().zip(r0).zip(r1) {
                *p = a.to_u32() + b.to_u32();
            }
            if c == 1 {
                for (o, q) in srow.iter_mut().zip(pair.chunks_exact(2)) {
                    *o = (q[0] + q[1] + 2) >> 2;
                }
            } else {
                for (o, q) in srow.chunks_exact_mut(3).zip(pair.chunks_exact(6)) {
                    for ch in 0..3 {
                        o[ch] = (q[ch] + q[ch + 3] + 2) >> 2;
                    }
                }
            }
        }
        // Up, vertically, with the same weights.
        let mut out = vec![T::default(); rl * d.h];
        let (mut h0, mut h1) = (vec![0u32; rl], vec![0u32; rl]);
        widen(&small[..srl], &mut h0, c);
        let (top, rest) = out.split_at_mut(rl);
        for (o, &a) in top.iter_mut().zip(&h0) {
            *o = T::from_u32_trunc((4 * a + 8) >> 4);
        }
        let (mid, bottom) = rest.split_at_mut(rl * (d.h - 2));
        for (k, rows) in mid.chunks_exact_mut(2 * rl).enumerate() {
            widen(&small[(k + 1) * srl..][..srl], &mut h1, c);
            let (r0, r1) = rows.split_at_mut(rl);
            for (((o0, o1), &a), &b) in r0.iter_mut().zip(r1.iter_mut()).zip(&h0).zip(&h1) {
                *o0 = T::from_u32_trunc((3 * a + b + 8) >> 4);
                *o1 = T::from_u32_trunc((a + 3 * b + 8) >> 4);
            }
            std::mem::swap(&mut h0, &mut h1);
        }
        for (o, &a) in bottom.iter_mut().zip(&h0) {
            *o = T::from_u32_trunc((4 * a + 8) >> 4);
        }
        out
    }
}

/// Up, horizontally (a function, not a closure, so it is inlined into the dispatched code):
/// output pixel 0 is 4·a0, 2k+1 is 3·a_k + a_(k+1), 2k+2 is a_k + 3·a_(k+1), the last 4·a_(m-1).
#[inline(always)]
fn widen(srow: &[u32], h: &mut [u32], c: usize) {
    let (srl, rl) = (srow.len(), h.len());
    let (first, rest) = h.split_at_mut(c);
    let (mid, last) = rest.split_at_mut(rl - 2 * c);
    for ch in 0..c {
        first[ch] = 4 * srow[ch];
        last[ch] = 4 * srow[srl - c + ch];
    }
    let (a, b) = (&srow[..srl - c], &srow[c..]);
    if c == 1 {
        for ((o, &a), &b) in mid.chunks_exact_mut(2).zip(a).zip(b) {
            o[0] = 3 * a + b;
            o[1] = a + 3 * b;
        }
    } else {
        for ((o, a), b) in mid
            .chunks_exact_mut(6)
            .zip(a.chunks_exact(3))
            .zip(b.chunks_exact(3))
        {
            for ch in 0..3 {
                o[ch] = 3 * a[ch] + b[ch];
                o[ch + 3] = a[ch] + 3 * b[ch];
            }
        }
    }
}

impl Perturbation for Downscale {
    meta!(
        "downscale",
        2,
        Resolution,
        random = false,
        "reduces the resolution by a factor and scales back up to the original size: low-resolution acquisition, aggressive resizing in a PACS/export pipeline",
        DOWNSCALE_PARAMS
    );
    fn presets(&self) -> [Params; 5] {
        // ImageNet-C pixelate factors (that kernel uses a box filter; here `filter` stays at
        // its default unless set).
        [0.6, 0.5, 0.4, 0.3, 0.25].map(|f| {
            let mut p = nums(&[("factor", f)]);
            p.insert(
                "filter".to_string(),
                crate::ParamValue::Text("bilinear".to_string()),
            );
            p
        })
    }
    fn apply(
        &self,
        image: &Image,
        params: &ResolvedParams,
        _rng: &mut KernelRng,
    ) -> Result<Image, PerturbError> {
        use fir::{FilterType, ResizeAlg};
        let factor = params.num("factor");
        let size = (image.width(), image.height());
        let shrink = |n: u32| ((n as f64 * factor).round() as u32).max(1);
        let small = (shrink(size.0), shrink(size.1));
        if small == size {
            return Ok(image.clone());
        }
        if params.text("filter") == "bilinear" {
            let d = Dims::of(image);
            let (sw, sh) = (small.0 as usize, small.1 as usize);
            if 2 * sw == d.w && 2 * sh == d.h {
                return Ok(map_samples!(image, |v| halve_double(v, d)));
            }
            return Ok(map_samples!(image, |v| {
                let reduced = bilinear_resize(v, d, sw, sh);
                bilinear_resize(
                    &reduced,
                    Dims {
                        w: sw,
                        h: sh,
                        c: d.c,
                    },
                    d.w,
                    d.h,
                )
            }));
        }
        let algs = match params.text("filter") {
            "nearest" => (ResizeAlg::Nearest, ResizeAlg::Nearest),
            "area" => (
                ResizeAlg::Convolution(FilterType::Box),
                ResizeAlg::Interpolation(FilterType::Bilinear),
            ),
            "bicubic" => (
                ResizeAlg::Interpolation(FilterType::CatmullRom),
                ResizeAlg::Interpolation(FilterType::CatmullRom),
            ),
            _ => (
                ResizeAlg::Interpolation(FilterType::Bilinear),
                ResizeAlg::Interpolation(FilterType::Bilinear),
            ),
        };
        let samples = match (image.channels(), image.samples()) {
            (Channels::Gray, Samples::U8(v)) => {
                let px = v.iter().map(|&s| U8::new(s)).collect();
                Samples::U8(down_up(px, size, small, algs).iter().map(|p| p.0).collect())
            }
            (Channels::Rgb, Samples::U8(v)) => {
                let px = v
                    .chunks_exact(3)
                    .map(|p| U8x3::new([p[0], p[1], p[2]]))
                    .collect();
                Samples::U8(
                    down_up(px, size, small, algs)
                        .iter()
                        .flat_map(|p| p.0)
                        .collect(),
                )
            }
            (Channels::Gray, Samples::U16(v)) => {
                let px = v.iter().map(|&s| U16::new(s)).collect();
                Samples::U16(down_up(px, size, small, algs).iter().map(|p| p.0).collect())
            }
            (Channels::Rgb, Samples::U16(v)) => {
                let px = v
                    .chunks_exact(3)
                    .map(|p| U16x3::new([p[0], p[1], p[2]]))
                    .collect();
                Samples::U16(
                    down_up(px, size, small, algs)
                        .iter()
                        .flat_map(|p| p.0)
                        .collect(),
                )
            }
        };
        Ok(same_layout(image, samples))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn noise(n: usize, max: u32) -> Vec<u32> {
        let mut x = 0x9e37_79b9_7f4a_7c15u64;
        (0..n)
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                (x >> 33) as u32 % (max + 1)
            })
            .collect()
    }

    fn check<T: Sample>(w: usize, h: usize, c: usize) {
        let v: Vec<T> = noise(w * h * c, T::MAX)
            .into_iter()
            .map(T::from_u32_trunc)
            .collect();
        let d = Dims { w, h, c };
        let half = Dims {
            w: w / 2,
            h: h / 2,
            c,
        };
        let general = bilinear_resize(&bilinear_resize(&v, d, w / 2, h / 2), half, w, h);
        let got = halve_double(&v, d);
        assert!(got == general, "{w}x{h}x{c} max {}", T::MAX);
    }

    #[test]
    fn halve_double_equals_two_resizes() {
        for (w, h) in [(2, 2), (2, 6), (4, 2), (8, 6), (30, 18), (64, 64)] {
            for c in [1, 3] {
                check::<u8>(w, h, c);
                check::<u16>(w, h, c);
            }
        }
        // Extremes: all-max images stay all-max, all-zero stay zero.
        for max in [255u32, 65535] {
            let d = Dims { w: 6, h: 4, c: 1 };
            if max == 255 {
                assert!(halve_double(&[255u8; 24], d).iter().all(|&s| s == 255));
            } else {
                assert!(halve_double(&[65535u16; 24], d).iter().all(|&s| s == 65535));
            }
        }
    }
}
