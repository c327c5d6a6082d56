//! The kernels, one module per family.

mod blur;
mod common;
mod geometry;
mod jpeg;
mod noise;
mod occlusion;
mod photometric;
mod region;
mod resolution;

pub use jpeg::JPEG_OFF;
pub use region::{Fill, RegionMask, mask_region};
pub use resolution::fir_resize;

use crate::Perturbation;

pub(crate) fn all() -> Vec<Box<dyn Perturbation>> {
    vec![
        Box::new(photometric::Brightness),
        Box::new(photometric::Contrast),
        Box::new(photometric::Gamma),
        Box::new(photometric::WindowShift),
        Box::new(blur::GaussianBlur),
        Box::new(blur::MotionBlur),
        Box::new(blur::DefocusBlur),
        Box::new(noise::GaussianNoise),
        Box::new(noise::PoissonNoise),
        Box::new(noise::SaltPepper),
        Box::new(noise::SpeckleNoise),
        Box::new(resolution::Downscale),
        Box::new(jpeg::Jpeg),
        Box::new(geometry::Rotation),
        Box::new(geometry::Scale),
        Box::new(geometry::Translation),
        Box::new(geometry::Elastic),
        Box::new(occlusion::Occluder),
        Box::new(occlusion::LineArtifact),
        Box::new(region::RegionMaskKernel),
    ]
}
