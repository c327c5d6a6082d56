//! `clarity probe` and `clarity run` with a `[probe]` table, with the command adapter (no
//! saliency of its own: occlusion sensitivity through the engine).

use crate::util::Sweep;

const PROBE: &str = r#"
[probe]
saliency = "occlusion"
window = 8
stride = 8
fills = ["mean", "constant"]
top_k = 1
bootstrap_iterations = 0
"#;

fn probe_sweep() -> Sweep {
    let s = Sweep::new();
    s.write("sweep.toml", &format!("{}{PROBE}", crate::util::CONFIG));
    s
}

#[test]
fn probe_writes_artifacts_is_cached_and_resumes_after_an_interrupt() {
    let s = probe_sweep();
    let out = s.clarity().args(["probe", "sweep.toml"]).assert().success();
    let text = String::from_utf8_lossy(&out.get_output().stdout).into_owned();
    assert!(text.contains("of 3 cases grounded"), "{text}");
    let probe = std::fs::read(s.path("out/probe.json")).unwrap();
    assert!(s.path("out/plan.json").is_file());
    assert!(s.path("out/bundle.json").is_file());
    let calls = s.calls();
    assert!(calls > 3, "{calls}");

    // Again: nothing runs, same bytes.
    let out = s.clarity().args(["probe", "sweep.toml"]).assert().success();
    let text = String::from_utf8_lossy(&out.get_output().stdout).into_owned();
    assert!(text.contains("0 executed"), "{text}");
    assert_eq!(s.calls(), calls);
    assert_eq!(std::fs::read(s.path("out/probe.json")).unwrap(), probe);

    // Interrupted (exit 130), then resumed: identical probe.json.
    s.clarity()
        .args([
            "probe",
            "sweep.toml",
            "--no-cache",
            "--output",
            "out2",
            "--abort-after",
            "2",
        ])
        .assert()
        .code(130);
    s.clarity()
        .args(["probe", "sweep.toml", "--no-cache", "--output", "out2"])
        .assert()
        .success();
    assert_eq!(std::fs::read(s.path("out2/probe.json")).unwrap(), probe);
}

#[test]
fn run_with_a_probe_table_adds_probe_json_and_a_report_section() {
    let s = probe_sweep();
    let out = s
        .clarity()
        .args(["run", "sweep.toml", "--jobs", "2"])
        .assert()
        .success();
    let text = String::from_utf8_lossy(&out.get_output().stdout).into_owned();
    assert!(text.contains("probe: "), "{text}");
    let bundle = std::fs::read_to_string(s.path("out/bundle.json")).unwrap();
    assert!(bundle.contains("\"probe.json\""), "{bundle}");
    let html = std::fs::read_to_string(s.path("out/report.html")).unwrap();
    assert!(html.contains("Counterfactual probe"));
}

#[test]
fn bad_probe_settings_are_usage_errors() {
    let s = Sweep::new();
    s.write(
        "sweep.toml",
        &format!("{}\n[probe]\ntop_k = 99\n", crate::util::CONFIG),
    );
    let out = s.clarity().args(["probe", "sweep.toml"]).assert().code(2);
    let err = String::from_utf8_lossy(&out.get_output().stderr).into_owned();
    assert!(
        err.contains("sweep.toml") && err.contains("probe.top_k"),
        "{err}"
    );
    assert!(!s.path("out").exists());
}
