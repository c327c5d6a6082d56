//! Resume and probe jobs (`POST /api/v1/jobs` with `kind`), their refusals, and the
//! counterfactual console page over the probe.json a probe job writes. The launcher here runs
//! the engine, the analysis and the probe directly, as `clarity run` / `clarity probe` do (the
//! CLI passes those commands themselves).

use std::path::Path;
use std::sync::{Arc, Mutex};

use axum::http::StatusCode;
use clarity_server::{LaunchKind, LaunchRequest, Launcher, ServerConfig};
use serde_json::Value;

use crate::util::{config, get, post_json};

/// The small sweep of `util::config` with a cheap probe: two fills.
fn probed_config(output: &str) -> String {
    format!(
        "{}\n[probe]\nfills = [\"constant\", \"mean\"]\n",
        config(output, 0)
    )
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}

/// Runs the request as `clarity run` (sweep + analysis) or `clarity probe` (lock, plan, probe)
/// would, recording each request's kind.
fn launcher(kinds: Arc<Mutex<Vec<LaunchKind>>>) -> Launcher {
    Arc::new(move |req: LaunchRequest| {
        kinds.lock().unwrap().push(req.kind);
        let config = clarity_engine::load_config(req.config.as_deref().ok_or("no config")?)
            .map_err(|e| e.to_string())?;
        let dir = clarity_engine::output_dir(&config, None).map_err(|e| e.to_string())?;
        let settings = config.probe.clone().unwrap_or_default();
        let prepared = clarity_engine::prepare(config).map_err(|e| e.to_string())?;
        let opts = clarity_engine::ExecOptions {
            jobs: 1,
            interrupt: Some(req.interrupt),
            ..Default::default()
        };
        let rt = runtime();
        match req.kind {
            LaunchKind::Run => {
                match rt.block_on(clarity_engine::run_sweep(&prepared, &dir, &opts)) {
                    Ok(_) => {}
                    Err(clarity_engine::EngineError::Interrupted { .. }) => return Ok(130),
                    Err(e) => return Err(e.to_string()),
                }
                clarity_analysis::analyze_dir(&dir, &Default::default())
                    .map_err(|e| e.to_string())?;
            }
            LaunchKind::Probe => {
                let _lock = clarity_engine::artifacts::prepare_output_dir(&dir, &prepared.plan)
                    .map_err(|e| e.to_string())?;
                clarity_engine::artifacts::write_plan(&dir, &prepared.plan)
                    .map_err(|e| e.to_string())?;
                rt.block_on(clarity_probe::run_probe(&prepared, &settings, &dir, &opts))
                    .map_err(|e| e.to_string())?;
            }
            LaunchKind::Report => return Err("no reports here".into()),
        }
        Ok(0)
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

/// The job's final progress (its event stream ends there).
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

/// Runs `s.toml` (the probed config, output `out/s`) into an interrupted sweep: plan.json and
/// the first `runs` runs in the journal, no observations table.
fn interrupted_sweep(root: &Path, runs: usize) {
    std::fs::write(root.join("s.toml"), probed_config("out/s")).unwrap();
    let config = clarity_engine::load_config(&root.join("s.toml")).unwrap();
    let dir = clarity_engine::output_dir(&config, None).unwrap();
    let prepared = clarity_engine::prepare(config).unwrap();
    let opts = clarity_engine::ExecOptions {
        jobs: 1,
        abort_after: Some(runs),
        ..Default::default()
    };
    std::thread::scope(|s| {
        s.spawn(|| {
            let r = runtime().block_on(clarity_engine::run_sweep(&prepared, &dir, &opts));
            assert!(
                matches!(r, Err(clarity_engine::EngineError::Interrupted { .. })),
                "{r:?}"
            );
        })
        .join()
        .unwrap();
    });
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn resume_runs_the_sweeps_config_again_and_finishes_it() {
    let root = tempfile::tempdir().unwrap();
    interrupted_sweep(root.path(), 5);
    let kinds = Arc::new(Mutex::new(Vec::new()));
    let app = app_with(root.path(), launcher(kinds.clone()));
    let s = get(&app, "/api/v1/sweeps/out%2Fs").await.json();
    assert_eq!(s["status"], "incomplete");
    let page = get(&app, "/sweeps/out%2Fs").await.text();
    assert!(
        page.contains(r#"id="resume" data-kind="resume" data-sweep="out/s""#),
        "an incomplete sweep offers Resume"
    );
    assert!(page.contains(r#"id="run-probe""#));

    let r = post_json(&app, "/api/v1/jobs", r#"{"kind":"resume","sweep":"out/s"}"#).await;
    assert_eq!(r.status, StatusCode::ACCEPTED, "{}", r.text());
    let p = r.json();
    assert_eq!(
        (
            p["kind"].as_str(),
            p["config"].as_str(),
            p["sweep"].as_str()
        ),
        (Some("resume"), Some("s.toml"), Some("out/s"))
    );
    let last = wait_for(&app, p["id"].as_u64().unwrap()).await;
    assert_eq!(
        (
            last["status"].as_str(),
            last["done"].as_u64(),
            last["planned"].as_u64()
        ),
        (Some("finished"), Some(24), Some(24)),
        "{last}"
    );
    assert_eq!(*kinds.lock().unwrap(), vec![LaunchKind::Run]);
    // The resume kept the 5 runs of the first attempt and ran only the other 19; the sealed
    // table holds all 24 (the journal is dropped once the sweep is sealed).
    let telemetry: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(root.path().join("out/s/telemetry.json")).unwrap(),
    )
    .unwrap();
    let t = &telemetry["telemetry"];
    assert_eq!(
        (t["from_journal"].as_u64(), t["executed"].as_u64()),
        (Some(5), Some(19)),
        "{telemetry}"
    );
    let records = clarity_engine::artifacts::SweepRecords::finished(&root.path().join("out/s"))
        .expect("a sealed sweep");
    let mut rows = 0;
    records
        .for_each(|_, _| {
            rows += 1;
            Ok::<(), clarity_engine::EngineError>(())
        })
        .unwrap();
    assert_eq!(rows, 24);
    let s = get(&app, "/api/v1/sweeps/out%2Fs").await.json();
    assert_eq!(s["status"], "analysed");
    assert!(
        !get(&app, "/sweeps/out%2Fs")
            .await
            .text()
            .contains(r#"id="resume""#),
        "an analysed sweep offers no Resume"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_probe_job_writes_probe_json_and_the_console_shows_it() {
    let root = tempfile::tempdir().unwrap();
    crate::util::run_sweep(root.path(), "s", "out/s", 0);
    // The probe settings live in the config (rewritten with a [probe] table: same plan).
    std::fs::write(root.path().join("s.toml"), probed_config("out/s")).unwrap();
    let kinds = Arc::new(Mutex::new(Vec::new()));
    let app = app_with(root.path(), launcher(kinds.clone()));
    let page = get(&app, "/sweeps/out%2Fs").await.text();
    assert!(page.contains(r#"id="run-probe" data-kind="probe""#));
    assert!(!page.contains(r#"id="resume""#) && !page.contains(r#"id="probe-link""#));
    get(&app, "/sweeps/out%2Fs/probe")
        .await
        .assert_error_page(StatusCode::NOT_FOUND, "has no probe.json");

    let r = post_json(&app, "/api/v1/jobs", r#"{"kind":"probe","sweep":"out/s"}"#).await;
    assert_eq!(r.status, StatusCode::ACCEPTED, "{}", r.text());
    assert_eq!(r.json()["kind"], "probe");
    let last = wait_for(&app, r.json()["id"].as_u64().unwrap()).await;
    assert_eq!(last["status"], "finished", "{last}");
    assert_eq!(last["phase"], "done");
    assert_eq!(*kinds.lock().unwrap(), vec![LaunchKind::Probe]);
    // Counted from the probe's own journal.
    let probe_runs = std::fs::read_to_string(root.path().join("out/s/probe/journal.jsonl"))
        .unwrap()
        .lines()
        .count() as u64;
    assert!(
        probe_runs > 0 && last["done"].as_u64() == Some(probe_runs),
        "{last}"
    );
    let job_page = get(&app, "/jobs/1").await.text();
    assert!(
        job_page
            .contains(r#"<a id="probe-result" class="job-result" href="/sweeps/out%2Fs/probe">"#)
    );

    // The API opens it, the sweep page links to it, the probe page shows it.
    let doc = get(&app, "/api/v1/sweeps/out%2Fs").await.json()["probe"].clone();
    assert_eq!(doc["kind"], "clarity_probe");
    assert!(
        get(&app, "/sweeps/out%2Fs")
            .await
            .text()
            .contains(r#"id="probe-link" href="/sweeps/out%2Fs/probe""#)
    );
    let html = get(&app, "/sweeps/out%2Fs/probe").await.text();
    assert!(html.contains(r#"id="probe-verdicts""#), "{html}");
    for fill in ["constant", "mean", "all_fills"] {
        assert!(html.contains(&format!(r#"data-fill="{fill}""#)), "{fill}");
    }
    let headline = doc["cohort"]["specificity_headline"].as_str().unwrap();
    let verdict = doc["cohort"][headline]["specificity"]["constant"]["flip"]["verdict"]
        .as_str()
        .unwrap();
    let shown = format!(
        r#"<span class="verdict {}">{}</span>"#,
        verdict.replace('_', "-"),
        verdict.replace('_', " ")
    );
    assert!(html.contains(&shown), "{shown}");
    // The first case is selected: its overlay, the outline layer over the image, its regions.
    let case = &doc["cases"][0];
    let cid = case["id"].as_str().unwrap();
    assert!(html.contains(&format!(r#"<h2 id="case-title">{cid}</h2>"#)));
    let overlay = case["overlay"]["file"].as_str().unwrap();
    let src = format!(
        "/api/v1/sweeps/out%2Fs/files/{}",
        clarity_server::encode_id(overlay)
    );
    assert!(html.contains(&format!(
        r#"id="probe-heatmap" class="probe-layer" src="{src}""#
    )));
    assert!(html.contains(r#"id="probe-plain""#) && html.contains(r#"viewBox="0 0 64 64""#));
    let regions = case["regions"].as_array().unwrap();
    assert_eq!(html.matches(r#"<tr class="region "#).count(), regions.len());
    let controls = regions
        .iter()
        .filter(|r| r["control_of"].is_string())
        .count();
    assert_eq!(
        html.matches(r#"<g class="outline control""#).count(),
        controls
    );
    // The overlay PNG comes through the file route.
    let png = get(&app, &src).await;
    assert_eq!(png.status, StatusCode::OK);
    assert_eq!(png.headers["content-type"], "image/png");
    assert_eq!(
        png.body,
        std::fs::read(root.path().join("out/s").join(overlay)).unwrap()
    );
    // Another case by query; an unknown one is a 404 page naming it.
    let other = doc["cases"][1]["id"].as_str().unwrap();
    let html = get(
        &app,
        &format!(
            "/sweeps/out%2Fs/probe?case={}",
            clarity_server::encode_id(other)
        ),
    )
    .await
    .text();
    assert!(html.contains(&format!(r#"<h2 id="case-title">{other}</h2>"#)));
    get(&app, "/sweeps/out%2Fs/probe?case=nope")
        .await
        .assert_error_page(StatusCode::NOT_FOUND, "no case `nope`");
    // Only overlays/ below the sweep is served, and only plain names in it.
    for bad in [
        "probe%2Fjournal.jsonl",
        "overlays%2F..%2Fplan.json",
        "overlays%2F.hidden.png",
        "overlays%2Fa%2Fb.png",
    ] {
        get(&app, &format!("/api/v1/sweeps/out%2Fs/files/{bad}"))
            .await
            .assert_error(StatusCode::FORBIDDEN, "expected the name of a file");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn resume_and_probe_refusals_are_json_errors() {
    let root = tempfile::tempdir().unwrap();
    interrupted_sweep(root.path(), 3);
    let kinds = Arc::new(Mutex::new(Vec::new()));
    let app = app_with(root.path(), launcher(kinds.clone()));
    // Shapes: a resume names a sweep, not a config; a run names no sweep; kinds are known.
    for (body, needle) in [
        (r#"{"kind":"resume","config":"s.toml"}"#, "expected"),
        (r#"{"kind":"run","sweep":"out/s"}"#, "expected"),
        (
            r#"{"kind":"probe","toml":"x","save_as":"p.toml"}"#,
            "expected",
        ),
        (
            r#"{"kind":"bisect","sweep":"out/s"}"#,
            "`kind`: expected run, probe, resume or report",
        ),
    ] {
        post_json(&app, "/api/v1/jobs", body)
            .await
            .assert_error(StatusCode::BAD_REQUEST, needle);
    }
    // Paths outside the root, and things that are not sweeps.
    post_json(&app, "/api/v1/jobs", r#"{"kind":"resume","sweep":"../x"}"#)
        .await
        .assert_error(StatusCode::FORBIDDEN, "");
    post_json(
        &app,
        "/api/v1/jobs",
        r#"{"kind":"probe","config":"/etc/x.toml"}"#,
    )
    .await
    .assert_error(StatusCode::FORBIDDEN, "");
    post_json(&app, "/api/v1/jobs", r#"{"kind":"resume","sweep":"out"}"#)
        .await
        .assert_error(StatusCode::NOT_FOUND, "not a sweep directory");
    // Held by another clarity (here: this test): the engine's lock error, before any thread.
    let lock = clarity_engine::lock::OutputLock::acquire(&root.path().join("out/s")).unwrap();
    for body in [
        r#"{"kind":"resume","sweep":"out/s"}"#,
        r#"{"kind":"probe","sweep":"out/s"}"#,
        r#"{"kind":"probe","config":"s.toml"}"#,
        r#"{"config":"s.toml"}"#,
    ] {
        post_json(&app, "/api/v1/jobs", body)
            .await
            .assert_error(StatusCode::CONFLICT, "in use by another clarity process");
    }
    drop(lock);
    // Without the config under the root, the sweep cannot be resumed (nor probed).
    std::fs::remove_file(root.path().join("s.toml")).unwrap();
    for kind in ["resume", "probe"] {
        post_json(
            &app,
            "/api/v1/jobs",
            &format!(r#"{{"kind":"{kind}","sweep":"out/s"}}"#),
        )
        .await
        .assert_error(
            StatusCode::CONFLICT,
            "no config under the served root plans this sweep (plan",
        );
    }
    assert!(kinds.lock().unwrap().is_empty(), "nothing was launched");
    assert!(
        get(&app, "/api/v1/jobs").await.json()["jobs"]
            .as_array()
            .unwrap()
            .is_empty()
    );
}
