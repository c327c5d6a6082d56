use std::process::Command;

use clarity_report::{ReportOptions, write_report};

use crate::fixture;

fn generate() -> (tempfile::TempDir, Vec<u8>, usize) {
    let dir = tempfile::tempdir().unwrap();
    fixture::write(dir.path());
    let src = fixture::Synthetic;
    let opts = ReportOptions {
        thumbnails: Some(&src),
        ..ReportOptions::default()
    };
    let summary = write_report(dir.path(), &opts).unwrap();
    let pdf = std::fs::read(dir.path().join("report.pdf")).unwrap();
    assert_eq!(summary.pdf_bytes, pdf.len());
    (dir, pdf, summary.pdf_pages)
}

#[test]
fn deterministic_pdf_bytes_and_golden_hash() {
    let (_a, first, pages) = generate();
    let (_b, second, _) = generate();
    assert!(first.starts_with(b"%PDF-"));
    assert_eq!(first, second, "two generations differ");
    assert_eq!(pages, 5);
    crate::golden::check("report.pdf", &first);
}

fn tool(name: &str) -> bool {
    Command::new(name).arg("-v").output().is_ok()
}

#[test]
fn pdf_text_and_page_count() {
    if !tool("pdftotext") || !tool("pdfinfo") {
        eprintln!(
            "SKIPPED pdf_text_and_page_count: pdftotext/pdfinfo not installed (apt-get install poppler-utils)"
        );
        return;
    }
    let (dir, _, pages) = generate();
    let path = dir.path().join("report.pdf");
    let info = Command::new("pdfinfo").arg(&path).output().unwrap();
    let info = String::from_utf8_lossy(&info.stdout);
    assert!(
        info.contains(&format!("Pages:           {pages}")),
        "{info}"
    );
    assert!(
        info.contains("Title:           Clarity robustness report: clarity-builtin-cnn"),
        "{info}"
    );
    assert!(
        !info.contains("CreationDate"),
        "no dates in a deterministic PDF: {info}"
    );
    let out = Command::new("pdftotext")
        .arg("-layout")
        .arg(&path)
        .arg("-")
        .output()
        .unwrap();
    assert!(out.status.success());
    let text = String::from_utf8(out.stdout).unwrap();
    for heading in [
        "Summary",
        "Stability per axis",
        "2-D surfaces",
        "Gradients",
        "Monte Carlo (K = 2)",
        "Per class",
        "Worst cases",
        "Per case",
        "Glossary",
        "Provenance",
    ] {
        assert!(text.contains(heading), "missing {heading}");
    }
    for needle in [
        "gaussian_blur.sigma breaks the model first: ESI falls below 0.900 at 1 px",
        "72 planned, 71 ok, 1 failed",
        "0.556 [0.333, 0.778]",
        "c1, label nodule, case ESI 0.455",
        "answer: Nodule.",
        "Lungs clear; no focal opacity.",
        "0123456789abcdef0123456789abcdef",
        "page 5 of 5",
    ] {
        assert!(text.contains(needle), "missing {needle:?} in\n{text}");
    }
    // The per-case table row of c1, columns in order.
    let row = text
        .lines()
        .find(|l| l.trim_start().starts_with("c1 "))
        .expect("c1 row");
    let cols: Vec<&str> = row.split_whitespace().collect();
    assert_eq!(
        cols,
        [
            "c1",
            "nodule",
            "Nodule.",
            "0.455",
            "24",
            "12",
            "0",
            "gaussian_blur.sigma=2"
        ]
    );
}
