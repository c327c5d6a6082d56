//! The `builtin` adapter: Clarity's embedded reference CNN (crate `clarity-model`), in process.
//!
//! Needs no files and no network: the weights are compiled in. The identity's version is the
//! weights' BLAKE3, so retrained weights change every content key.

use std::sync::Arc;

use async_trait::async_trait;
use clarity_core::Observation;
use clarity_model::{BuiltinModel, PredictOptions};
use serde::{Deserialize, Serialize};

use crate::{Adapter, AdapterError, AdapterIdentity, BuildError, RunInput, Workload};

/// `[adapter] kind = "builtin"` settings.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BuiltinConfig {
    /// 0 (default) answers the most probable class; > 0 samples the label from the tempered
    /// distribution with the run seed (Monte Carlo).
    #[serde(default)]
    pub temperature: f64,
    /// Whether observations carry the Grad-CAM saliency map (default true).
    #[serde(default = "default_true")]
    pub saliency: bool,
}

fn default_true() -> bool {
    true
}

impl Default for BuiltinConfig {
    fn default() -> Self {
        Self {
            temperature: 0.0,
            saliency: true,
        }
    }
}

/// The builtin model behind the [`Adapter`] trait.
pub struct BuiltinAdapter {
    model: Arc<BuiltinModel>,
    config: BuiltinConfig,
}

impl BuiltinAdapter {
    pub fn new(config: &BuiltinConfig) -> Result<Self, BuildError> {
        let invalid = |message: String| BuildError::Invalid {
            adapter: "builtin".into(),
            message,
        };
        if !(config.temperature.is_finite() && config.temperature >= 0.0) {
            return Err(invalid(format!(
                "temperature must be a finite number >= 0, got {}",
                config.temperature
            )));
        }
        let model = BuiltinModel::load_embedded().map_err(|e| invalid(e.to_string()))?;
        Ok(Self {
            model: Arc::new(model),
            config: config.clone(),
        })
    }

    /// Runs the model synchronously (used by the probe and by tests).
    pub fn predict(&self, input: &RunInput) -> Result<Observation, AdapterError> {
        observe(&self.model, &self.config, input)
    }
}

fn observe(
    model: &BuiltinModel,
    config: &BuiltinConfig,
    input: &RunInput,
) -> Result<Observation, AdapterError> {
    let opts = PredictOptions {
        temperature: config.temperature,
        seed: input.seed,
        saliency: config.saliency,
    };
    let p = model
        .predict(&input.image, &opts)
        .map_err(|e| AdapterError::Permanent(e.to_string()))?;
    let mut metadata = std::collections::BTreeMap::new();
    metadata.insert(
        "input".to_string(),
        serde_json::Value::String(format!(
            "{} → gray f32 {}×{} (see docs/models.md)",
            input.image.format(),
            clarity_model::INPUT_SIZE,
            clarity_model::INPUT_SIZE
        )),
    );
    Ok(Observation {
        answer: Some(p.label),
        justification: Some(p.justification),
        confidence: Some(p.confidence),
        entropy: Some(p.entropy),
        probabilities: p.probabilities.into_iter().collect(),
        saliency: p.saliency,
        metadata,
    })
}

#[async_trait]
impl Adapter for BuiltinAdapter {
    fn identity(&self) -> AdapterIdentity {
        AdapterIdentity {
            adapter: "builtin".into(),
            model: "clarity-builtin-cnn".into(),
            version: self.model.weights_hash().to_string(),
            settings: serde_json::json!({
                "temperature": self.config.temperature,
                "saliency": self.config.saliency,
            }),
        }
    }

    fn workload(&self) -> Workload {
        Workload::Cpu
    }

    async fn run(&self, input: RunInput) -> Result<Observation, AdapterError> {
        let model = Arc::clone(&self.model);
        let config = self.config.clone();
        tokio::task::spawn_blocking(move || observe(&model, &config, &input))
            .await
            .map_err(|e| AdapterError::Permanent(format!("builtin model task failed: {e}")))?
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clarity_image::BitDepth;

    fn input(seed: u64) -> RunInput {
        let ph = clarity_phantom::cohort(2, 64, BitDepth::Eight, 3).unwrap();
        RunInput {
            key: "k".into(),
            case_id: ph[1].id.clone(),
            image: Arc::new(ph[1].image.clone()),
            image_path: None,
            prompt: None,
            seed,
            perturbations: vec![],
            work_dir: std::env::temp_dir(),
        }
    }

    #[test]
    fn observation_is_deterministic_and_complete() {
        let a = BuiltinAdapter::new(&BuiltinConfig::default()).unwrap();
        let o1 = a.predict(&input(1)).unwrap();
        let o2 = a.predict(&input(1)).unwrap();
        assert_eq!(o1, o2);
        let classes = clarity_phantom::class_names();
        assert!(classes.contains(&o1.answer.as_deref().unwrap()));
        let c = o1.confidence.unwrap();
        assert!((0.0..=1.0).contains(&c));
        assert_eq!(o1.probabilities.len(), classes.len());
        let sum: f64 = o1.probabilities.values().sum();
        assert!((sum - 1.0).abs() < 1e-9, "probabilities sum to {sum}");
        assert!(o1.saliency.is_some());
        assert!(!o1.justification.unwrap().is_empty());
    }

    #[test]
    fn identity_carries_weights_hash_and_settings() {
        let a = BuiltinAdapter::new(&BuiltinConfig::default()).unwrap();
        let id = a.identity();
        assert_eq!(id.version, clarity_model::committed_weights_hash());
        assert_eq!(id.settings["temperature"], 0.0);
    }

    #[test]
    fn rejects_negative_temperature() {
        let err = BuiltinAdapter::new(&BuiltinConfig {
            temperature: -1.0,
            saliency: true,
        })
        .err()
        .unwrap();
        assert_eq!(
            err.to_string(),
            "adapter builtin: temperature must be a finite number >= 0, got -1"
        );
    }
}
