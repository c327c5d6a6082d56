use std::collections::BTreeMap;
use std::path::PathBuf;

use clarity_analysis::{AnalysisSettings, SourceInfo, SourceKind, SweepData};
use clarity_core::{Axis, AxisValue, Case, Cell, Normalization, Observation, Outcome, RunRecord};

pub fn num_axis(name: &str, values: &[f64], identity: f64) -> Axis {
    Axis {
        name: name.into(),
        perturbation: name.split('.').next().unwrap_or(name).into(),
        param: name.split('.').nth(1).unwrap_or("").into(),
        values: values.iter().map(|v| AxisValue::Num(*v)).collect(),
        identity: AxisValue::Num(identity),
        unit: String::new(),
    }
}

pub fn level_axis(name: &str, values: &[&str], identity: &str) -> Axis {
    Axis {
        name: name.into(),
        perturbation: name.into(),
        param: String::new(),
        values: values
            .iter()
            .map(|v| AxisValue::Level(v.to_string()))
            .collect(),
        identity: AxisValue::Level(identity.into()),
        unit: String::new(),
    }
}

/// The full grid, row-major, baseline at the identity point.
pub fn grid(axes: &[Axis]) -> Vec<Cell> {
    let shape: Vec<usize> = axes.iter().map(|a| a.values.len()).collect();
    let total: usize = shape.iter().product();
    let base: Vec<usize> = axes
        .iter()
        .map(|a| a.values.iter().position(|v| v == &a.identity).unwrap())
        .collect();
    (0..total)
        .map(|index| {
            let mut coords = vec![0; axes.len()];
            let mut rest = index;
            for k in (0..axes.len()).rev() {
                coords[k] = rest % shape[k];
                rest /= shape[k];
            }
            Cell {
                index,
                is_baseline: coords == base,
                coords,
            }
        })
        .collect()
}

pub fn case(id: &str, label: Option<&str>) -> Case {
    Case {
        id: id.into(),
        image_hash: format!("hash-{id}"),
        label: label.map(str::to_string),
        prompt: None,
        metadata: BTreeMap::new(),
    }
}

/// An ok run: answer, justification, confidence, entropy.
pub fn ok(
    case: &str,
    cell: usize,
    seed: u64,
    answer: &str,
    just: Option<&str>,
    conf: Option<f64>,
    ent: Option<f64>,
) -> RunRecord {
    RunRecord {
        key: format!("{case}-{cell}-{seed}"),
        case_id: case.into(),
        cell,
        seed,
        outcome: Outcome::Ok {
            observation: Observation {
                answer: Some(answer.into()),
                justification: just.map(str::to_string),
                confidence: conf,
                entropy: ent,
                ..Observation::default()
            },
        },
    }
}

pub fn failed(case: &str, cell: usize, seed: u64) -> RunRecord {
    RunRecord {
        key: format!("{case}-{cell}-{seed}"),
        case_id: case.into(),
        cell,
        seed,
        outcome: Outcome::Failed {
            error: "model timed out".into(),
            attempts: 3,
        },
    }
}

pub fn sweep(
    axes: Vec<Axis>,
    cases: Vec<Case>,
    seeds: Vec<u64>,
    records: Vec<RunRecord>,
) -> SweepData {
    SweepData {
        cells: grid(&axes),
        axes,
        cases,
        seeds,
        normalization: Normalization::Folded,
        settings: AnalysisSettings {
            bootstrap_iterations: 200,
            ..AnalysisSettings::default()
        },
        records,
        source: SourceInfo {
            kind: SourceKind::Clarity,
            dir: PathBuf::from("mem"),
            plan_hash: None,
            manifest_checks: Vec::new(),
            failed_runs: Vec::new(),
        },
    }
}

pub fn close(a: f64, b: f64) -> bool {
    (a - b).abs() < 1e-9
}

#[track_caller]
pub fn assert_close(a: Option<f64>, b: Option<f64>) {
    match (a, b) {
        (Some(x), Some(y)) => assert!(close(x, y), "{x} != {y}"),
        (None, None) => {}
        _ => panic!("{a:?} != {b:?}"),
    }
}

/// The hand-computed sweep of `metrics.rs`: blur.sigma ∈ {0, 0.5, 2, 10}, cases c1 (label
/// yes) and c2 (label no), seeds 1 and 2.
pub fn blur_sweep() -> SweepData {
    let axes = vec![num_axis("blur.sigma", &[0.0, 0.5, 2.0, 10.0], 0.0)];
    let r = vec![
        // Baseline.
        ok("c1", 0, 1, "yes", Some("abc"), Some(0.9), Some(0.3)),
        ok("c1", 0, 2, "yes", Some("abc"), Some(0.8), Some(0.4)),
        ok("c2", 0, 1, "no", Some(""), Some(0.6), None),
        ok("c2", 0, 2, "No.", Some(""), Some(0.7), None),
        // sigma 0.5
        ok("c1", 1, 1, "yes", Some("abd"), Some(0.7), Some(0.5)),
        ok("c1", 1, 2, "YES", Some("abc"), Some(0.8), Some(0.4)),
        ok("c2", 1, 1, "no", Some(""), None, None),
        ok("c2", 1, 2, "yes", Some("x"), Some(0.5), None),
        // sigma 2
        failed("c1", 2, 1),
        ok("c1", 2, 2, "no", None, Some(0.2), Some(1.0)),
        ok("c2", 2, 1, "yes", Some("xy"), Some(0.4), None),
        ok("c2", 2, 2, "yes", Some(""), Some(0.4), None),
        // sigma 10
        ok("c1", 3, 1, "no", None, None, None),
        ok("c1", 3, 2, "no", None, None, None),
        ok("c2", 3, 1, "no", None, None, None),
        ok("c2", 3, 2, "no", None, None, None),
    ];
    sweep(
        axes,
        vec![case("c1", Some("yes")), case("c2", Some("no"))],
        vec![1, 2],
        r,
    )
}
