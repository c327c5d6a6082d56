use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// Version of every JSON artifact schema Clarity writes (`"schema_version"`).
pub const SCHEMA_VERSION: u32 = 1;

/// A value on an axis: a number (sorted numerically) or a named level.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum AxisValue {
    Num(f64),
    Level(String),
}

impl AxisValue {
    pub fn as_f64(&self) -> Option<f64> {
        match self {
            AxisValue::Num(x) => Some(*x),
            AxisValue::Level(_) => None,
        }
    }
    /// Stable text form: numbers in shortest round-trip form (`2`, `0.5`), levels as is.
    pub fn label(&self) -> String {
        match self {
            AxisValue::Num(x) => crate::json::format_num(*x),
            AxisValue::Level(s) => s.clone(),
        }
    }
}

/// One swept parameter: `perturbation.param` over `values` (numeric axes sorted ascending).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Axis {
    /// Display name, `"{perturbation}.{param}"` (or the R2L axis name for imported sweeps).
    pub name: String,
    pub perturbation: String,
    pub param: String,
    pub values: Vec<AxisValue>,
    /// The value at which this axis leaves the image unchanged (the baseline's coordinate).
    pub identity: AxisValue,
    /// Unit of the parameter for plot labels (may be empty).
    #[serde(default)]
    pub unit: String,
}

impl Axis {
    /// Whether every value is numeric (gradients are defined only then).
    pub fn is_numeric(&self) -> bool {
        self.values.iter().all(|v| v.as_f64().is_some())
    }
}

/// One grid point: an index into each axis's `values`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Cell {
    pub index: usize,
    /// `coords[i]` indexes `axes[i].values`.
    pub coords: Vec<usize>,
    pub is_baseline: bool,
}

/// One cohort case as recorded in the plan.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Case {
    pub id: String,
    /// Content hash of the decoded pixels.
    pub image_hash: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub label: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub prompt: Option<String>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub metadata: BTreeMap<String, serde_json::Value>,
}

/// A coarse saliency map, row-major, values in `[0, 1]`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Saliency {
    pub width: u32,
    pub height: u32,
    pub values: Vec<f32>,
}

/// What one model call returned.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Observation {
    /// The raw answer (normalised only at analysis time).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub answer: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub justification: Option<String>,
    /// Confidence in `[0, 1]`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub confidence: Option<f64>,
    /// Entropy of the answer distribution, in nats.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub entropy: Option<f64>,
    /// Class probabilities, when the model gives them.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub probabilities: BTreeMap<String, f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub saliency: Option<Saliency>,
    /// Adapter-specific extras (formula used for confidence, token counts…).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub metadata: BTreeMap<String, serde_json::Value>,
}

/// The result of a run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "status", rename_all = "snake_case")]
pub enum Outcome {
    Ok { observation: Observation },
    Failed { error: String, attempts: u32 },
}

/// One run's record: the unit of the journal and of the observations table (one row).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RunRecord {
    /// Content key (hex).
    pub key: String,
    pub case_id: String,
    /// Index into the plan's cells.
    pub cell: usize,
    pub seed: u64,
    pub outcome: Outcome,
}

impl RunRecord {
    pub fn observation(&self) -> Option<&Observation> {
        match &self.outcome {
            Outcome::Ok { observation } => Some(observation),
            Outcome::Failed { .. } => None,
        }
    }
}

/// How answers are normalised before comparison.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(tag = "mode", rename_all = "snake_case", deny_unknown_fields)]
pub enum Normalization {
    /// Compare as is.
    Exact,
    /// Lower-case, trim, collapse runs of whitespace, strip trailing punctuation.
    #[default]
    Folded,
    /// The first listed choice that occurs in the folded answer as a whole word wins; an
    /// answer with none of them normalises to `"<none>"`.
    Choices { choices: Vec<String> },
    /// The first capture group of the regex (or the whole match); no match → `"<none>"`.
    Regex { pattern: String },
}
