//! Comparing two analysed sweeps over the same axes (two models, or before/after a fine-tune):
//! per-cell ESI and accuracy with both sides' 95% intervals and their difference, and every
//! run (case, cell, seed) whose normalised answer differs between the two.
//!
//! Cells are matched by their axis values (so grids may differ: only common cells are
//! compared); both sweeps must have the same axis names. Numbers come from each sweep's
//! `metrics.json`; answers from the analysis loader.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::Serialize;
use serde_json::Value;

use crate::ApiError;
use crate::sweeps::RunTable;

/// One side of the comparison.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Side {
    /// The sweep directory as given (or its id under the served root).
    pub sweep: String,
    /// `adapter/model` from `plan.json` (empty for R2L sweeps).
    pub model: String,
    pub plan_hash: Option<String>,
}

/// An estimate with its interval.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Est {
    pub value: f64,
    pub lo: Option<f64>,
    pub hi: Option<f64>,
}

/// One metric of one cell on both sides.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct MetricDiff {
    pub a: Option<Est>,
    pub b: Option<Est>,
    /// `b − a`.
    pub delta: Option<f64>,
    /// Both intervals known and disjoint: the difference is beyond the resampling noise of
    /// either side.
    pub separated: bool,
}

/// One cell present in both sweeps.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct CellDiff {
    /// `axis=value, …` of the axes away from identity (`baseline`).
    pub cell: String,
    /// Every axis's value.
    pub values: BTreeMap<String, String>,
    pub esi: MetricDiff,
    pub accuracy: MetricDiff,
}

/// A run whose normalised answer differs between the sweeps.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ChangedAnswer {
    pub case_id: String,
    pub cell: String,
    pub seed: u64,
    pub answer_a: String,
    pub answer_b: String,
}

/// Counts.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct CompareSummary {
    pub cells_compared: usize,
    pub cells_only_a: usize,
    pub cells_only_b: usize,
    pub runs_compared: usize,
    pub answers_changed: usize,
    /// Cells whose ESI intervals are disjoint.
    pub esi_separated: usize,
}

/// The comparison of sweep `a` with sweep `b`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Comparison {
    pub kind: &'static str,
    pub a: Side,
    pub b: Side,
    pub axes: Vec<String>,
    pub summary: CompareSummary,
    pub cells: Vec<CellDiff>,
    pub changed: Vec<ChangedAnswer>,
}

fn read_metrics(dir: &Path) -> Result<Value, ApiError> {
    let p = dir.join("metrics.json");
    let text = std::fs::read_to_string(&p).map_err(|_| {
        ApiError::bad_request(format!(
            "{}: missing: run `clarity analyze {}` first",
            p.display(),
            dir.display()
        ))
    })?;
    serde_json::from_str(&text)
        .map_err(|e| ApiError::bad_request(format!("{}: invalid JSON: {e}", p.display())))
}

fn est(v: &Value) -> Option<Est> {
    match v {
        Value::Number(n) => n.as_f64().map(|value| Est {
            value,
            lo: None,
            hi: None,
        }),
        Value::Object(o) => Some(Est {
            value: o.get("value")?.as_f64()?,
            lo: o.get("lo").and_then(Value::as_f64),
            hi: o.get("hi").and_then(Value::as_f64),
        }),
        _ => None,
    }
}

fn diff(a: Option<Est>, b: Option<Est>) -> MetricDiff {
    let delta = match (a, b) {
        (Some(a), Some(b)) => Some(b.value - a.value),
        _ => None,
    };
    let separated = match (a, b) {
        (
            Some(Est {
                lo: Some(alo),
                hi: Some(ahi),
                ..
            }),
            Some(Est {
                lo: Some(blo),
                hi: Some(bhi),
                ..
            }),
        ) => ahi < blo || bhi < alo,
        _ => false,
    };
    MetricDiff {
        a,
        b,
        delta,
        separated,
    }
}

fn value_label(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        Value::Number(n) => n
            .as_f64()
            .map(clarity_core::json::format_num)
            .unwrap_or_else(|| n.to_string()),
        other => other.to_string(),
    }
}

/// `(axis names, identity labels, cells keyed by their value labels)` of a metrics.json.
type CellMap = BTreeMap<Vec<String>, Value>;

fn cells_of(path: &Path, m: &Value) -> Result<(Vec<String>, Vec<String>, CellMap), ApiError> {
    let bad =
        |what: &str| ApiError::bad_request(format!("{}/metrics.json: {what}", path.display()));
    let axes = m["axes"].as_array().ok_or_else(|| bad("no `axes` array"))?;
    let names: Vec<String> = axes
        .iter()
        .map(|a| a["name"].as_str().map(str::to_string))
        .collect::<Option<_>>()
        .ok_or_else(|| bad("`axes[].name` must be strings"))?;
    let identity: Vec<String> = axes.iter().map(|a| value_label(&a["identity"])).collect();
    let mut map = BTreeMap::new();
    for c in m["cells"]
        .as_array()
        .ok_or_else(|| bad("no `cells` array"))?
    {
        let values = c["values"]
            .as_array()
            .ok_or_else(|| bad("`cells[].values` must be arrays"))?;
        map.insert(values.iter().map(value_label).collect(), c.clone());
    }
    Ok((names, identity, map))
}

fn side(name: &str, dir: &Path) -> Side {
    let plan = std::fs::read_to_string(dir.join("plan.json"))
        .ok()
        .and_then(|t| serde_json::from_str::<Value>(&t).ok());
    let model = plan
        .as_ref()
        .map(|p| {
            format!(
                "{}/{}",
                p["adapter"]["adapter"].as_str().unwrap_or(""),
                p["adapter"]["model"].as_str().unwrap_or("")
            )
        })
        .unwrap_or_default();
    Side {
        sweep: name.to_string(),
        model,
        plan_hash: plan.and_then(|p| p["plan_hash"].as_str().map(str::to_string)),
    }
}

fn label_of(names: &[String], identity: &[String], key: &[String]) -> String {
    let parts: Vec<String> = names
        .iter()
        .zip(identity)
        .zip(key)
        .filter(|((_, id), v)| id != v)
        .map(|((n, _), v)| format!("{n}={v}"))
        .collect();
    if parts.is_empty() {
        "baseline".into()
    } else {
        parts.join(", ")
    }
}

/// Compares the analysed sweeps in `a` and `b` (`names` label them in the output).
pub fn compare(a: &Path, b: &Path, names: (&str, &str)) -> Result<Comparison, ApiError> {
    let (ma, mb) = (read_metrics(a)?, read_metrics(b)?);
    let (axes_a, identity, cells_a) = cells_of(a, &ma)?;
    let (axes_b, _, cells_b) = cells_of(b, &mb)?;
    if axes_a != axes_b {
        return Err(ApiError::bad_request(format!(
            "the sweeps have different axes ({} vs {}): only sweeps over the same axes compare",
            axes_a.join(", "),
            axes_b.join(", ")
        )));
    }
    let mut cells = Vec::new();
    for (key, ca) in &cells_a {
        let Some(cb) = cells_b.get(key) else { continue };
        cells.push(CellDiff {
            cell: label_of(&axes_a, &identity, key),
            values: axes_a.iter().cloned().zip(key.iter().cloned()).collect(),
            esi: diff(est(&ca["esi"]), est(&cb["esi"])),
            accuracy: diff(est(&ca["accuracy"]), est(&cb["accuracy"])),
        });
    }
    let (ta, tb) = (RunTable::load(a)?, RunTable::load(b)?);
    let key_of = |r: &crate::sweeps::RunRow| -> Vec<String> {
        axes_a
            .iter()
            .map(|n| r.values.get(n).cloned().unwrap_or_default())
            .collect()
    };
    let mut answers_b: BTreeMap<(String, Vec<String>, u64), &str> = BTreeMap::new();
    for r in &tb.rows {
        if let Some(n) = &r.normalized {
            answers_b.insert((r.case_id.clone(), key_of(r), r.seed), n);
        }
    }
    let (mut runs_compared, mut changed) = (0usize, Vec::new());
    for r in &ta.rows {
        let Some(na) = &r.normalized else { continue };
        let key = key_of(r);
        let Some(nb) = answers_b.get(&(r.case_id.clone(), key.clone(), r.seed)) else {
            continue;
        };
        runs_compared += 1;
        if na != nb {
            changed.push(ChangedAnswer {
                case_id: r.case_id.clone(),
                cell: label_of(&axes_a, &identity, &key),
                seed: r.seed,
                answer_a: na.clone(),
                answer_b: nb.to_string(),
            });
        }
    }
    let summary = CompareSummary {
        cells_compared: cells.len(),
        cells_only_a: cells_a.keys().filter(|k| !cells_b.contains_key(*k)).count(),
        cells_only_b: cells_b.keys().filter(|k| !cells_a.contains_key(*k)).count(),
        runs_compared,
        answers_changed: changed.len(),
        esi_separated: cells.iter().filter(|c| c.esi.separated).count(),
    };
    Ok(Comparison {
        kind: "clarity.compare",
        a: side(names.0, a),
        b: side(names.1, b),
        axes: axes_a,
        summary,
        cells,
        changed,
    })
}

fn opt(x: Option<f64>) -> String {
    x.map(clarity_core::json::format_num).unwrap_or_default()
}

/// Every CSV cell through [`clarity_core::csv_cell::formula_safe`]: case ids and answers come
/// from untrusted input (file names, model output).
fn safe_cells(row: &[String]) -> Vec<String> {
    row.iter()
        .map(|c| clarity_core::csv_cell::formula_safe(c).into_owned())
        .collect()
}

/// Writes `compare.json` (canonical JSON), `compare_cells.csv` and `compare_cases.csv` into
/// `out` (created if missing); returns their paths.
pub fn write(c: &Comparison, out: &Path) -> anyhow::Result<Vec<PathBuf>> {
    use anyhow::Context;
    std::fs::create_dir_all(out).with_context(|| format!("creating {}", out.display()))?;
    let json = clarity_core::json::to_canonical_string(&serde_json::to_value(c)?)?;
    let p_json = out.join("compare.json");
    clarity_engine::write_atomic(&p_json, json.as_bytes())?;
    let mut w = csv::Writer::from_writer(Vec::new());
    let mut header = vec!["cell".to_string()];
    header.extend(c.axes.iter().cloned());
    for m in ["esi", "accuracy"] {
        for f in [
            "a",
            "a_lo",
            "a_hi",
            "b",
            "b_lo",
            "b_hi",
            "delta",
            "separated",
        ] {
            header.push(format!("{m}_{f}"));
        }
    }
    w.write_record(safe_cells(&header))?;
    for cell in &c.cells {
        let mut row = vec![cell.cell.clone()];
        row.extend(
            c.axes
                .iter()
                .map(|a| cell.values.get(a).cloned().unwrap_or_default()),
        );
        for m in [&cell.esi, &cell.accuracy] {
            row.push(opt(m.a.map(|e| e.value)));
            row.push(opt(m.a.and_then(|e| e.lo)));
            row.push(opt(m.a.and_then(|e| e.hi)));
            row.push(opt(m.b.map(|e| e.value)));
            row.push(opt(m.b.and_then(|e| e.lo)));
            row.push(opt(m.b.and_then(|e| e.hi)));
            row.push(opt(m.delta));
            row.push(m.separated.to_string());
        }
        w.write_record(safe_cells(&row))?;
    }
    let p_cells = out.join("compare_cells.csv");
    clarity_engine::write_atomic(&p_cells, &w.into_inner()?)?;
    let mut w = csv::Writer::from_writer(Vec::new());
    w.write_record(["case_id", "cell", "seed", "answer_a", "answer_b"])?;
    for ch in &c.changed {
        w.write_record(safe_cells(&[
            ch.case_id.clone(),
            ch.cell.clone(),
            ch.seed.to_string(),
            ch.answer_a.clone(),
            ch.answer_b.clone(),
        ]))?;
    }
    let p_cases = out.join("compare_cases.csv");
    clarity_engine::write_atomic(&p_cases, &w.into_inner()?)?;
    Ok(vec![p_json, p_cells, p_cases])
}
