//! Shared helpers of the kernel families, one module per concern:
//!
//! - [`declare`]: parameter constructors, presets, the `unsupported` error, `meta!`;
//! - [`sample`]: the `u8`/`u16` sample trait, `same_layout`, `map_samples!`, `Dims`;
//! - [`border`]: reflect-101 indices and row padding;
//! - [`simd`]: pulp runtime dispatch (`vectorized`, `vectorized_job!`);
//! - [`point`]: lookup tables and affine point operations;
//! - [`separable`]: Gaussian weights and separable convolution;
//! - [`random`]: normal deviates and uniform draws.

mod border;
mod declare;
mod point;
mod random;
mod sample;
mod separable;
mod simd;

pub(crate) use border::{RowPad, reflect101};
pub(crate) use declare::{choice, float, int, meta, nums, presets1, unsupported};
pub(crate) use point::{PointKey, affine_point_op, point_op};
pub(crate) use random::{NormalStream, unit_f64};
pub(crate) use sample::{Dims, Sample, map_samples, same_layout};
pub(crate) use separable::{
    convolve_separable, gaussian_blur_samples, gaussian_blur_u8, gaussian_radius, gaussian_weights,
};
#[cfg(test)]
pub(crate) use simd::scalar;
pub(crate) use simd::{Vectorized, vectorized, vectorized_job};

/// Pseudo-random samples covering the whole range (tests of the helper modules).
#[cfg(test)]
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
