//! `clarity serve`: the web console and its JSON HTTP API over every sweep directory under a
//! root (Clarity sweeps and imported R2L sweeps).
//!
//! - [`router`] builds the axum application (API under `/api/v1`, console pages under `/`,
//!   embedded assets under `/assets`); [`serve`] runs it on a listener.
//! - Sweeps are read through the same loaders as the analysis and the report
//!   ([`clarity_analysis::io::load_dir`], [`clarity_report::load::load`]); curves and heatmaps are
//!   the report's own SVG scenes ([`clarity_report::doc::build`]).
//! - Sweeps started from the console run through a [`Launcher`] supplied by the binary: the CLI
//!   passes the very functions behind `clarity run` and `clarity probe` ([`LaunchKind`]), so
//!   artifacts, lock and resume are the same; resuming a sweep is running its config again.
//! - The counterfactual console (`/sweeps/{id}/probe`) reads the sweep's `probe.json` and
//!   serves its `overlays/` through the artifact route.
//!
//! Security (SPEC §8): loopback by default; off loopback a bearer token is required (compared
//! in constant time); on loopback without a token, requests must name a loopback `Host` (no DNS
//! rebinding); every path is resolved under the canonical root (`..`, absolute paths and
//! symlinks that leave it are refused); request bodies are limited to [`BODY_LIMIT`] bytes; no
//! CORS headers are ever sent; no endpoint fetches anything remote.

mod api;
pub mod compare;
mod console;
mod console_pages;
mod console_probe;
mod error;
mod jobs;
mod paths;
mod posted;
mod sweeps;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use axum::Router;
use axum::extract::{DefaultBodyLimit, Request, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::routing::{MethodRouter, get, post};
use subtle::ConstantTimeEq;

pub use error::ApiError;
pub use jobs::{LaunchKind, LaunchRequest, Launcher};
pub use paths::{encode_id, resolve_under};

/// Largest request body accepted (bytes): the API takes small JSON documents only.
pub const BODY_LIMIT: usize = 64 * 1024;

/// Name of the cookie that carries the token for the browser console.
pub const TOKEN_COOKIE: &str = "clarity_token";

/// What the server serves and how it is protected.
#[derive(Clone)]
pub struct ServerConfig {
    /// Every sweep directory below it is served; nothing outside it is ever read or written.
    pub root: PathBuf,
    /// Bearer token required on every request (`None`: no token; only allowed on loopback).
    pub token: Option<String>,
    /// Starts a sweep (`None`: launching is disabled and `POST /api/v1/jobs` answers 501).
    pub launcher: Option<Launcher>,
}

/// Shared state of the handlers.
#[derive(Clone)]
pub struct AppState(Arc<Inner>);

struct Inner {
    root: PathBuf,
    token: Option<String>,
    launcher: Option<Launcher>,
    sweeps: sweeps::Caches,
    jobs: jobs::Jobs,
}

impl AppState {
    fn root(&self) -> &Path {
        &self.0.root
    }
}

/// A route table that remembers what it registered, so the OpenAPI file can be checked
/// against the router (see [`api_routes`]).
struct Routes {
    router: Router<AppState>,
    api: Vec<(&'static str, &'static str)>,
}

impl Routes {
    fn api(mut self, method: &'static str, path: &'static str, mr: MethodRouter<AppState>) -> Self {
        self.api.push((method, path));
        self.router = self.router.route(path, mr);
        self
    }
    fn page(mut self, path: &'static str, mr: MethodRouter<AppState>) -> Self {
        self.router = self.router.route(path, mr);
        self
    }
}

fn routes() -> Routes {
    let r = Routes {
        router: Router::new(),
        api: Vec::new(),
    };
    r.api("get", "/api/v1/sweeps", get(api::list_sweeps))
        .api("get", "/api/v1/sweeps/{id}", get(api::open_sweep))
        .api("get", "/api/v1/sweeps/{id}/runs", get(api::runs))
        .api("get", "/api/v1/sweeps/{id}/image", get(api::image))
        .api("get", "/api/v1/sweeps/{id}/files/{name}", get(api::file))
        .api("get", "/api/v1/configs", get(api::configs))
        .api("get", "/api/v1/jobs", get(api::list_jobs))
        .api("post", "/api/v1/jobs", post(api::start_job))
        .api("get", "/api/v1/jobs/{job}", get(api::job))
        .api("get", "/api/v1/jobs/{job}/events", get(api::job_events))
        .api("post", "/api/v1/jobs/{job}/cancel", post(api::cancel_job))
        .api("get", "/api/v1/compare", get(api::compare))
        .api("get", "/api/v1/openapi.json", get(api::openapi))
        .page("/", get(console_pages::index))
        .page("/sweeps/{id}", get(console_pages::sweep))
        .page("/sweeps/{id}/runs", get(console_pages::runs))
        .page("/sweeps/{id}/run", get(console_pages::run))
        .page("/sweeps/{id}/probe", get(console_probe::probe))
        .page("/launch", get(console_pages::launch))
        .page("/jobs/{job}", get(console_pages::job))
        .page("/compare", get(console_pages::compare))
        .page("/assets/{name}", get(console::asset))
}

/// The `(method, path)` of every API route the router serves (the OpenAPI test reads it).
pub fn api_routes() -> Vec<(&'static str, &'static str)> {
    routes().api
}

/// The OpenAPI description of the API (also served at `/api/v1/openapi.json`).
pub const OPENAPI: &str = include_str!("../openapi.json");

/// Builds the application. The root must exist; it is canonicalised once (symlinks resolved).
pub fn router(config: ServerConfig) -> Result<Router, ApiError> {
    let root = std::fs::canonicalize(&config.root)
        .map_err(|e| ApiError::bad_request(format!("root {}: {e}", config.root.display())))?;
    if !root.is_dir() {
        return Err(ApiError::bad_request(format!(
            "root {}: not a directory",
            root.display()
        )));
    }
    let state = AppState(Arc::new(Inner {
        root,
        token: config.token.filter(|t| !t.is_empty()),
        launcher: config.launcher,
        sweeps: sweeps::Caches::default(),
        jobs: jobs::Jobs::default(),
    }));
    Ok(routes()
        .router
        .fallback(api::not_found)
        .method_not_allowed_fallback(api::method_not_allowed)
        .layer(DefaultBodyLimit::max(BODY_LIMIT))
        .layer(axum::middleware::from_fn_with_state(state.clone(), guard))
        .with_state(state))
}

/// A fresh random token (32 bytes from the OS, hex).
pub fn generate_token() -> Result<String, ApiError> {
    let mut bytes = [0u8; 32];
    getrandom::fill(&mut bytes)
        .map_err(|e| ApiError::internal(format!("no OS randomness for the token: {e}")))?;
    Ok(bytes.iter().map(|b| format!("{b:02x}")).collect())
}

/// Serves `app` on `listener` until `shutdown` resolves.
pub async fn serve(
    listener: tokio::net::TcpListener,
    app: Router,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    axum::serve(
        listener,
        app.into_make_service_with_connect_info::<SocketAddr>(),
    )
    .with_graceful_shutdown(shutdown)
    .await
}

fn token_eq(given: &str, want: &str) -> bool {
    // `ct_eq` on slices of different lengths is false (length is not secret: fixed-size tokens).
    given.as_bytes().ct_eq(want.as_bytes()).into()
}

fn cookie_token(headers: &HeaderMap) -> Option<String> {
    let cookies = headers.get(header::COOKIE)?.to_str().ok()?;
    cookies.split(';').find_map(|c| {
        let (k, v) = c.trim().split_once('=')?;
        (k == TOKEN_COOKIE).then(|| v.to_string())
    })
}

fn query_token(req: &Request) -> Option<String> {
    req.uri().query()?.split('&').find_map(|kv| {
        let (k, v) = kv.split_once('=')?;
        (k == "token").then(|| v.to_string())
    })
}

/// Is `host` (a `Host` header value) a loopback name or address?
fn loopback_host(host: &str) -> bool {
    let name = if let Some(rest) = host.strip_prefix('[') {
        rest.split(']').next().unwrap_or("")
    } else {
        host.rsplit_once(':').map_or(host, |(h, _)| h)
    };
    name.eq_ignore_ascii_case("localhost")
        || name
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback())
}

/// Authentication and host checks in front of every route; no CORS headers are ever added.
async fn guard(State(state): State<AppState>, req: Request, next: Next) -> Response {
    let Some(want) = state.0.token.as_deref() else {
        // No token (loopback only): refuse requests that name another host, so a web page
        // elsewhere cannot reach the API through DNS rebinding.
        if let Some(host) = req.headers().get(header::HOST)
            && !host.to_str().is_ok_and(loopback_host)
        {
            return ApiError::new(
                StatusCode::FORBIDDEN,
                "the Host header must be a loopback name (localhost, 127.0.0.1, [::1])",
            )
            .into_response();
        }
        return next.run(req).await;
    };
    let bearer = req
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .map(str::to_string);
    if bearer.as_deref().is_some_and(|t| token_eq(t, want))
        || cookie_token(req.headers()).is_some_and(|t| token_eq(&t, want))
    {
        return next.run(req).await;
    }
    // `?token=` (the URL printed at start-up): accepted once, then kept in a cookie so the
    // console's links, images and event streams carry it.
    if query_token(&req).is_some_and(|t| token_eq(&t, want)) {
        let mut resp = next.run(req).await;
        if let Ok(v) = format!("{TOKEN_COOKIE}={want}; Path=/; HttpOnly; SameSite=Strict").parse() {
            resp.headers_mut().insert(header::SET_COOKIE, v);
        }
        return resp;
    }
    let mut resp = ApiError::new(
        StatusCode::UNAUTHORIZED,
        "a bearer token is required (Authorization: Bearer TOKEN, as printed by `clarity serve`)",
    )
    .into_response();
    resp.headers_mut().insert(
        header::WWW_AUTHENTICATE,
        header::HeaderValue::from_static("Bearer"),
    );
    resp
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loopback_hosts() {
        for h in [
            "localhost",
            "localhost:8090",
            "127.0.0.1:8090",
            "[::1]:80",
            "127.1.2.3",
        ] {
            assert!(loopback_host(h), "{h}");
        }
        for h in [
            "example.com",
            "evil.localhost.example:80",
            "10.0.0.1:8090",
            "[::2]",
        ] {
            assert!(!loopback_host(h), "{h}");
        }
    }

    #[test]
    fn tokens_compare_whole() {
        assert!(token_eq("abc", "abc"));
        assert!(!token_eq("abd", "abc"));
        assert!(!token_eq("ab", "abc"));
        assert!(!token_eq("", "abc"));
        let t = generate_token().unwrap();
        assert_eq!(t.len(), 64);
        assert_ne!(t, generate_token().unwrap());
    }
}
