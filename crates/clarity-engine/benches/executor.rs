//! Engine overhead per run: an instant in-process adapter, no perturbation (baseline cell
//! only), 1000 runs per sweep (4 cases x 250 seeds), journal and artifacts included, no cache.
//! `runs/s` at 1 and 2 jobs; the target is < 1 ms of engine overhead per run.
//!
//! `handoff/*`: what Clarity spends per run on the image it hands to an external program
//! (`kind = "command"`: perturb, encode a PNG, write it into the run's directory), with an
//! adapter that only checks the file exists, 512×512 8-bit phantoms, one job (sequential):
//! - `handoff/per_run_512`: 40 cases × {no noise, noise 0.05} × {no blur, blur 2}, one seed:
//!   every run perturbs and encodes its own image (160 runs);
//! - `handoff/shared_seeds_512`: 4 cases × {no blur, blur 2} × 15 seeds: blur draws no random
//!   numbers, so the 15 seeds of a (case, cell) share one image (120 runs);
//! - `handoff/no_file_512`: the first grid with an adapter that takes the image in memory.
//!
//! The bar (issue 17): ≤ 2 ms per run for a 512² image, the program excluded.

use std::path::Path;
use std::sync::Arc;

use clarity_adapters::Adapter;
use clarity_engine::testing::MeanAdapter;
use clarity_engine::{ExecOptions, parse_config, prepare_with_adapter, run_sweep};
use criterion::{Criterion, Throughput, criterion_group, criterion_main};

const CONFIG: &str = r#"
seeds = 250
[cohort]
kind = "builtin"
n = 4
size = 64
[adapter]
kind = "builtin"
"#;

fn bench(c: &mut Criterion) {
    let config = parse_config(CONFIG, Path::new("bench.toml")).unwrap();
    let mut adapter = MeanAdapter::new(0.5);
    adapter.instant = true;
    let prepared = prepare_with_adapter(config, Arc::new(adapter) as Arc<dyn Adapter>).unwrap();
    let runs = prepared.plan.n_runs() as u64;
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    let mut g = c.benchmark_group("executor");
    g.throughput(Throughput::Elements(runs));
    g.sample_size(10);
    for jobs in [1usize, 2] {
        g.bench_function(format!("sweep_1000_runs_jobs{jobs}"), |b| {
            b.iter_batched(
                || tempfile::tempdir().unwrap(),
                |tmp| {
                    let opts = ExecOptions {
                        jobs,
                        ..Default::default()
                    };
                    let out = rt
                        .block_on(run_sweep(&prepared, &tmp.path().join("out"), &opts))
                        .unwrap();
                    assert_eq!(out.stats.executed as u64, runs);
                    tmp
                },
                criterion::BatchSize::PerIteration,
            )
        });
    }
    g.finish();
}

fn handoff(c: &mut Criterion) {
    let per_run = r#"
seeds = 1
[cohort]
kind = "builtin"
n = 40
size = 512
[adapter]
kind = "builtin"
[axes]
"gaussian_noise.sigma" = [0.05]
"gaussian_blur.sigma" = [2]
"#;
    let shared = r#"
seeds = 15
[cohort]
kind = "builtin"
n = 4
size = 512
[adapter]
kind = "builtin"
[axes]
"gaussian_blur.sigma" = [2]
"#;
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    let mut g = c.benchmark_group("handoff");
    g.sample_size(10);
    for (name, text, file) in [
        ("per_run_512", per_run, true),
        ("shared_seeds_512", shared, true),
        ("no_file_512", per_run, false),
    ] {
        let config = parse_config(text, Path::new("bench.toml")).unwrap();
        let mut adapter = MeanAdapter::new(0.5);
        adapter.instant = true;
        adapter.needs_file = file;
        adapter.workload_io = Some(1);
        let prepared = prepare_with_adapter(config, Arc::new(adapter) as Arc<dyn Adapter>).unwrap();
        let runs = prepared.plan.n_runs() as u64;
        g.throughput(Throughput::Elements(runs));
        g.bench_function(name, |b| {
            b.iter_batched(
                || tempfile::tempdir().unwrap(),
                |tmp| {
                    let opts = ExecOptions {
                        jobs: 1,
                        ..Default::default()
                    };
                    let out = rt
                        .block_on(run_sweep(&prepared, &tmp.path().join("out"), &opts))
                        .unwrap();
                    assert_eq!(out.stats.executed as u64, runs);
                    tmp
                },
                criterion::BatchSize::PerIteration,
            )
        });
    }
    g.finish();
}

criterion_group!(benches, bench, handoff);
criterion_main!(benches);
