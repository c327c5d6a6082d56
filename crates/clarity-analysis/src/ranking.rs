//! Which axis breaks first, on a scale shared by the axes: the kernels' severity presets.
//!
//! A cliff's position along its own grid (level index / levels) depends on how many levels were
//! listed, and its value is in the parameter's own unit (a blur sigma in pixels, a noise sigma as a
//! fraction of the range), so neither compares across axes. Every kernel declares five severity
//! presets (ImageNet-C style); mapping a crossing onto them gives a position that is the same
//! whatever grid the sweep used: identity = 0, preset k = k, piecewise linear in the parameter
//! between presets, extrapolated along the last segment past preset 5. Axes swept by severity
//! level (`P.severity`) are on that scale already. Axes without one (a parameter the presets do
//! not vary monotonically, an unknown kernel such as an imported R2L axis, a text-valued axis, a
//! walk on the side of the identity the presets do not go) are not ranked: [`rank_axes`] then says
//! so instead of ordering them.

use clarity_core::{Axis, AxisValue};
use clarity_perturb::ParamValue;
use serde::Serialize;

use crate::cliffs::{Cliff, Direction};

/// Parameter name of a severity-level axis (as the engine's config writes it).
const SEVERITY: &str = "severity";

/// A monotone piecewise-linear map from a parameter value to a severity position.
#[derive(Debug, Clone, PartialEq)]
pub struct SeverityScale {
    /// `(value, severity)` for severity 0 (identity) to 5, strictly monotone in value.
    points: Vec<(f64, f64)>,
}

impl SeverityScale {
    /// The scale through `(identity, 0)` and `(presets[k - 1], k)`; `None` unless the values
    /// are finite and strictly monotone (all increasing or all decreasing).
    pub fn from_presets(identity: f64, presets: [f64; 5]) -> Option<Self> {
        let points: Vec<(f64, f64)> = std::iter::once(identity)
            .chain(presets)
            .enumerate()
            .map(|(k, v)| (v, k as f64))
            .collect();
        let up = points.windows(2).all(|w| w[1].0 > w[0].0);
        let down = points.windows(2).all(|w| w[1].0 < w[0].0);
        (points.iter().all(|p| p.0.is_finite()) && (up || down)).then_some(Self { points })
    }

    /// The scale of `axis`: the identity map for a severity-level axis, else the presets of its
    /// kernel's parameter; `None` when there is none (see the module documentation).
    pub fn of_axis(axis: &Axis) -> Option<Self> {
        if axis.param == SEVERITY {
            return Self::from_presets(0.0, [1.0, 2.0, 3.0, 4.0, 5.0]);
        }
        let kernel = clarity_perturb::registry().get(&axis.perturbation)?;
        let identity = axis.identity.as_f64()?;
        let presets = kernel.presets();
        let mut vals = [0.0; 5];
        for (v, p) in vals.iter_mut().zip(&presets) {
            match p.get(&axis.param)? {
                ParamValue::Num(x) => *v = *x,
                ParamValue::Text(_) => return None,
            }
        }
        Self::from_presets(identity, vals)
    }

    /// The severity position of `x`: `None` on the other side of the identity from the presets.
    pub fn position(&self, x: f64) -> Option<f64> {
        let p = &self.points;
        let sign = if p[1].0 > p[0].0 { 1.0 } else { -1.0 };
        let d = (x - p[0].0) * sign;
        if !d.is_finite() || d < 0.0 {
            return None;
        }
        // The segment that holds x, or the last one to extrapolate along.
        let i = (1..p.len())
            .find(|&i| (p[i].0 - x) * sign >= 0.0)
            .unwrap_or(p.len() - 1);
        let (a, b) = (p[i - 1], p[i]);
        Some(a.1 + (x - a.0) / (b.0 - a.0) * (b.1 - a.1))
    }
}

/// How a [`Ranking`] orders its entries.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum RankScale {
    /// By the crossing's position on the kernels' severity presets.
    SeverityPresets,
    /// Every crossing is on the same axis and walk (e.g. ESI and accuracy along one axis): by
    /// the crossing's distance from the identity in the axis' own units.
    AxisUnits,
    /// Not ranked: some crossing has no position on a shared scale; entries in axis order.
    NotRanked,
}

/// One crossing in a [`Ranking`].
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RankEntry {
    /// 1 = breaks first; equal severities share a rank. `None` when not ranked.
    pub rank: Option<usize>,
    pub axis: String,
    pub axis_index: usize,
    pub metric: String,
    pub direction: Direction,
    /// First level below the threshold and its value (as in the cliff).
    pub level: usize,
    pub value: AxisValue,
    pub metric_value: Option<f64>,
    /// Interpolated crossing in axis units.
    pub crossing: Option<f64>,
    /// The crossing on the severity scale, with its bootstrap interval's ends when known.
    pub severity: Option<f64>,
    pub severity_near: Option<f64>,
    pub severity_far: Option<f64>,
    /// Whether this entry's severity interval ends before the next entry's begins, i.e. the
    /// data separate the two (`None` for the last entry or without intervals).
    pub separated_from_next: Option<bool>,
}

/// Axes ordered by where they break, on a scale that does not depend on the grid.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Ranking {
    pub scale: RankScale,
    pub entries: Vec<RankEntry>,
    /// Why the entries are not ranked (`None` when they are).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

impl Ranking {
    pub fn is_ranked(&self) -> bool {
        self.scale != RankScale::NotRanked
    }

    /// The entry that breaks first, when the entries are ranked.
    pub fn first(&self) -> Option<&RankEntry> {
        self.entries.first().filter(|_| self.is_ranked())
    }
}

/// Ranks the crossings of `cliffs` (those with a level; the caller picks the metric and the
/// cohort/class/case cliffs) by their position on the severity presets of their axis (`axes`
/// indexed by `axis_index`). Pure; depends only on each crossing's interpolated value, never on
/// level indices, so removing a grid level that is not adjacent to a crossing leaves the ranking
/// unchanged. When some crossing has no severity position the entries are listed in axis order
/// and the ranking says it is not ranked (one crossing alone is trivially first).
pub fn rank_axes(cliffs: &[Cliff], axes: &[Axis]) -> Ranking {
    let mut entries: Vec<RankEntry> = cliffs
        .iter()
        .filter_map(|c| {
            let level = c.level?;
            let scale = axes.get(c.axis_index).and_then(SeverityScale::of_axis);
            let pos = |x: Option<f64>| x.and_then(|x| scale.as_ref()?.position(x));
            Some(RankEntry {
                rank: None,
                axis: c.axis.clone(),
                axis_index: c.axis_index,
                metric: c.metric.clone(),
                direction: c.direction,
                level,
                value: c.value.clone()?,
                metric_value: c.metric_value,
                crossing: c.crossing,
                severity: pos(c.crossing),
                severity_near: pos(c.interval.as_ref().and_then(|i| i.near)),
                severity_far: pos(c.interval.as_ref().and_then(|i| i.far)),
                separated_from_next: None,
            })
        })
        .collect();
    let key = |e: &RankEntry| (e.axis_index, e.direction, e.metric.clone());
    entries.sort_by_key(key);
    let unscaled: Vec<String> = entries
        .iter()
        .filter(|e| e.severity.is_none())
        .map(|e| e.axis.clone())
        .collect();
    let one_walk = entries
        .windows(2)
        .all(|w| (w[0].axis_index, w[0].direction) == (w[1].axis_index, w[1].direction));
    if !unscaled.is_empty() && one_walk {
        // One axis, one direction (or a single crossing): crossings compare in the axis' own
        // units.
        let along = |e: &RankEntry| {
            let x = e.crossing.unwrap_or(f64::INFINITY);
            match e.direction {
                Direction::Increasing => x,
                Direction::Decreasing => -x,
            }
        };
        entries.sort_by(|a, b| {
            along(a)
                .total_cmp(&along(b))
                .then_with(|| key(a).cmp(&key(b)))
        });
        assign_ranks(&mut entries, along);
        return Ranking {
            scale: RankScale::AxisUnits,
            entries,
            reason: None,
        };
    }
    if entries.len() > 1 && !unscaled.is_empty() {
        return Ranking {
            scale: RankScale::NotRanked,
            entries,
            reason: Some(format!(
                "no shared scale: {} has no severity-preset position for its crossing, and positions along grids in different units do not compare",
                unscaled.join(", ")
            )),
        };
    }
    let sev = |e: &RankEntry| e.severity.unwrap_or(0.0);
    entries.sort_by(|a, b| sev(a).total_cmp(&sev(b)).then_with(|| key(a).cmp(&key(b))));
    assign_ranks(&mut entries, sev);
    for i in 0..entries.len().saturating_sub(1) {
        // Separated when this crossing's far end comes before the next one's near end; a far end
        // beyond the tested range (None) never separates.
        entries[i].separated_from_next = match (
            entries[i].severity_far,
            entries[i + 1].severity_near,
            entries[i + 1].severity,
        ) {
            (Some(far), Some(near), _) => Some(far < near),
            _ => None,
        };
    }
    Ranking {
        scale: RankScale::SeverityPresets,
        entries,
        reason: None,
    }
}

/// Competition ranks (1, 1, 3…) of entries sorted by `key`.
fn assign_ranks(entries: &mut [RankEntry], key: impl Fn(&RankEntry) -> f64) {
    let mut rank = 0;
    for i in 0..entries.len() {
        if i == 0 || key(&entries[i]) > key(&entries[i - 1]) {
            rank = i + 1;
        }
        entries[i].rank = Some(rank);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scale_interpolates_and_extrapolates() {
        let s = SeverityScale::from_presets(0.0, [1.0, 2.0, 3.0, 4.0, 6.0]).unwrap();
        assert_eq!(s.position(0.0), Some(0.0));
        assert_eq!(s.position(0.5), Some(0.5));
        assert_eq!(s.position(5.0), Some(4.5));
        assert_eq!(s.position(8.0), Some(6.0));
        assert_eq!(s.position(-1.0), None);
        // Decreasing parameter (JPEG quality style).
        let q = SeverityScale::from_presets(100.0, [80.0, 60.0, 40.0, 20.0, 10.0]).unwrap();
        assert_eq!(q.position(90.0), Some(0.5));
        assert_eq!(q.position(100.0), Some(0.0));
        assert_eq!(q.position(110.0), None);
        assert_eq!(q.position(5.0), Some(5.5));
        // Not monotone: no scale.
        assert!(SeverityScale::from_presets(0.0, [1.0, 1.0, 2.0, 3.0, 4.0]).is_none());
    }
}
