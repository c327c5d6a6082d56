//! Smooth value noise on a fixed lattice. The lattice lives in normalised image coordinates,
//! so the same seed gives the same texture at every output size. Written by hand because it is
//! a few lines and must be bit-stable (no SIMD dispatch, no library version drift).

use rand::Rng;
use rand_chacha::ChaCha8Rng;

/// Uniform `[0, 1)` from 24 random bits (exact in f32, independent of rand's float helpers).
pub(crate) fn unit(rng: &mut ChaCha8Rng) -> f32 {
    (rng.next_u32() >> 8) as f32 * (1.0 / 16_777_216.0)
}

/// Uniform in `[lo, hi)`.
pub(crate) fn range(rng: &mut ChaCha8Rng, lo: f32, hi: f32) -> f32 {
    lo + (hi - lo) * unit(rng)
}

/// A 2-D lattice of random values in `[-1, 1]`, interpolated with a smoothstep.
pub(crate) struct ValueNoise2 {
    n: usize,
    values: Vec<f32>,
}

impl ValueNoise2 {
    /// `n` cells per unit length.
    pub(crate) fn new(n: usize, rng: &mut ChaCha8Rng) -> Self {
        let values = (0..(n + 1) * (n + 1))
            .map(|_| unit(rng) * 2.0 - 1.0)
            .collect();
        Self { n, values }
    }

    /// Value at normalised `(u, v)`; coordinates are clamped to `[0, 1]`.
    pub(crate) fn at(&self, u: f32, v: f32) -> f32 {
        let fx = u.clamp(0.0, 1.0) * self.n as f32;
        let fy = v.clamp(0.0, 1.0) * self.n as f32;
        let ix = (fx as usize).min(self.n - 1);
        let iy = (fy as usize).min(self.n - 1);
        let tx = smooth01(fx - ix as f32);
        let ty = smooth01(fy - iy as f32);
        let w = self.n + 1;
        let a = self.values[iy * w + ix];
        let b = self.values[iy * w + ix + 1];
        let c = self.values[(iy + 1) * w + ix];
        let d = self.values[(iy + 1) * w + ix + 1];
        let top = a + (b - a) * tx;
        let bot = c + (d - c) * tx;
        top + (bot - top) * ty
    }
}

/// A periodic 1-D lattice (used around a circle for the vessel pattern).
pub(crate) struct ValueNoise1 {
    values: Vec<f32>,
}

impl ValueNoise1 {
    pub(crate) fn new(n: usize, rng: &mut ChaCha8Rng) -> Self {
        Self {
            values: (0..n).map(|_| unit(rng)).collect(),
        }
    }

    /// Value at `t` in cells (wraps around).
    pub(crate) fn at(&self, t: f32) -> f32 {
        let n = self.values.len();
        let t = t.rem_euclid(n as f32);
        let i = (t as usize).min(n - 1);
        let f = smooth01(t - i as f32);
        let a = self.values[i];
        let b = self.values[(i + 1) % n];
        a + (b - a) * f
    }
}

/// Hermite smoothstep on `[0, 1]`.
pub(crate) fn smooth01(t: f32) -> f32 {
    let t = t.clamp(0.0, 1.0);
    t * t * (3.0 - 2.0 * t)
}

/// Smoothstep from `e0` to `e1` (either order).
pub(crate) fn smoothstep(e0: f32, e1: f32, x: f32) -> f32 {
    smooth01((x - e0) / (e1 - e0))
}

/// SplitMix64 finaliser: a well-mixed 64-bit hash of `x`.
fn mix64(mut x: u64) -> u64 {
    x = x.wrapping_add(0x9e37_79b9_7f4a_7c15);
    x = (x ^ (x >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    x ^ (x >> 31)
}

/// The lattice value at `(ix, iy)` for `key`, in `[-1, 1)`.
fn lattice(key: u64, ix: u32, iy: u32) -> f32 {
    let h = mix64(key ^ mix64((u64::from(ix) << 32) | u64::from(iy)));
    (h >> 40) as f32 * (2.0 / 16_777_216.0) - 1.0
}

/// Value noise with `cells` lattice cells per unit length whose lattice values are hashed from
/// `key` and the cell index instead of stored: a pure function of the point, cheap for fine
/// lattices (quantum mottle), the same at every output size.
pub(crate) fn hashed_noise(key: u64, cells: f32, u: f32, v: f32) -> f32 {
    let fx = u.clamp(0.0, 1.0) * cells;
    let fy = v.clamp(0.0, 1.0) * cells;
    let (ix, iy) = (fx as u32, fy as u32);
    let tx = smooth01(fx - ix as f32);
    let ty = smooth01(fy - iy as f32);
    let a = lattice(key, ix, iy);
    let b = lattice(key, ix + 1, iy);
    let c = lattice(key, ix, iy + 1);
    let d = lattice(key, ix + 1, iy + 1);
    let top = a + (b - a) * tx;
    let bot = c + (d - c) * tx;
    top + (bot - top) * ty
}
