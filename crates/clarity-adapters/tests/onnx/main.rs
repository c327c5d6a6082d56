//! The `onnx` adapter end to end: the exported builtin model agrees with the builtin adapter,
//! build-time checks give clear errors, and the shipped example builds and runs.

mod agreement;
mod batch;
mod common;
mod errors;
mod example;
mod options;
