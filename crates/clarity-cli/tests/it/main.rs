//! Integration tests: the real `clarity` binary on tiny cohorts written by the tests, with the
//! `command` adapter running a small shell script that counts its calls.

mod e2e;
mod errors;
mod hardening;
mod hygiene;
mod jobs;
mod probe;
mod refine;
mod shard;
mod sweepdir;
mod telemetry;
mod util;
mod verdicts;
