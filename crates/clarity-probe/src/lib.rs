//! Clarity's counterfactual probe (SPEC §6): does the model rely on the evidence it claims?
//!
//! One job, in four steps, for every case of a sweep's cohort:
//!
//! 1. **Saliency** ([`saliency`]): the adapter's own map from the baseline observation
//!    (upsampled to image size, [`SaliencyMap::from_coarse`]), else **occlusion sensitivity**:
//!    sliding windows ([`saliency::occlusion_windows`]) masked with a fill, each run through the
//!    engine, scored by the drop in support for the baseline answer
//!    ([`saliency::sensitivity`]) and averaged per pixel ([`saliency::occlusion_map`]).
//! 2. **Regions** ([`regions`]): thresholded 8-connected components (top-k by saliency mass)
//!    and/or a k×k grid (or a claimed `evidence_bbox`); for the top evidence region **matched
//!    controls** of the same shape ([`controls::matched_controls`]): mirrored about the body
//!    midline and translated to tissue with the same surrounding intensity distribution.
//! 3. **Probe**: every region × fill (`clarity_perturb::mask_region`: constant, mean, blur,
//!    noise, inpaint) re-run; flip, Δconfidence, Δentropy, Δprobability of the baseline answer,
//!    justification drift; regions ranked by effect; per fill, the paired difference evidence −
//!    controls over cases with an adjusted Wald interval and a [`Specificity`] verdict
//!    ([`specificity`]); a per-case [`Verdict`] by the rule of [`verdict::rule_text`]; cohort
//!    fractions with seeded bootstrap CIs.
//! 4. **Artifacts**: `probe.json` (canonical JSON) and `overlays/*.png` ([`overlay`]).
//!
//! Model calls go through the engine ([`runner`]): content keys, cache, journal, resume and
//! `--jobs` behave exactly as in a sweep, and nothing in an artifact depends on completion
//! order or thread count. Entry points: [`run_probe`] (the whole cohort) and
//! [`run_probe_scoped`] (one case in one cell, regions and top-k chosen in the console).

pub mod controls;
pub mod overlay;
mod probe;
pub mod regions;
pub mod runner;
pub mod saliency;
mod scope;
pub mod specificity;
mod summary;
pub mod verdict;

pub use probe::{OVERLAY_DIR, PROBE_DIR, PROBE_FILE, ProbeOutcome, run_probe, run_probe_with};
pub use regions::{Region, RegionKind};
pub use saliency::SaliencyMap;
pub use scope::{MAX_GRID, MAX_TOP_K, ProbeScope, ScopeRegions, run_probe_scoped};
pub use specificity::Specificity;
pub use summary::{FillVerdict, PROBE_SCHEMA_VERSION};
pub use verdict::{Estimate, Verdict};

/// Errors of the probe. Config and input errors come from the engine and name the file/key.
#[derive(Debug, thiserror::Error)]
pub enum ProbeError {
    #[error(transparent)]
    Engine(#[from] clarity_engine::EngineError),
    #[error(transparent)]
    Analysis(#[from] clarity_analysis::AnalysisError),
    #[error(transparent)]
    Json(#[from] clarity_core::json::JsonError),
    #[error(transparent)]
    Io(#[from] std::io::Error),
    #[error("{path}: key `probe`: {message}")]
    Settings {
        path: std::path::PathBuf,
        message: String,
    },
    /// A scoped probe's choice does not fit the sweep (`case`, `cell`, `grid`, `top_k`).
    #[error("probe scope: {0}")]
    Scope(String),
    #[error("internal error: {0}")]
    Internal(String),
}
