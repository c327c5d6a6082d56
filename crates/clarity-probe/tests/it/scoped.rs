//! The scoped probe (`run_probe_scoped`): one case on its image in one cell, regions and top-k
//! chosen by the caller, the choices recorded under `scope`; bad choices are refused by name.

use clarity_engine::prepare;
use clarity_probe::{ProbeError, ProbeScope, ScopeRegions};
use serde_json::Value;

use crate::util;

const PROBE: &str = r#"fills = ["constant", "mean"]
bootstrap_iterations = 0"#;

fn scope(case: &str, cell: usize, regions: ScopeRegions, grid: u32, top_k: usize) -> ProbeScope {
    ProbeScope {
        case: case.into(),
        cell,
        regions,
        grid,
        top_k,
    }
}

fn run(dir: &std::path::Path, sc: &ProbeScope) -> Result<Value, ProbeError> {
    let config = util::config(dir, PROBE);
    let settings = config.probe.clone().unwrap();
    let prepared = prepare(config).unwrap();
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(clarity_probe::run_probe_scoped(
        &prepared,
        &settings,
        sc,
        dir,
        &util::opts(2),
    ))?;
    Ok(serde_json::from_slice(&std::fs::read(dir.join("probe.json")).unwrap()).unwrap())
}

#[test]
fn a_scoped_probe_runs_one_case_in_one_cell_and_records_its_scope() {
    let dir = tempfile::tempdir().unwrap();
    let config = util::config(dir.path(), PROBE);
    let prepared = prepare(config).unwrap();
    let case = prepared.cohort[1].id.clone();
    // The blur cell (not the baseline): the probe's image is the blurred case.
    let cell = (0..prepared.plan.n_cells())
        .find(|&c| c != prepared.plan.baseline)
        .unwrap();
    let doc = run(dir.path(), &scope(&case, cell, ScopeRegions::Grid, 3, 2)).unwrap();
    let cases = doc["cases"].as_array().unwrap();
    assert_eq!(cases.len(), 1);
    assert_eq!(cases[0]["id"], case.as_str());
    let sc = &doc["scope"];
    assert_eq!(sc["case"], case.as_str());
    assert_eq!(sc["cell"], cell);
    assert_eq!(sc["image"], "perturbed");
    assert_eq!(sc["regions"], "grid");
    assert_eq!(
        (sc["grid"].as_u64(), sc["top_k"].as_u64()),
        (Some(3), Some(2))
    );
    assert_eq!(sc["cell_label"], "gaussian_blur.sigma=1");
    assert_eq!(doc["settings"]["regions"], "grid");
    // Grid mode: the 3×3 tiles are probed (plus controls), at most top_k are evidence.
    let regions = cases[0]["regions"].as_array().unwrap();
    let tiles = regions.iter().filter(|r| r["kind"] == "grid").count();
    let evidence = regions
        .iter()
        .filter(|r| r["evidence"] == true && !r["control_of"].is_string())
        .count();
    assert_eq!(tiles, 9, "{regions:?}");
    assert!((1..=2).contains(&evidence), "{evidence}");

    // The baseline cell probes the input image itself.
    let base = tempfile::tempdir().unwrap();
    let doc = run(
        base.path(),
        &scope(&case, prepared.plan.baseline, ScopeRegions::Saliency, 4, 1),
    )
    .unwrap();
    assert_eq!(doc["scope"]["image"], "baseline");
    assert_eq!(doc["scope"]["cell_label"], "baseline");
    assert_eq!(doc["settings"]["regions"], "components");
}

#[test]
fn bad_scopes_are_refused_naming_the_choice() {
    let dir = tempfile::tempdir().unwrap();
    let config = util::config(dir.path(), PROBE);
    let prepared = prepare(config).unwrap();
    let case = prepared.cohort[0].id.clone();
    let n = prepared.plan.n_cells();
    for (sc, needle) in [
        (
            scope("nope", 0, ScopeRegions::Saliency, 4, 3),
            "`case`: no case `nope`",
        ),
        (
            scope(&case, n, ScopeRegions::Saliency, 4, 3),
            "`cell`: cell",
        ),
        (scope(&case, 0, ScopeRegions::Grid, 0, 3), "`grid`"),
        (scope(&case, 0, ScopeRegions::Grid, 17, 3), "`grid`"),
        (scope(&case, 0, ScopeRegions::Grid, 4, 0), "`top_k`"),
        (scope(&case, 0, ScopeRegions::Grid, 4, 17), "`top_k`"),
    ] {
        let d = tempfile::tempdir().unwrap();
        let err = run(d.path(), &sc).unwrap_err();
        assert!(matches!(err, ProbeError::Scope(_)), "{err}");
        assert!(err.to_string().contains(needle), "{err} / {needle}");
        assert!(!d.path().join("probe.json").exists());
    }
    assert_eq!(
        ScopeRegions::parse("blob").unwrap_err(),
        "expected saliency or grid, got `blob`"
    );
}
