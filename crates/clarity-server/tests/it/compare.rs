//! Comparing two sweeps.

use axum::http::StatusCode;

use crate::util::{app, get, shared_root};

#[tokio::test]
async fn a_sweep_compared_with_itself_has_no_differences() {
    let app = app(shared_root());
    let c = get(&app, "/api/v1/compare?a=sweeps%2Fa&b=sweeps%2Fa")
        .await
        .json();
    assert_eq!(c["kind"], "clarity.compare");
    assert_eq!(c["summary"]["cells_compared"], 6);
    assert_eq!(c["summary"]["runs_compared"], 24);
    assert_eq!(c["summary"]["answers_changed"], 0);
    for cell in c["cells"].as_array().unwrap() {
        assert_eq!(cell["esi"]["delta"], 0.0);
        assert_eq!(cell["esi"]["separated"], false);
    }
}

#[tokio::test]
async fn changed_answers_are_the_runs_whose_answers_differ() {
    let app = app(shared_root());
    let c = get(&app, "/api/v1/compare?a=sweeps%2Fa&b=sweeps%2Fnested%2Fb")
        .await
        .json();
    let a = get(&app, "/api/v1/sweeps/sweeps%2Fa/runs?limit=1000")
        .await
        .json();
    let b = get(&app, "/api/v1/sweeps/sweeps%2Fnested%2Fb/runs?limit=1000")
        .await
        .json();
    let mut want = Vec::new();
    for (ra, rb) in a["runs"]
        .as_array()
        .unwrap()
        .iter()
        .zip(b["runs"].as_array().unwrap())
    {
        assert_eq!((&ra["case_id"], &ra["cell"]), (&rb["case_id"], &rb["cell"]));
        if ra["normalized"] != rb["normalized"] {
            want.push((
                ra["case_id"].clone(),
                ra["cell_label"].clone(),
                ra["normalized"].clone(),
                rb["normalized"].clone(),
            ));
        }
    }
    let got: Vec<_> = c["changed"]
        .as_array()
        .unwrap()
        .iter()
        .map(|x| {
            (
                x["case_id"].clone(),
                x["cell"].clone(),
                x["answer_a"].clone(),
                x["answer_b"].clone(),
            )
        })
        .collect();
    assert_eq!(got, want);
    assert!(
        !got.is_empty(),
        "different phantoms should answer differently somewhere"
    );
    // Deltas are b − a of each sweep's metrics.json.
    let ma: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(shared_root().join("sweeps/a/metrics.json")).unwrap(),
    )
    .unwrap();
    let mb: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(shared_root().join("sweeps/nested/b/metrics.json")).unwrap(),
    )
    .unwrap();
    let base = ma["baseline_cell"].as_u64().unwrap() as usize;
    let cell = c["cells"]
        .as_array()
        .unwrap()
        .iter()
        .find(|x| x["cell"] == "baseline")
        .unwrap();
    let (ea, eb) = (
        ma["cells"][base]["accuracy"]["value"].as_f64().unwrap(),
        mb["cells"][base]["accuracy"]["value"].as_f64().unwrap(),
    );
    assert_eq!(cell["accuracy"]["delta"].as_f64().unwrap(), eb - ea);
}

#[tokio::test]
async fn compare_errors() {
    let app = app(shared_root());
    get(&app, "/api/v1/compare?a=sweeps%2Fa")
        .await
        .assert_error(StatusCode::BAD_REQUEST, "b");
    get(&app, "/api/v1/compare?a=sweeps%2Fa&b=nope")
        .await
        .assert_error(StatusCode::NOT_FOUND, "`nope`");
}

#[test]
fn writes_json_and_csv_byte_identically() {
    let root = shared_root();
    let (a, b) = (root.join("sweeps/a"), root.join("sweeps/nested/b"));
    let c = clarity_server::compare::compare(&a, &b, ("a", "b")).unwrap();
    let (o1, o2) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let f1 = clarity_server::compare::write(&c, o1.path()).unwrap();
    let c2 = clarity_server::compare::compare(&a, &b, ("a", "b")).unwrap();
    clarity_server::compare::write(&c2, o2.path()).unwrap();
    for f in &f1 {
        let name = f.file_name().unwrap();
        assert_eq!(
            std::fs::read(f).unwrap(),
            std::fs::read(o2.path().join(name)).unwrap()
        );
    }
    let cells = std::fs::read_to_string(o1.path().join("compare_cells.csv")).unwrap();
    assert!(
        cells.starts_with("cell,gaussian_blur.sigma,gaussian_noise.sigma,esi_a,"),
        "{cells}"
    );
    assert_eq!(cells.lines().count(), 7);
    let cases = std::fs::read_to_string(o1.path().join("compare_cases.csv")).unwrap();
    assert_eq!(cases.lines().count(), 1 + c.changed.len());
}
