//! Invariants over random small sweeps.

use clarity_analysis::{Cliff, Direction, SourceKind, analyze, io, refine_targets};
use clarity_core::{Normalization, RunRecord};
use proptest::prelude::*;

use crate::fixture::*;

/// (answer, justification, confidence, entropy).
type RunSpec = (u8, Option<String>, Option<f64>, Option<f64>);

#[derive(Debug, Clone)]
struct Spec {
    levels: Vec<usize>,
    cases: usize,
    seeds: usize,
    /// Per run: None = failed, else (answer, justification, confidence, entropy).
    runs: Vec<Option<RunSpec>>,
    labels: Vec<Option<u8>>,
    perm: Vec<usize>,
}

fn spec() -> impl Strategy<Value = Spec> {
    (prop::collection::vec(1usize..4, 1..3), 1usize..4, 1usize..4)
        .prop_flat_map(|(levels, cases, seeds)| {
            let n = levels.iter().product::<usize>() * cases * seeds;
            let run = prop::option::weighted(
                0.9,
                (
                    0u8..3,
                    prop::option::of("[ab ]{0,6}"),
                    prop::option::of(0.0f64..=1.0),
                    prop::option::of(0.0f64..2.0),
                ),
            );
            (
                Just(levels),
                Just(cases),
                Just(seeds),
                prop::collection::vec(run, n),
                prop::collection::vec(prop::option::of(0u8..3), cases),
                Just((0..n).collect::<Vec<_>>()).prop_shuffle(),
            )
        })
        .prop_map(|(levels, cases, seeds, runs, labels, perm)| Spec {
            levels,
            cases,
            seeds,
            runs,
            labels,
            perm,
        })
}

fn build(s: &Spec) -> clarity_analysis::SweepData {
    let axes: Vec<_> = s
        .levels
        .iter()
        .enumerate()
        .map(|(i, &n)| {
            let values: Vec<f64> = (0..n).map(|k| (k * k) as f64 * 0.5).collect();
            num_axis(&format!("ax{i}"), &values, 0.0)
        })
        .collect();
    let cells = grid(&axes).len();
    let cases: Vec<_> = (0..s.cases)
        .map(|c| {
            case(
                &format!("c{c}"),
                s.labels[c].map(|l| ["a", "b", "c"][l as usize]),
            )
        })
        .collect();
    let seeds: Vec<u64> = (0..s.seeds as u64).map(|x| x + 10).collect();
    let mut records = Vec::new();
    let mut i = 0;
    for cell in 0..cells {
        for c in 0..s.cases {
            for seed in &seeds {
                let id = format!("c{c}");
                records.push(match &s.runs[i] {
                    None => failed(&id, cell, *seed),
                    Some((a, j, conf, ent)) => ok(
                        &id,
                        cell,
                        *seed,
                        ["a", "b", "A."][*a as usize],
                        j.as_deref(),
                        *conf,
                        *ent,
                    ),
                });
                i += 1;
            }
        }
    }
    let mut d = sweep(axes, cases, seeds, records);
    d.settings.bootstrap_iterations = 50;
    d.normalization = Normalization::Folded;
    d
}

fn render(d: &clarity_analysis::SweepData) -> Vec<(String, Vec<u8>)> {
    let a = analyze(d).unwrap();
    io::render(&a, &d.source, &d.normalization).unwrap()
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(48))]

    #[test]
    fn metrics_in_range_and_cis_hold_the_estimate(s in spec()) {
        let d = build(&s);
        let a = analyze(&d).unwrap();
        let unit = ["esi", "flip_rate", "accuracy", "drift", "csi", "confidence", "delta_confidence"];
        for c in &a.cells {
            for (k, e) in &c.metrics {
                let Some(e) = e else { continue };
                prop_assert!(e.value.is_finite());
                if unit.contains(&k.as_str()) {
                    prop_assert!((0.0..=1.0).contains(&e.value), "{k} = {}", e.value);
                } else {
                    prop_assert!(e.value >= 0.0);
                }
                let (Some(lo), Some(hi)) = (e.lo, e.hi) else {
                    // An unbounded mean over a single case has no interval.
                    prop_assert!(["edm", "entropy"].contains(&k.as_str()), "{k}: {e:?}");
                    continue;
                };
                prop_assert!(lo <= e.value + 1e-9 && e.value <= hi + 1e-9, "{k}: {lo} {} {hi}", e.value);
            }
            prop_assert_eq!(c.n, c.ok + c.failures);
            prop_assert_eq!(c.ok, c.compared + c.excluded);
        }
        // The baseline agrees with itself wherever it ran.
        let b = &a.cells[a.baseline_cell];
        if let Some(e) = b.metrics["esi"] { prop_assert_eq!(e.value, 1.0); }
        for mc in &a.montecarlo {
            if let Some(h) = mc.answer_entropy { prop_assert!(h >= 0.0 && h <= (3f64).ln() + 1e-12); }
            if let Some(m) = mc.majority_agreement { prop_assert!((0.0..=1.0).contains(&m)); }
        }
        if let Some(e) = a.self_agreement.all_seeds {
            prop_assert!((0.0..=1.0).contains(&e.value));
            prop_assert!(e.lo.unwrap() <= e.value && e.value <= e.hi.unwrap());
        }
    }

    #[test]
    fn record_order_does_not_change_a_byte(s in spec()) {
        let d = build(&s);
        let mut p = d.clone();
        p.records = s.perm.iter().map(|&i| d.records[i].clone()).collect::<Vec<RunRecord>>();
        prop_assert_eq!(render(&d), render(&p));
    }

    #[test]
    fn refinement_never_lowers_precision(
        mut xs in prop::collection::vec(-1e6f64..1e6, 2..8),
        pick in 0usize..100,
        points in 1usize..4,
    ) {
        xs.sort_by(f64::total_cmp);
        xs.dedup();
        prop_assume!(xs.len() >= 2);
        let axis = num_axis("x", &xs, xs[0]);
        let l = 1 + pick % (xs.len() - 1);
        let cliff = Cliff {
            axis: "x".into(), axis_index: 0, metric: "esi".into(), case_id: None, class: None,
            direction: Direction::Increasing, start_level: 0, threshold: 0.8,
            level: Some(l), value: None, metric_value: Some(0.1), previous_level: Some(l - 1),
            steepest: None, relative_position: None, crossing: None, severity: None,
            interval: None, recovers_at: None, case_flips: None,
        };
        let reqs = refine_targets(std::slice::from_ref(&axis), &[cliff], points);
        let (lower, upper) = (xs[l - 1], xs[l]);
        for r in &reqs {
            prop_assert_eq!((r.lower, r.upper), (lower, upper));
            // New points lie strictly inside, ascending, so the bracket around the cliff after
            // the extra runs is never wider than before, and at most half as wide.
            let mut grid = vec![lower];
            grid.extend(&r.values);
            grid.push(upper);
            for w in grid.windows(2) {
                prop_assert!(w[0] < w[1]);
                prop_assert!(w[1] - w[0] <= (upper - lower) / 2.0 * (1.0 + 1e-9));
            }
        }
        // Adjacent floats leave nothing to refine; everything else does.
        prop_assert_eq!(reqs.is_empty(), lower.next_up() >= upper);
    }
}

#[test]
fn source_kind_serialises() {
    assert_eq!(serde_json::to_string(&SourceKind::R2l).unwrap(), "\"r2l\"");
}

/// Plain dynamic-programming Levenshtein over chars, to check the bit-parallel one.
fn dp(a: &str, b: &str) -> usize {
    let a: Vec<char> = a.chars().collect();
    let b: Vec<char> = b.chars().collect();
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    for i in 1..=a.len() {
        let mut cur = vec![i; b.len() + 1];
        for j in 1..=b.len() {
            let sub = prev[j - 1] + usize::from(a[i - 1] != b[j - 1]);
            cur[j] = sub.min(prev[j] + 1).min(cur[j - 1] + 1);
        }
        prev = cur;
    }
    prev[b.len()]
}

/// `justification_drift(a, b)` and the analysis' drift of run text `b` against baseline text
/// `a` (its cached baseline comparator) both equal the plain DP's.
fn check_drift(a: &str, b: &str) -> Result<(), TestCaseError> {
    let m = a.chars().count().max(b.chars().count());
    let want = if m == 0 {
        0.0
    } else {
        dp(a, b) as f64 / m as f64
    };
    prop_assert_eq!(clarity_analysis::justification_drift(a, b), want);
    let d = sweep(
        vec![num_axis("x", &[0.0, 1.0], 0.0)],
        vec![case("c", None)],
        vec![1],
        vec![
            ok("c", 0, 1, "y", Some(a), None, None),
            ok("c", 1, 1, "y", Some(b), None, None),
        ],
    );
    let an = analyze(&d).unwrap();
    prop_assert_eq!(an.cells[1].metrics["drift"].unwrap().value, want);
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    #[test]
    fn drift_matches_plain_levenshtein(a in "[abé ]{0,150}", b in "[abé ]{0,150}") {
        check_drift(&a, &b)?;
    }

    /// Long ASCII texts (the byte path, several 64-bit blocks), and ASCII against non-ASCII
    /// either way round.
    #[test]
    fn ascii_and_mixed_drift_matches_plain_levenshtein(
        a in "[abc ]{0,300}", b in "[abc ]{0,300}", accent in 0u8..3,
    ) {
        let (a, b) = match accent {
            1 => (a, format!("{b}é")),
            2 => (format!("é{a}"), b),
            _ => (a, b),
        };
        check_drift(&a, &b)?;
    }
}
