//! The report's input model: everything the HTML and PDF show, already aggregated.
//!
//! [`crate::load`] fills it from a sweep directory; tests build it by hand.

use std::collections::BTreeMap;

use clarity_core::{Axis, Saliency};

/// A point estimate with an optional 95% confidence interval.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Estimate {
    pub value: f64,
    pub lo: Option<f64>,
    pub hi: Option<f64>,
}

impl Estimate {
    pub fn new(value: f64, lo: f64, hi: f64) -> Self {
        Self {
            value,
            lo: Some(lo),
            hi: Some(hi),
        }
    }
    pub fn point(value: f64) -> Self {
        Self {
            value,
            lo: None,
            hi: None,
        }
    }
}

/// The per-cell metrics a report can plot.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Metric {
    Esi,
    FlipRate,
    Accuracy,
    Confidence,
    DeltaConfidence,
    Drift,
    Csi,
    Entropy,
    Edm,
}

impl Metric {
    pub const ALL: [Metric; 9] = [
        Metric::Esi,
        Metric::FlipRate,
        Metric::Accuracy,
        Metric::Confidence,
        Metric::DeltaConfidence,
        Metric::Drift,
        Metric::Csi,
        Metric::Entropy,
        Metric::Edm,
    ];

    /// Key in `metrics.json`.
    pub fn key(self) -> &'static str {
        match self {
            Metric::Esi => "esi",
            Metric::FlipRate => "flip_rate",
            Metric::Accuracy => "accuracy",
            Metric::Confidence => "confidence",
            Metric::DeltaConfidence => "delta_confidence",
            Metric::Drift => "drift",
            Metric::Csi => "csi",
            Metric::Entropy => "entropy",
            Metric::Edm => "edm",
        }
    }

    pub fn from_key(key: &str) -> Option<Metric> {
        Metric::ALL.into_iter().find(|m| m.key() == key)
    }

    /// Human label for legends and tables.
    pub fn label(self) -> &'static str {
        match self {
            Metric::Esi => "ESI",
            Metric::FlipRate => "flip rate",
            Metric::Accuracy => "accuracy",
            Metric::Confidence => "confidence",
            Metric::DeltaConfidence => "mean |Δconfidence|",
            Metric::Drift => "justification drift",
            Metric::Csi => "CSI",
            Metric::Entropy => "entropy (nats)",
            Metric::Edm => "EDM (nats)",
        }
    }
}

/// Who was measured: the adapter identity from the plan.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ModelInfo {
    pub adapter: String,
    pub model: String,
    pub version: String,
    /// Canonical JSON text of the adapter settings (may be empty).
    pub settings: String,
}

/// The cohort in numbers.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct CohortInfo {
    /// A name for the cohort (source folder or manifest), may be empty.
    pub name: String,
    pub cases: usize,
    pub labelled: usize,
}

/// Runs planned, done and failed.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RunCounts {
    pub planned: usize,
    pub ok: usize,
    pub failed: usize,
}

/// Per-axis curves: for each metric, one estimate per level (`None` where undefined).
#[derive(Debug, Clone, PartialEq)]
pub struct AxisCurves {
    /// Index into [`ReportData::axes`].
    pub axis: usize,
    /// The marginal curve: each level pooled over every level of the other axes.
    pub metrics: BTreeMap<Metric, Vec<Option<Estimate>>>,
    /// The line through the baseline: each level with every other axis at its identity (the
    /// cells the cliffs are read from). Empty when the sweep has no such cells.
    pub line: BTreeMap<Metric, Vec<Option<Estimate>>>,
}

/// Where a metric first falls below a threshold along an axis.
#[derive(Debug, Clone, PartialEq)]
pub struct Cliff {
    pub axis: usize,
    pub metric: Metric,
    pub threshold: f64,
    /// First level index where the metric is below the threshold (`None`: it never is).
    pub level: Option<usize>,
    /// Level index that ends the steepest drop, and the size of that drop.
    pub steepest: Option<(usize, f64)>,
    /// Walk direction away from the identity (`increasing`/`decreasing`) when the analysis
    /// walks both ways (identity in the middle of the axis).
    pub direction: Option<String>,
    /// `|level − start| / (levels on the walk − 1)`: 0 at the identity, 1 at the far end.
    pub relative_position: Option<f64>,
    /// The metric at `level` on the axis's line through the baseline (the other axes at their
    /// identity), where the analysis finds cliffs.
    pub metric_value: Option<f64>,
    /// The interpolated crossing in axis units, and its position on the severity presets.
    pub crossing: Option<f64>,
    pub severity: Option<f64>,
    /// The crossing's 95% interval over case resamples (near and far ends; `None` far end:
    /// beyond the tested range), and how many of how many resamples never cross.
    pub interval: Option<CrossingInterval>,
    /// Level where the line climbs back at or above the threshold (non-monotone).
    pub recovers_at: Option<usize>,
    /// Cases on the line, cases that fall below, cases that fall below and come back.
    pub case_flips: Option<(usize, usize, usize)>,
    /// Rank of this crossing in `cliffs.json`'s ranking (1 = breaks first); `None` when not
    /// ranked (no shared scale, or an older directory without a ranking).
    pub rank: Option<usize>,
}

/// See [`Cliff::interval`].
#[derive(Debug, Clone, PartialEq)]
pub struct CrossingInterval {
    pub near: Option<f64>,
    pub far: Option<f64>,
    pub never_cross: usize,
    pub resamples: usize,
}

/// One cohort cliff refined by `clarity run --refine` (from `refine.json`).
#[derive(Debug, Clone, PartialEq)]
pub struct RefinedCliff {
    pub axis: usize,
    pub metric: Metric,
    pub threshold: f64,
    /// The sweep's bracket `(lo, hi)` and the refined one (numeric order).
    pub initial: (f64, f64),
    pub bracket: (f64, f64),
    pub rounds: usize,
    /// The interpolated crossing and its 95% interval over cases (`None` ends: not bounded).
    pub crossing: Option<f64>,
    pub crossing_lo: Option<f64>,
    pub crossing_hi: Option<f64>,
    /// What the data support (`None`: not bounded, more cases needed).
    pub located: Option<(f64, f64)>,
    /// Why bisection stopped (`uncertainty`, `tolerance`, …).
    pub stopped: String,
    /// Cases whose metric rises again along the line (flip and flip back).
    pub non_monotone_cases: usize,
    /// Times the cohort curve climbs back over the threshold.
    pub cohort_recrossings: usize,
    /// The sentence `refine.json` stores for this cliff.
    pub summary: String,
}

/// A 2-D slice of a metric over two axes (the other axes at their identity).
#[derive(Debug, Clone, PartialEq)]
pub struct Slice {
    pub x_axis: usize,
    pub y_axis: usize,
    pub metric: Metric,
    /// `values[y][x]`.
    pub values: Vec<Vec<Option<f64>>>,
}

/// Finite-difference gradient of a metric along an axis, at each level.
#[derive(Debug, Clone, PartialEq)]
pub struct Gradient {
    pub axis: usize,
    pub metric: Metric,
    /// Metric units per parameter unit (numeric axes only).
    pub per_unit: Vec<Option<f64>>,
    /// Metric units per severity step (level index).
    pub per_step: Vec<Option<f64>>,
}

/// Monte Carlo summary of one cell over K seeds.
#[derive(Debug, Clone, PartialEq)]
pub struct McRow {
    /// `axis=value, …` of the cell.
    pub cell: String,
    /// Fraction of cases whose majority answer equals their baseline majority, over cases where
    /// both have one (ties left out and counted in `ties`).
    pub majority_agreement: Option<f64>,
    pub majority_cases: Option<usize>,
    pub ties: Option<usize>,
    /// Entropy (nats) of `answers` (pooled over cases and seeds); `None` for an older directory,
    /// whose `answer_entropy` was the within-case one (read into `seed_entropy`).
    pub answer_entropy: Option<f64>,
    /// Mean over cases of the entropy (nats) of the case's answers across seeds.
    pub seed_entropy: Option<f64>,
    /// Mean over cases of the share of the case's runs giving its most frequent answer.
    pub seed_agreement: Option<f64>,
    /// Pooled normalised answers and their counts, most frequent first.
    pub answers: Vec<(String, usize)>,
    pub confidence_mean: Option<f64>,
    pub confidence_var: Option<f64>,
}

/// The Monte Carlo panel (shown when K > 1).
#[derive(Debug, Clone, PartialEq)]
pub struct MonteCarlo {
    pub k: usize,
    pub rows: Vec<McRow>,
}

/// Accuracy and stability for one ground-truth class.
#[derive(Debug, Clone, PartialEq)]
pub struct ClassRow {
    pub label: String,
    pub cases: usize,
    pub baseline_accuracy: Option<f64>,
    /// Lowest accuracy of the class over the perturbed cells.
    pub worst_accuracy: Option<f64>,
    /// Lowest ESI of the class over the perturbed cells.
    pub worst_esi: Option<f64>,
    /// The class's earliest cliff, `axis=value (metric)`.
    pub first_break: Option<String>,
}

/// An encoded raster image ready to inline.
#[derive(Debug, Clone, PartialEq)]
pub struct Thumb {
    /// `image/png` or `image/jpeg`.
    pub mime: &'static str,
    pub bytes: Vec<u8>,
    pub width: u32,
    pub height: u32,
}

/// One side of a before/after comparison.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct AnswerView {
    pub answer: String,
    pub justification: String,
    pub confidence: Option<f64>,
    pub saliency: Option<Saliency>,
    /// The image (with the saliency overlay blended in when there is one).
    pub thumb: Option<Thumb>,
}

/// A case whose answer flipped: the baseline against the first flipped level.
#[derive(Debug, Clone, PartialEq)]
pub struct WorstCase {
    pub case_id: String,
    pub label: Option<String>,
    /// `axis=value, …` of the flipped cell.
    pub cell: String,
    pub seed: u64,
    /// Per-case ESI over all cells.
    pub esi: Option<f64>,
    pub baseline: AnswerView,
    pub perturbed: AnswerView,
}

/// One row of the per-case table.
#[derive(Debug, Clone, PartialEq)]
pub struct CaseRow {
    pub case_id: String,
    pub label: Option<String>,
    pub baseline_answer: String,
    pub esi: Option<f64>,
    pub runs: usize,
    pub flips: usize,
    pub failures: usize,
    /// The mildest cell where it flipped, `axis=value`.
    pub first_flip: Option<String>,
}

/// Where the numbers come from.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Provenance {
    pub plan_hash: String,
    pub tool_version: String,
    /// `adapter/model@version`.
    pub adapter_identity: String,
    /// SHA-256 of `bundle.json`, when the bundle exists.
    pub bundle_hash: Option<String>,
    /// `clarity` or `r2l`.
    pub source: String,
}

/// Everything the report shows.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ReportData {
    pub title: String,
    pub model: ModelInfo,
    pub cohort: CohortInfo,
    pub axes: Vec<Axis>,
    pub cells: usize,
    pub seeds: Vec<u64>,
    pub runs: RunCounts,
    /// Baseline cell repeated over seeds: fraction of cases whose baseline answer is the same
    /// for every seed.
    pub baseline_agreement: Option<Estimate>,
    /// The analysis flagged the baseline self-agreement as too low (below `.1`).
    pub baseline_flag: Option<(bool, f64)>,
    /// ESI threshold used for cliffs (for the headline).
    pub esi_threshold: f64,
    /// The headline lines the analysis wrote (metrics.json `headline`: the same lines as the
    /// CLI's summary); `None` for a sweep analysed before verdicts existed.
    pub headline: Option<Vec<String>>,
    pub curves: Vec<AxisCurves>,
    pub cliffs: Vec<Cliff>,
    /// Refined cliffs, when the directory has `refine.json`.
    pub refined: Vec<RefinedCliff>,
    pub slices: Vec<Slice>,
    pub gradients: Vec<Gradient>,
    pub montecarlo: Option<MonteCarlo>,
    pub per_class: Vec<ClassRow>,
    pub worst: Vec<WorstCase>,
    pub cases: Vec<CaseRow>,
    /// Why there are no thumbnails, when there are none.
    pub thumbnails_note: Option<String>,
    pub provenance: Provenance,
}
