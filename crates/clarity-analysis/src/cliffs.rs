use clarity_core::{Axis, AxisValue};
use rand::RngExt;
use serde::Serialize;

use crate::bootstrap::percentile;
use crate::ranking::SeverityScale;

/// Direction of a walk away from the identity level along an axis.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Direction {
    /// Towards higher level indices (larger values).
    Increasing,
    /// Towards lower level indices (smaller values), e.g. JPEG quality below 100.
    Decreasing,
}

/// The steepest drop between adjacent levels of a walk.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Steepest {
    /// The more severe level of the pair (where the metric arrives).
    pub level: usize,
    /// The level before it on the walk.
    pub from_level: usize,
    /// `metric[from_level] - metric[level]`, > 0.
    pub drop: f64,
    /// `drop / |x[level] - x[from_level]|` on numeric axes.
    pub drop_per_unit: Option<f64>,
}

/// Where a metric falls off along one axis, walking away from the identity level.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Cliff {
    pub axis: String,
    pub axis_index: usize,
    pub metric: String,
    /// Set for per-case cliffs.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub case_id: Option<String>,
    /// Set for per-class cliffs.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub class: Option<String>,
    pub direction: Direction,
    /// The level the walk starts from (the identity level, or 0 when the identity is not on the
    /// axis).
    pub start_level: usize,
    pub threshold: f64,
    /// First level on the walk whose metric is below `threshold` (`None`: never).
    pub level: Option<usize>,
    pub value: Option<AxisValue>,
    /// The metric at `level`.
    pub metric_value: Option<f64>,
    /// The level before `level` on the walk (the other end of the bracket to refine).
    pub previous_level: Option<usize>,
    pub steepest: Option<Steepest>,
    /// `|level - start_level| / (levels on this walk - 1)`: 0 at the identity, 1 at the far end.
    /// Depends on how many levels were listed: never used to rank axes (see [`rank_axes`]).
    pub relative_position: Option<f64>,
    /// Where the metric crosses the threshold, in the axis' own units: linear interpolation
    /// between the last level at or above the threshold and the first below it (numeric axes).
    /// The start value when the walk starts below the threshold.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub crossing: Option<f64>,
    /// The crossing on the kernel's severity scale (identity 0, preset k at k; see
    /// [`SeverityScale`]); `None` when the axis has no such scale.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub severity: Option<f64>,
    /// Bootstrap interval of the crossing over case resamples (cohort cliffs on numeric axes).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub interval: Option<CrossingInterval>,
    /// The first level after `level` on the walk where the metric is back at or above the
    /// threshold: the line is not monotone (it falls below and recovers further along).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub recovers_at: Option<usize>,
    /// Per-case flips along the walk (cohort cliffs).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub case_flips: Option<CaseFlips>,
}

/// The spread of a cliff's crossing point over case resamples (cases drawn with replacement;
/// every seed of a drawn case comes with it): the 2.5th and 97.5th percentiles of the distance
/// along the walk, resamples that never cross counting as beyond the tested range. `near` is the
/// end closer to the identity (the smaller value on an increasing walk, the larger on a
/// decreasing one).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct CrossingInterval {
    /// Near end in axis units; `None` when more than 97.5% of the resamples never cross.
    pub near: Option<f64>,
    /// Far end in axis units; `None` when more than 2.5% of the resamples never cross (the
    /// crossing may lie beyond the tested range).
    pub far: Option<f64>,
    /// `near` and `far` on the severity scale, when the axis has one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub severity_near: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub severity_far: Option<f64>,
    pub resamples: usize,
    /// Resamples whose curve never falls below the threshold along the walk.
    pub never_cross: usize,
    /// Resamples whose curve falls below and climbs back at or above the threshold further along.
    pub non_monotone: usize,
}

/// How the cases of a cohort cliff behave along its walk, each case on its own curve.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct CaseFlips {
    /// Cases with a value at two or more levels of the walk.
    pub cases: usize,
    /// Cases whose metric falls below the threshold somewhere along the walk.
    pub cross: usize,
    /// Of those, cases whose metric climbs back at or above the threshold further along (flip and
    /// flip back).
    pub flip_back: usize,
}

/// The walks from the identity level outwards: `(direction, level indices)`, each including the
/// start and at least one more level.
pub(crate) fn walks(axis: &Axis) -> Vec<(Direction, Vec<usize>)> {
    let n = axis.values.len();
    let start = axis.values.iter().position(|v| v == &axis.identity);
    let mut out = Vec::new();
    match start {
        Some(s) => {
            if s + 1 < n {
                out.push((Direction::Increasing, (s..n).collect()));
            }
            if s > 0 {
                out.push((Direction::Decreasing, (0..=s).rev().collect()));
            }
        }
        None if n > 1 => out.push((Direction::Increasing, (0..n).collect())),
        None => {}
    }
    out
}

/// The position on `walk` (an index into it) of the first level whose value is below `th`.
fn first_below(walk: &[usize], curve: &[Option<f64>], th: f64) -> Option<usize> {
    walk.iter()
        .position(|&l| curve.get(l).copied().flatten().is_some_and(|v| v < th))
}

/// The first level after position `k` on `walk` whose value is back at or above `th`.
fn recovery(walk: &[usize], curve: &[Option<f64>], th: f64, k: usize) -> Option<usize> {
    walk[k + 1..]
        .iter()
        .copied()
        .find(|&l| curve.get(l).copied().flatten().is_some_and(|v| v >= th))
}

/// The crossing of `th` in axis units, given that position `k` of `walk` is the first level
/// below it: linear interpolation between the last measured level before it (at or above `th`)
/// and that level; the level's own value when no earlier level was measured.
fn interpolate(xs: &[f64], walk: &[usize], curve: &[Option<f64>], th: f64, k: usize) -> f64 {
    let xk = xs[walk[k]];
    let below = curve[walk[k]].unwrap_or(th);
    match (0..k)
        .rev()
        .find_map(|j| curve[walk[j]].map(|v| (walk[j], v)))
    {
        Some((j, above)) if above > below => {
            let t = ((above - th) / (above - below)).clamp(0.0, 1.0);
            xs[j] + t * (xk - xs[j])
        }
        Some((j, _)) => xs[j],
        None => xk,
    }
}

/// The numeric values of `axis`, or `None` when one is not a number.
pub(crate) fn numeric(axis: &Axis) -> Option<Vec<f64>> {
    axis.values.iter().map(AxisValue::as_f64).collect()
}

/// Cliffs of one curve (one value per level of `axis`). `scale` maps crossings onto the
/// kernel's severity scale when the axis has one.
pub(crate) fn cliffs_of_curve(
    axis: &Axis,
    axis_index: usize,
    metric: &str,
    curve: &[Option<f64>],
    threshold: f64,
    scale: Option<&SeverityScale>,
) -> Vec<Cliff> {
    let xs = numeric(axis);
    walks(axis)
        .into_iter()
        .map(|(direction, walk)| {
            let k = first_below(&walk, curve, threshold);
            let level = k.map(|k| walk[k]);
            let previous_level = k.and_then(|k| k.checked_sub(1)).map(|p| walk[p]);
            let mut steepest: Option<Steepest> = None;
            for w in walk.windows(2) {
                let (Some(a), Some(b)) = (curve[w[0]], curve[w[1]]) else {
                    continue;
                };
                let drop = a - b;
                if drop > 0.0 && steepest.as_ref().is_none_or(|s| drop > s.drop) {
                    steepest = Some(Steepest {
                        level: w[1],
                        from_level: w[0],
                        drop,
                        drop_per_unit: xs
                            .as_ref()
                            .map(|x| drop / (x[w[1]] - x[w[0]]).abs())
                            .filter(|v| v.is_finite()),
                    });
                }
            }
            let span = (walk.len() - 1) as f64;
            let crossing = match (&xs, k) {
                (Some(xs), Some(k)) => Some(interpolate(xs, &walk, curve, threshold, k)),
                _ => None,
            };
            Cliff {
                axis: axis.name.clone(),
                axis_index,
                metric: metric.to_string(),
                case_id: None,
                class: None,
                direction,
                start_level: walk[0],
                threshold,
                level,
                value: level.map(|l| axis.values[l].clone()),
                metric_value: level.and_then(|l| curve[l]),
                previous_level,
                steepest,
                relative_position: level.map(|l| l.abs_diff(walk[0]) as f64 / span),
                crossing,
                severity: crossing.and_then(|x| scale?.position(x)),
                interval: None,
                recovers_at: k.and_then(|k| recovery(&walk, curve, threshold, k)),
                case_flips: None,
            }
        })
        .collect()
}

/// A percentile of sorted values where `+∞` stands for "never crosses": `None` when the order
/// statistics it interpolates between include one.
fn finite_percentile(sorted: &[f64], p: f64) -> Option<f64> {
    if sorted.is_empty() {
        return None;
    }
    let pos = p * (sorted.len() - 1) as f64;
    if !sorted[pos.ceil() as usize].is_finite() {
        return None;
    }
    percentile(sorted, p)
}

/// Adds the case-resampling interval of the crossing and the per-case flips to a cohort
/// `cliff` on a numeric axis. `members` are the cases (indices) on the cliff's line;
/// `resampled` gives the cohort curve (one value per level) of a multiset of those cases, each
/// drawn case bringing all its seeds; `per_case` gives one case's own curve. `iterations = 0`:
/// no interval. Deterministic for a given `rng`.
#[allow(clippy::too_many_arguments)]
pub(crate) fn add_uncertainty(
    cliff: &mut Cliff,
    axis: &Axis,
    scale: Option<&SeverityScale>,
    members: &[usize],
    resampled: impl Fn(&[usize]) -> Vec<Option<f64>>,
    per_case: impl Fn(usize) -> Vec<Option<f64>>,
    iterations: usize,
    rng: &mut impl RngExt,
) {
    let Some(walk) = walks(axis)
        .into_iter()
        .find(|(d, _)| *d == cliff.direction)
        .map(|(_, w)| w)
    else {
        return;
    };
    let th = cliff.threshold;
    let mut flips = CaseFlips {
        cases: 0,
        cross: 0,
        flip_back: 0,
    };
    for &m in members {
        let curve = per_case(m);
        if walk.iter().filter(|&&l| curve[l].is_some()).count() < 2 {
            continue;
        }
        flips.cases += 1;
        if let Some(k) = first_below(&walk, &curve, th) {
            flips.cross += 1;
            flips.flip_back += usize::from(recovery(&walk, &curve, th, k).is_some());
        }
    }
    cliff.case_flips = Some(flips);
    let Some(xs) = numeric(axis) else {
        return;
    };
    if iterations == 0 || members.is_empty() {
        return;
    }
    let n = members.len();
    let mut draw = vec![0usize; n];
    let mut crossings = Vec::with_capacity(iterations);
    let mut non_monotone = 0;
    for _ in 0..iterations {
        for d in draw.iter_mut() {
            *d = members[rng.random_range(0..n)];
        }
        let curve = resampled(&draw);
        match first_below(&walk, &curve, th) {
            Some(k) => {
                crossings.push(Some(interpolate(&xs, &walk, &curve, th, k)));
                non_monotone += usize::from(recovery(&walk, &curve, th, k).is_some());
            }
            None => crossings.push(None),
        }
    }
    let never_cross = crossings.iter().filter(|x| x.is_none()).count();
    // Along a decreasing walk a later crossing is a smaller value: order by the signed distance
    // along the walk, with "never" (+∞) last either way.
    let sign = match cliff.direction {
        Direction::Increasing => 1.0,
        Direction::Decreasing => -1.0,
    };
    let mut along: Vec<f64> = crossings
        .iter()
        .map(|x| x.map_or(f64::INFINITY, |x| x * sign))
        .collect();
    along.sort_by(f64::total_cmp);
    let near = finite_percentile(&along, 0.025).map(|x| x * sign);
    let far = finite_percentile(&along, 0.975).map(|x| x * sign);
    let pos = |x: Option<f64>| x.and_then(|x| scale?.position(x));
    cliff.interval = Some(CrossingInterval {
        near,
        far,
        severity_near: pos(near),
        severity_far: pos(far),
        resamples: iterations,
        never_cross,
        non_monotone,
    });
}

/// A request for extra runs between two levels of a numeric axis, to locate a cliff.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RefineRequest {
    pub axis: String,
    pub axis_index: usize,
    pub metric: String,
    /// The bracket: the last level above the threshold (or the start of the steepest drop) and
    /// the level after it, as values (`lower < upper`).
    pub lower: f64,
    pub upper: f64,
    /// New values strictly inside `(lower, upper)`, ascending, not already on the axis.
    pub values: Vec<f64>,
}

/// Values to run next to bisect each cohort cliff (per-case and per-class cliffs are ignored):
/// for every cliff on a numeric axis, the bracket around the threshold crossing and around the
/// steepest drop, split into `points + 1` equal parts (`points = 1`: the midpoint). Brackets too
/// narrow to hold a new distinct float yield nothing; requests are deduplicated. Pure.
pub fn refine_targets(axes: &[Axis], cliffs: &[Cliff], points: usize) -> Vec<RefineRequest> {
    let mut out: Vec<RefineRequest> = Vec::new();
    for c in cliffs
        .iter()
        .filter(|c| c.case_id.is_none() && c.class.is_none())
    {
        let Some(axis) = axes.get(c.axis_index) else {
            continue;
        };
        let Some(xs) = axis
            .values
            .iter()
            .map(AxisValue::as_f64)
            .collect::<Option<Vec<f64>>>()
        else {
            continue;
        };
        let mut brackets = Vec::new();
        if let (Some(a), Some(b)) = (c.previous_level, c.level) {
            brackets.push((a, b));
        }
        if let Some(s) = &c.steepest {
            brackets.push((s.from_level, s.level));
        }
        for (a, b) in brackets {
            let (Some(&xa), Some(&xb)) = (xs.get(a), xs.get(b)) else {
                continue;
            };
            let (lower, upper) = if xa < xb { (xa, xb) } else { (xb, xa) };
            let mut values: Vec<f64> = (1..=points)
                .map(|k| lower + (upper - lower) * k as f64 / (points + 1) as f64)
                .filter(|v| *v > lower && *v < upper && v.is_finite())
                .filter(|v| !xs.contains(v))
                .collect();
            values.dedup();
            if values.is_empty() {
                continue;
            }
            let req = RefineRequest {
                axis: axis.name.clone(),
                axis_index: c.axis_index,
                metric: c.metric.clone(),
                lower,
                upper,
                values,
            };
            if !out.contains(&req) {
                out.push(req);
            }
        }
    }
    out
}
