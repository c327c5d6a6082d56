use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};

/// Everything that can go wrong serving a model. Each variant maps to one HTTP status and an
/// OpenAI-style JSON body `{"error": {"message", "type", "code"}}`.
#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    /// The request is malformed; the message names the field and what was expected (400).
    #[error("{0}")]
    BadRequest(String),
    /// The body is larger than the configured limit (413).
    #[error("request body too large: the limit is {limit} bytes")]
    PayloadTooLarge { limit: usize },
    /// The body did not arrive within `body_read_timeout` (408; the connection is closed).
    #[error(
        "request body not received within {timeout:?} (limit body_read_timeout); connection closed"
    )]
    BodyTimeout { timeout: std::time::Duration },
    /// The request names a model this server does not serve (404).
    #[error("model {requested:?} is not served here; this server serves {served:?}")]
    UnknownModel { requested: String, served: String },
    /// No such route (404).
    #[error("no route for {method} {path}")]
    NotFound { method: String, path: String },
    /// Route exists, method does not (405).
    #[error("method {method} not allowed on {path}")]
    MethodNotAllowed { method: String, path: String },
    /// `max_concurrent_requests` completions are already being handled (503; retry later).
    #[error(
        "server busy: {limit} requests are being handled (limit max_concurrent_requests); retry later"
    )]
    Busy { limit: usize },
    /// The model failed or produced an invalid answer (500).
    #[error("model error: {0}")]
    Model(String),
    /// The model could not be loaded.
    #[error("cannot load the model: {0}")]
    ModelLoad(String),
    /// The address could not be bound.
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        addr: std::net::SocketAddr,
        #[source]
        source: std::io::Error,
    },
    /// Serving failed.
    #[error("server i/o error: {0}")]
    Io(#[source] std::io::Error),
}

impl ServeError {
    pub fn status(&self) -> StatusCode {
        match self {
            ServeError::BadRequest(_) => StatusCode::BAD_REQUEST,
            ServeError::PayloadTooLarge { .. } => StatusCode::PAYLOAD_TOO_LARGE,
            ServeError::BodyTimeout { .. } => StatusCode::REQUEST_TIMEOUT,
            ServeError::UnknownModel { .. } | ServeError::NotFound { .. } => StatusCode::NOT_FOUND,
            ServeError::MethodNotAllowed { .. } => StatusCode::METHOD_NOT_ALLOWED,
            ServeError::Busy { .. } => StatusCode::SERVICE_UNAVAILABLE,
            ServeError::Model(_)
            | ServeError::ModelLoad(_)
            | ServeError::Bind { .. }
            | ServeError::Io(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    fn kind(&self) -> (&'static str, &'static str) {
        match self {
            ServeError::BadRequest(_) => ("invalid_request_error", "bad_request"),
            ServeError::PayloadTooLarge { .. } => ("invalid_request_error", "payload_too_large"),
            ServeError::BodyTimeout { .. } => ("invalid_request_error", "request_timeout"),
            ServeError::UnknownModel { .. } => ("invalid_request_error", "model_not_found"),
            ServeError::NotFound { .. } => ("invalid_request_error", "not_found"),
            ServeError::MethodNotAllowed { .. } => ("invalid_request_error", "method_not_allowed"),
            ServeError::Busy { .. } => ("server_error", "overloaded"),
            ServeError::Model(_)
            | ServeError::ModelLoad(_)
            | ServeError::Bind { .. }
            | ServeError::Io(_) => ("server_error", "internal_error"),
        }
    }
}

impl IntoResponse for ServeError {
    fn into_response(self) -> Response {
        let (kind, code) = self.kind();
        let body = serde_json::json!({
            "error": {"message": self.to_string(), "type": kind, "code": code}
        });
        let mut response = crate::json_response(self.status(), &body);
        if matches!(
            self,
            ServeError::BodyTimeout { .. } | ServeError::PayloadTooLarge { .. }
        ) {
            // The rest of the body is not read: the connection cannot be reused.
            response.headers_mut().insert(
                axum::http::header::CONNECTION,
                axum::http::HeaderValue::from_static("close"),
            );
        }
        response
    }
}
