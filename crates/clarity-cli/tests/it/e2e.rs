use std::process::Stdio;
use std::time::{Duration, Instant};

use crate::util::{Sweep, assert_same_artifacts, observation_lines};

/// 3 cases x (brightness {0.5, 1, 1.5} x contrast {0.5, 1}) x 2 seeds.
const RUNS: usize = 36;

#[test]
fn end_to_end_deterministic_across_jobs_and_warm_rerun_calls_nothing() {
    let s = Sweep::new();
    s.clarity()
        .args([
            "run",
            "sweep.toml",
            "-o",
            "one",
            "--jobs",
            "1",
            "--no-cache",
            "-q",
        ])
        .assert()
        .code(0);
    assert_eq!(s.calls(), RUNS);
    for f in [
        "plan.json",
        "observations.parquet",
        "bundle.json",
        "telemetry.json",
        "metrics.json",
        "report.html",
    ] {
        assert!(s.path("one").join(f).is_file(), "{f} missing");
    }
    // Cold cache, two jobs: same bytes.
    s.clarity()
        .args(["run", "sweep.toml", "-o", "two", "--jobs", "2", "-q"])
        .assert()
        .code(0);
    assert_eq!(s.calls(), 2 * RUNS);
    assert_same_artifacts(&s.path("one"), &s.path("two"));
    // Warm cache, a fresh directory: zero model calls, same bytes.
    let out = s
        .clarity()
        .args(["run", "sweep.toml", "-o", "three", "--json"])
        .assert()
        .code(0)
        .get_output()
        .stdout
        .clone();
    assert_eq!(s.calls(), 2 * RUNS);
    let v: serde_json::Value = serde_json::from_slice(&out).unwrap();
    assert_eq!(v["stats"]["cached"], RUNS);
    assert_eq!(v["stats"]["adapter_calls"], 0);
    assert_same_artifacts(&s.path("one"), &s.path("three"));
    // The answers depend on the perturbation: contrast cells say "yes".
    let obs = observation_lines(&s.path("one"));
    assert_eq!(obs.lines().count(), RUNS);
    assert_eq!(obs.matches(r#""answer":"yes""#).count(), 18);

    // inspect verifies the bundle; a changed artifact is reported (exit 1).
    let text = s
        .clarity()
        .args(["inspect", "one"])
        .assert()
        .code(0)
        .get_output()
        .stdout
        .clone();
    let text = String::from_utf8(text).unwrap();
    assert!(
        text.contains("runs recorded (observations.parquet): 36 ok, 0 failed"),
        "{text}"
    );
    assert!(text.contains("files verified"), "{text}");
    std::fs::write(s.path("one/metrics.csv"), "tampered").unwrap();
    s.clarity()
        .args(["inspect", "one"])
        .assert()
        .code(1)
        .stdout(predicates::str::contains("metrics.csv: content changed"));
}

#[test]
fn plan_prints_the_grid_without_running() {
    let s = Sweep::new();
    let out = s
        .clarity()
        .args(["plan", "sweep.toml"])
        .assert()
        .code(0)
        .get_output()
        .stdout
        .clone();
    let text = String::from_utf8(out).unwrap();
    assert_eq!(s.calls(), 0);
    assert!(!s.path("out").exists());
    assert!(text.contains("cases: 3"), "{text}");
    assert!(
        text.contains("brightness.factor: 0.5, 1, 1.5 (identity 1)"),
        "{text}"
    );
    assert!(text.contains("cells: 6 (baseline: cell 3)"), "{text}");
    assert!(
        text.contains("runs: 36 (36 distinct content keys"),
        "{text}"
    );
}

#[test]
fn failing_runs_are_recorded_and_exit_code_is_3() {
    let s = Sweep::new();
    s.write(
        "cohort/cases.csv",
        "id,path,prompt\ncase0,case0.png,fine\ncase1,case1.png,FAIL please\n",
    );
    s.clarity()
        .args(["run", "sweep.toml", "--no-report", "-q"])
        .assert()
        .code(3);
    let obs = observation_lines(&s.path("out"));
    let failed: Vec<&str> = obs
        .lines()
        .filter(|l| l.contains(r#""status":"failed""#))
        .collect();
    assert_eq!(failed.len(), 12);
    assert!(failed.iter().all(|l| l.contains(r#""case_id":"case1""#)));
    assert!(failed[0].contains("refusing this case"), "{}", failed[0]);
    assert!(s.path("out/metrics.json").is_file());
    // Failures are not cached: a re-run in place takes them from the journal, calls nothing.
    let before = s.calls();
    s.clarity()
        .args(["run", "sweep.toml", "--no-report", "-q"])
        .assert()
        .code(3);
    assert_eq!(s.calls(), before);
}

#[cfg(unix)]
#[test]
fn kill_9_then_resume_gives_identical_bytes_and_reruns_only_missing_runs() {
    let s = Sweep::with_model_delay("0.05");
    s.clarity()
        .args([
            "run",
            "sweep.toml",
            "-o",
            "reference",
            "--no-cache",
            "--no-report",
            "-q",
        ])
        .assert()
        .code(0);
    let calls_reference = s.calls();
    assert_eq!(calls_reference, RUNS);

    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_clarity"))
        .current_dir(s.tmp.path())
        .args([
            "run",
            "sweep.toml",
            "-o",
            "killed",
            "--no-cache",
            "--no-report",
            "-q",
            "-j",
            "1",
        ])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let journal = s.path("killed/journal.jsonl");
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let lines = std::fs::read_to_string(&journal)
            .map(|t| t.lines().count())
            .unwrap_or(0);
        if lines >= 6 {
            break;
        }
        assert!(Instant::now() < deadline, "the sweep made no progress");
        std::thread::sleep(Duration::from_millis(10));
    }
    child.kill().unwrap(); // SIGKILL
    child.wait().unwrap();
    // Let model processes that were in flight finish their (now orphaned) work.
    std::thread::sleep(Duration::from_millis(500));
    assert!(!s.path("killed/observations.parquet").exists());
    let recorded = std::fs::read_to_string(&journal)
        .unwrap()
        .lines()
        .filter(|l| serde_json::from_str::<serde_json::Value>(l).is_ok())
        .count();
    assert!(recorded < RUNS, "killed too late to test anything");
    let calls_before = s.calls();
    s.clarity()
        .args([
            "run",
            "sweep.toml",
            "-o",
            "killed",
            "--no-cache",
            "--no-report",
            "-q",
        ])
        .assert()
        .code(0);
    // Exactly the runs missing from the journal were executed again.
    assert_eq!(s.calls() - calls_before, RUNS - recorded);
    assert_same_artifacts(&s.path("reference"), &s.path("killed"));
}

#[test]
fn abort_hook_then_resume_without_cache() {
    let s = Sweep::new();
    s.clarity()
        .args([
            "run",
            "sweep.toml",
            "-o",
            "a",
            "--no-cache",
            "--no-analysis",
            "-q",
            "-j",
            "1",
            "--abort-after",
            "4",
        ])
        .assert()
        .code(130);
    let after_abort = s.calls();
    assert!(after_abort >= 4);
    s.clarity()
        .args([
            "run",
            "sweep.toml",
            "-o",
            "a",
            "--no-cache",
            "--no-analysis",
            "-q",
        ])
        .assert()
        .code(0);
    // Sealed: the journal is gone, the table holds one record per run.
    assert!(!s.path("a/journal.jsonl").exists());
    assert_eq!(observation_lines(&s.path("a")).lines().count(), RUNS);
    // Runs cancelled in flight by the abort may run twice; recorded ones never do.
    assert!(s.calls() - after_abort <= RUNS - 4);
}

#[cfg(unix)]
#[test]
fn sigint_stops_cleanly_with_130_and_resumes() {
    let s = Sweep::with_model_delay("0.05");
    let child = std::process::Command::new(env!("CARGO_BIN_EXE_clarity"))
        .current_dir(s.tmp.path())
        .args(["run", "sweep.toml", "--no-cache", "--no-report", "-j", "1"])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let journal = s.path("out/journal.jsonl");
    let deadline = Instant::now() + Duration::from_secs(60);
    while std::fs::read_to_string(&journal)
        .map(|t| t.lines().count())
        .unwrap_or(0)
        < 3
    {
        assert!(Instant::now() < deadline, "the sweep made no progress");
        std::thread::sleep(Duration::from_millis(10));
    }
    let status = std::process::Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    let out = child.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(130));
    let stderr = String::from_utf8(out.stderr).unwrap();
    assert!(stderr.contains("interrupted;"), "{stderr}");
    assert!(!s.path("out/observations.parquet").exists());
    // Every journal line is a complete record.
    let text = std::fs::read_to_string(&journal).unwrap();
    assert!(text.ends_with('\n'));
    assert!(
        text.lines()
            .all(|l| serde_json::from_str::<serde_json::Value>(l).is_ok())
    );
    s.clarity()
        .args(["run", "sweep.toml", "--no-cache", "--no-report", "-q"])
        .assert()
        .code(0);
    s.clarity()
        .args([
            "run",
            "sweep.toml",
            "-o",
            "reference",
            "--no-cache",
            "--no-report",
            "-q",
        ])
        .assert()
        .code(0);
    assert_same_artifacts(&s.path("reference"), &s.path("out"));
}
