use std::path::PathBuf;

use clarity_core::{Axis, Case, Cell, Normalization, RunRecord};
use serde::{Deserialize, Serialize};

use crate::AnalysisError;

/// Analysis settings, from `plan.json`'s `analysis` object (every key optional).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct AnalysisSettings {
    /// Bootstrap resamples for the 95% CIs (0: no CIs).
    pub bootstrap_iterations: usize,
    /// Seed of the bootstrap's ChaCha8 streams.
    pub bootstrap_seed: u64,
    /// ESI / accuracy level below which a cliff is declared, in `[0, 1]`.
    pub cliff_threshold: f64,
    /// Baseline self-agreement below which the model is flagged, in `[0, 1]`.
    pub self_agreement_threshold: f64,
}

impl Default for AnalysisSettings {
    fn default() -> Self {
        Self {
            bootstrap_iterations: 1000,
            bootstrap_seed: 0,
            cliff_threshold: 0.8,
            self_agreement_threshold: 0.9,
        }
    }
}

/// Most resamples accepted (keeps a typo from running for hours).
pub const MAX_BOOTSTRAP_ITERATIONS: usize = 1_000_000;

impl AnalysisSettings {
    pub fn validate(&self) -> Result<(), String> {
        if self.bootstrap_iterations > MAX_BOOTSTRAP_ITERATIONS {
            return Err(format!(
                "analysis.bootstrap_iterations: {} is above the maximum {MAX_BOOTSTRAP_ITERATIONS}",
                self.bootstrap_iterations
            ));
        }
        for (k, v) in [
            ("cliff_threshold", self.cliff_threshold),
            ("self_agreement_threshold", self.self_agreement_threshold),
        ] {
            if !(0.0..=1.0).contains(&v) {
                return Err(format!("analysis.{k}: {v} is outside [0, 1]"));
            }
        }
        Ok(())
    }
}

/// Which tool wrote the sweep.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SourceKind {
    Clarity,
    R2l,
}

/// One R2L run's manifest check: SHA-256 of `manifest.json` against the sweep manifest.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ManifestCheck {
    /// Run directory name under `runs/`.
    pub run: String,
    pub expected: String,
    /// `None` when `manifest.json` could not be read.
    pub actual: Option<String>,
    pub ok: bool,
}

/// Where a sweep came from.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SourceInfo {
    pub kind: SourceKind,
    pub dir: PathBuf,
    /// `plan_hash` of a Clarity plan.
    pub plan_hash: Option<String>,
    /// R2L only: one check per run, in sweep-manifest order.
    pub manifest_checks: Vec<ManifestCheck>,
    /// R2L only: the runs that failed and why, in sweep-manifest order (a Clarity sweep keeps
    /// its failures in its observations).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub failed_runs: Vec<FailedRun>,
}

/// A failed run and its reason.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FailedRun {
    pub run: String,
    pub case_id: String,
    pub cell: usize,
    pub seed: u64,
    pub error: String,
}

impl SourceInfo {
    pub fn mismatches(&self) -> impl Iterator<Item = &ManifestCheck> {
        self.manifest_checks.iter().filter(|c| !c.ok)
    }
}

/// A sweep as the analysis sees it.
#[derive(Debug, Clone, PartialEq)]
pub struct SweepData {
    pub axes: Vec<Axis>,
    pub cells: Vec<Cell>,
    pub cases: Vec<Case>,
    pub seeds: Vec<u64>,
    pub normalization: Normalization,
    pub settings: AnalysisSettings,
    pub records: Vec<RunRecord>,
    pub source: SourceInfo,
}

impl SweepData {
    /// Index of the baseline cell.
    pub fn baseline(&self) -> Result<usize, AnalysisError> {
        validate_grid(&self.axes, &self.cells)
    }
}

/// Checks cells against axes and returns the single baseline cell's position.
pub(crate) fn validate_grid(axes: &[Axis], cells: &[Cell]) -> Result<usize, AnalysisError> {
    let mut baseline = None;
    for (i, c) in cells.iter().enumerate() {
        if c.index != i {
            return Err(AnalysisError::Invalid(format!(
                "cells[{i}].index is {}, expected {i}",
                c.index
            )));
        }
        if c.coords.len() != axes.len() {
            return Err(AnalysisError::Invalid(format!(
                "cells[{i}].coords has {} entries for {} axes",
                c.coords.len(),
                axes.len()
            )));
        }
        for (k, (&j, a)) in c.coords.iter().zip(axes).enumerate() {
            if j >= a.values.len() {
                return Err(AnalysisError::Invalid(format!(
                    "cells[{i}].coords[{k}] = {j} but axis `{}` has {} values",
                    a.name,
                    a.values.len()
                )));
            }
        }
        if c.is_baseline {
            if baseline.is_some() {
                return Err(AnalysisError::Baseline(format!(
                    "more than one cell has is_baseline (cells {} and {i})",
                    baseline.unwrap_or(0)
                )));
            }
            baseline = Some(i);
        }
    }
    baseline.ok_or_else(|| AnalysisError::Baseline("no cell has is_baseline = true".into()))
}
