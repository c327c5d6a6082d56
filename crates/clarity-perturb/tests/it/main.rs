//! The integration tests of clarity-perturb, one binary (`cargo test -p clarity-perturb`):
//!
//! - `registry`: invariants every registered kernel must satisfy (identity, seeds, sizes,
//!   parameter validation, presets) and the per-version output fingerprints.
//! - `hand`: hand-worked examples on tiny images that pin each kernel's arithmetic.
//! - `docs`: `docs/perturbations.md`'s table against the registry
//!   (`UPDATE_DOCS=1 cargo test -p clarity-perturb` regenerates it).

mod docs;
mod hand;
mod registry;
