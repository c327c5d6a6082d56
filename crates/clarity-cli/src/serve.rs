//! `clarity serve-model`: the builtin model behind the OpenAI chat-completions protocol.

use std::sync::Arc;

use anyhow::Context;
use clarity_serve_model::BuiltinChatModel;
use serde_json::json;

use crate::args::ServeModelArgs;
use crate::{EXIT_OK, Out};

/// Binds, prints the address it listens on (stdout: a test or script can read it, with
/// `--addr 127.0.0.1:0` too), and serves until interrupted
/// (SIGINT or SIGTERM: exit 0).
pub(crate) async fn cmd_serve_model(args: ServeModelArgs, out: &Out) -> anyhow::Result<u8> {
    let model = Arc::new(BuiltinChatModel::load_embedded().context("loading the builtin model")?);
    let listener = tokio::net::TcpListener::bind(args.addr)
        .await
        .with_context(|| format!("cannot listen on {}", args.addr))?;
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
        r = clarity_serve_model::serve(listener, model) => r.context("serving")?,
        _ = crate::signals::wait_for_interrupt() => {}
    }
    Ok(EXIT_OK)
}
