//! The `worker` adapter: N long-lived external processes (any language) that load their
//! model once and answer one JSON line per run over stdin/stdout (SPEC §4 item 5).
//!
//! Protocol `clarity-worker/1` (docs/adapters.md, "worker"; wire format in [`protocol`]):
//! the worker writes a handshake line announcing the protocol and its model identity, then
//! answers each request line `{"id", "image", "spec"}` with one response line
//! `{"id", "answer", …}` or `{"id", "error"}`.
//!
//! Each worker is served by one thread that owns its process ([`process::Proc`]): requests
//! queue on a shared channel and go to whichever worker is free. A worker that crashes,
//! exits, hangs past `timeout_secs` (its process group is killed) or writes a line that is
//! not the response to the request (garbage, another id) fails **that run** and is restarted
//! for the next one; the restarted worker must announce the same identity. Nothing a worker
//! does can hang or lose the sweep.
//!
//! **Identity**: adapter `worker`, model and version as the worker announced them (every
//! worker must announce the same), settings = the announced `settings`, `args`, a BLAKE3 of
//! the inline `spec` and of the `env` pairs, and the protocol version. Not the program path
//! (`python3`…), `workers`, `image` (lossless either way) or the timeouts.

pub mod process;
pub mod protocol;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{self, Receiver, Sender};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use clarity_core::Observation;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};

use crate::{Adapter, AdapterError, AdapterIdentity, BuildError, RunInput, Workload};
pub use process::{Launch, Proc, WaitError};
use protocol::{BadResponse, Response};
pub use protocol::{Handshake, ImageTransport, PROTOCOL};

/// `[adapter] kind = "worker"` settings.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WorkerConfig {
    /// The program (`python3`, `./worker.py`…): a path containing `/` is resolved against
    /// the config file's directory; a bare name is looked up on `PATH`.
    pub program: PathBuf,
    /// Arguments, passed as written (e.g. the script).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub args: Vec<String>,
    /// A table merged into every request's `spec` (the question, thresholds…).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub spec: Option<Value>,
    /// Worker processes started, each answering one run at a time.
    #[serde(default = "default_workers")]
    pub workers: usize,
    /// How the image travels: `raw` (default), `png` or `path`.
    #[serde(default)]
    pub image: ImageTransport,
    /// Per-request limit in seconds; past it the worker's process group is killed, the run
    /// fails and the worker is restarted.
    #[serde(default = "default_timeout_secs")]
    pub timeout_secs: f64,
    /// How long a (re)started worker may take to load its model and write the handshake.
    #[serde(default = "default_startup_timeout_secs")]
    pub startup_timeout_secs: f64,
    /// Extra environment variables (part of the identity as a hash only).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub env: BTreeMap<String, String>,
}

fn default_workers() -> usize {
    1
}
fn default_timeout_secs() -> f64 {
    60.0
}
fn default_startup_timeout_secs() -> f64 {
    300.0
}

impl WorkerConfig {
    /// A config with every optional setting at its default.
    pub fn new(program: impl Into<PathBuf>) -> Self {
        Self {
            program: program.into(),
            args: Vec::new(),
            spec: None,
            workers: default_workers(),
            image: ImageTransport::default(),
            timeout_secs: default_timeout_secs(),
            startup_timeout_secs: default_startup_timeout_secs(),
            env: BTreeMap::new(),
        }
    }
}

fn invalid(message: impl Into<String>) -> BuildError {
    BuildError::Invalid {
        adapter: "worker".into(),
        message: message.into(),
    }
}

/// One run for a worker thread.
struct Job {
    input: RunInput,
    reply: tokio::sync::oneshot::Sender<Result<Observation, AdapterError>>,
}

/// What every worker thread shares.
struct Shared {
    launch: Launch,
    name: String,
    spec: Map<String, Value>,
    image: ImageTransport,
    timeout: Duration,
    startup: Duration,
    handshake: Handshake,
    shutdown: AtomicBool,
}

/// The adapter; build it with [`WorkerAdapter::new`]. Dropping it closes every worker's
/// stdin, gives it a moment to exit and kills its process group.
pub struct WorkerAdapter {
    shared: Arc<Shared>,
    identity: AdapterIdentity,
    workers: usize,
    queue: Option<Sender<Job>>,
    threads: Vec<JoinHandle<()>>,
}

impl std::fmt::Debug for WorkerAdapter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WorkerAdapter")
            .field("program", &self.shared.launch.program)
            .field("workers", &self.workers)
            .field("identity", &self.identity)
            .finish()
    }
}

impl WorkerAdapter {
    /// Validates the config, starts the workers (in parallel) and reads their handshakes.
    /// A worker that cannot start, or workers announcing different identities, fail here,
    /// before anything runs.
    pub fn new(config: &WorkerConfig, base_dir: &Path) -> Result<Self, BuildError> {
        let c = config;
        for (key, v) in [
            ("timeout_secs", c.timeout_secs),
            ("startup_timeout_secs", c.startup_timeout_secs),
        ] {
            if !(v.is_finite() && v > 0.0 && v <= 7.0 * 86400.0) {
                return Err(invalid(format!(
                    "`{key}` must be a number in (0, 604800], got {v}"
                )));
            }
        }
        if c.workers == 0 || c.workers > 256 {
            return Err(invalid(format!(
                "`workers` must be in [1, 256], got {}",
                c.workers
            )));
        }
        for key in c.env.keys() {
            if key.is_empty() || key.contains('=') || key.contains('\0') {
                return Err(invalid(format!(
                    "`env` key {key:?} is not a valid environment variable name"
                )));
            }
        }
        let spec = match &c.spec {
            None => Map::new(),
            Some(Value::Object(m)) => m.clone(),
            Some(_) => return Err(invalid("`spec` must be a table (JSON object)")),
        };
        let base_dir = process::absolute(base_dir).map_err(invalid)?;
        let program = resolve_program(&c.program, &base_dir)?;
        let name = program
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_else(|| program.display().to_string());
        let launch = Launch {
            program,
            args: c.args.clone(),
            env: c.env.iter().map(|(k, v)| (k.clone(), v.clone())).collect(),
            cwd: base_dir,
        };
        let startup = Duration::from_secs_f64(c.startup_timeout_secs);

        // Start all workers at once: model loading overlaps.
        let no_shutdown = AtomicBool::new(false);
        let started: Vec<Result<(Proc, Handshake), String>> = std::thread::scope(|s| {
            let handles: Vec<_> = (0..c.workers)
                .map(|_| s.spawn(|| Proc::start(&launch, startup, &no_shutdown)))
                .collect();
            handles
                .into_iter()
                .map(|h| {
                    h.join()
                        .unwrap_or_else(|_| Err("the start thread panicked".into()))
                })
                .collect()
        });
        let mut procs = Vec::with_capacity(c.workers);
        let mut first: Option<Handshake> = None;
        for (i, r) in started.into_iter().enumerate() {
            let (proc, hello) = r.map_err(|e| invalid(format!("worker {name} #{i}: {e}")))?;
            if let Some(f) = &first
                && *f != hello
            {
                return Err(invalid(format!(
                    "worker {name} #{i} announced {} but worker #0 announced {}; every \
                     worker must announce the same model identity",
                    describe(&hello),
                    describe(f)
                )));
            }
            first.get_or_insert(hello);
            procs.push(proc);
        }
        let handshake = first.ok_or_else(|| invalid("no worker started"))?;

        let spec_hash = c.spec.as_ref().map(|v| {
            let text = serde_json::to_string(v).unwrap_or_default();
            format!("blake3:{}", blake3::hash(text.as_bytes()).to_hex())
        });
        let env_hash = (!c.env.is_empty()).then(|| {
            let mut h = blake3::Hasher::new();
            for (k, v) in &c.env {
                for part in [k, v] {
                    h.update(&(part.len() as u64).to_le_bytes());
                    h.update(part.as_bytes());
                }
            }
            format!("blake3:{}", h.finalize().to_hex())
        });
        let identity = AdapterIdentity {
            adapter: "worker".into(),
            model: handshake.model.clone(),
            version: handshake.version.clone(),
            settings: json!({
                "protocol": PROTOCOL,
                "worker": handshake.settings,
                "args": c.args,
                "spec": spec_hash,
                "env": env_hash,
            }),
        };

        let shared = Arc::new(Shared {
            launch,
            name,
            spec,
            image: c.image,
            timeout: Duration::from_secs_f64(c.timeout_secs),
            startup,
            handshake,
            shutdown: AtomicBool::new(false),
        });
        let (tx, rx) = mpsc::channel::<Job>();
        let rx = Arc::new(Mutex::new(rx));
        let threads = procs
            .into_iter()
            .map(|p| {
                let (shared, rx) = (shared.clone(), rx.clone());
                std::thread::spawn(move || serve(&shared, &rx, Some(p)))
            })
            .collect();
        Ok(Self {
            shared,
            identity,
            workers: c.workers,
            queue: Some(tx),
            threads,
        })
    }

    /// What the workers announced.
    pub fn handshake(&self) -> &Handshake {
        &self.shared.handshake
    }
}

impl Drop for WorkerAdapter {
    fn drop(&mut self) {
        // Idle threads see the closed queue and shut their worker down gracefully; a thread
        // in the middle of a request sees the flag within 100 ms and kills its worker.
        self.queue = None;
        self.shared.shutdown.store(true, Ordering::Relaxed);
        for t in self.threads.drain(..) {
            let _ = t.join();
        }
    }
}

fn describe(h: &Handshake) -> String {
    format!(
        "model {:?} version {:?} settings {}",
        h.model, h.version, h.settings
    )
}

/// A worker thread: takes jobs until the queue closes, (re)starting its worker as needed.
fn serve(shared: &Shared, rx: &Mutex<Receiver<Job>>, mut proc: Option<Proc>) {
    loop {
        let job = {
            let Ok(rx) = rx.lock() else { break };
            match rx.recv() {
                Ok(job) => job,
                Err(_) => break,
            }
        };
        let result = run_job(shared, &mut proc, &job.input);
        // The run may have been cancelled meanwhile: nobody to tell.
        let _ = job.reply.send(result);
    }
    if let Some(p) = proc {
        p.shut_down();
    }
}

fn run_job(
    shared: &Shared,
    slot: &mut Option<Proc>,
    input: &RunInput,
) -> Result<Observation, AdapterError> {
    let fail = |m: String| AdapterError::Permanent(format!("worker {}: {m}", shared.name));
    // Build the request first: a bad input must not cost a worker.
    let image = protocol::image_json(&input.image, shared.image, input.image_path.as_deref())
        .map_err(fail)?;
    let mut spec = shared.spec.clone();
    let steps: Vec<Value> = input
        .perturbations
        .iter()
        .map(|s| json!({"name": s.name, "params": s.params}))
        .collect();
    spec.insert("perturbations".into(), Value::Array(steps));
    spec.insert("seed".into(), json!(input.seed));
    spec.insert("case_id".into(), json!(input.case_id));
    if let Some(p) = &input.prompt {
        spec.insert("prompt".into(), json!(p));
    }
    let line = protocol::request_line(&input.key, image, Value::Object(spec));

    if slot.is_none() {
        let (p, hello) = Proc::start(&shared.launch, shared.startup, &shared.shutdown)
            .map_err(|e| fail(format!("restarting the worker failed: {e}")))?;
        if hello != shared.handshake {
            drop(p);
            return Err(fail(format!(
                "the restarted worker announced {} but the sweep started with {}",
                describe(&hello),
                describe(&shared.handshake)
            )));
        }
        *slot = Some(p);
    }
    let Some(p) = slot.as_mut() else {
        return Err(fail("no worker".into()));
    };
    let deadline = Instant::now() + shared.timeout;
    // A failed send means the worker is gone: the wait below reports how.
    let _ = p.send(line);
    let outcome = p.wait_line(deadline, &shared.shutdown);
    let result = match outcome {
        Ok(resp) => match protocol::parse_response(&resp, &input.key) {
            Ok(Response::Ok(obs)) => return Ok(obs),
            Ok(Response::Error(m)) => return Err(fail(format!("the worker reported: {m}"))),
            Err(BadResponse::Invalid(m)) => return Err(fail(format!("invalid response: {m}"))),
            Err(BadResponse::Desync(m)) => {
                p.kill();
                Err(fail(format!("{m} (the worker was restarted)")))
            }
        },
        Err(WaitError::TimedOut) => {
            p.kill();
            Err(AdapterError::Timeout {
                what: format!(
                    "worker {} (its process group was killed; it is restarted for the next run)",
                    shared.name
                ),
                secs: shared.timeout.as_secs_f64(),
            })
        }
        Err(e @ WaitError::Exited(_)) => {
            let m = p.describe(e, "while answering");
            // Worth a retry: the next attempt gets a fresh worker.
            Err(AdapterError::Transient(format!(
                "worker {}: {m} (it is restarted for the next run)",
                shared.name
            )))
        }
        Err(e) => {
            let m = p.describe(e, "while answering");
            Err(fail(m))
        }
    };
    *slot = None;
    result
}

#[async_trait]
impl Adapter for WorkerAdapter {
    fn identity(&self) -> AdapterIdentity {
        self.identity.clone()
    }

    fn workload(&self) -> Workload {
        Workload::Io {
            max_in_flight: self.workers,
        }
    }

    fn needs_image_file(&self) -> bool {
        self.shared.image == ImageTransport::Path
    }

    async fn run(&self, input: RunInput) -> Result<Observation, AdapterError> {
        let (reply, rx) = tokio::sync::oneshot::channel();
        let closed =
            || AdapterError::Permanent(format!("worker {}: the pool is closed", self.shared.name));
        self.queue
            .as_ref()
            .ok_or_else(closed)?
            .send(Job { input, reply })
            .map_err(|_| closed())?;
        rx.await.map_err(|_| closed())?
    }
}

/// Resolves `program`: a path with a separator against `base_dir`, a bare name on `PATH`.
fn resolve_program(program: &Path, base_dir: &Path) -> Result<PathBuf, BuildError> {
    if program.as_os_str().is_empty() {
        return Err(invalid("`program` must not be empty"));
    }
    let path = if program.components().count() > 1 || program.is_absolute() {
        let p = process::absolute(&base_dir.join(program)).map_err(invalid)?;
        if !p.is_file() {
            return Err(invalid(format!(
                "`program` {} does not exist or is not a file",
                p.display()
            )));
        }
        p
    } else {
        let path_var = std::env::var_os("PATH").unwrap_or_default();
        std::env::split_paths(&path_var)
            .map(|dir| dir.join(program))
            .find(|p| is_executable(p))
            .ok_or_else(|| {
                invalid(format!(
                    "`program` {:?} was not found on PATH (write a path such as ./{} to use a \
                     file next to the config)",
                    program.display().to_string(),
                    program.display()
                ))
            })?
    };
    if !is_executable(&path) {
        return Err(invalid(format!(
            "`program` {} is not executable",
            path.display()
        )));
    }
    Ok(path)
}

#[cfg(unix)]
fn is_executable(path: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    path.metadata()
        .is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
}

#[cfg(not(unix))]
fn is_executable(path: &Path) -> bool {
    path.is_file()
}
