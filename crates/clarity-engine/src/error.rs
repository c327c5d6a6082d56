use std::path::PathBuf;

/// Errors from the engine. Config and input errors name the file, the key and (for TOML) the
/// line and column; run failures are not errors (they are recorded in the journal).
#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    /// The sweep config is invalid (bad syntax, unknown key, wrong type, out-of-range value).
    #[error("{}", render_config(path, location, key, message))]
    Config {
        path: PathBuf,
        /// 1-based line and column, when known.
        location: Option<(usize, usize)>,
        /// Dotted key path, e.g. `axes."gaussian_blur.sigma"` (empty when unknown).
        key: String,
        message: String,
    },
    /// The cohort could not be loaded (missing image, duplicate case id, bad manifest line…).
    #[error("{path}: {message}")]
    Input { path: PathBuf, message: String },
    /// The cohort could not be loaded (from `clarity-cohort`; names the folder or manifest
    /// and line).
    #[error(transparent)]
    Cohort(#[from] clarity_cohort::CohortError),
    /// A resource limit of `[limits]` was exceeded.
    #[error(
        "{what} is {actual}, above the limit {limit} (raise `limits.{key}` in the config or pass --{})",
        key.replace('_', "-")
    )]
    Limit {
        what: String,
        key: &'static str,
        actual: u64,
        limit: u64,
    },
    /// The output directory cannot be used for this sweep (it would be clobbered).
    #[error("{path}: {message}")]
    OutputDir { path: PathBuf, message: String },
    /// Another process holds the output directory's lock (`.clarity.lock`).
    #[error(
        "{path}: in use by another clarity process{} (lock file .clarity.lock); wait for it to finish or choose another output directory",
        pid.map(|p| format!(" (PID {p})")).unwrap_or_default()
    )]
    Locked { path: PathBuf, pid: Option<u32> },
    #[error("{path}: line {line}: {message}")]
    Journal {
        path: PathBuf,
        line: usize,
        message: String,
    },
    #[error(transparent)]
    Adapter(#[from] clarity_adapters::BuildError),
    #[error(transparent)]
    Json(#[from] clarity_core::json::JsonError),
    #[error(transparent)]
    Io(#[from] std::io::Error),
    /// `--fail-fast` stopped the sweep at a failed run.
    #[error("run {case_id} cell {cell} seed {seed} failed (--fail-fast): {error}")]
    FailFast {
        case_id: String,
        cell: usize,
        seed: u64,
        error: String,
    },
    /// Ctrl-C (or the test hook) stopped the sweep; the journal holds every finished run.
    #[error("interrupted; {done} of {total} runs recorded, run the same command again to resume")]
    Interrupted { done: usize, total: usize },
    #[error("internal error: {0}")]
    Internal(String),
}

impl EngineError {
    /// Whether this is a usage/config/input problem (CLI exit code 2) rather than a runtime one.
    pub fn is_usage(&self) -> bool {
        matches!(
            self,
            EngineError::Config { .. }
                | EngineError::Input { .. }
                | EngineError::Cohort(_)
                | EngineError::Limit { .. }
                | EngineError::OutputDir { .. }
                | EngineError::Adapter(_)
        )
    }
}

fn render_config(
    path: &std::path::Path,
    location: &Option<(usize, usize)>,
    key: &str,
    message: &str,
) -> String {
    let mut s = path.display().to_string();
    if let Some((line, col)) = location {
        s.push_str(&format!(":{line}:{col}"));
    }
    s.push_str(": ");
    if !key.is_empty() {
        s.push_str(&format!("key `{key}`: "));
    }
    s.push_str(message);
    s
}

impl From<clarity_store::StoreError> for EngineError {
    fn from(e: clarity_store::StoreError) -> Self {
        crate::artifacts::store_err(e)
    }
}
