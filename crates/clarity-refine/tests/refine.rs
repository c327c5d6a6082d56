//! Bisection of cliffs whose position is known exactly: uniform gray images and a model that
//! says `bright` when the mean reaches 0.5. Brightness multiplies and rounds half up, so an image
//! of 60 (of 255) flips at factor 127.5 / 60 = 2.125 exactly, one of 50 at 2.55, and so on.

use std::path::Path;
use std::sync::Arc;

use async_trait::async_trait;
use clarity_adapters::{Adapter, AdapterError, AdapterIdentity, RunInput, Workload};
use clarity_core::Observation;
use clarity_engine::testing::{MeanAdapter, mean};
use clarity_engine::{ExecOptions, parse_config, prepare_with_adapter, run_sweep};
use clarity_image::{Channels, Image, encode_png};
use clarity_refine::{RefineSettings, Stop, midpoint, refine_sweep, stored_midpoint, write_report};

const TRUE_CLIFF: f64 = 2.125;

/// Answers `in` when the mean intensity is in `[lo, hi)`, else `out`: brightening a dark image
/// takes it into the band and out again, so its answer flips and flips back.
#[derive(Debug)]
struct BandAdapter {
    lo: f64,
    hi: f64,
}

#[async_trait]
impl Adapter for BandAdapter {
    fn identity(&self) -> AdapterIdentity {
        AdapterIdentity {
            adapter: "test-band".into(),
            model: "mean-band".into(),
            version: "1".into(),
            settings: serde_json::json!({ "lo": self.lo, "hi": self.hi }),
        }
    }
    fn workload(&self) -> Workload {
        Workload::Cpu
    }
    async fn run(&self, input: RunInput) -> Result<Observation, AdapterError> {
        let m = mean(&input.image);
        let inside = m >= self.lo && m < self.hi;
        Ok(Observation {
            answer: Some(if inside { "in" } else { "out" }.into()),
            confidence: Some(0.9),
            ..Default::default()
        })
    }
}

/// A cohort of uniform gray images `(value, side)` (the side only makes equal values distinct
/// cases), a brightness grid and a cliff threshold.
fn setup(
    root: &Path,
    images: &[(u8, u32)],
    grid: &str,
    threshold: f64,
    adapter: Arc<dyn Adapter>,
) -> clarity_engine::Prepared {
    let imgs = root.join("imgs");
    std::fs::create_dir_all(&imgs).unwrap();
    for &(v, side) in images {
        let n = (side * side) as usize;
        let img = Image::from_u8(side, side, Channels::Gray, vec![v; n]).unwrap();
        std::fs::write(imgs.join(format!("g{v}_{side}.png")), encode_png(&img)).unwrap();
    }
    let text = format!(
        r#"
seeds = [0]
[cohort]
kind = "folder"
path = "imgs"
[adapter]
kind = "builtin"
[normalization]
mode = "exact"
[axes]
"brightness.factor" = {grid}
[analysis]
bootstrap_iterations = 200
cliff_threshold = {threshold}
"#
    );
    let path = root.join("sweep.toml");
    std::fs::write(&path, &text).unwrap();
    let config = parse_config(&text, &path).unwrap();
    prepare_with_adapter(config, adapter).unwrap()
}

/// Three distinct images that all flip at 2.125: every case resample crosses at the same place.
const SAME: [(u8, u32); 3] = [(60, 8), (60, 6), (60, 4)];

async fn sweep_and_refine(
    prepared: &clarity_engine::Prepared,
    root: &Path,
    jobs: usize,
    settings: RefineSettings,
) -> (clarity_refine::RefineReport, usize, Vec<u8>) {
    let dir = root.join("out");
    let opts = ExecOptions {
        jobs,
        ..ExecOptions::default()
    };
    run_sweep(prepared, &dir, &opts).await.unwrap();
    let outcome = refine_sweep(prepared, &dir, &settings, &opts)
        .await
        .unwrap();
    let path = write_report(&dir, &outcome.report).unwrap();
    (
        outcome.report,
        outcome.executed,
        std::fs::read(path).unwrap(),
    )
}

fn mean_setup(
    root: &Path,
    images: &[(u8, u32)],
    grid: &str,
    threshold: f64,
) -> clarity_engine::Prepared {
    setup(
        root,
        images,
        grid,
        threshold,
        Arc::new(MeanAdapter::new(0.5)),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bisection_brackets_the_true_cliff_within_the_tolerance() {
    let tmp = tempfile::tempdir().unwrap();
    let settings = RefineSettings {
        tolerance: Some(0.01),
        max_rounds: 20,
    };
    let p = mean_setup(tmp.path(), &SAME, "[1.5, 2, 3, 4]", 0.9);
    let (report, executed, _) = sweep_and_refine(&p, tmp.path(), 2, settings).await;
    let esi: Vec<_> = report.cliffs.iter().filter(|c| c.metric == "esi").collect();
    assert_eq!(esi.len(), 1, "{report:#?}");
    let c = esi[0];
    assert_eq!((c.initial_ok, c.initial_broken), (2.0, 3.0));
    assert_eq!(c.stopped, Stop::Tolerance);
    assert!(c.width <= 0.01, "{c:#?}");
    assert!(c.ok < TRUE_CLIFF && TRUE_CLIFF <= c.broken, "{c:#?}");
    // 1 → 1/2 → … : seven halvings take width 1 to 1/128 ≤ 0.01.
    assert_eq!(c.rounds.len(), 7);
    assert_eq!(c.rounds[0].value, 2.5);
    assert_eq!(c.rounds[0].metric_value, Some(0.0));
    assert!(c.rounds[0].below);
    assert_eq!(c.rounds[1].value, 2.25);
    assert_eq!(c.rounds[2].value, TRUE_CLIFF);
    assert!(
        c.rounds[2].below,
        "2.125 is already broken (rounding half up)"
    );
    assert_eq!(c.rounds[3].value, 2.0625);
    assert_eq!(c.rounds[3].metric_value, Some(1.0));
    assert!(!c.rounds[3].below);
    // Identical cases: every resample crosses at the same point, a zero-width interval inside
    // the bracket, and what the data support is the bracket.
    assert_eq!(c.crossing.lo, c.crossing.hi, "{:?}", c.crossing);
    let x = c.crossing.estimate.unwrap();
    assert!(c.ok < x && x <= c.broken, "{:?}", c.crossing);
    assert_eq!(c.located, Some([c.ok, c.broken]));
    assert!(c.non_monotone.cases.is_empty() && c.non_monotone.cohort.is_empty());
    // The line: the sweep's levels on the walk (the identity 1, added to the grid as the
    // baseline, then 1.5 to 4) plus the 7 midpoints.
    assert_eq!(c.line.len(), 5 + 7);
    assert!(c.line.windows(2).all(|w| w[0].value < w[1].value));
    // 3 cases x (baseline + midpoint) per round.
    assert!(c.rounds.iter().all(|r| r.n == 3));
    assert_eq!(report.runs, 7 * 6);
    assert_eq!(executed, 7 * 6);
    let round = tmp.path().join("out").join(&c.rounds[0].dir);
    let records = clarity_engine::artifacts::SweepRecords::finished(&round).unwrap();
    assert_eq!(records.read_all().unwrap().len(), 6);
    assert!(
        report.summary_lines()[0].contains("between 2.117 and 2.125 after 7 rounds"),
        "{:?}",
        report.summary_lines()
    );
}

/// Midpoints that do not survive the artifacts' float formatting (`1.9 + (2.3 - 1.9) / 2` is
/// 2.0999999999999996, stored as 2.1): before the fix the round's value was looked up by float
/// equality in the stored plan, found nothing, and the cliff stopped as "undefined" with n = 0.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn midpoints_that_do_not_round_trip_are_measured() {
    let tmp = tempfile::tempdir().unwrap();
    assert_ne!(midpoint(1.9, 2.3, false), stored_midpoint(1.9, 2.3, false));
    let p = mean_setup(tmp.path(), &SAME, "[1.5, 1.9, 2.3, 4]", 0.9);
    let settings = RefineSettings {
        tolerance: None,
        max_rounds: 5,
    };
    let (report, _, _) = sweep_and_refine(&p, tmp.path(), 2, settings).await;
    let c = &report.cliffs[0];
    assert_eq!(c.stopped, Stop::Rounds, "{c:#?}");
    assert_eq!(c.rounds.len(), 5);
    for r in &c.rounds {
        assert!(r.metric_value.is_some() && r.n == 3, "{r:#?}");
        // The value recorded is the one the round's plan stores and ran.
        assert_eq!(r.value, clarity_core::json::round(r.value));
        let plan: serde_json::Value = serde_json::from_slice(
            &std::fs::read(tmp.path().join("out").join(&r.dir).join("plan.json")).unwrap(),
        )
        .unwrap();
        let stored: Vec<f64> = plan["axes"][0]["values"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_f64().unwrap())
            .collect();
        assert!(stored.contains(&r.value), "{stored:?} vs {}", r.value);
    }
    assert_eq!(c.rounds[0].value, 2.1);
    assert!(c.ok < TRUE_CLIFF && TRUE_CLIFF <= c.broken, "{c:#?}");
}

/// Cases that flip at different brightness (1.93 … 2.28): the crossing of the cohort ESI (0.5)
/// is uncertain by about the spread of those points, so bisection stops when the bracket is
/// narrower than that interval instead of spending every round on a precision the six cases
/// cannot support.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bisection_stops_at_the_crossings_own_uncertainty() {
    let tmp = tempfile::tempdir().unwrap();
    let images: Vec<(u8, u32)> = [56, 58, 60, 62, 64, 66].iter().map(|&v| (v, 8)).collect();
    let p = mean_setup(tmp.path(), &images, "[1.5, 2, 3, 4]", 0.5);
    let settings = RefineSettings {
        tolerance: Some(0.001),
        max_rounds: 20,
    };
    let (report, _, _) = sweep_and_refine(&p, tmp.path(), 2, settings).await;
    let c = &report.cliffs[0];
    assert_eq!(c.stopped, Stop::Uncertainty, "{c:#?}");
    assert!(c.rounds.len() < 10, "{} rounds", c.rounds.len());
    let (lo, hi) = (c.crossing.lo.unwrap(), c.crossing.hi.unwrap());
    assert!(
        c.width <= hi - lo,
        "bracket {} vs interval [{lo}, {hi}]",
        c.width
    );
    // The cohort's crossing: the fourth of the six cases flips at 127.5 / 60 = 2.125.
    assert!(lo < 2.125 && 2.06 < hi, "[{lo}, {hi}]");
    let [a, b] = c.located.unwrap();
    assert!(a <= lo && hi <= b && a <= c.ok && c.broken <= b);
    let line = &report.summary_lines()[0];
    assert!(line.contains("95% CI over cases ["), "{line}");
}

/// A case whose answer flips and flips back along the axis: bisection works on the cohort curve
/// and the report names the cases and the segment where the cohort climbs back.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn non_monotone_cases_are_reported() {
    let tmp = tempfile::tempdir().unwrap();
    // 60-images are in the band [0.45, 0.55) for factors ≈ 1.91-2.33, the 40-image ≈ 2.87-3.5.
    let images = [(60, 4), (60, 6), (60, 8), (60, 10), (40, 8)];
    let adapter = Arc::new(BandAdapter { lo: 0.45, hi: 0.55 });
    let p = setup(tmp.path(), &images, "[1, 2, 3, 4]", 0.9, adapter);
    let settings = RefineSettings {
        tolerance: None,
        max_rounds: 6,
    };
    let (report, _, _) = sweep_and_refine(&p, tmp.path(), 2, settings).await;
    let c = &report.cliffs[0];
    assert_eq!((c.initial_ok, c.initial_broken), (1.0, 2.0));
    assert!(c.ok < 1.91 && 1.9 < c.broken, "{c:#?}");
    let nm = &c.non_monotone;
    assert_eq!(nm.cohort, vec![[3.0, 4.0]], "{nm:#?}");
    let ids: Vec<&str> = nm.cases.iter().map(|x| x.case_id.as_str()).collect();
    assert_eq!(ids.len(), 5, "{ids:?}");
    let g40 = nm
        .cases
        .iter()
        .find(|x| x.case_id.starts_with("g40"))
        .unwrap();
    assert_eq!(g40.rises, vec![[3.0, 4.0]]);
    assert!(
        nm.cases
            .iter()
            .filter(|x| x.case_id.starts_with("g60"))
            .all(|x| x.rises == vec![[2.0, 3.0]])
    );
    assert!(report.summary_lines()[0].contains(
        "5 cases flip back; the cohort curve climbs back over the threshold between 3 and 4"
    ));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deterministic_across_jobs_and_resumed_without_model_calls() {
    let settings = RefineSettings {
        tolerance: None,
        max_rounds: 3,
    };
    let (a, b) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let pa = mean_setup(a.path(), &SAME, "[1.5, 2, 3, 4]", 0.9);
    let pb = mean_setup(b.path(), &SAME, "[1.5, 2, 3, 4]", 0.9);
    let (ra, _, bytes_a) = sweep_and_refine(&pa, a.path(), 1, settings).await;
    let (_, _, bytes_b) = sweep_and_refine(&pb, b.path(), 2, settings).await;
    assert_eq!(bytes_a, bytes_b, "refine.json differs between 1 and 2 jobs");
    assert_eq!(ra.cliffs[0].stopped, Stop::Rounds);
    assert_eq!(ra.cliffs[0].rounds.len(), 3);
    // Again in the same directory: every round is resumed from its journal.
    let (_, executed, bytes) = sweep_and_refine(&pa, a.path(), 2, settings).await;
    assert_eq!(executed, 0);
    assert_eq!(bytes, bytes_a);
}

#[test]
fn settings_are_validated() {
    let bad = [
        RefineSettings {
            tolerance: Some(0.0),
            max_rounds: 3,
        },
        RefineSettings {
            tolerance: Some(f64::NAN),
            max_rounds: 3,
        },
        RefineSettings {
            tolerance: None,
            max_rounds: 0,
        },
        RefineSettings {
            tolerance: None,
            max_rounds: 31,
        },
    ];
    for s in bad {
        let e = s.validate().unwrap_err().to_string();
        assert!(e.starts_with("invalid refinement settings"), "{e}");
    }
}

#[test]
fn midpoints() {
    assert_eq!(midpoint(2.0, 3.0, false), Some(2.5));
    assert_eq!(midpoint(3.0, 2.0, false), Some(2.5));
    assert_eq!(midpoint(50.0, 60.0, true), Some(55.0));
    assert_eq!(midpoint(50.0, 53.0, true), Some(51.0));
    assert_eq!(midpoint(50.0, 51.0, true), None, "adjacent integers");
    assert_eq!(
        midpoint(1.0, f64::from_bits(1.0f64.to_bits() + 1), false),
        None
    );
    // The quickstart's noise bracket: 0.025 + 0.0125 is 0.037500000000000006 in binary.
    assert_eq!(midpoint(0.025, 0.05, false), Some(0.037500000000000006));
    assert_eq!(stored_midpoint(0.025, 0.05, false), Some(0.0375));
    // Nothing the artifacts can store strictly inside.
    assert_eq!(stored_midpoint(1.0, 1.0 + 1e-10, false), None);
}

mod props {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        /// A midpoint always lies strictly inside the bracket, so each round keeps a
        /// sub-bracket: refinement never widens (never lowers the precision of) a cliff.
        #[test]
        fn midpoint_is_strictly_inside(a in -1e6f64..1e6, b in -1e6f64..1e6, integer: bool) {
            let (a, b) = if integer { (a.round(), b.round()) } else { (a, b) };
            if let Some(m) = midpoint(a, b, integer) {
                prop_assert!(m > a.min(b) && m < a.max(b));
                prop_assert!((m - a).abs() <= (b - a).abs() && (b - m).abs() <= (b - a).abs());
                if integer { prop_assert_eq!(m, m.round()); }
            } else if integer {
                prop_assert!((a - b).abs() <= 1.0);
            } else {
                prop_assert!((a - b).abs() <= f64::EPSILON * a.abs().max(b.abs()).max(1.0) * 2.0);
            }
            // The stored midpoint is inside too, and survives the artifacts' rounding.
            if let Some(m) = stored_midpoint(a, b, integer) {
                prop_assert!(m > a.min(b) && m < a.max(b));
                prop_assert_eq!(m, clarity_core::json::round(m));
            }
        }
    }
}
