//! The figures say what their legends and markers say (issue 12, item 6).

use std::collections::BTreeMap;

use clarity_core::{Axis, AxisValue};
use clarity_report::doc::{self, Block};
use clarity_report::model::*;
use clarity_report::plots::{POOLED, gradient_chart, heatmap, stability_chart};
use clarity_report::scene::{Rgb, Scene, Shape, okabe_ito, text_width};

fn axis(name: &str, values: &[f64], identity: f64) -> Axis {
    Axis {
        name: name.into(),
        perturbation: name.split('.').next().unwrap().into(),
        param: "sigma".into(),
        values: values.iter().map(|v| AxisValue::Num(*v)).collect(),
        identity: AxisValue::Num(identity),
        unit: "fraction of range".into(),
    }
}

fn series(v: &[f64]) -> Vec<Option<Estimate>> {
    v.iter().map(|x| Some(Estimate::point(*x))).collect()
}

/// A stroked path: its index in drawing order, points, dashed.
type Drawn = (usize, Vec<(f64, f64)>, bool);

/// The stroked paths of `color`, in drawing order.
fn paths(s: &Scene, color: Rgb) -> Vec<Drawn> {
    s.shapes
        .iter()
        .enumerate()
        .filter_map(|(i, sh)| match sh {
            Shape::Path {
                points,
                stroke: Some((c, _)),
                dashed,
                closed: false,
                ..
            } if *c == color && points.len() > 2 => Some((i, points.clone(), *dashed)),
            _ => None,
        })
        .collect()
}

fn texts(s: &Scene) -> Vec<String> {
    s.shapes
        .iter()
        .filter_map(|sh| match sh {
            Shape::Text { text, .. } => Some(text.clone()),
            _ => None,
        })
        .collect()
}

/// Before: the ESI curve was the marginal pooled over the other axes (0.58 at the identity in
/// the quickstart) while the cliff marker came from the line through the baseline.
#[test]
fn main_curve_is_the_line_through_the_baseline_and_the_pooled_one_is_secondary() {
    let a = axis("gaussian_noise.sigma", &[0.0, 0.05, 0.1], 0.0);
    let mut line = BTreeMap::new();
    line.insert(Metric::Esi, series(&[1.0, 0.5, 0.2]));
    line.insert(Metric::Accuracy, series(&[1.0, 0.5, 0.2]));
    let mut pooled = BTreeMap::new();
    pooled.insert(Metric::Esi, series(&[0.6, 0.4, 0.2]));
    pooled.insert(Metric::Accuracy, series(&[0.6, 0.4, 0.2]));
    let curves = AxisCurves {
        axis: 0,
        metrics: pooled,
        line,
    };
    let s = stability_chart(&a, &curves, &[], 0.8, Some((0.02, 0.04)));
    let esi = paths(&s, okabe_ito::BLUE);
    assert_eq!(esi.len(), 1, "one ESI line");
    let ys: Vec<f64> = esi[0].1.iter().map(|p| p.1).collect();
    // ESI 1 at the identity sits at the top of the plot area, above the pooled 0.6.
    let pooled = paths(&s, POOLED);
    assert_eq!(pooled.len(), 1, "the pooled marginal is drawn once");
    assert!(pooled[0].2, "pooled: dashed");
    assert!(ys[0] < pooled[0].1[0].1, "{ys:?} vs {:?}", pooled[0].1);
    assert!(pooled[0].0 < esi[0].0, "pooled drawn under the main curves");
    assert!(
        texts(&s)
            .iter()
            .any(|t| t == "ESI pooled over the other axes"),
        "{:?}",
        texts(&s)
    );
    assert!(texts(&s).iter().any(|t| t == "refined cliff (refine.json)"));
    // Accuracy equals ESI here: drawn after ESI, dashed, with hollow square markers.
    let acc = paths(&s, okabe_ito::GREEN);
    assert_eq!(acc.len(), 1);
    assert!(
        acc[0].2 && acc[0].0 > esi[0].0,
        "accuracy dashed and on top"
    );
    let squares = s
        .shapes
        .iter()
        .filter(|sh| {
            matches!(sh, Shape::Rect { fill: None, stroke: Some((c, _)), .. } if *c == okabe_ito::GREEN)
        })
        .count();
    assert_eq!(squares, 3, "one hollow square per level");
    // A one-axis sweep (no line loaded) draws the marginal as the main curve and no pooled one.
    let single = AxisCurves {
        axis: 0,
        metrics: curves.line.clone(),
        line: BTreeMap::new(),
    };
    let s = stability_chart(&a, &single, &[], 0.8, None);
    assert!(paths(&s, POOLED).is_empty());
    assert_eq!(paths(&s, okabe_ito::BLUE).len(), 1);
}

/// Before: the one-sided difference at the identity level (the largest drop) was drawn blue,
/// the colour the caption gives to "not falling".
#[test]
fn the_largest_drop_is_drawn_in_the_falling_colour() {
    let a = axis("gaussian_noise.sigma", &[0.0, 0.05, 0.1], 0.0);
    let g = Gradient {
        axis: 0,
        metric: Metric::Esi,
        per_unit: vec![Some(-5.75), Some(-5.0), Some(-4.25)],
        per_step: vec![Some(-0.287), Some(-0.25), Some(-0.212)],
    };
    let s = gradient_chart(&a, &g);
    let bars: Vec<_> = s
        .shapes
        .iter()
        .filter_map(|sh| match sh {
            // Bars live in the plot area (below the legend row).
            Shape::Rect {
                fill: Some(c),
                y,
                stroke: None,
                ..
            } if *y >= 29.0 => Some(*c),
            _ => None,
        })
        .collect();
    assert_eq!(bars.len(), 3, "{bars:?}");
    assert!(bars.iter().all(|c| *c == okabe_ito::VERMILLION), "{bars:?}");
    // The legend names both colours.
    let t = texts(&s);
    assert!(t.iter().any(|x| x == "falls moving away from the identity"));
    assert!(t.iter().any(|x| x == "rises or holds"));
    // Identity at the last level (JPEG quality): falling towards lower values is a positive
    // difference.
    let q = axis("jpeg.quality", &[10.0, 50.0, 100.0], 100.0);
    let g = Gradient {
        axis: 0,
        metric: Metric::Esi,
        per_unit: vec![None; 3],
        per_step: vec![Some(0.2), Some(0.3), Some(0.4)],
    };
    let s = gradient_chart(&q, &g);
    assert!(s.shapes.iter().any(
        |sh| matches!(sh, Shape::Rect { fill: Some(c), h, .. } if *c == okabe_ito::VERMILLION && *h > 30.0)
    ));
    assert!(!s.shapes.iter().any(
        |sh| matches!(sh, Shape::Rect { fill: Some(c), h, .. } if *c == okabe_ito::BLUE && *h > 30.0)
    ));
}

/// Before: with two or three rows the rotated y title ("gaussian_noise.sigma (fraction of
/// range)") was longer than the figure was tall: cut off in HTML, over the caption in the PDF.
#[test]
fn heatmap_y_title_fits_inside_the_figure() {
    let x = axis("gaussian_blur.sigma", &[0.0, 0.5, 1.0, 2.0, 4.0], 0.0);
    for ny in [2usize, 3, 8] {
        let values: Vec<f64> = (0..ny).map(|i| i as f64 / 10.0).collect();
        let y = axis("gaussian_noise.sigma", &values, 0.0);
        let sl = Slice {
            x_axis: 0,
            y_axis: 1,
            metric: Metric::Esi,
            values: vec![vec![Some(0.5); 5]; ny],
        };
        let s = heatmap(&x, &y, &sl, Some(0.8));
        for sh in &s.shapes {
            if let Shape::Text {
                y: ty,
                text,
                size,
                vertical: true,
                ..
            } = sh
            {
                let half = text_width(text, *size) / 2.0;
                assert!(
                    ty - half >= 0.0 && ty + half <= s.height,
                    "{ny} rows: `{text}` spans {}..{} of a {}-tall figure",
                    ty - half,
                    ty + half,
                    s.height
                );
            }
        }
    }
}

fn slice(metric: Metric, v: f64) -> Slice {
    Slice {
        x_axis: 0,
        y_axis: 1,
        metric,
        values: vec![vec![Some(v); 2]; 2],
    }
}

fn figures(sections: &[doc::Section], id: &str) -> usize {
    sections
        .iter()
        .find(|s| s.id == id)
        .unwrap()
        .blocks
        .iter()
        .filter(|b| matches!(b, Block::Figure { .. }))
        .count()
}

#[test]
fn identical_esi_and_accuracy_heatmaps_are_drawn_once() {
    let mut d = ReportData {
        axes: vec![
            axis("a.sigma", &[0.0, 1.0], 0.0),
            axis("b.sigma", &[0.0, 1.0], 0.0),
        ],
        esi_threshold: 0.8,
        slices: vec![slice(Metric::Esi, 0.5), slice(Metric::Accuracy, 0.5)],
        ..ReportData::default()
    };
    assert_eq!(figures(&doc::build(&d), "surfaces"), 1);
    d.slices[1] = slice(Metric::Accuracy, 0.25);
    assert_eq!(figures(&doc::build(&d), "surfaces"), 2);
}

#[test]
fn glossary_defines_every_metric_and_verdict() {
    let d = ReportData::default();
    let sections = doc::build(&d);
    let g = sections.iter().find(|s| s.id == "glossary").unwrap();
    let Block::KeyValues(kv) = &g.blocks[0] else {
        panic!("glossary is a key/value list")
    };
    for term in [
        "ESI",
        "Flip rate",
        "Accuracy",
        "CSI",
        "Confidence shift",
        "EDM",
        "Justification drift",
        "n_eff",
        "breaks",
        "holds",
        "inconclusive",
        "not measured",
    ] {
        assert!(
            kv.iter().any(|(k, _)| k.contains(term)),
            "no entry for {term}"
        );
    }
    let html = clarity_report::render_html(&d);
    assert!(html.contains("id=\"glossary\""));
    assert!(html.contains("evidence stability index"));
}

/// Before: the report ignored refine.json (the headline still said "at 2").
#[test]
fn refined_cliffs_from_refine_json_are_in_the_report() {
    let dir = tempfile::tempdir().unwrap();
    crate::fixture::write(dir.path());
    let refine = serde_json::json!({
        "schema_version": 1,
        "cliffs": [{
            "axis": "gaussian_blur.sigma", "axis_index": 0, "metric": "esi",
            "direction": "increasing", "threshold": 0.8,
            "initial_ok": 1.0, "initial_broken": 2.0, "ok": 1.0, "broken": 1.5,
            "width": 0.5, "initial_width": 1.0,
            "crossing": {"estimate": 1.2, "lo": 0.77, "hi": null, "resamples": 1000, "censored": 40},
            "located": null,
            "non_monotone": {"cohort": [], "cases": [{"case_id": "c1", "rises": [[2.0, 4.0]]}]},
            "line": [], "rounds": [{"round": 1}], "stopped": "uncertainty",
            "summary": "gaussian_blur.sigma esi < 0.8: crosses between 1 and 1.5 (test sentence)."
        }]
    });
    std::fs::write(
        dir.path().join("refine.json"),
        serde_json::to_string_pretty(&refine).unwrap(),
    )
    .unwrap();
    let s = clarity_report::write_report(dir.path(), &clarity_report::ReportOptions::default())
        .unwrap();
    let html = std::fs::read_to_string(&s.html).unwrap();
    assert!(
        html.contains("crosses between 1 and 1.5 (test sentence)."),
        "{html}"
    );
    assert!(html.contains("Refined cliffs (refine.json)"));
    assert!(html.contains("<td>[1, 2]</td><td>[1, 1.5]</td>"), "{html}");
    assert!(html.contains("1.2 [0.77, not bounded]"));
    assert!(html.contains("not bounded: more cases needed"));
    assert!(
        html.contains("refined cliff (refine.json)"),
        "the chart marks it"
    );
    // A malformed refine.json is an error naming the file and key.
    std::fs::write(
        dir.path().join("refine.json"),
        r#"{"cliffs": [{"axis": "nope", "metric": "esi"}]}"#,
    )
    .unwrap();
    let e = clarity_report::write_report(dir.path(), &clarity_report::ReportOptions::default())
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("refine.json") && e.contains("cliffs[0].axis"),
        "{e}"
    );
}
