//! `clarity probe CONFIG`: the counterfactual probe (`clarity-probe`) of a config's `[probe]`
//! settings, on its own; with `--case ID --cell N` (and `--regions`, `--grid`, `--top-k`) a
//! probe scoped to one case's image in one cell, recorded under `scope` in probe.json.

use std::fmt::Write as _;

use anyhow::Context;
use clarity_engine::artifacts::{has_observations, prepare_output_dir, write_bundle, write_plan};
use clarity_engine::{ExecOptions, default_jobs, load_config, output_dir, prepare};
use serde_json::json;

use crate::args::ProbeArgs;
use crate::commands::{UsageError, open_cache};
use crate::{EXIT_OK, Out};

/// Writes `plan.json` (so the directory is a sweep directory a later `clarity run` resumes),
/// runs the probe into `probe.json` and `overlays/`, re-seals `bundle.json`; when the sweep's
/// observations are already there, the analysis and report are redone so the report shows it.
/// `interrupt` (the console's cancel button) stops it like Ctrl-C does.
pub(crate) async fn cmd_probe(
    args: ProbeArgs,
    out: &Out,
    interrupt: Option<std::sync::Arc<tokio::sync::Notify>>,
) -> anyhow::Result<u8> {
    let mut config = load_config(&args.config)?;
    args.limits.apply(&mut config.limits);
    let dir = output_dir(&config, args.output.as_deref())?;
    let jobs = match args.jobs.or(config.jobs) {
        Some(0) => return Err(UsageError("--jobs must be at least 1".into()).into()),
        Some(n) => n,
        None => default_jobs(),
    };
    let settings = config.probe.clone().unwrap_or_default();
    if config.probe.is_none() {
        tracing::warn!(
            "{}: no [probe] table; using the default probe settings",
            args.config.display()
        );
    }
    let retry = config.retry;
    let prepared = prepare(config)?;
    let scope = match (&args.case, args.cell) {
        (Some(case), Some(cell)) => {
            let scope = clarity_probe::ProbeScope {
                case: case.clone(),
                cell,
                regions: match args.regions.as_deref() {
                    Some(r) => clarity_probe::ScopeRegions::parse(r).map_err(UsageError)?,
                    None if settings.regions == clarity_engine::RegionMode::Grid => {
                        clarity_probe::ScopeRegions::Grid
                    }
                    None => clarity_probe::ScopeRegions::Saliency,
                },
                grid: args.grid.unwrap_or(settings.grid),
                top_k: args.top_k.unwrap_or(settings.top_k),
            };
            scope
                .validate(&prepared)
                .map_err(|(k, m)| UsageError(format!("--{}: {m}", k.replace('_', "-"))))?;
            Some(scope)
        }
        _ => None,
    };
    let _lock = prepare_output_dir(&dir, &prepared.plan)?;
    write_plan(&dir, &prepared.plan)?;
    let (interrupt, signal) =
        crate::signals::spawn_interrupt_listener_for(interrupt.unwrap_or_default());
    let opts = ExecOptions {
        jobs,
        fail_fast: false,
        cache: open_cache(args.no_cache, args.cache_dir.clone()),
        progress: !out.quiet,
        retry_failed: false,
        retry,
        interrupt: Some(interrupt),
        shard: None,
        abort_after: args.abort_after,
    };
    let result = match &scope {
        Some(scope) => {
            clarity_probe::run_probe_scoped(&prepared, &settings, scope, &dir, &opts).await
        }
        None => clarity_probe::run_probe(&prepared, &settings, &dir, &opts).await,
    };
    signal.abort();
    let p = result?;
    let report = if has_observations(&dir) {
        crate::finish::analyze_and_report(&dir, &prepared, true, &[])?.report
    } else {
        write_bundle(&dir).with_context(|| format!("sealing {}", dir.display()))?;
        None
    };
    let mut text = String::new();
    let _ = writeln!(text, "probe {}", dir.display());
    let _ = writeln!(text, "{}", p.headline);
    let _ = write!(
        text,
        "{}",
        clarity_probe::FillVerdict::table(&p.specificity)
    );
    let _ = writeln!(
        text,
        "runs: {} ({} executed, {} from cache, {} resumed from the journal; {} failed)",
        p.stats.runs, p.stats.executed, p.stats.cached, p.stats.from_journal, p.stats.failed
    );
    let _ = writeln!(
        text,
        "wrote {} and {} overlays",
        p.probe_json.display(),
        p.overlays.len()
    );
    if let Some(r) = &report {
        let _ = writeln!(text, "report: {r}");
    }
    out.emit(
        &text,
        &json!({ "output_dir": dir.display().to_string(), "probe": p, "report": report }),
    )?;
    Ok(EXIT_OK)
}
