//! Integration tests of clarity-report on a small hand-built sweep.

mod e2e;
mod errors;
mod fixture;
mod golden;
mod html;
mod pdf;
mod plots;
mod robust;
