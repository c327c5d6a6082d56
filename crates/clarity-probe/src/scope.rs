//! A probe scoped from the console (or `clarity probe --case --cell`): one case, probed on the
//! image it has in one cell of the sweep (the baseline image for the baseline cell, else the
//! cell's perturbation regenerated from the plan with the probe's seed), with the regions
//! chosen there (saliency components or a k×k grid) and a top-k. The choices are recorded in
//! `probe.json` under `scope`.

use std::sync::Arc;

use clarity_engine::{CohortCase, ExecOptions, Prepared, ProbeSettings, RegionMode};
use serde::Serialize;
use serde_json::json;

use crate::ProbeError;
use crate::probe::{ProbeOutcome, run_probe_inner};

/// Largest grid side and top-k a scope accepts (the `[probe]` table's limits).
pub const MAX_GRID: u32 = 16;
pub const MAX_TOP_K: usize = 16;

/// How a scoped probe cuts regions.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ScopeRegions {
    /// Thresholded connected components of the saliency map (top-k by mass).
    Saliency,
    /// A k×k grid of tiles (the top-k tiles by saliency mass are the evidence).
    Grid,
}

impl ScopeRegions {
    /// `saliency` or `grid`.
    pub fn parse(s: &str) -> Result<Self, String> {
        match s {
            "saliency" => Ok(ScopeRegions::Saliency),
            "grid" => Ok(ScopeRegions::Grid),
            o => Err(format!("expected saliency or grid, got `{o}`")),
        }
    }
    pub fn as_str(self) -> &'static str {
        match self {
            ScopeRegions::Saliency => "saliency",
            ScopeRegions::Grid => "grid",
        }
    }
}

/// What the user picked.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ProbeScope {
    /// A case id of the sweep's cohort.
    pub case: String,
    /// A cell index of the sweep's plan.
    pub cell: usize,
    pub regions: ScopeRegions,
    /// Tiles per side (grid mode), 1..=[`MAX_GRID`].
    pub grid: u32,
    /// Evidence regions kept, 1..=[`MAX_TOP_K`].
    pub top_k: usize,
}

impl ProbeScope {
    /// Checks the scope against the prepared sweep; the error names the offending choice
    /// (`case`, `cell`, `grid`, `top_k`) and what is allowed.
    pub fn validate(&self, prepared: &Prepared) -> Result<(), (&'static str, String)> {
        if !prepared.cohort.iter().any(|c| c.id == self.case) {
            return Err(("case", format!("no case `{}` in the cohort", self.case)));
        }
        let n = prepared.plan.n_cells();
        if self.cell >= n {
            return Err((
                "cell",
                format!(
                    "cell {} does not exist: the plan has {n} cells (0..={})",
                    self.cell,
                    n.saturating_sub(1)
                ),
            ));
        }
        if !(1..=MAX_GRID).contains(&self.grid) {
            return Err((
                "grid",
                format!("expected 1..={MAX_GRID} tiles per side, got {}", self.grid),
            ));
        }
        if !(1..=MAX_TOP_K).contains(&self.top_k) {
            return Err((
                "top_k",
                format!("expected 1..={MAX_TOP_K} regions, got {}", self.top_k),
            ));
        }
        Ok(())
    }

    /// The config's settings with the scope's regions, grid and top-k (all cases of the
    /// one-case cohort; no fixed evidence box).
    pub fn apply(&self, settings: &ProbeSettings) -> ProbeSettings {
        let mut s = settings.clone();
        s.regions = match self.regions {
            ScopeRegions::Saliency => RegionMode::Components,
            ScopeRegions::Grid => RegionMode::Grid,
        };
        s.grid = self.grid;
        s.top_k = self.top_k;
        s.max_cases = None;
        s.evidence_bbox = None;
        s
    }
}

/// Label of cell `cell` (`blur.sigma=2, noise.std=0.1`; `baseline`).
fn cell_label(prepared: &Prepared, cell: usize) -> String {
    let c = prepared.plan.cell(cell);
    let parts: Vec<String> = prepared
        .plan
        .axes
        .iter()
        .zip(&c.coords)
        .filter(|(a, i)| a.values.get(**i) != Some(&a.identity))
        .map(|(a, i)| {
            format!(
                "{}={}",
                a.name,
                a.values.get(*i).map(|v| v.label()).unwrap_or_default()
            )
        })
        .collect();
    if parts.is_empty() {
        "baseline".into()
    } else {
        parts.join(", ")
    }
}

/// Runs the probe of `settings` narrowed by `scope` on a prepared sweep, writing `probe.json`
/// (with `scope`) and `overlays/` into `dir`. The one case is probed on its image in the
/// scope's cell: the probe's baseline is the answer the model gives to that image.
pub async fn run_probe_scoped(
    prepared: &Prepared,
    settings: &ProbeSettings,
    scope: &ProbeScope,
    dir: &std::path::Path,
    opts: &ExecOptions,
) -> Result<ProbeOutcome, ProbeError> {
    scope
        .validate(prepared)
        .map_err(|(k, m)| ProbeError::Scope(format!("`{k}`: {m}")))?;
    let settings = scope.apply(settings);
    let seed = settings
        .seed
        .unwrap_or_else(|| prepared.config.seeds.first().copied().unwrap_or(0));
    let case = prepared
        .cohort
        .iter()
        .find(|c| c.id == scope.case)
        .ok_or_else(|| ProbeError::Internal("validated case vanished".into()))?;
    let baseline = scope.cell == prepared.plan.baseline;
    let image = if baseline {
        case.image.clone()
    } else {
        let recipe = clarity_perturb::Recipe {
            steps: prepared.plan.steps(scope.cell),
        };
        let img = recipe
            .apply(&case.image, seed, &case.id)
            .map_err(|e| ProbeError::Internal(format!("perturbing `{}`: {e}", case.id)))?;
        Arc::new(img)
    };
    let cohort = vec![CohortCase {
        image,
        ..case.clone()
    }];
    let record = json!({
        "case": scope.case,
        "cell": scope.cell,
        "cell_label": cell_label(prepared, scope.cell),
        "image": if baseline { "baseline" } else { "perturbed" },
        "regions": scope.regions,
        "grid": scope.grid,
        "top_k": scope.top_k,
        "seed": seed,
    });
    run_probe_inner(
        &prepared.config,
        &cohort,
        prepared.adapter.clone(),
        Some(&prepared.plan.plan_hash),
        &settings,
        dir,
        opts,
        Some(record),
    )
    .await
}
