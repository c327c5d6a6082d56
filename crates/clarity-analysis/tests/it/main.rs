//! Integration tests of clarity-analysis: hand-computed metrics on tiny sweeps, properties, the
//! R2L import and the artifacts.

mod cliffs;
mod fixture;
mod metrics;
mod props;
mod r2l;
mod r2l_hardening;
mod verdicts;
mod write;
