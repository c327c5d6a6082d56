//! Clarity's domain types, shared by the engine, the analysis and the report.
//!
//! - [`Observation`]: what one model call returned (answer, justification, confidence,
//!   entropy, class probabilities, saliency).
//! - [`RunRecord`]: one line of a sweep's journal, one row of its observations: which case, cell and
//!   seed, the content key, and the [`Outcome`] (an observation or a failure).
//! - [`AxisValue`], [`Axis`], [`Cell`], [`Case`]: the grid and cohort as the analysis sees them.
//! - [`Normalization`]: how raw answers are compared (exact, folded, choices, regex).
//! - [`json`]: canonical JSON (sorted keys, fixed-precision finite floats, no NaN).
//!
//! Nothing here does I/O.

pub mod csv_cell;
pub mod json;
mod model;

pub use model::{
    Axis, AxisValue, Case, Cell, Normalization, Observation, Outcome, RunRecord, SCHEMA_VERSION,
    Saliency,
};
