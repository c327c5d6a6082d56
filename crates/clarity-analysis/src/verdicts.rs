//! Verdicts: what the data establish about a condition such as `esi < 0.8`, judged on the
//! 95% intervals (not the point estimates), per walk along each axis and overall
//! (`docs/analysis.md`, "Verdicts").
//!
//! A condition names what *breaks* the model: `[AXIS:]METRIC OP THRESHOLD`. Each level of a walk
//! (the axis's line through the baseline, from the identity outwards, the other axes at their
//! identity — the line the cliffs are read from) is
//!
//! - **bad** when its whole interval satisfies the condition (`esi < 0.8`: upper bound below 0.8),
//! - **good** when its whole interval violates it (lower bound at or above 0.8),
//! - **straddling** otherwise, and
//! - **unmeasured** when the metric has no interval there (every run failed, or no baseline to
//!   compare with).
//!
//! A walk **breaks** at its first bad level; else it is **inconclusive** at its first straddling
//! level (with the number of cases that would decide it); else **not measured** when a level is
//! unmeasured; else it **holds**. Overall, the worst walk decides (breaks, inconclusive, not
//! measured, holds). The cohort verdict of the headline also weighs baseline accuracy: a model
//! wrong at baseline (accuracy's upper bound below the threshold) breaks before any perturbation,
//! and one whose baseline accuracy interval straddles the threshold cannot hold.

use std::fmt;

use clarity_core::AxisValue;
use serde::{Serialize, Serializer};
use serde_json::Value;

use crate::analysis::{Analysis, CellMetrics, Estimate, METRICS};
use crate::cliffs::{Direction, walks};
pub use crate::headline::{cohort, headline};

/// Metrics compared with the baseline answer: trivially perfect at the baseline itself, so their
/// walks start one level out.
const COMPARED: [&str; 6] = [
    "esi",
    "flip_rate",
    "drift",
    "delta_confidence",
    "edm",
    "confidence_shift",
];

/// What the data establish.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    /// The whole interval is on the good side at every level.
    Holds,
    /// Some level has no interval (too few successful runs).
    NotMeasured,
    /// Some level's interval straddles the threshold (and none is wholly bad).
    Inconclusive,
    /// Some level's interval is wholly on the bad side.
    Breaks,
}

impl Outcome {
    /// In words (`not measured` with a space).
    pub fn word(self) -> &'static str {
        match self {
            Outcome::Holds => "holds",
            Outcome::NotMeasured => "not measured",
            Outcome::Inconclusive => "inconclusive",
            Outcome::Breaks => "breaks",
        }
    }
}

/// A comparison of a [`Condition`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Op {
    Lt,
    Le,
    Gt,
    Ge,
}

impl Op {
    fn symbol(self) -> &'static str {
        match self {
            Op::Lt => "<",
            Op::Le => "<=",
            Op::Gt => ">",
            Op::Ge => ">=",
        }
    }

    fn words(self) -> &'static str {
        match self {
            Op::Lt => "falls below",
            Op::Le => "falls to or below",
            Op::Gt => "rises above",
            Op::Ge => "rises to or above",
        }
    }

    fn holds(self, x: f64, t: f64) -> bool {
        match self {
            Op::Lt => x < t,
            Op::Le => x <= t,
            Op::Gt => x > t,
            Op::Ge => x >= t,
        }
    }
}

/// What breaks the model: `[AXIS:]METRIC OP THRESHOLD`, e.g. `esi < 0.9`,
/// `blur.sigma:accuracy < 0.8`, `drift > 0.2`.
#[derive(Debug, Clone, PartialEq)]
pub struct Condition {
    /// Only this axis (`None`: any axis).
    pub axis: Option<String>,
    /// A key of [`METRICS`].
    pub metric: String,
    pub op: Op,
    pub threshold: f64,
}

impl fmt::Display for Condition {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Some(a) = &self.axis {
            write!(f, "{a}:")?;
        }
        write!(
            f,
            "{} {} {}",
            self.metric,
            self.op.symbol(),
            clarity_core::json::format_num(self.threshold)
        )
    }
}

impl Serialize for Condition {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.to_string())
    }
}

impl std::str::FromStr for Condition {
    type Err = String;

    /// Parses `[AXIS:]METRIC OP NUMBER` (spaces optional); the error says what was expected.
    fn from_str(s: &str) -> Result<Condition, String> {
        let expected = "expected `[AXIS:]METRIC OP NUMBER`, e.g. `esi < 0.9` or `blur.sigma:accuracy < 0.8` (OP one of <, <=, >, >=)";
        let t = s.trim();
        let at = t
            .find(['<', '>'])
            .ok_or_else(|| format!("`{s}`: no comparison; {expected}"))?;
        let (lhs, rest) = t.split_at(at);
        let (op, num) = if let Some(r) = rest.strip_prefix("<=") {
            (Op::Le, r)
        } else if let Some(r) = rest.strip_prefix(">=") {
            (Op::Ge, r)
        } else if let Some(r) = rest.strip_prefix('<') {
            (Op::Lt, r)
        } else {
            (Op::Gt, &rest[1..])
        };
        let num = num.trim();
        let threshold: f64 = num
            .parse()
            .ok()
            .filter(|x: &f64| x.is_finite())
            .ok_or_else(|| format!("`{s}`: `{num}` is not a finite number; {expected}"))?;
        let lhs = lhs.trim();
        let (axis, metric) = match lhs.rsplit_once(':') {
            Some((a, m)) => (Some(a.trim().to_string()), m.trim()),
            None => (None, lhs),
        };
        if axis.as_deref().is_some_and(str::is_empty) {
            return Err(format!("`{s}`: empty axis name before `:`; {expected}"));
        }
        if !METRICS.contains(&metric) {
            return Err(format!(
                "`{s}`: unknown metric `{metric}` (one of {}); {expected}",
                METRICS.join(", ")
            ));
        }
        Ok(Condition {
            axis,
            metric: metric.to_string(),
            op,
            threshold,
        })
    }
}

/// A refined bracket of `refine.json` for one walk.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RefinedBracket {
    /// The refined bracket (numeric order).
    pub bracket: [f64; 2],
    /// Where the data locate the crossing (`None`: not bounded; more cases needed).
    pub located: Option<[f64; 2]>,
    pub crossing: Option<f64>,
}

/// The verdict of one walk, or overall.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Verdict {
    /// The axis walked (`None`: overall).
    pub axis: Option<String>,
    pub direction: Option<Direction>,
    pub outcome: Outcome,
    /// The deciding level: the first bad one (breaks), the first straddling one (inconclusive),
    /// the first unmeasured one (not measured), the one closest to the threshold (holds).
    pub level: Option<usize>,
    pub value: Option<AxisValue>,
    /// The metric and its interval at that level (with `n_eff`).
    pub estimate: Option<Estimate>,
    /// Cases behind the estimate.
    pub cases: usize,
    /// Failed runs over recorded runs along the walk (overall: the whole sweep).
    pub failed: usize,
    pub runs: usize,
    pub failure_share: f64,
    /// Inconclusive: about how many more cases would decide it, if the observed spread and
    /// design effect persist (the interval shrinks as 1/√cases).
    pub more_cases: Option<usize>,
    /// From `refine.json`, when the walk was refined at this threshold.
    pub refined: Option<RefinedBracket>,
    /// One sentence.
    pub summary: String,
}

/// Every verdict on one condition.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Verdicts {
    pub condition: Condition,
    pub overall: Verdict,
    pub walks: Vec<Verdict>,
    /// Accuracy of the baseline cell (`None`: no labels, or every baseline run failed).
    pub baseline_accuracy: Option<Estimate>,
    /// The baseline accuracy's point estimate is below the threshold.
    pub baseline_accuracy_below: bool,
}

/// A parameter value in 4 significant digits, no trailing zeros (as `refine.json`'s summaries).
fn short(x: f64) -> String {
    if x == 0.0 || !x.is_finite() {
        return clarity_core::json::format_num(x);
    }
    let decimals = (3 - x.abs().log10().floor() as i32).clamp(0, 9) as usize;
    let s = format!("{x:.decimals$}");
    let s = if s.contains('.') {
        s.trim_end_matches('0').trim_end_matches('.').to_string()
    } else {
        s
    };
    if s == "-0" { "0".into() } else { s }
}

fn f3(x: f64) -> String {
    format!("{x:.3}")
}

fn metric_name(m: &str) -> String {
    match m {
        "esi" | "csi" | "edm" => m.to_uppercase(),
        _ => m.replace('_', " "),
    }
}

/// `0.125 [0.020, 0.470], n_eff 8`.
/// The breaking walks in the order cliffs.json ranks their ESI crossings on the kernels'
/// severity presets (a scale that does not depend on the grid), when the condition is the
/// cliff threshold on ESI and every breaking walk is ranked; `None` otherwise (then the walks
/// are listed unranked). Ties and overlapping crossing intervals are said, not hidden.
fn severity_order(
    a: &Analysis,
    cond: &Condition,
    walks: &[Verdict],
    names: &[String],
) -> Option<String> {
    if cond.metric != "esi" || cond.threshold != a.settings.cliff_threshold {
        return None;
    }
    let esi: Vec<crate::Cliff> = a
        .cliffs
        .iter()
        .filter(|c| c.case_id.is_none() && c.metric == "esi")
        .cloned()
        .collect();
    let ranking = crate::ranking::rank_axes(&esi, &a.axes);
    if !ranking.is_ranked() {
        return None;
    }
    let breaking: Vec<(&Verdict, &String)> = walks
        .iter()
        .zip(names)
        .filter(|(w, _)| w.outcome == Outcome::Breaks)
        .collect();
    let mut ranked = Vec::new();
    for e in &ranking.entries {
        if let Some((_, n)) = breaking
            .iter()
            .find(|(w, _)| w.axis.as_deref() == Some(&e.axis) && w.direction == Some(e.direction))
        {
            ranked.push((e, *n));
        }
    }
    if ranked.len() != breaking.len() || ranked.len() < 2 {
        return None;
    }
    let mut text = String::new();
    for (k, (e, n)) in ranked.iter().enumerate() {
        let sev = e.severity.map(short).unwrap_or_else(|| "?".into());
        match k {
            0 => text.push_str(&format!("{n} first (severity {sev}")),
            _ => {
                let tied = e.rank == ranked[k - 1].0.rank;
                text.push_str(&format!(
                    ", {} {n} (severity {sev}",
                    if tied { "tied with" } else { "then" }
                ));
            }
        }
        if k + 1 < ranked.len() && e.separated_from_next == Some(false) {
            text.push_str(", its crossing interval overlaps the next");
        }
        text.push(')');
    }
    text.push_str(
        "; ranked by where ESI crosses the threshold on the kernels' severity presets, not by grid position",
    );
    Some(text)
}

pub fn describe(e: &Estimate) -> String {
    let mut s = f3(e.value);
    if let (Some(lo), Some(hi)) = (e.lo, e.hi) {
        s.push_str(&format!(" [{}, {}]", f3(lo), f3(hi)));
    }
    if let Some(n) = e.n_eff {
        s.push_str(&format!(
            ", n_eff {}",
            clarity_core::json::format_num((n * 10.0).round() / 10.0)
        ));
    }
    s
}

enum Level {
    Bad,
    Good,
    Straddles,
    Unmeasured,
}

fn classify(c: &Condition, e: Option<&Estimate>) -> Level {
    let Some((lo, hi)) = e.and_then(|e| Some((e.lo?, e.hi?))) else {
        return Level::Unmeasured;
    };
    let t = c.threshold;
    if c.op.holds(lo, t) && c.op.holds(hi, t) {
        Level::Bad
    } else if !c.op.holds(lo, t) && !c.op.holds(hi, t) {
        Level::Good
    } else {
        Level::Straddles
    }
}

/// Cases more that would put the interval wholly on one side of the threshold if the observed
/// value and spread persist: for proportions (with `n_eff`) the same cluster Wilson interval
/// with the per-case effective size and the t correction; for means the Student-t half-width
/// scaled as `t_{k-1} s / √k`. `None` when the estimate sits on the threshold (or more than a
/// million cases would be needed).
pub(crate) fn more_cases(
    e: &Estimate,
    cases: usize,
    c: &Condition,
    proportion: bool,
) -> Option<usize> {
    use crate::intervals::{Z975, t975, wilson};
    let (lo, hi) = (e.lo?, e.hi?);
    let t = c.threshold;
    let gap = (e.value - t).abs();
    if gap <= 1e-12 || cases == 0 {
        return None;
    }
    let decided = |lo: f64, hi: f64| {
        let probe = Estimate {
            value: e.value,
            lo: Some(lo),
            hi: Some(hi),
            n_eff: None,
        };
        !matches!(classify(c, Some(&probe)), Level::Straddles)
    };
    const MAX: usize = 1_000_000;
    let k = if proportion && let Some(n_eff) = e.n_eff {
        let per_case = n_eff / cases as f64;
        (cases + 1..=MAX).find(|&k| {
            let n = per_case * k as f64 * (Z975 / t975(k - 1)).powi(2);
            let (l, h) = wilson(e.value, n);
            decided(l.min(e.value), h.max(e.value))
        })?
    } else {
        let w = if e.value >= t {
            e.value - lo
        } else {
            hi - e.value
        };
        let s = w / t975(cases.saturating_sub(1)) * (cases as f64).sqrt();
        (cases + 1..=MAX).find(|&k| {
            let half = t975(k - 1) * s / (k as f64).sqrt();
            decided(e.value - half, e.value + half)
        })?
    };
    Some(k - cases)
}

/// A refined cliff of `refine.json` (the fields the verdicts use).
#[derive(Debug, Clone, PartialEq)]
pub struct Refined {
    pub axis: String,
    pub metric: String,
    pub direction: Direction,
    pub threshold: f64,
    pub bracket: RefinedBracket,
}

/// The refined cliffs of a `refine.json` document (entries it cannot read are skipped).
pub fn refined_from_json(v: &Value) -> Vec<Refined> {
    let pair = |a: f64, b: f64| if a <= b { [a, b] } else { [b, a] };
    let arr2 = |v: Option<&Value>| -> Option<[f64; 2]> {
        let a = v?.as_array()?;
        Some(pair(a.first()?.as_f64()?, a.get(1)?.as_f64()?))
    };
    v.get("cliffs")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(|c| {
            let direction = match c.get("direction")?.as_str()? {
                "increasing" => Direction::Increasing,
                "decreasing" => Direction::Decreasing,
                _ => return None,
            };
            Some(Refined {
                axis: c.get("axis")?.as_str()?.to_string(),
                metric: c.get("metric")?.as_str()?.to_string(),
                direction,
                threshold: c.get("threshold")?.as_f64()?,
                bracket: RefinedBracket {
                    bracket: pair(c.get("ok")?.as_f64()?, c.get("broken")?.as_f64()?),
                    located: arr2(c.get("located")),
                    crossing: c
                        .get("crossing")
                        .and_then(|x| x.get("estimate"))
                        .and_then(Value::as_f64),
                },
            })
        })
        .collect()
}

pub(crate) fn baseline(a: &Analysis) -> &CellMetrics {
    a.cells
        .iter()
        .find(|c| c.is_baseline)
        .unwrap_or(&a.cells[a.baseline_cell])
}

/// Judges `cond` on every walk of the analysis's axes (only `cond.axis` when named; an unknown
/// axis is an error naming the axes). `refined`: the cliffs of `refine.json`, attached to the
/// walks they refine.
pub fn judge(a: &Analysis, cond: &Condition, refined: &[Refined]) -> Result<Verdicts, String> {
    if let Some(name) = &cond.axis
        && !a.axes.iter().any(|x| &x.name == name)
    {
        return Err(format!(
            "`{cond}`: no axis `{name}` in this sweep (axes: {})",
            a.axes
                .iter()
                .map(|x| x.name.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        ));
    }
    let base = baseline(a);
    let skip_start = COMPARED.contains(&cond.metric.as_str());
    let proportional = matches!(cond.metric.as_str(), "esi" | "flip_rate" | "accuracy");
    let name = metric_name(&cond.metric);
    let th = clarity_core::json::format_num(cond.threshold);
    let mut out = Vec::new();
    let mut details: Vec<String> = Vec::new();
    let mut names: Vec<String> = Vec::new();
    for (ax, axis) in a.axes.iter().enumerate() {
        if cond.axis.as_ref().is_some_and(|n| n != &axis.name) {
            continue;
        }
        let all = walks(axis);
        for (direction, walk) in &all {
            // The cell at each level of this walk on the line through the baseline.
            let cells: Vec<Option<usize>> = walk
                .iter()
                .map(|&l| {
                    a.cells.iter().position(|c| {
                        c.coords[ax] == l
                            && c.coords
                                .iter()
                                .enumerate()
                                .all(|(j, &k)| j == ax || k == base.coords[j])
                    })
                })
                .collect();
            let (mut failed, mut runs) = (0, 0);
            for c in cells.iter().flatten() {
                failed += a.cells[*c].failures;
                runs += a.cells[*c].n;
            }
            let judged = if skip_start { 1 } else { 0 };
            let first = |want: fn(&Level) -> bool| {
                walk.iter()
                    .zip(&cells)
                    .skip(judged)
                    .find(|(_, c)| {
                        let e =
                            c.and_then(|c| a.cells[c].metrics.get(&cond.metric).copied().flatten());
                        want(&classify(cond, e.as_ref()))
                    })
                    .map(|(l, c)| (*l, *c))
            };
            let (outcome, pick) = if let Some(p) = first(|l| matches!(l, Level::Bad)) {
                (Outcome::Breaks, Some(p))
            } else if let Some(p) = first(|l| matches!(l, Level::Straddles)) {
                (Outcome::Inconclusive, Some(p))
            } else if let Some(p) = first(|l| matches!(l, Level::Unmeasured)) {
                (Outcome::NotMeasured, Some(p))
            } else {
                // Holds: the level whose interval comes closest to the threshold.
                let closest = walk
                    .iter()
                    .zip(&cells)
                    .skip(judged)
                    .filter_map(|(l, c)| {
                        let e = a.cells[(*c)?]
                            .metrics
                            .get(&cond.metric)
                            .copied()
                            .flatten()?;
                        let near = match cond.op {
                            Op::Lt | Op::Le => e.lo? - cond.threshold,
                            Op::Gt | Op::Ge => cond.threshold - e.hi?,
                        };
                        Some((near, *l, *c))
                    })
                    .min_by(|x, y| x.0.total_cmp(&y.0))
                    .map(|(_, l, c)| (l, c));
                (Outcome::Holds, closest)
            };
            let level = pick.map(|p| p.0);
            let cell = pick.and_then(|p| p.1);
            let estimate =
                cell.and_then(|c| a.cells[c].metrics.get(&cond.metric).copied().flatten());
            let cases = cell.map_or(0, |c| a.cells[c].cases);
            let value = level.map(|l| axis.values[l].clone());
            let walk_name = if all.len() > 1 {
                format!(
                    "`{}` ({})",
                    axis.name,
                    match direction {
                        Direction::Increasing => "increasing",
                        Direction::Decreasing => "decreasing",
                    }
                )
            } else {
                format!("`{}`", axis.name)
            };
            let unit = if axis.unit.is_empty() {
                String::new()
            } else {
                format!(" {}", axis.unit)
            };
            let at = value
                .as_ref()
                .map(|v| format!("{}{unit}", v.label()))
                .unwrap_or_default();
            let refined = refined
                .iter()
                .find(|r| {
                    r.axis == axis.name
                        && r.metric == cond.metric
                        && r.direction == *direction
                        && (r.threshold - cond.threshold).abs() < 1e-12
                })
                .map(|r| r.bracket.clone())
                .filter(|_| matches!(outcome, Outcome::Breaks | Outcome::Inconclusive));
            let more = (outcome == Outcome::Inconclusive)
                .then(|| estimate.and_then(|e| more_cases(&e, cases, cond, proportional)))
                .flatten();
            let share = if runs > 0 {
                failed as f64 / runs as f64
            } else {
                1.0
            };
            let est = estimate.map(|e| describe(&e)).unwrap_or_default();
            let mut detail = match outcome {
                Outcome::Breaks => {
                    format!("{name} {} {th} at {at} ({name} {est})", cond.op.words())
                }
                Outcome::Inconclusive => format!(
                    "at {at}, {name} {est} straddles {th}; {}",
                    match more {
                        Some(m) => format!("about {m} more cases would decide it"),
                        None => "the estimate sits on the threshold".into(),
                    }
                ),
                Outcome::NotMeasured => format!(
                    "no interval at {at}: {failed} of {runs} runs along it failed{}",
                    if skip_start && cells[0].is_some_and(|c| a.cells[c].ok == 0) {
                        " (every baseline run failed: nothing to compare with)"
                    } else {
                        ""
                    }
                ),
                Outcome::Holds => format!(
                    "{name} never {} {th} over the tested range (closest at {at}: {name} {est})",
                    cond.op.words()
                ),
            };
            if let Some(r) = &refined {
                detail.push_str(&format!(
                    "; refined: the crossing is between {} and {}",
                    short(r.bracket[0]),
                    short(r.bracket[1])
                ));
                match r.located {
                    Some([x, y]) => detail.push_str(&format!(
                        ", the data locate it in [{}, {}]",
                        short(x),
                        short(y)
                    )),
                    None => detail.push_str(", the data do not bound it (more cases needed)"),
                }
            }
            if failed > 0 && outcome != Outcome::NotMeasured {
                detail.push_str(&format!("; {failed} of {runs} runs failed"));
            }
            let summary = format!("{walk_name}: {} — {detail}.", outcome.word());
            details.push(format!("along {walk_name}, {detail}"));
            names.push(walk_name.clone());
            out.push(Verdict {
                axis: Some(axis.name.clone()),
                direction: Some(*direction),
                outcome,
                level,
                value,
                estimate,
                cases,
                failed,
                runs,
                failure_share: share,
                more_cases: more,
                refined,
                summary,
            });
        }
    }
    let baseline_accuracy = base.metrics.get("accuracy").copied().flatten();
    let r = &a.runs;
    let share = if r.records > 0 {
        r.failed as f64 / r.records as f64
    } else {
        1.0
    };
    // The worst walk decides; among equal outcomes the first listed (axis order: walks along
    // axes in different units are not ranked against each other).
    let worst_at = out
        .iter()
        .enumerate()
        .rev()
        .max_by_key(|(_, w)| w.outcome)
        .map(|(i, _)| i);
    let worst = worst_at.map(|i| &out[i]);
    let outcome = worst.map_or(Outcome::NotMeasured, |w| w.outcome);
    let summary = match (outcome, worst_at) {
        (_, None) => format!("not measured — no axis to walk for `{cond}`."),
        (Outcome::Holds, _) => format!(
            "holds — {name} never {} {th} along {} over the tested range.",
            cond.op.words(),
            if cond.axis.is_some() {
                "this axis"
            } else {
                "any axis"
            }
        ),
        (Outcome::NotMeasured, _) if r.ok == 0 => format!(
            "not measured — every run failed ({} of {}).",
            r.failed, r.records
        ),
        (o, Some(i)) => {
            let same: Vec<&str> = out
                .iter()
                .zip(&names)
                .filter(|(w, _)| w.outcome == o)
                .map(|(_, n)| n.as_str())
                .collect();
            if same.len() == 1 {
                format!("{} — {}.", o.word(), details[i])
            } else if let Some(order) = (o == Outcome::Breaks)
                .then(|| severity_order(a, cond, &out, &names))
                .flatten()
            {
                format!("{} — along {order} (each below).", o.word())
            } else {
                format!(
                    "{} — along {} (each below; axes in different units are not ranked).",
                    o.word(),
                    same.join(", ")
                )
            }
        }
    };
    let overall = Verdict {
        axis: cond.axis.clone(),
        direction: None,
        outcome,
        level: worst.and_then(|w| w.level),
        value: worst.and_then(|w| w.value.clone()),
        estimate: worst.and_then(|w| w.estimate),
        cases: worst.map_or(0, |w| w.cases),
        failed: r.failed,
        runs: r.records,
        failure_share: share,
        more_cases: worst.and_then(|w| w.more_cases),
        refined: worst.and_then(|w| w.refined.clone()),
        summary,
    };
    Ok(Verdicts {
        condition: cond.clone(),
        overall,
        walks: out,
        baseline_accuracy,
        baseline_accuracy_below: baseline_accuracy.is_some_and(|e| e.value < cond.threshold),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn conditions_parse_and_print() {
        let c: Condition = "esi < 0.9".parse().unwrap();
        assert_eq!(
            (c.axis.as_deref(), c.metric.as_str(), c.op, c.threshold),
            (None, "esi", Op::Lt, 0.9)
        );
        let c: Condition = "blur.sigma:accuracy<=0.8".parse().unwrap();
        assert_eq!(c.axis.as_deref(), Some("blur.sigma"));
        assert_eq!(c.to_string(), "blur.sigma:accuracy <= 0.8");
        let c: Condition = " drift > 0.2 ".parse().unwrap();
        assert_eq!((c.op, c.threshold), (Op::Gt, 0.2));
        for bad in [
            "esi",
            "esi < x",
            "foo < 0.5",
            ":esi < 0.5",
            "esi < nan",
            "esi =< 0.5",
        ] {
            let e = bad.parse::<Condition>().unwrap_err();
            assert!(
                e.contains("expected `[AXIS:]METRIC OP NUMBER`"),
                "{bad}: {e}"
            );
        }
    }

    fn est(value: f64, lo: f64, hi: f64) -> Estimate {
        Estimate {
            value,
            lo: Some(lo),
            hi: Some(hi),
            n_eff: Some(8.0),
        }
    }

    #[test]
    fn levels_are_judged_on_the_interval() {
        let c: Condition = "esi < 0.8".parse().unwrap();
        assert!(matches!(
            classify(&c, Some(&est(0.5, 0.2, 0.79))),
            Level::Bad
        ));
        assert!(matches!(
            classify(&c, Some(&est(0.9, 0.8, 1.0))),
            Level::Good
        ));
        // Point estimate below, interval straddling: not a break.
        assert!(matches!(
            classify(&c, Some(&est(0.56, 0.25, 0.88))),
            Level::Straddles
        ));
        assert!(matches!(classify(&c, None), Level::Unmeasured));
        let d: Condition = "drift > 0.2".parse().unwrap();
        assert!(matches!(
            classify(&d, Some(&est(0.5, 0.3, 0.7))),
            Level::Bad
        ));
        assert!(matches!(
            classify(&d, Some(&est(0.1, 0.0, 0.2))),
            Level::Good
        ));
    }

    #[test]
    fn more_cases_shrink_the_interval_past_the_threshold() {
        let c: Condition = "esi < 0.8".parse().unwrap();
        // ESI 1 on 3 duplicate-seed cases: the Wilson lower bound n/(n + z²) reaches 0.8 near
        // 16 effective cases (a little more with the t correction).
        let one = Estimate {
            n_eff: Some(3.0),
            ..est(1.0, 0.14, 1.0)
        };
        let m = more_cases(&one, 3, &c, true).unwrap();
        assert!((13..=17).contains(&m), "{m}");
        // A mean: half-width 0.31 on 8 cases, 0.2375 from the threshold.
        let e = est(0.5625, 0.25, 0.877);
        let m = more_cases(&e, 8, &c, false).unwrap();
        assert!((3..=8).contains(&m), "{m}");
        assert_eq!(more_cases(&est(0.8, 0.6, 0.9), 8, &c, true), None);
    }
}
