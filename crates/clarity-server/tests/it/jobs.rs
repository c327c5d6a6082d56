//! Starting sweeps: validation, progress over server-sent events, cancel. The launcher here
//! runs the engine and the analysis directly; the CLI's tests drive the real `clarity run`
//! launcher through the same routes.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use axum::http::StatusCode;
use clarity_server::{LaunchRequest, Launcher, ServerConfig};
use serde_json::Value;

use crate::util::{config, get, post_json};

fn engine_launcher(calls: Arc<AtomicUsize>) -> Launcher {
    Arc::new(move |req: LaunchRequest| {
        calls.fetch_add(1, Ordering::SeqCst);
        let config = clarity_engine::load_config(req.config.as_deref().ok_or("no config")?)
            .map_err(|e| e.to_string())?;
        let dir = clarity_engine::output_dir(&config, None).map_err(|e| e.to_string())?;
        let prepared = clarity_engine::prepare(config).map_err(|e| e.to_string())?;
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        let opts = clarity_engine::ExecOptions {
            jobs: 1,
            interrupt: Some(req.interrupt),
            ..Default::default()
        };
        match rt.block_on(clarity_engine::run_sweep(&prepared, &dir, &opts)) {
            Ok(_) => {}
            Err(clarity_engine::EngineError::Interrupted { .. }) => return Ok(130),
            Err(e) => return Err(e.to_string()),
        }
        clarity_analysis::analyze_dir(&dir, &Default::default()).map_err(|e| e.to_string())?;
        Ok(0)
    })
}

fn app_with(root: &std::path::Path, launcher: Option<Launcher>) -> axum::Router {
    clarity_server::router(ServerConfig {
        root: root.to_path_buf(),
        token: None,
        launcher,
    })
    .unwrap()
}

/// Parses an SSE body into the JSON data of its `progress` events.
fn events(body: &str) -> Vec<Value> {
    body.split("\n\n")
        .filter(|e| e.contains("event: progress"))
        .filter_map(|e| e.lines().find_map(|l| l.strip_prefix("data: ")))
        .map(|d| serde_json::from_str(d).unwrap())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_started_sweep_reports_progress_until_done() {
    let root = tempfile::tempdir().unwrap();
    std::fs::write(root.path().join("s.toml"), config("out/s", 0)).unwrap();
    let calls = Arc::new(AtomicUsize::new(0));
    let app = app_with(root.path(), Some(engine_launcher(calls.clone())));
    let r = post_json(&app, "/api/v1/jobs", r#"{"config":"s.toml"}"#).await;
    assert_eq!(r.status, StatusCode::ACCEPTED, "{}", r.text());
    let p = r.json();
    assert_eq!(
        (p["id"].as_u64(), p["sweep"].as_str(), p["status"].as_str()),
        (Some(1), Some("out/s"), Some("running"))
    );
    // The event stream ends with the final state; counts never go back.
    let body = tokio::time::timeout(
        std::time::Duration::from_secs(120),
        get(&app, "/api/v1/jobs/1/events"),
    )
    .await
    .expect("the job finishes");
    assert_eq!(body.headers["content-type"], "text/event-stream");
    let evs = events(&body.text());
    let last = evs.last().unwrap();
    assert_eq!(last["status"], "finished", "{last}");
    assert_eq!(
        (
            last["percent"].as_f64(),
            last["done"].as_u64(),
            last["planned"].as_u64()
        ),
        (Some(100.0), Some(24), Some(24))
    );
    assert_eq!(last["exit_code"], 0);
    for w in evs.windows(2) {
        assert!(w[0]["done"].as_u64() <= w[1]["done"].as_u64());
    }
    assert_eq!(calls.load(Ordering::SeqCst), 1);
    assert_eq!(get(&app, "/api/v1/jobs/1").await.json(), *last);
    assert_eq!(get(&app, "/api/v1/jobs").await.json()["jobs"][0], *last);
    // The sweep is served like any other.
    let list = get(&app, "/api/v1/sweeps").await.json();
    assert_eq!(list["sweeps"][0]["id"], "out/s");
    assert_eq!(list["sweeps"][0]["status"], "analysed");
    let page = get(&app, "/jobs/1").await.text();
    assert!(page.contains(r#"id="bar""#) && page.contains(r#"href="/sweeps/out%2Fs""#));
    get(&app, "/api/v1/jobs/1/cancel")
        .await
        .assert_error(StatusCode::METHOD_NOT_ALLOWED, "not allowed");
    post_json(&app, "/api/v1/jobs/1/cancel", "")
        .await
        .assert_error(StatusCode::CONFLICT, "not running");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cancel_interrupts_the_launcher() {
    let root = tempfile::tempdir().unwrap();
    std::fs::write(root.path().join("s.toml"), config("out/s", 0)).unwrap();
    let waits: Launcher = Arc::new(|req: LaunchRequest| {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(req.interrupt.notified());
        Ok(130)
    });
    let app = app_with(root.path(), Some(waits));
    assert_eq!(
        post_json(&app, "/api/v1/jobs", r#"{"config":"s.toml"}"#)
            .await
            .status,
        StatusCode::ACCEPTED
    );
    // A second start in the same directory while it runs is refused.
    post_json(&app, "/api/v1/jobs", r#"{"config":"s.toml"}"#)
        .await
        .assert_error(StatusCode::CONFLICT, "already running in `out/s`");
    let c = post_json(&app, "/api/v1/jobs/1/cancel", "").await;
    assert_eq!(c.status, StatusCode::OK, "{}", c.text());
    let body = tokio::time::timeout(
        std::time::Duration::from_secs(30),
        get(&app, "/api/v1/jobs/1/events"),
    )
    .await
    .unwrap();
    let last = events(&body.text()).pop().unwrap();
    assert_eq!(
        (last["status"].as_str(), last["exit_code"].as_u64()),
        (Some("cancelled"), Some(130))
    );
}

#[tokio::test]
async fn configs_must_stay_under_the_root() {
    let root = tempfile::tempdir().unwrap();
    let outside = tempfile::tempdir().unwrap();
    std::fs::write(root.path().join("escape.toml"), config("../escaped", 0)).unwrap();
    std::fs::write(
        root.path().join("abs.toml"),
        config(&outside.path().join("o").display().to_string(), 0),
    )
    .unwrap();
    std::fs::create_dir(outside.path().join("imgs")).unwrap();
    let folder = config("out/f", 0).replace(
        "kind = \"builtin\"\nn = 4\nsize = 64\ndepth = 8\nseed = 0",
        &format!(
            "kind = \"folder\"\npath = \"{}\"",
            outside.path().join("imgs").display()
        ),
    );
    std::fs::write(root.path().join("folder.toml"), folder).unwrap();
    std::fs::write(root.path().join("bad.toml"), "cohort = 3").unwrap();
    std::fs::write(outside.path().join("x.toml"), config("out/x", 0)).unwrap();
    let calls = Arc::new(AtomicUsize::new(0));
    let app = app_with(root.path(), Some(engine_launcher(calls.clone())));
    let start = |c: &str| format!(r#"{{"config":{}}}"#, serde_json::json!(c));
    post_json(&app, "/api/v1/jobs", &start("escape.toml"))
        .await
        .assert_error(StatusCode::FORBIDDEN, "outside the served root");
    post_json(&app, "/api/v1/jobs", &start("abs.toml"))
        .await
        .assert_error(StatusCode::FORBIDDEN, "outside the served root");
    post_json(&app, "/api/v1/jobs", &start("folder.toml"))
        .await
        .assert_error(StatusCode::FORBIDDEN, "cohort");
    post_json(&app, "/api/v1/jobs", &start("bad.toml"))
        .await
        .assert_error(StatusCode::BAD_REQUEST, "bad.toml");
    post_json(&app, "/api/v1/jobs", &start("../x.toml"))
        .await
        .assert_error(StatusCode::FORBIDDEN, "`..`");
    post_json(
        &app,
        "/api/v1/jobs",
        &start(&outside.path().join("x.toml").display().to_string()),
    )
    .await
    .assert_error(StatusCode::FORBIDDEN, "relative");
    post_json(&app, "/api/v1/jobs", &start("missing.toml"))
        .await
        .assert_error(StatusCode::NOT_FOUND, "missing.toml");
    assert_eq!(calls.load(Ordering::SeqCst), 0, "nothing was launched");
    get(&app, "/api/v1/jobs/9")
        .await
        .assert_error(StatusCode::NOT_FOUND, "no job 9");
    get(&app, "/api/v1/jobs/x/events")
        .await
        .assert_error(StatusCode::NOT_FOUND, "no job");
    let none = app_with(root.path(), None);
    post_json(&none, "/api/v1/jobs", &start("escape.toml"))
        .await
        .assert_error(StatusCode::NOT_IMPLEMENTED, "cannot start");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_posted_config_is_saved_under_the_root_and_run_there() {
    let root = tempfile::tempdir().unwrap();
    std::fs::create_dir(root.path().join("configs")).unwrap();
    let calls = Arc::new(AtomicUsize::new(0));
    let app = app_with(root.path(), Some(engine_launcher(calls.clone())));
    let post = |toml: &str, save_as: &str| {
        serde_json::json!({ "toml": toml, "save_as": save_as }).to_string()
    };
    let r = post_json(
        &app,
        "/api/v1/jobs",
        &post(&config("../out/posted", 0), "configs/p.toml"),
    )
    .await;
    assert_eq!(r.status, StatusCode::ACCEPTED, "{}", r.text());
    assert_eq!(r.json()["sweep"], "out/posted");
    assert_eq!(r.json()["config"], "configs/p.toml");
    assert_eq!(
        std::fs::read_to_string(root.path().join("configs/p.toml")).unwrap(),
        config("../out/posted", 0)
    );
    let body = tokio::time::timeout(
        std::time::Duration::from_secs(120),
        get(&app, "/api/v1/jobs/1/events"),
    )
    .await
    .unwrap();
    assert_eq!(events(&body.text()).pop().unwrap()["status"], "finished");
    assert!(root.path().join("out/posted/plan.json").is_file());
    // Posting the same text again is allowed (it resumes); other text under that name is not.
    let again = post_json(
        &app,
        "/api/v1/jobs",
        &post(&config("../out/posted", 0), "configs/p.toml"),
    )
    .await;
    assert_eq!(again.status, StatusCode::ACCEPTED, "{}", again.text());
    post_json(
        &app,
        "/api/v1/jobs",
        &post(&config("../out/other", 0), "configs/p.toml"),
    )
    .await
    .assert_error(StatusCode::CONFLICT, "exists with other contents");
    let body = tokio::time::timeout(
        std::time::Duration::from_secs(120),
        get(&app, "/api/v1/jobs/2/events"),
    )
    .await
    .unwrap();
    assert_eq!(events(&body.text()).pop().unwrap()["status"], "finished");
    assert_eq!(calls.load(Ordering::SeqCst), 2);
}

#[tokio::test]
async fn a_posted_config_may_only_reference_paths_under_the_root() {
    let root = tempfile::tempdir().unwrap();
    let outside = tempfile::tempdir().unwrap();
    std::fs::create_dir(outside.path().join("imgs")).unwrap();
    let calls = Arc::new(AtomicUsize::new(0));
    let app = app_with(root.path(), Some(engine_launcher(calls.clone())));
    let post = |toml: &str, save_as: &str| {
        serde_json::json!({ "toml": toml, "save_as": save_as }).to_string()
    };
    let builtin = "kind = \"builtin\"\nn = 4\nsize = 64\ndepth = 8\nseed = 0";
    let folder = |p: &str| {
        config("out/f", 0).replace(builtin, &format!("kind = \"folder\"\npath = \"{p}\""))
    };
    let cases = [
        // A cohort outside the root, absolute or through `..`.
        (
            post(
                &folder(&outside.path().join("imgs").display().to_string()),
                "f.toml",
            ),
            StatusCode::FORBIDDEN,
            "cohort",
        ),
        (
            post(&folder("../imgs"), "f.toml"),
            StatusCode::FORBIDDEN,
            "cohort",
        ),
        // Output outside the root.
        (
            post(&config("../escaped", 0), "e.toml"),
            StatusCode::FORBIDDEN,
            "output",
        ),
        // Adapters that run a program or fetch a URL.
        (
            post(
                &config("out/c", 0).replace(
                    "[adapter]\nkind = \"builtin\"",
                    "[adapter]\nkind = \"command\"\nprogram = \"/bin/sh\"",
                ),
                "c.toml",
            ),
            StatusCode::FORBIDDEN,
            "not `command`",
        ),
        // Saved outside the root, hidden, or not as .toml.
        (
            post(&config("out/x", 0), "../x.toml"),
            StatusCode::FORBIDDEN,
            "`..`",
        ),
        (
            post(&config("out/x", 0), "/tmp/x.toml"),
            StatusCode::FORBIDDEN,
            "relative",
        ),
        (
            post(&config("out/x", 0), ".x.toml"),
            StatusCode::BAD_REQUEST,
            "hidden",
        ),
        (
            post(&config("out/x", 0), "x.txt"),
            StatusCode::BAD_REQUEST,
            ".toml",
        ),
        (
            post(&config("out/x", 0), "no/dir/x.toml"),
            StatusCode::BAD_REQUEST,
            "does not exist",
        ),
        // Not a config: the message names the file as posted, not a temporary one.
        (
            post("cohort = 3", "bad.toml"),
            StatusCode::BAD_REQUEST,
            "bad.toml",
        ),
        // Neither or both ways of naming a config.
        (
            r#"{"toml":"x"}"#.to_string(),
            StatusCode::BAD_REQUEST,
            "save_as",
        ),
        (
            r#"{"config":"a.toml","toml":"x","save_as":"a.toml"}"#.to_string(),
            StatusCode::BAD_REQUEST,
            "expected",
        ),
    ];
    for (body, status, needle) in &cases {
        post_json(&app, "/api/v1/jobs", body)
            .await
            .assert_error(*status, needle);
    }
    assert_eq!(calls.load(Ordering::SeqCst), 0, "nothing was launched");
    // Nothing was left behind: no config, no temporary file.
    let left: Vec<_> = std::fs::read_dir(root.path())
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert!(left.is_empty(), "{left:?}");
}
