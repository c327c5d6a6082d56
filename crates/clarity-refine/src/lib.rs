//! Adaptive cliff refinement (`clarity run --refine`): locates each cohort cliff of a finished
//! sweep more precisely with extra runs through the engine, and says how precisely the data can
//! locate it.
//!
//! A cliff (from `clarity-analysis`) is a bracket on a numeric axis: the last level whose
//! metric (ESI or accuracy, on the axis's line through the baseline: every other axis at its
//! identity) is at or above the threshold and the first level below it. [`refine_sweep`] bisects
//! that bracket on the **cohort** curve: it runs the cohort at the midpoint with the other axes
//! at their identity (the same line the cliff was found on), keeps the half whose ends still
//! straddle the threshold, and repeats. It never assumes that each case flips once: a case that
//! flips and flips back only moves the cohort value, and every place where the measured line is
//! not monotone (the cohort curve climbing back over the threshold, or a case's own metric rising
//! again) is reported ([`NonMonotone`]).
//!
//! Besides the bracket, every cliff carries the **crossing** ([`Crossing`]): where the cohort
//! curve crosses the threshold (interpolated between the measured points around it) and its 95%
//! bootstrap interval over cases (every measured point, sweep levels and midpoints, resampled by
//! case). Bisection stops as soon as the bracket is no wider than that interval: halving further
//! would claim a precision the cohort cannot support ([`Stop::Uncertainty`]). Otherwise it stops
//! when the bracket is no wider than the tolerance, the round budget is spent, or no
//! representable value is left inside (integer parameters stop at adjacent integers).
//!
//! Midpoints are taken as the artifacts store them (rounded to
//! [`clarity_core::json::DECIMALS`] places, so the value in `plan.json` is the value that ran)
//! and each round's result is read from the round's own plan: its one non-baseline cell, never by
//! comparing floats.
//!
//! Every midpoint is a sweep of its own under `DIR/refine/<axis>/<value>/` (plan, journal,
//! observations, bundle): executed by [`clarity_engine::run_sweep`], so it is cached, resumable
//! and byte-deterministic like any sweep, and a second `--refine` makes no model call. The
//! outcome is a [`RefineReport`], written as `DIR/refine.json` ([`write_report`]);
//! [`RefineReport::summary_lines`] gives the sentences for a headline.
//!
//! Refinement never lowers the precision of a cliff: every round keeps a sub-bracket of the
//! previous one, so the final bracket is inside the sweep's and at most as wide.

mod line;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use clarity_analysis::{Analysis, CaseCellRow, Cliff, Direction, analyze, load_clarity_dir};
use clarity_core::{AxisValue, SCHEMA_VERSION};
use clarity_engine::{ExecOptions, Prepared, build_plan};
use serde::Serialize;

use line::{CaseValue, Measured};
pub use line::{Crossing, LinePoint, NonMonotone, NonMonotoneCase};

/// Errors of a refinement. Messages name the sweep directory or the round directory.
#[derive(Debug, thiserror::Error)]
pub enum RefineError {
    #[error(transparent)]
    Engine(#[from] clarity_engine::EngineError),
    #[error(transparent)]
    Analysis(#[from] clarity_analysis::AnalysisError),
    #[error(transparent)]
    Io(#[from] std::io::Error),
    #[error("invalid refinement settings: {0}")]
    Settings(String),
    #[error("cannot serialise refine.json: {0}")]
    Json(String),
    #[error("{dir}: the round's plan has no cell at the midpoint (expected one non-baseline cell)")]
    RoundPlan { dir: PathBuf },
}

/// How far to refine.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct RefineSettings {
    /// Stop when the bracket is at most this wide (in the axis's parameter units); `None`:
    /// spend the whole round budget (unless the crossing's interval stops it first).
    pub tolerance: Option<f64>,
    /// Most bisection rounds per cliff, in `1..=MAX_ROUNDS`.
    pub max_rounds: usize,
}

/// Upper bound of [`RefineSettings::max_rounds`].
pub const MAX_ROUNDS: usize = 30;

/// Fewest case resamples behind a crossing interval (more when the sweep's
/// `bootstrap_iterations` asks for more; none when it is 0).
pub const MIN_CROSSING_RESAMPLES: usize = 1000;

impl Default for RefineSettings {
    fn default() -> Self {
        Self {
            tolerance: None,
            max_rounds: 4,
        }
    }
}

impl RefineSettings {
    pub fn validate(&self) -> Result<(), RefineError> {
        if !(1..=MAX_ROUNDS).contains(&self.max_rounds) {
            return Err(RefineError::Settings(format!(
                "rounds must be in [1, {MAX_ROUNDS}], got {}",
                self.max_rounds
            )));
        }
        if let Some(t) = self.tolerance
            && !(t.is_finite() && t > 0.0)
        {
            return Err(RefineError::Settings(format!(
                "tolerance must be a positive number, got {t}"
            )));
        }
        Ok(())
    }
}

/// One bisection step.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Round {
    pub round: usize,
    /// The midpoint as the round's `plan.json` stores it (the value that ran).
    pub value: f64,
    /// The cohort metric at `value` on the cliff's line (`None`: every run there failed).
    pub metric_value: Option<f64>,
    pub ci_lo: Option<f64>,
    pub ci_hi: Option<f64>,
    /// Runs behind `metric_value`.
    pub n: usize,
    /// Whether `metric_value` is below the threshold (the crossing is then before `value`).
    pub below: bool,
    /// The round's sweep directory, relative to the sweep directory.
    pub dir: String,
}

/// Why a cliff's refinement stopped.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Stop {
    /// The bracket is no wider than the tolerance.
    Tolerance,
    /// The bracket is no wider than the crossing's 95% interval over cases: narrowing it
    /// further would not locate the cliff better than the cohort allows.
    Uncertainty,
    /// The round budget is spent.
    Rounds,
    /// No value strictly inside the bracket (adjacent integers, or no value the artifacts can
    /// store apart from the ends).
    Resolution,
    /// The metric was undefined at a midpoint (every run failed): the bracket is kept.
    Undefined,
}

impl Stop {
    /// In words, for summaries.
    pub fn describe(self) -> &'static str {
        match self {
            Stop::Tolerance => "the bracket is within the tolerance",
            Stop::Uncertainty => "the bracket is narrower than that interval",
            Stop::Rounds => "the round budget is spent",
            Stop::Resolution => "no value is left inside the bracket",
            Stop::Undefined => "every run at a midpoint failed",
        }
    }
}

/// The refinement of one cohort cliff.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RefinedCliff {
    pub axis: String,
    pub axis_index: usize,
    pub metric: String,
    pub direction: Direction,
    pub threshold: f64,
    /// From the sweep: the last value at or above the threshold and the first below it.
    pub initial_ok: f64,
    pub initial_broken: f64,
    /// After refinement: the same two ends, inside the initial bracket.
    pub ok: f64,
    pub broken: f64,
    /// `|broken - ok|`.
    pub width: f64,
    pub initial_width: f64,
    /// The crossing and its 95% interval over cases, on every measured point.
    pub crossing: Crossing,
    /// What the data support, `[lo, hi]`: the hull of the bracket and the crossing's interval
    /// (the bracket alone when the sweep has no bootstrap); `None` when the interval is not
    /// bounded on a side (more cases are needed to locate the cliff).
    pub located: Option<[f64; 2]>,
    /// Where the measured line is not monotone (cases flipping back, the cohort curve climbing
    /// back over the threshold).
    pub non_monotone: NonMonotone,
    /// Every measured point of the line in walk order (sweep levels and midpoints).
    pub line: Vec<LinePoint>,
    pub rounds: Vec<Round>,
    pub stopped: Stop,
    /// [`RefinedCliff::summary`], stored so the report and headlines quote the artifact.
    pub summary: String,
}

/// Short text of a parameter value or a crossing (4 significant digits, no trailing zeros).
pub fn short(x: f64) -> String {
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

impl RefinedCliff {
    /// One sentence: bracket, crossing interval, what the data support, why it stopped,
    /// non-monotone cases. (The same text is stored in the `summary` field.)
    pub fn summary(&self) -> String {
        let (lo, hi) = if self.ok <= self.broken {
            (self.ok, self.broken)
        } else {
            (self.broken, self.ok)
        };
        let n = self.rounds.len();
        let mut s = format!(
            "{} {} < {}: between {} and {} after {n} round{} (sweep: {} to {})",
            self.axis,
            self.metric,
            short(self.threshold),
            short(lo),
            short(hi),
            if n == 1 { "" } else { "s" },
            short(self.initial_ok.min(self.initial_broken)),
            short(self.initial_ok.max(self.initial_broken)),
        );
        let c = &self.crossing;
        if c.resamples > 0 {
            let end = |x: Option<f64>| x.map(short).unwrap_or_else(|| "not bounded".into());
            s.push_str(&format!(
                "; crossing {}, 95% CI over cases [{}, {}]",
                c.estimate.map(short).unwrap_or_else(|| "–".into()),
                end(c.lo),
                end(c.hi)
            ));
        }
        match self.located {
            Some([a, b]) => s.push_str(&format!(
                ", so the data locate it in [{}, {}]",
                short(a),
                short(b)
            )),
            None => s.push_str(", so the data do not locate it: more cases are needed"),
        }
        s.push_str(&format!("; stopped: {}", self.stopped.describe()));
        let nm = &self.non_monotone;
        if !nm.cases.is_empty() {
            let k = nm.cases.len();
            s.push_str(&format!(
                "; {k} case{} flip{} back",
                if k == 1 { "" } else { "s" },
                if k == 1 { "s" } else { "" }
            ));
        }
        if !nm.cohort.is_empty() {
            s.push_str(&format!(
                "; the cohort curve climbs back over the threshold {}",
                nm.cohort
                    .iter()
                    .map(|[a, b]| format!("between {} and {}", short(*a), short(*b)))
                    .collect::<Vec<_>>()
                    .join(", ")
            ));
        }
        s.push('.');
        s
    }
}

/// `refine.json`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RefineReport {
    pub schema_version: u32,
    pub settings: RefineSettings,
    /// How a midpoint is measured, in words (written into the artifact).
    pub method: String,
    pub cliffs: Vec<RefinedCliff>,
    /// Runs of all rounds.
    pub runs: usize,
}

impl RefineReport {
    /// One sentence per refined cliff ([`RefinedCliff::summary`]), for a headline or summary.
    pub fn summary_lines(&self) -> Vec<String> {
        self.cliffs.iter().map(|c| c.summary.clone()).collect()
    }
}

/// What [`refine_sweep`] returns: the artifact, and how many runs called the adapter in this
/// invocation (telemetry: not in `refine.json`, which must not depend on the cache).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RefineOutcome {
    pub report: RefineReport,
    pub executed: usize,
}

/// The file [`write_report`] writes.
pub const REFINE_FILE: &str = "refine.json";
/// Subdirectory of the rounds' sweeps.
pub const REFINE_DIR: &str = "refine";

const METHOD: &str = "bisection of each cohort cliff's bracket on its axis's line through the baseline (every other axis at its identity, as the analysis finds cliffs): each midpoint (rounded as the artifacts store it) is run on the whole cohort, and the half whose ends straddle the threshold on the cohort curve is kept. The crossing is interpolated between the measured points around it; its 95% interval is the percentile interval over case resamples of every measured point. Bisection stops once the bracket is no wider than that interval, at the tolerance, after the round budget, or when no value is left inside. Cases whose metric rises again along the line, and places where the cohort curve climbs back over the threshold, are listed as non-monotone";

/// Refines every cohort cliff of the finished sweep in `dir` (its `plan.json` and
/// observations must be those of `prepared`). Rounds run sequentially (each depends on
/// the one before); the runs of a round run in parallel as `opts` says.
pub async fn refine_sweep(
    prepared: &Prepared,
    dir: &Path,
    settings: &RefineSettings,
    opts: &ExecOptions,
) -> Result<RefineOutcome, RefineError> {
    settings.validate()?;
    let analysis = analyze(&load_clarity_dir(dir)?)?;
    let resamples = match analysis.settings.bootstrap_iterations {
        0 => 0,
        b => b.max(MIN_CROSSING_RESAMPLES),
    };
    let seed = analysis.settings.bootstrap_seed;
    let mut cliffs = Vec::new();
    let (mut runs, mut executed) = (0, 0);
    for cliff in cohort_cliffs(&analysis) {
        let Some((ok, broken)) = bracket(&analysis, cliff) else {
            continue;
        };
        let increasing = cliff.direction == Direction::Increasing;
        let label = format!("{}/{}/{:?}", cliff.axis, cliff.metric, cliff.direction);
        let mut points = sweep_line(&analysis, cliff);
        let integer = is_integer_param(prepared, cliff.axis_index);
        let mut rounds: Vec<Round> = Vec::new();
        let (mut ok, mut broken) = (ok, broken);
        let (initial_ok, initial_broken) = (ok, broken);
        let stopped = loop {
            line::walk_order(&mut points, increasing);
            let width = (broken - ok).abs();
            if settings.tolerance.is_some_and(|t| width <= t) {
                break Stop::Tolerance;
            }
            let crossing = line::crossing(
                &points,
                cliff.threshold,
                increasing,
                resamples,
                seed,
                &label,
            );
            if crossing.width().is_some_and(|cw| width <= cw) {
                break Stop::Uncertainty;
            }
            if rounds.len() == settings.max_rounds {
                break Stop::Rounds;
            }
            let Some(m) = stored_midpoint(ok, broken, integer) else {
                break Stop::Resolution;
            };
            let (round, point, stats) = measure(prepared, dir, cliff, m, opts).await?;
            runs += stats.0;
            executed += stats.1;
            let round = Round {
                round: rounds.len() + 1,
                ..round
            };
            let (defined, below, value) = (round.metric_value.is_some(), round.below, round.value);
            rounds.push(round);
            if !defined {
                break Stop::Undefined;
            }
            points.push(point);
            if below {
                broken = value;
            } else {
                ok = value;
            }
        };
        line::walk_order(&mut points, increasing);
        let crossing = line::crossing(
            &points,
            cliff.threshold,
            increasing,
            resamples,
            seed,
            &label,
        );
        let (blo, bhi) = (ok.min(broken), ok.max(broken));
        let located = if crossing.resamples == 0 {
            Some([blo, bhi])
        } else {
            match (crossing.lo, crossing.hi) {
                (Some(lo), Some(hi)) => Some([blo.min(lo), bhi.max(hi)]),
                _ => None,
            }
        };
        let mut refined = RefinedCliff {
            axis: cliff.axis.clone(),
            axis_index: cliff.axis_index,
            metric: cliff.metric.clone(),
            direction: cliff.direction,
            threshold: cliff.threshold,
            initial_ok,
            initial_broken,
            ok,
            broken,
            width: (broken - ok).abs(),
            initial_width: (initial_broken - initial_ok).abs(),
            non_monotone: line::non_monotone(&points, cliff.threshold),
            crossing,
            located,
            line: points
                .iter()
                .map(|p| LinePoint {
                    value: p.x,
                    source: if p.from_round { "round" } else { "sweep" }.into(),
                    metric_value: p.cohort,
                    n: p.n,
                })
                .collect(),
            rounds,
            stopped,
            summary: String::new(),
        };
        refined.summary = refined.summary();
        cliffs.push(refined);
    }
    let report = RefineReport {
        schema_version: SCHEMA_VERSION,
        settings: *settings,
        method: METHOD.into(),
        cliffs,
        runs,
    };
    Ok(RefineOutcome { report, executed })
}

/// Writes `refine.json` into `dir` (atomically).
pub fn write_report(dir: &Path, report: &RefineReport) -> Result<PathBuf, RefineError> {
    let text = clarity_core::json::to_canonical_string(report)
        .map_err(|e| RefineError::Json(e.to_string()))?;
    let path = dir.join(REFINE_FILE);
    clarity_engine::write_atomic(&path, text.as_bytes())?;
    Ok(path)
}

/// Cohort cliffs (not per case or class) that cross the threshold on a numeric axis.
fn cohort_cliffs(a: &Analysis) -> impl Iterator<Item = &Cliff> {
    a.cliffs.iter().filter(|c| {
        c.case_id.is_none()
            && c.class.is_none()
            && c.level.is_some()
            && c.previous_level.is_some()
            && a.axes.get(c.axis_index).is_some_and(|x| x.is_numeric())
    })
}

/// `(last value at or above the threshold, first value below it)`.
fn bracket(a: &Analysis, c: &Cliff) -> Option<(f64, f64)> {
    let axis = a.axes.get(c.axis_index)?;
    let ok = axis.values.get(c.previous_level?)?.as_f64()?;
    let broken = axis.values.get(c.level?)?.as_f64()?;
    Some((ok, broken))
}

/// The weight of one case's value in the cohort value: the runs behind it (compared runs for
/// the comparison metrics, successful runs otherwise).
fn case_value(row: &CaseCellRow, metric: &str) -> Option<CaseValue> {
    let value = (*row.metrics.get(metric)?)?;
    let weight = match metric {
        "esi" | "flip_rate" | "drift" => row.compared,
        _ => row.n.saturating_sub(row.failures),
    } as f64;
    (weight > 0.0).then_some(CaseValue { value, weight })
}

/// The measured line of a cliff in the sweep: the cells at each level of the cliff's walk with
/// every other axis at the baseline's coordinate.
fn sweep_line(a: &Analysis, c: &Cliff) -> Vec<Measured> {
    let Some(base) = a.cells.iter().find(|x| x.is_baseline) else {
        return Vec::new();
    };
    let n_levels = a.axes[c.axis_index].values.len();
    let levels: Vec<usize> = match c.direction {
        Direction::Increasing => (c.start_level..n_levels).collect(),
        Direction::Decreasing => (0..=c.start_level).rev().collect(),
    };
    let mut by_cell: BTreeMap<usize, Vec<&CaseCellRow>> = BTreeMap::new();
    for r in &a.case_cells {
        by_cell.entry(r.cell).or_default().push(r);
    }
    let mut out = Vec::new();
    for l in levels {
        let mut coords = base.coords.clone();
        coords[c.axis_index] = l;
        let Some(cell) = a.cells.iter().find(|x| x.coords == coords) else {
            continue;
        };
        let Some(x) = a.axes[c.axis_index].values[l].as_f64() else {
            continue;
        };
        out.push(measured(a, cell.cell, x, false, &c.metric, &by_cell));
    }
    out
}

fn measured(
    a: &Analysis,
    cell: usize,
    x: f64,
    from_round: bool,
    metric: &str,
    by_cell: &BTreeMap<usize, Vec<&CaseCellRow>>,
) -> Measured {
    let cm = a.cells.iter().find(|c| c.cell == cell);
    Measured {
        x,
        from_round,
        cohort: cm
            .and_then(|c| c.metrics.get(metric).cloned().flatten())
            .map(|e| e.value),
        n: cm.map_or(0, |c| c.n),
        cases: by_cell
            .get(&cell)
            .into_iter()
            .flatten()
            .filter_map(|r| Some((r.case_id.clone(), case_value(r, metric)?)))
            .collect(),
    }
}

fn is_integer_param(prepared: &Prepared, axis: usize) -> bool {
    let Some(axis) = prepared.config.axes.get(axis) else {
        return false;
    };
    clarity_perturb::registry()
        .get(&axis.perturbation)
        .and_then(|k| k.params().iter().find(|p| p.name == axis.param))
        .is_some_and(|p| matches!(p.kind, clarity_perturb::ParamKind::Int { .. }))
}

/// A value strictly between `a` and `b` (rounded for integer parameters), if there is one.
pub fn midpoint(a: f64, b: f64, integer: bool) -> Option<f64> {
    let (lo, hi) = if a < b { (a, b) } else { (b, a) };
    let m = if integer {
        ((lo + hi) / 2.0).floor()
    } else {
        lo + (hi - lo) / 2.0
    };
    (m > lo && m < hi).then_some(m)
}

/// [`midpoint`] as the artifacts store it (rounded to [`clarity_core::json::DECIMALS`]
/// places), so the value that runs is the value `plan.json` records; `None` when no such value
/// is strictly inside.
pub fn stored_midpoint(a: f64, b: f64, integer: bool) -> Option<f64> {
    let m = clarity_core::json::round(midpoint(a, b, integer)?);
    (m > a.min(b) && m < a.max(b)).then_some(m)
}

/// Runs the cohort at `value` on the cliff's axis (the other axes at identity) and reads the
/// cliff's metric there: the round's plan has two cells, the baseline and the midpoint, and the
/// midpoint is its non-baseline cell (matched by the plan's cell identity, not by comparing
/// floats). Returns the round (number unset), the measured point and `(runs, executed)`.
async fn measure(
    prepared: &Prepared,
    dir: &Path,
    cliff: &Cliff,
    value: f64,
    opts: &ExecOptions,
) -> Result<(Round, Measured, (usize, usize)), RefineError> {
    let mut config = prepared.config.clone();
    // The cliff's line through the baseline: every other axis at its identity.
    for (j, a) in config.axes.iter_mut().enumerate() {
        if j != cliff.axis_index {
            a.values = vec![a.identity.clone()];
        }
    }
    let axis = &mut config.axes[cliff.axis_index];
    let mut values = vec![axis.identity.clone(), AxisValue::Num(value)];
    values.sort_by(|x, y| {
        x.as_f64()
            .partial_cmp(&y.as_f64())
            .expect("finite axis values")
    });
    axis.values = values;
    let label = AxisValue::Num(value).label();
    let rel = format!("{REFINE_DIR}/{}/{label}", cliff.axis);
    let round_dir = dir.join(&rel);
    let plan = build_plan(&config, &prepared.cohort, prepared.adapter.identity())?;
    let round_prepared = Prepared {
        config,
        cohort: prepared.cohort.clone(),
        adapter: prepared.adapter.clone(),
        plan: std::sync::Arc::new(plan),
    };
    fs_err::create_dir_all(&round_dir)?;
    let outcome = clarity_engine::run_sweep(&round_prepared, &round_dir, opts).await?;
    let a = analyze(&load_clarity_dir(&round_dir)?)?;
    let cell = a
        .cells
        .iter()
        .find(|c| !c.is_baseline)
        .ok_or_else(|| RefineError::RoundPlan {
            dir: round_dir.clone(),
        })?;
    // The value as the round's plan stores it.
    let stored = a.axes[cliff.axis_index].values[cell.coords[cliff.axis_index]]
        .as_f64()
        .ok_or_else(|| RefineError::RoundPlan {
            dir: round_dir.clone(),
        })?;
    let mut by_cell: BTreeMap<usize, Vec<&CaseCellRow>> = BTreeMap::new();
    for r in a.case_cells.iter().filter(|r| r.cell == cell.cell) {
        by_cell.entry(r.cell).or_default().push(r);
    }
    let point = measured(&a, cell.cell, stored, true, &cliff.metric, &by_cell);
    let estimate = cell.metrics.get(&cliff.metric).cloned().flatten();
    let round = Round {
        round: 0,
        value: stored,
        metric_value: estimate.as_ref().map(|e| e.value),
        ci_lo: estimate.as_ref().and_then(|e| e.lo),
        ci_hi: estimate.as_ref().and_then(|e| e.hi),
        n: cell.n,
        below: estimate.as_ref().is_some_and(|e| e.value < cliff.threshold),
        dir: rel,
    };
    Ok((round, point, (outcome.stats.runs, outcome.stats.executed)))
}
