//! Confidence intervals for metrics clustered by case (`docs/analysis.md`, "Intervals").
//!
//! A cell's ESI pools several runs per case (one per seed); runs of one case are not
//! independent (at temperature 0 with a deterministic perturbation the seeds are exact
//! duplicates), so the case is the sampling unit. Two analytic intervals, no resampling (so they
//! do not move with the bootstrap seed):
//!
//! - [`proportion`]: a Wilson score interval on the **effective sample size** `n_eff = N / deff`,
//!   where `deff` is the design effect of the ratio estimator estimated from the per-case
//!   residuals (clamped to `[1, N / cases]`, i.e. `cases <= n_eff <= N`), with the
//!   Korn–Graubard degrees-of-freedom correction `n_eff * (z / t_{cases-1})^2`. Never zero-width
//!   for a finite sample.
//! - [`mean`]: a cluster (linearisation) Student-t interval of a ratio mean; for metrics
//!   bounded in `[0, 1]` with no spread at all it falls back to the Wilson bound of a proportion
//!   on `cases` (a `[0, 1]` variable has at most the variance of a Bernoulli of its mean).
//!
//! The coverage of both is measured by `cargo run --release -p clarity-analysis --example
//! coverage` (table in `docs/analysis.md`) and guarded by a unit test.

use serde::Serialize;

/// The 97.5% quantile of the standard normal.
pub const Z975: f64 = 1.959_963_984_540_054;

/// The 97.5% quantile of Student's t with `df` degrees of freedom (`df >= 1`): tabulated up to 6,
/// the Cornish–Fisher expansion to the fourth order above (error below 1e-3 at `df = 7`,
/// smaller beyond). Written by hand: one quantile, not worth a statistics crate.
pub fn t975(df: usize) -> f64 {
    match df {
        0 | 1 => 12.706_204_736_174_7,
        2 => 4.302_652_729_749_464,
        3 => 3.182_446_305_284_263,
        4 => 2.776_445_105_197_793,
        5 => 2.570_581_835_636_314,
        6 => 2.446_911_851_144_969,
        _ => {
            let z = Z975;
            let v = df as f64;
            let (z3, z5, z7, z9) = (z.powi(3), z.powi(5), z.powi(7), z.powi(9));
            z + (z3 + z) / (4.0 * v)
                + (5.0 * z5 + 16.0 * z3 + 3.0 * z) / (96.0 * v * v)
                + (3.0 * z7 + 19.0 * z5 + 17.0 * z3 - 15.0 * z) / (384.0 * v.powi(3))
                + (79.0 * z9 + 776.0 * z7 + 1482.0 * z5 - 1920.0 * z3 - 945.0 * z)
                    / (92160.0 * v.powi(4))
        }
    }
}

/// An interval of a metric clustered by case.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Interval {
    pub value: f64,
    pub lo: f64,
    pub hi: f64,
    /// Effective sample size: observations worth of independent information (`cases <= n_eff
    /// <= runs` for proportions; `cases` for means).
    pub n_eff: f64,
    /// Cases with at least one observation.
    pub cases: usize,
    /// Observations (runs) behind the value.
    pub runs: f64,
    /// Design effect `runs / n_eff` (1: runs as informative as independent ones).
    pub deff: f64,
}

/// Wilson score interval for `p` on `n` (possibly fractional) independent trials, 95%.
pub fn wilson(p: f64, n: f64) -> (f64, f64) {
    if n <= 0.0 {
        return (0.0, 1.0);
    }
    let z2 = Z975 * Z975;
    let d = 1.0 + z2 / n;
    let centre = (p + z2 / (2.0 * n)) / d;
    let half = Z975 * (p * (1.0 - p) / n + z2 / (4.0 * n * n)).sqrt() / d;
    ((centre - half).max(0.0), (centre + half).min(1.0))
}

/// The interval of a proportion `Σy / Σm` over cases `(y_i, m_i)` (successes, trials per case;
/// cases with `m_i = 0` are ignored). `None` when there is no trial.
pub fn proportion(per_case: &[(f64, f64)]) -> Option<Interval> {
    let cases: Vec<(f64, f64)> = per_case.iter().copied().filter(|c| c.1 > 0.0).collect();
    let n = cases.len();
    let runs: f64 = cases.iter().map(|c| c.1).sum();
    if n == 0 || runs <= 0.0 {
        return None;
    }
    let p = cases.iter().map(|c| c.0).sum::<f64>() / runs;
    let max_deff = runs / n as f64;
    let deff = if n >= 2 && p > 0.0 && p < 1.0 {
        let ss: f64 = cases.iter().map(|(y, m)| (y - p * m).powi(2)).sum();
        let var_cluster = n as f64 / (n as f64 - 1.0) * ss / (runs * runs);
        let var_binom = p * (1.0 - p) / runs;
        (var_cluster / var_binom).clamp(1.0, max_deff.max(1.0))
    } else {
        // No spread to estimate a design effect from (every run agrees, or one case): assume
        // the runs of a case are duplicates, i.e. the cases are the sample.
        max_deff.max(1.0)
    };
    let n_eff = runs / deff;
    let t = t975(n.saturating_sub(1));
    let n_adj = n_eff * (Z975 / t).powi(2);
    let (lo, hi) = wilson(p, n_adj);
    Some(Interval {
        value: p,
        lo: lo.min(p),
        hi: hi.max(p),
        n_eff,
        cases: n,
        runs,
        deff,
    })
}

/// The interval of a ratio mean `Σs / Σm` over cases `(s_i, m_i)` (sum of the values, number
/// of values per case); `None` without values, or with one case of an unbounded metric. `unit`: the values lie in `[0, 1]` (clamps the interval, and a sample
/// without spread gets the Bernoulli bound instead of a zero width).
pub fn mean(per_case: &[(f64, f64)], unit: bool) -> Option<Interval> {
    let cases: Vec<(f64, f64)> = per_case.iter().copied().filter(|c| c.1 > 0.0).collect();
    let n = cases.len();
    let runs: f64 = cases.iter().map(|c| c.1).sum();
    if n == 0 || runs <= 0.0 {
        return None;
    }
    let r = cases.iter().map(|c| c.0).sum::<f64>() / runs;
    let ss: f64 = cases.iter().map(|(s, m)| (s - r * m).powi(2)).sum();
    let se = if n >= 2 {
        (n as f64 / (n as f64 - 1.0) * ss).sqrt() / runs
    } else {
        0.0
    };
    let half = t975(n.saturating_sub(1)) * se;
    let (mut lo, mut hi) = (r - half, r + half);
    if unit {
        let (wl, wh) = wilson(r.clamp(0.0, 1.0), n as f64 * (Z975 / t975(n - 1)).powi(2));
        if half <= 1e-12 || n < 2 {
            (lo, hi) = (wl, wh);
        }
        lo = lo.clamp(0.0, 1.0);
        hi = hi.clamp(0.0, 1.0);
    } else if n < 2 {
        // One case: nothing to estimate a spread from.
        return None;
    }
    Some(Interval {
        value: r,
        lo: lo.min(r),
        hi: hi.max(r),
        n_eff: n as f64,
        cases: n,
        runs,
        deff: runs / n as f64,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn t_quantiles() {
        // R: qt(0.975, c(3, 5, 7, 10, 30, 100)).
        for (df, want) in [
            (3, 3.182446),
            (5, 2.570582),
            (7, 2.364624),
            (10, 2.228139),
            (30, 2.042272),
            (100, 1.983972),
        ] {
            assert!((t975(df) - want).abs() < 2e-3, "df {df}: {}", t975(df));
        }
    }

    #[test]
    fn wilson_matches_the_formula() {
        // 8/10: Wilson 95% [0.4902, 0.9433].
        let (lo, hi) = wilson(0.8, 10.0);
        assert!(
            (lo - 0.4902).abs() < 1e-3 && (hi - 0.9433).abs() < 1e-3,
            "{lo} {hi}"
        );
    }

    #[test]
    fn esi_one_at_eight_cases_is_not_zero_width() {
        // Two duplicate seeds per case, every run agrees: the sample is the 8 cases.
        let i = proportion(&[(2.0, 2.0); 8]).unwrap();
        assert_eq!(i.value, 1.0);
        assert_eq!(i.n_eff, 8.0);
        assert_eq!(i.hi, 1.0);
        assert!(i.lo < 0.7 && i.lo > 0.4, "{i:?}");
    }

    #[test]
    fn duplicate_seeds_count_once() {
        // Seeds that repeat each other exactly: n_eff is the number of cases, not runs.
        let dup: Vec<(f64, f64)> = (0..16)
            .map(|i| if i % 4 == 0 { (0.0, 2.0) } else { (2.0, 2.0) })
            .collect();
        let i = proportion(&dup).unwrap();
        assert!((i.n_eff - 16.0).abs() < 1e-9, "{i:?}");
        // Independent-looking seeds: n_eff above the number of cases.
        let ind: Vec<(f64, f64)> = (0..16)
            .map(|i| if i % 2 == 0 { (1.0, 2.0) } else { (2.0, 2.0) })
            .collect();
        let j = proportion(&ind).unwrap();
        assert!(j.n_eff > 16.0, "{j:?}");
    }

    #[test]
    fn means_have_width_without_spread() {
        let i = mean(&[(0.0, 2.0); 8], true).unwrap();
        assert_eq!((i.value, i.lo), (0.0, 0.0));
        assert!(i.hi > 0.2, "{i:?}");
        let j = mean(&[(0.2, 1.0), (0.4, 1.0), (0.3, 1.0)], true).unwrap();
        assert!(j.lo < 0.3 && j.hi > 0.3);
    }
}
