//! Cohort loading behind one small interface: each [`CohortConfig`] kind produces
//! [`CohortCase`]s. The builtin phantoms come from `clarity-phantom`; folders and manifests
//! from `clarity-cohort` (decoding by `clarity-image`, with the `[limits]` checks).

use std::collections::BTreeMap;
use std::sync::Arc;

use clarity_image::{BitDepth, DecodeOptions};

pub use clarity_cohort::CohortCase;

use crate::EngineError;
use crate::config::{CohortConfig, Limits, SweepConfig};

/// Loads the cohort of `config`. Case ids are unique; order is the source's order (builtin:
/// index; folder: relative path; manifest: line).
pub fn load_cohort(config: &SweepConfig) -> Result<Vec<CohortCase>, EngineError> {
    let mut opts = decode_options(&config.limits);
    if let CohortConfig::Folder {
        window: Some(w), ..
    }
    | CohortConfig::Manifest {
        window: Some(w), ..
    } = &config.cohort
    {
        opts.window = w.choice().map_err(|message| EngineError::Config {
            path: config.source.clone(),
            location: None,
            key: "cohort.window".into(),
            message,
        })?;
    }
    let cases = match &config.cohort {
        CohortConfig::Builtin {
            n,
            size,
            depth,
            seed,
        } => {
            let depth = if *depth == 16 {
                BitDepth::Sixteen
            } else {
                BitDepth::Eight
            };
            let phantoms = clarity_phantom::cohort(*n, *size, depth, *seed).map_err(|e| {
                EngineError::Config {
                    path: config.source.clone(),
                    location: None,
                    key: "cohort".into(),
                    message: e.to_string(),
                }
            })?;
            phantoms
                .into_iter()
                .map(|p| CohortCase {
                    id: p.id,
                    image: Arc::new(p.image),
                    prompt: None,
                    label: Some(p.truth.label),
                    metadata: BTreeMap::new(),
                    source: String::new(),
                    decode: None,
                })
                .collect()
        }
        CohortConfig::Folder { path, .. } => {
            let loaded = clarity_cohort::load_folder_cohort(&config.resolve_path(path), &opts)?;
            for s in &loaded.skipped {
                tracing::warn!("cohort: {} skipped: {}", s.source, s.reason);
            }
            loaded.cases
        }
        CohortConfig::Manifest { path, .. } => {
            clarity_cohort::load_manifest(&config.resolve_path(path), &opts)?
        }
    };
    if cases.is_empty() {
        return Err(EngineError::Config {
            path: config.source.clone(),
            location: None,
            key: "cohort".into(),
            message: "the cohort has no cases".into(),
        });
    }
    Ok(cases)
}

fn decode_options(limits: &Limits) -> DecodeOptions {
    DecodeOptions {
        limits: clarity_image::Limits {
            max_pixels: limits.max_pixels,
            max_file_bytes: limits.max_file_bytes,
            max_decoded_bytes: limits.max_decoded_bytes,
            max_side: limits.max_side,
        },
        ..Default::default()
    }
}
