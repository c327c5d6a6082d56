//! Training-time augmentation: the image degradations a deployed model meets (exposure and
//! tone changes, mild optical blur, detector noise), applied to the resampled `INPUT×INPUT`
//! gray input before standardisation, with parameters drawn per example and epoch from the
//! training seed.
//!
//! Written by hand rather than with `clarity-perturb`'s kernels so that training stays
//! bit-reproducible on every platform: no libm call (Gaussian weights from the network's
//! polynomial `exp`, Gaussian noise as a scaled sum of four uniforms), no SIMD dispatch, a
//! fixed order of float operations.

use rand::Rng;
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};

use crate::net::{INPUT, exp};

/// How strongly training examples are degraded. Each augmented example gets a tone curve, a
/// Gaussian blur and additive Gaussian noise with strengths drawn uniformly up to these limits.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Augment {
    /// Fraction of examples shown as rendered (no augmentation).
    pub clean_fraction: f32,
    /// Largest blur σ, in pixels of the `INPUT×INPUT` input.
    pub blur_max: f32,
    /// Shape of the blur draw: σ = `blur_max · u^blur_power`, `u` uniform in `[0, 1)`. 1 is
    /// uniform; 2 puts half of the draws below a quarter of `blur_max`, so a wide range (up to
    /// where small lesions fade) costs little sharp-film practice.
    #[serde(default = "one")]
    pub blur_power: u32,
    /// Largest noise σ, as a fraction of the intensity range, at the input's resolution.
    pub noise_max: f32,
    /// Largest tone-curve bend `k` in `x + k·x·(1 − x)` (either sign).
    pub tone_max: f32,
}

fn one() -> u32 {
    1
}

/// The degradation drawn for one example.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct Draw {
    pub blur: f32,
    pub noise: f32,
    pub tone: f32,
}

/// Uniform `[0, 1)` from 24 random bits (exact in f32).
fn unit(rng: &mut ChaCha8Rng) -> f32 {
    (rng.next_u32() >> 8) as f32 * (1.0 / 16_777_216.0)
}

impl Augment {
    /// Draws one example's degradation (`None` = shown clean).
    pub(crate) fn draw(&self, rng: &mut ChaCha8Rng) -> Option<Draw> {
        if unit(rng) < self.clean_fraction {
            return None;
        }
        Some(Draw {
            blur: {
                // An integer power: repeated products, no libm.
                let u = unit(rng);
                self.blur_max * (1..self.blur_power).fold(u, |acc, _| acc * u)
            },
            noise: self.noise_max * unit(rng),
            tone: self.tone_max * (2.0 * unit(rng) - 1.0),
        })
    }

    /// Applies a drawn degradation to a resampled (not yet standardised) input in place.
    pub(crate) fn apply(d: &Draw, x: &mut [f32], rng: &mut ChaCha8Rng) {
        for v in x.iter_mut() {
            *v += d.tone * *v * (1.0 - *v);
        }
        if d.blur > 0.0 {
            blur(x, d.blur);
        }
        if d.noise > 0.0 {
            // Sum of four uniforms: mean 2, variance 1/3; scaled to unit variance.
            let scale = d.noise * 3f32.sqrt();
            for v in x.iter_mut() {
                let s = unit(rng) + unit(rng) + unit(rng) + unit(rng) - 2.0;
                *v += s * scale;
            }
        }
    }
}

/// Normalised Gaussian weights for offsets `-r..=r`, `r = ⌈3σ⌉`.
fn kernel(sigma: f32) -> Vec<f32> {
    let r = (3.0 * sigma).ceil() as i64;
    let s2 = 2.0 * f64::from(sigma) * f64::from(sigma);
    let w: Vec<f64> = (-r..=r).map(|i| exp(-((i * i) as f64) / s2)).collect();
    let total: f64 = w.iter().sum();
    w.iter().map(|v| (v / total) as f32).collect()
}

/// Reflect-101 index into `0..n`.
fn reflect(i: i64, n: i64) -> usize {
    let mut i = i;
    while i < 0 || i >= n {
        i = if i < 0 { -i } else { 2 * (n - 1) - i };
    }
    i as usize
}

/// Separable Gaussian blur of an `INPUT×INPUT` image, reflect-101 borders.
fn blur(x: &mut [f32], sigma: f32) {
    let k = kernel(sigma);
    let r = (k.len() / 2) as i64;
    let n = INPUT as i64;
    let mut tmp = vec![0.0f32; x.len()];
    for y in 0..INPUT {
        for xx in 0..INPUT {
            let mut acc = 0.0f32;
            for (j, w) in k.iter().enumerate() {
                acc += w * x[y * INPUT + reflect(xx as i64 + j as i64 - r, n)];
            }
            tmp[y * INPUT + xx] = acc;
        }
    }
    for y in 0..INPUT {
        for xx in 0..INPUT {
            let mut acc = 0.0f32;
            for (j, w) in k.iter().enumerate() {
                acc += w * tmp[reflect(y as i64 + j as i64 - r, n) * INPUT + xx];
            }
            x[y * INPUT + xx] = acc;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;

    #[test]
    fn blur_keeps_the_mean_and_smooths() {
        let mut x: Vec<f32> = (0..INPUT * INPUT)
            .map(|i| {
                if (i / INPUT + i % INPUT).is_multiple_of(2) {
                    1.0
                } else {
                    0.0
                }
            })
            .collect();
        let before: f32 = x.iter().sum();
        blur(&mut x, 1.5);
        let after: f32 = x.iter().sum();
        assert!((before - after).abs() < 1e-2, "{before} vs {after}");
        assert!(x.iter().all(|v| (v - 0.5).abs() < 0.02));
        let k = kernel(2.0);
        assert_eq!(k.len(), 13);
        assert!((k.iter().sum::<f32>() - 1.0).abs() < 1e-6);
    }

    #[test]
    fn noise_has_the_requested_sigma_and_draws_are_seeded() {
        let aug = Augment {
            clean_fraction: 0.0,
            blur_max: 0.0,
            blur_power: 1,
            noise_max: 0.1,
            tone_max: 0.0,
        };
        let d = Draw {
            blur: 0.0,
            noise: 0.1,
            tone: 0.0,
        };
        let mut x = vec![0.5f32; INPUT * INPUT];
        Augment::apply(&d, &mut x, &mut ChaCha8Rng::seed_from_u64(1));
        let n = x.len() as f64;
        let var = x.iter().map(|&v| (f64::from(v) - 0.5).powi(2)).sum::<f64>() / n;
        assert!((var.sqrt() - 0.1).abs() < 0.005, "{}", var.sqrt());
        let a = aug.draw(&mut ChaCha8Rng::seed_from_u64(2));
        assert_eq!(a, aug.draw(&mut ChaCha8Rng::seed_from_u64(2)));
        assert_ne!(a, aug.draw(&mut ChaCha8Rng::seed_from_u64(3)));
    }

    #[test]
    fn blur_power_shapes_the_draw_towards_mild_blur() {
        let with = |blur_power| Augment {
            clean_fraction: 0.0,
            blur_max: 2.0,
            blur_power,
            noise_max: 0.0,
            tone_max: 0.0,
        };
        let draws = |aug: &Augment| -> Vec<f32> {
            let mut rng = ChaCha8Rng::seed_from_u64(5);
            (0..2000)
                .map(|_| aug.draw(&mut rng).unwrap().blur)
                .collect()
        };
        let (uniform, squared) = (draws(&with(1)), draws(&with(2)));
        // The same uniform numbers: u² · max ≤ u · max, and (u · max)² / max = u² · max.
        for (u, s) in uniform.iter().zip(&squared) {
            assert!(s <= u);
            assert!((u * u / 2.0 - s).abs() < 1e-6, "{u} {s}");
        }
        let below = |v: &[f32]| v.iter().filter(|&&b| b < 0.5).count();
        // P(σ < max/4) = 1/4 uniform, 1/2 squared.
        assert!((450..550).contains(&below(&uniform)), "{}", below(&uniform));
        assert!(
            (950..1050).contains(&below(&squared)),
            "{}",
            below(&squared)
        );
    }
}
