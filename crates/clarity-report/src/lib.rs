//! Clarity's sweep report: one self-contained `report.html` and a deterministic `report.pdf`.
//!
//! Entry points: [`write_report`] (sweep directory → both files), [`render_html`] and
//! [`render_pdf`] (from a [`ReportData`] built by hand or by [`load::load`]).
//!
//! [`write_report`] reads a sweep directory (the engine's `plan.json` and observations,
//! the analysis artifacts `metrics.json`, `surface.json`, `gradients.json`, `cliffs.json`,
//! `montecarlo.json`, and `bundle.json`) into a [`ReportData`] ([`load`]), builds the report's
//! sections once ([`doc`]) and lays them out twice: HTML with inline SVG plots ([`html`]) and PDF
//! with vector plots ([`pdf`]). Figures are [`scene::Scene`]s: a handful of shapes written as SVG
//! or as krilla paths, so the two outputs always agree.
//!
//! Determinism: no timestamps, BTreeMap/sorted iteration, fixed float formatting; the PDF has
//! fixed metadata and ids. Two generations from the same directory give identical bytes.
//!
//! When the directory holds a counterfactual probe (`probe.json`, `overlays/`), a "Counterfactual
//! probe" section ([`probe`]) comes before the provenance.
//!
//! Thumbnails of worst cases need the images the model saw, which the sweep directory does not
//! store: pass a [`ThumbnailSource`] (the CLI regenerates them from the cohort and recipe). Without
//! one the report says so and shows answers only.

pub mod doc;
mod extra;
pub mod html;
pub mod load;
pub mod model;
pub mod pdf;
pub mod plots;
pub mod probe;
pub mod scene;
mod thumbs;

use std::path::{Path, PathBuf};

pub use load::ThumbnailSource;
pub use model::ReportData;
pub use thumbs::thumbnail;

/// Errors making a report. Messages name the file and, where it applies, the key or line.
#[derive(Debug, thiserror::Error)]
pub enum ReportError {
    #[error(transparent)]
    Io(#[from] std::io::Error),
    #[error("{path}: not found ({hint})")]
    Missing { path: PathBuf, hint: String },
    #[error("{path}: invalid JSON: {source}")]
    Json {
        path: PathBuf,
        source: serde_json::Error,
    },
    #[error("{path}: line {line}: {message}")]
    Line {
        path: PathBuf,
        line: usize,
        message: String,
    },
    #[error("{path}: key `{key}`: expected {expected}")]
    Shape {
        path: PathBuf,
        key: String,
        expected: String,
    },
    #[error(transparent)]
    Analysis(#[from] clarity_analysis::AnalysisError),
    #[error("cannot build the PDF: {0}")]
    Pdf(String),
}

/// How to make the report.
pub struct ReportOptions<'a> {
    /// Where worst-case thumbnails come from; `None`: no thumbnails (the report says so).
    pub thumbnails: Option<&'a dyn ThumbnailSource>,
    /// How many worst cases to show with before/after detail.
    pub max_worst_cases: usize,
    /// Cap on per-case table rows (worst first).
    pub max_case_rows: usize,
}

impl Default for ReportOptions<'_> {
    fn default() -> Self {
        Self {
            thumbnails: None,
            max_worst_cases: 6,
            max_case_rows: 1000,
        }
    }
}

/// What was written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReportSummary {
    pub html: PathBuf,
    pub html_bytes: usize,
    pub pdf: PathBuf,
    pub pdf_bytes: usize,
    pub pdf_pages: usize,
    pub worst_cases: usize,
    pub thumbnails: usize,
}

/// Renders the HTML report of `data`.
pub fn render_html(data: &ReportData) -> String {
    html::render(data, &doc::build(data))
}

/// Renders the PDF report of `data`: its bytes and page count.
pub fn render_pdf(data: &ReportData) -> Result<(Vec<u8>, usize), ReportError> {
    pdf::render(data, &doc::build(data))
}

/// Writes `report.html` and `report.pdf` into the sweep directory `dir` (both rendered before
/// either is written; each written then renamed, so an existing report is replaced only by a
/// complete new one and left untouched on any error).
pub fn write_report(dir: &Path, opts: &ReportOptions<'_>) -> Result<ReportSummary, ReportError> {
    let data = load::load(
        dir,
        &load::LoadOptions {
            thumbnails: opts.thumbnails,
            max_worst_cases: opts.max_worst_cases,
            max_case_rows: opts.max_case_rows,
        },
    )?;
    let mut sections = doc::build(&data);
    // The counterfactual probe's section, when the directory has `probe.json`.
    if let Some(p) = probe::section(dir)? {
        let at = sections
            .iter()
            .position(|s| s.id == "provenance")
            .unwrap_or(sections.len());
        sections.insert(at, p);
    }
    let html = html::render(&data, &sections);
    let (pdf, pdf_pages) = pdf::render(&data, &sections)?;
    let html_path = dir.join("report.html");
    let pdf_path = dir.join("report.pdf");
    write_atomic(&html_path, html.as_bytes())?;
    write_atomic(&pdf_path, &pdf)?;
    Ok(ReportSummary {
        html: html_path,
        html_bytes: html.len(),
        pdf: pdf_path,
        pdf_bytes: pdf.len(),
        pdf_pages,
        worst_cases: data.worst.len(),
        thumbnails: data
            .worst
            .iter()
            .map(|w| w.baseline.thumb.is_some() as usize + w.perturbed.thumb.is_some() as usize)
            .sum(),
    })
}

/// Writes `bytes` to a temporary sibling, syncs it, then renames it over `path`.
fn write_atomic(path: &Path, bytes: &[u8]) -> Result<(), ReportError> {
    use std::io::Write as _;
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let tmp = path.with_file_name(format!(".{name}.tmp"));
    {
        let mut f = fs_err::File::create(&tmp)?;
        f.write_all(bytes)?;
        f.sync_all()?;
    }
    fs_err::rename(&tmp, path)?;
    Ok(())
}
