//! The real analysis feeding the report: a Clarity sweep and the reference R2L sweep.

use std::path::{Path, PathBuf};

use clarity_analysis::{AnalyzeOptions, analyze_dir};
use clarity_report::{ReportOptions, write_report};

use crate::fixture;

const ANALYSIS_FILES: [&str; 5] = [
    "metrics.json",
    "surface.json",
    "gradients.json",
    "cliffs.json",
    "montecarlo.json",
];

#[test]
fn clarity_sweep_through_the_real_analysis() {
    let dir = tempfile::tempdir().unwrap();
    fixture::write(dir.path());
    for f in ANALYSIS_FILES {
        std::fs::remove_file(dir.path().join(f)).unwrap();
    }
    let opts = AnalyzeOptions {
        bootstrap_iterations: Some(200),
        ..AnalyzeOptions::default()
    };
    analyze_dir(dir.path(), &opts).unwrap();
    let s = write_report(dir.path(), &ReportOptions::default()).unwrap();
    let html = std::fs::read_to_string(&s.html).unwrap();
    // Per-case numbers are the fixture's hand-computed ones, compared with the analysis'
    // normaliser ("Nodule." and "nodule" are the same choice).
    assert!(
        html.contains("<td>c1</td><td>nodule</td><td>Nodule.</td><td class=\"num\">0.455</td>"),
        "{html}"
    );
    assert!(html.contains("72 planned, 71 ok, 1 failed"));
    // Blur flips c1 from σ = 2 and JPEG c2 at 10, but three cases decide nothing on the
    // interval: the analysis's verdict lines are the headline.
    assert!(
        html.contains(
            "<li>Verdict: inconclusive — along `gaussian_blur.sigma`, `jpeg.quality` (each below"
        ),
        "{html}"
    );
    // 2 curves, 1 heatmap, 2 ESI gradient charts: every baseline answer is correct, so the
    // accuracy heatmap would repeat the ESI one and is not drawn (a note says so).
    assert_eq!(html.matches("<figure>").count(), 5);
    assert!(html.contains("Accuracy equals ESI on every cell of 1 slice(s)"));
    // Per-class rows from the analysis.
    assert!(
        html.contains("<td>nodule</td><td class=\"num\">2</td>"),
        "{html}"
    );
    let again = write_report(dir.path(), &ReportOptions::default()).unwrap();
    assert_eq!(std::fs::read_to_string(&again.html).unwrap(), html);
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for e in std::fs::read_dir(from).unwrap() {
        let e = e.unwrap();
        let target = to.join(e.file_name());
        if e.file_type().unwrap().is_dir() {
            copy_dir(&e.path(), &target);
        } else {
            std::fs::copy(e.path(), target).unwrap();
        }
    }
}

#[test]
fn imported_r2l_sweep() {
    let reference =
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../../shared/reference/r2l_sweep");
    if !reference.join("sweep_manifest.json").exists() {
        eprintln!(
            "SKIPPED imported_r2l_sweep: {} is absent",
            reference.display()
        );
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    copy_dir(&reference, dir.path());
    // The sample's contrast axis (0.9, 1.1) has no identity: the baseline is named.
    let opts = AnalyzeOptions {
        bootstrap_iterations: Some(100),
        baseline: Some(vec![
            ("brightness".into(), "1.0".into()),
            ("contrast".into(), "0.9".into()),
        ]),
        ..AnalyzeOptions::default()
    };
    analyze_dir(dir.path(), &opts).unwrap();
    let s = write_report(dir.path(), &ReportOptions::default()).unwrap();
    let html = std::fs::read_to_string(&s.html).unwrap();
    assert!(
        html.contains("r2l (every manifest hash verified)"),
        "{html}"
    );
    assert!(html.contains("R2L program"));
    // Every answer depends only on the seed: nothing flips.
    assert!(html.contains("No answer flipped in this sweep."));
    // One case: an ESI of 1 everywhere is not enough to say it holds.
    assert!(
        html.contains(
            "<li>Verdict: inconclusive — along `brightness` (increasing), `brightness` (decreasing), `contrast` (each below"
        ),
        "{html}"
    );
    assert!(s.pdf_pages >= 1);
}
