//! Hand-computed metrics; the expected numbers are worked out in the comments.

use clarity_analysis::{Direction, analyze, refine_targets};
use clarity_core::Normalization;

use crate::fixture::*;

fn m(a: &clarity_analysis::Analysis, cell: usize, k: &str) -> Option<f64> {
    a.cells[cell].metrics[k].map(|e| e.value)
}

#[test]
fn per_cell_metrics_by_hand() {
    let a = analyze(&blur_sweep()).unwrap();
    // Baseline: agrees with itself; c1 yes/yes correct, c2 no/"No." folded to no, correct.
    assert_close(m(&a, 0, "esi"), Some(1.0));
    assert_close(m(&a, 0, "accuracy"), Some(1.0));
    assert_close(m(&a, 0, "drift"), Some(0.0));
    // conf .9 .8 .6 .7: mean .75, var = 2.3/4 - .5625 = .0125, CSI = 1 - .0125/.25 = .95.
    assert_close(m(&a, 0, "confidence"), Some(0.75));
    assert_close(m(&a, 0, "csi"), Some(0.95));

    // sigma 0.5: agreements ✓ ✓ ✓ ✗ → ESI .75; accuracy c1 ✓✓, c2 ✓✗ → .75.
    assert_close(m(&a, 1, "esi"), Some(0.75));
    assert_close(m(&a, 1, "flip_rate"), Some(0.25));
    assert_close(m(&a, 1, "accuracy"), Some(0.75));
    // drift: abc→abd 1/3, abc→abc 0, ""→"" 0, ""→"x" 1: mean 1/3.
    assert_close(m(&a, 1, "drift"), Some(1.0 / 3.0));
    // conf .7 .8 .5 (one missing): mean 2/3; var (0.49+0.64+0.25)/3 - 4/9 = 0.0155556.
    assert_close(m(&a, 1, "confidence"), Some(2.0 / 3.0));
    let var = 1.38 / 3.0 - 4.0 / 9.0;
    assert_close(m(&a, 1, "csi"), Some(1.0 - var / 0.25));
    // |Δconf|: .2, 0, .2 (c2 s1 has no confidence) → .133333.
    assert_close(m(&a, 1, "delta_confidence"), Some(0.4 / 3.0));
    // EDM: |.5-.3| = .2, |.4-.4| = 0 (c2 has no entropy) → .1; mean entropy (.5+.4)/2.
    assert_close(m(&a, 1, "edm"), Some(0.1));
    assert_close(m(&a, 1, "entropy"), Some(0.45));
    assert_eq!(
        (a.cells[1].n, a.cells[1].failures, a.cells[1].compared),
        (4, 0, 4)
    );

    // sigma 2: c1 s1 failed (excluded, counted). Compared 3, none agrees → ESI 0.
    let c2 = &a.cells[2];
    assert_eq!((c2.n, c2.ok, c2.failures, c2.compared), (4, 3, 1, 3));
    assert_close(m(&a, 2, "esi"), Some(0.0));
    assert_close(m(&a, 2, "accuracy"), Some(0.0));
    // drift: c1 s2 has no justification (skipped); ""→"xy" 1; ""→"" 0 → .5.
    assert_close(m(&a, 2, "drift"), Some(0.5));
    // conf .2 .4 .4: mean 1/3, var .12 - 1/9; |Δconf| .6 .2 .3.
    assert_close(m(&a, 2, "csi"), Some(1.0 - (0.12 - 1.0 / 9.0) / 0.25));
    assert_close(m(&a, 2, "delta_confidence"), Some(1.1 / 3.0));
    assert_close(m(&a, 2, "edm"), Some(0.6));

    // sigma 10: every answer "no": c1 flips twice, c2 keeps → .5; no justification or
    // confidence at all → undefined, not NaN.
    assert_close(m(&a, 3, "esi"), Some(0.5));
    assert_close(m(&a, 3, "accuracy"), Some(0.5));
    assert_eq!(m(&a, 3, "drift"), None);
    assert_eq!(m(&a, 3, "csi"), None);
    assert_eq!(m(&a, 3, "edm"), None);
    assert_eq!(a.runs.failed, 1);
    assert_eq!(a.runs.records, 16);

    // CIs bracket the point estimates; only an unbounded mean over a single case has none.
    for c in &a.cells {
        for (k, e) in &c.metrics {
            let Some(e) = e else { continue };
            let (Some(lo), Some(hi)) = (e.lo, e.hi) else {
                assert!(["edm", "entropy"].contains(&k.as_str()), "{k}: {e:?}");
                continue;
            };
            assert!(lo <= e.value + 1e-12 && e.value <= hi + 1e-12, "{e:?}");
        }
    }
}

#[test]
fn gradients_use_the_real_spacing() {
    let a = analyze(&blur_sweep()).unwrap();
    let g = a
        .gradients
        .iter()
        .find(|g| g.metric == "esi")
        .expect("esi gradient");
    // ESI curve 1, .75, 0, .5 on x = 0, .5, 2, 10.
    // x=0: (.75-1)/.5 = -.5.
    // x=.5: h1=.5, h2=1.5: -1.5/(.5*2)*1 + (1/.75)*.75 + (.5/(1.5*2))*0 = -1.5 + 1 = -.5.
    // x=2: h1=1.5, h2=8: -8/(1.5*9.5)*.75 + 0 + 1.5/(8*9.5)*.5 = -.4210526 + .0098684.
    // x=10: (.5-0)/8 = .0625.
    let want = [-0.5, -0.5, -0.75 * 8.0 / 14.25 + 0.5 * 1.5 / 76.0, 0.0625];
    for (got, w) in g.per_unit.iter().zip(want) {
        assert_close(*got, Some(w));
    }
    // Per severity step: -.25, (0-1)/2, (.5-.75)/2, .5.
    for (got, w) in g.per_step.iter().zip([-0.25, -0.5, -0.125, 0.5]) {
        assert_close(*got, Some(w));
    }
    // Drift is undefined at sigma 10: the gradients touching it are undefined too.
    let d = a.gradients.iter().find(|g| g.metric == "drift").unwrap();
    assert_eq!(d.per_unit[3], None);
    assert_eq!(d.per_unit[2], None);
    assert!(d.per_unit[1].is_some());
}

#[test]
fn cliffs_and_refinement_by_hand() {
    let a = analyze(&blur_sweep()).unwrap();
    let c = a
        .cliffs
        .iter()
        .find(|c| c.case_id.is_none() && c.metric == "esi")
        .unwrap();
    // Threshold .8: ESI 1, .75 → first below at level 1 (sigma .5), bracket [0, .5].
    assert_eq!(c.direction, Direction::Increasing);
    assert_eq!((c.level, c.previous_level), (Some(1), Some(0)));
    assert_close(c.metric_value, Some(0.75));
    assert_close(c.relative_position, Some(1.0 / 3.0));
    // Steepest: .75 → 0 between sigma .5 and 2: drop .75, .5 per unit.
    let s = c.steepest.as_ref().unwrap();
    assert_eq!((s.from_level, s.level), (1, 2));
    assert_close(Some(s.drop), Some(0.75));
    assert_close(s.drop_per_unit, Some(0.5));
    // Refinement: the midpoints of [0, .5] and [.5, 2].
    let esi_refine: Vec<_> = a.refine.iter().filter(|r| r.metric == "esi").collect();
    assert_eq!(esi_refine.len(), 2);
    assert_eq!(esi_refine[0].values, vec![0.25]);
    assert_eq!(esi_refine[1].values, vec![1.25]);
    // Three points split [0, .5] into quarters.
    let r3 = refine_targets(&a.axes, std::slice::from_ref(c), 3);
    assert_eq!(r3[0].values, vec![0.125, 0.25, 0.375]);

    // Per case: c2's ESI along sigma: 1, .5, 0, 1 → first below at level 1.
    let c2 = a
        .cliffs
        .iter()
        .find(|c| c.case_id.as_deref() == Some("c2") && c.metric == "esi")
        .unwrap();
    assert_eq!(c2.level, Some(1));
    assert_close(c2.metric_value, Some(0.5));
    // c1: 1, 1, 0, 0 → level 2.
    let c1 = a
        .cliffs
        .iter()
        .find(|c| c.case_id.as_deref() == Some("c1") && c.metric == "esi")
        .unwrap();
    assert_eq!(c1.level, Some(2));
}

#[test]
fn self_agreement_monte_carlo_and_classes() {
    let a = analyze(&blur_sweep()).unwrap();
    let sa = &a.self_agreement;
    assert_close(sa.all_seeds.map(|e| e.value), Some(1.0));
    assert_close(sa.pairwise, Some(1.0));
    assert!(!sa.flagged);
    assert_eq!(sa.cases, 2);

    // Sigma .5: c1 {yes: 2} → seed entropy 0; c2 {no: 1, yes: 1} → ln 2. The pooled answers
    // {yes: 3, no: 1} have entropy H(3/4, 1/4). Majorities: c1 yes (= base); c2 is a 1–1 tie:
    // no majority (not "no" by alphabetical order), counted as a tie and left out.
    let mc = &a.montecarlo[1];
    let h = -(0.75f64 * 0.75f64.ln() + 0.25 * 0.25f64.ln());
    assert_close(mc.answer_entropy, Some(h));
    assert_close(mc.seed_entropy, Some(std::f64::consts::LN_2 / 2.0));
    assert_close(mc.seed_agreement, Some(0.75));
    assert_close(mc.majority_agreement, Some(1.0));
    assert_eq!((mc.majority_cases, mc.ties), (1, 1));
    assert_eq!(mc.answer_distribution["yes"], 3);
    assert_eq!(mc.answer_distribution["no"], 1);
    assert_close(mc.confidence_mean, Some(2.0 / 3.0));
    assert_close(mc.confidence_var, Some(1.38 / 3.0 - 4.0 / 9.0));
    // Sigma 10: everyone answers no: c1 majority no ≠ yes, c2 no = no.
    assert_close(a.montecarlo[3].majority_agreement, Some(0.5));
    assert_eq!(
        (a.montecarlo[3].majority_cases, a.montecarlo[3].ties),
        (2, 0)
    );
    assert_close(a.montecarlo[3].answer_entropy, Some(0.0));
    assert_close(a.montecarlo[3].seed_entropy, Some(0.0));

    // Per class: "no" is c2 (ESI 1, .5, 0, 1), "yes" is c1 (1, 1, 0, 0).
    let no = a.classes.iter().find(|c| c.label == "no").unwrap();
    let yes = a.classes.iter().find(|c| c.label == "yes").unwrap();
    assert_close(no.cells[1].esi.map(|e| e.value), Some(0.5));
    assert_close(yes.cells[1].esi.map(|e| e.value), Some(1.0));
    assert_close(yes.cells[1].accuracy.map(|e| e.value), Some(1.0));
    // "no" breaks first (sigma .5), "yes" later (sigma 2).
    assert_eq!(no.first_break.as_ref().unwrap().level, Some(1));
    assert_eq!(yes.first_break.as_ref().unwrap().level, Some(2));
}

#[test]
fn self_disagreement_is_flagged() {
    let axes = vec![num_axis("noise.sigma", &[0.0, 1.0], 0.0)];
    let r = vec![
        ok("c1", 0, 1, "a", None, None, None),
        ok("c1", 0, 2, "b", None, None, None),
        ok("c1", 0, 3, "a", None, None, None),
        ok("c2", 0, 1, "a", None, None, None),
        ok("c2", 0, 2, "a", None, None, None),
        ok("c2", 0, 3, "a", None, None, None),
    ];
    let a = analyze(&sweep(
        axes,
        vec![case("c1", None), case("c2", None)],
        vec![1, 2, 3],
        r,
    ))
    .unwrap();
    let sa = &a.self_agreement;
    // c1 disagrees, c2 agrees → .5; pairwise c1: 1 of 3 pairs, c2: 3 of 3 → (1/3 + 1)/2.
    assert_close(sa.all_seeds.map(|e| e.value), Some(0.5));
    assert_close(sa.pairwise, Some(2.0 / 3.0));
    assert!(sa.flagged);
    assert_eq!(sa.disagreeing_cases, vec!["c1".to_string()]);
    // No labels: accuracy undefined, no classes.
    assert_eq!(m(&a, 1, "accuracy"), None);
    assert!(a.classes.is_empty());
}

#[test]
fn failed_baseline_excludes_and_counts() {
    let axes = vec![num_axis("blur.sigma", &[0.0, 1.0], 0.0)];
    let r = vec![
        failed("c1", 0, 7),
        ok("c1", 1, 7, "yes", Some("j"), Some(0.5), None),
        ok("c2", 0, 7, "yes", Some(""), None, None),
        ok("c2", 1, 7, "yes", Some(""), None, None),
    ];
    let a = analyze(&sweep(
        axes,
        vec![case("c1", Some("yes")), case("c2", None)],
        vec![7],
        r,
    ))
    .unwrap();
    let c = &a.cells[1];
    assert_eq!((c.n, c.ok, c.excluded, c.compared), (2, 2, 1, 1));
    assert_close(m(&a, 1, "esi"), Some(1.0));
    // Empty against empty justification: drift 0.
    assert_close(m(&a, 1, "drift"), Some(0.0));
    // Accuracy does not need the baseline: c1 answered yes = label.
    assert_close(m(&a, 1, "accuracy"), Some(1.0));
    assert_eq!(a.cells[0].failures, 1);
    // One seed: self-agreement undefined and not flagged, no Monte Carlo.
    assert_eq!(a.self_agreement.all_seeds, None);
    assert!(!a.self_agreement.flagged);
    assert!(a.montecarlo.is_empty());
}

#[test]
fn two_axes_marginals_and_slices() {
    let axes = vec![
        num_axis("a", &[0.0, 1.0], 0.0),
        num_axis("b", &[0.0, 1.0], 0.0),
    ];
    // Cells row-major: (0,0) base, (0,1), (1,0), (1,1); the answer depends on axis a only.
    let r = vec![
        ok("c", 0, 1, "x", None, None, None),
        ok("c", 1, 1, "x", None, None, None),
        ok("c", 2, 1, "y", None, None, None),
        ok("c", 3, 1, "y", None, None, None),
    ];
    let a = analyze(&sweep(axes, vec![case("c", None)], vec![1], r)).unwrap();
    let esi = |ax: usize| -> Vec<Option<f64>> {
        a.surface.marginals[ax].metrics["esi"]
            .iter()
            .map(|e| e.map(|e| e.value))
            .collect()
    };
    assert_eq!(esi(0), vec![Some(1.0), Some(0.0)]);
    assert_eq!(esi(1), vec![Some(0.5), Some(0.5)]);
    assert_eq!(a.surface.shape, vec![2, 2]);
    assert_eq!(
        a.surface.grid["esi"],
        vec![Some(1.0), Some(1.0), Some(0.0), Some(0.0)]
    );
    let s = a.surface.slices.iter().find(|s| s.metric == "esi").unwrap();
    assert_eq!((s.x_axis.as_str(), s.y_axis.as_str()), ("a", "b"));
    assert_eq!(
        s.values,
        vec![vec![Some(1.0), Some(0.0)], vec![Some(1.0), Some(0.0)]]
    );
    // Axis a breaks at its second level; b never.
    let ca = a
        .cliffs
        .iter()
        .find(|c| c.axis == "a" && c.metric == "esi" && c.case_id.is_none())
        .unwrap();
    assert_eq!(ca.level, Some(1));
    let cb = a
        .cliffs
        .iter()
        .find(|c| c.axis == "b" && c.metric == "esi" && c.case_id.is_none())
        .unwrap();
    // Cliffs follow each axis's line through the baseline (a at 0): b alone never changes the
    // answer, although b's marginal is 0.5 < 0.8 at every level (it pools over a's flips).
    assert_eq!(cb.level, None);
    assert_eq!(ca.previous_level, Some(0));
}

#[test]
fn categorical_axis_and_single_value() {
    let axes = vec![
        level_axis("filter", &["none", "sharp", "soft"], "none"),
        num_axis("gamma", &[1.0], 1.0),
    ];
    let r = vec![
        ok("c", 0, 1, "x", None, None, None),
        ok("c", 1, 1, "x", None, None, None),
        ok("c", 2, 1, "z", None, None, None),
    ];
    let a = analyze(&sweep(axes, vec![case("c", None)], vec![1], r)).unwrap();
    // No gradients on the categorical axis; on the one-value axis every gradient is undefined.
    assert!(a.gradients.iter().all(|g| g.axis == "gamma"));
    assert!(a.gradients.iter().all(|g| g.per_unit == vec![None]));
    // The categorical cliff walks in listed order from the identity level.
    let c = a
        .cliffs
        .iter()
        .find(|c| c.axis == "filter" && c.metric == "esi" && c.case_id.is_none())
        .unwrap();
    assert_eq!(c.level, Some(2));
    assert_eq!(c.steepest.as_ref().unwrap().drop_per_unit, None);
    // A one-value axis has nowhere to walk.
    assert!(!a.cliffs.iter().any(|c| c.axis == "gamma"));
    assert!(refine_targets(&a.axes, &a.cliffs, 1).is_empty());
}

#[test]
fn choices_and_regex_normalisation_drive_esi() {
    let axes = vec![num_axis("blur.sigma", &[0.0, 1.0], 0.0)];
    let r = vec![
        ok("c", 0, 1, "I think there is a nodule.", None, None, None),
        ok("c", 1, 1, "Nodule present, left lobe", None, None, None),
    ];
    let mut s = sweep(axes, vec![case("c", Some("nodule"))], vec![1], r);
    s.normalization = Normalization::Choices {
        choices: vec!["normal".into(), "nodule".into()],
    };
    let a = analyze(&s).unwrap();
    assert_close(m(&a, 1, "esi"), Some(1.0));
    assert_close(m(&a, 1, "accuracy"), Some(1.0));
    s.normalization = Normalization::Exact;
    let a = analyze(&s).unwrap();
    assert_close(m(&a, 1, "esi"), Some(0.0));
    s.normalization = Normalization::Regex {
        pattern: "(?i)(nodule|normal)".into(),
    };
    let a = analyze(&s).unwrap();
    // "nodule" vs "Nodule": the capture keeps case → differ.
    assert_close(m(&a, 1, "esi"), Some(0.0));
}

#[test]
fn bad_records_are_errors() {
    let axes = vec![num_axis("blur.sigma", &[0.0, 1.0], 0.0)];
    let mut s = sweep(
        axes,
        vec![case("c", None)],
        vec![1],
        vec![
            ok("c", 0, 1, "x", None, None, None),
            ok("zz", 1, 1, "x", None, None, None),
        ],
    );
    let e = analyze(&s).unwrap_err().to_string();
    assert!(
        e.contains("records[1]: case `zz` is not in the plan's cases"),
        "{e}"
    );
    s.records = vec![
        ok("c", 1, 1, "x", None, None, None),
        ok("c", 1, 1, "y", None, None, None),
    ];
    let e = analyze(&s).unwrap_err().to_string();
    assert!(e.contains("duplicate run"), "{e}");
    s.records = vec![ok("c", 9, 1, "x", None, None, None)];
    let e = analyze(&s).unwrap_err().to_string();
    assert!(e.contains("cell 9 is out of range"), "{e}");
    s.records = vec![ok("c", 0, 5, "x", None, None, None)];
    let e = analyze(&s).unwrap_err().to_string();
    assert!(e.contains("seed 5 is not in the plan's seeds"), "{e}");
    s.records.clear();
    s.cells[0].is_baseline = false;
    let e = analyze(&s).unwrap_err().to_string();
    assert!(e.contains("no cell has is_baseline"), "{e}");
}
