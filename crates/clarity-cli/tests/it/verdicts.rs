//! Verdicts and `--fail-if` gates through the binary: a sweep whose runs all fail, one headline
//! in stdout, `--json`, metrics.json and the report, and the exit codes of the gates.

use crate::util::{CONFIG, Sweep};

fn json(bytes: &[u8]) -> serde_json::Value {
    serde_json::from_slice(bytes).unwrap()
}

/// The test sweep with a model that always fails and no retries.
fn failing() -> Sweep {
    let s = Sweep::new();
    s.write("fail.sh", "#!/bin/sh\necho down >&2\nexit 1\n");
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(s.path("fail.sh"), std::fs::Permissions::from_mode(0o755))
            .unwrap();
    }
    s.write(
        "sweep.toml",
        &(CONFIG.replace("./model.sh", "./fail.sh") + "\n[retry]\nattempts = 1\n"),
    );
    s
}

#[test]
fn a_sweep_whose_runs_all_fail_is_not_measured() {
    let s = failing();
    let out = s
        .clarity()
        .args(["run", "sweep.toml", "--no-cache", "--no-report"])
        .assert()
        .code(3)
        .get_output()
        .stdout
        .clone();
    let text = String::from_utf8(out).unwrap();
    assert!(
        text.contains("Verdict: not measured — every run failed (36 of 36)."),
        "{text}"
    );
    assert!(!text.to_lowercase().contains("holds"), "{text}");
    assert!(!text.contains("one seed"), "{text}");
    assert!(
        text.contains(
            "Baseline self-agreement: not measured — no case has two successful baseline runs"
        ),
        "{text}"
    );
    // A gate never passes on no data, even with --fail-if-inconclusive=false.
    s.clarity()
        .args([
            "analyze",
            "out",
            "--fail-if",
            "esi < 0.5",
            "--fail-if-inconclusive=false",
        ])
        .assert()
        .code(4);
}

#[test]
fn stdout_json_metrics_and_report_carry_one_headline_with_the_refined_bracket() {
    let s = Sweep::new();
    let out = s
        .clarity()
        .args(["run", "sweep.toml", "--refine", "--refine-rounds", "2"])
        .assert()
        .code(0)
        .get_output()
        .stdout
        .clone();
    let text = String::from_utf8(out).unwrap();
    let metrics = json(&std::fs::read(s.path("out/metrics.json")).unwrap());
    let lines: Vec<String> = metrics["headline"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l.as_str().unwrap().to_string())
        .collect();
    assert!(lines[0].starts_with("Verdict: "), "{lines:?}");
    assert!(
        lines
            .iter()
            .any(|l| l.contains("`contrast.factor`")
                && l.contains("refined: the crossing is between")),
        "{lines:?}"
    );
    let report = std::fs::read_to_string(s.path("out/report.html")).unwrap();
    for l in &lines {
        assert!(text.contains(l.as_str()), "stdout lacks {l}\n{text}");
        assert!(report.contains(l.as_str()), "report lacks {l}");
    }
    // `analyze --json` recomputes the same lines and verdicts.
    let out = s
        .clarity()
        .args(["analyze", "out", "--json"])
        .assert()
        .code(0)
        .get_output()
        .stdout
        .clone();
    let v = json(&out);
    assert_eq!(v["headline"].as_str().unwrap(), lines.join("\n"));
    assert_eq!(v["verdicts"], metrics["verdicts"]);
}

/// The test sweep over 20 cases: contrast flips every answer (ESI 0, interval below 0.8),
/// brightness none (ESI 1, interval above 0.8).
fn twenty_cases() -> Sweep {
    let s = Sweep::new();
    let mut csv = String::from("id,path,prompt,label\n");
    for i in 0..20u32 {
        let img = image::GrayImage::from_fn(8, 8, |x, y| {
            image::Luma([((x * 9 + y * 5 + i * 11) % 256) as u8])
        });
        img.save(s.path(&format!("cohort/p{i}.png"))).unwrap();
        csv.push_str(&format!("p{i},p{i}.png,Is it bright?,no\n"));
    }
    s.write("cohort/cases.csv", &csv);
    s
}

#[test]
fn fail_if_gates_judge_the_interval_and_exit_4() {
    let s = twenty_cases();
    // Bad gates are usage errors before anything runs.
    for (gate, msg) in [
        ("esi 0.9", "expected `[AXIS:]METRIC OP NUMBER`"),
        ("speed < 0.9", "unknown metric `speed`"),
        ("noise:esi < 0.9", "no axis `noise` in this sweep"),
    ] {
        let err = s
            .clarity()
            .args(["run", "sweep.toml", "--fail-if", gate])
            .assert()
            .code(2)
            .get_output()
            .stderr
            .clone();
        let err = String::from_utf8(err).unwrap();
        assert!(err.contains(msg), "{gate}: {err}");
    }
    assert_eq!(s.calls(), 0);
    assert!(!s.path("out").exists());
    // Contrast breaks ESI < 0.8 on its interval: exit 4, every artifact written.
    let out = s
        .clarity()
        .args([
            "run",
            "sweep.toml",
            "--no-report",
            "--fail-if",
            "esi < 0.8",
            "--json",
        ])
        .assert()
        .code(4)
        .get_output()
        .stdout
        .clone();
    let v = json(&out);
    assert_eq!(v["exit_code"], 4);
    assert_eq!(v["gate"]["failures"], serde_json::json!([true]));
    assert_eq!(v["analysis"]["gates"][0]["overall"]["outcome"], "breaks");
    assert!(s.path("out/metrics.json").is_file());
    // Brightness alone holds at 0.8; at 0.95 its interval straddles: inconclusive fails
    // unless told otherwise.
    let gate = |args: &[&str], code: i32| {
        s.clarity()
            .arg("analyze")
            .arg("out")
            .args(args)
            .assert()
            .code(code);
    };
    gate(&["--fail-if", "brightness.factor:esi < 0.8"], 0);
    gate(&["--fail-if", "contrast.factor:esi < 0.8"], 4);
    gate(&["--fail-if", "brightness.factor:esi < 0.95"], 4);
    gate(
        &[
            "--fail-if",
            "brightness.factor:esi < 0.95",
            "--fail-if-inconclusive=false",
        ],
        0,
    );
    gate(
        &[
            "--fail-if",
            "brightness.factor:esi < 0.8",
            "--fail-if",
            "drift > 0.9",
        ],
        0,
    );
    gate(&["--fail-if", "noise:esi < 0.8"], 2);
}
