//! The plan: the grid of cells, the cases, the seeds, every run and its content key.
//!
//! Cells are the Cartesian product of the axes (first axis slowest); runs are ordered case ×
//! cell × seed (seeds innermost). A run's content key is the BLAKE3 of a length-prefixed
//! encoding of the image content hash, the effective recipe (names, versions and resolved
//! parameters in application order; steps at identity are left out because they do not
//! change the image), the seed, the case id when a step is random (its generator is seeded
//! from it), the prompt and the adapter identity (canonical JSON).

use std::collections::BTreeMap;
use std::sync::Arc;

use clarity_adapters::AdapterIdentity;
use clarity_core::{Axis, AxisValue, Case, Cell, SCHEMA_VERSION};
use clarity_perturb::{ParamValue, Params, Step, registry};
use serde::Serialize;
use serde_json::{Value, json};

use crate::EngineError;
use crate::cohort::CohortCase;
use crate::config::{SEVERITY, SweepConfig};

/// Version of the tool, recorded in `plan.json`.
pub const TOOL_VERSION: &str = concat!("clarity ", env!("CARGO_PKG_VERSION"));

/// One step of a cell's effective recipe.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RecipeStep {
    pub name: String,
    pub version: u32,
    /// Every declared parameter, resolved (defaults filled).
    pub params: BTreeMap<String, ParamValue>,
}

/// One run: (case, cell, seed) and its content key.
#[derive(Debug, Clone)]
pub struct Run {
    /// Index into [`Plan::cases`].
    pub case: usize,
    /// Index into [`Plan::cells`].
    pub cell: usize,
    pub seed: u64,
    /// Content key (64 hex digits).
    pub key: String,
}

/// A planned sweep.
#[derive(Debug, Clone)]
pub struct Plan {
    pub config: SweepConfig,
    pub axes: Vec<Axis>,
    pub cells: Vec<Cell>,
    /// Effective recipe of each cell (empty for the baseline).
    pub recipes: Vec<Arc<Vec<RecipeStep>>>,
    pub cases: Vec<Case>,
    pub seeds: Vec<u64>,
    pub adapter: AdapterIdentity,
    /// In plan order: case × cell × seed.
    pub runs: Vec<Run>,
    /// Index of the baseline cell.
    pub baseline: usize,
    pub plan_hash: String,
}

impl Plan {
    /// The prompt of case `i` (its own, else the config's default).
    pub fn prompt(&self, case: usize) -> Option<&str> {
        self.cases[case]
            .prompt
            .as_deref()
            .or(self.config.prompt.as_deref())
    }

    /// The steps to hand to [`clarity_perturb::Recipe`] for `cell`.
    pub fn steps(&self, cell: usize) -> Vec<Step> {
        self.recipes[cell]
            .iter()
            .map(|s| Step {
                name: s.name.clone(),
                params: s.params.clone(),
            })
            .collect()
    }

    /// `plan.json` as a JSON value (schema in the crate docs).
    pub fn to_json(&self) -> Result<Value, EngineError> {
        let mut v = self.hashed_json()?;
        let o = v.as_object_mut().expect("object");
        o.insert("tool_version".into(), json!(TOOL_VERSION));
        o.insert("plan_hash".into(), json!(self.plan_hash));
        Ok(v)
    }

    fn hashed_json(&self) -> Result<Value, EngineError> {
        hashed_json(
            &self.config,
            &self.axes,
            &self.cells,
            &self.recipes,
            &self.cases,
            &self.seeds,
            &self.adapter,
            self.runs.len(),
        )
    }
}

#[allow(clippy::too_many_arguments)]
fn hashed_json(
    config: &SweepConfig,
    axes: &[Axis],
    cells: &[Cell],
    recipes: &[Arc<Vec<RecipeStep>>],
    cases: &[Case],
    seeds: &[u64],
    adapter: &AdapterIdentity,
    runs: usize,
) -> Result<Value, EngineError> {
    let analysis = match &config.analysis {
        Some(a) => serde_json::to_value(a).map_err(|e| EngineError::Internal(e.to_string()))?,
        None => json!({}),
    };
    let recipes: Vec<&Vec<RecipeStep>> = recipes.iter().map(|r| r.as_ref()).collect();
    let v = json!({
        "schema_version": SCHEMA_VERSION,
        "config": config,
        "axes": axes,
        "cells": cells,
        "recipes": recipes,
        "cases": cases,
        "seeds": seeds,
        "normalization": config.normalization,
        "adapter": adapter,
        "analysis": analysis,
        "runs": runs,
    });
    Ok(clarity_core::json::to_canonical_value(&v)?)
}

/// The cells of the grid (first axis slowest) and the baseline's index.
pub fn grid(axes: &[Axis]) -> (Vec<Cell>, usize) {
    let identity: Vec<usize> = axes
        .iter()
        .map(|a| {
            a.values
                .iter()
                .position(|v| v == &a.identity)
                .expect("config adds the identity value")
        })
        .collect();
    let total: usize = axes.iter().map(|a| a.values.len()).product();
    let mut cells = Vec::with_capacity(total);
    let mut coords = vec![0usize; axes.len()];
    let mut baseline = 0;
    for index in 0..total {
        let is_baseline = coords == identity;
        if is_baseline {
            baseline = index;
        }
        cells.push(Cell {
            index,
            coords: coords.clone(),
            is_baseline,
        });
        for i in (0..axes.len()).rev() {
            coords[i] += 1;
            if coords[i] < axes[i].values.len() {
                break;
            }
            coords[i] = 0;
        }
    }
    (cells, baseline)
}

/// The effective recipe of a cell: for each perturbation in `config.order`, its fixed
/// parameters overridden by the cell's axis values, resolved; steps at identity dropped.
pub fn cell_recipe(config: &SweepConfig, cell: &Cell) -> Result<Vec<RecipeStep>, EngineError> {
    let reg = registry();
    let mut steps = Vec::new();
    for name in &config.order {
        let kernel = reg
            .get(name)
            .ok_or_else(|| EngineError::Internal(format!("unknown perturbation {name}")))?;
        let mut params: Params = config.perturbations.get(name).cloned().unwrap_or_default();
        let mut at_level_zero = false;
        for (axis, &c) in config.axes.iter().zip(&cell.coords) {
            if &axis.perturbation != name {
                continue;
            }
            let value = &axis.values[c];
            if axis.param == SEVERITY {
                let level = value.as_f64().unwrap_or(0.0) as usize;
                if level == 0 {
                    at_level_zero = true;
                } else {
                    params = kernel.presets()[level - 1].clone();
                }
            } else {
                let pv = match value {
                    AxisValue::Num(x) => ParamValue::Num(*x),
                    AxisValue::Level(s) => ParamValue::Text(s.clone()),
                };
                params.insert(axis.param.clone(), pv);
            }
        }
        if at_level_zero {
            continue;
        }
        let resolved = kernel.resolve(&params).map_err(|e| EngineError::Config {
            path: config.source.clone(),
            location: None,
            key: format!("perturbations.{name}"),
            message: e.to_string(),
        })?;
        if kernel.is_identity(&resolved) {
            continue;
        }
        steps.push(RecipeStep {
            name: name.clone(),
            version: kernel.version(),
            params: resolved
                .iter()
                .map(|(k, v)| (k.to_string(), v.clone()))
                .collect(),
        });
    }
    Ok(steps)
}

/// Builds the plan. `adapter` is the identity of the built adapter.
pub fn build_plan(
    config: &SweepConfig,
    cohort: &[CohortCase],
    adapter: AdapterIdentity,
) -> Result<Plan, EngineError> {
    let axes = config.axes.clone();
    let (cells, baseline) = grid(&axes);
    let runs_total = (cohort.len() as u64)
        .saturating_mul(cells.len() as u64)
        .saturating_mul(config.seeds.len() as u64);
    if runs_total > config.limits.max_runs {
        return Err(EngineError::Limit {
            what: format!(
                "the grid ({} cases x {} cells x {} seeds) run count",
                cohort.len(),
                cells.len(),
                config.seeds.len()
            ),
            key: "max_runs",
            actual: runs_total,
            limit: config.limits.max_runs,
        });
    }
    let recipes: Vec<Arc<Vec<RecipeStep>>> = cells
        .iter()
        .map(|c| cell_recipe(config, c).map(Arc::new))
        .collect::<Result<_, _>>()?;
    let cases: Vec<Case> = cohort
        .iter()
        .map(|c| Case {
            id: c.id.clone(),
            image_hash: c.image.content_hash(),
            label: c.label.clone(),
            prompt: c.prompt.clone(),
            metadata: case_metadata(c),
        })
        .collect();

    let adapter_json = clarity_core::json::to_canonical_line(&adapter)?;
    let recipe_json: Vec<String> = recipes
        .iter()
        .map(|r| clarity_core::json::to_canonical_line(r.as_ref()))
        .collect::<Result<_, _>>()?;
    // Random steps draw from a generator seeded by the case id: then the id matters too.
    let random: Vec<bool> = recipes
        .iter()
        .map(|r| {
            r.iter()
                .any(|s| registry().get(&s.name).is_some_and(|k| k.is_random()))
        })
        .collect();
    let mut runs = Vec::with_capacity(runs_total as usize);
    for (ci, case) in cases.iter().enumerate() {
        let prompt = case.prompt.as_deref().or(config.prompt.as_deref());
        for (cell, recipe) in recipe_json.iter().enumerate() {
            for &seed in &config.seeds {
                let rng_case = random[cell].then_some(case.id.as_str());
                let key = content_key(
                    &case.image_hash,
                    recipe,
                    rng_case,
                    seed,
                    prompt,
                    &adapter_json,
                );
                runs.push(Run {
                    case: ci,
                    cell,
                    seed,
                    key,
                });
            }
        }
    }
    let hashed = hashed_json(
        config,
        &axes,
        &cells,
        &recipes,
        &cases,
        &config.seeds,
        &adapter,
        runs.len(),
    )?;
    let plan_hash = blake3::hash(clarity_core::json::to_canonical_line(&hashed)?.as_bytes())
        .to_hex()
        .to_string();
    Ok(Plan {
        config: config.clone(),
        axes,
        cells,
        recipes,
        cases,
        seeds: config.seeds.clone(),
        adapter,
        runs,
        baseline,
        plan_hash,
    })
}

/// The case's metadata, plus `source` (its path relative to the cohort root) and `decode` (how
/// the file became pixels: format, conversions, DICOM windowing) unless the cohort set those.
fn case_metadata(c: &CohortCase) -> BTreeMap<String, Value> {
    let mut m = c.metadata.clone();
    if !c.source.is_empty() {
        m.entry("source".into())
            .or_insert_with(|| Value::String(c.source.clone()));
    }
    if let Some(d) = &c.decode
        && let Ok(v) = serde_json::to_value(d)
    {
        m.entry("decode".into()).or_insert(v);
    }
    m
}

/// The content key of one run (see the module docs). `recipe_json` and `adapter_json` are the
/// canonical one-line JSON of the effective recipe and of the adapter identity.
pub fn content_key(
    image_hash: &str,
    recipe_json: &str,
    rng_case: Option<&str>,
    seed: u64,
    prompt: Option<&str>,
    adapter_json: &str,
) -> String {
    let mut h = blake3::Hasher::new();
    h.update(b"clarity-run-key-v1\0");
    let mut field = |b: &[u8]| {
        h.update(&(b.len() as u64).to_le_bytes());
        h.update(b);
    };
    field(image_hash.as_bytes());
    field(recipe_json.as_bytes());
    field(&seed.to_le_bytes());
    optional(&mut field, rng_case);
    optional(&mut field, prompt);
    field(adapter_json.as_bytes());
    h.finalize().to_hex().to_string()
}

/// A tag byte keeps "absent" apart from an empty string.
fn optional(field: &mut impl FnMut(&[u8]), s: Option<&str>) {
    match s {
        None => field(&[0]),
        Some(p) => {
            let mut b = vec![1];
            b.extend_from_slice(p.as_bytes());
            field(&b);
        }
    }
}

/// A summary of a plan, for `clarity plan` and logs.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PlanSummary {
    pub cases: usize,
    pub cells: usize,
    pub seeds: usize,
    pub runs: usize,
    pub axes: Vec<AxisSummary>,
    pub baseline_cell: usize,
    pub plan_hash: String,
    /// Distinct content keys (runs that share a key are executed once).
    pub distinct_keys: usize,
    /// BLAKE3 over the sorted content keys.
    pub keys_hash: String,
    pub adapter: AdapterIdentity,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct AxisSummary {
    pub name: String,
    pub values: Vec<String>,
    pub identity: String,
}

impl Plan {
    pub fn summary(&self) -> PlanSummary {
        let mut keys: Vec<&str> = self.runs.iter().map(|r| r.key.as_str()).collect();
        keys.sort_unstable();
        keys.dedup();
        let mut h = blake3::Hasher::new();
        for k in &keys {
            h.update(k.as_bytes());
            h.update(b"\n");
        }
        PlanSummary {
            cases: self.cases.len(),
            cells: self.cells.len(),
            seeds: self.seeds.len(),
            runs: self.runs.len(),
            axes: self
                .axes
                .iter()
                .map(|a| AxisSummary {
                    name: a.name.clone(),
                    values: a.values.iter().map(AxisValue::label).collect(),
                    identity: a.identity.label(),
                })
                .collect(),
            baseline_cell: self.baseline,
            plan_hash: self.plan_hash.clone(),
            distinct_keys: keys.len(),
            keys_hash: h.finalize().to_hex().to_string(),
            adapter: self.adapter.clone(),
        }
    }
}
