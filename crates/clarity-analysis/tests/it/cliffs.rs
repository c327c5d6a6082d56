//! Cliffs with intervals, non-monotone lines, and a ranking that does not depend on the grid.

use clarity_analysis::{AnalyzeOptions, RankScale, SweepData, analyze, analyze_dir, rank_axes};
use clarity_core::Axis;

use crate::fixture::*;

/// Per case (8 cases, 2 seeds that agree): the blur sigma and noise sigma from which the case
/// answers "no" instead of its baseline "yes".
const BLUR_FLIP: [f64; 8] = [2.0, 2.0, 2.0, 2.0, 2.0, 2.0, 4.0, 8.0];
const NOISE_FLIP: [f64; 8] = [0.05, 0.05, 0.05, 0.1, 0.1, 0.2, 0.2, 0.2];

/// A blur × noise sweep (kernels of the registry, so both axes have severity presets) whose
/// answers depend only on each case's flip points, so any grid gives the same data at a shared
/// value.
fn two_axis(blur: &[f64], noise: &[f64]) -> SweepData {
    let axes = vec![
        num_axis("gaussian_blur.sigma", blur, 0.0),
        num_axis("gaussian_noise.sigma", noise, 0.0),
    ];
    let cells = grid(&axes);
    let mut records = Vec::new();
    for cell in &cells {
        let (b, n) = (blur[cell.coords[0]], noise[cell.coords[1]]);
        for i in 0..8 {
            let flips = b >= BLUR_FLIP[i] || n >= NOISE_FLIP[i];
            for seed in [0, 1] {
                let answer = if flips { "no" } else { "yes" };
                records.push(ok(
                    &format!("c{i}"),
                    cell.index,
                    seed,
                    answer,
                    None,
                    None,
                    None,
                ));
            }
        }
    }
    let cases = (0..8)
        .map(|i| case(&format!("c{i}"), Some("yes")))
        .collect();
    sweep(axes, cases, vec![0, 1], records)
}

/// `(axis, severity)` of each ranked ESI crossing, in order.
fn esi_order(d: &SweepData) -> Vec<(String, f64)> {
    let a = analyze(d).unwrap();
    let r = &a.rankings["esi"];
    assert_eq!(r.scale, RankScale::SeverityPresets, "{r:?}");
    r.entries
        .iter()
        .map(|e| (e.axis.clone(), e.severity.unwrap()))
        .collect()
}

#[test]
fn ranking_does_not_depend_on_levels_away_from_the_crossings() {
    // ESI along noise: 1, 5/8 (0.05), 3/8 (0.1): crossing between 0 and 0.05. Along blur: 1, 1,
    // 1, 2/8 (2), 1/8 (4): crossing between 1 and 2.
    let full = esi_order(&two_axis(&[0.0, 0.5, 1.0, 2.0, 4.0], &[0.0, 0.05, 0.1]));
    assert_eq!(full[0].0, "gaussian_noise.sigma");
    assert_eq!(full[1].0, "gaussian_blur.sigma");
    // Noise crosses at 0.05 · 0.2/0.375 = 0.02667, severity 0.02667/0.08 = 1/3; blur at
    // 1 + 0.2/0.75 = 1.2667, severity 1.2667 (presets 1, 2, 3, 4, 6).
    assert!((full[0].1 - 1.0 / 3.0).abs() < 1e-9, "{full:?}");
    assert!((full[1].1 - (1.0 + 0.2 / 0.75)).abs() < 1e-9, "{full:?}");
    // Drop levels that are not adjacent to a crossing: noise 0.1 (this flipped the old,
    // grid-position ranking to blur), blur 0.5 and 4.
    for (blur, noise) in [
        (&[0.0, 0.5, 1.0, 2.0, 4.0][..], &[0.0, 0.05][..]),
        (&[0.0, 1.0, 2.0, 4.0][..], &[0.0, 0.05, 0.1][..]),
        (&[0.0, 1.0, 2.0][..], &[0.0, 0.05][..]),
    ] {
        assert_eq!(
            esi_order(&two_axis(blur, noise)),
            full,
            "{blur:?} × {noise:?}"
        );
    }
}

#[test]
fn headline_does_not_depend_on_levels_away_from_the_crossings() {
    let headline = |blur: &[f64], noise: &[f64]| {
        let tmp = tempfile::tempdir().unwrap();
        crate::write::write_sweep(
            tmp.path(),
            &two_axis(blur, noise),
            serde_json::json!({"bootstrap_iterations": 200}),
        );
        analyze_dir(tmp.path(), &AnalyzeOptions::default())
            .unwrap()
            .headline
    };
    let full = headline(&[0.0, 0.5, 1.0, 2.0, 4.0], &[0.0, 0.05, 0.1]);
    assert!(
        full.starts_with(
            "Verdict: breaks — along `gaussian_noise.sigma` first (severity 0.3333, its crossing interval overlaps the next), then `gaussian_blur.sigma` (severity 1.267); ranked by"
        ),
        "{full}"
    );
    // Blur levels 0.5 and 4 are away from both crossings: nothing changes.
    assert_eq!(headline(&[0.0, 1.0, 2.0], &[0.0, 0.05, 0.1]), full);
    // Without noise 0.1 the noise walk has no level whose interval is below 0.8 (0.05 has ESI
    // 0.625 with an interval over 0.8): that walk becomes inconclusive — the data say less —
    // but blur never becomes "first" on grid position.
    let fewer = headline(&[0.0, 0.5, 1.0, 2.0, 4.0], &[0.0, 0.05]);
    assert!(!fewer.contains("first"), "{fewer}");
    assert!(
        fewer.contains("`gaussian_noise.sigma`: inconclusive"),
        "{fewer}"
    );
}

#[test]
fn crossing_has_a_case_bootstrap_interval() {
    let a = analyze(&two_axis(&[0.0, 0.5, 1.0, 2.0, 4.0], &[0.0, 0.05, 0.1])).unwrap();
    let blur = a
        .cliffs
        .iter()
        .find(|c| c.case_id.is_none() && c.metric == "esi" && c.axis_index == 0)
        .unwrap();
    let i = blur.interval.as_ref().unwrap();
    assert_eq!(i.resamples, 200);
    // Every resample crosses between 1 and 2 (ESI at 1 is 1 in every resample; at 2 at most
    // 2/8 unless the two late cases dominate the draw).
    let (near, far) = (i.near.unwrap(), i.far.unwrap());
    assert!(1.0 < near && near <= blur.crossing.unwrap(), "{i:?}");
    assert!(blur.crossing.unwrap() <= far && far <= 4.0, "{i:?}");
    assert!(i.severity_near.is_some() && i.severity_far.is_some());
    // Deterministic from the analysis seed; another seed moves the resamples.
    let again = analyze(&two_axis(&[0.0, 0.5, 1.0, 2.0, 4.0], &[0.0, 0.05, 0.1])).unwrap();
    assert_eq!(again.cliffs, a.cliffs);
}

#[test]
fn resamples_that_never_cross_leave_the_far_end_open() {
    // Only case c0 flips, along noise at 0.05: ESI 7/8 ≥ 0.8, no cohort crossing, but resamples
    // with two or more copies of c0 cross.
    let axes = vec![num_axis("gaussian_noise.sigma", &[0.0, 0.05, 0.1], 0.0)];
    let cells = grid(&axes);
    let mut records = Vec::new();
    for cell in &cells {
        for i in 0..8 {
            let answer = if i == 0 && cell.coords[0] > 0 {
                "no"
            } else {
                "yes"
            };
            records.push(ok(
                &format!("c{i}"),
                cell.index,
                0,
                answer,
                None,
                None,
                None,
            ));
        }
    }
    let cases = (0..8).map(|i| case(&format!("c{i}"), None)).collect();
    let a = analyze(&sweep(axes, cases, vec![0], records)).unwrap();
    let c = a
        .cliffs
        .iter()
        .find(|c| c.case_id.is_none() && c.metric == "esi")
        .unwrap();
    assert_eq!(c.level, None);
    let i = c.interval.as_ref().unwrap();
    assert!(i.never_cross > 0 && i.never_cross < i.resamples, "{i:?}");
    assert_eq!(i.far, None, "{i:?}");
}

#[test]
fn non_monotone_lines_are_marked() {
    // Every case flips at noise 0.05 and answers as at baseline again from 0.1: the cohort line
    // falls below and recovers; per case, 8 flip and 8 flip back.
    let axes = vec![num_axis(
        "gaussian_noise.sigma",
        &[0.0, 0.05, 0.1, 0.2],
        0.0,
    )];
    let cells = grid(&axes);
    let mut records = Vec::new();
    for cell in &cells {
        for i in 0..8 {
            let answer = if cell.coords[0] == 1 { "no" } else { "yes" };
            records.push(ok(
                &format!("c{i}"),
                cell.index,
                0,
                answer,
                None,
                None,
                None,
            ));
        }
    }
    let cases = (0..8).map(|i| case(&format!("c{i}"), None)).collect();
    let a = analyze(&sweep(axes, cases, vec![0], records)).unwrap();
    let c = a
        .cliffs
        .iter()
        .find(|c| c.case_id.is_none() && c.metric == "esi")
        .unwrap();
    assert_eq!((c.level, c.recovers_at), (Some(1), Some(2)));
    let f = c.case_flips.unwrap();
    assert_eq!((f.cases, f.cross, f.flip_back), (8, 8, 8));
    assert_eq!(c.interval.as_ref().unwrap().non_monotone, 200);
}

#[test]
fn axes_without_a_shared_scale_are_not_ranked() {
    // "blur" is no kernel of the registry: its crossing has no severity position, so it cannot be
    // compared with noise's.
    let mut d = two_axis(&[0.0, 0.5, 1.0, 2.0, 4.0], &[0.0, 0.05, 0.1]);
    d.axes[0] = Axis {
        perturbation: "blur".into(),
        ..d.axes[0].clone()
    };
    let a = analyze(&d).unwrap();
    let r = &a.rankings["esi"];
    assert_eq!(r.scale, RankScale::NotRanked);
    assert!(r.first().is_none() && r.entries.iter().all(|e| e.rank.is_none()));
    assert!(r.reason.as_deref().unwrap().contains("gaussian_blur.sigma"));
    // The pure function says the same on the cliffs alone.
    let esi: Vec<_> = a
        .cliffs
        .iter()
        .filter(|c| c.case_id.is_none() && c.metric == "esi")
        .cloned()
        .collect();
    assert_eq!(&rank_axes(&esi, &a.axes), r);
}
