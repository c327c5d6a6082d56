//! API and console tests through the router with tower's `oneshot` (no sockets), on small real
//! sweeps run by the engine (builtin model, builtin phantoms) and analysed by the analysis.

mod api;
mod compare;
mod console;
mod jobs;
mod probe;
mod scoped;
mod security;
mod util;
mod window;
