//! The executor: runs every planned content key that is neither in the journal nor in the
//! cache, perturbing in-process (blocking pool, bounded by `jobs`) and calling the adapter with
//! bounded concurrency ([`Workload::Cpu`] shares the `jobs` permits with perturbation;
//! [`Workload::Io`] keeps `max_in_flight` calls going). Each finished run is appended to the
//! journal at once; results never depend on completion order.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use clarity_adapters::{Adapter, AdapterError, RunInput, Workload};
use clarity_core::{Observation, Outcome, RunRecord};
use serde::Serialize;
use tokio::sync::{Notify, Semaphore};
use tokio::task::JoinSet;

use crate::EngineError;
use crate::artifacts::WORK_DIR;
use crate::cache::Cache;
use crate::cohort::CohortCase;
use crate::config::RetryPolicy;
use crate::journal::Journal;
use crate::plan::{Plan, Run, key_bytes};

/// How to execute.
#[derive(Clone)]
pub struct ExecOptions {
    /// Parallel CPU work (perturbation, in-process models). At least 1.
    pub jobs: usize,
    /// Stop at the first failed run (after recording it).
    pub fail_fast: bool,
    pub cache: Option<Cache>,
    /// Show a progress bar on stderr (only when stderr is a terminal).
    pub progress: bool,
    /// Run again the keys whose journal record is a failure.
    pub retry_failed: bool,
    pub retry: RetryPolicy,
    /// Notified to stop cleanly (Ctrl-C). The executor stops admitting runs, cancels the ones
    /// in flight and syncs the journal.
    pub interrupt: Option<Arc<Notify>>,
    /// Run only the keys of this shard.
    pub shard: Option<crate::shard::Shard>,
    /// Test hook: behave as if interrupted after this many newly recorded runs.
    #[doc(hidden)]
    pub abort_after: Option<usize>,
}

impl Default for ExecOptions {
    fn default() -> Self {
        Self {
            jobs: default_jobs(),
            fail_fast: false,
            cache: None,
            progress: false,
            retry_failed: false,
            retry: RetryPolicy::default(),
            interrupt: None,
            shard: None,
            abort_after: None,
        }
    }
}

/// All cores.
pub fn default_jobs() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get())
}

/// Counts of one execution (goes to `telemetry.json`).
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct ExecStats {
    /// Runs in the plan.
    pub runs: usize,
    /// Distinct content keys in the plan.
    pub keys: usize,
    /// Keys already in the journal (resume).
    pub from_journal: usize,
    /// Keys answered from the cache.
    pub cached: usize,
    /// Keys executed (adapter called) in this invocation.
    pub executed: usize,
    /// Of those, failed.
    pub failed: usize,
    /// Adapter calls, retries included.
    pub adapter_calls: usize,
    /// Keys whose final record is a failure (journal included).
    pub failed_total: usize,
    pub jobs: usize,
    /// Wall-clock time of this execution.
    pub elapsed_secs: f64,
    /// Busy perturbing (and writing image files), summed over runs; waits for a CPU slot are
    /// not included (they are `perturb_wait_secs`). At most `elapsed_secs × jobs`.
    pub perturb_secs: f64,
    /// Waiting for a CPU slot before perturbing, summed over runs.
    pub perturb_wait_secs: f64,
    /// Busy in adapter calls, summed over calls (retries included); waits for a call slot and
    /// retry back-off are not included. At most `elapsed_secs × in_flight`.
    pub adapter_secs: f64,
    /// Waiting for a call slot, summed over calls.
    pub adapter_wait_secs: f64,
    /// Sleeping between the attempts of a retried call, summed.
    pub retry_backoff_secs: f64,
    /// Call slots: the adapter's `max_in_flight` (HTTP, command), or `jobs` for in-process
    /// models (which share the CPU slots with perturbation).
    pub in_flight: usize,
    /// `adapter_secs / (elapsed_secs × in_flight)`: how full the call slots were, 0 to 1.
    pub in_flight_utilisation: f64,
    /// Runs recorded by this execution (executed or from the cache) per second.
    pub runs_per_sec: f64,
    /// Latency of each adapter call.
    pub model_latency: crate::telemetry::LatencySummary,
}

/// The result of executing a plan: every key's record, and the counts.
pub struct Execution {
    pub records: BTreeMap<String, RunRecord>,
    pub stats: ExecStats,
}

struct Ctx {
    plan: Arc<Plan>,
    cohort: Arc<Vec<CohortCase>>,
    adapter: Arc<dyn Adapter>,
    cpu: Arc<Semaphore>,
    calls: Arc<Semaphore>,
    cache: Option<Cache>,
    retry: RetryPolicy,
    work_root: PathBuf,
    /// Perturbs runs' images (once per (case, cell) for seed-free recipes).
    handoff: crate::handoff::Handoff,
    /// Adapter calls running now (the progress display).
    in_flight_now: std::sync::atomic::AtomicUsize,
}

enum Source {
    Cache,
    Adapter { calls: usize },
}

struct Done {
    run: Run,
    outcome: Outcome,
    source: Source,
    timing: Timing,
}

/// Where one run's time went (busy and waiting apart).
#[derive(Default)]
struct Timing {
    perturb: Duration,
    perturb_wait: Duration,
    model: Duration,
    model_wait: Duration,
    backoff: Duration,
    /// Each adapter call's latency.
    calls: Vec<Duration>,
}

/// Executes the missing runs of `plan`, journaling into `dir/journal.jsonl`, and returns every
/// planned key's record (read back from the journal: for small plans such as the probe's).
pub async fn execute(
    plan: Arc<Plan>,
    cohort: Arc<Vec<CohortCase>>,
    adapter: Arc<dyn Adapter>,
    dir: &Path,
    opts: &ExecOptions,
) -> Result<Execution, EngineError> {
    let (stats, wanted) = execute_inner(plan, cohort, adapter, dir, opts).await?;
    let mut records = BTreeMap::new();
    crate::journal::scan(&dir.join(crate::artifacts::JOURNAL_FILE), |_, r| {
        if key_bytes(&r.key).is_some_and(|k| wanted.contains(&k)) {
            records.insert(r.key.clone(), r);
        }
        Ok(())
    })?;
    Ok(Execution { records, stats })
}

/// As [`execute`], without collecting the records: memory does not grow with the number of
/// observations (32 bytes per distinct key, 8 per run to do). The records are in the journal.
pub async fn execute_sweep(
    plan: Arc<Plan>,
    cohort: Arc<Vec<CohortCase>>,
    adapter: Arc<dyn Adapter>,
    dir: &Path,
    opts: &ExecOptions,
) -> Result<ExecStats, EngineError> {
    Ok(execute_inner(plan, cohort, adapter, dir, opts).await?.0)
}

async fn execute_inner(
    plan: Arc<Plan>,
    cohort: Arc<Vec<CohortCase>>,
    adapter: Arc<dyn Adapter>,
    dir: &Path,
    opts: &ExecOptions,
) -> Result<(ExecStats, HashSet<[u8; 32]>), EngineError> {
    let start = Instant::now();
    let jobs = opts.jobs.max(1);
    // Key → whether its latest record is a success.
    let mut state: HashMap<[u8; 32], bool> = HashMap::new();
    let mut note = |r: &RunRecord| {
        if let Some(k) = key_bytes(&r.key) {
            state.insert(k, matches!(r.outcome, Outcome::Ok { .. }));
        }
    };
    let mut journal = Journal::open(&dir.join(crate::artifacts::JOURNAL_FILE), |_, r| {
        note(&r);
        Ok(())
    })?;
    // One run per missing key, in plan order; the keys of this plan (or of its shard).
    let mut todo: Vec<usize> = Vec::new();
    let mut wanted: HashSet<[u8; 32]> = HashSet::new();
    let mut from_journal = 0usize;
    let mut runs = 0usize;
    for run in plan.runs() {
        let k = key_bytes(&run.key).expect("hex key");
        if let Some(shard) = &opts.shard
            && !shard.contains(&k)
        {
            continue;
        }
        runs += 1;
        if !wanted.insert(k) {
            continue;
        }
        match state.get(&k) {
            Some(false) if opts.retry_failed => todo.push(run.index),
            Some(_) => from_journal += 1,
            None => todo.push(run.index),
        }
    }
    let mut stats = ExecStats {
        runs,
        keys: wanted.len(),
        from_journal,
        jobs,
        ..Default::default()
    };

    // One check before the first run (a dead endpoint fails the sweep once, not each run).
    if !todo.is_empty() {
        adapter.preflight().await?;
    }
    let cpu = Arc::new(Semaphore::new(jobs));
    let (calls, in_flight) = match adapter.workload() {
        Workload::Cpu => (cpu.clone(), jobs),
        Workload::Io { max_in_flight } => {
            let n = max_in_flight.max(1);
            (Arc::new(Semaphore::new(n)), n)
        }
    };
    // Enough runs admitted to keep both pools busy, few enough to bound memory.
    let window = 2 * (jobs + in_flight);
    let ctx = Arc::new(Ctx {
        plan: plan.clone(),
        cohort,
        handoff: crate::handoff::Handoff::new(&plan, adapter.needs_image_file(), window + 2),
        adapter,
        cpu,
        calls,
        cache: opts.cache.clone(),
        retry: opts.retry,
        work_root: dir.join(WORK_DIR),
        in_flight_now: Default::default(),
    });

    stats.in_flight = in_flight;
    let mut progress = crate::telemetry::Progress::new(
        opts.progress,
        stats.keys as u64,
        stats.from_journal as u64,
    );
    let mut latencies = crate::telemetry::Latencies::default();
    let mut set: JoinSet<Done> = JoinSet::new();
    let mut task_run: HashMap<tokio::task::Id, Run> = HashMap::new();
    let mut next = 0usize;
    let mut recorded_now = 0usize;
    let interrupt = opts.interrupt.clone().unwrap_or_default();
    let mut stop: Option<EngineError> = None;

    let mut recorded = from_journal;
    let mut handle = |done: Done,
                      journal: &mut Journal,
                      state: &mut HashMap<[u8; 32], bool>,
                      stats: &mut ExecStats,
                      latencies: &mut crate::telemetry::Latencies,
                      progress: &mut crate::telemetry::Progress|
     -> Result<Option<EngineError>, EngineError> {
        let run = &done.run;
        let rec = RunRecord {
            key: run.key.clone(),
            case_id: plan.cases[run.case].id.clone(),
            cell: run.cell,
            seed: run.seed,
            outcome: done.outcome,
        };
        journal.append(&rec)?;
        let t = &done.timing;
        stats.perturb_secs += t.perturb.as_secs_f64();
        stats.perturb_wait_secs += t.perturb_wait.as_secs_f64();
        stats.adapter_secs += t.model.as_secs_f64();
        stats.adapter_wait_secs += t.model_wait.as_secs_f64();
        stats.retry_backoff_secs += t.backoff.as_secs_f64();
        for &c in &t.calls {
            latencies.record(c);
        }
        match done.source {
            Source::Cache => stats.cached += 1,
            Source::Adapter { calls } => {
                stats.executed += 1;
                stats.adapter_calls += calls;
            }
        }
        let mut result = None;
        if let Outcome::Failed { error, .. } = &rec.outcome {
            stats.failed += 1;
            tracing::warn!(
                "run failed: case {} cell {} seed {}: {error}",
                rec.case_id,
                rec.cell,
                rec.seed
            );
            if opts.fail_fast {
                result = Some(EngineError::FailFast {
                    case_id: rec.case_id.clone(),
                    cell: rec.cell,
                    seed: rec.seed,
                    error: error.clone(),
                });
            }
        }
        if let Some(k) = key_bytes(&rec.key) {
            state.insert(k, matches!(rec.outcome, Outcome::Ok { .. }));
        }
        recorded += 1;
        progress.inc(&snapshot_of(stats, latencies, in_flight, &ctx));
        recorded_now += 1;
        if result.is_none() && opts.abort_after.is_some_and(|n| recorded_now >= n) {
            result = Some(EngineError::Interrupted {
                done: recorded,
                total: stats.keys,
            });
        }
        Ok(result)
    };

    loop {
        while stop.is_none() && next < todo.len() && set.len() < window {
            let run = plan.run(todo[next]);
            next += 1;
            let ctx = ctx.clone();
            let h = set.spawn(run_one(ctx, run.clone()));
            task_run.insert(h.id(), run);
        }
        if set.is_empty() {
            break;
        }
        let tick = progress.interval();
        let joined = tokio::select! {
            biased;
            _ = interrupt.notified() => {
                stop = Some(EngineError::Interrupted { done: 0, total: stats.keys });
                break;
            }
            j = set.join_next_with_id() => j,
            // Plain progress lines go on while a slow model answers nothing.
            _ = tokio::time::sleep(tick.unwrap_or(Duration::from_secs(86_400))), if tick.is_some() => {
                progress.tick(&snapshot_of(&stats, &latencies, in_flight, &ctx));
                continue;
            }
        };
        let Some(joined) = joined else { break };
        let done = match joined {
            Ok((id, done)) => {
                task_run.remove(&id);
                done
            }
            Err(e) => {
                let Some(run) = task_run.remove(&e.id()) else {
                    continue;
                };
                Done {
                    run,
                    outcome: Outcome::Failed {
                        error: if e.is_panic() {
                            "the run panicked".into()
                        } else {
                            "the run was cancelled".into()
                        },
                        attempts: 1,
                    },
                    source: Source::Adapter { calls: 1 },
                    timing: Timing::default(),
                }
            }
        };
        if let Some(e) = handle(
            done,
            &mut journal,
            &mut state,
            &mut stats,
            &mut latencies,
            &mut progress,
        )? {
            stop = Some(e);
            break;
        }
    }
    if stop.is_some() {
        // Cancel what is in flight; keep what finished meanwhile (no completed run is lost).
        set.abort_all();
        while let Some(j) = set.join_next_with_id().await {
            if let Ok((_, done)) = j
                && !matches!(done.outcome, Outcome::Failed { .. })
            {
                handle(
                    done,
                    &mut journal,
                    &mut state,
                    &mut stats,
                    &mut latencies,
                    &mut progress,
                )?;
            }
        }
    }
    journal.sync()?;
    stats.elapsed_secs = start.elapsed().as_secs_f64();
    progress.finish(&snapshot_of(&stats, &latencies, in_flight, &ctx));
    if let Some(e) = stop {
        if let EngineError::Interrupted { total, .. } = e {
            return Err(EngineError::Interrupted {
                done: recorded,
                total,
            });
        }
        return Err(e);
    }
    let _ = fs_err::remove_dir(dir.join(WORK_DIR));
    stats.failed_total = wanted
        .iter()
        .filter(|k| state.get(*k) == Some(&false))
        .count();
    let e = stats.elapsed_secs;
    if e > 0.0 {
        stats.runs_per_sec = (stats.executed + stats.cached) as f64 / e;
        stats.in_flight_utilisation = (stats.adapter_secs / (e * in_flight as f64)).min(1.0);
    }
    stats.model_latency = latencies.summary();
    Ok((stats, wanted))
}

/// What the progress display shows now.
fn snapshot_of<'a>(
    stats: &ExecStats,
    latencies: &'a crate::telemetry::Latencies,
    slots: usize,
    ctx: &Ctx,
) -> crate::telemetry::Snapshot<'a> {
    crate::telemetry::Snapshot {
        done: (stats.from_journal + stats.cached + stats.executed) as u64,
        total: stats.keys as u64,
        recorded_now: (stats.cached + stats.executed) as u64,
        latencies,
        adapter_busy: stats.adapter_secs,
        slots,
        in_flight_now: ctx.in_flight_now.load(std::sync::atomic::Ordering::Relaxed),
    }
}

/// One run: cache lookup, perturbation, image file, adapter call with retries, cache store.
async fn run_one(ctx: Arc<Ctx>, run: Run) -> Done {
    let plan = &ctx.plan;
    let run = &run;
    let mut timing = Timing::default();
    if let Some(cache) = &ctx.cache {
        let c = cache.clone();
        let key = run.key.clone();
        if let Ok(Some(observation)) = tokio::task::spawn_blocking(move || c.get(&key)).await {
            return Done {
                run: run.clone(),
                outcome: Outcome::Ok { observation },
                source: Source::Cache,
                timing,
            };
        }
    }
    let fail = |error: String, calls: usize, attempts: u32, timing: Timing| Done {
        run: run.clone(),
        outcome: Outcome::Failed { error, attempts },
        source: Source::Adapter { calls },
        timing,
    };

    // Perturb (and encode the image file) on the blocking pool, holding a CPU permit: busy
    // time is then at most `elapsed × jobs`. Seeds of a seed-free recipe share one image.
    let case = &ctx.cohort[run.case];
    let steps = plan.steps(run.cell);
    let mut spent = crate::handoff::Spent::default();
    let prepared = ctx
        .handoff
        .prepare(&ctx.cpu, case, steps.clone(), run, &mut spent)
        .await;
    timing.perturb_wait = spent.wait;
    timing.perturb = spent.busy;
    let prepared = match prepared {
        Ok(p) => p,
        Err(e) => {
            let attempts = u32::from(e != "cancelled");
            return fail(e, 0, attempts, timing);
        }
    };
    let image = prepared.image;
    let t_file = Instant::now();
    let work_dir = ctx.work_root.join(&run.key);
    let mut image_path = None;
    let prep = (|| -> Result<(), String> {
        if work_dir.exists() {
            fs_err::remove_dir_all(&work_dir).map_err(|e| e.to_string())?;
        }
        fs_err::create_dir_all(&work_dir).map_err(|e| e.to_string())?;
        Ok(())
    })();
    if let Err(e) = prep {
        timing.perturb += t_file.elapsed();
        return fail(
            format!("cannot create the run directory: {e}"),
            0,
            1,
            timing,
        );
    }
    if let Some(png) = prepared.png {
        let path = work_dir.join("image.png");
        let p = path.clone();
        let written = tokio::task::spawn_blocking(move || -> Result<(), String> {
            fs_err::write(&p, &*png).map_err(|e| e.to_string())
        })
        .await;
        timing.perturb += t_file.elapsed();
        match written {
            Ok(Ok(())) => image_path = Some(path),
            Ok(Err(e)) => {
                let _ = fs_err::remove_dir_all(&work_dir);
                return fail(format!("cannot write the image file: {e}"), 0, 1, timing);
            }
            Err(e) => {
                let _ = fs_err::remove_dir_all(&work_dir);
                return fail(e.to_string(), 0, 1, timing);
            }
        }
    } else {
        timing.perturb += t_file.elapsed();
    }

    let input = RunInput {
        key: run.key.clone(),
        case_id: case.id.clone(),
        image,
        image_path,
        prompt: plan.prompt(run.case).map(str::to_string),
        seed: run.seed,
        perturbations: steps,
        work_dir: work_dir.clone(),
    };
    let mut attempts = 0u32;
    let result: Result<Observation, AdapterError> = loop {
        attempts += 1;
        let r = {
            let t_wait = Instant::now();
            let Ok(_permit) = ctx.calls.acquire().await else {
                break Err(AdapterError::Permanent("cancelled".into()));
            };
            timing.model_wait += t_wait.elapsed();
            let t_call = Instant::now();
            ctx.in_flight_now
                .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            let r = ctx.adapter.run(input.clone()).await;
            ctx.in_flight_now
                .fetch_sub(1, std::sync::atomic::Ordering::Relaxed);
            let took = t_call.elapsed();
            timing.model += took;
            timing.calls.push(took);
            r
        };
        match r {
            Err(e) if e.is_transient() && attempts < ctx.retry.attempts => {
                let backoff = ctx
                    .retry
                    .backoff_ms
                    .saturating_mul(1u64 << (attempts - 1).min(16));
                tracing::debug!(
                    "run {}: transient failure ({e}), retry in {backoff} ms",
                    run.key
                );
                let t_sleep = Instant::now();
                tokio::time::sleep(Duration::from_millis(backoff)).await;
                timing.backoff += t_sleep.elapsed();
            }
            other => break other,
        }
    };
    let _ = fs_err::remove_dir_all(&work_dir);
    match result {
        Ok(observation) => {
            if let Some(cache) = &ctx.cache {
                let c = cache.clone();
                let key = run.key.clone();
                let obs = observation.clone();
                match tokio::task::spawn_blocking(move || c.put(&key, &obs)).await {
                    Ok(Ok(())) => {}
                    Ok(Err(e)) => tracing::warn!("cannot write the cache entry: {e}"),
                    Err(e) => tracing::warn!("cannot write the cache entry: {e}"),
                }
            }
            Done {
                run: run.clone(),
                outcome: Outcome::Ok { observation },
                source: Source::Adapter {
                    calls: attempts as usize,
                },
                timing,
            }
        }
        Err(e) => fail(e.to_string(), attempts as usize, attempts, timing),
    }
}
