//! After the runs: the analysis (`clarity_analysis`) and the report (`clarity_report`).
//!
//! [`analyze_and_report`] is the hook `clarity run` calls once `observations.jsonl` is written:
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
    pub headline: String,
    pub min_esi: Option<f64>,
    pub report: Option<String>,
}

/// Analyses the sweep in `dir`, re-seals the bundle and (unless `report` is false) writes the
/// report, with worst-case thumbnails regenerated from the cohort and the plan's recipes.
pub fn analyze_and_report(
    dir: &Path,
    prepared: &Prepared,
    report: bool,
) -> anyhow::Result<FinishSummary> {
    let summary = clarity_analysis::analyze_dir(dir, &clarity_analysis::AnalyzeOptions::default())
        .with_context(|| format!("analysing {}", dir.display()))?;
    clarity_engine::artifacts::write_bundle(dir)?;
    let mut report_path = None;
    if report {
        let thumbs = |case_id: &str, cell: &Cell, seed: u64| -> Option<Image> {
            let case = prepared.cohort.iter().find(|c| c.id == case_id)?;
            let recipe = Recipe {
                steps: prepared.plan.steps(cell.index),
            };
            recipe.apply(&case.image, seed, case_id).ok()
        };
        let opts = clarity_report::ReportOptions {
            thumbnails: Some(&thumbs),
            ..Default::default()
        };
        let r = clarity_report::write_report(dir, &opts)
            .with_context(|| format!("writing the report in {}", dir.display()))?;
        report_path = Some(r.html.display().to_string());
    }
    Ok(FinishSummary {
        analysis_files: summary.files,
        headline: summary.headline,
        min_esi: summary.min_esi,
        report: report_path,
    })
}
