//! Every API route on real sweeps.

use axum::http::StatusCode;
use serde_json::Value;

use crate::util::{app, get, shared_root};

#[tokio::test]
async fn lists_every_sweep_under_the_root_with_its_headline() {
    let app = app(shared_root());
    let r = get(&app, "/api/v1/sweeps").await;
    assert_eq!(r.status, StatusCode::OK);
    let v = r.json();
    let sweeps = v["sweeps"].as_array().unwrap();
    let ids: Vec<&str> = sweeps.iter().map(|s| s["id"].as_str().unwrap()).collect();
    assert_eq!(ids, ["sweeps/a", "sweeps/nested/b"]);
    let a = &sweeps[0];
    assert_eq!(a["status"], "analysed");
    assert_eq!(a["kind"], "clarity");
    assert_eq!(a["runs"]["planned"], 24);
    assert_eq!(a["runs"]["ok"], 24);
    assert_eq!(a["cohort"]["cases"], 4);
    assert!(a["model"].as_str().unwrap().starts_with("builtin/"), "{a}");
    // The report's own headline.
    let d = clarity_report::load::load(
        &shared_root().join("sweeps/a"),
        &clarity_report::load::LoadOptions {
            thumbnails: None,
            max_worst_cases: 0,
            max_case_rows: 0,
        },
    )
    .unwrap();
    let want: Vec<Value> = clarity_report::doc::headline(&d)
        .into_iter()
        .map(Value::from)
        .collect();
    assert!(!want.is_empty());
    assert_eq!(a["headline"].as_array().unwrap(), &want);
}

#[tokio::test]
async fn opens_a_sweep_with_its_artifacts() {
    let app = app(shared_root());
    let v = get(&app, "/api/v1/sweeps/sweeps%2Fa").await.json();
    assert_eq!(v["id"], "sweeps/a");
    assert_eq!(v["plan"]["runs"], 24);
    assert_eq!(v["metrics"]["kind"], "clarity.metrics");
    assert!(v["cliffs"]["cliffs"].is_array());
    assert!(v["surface"].is_object());
    assert!(v["refine"].is_null() && v["probe"].is_null());
    let files: Vec<&str> = v["files"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f.as_str().unwrap())
        .collect();
    assert!(files.contains(&"metrics.json") && files.contains(&"plan.json"));
}

#[tokio::test]
async fn runs_filter_and_paginate() {
    let app = app(shared_root());
    let all = get(&app, "/api/v1/sweeps/sweeps%2Fa/runs?limit=1000")
        .await
        .json();
    assert_eq!(all["total"], 24);
    let runs = all["runs"].as_array().unwrap();
    assert_eq!(runs.len(), 24);
    // Flipped means: normalised answer differs from the same case and seed at the baseline.
    let baseline: std::collections::BTreeMap<String, String> = runs
        .iter()
        .filter(|r| r["cell_label"] == "baseline")
        .map(|r| {
            (
                r["case_id"].as_str().unwrap().to_string(),
                r["normalized"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    assert_eq!(baseline.len(), 4);
    let flipped_ids: Vec<(String, u64)> = runs
        .iter()
        .filter(|r| baseline[r["case_id"].as_str().unwrap()] != r["normalized"].as_str().unwrap())
        .map(|r| {
            (
                r["case_id"].as_str().unwrap().to_string(),
                r["cell"].as_u64().unwrap(),
            )
        })
        .collect();
    assert!(!flipped_ids.is_empty(), "the fixture must have flips");
    let f = get(
        &app,
        "/api/v1/sweeps/sweeps%2Fa/runs?flipped=true&limit=1000",
    )
    .await
    .json();
    let got: Vec<(String, u64)> = f["runs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            (
                r["case_id"].as_str().unwrap().to_string(),
                r["cell"].as_u64().unwrap(),
            )
        })
        .collect();
    assert_eq!(got, flipped_ids);
    assert!(
        f["runs"]
            .as_array()
            .unwrap()
            .iter()
            .all(|r| r["flipped"] == true)
    );
    let nf = get(&app, "/api/v1/sweeps/sweeps%2Fa/runs?flipped=false")
        .await
        .json();
    assert_eq!(
        nf["total"].as_u64().unwrap() as usize,
        24 - flipped_ids.len()
    );
    // Axis values: blur 4 with the noise at identity is one cell × 4 cases.
    let ax = get(
        &app,
        "/api/v1/sweeps/sweeps%2Fa/runs?axis=gaussian_blur.sigma%3D4,gaussian_noise.sigma%3D0",
    )
    .await
    .json();
    assert_eq!(ax["total"], 4);
    assert!(
        ax["runs"]
            .as_array()
            .unwrap()
            .iter()
            .all(|r| r["cell_label"] == "gaussian_blur.sigma=4")
    );
    let blur4 = get(
        &app,
        "/api/v1/sweeps/sweeps%2Fa/runs?axis=gaussian_blur.sigma%3D4",
    )
    .await
    .json();
    assert_eq!(blur4["total"], 8);
    let case = get(
        &app,
        "/api/v1/sweeps/sweeps%2Fa/runs?case=phantom-0001&cell=0",
    )
    .await
    .json();
    assert_eq!(case["total"], 1);
    let ans = runs[0]["normalized"].as_str().unwrap().to_string();
    let by_answer = get(
        &app,
        &format!("/api/v1/sweeps/sweeps%2Fa/runs?answer={ans}&limit=1000"),
    )
    .await
    .json();
    assert_eq!(
        by_answer["total"].as_u64().unwrap() as usize,
        runs.iter()
            .filter(|r| r["normalized"] == ans.as_str())
            .count()
    );
    assert_eq!(
        get(&app, "/api/v1/sweeps/sweeps%2Fa/runs?failed=true")
            .await
            .json()["total"],
        0
    );
    // Pages tile the list.
    let p1 = get(&app, "/api/v1/sweeps/sweeps%2Fa/runs?limit=10")
        .await
        .json();
    let p3 = get(&app, "/api/v1/sweeps/sweeps%2Fa/runs?limit=10&offset=20")
        .await
        .json();
    assert_eq!(p1["runs"].as_array().unwrap().len(), 10);
    assert_eq!(p3["runs"].as_array().unwrap().len(), 4);
    assert_eq!(p3["runs"][0], runs[20]);
}

#[tokio::test]
async fn bad_run_filters_are_json_errors_naming_the_parameter() {
    let app = app(shared_root());
    let base = "/api/v1/sweeps/sweeps%2Fa/runs";
    get(&app, &format!("{base}?flipped=maybe"))
        .await
        .assert_error(StatusCode::BAD_REQUEST, "`flipped`");
    get(&app, &format!("{base}?cell=99"))
        .await
        .assert_error(StatusCode::BAD_REQUEST, "`cell`: 99");
    get(&app, &format!("{base}?cell=x"))
        .await
        .assert_error(StatusCode::BAD_REQUEST, "`cell`");
    get(&app, &format!("{base}?axis=zoom%3D2"))
        .await
        .assert_error(StatusCode::BAD_REQUEST, "no axis `zoom`");
    get(&app, &format!("{base}?axis=gaussian_blur.sigma%3D3"))
        .await
        .assert_error(StatusCode::BAD_REQUEST, "no value `3`");
    get(&app, &format!("{base}?axis=blur"))
        .await
        .assert_error(StatusCode::BAD_REQUEST, "expected axis=value");
    get(&app, "/api/v1/sweeps/nope/runs")
        .await
        .assert_error(StatusCode::NOT_FOUND, "`nope`");
}

fn decode(bytes: &[u8]) -> image::DynamicImage {
    image::load_from_memory(bytes).unwrap()
}

#[tokio::test]
async fn images_are_regenerated_through_the_engines_perturbation() {
    let root = shared_root();
    let app = app(root);
    let dir = root.join("sweeps/a");
    let plan: Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("plan.json")).unwrap()).unwrap();
    // The cell with blur 4 and no noise.
    let cell = plan["cells"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["coords"] == serde_json::json!([2, 0]))
        .unwrap()["index"]
        .as_u64()
        .unwrap();
    let uri = |which: &str| {
        format!(
            "/api/v1/sweeps/sweeps%2Fa/image?case=phantom-0002&cell={cell}&seed=0&which={which}"
        )
    };
    let base = get(&app, &uri("baseline")).await;
    assert_eq!(base.status, StatusCode::OK, "{}", base.text());
    assert_eq!(base.headers["content-type"], "image/png");
    let pert = get(&app, &uri("perturbed")).await;
    assert_eq!(pert.status, StatusCode::OK);
    // The same bytes as applying the plan's recipe to the cohort's image.
    let cfg = clarity_engine::load_config(&root.join("a.toml")).unwrap();
    let prepared = clarity_engine::prepare(cfg).unwrap();
    let case = prepared
        .cohort
        .iter()
        .find(|c| c.id == "phantom-0002")
        .unwrap();
    let want_base = clarity_image::encode_png(&case.image);
    let recipe = clarity_perturb::Recipe {
        steps: prepared.plan.steps(cell as usize),
    };
    let want_pert =
        clarity_image::encode_png(&recipe.apply(&case.image, 0, "phantom-0002").unwrap());
    assert_eq!(base.body, want_base);
    assert_eq!(pert.body, want_pert);
    assert_ne!(base.body, pert.body);
    assert_eq!(decode(&pert.body).width(), 64);
    // The builtin model records saliency: the overlay is the report's thumbnail rendering.
    let ov = get(&app, &format!("{}&overlay=saliency", uri("perturbed"))).await;
    assert_eq!(ov.status, StatusCode::OK, "{}", ov.text());
    assert!(
        ov.headers["content-type"]
            .to_str()
            .unwrap()
            .starts_with("image/")
    );
    assert_ne!(ov.body, pert.body);
    // Errors.
    get(
        &app,
        "/api/v1/sweeps/sweeps%2Fa/image?case=nobody&cell=0&seed=0",
    )
    .await
    .assert_error(StatusCode::NOT_FOUND, "no run of case `nobody`");
    get(
        &app,
        "/api/v1/sweeps/sweeps%2Fa/image?case=phantom-0002&cell=0&seed=0&which=both",
    )
    .await
    .assert_error(StatusCode::BAD_REQUEST, "`which`");
    let missing = get(&app, "/api/v1/sweeps/sweeps%2Fa/image?case=phantom-0002").await;
    assert_eq!(missing.status, StatusCode::BAD_REQUEST);
    assert!(missing.json()["error"].as_str().unwrap().contains("cell"));
}

#[tokio::test]
async fn images_need_the_config_under_the_root() {
    let d = tempfile::tempdir().unwrap();
    let dir = crate::util::run_sweep(d.path(), "c", "out/c", 0);
    std::fs::remove_file(d.path().join("c.toml")).unwrap();
    let app = app(d.path());
    let _ = dir;
    get(
        &app,
        "/api/v1/sweeps/out%2Fc/image?case=phantom-0000&cell=0&seed=0",
    )
    .await
    .assert_error(StatusCode::NOT_FOUND, "no config under the served root");
}

#[tokio::test]
async fn serves_artifacts_and_configs() {
    let app = app(shared_root());
    let m = get(&app, "/api/v1/sweeps/sweeps%2Fa/files/metrics.json").await;
    assert_eq!(m.status, StatusCode::OK);
    assert_eq!(m.headers["content-type"], "application/json");
    assert_eq!(
        m.body,
        std::fs::read(shared_root().join("sweeps/a/metrics.json")).unwrap()
    );
    assert!(m.headers.contains_key("content-security-policy"));
    get(&app, "/api/v1/sweeps/sweeps%2Fa/files/nothing.json")
        .await
        .assert_error(StatusCode::NOT_FOUND, "no such file");
    let c = get(&app, "/api/v1/configs").await.json();
    assert_eq!(c["configs"], serde_json::json!(["a.toml", "b.toml"]));
    let o = get(&app, "/api/v1/openapi.json").await.json();
    assert_eq!(o["openapi"], "3.1.0");
}

#[tokio::test]
async fn unknown_routes_and_methods_answer_json() {
    let app = app(shared_root());
    get(&app, "/api/v1/nothing")
        .await
        .assert_error(StatusCode::NOT_FOUND, "no route");
    crate::util::post_json(&app, "/api/v1/sweeps", "{}")
        .await
        .assert_error(StatusCode::METHOD_NOT_ALLOWED, "not allowed");
}

#[test]
fn openapi_documents_exactly_the_routes() {
    let doc: Value = serde_json::from_str(clarity_server::OPENAPI).unwrap();
    let mut documented: Vec<(String, String)> = Vec::new();
    for (path, item) in doc["paths"].as_object().unwrap() {
        for method in item.as_object().unwrap().keys() {
            documented.push((method.clone(), path.clone()));
        }
    }
    documented.sort();
    let mut served: Vec<(String, String)> = clarity_server::api_routes()
        .into_iter()
        .map(|(m, p)| (m.to_string(), p.to_string()))
        .collect();
    served.sort();
    assert_eq!(documented, served);
    // docs/api.md names every route too.
    let md =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../../docs/api.md")).unwrap();
    for (m, p) in &served {
        let line = format!("{} {p}", m.to_uppercase());
        assert!(md.contains(&line), "docs/api.md does not document `{line}`");
    }
}
