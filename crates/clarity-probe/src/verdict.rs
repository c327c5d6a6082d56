//! The per-case verdict rule and the cohort statistics (seeded case bootstrap).

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde::Serialize;

/// A case's verdict.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Verdict {
    Grounded,
    NotGrounded,
    Inconclusive,
}

/// The rule, as written into `probe.json`.
pub fn rule_text(flip_fraction: f64, margin: f64) -> String {
    format!(
        "The evidence region is the region with the largest saliency mass (C1, or the top grid tile in grid mode); its controls have the same shape and are placed as rules.control says. \
         evidence_flip_rate = fraction of fills whose masking of the evidence region changes the normalised answer; control_flip_rate = the same for the controls, averaged over them (failed runs excluded). \
         grounded: evidence_flip_rate >= {ff} and evidence_flip_rate - control_flip_rate >= {m}. \
         not_grounded: evidence_flip_rate < {ff}. \
         inconclusive: otherwise (masking the control flips the answer nearly as often), or when the baseline run failed, the map is empty, or no region, no control or no successful masked run exists.",
        ff = clarity_core::json::format_num(flip_fraction),
        m = clarity_core::json::format_num(margin),
    )
}

/// Applies the rule; the reason is a short sentence for the artifact.
pub fn decide(
    evidence: Option<f64>,
    control: Option<f64>,
    flip_fraction: f64,
    margin: f64,
) -> (Verdict, String) {
    match (evidence, control) {
        (None, _) => (
            Verdict::Inconclusive,
            "no successful masked run of an evidence region".into(),
        ),
        (Some(e), _) if e < flip_fraction => (
            Verdict::NotGrounded,
            "masking the evidence region rarely changes the answer".into(),
        ),
        (Some(_), None) => (
            Verdict::Inconclusive,
            "no control region (or no successful control run) to compare with".into(),
        ),
        (Some(e), Some(c)) if e - c >= margin => (
            Verdict::Grounded,
            "masking the evidence changes the answer, masking the control does not".into(),
        ),
        (Some(_), Some(_)) => (
            Verdict::Inconclusive,
            "masking the control changes the answer nearly as often as masking the evidence".into(),
        ),
    }
}

/// A cohort estimate: mean over cases, with a 95 % percentile bootstrap interval.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Estimate {
    pub value: f64,
    /// Cases the mean is over.
    pub n: usize,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub lo: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub hi: Option<f64>,
}

/// Mean of `xs` with a case-resampling bootstrap CI (`iterations` resamples, ChaCha8 seeded from
/// BLAKE3 of `seed` and `label`); `None` for no values.
pub fn estimate(xs: &[f64], iterations: usize, seed: u64, label: &str) -> Option<Estimate> {
    if xs.is_empty() {
        return None;
    }
    let n = xs.len();
    let mean = xs.iter().sum::<f64>() / n as f64;
    let (lo, hi) = if iterations > 0 {
        let mut h = blake3::Hasher::new();
        h.update(b"clarity-probe-bootstrap-v1\0");
        h.update(&seed.to_le_bytes());
        h.update(label.as_bytes());
        let mut rng = ChaCha8Rng::from_seed(*h.finalize().as_bytes());
        let mut means = Vec::with_capacity(iterations);
        for _ in 0..iterations {
            let mut s = 0.0;
            for _ in 0..n {
                let i = ((rng.next_u64() as u128 * n as u128) >> 64) as usize;
                s += xs[i];
            }
            means.push(s / n as f64);
        }
        means.sort_by(f64::total_cmp);
        (
            clarity_analysis::percentile(&means, 0.025),
            clarity_analysis::percentile(&means, 0.975),
        )
    } else {
        (None, None)
    };
    Some(Estimate {
        value: mean,
        n,
        lo,
        hi,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rule() {
        assert_eq!(decide(Some(1.0), Some(0.0), 0.5, 0.25).0, Verdict::Grounded);
        assert_eq!(
            decide(Some(0.2), Some(0.0), 0.5, 0.25).0,
            Verdict::NotGrounded
        );
        assert_eq!(
            decide(Some(0.8), Some(0.8), 0.5, 0.25).0,
            Verdict::Inconclusive
        );
        assert_eq!(decide(Some(0.8), None, 0.5, 0.25).0, Verdict::Inconclusive);
        assert_eq!(decide(None, Some(0.0), 0.5, 0.25).0, Verdict::Inconclusive);
    }

    #[test]
    fn bootstrap_is_seeded_and_brackets_the_mean() {
        let xs = [1.0, 0.0, 1.0, 1.0, 0.0, 1.0];
        let a = estimate(&xs, 500, 3, "x").unwrap();
        assert_eq!(a, estimate(&xs, 500, 3, "x").unwrap());
        let (lo, hi) = (a.lo.unwrap(), a.hi.unwrap());
        assert!(lo <= a.value && a.value <= hi, "{a:?}");
        assert!(estimate(&[], 10, 0, "x").is_none());
    }
}
