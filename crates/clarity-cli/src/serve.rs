//! `clarity serve-model`: the builtin model behind the OpenAI chat-completions protocol.

use std::sync::Arc;

use anyhow::Context;
use clarity_serve_model::BuiltinChatModel;
use serde_json::json;

use crate::args::ServeModelArgs;
use crate::commands::UsageError;
use crate::{EXIT_OK, Out};

/// Resolves `--addr` (HOST:PORT; a host name such as `localhost` is looked up). A value that
/// does not resolve is a usage error (exit 2).
pub(crate) async fn resolve_addr(addr: &str) -> anyhow::Result<Vec<std::net::SocketAddr>> {
    let resolved = tokio::net::lookup_host(addr).await.map_err(|e| {
        UsageError(format!(
            "--addr {addr}: expected HOST:PORT, e.g. 127.0.0.1:8089 or localhost:0 ({e})"
        ))
    })?;
    let addrs: Vec<_> = resolved.collect();
    if addrs.is_empty() {
        return Err(UsageError(format!(
            "--addr {addr}: the host name resolves to no address"
        ))
        .into());
    }
    Ok(addrs)
}

/// Binds the first address `--addr` resolves to that can be bound.
pub(crate) async fn bind(addr: &str) -> anyhow::Result<tokio::net::TcpListener> {
    let addrs = resolve_addr(addr).await?;
    tokio::net::TcpListener::bind(&addrs[..])
        .await
        .with_context(|| format!("cannot listen on {addr}"))
}

/// Binds, prints the address it listens on (stdout: a test or script can read it, with
/// `--addr 127.0.0.1:0` too), and serves until interrupted
/// (SIGINT or SIGTERM: exit 0).
pub(crate) async fn cmd_serve_model(args: ServeModelArgs, out: &Out) -> anyhow::Result<u8> {
    let model = Arc::new(BuiltinChatModel::load_embedded().context("loading the builtin model")?);
    let options = args.options();
    let listener = bind(&args.addr).await?;
    let addr = listener.local_addr()?;
    if !addr.ip().is_loopback() {
        tracing::warn!("serving on {addr}, reachable from other hosts (no authentication)");
    }
    out.emit(
        &format!(
            "serving {} on http://{addr} (POST /v1/chat/completions, GET /v1/models, GET /health); Ctrl-C stops\n",
            clarity_serve_model::BUILTIN_MODEL_NAME
        ),
        &json!({ "addr": addr.to_string(), "base_url": format!("http://{addr}"), "model": clarity_serve_model::BUILTIN_MODEL_NAME }),
    )?;
    tokio::select! {
        r = clarity_serve_model::serve_with(listener, model, options) => r.context("serving")?,
        _ = crate::signals::wait_for_interrupt() => {}
    }
    Ok(EXIT_OK)
}
