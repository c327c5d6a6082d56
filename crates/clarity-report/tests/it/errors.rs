use clarity_report::{ReportError, ReportOptions, write_report};

use crate::fixture;

fn fixture_dir() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    fixture::write(dir.path());
    dir
}

#[test]
fn missing_plan_is_not_a_sweep() {
    let dir = tempfile::tempdir().unwrap();
    let err = write_report(dir.path(), &ReportOptions::default()).unwrap_err();
    assert!(matches!(err, ReportError::Missing { .. }), "{err}");
    assert!(
        err.to_string().contains(
            "plan.json: not found (not a sweep directory: no plan.json and no sweep_manifest.json)"
        ),
        "{err}"
    );
}

#[test]
fn missing_metrics_asks_for_analysis() {
    let dir = fixture_dir();
    std::fs::remove_file(dir.path().join("metrics.json")).unwrap();
    let err = write_report(dir.path(), &ReportOptions::default()).unwrap_err();
    assert!(
        err.to_string()
            .contains("metrics.json: not found (run `clarity analyze`"),
        "{err}"
    );
}

#[test]
fn bad_observation_line_names_the_line_and_keeps_the_old_report() {
    let dir = fixture_dir();
    write_report(dir.path(), &ReportOptions::default()).unwrap();
    let before = std::fs::read(dir.path().join("report.html")).unwrap();
    let path = dir.path().join("observations.jsonl");
    let mut text = std::fs::read_to_string(&path).unwrap();
    text.push_str("{\"key\": \"x\", \"case_id\": \"c1\"}\n");
    std::fs::write(&path, text).unwrap();
    let err = write_report(dir.path(), &ReportOptions::default()).unwrap_err();
    assert!(
        err.to_string().contains("observations.jsonl: line 73:"),
        "{err}"
    );
    assert_eq!(
        std::fs::read(dir.path().join("report.html")).unwrap(),
        before
    );
    let leftovers: Vec<_> = std::fs::read_dir(dir.path())
        .unwrap()
        .filter_map(|e| e.ok())
        .filter(|e| e.file_name().to_string_lossy().ends_with(".tmp"))
        .collect();
    assert!(leftovers.is_empty());
}

#[test]
fn unknown_axis_in_surface_names_the_key() {
    let dir = fixture_dir();
    let path = dir.path().join("surface.json");
    let text =
        std::fs::read_to_string(&path)
            .unwrap()
            .replacen("\"jpeg.quality\"", "\"jpeg.q\"", 1);
    std::fs::write(&path, text).unwrap();
    let err = write_report(dir.path(), &ReportOptions::default()).unwrap_err();
    let msg = err.to_string();
    assert!(
        msg.contains("surface.json: key `marginals[1].axis`"),
        "{msg}"
    );
    assert!(msg.contains("`jpeg.q`"), "{msg}");
}

#[test]
fn wrong_series_length_is_an_error() {
    let dir = fixture_dir();
    let path = dir.path().join("gradients.json");
    std::fs::write(&path, "{not json").unwrap();
    let err = write_report(dir.path(), &ReportOptions::default()).unwrap_err();
    assert!(
        err.to_string().contains("gradients.json: invalid JSON"),
        "{err}"
    );

    let dir = fixture_dir();
    let path = dir.path().join("plan.json");
    let mut plan: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
    plan["cells"][3]["coords"] = serde_json::json!([9, 0]);
    std::fs::write(&path, plan.to_string()).unwrap();
    let err = write_report(dir.path(), &ReportOptions::default()).unwrap_err();
    let msg = err.to_string();
    assert!(
        msg.contains("plan.json") && msg.contains("cells[3].coords[0] = 9"),
        "{msg}"
    );
}
