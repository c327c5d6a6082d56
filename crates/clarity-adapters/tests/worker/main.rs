//! The `worker` adapter against a small POSIX-shell worker (`test_worker.sh`) whose
//! behaviour per request is chosen by the run's seed, so every failure mode is a real
//! process doing the real thing: crash, hang, garbage, silent exit, error response, wrong id.
#![cfg(unix)]

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use clarity_adapters::worker::{ImageTransport, WorkerAdapter, WorkerConfig};
use clarity_adapters::{Adapter, AdapterError, RunInput};
use clarity_core::Observation;
use clarity_image::{Channels, Image, Samples};

const SCRIPT: &str = include_str!("test_worker.sh");

struct Fixture {
    dir: tempfile::TempDir,
}

impl Fixture {
    fn new() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let script = dir.path().join("test_worker.sh");
        fs_err::write(&script, SCRIPT).unwrap();
        fs_err::set_permissions(&script, std::fs::Permissions::from_mode(0o755)).unwrap();
        fs_err::write(dir.path().join("version"), "v1").unwrap();
        Self { dir }
    }

    fn path(&self) -> &Path {
        self.dir.path()
    }

    fn config(&self) -> WorkerConfig {
        let mut c = WorkerConfig::new("./test_worker.sh");
        c.timeout_secs = 1.0;
        c.startup_timeout_secs = 5.0;
        c
    }

    fn build(&self, c: &WorkerConfig) -> Result<WorkerAdapter, String> {
        WorkerAdapter::new(c, self.path()).map_err(|e| e.to_string())
    }
}

fn input(key: &str, seed: u64) -> RunInput {
    let image = Image::new(3, 2, Channels::Gray, Samples::U8(vec![1, 2, 3, 4, 5, 6])).unwrap();
    RunInput {
        key: key.into(),
        case_id: "case-1".into(),
        image: Arc::new(image),
        image_path: None,
        prompt: Some("nodule?".into()),
        seed,
        perturbations: Vec::new(),
        work_dir: PathBuf::from("."),
    }
}

fn pid(o: &Observation) -> u64 {
    o.metadata["pid"].as_u64().unwrap()
}

/// Whether the process exists and is not a zombie (an orphaned grandchild waits for init to
/// reap it), waiting up to a second for a kill to land.
fn alive(pid: u64) -> bool {
    let running = || {
        fs_err::read_to_string(format!("/proc/{pid}/stat")).is_ok_and(|s| {
            // State is the field after the parenthesised command name.
            s.rsplit_once(')')
                .is_some_and(|(_, rest)| !rest.trim_start().starts_with(['Z', 'X']))
        })
    };
    for _ in 0..50 {
        if !running() {
            return false;
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    true
}

#[tokio::test]
async fn handshake_gives_the_identity() {
    let f = Fixture::new();
    let mut c = f.config();
    c.args = vec!["--flag".into()];
    let a = f.build(&c).unwrap();
    let id = a.identity();
    assert_eq!(id.adapter, "worker");
    assert_eq!(id.model, "sh-test-model");
    assert_eq!(id.version, "v1");
    assert_eq!(id.settings["worker"]["threshold"], 0.5);
    assert_eq!(id.settings["protocol"], "clarity-worker/1");
    assert_eq!(id.settings["args"][0], "--flag");
    // The announced version is part of the identity: a new model gives new keys.
    fs_err::write(f.path().join("version"), "v2").unwrap();
    let b = f.build(&f.config()).unwrap();
    assert_ne!(a.identity(), b.identity());
    assert_eq!(b.identity().version, "v2");
}

#[tokio::test]
async fn answers_with_every_field_and_the_request_carries_the_image() {
    let f = Fixture::new();
    let a = f.build(&f.config()).unwrap();
    let o = a.run(input("k0", 0)).await.unwrap();
    assert_eq!(o.answer.as_deref(), Some("normal"));
    assert_eq!(o.confidence, Some(0.75));
    assert_eq!(o.justification.as_deref(), Some("clear lungs"));
    assert_eq!(o.metadata["trace"][0]["step"], "predict");
    assert_eq!(o.saliency.as_ref().unwrap().values, vec![0.0, 0.5]);
    // Entropy derived from the probabilities, which sum to 1.
    let h = -(0.75f64 * 0.75f64.ln() + 0.25 * 0.25f64.ln());
    assert!((o.entropy.unwrap() - h).abs() < 1e-12);
    // The worker saw the raw image and the spec (it echoes what it got).
    let req: serde_json::Value =
        serde_json::from_str(&fs_err::read_to_string(f.path().join("last_request")).unwrap())
            .unwrap();
    assert_eq!(req["id"], "k0");
    assert_eq!(req["image"]["encoding"], "raw");
    assert_eq!(req["image"]["data"], "AQIDBAUG"); // base64 of 1..=6
    assert_eq!(req["image"]["width"], 3);
    assert_eq!(req["spec"]["prompt"], "nodule?");
    assert_eq!(req["spec"]["case_id"], "case-1");
    assert_eq!(req["spec"]["seed"], 0);
}

/// Every failure is a per-run error, the worker is restarted when its stream is no longer
/// trustworthy, and the next run succeeds.
#[tokio::test]
async fn failures_are_per_run_and_the_worker_is_restarted() {
    let f = Fixture::new();
    let a = f.build(&f.config()).unwrap();
    let first = pid(&a.run(input("a", 0)).await.unwrap());

    // Crash: exit 3 with a message on stderr; retryable; new worker next time.
    let e = a.run(input("b", 1)).await.unwrap_err();
    assert!(matches!(e, AdapterError::Transient(_)), "{e:?}");
    let m = e.to_string();
    assert!(m.contains("exited with code 3 while answering"), "{m}");
    assert!(m.contains("stderr tail:\nboom: out of memory"), "{m}");
    let second = pid(&a.run(input("c", 0)).await.unwrap());
    assert_ne!(first, second);
    assert!(!alive(first));

    // Hang: killed after timeout_secs with its whole group (the `sleep` child too).
    let t0 = std::time::Instant::now();
    let e = a.run(input("d", 2)).await.unwrap_err();
    assert!(matches!(e, AdapterError::Timeout { .. }), "{e:?}");
    assert!(t0.elapsed().as_secs_f64() < 5.0);
    let sleeper: u64 = fs_err::read_to_string(f.path().join("sleeper"))
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    assert!(!alive(second) && !alive(sleeper));
    let third = pid(&a.run(input("e", 0)).await.unwrap());

    // Garbage on stdout: permanent, restarted.
    let m = a.run(input("f", 3)).await.unwrap_err().to_string();
    assert!(
        m.contains("not a JSON response line: \"loading weights 100%\""),
        "{m}"
    );
    assert!(m.contains("restarted"), "{m}");
    let fourth = pid(&a.run(input("g", 0)).await.unwrap());
    assert_ne!(third, fourth);

    // Silent exit 0.
    let m = a.run(input("h", 4)).await.unwrap_err().to_string();
    assert!(m.contains("exited with code 0 while answering"), "{m}");
    let fifth = pid(&a.run(input("i", 0)).await.unwrap());

    // An error response fails the run but keeps the worker.
    let m = a.run(input("j", 5)).await.unwrap_err().to_string();
    assert!(m.contains("the worker reported: cannot read image"), "{m}");
    assert_eq!(pid(&a.run(input("k", 0)).await.unwrap()), fifth);

    // Another run's id: the stream is out of step, restart.
    let m = a.run(input("l", 6)).await.unwrap_err().to_string();
    assert!(m.contains("response `id` is \"stale\""), "{m}");
    assert_ne!(pid(&a.run(input("m", 0)).await.unwrap()), fifth);

    // An invalid (but in-step) response keeps the worker.
    let m = a.run(input("n", 7)).await.unwrap_err().to_string();
    assert!(
        m.contains("`confidence` must be a number in [0, 1], got 7"),
        "{m}"
    );
    let last = pid(&a.run(input("o", 0)).await.unwrap());
    drop(a);
    assert!(!alive(last), "dropping the adapter stops its workers");
}

#[tokio::test]
async fn a_restarted_worker_must_announce_the_same_identity() {
    let f = Fixture::new();
    let a = f.build(&f.config()).unwrap();
    fs_err::write(f.path().join("version"), "v2").unwrap();
    a.run(input("a", 1)).await.unwrap_err();
    let m = a.run(input("b", 0)).await.unwrap_err().to_string();
    assert!(
        m.contains("the restarted worker announced model \"sh-test-model\" version \"v2\""),
        "{m}"
    );
    assert!(
        m.contains("sweep started with model \"sh-test-model\" version \"v1\""),
        "{m}"
    );
}

#[tokio::test]
async fn workers_answer_in_parallel_and_all_stop() {
    let f = Fixture::new();
    let mut c = f.config();
    c.workers = 3;
    c.image = ImageTransport::Png;
    let a = Arc::new(f.build(&c).unwrap());
    let mut set = tokio::task::JoinSet::new();
    for i in 0..12 {
        let a = a.clone();
        set.spawn(async move { a.run(input(&format!("r{i}"), 8)).await });
    }
    let mut pids = std::collections::BTreeSet::new();
    while let Some(r) = set.join_next().await {
        pids.insert(pid(&r.unwrap().unwrap()));
    }
    // Seed 8 sleeps 0.2 s per request: 12 requests on 3 workers use all of them.
    assert_eq!(pids.len(), 3, "{pids:?}");
    drop(Arc::into_inner(a).unwrap());
    assert!(pids.iter().all(|p| !alive(*p)));
}

#[test]
fn startup_errors_fail_the_build_with_a_clear_message() {
    let f = Fixture::new();
    let with_mode = |mode: &str| {
        let mut c = f.config();
        c.env.insert("START".into(), mode.into());
        c.startup_timeout_secs = 1.0;
        f.build(&c).unwrap_err()
    };
    let m = with_mode("banner");
    assert!(
        m.contains("worker test_worker.sh #0: the first line on stdout must be the handshake")
            && m.contains("log to stderr"),
        "{m}"
    );
    let m = with_mode("protocol2");
    assert!(m.contains("speaks protocol \"clarity-worker/2\""), "{m}");
    let m = with_mode("die");
    assert!(
        m.contains("exited with code 2 before its handshake")
            && m.contains("no module named torch"),
        "{m}"
    );
    let m = with_mode("slow");
    assert!(
        m.contains("no handshake within startup_timeout_secs = 1 s"),
        "{m}"
    );

    let mut c = f.config();
    c.program = "./missing.sh".into();
    assert!(f.build(&c).unwrap_err().contains("does not exist"));
    let mut c = f.config();
    c.workers = 0;
    assert!(
        f.build(&c)
            .unwrap_err()
            .contains("`workers` must be in [1, 256]")
    );
    let mut c = f.config();
    c.timeout_secs = 0.0;
    assert!(f.build(&c).unwrap_err().contains("`timeout_secs`"));
}

#[test]
fn config_parses_from_toml_and_rejects_unknown_keys() {
    let c: clarity_adapters::AdapterConfig = toml::from_str(
        "kind = \"worker\"\nprogram = \"python3\"\nargs = [\"w.py\"]\nworkers = 2\nimage = \"path\"",
    )
    .unwrap();
    let clarity_adapters::AdapterConfig::Worker(w) = c else {
        panic!()
    };
    assert_eq!(w.workers, 2);
    assert_eq!(w.image, ImageTransport::Path);
    let e = toml::from_str::<clarity_adapters::AdapterConfig>(
        "kind = \"worker\"\nprogram = \"python3\"\nworker = 2",
    )
    .unwrap_err();
    assert!(e.to_string().contains("unknown field `worker`"), "{e}");
}
