//! Case-resampling bootstrap helpers.

use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;

/// Percentile of sorted `v` at `p` in `[0, 1]`, linear interpolation between order statistics
/// (Hyndman–Fan type 7). `None` for an empty slice.
pub fn percentile(sorted: &[f64], p: f64) -> Option<f64> {
    if sorted.is_empty() {
        return None;
    }
    let pos = p.clamp(0.0, 1.0) * (sorted.len() - 1) as f64;
    let lo = pos.floor() as usize;
    let hi = pos.ceil() as usize;
    let w = pos - lo as f64;
    Some(sorted[lo] + (sorted[hi] - sorted[lo]) * w)
}

/// The RNG of one bootstrap: ChaCha8 seeded from BLAKE3 of the settings' seed and a label naming
/// what is resampled (`cell/3`, `marginal/blur.sigma/2`…), so every estimate has its own stream
/// and adding an estimate never changes another's interval.
pub(crate) fn rng(seed: u64, label: &str) -> ChaCha8Rng {
    let mut h = blake3::Hasher::new();
    h.update(b"clarity-analysis-bootstrap-v1\0");
    h.update(&seed.to_le_bytes());
    h.update(label.as_bytes());
    ChaCha8Rng::from_seed(*h.finalize().as_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentile_type7() {
        let v = [1.0, 2.0, 3.0, 4.0, 5.0];
        assert_eq!(percentile(&v, 0.0), Some(1.0));
        assert_eq!(percentile(&v, 0.5), Some(3.0));
        assert_eq!(percentile(&v, 0.025), Some(1.1));
        assert_eq!(percentile(&v, 0.975), Some(4.9));
        assert_eq!(percentile(&[], 0.5), None);
    }
}
