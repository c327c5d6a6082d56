//! The plan: the grid of cells, the cases, the seeds, every run and its content key.
//!
//! Cells are the Cartesian product of the axes (first axis slowest); runs are ordered case ×
//! cell × seed (seeds innermost). A run's content key is the BLAKE3 of a length-prefixed
//! encoding of the image content hash, the effective recipe (names, versions and resolved
//! parameters in application order; steps at identity are left out because they do not
//! change the image), the seed, the case id when a step is random (its generator is seeded
//! from it), the prompt and the adapter identity (canonical JSON).
//!
//! Memory does not grow with the run count: cells and runs are derived from their index on
//! demand ([`Plan::cell`], [`Plan::run`], [`Plan::runs`]); only the axes, cases and seeds are
//! held, plus each cell's recipe when the grid has at most [`MEMO_CELLS`] cells. Sizes are
//! checked with checked arithmetic against `limits.max_runs` before anything proportional to
//! them is allocated ([`check_run_count`]). `plan.json` and the plan hash are streamed, one
//! cell at a time ([`Plan::write_json`]).

use std::collections::BTreeMap;
use std::io::Write;
use std::sync::Arc;

use clarity_adapters::AdapterIdentity;
use clarity_core::{Axis, AxisValue, Case, Cell, SCHEMA_VERSION};
use clarity_perturb::{ParamValue, Params, Step, registry};
use serde::Serialize;
use serde_json::{Value, json};

use crate::EngineError;
use crate::cohort::CohortCase;
use crate::config::{CohortConfig, SEVERITY, SweepConfig};

/// Version of the tool, recorded in `plan.json`.
pub const TOOL_VERSION: &str = concat!("clarity ", env!("CARGO_PKG_VERSION"));

/// Grids of at most this many cells keep every cell's recipe in memory (a few hundred bytes
/// each); larger ones recompute a cell's recipe when it is needed.
pub const MEMO_CELLS: usize = 1 << 16;

/// One step of a cell's effective recipe.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RecipeStep {
    pub name: String,
    pub version: u32,
    /// Every declared parameter, resolved (defaults filled).
    pub params: BTreeMap<String, ParamValue>,
}

/// One run: (case, cell, seed) and its content key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Run {
    /// Index of the run in plan order.
    pub index: usize,
    /// Index into [`Plan::cases`].
    pub case: usize,
    /// Index of the cell (see [`Plan::cell`]).
    pub cell: usize,
    pub seed: u64,
    /// Content key (64 hex digits).
    pub key: String,
}

/// What the content key needs of a cell.
#[derive(Debug, Clone)]
struct CellRecipe {
    steps: Arc<Vec<RecipeStep>>,
    /// Canonical one-line JSON of `steps`.
    json: Arc<str>,
    /// Some step is random (its generator is seeded by the case id).
    random: bool,
}

/// A planned sweep.
#[derive(Debug, Clone)]
pub struct Plan {
    pub config: SweepConfig,
    pub axes: Vec<Axis>,
    pub cases: Vec<Case>,
    pub seeds: Vec<u64>,
    pub adapter: AdapterIdentity,
    /// Index of the baseline cell.
    pub baseline: usize,
    pub plan_hash: String,
    n_cells: usize,
    adapter_json: String,
    /// Every cell's recipe, for grids of at most [`MEMO_CELLS`] cells.
    memo: Option<Arc<Vec<CellRecipe>>>,
}

impl Plan {
    /// Number of cells of the grid.
    pub fn n_cells(&self) -> usize {
        self.n_cells
    }

    /// Number of runs (cases × cells × seeds).
    pub fn n_runs(&self) -> usize {
        self.cases.len() * self.n_cells * self.seeds.len()
    }

    /// Cell `index` (first axis slowest).
    pub fn cell(&self, index: usize) -> Cell {
        cell_at(&self.axes, index, self.baseline)
    }

    /// Every cell, in order.
    pub fn cells(&self) -> impl Iterator<Item = Cell> + '_ {
        (0..self.n_cells).map(|i| self.cell(i))
    }

    fn cell_recipe(&self, cell: usize) -> CellRecipe {
        match &self.memo {
            Some(m) => m[cell].clone(),
            None => recipe_of(&self.config, &self.cell(cell))
                .expect("every cell's recipe was checked when planning"),
        }
    }

    /// The effective recipe of `cell` (empty for the baseline).
    pub fn recipe(&self, cell: usize) -> Arc<Vec<RecipeStep>> {
        self.cell_recipe(cell).steps
    }

    /// The prompt of case `i` (its own, else the config's default).
    pub fn prompt(&self, case: usize) -> Option<&str> {
        self.cases[case]
            .prompt
            .as_deref()
            .or(self.config.prompt.as_deref())
    }

    /// The steps to hand to [`clarity_perturb::Recipe`] for `cell`.
    pub fn steps(&self, cell: usize) -> Vec<Step> {
        self.recipe(cell)
            .iter()
            .map(|s| Step {
                name: s.name.clone(),
                params: s.params.clone(),
            })
            .collect()
    }

    fn key(&self, case: usize, recipe: &CellRecipe, seed: u64) -> String {
        let c = &self.cases[case];
        content_key(
            &c.image_hash,
            &recipe.json,
            recipe.random.then_some(c.id.as_str()),
            seed,
            self.prompt(case),
            &self.adapter_json,
        )
    }

    /// Run `index` in plan order (case × cell × seed), its key computed.
    pub fn run(&self, index: usize) -> Run {
        let s = self.seeds.len();
        let seed_i = index % s;
        let cell = (index / s) % self.n_cells;
        let case = index / (s * self.n_cells);
        let seed = self.seeds[seed_i];
        let key = self.key(case, &self.cell_recipe(cell), seed);
        Run {
            index,
            case,
            cell,
            seed,
            key,
        }
    }

    /// Every run in plan order (each cell's recipe computed once per case).
    pub fn runs(&self) -> impl Iterator<Item = Run> + '_ {
        let per_case = self.n_cells;
        (0..self.cases.len() * per_case).flat_map(move |cc| {
            let (case, cell) = (cc / per_case, cc % per_case);
            let recipe = self.cell_recipe(cell);
            let base = cc * self.seeds.len();
            self.seeds.iter().enumerate().map(move |(si, &seed)| Run {
                index: base + si,
                case,
                cell,
                seed,
                key: self.key(case, &recipe, seed),
            })
        })
    }

    /// `plan.json` as a JSON value (schema in the crate docs). Holds every cell: for tests and
    /// small plans; [`Plan::write_json`] streams.
    pub fn to_json(&self) -> Result<Value, EngineError> {
        let mut buf = Vec::new();
        self.write_json(&mut buf)?;
        serde_json::from_slice(&buf).map_err(|e| EngineError::Internal(e.to_string()))
    }

    /// Writes `plan.json` (canonical, pretty) to `w`, one cell at a time.
    pub fn write_json(&self, w: &mut dyn Write) -> Result<(), EngineError> {
        let mut extra = BTreeMap::new();
        extra.insert("tool_version", json!(TOOL_VERSION));
        extra.insert("plan_hash", json!(self.plan_hash));
        emit(
            w,
            true,
            &self.config,
            &self.axes,
            &self.cases,
            &self.adapter,
            self.n_cells,
            self.n_runs(),
            extra,
            &mut |i| recipe_ok(self, i),
            &|i| self.cell(i),
        )?;
        w.write_all(b"\n")?;
        Ok(())
    }
}

fn recipe_ok(plan: &Plan, cell: usize) -> Result<Arc<Vec<RecipeStep>>, EngineError> {
    Ok(plan.recipe(cell))
}

/// Cell `index` of the grid of `axes` (mixed radix, first axis slowest).
fn cell_at(axes: &[Axis], index: usize, baseline: usize) -> Cell {
    let mut coords = vec![0usize; axes.len()];
    let mut rest = index;
    for (i, a) in axes.iter().enumerate().rev() {
        let n = a.values.len();
        coords[i] = rest % n;
        rest /= n;
    }
    Cell {
        index,
        coords,
        is_baseline: index == baseline,
    }
}

/// The number of cells of the grid of `axes` (`None`: it overflows).
pub fn cell_count(axes: &[Axis]) -> Option<u64> {
    axes.iter()
        .try_fold(1u64, |acc, a| acc.checked_mul(a.values.len() as u64))
}

/// The index of the baseline cell (every axis at its identity value).
fn baseline_index(axes: &[Axis]) -> usize {
    axes.iter().fold(0usize, |acc, a| {
        let id = a
            .values
            .iter()
            .position(|v| v == &a.identity)
            .expect("config adds the identity value");
        acc * a.values.len() + id
    })
}

/// The cells of the grid (first axis slowest) and the baseline's index. Allocates every cell:
/// for small grids (tests, tools); the plan derives cells on demand.
pub fn grid(axes: &[Axis]) -> (Vec<Cell>, usize) {
    let baseline = baseline_index(axes);
    let total = cell_count(axes).expect("grid size fits in u64") as usize;
    (
        (0..total).map(|i| cell_at(axes, i, baseline)).collect(),
        baseline,
    )
}

/// Refuses a sweep whose run count (`cases` × cells × seeds) is above `limits.max_runs`, with
/// checked arithmetic, before anything proportional to it is allocated. `cases` is the cohort
/// size when known (1 before a folder or manifest is read).
pub fn check_run_count(config: &SweepConfig, cases: u64) -> Result<u64, EngineError> {
    let max = config.limits.max_runs;
    let cells = cell_count(&config.axes);
    let seeds = config.seeds.len() as u64;
    let total = cells
        .and_then(|c| c.checked_mul(seeds))
        .and_then(|r| r.checked_mul(cases));
    match total {
        Some(t) if t <= max => Ok(t),
        _ => Err(EngineError::Limit {
            what: format!(
                "the grid ({cases} cases x {} cells x {seeds} seeds) run count",
                cells.map_or_else(|| "more than 2^64".to_string(), |c| c.to_string()),
            ),
            key: "max_runs",
            actual: total.unwrap_or(u64::MAX),
            limit: max,
        }),
    }
}

/// The cohort size a config declares before loading it (builtin phantoms), else 1.
pub fn declared_cases(config: &SweepConfig) -> u64 {
    match &config.cohort {
        CohortConfig::Builtin { n, .. } => *n as u64,
        _ => 1,
    }
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

fn recipe_of(config: &SweepConfig, cell: &Cell) -> Result<CellRecipe, EngineError> {
    let steps = cell_recipe(config, cell)?;
    let json = clarity_core::json::to_canonical_line(&steps)?;
    // Random steps draw from a generator seeded by the case id: then the id matters too.
    let random = steps
        .iter()
        .any(|s| registry().get(&s.name).is_some_and(|k| k.is_random()));
    Ok(CellRecipe {
        steps: Arc::new(steps),
        json: json.into(),
        random,
    })
}

/// Builds the plan. `adapter` is the identity of the built adapter.
pub fn build_plan(
    config: &SweepConfig,
    cohort: &[CohortCase],
    adapter: AdapterIdentity,
) -> Result<Plan, EngineError> {
    check_run_count(config, cohort.len() as u64)?;
    let axes = config.axes.clone();
    let n_cells = cell_count(&axes).expect("checked") as usize;
    let baseline = baseline_index(&axes);
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
    let memo = if n_cells <= MEMO_CELLS {
        let v: Vec<CellRecipe> = (0..n_cells)
            .map(|i| recipe_of(config, &cell_at(&axes, i, baseline)))
            .collect::<Result<_, _>>()?;
        Some(Arc::new(v))
    } else {
        None
    };
    let runs = cases.len() * n_cells * config.seeds.len();
    // The plan hash: BLAKE3 of the canonical one-line JSON of the plan (without the tool
    // version and the hash itself), streamed. Large grids check every cell's recipe here.
    let mut hasher = blake3::Hasher::new();
    {
        let mut recipe = |i: usize| -> Result<Arc<Vec<RecipeStep>>, EngineError> {
            match &memo {
                Some(m) => Ok(m[i].steps.clone()),
                None => Ok(Arc::new(cell_recipe(config, &cell_at(&axes, i, baseline))?)),
            }
        };
        emit(
            &mut hasher,
            false,
            config,
            &axes,
            &cases,
            &adapter,
            n_cells,
            runs,
            BTreeMap::new(),
            &mut recipe,
            &|i| cell_at(&axes, i, baseline),
        )?;
    }
    let plan_hash = hasher.finalize().to_hex().to_string();
    Ok(Plan {
        config: config.clone(),
        axes,
        cases,
        seeds: config.seeds.clone(),
        adapter,
        baseline,
        plan_hash,
        n_cells,
        adapter_json,
        memo,
    })
}

/// Streams the plan object as canonical JSON: keys sorted, `cells` and `recipes` one element
/// at a time. `pretty`: the layout of `serde_json::to_string_pretty` (two-space indent), else
/// one line. Produces exactly the bytes of serialising the whole value at once (tested).
#[allow(clippy::too_many_arguments)]
fn emit(
    w: &mut dyn Write,
    pretty: bool,
    config: &SweepConfig,
    axes: &[Axis],
    cases: &[Case],
    adapter: &AdapterIdentity,
    n_cells: usize,
    runs: usize,
    extra: BTreeMap<&'static str, Value>,
    recipe: &mut dyn FnMut(usize) -> Result<Arc<Vec<RecipeStep>>, EngineError>,
    cell: &dyn Fn(usize) -> Cell,
) -> Result<(), EngineError> {
    enum Field {
        Value(Value),
        Cells,
        Recipes,
    }
    let canon = |v: &dyn erased::Ser| -> Result<Value, EngineError> { v.canonical() };
    let analysis = match &config.analysis {
        Some(a) => canon(a)?,
        None => json!({}),
    };
    let mut fields: BTreeMap<&str, Field> = BTreeMap::new();
    fields.insert("schema_version", Field::Value(json!(SCHEMA_VERSION)));
    fields.insert("config", Field::Value(canon(config)?));
    fields.insert("axes", Field::Value(canon(&axes)?));
    fields.insert("cells", Field::Cells);
    fields.insert("recipes", Field::Recipes);
    fields.insert("cases", Field::Value(canon(&cases)?));
    fields.insert("seeds", Field::Value(canon(&config.seeds)?));
    fields.insert("normalization", Field::Value(canon(&config.normalization)?));
    fields.insert("adapter", Field::Value(canon(adapter)?));
    fields.insert("analysis", Field::Value(analysis));
    fields.insert("runs", Field::Value(json!(runs)));
    for (k, v) in extra {
        fields.insert(k, Field::Value(v));
    }
    let text = |v: &Value, indent: usize| -> Result<String, EngineError> {
        if pretty {
            let s = serde_json::to_string_pretty(v).map_err(clarity_core::json::JsonError::from)?;
            Ok(indent_lines(&s, indent))
        } else {
            Ok(serde_json::to_string(v).map_err(clarity_core::json::JsonError::from)?)
        }
    };
    let (nl, sp, ind1) = if pretty {
        ("\n", " ", "  ")
    } else {
        ("", "", "")
    };
    w.write_all(b"{")?;
    w.write_all(nl.as_bytes())?;
    let mut first = true;
    for (k, f) in &fields {
        if !first {
            write!(w, ",{nl}")?;
        }
        first = false;
        write!(
            w,
            "{ind1}{}:{sp}",
            serde_json::to_string(k).expect("string")
        )?;
        match f {
            Field::Value(v) => w.write_all(text(v, 2)?.trim_start().as_bytes())?,
            Field::Cells | Field::Recipes => {
                if n_cells == 0 {
                    w.write_all(b"[]")?;
                    continue;
                }
                write!(w, "[{nl}")?;
                for i in 0..n_cells {
                    if i > 0 {
                        write!(w, ",{nl}")?;
                    }
                    let v = match f {
                        Field::Cells => canon(&cell(i))?,
                        _ => canon(recipe(i)?.as_ref())?,
                    };
                    w.write_all(text(&v, 4)?.as_bytes())?;
                }
                write!(w, "{nl}{ind1}]")?;
            }
        }
    }
    write!(w, "{nl}}}")?;
    Ok(())
}

/// Prefixes every line of `s` with `n` spaces.
fn indent_lines(s: &str, n: usize) -> String {
    let pad = " ".repeat(n);
    let mut out = String::with_capacity(s.len() + 16);
    for (i, line) in s.split('\n').enumerate() {
        if i > 0 {
            out.push('\n');
        }
        out.push_str(&pad);
        out.push_str(line);
    }
    out
}

/// Canonical values through a trait object.
mod erased {
    pub trait Ser {
        fn canonical(&self) -> Result<serde_json::Value, crate::EngineError>;
    }
    impl<T: serde::Serialize> Ser for T {
        fn canonical(&self) -> Result<serde_json::Value, crate::EngineError> {
            Ok(clarity_core::json::to_canonical_value(self)?)
        }
    }
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

/// The 32 bytes of a hex content key (`None`: not 64 hex digits).
pub fn key_bytes(key: &str) -> Option<[u8; 32]> {
    let mut out = [0u8; 32];
    hex::decode_to_slice(key, &mut out).ok()?;
    Some(out)
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
    /// The summary; sorts the runs' keys (32 bytes per run).
    pub fn summary(&self) -> PlanSummary {
        let mut keys: Vec<[u8; 32]> = self
            .runs()
            .map(|r| key_bytes(&r.key).expect("hex key"))
            .collect();
        keys.sort_unstable();
        keys.dedup();
        let mut h = blake3::Hasher::new();
        let mut hexbuf = [0u8; 64];
        for k in &keys {
            hex::encode_to_slice(k, &mut hexbuf).expect("64 hex digits");
            h.update(&hexbuf);
            h.update(b"\n");
        }
        PlanSummary {
            cases: self.cases.len(),
            cells: self.n_cells,
            seeds: self.seeds.len(),
            runs: self.n_runs(),
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
