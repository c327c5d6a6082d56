//! Server tests: the protocol through `tower::ServiceExt::oneshot`, the connection limits
//! over real sockets (`limits`).

mod builtin;
mod fake;
mod http;
mod limits;
