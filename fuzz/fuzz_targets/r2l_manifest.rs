//! R2L sweep-manifest parsing: the fuzz input is `sweep_manifest.json`; each of the first few
//! runs it lists gets a run directory (named as the import names it) holding a small valid
//! run, so the import reaches the runs. It must return data or an error, never panic, never
//! read outside the sweep directory and never allocate past its cell limit.
#![no_main]

use std::collections::BTreeMap;
use std::sync::OnceLock;

use clarity_analysis::r2l_run_dir_name;
use libfuzzer_sys::fuzz_target;
use serde_json::Value;

static DIR: OnceLock<tempfile::TempDir> = OnceLock::new();

const TRACE: &str = "{\"step\": 1, \"output\": \"yes\", \"confidence_score\": 0.9}\n";

fuzz_target!(|data: &[u8]| {
    let dir = DIR.get_or_init(|| tempfile::tempdir().expect("temp dir"));
    let root = dir.path();
    let _ = std::fs::remove_dir_all(root.join("runs"));
    std::fs::write(root.join("sweep_manifest.json"), data).expect("manifest");
    if let Ok(m) = serde_json::from_slice::<Value>(data)
        && let Some(runs) = m.get("runs").and_then(Value::as_array)
    {
        for run in runs.iter().take(8) {
            let (Some(av), Some(seed)) = (
                run.get("axis_values").and_then(Value::as_object),
                run.get("seed").and_then(Value::as_u64),
            ) else {
                continue;
            };
            let av: BTreeMap<String, Value> =
                av.iter().map(|(k, v)| (k.clone(), v.clone())).collect();
            let name = r2l_run_dir_name(&av, seed);
            // The harness itself must stay inside its directory.
            if name.contains(['/', '\\', '\0']) || name.contains("..") || name.len() > 200 {
                continue;
            }
            let rdir = root.join("runs").join(&name);
            if std::fs::create_dir_all(&rdir).is_err() {
                continue;
            }
            let _ = std::fs::write(rdir.join("manifest.json"), "{}");
            let _ = std::fs::write(rdir.join("spec.json"), r#"{"image_path": "a.png"}"#);
            let _ = std::fs::write(rdir.join("trace_pack.jsonl"), TRACE);
        }
    }
    match clarity_analysis::load_r2l_dir(root, None) {
        Ok(d) => {
            for r in &d.records {
                assert!(
                    r.cell < d.cells.len(),
                    "record cell {} out of range",
                    r.cell
                );
            }
        }
        Err(e) => {
            let _ = e.to_string();
        }
    }
});
