use std::path::PathBuf;

/// Everything that can go wrong loading or analysing a sweep.
#[derive(Debug, thiserror::Error)]
pub enum AnalysisError {
    #[error(transparent)]
    Store(#[from] clarity_store::StoreError),
    #[error(transparent)]
    Io(#[from] std::io::Error),
    #[error("{path}: invalid JSON: {source}")]
    Json {
        path: PathBuf,
        source: serde_json::Error,
    },
    #[error("{path}: key `{key}`: expected {expected}")]
    Shape {
        path: PathBuf,
        key: String,
        expected: String,
    },
    #[error("{path}: line {line}: {message}")]
    Line {
        path: PathBuf,
        line: usize,
        message: String,
    },
    #[error("{0}: neither a Clarity sweep (plan.json) nor an R2L sweep (sweep_manifest.json)")]
    UnknownDir(PathBuf),
    #[error("no baseline: {0}")]
    Baseline(String),
    #[error("invalid sweep: {0}")]
    Invalid(String),
    #[error("invalid regex normalisation `{pattern}`: {message}")]
    Regex { pattern: String, message: String },
    #[error("cannot serialise {file}: {message}")]
    Serialize { file: String, message: String },
    #[error("cannot write CSV {file}: {message}")]
    Csv { file: String, message: String },
}
