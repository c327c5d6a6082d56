//! Issue 14: the output-directory lock, cache entries verified against their key, `cache gc`
//! past unexpected entries.

use std::path::Path;
use std::sync::Arc;

use clarity_engine::lock::{LOCK_FILE, OutputLock};
use clarity_engine::testing::MeanAdapter;
use clarity_engine::{Cache, EngineError, ExecOptions, Prepared, parse_config, run_sweep};

const BASE: &str = r#"
seeds = [0]

[cohort]
kind = "builtin"
n = 2
size = 64

[adapter]
kind = "builtin"

[axes]
"brightness.factor" = [0.5]
"#;

fn prepared(adapter: Arc<MeanAdapter>) -> Prepared {
    let cfg = parse_config(BASE, Path::new("/cfg/sweep.toml")).unwrap();
    clarity_engine::prepare_with_adapter(cfg, adapter as Arc<dyn clarity_adapters::Adapter>)
        .unwrap()
}

fn rt() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap()
}

fn opts(cache: &Path) -> ExecOptions {
    ExecOptions {
        jobs: 1,
        cache: Some(Cache::open(cache).unwrap()),
        ..Default::default()
    }
}

fn entries(cache: &Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    for shard in std::fs::read_dir(cache.join("v1")).unwrap() {
        for e in std::fs::read_dir(shard.unwrap().path()).unwrap() {
            out.push(e.unwrap().path());
        }
    }
    out.sort();
    out
}

#[test]
fn a_poisoned_cache_entry_is_refused_and_redone() {
    let tmp = tempfile::tempdir().unwrap();
    let cache = tmp.path().join("cache");
    let rt = rt();
    let a1 = Arc::new(MeanAdapter::new(0.45));
    rt.block_on(run_sweep(
        &prepared(a1.clone()),
        &tmp.path().join("one"),
        &opts(&cache),
    ))
    .unwrap();
    let runs = a1.calls();
    assert_eq!(runs, 4);
    // Poison one entry: same key, another answer (the file stays valid JSON with the right key).
    let files = entries(&cache);
    assert_eq!(files.len(), runs);
    let victim = &files[0];
    let text = std::fs::read_to_string(victim).unwrap();
    let poisoned = if text.contains("\"bright\"") {
        text.replace("\"bright\"", "\"dark\"")
    } else {
        text.replace("\"dark\"", "\"bright\"")
    };
    assert_ne!(poisoned, text);
    std::fs::write(victim, &poisoned).unwrap();

    let a2 = Arc::new(MeanAdapter::new(0.45));
    let out = rt
        .block_on(run_sweep(
            &prepared(a2.clone()),
            &tmp.path().join("two"),
            &opts(&cache),
        ))
        .unwrap();
    // Refused and redone: one call, the others from the cache, the same bytes as the first run.
    assert_eq!(a2.calls(), 1);
    assert_eq!(out.stats.cached, runs - 1);
    for f in ["observations.parquet", "bundle.json"] {
        assert!(
            std::fs::read(tmp.path().join("one").join(f)).unwrap()
                == std::fs::read(tmp.path().join("two").join(f)).unwrap(),
            "{f} differs"
        );
    }
    // The entry was rewritten with the true answer.
    assert_eq!(std::fs::read_to_string(victim).unwrap(), text);
}

#[test]
fn cache_gc_goes_past_unexpected_directories_and_reports_them() {
    let tmp = tempfile::tempdir().unwrap();
    let cache = tmp.path().join("cache");
    rt().block_on(run_sweep(
        &prepared(Arc::new(MeanAdapter::new(0.45))),
        &tmp.path().join("one"),
        &opts(&cache),
    ))
    .unwrap();
    let files = entries(&cache);
    // An unexpected directory inside the first shard, one beside the shards, and a damaged
    // entry in the last shard (after the unexpected directory in walk order).
    let first_shard = files[0].parent().unwrap().to_path_buf();
    std::fs::create_dir(first_shard.join("00-not-an-entry")).unwrap();
    std::fs::create_dir(cache.join("v1/lost+found")).unwrap();
    let last = files.last().unwrap();
    std::fs::write(last, b"{ torn").unwrap();
    let r = Cache::open(&cache).unwrap().gc(None).unwrap();
    assert_eq!(r.removed_corrupt, 1);
    assert_eq!(r.entries_kept as usize, files.len() - 1);
    assert_eq!(
        r.unexpected,
        vec![
            first_shard.join("00-not-an-entry"),
            cache.join("v1/lost+found")
        ]
        .into_iter()
        .collect::<std::collections::BTreeSet<_>>()
        .into_iter()
        .collect::<Vec<_>>()
    );
    assert!(cache.join("v1/lost+found").is_dir());
}

#[test]
fn the_output_dir_lock_is_exclusive_and_names_the_holder() {
    let tmp = tempfile::tempdir().unwrap();
    let held = OutputLock::acquire(tmp.path()).unwrap();
    let pid = std::process::id();
    let text = std::fs::read_to_string(tmp.path().join(LOCK_FILE)).unwrap();
    assert_eq!(text.trim(), pid.to_string());
    match OutputLock::acquire(tmp.path()) {
        Err(e @ EngineError::Locked { .. }) => {
            let msg = e.to_string();
            assert!(msg.contains(&format!("PID {pid}")), "{msg}");
        }
        other => panic!("expected Locked, got {other:?}"),
    }
    drop(held);
    let _again = OutputLock::acquire(tmp.path()).unwrap();
}

#[test]
fn a_stale_lock_file_of_a_dead_process_is_taken_over() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("out");
    std::fs::create_dir(&dir).unwrap();
    // Left by a killed process: the file stays, its lock died with the process.
    std::fs::write(dir.join(LOCK_FILE), "4194303\n").unwrap();
    let out = rt()
        .block_on(run_sweep(
            &prepared(Arc::new(MeanAdapter::new(0.45))),
            &dir,
            &ExecOptions::default(),
        ))
        .unwrap();
    let text = std::fs::read_to_string(dir.join(LOCK_FILE)).unwrap();
    assert_eq!(text, format!("{}\n", std::process::id()));
    // The lock file is not an artifact.
    assert!(out.bundle.iter().all(|b| b.name != LOCK_FILE));
    drop(out);
}

#[test]
fn a_tampered_journal_line_is_refused_and_redone_on_resume() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("sweep");
    let no_cache = ExecOptions {
        jobs: 1,
        ..Default::default()
    };
    let rt = rt();
    // The honest run's table.
    let honest = tmp.path().join("honest");
    let a0 = Arc::new(MeanAdapter::new(0.45));
    rt.block_on(run_sweep(&prepared(a0.clone()), &honest, &no_cache))
        .unwrap();
    assert_eq!(a0.calls(), 4);
    let observations = std::fs::read(honest.join("observations.parquet")).unwrap();
    // A sealed sweep reopened (its journal rebuilt from the table): every record verifies,
    // nothing is redone.
    let a2 = Arc::new(MeanAdapter::new(0.45));
    rt.block_on(run_sweep(&prepared(a2.clone()), &honest, &no_cache))
        .unwrap();
    assert_eq!(a2.calls(), 0);
    // An interrupted sweep keeps its journal (some of the 4 runs).
    let interrupted = ExecOptions {
        abort_after: Some(1),
        ..no_cache.clone()
    };
    let a1 = Arc::new(MeanAdapter::new(0.45));
    let r = rt.block_on(run_sweep(&prepared(a1.clone()), &dir, &interrupted));
    assert!(matches!(r, Err(EngineError::Interrupted { .. })));
    // Edit one journal line: same key, another answer, still a valid record.
    let journal = dir.join("journal.jsonl");
    let text = std::fs::read_to_string(&journal).unwrap();
    let recorded = text.lines().count();
    // Several runs are in flight at once: the ones that finished in the same poll as the
    // abort are recorded too, so all 4 may be (the journal is kept either way: the sweep was
    // interrupted, not sealed).
    assert!((1..=4).contains(&recorded), "{recorded} lines");
    let first = text.lines().next().unwrap();
    let edited = if first.contains("\"bright\"") {
        first.replace("\"bright\"", "\"dark\"")
    } else {
        first.replace("\"dark\"", "\"bright\"")
    };
    assert_ne!(edited, first);
    std::fs::write(&journal, text.replacen(first, &edited, 1)).unwrap();
    let a3 = Arc::new(MeanAdapter::new(0.45));
    rt.block_on(run_sweep(&prepared(a3.clone()), &dir, &no_cache))
        .unwrap();
    // Refused and redone (plus the runs the interruption left), and the artifacts are those
    // of the honest run.
    assert_eq!(a3.calls(), 1 + 4 - recorded);
    assert_eq!(
        std::fs::read(dir.join("observations.parquet")).unwrap(),
        observations
    );
}
