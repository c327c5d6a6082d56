//! The model boundary.
//!
//! An [`Adapter`] turns one [`RunInput`] (a perturbed image plus prompt and seed) into an
//! [`Observation`]. Adapters declare an [`AdapterIdentity`] (name, model, version or weights
//! hash, settings) that goes into every run's content key, and a [`Workload`] that tells the
//! executor how to schedule them (CPU-bound in-process models on all cores, I/O-bound adapters
//! with N calls in flight). Adding an adapter never touches the orchestrator: add a variant to
//! [`AdapterConfig`] and a module.
//!
//! Implementations: [`builtin`] (the embedded reference CNN), [`command`] (any program
//! speaking the R2L artifact contract, SPEC §4), [`onnx`] (any ONNX image classifier, in
//! process through tract), [`openai`] (any OpenAI-compatible chat-completions server),
//! [`worker`] (long-lived external processes answering JSON lines, e.g. a Python model).

pub mod builtin;
pub mod command;
pub mod onnx;
pub mod openai;
pub mod worker;

use std::path::PathBuf;
use std::sync::Arc;

use async_trait::async_trait;
use clarity_core::Observation;
use clarity_image::Image;
use clarity_perturb::Step;
use serde::{Deserialize, Serialize};

/// Everything an adapter gets for one run.
#[derive(Debug, Clone)]
pub struct RunInput {
    /// The run's content key (hex); unique per run.
    pub key: String,
    pub case_id: String,
    /// The perturbed image, in its native format (gray/RGB, 8/16-bit).
    pub image: Arc<Image>,
    /// Where the engine wrote the perturbed image as PNG, when the adapter asked for a file
    /// ([`Adapter::needs_image_file`]).
    pub image_path: Option<PathBuf>,
    pub prompt: Option<String>,
    /// The run's seed (replicate), for stochastic decoding.
    pub seed: u64,
    /// The perturbations applied to produce `image`, in order (recorded for the model's spec).
    pub perturbations: Vec<Step>,
    /// A scratch directory owned by this run (exists, empty); the engine removes it afterwards.
    pub work_dir: PathBuf,
}

/// What goes into the content key about the model.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AdapterIdentity {
    /// Adapter kind, e.g. `command`, `builtin`.
    pub adapter: String,
    /// Model id, e.g. a program path or `clarity-builtin-cnn`.
    pub model: String,
    /// Version or weights hash.
    pub version: String,
    /// Settings that change answers (temperature, preprocessing…), never secrets.
    pub settings: serde_json::Value,
}

/// How the executor should schedule an adapter.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Workload {
    /// In-process compute: run on all cores (the executor bounds it by `--jobs`).
    Cpu,
    /// External calls (process, HTTP): keep up to this many in flight.
    Io { max_in_flight: usize },
}

/// A failed model call.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum AdapterError {
    /// Worth retrying (HTTP 429/5xx, connection reset…).
    #[error("{0}")]
    Transient(String),
    /// Retrying will not help (bad output, non-zero exit…).
    #[error("{0}")]
    Permanent(String),
    /// `what` names the call (`command model.sh`, `POST http://…`).
    #[error("{what}: timed out after {secs} s")]
    Timeout { what: String, secs: f64 },
}

impl AdapterError {
    pub fn is_transient(&self) -> bool {
        matches!(
            self,
            AdapterError::Transient(_) | AdapterError::Timeout { .. }
        )
    }
}

/// One way of calling a model.
#[async_trait]
pub trait Adapter: Send + Sync {
    fn identity(&self) -> AdapterIdentity;
    fn workload(&self) -> Workload;
    /// Whether the engine must write the perturbed image to `RunInput::image_path`.
    fn needs_image_file(&self) -> bool {
        false
    }
    /// Checks, once before the first run of a sweep, that the model can be reached (a
    /// server is up and serves the model…). The engine calls it only when runs remain to do;
    /// an error fails the sweep before any run. Default: nothing to check.
    async fn preflight(&self) -> Result<(), BuildError> {
        Ok(())
    }

    /// Runs one input. CPU-bound adapters should do their work inside
    /// `tokio::task::spawn_blocking` so the runtime stays responsive.
    async fn run(&self, input: RunInput) -> Result<Observation, AdapterError>;

    /// Runs several inputs; results in input order. Override when the model batches.
    async fn run_batch(&self, inputs: Vec<RunInput>) -> Vec<Result<Observation, AdapterError>> {
        let mut out = Vec::with_capacity(inputs.len());
        for input in inputs {
            out.push(self.run(input).await);
        }
        out
    }
}

/// The `[adapter]` table of a sweep config, tagged by `kind`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
// Built once per sweep: variant sizes do not matter.
#[allow(clippy::large_enum_variant)]
pub enum AdapterConfig {
    Builtin(builtin::BuiltinConfig),
    Command(command::CommandConfig),
    Onnx(onnx::OnnxConfig),
    Openai(openai::OpenAiConfig),
    Worker(worker::WorkerConfig),
}

/// Errors building an adapter from its config.
#[derive(Debug, thiserror::Error)]
pub enum BuildError {
    #[error("adapter {adapter}: {message}")]
    Invalid { adapter: String, message: String },
    /// The pre-flight check failed: the model cannot be reached or is not served.
    #[error("adapter {adapter}: {message}")]
    Unavailable { adapter: String, message: String },
}

impl AdapterConfig {
    /// Builds the adapter. Paths in the config are resolved against `base_dir` (the config
    /// file's directory).
    pub fn build(&self, base_dir: &std::path::Path) -> Result<Arc<dyn Adapter>, BuildError> {
        match self {
            AdapterConfig::Builtin(c) => Ok(Arc::new(builtin::BuiltinAdapter::new(c)?)),
            AdapterConfig::Command(c) => Ok(Arc::new(command::CommandAdapter::new(c, base_dir)?)),
            AdapterConfig::Onnx(c) => Ok(Arc::new(onnx::OnnxAdapter::new(c, base_dir)?)),
            AdapterConfig::Openai(c) => Ok(Arc::new(openai::OpenAiAdapter::new(c, base_dir)?)),
            AdapterConfig::Worker(c) => Ok(Arc::new(worker::WorkerAdapter::new(c, base_dir)?)),
        }
    }
}
