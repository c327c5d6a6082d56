//! Sharded sweeps on the command line: the summary of `clarity run CONFIG --shard I/N`, and
//! `clarity merge OUT SHARD_DIR…` (the engine's [`clarity_engine::merge::merge_shards`], then
//! the analysis and report as `clarity run` writes them).

use std::fmt::Write as _;

use clarity_engine::artifacts::{OBSERVATIONS_FILE, PLAN_FILE};
use clarity_engine::{Prepared, Shard, SweepOutcome};
use serde_json::json;

use crate::args::MergeArgs;
use crate::{EXIT_FAILED_RUNS, EXIT_OK, Out};

/// What `clarity run … --shard I/N` prints: the shard's counts and how to merge.
pub(crate) fn shard_summary(
    dir: &std::path::Path,
    shard: Shard,
    outcome: &SweepOutcome,
    prepared: &Prepared,
    out: &Out,
) -> anyhow::Result<u8> {
    let s = &outcome.stats;
    let mut text = String::new();
    let _ = writeln!(text, "shard {shard} {}", dir.display());
    let _ = writeln!(
        text,
        "runs: {} of this shard ({} content keys): {} executed, {} from cache, {} resumed from the journal; {} failed",
        s.runs, s.keys, s.executed, s.cached, s.from_journal, s.failed_total
    );
    if prepared.config.probe.is_some() {
        let _ = writeln!(
            text,
            "note: the config's [probe] is not run per shard; run `clarity probe CONFIG -o MERGED` after the merge"
        );
    }
    let _ = writeln!(
        text,
        "when all {} shards are done: clarity merge OUT SHARD_DIR… (one directory per shard)",
        shard.count
    );
    out.emit(
        &text,
        &json!({
            "output_dir": dir.display().to_string(),
            "plan_hash": outcome.plan_hash,
            "shard": shard.to_string(),
            "stats": s,
            "exit_code": EXIT_OK,
        }),
    )?;
    // Failed runs are reported by the merge (exit 3 there), not per shard.
    Ok(EXIT_OK)
}

/// `clarity merge OUT SHARD_DIR…`: every check (shards of one plan, each shard once, none
/// missing or unfinished, `--config` planning the same sweep) happens before `OUT` is touched.
pub(crate) fn cmd_merge(args: MergeArgs, out: &Out) -> anyhow::Result<u8> {
    let prepared = match &args.config {
        Some(path) => {
            // The shards' plan.json is checked against the config; merge_shards then checks
            // that every shard holds the same plan.json.
            let first = &args.shards[0];
            if !first.join(PLAN_FILE).is_file() {
                return Err(crate::commands::UsageError(format!(
                    "{}: not a shard directory (no {PLAN_FILE}); shards are written by `clarity run CONFIG --shard I/N`",
                    first.display()
                ))
                .into());
            }
            Some(crate::sweepdir::prepare_for_dir(path, first)?)
        }
        None => None,
    };
    let merged = clarity_engine::merge::merge_shards(&args.output, &args.shards)?;
    let dir = &merged.output_dir;
    let finish = if args.no_analysis {
        None
    } else {
        let summary = crate::finish::analyze(dir, &Default::default())?;
        let report = if args.no_report {
            None
        } else {
            Some(
                crate::finish::write_report(dir, prepared.as_ref())?
                    .html
                    .display()
                    .to_string(),
            )
        };
        Some((summary, report))
    };
    let mut text = String::new();
    let _ = writeln!(text, "sweep {} (merged)", dir.display());
    let _ = writeln!(
        text,
        "runs: {} from {} shards; {} failed",
        merged.runs, merged.shards, merged.failed
    );
    if let Some((summary, report)) = &finish {
        let _ = writeln!(text, "{}", summary.headline);
        if let Some(r) = report {
            let _ = writeln!(text, "report: {r}");
        }
    }
    if prepared.as_ref().is_some_and(|p| p.config.probe.is_some()) {
        let _ = writeln!(
            text,
            "note: the config's [probe] was not run by the shards; `clarity probe CONFIG -o {}` adds it",
            dir.display()
        );
    }
    let code = if merged.failed > 0 {
        let _ = writeln!(
            text,
            "{} runs failed: see {OBSERVATIONS_FILE} (exit code {EXIT_FAILED_RUNS})",
            merged.failed
        );
        EXIT_FAILED_RUNS
    } else {
        EXIT_OK
    };
    out.emit(
        &text,
        &json!({
            "output_dir": dir.display().to_string(),
            "plan_hash": merged.plan_hash,
            "shards": merged.shards,
            "runs": merged.runs,
            "failed": merged.failed,
            "analysis": finish.as_ref().map(|(s, r)| json!({
                "files": s.files,
                "headline": s.headline,
                "report": r,
            })),
            "exit_code": code,
        }),
    )?;
    Ok(code)
}
