//! Server tests without sockets, through `tower::ServiceExt::oneshot`.

mod fake;
mod http;
