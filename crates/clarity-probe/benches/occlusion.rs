//! Occlusion sensitivity on a 512×512 phantom with the builtin model, through the engine
//! (no cache, fresh journal each iteration): throughput in windows per second.

use std::sync::Arc;

use clarity_engine::{ExecOptions, parse_config, prepare};
use criterion::{Criterion, Throughput, criterion_group, criterion_main};

fn bench(c: &mut Criterion) {
    let tmp = tempfile::tempdir().unwrap();
    // window 64, stride 32 → 15 × 15 = 225 windows.
    let text = r#"
cohort = { kind = "builtin", n = 2, size = 512, seed = 7 }
adapter = { kind = "builtin", saliency = false }
[probe]
saliency = "occlusion"
window = 64
stride = 32
fills = ["mean"]
top_k = 1
max_cases = 1
bootstrap_iterations = 0
"#;
    let config = parse_config(text, &tmp.path().join("bench.toml")).unwrap();
    let settings = config.probe.clone().unwrap();
    let prepared = Arc::new(prepare(config).unwrap());
    let rt = tokio::runtime::Runtime::new().unwrap();
    let windows = clarity_probe::saliency::occlusion_windows(512, 512, 64, 32, None).len();
    let mut g = c.benchmark_group("occlusion_sensitivity");
    g.sample_size(10);
    // Windows only; the baseline, region and control runs add 1 + 2 × fills calls.
    g.throughput(Throughput::Elements(windows as u64));
    let jobs = clarity_engine::default_jobs();
    g.bench_function(format!("builtin_512px_{windows}_windows_jobs{jobs}"), |b| {
        b.iter(|| {
            let dir = tempfile::tempdir().unwrap();
            let opts = ExecOptions {
                jobs,
                ..Default::default()
            };
            rt.block_on(clarity_probe::run_probe(
                &prepared,
                &settings,
                dir.path(),
                &opts,
            ))
            .unwrap()
        })
    });
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
