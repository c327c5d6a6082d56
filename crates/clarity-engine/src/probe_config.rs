//! `[probe]`: the counterfactual probe's settings (SPEC §6), parsed and validated with the rest
//! of the sweep config. The probe itself lives in `clarity-probe`.

use serde::{Deserialize, Serialize};

/// Where the saliency map comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SaliencySource {
    /// The adapter's own map when its baseline observation has one, else occlusion.
    #[default]
    Auto,
    /// The adapter's own map; a case without one is inconclusive.
    Model,
    /// Occlusion sensitivity computed by Clarity.
    Occlusion,
}

/// How evidence regions are cut from the saliency map.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RegionMode {
    /// Threshold + connected components, the `top_k` by saliency mass.
    #[default]
    Components,
    /// A `grid × grid` tiling; the `top_k` tiles by mass are the evidence.
    Grid,
    /// Both; components first.
    Both,
}

/// How control regions are chosen (SPEC §6: matched in tissue and intensity).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ControlMode {
    /// The evidence region mirrored about the body midline, plus intensity-matched regions of
    /// the same shape on the same side (the fair control).
    #[default]
    Matched,
    /// One region of the same shape on the least-salient tissue (the placement before probe
    /// schema 2; kept to compare with, not fair: it lands on bright mediastinum).
    LeastSalient,
}

/// A fill mode of the `region_mask` family (SPEC §3).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FillName {
    Constant,
    Mean,
    Blur,
    Noise,
    Inpaint,
}

impl FillName {
    pub fn as_str(self) -> &'static str {
        match self {
            FillName::Constant => "constant",
            FillName::Mean => "mean",
            FillName::Blur => "blur",
            FillName::Noise => "noise",
            FillName::Inpaint => "inpaint",
        }
    }
}

/// `[probe]` settings; every key optional.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ProbeSettings {
    pub saliency: SaliencySource,
    pub regions: RegionMode,
    /// Component threshold as a fraction of the map's maximum, in `(0, 1]`.
    pub threshold: f64,
    /// Evidence regions kept per case (largest saliency mass first), 1..=16.
    pub top_k: usize,
    /// Tiles per side in grid mode, 1..=16.
    pub grid: u32,
    /// Fills each region is masked with, in this order.
    pub fills: Vec<FillName>,
    /// Constant fill intensity, as a fraction of the range.
    pub fill_value: f64,
    /// Gaussian sigma of the blur fill, in pixels.
    pub blur_sigma: f64,
    /// Occlusion window side in pixels (0: an eighth of the shorter image side, at least 4).
    pub window: u32,
    /// Occlusion stride in pixels (0: half the window).
    pub stride: u32,
    /// Fill of the occlusion window.
    pub occlusion_fill: FillName,
    /// Restrict occlusion windows to this box `[x0, y0, x1, y1]` (fractions of the image);
    /// outside it the map is 0.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub occlusion_bbox: Option<[f64; 4]>,
    /// The sweep seed the probe runs with (default: the first seed of the sweep).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub seed: Option<u64>,
    /// Probe only the first N cases of the cohort (default: all).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_cases: Option<usize>,
    /// Probe this box `[x0, y0, x1, y1]` (fractions of the image) as the claimed evidence
    /// instead of regions cut from a saliency map (no saliency is computed).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub evidence_bbox: Option<[f64; 4]>,
    /// How controls are chosen.
    pub control: ControlMode,
    /// Intensity-matched controls per case (besides the mirrored one), 0..=8.
    pub controls: usize,
    /// Whether the mirrored contralateral region is a control.
    pub mirror_control: bool,
    /// Largest 1-Wasserstein distance between a control's and the evidence region's intensity
    /// distributions (fraction of the range), in `(0, 1]`.
    pub control_max_distance: f64,
    /// Specificity verdict: a paired difference whose interval lies at or below this margin is
    /// `not specific`, in `[0, 1)`.
    pub specificity_margin: f64,
    /// Verdict: fraction of evidence probes that must flip the answer, in `(0, 1]`.
    pub flip_fraction: f64,
    /// Verdict: how much the evidence flip rate must exceed the control flip rate, in `[0, 1]`.
    pub margin: f64,
    /// Bootstrap resamples for cohort CIs (0: none).
    pub bootstrap_iterations: usize,
    pub bootstrap_seed: u64,
}

impl Default for ProbeSettings {
    fn default() -> Self {
        Self {
            saliency: SaliencySource::Auto,
            regions: RegionMode::Components,
            threshold: 0.5,
            top_k: 3,
            grid: 4,
            fills: vec![
                FillName::Constant,
                FillName::Mean,
                FillName::Blur,
                FillName::Noise,
                FillName::Inpaint,
            ],
            fill_value: 0.0,
            blur_sigma: 8.0,
            window: 0,
            stride: 0,
            occlusion_fill: FillName::Mean,
            occlusion_bbox: None,
            seed: None,
            max_cases: None,
            evidence_bbox: None,
            control: ControlMode::Matched,
            controls: 3,
            mirror_control: true,
            control_max_distance: 0.1,
            specificity_margin: 0.05,
            flip_fraction: 0.5,
            margin: 0.25,
            bootstrap_iterations: 1000,
            bootstrap_seed: 0,
        }
    }
}

impl ProbeSettings {
    /// Checks ranges; the error is `(key under [probe], message)`.
    pub fn validate(&self) -> Result<(), (&'static str, String)> {
        let unit = |k: &'static str, v: f64, lo_open: bool| {
            let ok = v.is_finite() && v <= 1.0 && if lo_open { v > 0.0 } else { v >= 0.0 };
            if ok {
                Ok(())
            } else {
                let range = if lo_open { "(0, 1]" } else { "[0, 1]" };
                Err((k, format!("expected a number in {range}, got {v}")))
            }
        };
        unit("threshold", self.threshold, true)?;
        unit("fill_value", self.fill_value, false)?;
        unit("flip_fraction", self.flip_fraction, true)?;
        unit("margin", self.margin, false)?;
        unit("control_max_distance", self.control_max_distance, true)?;
        if !(self.specificity_margin.is_finite() && (0.0..1.0).contains(&self.specificity_margin)) {
            return Err((
                "specificity_margin",
                format!(
                    "expected a number in [0, 1), got {}",
                    self.specificity_margin
                ),
            ));
        }
        if self.controls > 8 {
            return Err(("controls", format!("expected 0..=8, got {}", self.controls)));
        }
        if self.control == ControlMode::Matched && self.controls == 0 && !self.mirror_control {
            return Err((
                "controls",
                "expected at least one control: controls = 0 and mirror_control = false".into(),
            ));
        }
        if !(1..=16).contains(&self.top_k) {
            return Err(("top_k", format!("expected 1..=16, got {}", self.top_k)));
        }
        if !(1..=16).contains(&self.grid) {
            return Err(("grid", format!("expected 1..=16, got {}", self.grid)));
        }
        if self.fills.is_empty() {
            return Err(("fills", "expected at least one fill".into()));
        }
        for (i, f) in self.fills.iter().enumerate() {
            if self.fills[..i].contains(f) {
                return Err(("fills", format!("fill {} is listed twice", f.as_str())));
            }
        }
        if !(self.blur_sigma.is_finite() && self.blur_sigma > 0.0 && self.blur_sigma <= 100.0) {
            return Err((
                "blur_sigma",
                format!("expected a number in (0, 100] px, got {}", self.blur_sigma),
            ));
        }
        if self.window > 4096 {
            return Err((
                "window",
                format!("expected 0..=4096 px, got {}", self.window),
            ));
        }
        if self.stride > 4096 {
            return Err((
                "stride",
                format!("expected 0..=4096 px, got {}", self.stride),
            ));
        }
        if let Some(b) = self.occlusion_bbox {
            let ok = b.iter().all(|v| v.is_finite() && (0.0..=1.0).contains(v))
                && b[2] > b[0]
                && b[3] > b[1];
            if !ok {
                return Err((
                    "occlusion_bbox",
                    format!(
                        "expected [x0, y0, x1, y1] fractions in [0, 1] with x1 > x0 and y1 > y0, got {b:?}"
                    ),
                ));
            }
        }
        if let Some(b) = self.evidence_bbox {
            let ok = b.iter().all(|v| v.is_finite() && (0.0..=1.0).contains(v))
                && b[2] > b[0]
                && b[3] > b[1];
            if !ok {
                return Err((
                    "evidence_bbox",
                    format!(
                        "expected [x0, y0, x1, y1] fractions in [0, 1] with x1 > x0 and y1 > y0, got {b:?}"
                    ),
                ));
            }
        }
        if self.max_cases == Some(0) {
            return Err(("max_cases", "expected at least 1".into()));
        }
        if self.bootstrap_iterations > 1_000_000 {
            return Err((
                "bootstrap_iterations",
                format!(
                    "expected at most 1000000, got {}",
                    self.bootstrap_iterations
                ),
            ));
        }
        Ok(())
    }
}
