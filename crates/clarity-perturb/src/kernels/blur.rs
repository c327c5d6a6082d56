//! Blur kernels: Gaussian, motion (line kernel), defocus (disc kernel). Borders are reflect-101
//! (OpenCV's default `BORDER_REFLECT_101`: `gfedcb|abcdefgh|gfedcba`).

use clarity_image::{Image, Samples};

use super::common::{
    Dims, RowPad, Sample, float, gaussian_blur_samples, gaussian_blur_u8, map_samples, meta, nums,
    presets1, reflect101, same_layout, vectorized, vectorized_job,
};
use crate::params::{ParamSpec, Params, PerturbError, ResolvedParams};
use crate::{KernelRng, Perturbation};

/// Separable Gaussian blur.
pub struct GaussianBlur;

static GAUSSIAN_PARAMS: [ParamSpec; 1] = [float(
    "sigma",
    "standard deviation of the Gaussian kernel",
    "px",
    0.0,
    50.0,
    0.0,
    Some(0.0),
)];

impl Perturbation for GaussianBlur {
    meta!(
        "gaussian_blur",
        3,
        Blur,
        random = false,
        "separable Gaussian blur (OpenCV kernel size rule, reflect-101 borders; 8-bit in 16-bit fixed point, within a level of exact): focal-spot blur, patient motion averaged over exposure, soft reconstruction kernels",
        GAUSSIAN_PARAMS
    );
    fn presets(&self) -> [Params; 5] {
        // ImageNet-C gaussian_blur sigmas.
        presets1("sigma", [1.0, 2.0, 3.0, 4.0, 6.0])
    }
    fn apply(
        &self,
        image: &Image,
        params: &ResolvedParams,
        _rng: &mut KernelRng,
    ) -> Result<Image, PerturbError> {
        let sigma = params.num("sigma");
        if sigma == 0.0 {
            return Ok(image.clone());
        }
        let d = Dims::of(image);
        let samples = match image.samples() {
            Samples::U8(v) => Samples::U8(gaussian_blur_u8(v, d, sigma)),
            Samples::U16(v) => Samples::U16(gaussian_blur_samples(v, d, sigma)),
        };
        Ok(same_layout(image, samples))
    }
}

/// Linear motion blur: the average of `round(length)` samples along a line at `angle`.
pub struct MotionBlur;

static MOTION_PARAMS: [ParamSpec; 2] = [
    float(
        "length",
        "length of the motion path (number of averaged samples, rounded; ≤ 1 is identity)",
        "px",
        0.0,
        200.0,
        0.0,
        Some(0.0),
    ),
    float(
        "angle",
        "direction of motion, counter-clockwise from the +x axis",
        "degrees",
        -360.0,
        360.0,
        0.0,
        None,
    ),
];

/// The line kernel: integer offsets `(dx, dy)` with their multiplicities, and the total count.
pub(crate) fn motion_taps(length: f64, angle_deg: f64) -> (Vec<(isize, isize, u32)>, u32) {
    let n = (length.round() as i64).max(1) as u32;
    let (sin, cos) = angle_deg.to_radians().sin_cos();
    let mut taps: Vec<(isize, isize, u32)> = Vec::new();
    for i in 0..n {
        let t = i as f64 - (n - 1) as f64 / 2.0;
        // Image y grows downwards, so a counter-clockwise angle moves up (−y).
        let dx = (t * cos + 0.5).floor() as isize;
        let dy = (-t * sin + 0.5).floor() as isize;
        match taps.iter_mut().find(|(x, y, _)| *x == dx && *y == dy) {
            Some(tap) => tap.2 += 1,
            None => taps.push((dx, dy, 1)),
        }
    }
    (taps, n)
}

/// Average of shifted copies of the image with integer weights (reflect-101 borders). Sums are
/// exact integers; `sum as f32 · (1/n)` is rounded half up as before (bit-identical to v1, whose
/// f32 sums of integers were exact too).
fn shifted_average<T: Sample>(v: &[T], d: Dims, taps: &[(isize, isize, u32)], n: u32) -> Vec<T> {
    let r = taps
        .iter()
        .map(|&(x, y, _)| x.unsigned_abs().max(y.unsigned_abs()))
        .max()
        .unwrap_or(0);
    // Rows padded horizontally only (rows are reflected by index).
    let (rl, c) = (d.row_len(), d.c);
    let prl = (d.w + 2 * r) * c;
    let RowPad { left, right, .. } = RowPad::new(d, r);
    let mut padded: Vec<T> = Vec::with_capacity(prl * d.h);
    for row in v.chunks_exact(rl) {
        for &sx in &left {
            padded.extend_from_slice(&row[sx * c..sx * c + c]);
        }
        padded.extend_from_slice(row);
        for &sx in &right {
            padded.extend_from_slice(&row[sx * c..sx * c + c]);
        }
    }
    let inv = 1.0 / n as f32;
    if T::MAX * n <= u16::MAX as u32 {
        // 8-bit sums of up to 257 taps fit 16-bit lanes: twice as many per vector.
        vectorized(ShiftedSum::<T, u16> {
            padded: &padded,
            d,
            prl,
            r,
            taps,
            inv,
            acc: std::marker::PhantomData,
        })
    } else {
        vectorized(ShiftedSum::<T, i32> {
            padded: &padded,
            d,
            prl,
            r,
            taps,
            inv,
            acc: std::marker::PhantomData,
        })
    }
}

/// An exact integer accumulator lane type for [`ShiftedSum`].
trait Acc:
    Copy + Default + std::ops::AddAssign + std::ops::Mul<Output = Self> + Send + Sync + 'static
{
    fn of(v: u32) -> Self;
    fn to_f32(self) -> f32;
}

impl Acc for u16 {
    #[inline(always)]
    fn of(v: u32) -> Self {
        v as u16
    }
    #[inline(always)]
    fn to_f32(self) -> f32 {
        self as f32
    }
}

impl Acc for i32 {
    #[inline(always)]
    fn of(v: u32) -> Self {
        v as i32
    }
    #[inline(always)]
    fn to_f32(self) -> f32 {
        self as f32
    }
}

vectorized_job! {
    struct ShiftedSum<'a, T: Sample, A: Acc> {
        padded: &'a [T],
        d: Dims,
        prl: usize,
        r: usize,
        taps: &'a [(isize, isize, u32)],
        inv: f32,
        acc: std::marker::PhantomData<A>,
    } -> Vec<T> {
        let rl = d.row_len();
        let mut out = vec![T::default(); d.h * rl];
        let mut acc = vec![A::default(); rl];
        for (y, orow) in out.chunks_exact_mut(rl).enumerate() {
            acc.fill(A::default());
            for &(dx, dy, count) in taps {
                let sy = reflect101(y as isize + dy, d.h);
                let start = sy * prl + (r as isize + dx) as usize * d.c;
                let src = &padded[start..start + rl];
                if count == 1 {
                    for (a, s) in acc.iter_mut().zip(src) {
                        *a += A::of(s.to_u32());
                    }
                } else {
                    let wgt = A::of(count);
                    for (a, s) in acc.iter_mut().zip(src) {
                        *a += wgt * A::of(s.to_u32());
                    }
                }
            }
            for (o, &a) in orow.iter_mut().zip(&acc) {
                *o = T::from_f32_simd(a.to_f32() * inv);
            }
        }
        out
    }
}

impl Perturbation for MotionBlur {
    meta!(
        "motion_blur",
        1,
        Blur,
        random = false,
        "averages samples along a straight line (length, angle): patient or detector motion during exposure",
        MOTION_PARAMS
    );
    fn presets(&self) -> [Params; 5] {
        [5.0, 9.0, 15.0, 21.0, 31.0].map(|l| nums(&[("length", l), ("angle", 0.0)]))
    }
    fn is_identity(&self, params: &ResolvedParams) -> bool {
        params.num("length").round() <= 1.0
    }
    fn apply(
        &self,
        image: &Image,
        params: &ResolvedParams,
        _rng: &mut KernelRng,
    ) -> Result<Image, PerturbError> {
        if self.is_identity(params) {
            return Ok(image.clone());
        }
        let (taps, n) = motion_taps(params.num("length"), params.num("angle"));
        let d = Dims::of(image);
        Ok(map_samples!(image, |v| shifted_average(v, d, &taps, n)))
    }
}

/// Disc (pill-box) blur.
pub struct DefocusBlur;

static DEFOCUS_PARAMS: [ParamSpec; 1] = [float(
    "radius",
    "radius of the disc kernel (pixels whose centre is within the radius are averaged)",
    "px",
    0.0,
    50.0,
    0.0,
    Some(0.0),
)];

/// Disc average through per-row prefix sums: each disc row is a horizontal box.
fn disc_average<T: Sample>(v: &[T], d: Dims, radius: f64) -> Vec<T> {
    let rr = radius.floor() as usize;
    let half: Vec<usize> = (0..=rr)
        .map(|dy| {
            ((radius * radius - (dy * dy) as f64).max(0.0))
                .sqrt()
                .floor() as usize
        })
        .collect();
    let count: u64 = (0..=2 * rr)
        .map(|i| 2 * half[i.abs_diff(rr)] as u64 + 1)
        .sum();
    let pw = d.w + 2 * rr;
    // prefix[y][(px+1)*c + ch] = sum of padded row y samples 0..=px of channel ch.
    let pl = (pw + 1) * d.c;
    let mut prefix = vec![0u64; pl * d.h];
    for (y, pre) in prefix.chunks_exact_mut(pl).enumerate() {
        let row = &v[y * d.row_len()..(y + 1) * d.row_len()];
        for px in 0..pw {
            let sx = reflect101(px as isize - rr as isize, d.w);
            for ch in 0..d.c {
                pre[(px + 1) * d.c + ch] = pre[px * d.c + ch] + row[sx * d.c + ch].to_u32() as u64;
            }
        }
    }
    let mut out = vec![T::default(); v.len()];
    let mut acc = vec![0u64; d.row_len()];
    for (y, orow) in out.chunks_exact_mut(d.row_len()).enumerate() {
        acc.fill(0);
        for k in 0..=2 * rr {
            let hw = half[k.abs_diff(rr)];
            let sy = reflect101(y as isize + k as isize - rr as isize, d.h);
            let pre = &prefix[sy * pl..(sy + 1) * pl];
            // Box over padded columns [x + rr − hw, x + rr + hw].
            let lo = &pre[(rr - hw) * d.c..];
            let hi = &pre[(rr + hw + 1) * d.c..];
            for ((a, &h), &l) in acc.iter_mut().zip(hi).zip(lo) {
                *a += h - l;
            }
        }
        for (o, &a) in orow.iter_mut().zip(&acc) {
            // Exact rounding half up of a / count.
            *o = T::from_i64(((2 * a + count) / (2 * count)) as i64);
        }
    }
    out
}

impl Perturbation for DefocusBlur {
    meta!(
        "defocus_blur",
        1,
        Blur,
        random = false,
        "averages over a disc (pill-box point-spread function): an out-of-focus camera or microscope, a large focal spot",
        DEFOCUS_PARAMS
    );
    fn presets(&self) -> [Params; 5] {
        // ImageNet-C defocus_blur radii.
        presets1("radius", [3.0, 4.0, 6.0, 8.0, 10.0])
    }
    fn apply(
        &self,
        image: &Image,
        params: &ResolvedParams,
        _rng: &mut KernelRng,
    ) -> Result<Image, PerturbError> {
        let radius = params.num("radius");
        let d = Dims::of(image);
        Ok(map_samples!(image, |v| disc_average(v, d, radius)))
    }
}
