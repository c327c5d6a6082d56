//! Engine integration tests: config errors, plan invariants, and execution with the in-process
//! test adapter (determinism across job counts, cache hits, resume, failures).

mod engine;
mod hardening;
mod onnx_batch;
mod plan_props;
mod plan_scale;
mod shard;
