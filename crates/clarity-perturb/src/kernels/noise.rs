//! Noise kernels: additive Gaussian, Poisson (shot), salt-and-pepper (impulse), speckle
//! (multiplicative). Every draw comes from the [`KernelRng`] passed in, in raster order.

use clarity_image::Image;
use rand::Rng;
use rand_distr::Distribution;

use super::common::{
    Dims, NormalStream, Sample, float, map_samples, meta, presets1, vectorized, vectorized_job,
};
use crate::params::{ParamSpec, Params, PerturbError, ResolvedParams};
use crate::{KernelRng, Perturbation};

const CHUNK: usize = 4096;

/// `out = in + f(in) · z` for standard-normal `z` (one per sample, raster order).
fn add_normal<T: Sample, F: Fn(f32) -> f32 + Copy>(v: &[T], rng: &mut KernelRng, f: F) -> Vec<T> {
    let mut stream = NormalStream::new(rng);
    let mut z = [0i32; CHUNK];
    let mut out = vec![T::default(); v.len()];
    for (chunk, ochunk) in v.chunks(CHUNK).zip(out.chunks_mut(CHUNK)) {
        let z = &mut z[..chunk.len()];
        stream.fill(z);
        vectorized(AddNormal {
            v: chunk,
            z,
            out: ochunk,
            f,
        });
    }
    out
}

vectorized_job! {
    struct AddNormal<'a, T: Sample, F: Fn(f32) -> f32> {
        v: &'a [T],
        z: &'a [i32],
        out: &'a mut [T],
        f: F,
    } -> () {
        for ((o, &s), &zi) in out.iter_mut().zip(v).zip(z) {
            let x = s.to_f32();
            *o = T::from_f32_simd(x + f(x) * zi as f32);
        }
    }
}

/// Additive white Gaussian noise.
pub struct GaussianNoise;

static GAUSSIAN_NOISE_PARAMS: [ParamSpec; 1] = [float(
    "sigma",
    "standard deviation of the added noise as a fraction of the sample range",
    "fraction of range",
    0.0,
    1.0,
    0.0,
    Some(0.0),
)];

impl Perturbation for GaussianNoise {
    meta!(
        "gaussian_noise",
        1,
        Noise,
        random = true,
        "adds independent Gaussian noise to every sample (rounded, clipped): electronic/readout noise, low-dose acquisitions",
        GAUSSIAN_NOISE_PARAMS
    );
    fn presets(&self) -> [Params; 5] {
        // ImageNet-C gaussian_noise levels (fraction of range).
        presets1("sigma", [0.08, 0.12, 0.18, 0.26, 0.38])
    }
    fn apply(
        &self,
        image: &Image,
        params: &ResolvedParams,
        rng: &mut KernelRng,
    ) -> Result<Image, PerturbError> {
        let sigma = params.num("sigma");
        let k = (sigma * image.max_value() as f64 / 4096.0) as f32;
        Ok(map_samples!(image, |v| add_normal(v, rng, |_| k)))
    }
}

/// Multiplicative Gaussian noise: `out = in · (1 + sigma · z)`.
pub struct SpeckleNoise;

static SPECKLE_PARAMS: [ParamSpec; 1] = [float(
    "sigma",
    "standard deviation of the multiplicative noise factor",
    "",
    0.0,
    5.0,
    0.0,
    Some(0.0),
)];

impl Perturbation for SpeckleNoise {
    meta!(
        "speckle_noise",
        1,
        Noise,
        random = true,
        "multiplies every sample by (1 + sigma·z), z standard normal: ultrasound/coherent-imaging speckle",
        SPECKLE_PARAMS
    );
    fn presets(&self) -> [Params; 5] {
        // ImageNet-C speckle_noise levels.
        presets1("sigma", [0.15, 0.2, 0.35, 0.45, 0.6])
    }
    fn apply(
        &self,
        image: &Image,
        params: &ResolvedParams,
        rng: &mut KernelRng,
    ) -> Result<Image, PerturbError> {
        let k = (params.num("sigma") / 4096.0) as f32;
        Ok(map_samples!(image, |v| add_normal(v, rng, |x| x * k)))
    }
}

/// Poisson (shot) noise at a given dose.
pub struct PoissonNoise;

static POISSON_PARAMS: [ParamSpec; 1] = [float(
    "dose",
    "expected photon count at full scale (lower = noisier); 0 turns the kernel off",
    "photons",
    0.0,
    1e9,
    0.0,
    Some(0.0),
)];

/// `out = Poisson(dose · in / max) · max / dose`, rounded and clipped. Distributions are built
/// once per distinct input value (at most 256 for 8-bit images).
fn poisson<T: Sample>(v: &[T], dose: f64, rng: &mut KernelRng) -> Vec<T> {
    let max = T::MAX as f64;
    let scale = max / dose;
    let mut cache: Vec<Option<rand_distr::Poisson<f64>>> = if T::MAX == 255 {
        vec![None; 256]
    } else {
        Vec::new()
    };
    let mut last: Option<(T, rand_distr::Poisson<f64>)> = None;
    v.iter()
        .map(|&s| {
            if s.to_u32() == 0 {
                return s;
            }
            let lambda = dose * s.to_f32() as f64 / max;
            let dist = if cache.is_empty() {
                match &last {
                    Some((ls, d)) if *ls == s => *d,
                    _ => {
                        let d = rand_distr::Poisson::new(lambda).expect("lambda is finite, > 0");
                        last = Some((s, d));
                        d
                    }
                }
            } else {
                *cache[s.to_u32() as usize].get_or_insert_with(|| {
                    rand_distr::Poisson::new(lambda).expect("lambda is finite, > 0")
                })
            };
            let k: f64 = dist.sample(rng);
            T::from_f32((k * scale) as f32)
        })
        .collect()
}

impl Perturbation for PoissonNoise {
    meta!(
        "poisson_noise",
        1,
        Noise,
        random = true,
        "resamples every sample as a Poisson photon count at the given full-scale dose: quantum (shot) noise of low-dose X-ray/CT",
        POISSON_PARAMS
    );
    fn presets(&self) -> [Params; 5] {
        // ImageNet-C shot_noise levels (photons per unit intensity).
        presets1("dose", [60.0, 25.0, 12.0, 5.0, 3.0])
    }
    fn apply(
        &self,
        image: &Image,
        params: &ResolvedParams,
        rng: &mut KernelRng,
    ) -> Result<Image, PerturbError> {
        let dose = params.num("dose");
        if dose == 0.0 {
            return Ok(image.clone());
        }
        Ok(map_samples!(image, |v| poisson(v, dose, rng)))
    }
}

/// Salt-and-pepper (impulse) noise.
pub struct SaltPepper;

static SALT_PEPPER_PARAMS: [ParamSpec; 1] = [float(
    "amount",
    "fraction of pixels replaced, half by the maximum (salt) and half by 0 (pepper); all channels of a pixel together",
    "fraction of pixels",
    0.0,
    1.0,
    0.0,
    Some(0.0),
)];

/// One 32-bit draw per pixel: below `amount/2 · 2^32` → salt, below `amount · 2^32` → pepper.
fn salt_pepper<T: Sample>(v: &[T], d: Dims, amount: f64, rng: &mut KernelRng) -> Vec<T> {
    let thr = (amount * 4294967296.0).round() as u64;
    let half = thr / 2;
    let mut out = vec![T::default(); v.len()];
    let mut draws = [0u32; CHUNK];
    for (px, opx) in v.chunks(CHUNK * d.c).zip(out.chunks_mut(CHUNK * d.c)) {
        let n = px.len() / d.c;
        for pair in draws[..n].chunks_mut(2) {
            let r = rng.next_u64();
            pair[0] = r as u32;
            if let Some(second) = pair.get_mut(1) {
                *second = (r >> 32) as u32;
            }
        }
        vectorized(SaltPepperChunk {
            v: px,
            out: opx,
            draws: &draws[..n],
            c: d.c,
            thr,
            half,
        });
    }
    out
}

vectorized_job! {
    /// Branch-free per pixel, so the gray case vectorises.
    struct SaltPepperChunk<'a, T: Sample> {
        v: &'a [T],
        out: &'a mut [T],
        draws: &'a [u32],
        c: usize,
        thr: u64,
        half: u64,
    } -> () {
        let salt = T::from_u32_trunc(T::MAX);
        let pepper = T::default();
        // `r < half` / `r < thr` on 33-bit thresholds, as u64 compares.
        let pick = |r: u32, s: T| -> T {
            let r = r as u64;
            if r < half {
                salt
            } else if r < thr {
                pepper
            } else {
                s
            }
        };
        if c == 1 {
            for ((o, &s), &r) in out.iter_mut().zip(v).zip(draws) {
                *o = pick(r, s);
            }
        } else {
            for ((o, s), &r) in out.chunks_exact_mut(c).zip(v.chunks_exact(c)).zip(draws) {
                for (oc, &sc) in o.iter_mut().zip(s) {
                    *oc = pick(r, sc);
                }
            }
        }
    }
}

impl Perturbation for SaltPepper {
    meta!(
        "salt_pepper",
        1,
        Noise,
        random = true,
        "sets a random fraction of pixels to black or white: dead/hot detector pixels, transmission bit errors",
        SALT_PEPPER_PARAMS
    );
    fn presets(&self) -> [Params; 5] {
        // ImageNet-C impulse_noise levels.
        presets1("amount", [0.03, 0.06, 0.09, 0.17, 0.27])
    }
    fn apply(
        &self,
        image: &Image,
        params: &ResolvedParams,
        rng: &mut KernelRng,
    ) -> Result<Image, PerturbError> {
        let amount = params.num("amount");
        let d = Dims::of(image);
        Ok(map_samples!(image, |v| salt_pepper(v, d, amount, rng)))
    }
}
