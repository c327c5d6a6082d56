//! A small hand-built sweep: 2 axes (blur × 4 levels, JPEG × 3 levels) = 12 cells, 3 cases,
//! 2 seeds = 72 runs, one failure. Answers are chosen so the per-case numbers are known:
//! - c1 (label nodule) flips to "normal" when blur σ ≥ 2: 12 of 22 comparisons → ESI 0.455,
//!   first flip `gaussian_blur.sigma=2`;
//! - c2 (label normal) flips to "nodule" at JPEG quality 10: 8 of 22 → ESI 0.636
//!   (JPEG levels ascend, 10 50 100, identity 100: the baseline cell is 2, coords [0, 2]);
//! - c3 (label nodule) never flips; its run in cell 5, seed 1 fails: ESI 1.000 over 21.

use std::path::Path;

use clarity_core::Cell;
use clarity_image::{Channels, Image};
use clarity_report::ThumbnailSource;
use serde_json::{Value, json};

pub const BLUR: [f64; 4] = [0.0, 1.0, 2.0, 4.0];
pub const JPEG: [f64; 3] = [10.0, 50.0, 100.0];

fn est(v: f64, lo: f64, hi: f64) -> Value {
    json!({"value": v, "lo": lo, "hi": hi})
}

pub fn answer(case: &str, coords: &[usize]) -> &'static str {
    match case {
        "c1" if coords[0] >= 2 => "normal",
        "c1" => "Nodule.",
        "c2" if coords[1] == 0 => "nodule",
        "c2" => "normal",
        _ => "nodule",
    }
}

/// Writes the fixture into `dir`.
pub fn write(dir: &Path) {
    let axes = json!([
        {"name": "gaussian_blur.sigma", "perturbation": "gaussian_blur", "param": "sigma",
         "values": BLUR, "identity": 0.0, "unit": "px"},
        {"name": "jpeg.quality", "perturbation": "jpeg", "param": "quality",
         "values": JPEG, "identity": 100.0, "unit": ""}
    ]);
    let mut cells = Vec::new();
    for i in 0..4 {
        for j in 0..3 {
            cells.push(
                json!({"index": i * 3 + j, "coords": [i, j], "is_baseline": i == 0 && j == 2}),
            );
        }
    }
    let cases = json!([
        {"id": "c1", "image_hash": "h1", "label": "nodule"},
        {"id": "c2", "image_hash": "h2", "label": "normal"},
        {"id": "c3", "image_hash": "h3", "label": "nodule"}
    ]);
    let plan = json!({
        "schema_version": 1,
        "plan_hash": "0123456789abcdef0123456789abcdef",
        "tool_version": "clarity 0.1.0",
        "adapter": {"adapter": "builtin", "model": "clarity-builtin-cnn", "version": "w1",
                    "settings": {"temperature": 0.0}},
        "normalization": {"mode": "choices", "choices": ["nodule", "normal"]},
        "axes": axes, "cells": cells, "cases": cases, "seeds": [0, 1],
        "cohort": {"name": "phantoms-3"}
    });
    std::fs::write(
        dir.join("plan.json"),
        serde_json::to_string_pretty(&plan).unwrap(),
    )
    .unwrap();

    let mut lines = String::new();
    for case in ["c1", "c2", "c3"] {
        for i in 0..4usize {
            for j in 0..3usize {
                for seed in 0..2u64 {
                    let cell = i * 3 + j;
                    let outcome = if case == "c3" && cell == 5 && seed == 1 {
                        json!({"status": "failed", "error": "timeout after 30 s", "attempts": 3})
                    } else {
                        let a = answer(case, &[i, j]);
                        let flipped = a.to_lowercase().trim_end_matches('.')
                            != answer(case, &[0, 2]).to_lowercase().trim_end_matches('.');
                        let mut obs = json!({
                            "answer": a,
                            "justification": if a.to_lowercase().starts_with("nodule") {
                                "Round opacity in the right upper lobe."
                            } else {
                                "Lungs clear; no focal opacity."
                            },
                            "confidence": if flipped { 0.6 } else { 0.9 },
                            "entropy": if flipped { 0.67 } else { 0.33 },
                        });
                        if case == "c1" {
                            obs["saliency"] =
                                json!({"width": 2, "height": 2, "values": [0.0, 1.0, 0.0, 0.25]});
                        }
                        json!({"status": "ok", "observation": obs})
                    };
                    let rec = json!({"key": format!("{case}-{cell}-{seed}"), "case_id": case,
                                     "cell": cell, "seed": seed, "outcome": outcome});
                    lines.push_str(&serde_json::to_string(&rec).unwrap());
                    lines.push('\n');
                }
            }
        }
    }
    std::fs::write(dir.join("observations.jsonl"), lines).unwrap();

    let metrics = json!({
        "schema_version": 1,
        "esi_threshold": 0.9,
        "self_agreement": {"all_seeds": est(1.0, 1.0, 1.0), "threshold": 0.9, "flagged": false},
        "runs": {"records": 72, "ok": 71, "failed": 1, "planned": 72},
        "per_class": [
            {"label": "nodule", "cases": 2, "cells": [
                {"cell": 2, "esi": est(1.0, 1.0, 1.0), "accuracy": est(1.0, 1.0, 1.0)},
                {"cell": 5, "esi": est(1.0, 1.0, 1.0), "accuracy": est(1.0, 1.0, 1.0)},
                {"cell": 9, "esi": est(0.5, 0.0, 1.0), "accuracy": est(0.5, 0.0, 1.0)}],
             "first_break": {"axis": "gaussian_blur.sigma", "metric": "esi", "level": 2}},
            {"label": "normal", "cases": 1, "cells": [
                {"cell": 2, "esi": est(1.0, 1.0, 1.0), "accuracy": est(1.0, 1.0, 1.0)},
                {"cell": 0, "esi": null, "accuracy": est(0.0, 0.0, 0.0)}],
             "first_break": null}
        ],
    });
    std::fs::write(dir.join("metrics.json"), metrics.to_string()).unwrap();

    let surface = json!({
        "schema_version": 1,
        "marginals": [
            {"axis": "gaussian_blur.sigma", "metrics": {
                "esi": [est(1.0, 1.0, 1.0), est(0.889, 0.7, 1.0), est(0.556, 0.333, 0.778), est(0.556, 0.333, 0.778)],
                "accuracy": [est(1.0, 1.0, 1.0), est(0.889, 0.667, 1.0), est(0.556, 0.333, 0.778), est(0.556, 0.333, 0.778)],
                "confidence": [est(0.9, 0.9, 0.9), est(0.85, 0.8, 0.9), est(0.7, 0.6, 0.8), est(0.7, 0.6, 0.8)],
                "drift": [est(0.0, 0.0, 0.0), est(0.1, 0.0, 0.2), est(0.4, 0.2, 0.6), null]
            }},
            {"axis": "jpeg.quality", "metrics": {
                "esi": [est(0.417, 0.25, 0.583), est(0.75, 0.5, 1.0), est(0.75, 0.5, 1.0)],
                "accuracy": [est(0.417, 0.25, 0.583), est(0.75, 0.5, 1.0), est(0.75, 0.5, 1.0)]
            }}
        ],
        "slices": [
            {"x_axis": "gaussian_blur.sigma", "y_axis": "jpeg.quality", "metric": "esi",
             "values": [[0.667, 0.667, 0.333, null], [1.0, 1.0, 0.667, 0.667], [1.0, 1.0, 0.667, 0.667]]}
        ]
    });
    std::fs::write(dir.join("surface.json"), surface.to_string()).unwrap();

    let gradients = json!({"gradients": [
        {"axis": "gaussian_blur.sigma", "metric": "esi",
         "per_unit": [-0.111, -0.222, -0.111, 0.0], "per_step": [-0.111, -0.222, -0.167, 0.0]},
        {"axis": "jpeg.quality", "metric": "esi",
         "per_unit": [0.008, 0.004, 0.0], "per_step": [0.333, 0.167, 0.0]}
    ]});
    std::fs::write(dir.join("gradients.json"), gradients.to_string()).unwrap();

    let cliffs = json!({"cliffs": [
        {"axis": "gaussian_blur.sigma", "metric": "esi", "threshold": 0.9, "level": 1,
         "direction": "increasing", "relative_position": 0.333, "metric_value": 0.833,
         "steepest": {"level": 2, "drop": 0.333}, "crossing": 0.7, "severity": 0.7,
         "interval": {"near": 0.4, "far": null, "never_cross": 12, "resamples": 200, "non_monotone": 3},
         "case_flips": {"cases": 6, "cross": 2, "flip_back": 1}},
        {"axis": "jpeg.quality", "metric": "esi", "threshold": 0.9, "level": 0,
         "direction": "decreasing", "relative_position": 1.0, "metric_value": 0.5,
         "steepest": {"level": 0, "drop": 0.333}},
        {"axis": "jpeg.quality", "metric": "esi", "threshold": 0.9, "level": 0, "case_id": "c1"}
    ], "ranking": {"esi": {"scale": "severity_presets", "entries": [
        {"axis": "gaussian_blur.sigma", "direction": "increasing", "rank": 1},
        {"axis": "jpeg.quality", "direction": "decreasing", "rank": 2}
    ]}}});
    std::fs::write(dir.join("cliffs.json"), cliffs.to_string()).unwrap();

    let mc = json!({"k": 2, "cells": [
        {"cell": 2, "majority_agreement": 1.0, "answer_entropy": 0.0, "confidence_mean": 0.9, "confidence_var": 0.0},
        {"cell": 9, "answer_distribution": {"nodule": 2, "normal": 3, "<none>": 1}, "majority_agreement": 0.8, "majority_cases": 5, "ties": 1, "answer_entropy": 1.011, "seed_entropy": 0.116, "seed_agreement": 0.917, "confidence_mean": 0.7, "confidence_var": 0.02}
    ]});
    std::fs::write(dir.join("montecarlo.json"), mc.to_string()).unwrap();
    std::fs::write(dir.join("bundle.json"), "{\"files\": {}}\n").unwrap();
}

/// Thumbnails from a synthetic image per case, darker with blur level (stand-in for the CLI's
/// perturbation replay).
pub struct Synthetic;

impl ThumbnailSource for Synthetic {
    fn image(&self, case_id: &str, cell: &Cell, _seed: u64) -> Option<Image> {
        let (w, h) = (64u32, 48u32);
        let shift = case_id.bytes().last().unwrap_or(0) as u32;
        let dim = cell.coords[0] as u32 * 30;
        let data = (0..w * h)
            .map(|i| {
                let (x, y) = (i % w, i / w);
                (((x * 3 + y * 2 + shift) % 200) as i64 - dim as i64).clamp(0, 255) as u8
            })
            .collect();
        Image::from_u8(w, h, Channels::Gray, data).ok()
    }
}
