//! Verdicts judged on intervals: issue 12's "Holds when nothing was measured" and "a model that
//! is always wrong is perfectly stable", the gate grammar and refine.json in the headline.

use clarity_analysis::verdicts::{Condition, judge, refined_from_json};
use clarity_analysis::{AnalyzeOptions, Outcome, analyze, analyze_dir};
use clarity_core::RunRecord;
use serde_json::{Value, json};

use crate::fixture::*;
use crate::write::write_sweep;

/// `n` cases labelled `yes`, blur ∈ {0, 1, 2}, seeds 1 and 2; `answer(case, cell)`.
fn cohort(
    n: usize,
    answer: impl Fn(usize, usize) -> Option<&'static str>,
) -> clarity_analysis::SweepData {
    let axes = vec![num_axis("blur.sigma", &[0.0, 1.0, 2.0], 0.0)];
    let cases: Vec<_> = (0..n)
        .map(|i| case(&format!("c{i:02}"), Some("yes")))
        .collect();
    let mut r: Vec<RunRecord> = Vec::new();
    for i in 0..n {
        for cell in 0..3 {
            for seed in [1, 2] {
                let id = format!("c{i:02}");
                r.push(match answer(i, cell) {
                    Some(a) => ok(&id, cell, seed, a, None, None, None),
                    None => failed(&id, cell, seed),
                });
            }
        }
    }
    sweep(axes, cases, vec![1, 2], r)
}

fn metrics(dir: &std::path::Path) -> Value {
    serde_json::from_str(&std::fs::read_to_string(dir.join("metrics.json")).unwrap()).unwrap()
}

#[test]
fn a_sweep_whose_runs_all_failed_is_not_measured() {
    let tmp = tempfile::tempdir().unwrap();
    write_sweep(tmp.path(), &cohort(8, |_, _| None), json!({}));
    let s = analyze_dir(tmp.path(), &AnalyzeOptions::default()).unwrap();
    assert_eq!(s.verdicts.overall.outcome, Outcome::NotMeasured);
    assert_eq!(s.verdicts.overall.failure_share, 1.0);
    let h = &s.headline;
    assert!(!h.to_lowercase().contains("holds"), "{h}");
    assert!(
        h.starts_with("Verdict: not measured — every run failed (48 of 48)."),
        "{h}"
    );
    // Two seeds in the plan: not "one seed", but why.
    assert!(!h.contains("one seed"), "{h}");
    assert!(
        h.contains("Baseline self-agreement: not measured — no case has two successful baseline runs (16 of 16 baseline runs failed)."),
        "{h}"
    );
    assert!(
        h.contains("Baseline accuracy: not measured (every baseline run failed)."),
        "{h}"
    );
    // metrics.json carries the same verdicts and lines.
    let m = metrics(tmp.path());
    assert_eq!(m["verdicts"]["overall"]["outcome"], "not_measured");
    let lines: Vec<&str> = m["headline"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l.as_str().unwrap())
        .collect();
    assert_eq!(lines.join("\n"), *h);
}

#[test]
fn a_model_wrong_at_baseline_does_not_hold() {
    // 40 cases, every answer `no` to a `yes` label: perfectly stable (ESI 1 everywhere) and
    // always wrong.
    let wrong = analyze(&cohort(40, |_, _| Some("no"))).unwrap();
    let v = clarity_analysis::verdicts::cohort(&wrong, &[]);
    assert!(v.walks.iter().all(|w| w.outcome == Outcome::Holds), "{v:?}");
    assert!(v.baseline_accuracy_below);
    assert_eq!(v.overall.outcome, Outcome::Breaks, "{}", v.overall.summary);
    assert!(
        v.overall
            .summary
            .contains("accuracy at the baseline 0.000 ["),
        "{}",
        v.overall.summary
    );
    let h = clarity_analysis::verdicts::headline(&wrong, &v, 0);
    assert!(
        h.iter()
            .any(|l| l.starts_with("Baseline accuracy 0.000 [")
                && l.contains("below the threshold 0.8")),
        "{h:?}"
    );
    // The same answers, right: it holds.
    let right = analyze(&cohort(40, |_, _| Some("yes"))).unwrap();
    let v = clarity_analysis::verdicts::cohort(&right, &[]);
    assert_eq!(v.overall.outcome, Outcome::Holds, "{}", v.overall.summary);
    assert!(!v.baseline_accuracy_below);
}

#[test]
fn the_interval_decides_not_the_point_estimate() {
    // 8 cases, 3 flip at blur 1 (ESI 0.625: below 0.8, interval straddling it); all flip at 2.
    let d = cohort(8, |i, cell| {
        Some(if cell == 1 && i < 3 || cell == 2 {
            "no"
        } else {
            "yes"
        })
    });
    let a = analyze(&d).unwrap();
    let c: Condition = "esi < 0.8".parse().unwrap();
    let v = judge(&a, &c, &[]).unwrap();
    let w = &v.walks[0];
    assert_eq!(w.outcome, Outcome::Breaks);
    assert_eq!(
        w.level,
        Some(2),
        "the straddling level 1 is not where it breaks"
    );
    // Only up to blur 1: inconclusive, with the cases that would decide it.
    let d1 = cohort(8, |i, cell| {
        Some(if cell >= 1 && i < 3 { "no" } else { "yes" })
    });
    let v1 = judge(&analyze(&d1).unwrap(), &c, &[]).unwrap();
    let w1 = &v1.walks[0];
    assert_eq!(w1.outcome, Outcome::Inconclusive, "{}", w1.summary);
    assert_eq!(w1.level, Some(1));
    let e = w1.estimate.unwrap();
    assert!(e.value < 0.8 && e.hi.unwrap() >= 0.8, "{e:?}");
    assert!(w1.more_cases.is_some_and(|m| m > 0), "{w1:?}");
    assert!(
        w1.summary.contains("more cases would decide it"),
        "{}",
        w1.summary
    );
    // A gate on another metric and on a named axis; an unknown axis is an error.
    let g: Condition = "blur.sigma:accuracy < 0.5".parse().unwrap();
    assert_eq!(judge(&a, &g, &[]).unwrap().overall.outcome, Outcome::Breaks);
    let bad: Condition = "noise:esi < 0.5".parse().unwrap();
    let e = judge(&a, &bad, &[]).unwrap_err();
    assert!(
        e.contains("no axis `noise` in this sweep (axes: blur.sigma)"),
        "{e}"
    );
}

#[test]
fn the_headline_quotes_the_refined_bracket() {
    let tmp = tempfile::tempdir().unwrap();
    let d = cohort(8, |i, cell| {
        Some(if cell >= 1 && i < 3 { "no" } else { "yes" })
    });
    write_sweep(tmp.path(), &d, json!({}));
    let refine = json!({"cliffs": [{
        "axis": "blur.sigma", "metric": "esi", "direction": "increasing", "threshold": 0.8,
        "ok": 0.5, "broken": 0.75, "located": [0.25, 1.0], "crossing": {"estimate": 0.6}
    }]});
    std::fs::write(tmp.path().join("refine.json"), refine.to_string()).unwrap();
    let s = analyze_dir(tmp.path(), &AnalyzeOptions::default()).unwrap();
    let w = &s.verdicts.walks[0];
    assert_eq!(w.refined.as_ref().unwrap().bracket, [0.5, 0.75]);
    assert!(
        s.headline.contains(
            "refined: the crossing is between 0.5 and 0.75, the data locate it in [0.25, 1]"
        ),
        "{}",
        s.headline
    );
    let m = metrics(tmp.path());
    assert!(
        m["headline"]
            .to_string()
            .contains("refined: the crossing is between 0.5 and 0.75")
    );
    assert_eq!(refined_from_json(&refine).len(), 1);
    // Gates come back in the summary, judged before anything is written.
    let opts = AnalyzeOptions {
        gates: vec![
            "esi < 0.8".parse().unwrap(),
            "accuracy < 0.2".parse().unwrap(),
        ],
        ..Default::default()
    };
    let s = analyze_dir(tmp.path(), &opts).unwrap();
    let outcomes: Vec<Outcome> = s.gates.iter().map(|g| g.overall.outcome).collect();
    assert_eq!(outcomes, [Outcome::Inconclusive, Outcome::Holds]);
}
