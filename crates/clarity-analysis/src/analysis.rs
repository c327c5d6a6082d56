//! The metrics of SPEC §5 on compact rows: per cell, marginal, slice, class; with bootstrap CIs.

use std::collections::{BTreeMap, BTreeSet};

use clarity_core::{Axis, AxisValue, Case, Cell};
use rand::RngExt;
use rayon::prelude::*;
use serde::Serialize;

use crate::bootstrap::{percentile, rng};
use crate::cliffs::{Cliff, RefineRequest, add_uncertainty, cliffs_of_curve, refine_targets};
use crate::gradients::{Gradient, gradient_nonuniform};
use crate::intervals;
use crate::ranking::{Ranking, SeverityScale, rank_axes};
use crate::rows::{Row, RowBuilder, Rows};
use crate::{AnalysisError, AnalysisSettings, Normalizer, SweepData};

/// Metric keys, in artifact order.
pub const METRICS: [&str; 10] = [
    "esi",
    "flip_rate",
    "accuracy",
    "drift",
    "csi",
    "confidence",
    "delta_confidence",
    "edm",
    "entropy",
    "confidence_shift",
];
const N_METRICS: usize = METRICS.len();
/// Metrics whose cliffs are searched.
const CLIFF_METRICS: [usize; 2] = [0, 2];

/// A point estimate with its 95% interval (method per metric in `docs/analysis.md`: cluster
/// Wilson for proportions, cluster t for means, percentile bootstrap for CSI; `None` when it
/// cannot be computed).
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Estimate {
    pub value: f64,
    pub lo: Option<f64>,
    pub hi: Option<f64>,
    /// Effective sample size behind the interval (distinct cases ≤ n_eff ≤ runs; duplicate
    /// seeds count once). Proportions and means only.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub n_eff: Option<f64>,
}

/// Sums over runs from which every metric is a ratio; addable, so a bootstrap resample is a sum
/// of per-case accumulators.
#[derive(Debug, Default, Clone, Copy, PartialEq)]
pub(crate) struct Acc {
    runs: f64,
    failed: f64,
    excluded: f64,
    compared: f64,
    agree: f64,
    labelled: f64,
    correct: f64,
    drift_n: f64,
    drift_s: f64,
    conf_n: f64,
    conf_s: f64,
    conf_q: f64,
    dconf_n: f64,
    dconf_s: f64,
    dent_n: f64,
    dent_s: f64,
    ent_n: f64,
    ent_s: f64,
}

fn ratio(s: f64, n: f64) -> Option<f64> {
    (n > 0.0).then(|| s / n)
}

impl Acc {
    fn add_row(&mut self, r: &Row) {
        self.runs += 1.0;
        let Some(ok) = &r.ok else {
            self.failed += 1.0;
            return;
        };
        if let Some(c) = ok.correct {
            self.labelled += 1.0;
            self.correct += f64::from(u8::from(c));
        }
        if let Some(c) = ok.confidence {
            self.conf_n += 1.0;
            self.conf_s += c;
            self.conf_q += c * c;
        }
        if let Some(e) = ok.entropy {
            self.ent_n += 1.0;
            self.ent_s += e;
        }
        let Some(cmp) = &ok.cmp else {
            self.excluded += 1.0;
            return;
        };
        self.compared += 1.0;
        self.agree += f64::from(u8::from(cmp.agree));
        if let Some(d) = cmp.drift {
            self.drift_n += 1.0;
            self.drift_s += d;
        }
        if let Some(d) = cmp.dconf {
            self.dconf_n += 1.0;
            self.dconf_s += d;
        }
        if let Some(d) = cmp.dent {
            self.dent_n += 1.0;
            self.dent_s += d;
        }
    }

    fn add(&mut self, o: &Acc) {
        self.runs += o.runs;
        self.failed += o.failed;
        self.excluded += o.excluded;
        self.compared += o.compared;
        self.agree += o.agree;
        self.labelled += o.labelled;
        self.correct += o.correct;
        self.drift_n += o.drift_n;
        self.drift_s += o.drift_s;
        self.conf_n += o.conf_n;
        self.conf_s += o.conf_s;
        self.conf_q += o.conf_q;
        self.dconf_n += o.dconf_n;
        self.dconf_s += o.dconf_s;
        self.dent_n += o.dent_n;
        self.dent_s += o.dent_s;
        self.ent_n += o.ent_n;
        self.ent_s += o.ent_s;
    }

    fn is_empty(&self) -> bool {
        self.runs == 0.0
    }

    /// Every metric, in [`METRICS`] order.
    fn metrics(&self) -> [Option<f64>; N_METRICS] {
        let esi = ratio(self.agree, self.compared);
        let conf = ratio(self.conf_s, self.conf_n);
        // Population variance over all (case, seed) confidences of the group.
        let var = conf.map(|m| (self.conf_q / self.conf_n - m * m).max(0.0));
        [
            esi,
            esi.map(|e| 1.0 - e),
            ratio(self.correct, self.labelled),
            ratio(self.drift_s, self.drift_n),
            var.map(|v| 1.0 - (v / 0.25).min(1.0)),
            conf,
            ratio(self.dconf_s, self.dconf_n),
            ratio(self.dent_s, self.dent_n),
            ratio(self.ent_s, self.ent_n),
            // One case's confidence shift; over cases, the mean of these (see `estimate_group`).
            ratio(self.dconf_s, self.dconf_n),
        ]
    }

    /// Per-case `(numerator, denominator)` of the ratio metrics, `None` for CSI (not a ratio).
    fn parts(&self, k: usize) -> Option<(f64, f64)> {
        match METRICS[k] {
            "esi" | "flip_rate" => Some((self.agree, self.compared)),
            "accuracy" => Some((self.correct, self.labelled)),
            "drift" => Some((self.drift_s, self.drift_n)),
            "confidence" => Some((self.conf_s, self.conf_n)),
            "delta_confidence" => Some((self.dconf_s, self.dconf_n)),
            "edm" => Some((self.dent_s, self.dent_n)),
            "entropy" => Some((self.ent_s, self.ent_n)),
            // Each case weighs 1: the case's mean shift.
            "confidence_shift" => (self.dconf_n > 0.0).then(|| (self.dconf_s / self.dconf_n, 1.0)),
            _ => None,
        }
    }
}

fn sum(accs: &[Acc]) -> Acc {
    let mut t = Acc::default();
    accs.iter().for_each(|a| t.add(a));
    t
}

/// Point estimates and 95% intervals of every metric over `per_case` (one accumulator per case
/// of the group, empty ones dropped): cluster Wilson (proportions), cluster t (means), and for
/// CSI a percentile bootstrap resampling cases with replacement (`bootstrap_iterations = 0`:
/// no CSI interval).
fn estimate_group(
    per_case: &[Acc],
    settings: &AnalysisSettings,
    label: &str,
) -> [Option<Estimate>; N_METRICS] {
    let cases: Vec<&Acc> = per_case.iter().filter(|a| !a.is_empty()).collect();
    let mut point = sum(per_case).metrics();
    let mut out = [None; N_METRICS];
    for k in 0..N_METRICS {
        let parts: Vec<(f64, f64)> = cases.iter().filter_map(|a| a.parts(k)).collect();
        let est = match METRICS[k] {
            "esi" | "accuracy" => intervals::proportion(&parts).map(|i| Estimate {
                value: i.value,
                lo: Some(i.lo),
                hi: Some(i.hi),
                n_eff: Some(i.n_eff),
            }),
            "flip_rate" => intervals::proportion(&parts).map(|i| Estimate {
                value: 1.0 - i.value,
                lo: Some(1.0 - i.hi),
                hi: Some(1.0 - i.lo),
                n_eff: Some(i.n_eff),
            }),
            "csi" => None,
            m => {
                let unit = !matches!(m, "edm" | "entropy");
                if m == "confidence_shift" {
                    let n: f64 = parts.iter().map(|p| p.1).sum();
                    point[k] = (n > 0.0).then(|| parts.iter().map(|p| p.0).sum::<f64>() / n);
                }
                point[k].map(|value| match intervals::mean(&parts, unit) {
                    Some(i) => Estimate {
                        value,
                        lo: Some(i.lo),
                        hi: Some(i.hi),
                        n_eff: Some(i.n_eff),
                    },
                    None => Estimate {
                        value,
                        lo: None,
                        hi: None,
                        n_eff: None,
                    },
                })
            }
        };
        out[k] = est;
    }
    // CSI: percentile bootstrap (a variance, not a ratio: no analytic interval).
    let csi = METRICS
        .iter()
        .position(|m| *m == "csi")
        .expect("csi is a metric");
    if let Some(value) = point[csi] {
        let b = settings.bootstrap_iterations;
        let mut reps = Vec::with_capacity(b);
        if b > 0 && !cases.is_empty() {
            let mut r = rng(settings.bootstrap_seed, label);
            let n = cases.len();
            for _ in 0..b {
                let mut t = Acc::default();
                for _ in 0..n {
                    t.add(cases[r.random_range(0..n)]);
                }
                if let Some(m) = t.metrics()[csi] {
                    reps.push(m);
                }
            }
        }
        reps.sort_by(f64::total_cmp);
        out[csi] = Some(Estimate {
            value,
            lo: percentile(&reps, 0.025),
            hi: percentile(&reps, 0.975),
            n_eff: None,
        });
    }
    out
}

fn named<T: Clone>(v: &[T; N_METRICS]) -> BTreeMap<String, T> {
    METRICS
        .iter()
        .zip(v)
        .map(|(k, x)| (k.to_string(), x.clone()))
        .collect()
}

/// Metrics of one cell over the cohort.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct CellMetrics {
    pub cell: usize,
    pub coords: Vec<usize>,
    pub values: Vec<AxisValue>,
    pub is_baseline: bool,
    /// Records of this cell.
    pub n: usize,
    pub ok: usize,
    pub failures: usize,
    /// Ok runs whose baseline run failed or is missing (excluded from comparisons).
    pub excluded: usize,
    /// Runs compared with their baseline (ESI denominator).
    pub compared: usize,
    pub cases: usize,
    /// One estimate (or `null`) per key of [`METRICS`].
    #[serde(flatten)]
    pub metrics: BTreeMap<String, Option<Estimate>>,
}

/// Baseline self-agreement across seeds.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct BaselineAgreement {
    /// Fraction of cases whose successful baseline answers are identical across all seeds, over
    /// cases with at least two successful baseline runs; `None` with fewer than two seeds.
    pub all_seeds: Option<Estimate>,
    /// Mean over those cases of the fraction of agreeing seed pairs.
    pub pairwise: Option<f64>,
    pub cases: usize,
    pub seeds: usize,
    pub threshold: f64,
    /// `all_seeds < threshold`.
    pub flagged: bool,
    /// Cases whose baseline answer changes with the seed (sorted).
    pub disagreeing_cases: Vec<String>,
}

/// A metric per level of one axis, pooled over the other axes.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct MarginalCurve {
    pub axis: String,
    pub axis_index: usize,
    pub values: Vec<AxisValue>,
    /// `"runs"`: each level pools every run of the cells at that level, i.e. the mean of the
    /// cell values weighted by their compared runs (equal weights when no run failed).
    pub weighting: String,
    /// Records per level.
    pub n: Vec<usize>,
    pub metrics: BTreeMap<String, Vec<Option<Estimate>>>,
}

/// A metric over a pair of axes, pooled over the others: `values[y][x]`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Slice {
    pub x_axis: String,
    pub y_axis: String,
    pub metric: String,
    pub values: Vec<Vec<Option<f64>>>,
}

/// Every metric on the full grid (row-major, the last axis fastest), plus curves and slices.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Surface {
    pub shape: Vec<usize>,
    pub grid: BTreeMap<String, Vec<Option<f64>>>,
    pub marginals: Vec<MarginalCurve>,
    pub slices: Vec<Slice>,
}

/// Monte Carlo summary of one cell (K seeds).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct McCell {
    pub cell: usize,
    /// Pooled counts of normalised answers over cases and seeds.
    pub answer_distribution: BTreeMap<String, usize>,
    /// Entropy (nats) of `answer_distribution`: how varied the cell's answers are, across cases
    /// and seeds together (`−Σ p ln p` over the pooled shares).
    pub answer_entropy: Option<f64>,
    /// Mean over cases of the entropy (nats) of the case's own answers across its seeds: 0 when
    /// every case answers the same under every seed (the Monte Carlo spread).
    pub seed_entropy: Option<f64>,
    /// Mean over cases of the share of the case's runs that give its most frequent answer (1: the
    /// seeds agree; 1/2 for a 1–1 split at K = 2). Needs no tie-break.
    pub seed_agreement: Option<f64>,
    /// Fraction of cases whose majority answer (strictly more runs than any other) equals their
    /// baseline majority answer, over the `majority_cases` cases where both have one.
    pub majority_agreement: Option<f64>,
    /// Cases compared for `majority_agreement`.
    pub majority_cases: usize,
    /// Cases left out of `majority_agreement` because their answers here or at the baseline are
    /// tied (no majority; never broken alphabetically).
    pub ties: usize,
    pub confidence_mean: Option<f64>,
    /// Population variance of the confidences of the cell's runs.
    pub confidence_var: Option<f64>,
    pub cases: usize,
}

/// One class's ESI and accuracy in one cell.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ClassCell {
    pub cell: usize,
    pub esi: Option<Estimate>,
    pub accuracy: Option<Estimate>,
}

/// Metrics restricted to the cases of one true label.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ClassBreakdown {
    pub label: String,
    pub cases: usize,
    pub cells: Vec<ClassCell>,
    pub cliffs: Vec<Cliff>,
    /// The ESI/accuracy cliff of this class with the smallest severity position ([`rank_axes`]);
    /// `None` when nothing breaks or the crossings share no scale.
    pub first_break: Option<Cliff>,
}

/// One case in one cell (a row of `cases.csv`).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct CaseCellRow {
    pub case_id: String,
    pub cell: usize,
    pub n: usize,
    pub failures: usize,
    pub compared: usize,
    pub metrics: BTreeMap<String, Option<f64>>,
}

/// Run counts of the whole sweep.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct RunTotals {
    pub records: usize,
    pub ok: usize,
    pub failed: usize,
    pub excluded: usize,
    pub compared: usize,
    /// cells × cases × seeds.
    pub planned: usize,
}

/// Everything computed from one sweep.
#[derive(Debug, Clone, PartialEq)]
pub struct Analysis {
    pub settings: AnalysisSettings,
    pub axes: Vec<Axis>,
    pub baseline_cell: usize,
    pub seeds: usize,
    pub runs: RunTotals,
    pub cells: Vec<CellMetrics>,
    pub self_agreement: BaselineAgreement,
    pub surface: Surface,
    pub gradients: Vec<Gradient>,
    /// Cohort cliffs first (axis, metric, direction order), then per-case ones.
    pub cliffs: Vec<Cliff>,
    /// Per cliff metric (`esi`, `accuracy`): the cohort crossings ranked on the severity presets
    /// ([`rank_axes`]).
    pub rankings: BTreeMap<String, Ranking>,
    pub montecarlo: Vec<McCell>,
    pub classes: Vec<ClassBreakdown>,
    pub case_cells: Vec<CaseCellRow>,
    pub refine: Vec<RefineRequest>,
}

/// Analyses an in-memory sweep. Pure; the result does not depend on the order of
/// `data.records`.
pub fn analyze(data: &SweepData) -> Result<Analysis, AnalysisError> {
    data.settings.validate().map_err(AnalysisError::Invalid)?;
    let baseline = data.baseline()?;
    let norm = Normalizer::new(&data.normalization)?;
    let mut b = RowBuilder::new(&data.cells, baseline, &data.cases, &data.seeds, &norm);
    let bad = |i: usize, m: String| AnalysisError::Invalid(format!("records[{i}]: {m}"));
    for (i, r) in data.records.iter().enumerate() {
        b.add_baseline(r).map_err(|m| bad(i, m))?;
    }
    let prepared: Vec<_> = data.records.par_iter().map(|r| b.prepare(r)).collect();
    for (i, p) in prepared.into_iter().enumerate() {
        b.commit(p.map_err(|m| bad(i, m))?).map_err(|m| bad(i, m))?;
    }
    Ok(analyze_rows(
        &data.axes,
        &data.cells,
        &data.cases,
        data.seeds.len(),
        &data.settings,
        baseline,
        &b.finish(),
    ))
}

/// The analysis proper, on rows sorted by (cell, case, seed).
pub(crate) fn analyze_rows(
    axes: &[Axis],
    cells: &[Cell],
    cases: &[Case],
    n_seeds: usize,
    settings: &AnalysisSettings,
    baseline: usize,
    rows: &Rows,
) -> Analysis {
    let nc = cases.len();
    // Per cell, per case.
    let mut cc: Vec<Vec<Acc>> = vec![vec![Acc::default(); nc]; cells.len()];
    for r in &rows.rows {
        cc[r.cell as usize][r.case as usize].add_row(r);
    }

    // Cells. Each estimate has its own RNG stream, so estimating in parallel and collecting in
    // order gives the same bytes as a sequential loop.
    let mut totals = Acc::default();
    for accs in &cc {
        totals.add(&sum(accs));
    }
    let cell_metrics: Vec<CellMetrics> = cells
        .par_iter()
        .map(|cell| {
            let accs = &cc[cell.index];
            let t = sum(accs);
            let est = estimate_group(accs, settings, &format!("cell/{}", cell.index));
            CellMetrics {
                cell: cell.index,
                coords: cell.coords.clone(),
                values: axes
                    .iter()
                    .zip(&cell.coords)
                    .map(|(a, &j)| a.values[j].clone())
                    .collect(),
                is_baseline: cell.index == baseline,
                n: t.runs as usize,
                ok: (t.runs - t.failed) as usize,
                failures: t.failed as usize,
                excluded: t.excluded as usize,
                compared: t.compared as usize,
                cases: accs.iter().filter(|a| !a.is_empty()).count(),
                metrics: named(&est),
            }
        })
        .collect();

    // Per case rows.
    let mut case_cells = Vec::new();
    for (ci, case) in cases.iter().enumerate() {
        for cell in cells {
            let a = &cc[cell.index][ci];
            if a.is_empty() {
                continue;
            }
            case_cells.push(CaseCellRow {
                case_id: case.id.clone(),
                cell: cell.index,
                n: a.runs as usize,
                failures: a.failed as usize,
                compared: a.compared as usize,
                metrics: named(&a.metrics()),
            });
        }
    }

    let self_agreement = self_agreement(rows, cases, baseline, n_seeds, settings);

    // Marginals: level_case[axis][level][case].
    let mut level_case: Vec<Vec<Vec<Acc>>> = axes
        .iter()
        .map(|a| vec![vec![Acc::default(); nc]; a.values.len()])
        .collect();
    for cell in cells {
        for (ax, &l) in cell.coords.iter().enumerate() {
            for ci in 0..nc {
                let a = cc[cell.index][ci];
                level_case[ax][l][ci].add(&a);
            }
        }
    }
    let mut marginals = Vec::new();
    for (ax, axis) in axes.iter().enumerate() {
        let mut metrics: BTreeMap<String, Vec<Option<Estimate>>> = BTreeMap::new();
        let mut n = Vec::new();
        let ests: Vec<_> = level_case[ax]
            .par_iter()
            .enumerate()
            .map(|(l, accs)| estimate_group(accs, settings, &format!("marginal/{}/{l}", axis.name)))
            .collect();
        for (accs, est) in level_case[ax].iter().zip(ests) {
            n.push(sum(accs).runs as usize);
            for (k, e) in METRICS.iter().zip(est) {
                metrics.entry(k.to_string()).or_default().push(e);
            }
        }
        marginals.push(MarginalCurve {
            axis: axis.name.clone(),
            axis_index: ax,
            values: axis.values.clone(),
            weighting: "runs".into(),
            n,
            metrics,
        });
    }

    // Grid.
    let shape: Vec<usize> = axes.iter().map(|a| a.values.len()).collect();
    let size: usize = shape.iter().product();
    let mut grid: BTreeMap<String, Vec<Option<f64>>> = METRICS
        .iter()
        .map(|k| (k.to_string(), vec![None; size]))
        .collect();
    for cm in &cell_metrics {
        let flat = cm.coords.iter().zip(&shape).fold(0, |f, (c, s)| f * s + c);
        for (k, v) in &cm.metrics {
            if let Some(g) = grid.get_mut(k) {
                g[flat] = v.map(|e| e.value);
            }
        }
    }

    // Slices for every pair of axes, metric-major (ESI first).
    let mut slices = Vec::new();
    let slice_metrics: Vec<usize> = (0..N_METRICS)
        .filter(|k| METRICS[*k] != "delta_confidence")
        .collect();
    let mut pair_accs = Vec::new();
    for x in 0..axes.len() {
        for y in x + 1..axes.len() {
            let mut m = vec![vec![Acc::default(); shape[x]]; shape[y]];
            for cell in cells {
                let t = sum(&cc[cell.index]);
                m[cell.coords[y]][cell.coords[x]].add(&t);
            }
            pair_accs.push((x, y, m));
        }
    }
    for &k in &slice_metrics {
        for (x, y, m) in &pair_accs {
            slices.push(Slice {
                x_axis: axes[*x].name.clone(),
                y_axis: axes[*y].name.clone(),
                metric: METRICS[k].to_string(),
                values: m
                    .iter()
                    .map(|row| row.iter().map(|a| a.metrics()[k]).collect())
                    .collect(),
            });
        }
    }

    // Gradients along numeric axes, from the marginal curves.
    let mut gradients = Vec::new();
    for (ax, axis) in axes.iter().enumerate() {
        let Some(xs) = axis
            .values
            .iter()
            .map(AxisValue::as_f64)
            .collect::<Option<Vec<f64>>>()
        else {
            continue;
        };
        let steps: Vec<f64> = (0..xs.len()).map(|i| i as f64).collect();
        for k in METRICS {
            let curve: Vec<Option<f64>> = marginals[ax].metrics[k]
                .iter()
                .map(|e| e.map(|e| e.value))
                .collect();
            gradients.push(Gradient {
                axis: axis.name.clone(),
                axis_index: ax,
                metric: k.to_string(),
                values: xs.clone(),
                per_unit: gradient_nonuniform(&xs, &curve),
                per_step: gradient_nonuniform(&steps, &curve),
                curve,
            });
        }
    }

    // Cliffs are read off each axis's line through the baseline: the cells at each of its
    // levels with every other axis at the baseline's coordinate, i.e. the effect of this
    // perturbation alone. (A marginal pools over the other axes, so its identity level already
    // carries their perturbations and cannot say where this one starts to break the model.)
    let base_coords = &cells
        .iter()
        .find(|c| c.index == baseline)
        .expect("the baseline is a cell")
        .coords;
    let by_coords: BTreeMap<&[usize], usize> = cells
        .iter()
        .map(|c| (c.coords.as_slice(), c.index))
        .collect();
    let lines: Vec<Vec<Option<usize>>> = axes
        .iter()
        .enumerate()
        .map(|(ax, a)| {
            (0..a.values.len())
                .map(|l| {
                    let mut k = base_coords.clone();
                    k[ax] = l;
                    by_coords.get(k.as_slice()).copied()
                })
                .collect()
        })
        .collect();
    let metrics_of: BTreeMap<usize, &CellMetrics> =
        cell_metrics.iter().map(|m| (m.cell, m)).collect();
    let th = settings.cliff_threshold;
    let scales: Vec<Option<SeverityScale>> = axes.iter().map(SeverityScale::of_axis).collect();
    let mut cliffs = Vec::new();
    for (ax, axis) in axes.iter().enumerate() {
        // Cases with a run somewhere on this line: the units a bootstrap resample draws.
        let members: Vec<usize> = (0..nc)
            .filter(|&ci| lines[ax].iter().flatten().any(|&c| !cc[c][ci].is_empty()))
            .collect();
        for k in CLIFF_METRICS {
            let curve: Vec<Option<f64>> = lines[ax]
                .iter()
                .map(|c| {
                    c.and_then(|c| metrics_of.get(&c)?.metrics.get(METRICS[k])?.as_ref())
                        .map(|e| e.value)
                })
                .collect();
            for mut cliff in cliffs_of_curve(axis, ax, METRICS[k], &curve, th, scales[ax].as_ref())
            {
                let mut r = rng(
                    settings.bootstrap_seed,
                    &format!("cliff/{}/{}/{:?}", axis.name, METRICS[k], cliff.direction),
                );
                add_uncertainty(
                    &mut cliff,
                    axis,
                    scales[ax].as_ref(),
                    &members,
                    |draw| {
                        lines[ax]
                            .iter()
                            .map(|c| {
                                let c = (*c)?;
                                let mut t = Acc::default();
                                draw.iter().for_each(|&i| t.add(&cc[c][i]));
                                t.metrics()[k]
                            })
                            .collect()
                    },
                    |ci| {
                        lines[ax]
                            .iter()
                            .map(|c| c.and_then(|c| cc[c][ci].metrics()[k]))
                            .collect()
                    },
                    settings.bootstrap_iterations,
                    &mut r,
                );
                cliffs.push(cliff);
            }
        }
    }
    let refine = refine_targets(axes, &cliffs, 1);
    let rankings: BTreeMap<String, Ranking> = CLIFF_METRICS
        .iter()
        .map(|&k| {
            let mine: Vec<Cliff> = cliffs
                .iter()
                .filter(|c| c.metric == METRICS[k])
                .cloned()
                .collect();
            (METRICS[k].to_string(), rank_axes(&mine, axes))
        })
        .collect();
    for (ci, case) in cases.iter().enumerate() {
        for (ax, axis) in axes.iter().enumerate() {
            for k in CLIFF_METRICS {
                let curve: Vec<Option<f64>> = lines[ax]
                    .iter()
                    .map(|c| c.and_then(|c| cc[c][ci].metrics()[k]))
                    .collect();
                if curve.iter().all(Option::is_none) {
                    continue;
                }
                for mut c in cliffs_of_curve(axis, ax, METRICS[k], &curve, th, scales[ax].as_ref())
                {
                    c.case_id = Some(case.id.clone());
                    cliffs.push(c);
                }
            }
        }
    }

    let montecarlo = if n_seeds > 1 {
        monte_carlo(rows, cells, baseline)
    } else {
        Vec::new()
    };

    // Per class.
    let labels: BTreeSet<&str> = cases.iter().filter_map(|c| c.label.as_deref()).collect();
    let mut classes = Vec::new();
    for label in labels {
        let members: Vec<usize> = (0..nc)
            .filter(|&i| cases[i].label.as_deref() == Some(label))
            .collect();
        let class_cells = cells
            .par_iter()
            .map(|cell| {
                let accs: Vec<Acc> = members.iter().map(|&i| cc[cell.index][i]).collect();
                let est = estimate_group(
                    &accs,
                    settings,
                    &format!("class/{label}/cell/{}", cell.index),
                );
                ClassCell {
                    cell: cell.index,
                    esi: est[0],
                    accuracy: est[2],
                }
            })
            .collect();
        let mut class_cliffs = Vec::new();
        for (ax, axis) in axes.iter().enumerate() {
            for k in CLIFF_METRICS {
                let curve: Vec<Option<f64>> = lines[ax]
                    .iter()
                    .map(|c| {
                        let c = (*c)?;
                        let mut t = Acc::default();
                        members.iter().for_each(|&i| t.add(&cc[c][i]));
                        t.metrics()[k]
                    })
                    .collect();
                for mut c in cliffs_of_curve(axis, ax, METRICS[k], &curve, th, scales[ax].as_ref())
                {
                    c.class = Some(label.to_string());
                    class_cliffs.push(c);
                }
            }
        }
        let first_break = first_break(&class_cliffs, axes).cloned();
        classes.push(ClassBreakdown {
            label: label.to_string(),
            cases: members.len(),
            cells: class_cells,
            cliffs: class_cliffs,
            first_break,
        });
    }

    Analysis {
        settings: settings.clone(),
        axes: axes.to_vec(),
        baseline_cell: baseline,
        seeds: n_seeds,
        runs: RunTotals {
            records: totals.runs as usize,
            ok: (totals.runs - totals.failed) as usize,
            failed: totals.failed as usize,
            excluded: totals.excluded as usize,
            compared: totals.compared as usize,
            planned: cells.len() * nc * n_seeds,
        },
        cells: cell_metrics,
        self_agreement,
        surface: Surface {
            shape,
            grid,
            marginals,
            slices,
        },
        gradients,
        cliffs,
        rankings,
        montecarlo,
        classes,
        case_cells,
        refine,
    }
}

/// The cliff that breaks first on the severity scale ([`rank_axes`]); `None` when nothing
/// breaks or the crossings share no scale (never by position along the grid, which depends on
/// how many levels were listed).
pub(crate) fn first_break<'a>(cliffs: &'a [Cliff], axes: &[Axis]) -> Option<&'a Cliff> {
    let first = rank_axes(cliffs, axes).first().cloned()?;
    cliffs.iter().find(|c| {
        c.level.is_some()
            && c.axis_index == first.axis_index
            && c.direction == first.direction
            && c.metric == first.metric
    })
}

fn self_agreement(
    rows: &Rows,
    cases: &[Case],
    baseline: usize,
    n_seeds: usize,
    settings: &AnalysisSettings,
) -> BaselineAgreement {
    let mut per_case: BTreeMap<u32, Vec<u32>> = BTreeMap::new();
    for r in rows.rows.iter().filter(|r| r.cell as usize == baseline) {
        if let Some(ok) = &r.ok {
            per_case.entry(r.case).or_default().push(ok.answer);
        }
    }
    let mut all = Vec::new();
    let mut pair = Vec::new();
    let mut disagreeing = Vec::new();
    for (case, answers) in &per_case {
        if answers.len() < 2 {
            continue;
        }
        let same = answers.iter().all(|a| *a == answers[0]);
        all.push(f64::from(u8::from(same)));
        if !same {
            disagreeing.push(cases[*case as usize].id.clone());
        }
        let (mut agree, mut total) = (0usize, 0usize);
        for i in 0..answers.len() {
            for j in i + 1..answers.len() {
                total += 1;
                agree += usize::from(answers[i] == answers[j]);
            }
        }
        pair.push(agree as f64 / total as f64);
    }
    disagreeing.sort();
    let mean = |v: &[f64]| (!v.is_empty()).then(|| v.iter().sum::<f64>() / v.len() as f64);
    // One yes/no per case: a cluster Wilson interval on the cases.
    let parts: Vec<(f64, f64)> = all.iter().map(|x| (*x, 1.0)).collect();
    let all_seeds = intervals::proportion(&parts).map(|i| Estimate {
        value: i.value,
        lo: Some(i.lo),
        hi: Some(i.hi),
        n_eff: Some(i.n_eff),
    });
    BaselineAgreement {
        flagged: all_seeds.is_some_and(|e| e.value < settings.self_agreement_threshold),
        all_seeds,
        pairwise: mean(&pair),
        cases: all.len(),
        seeds: n_seeds,
        threshold: settings.self_agreement_threshold,
        disagreeing_cases: disagreeing,
    }
}

/// Majority answer of a count map: the answer with strictly more runs than any other; `None`
/// when the top count is tied (a tie is reported as such, never broken by answer order).
fn majority(counts: &BTreeMap<u32, usize>) -> Option<u32> {
    let top = *counts.values().max()?;
    let mut at_top = counts.iter().filter(|(_, n)| **n == top);
    let (a, _) = at_top.next()?;
    at_top.next().is_none().then_some(*a)
}

/// Entropy (nats) of a distribution given by counts.
fn entropy<'a>(counts: impl Iterator<Item = &'a usize> + Clone) -> f64 {
    let total: usize = counts.clone().sum();
    let h = counts
        .filter(|n| **n > 0)
        .map(|n| {
            let p = *n as f64 / total as f64;
            -p * p.ln()
        })
        .sum::<f64>();
    h.max(0.0)
}

fn monte_carlo(rows: &Rows, cells: &[Cell], baseline: usize) -> Vec<McCell> {
    // (cell, case) → answer counts and confidences; rows are sorted by (cell, case, seed).
    type Group = (BTreeMap<u32, usize>, Vec<f64>);
    let mut groups: BTreeMap<(u32, u32), Group> = BTreeMap::new();
    for r in &rows.rows {
        if let Some(ok) = &r.ok {
            let g = groups.entry((r.cell, r.case)).or_default();
            *g.0.entry(ok.answer).or_default() += 1;
            if let Some(c) = ok.confidence {
                g.1.push(c);
            }
        }
    }
    // Per baseline case: its majority answer, or `None` for a tie.
    let base_major: BTreeMap<u32, Option<u32>> = groups
        .iter()
        .filter(|((cell, _), _)| *cell as usize == baseline)
        .map(|((_, case), (counts, _))| (*case, majority(counts)))
        .collect();
    cells
        .iter()
        .map(|cell| {
            let mut dist: BTreeMap<String, usize> = BTreeMap::new();
            let (mut ent_s, mut share_s, mut n_cases) = (0.0, 0.0, 0usize);
            let (mut agree, mut agree_n, mut ties) = (0usize, 0usize, 0usize);
            let mut confs = Vec::new();
            let c = cell.index as u32;
            for ((_, case), (counts, cf)) in groups.range((c, 0)..=(c, u32::MAX)) {
                let total: usize = counts.values().sum();
                for (a, n) in counts {
                    *dist.entry(rows.answers[*a as usize].clone()).or_default() += n;
                }
                ent_s += entropy(counts.values());
                share_s += *counts.values().max().unwrap_or(&0) as f64 / total as f64;
                n_cases += 1;
                match (majority(counts), base_major.get(case)) {
                    (Some(m), Some(Some(b))) => {
                        agree_n += 1;
                        agree += usize::from(m == *b);
                    }
                    (None, Some(_)) | (Some(_), Some(None)) => ties += 1,
                    (_, None) => {}
                }
                confs.extend_from_slice(cf);
            }
            let cm = (!confs.is_empty()).then(|| confs.iter().sum::<f64>() / confs.len() as f64);
            McCell {
                cell: cell.index,
                answer_entropy: (!dist.is_empty()).then(|| entropy(dist.values())),
                answer_distribution: dist,
                seed_entropy: (n_cases > 0).then(|| ent_s / n_cases as f64),
                seed_agreement: (n_cases > 0).then(|| share_s / n_cases as f64),
                majority_agreement: (agree_n > 0).then(|| agree as f64 / agree_n as f64),
                majority_cases: agree_n,
                ties,
                confidence_mean: cm,
                confidence_var: cm.map(|m| {
                    confs.iter().map(|c| (c - m) * (c - m)).sum::<f64>() / confs.len() as f64
                }),
                cases: n_cases,
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn majority_is_none_on_a_tie() {
        let counts = |v: &[(u32, usize)]| v.iter().copied().collect::<BTreeMap<u32, usize>>();
        assert_eq!(majority(&counts(&[(0, 1), (1, 1)])), None);
        assert_eq!(majority(&counts(&[(0, 2), (1, 2), (2, 1)])), None);
        assert_eq!(majority(&counts(&[(0, 1), (1, 2)])), Some(1));
        assert_eq!(majority(&counts(&[])), None);
    }

    #[test]
    fn entropy_of_a_split() {
        let h = entropy([10usize, 4, 2].iter());
        let p = [10.0 / 16.0, 4.0 / 16.0, 2.0 / 16.0];
        let want: f64 = p.iter().map(|p: &f64| -p * p.ln()).sum();
        assert!((h - want).abs() < 1e-12 && h > 0.9, "{h}");
        assert_eq!(entropy([3usize].iter()), 0.0);
    }
}
