//! Engine overhead per run: an instant in-process adapter, no perturbation (baseline cell
//! only), 1000 runs per sweep (4 cases x 250 seeds), journal and artifacts included, no cache.
//! `runs/s` at 1 and 2 jobs; the target is < 1 ms of engine overhead per run.

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

criterion_group!(benches, bench);
criterion_main!(benches);
