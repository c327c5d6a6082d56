//! A sweep through the `onnx` adapter with `batch = 4`: runs are gathered into batches by
//! timing, yet the artifacts are byte-identical across `--jobs` and after a resume, and the
//! answers are the unbatched adapter's.

use std::path::Path;

use clarity_engine::{ExecOptions, parse_config, prepare, run_sweep};
use clarity_model::BuiltinModel;
use clarity_onnx_export::{ExportOptions, export_builtin};

fn config(batch: usize) -> String {
    format!(
        r#"
seeds = [0]
output = "out"

[cohort]
kind = "builtin"
n = 6
size = 64

[adapter]
kind = "onnx"
model = "logits.onnx"
labels = ["normal", "nodule_right", "nodule_left", "opacity_right", "opacity_left"]
resize = "area"
output = "logits"
batch = {batch}

[axes]
"gaussian_noise.sigma" = [0.05, 0.1, 0.2]
"gaussian_blur.sigma" = [1, 4]
"#
    )
}

fn run(dir: &Path, batch: usize, jobs: usize, out: &str) -> std::path::PathBuf {
    let path = dir.join(format!("sweep-{batch}.toml"));
    std::fs::write(&path, config(batch)).unwrap();
    let cfg = parse_config(&std::fs::read_to_string(&path).unwrap(), &path).unwrap();
    let prepared = prepare(cfg).unwrap();
    let out = dir.join(out);
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let opts = ExecOptions {
        jobs,
        ..Default::default()
    };
    rt.block_on(run_sweep(&prepared, &out, &opts)).unwrap();
    out
}

fn answers(dir: &Path) -> Vec<(String, String)> {
    let mut v = Vec::new();
    clarity_store::read(&dir.join("observations.parquet"), |r| {
        let o = r.observation().expect("every run succeeds");
        v.push((r.case_id.clone(), o.answer.clone().unwrap()));
        Ok(())
    })
    .unwrap();
    v
}

#[test]
fn batched_sweeps_are_byte_identical_across_jobs_and_agree_with_unbatched() {
    let tmp = tempfile::tempdir().unwrap();
    let model = BuiltinModel::load_embedded().unwrap();
    std::fs::write(
        tmp.path().join("logits.onnx"),
        export_builtin(&model, &ExportOptions { softmax: false }),
    )
    .unwrap();
    let one = run(tmp.path(), 4, 1, "jobs1");
    let two = run(tmp.path(), 4, 2, "jobs2");
    for f in ["plan.json", "observations.parquet", "bundle.json"] {
        let (a, b) = (
            std::fs::read(one.join(f)).unwrap(),
            std::fs::read(two.join(f)).unwrap(),
        );
        assert!(a == b, "{f} differs between --jobs 1 and 2");
    }
    // Unbatched: other content keys (batch is in the identity), the same answers.
    let plain = run(tmp.path(), 1, 2, "plain");
    let (a, b) = (answers(&one), answers(&plain));
    assert_eq!(a.len(), 6 * 12); // (3 noise + none) × (2 blur + none) cells
    assert_eq!(a, b);
}
