//! Serves an image model behind the OpenAI chat-completions protocol.
//!
//! Clarity's `openai` adapter talks to any OpenAI-compatible server. This crate makes the
//! project's own models speak that protocol, so the adapter is tested over real HTTP against a
//! real model, and so a sweep can point at a pool of `clarity serve-model` processes.
//!
//! - [`ChatModel`] is the small trait a served model implements: one image plus a prompt in,
//!   a [`ChatAnswer`] (label, justification, class distribution) out.
//! - [`router`] / [`router_with`] build the [`axum::Router`]; [`serve`] runs it on a listener.
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

use std::sync::Arc;

use axum::Router;
use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{DefaultBodyLimit, State};
use axum::http::{Method, Uri};
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
}

impl Default for ServeOptions {
    fn default() -> Self {
        Self {
            max_body_bytes: 20 * 1024 * 1024,
            max_image_side: 8192,
            max_decoded_bytes: 64 << 20,
            max_concurrent_requests: 4 * std::thread::available_parallelism()
                .map_or(1, |n| n.get()),
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

/// The router with default [`ServeOptions`].
pub fn router(model: Arc<dyn ChatModel>) -> Router {
    router_with(model, ServeOptions::default())
}

/// The router: `POST /v1/chat/completions`, `GET /v1/models`, `GET /health`.
pub fn router_with(model: Arc<dyn ChatModel>, options: ServeOptions) -> Router {
    let limit = options.max_body_bytes;
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
        .layer(DefaultBodyLimit::max(limit))
        .with_state(state)
}

/// Serves `model` on `listener` until the task is dropped or the server fails.
pub async fn serve(
    listener: tokio::net::TcpListener,
    model: Arc<dyn ChatModel>,
) -> Result<(), ServeError> {
    axum::serve(listener, router(model))
        .await
        .map_err(ServeError::Io)
}

async fn chat_completions(
    State(state): State<AppState>,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, ServeError> {
    let _permit = state
        .permits
        .clone()
        .try_acquire_owned()
        .map_err(|_| ServeError::Busy {
            limit: state.options.max_concurrent_requests,
        })?;
    let body = body.map_err(|rejection| {
        if rejection.status() == axum::http::StatusCode::PAYLOAD_TOO_LARGE {
            ServeError::PayloadTooLarge {
                limit: state.options.max_body_bytes,
            }
        } else {
            ServeError::BadRequest(format!("cannot read body: {}", rejection.body_text()))
        }
    })?;
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
