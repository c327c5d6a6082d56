//! Loading helpers kept apart from [`crate::load`]: the per-axis line through the baseline (from
//! `metrics.json`'s cells) and the refined cliffs (from `refine.json`).

use std::collections::BTreeMap;
use std::path::Path;

use clarity_core::{Axis, Cell};
use serde_json::Value;

use crate::ReportError;
use crate::load::{estimate, opt_f64, shape};
use crate::model::{Estimate, Metric, RefinedCliff};

/// Per metric, one estimate per level of an axis.
pub(crate) type Series = BTreeMap<Metric, Vec<Option<Estimate>>>;

/// Per axis, per metric: the estimates on the axis's line through the baseline (every other axis
/// at the baseline cell's coordinate), one per level; read from `metrics.json` `cells[]`
/// (`{cell, <metric>: estimate}`).
pub(crate) fn line_curves(
    metrics: &Value,
    path: &Path,
    axes: &[Axis],
    cells: &[Cell],
) -> Result<Vec<Series>, ReportError> {
    let mut out: Vec<Series> = vec![BTreeMap::new(); axes.len()];
    let Some(base) = cells.iter().find(|c| c.is_baseline) else {
        return Ok(out);
    };
    let Some(rows) = metrics.get("cells").and_then(Value::as_array) else {
        return Ok(out);
    };
    for (i, row) in rows.iter().enumerate() {
        let Some(idx) = row.get("cell").and_then(Value::as_u64).map(|c| c as usize) else {
            continue;
        };
        let cell = cells.get(idx).ok_or_else(|| {
            shape(
                path,
                &format!("cells[{i}].cell"),
                "a cell index of the plan",
            )
        })?;
        // On axis `a`'s line when it differs from the baseline at most along `a`.
        let off: Vec<usize> = (0..axes.len())
            .filter(|&j| cell.coords.get(j) != base.coords.get(j))
            .collect();
        let on: Vec<usize> = match off.as_slice() {
            [] => (0..axes.len()).collect(),
            [a] => vec![*a],
            _ => continue,
        };
        for a in on {
            let level = cell.coords[a];
            for m in Metric::ALL {
                let Some(v) = row.get(m.key()) else { continue };
                let e = estimate(path, &format!("cells[{i}].{}", m.key()), v)?;
                let series = out[a]
                    .entry(m)
                    .or_insert_with(|| vec![None; axes[a].values.len()]);
                if let Some(slot) = series.get_mut(level) {
                    *slot = e;
                }
            }
        }
    }
    Ok(out)
}

/// The refined cliffs of `refine.json` in `dir` (empty when there is none).
pub(crate) fn refined(dir: &Path, axes: &[Axis]) -> Result<Vec<RefinedCliff>, ReportError> {
    let path = dir.join("refine.json");
    if !path.exists() {
        return Ok(Vec::new());
    }
    let text = fs_err::read_to_string(&path)?;
    let v: Value = serde_json::from_str(&text).map_err(|source| ReportError::Json {
        path: path.clone(),
        source,
    })?;
    let mut out = Vec::new();
    for (i, c) in v
        .get("cliffs")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .enumerate()
    {
        let key = |k: &str| format!("cliffs[{i}].{k}");
        let num = |k: &str| -> Result<f64, ReportError> {
            c.get(k)
                .and_then(Value::as_f64)
                .ok_or_else(|| shape(&path, &key(k), "a number"))
        };
        let name = c.get("axis").and_then(Value::as_str).unwrap_or_default();
        let axis = axes
            .iter()
            .position(|a| a.name == name)
            .ok_or_else(|| shape(&path, &key("axis"), "an axis name of the plan"))?;
        let Some(metric) = c
            .get("metric")
            .and_then(Value::as_str)
            .and_then(Metric::from_key)
        else {
            continue;
        };
        let pair = |a: f64, b: f64| if a <= b { (a, b) } else { (b, a) };
        let crossing = c.get("crossing");
        let located = c.get("located").and_then(Value::as_array).and_then(|a| {
            let (x, y) = (a.first()?.as_f64()?, a.get(1)?.as_f64()?);
            Some(pair(x, y))
        });
        let nm = c.get("non_monotone");
        let count = |k: &str| {
            nm.and_then(|n| n.get(k))
                .and_then(Value::as_array)
                .map_or(0, Vec::len)
        };
        out.push(RefinedCliff {
            axis,
            metric,
            threshold: num("threshold")?,
            initial: pair(num("initial_ok")?, num("initial_broken")?),
            bracket: pair(num("ok")?, num("broken")?),
            rounds: c
                .get("rounds")
                .and_then(Value::as_array)
                .map_or(0, Vec::len),
            crossing: opt_f64(crossing.and_then(|x| x.get("estimate"))),
            crossing_lo: opt_f64(crossing.and_then(|x| x.get("lo"))),
            crossing_hi: opt_f64(crossing.and_then(|x| x.get("hi"))),
            located,
            stopped: c
                .get("stopped")
                .and_then(Value::as_str)
                .unwrap_or("")
                .to_string(),
            non_monotone_cases: count("cases"),
            cohort_recrossings: count("cohort"),
            summary: c
                .get("summary")
                .and_then(Value::as_str)
                .unwrap_or("")
                .to_string(),
        });
    }
    Ok(out)
}
