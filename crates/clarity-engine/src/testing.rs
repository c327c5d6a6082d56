//! An in-process adapter for tests and benchmarks (not part of the public API).
//!
//! [`MeanAdapter`] answers `bright` when the mean intensity of the image (in `[0, 1]`) is at
//! least a threshold, else `dark`, with confidence = distance from the threshold mapped to
//! `[0.5, 1]`, so brightness/contrast perturbations change its answers. It counts its calls,
//! can fail chosen cases (permanently) and the first N calls (transiently).

use std::collections::BTreeSet;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use async_trait::async_trait;
use clarity_adapters::{Adapter, AdapterError, AdapterIdentity, RunInput, Workload};
use clarity_core::Observation;
use clarity_image::{Image, Samples};

#[derive(Debug, Default)]
pub struct MeanAdapter {
    pub threshold: f64,
    pub calls: Arc<AtomicUsize>,
    /// Case ids whose runs fail permanently (only where the image is perturbed, unless
    /// `fail_baseline`).
    pub fail_cases: BTreeSet<String>,
    pub fail_baseline: bool,
    /// The first N calls fail transiently.
    pub transient_failures: AtomicUsize,
    pub workload_io: Option<usize>,
    pub needs_file: bool,
    /// Skip the mean computation (benchmarks of the engine alone).
    pub instant: bool,
}

impl MeanAdapter {
    pub fn new(threshold: f64) -> Self {
        Self {
            threshold,
            ..Default::default()
        }
    }
    pub fn calls(&self) -> usize {
        self.calls.load(Ordering::SeqCst)
    }
}

/// Mean sample value scaled to `[0, 1]`.
pub fn mean(img: &Image) -> f64 {
    let max = img.max_value() as f64;
    let (sum, n) = match img.samples() {
        Samples::U8(v) => (v.iter().map(|&x| x as u64).sum::<u64>(), v.len()),
        Samples::U16(v) => (v.iter().map(|&x| x as u64).sum::<u64>(), v.len()),
    };
    sum as f64 / n.max(1) as f64 / max
}

#[async_trait]
impl Adapter for MeanAdapter {
    fn identity(&self) -> AdapterIdentity {
        AdapterIdentity {
            adapter: "test-mean".into(),
            model: "mean-threshold".into(),
            version: "1".into(),
            settings: serde_json::json!({ "threshold": self.threshold }),
        }
    }
    fn workload(&self) -> Workload {
        match self.workload_io {
            Some(n) => Workload::Io { max_in_flight: n },
            None => Workload::Cpu,
        }
    }
    fn needs_image_file(&self) -> bool {
        self.needs_file
    }
    async fn run(&self, input: RunInput) -> Result<Observation, AdapterError> {
        self.calls.fetch_add(1, Ordering::SeqCst);
        if self
            .transient_failures
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
            .is_ok()
        {
            return Err(AdapterError::Transient(
                "simulated transient failure".into(),
            ));
        }
        if self.fail_cases.contains(&input.case_id)
            && (self.fail_baseline || !input.perturbations.is_empty())
        {
            return Err(AdapterError::Permanent(format!(
                "simulated failure for case {}",
                input.case_id
            )));
        }
        if self.needs_file {
            // The file must hold exactly the run's image (what a program would read).
            let Some(p) = input.image_path.as_deref().filter(|p| p.is_file()) else {
                return Err(AdapterError::Permanent("image file missing".into()));
            };
            if self.instant {
                // Benchmarks: the program's own work is not what they measure.
                return Ok(Observation {
                    answer: Some("x".into()),
                    ..Default::default()
                });
            }
            let decoded = clarity_image::decode_file(p, &Default::default())
                .map_err(|e| AdapterError::Permanent(e.to_string()))?;
            if decoded.image != *input.image {
                return Err(AdapterError::Permanent(
                    "the image file differs from the run's image".into(),
                ));
            }
        }
        if self.instant {
            return Ok(Observation {
                answer: Some("x".into()),
                ..Default::default()
            });
        }
        let m = mean(&input.image);
        let bright = m >= self.threshold;
        let confidence = (0.5 + (m - self.threshold).abs()).min(1.0);
        Ok(Observation {
            answer: Some(if bright { "bright" } else { "dark" }.into()),
            justification: Some(format!("mean intensity {m:.3}")),
            confidence: Some(confidence),
            ..Default::default()
        })
    }
}
