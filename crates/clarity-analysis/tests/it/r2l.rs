//! The earlier tool's sweeps (SPEC §12), on the shared reference sample.

use std::path::{Path, PathBuf};

use clarity_analysis::{
    AnalysisError, AnalyzeOptions, analyze, analyze_dir, load_dir, load_r2l_dir,
};

fn reference() -> Option<PathBuf> {
    let p = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared/reference/r2l_sweep");
    if p.join("sweep_manifest.json").exists() {
        Some(p)
    } else {
        println!(
            "SKIPPED: {} is absent (the shared reference data is not checked out)",
            p.display()
        );
        None
    }
}

fn baseline() -> Vec<(String, String)> {
    // contrast has no identity value (1.0) in the grid {0.9, 1.1}: the user names it.
    vec![("contrast".into(), "0.9".into())]
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for e in std::fs::read_dir(from).unwrap() {
        let e = e.unwrap();
        let t = to.join(e.file_name());
        if e.file_type().unwrap().is_dir() {
            copy_dir(&e.path(), &t);
        } else {
            std::fs::copy(e.path(), &t).unwrap();
        }
    }
}

#[test]
fn reference_sweep_is_perfectly_stable_and_verified() {
    let Some(dir) = reference() else { return };
    let d = load_r2l_dir(&dir, Some(&baseline())).unwrap();
    assert_eq!(d.axes.len(), 2);
    assert_eq!(d.cells.len(), 6);
    assert_eq!(d.seeds, vec![42, 43]);
    assert_eq!(d.records.len(), 12);
    assert_eq!(d.source.manifest_checks.len(), 12);
    assert!(
        d.source.manifest_checks.iter().all(|c| c.ok),
        "{:?}",
        d.source.manifest_checks
    );
    // Baseline: brightness 1.0 (known identity) and contrast 0.9 (named).
    let b = d.cells.iter().find(|c| c.is_baseline).unwrap();
    assert_eq!(b.coords, vec![1, 0]);
    // The answer is on the middle record, not the last line.
    let o = d.records[0].observation().unwrap();
    assert_eq!(
        o.answer.as_deref(),
        Some("Deterministic output for seed 42")
    );
    let a = analyze(&d).unwrap();
    for c in &a.cells {
        assert_eq!(c.metrics["esi"].unwrap().value, 1.0, "cell {}", c.cell);
        assert_eq!(c.failures, 0);
    }
    // Answers depend on the seed: the baseline disagrees with itself across seeds.
    assert_eq!(a.self_agreement.all_seeds.unwrap().value, 0.0);
    assert!(a.self_agreement.flagged);
    assert!(
        a.cliffs
            .iter()
            .filter(|c| c.metric == "esi")
            .all(|c| c.level.is_none())
    );
}

#[test]
fn missing_identity_needs_a_named_baseline() {
    let Some(dir) = reference() else { return };
    let e = load_dir(&dir, None).unwrap_err();
    assert!(matches!(e, AnalysisError::Baseline(_)));
    let msg = e.to_string();
    assert!(
        msg.contains("`contrast` (identity 1 is not in the grid)"),
        "{msg}"
    );
    assert!(msg.contains("--baseline"), "{msg}");
    let e = load_dir(&dir, Some(&[("contrast".into(), "1.0".into())]))
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("contrast=1.0: not a value of the axis (values: 0.9, 1.1)"),
        "{e}"
    );
    let e = load_dir(&dir, Some(&[("hue".into(), "1".into())]))
        .unwrap_err()
        .to_string();
    assert!(e.contains("names axis `hue`"), "{e}");
}

#[test]
fn tampered_copy_reports_the_mismatch_and_writes_artifacts() {
    let Some(dir) = reference() else { return };
    let tmp = tempfile::tempdir().unwrap();
    let copy = tmp.path().join("sweep");
    copy_dir(&dir, &copy);
    let m = copy.join("runs/brightness=1p2_contrast=1p1_seed=43/manifest.json");
    let text = std::fs::read_to_string(&m)
        .unwrap()
        .replace("completed", "completed!");
    std::fs::write(&m, text).unwrap();
    let out = tmp.path().join("out");
    let s = analyze_dir(
        &copy,
        &AnalyzeOptions {
            output: Some(out.clone()),
            baseline: Some(baseline()),
            bootstrap_iterations: Some(100),
            ..AnalyzeOptions::default()
        },
    )
    .unwrap();
    assert_eq!(s.manifest_mismatches.len(), 1);
    let mm = &s.manifest_mismatches[0];
    assert_eq!(mm.run, "brightness=1p2_contrast=1p1_seed=43");
    assert_eq!(
        mm.expected,
        "994baf16f4ce1d8af3a712d657dbc4307636864f4849647283152595bdbccaaa"
    );
    assert_ne!(mm.actual.as_deref(), Some(mm.expected.as_str()));
    assert!(
        s.headline.contains("1 R2L manifest hash mismatch"),
        "{}",
        s.headline
    );
    let metrics: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("metrics.json")).unwrap()).unwrap();
    assert_eq!(metrics["source"]["kind"], "r2l");
    assert_eq!(metrics["source"]["manifest_mismatches"], 1);
    // The sweep directory itself is untouched.
    assert!(!copy.join("metrics.json").exists());

    // A malformed trace becomes a failed run naming the file and line, not an abort.
    let t = copy.join("runs/brightness=0p8_contrast=0p9_seed=42/trace_pack.jsonl");
    std::fs::write(&t, "{\"step\": 1}\n{oops\n").unwrap();
    let d = load_r2l_dir(&copy, Some(&baseline())).unwrap();
    let failed: Vec<_> = d
        .records
        .iter()
        .filter(|r| r.observation().is_none())
        .collect();
    assert_eq!(failed.len(), 1);
    let clarity_core::Outcome::Failed { error, .. } = &failed[0].outcome else {
        unreachable!()
    };
    assert!(
        error.contains("runs/brightness=0p8_contrast=0p9_seed=42/trace_pack.jsonl: line 2"),
        "{error}"
    );
}

#[test]
fn numeric_axes_sort_numerically() {
    let tmp = tempfile::tempdir().unwrap();
    let d = tmp.path();
    let runs: Vec<serde_json::Value> = [10.0, 2.0, 0.0]
        .iter()
        .map(|v| serde_json::json!({"axis_values": {"blur": v}, "seed": 1, "manifest_hash": ""}))
        .collect();
    std::fs::write(
        d.join("sweep_manifest.json"),
        serde_json::json!({
            "manifest_schema_family": "clarity_sweep_orchestrator_v1",
            "axes": {"blur": [10.0, 2.0, 0.0]}, "seeds": [1], "runs": runs,
        })
        .to_string(),
    )
    .unwrap();
    // Run directories with only their spec (which names the case).
    for v in ["10p0", "2p0", "0p0"] {
        let r = d.join(format!("runs/blur={v}_seed=1"));
        std::fs::create_dir_all(&r).unwrap();
        std::fs::write(r.join("spec.json"), r#"{"image_path": "a.png"}"#).unwrap();
    }
    let data = load_r2l_dir(d, None).unwrap();
    let labels: Vec<String> = data.axes[0].values.iter().map(|v| v.label()).collect();
    assert_eq!(labels, ["0", "2", "10"]);
    assert!(data.cells[0].is_baseline);
    // No run manifests: three failed runs naming the missing file, three hash mismatches.
    assert_eq!(data.source.mismatches().count(), 3);
    assert!(data.records.iter().all(|r| r.observation().is_none()));
    let clarity_core::Outcome::Failed { error, .. } = &data.records[0].outcome else {
        unreachable!()
    };
    assert!(
        error.contains("runs/blur=10p0_seed=1/manifest.json"),
        "{error}"
    );
    // Wrong family.
    std::fs::write(
        d.join("sweep_manifest.json"),
        r#"{"manifest_schema_family": "x"}"#,
    )
    .unwrap();
    let e = load_r2l_dir(d, None).unwrap_err().to_string();
    assert!(
        e.contains("manifest_schema_family") && e.contains("clarity_sweep_orchestrator_v1"),
        "{e}"
    );
}
