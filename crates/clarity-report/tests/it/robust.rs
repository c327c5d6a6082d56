//! Degenerate sweeps and hostile text still give a well-formed HTML and a PDF.

use std::collections::BTreeMap;

use clarity_core::{Axis, AxisValue};
use clarity_report::model::*;
use clarity_report::{ReportOptions, render_html, render_pdf, write_report};
use proptest::prelude::*;
use serde_json::json;

fn well_formed(html: &str) {
    roxmltree::Document::parse_with_options(
        html,
        roxmltree::ParsingOptions {
            allow_dtd: true,
            ..Default::default()
        },
    )
    .expect("well-formed");
}

#[test]
fn empty_data_renders() {
    let d = ReportData::default();
    well_formed(&render_html(&d));
    let (pdf, pages) = render_pdf(&d).unwrap();
    assert!(pdf.starts_with(b"%PDF-") && pages >= 1);
}

#[test]
fn minimal_sweep_without_optional_files() {
    // One named-level axis, no observations, no surface/gradients/cliffs/montecarlo/bundle.
    let dir = tempfile::tempdir().unwrap();
    let plan = json!({
        "axes": [{"name": "window", "perturbation": "windowing", "param": "preset",
                  "values": ["lung", "mediastinum"], "identity": "lung"}],
        "cells": [{"index": 0, "coords": [0], "is_baseline": true},
                  {"index": 1, "coords": [1], "is_baseline": false}],
        "cases": [{"id": "only", "image_hash": "h"}],
        "seeds": [7],
        "adapter": {"adapter": "command", "model": "./model.sh", "version": ""}
    });
    std::fs::write(dir.path().join("plan.json"), plan.to_string()).unwrap();
    std::fs::write(dir.path().join("metrics.json"), "{}").unwrap();
    std::fs::write(dir.path().join("observations.jsonl"), "").unwrap();
    let s = write_report(dir.path(), &ReportOptions::default()).unwrap();
    let html = std::fs::read_to_string(&s.html).unwrap();
    well_formed(&html);
    for note in [
        "No per-axis curves in this sweep.",
        "No 2-D surfaces",
        "One seed per cell (K = 1)",
        "No ground-truth labels",
        "No answer flipped in this sweep.",
        "not measured (one seed)",
        "no bundle.json",
        "command/./model.sh",
        "2 planned, 0 ok, 0 failed",
    ] {
        assert!(html.contains(note), "missing {note}");
    }
    assert!(s.pdf_pages >= 1);
}

fn axis(n: usize, name: &str) -> Axis {
    Axis {
        name: name.into(),
        perturbation: "p".into(),
        param: "x".into(),
        values: (0..n).map(|i| AxisValue::Num(i as f64 * 0.125)).collect(),
        identity: AxisValue::Num(0.0),
        unit: "units with a long name".into(),
    }
}

fn hostile() -> impl Strategy<Value = String> {
    prop::string::string_regex("[a-z<>&\"' \\x00-\\x08é漢🙂\\n]{0,40}").unwrap()
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 12, ..ProptestConfig::default() })]

    /// Any text, any number of levels (1–40), missing values: HTML parses, PDF renders, and
    /// rendering twice gives the same bytes.
    #[test]
    fn any_content_renders(
        levels in 1usize..40,
        values in prop::collection::vec(prop::option::of(0.0f64..=1.0), 40),
        answer in hostile(),
        justification in hostile(),
        case_id in hostile(),
    ) {
        let a = axis(levels, &format!("axis{case_id}"));
        let ests: Vec<Option<Estimate>> = values[..levels]
            .iter()
            .map(|v| v.map(|v| Estimate::new(v, (v - 0.1).max(0.0), (v + 0.1).min(1.0))))
            .collect();
        let mut metrics = BTreeMap::new();
        metrics.insert(Metric::Esi, ests.clone());
        metrics.insert(Metric::Drift, ests);
        let view = AnswerView { answer: answer.clone(), justification: justification.clone(), ..AnswerView::default() };
        let d = ReportData {
            title: format!("t {answer}"),
            axes: vec![a.clone(), a],
            curves: vec![AxisCurves { axis: 0, metrics: metrics.clone(), line: metrics }],
            refined: vec![RefinedCliff { axis: 0, metric: Metric::Esi, threshold: 0.9, initial: (0.0, 1.0), bracket: (0.25, 0.5), rounds: 2, crossing: Some(0.3), crossing_lo: None, crossing_hi: Some(0.6), located: None, stopped: "uncertainty".into(), non_monotone_cases: 1, cohort_recrossings: 0, summary: justification.clone() }],
            cliffs: vec![Cliff { axis: 0, metric: Metric::Esi, threshold: 0.9, level: Some(levels - 1), steepest: None, direction: Some("increasing".into()), relative_position: None, metric_value: None, crossing: None, severity: None, interval: None, recovers_at: None, case_flips: None, rank: None }],
            slices: vec![Slice { x_axis: 0, y_axis: 1, metric: Metric::Esi,
                values: (0..levels).map(|j| values[..levels].iter().map(|v| v.map(|v| (v + j as f64 * 0.01).min(1.0))).collect()).collect() }],
            gradients: vec![Gradient { axis: 0, metric: Metric::Esi, per_unit: values[..levels].to_vec(), per_step: values[..levels].iter().map(|v| v.map(|v| -v)).collect() }],
            worst: vec![WorstCase { case_id: case_id.clone(), label: Some(answer.clone()), cell: justification.clone(), seed: 1, esi: Some(0.5), baseline: view.clone(), perturbed: view }],
            cases: vec![CaseRow { case_id, label: None, baseline_answer: answer, esi: None, runs: 1, flips: 0, failures: 1, first_flip: Some(justification) }],
            esi_threshold: 0.9,
            ..ReportData::default()
        };
        let html = render_html(&d);
        well_formed(&html);
        prop_assert_eq!(&html, &render_html(&d));
        let (pdf, _) = render_pdf(&d).unwrap();
        prop_assert_eq!(pdf, render_pdf(&d).unwrap().0);
    }
}

#[test]
fn jpeg_and_png_thumbnails_embed_in_the_pdf() {
    use clarity_image::{Channels, Image};
    // Noise compresses badly losslessly: JPEG wins; a flat image stays PNG.
    let mut x: u32 = 1;
    let noisy: Vec<u8> = (0..256 * 256 * 3)
        .map(|_| {
            x = x.wrapping_mul(1_103_515_245).wrapping_add(12345);
            (x >> 24) as u8
        })
        .collect();
    let noisy = Image::from_u8(256, 256, Channels::Rgb, noisy).unwrap();
    let flat = Image::from_u8(64, 64, Channels::Gray, vec![90; 64 * 64]).unwrap();
    let j = clarity_report::thumbnail(&noisy, None).unwrap();
    let p = clarity_report::thumbnail(&flat, None).unwrap();
    assert_eq!(j.mime, "image/jpeg");
    assert_eq!(p.mime, "image/png");
    let side = |t| AnswerView {
        answer: "a".into(),
        thumb: Some(t),
        ..AnswerView::default()
    };
    let d = ReportData {
        worst: vec![WorstCase {
            case_id: "c".into(),
            label: None,
            cell: "x=1".into(),
            seed: 0,
            esi: None,
            baseline: side(p),
            perturbed: side(j),
        }],
        ..ReportData::default()
    };
    let (pdf, _) = render_pdf(&d).unwrap();
    let text = String::from_utf8_lossy(&pdf);
    assert_eq!(
        text.matches("/Subtype/Image").count(),
        2,
        "both images embedded"
    );
    assert!(text.contains("/DCTDecode"), "the JPEG is passed through");
}
