//! Import of sweeps written by the earlier Python CLARITY orchestrator over R2L (SPEC §12).

use std::collections::BTreeMap;
use std::path::Path;

use clarity_core::{Axis, AxisValue, Case, Cell, Normalization, Observation, Outcome, RunRecord};
use serde_json::Value;
use sha2::Digest as _;

use crate::data::{FailedRun, ManifestCheck, SourceInfo, SourceKind};
use crate::{AnalysisError, AnalysisSettings, SweepData};

pub(crate) const FAMILY: &str = "clarity_sweep_orchestrator_v1";

/// Identity values of well-known axis names (matched on the lower-cased name, then on its last
/// `.`-separated part).
const IDENTITIES: &[(&str, f64)] = &[
    ("brightness", 1.0),
    ("contrast", 1.0),
    ("gamma", 1.0),
    ("saturation", 1.0),
    ("sharpness", 1.0),
    ("scale", 1.0),
    ("zoom", 1.0),
    ("downscale", 1.0),
    ("resolution", 1.0),
    ("factor", 1.0),
    ("blur", 0.0),
    ("gaussian_blur", 0.0),
    ("blur_sigma", 0.0),
    ("sigma", 0.0),
    ("motion_blur", 0.0),
    ("defocus", 0.0),
    ("noise", 0.0),
    ("gaussian_noise", 0.0),
    ("noise_sigma", 0.0),
    ("noise_std", 0.0),
    ("salt_pepper", 0.0),
    ("speckle", 0.0),
    ("rotation", 0.0),
    ("rotate", 0.0),
    ("angle", 0.0),
    ("translation", 0.0),
    ("shift", 0.0),
    ("elastic", 0.0),
    ("occlusion", 0.0),
    ("jpeg_quality", 100.0),
    ("quality", 100.0),
];

/// The known identity value of an axis name.
pub fn known_identity(name: &str) -> Option<f64> {
    let lower = name.to_lowercase();
    let last = lower.rsplit('.').next().unwrap_or(&lower).to_string();
    IDENTITIES
        .iter()
        .find(|(n, _)| *n == lower)
        .or_else(|| IDENTITIES.iter().find(|(n, _)| *n == last))
        .map(|(_, v)| *v)
}

/// Python's `repr(float)`: shortest round trip, `.0` on integral values, exponent form below
/// 1e-4 and from 1e16 (`1e-07`, `1e+16`).
fn python_float(x: f64) -> String {
    let a = x.abs();
    if x != 0.0 && !(1e-4..1e16).contains(&a) {
        let s = format!("{x:e}");
        let (m, e) = s.split_once('e').unwrap_or((&s, "0"));
        let e: i32 = e.parse().unwrap_or(0);
        let sign = if e < 0 { '-' } else { '+' };
        format!("{m}e{sign}{:02}", e.abs())
    } else {
        format!("{x:?}")
    }
}

/// How the orchestrator wrote a value in a run directory name: Python `str(value)`, then `.` →
/// `p`, `-` → `m`, anything outside `[A-Za-z0-9_]` dropped.
pub fn encode_value(v: &Value) -> String {
    let raw = match v {
        Value::Number(n) if n.is_f64() => python_float(n.as_f64().unwrap_or(0.0)),
        Value::Number(n) => n.to_string(),
        Value::String(s) => s.clone(),
        Value::Bool(b) => if *b { "True" } else { "False" }.to_string(),
        other => other.to_string(),
    };
    raw.chars()
        .filter_map(|c| match c {
            '.' => Some('p'),
            '-' => Some('m'),
            c if c.is_ascii_alphanumeric() || c == '_' => Some(c),
            _ => None,
        })
        .collect()
}

/// The run directory name: `axis=value` pairs sorted by axis name, then `seed=N`, joined by `_`.
pub fn run_dir_name(axis_values: &BTreeMap<String, Value>, seed: u64) -> String {
    let mut parts: Vec<String> = axis_values
        .iter()
        .map(|(k, v)| format!("{k}={}", encode_value(v)))
        .collect();
    parts.push(format!("seed={seed}"));
    parts.join("_")
}

fn axis_value(v: &Value) -> Option<AxisValue> {
    match v {
        Value::Number(n) => n.as_f64().map(AxisValue::Num),
        Value::String(s) => Some(AxisValue::Level(s.clone())),
        Value::Bool(b) => Some(AxisValue::Level(b.to_string())),
        _ => None,
    }
}

/// Level index of `v` on `axis` (numbers compared numerically: `1` = `1.0`).
fn level_of(axis: &Axis, v: &AxisValue) -> Option<usize> {
    axis.values.iter().position(|x| match (x, v) {
        (AxisValue::Num(a), AxisValue::Num(b)) => a == b,
        (a, b) => a.label() == b.label(),
    })
}

/// Parses a user-given baseline value for `axis`.
fn parse_level(axis: &Axis, s: &str) -> Option<usize> {
    let v = match s.trim().parse::<f64>() {
        Ok(x) if axis.is_numeric() => AxisValue::Num(x),
        _ => AxisValue::Level(s.trim().to_string()),
    };
    level_of(axis, &v)
}

/// Limits on what an R2L sweep directory may make the import read or allocate. An R2L sweep is
/// untrusted input: each size is checked before it is allocated, and the error names the limit
/// and how to raise it (an environment variable; docs/config.md and docs/reliability.md).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct R2lLimits {
    /// Cells of the grid (product of the axis lengths). `CLARITY_R2L_MAX_CELLS`.
    pub max_cells: u64,
    /// Bytes of any one file read (sweep manifest, run manifest, spec, trace).
    /// `CLARITY_R2L_MAX_FILE_BYTES`.
    pub max_file_bytes: u64,
    /// Bytes of one trace line. `CLARITY_R2L_MAX_LINE_BYTES`.
    pub max_line_bytes: u64,
}

impl Default for R2lLimits {
    fn default() -> Self {
        R2lLimits {
            max_cells: 1_000_000,
            max_file_bytes: 64 << 20,
            max_line_bytes: 1 << 20,
        }
    }
}

impl R2lLimits {
    /// The defaults, overridden by `CLARITY_R2L_MAX_CELLS`, `CLARITY_R2L_MAX_FILE_BYTES` and
    /// `CLARITY_R2L_MAX_LINE_BYTES` (a value that is not a positive integer is an error).
    pub fn from_env() -> Result<R2lLimits, AnalysisError> {
        let mut l = R2lLimits::default();
        for (var, slot) in [
            ("CLARITY_R2L_MAX_CELLS", &mut l.max_cells),
            ("CLARITY_R2L_MAX_FILE_BYTES", &mut l.max_file_bytes),
            ("CLARITY_R2L_MAX_LINE_BYTES", &mut l.max_line_bytes),
        ] {
            if let Some(v) = std::env::var_os(var) {
                *slot = v
                    .to_str()
                    .and_then(|t| t.trim().parse::<u64>().ok())
                    .filter(|&n| n > 0)
                    .ok_or_else(|| {
                        AnalysisError::Invalid(format!(
                            "{var}={}: expected a positive integer",
                            v.to_string_lossy()
                        ))
                    })?;
            }
        }
        Ok(l)
    }
}

/// Reads `path`, which must resolve (symlinks followed) to a regular file inside `root` of at
/// most `max` bytes. The type is checked before opening (a FIFO would block, a device such as
/// `/dev/zero` never ends) and the read is capped with `take`, so a file growing meanwhile
/// cannot exceed `max`.
pub(crate) fn read_contained(path: &Path, root: &Path, max: u64) -> Result<Vec<u8>, String> {
    use std::io::Read;
    let real = fs_err::canonicalize(path).map_err(|e| e.to_string())?;
    let real_root = fs_err::canonicalize(root).map_err(|e| e.to_string())?;
    if !real.starts_with(&real_root) {
        return Err(format!(
            "{} resolves to {}, outside the sweep directory {}; refused",
            path.display(),
            real.display(),
            real_root.display()
        ));
    }
    let meta = fs_err::metadata(&real).map_err(|e| e.to_string())?;
    if !meta.is_file() {
        return Err(format!(
            "{} is not a regular file ({}); only regular files are read",
            path.display(),
            if meta.is_dir() {
                "a directory"
            } else {
                "a FIFO, socket or device"
            }
        ));
    }
    let too_big = |n: u64| {
        format!(
            "{} is {n} bytes or more, above the limit of {max} bytes per file (raise it with CLARITY_R2L_MAX_FILE_BYTES)",
            path.display()
        )
    };
    if meta.len() > max {
        return Err(too_big(meta.len()));
    }
    let mut bytes = Vec::with_capacity(meta.len() as usize);
    fs_err::File::open(&real)
        .map_err(|e| e.to_string())?
        .take(max + 1)
        .read_to_end(&mut bytes)
        .map_err(|e| format!("{}: {e}", path.display()))?;
    if bytes.len() as u64 > max {
        return Err(too_big(bytes.len() as u64));
    }
    Ok(bytes)
}

fn read_json(path: &Path, root: &Path, limits: &R2lLimits) -> Result<Value, AnalysisError> {
    let bytes =
        read_contained(path, root, limits.max_file_bytes).map_err(AnalysisError::Invalid)?;
    // From bytes: invalid UTF-8 is a JSON error naming the file (bad input), not an I/O error.
    serde_json::from_slice(&bytes).map_err(|source| AnalysisError::Json {
        path: path.to_path_buf(),
        source,
    })
}

/// Checks an axis name of the sweep manifest: it becomes part of a run directory name, so it
/// must not hold a path separator, `..`, a NUL or be empty.
fn check_axis_name(name: &str) -> Result<(), String> {
    if name.is_empty() {
        return Err("an empty axis name".into());
    }
    if name.contains(['/', '\\', '\0']) || name.contains("..") {
        return Err(format!(
            "axis name {name:?}: a name must not contain `/`, `\\`, `..` or NUL (it names run directories)"
        ));
    }
    Ok(())
}

fn shape(path: &Path, key: &str, expected: &str) -> AnalysisError {
    AnalysisError::Shape {
        path: path.to_path_buf(),
        key: key.into(),
        expected: expected.into(),
    }
}

/// Parses a `trace_pack.jsonl` (SPEC §4): the answer is the `output`/`answer` of the LAST record
/// that has one (not simply the last line).
/// A line longer than `max_line` bytes is refused (named with its line number and the limit).
pub(crate) fn parse_trace(text: &str, name: &str, max_line: u64) -> Result<Observation, String> {
    let mut o = Observation::default();
    let mut answer_step: Option<Value> = None;
    let mut last_justification: Option<String> = None;
    let mut answer_justification: Option<Option<String>> = None;
    let num = |v: &Value, k: &str| -> Option<f64> {
        v.get(k)
            .and_then(Value::as_f64)
            .or_else(|| v.get("rich_summary")?.get(k)?.as_f64())
    };
    let mut records = 0usize;
    for (i, line) in text.lines().enumerate() {
        if line.len() as u64 > max_line {
            return Err(format!(
                "{name}: line {}: {} bytes, above the limit of {max_line} bytes per trace line (raise it with CLARITY_R2L_MAX_LINE_BYTES)",
                i + 1,
                line.len()
            ));
        }
        if line.trim().is_empty() {
            continue;
        }
        let v: Value = serde_json::from_str(line)
            .map_err(|e| format!("{name}: line {}: invalid JSON: {e}", i + 1))?;
        if !v.is_object() {
            return Err(format!("{name}: line {}: expected a JSON object", i + 1));
        }
        let step = v.get("step").or_else(|| v.get("step_id"));
        let Some(step) = step else {
            return Err(format!(
                "{name}: line {}: record has neither `step` nor `step_id`",
                i + 1
            ));
        };
        records += 1;
        let j = v
            .get("justification")
            .and_then(Value::as_str)
            .map(str::to_string);
        if j.is_some() {
            last_justification.clone_from(&j);
        }
        if let Some(a) = v
            .get("output")
            .filter(|a| !a.is_null())
            .or_else(|| v.get("answer").filter(|a| !a.is_null()))
        {
            o.answer = Some(match a {
                Value::String(s) => s.clone(),
                other => other.to_string(),
            });
            answer_step = Some(step.clone());
            answer_justification = Some(j);
        }
        if let Some(c) = num(&v, "confidence_score") {
            o.confidence = Some(c);
        }
        if let Some(e) = num(&v, "output_entropy") {
            o.entropy = Some(e);
        }
        if let Some(m) = v.get("adapter_metadata").filter(|m| !m.is_null()) {
            o.metadata.insert("adapter_metadata".into(), m.clone());
        }
    }
    if records == 0 {
        return Err(format!("{name}: no records"));
    }
    if o.answer.is_none() {
        return Err(format!("{name}: no record has `output` or `answer`"));
    }
    o.justification = answer_justification.flatten().or(last_justification);
    if let Some(s) = answer_step {
        o.metadata.insert("r2l_answer_step".into(), s);
    }
    Ok(o)
}

fn sha256_hex(bytes: &[u8]) -> String {
    hex::encode(sha2::Sha256::digest(bytes))
}

/// Loads an R2L sweep directory (see [`crate::io::load_r2l_dir`]).
pub(crate) fn load(
    dir: &Path,
    baseline_override: Option<&[(String, String)]>,
) -> Result<SweepData, AnalysisError> {
    let limits = R2lLimits::from_env()?;
    let mpath = dir.join("sweep_manifest.json");
    let m = read_json(&mpath, dir, &limits)?;
    let family = m.get("manifest_schema_family").and_then(Value::as_str);
    if family != Some(FAMILY) {
        return Err(shape(
            &mpath,
            "manifest_schema_family",
            &format!("\"{FAMILY}\", got {}", family.unwrap_or("nothing")),
        ));
    }
    let axes_obj = m
        .get("axes")
        .and_then(Value::as_object)
        .ok_or_else(|| shape(&mpath, "axes", "an object: axis name → list of values"))?;
    if axes_obj.is_empty() {
        return Err(shape(&mpath, "axes", "at least one axis"));
    }
    let mut axes = Vec::new();
    for (name, vals) in axes_obj {
        let key = format!("axes.{name}");
        check_axis_name(name)
            .map_err(|e| shape(&mpath, "axes", &format!("safe axis names, got {e}")))?;
        let arr = vals
            .as_array()
            .filter(|a| !a.is_empty())
            .ok_or_else(|| shape(&mpath, &key, "a non-empty list of values"))?;
        let mut values = arr
            .iter()
            .map(axis_value)
            .collect::<Option<Vec<_>>>()
            .ok_or_else(|| shape(&mpath, &key, "numbers or strings"))?;
        let numeric = values.iter().all(|v| v.as_f64().is_some());
        if numeric {
            // Numerically, never as strings (the earlier tool put 10 before 2).
            values.sort_by(|a, b| {
                a.as_f64()
                    .unwrap_or(0.0)
                    .total_cmp(&b.as_f64().unwrap_or(0.0))
            });
        } else {
            values = values
                .into_iter()
                .map(|v| AxisValue::Level(v.label()))
                .collect();
        }
        for w in values.windows(2) {
            if w[0].label() == w[1].label() || w[0] == w[1] {
                return Err(shape(&mpath, &key, "distinct values"));
            }
        }
        let identity = known_identity(name)
            .map(AxisValue::Num)
            .unwrap_or_else(|| values[0].clone());
        axes.push(Axis {
            name: name.clone(),
            perturbation: name.clone(),
            param: String::new(),
            values,
            identity,
            unit: String::new(),
        });
    }

    // Baseline coordinates: the user's choice, else the known identity when it is in the grid.
    let mut base = vec![None; axes.len()];
    if let Some(ov) = baseline_override {
        for (name, val) in ov {
            let Some(ax) = axes.iter().position(|a| &a.name == name) else {
                return Err(AnalysisError::Baseline(format!(
                    "--baseline names axis `{name}`, but the sweep's axes are {}",
                    axes.iter()
                        .map(|a| a.name.as_str())
                        .collect::<Vec<_>>()
                        .join(", ")
                )));
            };
            let Some(l) = parse_level(&axes[ax], val) else {
                return Err(AnalysisError::Baseline(format!(
                    "--baseline {name}={val}: not a value of the axis (values: {})",
                    axes[ax]
                        .values
                        .iter()
                        .map(AxisValue::label)
                        .collect::<Vec<_>>()
                        .join(", ")
                )));
            };
            base[ax] = Some(l);
        }
    }
    let mut missing = Vec::new();
    for (ax, a) in axes.iter_mut().enumerate() {
        match base[ax] {
            Some(l) => a.identity = a.values[l].clone(),
            None => match known_identity(&a.name).and_then(|x| level_of(a, &AxisValue::Num(x))) {
                Some(l) => base[ax] = Some(l),
                None => missing.push(match known_identity(&a.name) {
                    Some(x) => format!(
                        "`{}` (identity {} is not in the grid)",
                        a.name,
                        clarity_core::json::format_num(x)
                    ),
                    None => format!("`{}` (no known identity value)", a.name),
                }),
            },
        }
    }
    if !missing.is_empty() {
        return Err(AnalysisError::Baseline(format!(
            "{}: the baseline cell is not the identity point of the grid for axis {}; name it with --baseline axis=value,…",
            mpath.display(),
            missing.join(", ")
        )));
    }
    let base: Vec<usize> = base.into_iter().map(|b| b.unwrap_or(0)).collect();

    // Cells: the Cartesian product, row-major (the last axis fastest). Its size is checked
    // before anything is allocated for it.
    let shape_: Vec<usize> = axes.iter().map(|a| a.values.len()).collect();
    let total = shape_
        .iter()
        .try_fold(1u64, |acc, &n| acc.checked_mul(n as u64))
        .filter(|&t| t <= limits.max_cells)
        .ok_or_else(|| {
            AnalysisError::Invalid(format!(
                "{}: the grid of {} has {} cells, above the limit of {} cells (raise it with CLARITY_R2L_MAX_CELLS)",
                mpath.display(),
                shape_
                    .iter()
                    .map(|n| n.to_string())
                    .collect::<Vec<_>>()
                    .join(" × "),
                shape_
                    .iter()
                    .try_fold(1u64, |acc, &n| acc.checked_mul(n as u64))
                    .map_or_else(|| "more than 2^64".to_string(), |t| t.to_string()),
                limits.max_cells
            ))
        })? as usize;
    let mut cells = Vec::with_capacity(total);
    for index in 0..total {
        let mut coords = vec![0; axes.len()];
        let mut rest = index;
        for k in (0..axes.len()).rev() {
            coords[k] = rest % shape_[k];
            rest /= shape_[k];
        }
        let is_baseline = coords == base;
        cells.push(Cell {
            index,
            coords,
            is_baseline,
        });
    }

    let runs = m
        .get("runs")
        .and_then(Value::as_array)
        .ok_or_else(|| shape(&mpath, "runs", "a list of runs"))?;
    let mut seeds: Vec<u64> = match m.get("seeds") {
        Some(s) => serde_json::from_value(s.clone())
            .map_err(|_| shape(&mpath, "seeds", "a list of non-negative integers"))?,
        None => Vec::new(),
    };
    let mut checks = Vec::new();
    let mut failed_runs = Vec::new();
    let mut records = Vec::new();
    let mut cases: BTreeMap<String, Case> = BTreeMap::new();
    for (i, run) in runs.iter().enumerate() {
        let key = format!("runs[{i}]");
        let av: BTreeMap<String, Value> = run
            .get("axis_values")
            .and_then(Value::as_object)
            .map(|o| o.iter().map(|(k, v)| (k.clone(), v.clone())).collect())
            .ok_or_else(|| shape(&mpath, &format!("{key}.axis_values"), "an object"))?;
        let seed = run
            .get("seed")
            .and_then(Value::as_u64)
            .ok_or_else(|| shape(&mpath, &format!("{key}.seed"), "a non-negative integer"))?;
        let mut coords = Vec::new();
        for a in &axes {
            let l = av
                .get(&a.name)
                .and_then(axis_value)
                .and_then(|v| level_of(a, &v))
                .ok_or_else(|| {
                    shape(
                        &mpath,
                        &format!("{key}.axis_values.{}", a.name),
                        "one of the axis's values",
                    )
                })?;
            coords.push(l);
        }
        if av.len() != axes.len() {
            return Err(shape(
                &mpath,
                &format!("{key}.axis_values"),
                "exactly the sweep's axes",
            ));
        }
        let cell = coords.iter().zip(&shape_).fold(0, |f, (c, s)| f * s + c);
        if !seeds.contains(&seed) {
            seeds.push(seed);
        }
        let name = run_dir_name(&av, seed);
        let rdir = dir.join("runs").join(&name);
        // The run directory must stay inside the sweep directory (axis names are checked
        // above; a symlinked `runs/` or run directory could still point elsewhere).
        if let (Ok(real), Ok(root)) = (fs_err::canonicalize(&rdir), fs_err::canonicalize(dir))
            && !real.starts_with(&root)
        {
            return Err(AnalysisError::Invalid(format!(
                "{}: runs/{name} resolves to {}, outside the sweep directory; refused",
                dir.display(),
                real.display()
            )));
        }
        let expected = run
            .get("manifest_hash")
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_ascii_lowercase();
        let rel = |f: &str| format!("runs/{name}/{f}");
        let read = |f: &str| {
            read_contained(&rdir.join(f), dir, limits.max_file_bytes)
                .map_err(|e| e.replace(&rdir.join(f).display().to_string(), &rel(f)))
        };
        let manifest = read("manifest.json");
        let actual = manifest.as_ref().ok().map(|b| sha256_hex(b));
        checks.push(ManifestCheck {
            run: name.clone(),
            ok: actual.as_deref() == Some(expected.as_str()),
            expected,
            actual,
        });
        // The spec names the case: a run without a readable spec (or without `image_path`)
        // cannot be attributed to a case, so the import stops rather than invent one.
        let spec_err = |what: String| {
            AnalysisError::Invalid(format!(
                "{}: {what}; every R2L run needs a spec.json naming its case (`image_path`)",
                dir.join(rel("spec.json")).display()
            ))
        };
        let spec_bytes = read("spec.json").map_err(spec_err)?;
        let spec: Value = serde_json::from_slice(&spec_bytes).map_err(|e| AnalysisError::Json {
            path: dir.join(rel("spec.json")),
            source: e,
        })?;
        let case_id = spec
            .get("image_path")
            .and_then(Value::as_str)
            .ok_or_else(|| spec_err("no `image_path` string".into()))?
            .to_string();
        cases.entry(case_id.clone()).or_insert_with(|| Case {
            id: case_id.clone(),
            image_hash: String::new(),
            label: None,
            prompt: spec
                .get("question")
                .and_then(Value::as_str)
                .map(str::to_string),
            metadata: BTreeMap::new(),
        });
        let trace_name = rel("trace_pack.jsonl");
        let outcome = match (&manifest, read("trace_pack.jsonl")) {
            (Err(e), _) => Err(e.clone()),
            (_, Err(e)) => Err(e),
            (Ok(_), Ok(t)) => match std::str::from_utf8(&t) {
                Ok(t) => parse_trace(t, &trace_name, limits.max_line_bytes),
                Err(e) => Err(format!("{trace_name}: not UTF-8: {e}")),
            },
        };
        if let Err(error) = &outcome {
            failed_runs.push(FailedRun {
                run: name.clone(),
                case_id: case_id.clone(),
                cell,
                seed,
                error: error.clone(),
            });
        }
        records.push(RunRecord {
            key: format!("r2l:{name}"),
            case_id,
            cell,
            seed,
            outcome: match outcome {
                Ok(observation) => Outcome::Ok { observation },
                Err(error) => Outcome::Failed { error, attempts: 1 },
            },
        });
    }
    seeds.sort_unstable();
    seeds.dedup();
    Ok(SweepData {
        axes,
        cells,
        cases: cases.into_values().collect(),
        seeds,
        normalization: Normalization::default(),
        settings: AnalysisSettings::default(),
        records,
        source: SourceInfo {
            kind: SourceKind::R2l,
            dir: dir.to_path_buf(),
            plan_hash: None,
            manifest_checks: checks,
            failed_runs,
        },
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn names_follow_the_encoding() {
        let av: BTreeMap<String, Value> = [
            ("contrast".to_string(), json!(0.9)),
            ("brightness".to_string(), json!(-0.25)),
            ("q".to_string(), json!(10)),
            ("b2".to_string(), json!(1.0)),
        ]
        .into_iter()
        .collect();
        assert_eq!(
            run_dir_name(&av, 42),
            "b2=1p0_brightness=m0p25_contrast=0p9_q=10_seed=42"
        );
        assert_eq!(encode_value(&json!(1e-7)), "1em07");
        assert_eq!(encode_value(&json!("a b/c")), "abc");
    }

    #[test]
    fn answer_is_the_last_record_that_has_one() {
        let t = r#"{"step": 1, "event": "start"}
{"step": 2, "output": "first", "justification": "because", "confidence_score": 0.7}
{"step": 3, "answer": "second", "rich_summary": {"confidence_score": 0.9, "output_entropy": 0.2}}
{"step": 4, "event": "evaluation_complete", "metrics": {"accuracy": 1.0}}
"#;
        let o = parse_trace(t, "t", 1 << 20).unwrap();
        assert_eq!(o.answer.as_deref(), Some("second"));
        assert_eq!(o.confidence, Some(0.9));
        assert_eq!(o.entropy, Some(0.2));
        // The answering record has no justification: the last one seen is used.
        assert_eq!(o.justification.as_deref(), Some("because"));
        let e = parse_trace("{\"step\": 1}\nnot json\n", "x.jsonl", 1 << 20).unwrap_err();
        assert!(e.starts_with("x.jsonl: line 2: invalid JSON"), "{e}");
        let e = parse_trace("{\"event\": 1}\n", "x.jsonl", 1 << 20).unwrap_err();
        assert!(e.contains("neither `step` nor `step_id`"), "{e}");
        let e = parse_trace("{\"step\": 1}\n", "x.jsonl", 1 << 20).unwrap_err();
        assert!(e.contains("no record has `output` or `answer`"), "{e}");
    }

    #[test]
    fn identities() {
        assert_eq!(known_identity("brightness"), Some(1.0));
        assert_eq!(known_identity("gaussian_blur.sigma"), Some(0.0));
        assert_eq!(known_identity("jpeg_quality"), Some(100.0));
        assert_eq!(known_identity("mystery"), None);
    }
}
