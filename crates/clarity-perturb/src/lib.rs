//! Clarity's perturbation kernels.
//!
//! A [`Perturbation`] is a named, versioned, pure function `image × params × seed → image`.
//! Every kernel declares its parameters ([`ParamSpec`]: meaning, unit, range, identity value,
//! default) and five severity presets, and works on u8/u16 gray/RGB [`Image`]s. The only source
//! of randomness is the [`KernelRng`] the caller passes in, seeded from
//! [`derive_seed`]`(run seed, case id, perturbation name)`.
//!
//! Look kernels up in the [`registry`]; validate raw parameters with
//! [`Perturbation::resolve`] (fills defaults, rejects unknown names and out-of-range values);
//! apply a sequence of steps in declared order with [`Recipe::apply`].

mod params;
mod registry;

pub mod kernels;

pub use kernels::{Fill, JPEG_OFF, RegionMask, fir_resize, mask_region};
pub use params::{
    DefaultValue, ParamKind, ParamSpec, ParamValue, Params, PerturbError, ResolvedParams,
};
pub use registry::{Registry, registry};

use clarity_image::Image;
use serde::{Deserialize, Serialize};

/// The random generator every stochastic kernel draws from.
pub type KernelRng = rand_chacha::ChaCha8Rng;

/// Perturbation families of SPEC §3.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Family {
    Photometric,
    Blur,
    Noise,
    Resolution,
    Geometry,
    Occlusion,
    RegionMask,
}

/// One perturbation kernel.
pub trait Perturbation: Send + Sync {
    /// Stable snake_case name, e.g. `gaussian_blur`.
    fn name(&self) -> &'static str;
    /// Bumped whenever the output bytes for some input could change.
    fn version(&self) -> u32;
    fn family(&self) -> Family;
    /// One sentence: what it does and what it models clinically.
    fn description(&self) -> &'static str;
    /// Parameter declarations, in a fixed order.
    fn params(&self) -> &'static [ParamSpec];
    /// Whether the output depends on the RNG.
    fn is_random(&self) -> bool;
    /// Severity presets 1 (mild) ..= 5 (severe), as full parameter sets.
    fn presets(&self) -> [Params; 5];
    /// Applies the kernel. `params` has been resolved by [`Perturbation::resolve`].
    /// Must return the input unchanged (bit for bit) when the parameters are at identity.
    fn apply(
        &self,
        image: &Image,
        params: &ResolvedParams,
        rng: &mut KernelRng,
    ) -> Result<Image, PerturbError>;

    /// Validates raw parameters: unknown names, wrong types and out-of-range values are
    /// errors; missing parameters take their defaults.
    fn resolve(&self, raw: &Params) -> Result<ResolvedParams, PerturbError> {
        params::resolve(self.name(), self.params(), raw)
    }

    /// Whether resolved parameters are the identity of this kernel.
    fn is_identity(&self, params: &ResolvedParams) -> bool {
        params::is_identity(self.params(), params)
    }
}

/// Derives the 32-byte RNG seed of one perturbation step from the run seed, the case id and the
/// perturbation name, so sharding or reordering runs never changes a result.
pub fn derive_seed(run_seed: u64, case_id: &str, perturbation: &str) -> [u8; 32] {
    let mut h = blake3::Hasher::new();
    h.update(b"clarity-perturb-seed-v1\0");
    h.update(&run_seed.to_le_bytes());
    h.update(&(case_id.len() as u64).to_le_bytes());
    h.update(case_id.as_bytes());
    h.update(&(perturbation.len() as u64).to_le_bytes());
    h.update(perturbation.as_bytes());
    *h.finalize().as_bytes()
}

/// Builds the kernel RNG from a derived seed.
pub fn rng_from_seed(seed: [u8; 32]) -> KernelRng {
    use rand::SeedableRng;
    KernelRng::from_seed(seed)
}

/// One step of a recipe: a perturbation and its raw parameters.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Step {
    pub name: String,
    pub params: Params,
}

/// Perturbations applied in declared order.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Recipe {
    pub steps: Vec<Step>,
}

impl Recipe {
    /// Whether the result depends on the run seed: some step that is not at identity draws
    /// from its RNG. When it does not, every seed of a (case, cell) gives the same image, so
    /// the engine perturbs (and encodes) it once for all of them.
    pub fn uses_seed(&self) -> Result<bool, PerturbError> {
        let reg = registry();
        for step in &self.steps {
            let kernel = reg
                .get(&step.name)
                .ok_or_else(|| PerturbError::UnknownPerturbation {
                    name: step.name.clone(),
                    known: reg.names().join(", "),
                })?;
            if kernel.is_random() && !kernel.is_identity(&kernel.resolve(&step.params)?) {
                return Ok(true);
            }
        }
        Ok(false)
    }

    /// Applies every step in order. Each step's RNG is derived from
    /// `(run_seed, case_id, step name)`. Steps at identity are skipped, so an all-identity recipe
    /// returns an exact copy of the input.
    pub fn apply(
        &self,
        image: &Image,
        run_seed: u64,
        case_id: &str,
    ) -> Result<Image, PerturbError> {
        let reg = registry();
        let mut current = std::borrow::Cow::Borrowed(image);
        for step in &self.steps {
            let kernel = reg
                .get(&step.name)
                .ok_or_else(|| PerturbError::UnknownPerturbation {
                    name: step.name.clone(),
                    known: reg.names().join(", "),
                })?;
            let resolved = kernel.resolve(&step.params)?;
            if kernel.is_identity(&resolved) {
                continue;
            }
            let mut rng = rng_from_seed(derive_seed(run_seed, case_id, kernel.name()));
            current = std::borrow::Cow::Owned(kernel.apply(&current, &resolved, &mut rng)?);
        }
        Ok(current.into_owned())
    }
}
