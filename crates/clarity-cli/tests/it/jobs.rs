//! `clarity jobs slurm|k8s`: the files (snapshots), usage errors, and the Slurm script run for
//! real against a stand-in `sbatch` that records the two jobs, whose scripts are then run the
//! way Slurm would (one per array task, then the merge): the merged sweep equals the plain run.
//! (scripts/slurm-test.sh runs the same script on a real single-node Slurm cluster;
//! scripts/k8s-validate.sh checks the manifests against the Kubernetes schemas.)

use std::process::Command;

use crate::util::{Sweep, assert_same_artifacts};

const BUILTIN: &str = r#"# a tiny builtin sweep
seeds = [0]
output = "out/tiny"

[cohort]
kind = "builtin"
n = 4
size = 64

[adapter]
kind = "builtin"

[normalization]
mode = "exact"

[axes]
"gaussian_blur.sigma" = [1, 2]
"#;

fn stdout_of(s: &Sweep, args: &[&str]) -> String {
    let out = s.clarity().args(args).output().unwrap();
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    s.filter(&String::from_utf8(out.stdout).unwrap())
}

#[test]
fn slurm_script_snapshot() {
    let s = Sweep::new();
    let script = stdout_of(&s, &["jobs", "slurm", "sweep.toml", "--shards", "4"]);
    insta::assert_snapshot!("slurm_script", script);
    // -o and --clarity: made absolute; odd characters are shell-quoted.
    let script = stdout_of(
        &s,
        &[
            "jobs",
            "slurm",
            "sweep.toml",
            "--shards",
            "2",
            "-o",
            "it's here",
            "--clarity",
            "bin/clarity",
            "--name",
            "My Sweep!",
        ],
    );
    assert!(script.contains("--job-name=clarity-my-sweep --array=0-1"));
    assert!(script.contains(r"exec [TMP]/bin/clarity merge '[TMP]/it'\''s here'"));
    assert!(script.contains(r"mkdir -p '[TMP]/it'\''s here.shards'"));
}

#[test]
fn k8s_manifests_snapshot() {
    let s = Sweep::new();
    s.write("tiny.toml", BUILTIN);
    let yaml = stdout_of(
        &s,
        &[
            "jobs",
            "k8s",
            "tiny.toml",
            "--shards",
            "3",
            "--image",
            "registry.example/clarity:0.1",
        ],
    );
    insta::assert_snapshot!("k8s_manifests", yaml);
    // A file cohort gets a note: relative paths resolve against the ConfigMap's mount.
    let yaml = stdout_of(
        &s,
        &[
            "jobs",
            "k8s",
            "sweep.toml",
            "--shards",
            "2",
            "-o",
            "/data/x",
            "--storage-class",
            "nfs",
        ],
    );
    assert!(yaml.contains("# NOTE: this cohort is read from files"));
    assert!(yaml.contains("  storageClassName: nfs\n"));
    assert!(yaml.contains("- \"-o\"\n        - \"/data/x.shards/shard-$(CLARITY_SHARD_INDEX)\"\n"));
    // The config is embedded line for line.
    for line in crate::util::CONFIG.lines().filter(|l| !l.is_empty()) {
        assert!(yaml.contains(&format!("    {line}\n")), "{line}");
    }
}

#[test]
fn jobs_usage_errors() {
    let s = Sweep::new();
    let fail = |args: &[&str], needle: &str| {
        let out = s.clarity().args(args).output().unwrap();
        let err = s.filter(&String::from_utf8_lossy(&out.stderr));
        assert_eq!(out.status.code(), Some(2), "{args:?}: {err}");
        assert!(out.stdout.is_empty(), "{args:?}: printed a file");
        assert!(
            err.contains(needle),
            "{args:?}: expected `{needle}` in {err}"
        );
    };
    for kind in ["slurm", "k8s"] {
        fail(
            &["jobs", kind, "sweep.toml", "--shards", "0"],
            "--shards must be at least 1",
        );
        fail(
            &["jobs", kind, "missing.toml", "--shards", "2"],
            "missing.toml: cannot read the config: file not found",
        );
        fail(&["jobs", kind, "sweep.toml"], "--shards");
        fail(
            &["jobs", kind, "sweep.toml", "--shards", "2", "--name", "!!"],
            "has no letter or digit",
        );
    }
    s.write("bad.toml", "seeds = [0]\n[cohort]\nkind = \"nope\"\n");
    fail(&["jobs", "slurm", "bad.toml", "--shards", "2"], "bad.toml");
    fail(
        &[
            "jobs",
            "k8s",
            "sweep.toml",
            "--shards",
            "2",
            "-o",
            "rel/dir",
        ],
        "expected an absolute path inside the pods",
    );
}

/// The submit script against a stand-in `sbatch` (records each job's options and script,
/// prints `ID;cluster` as `--parsable` does); then each array task and the merge job run as
/// Slurm would run them.
#[test]
fn slurm_script_runs_the_shards_and_the_merge() {
    let s = Sweep::new();
    s.clarity()
        .args(["run", "sweep.toml", "-o", "plain", "-q"])
        .assert()
        .code(0);
    let bin = env!("CARGO_BIN_EXE_clarity");
    let script = s
        .clarity()
        .args([
            "jobs",
            "slurm",
            "sweep.toml",
            "--shards",
            "3",
            "-o",
            "merged",
            "--clarity",
            bin,
        ])
        .output()
        .unwrap();
    assert!(script.status.success());
    s.write("submit.sh", &String::from_utf8(script.stdout).unwrap());
    s.write(
        "fakebin/sbatch",
        "#!/bin/sh\nn=$(ls jobs 2>/dev/null | grep -c args || true)\nn=$((n + 1))\nmkdir -p jobs\n\
         printf '%s\\n' \"$@\" > jobs/$n.args\ncat > jobs/$n.sh\necho \"$((n + 40));test\"\n",
    );
    let path = format!(
        "{}:{}",
        s.path("fakebin").display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let run = |script: &str, task: Option<u32>| {
        let mut c = Command::new("bash");
        c.arg(script)
            .current_dir(s.tmp.path())
            .env("PATH", &path)
            .env("CLARITY_CACHE_DIR", s.path("cache"))
            .env("NO_COLOR", "1");
        if let Some(t) = task {
            c.env("SLURM_ARRAY_TASK_ID", t.to_string());
        }
        let out = c.output().unwrap();
        assert!(
            out.status.success(),
            "{script}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap()
    };
    std::fs::set_permissions(
        s.path("fakebin/sbatch"),
        std::os::unix::fs::PermissionsExt::from_mode(0o755),
    )
    .unwrap();
    let said = run("submit.sh", None);
    assert!(
        said.contains("shards: job array 41 (tasks 0-2); merge: job 42"),
        "{said}"
    );
    let args1 = std::fs::read_to_string(s.path("jobs/1.args")).unwrap();
    let args2 = std::fs::read_to_string(s.path("jobs/2.args")).unwrap();
    assert!(args1.contains("--array=0-2\n"), "{args1}");
    assert!(args2.contains("--dependency=afterok:41\n"), "{args2}");
    assert!(args2.contains("--kill-on-invalid-dep=yes\n"), "{args2}");
    assert!(s.path("merged.shards").is_dir(), "the log directory exists");
    for t in 0..3 {
        run("jobs/1.sh", Some(t));
    }
    assert!(!s.path("merged").exists());
    run("jobs/2.sh", None);
    assert_same_artifacts(&s.path("plain"), &s.path("merged"));
}
