//! Serves an image model behind the OpenAI chat-completions protocol.
//!
//! Clarity's `openai` adapter talks to any OpenAI-compatible server. This crate makes the
//! project's own models speak that protocol, so the adapter is tested over real HTTP against a
//! real model, and so a sweep can point at a pool of `clarity serve-model` processes.
//!
//! - [`ChatModel`] is the small trait a served model implements: one image plus a prompt in,
//!   a [`ChatAnswer`] (label, justification, class distribution) out.
//! - [`router`] / [`router_with`] build the [`axum::Router`]; [`serve`] / [`serve_with`] run it
//!   on a listener with the connection limits of [`ServeOptions`] (header- and body-read
//!   timeouts, open connections, concurrent completions).
//! - [`BuiltinChatModel`] serves `clarity_model::BuiltinModel` as [`BUILTIN_MODEL_NAME`];
//!   [`run_builtin`] is the one-call server behind `clarity serve-model`.
//! - Endpoints: `POST /v1/chat/completions`, `GET /v1/models`, `GET /health`. Errors are JSON
//!   (`{"error": {"message", "type", "code"}}`) with proper status codes ([`ServeError`]).
//!
//! # How a class distribution travels over the protocol
//!
//! The completion text is the label on the first line, then the justification:
//! `"nodule_right\nRound opacity in the right upper zone."`. With `logprobs: true` the label
//! is **one token** whose `logprob` is `ln p(label)` and whose `top_logprobs` are the class
//! distribution (`ln p(class)` for the `top_logprobs` most likely classes, ties broken by name).
//! Every justification token (one per word, leading space included) has logprob `0`: the
//! justification is a deterministic function of the model's evidence once the label is
//! chosen. So a client that computes `confidence = exp(mean logprob over the answer tokens)`
//! recovers `p(label)` exactly, and `-Σ exp(lp)·lp` over the first answer token's
//! `top_logprobs` recovers the distribution's entropy (when `top_logprobs` ≥ number of
//! classes). A probability of 0 is sent as logprob `-9999` (JSON has no `-inf`).
//!
//! Responses are deterministic: same request bytes, same response bytes (`created` is 0 and
//! the `id` is a hash of the request).
//!
//! # Example: serving your own model
//!
//! ```no_run
//! use std::sync::Arc;
//! use clarity_image::Image;
//! use clarity_serve_model::{ChatAnswer, ChatModel, serve};
//!
//! struct Threshold;
//!
//! impl ChatModel for Threshold {
//!     fn name(&self) -> &str {
//!         "threshold"
//!     }
//!     fn classify(&self, image: &Image, _: &str, _: f64, _: u64) -> Result<ChatAnswer, String> {
//!         let v = image.to_unit_f32();
//!         let p = v.iter().sum::<f32>() as f64 / v.len() as f64;
//!         let label = if p >= 0.5 { "bright" } else { "dark" };
//!         Ok(ChatAnswer {
//!             label: label.into(),
//!             justification: format!("Mean intensity {p:.2}."),
//!             probabilities: vec![("bright".into(), p), ("dark".into(), 1.0 - p)],
//!         })
//!     }
//! }
//!
//! # async fn run() -> Result<(), Box<dyn std::error::Error>> {
//! let listener = tokio::net::TcpListener::bind("127.0.0.1:8089").await?;
//! serve(listener, Arc::new(Threshold)).await?;
//! # Ok(())
//! # }
//! ```

mod builtin;
mod error;
mod protocol;
mod server;

use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::State;
use axum::http::{HeaderMap, Method, Uri};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use clarity_image::Image;

pub use builtin::{BUILTIN_MODEL_NAME, BuiltinChatModel, run_builtin};
pub use error::ServeError;

/// What a served model answers for one image.
#[derive(Debug, Clone, PartialEq)]
pub struct ChatAnswer {
    /// The class label, e.g. `nodule_right`. Sent as the first line (and first token).
    pub label: String,
    /// One or more sentences explaining the answer.
    pub justification: String,
    /// The class distribution (label, probability); should contain `label`. May be empty when
    /// the model has none, then the response carries no logprobs.
    pub probabilities: Vec<(String, f64)>,
}

/// A model that can be served over the chat-completions protocol.
pub trait ChatModel: Send + Sync + 'static {
    /// The model id listed by `GET /v1/models`; requests must name it in `model`.
    fn name(&self) -> &str;
    /// Sent as `system_fingerprint` (e.g. a weights hash), so clients can record which
    /// weights answered. `None` omits it.
    fn fingerprint(&self) -> Option<String> {
        None
    }
    /// Classifies one image. `temperature` and `seed` come from the request (sampling must be
    /// deterministic given the seed). Errors become HTTP 500 with the message.
    fn classify(
        &self,
        image: &Image,
        prompt: &str,
        temperature: f64,
        seed: u64,
    ) -> Result<ChatAnswer, String>;
}

/// Server limits.
#[derive(Debug, Clone, PartialEq)]
pub struct ServeOptions {
    /// Largest accepted request body in bytes (HTTP 413 above it).
    pub max_body_bytes: usize,
    /// Largest accepted image width or height in pixels (decompression-bomb guard).
    pub max_image_side: u32,
    /// Largest decoded image in bytes (width × height × channels × bytes per sample), checked
    /// from the image header before decoding (HTTP 400 above it).
    pub max_decoded_bytes: u64,
    /// Chat completions handled at once; more get HTTP 503 at once (no queue), so a flood
    /// cannot pile up memory and `/health` stays responsive.
    pub max_concurrent_requests: usize,
    /// Open connections at once. At the limit a new connection closes the oldest one with no
    /// request in progress (idle keep-alive or still sending headers); when every connection
    /// has a request in progress it gets HTTP 503 and is closed. Only [`serve_with`] applies it.
    pub max_connections: usize,
    /// Time a client has to send a request's headers; an idle keep-alive connection is closed
    /// after it too (the connection is closed without an answer). Only [`serve_with`] applies it.
    pub header_read_timeout: Duration,
    /// Time a client has to send a request's body once its headers are in (HTTP 408 and the
    /// connection closed after it).
    pub body_read_timeout: Duration,
}

impl Default for ServeOptions {
    fn default() -> Self {
        Self {
            max_body_bytes: 20 * 1024 * 1024,
            max_image_side: 8192,
            max_decoded_bytes: 64 << 20,
            max_concurrent_requests: 4 * std::thread::available_parallelism()
                .map_or(1, |n| n.get()),
            max_connections: 256,
            header_read_timeout: Duration::from_secs(10),
            body_read_timeout: Duration::from_secs(30),
        }
    }
}

#[derive(Clone)]
struct AppState {
    model: Arc<dyn ChatModel>,
    options: Arc<ServeOptions>,
    // A semaphore rather than tower's ConcurrencyLimit + LoadShed: the refusal must be the
    // protocol's JSON error (503) and must not queue.
    permits: Arc<tokio::sync::Semaphore>,
}

/// Parses and validates a chat-completions request body exactly as `POST
/// /v1/chat/completions` does before inference (JSON shape, `model`, the image data URL and
/// its limits), without running a model. The fuzz target `fuzz_targets/serve_request.rs`
/// drives it.
pub fn validate_request(body: &[u8], options: &ServeOptions) -> Result<(), ServeError> {
    protocol::parse_request(body, options).map(|_| ())
}

/// The router with default [`ServeOptions`].
pub fn router(model: Arc<dyn ChatModel>) -> Router {
    router_with(model, ServeOptions::default())
}

/// The router: `POST /v1/chat/completions`, `GET /v1/models`, `GET /health`.
pub fn router_with(model: Arc<dyn ChatModel>, options: ServeOptions) -> Router {
    let state = AppState {
        model,
        permits: Arc::new(tokio::sync::Semaphore::new(
            options.max_concurrent_requests.max(1),
        )),
        options: Arc::new(options),
    };
    Router::new()
        .route("/v1/chat/completions", post(chat_completions))
        .route("/v1/models", get(list_models))
        .route("/health", get(health))
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
        .with_state(state)
}

/// Serves `model` on `listener` with default [`ServeOptions`] until the task is dropped.
pub async fn serve(
    listener: tokio::net::TcpListener,
    model: Arc<dyn ChatModel>,
) -> Result<(), ServeError> {
    serve_with(listener, model, ServeOptions::default()).await
}

/// Serves `model` on `listener` until the task is dropped, with every limit of `options`
/// (the connection-level ones included: `max_connections`, `header_read_timeout`).
pub async fn serve_with(
    listener: tokio::net::TcpListener,
    model: Arc<dyn ChatModel>,
    options: ServeOptions,
) -> Result<(), ServeError> {
    let app = router_with(model, options.clone());
    server::accept_loop(listener, app, &options).await
}

/// Reads the request body: refused at once (413) when `Content-Length` is over the limit,
/// 413 when the streamed body passes it, 408 when it is not complete within
/// `body_read_timeout`.
async fn read_body(
    headers: &HeaderMap,
    body: Body,
    options: &ServeOptions,
) -> Result<Bytes, ServeError> {
    let limit = options.max_body_bytes;
    let declared = headers
        .get(axum::http::header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|n| n > limit as u64) {
        return Err(ServeError::PayloadTooLarge { limit });
    }
    match tokio::time::timeout(options.body_read_timeout, axum::body::to_bytes(body, limit)).await {
        Err(_) => Err(ServeError::BodyTimeout {
            timeout: options.body_read_timeout,
        }),
        Ok(Ok(bytes)) => Ok(bytes),
        Ok(Err(e)) => {
            let over_limit = std::error::Error::source(&e)
                .is_some_and(|s| s.is::<http_body_util::LengthLimitError>());
            if over_limit {
                Err(ServeError::PayloadTooLarge { limit })
            } else {
                Err(ServeError::BadRequest(format!("cannot read body: {e}")))
            }
        }
    }
}

async fn chat_completions(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, ServeError> {
    let _permit = state
        .permits
        .clone()
        .try_acquire_owned()
        .map_err(|_| ServeError::Busy {
            limit: state.options.max_concurrent_requests,
        })?;
    let body = read_body(&headers, body, &state.options).await?;
    let request = protocol::parse_request(&body, &state.options)?;
    if let Some(name) = &request.model
        && name != state.model.name()
    {
        return Err(ServeError::UnknownModel {
            requested: name.clone(),
            served: state.model.name().to_string(),
        });
    }
    let model = state.model.clone();
    let image = request.image.clone();
    let (prompt, temperature, seed) = (request.prompt.clone(), request.temperature, request.seed);
    // Inference is CPU-bound: keep it off the async workers.
    let answer =
        tokio::task::spawn_blocking(move || model.classify(&image, &prompt, temperature, seed))
            .await
            .map_err(|e| ServeError::Model(format!("model task failed: {e}")))?
            .map_err(ServeError::Model)?;
    let mut body = protocol::completion_body(&body, state.model.name(), &request, &answer)?;
    if let Some(fp) = state.model.fingerprint() {
        body["system_fingerprint"] = serde_json::Value::String(fp);
    }
    Ok(json_response(axum::http::StatusCode::OK, &body))
}

async fn list_models(State(state): State<AppState>) -> Response {
    let body = serde_json::json!({
        "object": "list",
        "data": [{
            "id": state.model.name(),
            "object": "model",
            "created": 0,
            "owned_by": "clarity",
        }],
    });
    json_response(axum::http::StatusCode::OK, &body)
}

async fn health() -> Response {
    json_response(
        axum::http::StatusCode::OK,
        &serde_json::json!({"status": "ok"}),
    )
}

async fn not_found(method: Method, uri: Uri) -> ServeError {
    ServeError::NotFound {
        method: method.to_string(),
        path: uri.path().to_string(),
    }
}

async fn method_not_allowed(method: Method, uri: Uri) -> ServeError {
    ServeError::MethodNotAllowed {
        method: method.to_string(),
        path: uri.path().to_string(),
    }
}

pub(crate) fn json_response(status: axum::http::StatusCode, body: &serde_json::Value) -> Response {
    let bytes = serde_json::to_vec(body).expect("a serde_json::Value always serialises");
    (
        status,
        [(axum::http::header::CONTENT_TYPE, "application/json")],
        bytes,
    )
        .into_response()
}
