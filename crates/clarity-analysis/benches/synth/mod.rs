//! A synthetic Clarity sweep directory for the benchmark and the `analyze_synthetic` example:
//! two 5-level axes (25 cells), `cases` cases with labels, `seeds` seeds, 300-character
//! justifications that drift with severity, answers that flip more often with severity.

use std::io::Write as _;
use std::path::Path;

use clarity_core::json::to_canonical_line;
use clarity_core::{Axis, AxisValue, Case, Cell, Observation, Outcome, RunRecord};

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

/// Writes `plan.json` and `observations.jsonl` into `dir`; returns the number of runs.
pub fn write(dir: &Path, cases: usize, seeds: u64) -> usize {
    let axes = vec![
        axis("blur.sigma", &[0.0, 0.5, 1.0, 2.0, 4.0]),
        axis("noise.sigma", &[0.0, 5.0, 10.0, 20.0, 40.0]),
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
        "analysis": {}, "plan_hash": "synthetic", "adapter": {"adapter": "synthetic"},
    });
    std::fs::write(dir.join("plan.json"), plan.to_string()).expect("write plan.json");
    let f = std::fs::File::create(dir.join("observations.jsonl")).expect("create journal");
    let mut w = std::io::BufWriter::new(f);
    let words = [
        "opacity", "left", "right", "lower", "upper", "lobe", "nodule", "margin", "dense",
        "rounded", "clear", "lung", "field", "hilum", "normal", "heart", "size",
    ];
    let mut n = 0;
    for cell in &cells {
        let severity = (cell.coords[0] + cell.coords[1]) as u64; // 0..8
        for (ci, case) in case_list.iter().enumerate() {
            for &seed in &seed_list {
                let h = mix((ci as u64) << 32 ^ (cell.index as u64) << 8 ^ seed);
                let truth = case.label.as_deref().unwrap_or("normal");
                let other = if truth == "normal" {
                    "nodule"
                } else {
                    "normal"
                };
                let flip = h % 100 < severity * 9;
                let answer = format!("The image shows {}.", if flip { other } else { truth });
                // 300 characters: the case's sentence with `severity * 4` words replaced.
                let mut just = String::new();
                let mut k = 0u64;
                while just.len() < 300 {
                    let base = mix(ci as u64 * 131 + k) as usize % words.len();
                    let changed = mix(h ^ k) % 60 < severity * 4;
                    let w = if changed {
                        words[(base + 1) % words.len()]
                    } else {
                        words[base]
                    };
                    just.push_str(w);
                    just.push(' ');
                    k += 1;
                }
                just.truncate(300);
                let failed = h % 1000 == 7;
                let outcome = if failed {
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
                let r = RunRecord {
                    key: format!("{h:016x}"),
                    case_id: case.id.clone(),
                    cell: cell.index,
                    seed,
                    outcome,
                };
                writeln!(w, "{}", to_canonical_line(&r).expect("record")).expect("write");
                n += 1;
            }
        }
    }
    w.flush().expect("flush");
    n
}
