//! `clarity analyze DIR`, `clarity report DIR` and `clarity serve-model` through the binary.

use std::io::{BufRead, BufReader, Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

use crate::util::{Sweep, artifacts, observation_lines};

fn finished_without_analysis() -> Sweep {
    let s = Sweep::new();
    s.clarity()
        .args(["run", "sweep.toml", "--no-analysis", "-q"])
        .assert()
        .code(0);
    s
}

#[test]
fn analyze_then_report_equal_what_run_writes() {
    // One sweep analysed by `clarity run`, one by `analyze` + `report` afterwards.
    let s = Sweep::new();
    s.clarity()
        .args(["run", "sweep.toml", "-o", "full", "-q"])
        .assert()
        .code(0);
    s.clarity()
        .args(["run", "sweep.toml", "-o", "later", "--no-analysis", "-q"])
        .assert()
        .code(0);
    assert!(!s.path("later/metrics.json").exists());
    let out = s
        .clarity()
        .args(["analyze", "later"])
        .assert()
        .code(0)
        .get_output()
        .stdout
        .clone();
    let text = String::from_utf8(out).unwrap();
    assert!(text.contains("Clarity sweep"), "{text}");
    assert!(
        text.contains("runs: 36 recorded of 36 planned: 36 ok, 0 failed"),
        "{text}"
    );
    assert!(text.contains("metrics.json"), "{text}");
    // Contrast alone flips every answer; brightness alone never does; three cases decide
    // neither on the interval.
    assert!(
        text.contains("`contrast.factor`: inconclusive — at 0.5 ×, ESI 0.000 ["),
        "{text}"
    );
    assert!(
        text.contains("`brightness.factor` (increasing): inconclusive — at 1.5 ×, ESI 1.000 ["),
        "{text}"
    );
    // Without --config the report has no thumbnails, so it is compared after `--config`.
    s.clarity()
        .args(["report", "later", "--config", "sweep.toml", "-q"])
        .assert()
        .code(0);
    crate::util::assert_same_artifacts(&s.path("full"), &s.path("later"));
    // The bundle was re-sealed over the analysis: inspect verifies it.
    s.clarity()
        .args(["inspect", "later"])
        .assert()
        .code(0)
        .stdout(predicates::str::contains("files verified"));
}

#[test]
fn analyze_options_and_json() {
    let s = finished_without_analysis();
    let out = s
        .clarity()
        .args([
            "analyze",
            "out",
            "--bootstrap-iterations",
            "20",
            "--cliff-threshold",
            "0.99",
            "--json",
        ])
        .assert()
        .code(0)
        .get_output()
        .stdout
        .clone();
    let v: serde_json::Value = serde_json::from_slice(&out).unwrap();
    assert_eq!(v["cliff_threshold"], 0.99);
    assert_eq!(v["runs"]["ok"], 36);
    assert_eq!(v["exit_code"], 0);
    let metrics: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(s.path("out/metrics.json")).unwrap())
            .unwrap();
    assert!(
        metrics.to_string().contains("\"iterations\":20"),
        "bootstrap iterations recorded: {metrics}"
    );
    // An out-of-range threshold: a usage error, nothing rewritten.
    let before = artifacts(&s.path("out"));
    s.clarity()
        .args(["analyze", "out", "--cliff-threshold", "1.5"])
        .assert()
        .code(2)
        .stderr(predicates::str::contains("cliff_threshold"));
    assert_eq!(artifacts(&s.path("out")), before);
}

#[test]
fn analyze_and_report_refuse_what_is_not_a_sweep() {
    let s = Sweep::new();
    std::fs::create_dir_all(s.path("empty")).unwrap();
    for cmd in ["analyze", "report"] {
        s.clarity()
            .args([cmd, "empty"])
            .assert()
            .code(2)
            .stderr(predicates::str::contains(
                "empty: not a sweep directory (no plan.json and no sweep_manifest.json)",
            ));
    }
    // Report before analysis: says what to run.
    let s = finished_without_analysis();
    s.clarity()
        .args(["report", "out"])
        .assert()
        .code(2)
        .stderr(predicates::str::contains("metrics.json"))
        .stderr(predicates::str::contains("clarity analyze"));
    assert!(!s.path("out/report.html").exists());
    // A config of another sweep: refused, no report written.
    s.clarity().args(["analyze", "out", "-q"]).assert().code(0);
    s.write(
        "other.toml",
        &crate::util::CONFIG.replace("[1.5, 0.5]", "[1.5]"),
    );
    s.clarity()
        .args(["report", "out", "--config", "other.toml"])
        .assert()
        .code(2)
        .stderr(predicates::str::contains("not this sweep's config"));
    assert!(!s.path("out/report.html").exists());
    // A malformed --baseline is a usage error from the argument parser.
    s.clarity()
        .args(["analyze", "out", "--baseline", "brightness"])
        .assert()
        .code(2)
        .stderr(predicates::str::contains("expected axis=value"));
}

fn r2l_reference() -> Option<PathBuf> {
    let p = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../../shared/reference/r2l_sweep");
    if p.join("sweep_manifest.json").is_file() {
        Some(p)
    } else {
        eprintln!("SKIPPED: {} is absent", p.display());
        None
    }
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for e in std::fs::read_dir(from).unwrap() {
        let e = e.unwrap();
        let target = to.join(e.file_name());
        if e.file_type().unwrap().is_dir() {
            copy_dir(&e.path(), &target);
        } else {
            std::fs::copy(e.path(), target).unwrap();
        }
    }
}

#[test]
fn r2l_sweep_analyze_report_and_tamper() {
    let Some(reference) = r2l_reference() else {
        return;
    };
    let s = Sweep::new();
    copy_dir(&reference, &s.path("r2l"));
    // The sample has no identity contrast: without --baseline the error says what to pass.
    s.clarity()
        .args(["analyze", "r2l"])
        .assert()
        .code(2)
        .stderr(predicates::str::contains("--baseline"));
    let args = [
        "analyze",
        "r2l",
        "--baseline",
        "brightness=1.0,contrast=0.9",
        "--json",
    ];
    let out = s.clarity().args(args).assert().code(0).get_output().clone();
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["source"], "r2l");
    assert_eq!(v["runs"]["ok"], 12);
    assert_eq!(v["min_esi"], 1.0);
    let metrics = std::fs::read_to_string(s.path("r2l/metrics.json")).unwrap();
    let m: serde_json::Value = serde_json::from_str(&metrics).unwrap();
    let cells = m["cells"].as_array().unwrap();
    assert_eq!(cells.len(), 6);
    for c in cells {
        let esi = &c["esi"];
        assert_eq!(esi["value"].as_f64().or(esi.as_f64()), Some(1.0), "{c}");
    }
    s.clarity().args(["report", "r2l", "-q"]).assert().code(0);
    let html = std::fs::read_to_string(s.path("r2l/report.html")).unwrap();
    assert!(html.contains("r2l (every manifest hash verified)"));

    // A tampered manifest: analysis still written, mismatch named, exit 1.
    let run = "brightness=0p8_contrast=0p9_seed=42";
    let manifest = s.path(&format!("r2l/runs/{run}/manifest.json"));
    let mut text = std::fs::read_to_string(&manifest).unwrap();
    text.push(' ');
    std::fs::write(&manifest, text).unwrap();
    s.clarity()
        .args([
            "analyze",
            "r2l",
            "--baseline",
            "brightness=1.0,contrast=0.9",
        ])
        .assert()
        .code(1)
        .stdout(predicates::str::contains("manifest hashes: 1 do not match"))
        .stdout(predicates::str::contains(format!(
            "runs/{run}/manifest.json"
        )));
}

/// `clarity serve-model` on a free port, killed on drop.
struct Server {
    child: Child,
    addr: String,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn serve_model() -> Server {
    spawn_server(&["serve-model", "--addr", "127.0.0.1:0"])
}

/// Starts `clarity ARGS` and reads the address from the first line it prints.
fn spawn_server(args: &[&str]) -> Server {
    let mut child = Command::new(env!("CARGO_BIN_EXE_clarity"))
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    // "serving clarity-builtin on http://127.0.0.1:PORT (…"
    let addr = line
        .split("http://")
        .nth(1)
        .and_then(|r| r.split_whitespace().next())
        .and_then(|r| r.split('/').next())
        .unwrap_or_else(|| panic!("no address in {line:?}"))
        .to_string();
    Server { child, addr }
}

fn http_get(addr: &str, path: &str) -> String {
    let mut stream = std::net::TcpStream::connect(addr).unwrap();
    write!(
        stream,
        "GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut out = String::new();
    stream.read_to_string(&mut out).unwrap();
    out
}

/// (case, cell, seed) → answer, from the observations.
fn answers(dir: &Path) -> Vec<(String, u64, u64, String)> {
    let text = observation_lines(dir);
    text.lines()
        .map(|l| {
            let v: serde_json::Value = serde_json::from_str(l).unwrap();
            let answer = v["outcome"]["observation"]["answer"]
                .as_str()
                .expect(l)
                .to_string();
            (
                v["case_id"].as_str().unwrap().to_string(),
                v["cell"].as_u64().unwrap(),
                v["seed"].as_u64().unwrap(),
                answer,
            )
        })
        .collect()
}

#[test]
fn serve_and_serve_model_accept_a_host_name() {
    let server = spawn_server(&["serve-model", "--addr", "localhost:0"]);
    let health = http_get(&server.addr, "/health");
    assert!(health.starts_with("HTTP/1.1 200"), "{health}");
    let root = tempfile::tempdir().unwrap();
    let root = root.path().to_str().unwrap();
    let console = spawn_server(&["serve", "--root", root, "--addr", "localhost:0"]);
    let page = http_get(&console.addr, "/");
    assert!(page.starts_with("HTTP/1.1 200"), "{page}");
    for cmd in ["serve-model", "serve"] {
        let out = Command::new(env!("CARGO_BIN_EXE_clarity"))
            .args([cmd, "--addr", "no-such-host.invalid:0"])
            .output()
            .unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{cmd}: {err}");
        assert!(
            err.contains("--addr no-such-host.invalid:0: expected HOST:PORT"),
            "{err}"
        );
    }
}

#[test]
fn serve_model_answers_like_the_builtin_adapter() {
    let server = serve_model();
    let health = http_get(&server.addr, "/health");
    assert!(health.starts_with("HTTP/1.1 200"), "{health}");
    assert!(health.contains("ok"), "{health}");
    let models = http_get(&server.addr, "/v1/models");
    assert!(models.contains(clarity_serve_model_name()), "{models}");

    let s = Sweep::new();
    let common = r#"
prompt = "Is there a nodule? Where?"
seeds = [0]
[cohort]
kind = "builtin"
n = 3
size = 64
depth = 8
seed = 3
[normalization]
mode = "exact"
[axes]
"gaussian_blur.sigma" = [3]
[analysis]
bootstrap_iterations = 20
"#;
    s.write(
        "builtin.toml",
        &format!("output = \"b\"\n{common}\n[adapter]\nkind = \"builtin\"\n"),
    );
    s.write(
        "openai.toml",
        &format!(
            "output = \"o\"\n{common}\n[adapter]\nkind = \"openai\"\nmodel = \"{}\"\nbase_url = \"http://{}\"\ntemperature = 0.0\n",
            clarity_serve_model_name(),
            server.addr
        ),
    );
    for c in ["builtin.toml", "openai.toml"] {
        s.clarity()
            .args(["run", c, "--no-cache", "--no-report", "-q"])
            .assert()
            .code(0);
    }
    let (b, o) = (answers(&s.path("b")), answers(&s.path("o")));
    assert_eq!(b.len(), 6);
    assert_eq!(b, o, "the served model answers as the builtin adapter does");
}

#[test]
fn unreachable_openai_server_fails_runs_not_the_sweep() {
    // A port nothing listens on: every run fails with a connection error, is recorded with it,
    // and the sweep completes (exit 3) with the analysis written. (`preflight = false`: with
    // the check on, the sweep fails once before any run.)
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let s = Sweep::new();
    s.write(
        "down.toml",
        &format!(
            r#"prompt = "Is there a nodule?"
seeds = [0]
output = "down"
[cohort]
kind = "builtin"
n = 2
size = 64
[normalization]
mode = "exact"
[axes]
"gaussian_blur.sigma" = [2]
[analysis]
bootstrap_iterations = 20
[retry]
attempts = 1
[adapter]
kind = "openai"
model = "m"
base_url = "http://127.0.0.1:{port}"
preflight = false
max_retries = 1
backoff_base_ms = 1
backoff_max_ms = 2
timeout_s = 5
"#
        ),
    );
    s.clarity()
        .args(["run", "down.toml", "--no-cache", "--no-report", "-q"])
        .assert()
        .code(3);
    let obs = observation_lines(&s.path("down"));
    assert_eq!(obs.lines().count(), 4);
    for line in obs.lines() {
        let v: serde_json::Value = serde_json::from_str(line).unwrap();
        assert_eq!(v["outcome"]["status"], "failed", "{line}");
        // The engine tried once ([retry] attempts = 1); the adapter retried the request once.
        assert_eq!(v["outcome"]["attempts"], 1, "{line}");
        let e = v["outcome"]["error"].as_str().unwrap();
        assert!(e.contains(&format!("127.0.0.1:{port}")), "{e}");
        assert!(e.contains("gave up after 2 attempts"), "{e}");
    }
    let m: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(s.path("down/metrics.json")).unwrap())
            .unwrap();
    assert_eq!(m["runs"]["failed"], 4, "{m}");
}

#[test]
fn unreachable_openai_server_fails_the_sweep_once_in_preflight() {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let s = Sweep::new();
    s.write(
        "down.toml",
        &format!(
            r#"prompt = "Is there a nodule?"
seeds = [0]
output = "down"
[cohort]
kind = "builtin"
n = 2
size = 64
[normalization]
mode = "exact"
[axes]
"gaussian_blur.sigma" = [2]
[adapter]
kind = "openai"
model = "m"
base_url = "http://127.0.0.1:{port}"
max_retries = 1
backoff_base_ms = 1
backoff_max_ms = 2
timeout_s = 5
"#
        ),
    );
    let out = s
        .clarity()
        .args(["run", "down.toml", "--no-cache", "--no-report", "-q"])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains(&format!(
            "pre-flight check of model \"m\" at http://127.0.0.1:{port} failed"
        )),
        "{stderr}"
    );
    assert!(stderr.contains("preflight = false"), "{stderr}");
    // No run was attempted.
    let journal = std::fs::read_to_string(s.path("down/journal.jsonl")).unwrap_or_default();
    assert_eq!(journal.lines().count(), 0, "{journal}");
}

fn clarity_serve_model_name() -> &'static str {
    "clarity-builtin"
}
