//! Server tests without sockets, through `tower::ServiceExt::oneshot`.

mod builtin;
mod fake;
mod http;
