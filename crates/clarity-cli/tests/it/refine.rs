//! `clarity run --refine` through the binary: the test model answers `yes` whenever contrast is
//! perturbed at all, so the contrast cliff (ESI 1 at the identity 1, 0 at 0.5) keeps moving
//! towards the identity as it is bisected.

use crate::util::Sweep;

#[test]
fn refine_bisects_the_cliff_and_resumes_without_calls() {
    let s = Sweep::new();
    let out = s
        .clarity()
        .args([
            "run",
            "sweep.toml",
            "--refine",
            "--refine-rounds",
            "2",
            "--no-report",
            "--json",
        ])
        .assert()
        .code(0)
        .get_output()
        .stdout
        .clone();
    let v: serde_json::Value = serde_json::from_slice(&out).unwrap();
    let cliffs = v["refine"]["report"]["cliffs"].as_array().unwrap();
    let esi: Vec<_> = cliffs
        .iter()
        .filter(|c| c["metric"] == "esi" && c["axis"] == "contrast.factor")
        .collect();
    assert_eq!(esi.len(), 1, "{cliffs:?}");
    let c = esi[0];
    assert_eq!(c["initial_ok"], 1.0);
    assert_eq!(c["initial_broken"], 0.5);
    let values: Vec<f64> = c["rounds"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["value"].as_f64().unwrap())
        .collect();
    assert_eq!(values, [0.75, 0.875]);
    assert_eq!(c["broken"], 0.875);
    assert_eq!(c["width"], 0.125);
    assert_eq!(c["stopped"], "rounds");
    // The rounds' sweeps and refine.json, which the bundle seals.
    assert!(
        s.path("out/refine/contrast.factor/0.75/plan.json")
            .is_file()
    );
    let bundle = std::fs::read_to_string(s.path("out/bundle.json")).unwrap();
    assert!(bundle.contains("refine.json"), "{bundle}");
    let refine = std::fs::read(s.path("out/refine.json")).unwrap();
    // Again: everything from journals and cache, same bytes.
    let calls = s.calls();
    s.clarity()
        .args([
            "run",
            "sweep.toml",
            "--refine",
            "--refine-rounds",
            "2",
            "--no-report",
            "-q",
        ])
        .assert()
        .code(0);
    assert_eq!(s.calls(), calls);
    assert_eq!(std::fs::read(s.path("out/refine.json")).unwrap(), refine);
}

#[test]
fn refine_settings_are_checked_before_anything_runs() {
    let s = Sweep::new();
    s.clarity()
        .args(["run", "sweep.toml", "--refine", "--refine-rounds", "0"])
        .assert()
        .code(2)
        .stderr(predicates::str::contains("rounds must be in [1, 30]"));
    s.clarity()
        .args(["run", "sweep.toml", "--refine", "--refine-tolerance=-1"])
        .assert()
        .code(2)
        .stderr(predicates::str::contains(
            "tolerance must be a positive number",
        ));
    assert!(!s.path("out").exists());
    assert_eq!(s.calls(), 0);
    // The refine options need --refine.
    s.clarity()
        .args(["run", "sweep.toml", "--refine-rounds", "3"])
        .assert()
        .code(2);
}
