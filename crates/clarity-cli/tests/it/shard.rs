//! `clarity run CONFIG --shard I/N` and `clarity merge OUT SHARD_DIR…` through the real binary:
//! the merge of N = 1, 2, 3 shards equals the plain run byte for byte (observations table,
//! metrics, cliffs, bundle, report); clear errors for shards that do not fit together.

use crate::util::{Sweep, artifacts, assert_same_artifacts};

const RUNS: usize = 36;

/// Runs the shards of `n` into `NAME-i` (extra flags per shard from `flags(i)`), returns the dirs.
fn run_shards(s: &Sweep, name: &str, n: u32, flags: impl Fn(u32) -> Vec<String>) -> Vec<String> {
    (0..n)
        .map(|i| {
            let dir = format!("{name}-{i}");
            let mut args: Vec<String> = vec![
                "run".into(),
                "sweep.toml".into(),
                "-o".into(),
                dir.clone(),
                "--shard".into(),
                format!("{i}/{n}"),
                "-q".into(),
            ];
            let extra = flags(i);
            // The test hook stops the shard as Ctrl-C would (exit 130).
            let code = if extra.iter().any(|f| f == "--abort-after") {
                130
            } else {
                0
            };
            args.extend(extra);
            s.clarity().args(&args).assert().code(code);
            dir
        })
        .collect()
}

fn merge(s: &Sweep, out: &str, dirs: &[String]) -> std::process::Output {
    let mut args = vec!["merge", out];
    args.extend(dirs.iter().map(String::as_str));
    args.extend(["--config", "sweep.toml", "-q"]);
    s.clarity().args(&args).output().unwrap()
}

#[test]
fn merged_shards_equal_the_plain_run_byte_for_byte() {
    let s = Sweep::new();
    s.clarity()
        .args(["run", "sweep.toml", "-o", "plain", "-q"])
        .assert()
        .code(0);
    assert_eq!(s.calls(), RUNS);
    let plain = artifacts(&s.path("plain"));
    let names: Vec<&str> = plain.iter().map(|f| f.0.as_str()).collect();
    for f in [
        "observations.parquet",
        "metrics.json",
        "cliffs.json",
        "bundle.json",
        "report.html",
    ] {
        assert!(names.contains(&f), "{f} missing from {names:?}");
    }
    for n in [1u32, 2, 3] {
        // N = 2 runs for real (no cache), shard 1 interrupted and resumed; the others reuse
        // the cache the plain run filled.
        let dirs = run_shards(&s, &format!("s{n}"), n, |i| {
            if n == 2 {
                let mut f = vec!["--no-cache".to_string()];
                if i == 1 {
                    f.extend(["--abort-after".into(), "3".into()]);
                }
                f
            } else {
                Vec::new()
            }
        });
        if n == 2 {
            // The interrupted shard cannot be merged yet; the same command resumes it.
            let out = merge(&s, "early", &dirs);
            assert_eq!(out.status.code(), Some(2));
            let err = String::from_utf8_lossy(&out.stderr);
            assert!(err.contains("shard 1/2 is not finished"), "{err}");
            assert!(!s.path("early").exists());
            s.clarity()
                .args([
                    "run",
                    "sweep.toml",
                    "-o",
                    &dirs[1],
                    "--shard",
                    "1/2",
                    "--no-cache",
                    "-q",
                ])
                .assert()
                .code(0);
            assert!(s.calls() >= 2 * RUNS, "the N = 2 shards ran the model");
        }
        for d in &dirs {
            assert!(s.path(d).join("shard.json").is_file());
            assert!(
                !s.path(d).join("metrics.json").exists(),
                "a shard is not analysed"
            );
            assert!(!s.path(d).join("journal.jsonl").exists());
        }
        // Any order of the shard directories.
        let mut rev = dirs.clone();
        rev.reverse();
        let out = merge(&s, &format!("m{n}"), &rev);
        assert_eq!(
            out.status.code(),
            Some(0),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert_same_artifacts(&s.path("plain"), &s.path(&format!("m{n}")));
    }
}

#[test]
fn merge_refuses_shards_that_do_not_fit_together() {
    let s = Sweep::new();
    let two = run_shards(&s, "two", 2, |_| Vec::new());
    let three = run_shards(&s, "three", 3, |_| Vec::new());
    let expect_err = |dirs: &[&str], needle: &str| {
        let dirs: Vec<String> = dirs.iter().map(|d| d.to_string()).collect();
        let out = merge(&s, "out", &dirs);
        let err = s.filter(&String::from_utf8_lossy(&out.stderr));
        assert_eq!(out.status.code(), Some(2), "{err}");
        assert!(err.contains(needle), "expected `{needle}` in: {err}");
        assert!(!s.path("out").exists(), "nothing is written on error");
    };
    // Missing shard.
    expect_err(&[&two[0]], "missing shards: 1/2");
    // The same shard twice.
    expect_err(&[&two[0], &two[0]], "overlapping shards");
    // Shards of different counts.
    expect_err(
        &[&two[0], &three[1]],
        "all shards must be of the same count",
    );
    // Not a shard directory.
    s.clarity()
        .args(["run", "sweep.toml", "-o", "plain", "-q", "--no-report"])
        .assert()
        .code(0);
    expect_err(&["plain", &two[1]], "not a shard directory");
    // A shard of another config (another plan).
    s.write(
        "other.toml",
        &crate::util::CONFIG.replace("seeds = [0, 1]", "seeds = [0, 1, 2]"),
    );
    s.clarity()
        .args(["run", "other.toml", "-o", "other-1", "--shard", "1/2", "-q"])
        .assert()
        .code(0);
    expect_err(&[&two[0], "other-1"], "is a shard of another plan");
    // --config of another sweep.
    let out = s
        .clarity()
        .args(["merge", "out", &two[0], &two[1], "--config", "other.toml"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("not this sweep's config"));
    assert!(!s.path("out").exists());
    // A bad --shard is a usage error naming what is expected.
    let out = s
        .clarity()
        .args(["run", "sweep.toml", "-o", "x", "--shard", "2/2"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("the shard index must be below the count")
    );
    // A shard into an unsharded run's directory, and a plain run into a shard's.
    let out = s
        .clarity()
        .args(["run", "sweep.toml", "-o", "plain", "--shard", "0/2", "-q"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("unsharded run"));
    let out = s
        .clarity()
        .args(["run", "sweep.toml", "-o", &two[0], "-q"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("clarity merge"));
}
