//! Sweeps as the server sees them: summaries (through the report's loader), the table of runs
//! (through the analysis loader, so any observation storage the loader reads works here too),
//! and the images of a run, regenerated from the sweep's config the way the report's
//! thumbnails are (input image + the cell's recipe, same seed).

use std::collections::{BTreeMap, HashMap};
use std::hash::{Hash, Hasher};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use clarity_analysis::{Normalizer, SourceKind};
use clarity_core::{Axis, Cell, Saliency};
use clarity_engine::Prepared;
use clarity_engine::artifacts::has_observations;
use clarity_report::ReportData;
use serde::Serialize;
use serde_json::{Value, json};

use crate::ApiError;
use crate::paths::id_of;

type Entry<T> = (u64, Arc<T>);

/// In-memory caches, each entry keyed by the sweep directory and invalidated when a file at the
/// top of the directory changes (name, size or modification time).
#[derive(Default)]
pub struct Caches {
    report: Mutex<HashMap<PathBuf, Entry<Result<ReportData, String>>>>,
    runs: Mutex<HashMap<PathBuf, Entry<RunTable>>>,
    prepared: Mutex<HashMap<PathBuf, Entry<Result<Prepared, String>>>>,
}

/// A fingerprint of the files directly in `dir` (changes whenever an artifact is rewritten).
fn fingerprint(dir: &Path) -> u64 {
    let mut entries: Vec<(String, u64, Option<std::time::SystemTime>)> = std::fs::read_dir(dir)
        .map(|rd| {
            rd.filter_map(Result::ok)
                .filter_map(|e| {
                    let m = e.metadata().ok()?;
                    m.is_file().then(|| {
                        (
                            e.file_name().to_string_lossy().into_owned(),
                            m.len(),
                            m.modified().ok(),
                        )
                    })
                })
                .collect()
        })
        .unwrap_or_default();
    entries.sort();
    let mut h = std::collections::hash_map::DefaultHasher::new();
    entries.hash(&mut h);
    h.finish()
}

fn cached<T>(
    map: &Mutex<HashMap<PathBuf, Entry<T>>>,
    dir: &Path,
    load: impl FnOnce() -> T,
) -> Arc<T> {
    let fp = fingerprint(dir);
    if let Some((f, v)) = map.lock().expect("cache lock").get(dir)
        && *f == fp
    {
        return v.clone();
    }
    let v = Arc::new(load());
    map.lock()
        .expect("cache lock")
        .insert(dir.to_path_buf(), (fp, v.clone()));
    v
}

impl Caches {
    /// The report's view of an analysed sweep (`Err` with the loader's message otherwise).
    pub fn report(&self, dir: &Path) -> Arc<Result<ReportData, String>> {
        cached(&self.report, dir, || {
            let opts = clarity_report::load::LoadOptions {
                thumbnails: None,
                max_worst_cases: 0,
                max_case_rows: 0,
            };
            clarity_report::load::load(dir, &opts).map_err(|e| e.to_string())
        })
    }

    /// Every run of the sweep with its answer compared to the baseline.
    pub fn runs(&self, dir: &Path) -> Result<Arc<RunTable>, ApiError> {
        let mut err = None;
        let v = cached(&self.runs, dir, || match RunTable::load(dir) {
            Ok(t) => t,
            Err(e) => {
                err = Some(e);
                RunTable::default()
            }
        });
        match err {
            Some(e) => {
                self.runs.lock().expect("cache lock").remove(dir);
                Err(e)
            }
            None => Ok(v),
        }
    }

    /// The sweep's prepared plan (cohort + recipes), from a config under `root` whose output is
    /// `dir` and whose plan has the same hash as `dir/plan.json`.
    pub fn prepared(&self, root: &Path, dir: &Path) -> Arc<Result<Prepared, String>> {
        cached(&self.prepared, dir, || find_prepared(root, dir))
    }
}

/// The status of a sweep directory.
pub fn status(dir: &Path, kind: SourceKind, running: bool) -> &'static str {
    if running {
        "running"
    } else if kind == SourceKind::Clarity && !has_observations(dir) {
        "incomplete"
    } else if !dir.join("metrics.json").is_file() {
        "not analysed"
    } else {
        "analysed"
    }
}

/// One line of the sweep list.
pub fn summary(caches: &Caches, root: &Path, dir: &Path, running: bool) -> Value {
    let id = id_of(root, dir);
    let name = dir
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| id.clone());
    let kind = clarity_analysis::io::detect(dir).unwrap_or(SourceKind::Clarity);
    let status = status(dir, kind, running);
    let kind_s = match kind {
        SourceKind::Clarity => "clarity",
        SourceKind::R2l => "r2l",
    };
    let mut v = json!({
        "id": id, "name": name, "kind": kind_s, "status": status,
        "model": Value::Null, "cohort": Value::Null, "runs": Value::Null, "headline": [],
    });
    if status == "analysed" {
        match caches.report(dir).as_ref() {
            Ok(d) => {
                v["model"] = json!(model_name(d));
                v["cohort"] = json!({ "name": d.cohort.name, "cases": d.cohort.cases });
                v["runs"] =
                    json!({ "planned": d.runs.planned, "ok": d.runs.ok, "failed": d.runs.failed });
                v["headline"] = json!(clarity_report::doc::headline(d));
            }
            Err(e) => v["error"] = json!(e),
        }
    } else if kind == SourceKind::Clarity
        && let Ok(text) = std::fs::read_to_string(dir.join("plan.json"))
        && let Ok(plan) = serde_json::from_str::<Value>(&text)
    {
        let a = &plan["adapter"];
        v["model"] = json!(format!(
            "{}/{}",
            a["adapter"].as_str().unwrap_or(""),
            a["model"].as_str().unwrap_or("")
        ));
        v["cohort"] = json!({
            "name": "",
            "cases": plan["cases"].as_array().map_or(0, Vec::len),
        });
        v["runs"] = json!({ "planned": plan["runs"].as_u64().unwrap_or(0) });
    }
    v
}

/// `adapter/model` (with `@version` when known).
pub fn model_name(d: &ReportData) -> String {
    let m = &d.model;
    let base = if m.adapter.is_empty() {
        m.model.clone()
    } else {
        format!("{}/{}", m.adapter, m.model)
    };
    if m.version.is_empty() {
        base
    } else {
        format!("{base}@{}", m.version)
    }
}

pub use clarity_report::load::cell_label;

/// One run, as the API and the case browser show it.
#[derive(Debug, Clone, Serialize)]
pub struct RunRow {
    pub case_id: String,
    pub label: Option<String>,
    pub cell: usize,
    /// `axis=value, …` of the cell (`baseline`).
    pub cell_label: String,
    /// Every axis's value label at this cell.
    pub values: BTreeMap<String, String>,
    pub seed: u64,
    /// `ok` or `failed`.
    pub status: &'static str,
    pub answer: Option<String>,
    /// The answer after the sweep's normalisation (what is compared).
    pub normalized: Option<String>,
    /// The normalised answer of the same case and seed in the baseline cell.
    pub baseline_answer: Option<String>,
    /// Normalised answer differs from the baseline's (`None`: no baseline answer to compare).
    pub flipped: Option<bool>,
    pub confidence: Option<f64>,
    pub justification: Option<String>,
    pub error: Option<String>,
    pub has_saliency: bool,
}

/// Every run of a sweep, sorted by case (cohort order), cell, seed.
#[derive(Debug, Default)]
pub struct RunTable {
    pub axes: Vec<Axis>,
    pub cells: Vec<Cell>,
    pub baseline: usize,
    pub rows: Vec<RunRow>,
    pub saliency: Vec<Option<Saliency>>,
    pub kind: Option<SourceKind>,
}

impl RunTable {
    pub(crate) fn load(dir: &Path) -> Result<RunTable, ApiError> {
        let kind =
            clarity_analysis::io::detect(dir).map_err(|e| ApiError::not_found(e.to_string()))?;
        // An R2L sweep may have had its baseline named at analysis time (metrics.json).
        let baseline_override = match kind {
            SourceKind::R2l => r2l_baseline(dir),
            SourceKind::Clarity => None,
        };
        let data = clarity_analysis::io::load_dir(dir, baseline_override.as_deref())
            .map_err(|e| ApiError::bad_request(format!("{}: {e}", dir.display())))?;
        let baseline = data
            .baseline()
            .map_err(|e| ApiError::bad_request(format!("{}: {e}", dir.display())))?;
        let norm = Normalizer::new(&data.normalization)
            .map_err(|e| ApiError::bad_request(e.to_string()))?;
        let order: HashMap<&str, usize> = data
            .cases
            .iter()
            .enumerate()
            .map(|(i, c)| (c.id.as_str(), i))
            .collect();
        let labels: HashMap<&str, Option<String>> = data
            .cases
            .iter()
            .map(|c| (c.id.as_str(), c.label.clone()))
            .collect();
        let mut base: HashMap<(&str, u64), String> = HashMap::new();
        for r in &data.records {
            if r.cell == baseline
                && let Some(o) = r.observation()
            {
                base.insert(
                    (r.case_id.as_str(), r.seed),
                    norm.normalize(o.answer.as_deref().unwrap_or("")),
                );
            }
        }
        let mut records: Vec<&clarity_core::RunRecord> = data.records.iter().collect();
        records.sort_by_key(|r| {
            (
                order.get(r.case_id.as_str()).copied().unwrap_or(usize::MAX),
                r.case_id.clone(),
                r.cell,
                r.seed,
            )
        });
        let mut rows = Vec::with_capacity(records.len());
        let mut saliency = Vec::with_capacity(records.len());
        for r in records {
            let Some(cell) = data.cells.get(r.cell) else {
                continue;
            };
            let values = data
                .axes
                .iter()
                .zip(&cell.coords)
                .map(|(a, c)| {
                    (
                        a.name.clone(),
                        a.values.get(*c).map(|v| v.label()).unwrap_or_default(),
                    )
                })
                .collect();
            let baseline_answer = base.get(&(r.case_id.as_str(), r.seed)).cloned();
            let obs = r.observation();
            let normalized = obs.map(|o| norm.normalize(o.answer.as_deref().unwrap_or("")));
            let flipped = match (&normalized, &baseline_answer) {
                (Some(a), Some(b)) => Some(a != b),
                _ => None,
            };
            let error = match &r.outcome {
                clarity_core::Outcome::Failed { error, .. } => Some(error.clone()),
                clarity_core::Outcome::Ok { .. } => None,
            };
            rows.push(RunRow {
                case_id: r.case_id.clone(),
                label: labels.get(r.case_id.as_str()).cloned().flatten(),
                cell: r.cell,
                cell_label: cell_label(&data.axes, cell),
                values,
                seed: r.seed,
                status: if obs.is_some() { "ok" } else { "failed" },
                answer: obs.and_then(|o| o.answer.clone()),
                normalized,
                baseline_answer,
                flipped,
                confidence: obs.and_then(|o| o.confidence),
                justification: obs.and_then(|o| o.justification.clone()),
                error,
                has_saliency: obs.is_some_and(|o| o.saliency.is_some()),
            });
            saliency.push(obs.and_then(|o| o.saliency.clone()));
        }
        Ok(RunTable {
            axes: data.axes,
            cells: data.cells,
            baseline,
            rows,
            saliency,
            kind: Some(kind),
        })
    }

    /// Position of the run `(case, cell, seed)`.
    pub fn find(&self, case: &str, cell: usize, seed: u64) -> Option<usize> {
        self.rows
            .iter()
            .position(|r| r.case_id == case && r.cell == cell && r.seed == seed)
    }
}

/// The baseline an R2L sweep was analysed with, from its `metrics.json` (`axis → value` of the
/// baseline cell), as the report's loader reads it.
fn r2l_baseline(dir: &Path) -> Option<Vec<(String, String)>> {
    let m: Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("metrics.json")).ok()?).ok()?;
    let b = m.get("baseline_cell")?.as_u64()? as usize;
    let values = m
        .get("cells")?
        .as_array()?
        .get(b)?
        .get("values")?
        .as_array()?;
    let axes = m.get("axes")?.as_array()?;
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

/// Filters of the runs table (all optional; empty strings from HTML forms mean "any").
#[derive(Debug, Clone, Default, serde::Deserialize)]
pub struct RunFilter {
    pub case: Option<String>,
    pub cell: Option<String>,
    /// `axis=value[,axis=value]`: runs whose cell has these axis values.
    pub axis: Option<String>,
    /// Normalised answer (case-insensitive).
    pub answer: Option<String>,
    /// `true` / `false`.
    pub flipped: Option<String>,
    /// `true` / `false`.
    pub failed: Option<String>,
    pub offset: Option<String>,
    pub limit: Option<String>,
}

/// Most rows of one page.
pub const MAX_PAGE: usize = 1000;
/// Rows of a page unless `limit` says otherwise.
pub const DEFAULT_PAGE: usize = 50;

fn nonempty(s: &Option<String>) -> Option<&str> {
    s.as_deref()
        .map(str::trim)
        .filter(|s| !s.is_empty() && *s != "any")
}

fn parse_bool(key: &str, s: &Option<String>) -> Result<Option<bool>, ApiError> {
    match nonempty(s) {
        None => Ok(None),
        Some("true") | Some("1") | Some("yes") => Ok(Some(true)),
        Some("false") | Some("0") | Some("no") => Ok(Some(false)),
        Some(o) => Err(ApiError::bad_request(format!(
            "`{key}`: expected true or false, got `{o}`"
        ))),
    }
}

fn parse_usize(key: &str, s: &Option<String>) -> Result<Option<usize>, ApiError> {
    nonempty(s)
        .map(|v| {
            v.parse().map_err(|_| {
                ApiError::bad_request(format!(
                    "`{key}`: expected a non-negative integer, got `{v}`"
                ))
            })
        })
        .transpose()
}

/// One page of filtered runs.
#[derive(Debug, Serialize)]
pub struct RunPage<'a> {
    pub total: usize,
    pub offset: usize,
    pub limit: usize,
    pub runs: Vec<&'a RunRow>,
}

impl RunFilter {
    /// Applies the filter; errors name the bad parameter.
    pub fn apply<'a>(&self, t: &'a RunTable) -> Result<RunPage<'a>, ApiError> {
        let cell = parse_usize("cell", &self.cell)?;
        if let Some(c) = cell
            && c >= t.cells.len()
        {
            return Err(ApiError::bad_request(format!(
                "`cell`: {c} is not a cell of this sweep (0..{})",
                t.cells.len()
            )));
        }
        let flipped = parse_bool("flipped", &self.flipped)?;
        let failed = parse_bool("failed", &self.failed)?;
        let offset = parse_usize("offset", &self.offset)?.unwrap_or(0);
        let limit = parse_usize("limit", &self.limit)?
            .unwrap_or(DEFAULT_PAGE)
            .clamp(1, MAX_PAGE);
        let mut axis: Vec<(String, String)> = Vec::new();
        if let Some(spec) = nonempty(&self.axis) {
            for part in spec.split(',').map(str::trim).filter(|p| !p.is_empty()) {
                let Some((name, value)) = part.split_once('=') else {
                    return Err(ApiError::bad_request(format!(
                        "`axis`: `{part}`: expected axis=value"
                    )));
                };
                let (name, value) = (name.trim(), value.trim());
                let Some(a) = t.axes.iter().find(|a| a.name == name) else {
                    let names: Vec<&str> = t.axes.iter().map(|a| a.name.as_str()).collect();
                    return Err(ApiError::bad_request(format!(
                        "`axis`: no axis `{name}` in this sweep (axes: {})",
                        names.join(", ")
                    )));
                };
                if !a.values.iter().any(|v| v.label() == value) {
                    let vals: Vec<String> = a.values.iter().map(|v| v.label()).collect();
                    return Err(ApiError::bad_request(format!(
                        "`axis`: `{name}` has no value `{value}` (values: {})",
                        vals.join(", ")
                    )));
                }
                axis.push((name.to_string(), value.to_string()));
            }
        }
        let case = nonempty(&self.case);
        let answer = nonempty(&self.answer).map(str::to_lowercase);
        let matching: Vec<&RunRow> = t
            .rows
            .iter()
            .filter(|r| case.is_none_or(|c| r.case_id == c))
            .filter(|r| cell.is_none_or(|c| r.cell == c))
            .filter(|r| {
                axis.iter()
                    .all(|(n, v)| r.values.get(n).is_some_and(|x| x == v))
            })
            .filter(|r| {
                answer.as_ref().is_none_or(|a| {
                    r.normalized
                        .as_ref()
                        .is_some_and(|x| x.to_lowercase() == *a)
                })
            })
            .filter(|r| flipped.is_none_or(|f| r.flipped == Some(f)))
            .filter(|r| failed.is_none_or(|f| (r.status == "failed") == f))
            .collect();
        let total = matching.len();
        let runs = matching.into_iter().skip(offset).take(limit).collect();
        Ok(RunPage {
            total,
            offset,
            limit,
            runs,
        })
    }
}

/// Finds the config under `root` that produced `dir` and prepares it (cohort + plan); the plan
/// hash must match the directory's `plan.json`.
fn find_prepared(root: &Path, dir: &Path) -> Result<Prepared, String> {
    find_config(root, dir)
        .map(|(_, p)| p)
        .map_err(|e| format!("{e} to see its images"))
}

/// The config under `root` (its path relative to the root) whose `output` is `dir` and whose
/// plan has the hash recorded in `dir/plan.json`, prepared. The error says what is missing
/// (without a trailing full stop, so callers can say what it is needed for).
pub fn find_config(root: &Path, dir: &Path) -> Result<(String, Prepared), String> {
    let recorded = std::fs::read_to_string(dir.join("plan.json"))
        .ok()
        .and_then(|t| clarity_engine::artifacts::plan_hash_of(&t))
        .ok_or_else(|| {
            "not a Clarity sweep with a plan (plan.json with a plan_hash); this one has none"
                .to_string()
        })?;
    for rel in crate::paths::discover_configs(root) {
        let path = root.join(&rel);
        let Ok(config) = clarity_engine::load_config(&path) else {
            continue;
        };
        let Ok(out) = clarity_engine::output_dir(&config, None) else {
            continue;
        };
        let same = std::fs::canonicalize(&out).is_ok_and(|o| o == dir);
        if !same {
            continue;
        }
        match clarity_engine::prepare(config) {
            Ok(p) if p.plan.plan_hash == recorded => return Ok((rel, p)),
            Ok(_) => continue,
            Err(e) => tracing::warn!("{rel}: {e}"),
        }
    }
    Err(format!(
        "no config under the served root plans this sweep (plan {}): put the sweep's config \
         (with `output` pointing at the sweep directory) under the root",
        &recorded[..recorded.len().min(16)]
    ))
}

/// Which image of a run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Which {
    /// The input image (the baseline cell).
    Baseline,
    /// The image the model saw in the run's cell.
    Perturbed,
}

/// The image `which` of run `(case, cell, seed)` as PNG (or, with `overlay`, the report's
/// saliency thumbnail: PNG or JPEG). Returns `(mime, bytes)`.
#[allow(clippy::too_many_arguments)]
pub fn run_image(
    caches: &Caches,
    root: &Path,
    dir: &Path,
    case: &str,
    cell: usize,
    seed: u64,
    which: Which,
    overlay: bool,
    window: Option<Window>,
) -> Result<(&'static str, Vec<u8>), ApiError> {
    let table = caches.runs(dir)?;
    if table.kind == Some(SourceKind::R2l) {
        return Err(ApiError::not_found(
            "images of R2L sweeps are not regenerated (their runs carry no Clarity plan)",
        ));
    }
    let Some(pos) = table.find(case, cell, seed) else {
        return Err(ApiError::not_found(format!(
            "no run of case `{case}` in cell {cell} with seed {seed}"
        )));
    };
    let prepared = caches.prepared(root, dir);
    let prepared = prepared
        .as_ref()
        .as_ref()
        .map_err(|e| ApiError::not_found(e.clone()))?;
    let Some(input) = prepared.cohort.iter().find(|c| c.id == case) else {
        return Err(ApiError::not_found(format!(
            "case `{case}` is not in the config's cohort"
        )));
    };
    let (cell_index, saliency) = match which {
        Which::Baseline => {
            let b = table.find(case, table.baseline, seed);
            (table.baseline, b.and_then(|i| table.saliency[i].as_ref()))
        }
        Which::Perturbed => (cell, table.saliency[pos].as_ref()),
    };
    let image = if cell_index == prepared.plan.baseline {
        input.image.as_ref().clone()
    } else {
        let recipe = clarity_perturb::Recipe {
            steps: prepared.plan.steps(cell_index),
        };
        recipe
            .apply(&input.image, seed, case)
            .map_err(|e| ApiError::internal(format!("perturbing `{case}`: {e}")))?
    };
    if overlay {
        let Some(s) = saliency else {
            return Err(ApiError::not_found("this run recorded no saliency map"));
        };
        let t = clarity_report::thumbnail(&image, Some(s))
            .ok_or_else(|| ApiError::internal("cannot render the overlay"))?;
        return Ok((t.mime, t.bytes));
    }
    let image = match window {
        Some(w) => apply_window(&image, w),
        None => image,
    };
    Ok(("image/png", clarity_image::encode_png(&image)))
}

/// A display window over sample values: `lo` maps to black, `hi` to white (linear between,
/// clamped outside), giving an 8-bit image — how a 16-bit source is looked at.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Window {
    pub lo: u32,
    pub hi: u32,
}

impl Window {
    /// Parses `LO,HI` (sample values, `LO < HI`, at most 65535).
    pub fn parse(s: &str) -> Result<Self, ApiError> {
        let bad = || {
            ApiError::bad_request(format!(
                "`window`: expected LO,HI sample values with LO < HI <= 65535, got `{s}`"
            ))
        };
        let (lo, hi) = s.split_once(',').ok_or_else(bad)?;
        let (lo, hi): (u32, u32) = (
            lo.trim().parse().map_err(|_| bad())?,
            hi.trim().parse().map_err(|_| bad())?,
        );
        if lo >= hi || hi > u32::from(u16::MAX) {
            return Err(bad());
        }
        Ok(Self { lo, hi })
    }
}

/// Maps every sample through `w` into an 8-bit image with the same channels.
pub fn apply_window(image: &clarity_image::Image, w: Window) -> clarity_image::Image {
    let span = f64::from(w.hi - w.lo);
    let map = |v: u32| -> u8 {
        let t = (f64::from(v.clamp(w.lo, w.hi) - w.lo) / span * 255.0).round();
        t as u8
    };
    let data: Vec<u8> = match image.samples() {
        clarity_image::Samples::U8(v) => v.iter().map(|&x| map(u32::from(x))).collect(),
        clarity_image::Samples::U16(v) => v.iter().map(|&x| map(u32::from(x))).collect(),
    };
    clarity_image::Image::from_u8(image.width(), image.height(), image.channels(), data)
        .expect("same dimensions and channels")
}

/// The bit depth and the smallest and largest sample of a case's source image (the console
/// offers window controls for 16-bit sources, starting from this range).
pub fn source_range(
    caches: &Caches,
    root: &Path,
    dir: &Path,
    case: &str,
) -> Option<(clarity_image::BitDepth, u32, u32)> {
    let prepared = caches.prepared(root, dir);
    let input = prepared
        .as_ref()
        .as_ref()
        .ok()?
        .cohort
        .iter()
        .find(|c| c.id == case)?
        .image
        .clone();
    let (lo, hi) = match input.samples() {
        clarity_image::Samples::U8(v) => v.iter().fold((u32::MAX, 0), |(a, b), &x| {
            (a.min(u32::from(x)), b.max(u32::from(x)))
        }),
        clarity_image::Samples::U16(v) => v.iter().fold((u32::MAX, 0), |(a, b), &x| {
            (a.min(u32::from(x)), b.max(u32::from(x)))
        }),
    };
    Some((input.depth(), lo, hi.max(lo + 1)))
}
