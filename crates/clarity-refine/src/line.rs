//! A cliff's line through the baseline as measured so far (the sweep's levels on the cliff's
//! walk plus every refinement midpoint), and what the data support about its crossing: the
//! crossing point with a bootstrap interval over cases, and where the line is not monotone.
//!
//! Pure: no file system, no clock; the bootstrap draws from a ChaCha8 stream seeded by the
//! sweep's bootstrap seed and a label naming the cliff.

use std::collections::BTreeMap;

use rand::{RngExt, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde::Serialize;

/// One case's metric at one measured value, and the weight it has in the cohort value (the
/// runs behind it: compared runs for ESI, successful runs otherwise).
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct CaseValue {
    pub value: f64,
    pub weight: f64,
}

/// One measured value on the walk.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Measured {
    pub x: f64,
    pub from_round: bool,
    /// The cohort metric as the analysis computed it (`None`: undefined there).
    pub cohort: Option<f64>,
    pub n: usize,
    /// Per case id.
    pub cases: BTreeMap<String, CaseValue>,
}

/// One point of the measured line, as written into `refine.json`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct LinePoint {
    pub value: f64,
    /// `sweep`: a level of the sweep's grid; `round`: a refinement midpoint.
    pub source: String,
    /// The cohort metric there (`None`: every run there failed).
    pub metric_value: Option<f64>,
    /// Runs behind `metric_value`.
    pub n: usize,
}

/// The threshold crossing of the cohort curve and its uncertainty over cases.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Crossing {
    /// Where the cohort curve first crosses the threshold walking away from the identity: linear
    /// interpolation between the two measured points around the crossing (`None`: it does not
    /// cross on the measured points).
    pub estimate: Option<f64>,
    /// 95% percentile interval of the same crossing over case resamples (numeric order,
    /// `lo <= hi`). An end is `None` where more than 2.5% of the resamples put the crossing
    /// beyond the measured points on that side: the data do not bound it there.
    pub lo: Option<f64>,
    pub hi: Option<f64>,
    /// Case resamples drawn (0: the sweep disabled bootstrap intervals).
    pub resamples: usize,
    /// Resamples whose curve never fell below the threshold on the measured points.
    pub censored: usize,
}

impl Crossing {
    /// `hi - lo`, infinite when an end is unbounded, `None` without resamples.
    pub fn width(&self) -> Option<f64> {
        if self.resamples == 0 {
            return None;
        }
        Some(match (self.lo, self.hi) {
            (Some(lo), Some(hi)) => hi - lo,
            _ => f64::INFINITY,
        })
    }
}

/// A case whose metric rises again farther along the walk (it flips, then flips back).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct NonMonotoneCase {
    pub case_id: String,
    /// `[from, to]` pairs of adjacent measured values (in walk order) between which the case's
    /// metric rises.
    pub rises: Vec<[f64; 2]>,
}

/// Where the line is not monotone.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct NonMonotone {
    /// `[from, to]` pairs of adjacent measured values (walk order) where the cohort curve comes
    /// back to or above the threshold after having fallen below it.
    pub cohort: Vec<[f64; 2]>,
    /// Cases whose own metric rises again along the walk, by case id.
    pub cases: Vec<NonMonotoneCase>,
}

/// Measured values sorted in walk order (away from the identity). `increasing`: the walk goes
/// towards larger values.
pub(crate) fn walk_order(points: &mut [Measured], increasing: bool) {
    points.sort_by(|a, b| {
        let o = a.x.total_cmp(&b.x);
        if increasing { o } else { o.reverse() }
    });
}

/// The first threshold crossing of `curve` (values in walk order, `None` skipped): linear
/// interpolation between the last point at or above `threshold` and the first below it; the
/// first point when it is already below. `None` when the curve never falls below.
pub(crate) fn first_crossing(xs: &[f64], curve: &[Option<f64>], threshold: f64) -> Option<f64> {
    let mut prev: Option<(f64, f64)> = None;
    for (&x, v) in xs.iter().zip(curve) {
        let Some(v) = *v else { continue };
        if v < threshold {
            return Some(match prev {
                Some((px, pv)) => px + (pv - threshold) / (pv - v) * (x - px),
                None => x,
            });
        }
        prev = Some((x, v));
    }
    None
}

/// The cohort value of each point for the case multiset `draw` (indices into `ids`).
fn cohort_curve(points: &[Measured], ids: &[&String], draw: &[usize]) -> Vec<Option<f64>> {
    points
        .iter()
        .map(|p| {
            let (mut s, mut w) = (0.0, 0.0);
            for &i in draw {
                if let Some(c) = p.cases.get(ids[i]) {
                    s += c.value * c.weight;
                    w += c.weight;
                }
            }
            (w > 0.0).then(|| s / w)
        })
        .collect()
}

/// The crossing and its 95% interval from `resamples` case resamples (`points` in walk order).
pub(crate) fn crossing(
    points: &[Measured],
    threshold: f64,
    increasing: bool,
    resamples: usize,
    seed: u64,
    label: &str,
) -> Crossing {
    let xs: Vec<f64> = points.iter().map(|p| p.x).collect();
    let cohort: Vec<Option<f64>> = points.iter().map(|p| p.cohort).collect();
    let estimate = first_crossing(&xs, &cohort, threshold);
    let ids: Vec<&String> = {
        let mut v: Vec<&String> = points.iter().flat_map(|p| p.cases.keys()).collect();
        v.sort();
        v.dedup();
        v
    };
    if resamples == 0 || ids.is_empty() {
        return Crossing {
            estimate,
            lo: None,
            hi: None,
            resamples: 0,
            censored: 0,
        };
    }
    let mut rng = {
        let mut h = blake3::Hasher::new();
        h.update(b"clarity-refine-crossing-v1\0");
        h.update(&seed.to_le_bytes());
        h.update(label.as_bytes());
        ChaCha8Rng::from_seed(*h.finalize().as_bytes())
    };
    // Distance from the start along the walk; a resample that never crosses is beyond every
    // measured point (+inf).
    let start = xs.first().copied().unwrap_or(0.0);
    let along = |x: f64| if increasing { x - start } else { start - x };
    let n = ids.len();
    let mut draw = vec![0; n];
    let mut ts: Vec<f64> = Vec::with_capacity(resamples);
    for _ in 0..resamples {
        for d in draw.iter_mut() {
            *d = rng.random_range(0..n);
        }
        let curve = cohort_curve(points, &ids, &draw);
        ts.push(first_crossing(&xs, &curve, threshold).map_or(f64::INFINITY, along));
    }
    ts.sort_by(f64::total_cmp);
    let censored = ts.iter().filter(|t| t.is_infinite()).count();
    let back = |t: Option<f64>| t.map(|t| if increasing { start + t } else { start - t });
    let (near, far) = (back(quantile(&ts, 0.025)), back(quantile(&ts, 0.975)));
    let (lo, hi) = if increasing { (near, far) } else { (far, near) };
    Crossing {
        estimate,
        lo,
        hi,
        resamples,
        censored,
    }
}

/// Type-7 quantile of sorted `v` (may end in +inf); `None` where an infinite order statistic is
/// involved (the bound lies beyond the measured points).
fn quantile(v: &[f64], p: f64) -> Option<f64> {
    if v.is_empty() {
        return None;
    }
    let pos = p * (v.len() - 1) as f64;
    let (lo, hi) = (pos.floor() as usize, pos.ceil() as usize);
    let w = pos - lo as f64;
    let (a, b) = (v[lo], v[hi]);
    if a.is_infinite() || (w > 0.0 && b.is_infinite()) {
        return None;
    }
    Some(if w > 0.0 { a + (b - a) * w } else { a })
}

/// Where the line (`points` in walk order) is not monotone.
pub(crate) fn non_monotone(points: &[Measured], threshold: f64) -> NonMonotone {
    let mut out = NonMonotone::default();
    let mut below_at: Option<f64> = None;
    let mut last: Option<(f64, f64)> = None;
    for p in points {
        let Some(v) = p.cohort else { continue };
        if let (Some(_), Some((px, pv))) = (below_at, last)
            && pv < threshold
            && v >= threshold
        {
            out.cohort.push([px, p.x]);
        }
        if v < threshold && below_at.is_none() {
            below_at = Some(p.x);
        }
        last = Some((p.x, v));
    }
    let mut per_case: BTreeMap<&String, Vec<[f64; 2]>> = BTreeMap::new();
    let mut prev: BTreeMap<&String, (f64, f64)> = BTreeMap::new();
    for p in points {
        for (id, c) in &p.cases {
            if let Some(&(px, pv)) = prev.get(id)
                && c.value > pv + 1e-12
            {
                per_case.entry(id).or_default().push([px, p.x]);
            }
            prev.insert(id, (p.x, c.value));
        }
    }
    out.cases = per_case
        .into_iter()
        .map(|(id, rises)| NonMonotoneCase {
            case_id: id.clone(),
            rises,
        })
        .collect();
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn point(x: f64, cases: &[(&str, f64)]) -> Measured {
        let cases: BTreeMap<String, CaseValue> = cases
            .iter()
            .map(|&(id, v)| {
                (
                    id.to_string(),
                    CaseValue {
                        value: v,
                        weight: 1.0,
                    },
                )
            })
            .collect();
        let cohort = cases.values().map(|c| c.value).sum::<f64>() / cases.len() as f64;
        Measured {
            x,
            from_round: false,
            cohort: Some(cohort),
            n: cases.len(),
            cases,
        }
    }

    #[test]
    fn crossing_interpolates_between_the_points_around_it() {
        let xs = [0.0, 1.0, 2.0];
        assert_eq!(
            first_crossing(&xs, &[Some(1.0), Some(1.0), Some(0.0)], 0.5),
            Some(1.5)
        );
        assert_eq!(
            first_crossing(&xs, &[Some(0.2), None, None], 0.5),
            Some(0.0)
        );
        assert_eq!(
            first_crossing(&xs, &[Some(1.0), None, Some(0.6)], 0.5),
            None
        );
        // Undefined points are skipped.
        assert_eq!(
            first_crossing(&xs, &[Some(1.0), None, Some(0.0)], 0.5),
            Some(1.0)
        );
    }

    #[test]
    fn identical_cases_give_a_zero_width_interval_and_one_outlier_widens_it() {
        let same: Vec<Measured> = [0.0, 1.0, 2.0]
            .iter()
            .map(|&x| {
                point(
                    x,
                    &[("a", (x < 1.5) as u8 as f64), ("b", (x < 1.5) as u8 as f64)],
                )
            })
            .collect();
        let c = crossing(&same, 0.5, true, 500, 0, "t");
        assert_eq!(c.estimate, Some(1.5));
        assert_eq!((c.lo, c.hi, c.censored), (Some(1.5), Some(1.5), 0));
        assert_eq!(c.width(), Some(0.0));
        // Case c never flips: resamples of mostly c never cross; the upper end is unbounded.
        let mixed: Vec<Measured> = [0.0, 1.0, 2.0]
            .iter()
            .map(|&x| point(x, &[("a", (x < 1.5) as u8 as f64), ("c", 1.0)]))
            .collect();
        let c = crossing(&mixed, 0.9, true, 500, 0, "t");
        assert!(c.censored > 0, "{c:?}");
        assert_eq!(c.hi, None);
        assert_eq!(c.width(), Some(f64::INFINITY));
    }

    #[test]
    fn decreasing_walks_keep_numeric_order() {
        let mut pts: Vec<Measured> = [100.0, 80.0, 60.0]
            .iter()
            .map(|&x| {
                point(
                    x,
                    &[
                        ("a", (x > 70.0) as u8 as f64),
                        ("b", (x > 90.0) as u8 as f64),
                    ],
                )
            })
            .collect();
        walk_order(&mut pts, false);
        let c = crossing(&pts, 0.5, false, 400, 0, "t");
        let (lo, hi) = (c.lo.unwrap(), c.hi.unwrap());
        assert!(lo <= hi && lo >= 60.0 && hi <= 100.0, "{c:?}");
    }

    #[test]
    fn flips_back_are_found_for_the_cohort_and_per_case() {
        let pts = vec![
            point(0.0, &[("a", 1.0), ("b", 1.0)]),
            point(1.0, &[("a", 0.0), ("b", 0.0)]),
            point(2.0, &[("a", 1.0), ("b", 0.0)]),
            point(3.0, &[("a", 1.0), ("b", 1.0)]),
        ];
        let nm = non_monotone(&pts, 0.8);
        assert_eq!(nm.cohort, vec![[2.0, 3.0]]);
        assert_eq!(nm.cases.len(), 2);
        assert_eq!(nm.cases[0].case_id, "a");
        assert_eq!(nm.cases[0].rises, vec![[1.0, 2.0]]);
        assert_eq!(nm.cases[1].rises, vec![[2.0, 3.0]]);
        let mono = non_monotone(&pts[..2], 0.8);
        assert!(mono.cohort.is_empty() && mono.cases.is_empty());
    }
}
