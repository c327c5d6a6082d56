//! Clarity's analysis: from a sweep's runs to the numbers a reviewer checks.
//!
//! - [`SweepData`]: axes, cells, cases, seeds, [`Normalization`](clarity_core::Normalization),
//!   [`AnalysisSettings`] and the run records of one sweep, loaded by [`io::load_clarity_dir`]
//!   (a Clarity sweep directory), [`io::load_r2l_dir`] (the earlier Python CLARITY / R2L
//!   orchestrator, SPEC §12) or [`io::load_dir`] (auto-detect).
//! - [`Normalizer`]: answer normalisation (exact, folded, choices, regex).
//! - [`analyze`]: every metric of SPEC §5 as pure functions on [`SweepData`], returning an
//!   [`Analysis`]: per-cell [`CellMetrics`] with bootstrap CIs ([`Estimate`]), baseline
//!   self-agreement, [`Surface`] (grid, marginal curves, 2-D slices), [`Gradient`]s along numeric
//!   axes with the real spacing, [`Cliff`]s (with the bootstrap interval of each crossing),
//!   Monte Carlo and per-class breakdowns.
//! - [`rank_axes`]: which axis breaks first, on the kernels' severity presets (a scale that does
//!   not depend on the grid), or "not ranked" when the axes share no scale.
//! - [`refine_targets`]: the values to run next to locate each cliff more precisely.
//! - [`io::analyze_dir`]: loads a directory (streaming the journal), analyses it and writes
//!   `metrics.json`, `surface.json`, `gradients.json`, `cliffs.json`, `montecarlo.json`,
//!   `metrics.csv` and `cases.csv` (shapes in `docs/analysis.md`).
//!
//! Everything except [`io`] is pure: no file system, no clock, no global RNG. Outputs do not depend
//! on the order of the input records.

mod analysis;
mod bootstrap;
mod cliffs;
pub mod coverage;
mod data;
mod error;
mod gradients;
mod headline;
pub mod intervals;
pub mod io;
mod lev;
mod normalize;
mod r2l;
mod ranking;
mod rows;
pub mod verdicts;

pub use analysis::{
    Analysis, BaselineAgreement, CaseCellRow, CellMetrics, ClassBreakdown, ClassCell, Estimate,
    METRICS, MarginalCurve, McCell, RunTotals, Slice, Surface, analyze,
};
pub use bootstrap::percentile;
pub use cliffs::{
    CaseFlips, Cliff, CrossingInterval, Direction, RefineRequest, Steepest, refine_targets,
};
pub use data::{AnalysisSettings, FailedRun, ManifestCheck, SourceInfo, SourceKind, SweepData};
pub use error::AnalysisError;
pub use gradients::{Gradient, gradient_nonuniform};
pub use io::{
    AnalysisSummary, AnalyzeOptions, analyze_dir, load_clarity_dir, load_dir, load_r2l_dir,
};
pub use normalize::Normalizer;
/// How an R2L sweep names a run directory (used by the fuzz target to lay out runs).
pub use r2l::run_dir_name as r2l_run_dir_name;
pub use ranking::{RankEntry, RankScale, Ranking, SeverityScale, rank_axes};
pub use rows::justification_drift;
pub use verdicts::{Condition, Outcome, Verdict, Verdicts};
