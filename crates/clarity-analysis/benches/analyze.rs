//! Analysis of a synthetic 100k-run sweep (25 cells × 1000 cases × 4 seeds, 300-character
//! justifications), streamed from `observations.jsonl`, 1000 bootstrap resamples.

use clarity_analysis::{AnalyzeOptions, analyze_dir};
use criterion::{Criterion, criterion_group, criterion_main};

mod synth;

fn bench(c: &mut Criterion) {
    let tmp = tempfile::tempdir().expect("tempdir");
    let runs = synth::write(tmp.path(), 1000, 4);
    assert_eq!(runs, 100_000);
    let mut g = c.benchmark_group("analyze_dir");
    g.sample_size(10);
    g.bench_function("100k_runs", |b| {
        b.iter(|| analyze_dir(tmp.path(), &AnalyzeOptions::default()).expect("analysis"))
    });
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
