use clarity_core::{Axis, AxisValue};
use serde::Serialize;

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
    pub relative_position: Option<f64>,
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

/// Cliffs of one curve (one value per level of `axis`).
pub(crate) fn cliffs_of_curve(
    axis: &Axis,
    axis_index: usize,
    metric: &str,
    curve: &[Option<f64>],
    threshold: f64,
) -> Vec<Cliff> {
    let xs: Option<Vec<f64>> = axis.values.iter().map(AxisValue::as_f64).collect();
    walks(axis)
        .into_iter()
        .map(|(direction, walk)| {
            let mut level = None;
            let mut previous_level = None;
            for (k, &l) in walk.iter().enumerate() {
                if curve[l].is_some_and(|v| v < threshold) {
                    level = Some(l);
                    previous_level = k.checked_sub(1).map(|p| walk[p]);
                    break;
                }
            }
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
            }
        })
        .collect()
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
