//! Clarity's sweep engine: config → plan → runs → observations, with caching and resume.
//!
//! - [`config`]: [`load_config`] reads one TOML (or JSON) file into a validated [`SweepConfig`];
//!   errors name the file, the key and the line:column.
//! - [`cohort`]: [`load_cohort`] gives the [`CohortCase`]s (builtin phantoms, a folder, a
//!   manifest).
//! - [`plan`]: [`build_plan`] makes the grid of [`clarity_core::Cell`]s (baseline always
//!   included), the runs (case × cell × seed) and their content keys.
//! - [`executor`]: [`execute`] runs the missing keys with bounded concurrency, journaling each
//!   run as it finishes ([`journal`]) and storing observations in the content-addressed
//!   [`Cache`].
//! - [`artifacts`]: the sweep directory.
//! - [`probe_config`]: the `[probe]` table ([`ProbeSettings`]) read by `clarity-probe`.
//!
//! [`run_sweep`] does all of it. The sweep directory holds:
//!
//! | file | content |
//! |---|---|
//! | `plan.json` | `schema_version`, `tool_version`, `config` (resolved), `axes`, `cells`, `recipes` (per cell, the effective perturbation steps), `cases`, `seeds`, `normalization`, `adapter` (identity), `analysis` (`{}` when not set), `runs`, `plan_hash` |
//! | `journal.jsonl` | while running: one [`clarity_core::RunRecord`] per executed key, in completion order; removed once the sweep is sealed (the table holds every record) |
//! | `observations.parquet` | one record per run in plan order (case, cell, seed): [`clarity_store`]; read it (or the `observations.jsonl` of a format-1 directory) with [`clarity_store::SweepRecords`] |
//! | `bundle.json` | `format` (layout version, [`artifacts::FORMAT_VERSION`]) and SHA-256 of each artifact (see [`artifacts::write_bundle`]) |
//! | `shard.json` | shard directories only ([`merge`]) |
//! | `telemetry.json` | timings and counts (not deterministic, not bundled) |
//!
//! Determinism: a run's result depends only on its content key (the perturbation RNG is seeded
//! from the run seed, case id and perturbation name), so `--jobs`, completion order,
//! interruptions and the cache never change an artifact byte.

pub mod artifacts;
pub mod cache;
pub mod cohort;
pub mod config;
mod error;
pub mod executor;
mod fsutil;
mod handoff;
pub mod journal;
pub mod lock;
pub mod merge;
pub mod plan;
pub mod probe_config;
pub mod shard;
pub mod telemetry;
#[doc(hidden)]
pub mod testing;

use std::path::PathBuf;
use std::sync::Arc;

pub use cache::Cache;
pub use cohort::{CohortCase, load_cohort};
pub use config::{
    CohortConfig, Limits, RetryPolicy, SweepConfig, WindowSetting, load_config, parse_config,
};
pub use error::EngineError;
pub use executor::{ExecOptions, ExecStats, Execution, default_jobs, execute, execute_sweep};
pub use fsutil::write_atomic;
pub use plan::{Plan, PlanSummary, Run, TOOL_VERSION, build_plan};
pub use probe_config::{ControlMode, FillName, ProbeSettings, RegionMode, SaliencySource};
pub use shard::Shard;

use clarity_adapters::Adapter;

/// A config with its cohort, adapter and plan: everything checked, nothing written.
pub struct Prepared {
    pub config: SweepConfig,
    pub cohort: Arc<Vec<CohortCase>>,
    pub adapter: Arc<dyn Adapter>,
    pub plan: Arc<Plan>,
}

/// Loads the cohort, builds the adapter from the config and plans. Touches no output.
pub fn prepare(config: SweepConfig) -> Result<Prepared, EngineError> {
    let adapter = config.adapter.build(&config.base_dir)?;
    prepare_with_adapter(config, adapter)
}

/// As [`prepare`], with an adapter built elsewhere (tests, embedding).
pub fn prepare_with_adapter(
    config: SweepConfig,
    adapter: Arc<dyn Adapter>,
) -> Result<Prepared, EngineError> {
    // Refuse an oversized grid before generating or decoding the cohort.
    plan::check_run_count(&config, plan::declared_cases(&config))?;
    let cohort = load_cohort(&config)?;
    let plan = build_plan(&config, &cohort, adapter.identity())?;
    Ok(Prepared {
        config,
        cohort: Arc::new(cohort),
        adapter,
        plan: Arc::new(plan),
    })
}

/// What a finished sweep produced.
#[derive(Debug, Clone, serde::Serialize)]
pub struct SweepOutcome {
    pub output_dir: PathBuf,
    pub plan_hash: String,
    pub stats: ExecStats,
    /// Files listed in `bundle.json`.
    pub bundle: Vec<artifacts::BundleEntry>,
    /// The output directory's lock, held as long as this outcome (or a clone) lives, so that
    /// what the caller writes afterwards (probe, refinement, analysis, report) is covered too.
    #[serde(skip)]
    pub lock: Arc<lock::OutputLock>,
}

/// Prepares `dir` (refusing to clobber a different sweep), writes `plan.json`, executes the
/// missing runs and seals the sweep: `observations.parquet` (the journal is then removed),
/// `bundle.json` and `telemetry.json`. With `opts.shard`, only the shard's runs: the directory
/// gets `shard.json` and the shard's own table, no bundle ([`merge`] combines the shards).
pub async fn run_sweep(
    prepared: &Prepared,
    dir: &std::path::Path,
    opts: &ExecOptions,
) -> Result<SweepOutcome, EngineError> {
    let plan = prepared.plan.clone();
    merge::check_dir_for(dir, &plan.plan_hash, opts.shard)?;
    let lock = artifacts::prepare_output_dir(dir, &plan)?;
    merge::check_dir_for(dir, &plan.plan_hash, opts.shard)?;
    artifacts::write_plan(dir, &plan)?;
    let mut marker = opts.shard.map(|s| merge::ShardMarker {
        schema_version: clarity_core::SCHEMA_VERSION,
        plan_hash: plan.plan_hash.clone(),
        index: s.index,
        count: s.count,
        complete: false,
        runs: 0,
    });
    if let Some(m) = &marker {
        merge::write_marker(dir, m)?;
    }
    artifacts::unseal(dir)?;
    let stats = execute_sweep(
        plan.clone(),
        prepared.cohort.clone(),
        prepared.adapter.clone(),
        dir,
        opts,
    )
    .await?;
    artifacts::seal(dir, &plan, opts.shard.as_ref())?;
    let bundle = match &mut marker {
        Some(m) => {
            m.complete = true;
            m.runs = stats.runs as u64;
            merge::write_marker(dir, m)?;
            Vec::new()
        }
        None => artifacts::write_bundle(dir)?,
    };
    artifacts::write_telemetry(dir, &stats)?;
    Ok(SweepOutcome {
        output_dir: dir.to_path_buf(),
        plan_hash: plan.plan_hash.clone(),
        stats,
        bundle,
        lock: Arc::new(lock),
    })
}

/// The output directory: `override_dir`, else the config's `output` (relative to the config
/// file), else an error.
pub fn output_dir(
    config: &SweepConfig,
    override_dir: Option<&std::path::Path>,
) -> Result<PathBuf, EngineError> {
    if let Some(d) = override_dir {
        if d.as_os_str().is_empty() {
            return Err(EngineError::Config {
                path: config.source.clone(),
                location: None,
                key: "output".into(),
                message: "--output is an empty string; expected an output directory path".into(),
            });
        }
        return Ok(d.to_path_buf());
    }
    match &config.output {
        Some(p) => Ok(config.resolve_path(p)),
        None => Err(EngineError::Config {
            path: config.source.clone(),
            location: None,
            key: "output".into(),
            message: "no output directory: set `output = \"DIR\"` in the config or pass --output"
                .into(),
        }),
    }
}
