//! Sweeps and probes started from the console: a config file under the root is run by the
//! [`Launcher`] (the binary passes the functions behind `clarity run` and `clarity probe`) on
//! its own thread; a monitor follows the sweep directory (plan → journal → observations →
//! metrics → report; for a probe, its own journal → probe.json) and publishes [`Progress`] to
//! any number of server-sent-event streams. Resuming a sweep is running its config again.

use std::collections::BTreeMap;
use std::io::{Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

use clarity_engine::artifacts::{JOURNAL_FILE, OBSERVATIONS_FILE, PLAN_FILE, SweepRecords};
use clarity_engine::{CohortConfig, EngineError};
use clarity_probe::{PROBE_DIR, PROBE_FILE};
use serde::Serialize;
use tokio::sync::{Notify, oneshot, watch};

use crate::ApiError;
use crate::paths::{id_of, is_under, resolve_under};

/// What a launch runs: the config as `clarity run CONFIG` (which resumes an interrupted
/// sweep), as `clarity probe CONFIG [ARGS]`, or `clarity report DIR [--config CONFIG]`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LaunchKind {
    Run,
    Probe,
    Report,
}

/// What the launcher is asked to run.
pub struct LaunchRequest {
    /// The config file (under the root; already validated). Always there for a run or a
    /// probe; for a report, the config that plans the sweep when one is under the root.
    pub config: Option<PathBuf>,
    /// The sweep directory (under the root).
    pub dir: PathBuf,
    /// `clarity run`, `clarity probe` or `clarity report`.
    pub kind: LaunchKind,
    /// Further arguments of the subcommand (a scoped probe's `--case ID --cell N ...`).
    pub args: Vec<String>,
    /// Notified when the user cancels: the sweep stops cleanly and can be resumed.
    pub interrupt: Arc<Notify>,
}

/// Runs a sweep (or a probe) to the end on the calling thread (blocking) and returns `clarity
/// run`'s (`clarity probe`'s) exit code (130 when interrupted), or an error message.
pub type Launcher = Arc<dyn Fn(LaunchRequest) -> Result<u8, String> + Send + Sync>;

/// How often the monitor looks at the sweep directory.
const POLL: Duration = Duration::from_millis(200);

/// A started sweep's progress (the body of `GET /api/v1/jobs/{job}` and of each SSE event).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Progress {
    pub id: u64,
    /// `run` (a config started), `resume` (a sweep's config started again), `probe` or
    /// `report` (report.html/pdf rendered again, with the probe section).
    pub kind: &'static str,
    /// The config, relative to the root (empty for a report without one).
    pub config: String,
    /// The sweep directory's id (relative to the root).
    pub sweep: String,
    /// `running`, `finished`, `failed` or `cancelled`.
    pub status: &'static str,
    /// `plan`, `run`, `probe`, `analyse`, `report` or `done`.
    pub phase: &'static str,
    /// Runs planned (known once `plan.json` is written; a probe's runs are not known ahead).
    pub planned: Option<u64>,
    /// Runs recorded in the journal (including those resumed from an earlier attempt; a
    /// probe's own journal, `probe/journal.jsonl`, for a probe).
    pub done: u64,
    /// Of which failed.
    pub failed: u64,
    /// `done / planned` in percent (100 once finished).
    pub percent: f64,
    /// Runs per second since the start.
    pub rate: f64,
    /// Seconds left at the current rate (while running).
    pub eta_s: Option<f64>,
    pub elapsed_s: f64,
    /// `clarity run`'s exit code (0 ok, 3 some runs failed, 130 cancelled).
    pub exit_code: Option<u8>,
    pub error: Option<String>,
}

pub struct Job {
    dir: PathBuf,
    kind: LaunchKind,
    interrupt: Arc<Notify>,
    tx: watch::Sender<Progress>,
}

impl Job {
    pub fn progress(&self) -> Progress {
        self.tx.borrow().clone()
    }
    pub fn subscribe(&self) -> watch::Receiver<Progress> {
        self.tx.subscribe()
    }
    fn running(&self) -> bool {
        self.tx.borrow().status == "running"
    }
}

/// Every job started by this server (kept for its lifetime).
#[derive(Default)]
pub struct Jobs {
    next: AtomicU64,
    map: Mutex<BTreeMap<u64, Arc<Job>>>,
}

impl Jobs {
    pub fn get(&self, id: u64) -> Option<Arc<Job>> {
        self.map.lock().expect("jobs lock").get(&id).cloned()
    }
    pub fn all(&self) -> Vec<Progress> {
        self.map
            .lock()
            .expect("jobs lock")
            .values()
            .map(|j| j.progress())
            .collect()
    }
    /// Is a job running in `dir`?
    pub fn running_in(&self, dir: &Path) -> bool {
        self.map
            .lock()
            .expect("jobs lock")
            .values()
            .any(|j| j.dir == dir && j.running())
    }
    /// Cancels job `id` (it stops at the next run boundary; the journal keeps what is done).
    pub fn cancel(&self, id: u64) -> Result<Progress, ApiError> {
        let job = self
            .get(id)
            .ok_or_else(|| ApiError::not_found(format!("no job {id}")))?;
        if !job.running() {
            return Err(ApiError::new(
                axum::http::StatusCode::CONFLICT,
                format!("job {id} is not running"),
            ));
        }
        job.interrupt.notify_one();
        Ok(job.progress())
    }
}

/// Loads the config at `path` and checks that its output directory and its cohort (folder or
/// manifest) are under `root`; returns it and its output directory.
pub fn check(
    root: &Path,
    path: &Path,
    config_rel: &str,
) -> Result<(clarity_engine::SweepConfig, PathBuf), ApiError> {
    let config =
        clarity_engine::load_config(path).map_err(|e| ApiError::bad_request(e.to_string()))?;
    let out = clarity_engine::output_dir(&config, None)
        .map_err(|e| ApiError::bad_request(e.to_string()))?;
    if !is_under(root, &out) {
        return Err(ApiError::forbidden(format!(
            "`{config_rel}`: its output {} is outside the served root",
            out.display()
        )));
    }
    if let CohortConfig::Folder { path: p, .. } | CohortConfig::Manifest { path: p, .. } =
        &config.cohort
    {
        let c = config.resolve_path(p);
        if !is_under(root, &c) {
            return Err(ApiError::forbidden(format!(
                "`{config_rel}`: its cohort {} is outside the served root",
                c.display()
            )));
        }
    }
    Ok((config, out))
}

/// What a job does, as [`Progress::kind`] names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum JobKind {
    /// Run a config (`clarity run`).
    Run,
    /// Run a sweep's config again (`clarity run`, which resumes from the journal).
    Resume,
    /// Probe a config (`clarity probe`).
    Probe,
    /// Render a sweep's report again (`clarity report`), including its probe.json.
    Report,
}

impl JobKind {
    fn name(self) -> &'static str {
        match self {
            JobKind::Run => "run",
            JobKind::Resume => "resume",
            JobKind::Probe => "probe",
            JobKind::Report => "report",
        }
    }
    /// What the job does to a sweep, for messages.
    pub fn verb(self) -> &'static str {
        match self {
            JobKind::Run => "run",
            JobKind::Resume => "resume",
            JobKind::Probe => "probe",
            JobKind::Report => "report",
        }
    }
    fn launch(self) -> LaunchKind {
        match self {
            JobKind::Run | JobKind::Resume => LaunchKind::Run,
            JobKind::Probe => LaunchKind::Probe,
            JobKind::Report => LaunchKind::Report,
        }
    }
}

/// Fails with 409 and the engine's own lock error when another process (or another sweep in
/// this one) holds `dir`'s output lock, so a refusal is seen at once instead of as a failed
/// job. The launcher takes the lock itself; this only looks.
fn check_unlocked(dir: &Path) -> Result<(), ApiError> {
    if !dir.is_dir() {
        return Ok(());
    }
    match clarity_engine::lock::OutputLock::acquire(dir) {
        Ok(lock) => {
            drop(lock);
            Ok(())
        }
        Err(e @ EngineError::Locked { .. }) => Err(ApiError::new(
            axum::http::StatusCode::CONFLICT,
            e.to_string(),
        )),
        // Anything else (e.g. an unwritable directory) is the launcher's to report.
        Err(_) => Ok(()),
    }
}

/// Checks the config (see [`check`]) and starts it. The config file, its output directory and
/// its cohort must all be under `root`; the output directory may not be locked. `args` are
/// further arguments of the subcommand (already validated).
pub fn start(
    jobs: &Jobs,
    root: &Path,
    launcher: &Launcher,
    config_rel: &str,
    kind: JobKind,
    args: Vec<String>,
) -> Result<Progress, ApiError> {
    let path = resolve_under(root, config_rel)?;
    if !path.is_file() {
        return Err(ApiError::bad_request(format!(
            "`{config_rel}`: not a config file"
        )));
    }
    let (_, out) = check(root, &path, config_rel)?;
    let dir = crate::paths::normalize(&out);
    // The directory may not exist yet; its id is its path relative to the root.
    let dir = std::fs::canonicalize(&dir).unwrap_or(dir);
    if jobs.running_in(&dir) {
        return Err(ApiError::new(
            axum::http::StatusCode::CONFLICT,
            format!("a sweep is already running in `{}`", id_of(root, &dir)),
        ));
    }
    check_unlocked(&dir)?;
    spawn(
        jobs,
        root,
        launcher,
        dir,
        Some((config_rel, path)),
        kind,
        args,
    )
}

/// Renders the report of the analysed sweep `dir` again (`clarity report`), with the config
/// that plans it when there is one under the root (`config`: relative path and path), so the
/// worst cases get thumbnails; the report shows the sweep's probe.json.
pub fn start_report(
    jobs: &Jobs,
    root: &Path,
    launcher: &Launcher,
    dir: PathBuf,
    config: Option<(String, PathBuf)>,
) -> Result<Progress, ApiError> {
    if !dir.join("metrics.json").is_file() {
        return Err(ApiError::new(
            axum::http::StatusCode::CONFLICT,
            format!(
                "`{}` is not analysed (no metrics.json): resume or analyse it first",
                id_of(root, &dir)
            ),
        ));
    }
    if jobs.running_in(&dir) {
        return Err(ApiError::new(
            axum::http::StatusCode::CONFLICT,
            format!("a job is already running in `{}`", id_of(root, &dir)),
        ));
    }
    let config = config.as_ref().map(|(r, p)| (r.as_str(), p.clone()));
    spawn(
        jobs,
        root,
        launcher,
        dir,
        config,
        JobKind::Report,
        Vec::new(),
    )
}

/// Registers job `kind` on `dir` and starts it on its own thread, with its monitor.
fn spawn(
    jobs: &Jobs,
    root: &Path,
    launcher: &Launcher,
    dir: PathBuf,
    config: Option<(&str, PathBuf)>,
    kind: JobKind,
    args: Vec<String>,
) -> Result<Progress, ApiError> {
    let config_rel = config
        .as_ref()
        .map(|(r, _)| r.to_string())
        .unwrap_or_default();
    let id = jobs.next.fetch_add(1, Ordering::SeqCst) + 1;
    let interrupt = Arc::new(Notify::new());
    let initial = Progress {
        id,
        kind: kind.name(),
        config: config_rel,
        sweep: id_of(root, &dir),
        status: "running",
        phase: if kind == JobKind::Report {
            "report"
        } else {
            "plan"
        },
        planned: None,
        done: 0,
        failed: 0,
        percent: 0.0,
        rate: 0.0,
        eta_s: None,
        elapsed_s: 0.0,
        exit_code: None,
        error: None,
    };
    let (tx, _) = watch::channel(initial.clone());
    let job = Arc::new(Job {
        dir: dir.clone(),
        kind: kind.launch(),
        interrupt: interrupt.clone(),
        tx,
    });
    jobs.map.lock().expect("jobs lock").insert(id, job.clone());
    let (done_tx, done_rx) = oneshot::channel();
    let launcher = launcher.clone();
    let req = LaunchRequest {
        config: config.map(|(_, p)| p),
        dir,
        kind: kind.launch(),
        args,
        interrupt,
    };
    // Its own thread: the launcher blocks (and may start its own async runtime).
    std::thread::Builder::new()
        .name(format!("clarity-job-{id}"))
        .spawn(move || {
            let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| launcher(req)))
                .unwrap_or_else(|_| Err("the sweep panicked".into()));
            let _ = done_tx.send(r);
        })
        .map_err(|e| ApiError::internal(format!("cannot start the sweep thread: {e}")))?;
    tokio::spawn(monitor(job, done_rx));
    Ok(initial)
}

/// Counts the journal's complete lines (and failed records) incrementally; once the sweep is
/// sealed (the journal removed, the table written), the table's runs.
#[derive(Default)]
struct JournalCount {
    offset: u64,
    lines: u64,
    failed: u64,
    sealed: bool,
}

impl JournalCount {
    /// Counts from the sealed sweep's records (once): every run and the failed ones.
    fn sealed(&mut self, dir: &Path) {
        if self.sealed {
            return;
        }
        let Some(records) = SweepRecords::finished(dir) else {
            return;
        };
        let (mut lines, mut failed) = (0u64, 0u64);
        let read = records.for_each(|_, r| {
            lines += 1;
            failed += u64::from(r.observation().is_none());
            Ok::<(), clarity_engine::EngineError>(())
        });
        if read.is_ok() {
            (self.lines, self.failed, self.sealed) = (lines, failed, true);
        }
    }

    fn update(&mut self, path: &Path) {
        let Ok(mut f) = std::fs::File::open(path) else {
            return;
        };
        let len = f.metadata().map(|m| m.len()).unwrap_or(0);
        if len < self.offset {
            *self = JournalCount::default();
        }
        if f.seek(SeekFrom::Start(self.offset)).is_err() {
            return;
        }
        let mut buf = Vec::new();
        if f.read_to_end(&mut buf).is_err() {
            return;
        }
        let Some(last_nl) = buf.iter().rposition(|&b| b == b'\n') else {
            return;
        };
        let complete = &buf[..=last_nl];
        for line in complete.split(|&b| b == b'\n').filter(|l| !l.is_empty()) {
            self.lines += 1;
            // Canonical JSON: a failed record's outcome has `"status":"failed"` (inside a string
            // the quotes would be escaped).
            if line.windows(17).any(|w| w == b"\"status\":\"failed\"") {
                self.failed += 1;
            }
        }
        self.offset += complete.len() as u64;
    }
}

fn newer(path: &Path, since: SystemTime) -> bool {
    std::fs::metadata(path)
        .and_then(|m| m.modified())
        .is_ok_and(|t| t >= since)
}

async fn monitor(job: Arc<Job>, mut done: oneshot::Receiver<Result<u8, String>>) {
    let started = Instant::now();
    // File times have coarse resolution on some file systems: allow a second of slack.
    let since = SystemTime::now() - Duration::from_secs(1);
    let mut count = JournalCount::default();
    let mut planned = None;
    loop {
        let finished = tokio::select! {
            r = &mut done => Some(r.unwrap_or_else(|_| Err("the sweep thread vanished".into()))),
            _ = tokio::time::sleep(POLL) => None,
        };
        let dir = &job.dir;
        let probe = job.kind == LaunchKind::Probe;
        let report = job.kind == LaunchKind::Report;
        if report {
            // Nothing to count: the report is one step.
        } else if probe {
            count.update(&dir.join(PROBE_DIR).join(JOURNAL_FILE));
        } else {
            count.update(&dir.join(JOURNAL_FILE));
            if newer(&dir.join(OBSERVATIONS_FILE), since) {
                count.sealed(dir);
            }
        }
        if !probe && !report && planned.is_none() && newer(&dir.join(PLAN_FILE), since) {
            planned = std::fs::read_to_string(dir.join(PLAN_FILE))
                .ok()
                .and_then(|t| serde_json::from_str::<serde_json::Value>(&t).ok())
                .and_then(|v| v.get("runs").and_then(serde_json::Value::as_u64));
        }
        let elapsed = started.elapsed().as_secs_f64();
        let phase = if report {
            "report"
        } else if probe {
            if newer(&dir.join(PROBE_FILE), since) {
                "report"
            } else {
                "probe"
            }
        } else if planned.is_none() {
            "plan"
        } else if !newer(&dir.join(OBSERVATIONS_FILE), since) {
            "run"
        } else if !newer(&dir.join("metrics.json"), since) {
            "analyse"
        } else {
            "report"
        };
        let done_runs = planned.map_or(count.lines, |p| count.lines.min(p));
        let rate = if elapsed > 0.0 {
            done_runs as f64 / elapsed
        } else {
            0.0
        };
        let mut p = job.progress();
        p.planned = planned;
        p.done = done_runs;
        p.failed = count.failed;
        p.elapsed_s = (elapsed * 10.0).round() / 10.0;
        p.rate = (rate * 10.0).round() / 10.0;
        p.phase = phase;
        p.percent = match planned {
            Some(0) | None => 0.0,
            Some(n) => ((done_runs as f64 / n as f64) * 1000.0).round() / 10.0,
        };
        p.eta_s = planned
            .filter(|_| rate > 0.0)
            .map(|n| (((n.saturating_sub(done_runs)) as f64 / rate) * 10.0).round() / 10.0);
        if let Some(r) = finished {
            p.eta_s = None;
            match r {
                Ok(code @ (0 | 3)) => {
                    p.status = "finished";
                    p.phase = "done";
                    p.percent = 100.0;
                    p.exit_code = Some(code);
                }
                Ok(130) => {
                    p.status = "cancelled";
                    p.exit_code = Some(130);
                }
                Ok(code) => {
                    p.status = "failed";
                    p.exit_code = Some(code);
                }
                Err(e) => {
                    p.status = "failed";
                    p.error = Some(e);
                }
            }
            job.tx.send_replace(p);
            return;
        }
        job.tx.send_if_modified(|cur| {
            let changed = (cur.done, cur.failed, cur.phase, cur.planned)
                != (p.done, p.failed, p.phase, p.planned);
            if changed {
                *cur = p;
            }
            changed
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn journal_counts_complete_lines_incrementally() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("journal.jsonl");
        std::fs::write(
            &p,
            "{\"outcome\":{\"status\":\"ok\"}}\n{\"outcome\":{\"status\":\"fa",
        )
        .unwrap();
        let mut c = JournalCount::default();
        c.update(&p);
        assert_eq!((c.lines, c.failed), (1, 0));
        let mut t = std::fs::read_to_string(&p).unwrap();
        t.push_str("iled\"}}\n{\"answer\":\"\\\"status\\\":\\\"failed\\\"\"}\n");
        std::fs::write(&p, t).unwrap();
        c.update(&p);
        assert_eq!((c.lines, c.failed), (3, 1));
    }
}
