//! The counterfactual console's scoped probe (`POST /api/v1/jobs` with `case`, `cell`,
//! `regions`, `grid`, `top_k`) and the `report` job that puts the probe into report.html. The
//! launcher here runs `clarity probe --case --cell ...` and `clarity report` as the CLI does:
//! the scoped probe through `clarity_probe::run_probe_scoped`, the report through
//! `clarity_report::write_report`.

use std::path::Path;
use std::sync::{Arc, Mutex};

use axum::http::StatusCode;
use clarity_server::{LaunchKind, LaunchRequest, Launcher, ServerConfig};
use serde_json::Value;

use crate::util::{config, get, post_json};

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}

/// The value of `--name=VALUE` in `args`.
fn arg<'a>(args: &'a [String], name: &str) -> Option<&'a str> {
    args.iter()
        .find_map(|a| a.strip_prefix(&format!("--{name}=")))
}

/// The requests a test launcher has seen: kind and arguments, in order.
type Seen = Arc<Mutex<Vec<(LaunchKind, Vec<String>)>>>;

/// Records each request (kind and arguments) and runs it.
fn launcher(seen: Seen) -> Launcher {
    Arc::new(move |req: LaunchRequest| {
        seen.lock().unwrap().push((req.kind, req.args.clone()));
        match req.kind {
            LaunchKind::Report => {
                clarity_report::write_report(&req.dir, &Default::default())
                    .map_err(|e| e.to_string())?;
                Ok(0)
            }
            LaunchKind::Probe => {
                let path = req.config.as_deref().ok_or("no config")?;
                let config = clarity_engine::load_config(path).map_err(|e| e.to_string())?;
                let dir = clarity_engine::output_dir(&config, None).map_err(|e| e.to_string())?;
                let settings = config.probe.clone().unwrap_or_default();
                let prepared = clarity_engine::prepare(config).map_err(|e| e.to_string())?;
                let scope = clarity_probe::ProbeScope {
                    case: arg(&req.args, "case").ok_or("no --case")?.to_string(),
                    cell: arg(&req.args, "cell").ok_or("no --cell")?.parse().unwrap(),
                    regions: clarity_probe::ScopeRegions::parse(
                        arg(&req.args, "regions").ok_or("no --regions")?,
                    )?,
                    grid: arg(&req.args, "grid").ok_or("no --grid")?.parse().unwrap(),
                    top_k: arg(&req.args, "top-k")
                        .ok_or("no --top-k")?
                        .parse()
                        .unwrap(),
                };
                let opts = clarity_engine::ExecOptions {
                    jobs: 1,
                    interrupt: Some(req.interrupt),
                    ..Default::default()
                };
                let _lock = clarity_engine::artifacts::prepare_output_dir(&dir, &prepared.plan)
                    .map_err(|e| e.to_string())?;
                runtime()
                    .block_on(clarity_probe::run_probe_scoped(
                        &prepared, &settings, &scope, &dir, &opts,
                    ))
                    .map_err(|e| e.to_string())?;
                Ok(0)
            }
            LaunchKind::Run => Err("no runs here".into()),
        }
    })
}

fn app_with(root: &Path, launcher: Launcher) -> axum::Router {
    clarity_server::router(ServerConfig {
        root: root.to_path_buf(),
        token: None,
        launcher: Some(launcher),
    })
    .unwrap()
}

async fn wait_for(app: &axum::Router, job: u64) -> Value {
    let body = tokio::time::timeout(
        std::time::Duration::from_secs(120),
        get(app, &format!("/api/v1/jobs/{job}/events")),
    )
    .await
    .expect("the job ends");
    body.text()
        .split("\n\n")
        .filter_map(|e| e.lines().find_map(|l| l.strip_prefix("data: ")))
        .map(|d| serde_json::from_str::<Value>(d).unwrap())
        .last()
        .unwrap()
}

/// An analysed sweep `out/s` whose config has a cheap `[probe]` table.
fn sweep(root: &Path) {
    crate::util::run_sweep(root, "s", "out/s", 0);
    let text = format!(
        "{}\n[probe]\nfills = [\"constant\", \"mean\"]\nbootstrap_iterations = 0\n",
        config("out/s", 0)
    );
    std::fs::write(root.join("s.toml"), text).unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn scoped_probe_parameters_are_checked_before_anything_starts() {
    let root = tempfile::tempdir().unwrap();
    sweep(root.path());
    let seen = Arc::new(Mutex::new(Vec::new()));
    let app = app_with(root.path(), launcher(seen.clone()));
    let case = get(&app, "/api/v1/sweeps/out%2Fs/runs?limit=1")
        .await
        .json()["runs"][0]["case_id"]
        .as_str()
        .unwrap()
        .to_string();
    let job = |extra: &str| format!(r#"{{"kind":"probe","sweep":"out/s"{extra}}}"#);
    for (extra, needle) in [
        (
            r#","case":"nope","cell":1"#.to_string(),
            "`case`: no case `nope` in the cohort",
        ),
        (
            format!(r#","case":"{case}","cell":99"#),
            "`cell`: cell 99 does not exist: the plan has 6 cells (0..=5)",
        ),
        (
            format!(r#","case":"{case}","cell":1,"regions":"grid","grid":17"#),
            "`grid`: expected 1..=16 tiles per side, got 17",
        ),
        (
            format!(r#","case":"{case}","cell":1,"grid":0"#),
            "`grid`: expected 1..=16",
        ),
        (
            format!(r#","case":"{case}","cell":1,"top_k":0"#),
            "`top_k`: expected 1..=16 regions, got 0",
        ),
        (
            format!(r#","case":"{case}","cell":1,"regions":"blob""#),
            "`regions`: expected saliency or grid, got `blob`",
        ),
        (
            format!(r#","case":"{case}""#),
            "`cell`: a scoped probe names the cell",
        ),
        (
            r#","cell":1"#.to_string(),
            "`case`: a scoped probe names the case",
        ),
        (
            r#","grid":4"#.to_string(),
            "`case`: a scoped probe names the case",
        ),
    ] {
        post_json(&app, "/api/v1/jobs", &job(&extra))
            .await
            .assert_error(StatusCode::BAD_REQUEST, needle);
    }
    // Scope fields belong to a probe of a sweep.
    for body in [
        format!(r#"{{"kind":"resume","sweep":"out/s","case":"{case}","cell":1}}"#),
        format!(r#"{{"kind":"probe","config":"s.toml","case":"{case}","cell":1}}"#),
    ] {
        post_json(&app, "/api/v1/jobs", &body)
            .await
            .assert_error(StatusCode::BAD_REQUEST, "a scoped probe is");
    }
    // A cell that is not a number is the JSON body's error, as JSON.
    post_json(
        &app,
        "/api/v1/jobs",
        &job(&format!(r#","case":"{case}","cell":"x""#)),
    )
    .await
    .assert_error(StatusCode::UNPROCESSABLE_ENTITY, "cell");
    assert!(seen.lock().unwrap().is_empty(), "nothing was launched");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_scoped_probe_from_the_form_shows_its_regions_and_goes_into_the_report() {
    let root = tempfile::tempdir().unwrap();
    sweep(root.path());
    let seen = Arc::new(Mutex::new(Vec::new()));
    let app = app_with(root.path(), launcher(seen.clone()));
    // The sweep page has the form: every case, every cell (the baseline selected).
    let page = get(&app, "/sweeps/out%2Fs").await.text();
    assert!(
        page.contains(r#"<form id="probe-form" data-sweep="out/s">"#),
        "{page}"
    );
    assert_eq!(
        page.matches("<option value=\"phantom-").count(),
        4,
        "{page}"
    );
    assert!(page.contains(r#"<option value="0" selected>0 · baseline</option>"#));
    assert!(page.contains(r#"<option value="1">1 · gaussian_noise.sigma=0.1</option>"#));
    assert!(page.contains(r#"name="probe-regions" value="grid""#));
    // A report job needs metrics.json: a sweep that has none is refused.
    post_json(&app, "/api/v1/jobs", r#"{"kind":"report","sweep":"out"}"#)
        .await
        .assert_error(StatusCode::NOT_FOUND, "not a sweep directory");

    let case = get(&app, "/api/v1/sweeps/out%2Fs/runs?limit=1")
        .await
        .json()["runs"][0]["case_id"]
        .as_str()
        .unwrap()
        .to_string();
    let body = format!(
        r#"{{"kind":"probe","sweep":"out/s","case":"{case}","cell":2,"regions":"grid","grid":3,"top_k":2}}"#
    );
    let r = post_json(&app, "/api/v1/jobs", &body).await;
    assert_eq!(r.status, StatusCode::ACCEPTED, "{}", r.text());
    let last = wait_for(&app, r.json()["id"].as_u64().unwrap()).await;
    assert_eq!(last["status"], "finished", "{last}");
    assert_eq!(
        seen.lock().unwrap()[0].1,
        vec![
            format!("--case={case}"),
            "--cell=2".into(),
            "--regions=grid".into(),
            "--grid=3".into(),
            "--top-k=2".into()
        ]
    );
    let doc = get(&app, "/api/v1/sweeps/out%2Fs").await.json()["probe"].clone();
    assert_eq!(doc["scope"]["case"], case.as_str());
    assert_eq!(doc["scope"]["cell"], 2);
    assert_eq!(doc["scope"]["regions"], "grid");
    assert_eq!(doc["cases"].as_array().unwrap().len(), 1);

    // The probe page: the scope, the image of the scoped cell under the heatmap, the regions
    // with Δanswer, Δconfidence, Δdrift and a verdict each, and the "Add to report" button.
    let html = get(&app, "/sweeps/out%2Fs/probe").await.text();
    assert!(
        html.contains(r#"id="probe-scope-line">Scoped probe: case "#),
        "{html}"
    );
    assert!(
        html.contains("cell=2&amp;seed=0&amp;which=perturbed"),
        "{html}"
    );
    for col in ["Δanswer", "Δconfidence", "Δdrift", "Evidence vs control"] {
        assert!(
            html.contains(&format!("<th>{col}</th>")) || html.contains(&format!(">{col}</th>")),
            "{col}"
        );
    }
    let regions = doc["cases"][0]["regions"].as_array().unwrap();
    assert_eq!(html.matches(r#"<tr class="region "#).count(), regions.len());
    assert_eq!(
        html.matches(r#"class="region-verdict""#).count(),
        regions.len()
    );
    let controls = regions
        .iter()
        .filter(|r| r["control_of"].is_string())
        .count();
    assert_eq!(
        html.matches(r#"<span class="verdict control">control</span>"#)
            .count(),
        controls
    );
    assert!(html.contains(r#"id="add-to-report" data-kind="report" data-sweep="out/s""#));

    // Export: the report job renders report.html with the probe section and its scope.
    let r = post_json(&app, "/api/v1/jobs", r#"{"kind":"report","sweep":"out/s"}"#).await;
    assert_eq!(r.status, StatusCode::ACCEPTED, "{}", r.text());
    assert_eq!(
        (r.json()["kind"].as_str(), r.json()["phase"].as_str()),
        (Some("report"), Some("report"))
    );
    assert_eq!(r.json()["config"], "s.toml");
    let id = r.json()["id"].as_u64().unwrap();
    let last = wait_for(&app, id).await;
    assert_eq!(last["status"], "finished", "{last}");
    let job_page = get(&app, &format!("/jobs/{id}")).await.text();
    assert!(job_page.contains(r#"<a id="report-result" class="job-result" href="/api/v1/sweeps/out%2Fs/files/report.html">"#));
    let report = get(&app, "/api/v1/sweeps/out%2Fs/files/report.html").await;
    assert_eq!(report.status, StatusCode::OK);
    let report = report.text();
    assert!(report.contains("Counterfactual probe"), "no probe section");
    assert!(
        report.contains(&format!(
            "Scoped probe: case {case} on its perturbed image in cell 2"
        )),
        "no scope"
    );
    assert_eq!(seen.lock().unwrap()[1], (LaunchKind::Report, Vec::new()));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_report_job_needs_an_analysed_sweep() {
    let root = tempfile::tempdir().unwrap();
    sweep(root.path());
    std::fs::remove_file(root.path().join("out/s/metrics.json")).unwrap();
    let seen = Arc::new(Mutex::new(Vec::new()));
    let app = app_with(root.path(), launcher(seen.clone()));
    post_json(&app, "/api/v1/jobs", r#"{"kind":"report","sweep":"out/s"}"#)
        .await
        .assert_error(StatusCode::CONFLICT, "is not analysed (no metrics.json)");
    post_json(
        &app,
        "/api/v1/jobs",
        r#"{"kind":"report","config":"s.toml"}"#,
    )
    .await
    .assert_error(StatusCode::BAD_REQUEST, "expected");
    assert!(seen.lock().unwrap().is_empty());
}
