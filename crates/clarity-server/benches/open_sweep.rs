//! Opening a 100 000-run sweep in the console (SPEC §8 "Scale"): a synthetic format-2 sweep
//! directory (plan.json, observations.parquet written by `clarity_store::TableWriter`, then
//! `clarity_analysis::analyze_dir` for metrics.json and the other analysis artifacts) —
//! 25 cells × 1000 cases × 4 seeds, 300-character justifications — served through the router
//! with tower's `oneshot` (no sockets).
//!
//! - `cold/*`: a fresh router each iteration (empty caches): what the first visitor waits for —
//!   the run table read from Parquet and compared with the baselines, the report's view loaded.
//! - `warm/*`: the same router (its caches filled): every later visit.
//!
//! Routes: `GET /api/v1/sweeps/{id}` (summary + every analysis artifact), `GET /sweeps/{id}`
//! (the sweep page: headline, flips per cell, curves, surfaces, cliffs, the probe form) and
//! `GET /api/v1/sweeps/{id}/runs?flipped=true&limit=50` (one page of a filtered run table).

use std::io::Write as _;
use std::path::Path;

use axum::body::Body;
use axum::http::{Request, StatusCode};
use clarity_core::{Axis, AxisValue, Case, Cell, Observation, Outcome, RunRecord};
use criterion::{Criterion, criterion_group, criterion_main};
use http_body_util::BodyExt;
use tower::ServiceExt;

fn axis(name: &str, values: &[f64]) -> Axis {
    Axis {
        name: name.into(),
        perturbation: name.split('.').next().unwrap_or(name).into(),
        param: "sigma".into(),
        values: values.iter().map(|v| AxisValue::Num(*v)).collect(),
        identity: AxisValue::Num(0.0),
        unit: String::new(),
    }
}

/// A deterministic 64-bit mix (splitmix64).
fn mix(mut x: u64) -> u64 {
    x = x.wrapping_add(0x9e37_79b9_7f4a_7c15);
    x = (x ^ (x >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    x ^ (x >> 31)
}

/// Writes `plan.json` and `observations.parquet` into `dir`; returns the number of runs.
fn synth(dir: &Path, cases: usize, seeds: u64) -> u64 {
    let axes = vec![
        axis("gaussian_blur.sigma", &[0.0, 0.5, 1.0, 2.0, 4.0]),
        axis("gaussian_noise.sigma", &[0.0, 0.05, 0.1, 0.2, 0.4]),
    ];
    let cells: Vec<Cell> = (0..25)
        .map(|i| Cell {
            index: i,
            coords: vec![i / 5, i % 5],
            is_baseline: i == 0,
        })
        .collect();
    let case_list: Vec<Case> = (0..cases)
        .map(|c| Case {
            id: format!("case-{c:05}"),
            image_hash: format!("{:016x}", mix(c as u64)),
            label: Some(if c % 3 == 0 { "nodule" } else { "normal" }.into()),
            prompt: None,
            metadata: Default::default(),
        })
        .collect();
    let seed_list: Vec<u64> = (0..seeds).collect();
    let plan = serde_json::json!({
        "axes": axes, "cells": cells, "cases": case_list, "seeds": seed_list,
        "normalization": {"mode": "choices", "choices": ["normal", "nodule"]},
        "analysis": {"bootstrap_iterations": 200}, "plan_hash": "synthetic",
        "adapter": {"adapter": "synthetic"},
    });
    std::fs::write(dir.join("plan.json"), plan.to_string()).expect("write plan.json");
    let f = std::fs::File::create(dir.join(clarity_store::OBSERVATIONS_FILE)).expect("create");
    let mut w = clarity_store::TableWriter::new(std::io::BufWriter::new(f)).expect("writer");
    let words = [
        "opacity", "left", "right", "lower", "upper", "lobe", "nodule", "margin", "dense",
        "rounded", "clear", "lung", "field", "hilum", "normal", "heart", "size",
    ];
    // Plan order: case, then cell, then seed.
    for (ci, case) in case_list.iter().enumerate() {
        for cell in &cells {
            let severity = (cell.coords[0] + cell.coords[1]) as u64; // 0..8
            for &seed in &seed_list {
                let h = mix(((ci as u64) << 32) ^ ((cell.index as u64) << 8) ^ seed);
                let truth = case.label.as_deref().unwrap_or("normal");
                let other = if truth == "normal" {
                    "nodule"
                } else {
                    "normal"
                };
                let flip = h % 100 < severity * 9;
                let answer = format!("The image shows {}.", if flip { other } else { truth });
                let mut just = String::new();
                let mut k = 0u64;
                while just.len() < 300 {
                    let base = mix(ci as u64 * 131 + k) as usize % words.len();
                    let changed = mix(h ^ k) % 60 < severity * 4;
                    just.push_str(if changed {
                        words[(base + 1) % words.len()]
                    } else {
                        words[base]
                    });
                    just.push(' ');
                    k += 1;
                }
                just.truncate(300);
                let outcome = if h % 1000 == 7 {
                    Outcome::Failed {
                        error: "timeout".into(),
                        attempts: 3,
                    }
                } else {
                    let conf = 0.95 - severity as f64 * 0.05 - (h >> 20) as f64 % 100.0 / 1000.0;
                    Outcome::Ok {
                        observation: Observation {
                            answer: Some(answer),
                            justification: Some(just),
                            confidence: Some(conf),
                            entropy: Some(1.0 - conf),
                            ..Observation::default()
                        },
                    }
                };
                w.push(&RunRecord {
                    key: format!("{h:016x}{:048x}", 0),
                    case_id: case.id.clone(),
                    cell: cell.index,
                    seed,
                    outcome,
                })
                .expect("row");
            }
        }
    }
    let (mut sink, rows) = w.finish().expect("finish");
    sink.flush().expect("flush");
    rows
}

async fn get(app: &axum::Router, uri: &str) -> usize {
    let r = app
        .clone()
        .oneshot(Request::get(uri).body(Body::empty()).expect("request"))
        .await
        .expect("response");
    assert_eq!(r.status(), StatusCode::OK, "{uri}");
    r.into_body()
        .collect()
        .await
        .expect("body")
        .to_bytes()
        .len()
}

fn router(root: &Path) -> axum::Router {
    clarity_server::router(clarity_server::ServerConfig {
        root: root.to_path_buf(),
        token: None,
        launcher: None,
    })
    .expect("router")
}

const ROUTES: [(&str, &str); 3] = [
    ("api_open", "/api/v1/sweeps/big"),
    ("page", "/sweeps/big"),
    ("runs_page", "/api/v1/sweeps/big/runs?flipped=true&limit=50"),
];

fn bench(c: &mut Criterion) {
    let root = tempfile::tempdir().expect("tempdir");
    let dir = root.path().join("big");
    std::fs::create_dir(&dir).expect("mkdir");
    let t = std::time::Instant::now();
    let runs = synth(&dir, 1000, 4);
    assert_eq!(runs, 100_000);
    clarity_analysis::analyze_dir(&dir, &Default::default()).expect("analysis");
    eprintln!(
        "setup (write + analyse 100k runs): {:.1} s",
        t.elapsed().as_secs_f64()
    );
    let rt = tokio::runtime::Runtime::new().expect("runtime");

    let mut g = c.benchmark_group("open_sweep_100k");
    g.sample_size(10);
    // Every route from a fresh server, then all three in a row (the first visit: page, then
    // the API the page's links use).
    for (name, uri) in ROUTES {
        g.bench_function(format!("cold/{name}"), |b| {
            b.iter(|| rt.block_on(get(&router(root.path()), uri)))
        });
    }
    g.bench_function("cold/all_three", |b| {
        b.iter(|| {
            let app = router(root.path());
            rt.block_on(async {
                for (_, uri) in ROUTES {
                    get(&app, uri).await;
                }
            })
        })
    });
    let app = router(root.path());
    for (name, uri) in ROUTES {
        rt.block_on(get(&app, uri));
        g.bench_function(format!("warm/{name}"), |b| {
            b.iter(|| rt.block_on(get(&app, uri)))
        });
    }
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
