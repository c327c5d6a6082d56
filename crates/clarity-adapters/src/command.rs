//! The `command` adapter: any external program that speaks the R2L artifact contract
//! (SPEC §4 item 4), run as a black box once per run.
//!
//! For each run the adapter writes `spec.json` into the run's scratch directory — the
//! configured spec object plus `perturbations` (`[{name, params}]`, in the order applied),
//! `seed`, `image_path` (the perturbed PNG the engine wrote) and `prompt` (also `question`
//! when the spec does not set one) — and invokes
//!
//! ```text
//! PROGRAM [args…] --config <work>/spec.json --output <work>/output --seed N [--adapter NAME]
//! ```
//!
//! in its own process group, with stdin closed and stdout/stderr captured (the last
//! [`TAIL_BYTES`] are kept for error messages). When it runs past `timeout_secs`, the whole
//! group is killed (SIGKILL), grandchildren included, and the run fails with
//! [`AdapterError::Timeout`]. Leftover group members are killed after a normal exit too.
//!
//! The program writes into the output directory:
//! - `manifest.json`: an object with at least `run_id` (string), `timestamp` (string), `seed`
//!   (the integer it was given) and `artifacts` (array);
//! - `trace_pack.jsonl`: one JSON object per line, each with `step` or `step_id`. The answer
//!   is the `answer` (else `output`) of the **last record that has one** (real traces put it
//!   before trailing evaluation records). `justification`, `confidence_score` and
//!   `output_entropy` (top-level, or inside `rich_summary`) and `adapter_metadata` are
//!   optional; each is taken from the last record that has it.
//!
//! A non-zero exit, a missing or malformed file, or an out-of-range value fails the run with
//! [`AdapterError::Permanent`] naming the file, the line and what was expected.
//!
//! **Identity**: adapter `command`, model = the program's file name (never an absolute path,
//! so content keys do not depend on where the program is installed), version = the
//! configured `version` or else `blake3:` of the program file's bytes (a rebuilt program gets
//! new content keys), settings = `args`, `adapter_name`, a BLAKE3 of the spec (inline spec as
//! compact sorted JSON, `spec_file` as bytes) and a BLAKE3 of the `env` pairs (values never
//! appear). `timeout_secs` and `max_in_flight` are not part of it: they do not change answers.

use std::collections::BTreeMap;
use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::process::{ExitStatus, Stdio};
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use clarity_core::Observation;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};
use tokio::io::{AsyncRead, AsyncReadExt};
use tokio::sync::Semaphore;

use crate::{Adapter, AdapterError, AdapterIdentity, BuildError, RunInput, Workload};

/// Bytes of stdout/stderr kept for error messages.
pub const TAIL_BYTES: usize = 4096;
/// Largest `manifest.json` / `trace_pack.jsonl` / `spec_file` read (protects memory).
pub const MAX_ARTIFACT_BYTES: u64 = 64 << 20;
/// Name of the spec file written into the run's scratch directory.
pub const SPEC_FILE: &str = "spec.json";
pub const MANIFEST_FILE: &str = "manifest.json";
pub const TRACE_FILE: &str = "trace_pack.jsonl";
/// Changes when the way spec.json is written or artifacts are read changes answers.
const PROTOCOL_VERSION: &str = "r2l-command-v1";
/// How long to wait for the pipes to drain once the group is gone.
const PIPE_DRAIN: Duration = Duration::from_secs(5);

/// `[adapter] kind = "command"` settings.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CommandConfig {
    /// The program. A path containing `/` is resolved against the config file's directory
    /// when relative; a bare name is looked up on `PATH` when the adapter is built.
    pub program: PathBuf,
    /// Extra arguments placed before the contract flags (passed as written, not resolved).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub args: Vec<String>,
    /// Passed as `--adapter NAME` when set.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub adapter_name: Option<String>,
    /// The original spec (a table): the base of every run's `spec.json`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub spec: Option<Value>,
    /// Or the original spec read from a JSON or TOML (`.toml`) file, relative to the config's
    /// directory; read when the adapter is built.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub spec_file: Option<PathBuf>,
    /// Per-run wall-clock limit in seconds; the whole process group is killed past it.
    #[serde(default = "default_timeout_secs")]
    pub timeout_secs: f64,
    /// Programs running at once at most.
    #[serde(default = "default_max_in_flight")]
    pub max_in_flight: usize,
    /// Extra environment variables for the program (part of the identity as a hash only).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub env: BTreeMap<String, String>,
    /// The model's version, when the program's bytes do not identify it (a wrapper script,
    /// an interpreter with the script in `args`, weights loaded from elsewhere…).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version: Option<String>,
}

fn default_timeout_secs() -> f64 {
    300.0
}
fn default_max_in_flight() -> usize {
    4
}

impl CommandConfig {
    /// A config with every optional setting at its default.
    pub fn new(program: impl Into<PathBuf>) -> Self {
        Self {
            program: program.into(),
            args: Vec::new(),
            adapter_name: None,
            spec: None,
            spec_file: None,
            timeout_secs: default_timeout_secs(),
            max_in_flight: default_max_in_flight(),
            env: BTreeMap::new(),
            version: None,
        }
    }
}

fn invalid(message: impl Into<String>) -> BuildError {
    BuildError::Invalid {
        adapter: "command".into(),
        message: message.into(),
    }
}

/// The adapter; build it with [`CommandAdapter::new`].
#[derive(Debug)]
pub struct CommandAdapter {
    config: CommandConfig,
    /// Absolute (or base-dir-joined) path of the program.
    program: PathBuf,
    /// The program's file name, for identity and messages.
    program_name: String,
    /// Working directory of the program: the config's directory.
    cwd: PathBuf,
    spec: Map<String, Value>,
    identity: AdapterIdentity,
    in_flight: Arc<Semaphore>,
}

impl CommandAdapter {
    /// Validates the config, resolves the program, reads `spec_file` and hashes what goes
    /// into the identity.
    pub fn new(config: &CommandConfig, base_dir: &Path) -> Result<Self, BuildError> {
        let c = config;
        if !(c.timeout_secs.is_finite() && c.timeout_secs > 0.0) {
            return Err(invalid(format!(
                "`timeout_secs` must be a finite number > 0, got {}",
                c.timeout_secs
            )));
        }
        if c.max_in_flight == 0 {
            return Err(invalid("`max_in_flight` must be at least 1, got 0"));
        }
        if let Some(name) = &c.adapter_name
            && name.trim().is_empty()
        {
            return Err(invalid("`adapter_name` must not be empty when set"));
        }
        if let Some(v) = &c.version
            && v.trim().is_empty()
        {
            return Err(invalid("`version` must not be empty when set"));
        }
        for key in c.env.keys() {
            if key.is_empty() || key.contains('=') || key.contains('\0') {
                return Err(invalid(format!(
                    "`env` key {key:?} is not a valid environment variable name"
                )));
            }
        }

        // Absolute paths: the program runs in another directory than ours, and messages and
        // spec.json should not depend on how the config path was spelled.
        let base_dir = &absolute(base_dir).map_err(|e| invalid(e.to_string()))?;
        let program = resolve_program(&c.program, base_dir)?;
        let program_name = program
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .ok_or_else(|| invalid(format!("`program` {:?} has no file name", c.program)))?;

        let (spec, spec_hash) = match (&c.spec, &c.spec_file) {
            (Some(_), Some(_)) => {
                return Err(invalid("set `spec` or `spec_file`, not both"));
            }
            (Some(v), None) => {
                let Value::Object(map) = v else {
                    return Err(invalid(format!(
                        "`spec` must be a table (JSON object), got {}",
                        json_kind(v)
                    )));
                };
                // Compact serde_json text: keys sorted (BTreeMap), floats in shortest
                // round-trip form. Not clarity-core's canonical JSON, which rounds floats
                // and would give two different specs one key.
                let canonical = serde_json::to_string(v)
                    .map_err(|e| invalid(format!("`spec` cannot be hashed: {e}")))?;
                (map.clone(), Some(blake3_tag(canonical.as_bytes())))
            }
            (None, Some(path)) => {
                let path = base_dir.join(path);
                let (map, bytes) = read_spec_file(&path)?;
                (map, Some(blake3_tag(&bytes)))
            }
            (None, None) => (Map::new(), None),
        };

        let version = match &c.version {
            Some(v) => v.clone(),
            None => {
                let bytes = fs_err::read(&program).map_err(|e| {
                    invalid(format!("cannot read the program to hash its version: {e}"))
                })?;
                blake3_tag(&bytes)
            }
        };

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
            adapter: "command".into(),
            model: program_name.clone(),
            version,
            settings: json!({
                "protocol": PROTOCOL_VERSION,
                "args": c.args,
                "adapter_name": c.adapter_name,
                "spec": spec_hash,
                "env": env_hash,
            }),
        };

        Ok(Self {
            config: c.clone(),
            program,
            program_name,
            cwd: base_dir.to_path_buf(),
            spec,
            identity,
            in_flight: Arc::new(Semaphore::new(c.max_in_flight)),
        })
    }

    /// The resolved program path.
    pub fn program(&self) -> &Path {
        &self.program
    }

    /// The `spec.json` object for one run.
    pub fn run_spec(&self, input: &RunInput, image_path: &Path) -> Value {
        let mut spec = self.spec.clone();
        let steps: Vec<Value> = input
            .perturbations
            .iter()
            .map(|s| json!({"name": s.name, "params": s.params}))
            .collect();
        spec.insert("perturbations".into(), Value::Array(steps));
        spec.insert("seed".into(), json!(input.seed));
        spec.insert(
            "image_path".into(),
            json!(image_path.to_string_lossy().into_owned()),
        );
        if let Some(prompt) = &input.prompt {
            spec.insert("prompt".into(), json!(prompt));
            // R2L programs read the question from `question`.
            spec.entry("question").or_insert_with(|| json!(prompt));
        }
        Value::Object(spec)
    }

    fn fail(&self, message: impl std::fmt::Display) -> AdapterError {
        AdapterError::Permanent(format!("command {}: {message}", self.program_name))
    }

    async fn run_one(&self, input: RunInput) -> Result<Observation, AdapterError> {
        let image_path = input.image_path.as_deref().ok_or_else(|| {
            self.fail("the engine wrote no image file for this run (image_path is missing)")
        })?;
        let image_path = absolute(image_path).map_err(|e| self.fail(e))?;
        let work_dir = absolute(&input.work_dir).map_err(|e| self.fail(e))?;
        let spec = self.run_spec(&input, &image_path);
        let spec_path = work_dir.join(SPEC_FILE);
        let spec_text =
            serde_json::to_string_pretty(&spec).map_err(|e| self.fail(format!("spec: {e}")))?;
        fs_err::write(&spec_path, spec_text).map_err(|e| self.fail(e))?;
        let out_dir = fresh_dir(&work_dir, "output").map_err(|e| self.fail(e))?;

        let mut args: Vec<OsString> = self.config.args.iter().map(OsString::from).collect();
        args.extend([
            "--config".into(),
            spec_path.into_os_string(),
            "--output".into(),
            out_dir.clone().into_os_string(),
            "--seed".into(),
            input.seed.to_string().into(),
        ]);
        if let Some(name) = &self.config.adapter_name {
            args.extend(["--adapter".into(), name.into()]);
        }

        let mut cmd = tokio::process::Command::new(&self.program);
        cmd.args(&args)
            .envs(&self.config.env)
            .current_dir(&self.cwd)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true);
        #[cfg(unix)]
        cmd.process_group(0);
        let mut child = cmd
            .spawn()
            .map_err(|e| self.fail(format!("cannot start {}: {e}", self.program.display())))?;
        // Kills the whole group if this future is dropped (cancelled) before the end.
        let group = GroupGuard::new(child.id());
        let stdout = tokio::spawn(read_tail(child.stdout.take()));
        let stderr = tokio::spawn(read_tail(child.stderr.take()));

        let limit = Duration::from_secs_f64(self.config.timeout_secs);
        let waited = tokio::time::timeout(limit, child.wait()).await;
        // After a normal exit this only reaps stragglers (daemonised grandchildren that
        // would otherwise keep the pipes open).
        group.kill();
        let status: ExitStatus = match waited {
            Err(_) => {
                let _ = child.kill().await;
                return Err(AdapterError::Timeout {
                    what: format!(
                        "command {} (its process group was killed)",
                        self.program_name
                    ),
                    secs: self.config.timeout_secs,
                });
            }
            Ok(Err(e)) => return Err(self.fail(format!("waiting for the program failed: {e}"))),
            Ok(Ok(status)) => status,
        };
        let stderr_tail = drain(stderr).await;
        let stdout_tail = drain(stdout).await;
        if !status.success() {
            let mut msg = describe_exit(status);
            let tail = if stderr_tail.trim().is_empty() {
                ("stdout", stdout_tail)
            } else {
                ("stderr", stderr_tail)
            };
            if tail.1.trim().is_empty() {
                msg.push_str(" (no output)");
            } else {
                msg.push_str(&format!("; {} tail:\n{}", tail.0, tail.1.trim_end()));
            }
            return Err(self.fail(msg));
        }

        let seed = input.seed;
        let parsed = tokio::task::spawn_blocking(move || read_artifacts(&out_dir, seed))
            .await
            .map_err(|e| self.fail(format!("artifact parsing task failed: {e}")))?;
        parsed.map_err(|e| self.fail(e))
    }
}

#[async_trait]
impl Adapter for CommandAdapter {
    fn identity(&self) -> AdapterIdentity {
        self.identity.clone()
    }

    fn workload(&self) -> Workload {
        Workload::Io {
            max_in_flight: self.config.max_in_flight,
        }
    }

    fn needs_image_file(&self) -> bool {
        true
    }

    async fn run(&self, input: RunInput) -> Result<Observation, AdapterError> {
        let _permit = self
            .in_flight
            .acquire()
            .await
            .map_err(|e| self.fail(format!("in-flight limiter closed: {e}")))?;
        self.run_one(input).await
    }
}

/// `path` made absolute against the current directory (`.` components removed, symlinks
/// kept).
fn absolute(path: &Path) -> Result<PathBuf, String> {
    let path = if path.as_os_str().is_empty() {
        Path::new(".")
    } else {
        path
    };
    std::path::absolute(path).map_err(|e| format!("cannot make {} absolute: {e}", path.display()))
}

/// Resolves `program`: a path with a separator against `base_dir`, a bare name on `PATH`.
fn resolve_program(program: &Path, base_dir: &Path) -> Result<PathBuf, BuildError> {
    let text = program.as_os_str();
    if text.is_empty() {
        return Err(invalid("`program` must not be empty"));
    }
    let path = if program.components().count() > 1 || program.is_absolute() {
        let p = absolute(&base_dir.join(program)).map_err(invalid)?;
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
            .filter_map(|dir| absolute(&dir.join(program)).ok())
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
    std::fs::metadata(path).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
}

#[cfg(not(unix))]
fn is_executable(path: &Path) -> bool {
    path.is_file()
}

fn read_spec_file(path: &Path) -> Result<(Map<String, Value>, Vec<u8>), BuildError> {
    let bytes = read_bounded(path).map_err(|e| invalid(format!("`spec_file`: {e}")))?;
    let text = std::str::from_utf8(&bytes)
        .map_err(|e| invalid(format!("{}: not UTF-8: {e}", path.display())))?;
    let is_toml = path
        .extension()
        .is_some_and(|e| e.eq_ignore_ascii_case("toml"));
    let value: Value = if is_toml {
        toml::from_str(text)
            .map_err(|e| invalid(format!("{}: invalid TOML: {e}", path.display())))?
    } else {
        serde_json::from_str(text)
            .map_err(|e| invalid(format!("{}: invalid JSON: {e}", path.display())))?
    };
    match value {
        Value::Object(map) => Ok((map, bytes)),
        other => Err(invalid(format!(
            "{}: the spec must be an object, got {}",
            path.display(),
            json_kind(&other)
        ))),
    }
}

/// Reads a regular file of at most [`MAX_ARTIFACT_BYTES`]. The type is checked before opening
/// (a FIFO would block, a device such as `/dev/zero`, also behind a symlink, never ends) and
/// the read itself is capped (`take`), so a file growing after the check cannot exceed the cap.
fn read_bounded(path: &Path) -> Result<Vec<u8>, String> {
    use std::io::Read;
    let meta = fs_err::metadata(path).map_err(|e| e.to_string())?;
    if !meta.is_file() {
        return Err(format!(
            "{} is not a regular file ({}); only regular files are read",
            path.display(),
            file_kind(&meta)
        ));
    }
    let too_big = |n: u64| {
        format!(
            "{} is {n} bytes, more than the {MAX_ARTIFACT_BYTES} allowed (limit MAX_ARTIFACT_BYTES of the command adapter)",
            path.display()
        )
    };
    if meta.len() > MAX_ARTIFACT_BYTES {
        return Err(too_big(meta.len()));
    }
    let file = fs_err::File::open(path).map_err(|e| e.to_string())?;
    let mut bytes = Vec::with_capacity(meta.len() as usize);
    file.take(MAX_ARTIFACT_BYTES + 1)
        .read_to_end(&mut bytes)
        .map_err(|e| format!("{}: {e}", path.display()))?;
    if bytes.len() as u64 > MAX_ARTIFACT_BYTES {
        return Err(too_big(bytes.len() as u64));
    }
    Ok(bytes)
}

/// What kind of file `meta` describes, for errors.
fn file_kind(meta: &std::fs::Metadata) -> &'static str {
    #[cfg(unix)]
    {
        use std::os::unix::fs::FileTypeExt;
        let t = meta.file_type();
        if t.is_fifo() {
            return "a FIFO";
        }
        if t.is_char_device() || t.is_block_device() {
            return "a device";
        }
        if t.is_socket() {
            return "a socket";
        }
    }
    if meta.is_dir() {
        "a directory"
    } else {
        "not a regular file"
    }
}

fn blake3_tag(bytes: &[u8]) -> String {
    format!("blake3:{}", blake3::hash(bytes).to_hex())
}

fn json_kind(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

/// `base`, or `base-2`, `base-3`… : the first name not yet taken (a retry in the same scratch
/// directory never sees a previous attempt's artifacts).
fn fresh_dir(parent: &Path, base: &str) -> std::io::Result<PathBuf> {
    for n in 1u32.. {
        let dir = if n == 1 {
            parent.join(base)
        } else {
            parent.join(format!("{base}-{n}"))
        };
        match fs_err::create_dir(&dir) {
            Ok(()) => return Ok(dir),
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => continue,
            Err(e) => return Err(e),
        }
    }
    unreachable!("u32 range exhausted")
}

fn describe_exit(status: ExitStatus) -> String {
    if let Some(code) = status.code() {
        return format!("exited with code {code}");
    }
    #[cfg(unix)]
    {
        use std::os::unix::process::ExitStatusExt;
        if let Some(sig) = status.signal() {
            return format!("was killed by signal {sig}");
        }
    }
    format!("exited abnormally ({status})")
}

/// Reads a pipe to the end, keeping its last [`TAIL_BYTES`].
async fn read_tail<R: AsyncRead + Unpin>(pipe: Option<R>) -> Vec<u8> {
    let Some(mut pipe) = pipe else {
        return Vec::new();
    };
    let mut tail = Vec::new();
    let mut buf = [0u8; 8192];
    loop {
        match pipe.read(&mut buf).await {
            Ok(0) | Err(_) => break,
            Ok(n) => {
                tail.extend_from_slice(&buf[..n]);
                if tail.len() > 2 * TAIL_BYTES {
                    tail.drain(..tail.len() - TAIL_BYTES);
                }
            }
        }
    }
    if tail.len() > TAIL_BYTES {
        tail.drain(..tail.len() - TAIL_BYTES);
    }
    tail
}

async fn drain(task: tokio::task::JoinHandle<Vec<u8>>) -> String {
    match tokio::time::timeout(PIPE_DRAIN, task).await {
        Ok(Ok(bytes)) => String::from_utf8_lossy(&bytes).into_owned(),
        _ => String::new(),
    }
}

/// Kills a process group with SIGKILL: explicitly, or on drop unless already done.
struct GroupGuard {
    pgid: Option<u32>,
}

impl GroupGuard {
    fn new(pgid: Option<u32>) -> Self {
        Self { pgid }
    }

    fn kill(mut self) {
        self.kill_now();
    }

    fn kill_now(&mut self) {
        if let Some(pgid) = self.pgid.take() {
            kill_group(pgid);
        }
    }
}

impl Drop for GroupGuard {
    fn drop(&mut self) {
        self.kill_now();
    }
}

#[cfg(unix)]
fn kill_group(pgid: u32) {
    use nix::sys::signal::{Signal, killpg};
    use nix::unistd::Pid;
    let Ok(raw) = i32::try_from(pgid) else { return };
    if raw > 1 {
        // ESRCH (the group is already gone) is the common case after a clean exit.
        let _ = killpg(Pid::from_raw(raw), Signal::SIGKILL);
    }
}

#[cfg(not(unix))]
fn kill_group(_pgid: u32) {
    // Without process groups only the direct child is killed (kill_on_drop).
}

/// Reads `manifest.json` and `trace_pack.jsonl` from the program's output directory.
/// Errors name the file (and line) and what was expected.
pub fn read_artifacts(out_dir: &Path, seed: u64) -> Result<Observation, String> {
    let manifest_path = out_dir.join(MANIFEST_FILE);
    if !manifest_path.exists() {
        return Err(format!(
            "{MANIFEST_FILE}: missing; the program exited 0 but wrote no {MANIFEST_FILE} into \
             its --output directory"
        ));
    }
    let manifest_bytes =
        read_bounded(&manifest_path).map_err(|e| format!("{MANIFEST_FILE}: {e}"))?;
    let manifest = parse_manifest(&manifest_bytes, seed)?;

    let trace_path = out_dir.join(TRACE_FILE);
    if !trace_path.exists() {
        return Err(format!(
            "{TRACE_FILE}: missing; the program wrote no {TRACE_FILE} into its --output \
             directory"
        ));
    }
    let trace_bytes = read_bounded(&trace_path).map_err(|e| format!("{TRACE_FILE}: {e}"))?;
    let trace =
        std::str::from_utf8(&trace_bytes).map_err(|e| format!("{TRACE_FILE}: not UTF-8: {e}"))?;
    let mut obs = parse_trace(trace)?;
    obs.metadata
        .insert("run_id".into(), Value::String(manifest.run_id));
    Ok(obs)
}

/// The parts of `manifest.json` Clarity uses.
#[derive(Debug, Clone, PartialEq)]
pub struct Manifest {
    pub run_id: String,
    pub seed: u64,
    pub artifacts: Vec<Value>,
}

/// Parses and checks `manifest.json`: an object with `run_id` and `timestamp` (strings),
/// `seed` (equal to the run's seed) and `artifacts` (an array).
pub fn parse_manifest(bytes: &[u8], expected_seed: u64) -> Result<Manifest, String> {
    let f = MANIFEST_FILE;
    let value: Value =
        serde_json::from_slice(bytes).map_err(|e| format!("{f}: malformed JSON: {e}"))?;
    let Value::Object(map) = value else {
        return Err(format!(
            "{f}: expected a JSON object, got {}",
            json_kind(&value)
        ));
    };
    let get = |key: &str| {
        map.get(key).ok_or_else(|| {
            format!("{f}: missing key `{key}` (required: run_id, timestamp, seed, artifacts)")
        })
    };
    let run_id = match get("run_id")? {
        Value::String(s) if !s.is_empty() => s.clone(),
        other => {
            return Err(format!(
                "{f}: `run_id` must be a non-empty string, got {}",
                snippet(other)
            ));
        }
    };
    if !get("timestamp")?.is_string() {
        return Err(format!(
            "{f}: `timestamp` must be a string, got {}",
            snippet(get("timestamp")?)
        ));
    }
    let seed_value = get("seed")?;
    let seed = seed_value.as_u64().ok_or_else(|| {
        format!(
            "{f}: `seed` must be a non-negative integer, got {}",
            snippet(seed_value)
        )
    })?;
    if seed != expected_seed {
        return Err(format!(
            "{f}: `seed` is {seed} but the program was run with --seed {expected_seed}"
        ));
    }
    let artifacts = match get("artifacts")? {
        Value::Array(a) => a.clone(),
        other => {
            return Err(format!(
                "{f}: `artifacts` must be an array, got {}",
                snippet(other)
            ));
        }
    };
    Ok(Manifest {
        run_id,
        seed,
        artifacts,
    })
}

/// Parses `trace_pack.jsonl` into an observation (answer, justification, confidence,
/// entropy, `adapter_metadata`). Blank lines are skipped; line numbers are 1-based.
pub fn parse_trace(text: &str) -> Result<Observation, String> {
    let f = TRACE_FILE;
    let mut answer: Option<String> = None;
    let mut justification: Option<String> = None;
    let mut confidence: Option<f64> = None;
    let mut entropy: Option<f64> = None;
    let mut adapter_metadata: Option<Value> = None;
    let mut records = 0usize;
    for (i, line) in text.lines().enumerate() {
        let n = i + 1;
        if line.trim().is_empty() {
            continue;
        }
        let value: Value =
            serde_json::from_str(line).map_err(|e| format!("{f} line {n}: malformed JSON: {e}"))?;
        let Value::Object(rec) = value else {
            return Err(format!(
                "{f} line {n}: expected a JSON object, got {}",
                json_kind(&value)
            ));
        };
        records += 1;
        if !rec.contains_key("step") && !rec.contains_key("step_id") {
            return Err(format!(
                "{f} line {n}: record has neither `step` nor `step_id`"
            ));
        }
        let text_field = |key: &str| -> Result<Option<String>, String> {
            match rec.get(key) {
                None | Some(Value::Null) => Ok(None),
                Some(Value::String(s)) => Ok(Some(s.clone())),
                Some(other) => Err(format!(
                    "{f} line {n}: `{key}` must be a string, got {}",
                    snippet(other)
                )),
            }
        };
        if let Some(a) = text_field("answer")?.or(text_field("output")?) {
            answer = Some(a);
        }
        if let Some(j) = text_field("justification")? {
            justification = Some(j);
        }
        let summary = match rec.get("rich_summary") {
            None | Some(Value::Null) => None,
            Some(Value::Object(s)) => Some(s),
            Some(other) => {
                return Err(format!(
                    "{f} line {n}: `rich_summary` must be an object, got {}",
                    snippet(other)
                ));
            }
        };
        let number = |key: &str| -> Result<Option<f64>, String> {
            let (v, name) = match (rec.get(key), summary.and_then(|s| s.get(key))) {
                (Some(v), _) if !v.is_null() => (v, key.to_string()),
                (_, Some(v)) if !v.is_null() => (v, format!("rich_summary.{key}")),
                _ => return Ok(None),
            };
            match v.as_f64() {
                Some(x) if x.is_finite() => Ok(Some(x)),
                _ => Err(format!(
                    "{f} line {n}: `{name}` must be a finite number, got {}",
                    snippet(v)
                )),
            }
        };
        if let Some(c) = number("confidence_score")? {
            if !(0.0..=1.0).contains(&c) {
                return Err(format!(
                    "{f} line {n}: confidence_score must be in [0, 1], got {c}"
                ));
            }
            confidence = Some(c);
        }
        if let Some(h) = number("output_entropy")? {
            if h < 0.0 {
                return Err(format!(
                    "{f} line {n}: output_entropy must be >= 0, got {h}"
                ));
            }
            entropy = Some(h);
        }
        match rec.get("adapter_metadata") {
            None | Some(Value::Null) => {}
            Some(v) => adapter_metadata = Some(v.clone()),
        }
    }
    let Some(answer) = answer else {
        return Err(format!(
            "{f}: no record has an `answer` or `output` ({records} records)"
        ));
    };
    let mut obs = Observation {
        answer: Some(answer),
        justification,
        confidence,
        entropy,
        ..Observation::default()
    };
    if let Some(m) = adapter_metadata {
        obs.metadata.insert("adapter_metadata".into(), m);
    }
    Ok(obs)
}

fn snippet(v: &Value) -> String {
    let s = v.to_string();
    let short: String = s.chars().take(80).collect();
    if short.len() < s.len() {
        format!("{short}…")
    } else {
        short
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const WITH_METADATA: &str = r#"{"trace_id": "trace-001", "step": 1, "event": "inference_start", "model_id": "medgemma-stub"}
{"trace_id": "trace-001", "step": 2, "event": "inference_complete", "output": "No abnormalities detected.", "adapter_metadata": {"attention_weights": [0.1, 0.2, 0.3], "confidence": 0.95}}
{"trace_id": "trace-001", "step": 3, "event": "evaluation_complete", "metrics": {"accuracy": 1.0}}
"#;

    #[test]
    fn answer_comes_from_the_last_record_that_has_one() {
        let obs = parse_trace(WITH_METADATA).unwrap();
        assert_eq!(obs.answer.as_deref(), Some("No abnormalities detected."));
        assert_eq!(obs.confidence, None);
        assert_eq!(obs.metadata["adapter_metadata"]["confidence"], json!(0.95));

        let two = "{\"step\":1,\"output\":\"first\"}\n{\"step_id\":\"b\",\"answer\":\"second\"}\n{\"step\":3}\n";
        assert_eq!(parse_trace(two).unwrap().answer.as_deref(), Some("second"));
        // `answer` wins over `output` on the same record; null means absent.
        let both = "{\"step\":1,\"output\":\"o\",\"answer\":\"a\"}\n{\"step\":2,\"output\":null}\n";
        assert_eq!(parse_trace(both).unwrap().answer.as_deref(), Some("a"));
    }

    #[test]
    fn scores_come_from_top_level_or_rich_summary() {
        let t = r#"{"step":1,"output":"nodule","justification":"edges","rich_summary":{"confidence_score":0.75,"output_entropy":0.5}}
{"step":2,"confidence_score":0.8}
"#;
        let obs = parse_trace(t).unwrap();
        assert_eq!(obs.confidence, Some(0.8));
        assert_eq!(obs.entropy, Some(0.5));
        assert_eq!(obs.justification.as_deref(), Some("edges"));
    }

    #[test]
    fn trace_errors_name_file_and_line() {
        let cases = [
            (
                "{\"step\":1}\nnot json\n",
                "trace_pack.jsonl line 2: malformed JSON: ",
            ),
            (
                "{\"step\":1}\n\n[1,2]\n",
                "trace_pack.jsonl line 3: expected a JSON object, got an array",
            ),
            (
                "{\"event\":\"x\"}\n",
                "trace_pack.jsonl line 1: record has neither `step` nor `step_id`",
            ),
            (
                "{\"step\":1,\"output\":3}\n",
                "trace_pack.jsonl line 1: `output` must be a string, got 3",
            ),
            (
                "{\"step\":1,\"output\":\"a\",\"confidence_score\":1.5}\n",
                "trace_pack.jsonl line 1: confidence_score must be in [0, 1], got 1.5",
            ),
            (
                "{\"step\":1,\"output\":\"a\",\"rich_summary\":{\"confidence_score\":\"high\"}}\n",
                "trace_pack.jsonl line 1: `rich_summary.confidence_score` must be a finite number, got \"high\"",
            ),
            (
                "{\"step\":1,\"output\":\"a\",\"output_entropy\":-0.1}\n",
                "trace_pack.jsonl line 1: output_entropy must be >= 0, got -0.1",
            ),
            (
                "{\"step\":1}\n{\"step\":2}\n",
                "trace_pack.jsonl: no record has an `answer` or `output` (2 records)",
            ),
            (
                "",
                "trace_pack.jsonl: no record has an `answer` or `output` (0 records)",
            ),
        ];
        for (text, want) in cases {
            let err = parse_trace(text).unwrap_err();
            assert!(
                err.starts_with(want),
                "{text:?}: got {err:?}, want {want:?}"
            );
        }
    }

    #[test]
    fn manifest_checks() {
        let ok = br#"{"run_id":"r1","timestamp":"2026-01-01T00:00:00Z","seed":42,"artifacts":["trace_pack.jsonl"]}"#;
        let m = parse_manifest(ok, 42).unwrap();
        assert_eq!((m.run_id.as_str(), m.seed), ("r1", 42));
        let cases: [(&[u8], &str); 6] = [
            (b"{", "manifest.json: malformed JSON: "),
            (b"[]", "manifest.json: expected a JSON object, got an array"),
            (
                br#"{"timestamp":"t","seed":42,"artifacts":[]}"#,
                "manifest.json: missing key `run_id` (required: run_id, timestamp, seed, artifacts)",
            ),
            (
                br#"{"run_id":"r","timestamp":"t","seed":-1,"artifacts":[]}"#,
                "manifest.json: `seed` must be a non-negative integer, got -1",
            ),
            (
                br#"{"run_id":"r","timestamp":"t","seed":7,"artifacts":[]}"#,
                "manifest.json: `seed` is 7 but the program was run with --seed 42",
            ),
            (
                br#"{"run_id":"r","timestamp":"t","seed":42,"artifacts":{}}"#,
                "manifest.json: `artifacts` must be an array, got {}",
            ),
        ];
        for (bytes, want) in cases {
            let err = parse_manifest(bytes, 42).unwrap_err();
            assert!(err.starts_with(want), "got {err:?}, want {want:?}");
        }
    }

    #[test]
    fn reference_samples_parse() {
        let dir =
            Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared/reference/r2l_samples");
        if !dir.exists() {
            eprintln!("skipping: reference samples not found at {}", dir.display());
            return;
        }
        let m = parse_manifest(&fs_err::read(dir.join("manifest.json")).unwrap(), 42).unwrap();
        assert_eq!(m.run_id, "test-run-001");
        let t = fs_err::read_to_string(dir.join("trace_pack_without_metadata.jsonl")).unwrap();
        let obs = parse_trace(&t).unwrap();
        assert_eq!(
            obs.answer.as_deref(),
            Some("Mild opacity in right lower lobe.")
        );
        assert!(obs.metadata.is_empty());
    }

    #[test]
    fn spec_hash_is_exact_and_order_free() {
        let spec_hash = |spec: &str| {
            let mut c = CommandConfig::new("/bin/sh");
            c.spec = Some(serde_json::from_str(spec).unwrap());
            CommandAdapter::new(&c, Path::new("/"))
                .unwrap()
                .identity()
                .settings["spec"]
                .clone()
        };
        assert_eq!(
            spec_hash(r#"{"a":1,"b":0.5}"#),
            spec_hash(r#"{"b":0.5,"a":1}"#)
        );
        // Canonical artifact JSON rounds to 9 decimals; the key must not.
        assert_ne!(
            spec_hash(r#"{"t":0.1}"#),
            spec_hash(r#"{"t":0.100000000001}"#)
        );
    }

    #[test]
    fn config_rejects_unknown_keys_and_bad_values() {
        let err = toml::from_str::<CommandConfig>("program = \"x\"\ntimeout = 3\n").unwrap_err();
        assert!(err.to_string().contains("unknown field `timeout`"), "{err}");
        let mut c = CommandConfig::new("/bin/sh");
        c.timeout_secs = 0.0;
        let err = CommandAdapter::new(&c, Path::new("/")).unwrap_err();
        assert_eq!(
            err.to_string(),
            "adapter command: `timeout_secs` must be a finite number > 0, got 0"
        );
        let mut c = CommandConfig::new("/bin/sh");
        c.spec = Some(json!([1]));
        let err = CommandAdapter::new(&c, Path::new("/")).unwrap_err();
        assert_eq!(
            err.to_string(),
            "adapter command: `spec` must be a table (JSON object), got an array"
        );
    }

    #[cfg(unix)]
    #[test]
    fn artifacts_behind_a_symlink_to_a_device_or_a_fifo_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let m = dir.path().join(MANIFEST_FILE);
        std::fs::write(
            &m,
            r#"{"run_id":"r","timestamp":"t","seed":1,"artifacts":[]}"#,
        )
        .unwrap();
        std::os::unix::fs::symlink("/dev/zero", dir.path().join(TRACE_FILE)).unwrap();
        let e = read_artifacts(dir.path(), 1).unwrap_err();
        assert!(e.contains("is not a regular file (a device)"), "{e}");
        std::fs::remove_file(dir.path().join(TRACE_FILE)).unwrap();
        let st = std::process::Command::new("mkfifo")
            .arg(dir.path().join(TRACE_FILE))
            .status()
            .unwrap();
        assert!(st.success());
        let e = read_artifacts(dir.path(), 1).unwrap_err();
        assert!(e.contains("is not a regular file (a FIFO)"), "{e}");
    }
}
