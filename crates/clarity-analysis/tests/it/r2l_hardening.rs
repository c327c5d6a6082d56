//! Issue 14: an R2L sweep is untrusted input. Sizes are checked before allocating, paths stay
//! inside the sweep directory, only regular files are read, and failure reasons are reported.

use std::path::Path;

use clarity_analysis::{AnalysisError, AnalyzeOptions, analyze_dir, load_r2l_dir};
use serde_json::{Value, json};

/// A valid two-run sweep (`blur` ∈ {0, 1}, seed 1) with complete run directories.
fn sweep(d: &Path) {
    let mut runs = Vec::new();
    for (v, enc) in [(0.0, "0p0"), (1.0, "1p0")] {
        let r = d.join(format!("runs/blur={enc}_seed=1"));
        std::fs::create_dir_all(&r).unwrap();
        let manifest = br#"{"run_id":"r","timestamp":"t","seed":1,"artifacts":[]}"#;
        std::fs::write(r.join("manifest.json"), manifest).unwrap();
        std::fs::write(
            r.join("spec.json"),
            r#"{"image_path": "a.png", "question": "q?"}"#,
        )
        .unwrap();
        std::fs::write(
            r.join("trace_pack.jsonl"),
            "{\"step\": 1, \"output\": \"yes\"}\n",
        )
        .unwrap();
        use sha2::Digest;
        let h = hex::encode(sha2::Sha256::digest(manifest));
        runs.push(json!({"axis_values": {"blur": v}, "seed": 1, "manifest_hash": h}));
    }
    write_manifest(d, json!({"blur": [0.0, 1.0]}), runs);
}

fn write_manifest(d: &Path, axes: Value, runs: Vec<Value>) {
    std::fs::write(
        d.join("sweep_manifest.json"),
        json!({
            "manifest_schema_family": "clarity_sweep_orchestrator_v1",
            "axes": axes, "seeds": [1], "runs": runs,
        })
        .to_string(),
    )
    .unwrap();
}

fn failure(d: &Path, run: usize) -> String {
    let data = load_r2l_dir(d, None).unwrap();
    match &data.records[run].outcome {
        clarity_core::Outcome::Failed { error, .. } => error.clone(),
        o => panic!("run {run} did not fail: {o:?}"),
    }
}

#[test]
fn a_huge_grid_is_refused_before_allocating() {
    let tmp = tempfile::tempdir().unwrap();
    let d = tmp.path();
    sweep(d);
    // The issue's 4.4 KB manifest: four extra 100-value axes (2 × 10^8 cells).
    let mut axes = json!({"blur": [0.0, 1.0]});
    for k in ["a", "b", "c", "d"] {
        axes[k] = Value::Array((0..100).map(|i| json!(i)).collect());
    }
    write_manifest(d, axes, vec![]);
    let start = std::time::Instant::now();
    let baseline: Vec<(String, String)> = ["a", "b", "c", "d"]
        .iter()
        .map(|k| (k.to_string(), "0".to_string()))
        .collect();
    let e = load_r2l_dir(d, Some(&baseline)).unwrap_err();
    assert!(matches!(e, AnalysisError::Invalid(_)), "{e:?}");
    let e = e.to_string();
    assert!(
        e.contains("has 200000000 cells, above the limit of 1000000 cells")
            && e.contains("CLARITY_R2L_MAX_CELLS"),
        "{e}"
    );
    assert!(start.elapsed() < std::time::Duration::from_secs(5));
}

#[test]
fn axis_names_with_separators_or_dotdot_are_refused() {
    for bad in ["../../etc", "/abs", "a\\b", ".."] {
        let tmp = tempfile::tempdir().unwrap();
        let d = tmp.path();
        let runs = vec![json!({"axis_values": {bad: 0.0}, "seed": 1, "manifest_hash": ""})];
        write_manifest(d, json!({bad: [0.0]}), runs);
        let e = load_r2l_dir(d, None).unwrap_err().to_string();
        assert!(
            e.contains("key `axes`: expected safe axis names"),
            "{bad}: {e}"
        );
    }
}

#[cfg(unix)]
#[test]
fn run_dirs_and_files_resolving_outside_the_sweep_are_refused() {
    let tmp = tempfile::tempdir().unwrap();
    let d = tmp.path().join("sweep");
    std::fs::create_dir(&d).unwrap();
    sweep(&d);
    // A run directory that is a symlink to a directory outside the sweep.
    let outside = tmp.path().join("elsewhere");
    std::fs::rename(d.join("runs/blur=1p0_seed=1"), &outside).unwrap();
    std::os::unix::fs::symlink(&outside, d.join("runs/blur=1p0_seed=1")).unwrap();
    let e = load_r2l_dir(&d, None).unwrap_err().to_string();
    assert!(e.contains("outside the sweep directory; refused"), "{e}");
    // A trace that is a symlink to a file outside: the run fails, naming why.
    std::fs::remove_file(d.join("runs/blur=1p0_seed=1")).unwrap();
    std::fs::rename(&outside, d.join("runs/blur=1p0_seed=1")).unwrap();
    let t = d.join("runs/blur=1p0_seed=1/trace_pack.jsonl");
    std::fs::rename(&t, tmp.path().join("trace")).unwrap();
    std::os::unix::fs::symlink(tmp.path().join("trace"), &t).unwrap();
    let e = failure(&d, 1);
    assert!(e.contains("outside the sweep directory"), "{e}");
}

#[cfg(unix)]
#[test]
fn devices_and_fifos_are_refused_not_read() {
    let tmp = tempfile::tempdir().unwrap();
    let d = tmp.path();
    sweep(d);
    let t = d.join("runs/blur=1p0_seed=1/trace_pack.jsonl");
    std::fs::remove_file(&t).unwrap();
    // Inside the sweep directory, so only the file type stops it.
    std::os::unix::fs::symlink("/dev/zero", &t).unwrap();
    let e = failure(d, 1);
    assert!(
        e.contains("/dev/zero") || e.contains("not a regular file"),
        "{e}"
    );
    std::fs::remove_file(&t).unwrap();
    let st = std::process::Command::new("mkfifo")
        .arg(&t)
        .status()
        .unwrap();
    assert!(st.success());
    let e = failure(d, 1); // would block forever if the FIFO were opened
    assert!(
        e.contains("not a regular file (a FIFO, socket or device)"),
        "{e}"
    );
}

#[test]
fn overlong_trace_lines_are_refused_naming_the_limit() {
    let tmp = tempfile::tempdir().unwrap();
    let d = tmp.path();
    sweep(d);
    let long = format!(
        "{{\"step\": 1, \"output\": \"{}\"}}\n",
        "x".repeat((1 << 20) + 1)
    );
    std::fs::write(d.join("runs/blur=1p0_seed=1/trace_pack.jsonl"), long).unwrap();
    let e = failure(d, 1);
    assert!(
        e.contains("runs/blur=1p0_seed=1/trace_pack.jsonl: line 1:")
            && e.contains("above the limit of 1048576 bytes per trace line")
            && e.contains("CLARITY_R2L_MAX_LINE_BYTES"),
        "{e}"
    );
}

#[test]
fn a_run_without_spec_json_is_an_error_not_a_synthetic_case() {
    let tmp = tempfile::tempdir().unwrap();
    let d = tmp.path();
    sweep(d);
    std::fs::remove_file(d.join("runs/blur=1p0_seed=1/spec.json")).unwrap();
    let e = load_r2l_dir(d, None).unwrap_err();
    assert!(matches!(e, AnalysisError::Invalid(_)), "{e:?}");
    let e = e.to_string();
    assert!(
        e.contains("runs/blur=1p0_seed=1/spec.json") && e.contains("needs a spec.json"),
        "{e}"
    );
}

#[test]
fn invalid_utf8_in_the_sweep_manifest_is_a_json_error() {
    let tmp = tempfile::tempdir().unwrap();
    std::fs::write(
        tmp.path().join("sweep_manifest.json"),
        b"{\"axes\": \"\xff\xfe\"}",
    )
    .unwrap();
    let e = load_r2l_dir(tmp.path(), None).unwrap_err();
    assert!(matches!(e, AnalysisError::Json { .. }), "{e:?}");
}

#[test]
fn failure_reasons_reach_the_summary_and_metrics_json() {
    let tmp = tempfile::tempdir().unwrap();
    let d = tmp.path();
    sweep(d);
    std::fs::write(
        d.join("runs/blur=1p0_seed=1/trace_pack.jsonl"),
        "{\"step\": 1}\n",
    )
    .unwrap();
    let s = analyze_dir(d, &AnalyzeOptions::default()).unwrap();
    assert_eq!(s.failed_runs.len(), 1);
    assert_eq!(s.failed_runs[0].run, "blur=1p0_seed=1");
    assert!(
        s.failed_runs[0]
            .error
            .contains("no record has `output` or `answer`"),
        "{:?}",
        s.failed_runs
    );
    let m: Value =
        serde_json::from_str(&std::fs::read_to_string(d.join("metrics.json")).unwrap()).unwrap();
    let f = &m["source"]["failed_runs"];
    assert_eq!(f[0]["run"], "blur=1p0_seed=1", "{m}");
    assert!(f[0]["error"].as_str().unwrap().contains("no record has"));
}
