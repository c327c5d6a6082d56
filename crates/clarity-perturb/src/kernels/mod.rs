//! The kernels, one module per family.

mod photometric;

use crate::Perturbation;

pub(crate) fn all() -> Vec<Box<dyn Perturbation>> {
    vec![Box::new(photometric::Brightness)]
}
