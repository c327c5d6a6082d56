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
    assert_eq!(doc["schema_version"], 1);
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

/// docs/probe.md's claim, guarded on a smaller cohort (16 phantoms, seed 0, the builtin model's
/// own saliency): the top saliency region overlaps the true lesion box in most positive cases,
/// and masking it flips the answer far more often than masking its equal-shape control.
#[test]
fn evidence_is_localised_and_causal_on_lesion_phantoms() {
    let dir = tempfile::tempdir().unwrap();
    let text = r#"
cohort = { kind = "builtin", n = 16, size = 64, seed = 0 }
adapter = { kind = "builtin" }
seeds = [0]
[axes]
"gaussian_blur.sigma" = [1.0]
[probe]
saliency = "auto"
regions = "components"
threshold = 0.5
top_k = 3
fills = ["constant", "noise", "blur"]
bootstrap_iterations = 200
"#;
    let config = clarity_engine::parse_config(text, &dir.path().join("sweep.toml")).unwrap();
    let settings = config.probe.clone().unwrap();
    let prepared = prepare(config).unwrap();
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(clarity_probe::run_probe(
        &prepared,
        &settings,
        dir.path(),
        &util::opts(2),
    ))
    .unwrap();
    let v: Value =
        serde_json::from_str(&std::fs::read_to_string(dir.path().join("probe.json")).unwrap())
            .unwrap();
    let lesion = &v["cohort"]["lesion"];
    let num = |k: &str| {
        lesion[k]["value"]
            .as_f64()
            .unwrap_or_else(|| panic!("{k}: {lesion}"))
    };
    assert!(lesion["cases"].as_u64().unwrap() >= 8, "{lesion}");
    assert!(
        num("top_region_hit") >= 0.75,
        "top region overlaps the box: {lesion}"
    );
    assert!(num("pointing_game") >= 0.5, "{lesion}");
    let (evidence, control) = (num("evidence_flip_rate"), num("control_flip_rate"));
    eprintln!(
        "lesion cases: hit {} pointing {} evidence {evidence} control {control}",
        num("top_region_hit"),
        num("pointing_game")
    );
    assert!(
        evidence >= 0.2 && evidence >= 3.0 * control,
        "masking the evidence must flip far more often than the control: {evidence} vs {control}"
    );
}
