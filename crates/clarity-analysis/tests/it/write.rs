//! `analyze_dir` on a Clarity sweep directory: artifacts, determinism, error paths.

use std::path::Path;

use clarity_analysis::{AnalyzeOptions, SweepData, analyze, analyze_dir, io, load_clarity_dir};
use clarity_core::json::to_canonical_line;
use serde_json::{Value, json};

use crate::fixture::*;

pub(crate) fn write_sweep(dir: &Path, d: &SweepData, analysis: Value) {
    let plan = json!({
        "axes": d.axes, "cells": d.cells, "cases": d.cases, "seeds": d.seeds,
        "normalization": d.normalization, "analysis": analysis, "plan_hash": "abc123",
        "adapter": {"adapter": "builtin"}, "tool_version": "x",
    });
    std::fs::write(dir.join("plan.json"), plan.to_string()).unwrap();
    let lines: Vec<String> = d
        .records
        .iter()
        .map(|r| to_canonical_line(r).unwrap())
        .collect();
    std::fs::write(dir.join("observations.jsonl"), lines.join("\n") + "\n").unwrap();
}

fn read(dir: &Path, f: &str) -> Value {
    serde_json::from_str(&std::fs::read_to_string(dir.join(f)).unwrap()).unwrap()
}

const FILES: [&str; 7] = [
    "cases.csv",
    "cliffs.json",
    "gradients.json",
    "metrics.csv",
    "metrics.json",
    "montecarlo.json",
    "surface.json",
];

#[test]
fn writes_every_artifact_deterministically() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let d = blur_sweep();
    write_sweep(
        dir,
        &d,
        json!({"bootstrap_iterations": 300, "bootstrap_seed": 7}),
    );
    let s = analyze_dir(dir, &AnalyzeOptions::default()).unwrap();
    assert_eq!(s.files, FILES);
    assert!(
        // Two cases: ESI 0.75 at 0.5 is below 0.8, but its interval is not.
        s.headline
            .starts_with("Verdict: inconclusive — along `blur.sigma`, at 0.5, ESI 0.750 ["),
        "{}",
        s.headline
    );
    assert!(
        s.headline
            .contains("Baseline self-agreement over 2 seeds: 1.000 ["),
        "{}",
        s.headline
    );
    assert!(
        s.headline
            .contains("1 of 16 runs failed (6%) and are left out of the metrics."),
        "{}",
        s.headline
    );
    let first: Vec<Vec<u8>> = FILES
        .iter()
        .map(|f| std::fs::read(dir.join(f)).unwrap())
        .collect();
    analyze_dir(dir, &AnalyzeOptions::default()).unwrap();
    let second: Vec<Vec<u8>> = FILES
        .iter()
        .map(|f| std::fs::read(dir.join(f)).unwrap())
        .collect();
    assert_eq!(first, second);
    // No temporaries left.
    let names: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into())
        .collect();
    assert!(
        !names.iter().any(|n| n.contains("clarity-tmp")),
        "{names:?}"
    );

    // The streamed analysis equals the in-memory one.
    let mut loaded = load_clarity_dir(dir).unwrap();
    assert_eq!(loaded.settings.bootstrap_iterations, 300);
    assert_eq!(loaded.records, d.records);
    loaded.source.dir = dir.to_path_buf();
    let files = io::render(
        &analyze(&loaded).unwrap(),
        &loaded.source,
        &loaded.normalization,
    )
    .unwrap();
    for (name, bytes) in files {
        assert_eq!(bytes, std::fs::read(dir.join(&name)).unwrap(), "{name}");
    }

    // Shapes the report reads.
    let m = read(dir, "metrics.json");
    assert_eq!(m["schema_version"], 1);
    assert_eq!(m["esi_threshold"], 0.8);
    assert_eq!(m["bootstrap"]["iterations"], 300);
    assert_eq!(m["bootstrap"]["method"], "percentile");
    assert_eq!(m["cells"][1]["esi"]["value"], 0.75);
    assert_eq!(m["cells"][1]["values"], json!([0.5]));
    assert_eq!(m["cells"][3]["drift"], Value::Null);
    assert_eq!(m["baseline_self_agreement"]["value"], 1.0);
    assert_eq!(m["source"]["plan_hash"], "abc123");
    let sf = read(dir, "surface.json");
    assert_eq!(sf["marginals"][0]["axis"], "blur.sigma");
    assert_eq!(sf["marginals"][0]["metrics"]["esi"][2]["value"], 0.0);
    assert_eq!(sf["grid"]["esi"], json!([1.0, 0.75, 0.0, 0.5]));
    let g = read(dir, "gradients.json");
    assert_eq!(g["gradients"][0]["per_unit"][0], -0.5);
    let c = read(dir, "cliffs.json");
    assert_eq!(c["first_break"]["level"], 1);
    assert_eq!(c["refine"][0]["values"], json!([0.25]));
    let mc = read(dir, "montecarlo.json");
    assert_eq!(mc["k"], 2);
    assert_eq!(mc["cells"][1]["majority_agreement"], 1.0);
    let csv = std::fs::read_to_string(dir.join("metrics.csv")).unwrap();
    let mut lines = csv.lines();
    assert!(lines.next().unwrap().starts_with(
        "cell,is_baseline,blur.sigma,n,ok,failures,excluded,compared,cases,esi,esi_lo,esi_hi,"
    ));
    assert!(
        lines
            .nth(1)
            .unwrap()
            .starts_with("1,false,0.5,4,4,0,0,4,2,0.75,")
    );
    let cases = std::fs::read_to_string(dir.join("cases.csv")).unwrap();
    assert!(cases.contains("\nc2,1,0.5,2,0,2,0.5,0.5,"), "{cases}");
    // NaN is impossible: no "NaN" text anywhere.
    for f in FILES {
        assert!(
            !std::fs::read_to_string(dir.join(f))
                .unwrap()
                .contains("NaN")
        );
    }
}

#[test]
fn bad_inputs_leave_existing_artifacts_untouched() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let d = blur_sweep();
    write_sweep(dir, &d, json!({}));
    analyze_dir(
        dir,
        &AnalyzeOptions {
            bootstrap_iterations: Some(20),
            ..Default::default()
        },
    )
    .unwrap();
    let before = std::fs::read(dir.join("metrics.json")).unwrap();

    let mut text = std::fs::read_to_string(dir.join("observations.jsonl")).unwrap();
    text.push_str("{\"not\": \"a record\"}\n");
    std::fs::write(dir.join("observations.jsonl"), &text).unwrap();
    let e = analyze_dir(dir, &AnalyzeOptions::default())
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("observations.jsonl: line 17: not a run record"),
        "{e}"
    );
    assert_eq!(std::fs::read(dir.join("metrics.json")).unwrap(), before);

    write_sweep(dir, &d, json!({"bootstrap_iteration": 5}));
    let e = analyze_dir(dir, &AnalyzeOptions::default())
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("plan.json: key `analysis`")
            && e.contains("unknown field `bootstrap_iteration`"),
        "{e}"
    );
    write_sweep(dir, &d, json!({"cliff_threshold": 1.5}));
    let e = analyze_dir(dir, &AnalyzeOptions::default())
        .unwrap_err()
        .to_string();
    assert!(e.contains("cliff_threshold: 1.5 is outside [0, 1]"), "{e}");
    assert_eq!(std::fs::read(dir.join("metrics.json")).unwrap(), before);

    let empty = tempfile::tempdir().unwrap();
    let e = analyze_dir(empty.path(), &AnalyzeOptions::default())
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("neither a Clarity sweep (plan.json) nor an R2L sweep"),
        "{e}"
    );
}

#[test]
fn one_seed_montecarlo_is_explicitly_empty() {
    let tmp = tempfile::tempdir().unwrap();
    let axes = vec![num_axis("blur.sigma", &[0.0, 1.0], 0.0)];
    let d = sweep(
        axes,
        vec![case("c", None)],
        vec![1],
        vec![
            ok("c", 0, 1, "a", None, None, None),
            ok("c", 1, 1, "a", None, None, None),
        ],
    );
    write_sweep(tmp.path(), &d, json!({}));
    let s = analyze_dir(tmp.path(), &AnalyzeOptions::default()).unwrap();
    assert!(
        s.headline
            .contains("Verdict: inconclusive — along `blur.sigma`, at 1, ESI 1.000 ["),
        "{}",
        s.headline
    );
    assert!(
        s.headline.contains("not measured (one seed)"),
        "{}",
        s.headline
    );
    let mc = read(tmp.path(), "montecarlo.json");
    assert_eq!(mc["k"], 1);
    assert_eq!(mc["cells"], json!([]));
    assert_eq!(
        read(tmp.path(), "metrics.json")["baseline_self_agreement"],
        Value::Null
    );
}

#[test]
fn one_thread_and_many_give_the_same_bytes() {
    let d = blur_sweep();
    let render = || {
        let a = analyze(&d).unwrap();
        io::render(&a, &d.source, &d.normalization).unwrap()
    };
    let one = rayon::ThreadPoolBuilder::new()
        .num_threads(1)
        .build()
        .unwrap()
        .install(render);
    let four = rayon::ThreadPoolBuilder::new()
        .num_threads(4)
        .build()
        .unwrap()
        .install(render);
    assert_eq!(one, four);
}

#[test]
fn snapshot_of_the_tables_and_cliffs() {
    let d = blur_sweep();
    let a = analyze(&d).unwrap();
    let files = io::render(&a, &d.source, &d.normalization).unwrap();
    let get =
        |n: &str| String::from_utf8(files.iter().find(|(f, _)| f == n).unwrap().1.clone()).unwrap();
    insta::assert_snapshot!("metrics_csv", get("metrics.csv"));
    insta::assert_snapshot!("cliffs_json", get("cliffs.json"));
    insta::assert_snapshot!("montecarlo_json", get("montecarlo.json"));
}

#[test]
fn plan_and_journal_errors_name_file_and_key() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let d = blur_sweep();
    write_sweep(dir, &d, json!({}));
    std::fs::remove_file(dir.join("observations.jsonl")).unwrap();
    let e = load_clarity_dir(dir).unwrap_err().to_string();
    assert!(
        e.contains("no observations.parquet (or observations.jsonl, journal.jsonl)"),
        "{e}"
    );

    // The journal is accepted when there is no observations.jsonl.
    let lines: Vec<String> = d
        .records
        .iter()
        .rev()
        .map(|r| to_canonical_line(r).unwrap())
        .collect();
    std::fs::write(dir.join("journal.jsonl"), lines.join("\n")).unwrap();
    assert_eq!(load_clarity_dir(dir).unwrap().records.len(), 16);

    let mut plan: Value = read(dir, "plan.json");
    plan.as_object_mut().unwrap().remove("seeds");
    std::fs::write(dir.join("plan.json"), plan.to_string()).unwrap();
    let e = load_clarity_dir(dir).unwrap_err().to_string();
    assert!(
        e.contains("plan.json: key `seeds`: expected present"),
        "{e}"
    );

    write_sweep(dir, &d, json!({}));
    let mut plan: Value = read(dir, "plan.json");
    plan["axes"][0]["values"] = json!([0.0, 2.0, 0.5, 10.0]);
    std::fs::write(dir.join("plan.json"), plan.to_string()).unwrap();
    let e = load_clarity_dir(dir).unwrap_err().to_string();
    assert!(
        e.contains("axes[0].values") && e.contains("strictly increasing"),
        "{e}"
    );

    write_sweep(dir, &d, json!({}));
    std::fs::write(dir.join("plan.json"), "{not json").unwrap();
    let e = load_clarity_dir(dir).unwrap_err().to_string();
    assert!(e.contains("plan.json: invalid JSON"), "{e}");
}
