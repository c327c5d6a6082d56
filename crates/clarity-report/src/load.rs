//! Fills [`ReportData`] from a sweep directory (a Clarity sweep or an imported R2L sweep).
//!
//! The sweep itself (axes, cells, cases, seeds, normalisation, run records) is loaded by
//! [`clarity_analysis::io::load_dir`], the same loader the analysis used, and answers are
//! compared with its [`clarity_analysis::Normalizer`]. The analysis artifacts `metrics.json`
//! (required), `surface.json`, `gradients.json`, `cliffs.json` and `montecarlo.json` are read by
//! their documented shape (docs/analysis.md) through `serde_json::Value`, so a mismatch names the
//! file and key; `plan.json` gives the adapter identity and tool version; `bundle.json` is hashed
//! for the provenance.

use std::collections::BTreeMap;
use std::path::Path;

use clarity_analysis::{Normalizer, SourceKind, SweepData};
use clarity_core::{Axis, Cell, RunRecord};
use clarity_image::Image;
use serde_json::Value;
use sha2::Digest as _;

use crate::ReportError;
use crate::model::*;
use crate::thumbs::thumbnail;

/// Supplies the images a run saw, so the report can show before/after thumbnails. The sweep
/// directory does not store perturbed images; the CLI regenerates them (input image + recipe via
/// `clarity_perturb::Recipe::apply(image, seed, case_id)`).
pub trait ThumbnailSource {
    /// The image the model saw for `case_id` in `cell` with `seed` (for the baseline cell, the
    /// unperturbed input). `None` when it cannot be produced.
    fn image(&self, case_id: &str, cell: &Cell, seed: u64) -> Option<Image>;
}

/// Any `Fn(case_id, cell, seed) -> Option<Image>` is a thumbnail source.
impl<F> ThumbnailSource for F
where
    F: Fn(&str, &Cell, u64) -> Option<Image>,
{
    fn image(&self, case_id: &str, cell: &Cell, seed: u64) -> Option<Image> {
        self(case_id, cell, seed)
    }
}

/// What the loader needs beyond the directory.
pub struct LoadOptions<'a> {
    pub thumbnails: Option<&'a dyn ThumbnailSource>,
    pub max_worst_cases: usize,
    pub max_case_rows: usize,
}

fn read_json(path: &Path) -> Result<Value, ReportError> {
    let text = fs_err::read_to_string(path)?;
    serde_json::from_str(&text).map_err(|source| ReportError::Json {
        path: path.to_path_buf(),
        source,
    })
}

fn read_optional(path: &Path) -> Result<Option<Value>, ReportError> {
    if path.exists() {
        read_json(path).map(Some)
    } else {
        Ok(None)
    }
}

pub(crate) fn shape(path: &Path, key: &str, expected: &str) -> ReportError {
    ReportError::Shape {
        path: path.to_path_buf(),
        key: key.to_string(),
        expected: expected.to_string(),
    }
}

/// An estimate: a number, or `{value|mean, lo|ci_lo|ci_low, hi|ci_hi|ci_high}`, or
/// `{value, ci: [lo, hi]}`; `null` is "undefined".
pub(crate) fn estimate(path: &Path, key: &str, v: &Value) -> Result<Option<Estimate>, ReportError> {
    let bad = || shape(path, key, "a number, null, or an object {value, lo, hi}");
    match v {
        Value::Null => Ok(None),
        Value::Number(n) => Ok(Some(Estimate::point(n.as_f64().ok_or_else(bad)?))),
        Value::Object(o) => {
            let value = ["value", "mean", "estimate", "point"]
                .iter()
                .find_map(|k| o.get(*k))
                .ok_or_else(bad)?;
            let Some(value) = value.as_f64() else {
                return if value.is_null() {
                    Ok(None)
                } else {
                    Err(bad())
                };
            };
            let pick = |keys: &[&str]| keys.iter().find_map(|k| o.get(*k)).and_then(Value::as_f64);
            let (mut lo, mut hi) = (
                pick(&["lo", "ci_lo", "ci_low", "lower"]),
                pick(&["hi", "ci_hi", "ci_high", "upper"]),
            );
            if let Some(Value::Array(ci)) = o.get("ci")
                && ci.len() == 2
            {
                lo = ci[0].as_f64();
                hi = ci[1].as_f64();
            }
            Ok(Some(Estimate { value, lo, hi }))
        }
        _ => Err(bad()),
    }
}

pub(crate) fn opt_f64(v: Option<&Value>) -> Option<f64> {
    v.and_then(|x| match x {
        Value::Object(_) => x
            .get("value")
            .or_else(|| x.get("mean"))
            .and_then(Value::as_f64),
        _ => x.as_f64(),
    })
}

fn axis_index(axes: &[Axis], path: &Path, key: &str, v: &Value) -> Result<usize, ReportError> {
    match v {
        Value::Number(n) => n
            .as_u64()
            .map(|i| i as usize)
            .filter(|i| *i < axes.len())
            .ok_or_else(|| shape(path, key, "an axis index within the plan's axes")),
        Value::String(s) => axes
            .iter()
            .position(|a| &a.name == s)
            .ok_or_else(|| shape(path, key, &format!("an axis name of the plan, got `{s}`"))),
        _ => Err(shape(path, key, "an axis name or index")),
    }
}

/// `axis=value, …` of the axes not at their identity (`baseline` when none): how the report,
/// the console and the API name a cell.
pub fn cell_label(axes: &[Axis], cell: &Cell) -> String {
    let parts: Vec<String> = axes
        .iter()
        .zip(&cell.coords)
        .filter(|(a, c)| a.values.get(**c) != Some(&a.identity))
        .map(|(a, c)| {
            format!(
                "{}={}",
                a.name,
                a.values.get(*c).map(|v| v.label()).unwrap_or_default()
            )
        })
        .collect();
    if parts.is_empty() {
        "baseline".into()
    } else {
        parts.join(", ")
    }
}

/// Severity rank of a cell: sum of its distances from identity in level steps (mildest first).
fn severity(axes: &[Axis], cell: &Cell) -> usize {
    axes.iter()
        .zip(&cell.coords)
        .map(|(a, c)| {
            let id = a.values.iter().position(|v| v == &a.identity).unwrap_or(0);
            c.abs_diff(id)
        })
        .sum()
}

/// Loads everything the report shows from `dir`.
pub fn load(dir: &Path, opts: &LoadOptions<'_>) -> Result<ReportData, ReportError> {
    let plan_path = dir.join("plan.json");
    let kind = clarity_analysis::io::detect(dir).map_err(|_| ReportError::Missing {
        path: plan_path.clone(),
        hint: "not a sweep directory: no plan.json and no sweep_manifest.json".into(),
    })?;
    let metrics_path = dir.join("metrics.json");
    if !metrics_path.exists() {
        return Err(ReportError::Missing {
            path: metrics_path,
            hint: "run `clarity analyze` on the sweep directory first".into(),
        });
    }
    let metrics = read_json(&metrics_path)?;
    let m = &metrics_path;
    // An R2L sweep's baseline may have been named at analysis time: take it from metrics.json.
    let baseline_override = match kind {
        SourceKind::R2l => r2l_baseline(&metrics),
        SourceKind::Clarity => None,
    };
    let SweepData {
        axes,
        cells,
        cases,
        seeds,
        normalization,
        records,
        source,
        ..
    } = clarity_analysis::io::load_dir(dir, baseline_override.as_deref())?;
    // The loader validated the grid (coords in range, one baseline).
    if let Some(n) = metrics.get("cells").and_then(Value::as_array).map(Vec::len)
        && n != cells.len()
    {
        return Err(shape(
            m,
            "cells",
            &format!(
                "{} cells as in the sweep, found {n}: re-run `clarity analyze`",
                cells.len()
            ),
        ));
    }
    let normalizer = Normalizer::new(&normalization)?;
    let plan = match kind {
        SourceKind::Clarity => read_json(&plan_path)?,
        SourceKind::R2l => Value::Null,
    };
    let adapter = plan.get("adapter").cloned().unwrap_or(Value::Null);
    let s = |v: &Value, k: &str| v.get(k).and_then(Value::as_str).unwrap_or("").to_string();
    let model = ModelInfo {
        adapter: s(&adapter, "adapter"),
        model: s(&adapter, "model"),
        version: s(&adapter, "version"),
        settings: adapter
            .get("settings")
            .filter(|v| !v.is_null())
            .map(|v| clarity_core::json::to_canonical_line(v).unwrap_or_default())
            .unwrap_or_default(),
    };
    let identity = if kind == SourceKind::R2l {
        "R2L program (see runs/*/manifest.json)".to_string()
    } else if model.version.is_empty() {
        format!("{}/{}", model.adapter, model.model)
    } else {
        format!("{}/{}@{}", model.adapter, model.model, model.version)
    };
    let bundle_path = dir.join("bundle.json");
    let bundle_hash = if bundle_path.exists() {
        Some(hex::encode(sha2::Sha256::digest(fs_err::read(
            &bundle_path,
        )?)))
    } else {
        None
    };
    let mismatches = metrics
        .pointer("/source/manifest_mismatches")
        .and_then(Value::as_u64)
        .unwrap_or(0) as usize;
    let provenance = Provenance {
        plan_hash: source
            .plan_hash
            .clone()
            .unwrap_or_else(|| s(&plan, "plan_hash")),
        tool_version: match kind {
            SourceKind::Clarity => s(&plan, "tool_version"),
            SourceKind::R2l => "earlier Python CLARITY orchestrator (imported)".into(),
        },
        adapter_identity: identity,
        bundle_hash,
        source: match kind {
            SourceKind::Clarity => "clarity".into(),
            SourceKind::R2l if mismatches > 0 => {
                format!("r2l ({mismatches} manifest hash mismatches)")
            }
            SourceKind::R2l => "r2l (every manifest hash verified)".into(),
        },
    };

    // Analysis artifacts.
    let esi_threshold = opt_f64(metrics.get("esi_threshold")).unwrap_or(0.9);
    // `self_agreement` {all_seeds, threshold, flagged} (analysis) or a bare estimate.
    let (baseline_agreement, baseline_flag) = match metrics.get("self_agreement") {
        Some(sa) => (
            estimate(
                m,
                "self_agreement.all_seeds",
                sa.get("all_seeds").unwrap_or(&Value::Null),
            )?,
            sa.get("flagged")
                .and_then(Value::as_bool)
                .map(|f| (f, opt_f64(sa.get("threshold")).unwrap_or(0.9))),
        ),
        None => match metrics.get("baseline_self_agreement") {
            Some(v) => (estimate(m, "baseline_self_agreement", v)?, None),
            None => (None, None),
        },
    };

    let mut lines = crate::extra::line_curves(&metrics, m, &axes, &cells)?;
    let mut curves = Vec::new();
    let mut slices = Vec::new();
    let surface_path = dir.join("surface.json");
    if let Some(surface) = read_optional(&surface_path)? {
        let sp = &surface_path;
        for (i, mg) in surface
            .get("marginals")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .enumerate()
        {
            let key = format!("marginals[{i}]");
            let axis = axis_index(
                &axes,
                sp,
                &format!("{key}.axis"),
                mg.get("axis").unwrap_or(&Value::Null),
            )?;
            let mut map = BTreeMap::new();
            if let Some(obj) = mg.get("metrics").and_then(Value::as_object) {
                for (name, series) in obj {
                    let Some(metric) = Metric::from_key(name) else {
                        continue;
                    };
                    let arr = series.as_array().ok_or_else(|| {
                        shape(
                            sp,
                            &format!("{key}.metrics.{name}"),
                            "an array, one estimate per level",
                        )
                    })?;
                    if arr.len() != axes[axis].values.len() {
                        return Err(shape(
                            sp,
                            &format!("{key}.metrics.{name}"),
                            &format!(
                                "{} values (one per level of {})",
                                axes[axis].values.len(),
                                axes[axis].name
                            ),
                        ));
                    }
                    let vals = arr
                        .iter()
                        .enumerate()
                        .map(|(j, v)| estimate(sp, &format!("{key}.metrics.{name}[{j}]"), v))
                        .collect::<Result<Vec<_>, _>>()?;
                    map.insert(metric, vals);
                }
            }
            curves.push(AxisCurves {
                axis,
                metrics: map,
                line: std::mem::take(&mut lines[axis]),
            });
        }
        for (i, sl) in surface
            .get("slices")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .enumerate()
        {
            let key = format!("slices[{i}]");
            let x_axis = axis_index(
                &axes,
                sp,
                &format!("{key}.x_axis"),
                sl.get("x_axis").unwrap_or(&Value::Null),
            )?;
            let y_axis = axis_index(
                &axes,
                sp,
                &format!("{key}.y_axis"),
                sl.get("y_axis").unwrap_or(&Value::Null),
            )?;
            // A metric this report does not draw (e.g. `confidence_shift`) is skipped, never
            // drawn under another metric's name.
            let metric = match sl.get("metric").and_then(Value::as_str) {
                None => Metric::Esi,
                Some(k) => match Metric::from_key(k) {
                    Some(m) => m,
                    None => continue,
                },
            };
            let rows = sl.get("values").and_then(Value::as_array).ok_or_else(|| {
                shape(
                    sp,
                    &format!("{key}.values"),
                    "an array of rows (one per y level)",
                )
            })?;
            if rows.len() != axes[y_axis].values.len() {
                return Err(shape(
                    sp,
                    &format!("{key}.values"),
                    &format!("{} rows", axes[y_axis].values.len()),
                ));
            }
            let mut values = Vec::new();
            for (j, r) in rows.iter().enumerate() {
                let r = r
                    .as_array()
                    .filter(|r| r.len() == axes[x_axis].values.len())
                    .ok_or_else(|| {
                        shape(
                            sp,
                            &format!("{key}.values[{j}]"),
                            &format!("{} values", axes[x_axis].values.len()),
                        )
                    })?;
                values.push(r.iter().map(|v| opt_f64(Some(v))).collect());
            }
            slices.push(Slice {
                x_axis,
                y_axis,
                metric,
                values,
            });
        }
    }

    let mut gradients = Vec::new();
    let grad_path = dir.join("gradients.json");
    if let Some(g) = read_optional(&grad_path)? {
        for (i, e) in g
            .get("gradients")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .enumerate()
        {
            let key = format!("gradients[{i}]");
            let axis = axis_index(
                &axes,
                &grad_path,
                &format!("{key}.axis"),
                e.get("axis").unwrap_or(&Value::Null),
            )?;
            let Some(metric) = e
                .get("metric")
                .and_then(Value::as_str)
                .and_then(Metric::from_key)
            else {
                continue;
            };
            let series = |k: &str| -> Vec<Option<f64>> {
                e.get(k)
                    .and_then(Value::as_array)
                    .map(|a| a.iter().map(|v| opt_f64(Some(v))).collect())
                    .unwrap_or_default()
            };
            gradients.push(Gradient {
                axis,
                metric,
                per_unit: series("per_unit"),
                per_step: series("per_step"),
            });
        }
    }

    let mut cliffs = Vec::new();
    let cliff_path = dir.join("cliffs.json");
    if let Some(c) = read_optional(&cliff_path)? {
        for (i, e) in c
            .get("cliffs")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .enumerate()
        {
            let key = format!("cliffs[{i}]");
            // Per-case and per-class cliffs are not drawn; the figures show the cohort's.
            let set = |k: &str| e.get(k).is_some_and(|v| !v.is_null());
            if set("case_id") || set("class") {
                continue;
            }
            let axis = axis_index(
                &axes,
                &cliff_path,
                &format!("{key}.axis"),
                e.get("axis").unwrap_or(&Value::Null),
            )?;
            let Some(metric) = e
                .get("metric")
                .and_then(Value::as_str)
                .and_then(Metric::from_key)
            else {
                continue;
            };
            let level = e
                .get("level")
                .and_then(Value::as_u64)
                .map(|l| l as usize)
                .filter(|l| *l < axes[axis].values.len());
            let steepest = e.get("steepest").and_then(|s| {
                let l = s.get("level")?.as_u64()? as usize;
                let d = s.get("drop")?.as_f64()?;
                (l < axes[axis].values.len()).then_some((l, d))
            });
            cliffs.push(Cliff {
                axis,
                metric,
                threshold: opt_f64(e.get("threshold")).unwrap_or(esi_threshold),
                level,
                steepest,
                direction: e
                    .get("direction")
                    .and_then(Value::as_str)
                    .map(str::to_string),
                relative_position: opt_f64(e.get("relative_position")),
                metric_value: opt_f64(e.get("metric_value")),
                crossing: opt_f64(e.get("crossing")),
                severity: opt_f64(e.get("severity")),
                interval: e.get("interval").filter(|v| v.is_object()).map(|i| {
                    let n = |k: &str| i.get(k).and_then(Value::as_u64).unwrap_or(0) as usize;
                    CrossingInterval {
                        near: opt_f64(i.get("near")),
                        far: opt_f64(i.get("far")),
                        never_cross: n("never_cross"),
                        resamples: n("resamples"),
                    }
                }),
                recovers_at: e
                    .get("recovers_at")
                    .and_then(Value::as_u64)
                    .map(|l| l as usize)
                    .filter(|l| *l < axes[axis].values.len()),
                case_flips: e.get("case_flips").and_then(|f| {
                    let n = |k: &str| f.get(k)?.as_u64().map(|v| v as usize);
                    Some((n("cases")?, n("cross")?, n("flip_back")?))
                }),
                rank: rank_of(&c, e),
            });
        }
    }

    let refined = crate::extra::refined(dir, &axes)?;

    let mc_path = dir.join("montecarlo.json");
    let montecarlo = match read_optional(&mc_path)? {
        Some(mc) => {
            let k = mc
                .get("k")
                .and_then(Value::as_u64)
                .unwrap_or(seeds.len() as u64) as usize;
            let mut rows = Vec::new();
            for (i, e) in mc
                .get("cells")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
                .enumerate()
            {
                let key = format!("cells[{i}]");
                let idx = e.get("cell").and_then(Value::as_u64).map(|c| c as usize);
                let cell = idx.and_then(|c| cells.get(c)).ok_or_else(|| {
                    shape(&mc_path, &format!("{key}.cell"), "a cell index of the plan")
                })?;
                rows.push(McRow {
                    cell: cell_label(&axes, cell),
                    majority_agreement: opt_f64(e.get("majority_agreement")),
                    majority_cases: e
                        .get("majority_cases")
                        .and_then(Value::as_u64)
                        .map(|v| v as usize),
                    ties: e.get("ties").and_then(Value::as_u64).map(|v| v as usize),
                    // Before `seed_entropy` existed, `answer_entropy` was the within-case
                    // (across seeds) entropy.
                    answer_entropy: if e.get("seed_entropy").is_some() {
                        opt_f64(e.get("answer_entropy"))
                    } else {
                        None
                    },
                    seed_entropy: opt_f64(
                        e.get("seed_entropy").or_else(|| e.get("answer_entropy")),
                    ),
                    seed_agreement: opt_f64(e.get("seed_agreement")),
                    answers: {
                        let mut a: Vec<(String, usize)> = e
                            .get("answer_distribution")
                            .and_then(Value::as_object)
                            .map(|o| {
                                o.iter()
                                    .filter_map(|(k, v)| Some((k.clone(), v.as_u64()? as usize)))
                                    .collect()
                            })
                            .unwrap_or_default();
                        a.sort_by(|x, y| y.1.cmp(&x.1).then_with(|| x.0.cmp(&y.0)));
                        a
                    },
                    confidence_mean: opt_f64(e.get("confidence_mean")),
                    confidence_var: opt_f64(e.get("confidence_var")),
                });
            }
            Some(MonteCarlo { k, rows })
        }
        None => None,
    };

    // Run records: per-case facts and worst cases.
    let failed = records.iter().filter(|r| r.observation().is_none()).count();
    let count = |k: &str| {
        metrics
            .pointer(&format!("/runs/{k}"))
            .and_then(Value::as_u64)
            .map(|v| v as usize)
    };
    let runs = RunCounts {
        planned: count("planned").unwrap_or(cells.len() * cases.len() * seeds.len()),
        ok: count("ok").unwrap_or(records.len() - failed),
        failed: count("failed").unwrap_or(failed),
    };

    let baseline_cell = cells.iter().position(|c| c.is_baseline);
    // (case, seed) → baseline record.
    let mut base: BTreeMap<(&str, u64), &RunRecord> = BTreeMap::new();
    let mut by_case: BTreeMap<&str, Vec<&RunRecord>> = BTreeMap::new();
    for r in &records {
        if Some(r.cell) == baseline_cell && r.observation().is_some() {
            base.insert((r.case_id.as_str(), r.seed), r);
        }
        by_case.entry(r.case_id.as_str()).or_default().push(r);
    }
    let norm = |r: &RunRecord| {
        r.observation()
            .and_then(|o| o.answer.as_deref())
            .map(|a| normalizer.normalize(a))
    };

    struct CaseStat<'r> {
        row: CaseRow,
        first: Option<(&'r RunRecord, &'r RunRecord)>,
    }
    let mut stats: Vec<CaseStat> = Vec::new();
    for case in &cases {
        let recs = by_case
            .get(case.id.as_str())
            .map(Vec::as_slice)
            .unwrap_or(&[]);
        let (mut compared, mut flips, mut failures) = (0usize, 0usize, 0usize);
        let mut first: Option<(usize, usize, &RunRecord, &RunRecord)> = None;
        for r in recs {
            if r.observation().is_none() {
                failures += 1;
                continue;
            }
            if Some(r.cell) == baseline_cell {
                continue;
            }
            let Some(b) = base.get(&(case.id.as_str(), r.seed)) else {
                continue;
            };
            compared += 1;
            if norm(r) != norm(b) {
                flips += 1;
                let rank = (severity(&axes, &cells[r.cell]), r.cell);
                if first.is_none_or(|(s, c, _, _)| rank < (s, c)) {
                    first = Some((rank.0, rank.1, b, r));
                }
            }
        }
        let baseline_answer = seeds
            .iter()
            .find_map(|s| base.get(&(case.id.as_str(), *s)))
            .and_then(|r| r.observation()?.answer.clone())
            .unwrap_or_else(|| "–".into());
        stats.push(CaseStat {
            row: CaseRow {
                case_id: case.id.clone(),
                label: case.label.clone(),
                baseline_answer,
                esi: (compared > 0).then(|| 1.0 - flips as f64 / compared as f64),
                runs: recs.len(),
                flips,
                failures,
                first_flip: first.map(|(_, c, _, _)| cell_label(&axes, &cells[c])),
            },
            first: first.map(|(_, _, b, r)| (b, r)),
        });
    }
    // Worst first; ties by case id (cases are unique).
    stats.sort_by(|a, b| {
        a.row
            .esi
            .unwrap_or(2.0)
            .total_cmp(&b.row.esi.unwrap_or(2.0))
            .then_with(|| a.row.case_id.cmp(&b.row.case_id))
    });

    let mut thumbs_made = 0usize;
    let mut worst = Vec::new();
    for st in stats
        .iter()
        .filter(|s| s.first.is_some())
        .take(opts.max_worst_cases)
    {
        let (b, r) = st.first.expect("filtered");
        let view = |rec: &RunRecord, thumbs_made: &mut usize| {
            let o = rec.observation().cloned().unwrap_or_default();
            let thumb = opts
                .thumbnails
                .and_then(|src| src.image(&rec.case_id, &cells[rec.cell], rec.seed))
                .and_then(|img| thumbnail(&img, o.saliency.as_ref()));
            if thumb.is_some() {
                *thumbs_made += 1;
            }
            AnswerView {
                answer: o.answer.unwrap_or_default(),
                justification: o.justification.unwrap_or_default(),
                confidence: o.confidence,
                saliency: o.saliency,
                thumb,
            }
        };
        worst.push(WorstCase {
            case_id: st.row.case_id.clone(),
            label: st.row.label.clone(),
            cell: cell_label(&axes, &cells[r.cell]),
            seed: r.seed,
            esi: st.row.esi,
            baseline: view(b, &mut thumbs_made),
            perturbed: view(r, &mut thumbs_made),
        });
    }
    let thumbnails_note = match opts.thumbnails {
        None if !worst.is_empty() => Some("No thumbnails: the images were not available when this report was made (the sweep directory does not store perturbed images; `clarity report` regenerates them from the cohort).".into()),
        Some(_) if !worst.is_empty() && thumbs_made == 0 => Some("No thumbnails: the cohort images could not be loaded.".into()),
        _ => None,
    };

    // Per class, from the analysis' breakdown.
    let baseline_index = baseline_cell.unwrap_or(0);
    let mut per_class = Vec::new();
    for (i, c) in metrics
        .get("per_class")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .enumerate()
    {
        let key = format!("per_class[{i}]");
        let label = c
            .get("label")
            .and_then(Value::as_str)
            .ok_or_else(|| shape(m, &format!("{key}.label"), "a string"))?;
        let mut baseline_accuracy = None;
        let (mut worst_accuracy, mut worst_esi): (Option<f64>, Option<f64>) = (None, None);
        for (j, cc) in c
            .get("cells")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .enumerate()
        {
            let acc = estimate(
                m,
                &format!("{key}.cells[{j}].accuracy"),
                cc.get("accuracy").unwrap_or(&Value::Null),
            )?;
            let esi = estimate(
                m,
                &format!("{key}.cells[{j}].esi"),
                cc.get("esi").unwrap_or(&Value::Null),
            )?;
            let cell = cc.get("cell").and_then(Value::as_u64).map(|v| v as usize);
            if cell == Some(baseline_index) {
                baseline_accuracy = acc.map(|e| e.value);
                continue;
            }
            if let Some(a) = acc {
                worst_accuracy = Some(worst_accuracy.map_or(a.value, |w| w.min(a.value)));
            }
            if let Some(e) = esi {
                worst_esi = Some(worst_esi.map_or(e.value, |w| w.min(e.value)));
            }
        }
        let first_break = c
            .get("first_break")
            .filter(|v| !v.is_null())
            .and_then(|fb| {
                let axis = axes.iter().position(|a| {
                    Some(a.name.as_str()) == fb.get("axis").and_then(Value::as_str)
                })?;
                let level = fb.get("level")?.as_u64()? as usize;
                let value = axes[axis].values.get(level)?.label();
                let metric = fb
                    .get("metric")
                    .and_then(Value::as_str)
                    .and_then(Metric::from_key)
                    .unwrap_or(Metric::Esi);
                Some(format!("{}={value} ({})", axes[axis].name, metric.label()))
            });
        per_class.push(ClassRow {
            label: label.to_string(),
            cases: c.get("cases").and_then(Value::as_u64).unwrap_or(0) as usize,
            baseline_accuracy,
            worst_accuracy,
            worst_esi,
            first_break,
        });
    }

    let labelled = cases.iter().filter(|c| c.label.is_some()).count();
    let title = format!(
        "Clarity robustness report: {}",
        if model.model.is_empty() {
            "sweep"
        } else {
            &model.model
        }
    );
    let case_rows: Vec<CaseRow> = stats
        .into_iter()
        .take(opts.max_case_rows)
        .map(|s| s.row)
        .collect();
    // The analysis's headline (older metrics.json without it: the report builds its own).
    let headline = metrics
        .get("headline")
        .and_then(Value::as_array)
        .and_then(|a| {
            a.iter()
                .map(|l| l.as_str().map(str::to_string))
                .collect::<Option<Vec<_>>>()
        });
    Ok(ReportData {
        title,
        cohort: CohortInfo {
            name: plan
                .pointer("/cohort/name")
                .and_then(Value::as_str)
                .unwrap_or("")
                .to_string(),
            cases: cases.len(),
            labelled,
        },
        model,
        cells: cells.len(),
        axes,
        seeds,
        runs,
        baseline_agreement,
        baseline_flag,
        esi_threshold,
        headline,
        curves,
        cliffs,
        refined,
        slices,
        gradients,
        montecarlo,
        per_class,
        worst,
        cases: case_rows,
        thumbnails_note,
        provenance,
    })
}

/// The baseline cell of an analysed R2L sweep as `(axis, value)` pairs, from metrics.json.
fn r2l_baseline(metrics: &Value) -> Option<Vec<(String, String)>> {
    let b = metrics.get("baseline_cell")?.as_u64()? as usize;
    let cell = metrics.get("cells")?.as_array()?.get(b)?;
    let values = cell.get("values")?.as_array()?;
    let axes = metrics.get("axes")?.as_array()?;
    axes.iter()
        .zip(values)
        .map(|(a, v)| {
            let name = a.get("name")?.as_str()?.to_string();
            let value = match v {
                Value::String(s) => s.clone(),
                Value::Number(n) => clarity_core::json::format_num(n.as_f64()?),
                _ => return None,
            };
            Some((name, value))
        })
        .collect()
}

/// The rank of cliff `e` in `cliffs.json`'s `ranking` (matched by metric, axis name and
/// direction);
/// `None` when the ranking is absent (older directories) or says "not ranked".
fn rank_of(cliffs: &Value, e: &Value) -> Option<usize> {
    let metric = e.get("metric")?.as_str()?;
    let ranking = cliffs.get("ranking")?.get(metric)?;
    if ranking.get("scale")?.as_str()? == "not_ranked" {
        return None;
    }
    ranking
        .get("entries")?
        .as_array()?
        .iter()
        .find(|r| r.get("axis") == e.get("axis") && r.get("direction") == e.get("direction"))?
        .get("rank")?
        .as_u64()
        .map(|r| r as usize)
}
