//! Bisection of a cliff whose position is known exactly: uniform gray images of 40, 50 and 60
//! (of 255) and a model that says `bright` when the mean reaches 0.5. Brightness multiplies
//! and rounds half up, so the 60 image flips first, at factor 127.5 / 60 = 2.125 exactly; with
//! a cliff threshold of 0.9 the ESI cliff is the crossing of that one case.

use std::path::Path;
use std::sync::Arc;

use clarity_engine::testing::MeanAdapter;
use clarity_engine::{ExecOptions, parse_config, prepare_with_adapter, run_sweep};
use clarity_image::{Channels, Image, encode_png};
use clarity_refine::{RefineSettings, Stop, midpoint, refine_sweep, write_report};

const TRUE_CLIFF: f64 = 2.125;

fn setup(root: &Path) -> clarity_engine::Prepared {
    let imgs = root.join("imgs");
    std::fs::create_dir_all(&imgs).unwrap();
    for v in [40u8, 50, 60] {
        let img = Image::from_u8(8, 8, Channels::Gray, vec![v; 64]).unwrap();
        std::fs::write(imgs.join(format!("g{v}.png")), encode_png(&img)).unwrap();
    }
    let text = r#"
seeds = [0]
[cohort]
kind = "folder"
path = "imgs"
[adapter]
kind = "builtin"
[normalization]
mode = "exact"
[axes]
"brightness.factor" = [1.5, 2, 3, 4]
[analysis]
bootstrap_iterations = 20
cliff_threshold = 0.9
"#;
    let path = root.join("sweep.toml");
    std::fs::write(&path, text).unwrap();
    let config = parse_config(text, &path).unwrap();
    prepare_with_adapter(config, Arc::new(MeanAdapter::new(0.5))).unwrap()
}

async fn sweep_and_refine(
    root: &Path,
    jobs: usize,
    settings: RefineSettings,
) -> (clarity_refine::RefineReport, usize, Vec<u8>) {
    let prepared = setup(root);
    let dir = root.join("out");
    let opts = ExecOptions {
        jobs,
        ..ExecOptions::default()
    };
    run_sweep(&prepared, &dir, &opts).await.unwrap();
    let outcome = refine_sweep(&prepared, &dir, &settings, &opts)
        .await
        .unwrap();
    let path = write_report(&dir, &outcome.report).unwrap();
    (
        outcome.report,
        outcome.executed,
        std::fs::read(path).unwrap(),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bisection_brackets_the_true_cliff_within_the_tolerance() {
    let tmp = tempfile::tempdir().unwrap();
    let settings = RefineSettings {
        tolerance: Some(0.01),
        max_rounds: 20,
    };
    let (report, executed, _) = sweep_and_refine(tmp.path(), 2, settings).await;
    let esi: Vec<_> = report.cliffs.iter().filter(|c| c.metric == "esi").collect();
    assert_eq!(esi.len(), 1, "{report:#?}");
    let c = esi[0];
    assert_eq!((c.initial_ok, c.initial_broken), (2.0, 3.0));
    assert_eq!(c.stopped, Stop::Tolerance);
    assert!(c.width <= 0.01, "{c:#?}");
    assert!(c.ok < TRUE_CLIFF && TRUE_CLIFF <= c.broken, "{c:#?}");
    // 1 → 1/2 → … : seven halvings take width 1 to 1/128 ≤ 0.01.
    assert_eq!(c.rounds.len(), 7);
    // The first midpoints, and what the model did there.
    assert_eq!(c.rounds[0].value, 2.5);
    assert_eq!(c.rounds[0].metric_value, Some(2.0 / 3.0));
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
    // 3 cases x (baseline + midpoint) per round.
    assert!(c.rounds.iter().all(|r| r.n == 3));
    assert_eq!(report.runs, 7 * 6);
    assert_eq!(executed, 7 * 6);
    // Each round is a sweep directory of its own.
    let round = tmp
        .path()
        .join("out")
        .join(&c.rounds[0].dir)
        .join("observations.jsonl");
    assert_eq!(std::fs::read_to_string(round).unwrap().lines().count(), 6);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deterministic_across_jobs_and_resumed_without_model_calls() {
    let settings = RefineSettings {
        tolerance: None,
        max_rounds: 3,
    };
    let (a, b) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let (ra, _, bytes_a) = sweep_and_refine(a.path(), 1, settings).await;
    let (_, _, bytes_b) = sweep_and_refine(b.path(), 2, settings).await;
    assert_eq!(bytes_a, bytes_b, "refine.json differs between 1 and 2 jobs");
    assert_eq!(ra.cliffs[0].stopped, Stop::Rounds);
    assert_eq!(ra.cliffs[0].rounds.len(), 3);
    // Again in the same directory: every round is resumed from its journal.
    let (_, executed, bytes) = sweep_and_refine(a.path(), 2, settings).await;
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
        }
    }
}
