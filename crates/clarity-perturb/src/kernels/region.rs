//! Region masking: the `region_mask` kernel and [`mask_region`], the function the counterfactual
//! probe uses to mask an arbitrary pixel region. Pixels outside the region are never touched.

use clarity_image::{Image, Samples};

use super::common::{
    Dims, NormalStream, Sample, choice, float, gaussian_blur_samples, gaussian_radius, meta,
    same_layout, unsupported,
};
use crate::params::{ParamSpec, ParamValue, Params, PerturbError, ResolvedParams};
use crate::{KernelRng, Perturbation};

/// The pixels to mask.
#[derive(Debug, Clone, PartialEq)]
pub enum RegionMask {
    /// Pixel rectangle `[x0, x1) × [y0, y1)`, clipped to the image; empty when `x1 <= x0` or
    /// `y1 <= y0`.
    Rect { x0: u32, y0: u32, x1: u32, y1: u32 },
    /// One flag per pixel, row-major, `true` = masked. Must match the image size.
    Pixels {
        width: u32,
        height: u32,
        mask: Vec<bool>,
    },
}

/// What masked pixels are replaced with.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Fill {
    /// A constant intensity, as a fraction of the sample range in `[0, 1]`.
    Constant(f64),
    /// The per-channel mean of the whole image (rounded).
    Mean,
    /// The image blurred with a Gaussian of this sigma (px, > 0).
    Blur { sigma: f64 },
    /// Gaussian noise with the per-channel mean and standard deviation of the whole image.
    Noise,
    /// Harmonic (Laplace) inpainting from the pixels around the region: each masked pixel
    /// becomes the average of its 4 neighbours, solved by over-relaxed Gauss–Seidel.
    Inpaint,
}

/// Replaces the pixels of `region` in `image` by `fill`; every other sample is returned bit for
/// bit. Randomness (only for [`Fill::Noise`]) comes from `rng`.
pub fn mask_region(
    image: &Image,
    region: &RegionMask,
    fill: Fill,
    rng: &mut KernelRng,
) -> Result<Image, PerturbError> {
    let d = Dims::of(image);
    let mask = match region {
        RegionMask::Rect { x0, y0, x1, y1 } => {
            let (x1, y1) = ((*x1 as usize).min(d.w), (*y1 as usize).min(d.h));
            let (x0, y0) = (*x0 as usize, *y0 as usize);
            let mut m = vec![false; d.w * d.h];
            if x1 > x0 && y1 > y0 {
                for row in m.chunks_exact_mut(d.w).skip(y0).take(y1 - y0) {
                    row[x0..x1].fill(true);
                }
            }
            m
        }
        RegionMask::Pixels {
            width,
            height,
            mask,
        } => {
            if (*width as usize, *height as usize) != (d.w, d.h) || mask.len() != d.w * d.h {
                return Err(unsupported(
                    "region_mask",
                    format!(
                        "mask is {width}x{height} with {} flags but the image is {}x{}",
                        mask.len(),
                        d.w,
                        d.h
                    ),
                ));
            }
            mask.clone()
        }
    };
    match fill {
        Fill::Constant(v) if !(0.0..=1.0).contains(&v) => {
            return Err(unsupported(
                "region_mask",
                format!("constant fill must be a fraction of the range in [0, 1], got {v}"),
            ));
        }
        Fill::Blur { sigma } if !(sigma.is_finite() && sigma > 0.0 && sigma <= 100.0) => {
            return Err(unsupported(
                "region_mask",
                format!("blur fill sigma must be in (0, 100] px, got {sigma}"),
            ));
        }
        _ => {}
    }
    let Some(bbox) = bounding_box(&mask, d) else {
        return Ok(image.clone());
    };
    let samples = match image.samples() {
        Samples::U8(v) => Samples::U8(fill_masked(v, d, &mask, bbox, fill, rng)),
        Samples::U16(v) => Samples::U16(fill_masked(v, d, &mask, bbox, fill, rng)),
    };
    Ok(same_layout(image, samples))
}

/// `(x0, y0, x1, y1)` exclusive, or `None` for an empty mask.
type BBox = (usize, usize, usize, usize);

fn bounding_box(mask: &[bool], d: Dims) -> Option<BBox> {
    let mut bb: Option<BBox> = None;
    for (y, row) in mask.chunks_exact(d.w).enumerate() {
        let (Some(first), Some(last)) = (row.iter().position(|&m| m), row.iter().rposition(|&m| m))
        else {
            continue;
        };
        bb = Some(match bb {
            None => (first, y, last + 1, y + 1),
            Some((x0, y0, x1, _)) => (x0.min(first), y0, x1.max(last + 1), y + 1),
        });
    }
    bb
}

fn channel_stats<T: Sample>(v: &[T], c: usize) -> Vec<(f64, f64)> {
    (0..c)
        .map(|ch| {
            let (mut s, mut s2, mut n) = (0u128, 0u128, 0u128);
            for px in v.chunks_exact(c) {
                let x = px[ch].to_u32() as u128;
                s += x;
                s2 += x * x;
                n += 1;
            }
            let mean = s as f64 / n as f64;
            let var = (s2 as f64 / n as f64 - mean * mean).max(0.0);
            (mean, var.sqrt())
        })
        .collect()
}

fn fill_masked<T: Sample>(
    v: &[T],
    d: Dims,
    mask: &[bool],
    bbox: BBox,
    fill: Fill,
    rng: &mut KernelRng,
) -> Vec<T> {
    let mut out = v.to_vec();
    let c = d.c;
    match fill {
        Fill::Constant(f) => {
            let val = T::from_i64((f * T::MAX as f64).round() as i64);
            for (px, _) in out.chunks_exact_mut(c).zip(mask).filter(|(_, m)| **m) {
                px.fill(val);
            }
        }
        Fill::Mean => {
            let means: Vec<T> = channel_stats(v, c)
                .iter()
                .map(|(m, _)| T::from_f32(*m as f32))
                .collect();
            for (px, _) in out.chunks_exact_mut(c).zip(mask).filter(|(_, m)| **m) {
                px.copy_from_slice(&means);
            }
        }
        Fill::Noise => {
            let stats = channel_stats(v, c);
            let mut stream = NormalStream::new(rng);
            let mut z = vec![0i32; c];
            for (px, _) in out.chunks_exact_mut(c).zip(mask).filter(|(_, m)| **m) {
                stream.fill(&mut z);
                for ((o, &zi), &(mean, sd)) in px.iter_mut().zip(&z).zip(&stats) {
                    *o = T::from_f32((mean + sd * zi as f64 / 4096.0) as f32);
                }
            }
        }
        Fill::Blur { sigma } => {
            // Blur only the bounding box plus the kernel radius: identical to blurring the whole
            // image (reflect-101 at the image edges), much cheaper for small regions.
            let r = gaussian_radius::<T>(sigma);
            let (x0, y0) = (bbox.0.saturating_sub(r), bbox.1.saturating_sub(r));
            let (x1, y1) = ((bbox.2 + r).min(d.w), (bbox.3 + r).min(d.h));
            let cd = Dims {
                w: x1 - x0,
                h: y1 - y0,
                c,
            };
            let crop: Vec<T> = (y0..y1)
                .flat_map(|y| v[(y * d.w + x0) * c..(y * d.w + x1) * c].iter().copied())
                .collect();
            let blurred = gaussian_blur_samples(&crop, cd, sigma);
            for y in bbox.1..bbox.3 {
                for x in bbox.0..bbox.2 {
                    if mask[y * d.w + x] {
                        let ci = ((y - y0) * cd.w + (x - x0)) * c;
                        out[(y * d.w + x) * c..(y * d.w + x + 1) * c]
                            .copy_from_slice(&blurred[ci..ci + c]);
                    }
                }
            }
        }
        Fill::Inpaint => inpaint(v, &mut out, d, mask, bbox),
    }
    out
}

/// Harmonic inpainting on the bounding box grown by one pixel (the known ring around it).
fn inpaint<T: Sample>(v: &[T], out: &mut [T], d: Dims, mask: &[bool], bbox: BBox) {
    let (x0, y0) = (bbox.0.saturating_sub(1), bbox.1.saturating_sub(1));
    let (x1, y1) = ((bbox.2 + 1).min(d.w), (bbox.3 + 1).min(d.h));
    let (cw, chh) = (x1 - x0, y1 - y0);
    let unknown: Vec<bool> = (y0..y1)
        .flat_map(|y| (x0..x1).map(move |x| (x, y)))
        .map(|(x, y)| mask[y * d.w + x])
        .collect();
    let max = T::MAX as f32;
    for ch in 0..d.c {
        let mut f: Vec<f32> = (y0..y1)
            .flat_map(|y| (x0..x1).map(move |x| (x, y)))
            .map(|(x, y)| v[(y * d.w + x) * d.c + ch].to_f32())
            .collect();
        // Initial guess: the mean of the known pixels next to the region (mid-grey if none).
        let (mut sum, mut n) = (0f64, 0u64);
        for y in 0..chh {
            for x in 0..cw {
                let i = y * cw + x;
                if unknown[i] {
                    continue;
                }
                let touches =
                    [(0isize, -1isize), (0, 1), (-1, 0), (1, 0)]
                        .iter()
                        .any(|(dx, dy)| {
                            let (nx, ny) = (x as isize + dx, y as isize + dy);
                            nx >= 0
                                && ny >= 0
                                && (nx as usize) < cw
                                && (ny as usize) < chh
                                && unknown[ny as usize * cw + nx as usize]
                        });
                if touches {
                    sum += f[i] as f64;
                    n += 1;
                }
            }
        }
        let init = if n > 0 {
            (sum / n as f64) as f32
        } else {
            max / 2.0
        };
        for (fi, _) in f.iter_mut().zip(&unknown).filter(|(_, u)| **u) {
            *fi = init;
        }
        if n > 0 {
            sor(&mut f, &unknown, cw, chh, max);
        }
        for y in y0..y1 {
            for x in x0..x1 {
                let i = (y - y0) * cw + (x - x0);
                if unknown[i] {
                    out[(y * d.w + x) * d.c + ch] = T::from_f32(f[i].clamp(0.0, max));
                }
            }
        }
    }
}

/// Successive over-relaxation of Laplace's equation on the unknown pixels (raster order, fixed
/// ω = 1.9), until the largest update is below 0.01 % of the range or 2000 sweeps.
fn sor(f: &mut [f32], unknown: &[bool], w: usize, h: usize, max: f32) {
    const OMEGA: f32 = 1.9;
    let tol = max * 1e-4;
    for _ in 0..2000 {
        let mut biggest = 0f32;
        for y in 0..h {
            for x in 0..w {
                let i = y * w + x;
                if !unknown[i] {
                    continue;
                }
                let (mut s, mut n) = (0f32, 0f32);
                if x > 0 {
                    s += f[i - 1];
                    n += 1.0;
                }
                if x + 1 < w {
                    s += f[i + 1];
                    n += 1.0;
                }
                if y > 0 {
                    s += f[i - w];
                    n += 1.0;
                }
                if y + 1 < h {
                    s += f[i + w];
                    n += 1.0;
                }
                let delta = OMEGA * (s / n - f[i]);
                f[i] += delta;
                biggest = biggest.max(delta.abs());
            }
        }
        if biggest < tol {
            break;
        }
    }
}

/// The `region_mask` kernel: masks a fractional rectangle.
pub struct RegionMaskKernel;

static FILLS: [&str; 5] = ["constant", "mean", "blur", "noise", "inpaint"];

static REGION_PARAMS: [ParamSpec; 7] = [
    float(
        "x0",
        "left edge as a fraction of the width",
        "fraction of width",
        0.0,
        1.0,
        0.25,
        None,
    ),
    float(
        "y0",
        "top edge as a fraction of the height",
        "fraction of height",
        0.0,
        1.0,
        0.25,
        None,
    ),
    float(
        "x1",
        "right edge as a fraction of the width (x1 <= x0: nothing masked)",
        "fraction of width",
        0.0,
        1.0,
        0.75,
        Some(0.0),
    ),
    float(
        "y1",
        "bottom edge as a fraction of the height (y1 <= y0: nothing masked)",
        "fraction of height",
        0.0,
        1.0,
        0.75,
        Some(0.0),
    ),
    choice(
        "fill",
        "constant, mean (image mean per channel), blur, noise (image mean/std per channel), inpaint (harmonic)",
        &FILLS,
        "constant",
    ),
    float(
        "value",
        "intensity of the constant fill as a fraction of the range",
        "fraction of range",
        0.0,
        1.0,
        0.0,
        None,
    ),
    float(
        "sigma",
        "Gaussian sigma of the blur fill",
        "px",
        0.5,
        100.0,
        8.0,
        None,
    ),
];

/// Pixel rectangle of the fractional parameters (edges rounded to the nearest pixel boundary).
fn pixel_rect(params: &ResolvedParams, w: u32, h: u32) -> RegionMask {
    let px = |f: f64, n: u32| (f * n as f64).round() as u32;
    RegionMask::Rect {
        x0: px(params.num("x0"), w),
        y0: px(params.num("y0"), h),
        x1: px(params.num("x1"), w),
        y1: px(params.num("y1"), h),
    }
}

impl Perturbation for RegionMaskKernel {
    meta!(
        "region_mask",
        2,
        RegionMask,
        random = true,
        "replaces a rectangle by a constant, the image mean, a blur, noise or a harmonic inpainting: removes the evidence in that region (counterfactual probing)",
        REGION_PARAMS
    );
    fn presets(&self) -> [Params; 5] {
        [0.1, 0.2, 0.3, 0.4, 0.5].map(|side| {
            let (a, b) = (0.5 - side / 2.0, 0.5 + side / 2.0);
            let mut p: Params = [("x0", a), ("y0", a), ("x1", b), ("y1", b), ("value", 0.0)]
                .iter()
                .map(|(k, v)| (k.to_string(), ParamValue::Num(*v)))
                .collect();
            p.insert("fill".to_string(), ParamValue::Text("constant".to_string()));
            p
        })
    }
    fn is_identity(&self, params: &ResolvedParams) -> bool {
        params.num("x1") <= params.num("x0") || params.num("y1") <= params.num("y0")
    }
    fn apply(
        &self,
        image: &Image,
        params: &ResolvedParams,
        rng: &mut KernelRng,
    ) -> Result<Image, PerturbError> {
        let fill = match params.text("fill") {
            "mean" => Fill::Mean,
            "blur" => Fill::Blur {
                sigma: params.num("sigma"),
            },
            "noise" => Fill::Noise,
            "inpaint" => Fill::Inpaint,
            _ => Fill::Constant(params.num("value")),
        };
        mask_region(
            image,
            &pixel_rect(params, image.width(), image.height()),
            fill,
            rng,
        )
    }
}
