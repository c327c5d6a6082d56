//! Reading sweep directories and writing the analysis artifacts.

use std::path::{Path, PathBuf};

use clarity_core::json::{self, to_canonical_string};
use clarity_core::{Axis, AxisValue, Case, Cell, Normalization, RunRecord, SCHEMA_VERSION};
use clarity_store::SweepRecords;
use rayon::prelude::*;
use serde::Serialize;
use serde_json::{Value, json};

use crate::analysis::{METRICS, RunTotals, analyze_rows, first_break};
use crate::data::{ManifestCheck, SourceInfo, SourceKind, validate_grid};
use crate::rows::RowBuilder;
use crate::verdicts::{self, Condition, Verdicts};
use crate::{Analysis, AnalysisError, AnalysisSettings, Cliff, Normalizer, SweepData, analyze};

/// The parts of `plan.json` the analysis reads.
struct Plan {
    axes: Vec<Axis>,
    cells: Vec<Cell>,
    cases: Vec<Case>,
    seeds: Vec<u64>,
    normalization: Normalization,
    settings: AnalysisSettings,
    plan_hash: Option<String>,
}

fn read_json(path: &Path) -> Result<Value, AnalysisError> {
    let text = fs_err::read_to_string(path)?;
    serde_json::from_str(&text).map_err(|source| AnalysisError::Json {
        path: path.to_path_buf(),
        source,
    })
}

fn typed<T: serde::de::DeserializeOwned>(
    path: &Path,
    key: &str,
    v: Option<&Value>,
) -> Result<T, AnalysisError> {
    let v = v.ok_or_else(|| AnalysisError::Shape {
        path: path.to_path_buf(),
        key: key.into(),
        expected: "present".into(),
    })?;
    serde_json::from_value(v.clone()).map_err(|e| AnalysisError::Shape {
        path: path.to_path_buf(),
        key: key.into(),
        expected: e.to_string(),
    })
}

fn read_plan(dir: &Path) -> Result<Plan, AnalysisError> {
    let path = dir.join("plan.json");
    let plan = read_json(&path)?;
    let p = &path;
    let axes: Vec<Axis> = typed(p, "axes", plan.get("axes"))?;
    let cells: Vec<Cell> = typed(p, "cells", plan.get("cells"))?;
    let cases: Vec<Case> = typed(p, "cases", plan.get("cases"))?;
    let seeds: Vec<u64> = typed(p, "seeds", plan.get("seeds"))?;
    let normalization = match plan.get("normalization") {
        Some(v) => typed(p, "normalization", Some(v))?,
        None => Normalization::default(),
    };
    let settings: AnalysisSettings = match plan.get("analysis") {
        Some(v) if !v.is_null() => typed(p, "analysis", Some(v))?,
        _ => AnalysisSettings::default(),
    };
    settings.validate().map_err(|e| AnalysisError::Shape {
        path: path.clone(),
        key: "analysis".into(),
        expected: e,
    })?;
    validate_grid(&axes, &cells).map_err(|e| AnalysisError::Shape {
        path: path.clone(),
        key: "cells".into(),
        expected: e.to_string(),
    })?;
    for (i, a) in axes.iter().enumerate() {
        if a.is_numeric() {
            let xs: Vec<f64> = a.values.iter().filter_map(AxisValue::as_f64).collect();
            if xs.windows(2).any(|w| w[0] >= w[1]) || xs.iter().any(|x| !x.is_finite()) {
                return Err(AnalysisError::Shape {
                    path: path.clone(),
                    key: format!("axes[{i}].values"),
                    expected: "finite numbers in strictly increasing order".into(),
                });
            }
        }
    }
    Ok(Plan {
        axes,
        cells,
        cases,
        seeds,
        normalization,
        settings,
        plan_hash: plan
            .get("plan_hash")
            .and_then(Value::as_str)
            .map(str::to_string),
    })
}

/// Where a Clarity sweep's records are: the one reader of every format
/// ([`clarity_store::SweepRecords`]: the Parquet table, a format-1 `observations.jsonl`, or
/// the journal of an unfinished sweep).
fn journal_path(dir: &Path) -> Result<SweepRecords, AnalysisError> {
    Ok(SweepRecords::open(dir)?)
}

/// Records read per parallel batch.
const CHUNK: usize = 4096;

/// Reads a sweep's records in batches of [`CHUNK`] `(row or line number, record)`, so only one
/// batch is in memory at a time.
fn chunks(
    src: &SweepRecords,
    mut f: impl FnMut(&[(usize, RunRecord)]) -> Result<(), AnalysisError>,
) -> Result<(), AnalysisError> {
    let mut batch: Vec<(usize, RunRecord)> = Vec::with_capacity(CHUNK);
    src.for_each(|n, rec| {
        batch.push((n, rec));
        if batch.len() == CHUNK {
            f(&batch)?;
            batch.clear();
        }
        Ok::<(), AnalysisError>(())
    })?;
    if !batch.is_empty() {
        f(&batch)?;
    }
    Ok(())
}

/// Calls `f` on every record of a sweep's records in order.
fn stream_records(
    src: &SweepRecords,
    mut f: impl FnMut(&RunRecord) -> Result<(), String>,
) -> Result<(), AnalysisError> {
    let path = src.path();
    chunks(src, |batch| {
        for (n, r) in batch {
            f(r).map_err(|message| AnalysisError::Line {
                path: path.to_path_buf(),
                line: *n,
                message,
            })?;
        }
        Ok(())
    })
}

/// Second pass over the records: prepare rows in parallel, commit them in order.
fn stream_rows(src: &SweepRecords, b: &mut RowBuilder<'_>) -> Result<(), AnalysisError> {
    let path = src.path();
    let line_err = |n: usize, message: String| AnalysisError::Line {
        path: path.to_path_buf(),
        line: n,
        message,
    };
    chunks(src, |batch| {
        let prepared: Vec<Result<_, AnalysisError>> = batch
            .par_iter()
            .map(|(n, r)| b.prepare(r).map_err(|m| line_err(*n, m)))
            .collect();
        for ((n, _), p) in batch.iter().zip(prepared) {
            b.commit(p?).map_err(|m| line_err(*n, m))?;
        }
        Ok(())
    })
}

/// Loads a Clarity sweep directory (`plan.json` + `observations.parquet`, or the
/// `observations.jsonl` of format 1) into memory.
pub fn load_clarity_dir(dir: &Path) -> Result<SweepData, AnalysisError> {
    let plan = read_plan(dir)?;
    let mut records = Vec::new();
    stream_records(&journal_path(dir)?, |r| {
        records.push(r.clone());
        Ok(())
    })?;
    Ok(SweepData {
        axes: plan.axes,
        cells: plan.cells,
        cases: plan.cases,
        seeds: plan.seeds,
        normalization: plan.normalization,
        settings: plan.settings,
        records,
        source: SourceInfo {
            kind: SourceKind::Clarity,
            dir: dir.to_path_buf(),
            plan_hash: plan.plan_hash,
            manifest_checks: Vec::new(),
            failed_runs: Vec::new(),
        },
    })
}

/// Loads a sweep of the earlier Python CLARITY orchestrator (SPEC §12): `sweep_manifest.json`
/// and `runs/<name>/{spec.json, manifest.json, trace_pack.jsonl}`. Every run's `manifest.json`
/// is hashed (SHA-256) and compared with the sweep manifest; mismatches are listed in
/// [`SourceInfo::manifest_checks`], not errors. A run whose artifacts are missing or malformed
/// becomes a failed record naming the file and line. The baseline is the identity point of the
/// axes when it is in the grid; `baseline_override` (`[(axis, value)]`) names it otherwise.
pub fn load_r2l_dir(
    dir: &Path,
    baseline_override: Option<&[(String, String)]>,
) -> Result<SweepData, AnalysisError> {
    crate::r2l::load(dir, baseline_override)
}

/// What kind of sweep directory `dir` is.
pub fn detect(dir: &Path) -> Result<SourceKind, AnalysisError> {
    if dir.join("plan.json").is_file() {
        Ok(SourceKind::Clarity)
    } else if dir.join("sweep_manifest.json").is_file() {
        Ok(SourceKind::R2l)
    } else {
        Err(AnalysisError::UnknownDir(dir.to_path_buf()))
    }
}

/// Loads either kind of sweep directory (see [`detect`]). `baseline_override` applies to R2L
/// sweeps only (a Clarity plan marks its baseline cell).
pub fn load_dir(
    dir: &Path,
    baseline_override: Option<&[(String, String)]>,
) -> Result<SweepData, AnalysisError> {
    match detect(dir)? {
        SourceKind::Clarity => load_clarity_dir(dir),
        SourceKind::R2l => load_r2l_dir(dir, baseline_override),
    }
}

/// Options of [`analyze_dir`].
#[derive(Debug, Clone, Default)]
pub struct AnalyzeOptions {
    /// Where to write the artifacts (default: the sweep directory itself).
    pub output: Option<PathBuf>,
    /// R2L only: the baseline cell as `(axis, value)` pairs.
    pub baseline: Option<Vec<(String, String)>>,
    /// Overrides of the plan's `analysis` settings.
    pub bootstrap_iterations: Option<usize>,
    pub bootstrap_seed: Option<u64>,
    pub cliff_threshold: Option<f64>,
    pub self_agreement_threshold: Option<f64>,
    /// Conditions to judge (`--fail-if`); their verdicts are returned in
    /// [`AnalysisSummary::gates`], not written (artifacts do not depend on them). A condition
    /// naming an axis the sweep lacks is an error, before anything is written.
    pub gates: Vec<Condition>,
}

impl AnalyzeOptions {
    fn apply(&self, s: &mut AnalysisSettings) -> Result<(), AnalysisError> {
        if let Some(v) = self.bootstrap_iterations {
            s.bootstrap_iterations = v;
        }
        if let Some(v) = self.bootstrap_seed {
            s.bootstrap_seed = v;
        }
        if let Some(v) = self.cliff_threshold {
            s.cliff_threshold = v;
        }
        if let Some(v) = self.self_agreement_threshold {
            s.self_agreement_threshold = v;
        }
        s.validate().map_err(AnalysisError::Invalid)
    }
}

/// The headline of an analysis, for the CLI to print.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct AnalysisSummary {
    pub source: SourceKind,
    pub output_dir: PathBuf,
    /// Artifact file names written, sorted.
    pub files: Vec<String>,
    pub runs: RunTotals,
    /// The ESI cliff that comes earliest along its axis (`None`: ESI never falls below the
    /// threshold).
    pub first_break: Option<Cliff>,
    pub cliff_threshold: f64,
    pub baseline_self_agreement: Option<f64>,
    pub self_agreement_flagged: bool,
    /// Lowest cell ESI (non-baseline cells).
    pub min_esi: Option<f64>,
    pub manifest_mismatches: Vec<ManifestCheck>,
    /// R2L only: the failed runs and why (empty for a Clarity sweep, whose failures are in
    /// its observations).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub failed_runs: Vec<crate::data::FailedRun>,
    /// The headline lines joined by newlines (the same lines as metrics.json `headline`).
    pub headline: String,
    /// The cohort verdicts (metrics.json `verdicts`).
    pub verdicts: Verdicts,
    /// One verdict per [`AnalyzeOptions::gates`] condition, in order.
    pub gates: Vec<Verdicts>,
}

/// Loads `dir` (either kind), analyses it and writes the artifacts (into `opts.output` or `dir`).
/// A Clarity journal is streamed twice (baseline runs, then all runs) rather than held in
/// memory. Every file is rendered before any is written; each is written to a temporary file
/// and renamed, so existing artifacts are replaced only by complete new ones.
pub fn analyze_dir(dir: &Path, opts: &AnalyzeOptions) -> Result<AnalysisSummary, AnalysisError> {
    let (analysis, source, normalization) = match detect(dir)? {
        SourceKind::Clarity => {
            let mut plan = read_plan(dir)?;
            opts.apply(&mut plan.settings)?;
            let baseline = validate_grid(&plan.axes, &plan.cells)?;
            let norm = Normalizer::new(&plan.normalization)?;
            let path = journal_path(dir)?;
            let mut b = RowBuilder::new(&plan.cells, baseline, &plan.cases, &plan.seeds, &norm);
            stream_records(&path, |r| b.add_baseline(r))?;
            stream_rows(&path, &mut b)?;
            let rows = b.finish();
            let a = analyze_rows(
                &plan.axes,
                &plan.cells,
                &plan.cases,
                plan.seeds.len(),
                &plan.settings,
                baseline,
                &rows,
            );
            let source = SourceInfo {
                kind: SourceKind::Clarity,
                dir: dir.to_path_buf(),
                plan_hash: plan.plan_hash,
                manifest_checks: Vec::new(),
                failed_runs: Vec::new(),
            };
            (a, source, plan.normalization)
        }
        SourceKind::R2l => {
            let mut data = load_r2l_dir(dir, opts.baseline.as_deref())?;
            opts.apply(&mut data.settings)?;
            let a = analyze(&data)?;
            (a, data.source, data.normalization)
        }
    };
    let refined = read_refined(dir)?;
    let gates = opts
        .gates
        .iter()
        .map(|c| verdicts::judge(&analysis, c, &refined))
        .collect::<Result<Vec<_>, _>>()
        .map_err(AnalysisError::Invalid)?;
    let out = opts.output.clone().unwrap_or_else(|| dir.to_path_buf());
    let files = render_with(&analysis, &source, &normalization, &refined)?;
    fs_err::create_dir_all(&out)?;
    write_all(&out, &files)?;
    let mut s = summary(&analysis, &source, out, &files, &refined);
    s.gates = gates;
    Ok(s)
}

/// The refined cliffs of `refine.json` in `dir` (`clarity run --refine`); none without the file.
fn read_refined(dir: &Path) -> Result<Vec<verdicts::Refined>, AnalysisError> {
    let path = dir.join("refine.json");
    if !path.is_file() {
        return Ok(Vec::new());
    }
    Ok(verdicts::refined_from_json(&read_json(&path)?))
}

/// Renders every artifact in memory (no refined cliffs): see [`render_with`].
pub fn render(
    a: &Analysis,
    source: &SourceInfo,
    normalization: &Normalization,
) -> Result<Vec<(String, Vec<u8>)>, AnalysisError> {
    render_with(a, source, normalization, &[])
}

/// Renders every artifact in memory: `(file name, bytes)`; `refined`: the cliffs of
/// `refine.json`, quoted by the verdicts and the headline.
pub fn render_with(
    a: &Analysis,
    source: &SourceInfo,
    normalization: &Normalization,
    refined: &[verdicts::Refined],
) -> Result<Vec<(String, Vec<u8>)>, AnalysisError> {
    let s = &a.settings;
    let cohort = verdicts::cohort(a, refined);
    let headline = verdicts::headline(a, &cohort, source.mismatches().count());
    let ser = |file: &str, v: &Value| -> Result<(String, Vec<u8>), AnalysisError> {
        to_canonical_string(v)
            .map(|t| (file.to_string(), t.into_bytes()))
            .map_err(|e| AnalysisError::Serialize {
                file: file.into(),
                message: e.to_string(),
            })
    };
    let val = |file: &str, v: &dyn erased::Ser| -> Result<Value, AnalysisError> {
        v.to_value().map_err(|message| AnalysisError::Serialize {
            file: file.into(),
            message,
        })
    };
    let mismatches: Vec<&ManifestCheck> = source.mismatches().collect();
    let src = json!({
        "kind": source.kind,
        "plan_hash": source.plan_hash,
        "manifest_checks": val("metrics.json", &source.manifest_checks)?,
        "manifest_mismatches": mismatches.len(),
    });
    // R2L failure reasons (absent when none failed, so a Clarity sweep's metrics.json is as before).
    let mut src = src;
    if !source.failed_runs.is_empty() {
        src["failed_runs"] = val("metrics.json", &source.failed_runs)?;
    }
    let axes: Vec<Value> = a
        .axes
        .iter()
        .map(|ax| {
            json!({
                "name": ax.name,
                "values": val("metrics.json", &ax.values).unwrap_or(Value::Null),
                "identity": val("metrics.json", &ax.identity).unwrap_or(Value::Null),
                "numeric": ax.is_numeric(),
                "unit": ax.unit,
            })
        })
        .collect();
    let bootstrap = json!({
        "intervals": {
            "esi, flip_rate, accuracy, baseline self-agreement": "cluster Wilson score interval on n_eff = runs / design effect (per-case residuals, clamped so cases <= n_eff <= runs), Korn-Graubard df correction (t with cases - 1 df)",
            "drift, confidence, delta_confidence, confidence_shift, edm, entropy": "cluster (linearisation) Student-t interval over cases; [0, 1] metrics without spread get the Wilson bound on the cases",
            "csi": "percentile bootstrap over cases (below)",
        },
        "method": "percentile",
        "interval": 0.95,
        "quantile": "linear interpolation between order statistics (type 7)",
        "resampled": "cases, with replacement",
        "iterations": s.bootstrap_iterations,
        "seed": s.bootstrap_seed,
        "rng": "ChaCha8 seeded from BLAKE3(seed, estimate label)",
    });
    let metrics = json!({
        "schema_version": SCHEMA_VERSION,
        "kind": "clarity.metrics",
        "source": src,
        "normalization": val("metrics.json", normalization)?,
        "settings": val("metrics.json", s)?,
        "bootstrap": bootstrap,
        "esi_threshold": s.cliff_threshold,
        "baseline_cell": a.baseline_cell,
        "baseline_self_agreement": val("metrics.json", &a.self_agreement.all_seeds)?,
        "self_agreement": val("metrics.json", &a.self_agreement)?,
        "axes": axes,
        "metrics": METRICS,
        "runs": val("metrics.json", &a.runs)?,
        "cells": val("metrics.json", &a.cells)?,
        "per_class": val("metrics.json", &a.classes)?,
        "verdicts": val("metrics.json", &cohort)?,
        "headline": headline,
    });
    let surface = json!({
        "schema_version": SCHEMA_VERSION,
        "kind": "clarity.surface",
        "axes": a.axes.iter().map(|x| x.name.clone()).collect::<Vec<_>>(),
        "shape": a.surface.shape,
        "layout": "row-major, the last axis fastest",
        "grid": val("surface.json", &a.surface.grid)?,
        "marginals": val("surface.json", &a.surface.marginals)?,
        "slices": val("surface.json", &a.surface.slices)?,
    });
    let gradients = json!({
        "schema_version": SCHEMA_VERSION,
        "kind": "clarity.gradients",
        "method": "three-point non-uniform central difference inside, one-sided at the ends, on the marginal curves",
        "gradients": val("gradients.json", &a.gradients)?,
    });
    let esi_cohort: Vec<Cliff> = a
        .cliffs
        .iter()
        .filter(|c| c.case_id.is_none() && c.metric == "esi")
        .cloned()
        .collect();
    let cliffs = json!({
        "schema_version": SCHEMA_VERSION,
        "kind": "clarity.cliffs",
        "threshold": s.cliff_threshold,
        "first_break": val("cliffs.json", &first_break(&esi_cohort, &a.axes))?,
        "ranking": val("cliffs.json", &a.rankings)?,
        "cliffs": val("cliffs.json", &a.cliffs)?,
        "refine": val("cliffs.json", &a.refine)?,
    });
    let mc = json!({
        "schema_version": SCHEMA_VERSION,
        "kind": "clarity.montecarlo",
        "k": a.seeds,
        "entropy_unit": "nats",
        "note": if a.seeds > 1 { Value::Null } else { json!("one seed per cell: no Monte Carlo statistics") },
        "cells": val("montecarlo.json", &a.montecarlo)?,
    });
    let mut files = vec![
        ser("metrics.json", &metrics)?,
        ser("surface.json", &surface)?,
        ser("gradients.json", &gradients)?,
        ser("cliffs.json", &cliffs)?,
        ser("montecarlo.json", &mc)?,
    ];
    files.push(("metrics.csv".into(), metrics_csv(a)?));
    files.push(("cases.csv".into(), cases_csv(a)?));
    Ok(files)
}

/// Serialising through a trait object without naming every type.
mod erased {
    pub trait Ser {
        fn to_value(&self) -> Result<serde_json::Value, String>;
    }
    impl<T: serde::Serialize> Ser for T {
        fn to_value(&self) -> Result<serde_json::Value, String> {
            // Refuse NaN here too: serde_json would turn it into null silently.
            clarity_core::json::to_canonical_value(self).map_err(|e| e.to_string())
        }
    }
}

fn fmt_opt(x: Option<f64>) -> String {
    x.map(|v| json::format_num(json::round(v)))
        .unwrap_or_default()
}

fn csv_err(file: &str, e: impl std::fmt::Display) -> AnalysisError {
    AnalysisError::Csv {
        file: file.into(),
        message: e.to_string(),
    }
}

/// Every CSV cell goes through [`clarity_core::csv_cell::formula_safe`]: case ids, file names
/// and axis labels come from untrusted input.
fn safe_cells(row: &[String]) -> impl Iterator<Item = String> + '_ {
    row.iter()
        .map(|c| clarity_core::csv_cell::formula_safe(c).into_owned())
}

fn metrics_csv(a: &Analysis) -> Result<Vec<u8>, AnalysisError> {
    let mut w = csv::Writer::from_writer(Vec::new());
    let mut head: Vec<String> = vec!["cell".into(), "is_baseline".into()];
    head.extend(a.axes.iter().map(|x| x.name.clone()));
    head.extend(
        ["n", "ok", "failures", "excluded", "compared", "cases"]
            .iter()
            .map(|s| s.to_string()),
    );
    for m in METRICS {
        head.push(m.to_string());
        head.push(format!("{m}_lo"));
        head.push(format!("{m}_hi"));
    }
    w.write_record(safe_cells(&head))
        .map_err(|e| csv_err("metrics.csv", e))?;
    for c in &a.cells {
        let mut row: Vec<String> = vec![c.cell.to_string(), c.is_baseline.to_string()];
        row.extend(c.values.iter().map(AxisValue::label));
        row.extend(
            [c.n, c.ok, c.failures, c.excluded, c.compared, c.cases]
                .iter()
                .map(|x| x.to_string()),
        );
        for m in METRICS {
            let e = c.metrics.get(m).copied().flatten();
            row.push(fmt_opt(e.map(|e| e.value)));
            row.push(fmt_opt(e.and_then(|e| e.lo)));
            row.push(fmt_opt(e.and_then(|e| e.hi)));
        }
        w.write_record(safe_cells(&row))
            .map_err(|e| csv_err("metrics.csv", e))?;
    }
    w.into_inner().map_err(|e| csv_err("metrics.csv", e))
}

fn cases_csv(a: &Analysis) -> Result<Vec<u8>, AnalysisError> {
    let mut w = csv::Writer::from_writer(Vec::new());
    let mut head: Vec<String> = vec!["case_id".into(), "cell".into()];
    head.extend(a.axes.iter().map(|x| x.name.clone()));
    head.extend(["n", "failures", "compared"].iter().map(|s| s.to_string()));
    head.extend(METRICS.iter().map(|s| s.to_string()));
    w.write_record(safe_cells(&head))
        .map_err(|e| csv_err("cases.csv", e))?;
    for r in &a.case_cells {
        let mut row = vec![r.case_id.clone(), r.cell.to_string()];
        row.extend(a.cells[r.cell].values.iter().map(AxisValue::label));
        row.extend([r.n, r.failures, r.compared].iter().map(|x| x.to_string()));
        row.extend(
            METRICS
                .iter()
                .map(|m| fmt_opt(r.metrics.get(*m).copied().flatten())),
        );
        w.write_record(safe_cells(&row))
            .map_err(|e| csv_err("cases.csv", e))?;
    }
    w.into_inner().map_err(|e| csv_err("cases.csv", e))
}

/// Writes each file to a hidden temporary sibling, syncs it, then renames them all; on error the
/// temporaries are removed and existing files are untouched.
fn write_all(out: &Path, files: &[(String, Vec<u8>)]) -> Result<(), AnalysisError> {
    let tmp = |name: &str| out.join(format!(".{name}.clarity-tmp"));
    let result = (|| -> Result<(), AnalysisError> {
        for (name, bytes) in files {
            use std::io::Write as _;
            let mut f = fs_err::File::create(tmp(name))?;
            f.write_all(bytes)?;
            f.sync_all()?;
        }
        for (name, _) in files {
            fs_err::rename(tmp(name), out.join(name))?;
        }
        Ok(())
    })();
    if result.is_err() {
        for (name, _) in files {
            let _ = fs_err::remove_file(tmp(name));
        }
    }
    result
}

fn summary(
    a: &Analysis,
    source: &SourceInfo,
    output_dir: PathBuf,
    files: &[(String, Vec<u8>)],
    refined: &[verdicts::Refined],
) -> AnalysisSummary {
    let esi: Vec<Cliff> = a
        .cliffs
        .iter()
        .filter(|c| c.case_id.is_none() && c.metric == "esi")
        .cloned()
        .collect();
    let fb = first_break(&esi, &a.axes).cloned();
    let min_esi = a
        .cells
        .iter()
        .filter(|c| !c.is_baseline)
        .filter_map(|c| c.metrics.get("esi").copied().flatten())
        .map(|e| e.value)
        .min_by(f64::total_cmp);
    let mismatches: Vec<ManifestCheck> = source.mismatches().cloned().collect();
    // The same computation as metrics.json's `verdicts` and `headline` (one source).
    let cohort = verdicts::cohort(a, refined);
    let h = verdicts::headline(a, &cohort, mismatches.len()).join("\n");
    let sa = &a.self_agreement;
    let mut names: Vec<String> = files.iter().map(|(n, _)| n.clone()).collect();
    names.sort();
    AnalysisSummary {
        source: source.kind,
        output_dir,
        files: names,
        runs: a.runs,
        first_break: fb,
        cliff_threshold: a.settings.cliff_threshold,
        baseline_self_agreement: sa.all_seeds.map(|e| e.value),
        self_agreement_flagged: sa.flagged,
        min_esi,
        manifest_mismatches: mismatches,
        failed_runs: source.failed_runs.clone(),
        headline: h,
        verdicts: cohort,
        gates: Vec::new(),
    }
}
