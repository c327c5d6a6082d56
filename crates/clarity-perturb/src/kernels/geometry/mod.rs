//! Geometric kernels: rotation, scale, translation (affine, bilinear, constant-0 border like
//! OpenCV's `warpAffine` default) and elastic deformation (bilinear, reflect-101 border).
//!
//! Every output pixel centre is mapped back into the input; the input is sampled bilinearly with
//! weights quantised to 1/1024 and integer accumulation, so results are exact and portable.

use clarity_image::Image;

mod affine;

use super::common::{
    Dims, NormalStream, Sample, convolve_separable, float, gaussian_weights, map_samples, meta,
    nums, presets1, reflect101,
};
use crate::params::{ParamSpec, Params, PerturbError, ResolvedParams};
use crate::{KernelRng, Perturbation};
use affine::warp_affine;

const FRAC_BITS: u32 = 10;
const ONE: i64 = 1 << FRAC_BITS;

/// Bilinear resampling with reflect-101 borders: `map(x, y)` gives the source position of output
/// pixel `(x, y)`.
fn warp<T: Sample>(v: &[T], d: Dims, mut map: impl FnMut(usize, usize) -> (f64, f64)) -> Vec<T> {
    let (w, h, c) = (d.w as isize, d.h as isize, d.c);
    let rl = d.row_len();
    let fetch = |x: isize, y: isize, ch: usize| -> i64 {
        if x >= 0 && x < w && y >= 0 && y < h {
            v[y as usize * rl + x as usize * c + ch].to_u32() as i64
        } else {
            let xr = reflect101(x, d.w);
            let yr = reflect101(y, d.h);
            v[yr * rl + xr * c + ch].to_u32() as i64
        }
    };
    let mut out = vec![T::default(); v.len()];
    for (y, orow) in out.chunks_exact_mut(rl).enumerate() {
        for (x, opx) in orow.chunks_exact_mut(c).enumerate() {
            let (sx, sy) = map(x, y);
            if !(sx.is_finite() && sy.is_finite()) || sx.abs() > 1e9 || sy.abs() > 1e9 {
                continue;
            }
            let fx = (sx * ONE as f64).round() as i64;
            let fy = (sy * ONE as f64).round() as i64;
            let (ix, wx) = (fx >> FRAC_BITS, fx & (ONE - 1));
            let (iy, wy) = (fy >> FRAC_BITS, fy & (ONE - 1));
            let (ix, iy) = (ix as isize, iy as isize);
            if ix >= 0 && iy >= 0 && ix + 1 < w && iy + 1 < h {
                let i00 = iy as usize * rl + ix as usize * c;
                let i10 = i00 + rl;
                for (ch, o) in opx.iter_mut().enumerate() {
                    let p00 = v[i00 + ch].to_u32() as i64;
                    let p01 = v[i00 + c + ch].to_u32() as i64;
                    let p10 = v[i10 + ch].to_u32() as i64;
                    let p11 = v[i10 + c + ch].to_u32() as i64;
                    let top = p00 * (ONE - wx) + p01 * wx;
                    let bot = p10 * (ONE - wx) + p11 * wx;
                    let acc = top * (ONE - wy) + bot * wy;
                    *o = T::from_i64((acc + (1 << (2 * FRAC_BITS - 1))) >> (2 * FRAC_BITS));
                }
            } else {
                for (ch, o) in opx.iter_mut().enumerate() {
                    let top = fetch(ix, iy, ch) * (ONE - wx) + fetch(ix + 1, iy, ch) * wx;
                    let bot = fetch(ix, iy + 1, ch) * (ONE - wx) + fetch(ix + 1, iy + 1, ch) * wx;
                    let acc = top * (ONE - wy) + bot * wy;
                    *o = T::from_i64((acc + (1 << (2 * FRAC_BITS - 1))) >> (2 * FRAC_BITS));
                }
            }
        }
    }
    out
}

/// Inverse affine map `src = A · (dst − c) + c + t` applied with bilinear sampling, zero border.
fn affine(image: &Image, a: [[f64; 2]; 2], t: (f64, f64)) -> Image {
    let d = Dims::of(image);
    match d.c {
        1 => map_samples!(image, |s| warp_affine::<_, 1>(s, d, a, t)),
        _ => map_samples!(image, |s| warp_affine::<_, 3>(s, d, a, t)),
    }
}

/// Rotation about the image centre.
pub struct Rotation;

static ROTATION_PARAMS: [ParamSpec; 1] = [float(
    "degrees",
    "rotation angle about the image centre, counter-clockwise",
    "degrees",
    -180.0,
    180.0,
    0.0,
    Some(0.0),
)];

impl Perturbation for Rotation {
    meta!(
        "rotation",
        2,
        Geometry,
        random = false,
        "rotates about the centre (bilinear, corners filled with 0): patient or detector rotation, a tilted scan",
        ROTATION_PARAMS
    );
    fn presets(&self) -> [Params; 5] {
        presets1("degrees", [2.0, 5.0, 10.0, 15.0, 25.0])
    }
    fn apply(
        &self,
        image: &Image,
        params: &ResolvedParams,
        _rng: &mut KernelRng,
    ) -> Result<Image, PerturbError> {
        let deg = params.num("degrees");
        if deg == 0.0 {
            return Ok(image.clone());
        }
        let (s, c) = deg.to_radians().sin_cos();
        // Counter-clockwise on screen (y down): the inverse map rotates the other way.
        Ok(affine(image, [[c, -s], [s, c]], (0.0, 0.0)))
    }
}

/// Isotropic scaling about the image centre.
pub struct Scale;

static SCALE_PARAMS: [ParamSpec; 1] = [float(
    "factor",
    "magnification about the image centre (> 1 zooms in and crops, < 1 zooms out with a 0 border)",
    "×",
    0.25,
    4.0,
    1.0,
    Some(1.0),
)];

impl Perturbation for Scale {
    meta!(
        "scale",
        2,
        Geometry,
        random = false,
        "magnifies about the centre (bilinear, 0 outside): a different magnification, field of view or patient distance",
        SCALE_PARAMS
    );
    fn presets(&self) -> [Params; 5] {
        presets1("factor", [1.05, 1.1, 1.2, 1.3, 1.5])
    }
    fn apply(
        &self,
        image: &Image,
        params: &ResolvedParams,
        _rng: &mut KernelRng,
    ) -> Result<Image, PerturbError> {
        let f = params.num("factor");
        if f == 1.0 {
            return Ok(image.clone());
        }
        Ok(affine(image, [[1.0 / f, 0.0], [0.0, 1.0 / f]], (0.0, 0.0)))
    }
}

/// Translation by a fraction of the image size.
pub struct Translation;

static TRANSLATION_PARAMS: [ParamSpec; 2] = [
    float(
        "dx",
        "shift to the right as a fraction of the width",
        "fraction of width",
        -1.0,
        1.0,
        0.0,
        Some(0.0),
    ),
    float(
        "dy",
        "shift downwards as a fraction of the height",
        "fraction of height",
        -1.0,
        1.0,
        0.0,
        Some(0.0),
    ),
];

impl Perturbation for Translation {
    meta!(
        "translation",
        2,
        Geometry,
        random = false,
        "shifts the image (bilinear for sub-pixel shifts, 0 fills the uncovered band): off-centre positioning, collimation/cropping differences",
        TRANSLATION_PARAMS
    );
    fn presets(&self) -> [Params; 5] {
        [0.02, 0.05, 0.1, 0.15, 0.2].map(|f| nums(&[("dx", f), ("dy", f)]))
    }
    fn is_identity(&self, params: &ResolvedParams) -> bool {
        params.num("dx") == 0.0 && params.num("dy") == 0.0
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
        let tx = -params.num("dx") * image.width() as f64;
        let ty = -params.num("dy") * image.height() as f64;
        Ok(affine(image, [[1.0, 0.0], [0.0, 1.0]], (tx, ty)))
    }
}

/// Smooth random displacement field.
pub struct Elastic;

static ELASTIC_PARAMS: [ParamSpec; 2] = [
    float(
        "alpha",
        "root-mean-square displacement of the field",
        "px",
        0.0,
        100.0,
        0.0,
        Some(0.0),
    ),
    float(
        "sigma",
        "smoothness: standard deviation of the Gaussian that smooths the random field",
        "px",
        1.0,
        100.0,
        8.0,
        None,
    ),
];

/// Displacement field: white Gaussian noise (one plane per axis, drawn in raster order, x then
/// y), Gaussian-smoothed (reflect-101), scaled so the RMS displacement length is `alpha`.
fn displacement_field(
    w: usize,
    h: usize,
    alpha: f64,
    sigma: f64,
    rng: &mut KernelRng,
) -> (Vec<f32>, Vec<f32>) {
    let d = Dims { w, h, c: 1 };
    let mut stream = NormalStream::new(rng);
    let mut raw = vec![0i32; w * h];
    let mut plane = || {
        stream.fill(&mut raw);
        let f: Vec<f32> = raw.iter().map(|&z| z as f32 / 4096.0).collect();
        let r = ((sigma * 3.0).ceil() as usize).max(1);
        let k = gaussian_weights(sigma, r);
        convolve_separable(&f, d, &k, &k)
    };
    let mut fx = plane();
    let mut fy = plane();
    let sumsq: f64 = fx
        .iter()
        .chain(&fy)
        .map(|&v| v as f64 * v as f64)
        .sum::<f64>();
    let rms = (sumsq / (w * h) as f64).sqrt();
    let k = if rms > 0.0 { (alpha / rms) as f32 } else { 0.0 };
    fx.iter_mut().chain(fy.iter_mut()).for_each(|v| *v *= k);
    (fx, fy)
}

impl Perturbation for Elastic {
    meta!(
        "elastic",
        1,
        Geometry,
        random = true,
        "warps by a smooth random displacement field (bilinear, reflect-101): soft-tissue deformation, breathing, positioning differences",
        ELASTIC_PARAMS
    );
    fn presets(&self) -> [Params; 5] {
        [1.0, 2.0, 3.0, 4.0, 6.0].map(|a| nums(&[("alpha", a), ("sigma", 8.0)]))
    }
    fn apply(
        &self,
        image: &Image,
        params: &ResolvedParams,
        rng: &mut KernelRng,
    ) -> Result<Image, PerturbError> {
        let alpha = params.num("alpha");
        if alpha == 0.0 {
            return Ok(image.clone());
        }
        let d = Dims::of(image);
        let (fx, fy) = displacement_field(d.w, d.h, alpha, params.num("sigma"), rng);
        let map = |x: usize, y: usize| {
            let i = y * d.w + x;
            (x as f64 + fx[i] as f64, y as f64 + fy[i] as f64)
        };
        Ok(map_samples!(image, |s| warp(s, d, map)))
    }
}
