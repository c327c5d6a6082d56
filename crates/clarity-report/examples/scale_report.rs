//! Size and speed check on a synthetic 10k-run sweep (3 axes: 8 × 5 × 5 = 200 cells, 25 cases,
//! 2 seeds, saliency on every observation, thumbnails for the worst cases), analysed by the real
//! `clarity_analysis::analyze_dir`:
//! `cargo run --release -p clarity-report --example scale_report DIR`.

use std::time::Instant;

use clarity_core::Cell;
use clarity_image::{Channels, Image};
use serde_json::{Value, json};

struct Src;
impl clarity_report::ThumbnailSource for Src {
    fn image(&self, case_id: &str, cell: &Cell, _seed: u64) -> Option<Image> {
        // A 512×512 gradient, so downscaling and encoding are exercised.
        let k = case_id.len() as u32 + cell.index as u32;
        let data = (0..512u32 * 512)
            .map(|i| (((i % 512) + (i / 512) * 2 + k) % 256) as u8)
            .collect();
        Image::from_u8(512, 512, Channels::Gray, data).ok()
    }
}

fn main() {
    let dir = std::path::PathBuf::from(std::env::args().nth(1).expect("usage: scale_report DIR"));
    std::fs::create_dir_all(&dir).unwrap();
    let blur = [0.0, 0.5, 1.0, 2.0, 3.0, 4.0, 6.0, 8.0];
    let noise = [0.0, 0.01, 0.02, 0.05, 0.1];
    let jpeg = [10.0, 25.0, 50.0, 75.0, 100.0];
    let axes = json!([
        {"name": "gaussian_blur.sigma", "perturbation": "gaussian_blur", "param": "sigma", "values": blur, "identity": 0.0, "unit": "px"},
        {"name": "gaussian_noise.sigma", "perturbation": "gaussian_noise", "param": "sigma", "values": noise, "identity": 0.0, "unit": "fraction of range"},
        {"name": "jpeg.quality", "perturbation": "jpeg", "param": "quality", "values": jpeg, "identity": 100.0, "unit": ""}
    ]);
    let mut cells = Vec::new();
    for i in 0..8 {
        for j in 0..5 {
            for k in 0..5 {
                cells.push(json!({"index": cells.len(), "coords": [i, j, k], "is_baseline": i + j == 0 && k == 4}));
            }
        }
    }
    let cases: Vec<Value> = (0..25)
        .map(|c| json!({"id": format!("case-{c:03}"), "image_hash": format!("h{c}"), "label": if c % 3 == 0 { "normal" } else { "nodule" }}))
        .collect();
    let plan = json!({"plan_hash": "ff".repeat(32), "tool_version": "clarity 0.1.0",
        "adapter": {"adapter": "builtin", "model": "clarity-builtin-cnn", "version": "w1", "settings": {}},
        "normalization": {"mode": "choices", "choices": ["nodule", "normal"]},
        "axes": axes, "cells": cells, "cases": cases, "seeds": [0, 1]});
    std::fs::write(dir.join("plan.json"), plan.to_string()).unwrap();
    let mut lines = String::new();
    for c in 0..25usize {
        for (idx, cell) in cells.iter().enumerate() {
            let co: Vec<usize> = cell["coords"]
                .as_array()
                .unwrap()
                .iter()
                .map(|v| v.as_u64().unwrap() as usize)
                .collect();
            for seed in 0..2u64 {
                let base = if c % 3 == 0 { "normal" } else { "nodule" };
                let flip = co[0] * 2 + co[1] + (4 - co[2]) + c % 5 + seed as usize > 12;
                let a = if flip {
                    if base == "normal" { "nodule" } else { "normal" }
                } else {
                    base
                };
                let sal: Vec<f64> = (0..64).map(|i| ((i * 7 + c) % 64) as f64 / 63.0).collect();
                let rec = json!({"key": format!("{c}-{idx}-{seed}"), "case_id": format!("case-{c:03}"), "cell": idx, "seed": seed,
                    "outcome": {"status": "ok", "observation": {"answer": a, "confidence": if flip {0.55} else {0.9},
                    "justification": format!("The model sees {a} evidence in the right upper zone with moderate certainty (case {c})."),
                    "saliency": {"width": 8, "height": 8, "values": sal}}}});
                lines.push_str(&rec.to_string());
                lines.push('\n');
            }
        }
    }
    std::fs::write(dir.join("observations.jsonl"), lines).unwrap();
    // The real analysis writes the artifacts (timed separately: it is not the report's cost).
    let t = Instant::now();
    let opts = clarity_analysis::AnalyzeOptions {
        bootstrap_iterations: Some(200),
        ..Default::default()
    };
    clarity_analysis::analyze_dir(&dir, &opts).unwrap();
    eprintln!("analysis {:.2} s", t.elapsed().as_secs_f64());

    let t = Instant::now();
    let data = clarity_report::load::load(
        &dir,
        &clarity_report::load::LoadOptions {
            thumbnails: if std::env::var("NOTHUMB").is_ok() {
                None
            } else {
                Some(&Src)
            },
            max_worst_cases: 6,
            max_case_rows: 1000,
        },
    )
    .unwrap();
    let t_load = t.elapsed().as_secs_f64();
    let html = clarity_report::render_html(&data);
    let t_html = t.elapsed().as_secs_f64();
    let _ = clarity_report::render_pdf(&data).unwrap();
    eprintln!(
        "load {t_load:.2} s, html {:.2} s, pdf {:.2} s ({} KB html)",
        t_html - t_load,
        t.elapsed().as_secs_f64() - t_html,
        html.len() / 1024
    );
    let t = Instant::now();
    let s = clarity_report::write_report(
        &dir,
        &clarity_report::ReportOptions {
            thumbnails: Some(&Src),
            ..Default::default()
        },
    )
    .unwrap();
    eprintln!(
        "10k runs: {:.2} s; html {} KB, pdf {} KB, {} pages, {} thumbnails",
        t.elapsed().as_secs_f64(),
        s.html_bytes / 1024,
        s.pdf_bytes / 1024,
        s.pdf_pages,
        s.thumbnails
    );
}
