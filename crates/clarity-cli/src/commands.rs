//! The commands.

use std::fmt::Write as _;
use std::path::PathBuf;

use anyhow::Context;
use clarity_engine::artifacts::{BUNDLE_FILE, JOURNAL_FILE, PLAN_FILE, TELEMETRY_FILE};
use clarity_engine::{Cache, ExecOptions, default_jobs, load_config, output_dir, prepare};
use clarity_store::SweepRecords;
use serde_json::{Value, json};

use crate::args::{CacheCommand, Cli, Command, InspectArgs, PlanArgs, RunArgs};
use crate::{EXIT_FAILED_RUNS, EXIT_GATE, EXIT_OK, EXIT_RUNTIME, Out};

/// A usage error found by the CLI itself (exit code 2).
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub(crate) struct UsageError(pub String);

/// The observation cache of `--cache-dir` / the default directory, unless `--no-cache` (an
/// unusable directory is a warning, not an error).
pub(crate) fn open_cache(no_cache: bool, dir: Option<PathBuf>) -> Option<Cache> {
    if no_cache {
        return None;
    }
    let d = dir.or_else(Cache::default_dir)?;
    match Cache::open(&d) {
        Ok(c) => Some(c),
        Err(e) => {
            tracing::warn!("cache {} unusable ({e}); running without it", d.display());
            None
        }
    }
}

/// Runs an async command on a multi-threaded runtime.
pub(crate) fn block_on<F: std::future::Future<Output = anyhow::Result<u8>>>(
    f: F,
) -> anyhow::Result<u8> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")?
        .block_on(f)
}

pub(crate) fn dispatch(cli: Cli) -> anyhow::Result<u8> {
    let out = Out {
        quiet: cli.global.quiet,
        json: cli.global.json,
    };
    match cli.command {
        Command::Run(args) => block_on(cmd_run(args, &out, None)),
        Command::Merge(args) => crate::merge::cmd_merge(args, &out),
        Command::Plan(args) => cmd_plan(args, &out),
        Command::Probe(args) => block_on(crate::probe::cmd_probe(args, &out, None)),
        Command::Inspect(args) => cmd_inspect(args, &out),
        Command::Analyze(args) => crate::sweepdir::cmd_analyze(args, &out),
        Command::Report(args) => crate::sweepdir::cmd_report(args, &out),
        Command::ServeModel(args) => block_on(crate::serve::cmd_serve_model(args, &out)),
        Command::Serve(args) => block_on(crate::console::cmd_serve(args, &out)),
        Command::Compare(args) => crate::console::cmd_compare(args, &out),
        Command::Jobs(cmd) => crate::jobs::cmd_jobs(cmd, &out),
        Command::Cache(CacheCommand::Dir(a)) => {
            let dir = cache_dir(a.cache_dir)?;
            out.emit(
                &format!("{}\n", dir.display()),
                &json!({ "cache_dir": dir.display().to_string() }),
            )?;
            Ok(EXIT_OK)
        }
        Command::Cache(CacheCommand::Gc(a)) => {
            let dir = cache_dir(a.cache_dir)?;
            if !dir.exists() {
                out.emit(
                    &format!("cache {} does not exist; nothing to do\n", dir.display()),
                    &json!({ "cache_dir": dir.display().to_string(), "exists": false }),
                )?;
                return Ok(EXIT_OK);
            }
            let cache = Cache::open(&dir)?;
            let r = cache
                .gc(a.max_bytes)
                .with_context(|| format!("cleaning the cache {}", dir.display()))?;
            out.emit(
                &format!(
                    "cache {}: kept {} entries ({} bytes); removed {} temporary, {} damaged, evicted {} ({} bytes freed)\n",
                    dir.display(),
                    r.entries_kept,
                    r.bytes_kept,
                    r.removed_temporary,
                    r.removed_corrupt,
                    r.evicted,
                    r.bytes_freed
                ),
                &json!({ "cache_dir": dir.display().to_string(), "gc": r }),
            )?;
            for p in &r.unexpected {
                tracing::warn!("{}: not a cache entry; left alone", p.display());
            }
            Ok(EXIT_OK)
        }
    }
}

fn cache_dir(arg: Option<PathBuf>) -> anyhow::Result<PathBuf> {
    match arg.or_else(Cache::default_dir) {
        Some(d) => Ok(d),
        None => Err(UsageError(
            "no cache directory: set CLARITY_CACHE_DIR or pass --cache-dir".into(),
        )
        .into()),
    }
}

/// `clarity run`; `interrupt` (the console's cancel button) stops it like Ctrl-C does.
pub(crate) async fn cmd_run(
    args: RunArgs,
    out: &Out,
    interrupt: Option<std::sync::Arc<tokio::sync::Notify>>,
) -> anyhow::Result<u8> {
    // Everything that can fail on bad input happens before the output directory is touched.
    let started = std::time::Instant::now();
    let mut phases = crate::finish::Phases::default();
    let mut config = load_config(&args.config)?;
    args.limits.apply(&mut config.limits);
    let dir = output_dir(&config, args.output.as_deref())?;
    let jobs = match args.jobs.or(config.jobs) {
        Some(0) => return Err(UsageError("--jobs must be at least 1".into()).into()),
        Some(n) => n,
        None => default_jobs(),
    };
    let refine = if args.refine {
        let mut r = clarity_refine::RefineSettings {
            tolerance: args.refine_tolerance,
            ..Default::default()
        };
        if let Some(n) = args.refine_rounds {
            r.max_rounds = n;
        }
        r.validate().map_err(|e| UsageError(e.to_string()))?;
        Some(r)
    } else {
        None
    };
    let retry = config.retry;
    let prepared = prepare(config)?;
    // A gate naming an axis the sweep lacks is a usage error before anything runs.
    for g in &args.fail_if {
        if let Some(a) = &g.axis
            && !prepared.plan.axes.iter().any(|x| &x.name == a)
        {
            return Err(UsageError(format!(
                "--fail-if `{g}`: no axis `{a}` in this sweep (axes: {})",
                prepared
                    .plan
                    .axes
                    .iter()
                    .map(|x| x.name.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            ))
            .into());
        }
    }
    phases.plan_secs = started.elapsed().as_secs_f64();
    let cache = open_cache(args.no_cache, args.cache_dir.clone());
    let (interrupt, signal) =
        crate::signals::spawn_interrupt_listener_for(interrupt.unwrap_or_default());
    let opts = ExecOptions {
        jobs,
        fail_fast: args.fail_fast,
        cache,
        progress: !out.quiet,
        retry_failed: args.retry_failed,
        retry,
        interrupt: Some(interrupt),
        shard: args.shard,
        abort_after: args.abort_after,
    };
    let t = std::time::Instant::now();
    let result = clarity_engine::run_sweep(&prepared, &dir, &opts).await;
    let outcome = result?;
    phases.run_secs = t.elapsed().as_secs_f64();
    if let Some(shard) = args.shard {
        signal.abort();
        phases.total_secs = started.elapsed().as_secs_f64();
        crate::finish::write_telemetry(&dir, &outcome.stats, &phases)?;
        return crate::merge::shard_summary(&dir, shard, &outcome, &prepared, out);
    }
    // `[probe]` in the sweep config: the probe runs too (before the analysis, so the bundle
    // and the report include it).
    let t = std::time::Instant::now();
    let probe = match &prepared.config.probe {
        Some(settings) => Some(
            clarity_probe::run_probe(&prepared, settings, &dir, &opts)
                .await
                .context("running the probe")?,
        ),
        None => None,
    };
    phases.probe_secs = t.elapsed().as_secs_f64();
    // `--refine`: bisect the cliffs (before the analysis, so the bundle includes refine.json).
    let t = std::time::Instant::now();
    let refined = match &refine {
        Some(settings) => {
            let outcome = clarity_refine::refine_sweep(&prepared, &dir, settings, &opts)
                .await
                .context("refining the cliffs")?;
            clarity_refine::write_report(&dir, &outcome.report)?;
            Some(outcome)
        }
        None => None,
    };
    phases.refine_secs = t.elapsed().as_secs_f64();
    signal.abort();
    let finish = if args.no_analysis {
        None
    } else {
        let d = dir.clone();
        let p = &prepared;
        Some(crate::finish::analyze_and_report(
            &d,
            p,
            !args.no_report,
            &args.fail_if,
        )?)
    };
    if let Some(f) = &finish {
        phases.analyse_secs = f.analyse_secs;
        phases.report_secs = f.report_secs;
    }
    phases.total_secs = started.elapsed().as_secs_f64();
    crate::finish::write_telemetry(&dir, &outcome.stats, &phases)?;
    let s = &outcome.stats;
    let mut text = String::new();
    let _ = writeln!(text, "sweep {}", dir.display());
    let _ = writeln!(
        text,
        "runs: {} ({} content keys): {} executed, {} from cache, {} resumed from the journal; {} failed",
        s.runs, s.keys, s.executed, s.cached, s.from_journal, s.failed_total
    );
    if let Some(p) = &probe {
        let _ = writeln!(
            text,
            "{} (probe.json, {} overlays)",
            p.headline,
            p.overlays.len()
        );
    }
    if let Some(r) = &refined {
        let _ = writeln!(
            text,
            "refine.json: {} cliffs refined with {} extra runs ({} executed)",
            r.report.cliffs.len(),
            r.report.runs,
            r.executed
        );
        for line in r.report.summary_lines() {
            let _ = writeln!(text, "  {line}");
        }
    }
    if let Some(f) = &finish {
        let _ = writeln!(text, "{}", f.headline);
        if let Some(r) = &f.report {
            let _ = writeln!(text, "report: {r}");
        }
    }
    let gate = finish
        .as_ref()
        .map(|f| crate::finish::judge_gates(&f.gates, args.fail_if_inconclusive));
    for line in gate.iter().flat_map(|g| &g.lines) {
        let _ = writeln!(text, "{line}");
    }
    let code = if gate.as_ref().is_some_and(|g| g.failed) {
        let _ = writeln!(text, "a --fail-if gate failed (exit code {EXIT_GATE})");
        EXIT_GATE
    } else if s.failed_total > 0 {
        let _ = writeln!(
            text,
            "{} runs failed: see {} (exit code {EXIT_FAILED_RUNS})",
            s.failed_total,
            clarity_engine::artifacts::OBSERVATIONS_FILE
        );
        EXIT_FAILED_RUNS
    } else {
        EXIT_OK
    };
    out.emit(
        &text,
        &json!({
            "output_dir": dir.display().to_string(),
            "plan_hash": outcome.plan_hash,
            "stats": s,
            "analysis": finish,
            "probe": probe,
            "refine": refined,
            "gate": gate,
            "exit_code": code,
        }),
    )?;
    Ok(code)
}

fn cmd_plan(args: PlanArgs, out: &Out) -> anyhow::Result<u8> {
    let mut config = load_config(&args.config)?;
    args.limits.apply(&mut config.limits);
    let prepared = prepare(config)?;
    let plan = &prepared.plan;
    let s = plan.summary();
    let mut text = String::new();
    let _ = writeln!(text, "plan {}", s.plan_hash);
    let _ = writeln!(
        text,
        "adapter: {}/{} {}",
        s.adapter.adapter, s.adapter.model, s.adapter.version
    );
    let _ = writeln!(text, "cases: {}", s.cases);
    let _ = writeln!(text, "axes: {}", s.axes.len());
    for a in &s.axes {
        let _ = writeln!(
            text,
            "  {}: {} (identity {})",
            a.name,
            a.values.join(", "),
            a.identity
        );
    }
    let _ = writeln!(
        text,
        "cells: {} (baseline: cell {})",
        s.cells, s.baseline_cell
    );
    let _ = writeln!(
        text,
        "seeds: {} [{}]",
        s.seeds,
        plan.seeds
            .iter()
            .map(u64::to_string)
            .collect::<Vec<_>>()
            .join(", ")
    );
    let _ = writeln!(
        text,
        "runs: {} ({} distinct content keys, keys hash {})",
        s.runs,
        s.distinct_keys,
        &s.keys_hash[..16]
    );
    let mut runs_json = Vec::new();
    if args.runs {
        for r in plan.runs() {
            let case = &plan.cases[r.case].id;
            let _ = writeln!(
                text,
                "  {case} cell {} seed {} key {}",
                r.cell, r.seed, r.key
            );
            runs_json
                .push(json!({ "case_id": case, "cell": r.cell, "seed": r.seed, "key": r.key }));
        }
    }
    let mut j = serde_json::to_value(&s)?;
    if args.runs {
        j["run_list"] = Value::Array(runs_json);
    }
    out.emit(&text, &j)?;
    Ok(EXIT_OK)
}

fn cmd_inspect(args: InspectArgs, out: &Out) -> anyhow::Result<u8> {
    let dir = &args.dir;
    let plan_path = dir.join(PLAN_FILE);
    if !plan_path.is_file() {
        return Err(UsageError(format!(
            "{}: not a Clarity sweep directory (no {PLAN_FILE})",
            dir.display()
        ))
        .into());
    }
    let plan: Value = serde_json::from_str(&std::fs::read_to_string(&plan_path)?)
        .with_context(|| format!("{}: invalid JSON", plan_path.display()))?;
    let len = |k: &str| plan.get(k).and_then(Value::as_array).map_or(0, Vec::len);
    let planned = plan.get("runs").and_then(Value::as_u64).unwrap_or(0);
    // The records wherever this directory's format keeps them (table, format-1 JSONL, or the
    // journal of an unfinished sweep).
    let records = SweepRecords::find(dir);
    let (source, complete) = records
        .as_ref()
        .map_or((JOURNAL_FILE, false), |r| (r.file_name(), r.is_finished()));
    let (mut ok, mut failed, mut bad_lines) = (0u64, 0u64, 0u64);
    if let Some(r) = &records
        && let Err(e) = r.for_each(|_, rec| {
            if rec.observation().is_some() {
                ok += 1;
            } else {
                failed += 1;
            }
            Ok::<(), clarity_store::StoreError>(())
        })
    {
        tracing::warn!("{e}");
        bad_lines += 1;
    }
    // Verify the bundle.
    let mut mismatches = Vec::new();
    let mut bundled = 0usize;
    let bundle_path = dir.join(BUNDLE_FILE);
    let has_bundle = bundle_path.is_file();
    if has_bundle {
        let b: Value = serde_json::from_str(&std::fs::read_to_string(&bundle_path)?)
            .with_context(|| format!("{}: invalid JSON", bundle_path.display()))?;
        for f in b
            .get("files")
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_default()
        {
            let name = f.get("name").and_then(Value::as_str).unwrap_or("");
            let want = f.get("sha256").and_then(Value::as_str).unwrap_or("");
            bundled += 1;
            match std::fs::read(dir.join(name)) {
                Ok(bytes) if sha256_hex(&bytes) == want => {}
                Ok(_) => mismatches.push(format!("{name}: content changed")),
                Err(_) => mismatches.push(format!("{name}: missing")),
            }
        }
    }
    let mut artifacts: Vec<String> = std::fs::read_dir(dir)?
        .filter_map(|e| e.ok())
        .filter(|e| e.file_type().is_ok_and(|t| t.is_file()))
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| !n.starts_with('.'))
        .collect();
    artifacts.sort();
    let s = |k: &str| {
        plan.get(k)
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_string()
    };
    let adapter = plan.get("adapter").cloned().unwrap_or(Value::Null);
    let a = |k: &str| {
        adapter
            .get(k)
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_string()
    };
    let mut text = String::new();
    let _ = writeln!(text, "sweep {}", dir.display());
    let _ = writeln!(text, "plan {} ({})", s("plan_hash"), s("tool_version"));
    let _ = writeln!(
        text,
        "adapter: {}/{} {}",
        a("adapter"),
        a("model"),
        a("version")
    );
    let _ = writeln!(
        text,
        "cases: {}, cells: {}, seeds: {}, runs planned: {planned}",
        len("cases"),
        len("cells"),
        len("seeds")
    );
    let _ = writeln!(
        text,
        "runs recorded ({source}): {} ok, {failed} failed{}{}",
        ok,
        if bad_lines > 0 {
            format!(", {bad_lines} unreadable lines")
        } else {
            String::new()
        },
        if complete {
            ""
        } else {
            " (sweep not finished: run it again to resume)"
        }
    );
    if has_bundle {
        if mismatches.is_empty() {
            let _ = writeln!(text, "bundle: {bundled} files verified");
        } else {
            let _ = writeln!(
                text,
                "bundle: {} of {bundled} files do not match:",
                mismatches.len()
            );
            for m in &mismatches {
                let _ = writeln!(text, "  {m}");
            }
        }
    } else {
        let _ = writeln!(text, "bundle: none");
    }
    let _ = writeln!(text, "files: {}", artifacts.join(", "));
    let telemetry = std::fs::read_to_string(dir.join(TELEMETRY_FILE))
        .ok()
        .and_then(|t| serde_json::from_str::<Value>(&t).ok());
    out.emit(
        &text,
        &json!({
            "dir": dir.display().to_string(),
            "plan_hash": s("plan_hash"),
            "tool_version": s("tool_version"),
            "adapter": adapter,
            "cases": len("cases"),
            "cells": len("cells"),
            "seeds": len("seeds"),
            "runs_planned": planned,
            "runs_ok": ok,
            "runs_failed": failed,
            "unreadable_lines": bad_lines,
            "complete": complete,
            "bundle": { "present": has_bundle, "files": bundled, "mismatches": mismatches },
            "files": artifacts,
            "telemetry": telemetry.and_then(|t| t.get("telemetry").cloned()),
        }),
    )?;
    Ok(if mismatches.is_empty() {
        EXIT_OK
    } else {
        EXIT_RUNTIME
    })
}

fn sha256_hex(bytes: &[u8]) -> String {
    use sha2::Digest;
    hex::encode(sha2::Sha256::digest(bytes))
}
