//! Adaptive cliff refinement (`clarity run --refine`): locates each cohort cliff of a finished
//! sweep more precisely with extra runs through the engine.
//!
//! A cliff (from `clarity-analysis`) is a bracket on a numeric axis: the last level whose
//! metric (ESI or accuracy, on the axis's line through the baseline: every other axis at its
//! identity) is at or above the threshold and the first level below it. [`refine_sweep`] bisects
//! that bracket: it runs the cohort at the midpoint with the other axes at their identity (the
//! same line the cliff was found on), keeps the half that still contains the crossing, and
//! repeats until the bracket is no wider than the tolerance, the
//! round budget is spent, or no representable value is left inside (integer parameters stop at
//! adjacent integers).
//!
//! Every midpoint is a sweep of its own under `DIR/refine/<axis>/<value>/` (plan, journal,
//! observations, bundle): executed by [`clarity_engine::run_sweep`], so it is cached, resumable
//! and byte-deterministic like any sweep, and a second `--refine` makes no model call. The
//! outcome is a [`RefineReport`], written as `DIR/refine.json` ([`write_report`]).
//!
//! Refinement never lowers the precision of a cliff: every round keeps a sub-bracket of the
//! previous one, so the final bracket is inside the sweep's and at most as wide.

use std::path::{Path, PathBuf};

use clarity_analysis::{Analysis, Cliff, SweepData, analyze, load_clarity_dir};
use clarity_core::{AxisValue, SCHEMA_VERSION};
use clarity_engine::{ExecOptions, Prepared, build_plan};
use serde::Serialize;

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
}

/// How far to refine.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct RefineSettings {
    /// Stop when the bracket is at most this wide (in the axis's parameter units); `None`:
    /// spend the whole round budget.
    pub tolerance: Option<f64>,
    /// Most bisection rounds per cliff, in `1..=MAX_ROUNDS`.
    pub max_rounds: usize,
}

/// Upper bound of [`RefineSettings::max_rounds`].
pub const MAX_ROUNDS: usize = 30;

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
    pub value: f64,
    /// The metric on the axis's marginal curve at `value` (`None`: every run there failed).
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
    /// The round budget is spent.
    Rounds,
    /// No value strictly inside the bracket (adjacent integers, or adjacent floats).
    Resolution,
    /// The metric was undefined at a midpoint (every run failed): the bracket is kept.
    Undefined,
}

/// The refinement of one cohort cliff.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RefinedCliff {
    pub axis: String,
    pub axis_index: usize,
    pub metric: String,
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
    pub rounds: Vec<Round>,
    pub stopped: Stop,
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

/// Refines every cohort cliff of the finished sweep in `dir` (its `plan.json` and
/// `observations.jsonl` must be those of `prepared`). Rounds run sequentially (each depends on
/// the one before); the runs of a round run in parallel as `opts` says.
pub async fn refine_sweep(
    prepared: &Prepared,
    dir: &Path,
    settings: &RefineSettings,
    opts: &ExecOptions,
) -> Result<RefineOutcome, RefineError> {
    settings.validate()?;
    let analysis = analyze(&load_clarity_dir(dir)?)?;
    let mut cliffs = Vec::new();
    let (mut runs, mut executed) = (0, 0);
    for cliff in cohort_cliffs(&analysis) {
        let Some((ok, broken)) = bracket(&analysis, cliff) else {
            continue;
        };
        let integer = is_integer_param(prepared, cliff.axis_index);
        let mut r = RefinedCliff {
            axis: cliff.axis.clone(),
            axis_index: cliff.axis_index,
            metric: cliff.metric.clone(),
            threshold: cliff.threshold,
            initial_ok: ok,
            initial_broken: broken,
            ok,
            broken,
            width: (broken - ok).abs(),
            initial_width: (broken - ok).abs(),
            rounds: Vec::new(),
            stopped: Stop::Rounds,
        };
        loop {
            if settings.tolerance.is_some_and(|t| r.width <= t) {
                r.stopped = Stop::Tolerance;
                break;
            }
            if r.rounds.len() == settings.max_rounds {
                r.stopped = Stop::Rounds;
                break;
            }
            let Some(m) = midpoint(r.ok, r.broken, integer) else {
                r.stopped = Stop::Resolution;
                break;
            };
            let (round, stats) = measure(prepared, dir, cliff, m, opts).await?;
            runs += stats.0;
            executed += stats.1;
            let round = Round {
                round: r.rounds.len() + 1,
                ..round
            };
            let (defined, below) = (round.metric_value.is_some(), round.below);
            r.rounds.push(round);
            if !defined {
                r.stopped = Stop::Undefined;
                break;
            }
            if below {
                r.broken = m;
            } else {
                r.ok = m;
            }
            r.width = (r.broken - r.ok).abs();
        }
        cliffs.push(r);
    }
    let report = RefineReport {
        schema_version: SCHEMA_VERSION,
        settings: *settings,
        method: "bisection of each cohort cliff's bracket on its axis's line through the baseline (every other axis at its identity, as the analysis finds cliffs): each midpoint is run on the whole cohort, and the half whose ends straddle the threshold is kept".into(),
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

/// Runs the cohort at `value` on the cliff's axis (the other axes at identity) and reads the
/// cliff's metric there (the round's marginal of that axis is that one cell). Returns the round (number unset) and
/// `(runs, executed)`.
async fn measure(
    prepared: &Prepared,
    dir: &Path,
    cliff: &Cliff,
    value: f64,
    opts: &ExecOptions,
) -> Result<(Round, (usize, usize)), RefineError> {
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
    let data: SweepData = load_clarity_dir(&round_dir)?;
    let a = analyze(&data)?;
    let marginal = a.surface.marginals.get(cliff.axis_index);
    let level = marginal.and_then(|m| m.values.iter().position(|v| v.as_f64() == Some(value)));
    let estimate = marginal
        .zip(level)
        .and_then(|(m, l)| m.metrics.get(&cliff.metric)?.get(l).cloned().flatten());
    let n = marginal.zip(level).map_or(0, |(m, l)| m.n[l]);
    let round = Round {
        round: 0,
        value,
        metric_value: estimate.as_ref().map(|e| e.value),
        ci_lo: estimate.as_ref().and_then(|e| e.lo),
        ci_hi: estimate.as_ref().and_then(|e| e.hi),
        n,
        below: estimate.as_ref().is_some_and(|e| e.value < cliff.threshold),
        dir: rel,
    };
    Ok((round, (outcome.stats.runs, outcome.stats.executed)))
}
