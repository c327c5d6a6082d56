//! Batched ONNX inference (`[adapter] kind = "onnx"`, `batch = B`): the builtin model's logits
//! export (tract, one thread per call) on 64×64 phantoms.
//!
//! - `onnx_batch/predict_B`: 64 images through `OnnxAdapter::predict_batch`, B per call, one
//!   thread: what a call of B images costs per image.
//! - `onnx_batch/sweep_B`: a whole sweep (16 cases × 12 cells = 192 runs, jobs = 2, no cache):
//!   runs gathered by the adapter's batcher, perturbation, journal and artifacts included.
//!
//! `cargo bench -p clarity-engine --bench onnx_batch`; numbers in docs/performance.md.

use std::path::Path;

use clarity_adapters::onnx::{OnnxAdapter, OnnxConfig, OutputKind, ResizeFilter};
use clarity_engine::{ExecOptions, parse_config, prepare, run_sweep};
use clarity_image::{BitDepth, Image};
use clarity_model::BuiltinModel;
use clarity_onnx_export::{ExportOptions, export_builtin};
use criterion::{BatchSize, Criterion, Throughput, criterion_group, criterion_main};

const LABELS: [&str; 5] = [
    "normal",
    "nodule_right",
    "nodule_left",
    "opacity_right",
    "opacity_left",
];

fn adapter(model: &Path, batch: usize) -> OnnxAdapter {
    let mut c = OnnxConfig::new(model);
    c.labels = LABELS.iter().map(|s| s.to_string()).collect();
    c.resize = ResizeFilter::Area;
    c.output = Some(OutputKind::Logits);
    c.batch = batch;
    OnnxAdapter::new(&c, Path::new(".")).unwrap()
}

fn sweep_config(batch: usize) -> String {
    format!(
        r#"
seeds = [0]
[cohort]
kind = "builtin"
n = 16
size = 64
[adapter]
kind = "onnx"
model = "logits.onnx"
labels = {labels:?}
resize = "area"
output = "logits"
batch = {batch}
[axes]
"gaussian_noise.sigma" = [0.05, 0.1, 0.2]
"gaussian_blur.sigma" = [1, 4]
"#,
        labels = LABELS
    )
}

fn bench(c: &mut Criterion) {
    let dir = tempfile::tempdir().unwrap();
    let model_path = dir.path().join("logits.onnx");
    let model = BuiltinModel::load_embedded().unwrap();
    std::fs::write(
        &model_path,
        export_builtin(&model, &ExportOptions { softmax: false }),
    )
    .unwrap();
    let images: Vec<Image> = clarity_phantom::cohort(64, 64, BitDepth::Eight, 5)
        .unwrap()
        .into_iter()
        .map(|c| c.image)
        .collect();
    let refs: Vec<&Image> = images.iter().collect();

    let mut g = c.benchmark_group("onnx_batch");
    g.throughput(Throughput::Elements(images.len() as u64));
    g.sample_size(10);
    for b in [1usize, 4, 8, 16, 32] {
        let a = adapter(&model_path, b);
        g.bench_function(format!("predict_{b}"), |bench| {
            bench.iter(|| a.predict_batch(&refs))
        });
    }
    g.finish();

    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    let mut g = c.benchmark_group("onnx_batch");
    g.throughput(Throughput::Elements(16 * 12));
    g.sample_size(10);
    for b in [1usize, 8] {
        let path = dir.path().join(format!("sweep-{b}.toml"));
        std::fs::write(&path, sweep_config(b)).unwrap();
        let config = parse_config(&sweep_config(b), &path).unwrap();
        let prepared = prepare(config).unwrap();
        g.bench_function(format!("sweep_{b}"), |bench| {
            bench.iter_batched(
                || tempfile::tempdir().unwrap(),
                |tmp| {
                    let opts = ExecOptions {
                        jobs: 2,
                        ..Default::default()
                    };
                    let out = rt
                        .block_on(run_sweep(&prepared, &tmp.path().join("out"), &opts))
                        .unwrap();
                    assert_eq!(out.stats.executed, 16 * 12);
                    tmp
                },
                BatchSize::PerIteration,
            )
        });
    }
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
