//! Sharded sweeps: shards + merge equal the unsharded sweep byte for byte; clear errors for
//! shards that do not fit together; sealed sweeps reopen.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use clarity_engine::testing::MeanAdapter;
use clarity_engine::{
    EngineError, ExecOptions, Prepared, Shard, merge::merge_shards, parse_config,
    prepare_with_adapter, run_sweep,
};

/// 3 cases × 6 cells × 3 seeds = 54 runs.
const CFG: &str = r#"
seeds = [0, 1, 2]

[cohort]
kind = "builtin"
n = 3
size = 64

[adapter]
kind = "builtin"

[axes]
"brightness.factor" = [1.5, 0.5]
"contrast.factor" = [0.5]
"#;

fn prepared() -> Prepared {
    let c = parse_config(CFG, Path::new("/cfg/sweep.toml")).unwrap();
    prepare_with_adapter(c, Arc::new(MeanAdapter::new(0.45))).unwrap()
}

fn opts(shard: Option<Shard>, abort_after: Option<usize>) -> ExecOptions {
    ExecOptions {
        jobs: 2,
        shard,
        abort_after,
        ..Default::default()
    }
}

fn rt() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap()
}

const SWEEP_FILES: [&str; 3] = ["plan.json", "observations.parquet", "bundle.json"];

fn run_shards(p: &Prepared, root: &Path, n: u32, interrupt: Option<u32>) -> Vec<PathBuf> {
    let rt = rt();
    let mut dirs = Vec::new();
    for i in 0..n {
        let dir = root.join(format!("shard-{i}-of-{n}"));
        let s = Some(Shard::new(i, n).unwrap());
        if interrupt == Some(i) {
            let e = rt
                .block_on(run_sweep(p, &dir, &opts(s, Some(2))))
                .unwrap_err();
            assert!(matches!(e, EngineError::Interrupted { .. }), "{e}");
            assert!(dir.join("journal.jsonl").exists());
            assert!(!dir.join("observations.parquet").exists());
        }
        rt.block_on(run_sweep(p, &dir, &opts(s, None))).unwrap();
        assert!(!dir.join("journal.jsonl").exists());
        dirs.push(dir);
    }
    dirs
}

#[test]
fn shards_merged_equal_the_unsharded_sweep_byte_for_byte() {
    let tmp = tempfile::tempdir().unwrap();
    let p = prepared();
    let whole = tmp.path().join("whole");
    let out = rt()
        .block_on(run_sweep(&p, &whole, &opts(None, None)))
        .unwrap();
    assert_eq!(out.stats.runs, 54);
    // One copy of the records: the table; the journal is gone once sealed.
    assert!(!whole.join("journal.jsonl").exists());
    assert!(!whole.join("observations.jsonl").exists());
    for (n, interrupt) in [(1u32, None), (2, Some(1)), (3, Some(0)), (7, Some(4))] {
        let root = tmp.path().join(format!("n{n}"));
        let dirs = run_shards(&p, &root, n, interrupt);
        let total: u64 = dirs
            .iter()
            .map(|d| clarity_store::row_count(&d.join("observations.parquet")).unwrap())
            .sum();
        assert_eq!(total, 54, "N = {n}: every run in exactly one shard");
        // Any order of the shard directories.
        let mut rev = dirs.clone();
        rev.reverse();
        let merged = root.join("merged");
        let m = merge_shards(&merged, &rev).unwrap();
        assert_eq!((m.runs, m.shards), (54, n));
        for f in SWEEP_FILES {
            assert!(
                std::fs::read(whole.join(f)).unwrap() == std::fs::read(merged.join(f)).unwrap(),
                "N = {n}: {f} differs from the unsharded sweep"
            );
        }
        drop(m);
        // Merging again into the same directory is allowed and gives the same bytes.
        merge_shards(&merged, &dirs).unwrap();
        assert_eq!(
            std::fs::read(whole.join("observations.parquet")).unwrap(),
            std::fs::read(merged.join("observations.parquet")).unwrap()
        );
    }
}

#[test]
fn merge_errors_name_the_problem() {
    let tmp = tempfile::tempdir().unwrap();
    let p = prepared();
    let dirs = run_shards(&p, tmp.path(), 3, None);
    let out = tmp.path().join("out");
    let e = |d: &[PathBuf]| merge_shards(&out, d).unwrap_err().to_string();

    let missing = e(&dirs[..2]);
    assert!(missing.contains("missing shards: 2/3"), "{missing}");
    let overlap = e(&[dirs[0].clone(), dirs[1].clone(), dirs[1].clone()]);
    assert!(overlap.contains("overlapping shards"), "{overlap}");
    assert!(e(&[]).contains("no shard directories"));

    // A shard of another plan.
    let other_cfg = CFG.replace("seeds = [0, 1, 2]", "seeds = [5, 6, 7]");
    let c = parse_config(&other_cfg, Path::new("/cfg/sweep.toml")).unwrap();
    let q = prepare_with_adapter(c, Arc::new(MeanAdapter::new(0.45))).unwrap();
    let foreign = tmp.path().join("foreign");
    rt().block_on(run_sweep(
        &q,
        &foreign,
        &opts(Some(Shard::new(2, 3).unwrap()), None),
    ))
    .unwrap();
    let mixed = e(&[dirs[0].clone(), dirs[1].clone(), foreign.clone()]);
    assert!(mixed.contains("another plan"), "{mixed}");
    // Different shard counts.
    let four = tmp.path().join("four");
    rt().block_on(run_sweep(
        &p,
        &four,
        &opts(Some(Shard::new(3, 4).unwrap()), None),
    ))
    .unwrap();
    let counts = e(&[dirs[0].clone(), four]);
    assert!(counts.contains("same count"), "{counts}");
    // An unfinished shard.
    let part = tmp.path().join("part");
    let s = Some(Shard::new(2, 3).unwrap());
    let _ = rt().block_on(run_sweep(&p, &part, &opts(s, Some(1))));
    let unfinished = e(&[dirs[0].clone(), dirs[1].clone(), part]);
    assert!(unfinished.contains("not finished"), "{unfinished}");
    // Not a shard.
    let whole = tmp.path().join("whole");
    rt().block_on(run_sweep(&p, &whole, &opts(None, None)))
        .unwrap();
    let not_shard = e(std::slice::from_ref(&whole));
    assert!(not_shard.contains("not a shard directory"), "{not_shard}");
    assert!(!out.exists(), "nothing written on error");

    // A shard directory refuses another shard or an unsharded run, and vice versa.
    let r = rt().block_on(run_sweep(
        &p,
        &dirs[0],
        &opts(Some(Shard::new(1, 3).unwrap()), None),
    ));
    assert!(r.unwrap_err().to_string().contains("not shard 1/3"));
    let r = rt().block_on(run_sweep(&p, &dirs[0], &opts(None, None)));
    assert!(r.unwrap_err().to_string().contains("holds shard 0/3"));
    let r = rt().block_on(run_sweep(
        &p,
        &whole,
        &opts(Some(Shard::new(0, 3).unwrap()), None),
    ));
    assert!(r.unwrap_err().to_string().contains("unsharded run"));
}

#[test]
fn a_sealed_sweep_reopens_and_reseals_to_the_same_bytes() {
    let tmp = tempfile::tempdir().unwrap();
    let p = prepared();
    let dir = tmp.path().join("d");
    rt().block_on(run_sweep(&p, &dir, &opts(None, None)))
        .unwrap();
    let before = std::fs::read(dir.join("observations.parquet")).unwrap();
    let again = rt()
        .block_on(run_sweep(&p, &dir, &opts(None, None)))
        .unwrap();
    assert_eq!(again.stats.executed, 0);
    assert_eq!(again.stats.from_journal, again.stats.keys);
    assert_eq!(
        std::fs::read(dir.join("observations.parquet")).unwrap(),
        before
    );
    assert!(!dir.join("journal.jsonl").exists());
}
