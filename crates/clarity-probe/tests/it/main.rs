//! Integration tests of the probe: regions on hand-made maps, fills, occlusion sensitivity of a
//! toy adapter, and the probe end to end through the engine (determinism, cache, resume).

mod config;
mod end_to_end;
mod fills;
mod known_answer;
mod occlusion;
mod regions;
mod scoped;
mod util;
