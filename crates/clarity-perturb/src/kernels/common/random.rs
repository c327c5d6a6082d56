//! Random draws: a standard-normal quantile table and bulk normal deviates from the kernel RNG,
//! uniform floats.

use rand::Rng;

use crate::KernelRng;

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

#[cfg(test)]
mod tests {
    use super::*;

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
}
