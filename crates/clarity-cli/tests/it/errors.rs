//! Bad input: a clear error (snapshot), exit code 2, and the existing output untouched.

use crate::util::{Sweep, observation_lines};

/// Runs `clarity run` on a modified config over an existing finished sweep and returns the
/// filtered stderr, checking exit code 2 and that the output directory did not change.
fn run_bad(s: &Sweep) -> String {
    let before = crate::util::artifacts(&s.path("out"));
    // A finished sweep: its journal is gone (the table holds the records) and stays gone.
    assert!(!s.path("out/journal.jsonl").exists());
    let out = s
        .clarity()
        .args(["run", "sweep.toml"])
        .assert()
        .code(2)
        .get_output()
        .clone();
    assert!(out.stdout.is_empty());
    assert_eq!(
        crate::util::artifacts(&s.path("out")),
        before,
        "output changed"
    );
    assert!(!s.path("out/journal.jsonl").exists());
    scrub(&s.filter(&String::from_utf8(out.stderr).unwrap()))
}

/// Hides what changes as kernels land or with the temp dir: the list of known perturbations
/// and plan-hash prefixes.
fn scrub(text: &str) -> String {
    let mut out = String::new();
    for line in text.lines() {
        let mut line = match line.find("known perturbations: ") {
            Some(i) => format!("{}known perturbations: [LIST]", &line[..i]),
            None => line.to_string(),
        };
        for marker in ["plan_hash ", "gives "] {
            if let Some(k) = line.find(marker) {
                let start = k + marker.len();
                if line.len() >= start + 12 {
                    line.replace_range(start..start + 12, "[HASH]");
                }
            }
        }
        out.push_str(&line);
        out.push('\n');
    }
    out
}

fn finished() -> Sweep {
    let s = Sweep::new();
    s.clarity()
        .args(["run", "sweep.toml", "--no-analysis", "-q"])
        .assert()
        .code(0);
    s
}

fn with(s: &Sweep, from: &str, to: &str) {
    let c = crate::util::CONFIG.replace(from, to);
    assert_ne!(c, crate::util::CONFIG);
    s.write("sweep.toml", &c);
}

#[test]
fn bad_inputs_give_clear_errors_and_touch_nothing() {
    let s = finished();
    let mut report = String::new();
    let cases: &[(&str, &str, &str)] = &[
        (
            "unknown key",
            "max_in_flight = 2",
            "max_in_flight = 2\nthreads = 4",
        ),
        ("wrong type", "seeds = [0, 1]", "seeds = [\"zero\"]"),
        ("out of range", "[1.5, 0.5]", "[1.5, 9]"),
        (
            "unknown perturbation",
            "\"contrast.factor\"",
            "\"contrastt.factor\"",
        ),
        (
            "unknown parameter",
            "\"contrast.factor\"",
            "\"contrast.level\"",
        ),
        ("different sweep in the output dir", "[1.5, 0.5]", "[1.5]"),
    ];
    for (what, from, to) in cases {
        with(&s, from, to);
        report.push_str(&format!("# {what}\n{}\n", run_bad(&s)));
    }
    s.write("sweep.toml", crate::util::CONFIG);
    s.write(
        "cohort/cases.csv",
        "id,path\ncase0,case0.png\ncase1,missing.png\n",
    );
    report.push_str(&format!("# missing image\n{}\n", run_bad(&s)));
    s.write(
        "cohort/cases.csv",
        "id,path\ncase0,case0.png\ncase0,case1.png\n",
    );
    report.push_str(&format!("# duplicate case id\n{}\n", run_bad(&s)));
    s.write("cohort/cases.csv", "id,path\ncase0,case0.png\n");
    s.write("sweep.toml", "seeds = [0\n");
    report.push_str(&format!("# syntax error\n{}\n", run_bad(&s)));
    insta::assert_snapshot!(report);
}

#[test]
fn missing_config_and_usage_errors_exit_2() {
    let s = Sweep::new();
    let out = s
        .clarity()
        .args(["run", "nope.toml"])
        .assert()
        .code(2)
        .get_output()
        .stderr
        .clone();
    assert_eq!(
        s.filter(&String::from_utf8(out).unwrap()),
        "error: nope.toml: cannot read the config: file not found\n"
    );
    s.clarity().args(["run"]).assert().code(2);
    s.clarity().args(["frobnicate"]).assert().code(2);
    s.clarity()
        .args(["inspect", "."])
        .assert()
        .code(2)
        .stderr(predicates::str::contains("not a Clarity sweep directory"));
}

/// The first run error recorded in the observations of `DIR`, and how many runs failed.
fn run_errors(s: &Sweep, dir: &str) -> (usize, String) {
    let text = observation_lines(&s.path(dir));
    let errors: Vec<String> = text
        .lines()
        .filter_map(|l| {
            let v: serde_json::Value = serde_json::from_str(l).unwrap();
            v["outcome"]["error"].as_str().map(str::to_string)
        })
        .collect();
    let first = errors.first().cloned().unwrap_or_default();
    (errors.len(), s.filter(&first))
}

/// Missing program, a model that hangs past the timeout, a model that writes garbage: every
/// run fails with an error naming the cause (file and line where there is one), the sweep
/// completes with exit 3; a program that does not exist is a config error (exit 2) before any
/// output is written.
#[test]
fn adapter_failures_give_clear_run_errors() {
    let s = Sweep::with_model_delay("30");
    let small = |program: &str, timeout: u32, out: &str| {
        crate::util::CONFIG
            .replace("./model.sh", program)
            .replace("timeout_secs = 60", &format!("timeout_secs = {timeout}"))
            .replace("seeds = [0, 1]", "seeds = [0]")
            .replace("\"brightness.factor\" = [1.5, 0.5]\n", "")
            .replace(
                "output = \"out\"",
                &format!("output = \"{out}\"\n[retry]\nattempts = 1"),
            )
    };
    let mut report = String::new();

    s.write("missing.toml", &small("./nope.sh", 60, "missing"));
    let out = s
        .clarity()
        .args(["run", "missing.toml", "-q"])
        .assert()
        .get_output()
        .clone();
    report.push_str(&format!(
        "# program missing (exit {})\n{}",
        out.status.code().unwrap(),
        s.filter(&String::from_utf8(out.stderr).unwrap())
    ));
    assert!(!s.path("missing").exists(), "nothing written");

    // model.sh sleeps 30 s; the timeout is 1 s and kills its process group.
    s.write("slow.toml", &small("./model.sh", 1, "slow"));
    let started = std::time::Instant::now();
    s.clarity()
        .args(["run", "slow.toml", "-q", "--no-report"])
        .assert()
        .code(3);
    assert!(
        started.elapsed().as_secs() < 25,
        "timeouts did not kill the model"
    );
    let (n, e) = run_errors(&s, "slow");
    report.push_str(&format!(
        "\n# model times out (exit 3)\n{n} runs failed, first: {e}\n"
    ));

    let garbage = "#!/bin/sh\nwhile [ $# -gt 0 ]; do case \"$1\" in --output) out=\"$2\"; shift 2;; *) shift;; esac; done\nmkdir -p \"$out\"\necho '{\"run_id\":\"r\",\"timestamp\":\"t\",\"seed\":0,\"artifacts\":[]}' > \"$out/manifest.json\"\nprintf '{\"step\":\"a\",\"answer\":\"x\"}\\nnot json at all\\n' > \"$out/trace_pack.jsonl\"\n";
    s.write("garbage.sh", garbage);
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(s.path("garbage.sh"), std::fs::Permissions::from_mode(0o755))
            .unwrap();
    }
    s.write("garbage.toml", &small("./garbage.sh", 60, "garbage"));
    s.clarity()
        .args(["run", "garbage.toml", "-q", "--no-report"])
        .assert()
        .code(3);
    let (n, e) = run_errors(&s, "garbage");
    report.push_str(&format!(
        "\n# model writes garbage (exit 3)\n{n} runs failed, first: {e}\n"
    ));
    insta::assert_snapshot!(scrub_keys(&report));
}

/// Per-run scratch paths contain content keys: replace runs of 32+ hex digits by `[KEY]`.
fn scrub_keys(text: &str) -> String {
    let mut out = String::new();
    let mut hex = String::new();
    for ch in text.chars() {
        if ch.is_ascii_hexdigit() {
            hex.push(ch);
            continue;
        }
        out.push_str(if hex.len() >= 32 { "[KEY]" } else { &hex });
        hex.clear();
        out.push(ch);
    }
    out.push_str(if hex.len() >= 32 { "[KEY]" } else { &hex });
    out
}
