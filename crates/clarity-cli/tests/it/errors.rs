//! Bad input: a clear error (snapshot), exit code 2, and the existing output untouched.

use crate::util::Sweep;

/// Runs `clarity run` on a modified config over an existing finished sweep and returns the
/// filtered stderr, checking exit code 2 and that the output directory did not change.
fn run_bad(s: &Sweep) -> String {
    let before = crate::util::artifacts(&s.path("out"));
    let journal = std::fs::read(s.path("out/journal.jsonl")).unwrap();
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
    assert_eq!(std::fs::read(s.path("out/journal.jsonl")).unwrap(), journal);
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
