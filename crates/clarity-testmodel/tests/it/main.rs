//! End-to-end tests of the `command` adapter (crate `clarity-adapters`) against the real
//! `clarity-testmodel` program built by this package.

mod common;
mod config;
mod contract;
mod failures;
mod probe;
