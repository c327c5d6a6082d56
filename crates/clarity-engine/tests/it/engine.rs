//! Config errors, planning, and execution with the in-process test adapter.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::Ordering;

use clarity_adapters::Adapter;
use clarity_core::{AxisValue, Outcome, RunRecord};
use clarity_engine::testing::MeanAdapter;
use clarity_engine::{
    Cache, EngineError, ExecOptions, Prepared, SweepConfig, parse_config, prepare_with_adapter,
    run_sweep,
};

const BASE: &str = r#"
seeds = [0, 1]

[cohort]
kind = "builtin"
n = 2
size = 64

[adapter]
kind = "builtin"

[axes]
"brightness.factor" = [1.5, 0.5]
"contrast.factor" = [0.5]
"#;

fn cfg(text: &str) -> Result<SweepConfig, EngineError> {
    parse_config(text, Path::new("/cfg/sweep.toml"))
}

fn err(text: &str) -> String {
    cfg(text).unwrap_err().to_string()
}

#[test]
fn axes_sorted_numerically_identity_added_order_kept() {
    let c = cfg(&BASE.replace("[1.5, 0.5]", "[2, 3, 0.5, 2]")).unwrap();
    let names: Vec<_> = c.axes.iter().map(|a| a.name.as_str()).collect();
    // Document order, not alphabetical.
    assert_eq!(names, ["brightness.factor", "contrast.factor"]);
    let vals: Vec<f64> = c.axes[0]
        .values
        .iter()
        .filter_map(AxisValue::as_f64)
        .collect();
    assert_eq!(vals, [0.5, 1.0, 2.0, 3.0]);
    assert_eq!(c.axes[0].identity, AxisValue::Num(1.0));
    assert_eq!(c.order, ["brightness", "contrast"]);
    assert_eq!(c.seeds, [0, 1]);
    assert_eq!(c.base_dir, PathBuf::from("/cfg"));
}

#[test]
fn reversed_document_order_reverses_axes() {
    let text = BASE.replace(
        "\"brightness.factor\" = [1.5, 0.5]\n\"contrast.factor\" = [0.5]",
        "\"contrast.factor\" = [0.5]\n\"brightness.factor\" = [1.5, 0.5]",
    );
    let c = cfg(&text).unwrap();
    assert_eq!(c.order, ["contrast", "brightness"]);
}

#[test]
fn array_axes_and_seed_count_and_severity() {
    let text = r#"
seeds = 3
[cohort]
kind = "builtin"
[adapter]
kind = "builtin"
[[axes]]
name = "brightness"
values = "severity"
"#;
    let c = cfg(text).unwrap();
    assert_eq!(c.seeds, [0, 1, 2]);
    assert_eq!(c.axes[0].name, "brightness.severity");
    assert_eq!(c.axes[0].values.len(), 6);
}

#[test]
fn unknown_key_names_line_and_key() {
    let e = err(&BASE.replace("size = 64", "size = 64\ncolour = 1"));
    assert!(
        e.starts_with("/cfg/sweep.toml:8:1: key `cohort.colour`"),
        "{e}"
    );
    assert!(
        e.contains("expected one of `n`, `size`, `depth`, `seed`"),
        "{e}"
    );
    assert!(e.contains("unknown field `colour`"), "{e}");
}

#[test]
fn wrong_type_names_key() {
    // Inside a tagged table (`cohort`, `adapter`) the error points at the key, not the table.
    let e = err(&BASE.replace("n = 2", "n = \"two\""));
    assert!(e.starts_with("/cfg/sweep.toml:6:5: key `cohort.n`"), "{e}");
    assert!(
        e.contains("invalid type: string \"two\", expected usize"),
        "{e}"
    );
    let e = err(&BASE.replace("n = 2", "n = -1"));
    assert!(e.starts_with("/cfg/sweep.toml:6:5: key `cohort.n`"), "{e}");
    assert!(
        e.contains("invalid value: integer `-1`, expected usize"),
        "{e}"
    );
}

#[test]
fn an_empty_output_is_a_config_error() {
    let e = err(&format!("output = \"\"\n{BASE}"));
    assert!(e.contains("key `output`"), "{e}");
    assert!(
        e.contains("expected an output directory path, got an empty string"),
        "{e}"
    );
}

#[test]
fn out_of_range_value_names_the_value() {
    let e = err(&BASE.replace("[1.5, 0.5]", "[1.5, 1000]"));
    assert!(e.contains(r#"key `axes."brightness.factor"[1]`"#), "{e}");
    assert!(e.contains("expected a number in"), "{e}");
    assert!(e.starts_with("/cfg/sweep.toml:13:29:"), "{e}");
}

#[test]
fn unknown_perturbation_and_param() {
    let e = err(&BASE.replace("contrast.factor", "blurr.sigma"));
    assert!(e.contains("unknown perturbation \"blurr\""), "{e}");
    assert!(e.contains("brightness"), "{e}");
    let e = err(&BASE.replace("contrast.factor", "contrast.amount"));
    assert!(e.contains("contrast has no parameter \"amount\""), "{e}");
}

#[test]
fn duplicate_seed_and_zero_seeds() {
    assert!(err(&BASE.replace("[0, 1]", "[0, 0]")).contains("seed 0 is listed twice"));
    assert!(err(&BASE.replace("[0, 1]", "0")).contains("at least one seed"));
}

#[test]
fn json_config_accepted_and_errors_have_line() {
    let json = r#"{"cohort": {"kind": "builtin", "n": 1}, "adapter": {"kind": "builtin"},
  "axes": {"brightness.factor": [2]}}"#;
    let c = parse_config(json, Path::new("s.json")).unwrap();
    assert_eq!(c.axes[0].values.len(), 2);
    let e = parse_config(
        &json.replace("\"n\": 1", "\"n\": 1, \"x\": 2"),
        Path::new("s.json"),
    )
    .unwrap_err()
    .to_string();
    assert!(e.starts_with("s.json:1:"), "{e}");
    assert!(e.contains("unknown field `x`"), "{e}");
}

// ---------------------------------------------------------------------------------------------

fn prepared(text: &str, adapter: Arc<MeanAdapter>) -> Prepared {
    prepare_with_adapter(cfg(text).unwrap(), adapter as Arc<dyn Adapter>).unwrap()
}

#[test]
fn plan_grid_baseline_and_keys() {
    let p = prepared(BASE, Arc::new(MeanAdapter::new(0.5)));
    let plan = &p.plan;
    // brightness {0.5, 1, 1.5} x contrast {0.5, 1}.
    let cells: Vec<_> = plan.cells().collect();
    assert_eq!(cells.len(), 6);
    assert_eq!(cells.iter().filter(|c| c.is_baseline).count(), 1);
    let b = &cells[plan.baseline];
    assert_eq!(b.coords, [1, 1]);
    assert!(plan.recipe(plan.baseline).is_empty());
    // cell 0 = brightness 0.5, contrast 0.5: both steps, in declared order.
    let names: Vec<_> = plan.recipe(0).iter().map(|s| s.name.clone()).collect();
    assert_eq!(names, ["brightness", "contrast"]);
    let runs: Vec<_> = plan.runs().collect();
    assert_eq!(runs.len(), 2 * 6 * 2);
    assert_eq!(plan.n_runs(), runs.len());
    // Plan order: case, cell, seed; a run derived by index equals the iterated one.
    assert_eq!((runs[1].case, runs[1].cell, runs[1].seed), (0, 0, 1));
    assert_eq!((runs[2].case, runs[2].cell, runs[2].seed), (0, 1, 0));
    for (i, r) in runs.iter().enumerate() {
        assert_eq!(&plan.run(i), r);
    }
    let mut keys: Vec<_> = runs.iter().map(|r| r.key.clone()).collect();
    keys.sort();
    keys.dedup();
    assert_eq!(keys.len(), runs.len());
    // Keys are stable across planning and change with the adapter's settings.
    let again = prepared(BASE, Arc::new(MeanAdapter::new(0.5)));
    assert_eq!(again.plan.run(5).key, runs[5].key);
    assert_eq!(again.plan.plan_hash, plan.plan_hash);
    let other = prepared(BASE, Arc::new(MeanAdapter::new(0.6)));
    assert_ne!(other.plan.run(5).key, runs[5].key);
    assert_ne!(other.plan.plan_hash, plan.plan_hash);
}

fn opts(jobs: usize, cache: Option<&Path>) -> ExecOptions {
    ExecOptions {
        jobs,
        cache: cache.map(|c| Cache::open(c).unwrap()),
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

fn read(dir: &Path, f: &str) -> Vec<u8> {
    std::fs::read(dir.join(f)).unwrap()
}

/// The records of a sealed sweep's table, in plan order.
fn records(dir: &Path) -> Vec<RunRecord> {
    let mut v = Vec::new();
    clarity_store::read(&dir.join("observations.parquet"), |r| {
        v.push(r);
        Ok(())
    })
    .unwrap();
    v
}

fn artifacts_equal(a: &Path, b: &Path) {
    for f in ["plan.json", "observations.parquet", "bundle.json"] {
        assert!(read(a, f) == read(b, f), "{f} differs");
    }
}

#[test]
fn jobs_do_not_change_bytes_and_warm_cache_makes_no_calls() {
    let tmp = tempfile::tempdir().unwrap();
    let cache = tmp.path().join("cache");
    let rt = rt();
    let a1 = Arc::new(MeanAdapter::new(0.45));
    let p1 = prepared(BASE, a1.clone());
    let d1 = tmp.path().join("one");
    let s1 = rt.block_on(run_sweep(&p1, &d1, &opts(1, None))).unwrap();
    assert_eq!(a1.calls(), 24);
    assert_eq!(s1.stats.executed, 24);

    let a2 = Arc::new(MeanAdapter::new(0.45));
    let p2 = prepared(BASE, a2.clone());
    let d2 = tmp.path().join("two");
    rt.block_on(run_sweep(&p2, &d2, &opts(2, Some(&cache))))
        .unwrap();
    assert_eq!(a2.calls(), 24);
    artifacts_equal(&d1, &d2);

    // Warm: a new directory, the same cache: zero adapter calls, same bytes.
    let a3 = Arc::new(MeanAdapter::new(0.45));
    let p3 = prepared(BASE, a3.clone());
    let d3 = tmp.path().join("three");
    let s3 = rt
        .block_on(run_sweep(&p3, &d3, &opts(2, Some(&cache))))
        .unwrap();
    assert_eq!(a3.calls(), 0);
    assert_eq!(s3.stats.cached, 24);
    artifacts_equal(&d1, &d3);
    // The finished sweep's outcome holds the output-dir lock; release it before re-running.
    drop(s3);

    // Re-running in place: everything comes from the journal.
    let s4 = rt.block_on(run_sweep(&p3, &d3, &opts(2, None))).unwrap();
    assert_eq!(a3.calls(), 0);
    assert_eq!(s4.stats.from_journal, 24);
    artifacts_equal(&d1, &d3);

    // The answers really depend on the perturbation: darker cells answer "dark".
    let recs = records(&d1);
    let answers: std::collections::BTreeSet<_> = recs
        .iter()
        .filter_map(|r| r.observation()?.answer.clone())
        .collect();
    assert_eq!(answers.len(), 2, "{answers:?}");
}

#[test]
fn interrupted_then_resumed_is_identical_and_runs_each_key_once() {
    let tmp = tempfile::tempdir().unwrap();
    let rt = rt();
    let reference = tmp.path().join("ref");
    let a = Arc::new(MeanAdapter::new(0.45));
    rt.block_on(run_sweep(
        &prepared(BASE, a.clone()),
        &reference,
        &opts(2, None),
    ))
    .unwrap();

    let adapter = Arc::new(MeanAdapter::new(0.45));
    let p = prepared(BASE, adapter.clone());
    let dir = tmp.path().join("resumed");
    let mut o = opts(1, None);
    o.abort_after = Some(5);
    let e = rt.block_on(run_sweep(&p, &dir, &o)).unwrap_err();
    assert!(matches!(e, EngineError::Interrupted { .. }), "{e}");
    assert!(!dir.join("observations.parquet").exists());
    let journal = dir.join("journal.jsonl");
    let lines_before = std::fs::read_to_string(&journal).unwrap().lines().count();
    assert!(lines_before >= 5);
    // A torn last line, as after kill -9 in the middle of a write.
    {
        use std::io::Write;
        let mut f = std::fs::OpenOptions::new()
            .append(true)
            .open(&journal)
            .unwrap();
        f.write_all(b"{\"case_id\":\"phantom-0001\",\"ce").unwrap();
    }
    let calls_before = adapter.calls();
    let s = rt.block_on(run_sweep(&p, &dir, &opts(2, None))).unwrap();
    assert_eq!(s.stats.from_journal, lines_before);
    assert_eq!(adapter.calls() - calls_before, 24 - lines_before);
    assert_eq!(s.stats.executed, 24 - lines_before);
    artifacts_equal(&reference, &dir);
    // Sealed: the journal is gone, every key appears once in the table.
    assert!(!journal.exists());
    let mut keys: Vec<_> = records(&dir).into_iter().map(|r| r.key).collect();
    let n = keys.len();
    keys.sort();
    keys.dedup();
    assert_eq!(keys.len(), n);
    assert_eq!(n, 24);
}

#[test]
fn damaged_journal_line_in_the_middle_is_an_error() {
    let tmp = tempfile::tempdir().unwrap();
    let rt = rt();
    let p = prepared(BASE, Arc::new(MeanAdapter::new(0.45)));
    let dir = tmp.path().join("d");
    let mut o = opts(1, None);
    o.abort_after = Some(3);
    rt.block_on(run_sweep(&p, &dir, &o)).unwrap_err();
    let journal = dir.join("journal.jsonl");
    let text = std::fs::read_to_string(&journal).unwrap();
    std::fs::write(&journal, format!("garbage\n{text}")).unwrap();
    let e = rt
        .block_on(run_sweep(&p, &dir, &opts(1, None)))
        .unwrap_err();
    assert!(
        e.to_string()
            .contains("journal.jsonl: line 1: not a run record"),
        "{e}"
    );
}

#[test]
fn failing_runs_are_recorded_and_the_sweep_completes() {
    let tmp = tempfile::tempdir().unwrap();
    let rt = rt();
    let mut m = MeanAdapter::new(0.45);
    m.fail_cases.insert("phantom-0001".into());
    let adapter = Arc::new(m);
    let p = prepared(BASE, adapter.clone());
    let dir = tmp.path().join("d");
    let s = rt.block_on(run_sweep(&p, &dir, &opts(2, None))).unwrap();
    // phantom-0001 fails everywhere except the baseline (2 seeds): 10 failures.
    assert_eq!(s.stats.failed_total, 10);
    let failed: Vec<RunRecord> = records(&dir)
        .into_iter()
        .filter(|r| matches!(r.outcome, Outcome::Failed { .. }))
        .collect();
    assert_eq!(failed.len(), 10);
    assert!(failed.iter().all(|r| r.case_id == "phantom-0001"));
    match &failed[0].outcome {
        Outcome::Failed { error, attempts } => {
            assert_eq!(error, "simulated failure for case phantom-0001");
            assert_eq!(*attempts, 1, "permanent errors are not retried");
        }
        Outcome::Ok { .. } => unreachable!(),
    }

    // --fail-fast stops with an error after recording the failure.
    let mut m = MeanAdapter::new(0.45);
    m.fail_cases.insert("phantom-0000".into());
    let p = prepared(BASE, Arc::new(m));
    let mut o = opts(1, None);
    o.fail_fast = true;
    let e = rt
        .block_on(run_sweep(&p, &tmp.path().join("ff"), &o))
        .unwrap_err();
    assert!(matches!(e, EngineError::FailFast { .. }), "{e}");
}

#[test]
fn transient_failures_are_retried() {
    let tmp = tempfile::tempdir().unwrap();
    let rt = rt();
    let m = MeanAdapter::new(0.45);
    m.transient_failures.store(2, Ordering::SeqCst);
    let adapter = Arc::new(m);
    let p = prepared(BASE, adapter.clone());
    let mut o = opts(1, None);
    o.retry.backoff_ms = 1;
    let s = rt
        .block_on(run_sweep(&p, &tmp.path().join("d"), &o))
        .unwrap();
    assert_eq!(s.stats.failed_total, 0);
    assert_eq!(s.stats.adapter_calls, 26);
    assert_eq!(adapter.calls(), 26);
}

#[test]
fn image_files_are_written_when_asked_and_cleaned_up() {
    let tmp = tempfile::tempdir().unwrap();
    let rt = rt();
    let mut m = MeanAdapter::new(0.45);
    m.needs_file = true;
    m.workload_io = Some(3);
    let p = prepared(BASE, Arc::new(m));
    let dir = tmp.path().join("d");
    let s = rt.block_on(run_sweep(&p, &dir, &opts(2, None))).unwrap();
    assert_eq!(s.stats.failed_total, 0);
    assert!(!dir.join("work").exists());
}

#[test]
fn a_different_sweep_never_clobbers_an_output_dir() {
    let tmp = tempfile::tempdir().unwrap();
    let rt = rt();
    let dir = tmp.path().join("d");
    let p = prepared(BASE, Arc::new(MeanAdapter::new(0.45)));
    rt.block_on(run_sweep(&p, &dir, &opts(1, None))).unwrap();
    let before = read(&dir, "observations.parquet");
    let other = prepared(
        &BASE.replace("[1.5, 0.5]", "[2]"),
        Arc::new(MeanAdapter::new(0.45)),
    );
    let e = rt
        .block_on(run_sweep(&other, &dir, &opts(1, None)))
        .unwrap_err();
    assert!(e.to_string().contains("holds a different sweep"), "{e}");
    assert_eq!(read(&dir, "observations.parquet"), before);

    // A non-empty directory that is not a sweep is refused too.
    let foreign = tmp.path().join("foreign");
    std::fs::create_dir(&foreign).unwrap();
    std::fs::write(foreign.join("notes.txt"), "mine").unwrap();
    let e = rt
        .block_on(run_sweep(&p, &foreign, &opts(1, None)))
        .unwrap_err();
    assert!(e.to_string().contains("not empty"), "{e}");
    assert_eq!(std::fs::read_dir(&foreign).unwrap().count(), 1);
}

/// Found by scripts/soak.sh: a kill -9 after the output directory was made but before
/// `plan.json` was renamed into place leaves the lock file and the plan's hidden temporary;
/// the resume refused the directory as "not empty and holds no Clarity sweep". Clarity's own
/// leftovers (the lock, `.NAME.tmp-PID-N` temporaries of a dead writer) do not make a
/// directory foreign, and the temporaries are removed under the lock.
#[test]
fn a_sweep_killed_before_plan_json_resumes() {
    let tmp = tempfile::tempdir().unwrap();
    let rt = rt();
    let dir = tmp.path().join("d");
    std::fs::create_dir(&dir).unwrap();
    std::fs::write(dir.join(".clarity.lock"), "12345").unwrap();
    std::fs::write(dir.join(".plan.json.tmp-12345-0"), "{\"plan_ha").unwrap();
    let p = prepared(BASE, Arc::new(MeanAdapter::new(0.45)));
    rt.block_on(run_sweep(&p, &dir, &opts(1, None))).unwrap();
    assert!(!dir.join(".plan.json.tmp-12345-0").exists());
    assert!(dir.join("plan.json").exists());
    // A file that only looks like one (not hidden, or no `.tmp-PID-N`) is still foreign.
    let foreign = tmp.path().join("foreign");
    std::fs::create_dir(&foreign).unwrap();
    std::fs::write(foreign.join(".notes.tmp"), "mine").unwrap();
    let e = rt
        .block_on(run_sweep(&p, &foreign, &opts(1, None)))
        .unwrap_err();
    assert!(e.to_string().contains("not empty"), "{e}");
}

#[test]
fn plan_json_has_the_documented_shape() {
    let tmp = tempfile::tempdir().unwrap();
    let rt = rt();
    let p = prepared(BASE, Arc::new(MeanAdapter::new(0.45)));
    let dir = tmp.path().join("d");
    rt.block_on(run_sweep(&p, &dir, &opts(1, None))).unwrap();
    let v: serde_json::Value = serde_json::from_slice(&read(&dir, "plan.json")).unwrap();
    for k in [
        "schema_version",
        "tool_version",
        "config",
        "axes",
        "cells",
        "cases",
        "seeds",
        "normalization",
        "adapter",
        "analysis",
        "plan_hash",
    ] {
        assert!(v.get(k).is_some(), "plan.json lacks {k}");
    }
    assert_eq!(v["cells"].as_array().unwrap().len(), 6);
    assert_eq!(v["cases"][0]["label"], "normal");
    // The analysis crate reads it.
    let data = clarity_analysis::load_clarity_dir(&dir).unwrap();
    assert_eq!(data.records.len(), 24);
    let bundle: serde_json::Value = serde_json::from_slice(&read(&dir, "bundle.json")).unwrap();
    let names: Vec<_> = bundle["files"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["name"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(names, ["observations.parquet", "plan.json"]);
    assert_eq!(bundle["format"], 2);
}

#[test]
fn shipped_examples_are_valid() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples");
    let mut n = 0;
    for e in std::fs::read_dir(&dir).unwrap() {
        let p = e.unwrap().path();
        if p.extension().is_some_and(|x| x == "toml") {
            let c = clarity_engine::load_config(&p).unwrap_or_else(|e| panic!("{e}"));
            assert!(!c.axes.is_empty(), "{}", p.display());
            n += 1;
        }
    }
    assert!(n >= 3);
}

#[test]
fn json_axes_keep_document_order() {
    let json = r#"{"cohort": {"kind": "builtin"}, "adapter": {"kind": "builtin"},
  "axes": {"contrast.factor": [0.5], "brightness.factor": [2]}}"#;
    let c = parse_config(json, Path::new("s.json")).unwrap();
    assert_eq!(c.order, ["contrast", "brightness"]);
}

#[test]
fn cache_round_trip_and_gc() {
    let tmp = tempfile::tempdir().unwrap();
    let cache = Cache::open(tmp.path()).unwrap();
    let obs = clarity_core::Observation {
        answer: Some("yes".into()),
        confidence: Some(0.75),
        ..Default::default()
    };
    let k1 = "ab".repeat(32);
    let k2 = "cd".repeat(32);
    cache.put(&k1, &obs).unwrap();
    cache.put(&k2, &obs).unwrap();
    assert_eq!(cache.get(&k1), Some(obs.clone()));
    assert_eq!(cache.get(&"ef".repeat(32)), None);
    // A damaged entry is a miss and is removed by gc.
    let bad = tmp.path().join("v1/cd").join(format!("{k2}.json"));
    std::fs::write(&bad, "{\"trunc").unwrap();
    assert_eq!(cache.get(&k2), None);
    let r = cache.gc(None).unwrap();
    assert_eq!((r.entries_kept, r.removed_corrupt), (1, 1));
    assert!(!bad.exists());
    // Evict down to zero bytes.
    let r = cache.gc(Some(0)).unwrap();
    assert_eq!((r.entries_kept, r.evicted), (0, 1));
    assert_eq!(cache.get(&k1), None);
}

#[test]
fn content_key_encoding_is_pinned_and_separates_fields() {
    use clarity_engine::plan::content_key;
    let k = content_key("img", "[]", None, 0, None, "{}");
    // Manual BLAKE3 of the documented encoding: tag, then length-prefixed fields.
    let mut h = blake3::Hasher::new();
    h.update(b"clarity-run-key-v1\0");
    for f in [&b"img"[..], b"[]", &0u64.to_le_bytes(), &[0], &[0], b"{}"] {
        h.update(&(f.len() as u64).to_le_bytes());
        h.update(f);
    }
    assert_eq!(k, h.finalize().to_hex().to_string());
    // Absent and empty prompts differ; so do the case id of random recipes, the seed, and
    // field boundaries.
    assert_ne!(k, content_key("img", "[]", None, 0, Some(""), "{}"));
    assert_ne!(k, content_key("img", "[]", Some("c"), 0, None, "{}"));
    assert_ne!(k, content_key("img", "[]", None, 1, None, "{}"));
    assert_ne!(k, content_key("im", "g[]", None, 0, None, "{}"));
}

/// A 2x1 CT slice (slope 1, intercept -1000, file window 0/100) holding HU -500 and 40.
fn dicom_ct(path: &std::path::Path) {
    use dicom_core::{DataElement, PrimitiveValue, VR};
    use dicom_dictionary_std::{tags, uids};
    use dicom_object::{FileMetaTableBuilder, InMemDicomObject};
    let mut obj = InMemDicomObject::new_empty();
    let s = |tag, vr, v: &str| DataElement::new(tag, vr, PrimitiveValue::from(v));
    let us = |tag, v: u16| DataElement::new(tag, VR::US, PrimitiveValue::from(v));
    obj.put(s(tags::SOP_CLASS_UID, VR::UI, uids::CT_IMAGE_STORAGE));
    obj.put(s(tags::SOP_INSTANCE_UID, VR::UI, "1.2.3.4"));
    obj.put(us(tags::SAMPLES_PER_PIXEL, 1));
    obj.put(s(tags::PHOTOMETRIC_INTERPRETATION, VR::CS, "MONOCHROME2"));
    obj.put(us(tags::ROWS, 1));
    obj.put(us(tags::COLUMNS, 2));
    obj.put(us(tags::BITS_ALLOCATED, 16));
    obj.put(us(tags::BITS_STORED, 16));
    obj.put(us(tags::HIGH_BIT, 15));
    obj.put(us(tags::PIXEL_REPRESENTATION, 1));
    obj.put(s(tags::RESCALE_SLOPE, VR::DS, "1"));
    obj.put(s(tags::RESCALE_INTERCEPT, VR::DS, "-1000"));
    obj.put(s(tags::WINDOW_CENTER, VR::DS, "0"));
    obj.put(s(tags::WINDOW_WIDTH, VR::DS, "100"));
    obj.put(DataElement::new(
        tags::PIXEL_DATA,
        VR::OW,
        PrimitiveValue::U16([500u16, 1040].into_iter().collect()),
    ));
    let file = obj
        .with_meta(FileMetaTableBuilder::new().transfer_syntax(uids::EXPLICIT_VR_LITTLE_ENDIAN))
        .unwrap();
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    file.write_to_file(path).unwrap();
}

#[test]
fn cohort_window_selects_the_dicom_window_and_is_recorded() {
    let tmp = tempfile::tempdir().unwrap();
    dicom_ct(&tmp.path().join("ct/slice.dcm"));
    let load = |window: &str| {
        let text = format!(
            "[cohort]\nkind = \"folder\"\npath = \"ct\"\n{window}\n[adapter]\nkind = \"builtin\"\n"
        );
        let config = parse_config(&text, &tmp.path().join("sweep.toml"))?;
        clarity_engine::prepare(config)
    };
    let samples = |p: &clarity_engine::Prepared| match p.cohort[0].image.samples() {
        clarity_image::Samples::U16(v) => v.clone(),
        clarity_image::Samples::U8(v) => v.iter().map(|&s| s as u16).collect(),
    };
    let file = load("").unwrap();
    let lung = load("window = \"lung\"").unwrap();
    let explicit = load("window = { level = -500, width = 100 }").unwrap();
    // File window 0/100: HU -500 is below it (black), HU 40 inside it.
    assert_eq!(samples(&file)[0], 0);
    // Lung (-600/1500) shows both; the explicit window centres HU -500.
    assert!(samples(&lung)[0] > 0 && samples(&lung)[1] > samples(&lung)[0]);
    let e = samples(&explicit);
    assert!(e[0] > 30000 && e[0] < 36000 && e[1] == 65535, "{e:?}");
    // The window used is recorded with the case in plan.json, and is part of the plan.
    let plan = |p: &clarity_engine::Prepared| p.plan.to_json().unwrap().to_string();
    assert!(plan(&lung).contains("lung"), "{}", plan(&lung));
    assert_ne!(lung.plan.plan_hash, file.plan.plan_hash);
    // Bad values name the key and what is allowed.
    for (bad, want) in [
        (
            "window = \"lungs\"",
            "unknown window `lungs`; allowed: file, lung, mediastinum",
        ),
        (
            "window = { level = 0, width = 0 }",
            "window width must be a finite number >= 1",
        ),
    ] {
        let e = load(bad).err().expect(bad).to_string();
        assert!(e.contains("cohort.window") && e.contains(want), "{e}");
    }
}

#[test]
fn invalid_answer_regex_is_a_config_error() {
    let text = "[cohort]\nkind = \"builtin\"\n[adapter]\nkind = \"builtin\"\n[normalization]\nmode = \"regex\"\npattern = \"answer: (\\\\w+\"\n";
    let e = parse_config(text, Path::new("sweep.toml"))
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("normalization.pattern") && e.contains("invalid regex `answer: (\\w+`"),
        "{e}"
    );
}
