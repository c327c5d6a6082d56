//! A served root with real sweeps, and request helpers.

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use axum::Router;
use axum::body::Body;
use axum::http::{Request, StatusCode, header};
use clarity_server::ServerConfig;
use http_body_util::BodyExt;
use serde_json::Value;
use tower::ServiceExt;

/// A small sweep config: 4 phantoms × blur {0, 1, 4} × noise {0, 0.1}, one seed = 24 runs.
pub fn config(output: &str, phantom_seed: u64) -> String {
    format!(
        r#"prompt = "Is there a nodule? Where?"
seeds = [0]
output = "{output}"

[cohort]
kind = "builtin"
n = 4
size = 64
depth = 8
seed = {phantom_seed}

[adapter]
kind = "builtin"

[normalization]
mode = "exact"

[axes]
"gaussian_blur.sigma" = [1, 4]
"gaussian_noise.sigma" = [0.1]

[analysis]
bootstrap_iterations = 50
cliff_threshold = 0.8
"#
    )
}

/// Writes `name.toml` under `root` and runs + analyses it through the engine and analysis.
pub fn run_sweep(root: &Path, name: &str, output: &str, phantom_seed: u64) -> PathBuf {
    run_config(root, name, &config(output, phantom_seed))
}

/// Writes `text` to `name.toml` under `root` and runs + analyses it; returns the sweep's dir.
pub fn run_config(root: &Path, name: &str, text: &str) -> PathBuf {
    let cfg = root.join(format!("{name}.toml"));
    std::fs::write(&cfg, text).unwrap();
    let config = clarity_engine::load_config(&cfg).unwrap();
    let dir = clarity_engine::output_dir(&config, None).unwrap();
    let prepared = clarity_engine::prepare(config).unwrap();
    let opts = clarity_engine::ExecOptions {
        jobs: 2,
        ..Default::default()
    };
    // On its own thread: the callers are async tests (a runtime cannot start inside one).
    std::thread::scope(|s| {
        s.spawn(|| {
            let rt = tokio::runtime::Builder::new_multi_thread()
                .enable_all()
                .build()
                .unwrap();
            rt.block_on(clarity_engine::run_sweep(&prepared, &dir, &opts))
                .unwrap();
        })
        .join()
        .unwrap();
    });
    clarity_analysis::analyze_dir(&dir, &Default::default()).unwrap();
    dir
}

/// One root for the read-only tests: `sweeps/a` and `sweeps/nested/b` (other phantoms), with
/// their configs at the top; kept for the whole test binary.
pub fn shared_root() -> &'static Path {
    static ROOT: OnceLock<tempfile::TempDir> = OnceLock::new();
    ROOT.get_or_init(|| {
        let d = tempfile::tempdir().unwrap();
        run_sweep(d.path(), "a", "sweeps/a", 0);
        run_sweep(d.path(), "b", "sweeps/nested/b", 7);
        d
    })
    .path()
}

pub fn app(root: &Path) -> Router {
    clarity_server::router(ServerConfig {
        root: root.to_path_buf(),
        token: None,
        launcher: None,
    })
    .unwrap()
}

pub struct Resp {
    pub status: StatusCode,
    pub headers: axum::http::HeaderMap,
    pub body: Vec<u8>,
}

impl Resp {
    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.body).unwrap_or_else(|e| {
            panic!(
                "not JSON ({e}): {}",
                String::from_utf8_lossy(&self.body[..self.body.len().min(300)])
            )
        })
    }
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
    /// Asserts a JSON error with this status and a message containing `needle`.
    pub fn assert_error(&self, status: StatusCode, needle: &str) {
        assert_eq!(self.status, status, "{}", self.text());
        let m = self.json()["error"].as_str().unwrap().to_string();
        assert!(m.contains(needle), "error `{m}` lacks `{needle}`");
    }
    /// Asserts a console error page with this status whose message contains `needle`.
    pub fn assert_error_page(&self, status: StatusCode, needle: &str) {
        assert_eq!(self.status, status, "{}", self.text());
        let t = self.text();
        assert!(
            t.contains(r#"id="error""#) && t.contains(needle),
            "page lacks `{needle}`: {t}"
        );
    }
}

pub async fn send(app: &Router, req: Request<Body>) -> Resp {
    let r = app.clone().oneshot(req).await.unwrap();
    let status = r.status();
    let headers = r.headers().clone();
    let body = r.into_body().collect().await.unwrap().to_bytes().to_vec();
    Resp {
        status,
        headers,
        body,
    }
}

pub async fn get(app: &Router, uri: &str) -> Resp {
    send(app, Request::get(uri).body(Body::empty()).unwrap()).await
}

pub async fn post_json(app: &Router, uri: &str, body: &str) -> Resp {
    send(
        app,
        Request::post(uri)
            .header(header::CONTENT_TYPE, "application/json")
            .body(Body::from(body.to_string()))
            .unwrap(),
    )
    .await
}
