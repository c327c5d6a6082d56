//! Model calls for the probe, through the engine: every batch of images becomes a one-cell
//! plan over a derived cohort (one case per image), executed by [`clarity_engine::execute`].
//! A run's content key therefore depends only on the image bytes, seed, prompt and adapter
//! (exactly the key the same image gets in a sweep), so probe runs share the cache with sweeps
//! and are journaled (`<dir>/probe/journal.jsonl`) and resumed like any run.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;

use clarity_adapters::Adapter;
use clarity_core::{Outcome, RunRecord};
use clarity_engine::{CohortCase, ExecOptions, SweepConfig, build_plan, execute};
use clarity_image::Image;

use crate::ProbeError;

/// Images per executed plan (bounds the masked images held in memory at once).
pub const BATCH: usize = 512;

/// One image to run.
pub struct Item {
    /// A readable id (`case`, `case/C1/mean`, `case/occlusion/12`); passed to the adapter.
    pub id: String,
    pub image: Arc<Image>,
    pub prompt: Option<String>,
}

/// Counts over every batch (for telemetry and the console).
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize)]
pub struct RunnerStats {
    pub runs: usize,
    pub executed: usize,
    pub cached: usize,
    pub from_journal: usize,
    pub failed: usize,
}

pub struct Runner {
    config: SweepConfig,
    adapter: Arc<dyn Adapter>,
    opts: ExecOptions,
    journal_dir: PathBuf,
    pub stats: RunnerStats,
}

impl Runner {
    /// `config` is the sweep's config (cohort, prompt, adapter, limits); the probe runs with
    /// `seed`, journaling into `journal_dir`.
    pub fn new(
        config: &SweepConfig,
        adapter: Arc<dyn Adapter>,
        seed: u64,
        opts: ExecOptions,
        journal_dir: PathBuf,
    ) -> Runner {
        let mut config = config.clone();
        config.axes.clear();
        config.perturbations.clear();
        config.order.clear();
        config.seeds = vec![seed];
        config.analysis = None;
        config.probe = None;
        Runner {
            config,
            adapter,
            opts,
            journal_dir,
            stats: RunnerStats::default(),
        }
    }

    /// Runs `items` (in batches of [`BATCH`]); the record of each, in order.
    pub async fn run(&mut self, items: Vec<Item>) -> Result<Vec<RunRecord>, ProbeError> {
        let mut out = Vec::with_capacity(items.len());
        let mut items = items.into_iter().peekable();
        while items.peek().is_some() {
            let chunk: Vec<Item> = items.by_ref().take(BATCH).collect();
            out.extend(self.run_batch(chunk).await?);
        }
        Ok(out)
    }

    async fn run_batch(&mut self, items: Vec<Item>) -> Result<Vec<RunRecord>, ProbeError> {
        let cohort: Vec<CohortCase> = items
            .into_iter()
            .map(|it| CohortCase {
                id: it.id,
                image: it.image,
                prompt: it.prompt,
                label: None,
                metadata: BTreeMap::new(),
                source: String::new(),
                decode: None,
            })
            .collect();
        fs_err::create_dir_all(&self.journal_dir)?;
        let plan = Arc::new(build_plan(&self.config, &cohort, self.adapter.identity())?);
        let exec = execute(
            plan.clone(),
            Arc::new(cohort),
            self.adapter.clone(),
            &self.journal_dir,
            &self.opts,
        )
        .await?;
        let s = &exec.stats;
        self.stats.runs += s.runs;
        self.stats.executed += s.executed;
        self.stats.cached += s.cached;
        self.stats.from_journal += s.from_journal;
        let mut out = Vec::with_capacity(plan.n_runs());
        for run in plan.runs() {
            let rec = exec.records.get(&run.key).ok_or_else(|| {
                ProbeError::Internal(format!("run {} has no record after execution", run.key))
            })?;
            if matches!(rec.outcome, Outcome::Failed { .. }) {
                self.stats.failed += 1;
            }
            out.push(RunRecord {
                key: run.key.clone(),
                case_id: plan.cases[run.case].id.clone(),
                cell: 0,
                seed: run.seed,
                outcome: canonical(&rec.outcome)?,
            });
        }
        Ok(out)
    }
}

/// The outcome as the journal and the cache store it (floats rounded by canonical JSON), so a
/// fresh observation and one read back give the same numbers downstream.
fn canonical(o: &Outcome) -> Result<Outcome, ProbeError> {
    let v = clarity_core::json::to_canonical_value(o)?;
    serde_json::from_value(v).map_err(|e| ProbeError::Internal(format!("observation: {e}")))
}
