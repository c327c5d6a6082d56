use std::sync::OnceLock;

use crate::Perturbation;

/// All known kernels, sorted by name.
pub struct Registry {
    kernels: Vec<Box<dyn Perturbation>>,
}

impl Registry {
    pub fn get(&self, name: &str) -> Option<&dyn Perturbation> {
        self.kernels
            .binary_search_by(|k| k.name().cmp(name))
            .ok()
            .map(|i| self.kernels[i].as_ref())
    }
    pub fn names(&self) -> Vec<&'static str> {
        self.kernels.iter().map(|k| k.name()).collect()
    }
    pub fn iter(&self) -> impl Iterator<Item = &dyn Perturbation> {
        self.kernels.iter().map(|k| k.as_ref())
    }
}

/// The process-wide kernel registry (immutable after first use).
pub fn registry() -> &'static Registry {
    static REG: OnceLock<Registry> = OnceLock::new();
    REG.get_or_init(|| {
        let mut kernels = crate::kernels::all();
        kernels.sort_by_key(|k| k.name());
        Registry { kernels }
    })
}
