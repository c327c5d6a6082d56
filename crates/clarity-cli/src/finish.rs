//! After the runs: the analysis (`clarity_analysis`) and the report (`clarity_report`).
//!
//! [`analyze_and_report`] is the hook `clarity run` calls once the observations are sealed:
//! it writes the analysis artifacts, re-seals `bundle.json` over them, then renders
//! `report.html` / `report.pdf` (which show the bundle's hash, so they are not in it).

use std::path::Path;

use anyhow::Context;
use clarity_core::Cell;
use clarity_engine::Prepared;
use clarity_image::Image;
use clarity_perturb::Recipe;
use serde::Serialize;

/// What the analysis and report produced.
#[derive(Debug, Clone, Serialize)]
pub struct FinishSummary {
    pub analysis_files: Vec<String>,
    /// The headline lines joined by newlines (metrics.json `headline`).
    pub headline: String,
    /// The cohort verdicts (metrics.json `verdicts`).
    pub verdicts: clarity_analysis::Verdicts,
    /// The `--fail-if` verdicts, in order.
    pub gates: Vec<clarity_analysis::Verdicts>,
    pub min_esi: Option<f64>,
    pub report: Option<String>,
    /// Wall-clock seconds of the analysis and of the report (telemetry.json, not the summary).
    #[serde(skip)]
    pub analyse_secs: f64,
    #[serde(skip)]
    pub report_secs: f64,
}

/// Analyses the sweep in `dir`, re-seals the bundle and (unless `report` is false) writes the
/// report, with worst-case thumbnails regenerated from the cohort and the plan's recipes.
pub fn analyze_and_report(
    dir: &Path,
    prepared: &Prepared,
    report: bool,
    gates: &[clarity_analysis::Condition],
) -> anyhow::Result<FinishSummary> {
    let opts = clarity_analysis::AnalyzeOptions {
        gates: gates.to_vec(),
        ..Default::default()
    };
    let t = std::time::Instant::now();
    let summary = analyze(dir, &opts)?;
    let analyse_secs = t.elapsed().as_secs_f64();
    let t = std::time::Instant::now();
    let report_path = if report {
        Some(
            write_report(dir, Some(prepared))?
                .html
                .display()
                .to_string(),
        )
    } else {
        None
    };
    Ok(FinishSummary {
        analysis_files: summary.files,
        headline: summary.headline,
        verdicts: summary.verdicts,
        gates: summary.gates,
        min_esi: summary.min_esi,
        report: report_path,
        analyse_secs,
        report_secs: if report {
            t.elapsed().as_secs_f64()
        } else {
            0.0
        },
    })
}

/// Writes the analysis artifacts of the sweep in `dir` (a Clarity or an R2L sweep); a Clarity
/// sweep's `bundle.json` is re-sealed over them.
pub fn analyze(
    dir: &Path,
    opts: &clarity_analysis::AnalyzeOptions,
) -> anyhow::Result<clarity_analysis::AnalysisSummary> {
    let summary = clarity_analysis::analyze_dir(dir, opts)
        .with_context(|| format!("analysing {}", dir.display()))?;
    if summary.source == clarity_analysis::SourceKind::Clarity {
        clarity_engine::artifacts::write_bundle(dir)?;
    }
    Ok(summary)
}

/// Writes `report.html` / `report.pdf` of the analysed sweep in `dir`; with the sweep's
/// prepared plan, worst cases get before/after thumbnails regenerated from its cohort.
pub fn write_report(
    dir: &Path,
    prepared: Option<&Prepared>,
) -> anyhow::Result<clarity_report::ReportSummary> {
    let thumbs = |case_id: &str, cell: &Cell, seed: u64| -> Option<Image> {
        let prepared = prepared?;
        let case = prepared.cohort.iter().find(|c| c.id == case_id)?;
        let recipe = Recipe {
            steps: prepared.plan.steps(cell.index),
        };
        recipe.apply(&case.image, seed, case_id).ok()
    };
    let opts = clarity_report::ReportOptions {
        thumbnails: prepared.is_some().then_some(&thumbs as _),
        ..Default::default()
    };
    clarity_report::write_report(dir, &opts)
        .with_context(|| format!("writing the report in {}", dir.display()))
}

/// What the `--fail-if` gates decided.
#[derive(Debug, Clone, Serialize)]
pub struct GateResult {
    /// Some gate failed (exit code 4).
    pub failed: bool,
    /// `true` per gate that failed, in order.
    pub failures: Vec<bool>,
    /// One line per gate.
    pub lines: Vec<String>,
}

/// A gate fails when its verdict is `breaks` or `not measured` (a gate never passes without
/// data), and when it is `inconclusive` unless `inconclusive_fails` is false.
pub fn judge_gates(gates: &[clarity_analysis::Verdicts], inconclusive_fails: bool) -> GateResult {
    use clarity_analysis::Outcome;
    let mut r = GateResult {
        failed: false,
        failures: Vec::new(),
        lines: Vec::new(),
    };
    for g in gates {
        let fail = match g.overall.outcome {
            Outcome::Breaks | Outcome::NotMeasured => true,
            Outcome::Inconclusive => inconclusive_fails,
            Outcome::Holds => false,
        };
        r.failed |= fail;
        r.failures.push(fail);
        r.lines.push(format!(
            "gate `{}`: {} — {}",
            g.condition,
            if fail { "FAILED" } else { "passed" },
            g.overall.summary
        ));
    }
    r
}

/// Wall-clock seconds per phase of `clarity run` (telemetry.json `phases`). The execution's
/// perturbation and model work overlap; their busy and waiting times are in the execution
/// telemetry (`perturb_secs`, `adapter_secs`, `*_wait_secs`), not here.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Phases {
    /// Loading the config, the cohort, and planning.
    pub plan_secs: f64,
    /// Executing the runs and sealing the observations.
    pub run_secs: f64,
    pub probe_secs: f64,
    pub refine_secs: f64,
    pub analyse_secs: f64,
    pub report_secs: f64,
    pub total_secs: f64,
}

/// Rewrites `dir/telemetry.json` with the execution's counts and timings and the phases.
pub fn write_telemetry(
    dir: &Path,
    stats: &clarity_engine::ExecStats,
    phases: &Phases,
) -> anyhow::Result<()> {
    let mut v = serde_json::to_value(stats)?;
    v["phases"] = serde_json::to_value(phases)?;
    clarity_engine::artifacts::write_telemetry(dir, &v)?;
    Ok(())
}
