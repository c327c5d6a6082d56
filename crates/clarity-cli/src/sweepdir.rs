//! Commands on an existing sweep directory: `clarity analyze DIR` and `clarity report DIR`.

use std::fmt::Write as _;

use clarity_analysis::{AnalyzeOptions, SourceKind};
use clarity_engine::artifacts::{PLAN_FILE, plan_hash_of};
use clarity_engine::{load_config, prepare};
use serde_json::json;

use crate::args::{AnalyzeArgs, ReportArgs};
use crate::commands::UsageError;
use crate::{EXIT_GATE, EXIT_OK, EXIT_RUNTIME, Out};

/// Exit code 1 when a verified R2L manifest hash does not match (the analysis is still
/// written, and the mismatches are listed).
pub(crate) fn cmd_analyze(args: AnalyzeArgs, out: &Out) -> anyhow::Result<u8> {
    let dir = &args.dir;
    check_sweep_dir(dir)?;
    let opts = AnalyzeOptions {
        output: None,
        baseline: args.baseline.map(|b| b.0),
        bootstrap_iterations: args.bootstrap_iterations,
        bootstrap_seed: args.bootstrap_seed,
        cliff_threshold: args.cliff_threshold,
        self_agreement_threshold: args.self_agreement_threshold,
        gates: args.fail_if.clone(),
    };
    let s = crate::finish::analyze(dir, &opts)?;
    let mismatches: Vec<_> = s.manifest_mismatches.iter().filter(|m| !m.ok).collect();
    let mut text = String::new();
    let kind = match s.source {
        SourceKind::Clarity => "Clarity sweep",
        SourceKind::R2l => "R2L sweep (earlier Python CLARITY)",
    };
    let _ = writeln!(text, "{kind} {}", dir.display());
    let r = &s.runs;
    let _ = writeln!(
        text,
        "runs: {} recorded of {} planned: {} ok, {} failed, {} excluded",
        r.records, r.planned, r.ok, r.failed, r.excluded
    );
    if s.source == SourceKind::R2l {
        if mismatches.is_empty() {
            let _ = writeln!(text, "manifest hashes: all verified");
        } else {
            let _ = writeln!(text, "manifest hashes: {} do not match:", mismatches.len());
            for m in &mismatches {
                let actual = m.actual.as_deref().unwrap_or("unreadable");
                let _ = writeln!(
                    text,
                    "  runs/{}/manifest.json: sha256 {actual}, sweep manifest says {}",
                    m.run, m.expected
                );
            }
        }
    }
    if !s.failed_runs.is_empty() {
        const SHOWN: usize = 20;
        let _ = writeln!(text, "failed runs: {}", s.failed_runs.len());
        for f in s.failed_runs.iter().take(SHOWN) {
            let _ = writeln!(text, "  runs/{}: {}", f.run, f.error);
        }
        if s.failed_runs.len() > SHOWN {
            let _ = writeln!(
                text,
                "  … {} more (all in metrics.json, `failed_runs`)",
                s.failed_runs.len() - SHOWN
            );
        }
    }
    let _ = writeln!(text, "{}", s.headline);
    let _ = writeln!(text, "wrote: {}", s.files.join(", "));
    let gate = crate::finish::judge_gates(&s.gates, args.fail_if_inconclusive);
    for line in &gate.lines {
        let _ = writeln!(text, "{line}");
    }
    let code = if gate.failed {
        EXIT_GATE
    } else if mismatches.is_empty() {
        EXIT_OK
    } else {
        EXIT_RUNTIME
    };
    let mut j = serde_json::to_value(&s)?;
    j["gate"] = serde_json::to_value(&gate)?;
    j["exit_code"] = json!(code);
    out.emit(&text, &j)?;
    Ok(code)
}

pub(crate) fn cmd_report(args: ReportArgs, out: &Out) -> anyhow::Result<u8> {
    let dir = &args.dir;
    check_sweep_dir(dir)?;
    if !dir.join("metrics.json").is_file() {
        return Err(UsageError(format!(
            "{}: no metrics.json: run `clarity analyze {}` first",
            dir.display(),
            dir.display()
        ))
        .into());
    }
    let prepared = match &args.config {
        None => None,
        Some(path) => Some(prepare_for_dir(path, dir)?),
    };
    let r = crate::finish::write_report(dir, prepared.as_ref())?;
    let mut text = String::new();
    let _ = writeln!(
        text,
        "report: {} ({} bytes), {} ({} bytes, {} pages); {} worst cases, {} thumbnails",
        r.html.display(),
        r.html_bytes,
        r.pdf.display(),
        r.pdf_bytes,
        r.pdf_pages,
        r.worst_cases,
        r.thumbnails
    );
    if prepared.is_none() && r.worst_cases > 0 {
        let _ = writeln!(
            text,
            "hint: pass --config with the sweep's config for before/after thumbnails"
        );
    }
    out.emit(
        &text,
        &json!({
            "html": r.html.display().to_string(),
            "html_bytes": r.html_bytes,
            "pdf": r.pdf.display().to_string(),
            "pdf_bytes": r.pdf_bytes,
            "pdf_pages": r.pdf_pages,
            "worst_cases": r.worst_cases,
            "thumbnails": r.thumbnails,
        }),
    )?;
    Ok(EXIT_OK)
}

/// The config at `path`, prepared (cohort loaded, planned), when it plans the sweep whose
/// `plan.json` is in `dir`; a usage error otherwise.
pub(crate) fn prepare_for_dir(
    path: &std::path::Path,
    dir: &std::path::Path,
) -> anyhow::Result<clarity_engine::Prepared> {
    let prepared = prepare(load_config(path)?)?;
    let plan_path = dir.join(PLAN_FILE);
    let recorded = std::fs::read_to_string(&plan_path)
        .ok()
        .and_then(|t| plan_hash_of(&t));
    match recorded {
        Some(h) if h == prepared.plan.plan_hash => Ok(prepared),
        Some(h) => Err(UsageError(format!(
            "{}: plans {} but {} records plan {h}: not this sweep's config",
            path.display(),
            prepared.plan.plan_hash,
            plan_path.display()
        ))
        .into()),
        None => Err(UsageError(format!(
            "--config needs a Clarity sweep directory ({} has no readable plan_hash)",
            plan_path.display()
        ))
        .into()),
    }
}

/// A usage error (exit 2) unless `dir` is a Clarity or R2L sweep directory.
fn check_sweep_dir(dir: &std::path::Path) -> anyhow::Result<()> {
    clarity_analysis::io::detect(dir).map(|_| ()).map_err(|_| {
        UsageError(format!(
            "{}: not a sweep directory (no {PLAN_FILE} and no sweep_manifest.json)",
            dir.display()
        ))
        .into()
    })
}
