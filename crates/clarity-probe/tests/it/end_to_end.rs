//! The probe end to end with the builtin model on 64×64 phantoms: byte-identical artifacts
//! across runs and thread counts, cached, resumable.

use clarity_engine::{Cache, EngineError, ExecOptions, prepare};
use clarity_probe::ProbeError;
use serde_json::Value;

use crate::util;

const PROBE: &str = r#"fills = ["constant", "noise"]
top_k = 2
max_cases = 3
bootstrap_iterations = 200"#;

fn probe(
    dir: &std::path::Path,
    opts: &ExecOptions,
) -> Result<clarity_probe::ProbeOutcome, ProbeError> {
    let config = util::config(dir, PROBE);
    let settings = config.probe.clone().unwrap();
    let prepared = prepare(config).unwrap();
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(clarity_probe::run_probe(&prepared, &settings, dir, opts))
}

/// Artifacts only: the journal is in completion order and not an artifact.
fn artifacts(dir: &std::path::Path) -> Vec<(String, util::Bytes)> {
    util::files(dir)
        .into_iter()
        .filter(|(n, _)| n == "probe.json" || n.starts_with("overlays"))
        .collect()
}

#[test]
fn artifacts_are_identical_across_runs_and_threads_and_runs_are_cached_and_resumable() {
    let a = tempfile::tempdir().unwrap();
    let b = tempfile::tempdir().unwrap();
    let c = tempfile::tempdir().unwrap();
    let cache_dir = tempfile::tempdir().unwrap();

    let one = probe(a.path(), &util::opts(1)).unwrap();
    assert_eq!(one.cases, 3);
    assert!(one.stats.executed > 3, "{:?}", one.stats);
    let many = probe(b.path(), &util::opts(4)).unwrap();
    let fa = artifacts(a.path());
    assert!(fa.iter().any(|(n, _)| n.starts_with("overlays/")));
    assert_eq!(fa, artifacts(b.path()));
    assert_eq!(many.stats.executed, one.stats.executed);

    // Same directory again: everything comes from the journal, nothing runs, same bytes.
    let again = probe(a.path(), &util::opts(2)).unwrap();
    assert_eq!(again.stats.executed, 0);
    assert!(again.stats.from_journal > 0);
    assert_eq!(fa, artifacts(a.path()));

    // Interrupted, then resumed: identical artifacts; with a shared cache a fresh directory
    // makes no model call.
    let cache = Cache::open(cache_dir.path()).unwrap();
    let mut opts = util::opts(2);
    opts.cache = Some(cache.clone());
    opts.abort_after = Some(7);
    let err = probe(c.path(), &opts).unwrap_err();
    assert!(
        matches!(err, ProbeError::Engine(EngineError::Interrupted { .. })),
        "{err}"
    );
    opts.abort_after = None;
    let resumed = probe(c.path(), &opts).unwrap();
    assert!(resumed.stats.from_journal >= 7, "{:?}", resumed.stats);
    assert_eq!(fa, artifacts(c.path()));
    let d = tempfile::tempdir().unwrap();
    let cached = probe(d.path(), &opts).unwrap();
    assert_eq!(cached.stats.executed, 0);
    assert!(cached.stats.cached > 0);
    assert_eq!(fa, artifacts(d.path()));

    // The document: settings, rule, per-case verdicts, cohort estimates.
    let doc: Value =
        serde_json::from_slice(&fa.iter().find(|(n, _)| n == "probe.json").unwrap().1.0).unwrap();
    assert_eq!(doc["schema_version"], 2);
    assert!(
        doc["rules"]["verdict"]
            .as_str()
            .unwrap()
            .contains("grounded")
    );
    let cases = doc["cases"].as_array().unwrap();
    assert_eq!(cases.len(), 3);
    for case in cases {
        assert_eq!(case["saliency"]["source"], "model");
        assert!(
            ["grounded", "not_grounded", "inconclusive"]
                .contains(&case["verdict"].as_str().unwrap())
        );
    }
    // Cases 1 and 2 of the builtin cohort carry a nodule: ground truth and localisation.
    assert!(cases[1]["truth_bbox"].is_array());
    assert!(cases[1]["localisation"]["top_region_iou"].is_number());
    assert_eq!(doc["cohort"]["all"]["cases"], 3);
    assert_eq!(doc["cohort"]["lesion"]["cases"], 2);
}

/// docs/probe.md's claim, guarded by mechanism rather than exact numbers (the builtin model and
/// phantoms change): on 16 phantoms the top saliency region overlaps the true lesion box in most
/// positive cases, every fill gets a specificity verdict from matched controls with a
/// non-degenerate interval, and each case's controls are matched (ring distance within bound).
#[test]
fn evidence_is_localised_and_every_fill_gets_a_specificity_verdict() {
    let dir = tempfile::tempdir().unwrap();
    let text = r#"
cohort = { kind = "builtin", n = 16, size = 64, seed = 0 }
adapter = { kind = "builtin" }
seeds = [0]
[axes]
"gaussian_blur.sigma" = [1.0]
[probe]
top_k = 3
fills = ["constant", "noise", "inpaint"]
bootstrap_iterations = 200
"#;
    let config = clarity_engine::parse_config(text, &dir.path().join("sweep.toml")).unwrap();
    let settings = config.probe.clone().unwrap();
    let prepared = prepare(config).unwrap();
    let rt = tokio::runtime::Runtime::new().unwrap();
    let out = rt
        .block_on(clarity_probe::run_probe(
            &prepared,
            &settings,
            dir.path(),
            &util::opts(2),
        ))
        .unwrap();
    assert_eq!(out.specificity.len(), 4, "{:?}", out.specificity);
    let v: Value =
        serde_json::from_str(&std::fs::read_to_string(dir.path().join("probe.json")).unwrap())
            .unwrap();
    let lesion = &v["cohort"]["lesion"];
    assert!(lesion["cases"].as_u64().unwrap() >= 8, "{lesion}");
    assert!(
        // Most: 8 of 12 with weights 992fabfd (the blur-augmented model spreads its
        // evidence wider; the earlier weights reached at least 0.75 here).
        lesion["top_region_hit"]["value"].as_f64().unwrap() > 0.5,
        "{lesion}"
    );
    for fill in ["constant", "noise", "inpaint", "all_fills"] {
        let f = &lesion["specificity"][fill]["flip"];
        let verdict = f["verdict"].as_str().unwrap();
        assert!(
            ["specific", "not_specific", "inconclusive"].contains(&verdict),
            "{fill}: {f}"
        );
        assert!(f["hi"].as_f64().unwrap() > f["lo"].as_f64().unwrap(), "{f}");
    }
    for case in v["cases"].as_array().unwrap() {
        for c in case["controls"].as_array().into_iter().flatten() {
            assert!(c["distance"].as_f64().unwrap() <= 0.1, "{c}");
        }
    }
}
