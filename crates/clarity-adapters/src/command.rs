//! The `command` adapter: runs an external program that speaks the R2L artifact contract
//! (SPEC §4). Placeholder until the command-adapter work lands.

use std::path::{Path, PathBuf};

use async_trait::async_trait;
use clarity_core::Observation;
use serde::{Deserialize, Serialize};

use crate::{Adapter, AdapterError, AdapterIdentity, BuildError, RunInput, Workload};

/// `[adapter] kind = "command"` settings.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CommandConfig {
    /// Program to run (resolved against the config's directory when relative and containing `/`).
    pub program: PathBuf,
}

pub struct CommandAdapter {
    program: PathBuf,
}

impl CommandAdapter {
    pub fn new(config: &CommandConfig, base_dir: &Path) -> Result<Self, BuildError> {
        Ok(Self {
            program: base_dir.join(&config.program),
        })
    }
}

#[async_trait]
impl Adapter for CommandAdapter {
    fn identity(&self) -> AdapterIdentity {
        AdapterIdentity {
            adapter: "command".into(),
            model: self.program.display().to_string(),
            version: String::new(),
            settings: serde_json::Value::Null,
        }
    }
    fn workload(&self) -> Workload {
        Workload::Io { max_in_flight: 4 }
    }
    async fn run(&self, _input: RunInput) -> Result<Observation, AdapterError> {
        Err(AdapterError::Permanent(
            "command adapter not implemented yet".into(),
        ))
    }
}
