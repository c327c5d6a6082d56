//! Photometric kernels: brightness, contrast, gamma, window shift.

use clarity_image::{Image, SamplesMut};

use crate::params::{
    DefaultValue, ParamKind, ParamSpec, ParamValue, Params, PerturbError, ResolvedParams,
};
use crate::{Family, KernelRng, Perturbation};

/// Multiplies every sample by `factor` (rounded, clipped): over/under-exposure.
pub struct Brightness;

static BRIGHTNESS_PARAMS: [ParamSpec; 1] = [ParamSpec {
    name: "factor",
    doc: "multiplier applied to every sample",
    unit: "×",
    kind: ParamKind::Float { min: 0.0, max: 4.0 },
    default: DefaultValue::Num(1.0),
    identity: Some(DefaultValue::Num(1.0)),
}];

impl Perturbation for Brightness {
    fn name(&self) -> &'static str {
        "brightness"
    }
    fn version(&self) -> u32 {
        1
    }
    fn family(&self) -> Family {
        Family::Photometric
    }
    fn description(&self) -> &'static str {
        "scales intensities by a factor (rounded, clipped): over- or under-exposed film, detector gain"
    }
    fn params(&self) -> &'static [ParamSpec] {
        &BRIGHTNESS_PARAMS
    }
    fn is_random(&self) -> bool {
        false
    }
    fn presets(&self) -> [Params; 5] {
        [1.1, 1.2, 1.3, 1.5, 1.8]
            .map(|f| Params::from([("factor".to_string(), ParamValue::Num(f))]))
    }
    fn apply(
        &self,
        image: &Image,
        params: &ResolvedParams,
        _rng: &mut KernelRng,
    ) -> Result<Image, PerturbError> {
        let factor = params.num("factor");
        let mut out = image.clone();
        match out.samples_mut() {
            SamplesMut::U8(v) => {
                // A 256-entry lookup table: one multiply per possible value, not per pixel.
                let lut: Vec<u8> = (0..=255u32)
                    .map(|s| (s as f64 * factor).round().clamp(0.0, 255.0) as u8)
                    .collect();
                for s in v.iter_mut() {
                    *s = lut[*s as usize];
                }
            }
            SamplesMut::U16(v) => {
                for s in v.iter_mut() {
                    *s = (*s as f64 * factor).round().clamp(0.0, 65535.0) as u16;
                }
            }
        }
        Ok(out)
    }
}
