//! Photometric kernels: brightness, contrast, gamma, window shift. All are point operations
//! computed through a lookup table (256 entries for 8-bit, 65 536 for 16-bit), rounded half up
//! and clipped to the sample range.

use clarity_image::{Image, Samples};

use super::common::{
    PointKey, Sample, affine_point_op, float, meta, nums, point_op, presets1, vectorized,
    vectorized_job,
};
use crate::params::{ParamSpec, Params, PerturbError, ResolvedParams};
use crate::{KernelRng, Perturbation};

/// Multiplies every sample by `factor` (rounded, clipped): over/under-exposure.
pub struct Brightness;

static BRIGHTNESS_PARAMS: [ParamSpec; 1] = [float(
    "factor",
    "multiplier applied to every sample",
    "×",
    0.0,
    4.0,
    1.0,
    Some(1.0),
)];

impl Perturbation for Brightness {
    meta!(
        "brightness",
        1,
        Photometric,
        random = false,
        "scales intensities by a factor (rounded, clipped): over- or under-exposed film, detector gain",
        BRIGHTNESS_PARAMS
    );
    fn presets(&self) -> [Params; 5] {
        presets1("factor", [1.1, 1.2, 1.3, 1.5, 1.8])
    }
    fn apply(
        &self,
        image: &Image,
        params: &ResolvedParams,
        _rng: &mut KernelRng,
    ) -> Result<Image, PerturbError> {
        let factor = params.num("factor");
        let key = PointKey::new("brightness", &[factor]);
        Ok(affine_point_op(image, key, move |s| s * factor))
    }
}

/// Scales deviations from the image mean: `out = mean + factor · (in − mean)`.
pub struct Contrast;

static CONTRAST_PARAMS: [ParamSpec; 1] = [float(
    "factor",
    "multiplier of the deviation from the image mean (all channels pooled)",
    "×",
    0.0,
    4.0,
    1.0,
    Some(1.0),
)];

vectorized_job! {
    /// Exact sum: u32 partial sums over 2^16 samples cannot overflow and vectorise.
    struct Sum<'a, T: Sample> { v: &'a [T] } -> u64 {
        v.chunks(1 << 16)
            .map(|c| c.iter().map(|s| s.to_u32()).sum::<u32>() as u64)
            .sum()
    }
}

/// Mean of all samples (channels pooled), exact integer sum.
pub(crate) fn sample_mean(image: &Image) -> f64 {
    let (sum, n): (u64, usize) = match image.samples() {
        Samples::U8(v) => (vectorized(Sum { v }), v.len()),
        Samples::U16(v) => (vectorized(Sum { v }), v.len()),
    };
    sum as f64 / n as f64
}

impl Perturbation for Contrast {
    meta!(
        "contrast",
        1,
        Photometric,
        random = false,
        "scales deviations from the image mean (rounded, clipped): low-contrast exposure, scatter, a flat display",
        CONTRAST_PARAMS
    );
    fn presets(&self) -> [Params; 5] {
        // ImageNet-C contrast levels.
        presets1("factor", [0.4, 0.3, 0.2, 0.1, 0.05])
    }
    fn apply(
        &self,
        image: &Image,
        params: &ResolvedParams,
        _rng: &mut KernelRng,
    ) -> Result<Image, PerturbError> {
        let factor = params.num("factor");
        let mean = sample_mean(image);
        let key = PointKey::new("contrast", &[factor, mean]);
        Ok(affine_point_op(image, key, move |s| {
            mean + factor * (s - mean)
        }))
    }
}

/// Power-law intensity transfer: `out = max · (in / max)^gamma`.
pub struct Gamma;

static GAMMA_PARAMS: [ParamSpec; 1] = [float(
    "gamma",
    "exponent of the power-law transfer on intensities normalised to [0, 1]",
    "",
    0.1,
    10.0,
    1.0,
    Some(1.0),
)];

impl Perturbation for Gamma {
    meta!(
        "gamma",
        1,
        Photometric,
        random = false,
        "power-law transfer of normalised intensities: a different detector response curve or display gamma",
        GAMMA_PARAMS
    );
    fn presets(&self) -> [Params; 5] {
        presets1("gamma", [1.2, 1.5, 2.0, 2.5, 3.0])
    }
    fn apply(
        &self,
        image: &Image,
        params: &ResolvedParams,
        _rng: &mut KernelRng,
    ) -> Result<Image, PerturbError> {
        let gamma = params.num("gamma");
        let max = image.max_value() as f64;
        let key = PointKey::new("gamma", &[gamma, max]);
        Ok(point_op(image, key, move |s| max * (s / max).powf(gamma)))
    }
}

/// Re-displays the image through a shifted and rescaled intensity window.
pub struct WindowShift;

static WINDOW_PARAMS: [ParamSpec; 2] = [
    float(
        "level_shift",
        "window centre moved by this fraction of the sample range (positive = darker)",
        "fraction of range",
        -1.0,
        1.0,
        0.0,
        Some(0.0),
    ),
    float(
        "width_scale",
        "window width multiplied by this (below 1 = narrower window, more contrast and clipping)",
        "×",
        0.05,
        20.0,
        1.0,
        Some(1.0),
    ),
];

impl Perturbation for WindowShift {
    meta!(
        "window_shift",
        1,
        Photometric,
        random = false,
        "maps intensities through a shifted/rescaled display window (level/width): a different CT/DICOM windowing preset",
        WINDOW_PARAMS
    );
    fn presets(&self) -> [Params; 5] {
        [(0.05, 0.9), (0.1, 0.8), (0.15, 0.7), (0.2, 0.6), (0.3, 0.5)]
            .map(|(l, w)| nums(&[("level_shift", l), ("width_scale", w)]))
    }
    fn is_identity(&self, params: &ResolvedParams) -> bool {
        params.num("level_shift") == 0.0 && params.num("width_scale") == 1.0
    }
    fn apply(
        &self,
        image: &Image,
        params: &ResolvedParams,
        _rng: &mut KernelRng,
    ) -> Result<Image, PerturbError> {
        let shift = params.num("level_shift");
        let scale = params.num("width_scale");
        let max = image.max_value() as f64;
        // The original display window is the full range: centre max/2, width max. The new one
        // has centre max/2 + shift·max and width scale·max; out = (in − low) / width · max.
        let key = PointKey::new("window_shift", &[shift, scale, max]);
        Ok(affine_point_op(image, key, move |s| {
            (s - max / 2.0 - shift * max) / scale + max / 2.0
        }))
    }
}
