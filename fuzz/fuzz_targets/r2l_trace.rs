//! R2L trace parsing: the fuzz input is the `trace_pack.jsonl` of the one run of a fixed,
//! valid R2L sweep directory, imported through `load_r2l_dir` (the real entry point). The run
//! either parses or is recorded as failed with a reason; the import itself must not fail.
#![no_main]

use std::path::PathBuf;
use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;

static DIR: OnceLock<(tempfile::TempDir, PathBuf)> = OnceLock::new();

const MANIFEST: &str = r#"{"manifest_schema_family": "clarity_sweep_orchestrator_v1",
 "axes": {"brightness": [1.0]},
 "runs": [{"axis_values": {"brightness": 1.0}, "seed": 0, "manifest_hash": ""}]}"#;

fuzz_target!(|data: &[u8]| {
    let (dir, run) = DIR.get_or_init(|| {
        let dir = tempfile::tempdir().expect("temp dir");
        std::fs::write(dir.path().join("sweep_manifest.json"), MANIFEST).expect("manifest");
        let run = dir.path().join("runs").join("brightness=1p0_seed=0");
        std::fs::create_dir_all(&run).expect("run dir");
        std::fs::write(run.join("manifest.json"), "{}").expect("run manifest");
        std::fs::write(run.join("spec.json"), r#"{"image_path": "a.png"}"#).expect("spec");
        (dir, run)
    });
    std::fs::write(run.join("trace_pack.jsonl"), data).expect("trace");
    let data = clarity_analysis::load_r2l_dir(dir.path(), None).expect("the sweep itself is valid");
    assert_eq!(data.records.len(), 1);
    let failed = data.source.failed_runs.len();
    assert_eq!(
        failed,
        usize::from(data.records[0].observation().is_none()),
        "a failed run must carry its reason"
    );
});
