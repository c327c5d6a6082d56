//! `[adapter] kind = "openai"` settings and their validation.

use std::collections::BTreeMap;

use regex::Regex;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::BuildError;

/// OpenAI's upper bound for `top_logprobs`.
pub(crate) const MAX_TOP_LOGPROBS: u8 = 20;
/// Upper bound for configured durations and a server's `Retry-After` (one day).
pub(crate) const MAX_SECONDS: f64 = 86_400.0;
/// Request fields the adapter sets itself; `extra_body` may not replace them.
const OWN_FIELDS: [&str; 9] = [
    "model",
    "messages",
    "temperature",
    "seed",
    "max_tokens",
    "max_completion_tokens",
    "logprobs",
    "top_logprobs",
    "stream",
];

/// `[adapter] kind = "openai"` settings.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OpenAiConfig {
    /// Model name sent as `model`, e.g. `gpt-4o-mini` or `clarity-builtin`.
    pub model: String,
    /// Server root, e.g. `http://127.0.0.1:8089` (`/v1/chat/completions` is appended; a
    /// trailing `/v1` is accepted too).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub base_url: Option<String>,
    /// Several servers of the same model; one is chosen per run by its key.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub base_urls: Vec<String>,
    /// Name of the environment variable holding the API key (sent as a bearer token).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub api_key_env: Option<String>,
    /// Extra HTTP headers: a literal value, or `{ env = "VAR" }` to read it from the
    /// environment when the adapter is built (never stored anywhere).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub headers: BTreeMap<String, HeaderSource>,
    /// Prompt used when the case has none.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub prompt: Option<String>,
    /// Optional system message.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub system_prompt: Option<String>,
    #[serde(default)]
    pub temperature: f64,
    #[serde(default = "default_max_tokens")]
    pub max_tokens: u32,
    /// Sent as `max_completion_tokens` instead of `max_tokens` when set (newer OpenAI models
    /// refuse `max_tokens`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_completion_tokens: Option<u32>,
    /// Ask for token logprobs (→ confidence, entropy, per-choice probabilities).
    #[serde(default = "default_true")]
    pub logprobs: bool,
    /// Alternatives per token, 0–20 (→ entropy, other choices' probabilities).
    #[serde(default = "default_top_logprobs")]
    pub top_logprobs: u8,
    /// Answer choices to look for in the text.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub choices: Vec<String>,
    /// Constrain the server's output to the choices (`"guided_choice"`: vLLM's field, sent
    /// in the request body).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub constrain: Option<Constrain>,
    /// Regex whose first capture group (or whole match) is the answer.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub answer_regex: Option<String>,
    /// Fields merged into the request JSON (e.g. `chat_template_kwargs`, `top_k`).
    #[serde(default, skip_serializing_if = "Map::is_empty")]
    pub extra_body: Map<String, Value>,
    /// Downscale the image so that its longer side is at most this many pixels (aspect
    /// kept, never upscaled).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub image_max_side: Option<u32>,
    /// `png` (default, lossless) or `jpeg`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub image_format: Option<ImageFormat>,
    /// JPEG quality 1–100 (default 90); only with `image_format = "jpeg"`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub jpeg_quality: Option<u8>,
    /// `GET {base_url}/v1/models` before the first request and check that `model` is listed.
    #[serde(default = "default_true", skip_serializing_if = "is_true")]
    pub preflight: bool,
    /// Request starts per minute at most (all endpoints together), retries included.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub requests_per_minute: Option<f64>,
    /// Requests in flight at most.
    #[serde(default = "default_max_in_flight")]
    pub max_in_flight: usize,
    /// Per-request timeout in seconds.
    #[serde(default = "default_timeout_s")]
    pub timeout_s: f64,
    /// Retries after the first attempt on 429/5xx/connection errors.
    #[serde(default = "default_max_retries")]
    pub max_retries: u32,
    /// First backoff delay; doubles per retry.
    #[serde(default = "default_backoff_base_ms")]
    pub backoff_base_ms: u64,
    #[serde(default = "default_backoff_max_ms")]
    pub backoff_max_ms: u64,
    /// Upper bound on a server's `Retry-After`.
    #[serde(default = "default_max_retry_after_s")]
    pub max_retry_after_s: f64,
}

/// Where a header's value comes from.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum HeaderSource {
    /// Written in the config (part of the identity).
    Literal(String),
    /// Read from the named environment variable (never recorded).
    Env { env: String },
}

/// How the answer is constrained on the server.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Constrain {
    /// `"guided_choice": [choices…]` in the body (vLLM).
    GuidedChoice,
}

/// Encoding of the image sent.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ImageFormat {
    Png,
    Jpeg,
}

fn default_max_tokens() -> u32 {
    256
}
fn default_true() -> bool {
    true
}
fn is_true(b: &bool) -> bool {
    *b
}
fn default_top_logprobs() -> u8 {
    MAX_TOP_LOGPROBS
}
fn default_max_in_flight() -> usize {
    4
}
fn default_timeout_s() -> f64 {
    120.0
}
fn default_max_retries() -> u32 {
    4
}
fn default_backoff_base_ms() -> u64 {
    500
}
fn default_backoff_max_ms() -> u64 {
    30_000
}
fn default_max_retry_after_s() -> f64 {
    60.0
}
/// Default JPEG quality.
pub(crate) const DEFAULT_JPEG_QUALITY: u8 = 90;

impl OpenAiConfig {
    /// A config with every setting at its default.
    pub fn new(model: impl Into<String>, base_url: impl Into<String>) -> Self {
        Self {
            model: model.into(),
            base_url: Some(base_url.into()),
            base_urls: Vec::new(),
            api_key_env: None,
            headers: BTreeMap::new(),
            prompt: None,
            system_prompt: None,
            temperature: 0.0,
            max_tokens: default_max_tokens(),
            max_completion_tokens: None,
            logprobs: true,
            top_logprobs: default_top_logprobs(),
            choices: Vec::new(),
            constrain: None,
            answer_regex: None,
            extra_body: Map::new(),
            image_max_side: None,
            image_format: None,
            jpeg_quality: None,
            preflight: true,
            requests_per_minute: None,
            max_in_flight: default_max_in_flight(),
            timeout_s: default_timeout_s(),
            max_retries: default_max_retries(),
            backoff_base_ms: default_backoff_base_ms(),
            backoff_max_ms: default_backoff_max_ms(),
            max_retry_after_s: default_max_retry_after_s(),
        }
    }
}

pub(crate) fn invalid(message: impl Into<String>) -> BuildError {
    BuildError::Invalid {
        adapter: "openai".into(),
        message: message.into(),
    }
}

/// A secret or configured value, kept out of `Debug` output.
pub(crate) struct Secret(pub String);

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("<redacted>")
    }
}

/// What validation produces besides the config itself.
#[derive(Debug)]
pub(crate) struct Checked {
    /// Server roots without a trailing `/` or `/v1`.
    pub roots: Vec<String>,
    pub answer_regex: Option<Regex>,
    pub choice_regex: Option<Regex>,
    /// Every header sent: the bearer key first, then `headers` (values resolved).
    pub headers: Vec<(reqwest::header::HeaderName, Secret)>,
}

fn env_value(var: &str, key: &str) -> Result<String, BuildError> {
    match std::env::var(var) {
        Ok(v) if !v.trim().is_empty() => Ok(v.trim().to_string()),
        Ok(_) => Err(invalid(format!(
            "environment variable {var} ({key}) is empty"
        ))),
        Err(_) => Err(invalid(format!(
            "environment variable {var} ({key}) is not set"
        ))),
    }
}

/// Validates every setting; errors name the key.
pub(crate) fn check(c: &OpenAiConfig) -> Result<Checked, BuildError> {
    if c.model.trim().is_empty() {
        return Err(invalid("`model` must not be empty"));
    }
    let urls: Vec<&String> = c.base_url.iter().chain(&c.base_urls).collect();
    if urls.is_empty() {
        return Err(invalid("set `base_url` or `base_urls`"));
    }
    let mut roots = Vec::new();
    for url in urls {
        if !(url.starts_with("http://") || url.starts_with("https://")) {
            return Err(invalid(format!(
                "base URL {url:?} must start with http:// or https://"
            )));
        }
        let root = url.trim_end_matches('/');
        roots.push(root.strip_suffix("/v1").unwrap_or(root).to_string());
    }
    if !(c.temperature.is_finite() && (0.0..=2.0).contains(&c.temperature)) {
        return Err(invalid(format!(
            "`temperature` must be in [0, 2], got {}",
            c.temperature
        )));
    }
    if c.max_tokens == 0 {
        return Err(invalid("`max_tokens` must be at least 1"));
    }
    if c.max_completion_tokens == Some(0) {
        return Err(invalid("`max_completion_tokens` must be at least 1"));
    }
    if c.top_logprobs > MAX_TOP_LOGPROBS {
        return Err(invalid(format!(
            "`top_logprobs` must be in [0, {MAX_TOP_LOGPROBS}], got {}",
            c.top_logprobs
        )));
    }
    if c.max_in_flight == 0 {
        return Err(invalid("`max_in_flight` must be at least 1"));
    }
    if !(c.timeout_s > 0.0 && c.timeout_s <= MAX_SECONDS) {
        return Err(invalid(format!(
            "`timeout_s` must be in (0, {MAX_SECONDS}] seconds, got {}",
            c.timeout_s
        )));
    }
    if !(c.max_retry_after_s >= 0.0 && c.max_retry_after_s <= MAX_SECONDS) {
        return Err(invalid(format!(
            "`max_retry_after_s` must be in [0, {MAX_SECONDS}] seconds, got {}",
            c.max_retry_after_s
        )));
    }
    if let Some(rpm) = c.requests_per_minute
        && !(rpm.is_finite() && rpm > 0.0 && rpm <= 1e6)
    {
        return Err(invalid(format!(
            "`requests_per_minute` must be in (0, 1000000], got {rpm}"
        )));
    }
    if let Some(side) = c.image_max_side
        && side < 8
    {
        return Err(invalid(format!(
            "`image_max_side` must be at least 8 pixels, got {side}"
        )));
    }
    if let Some(q) = c.jpeg_quality {
        if c.image_format != Some(ImageFormat::Jpeg) {
            return Err(invalid(
                "`jpeg_quality` needs `image_format = \"jpeg\"` (PNG is lossless)",
            ));
        }
        if !(1..=100).contains(&q) {
            return Err(invalid(format!(
                "`jpeg_quality` must be in [1, 100], got {q}"
            )));
        }
    }
    if let Some(choice) = c.choices.iter().find(|s| s.trim().is_empty()) {
        return Err(invalid(format!(
            "`choices` entries must be non-empty, got {choice:?}"
        )));
    }
    if c.constrain.is_some() && c.choices.is_empty() {
        return Err(invalid(
            "`constrain = \"guided_choice\"` needs `choices` (the answers to allow)",
        ));
    }
    for key in c.extra_body.keys() {
        if OWN_FIELDS.contains(&key.as_str()) {
            return Err(invalid(format!(
                "`extra_body.{key}` would replace a field the adapter sets itself; use the adapter's own setting{}",
                match key.as_str() {
                    "stream" => " (streaming is not supported)".to_string(),
                    "messages" => " (`prompt`, `system_prompt`)".to_string(),
                    "seed" => " (the run seed is sent)".to_string(),
                    k => format!(" `{k}`"),
                }
            )));
        }
        if key == "guided_choice" && c.constrain.is_some() {
            return Err(invalid(
                "`extra_body.guided_choice` conflicts with `constrain = \"guided_choice\"` (which sends `choices`); keep one",
            ));
        }
    }
    let answer_regex = c
        .answer_regex
        .as_deref()
        .map(Regex::new)
        .transpose()
        .map_err(|e| invalid(format!("`answer_regex` does not compile: {e}")))?;
    let choice_regex = super::response::choice_regex(&c.choices)
        .map_err(|e| invalid(format!("`choices` do not form a valid pattern: {e}")))?;

    let mut headers = Vec::new();
    if let Some(var) = &c.api_key_env {
        let key = env_value(var, "api_key_env")?;
        headers.push((
            reqwest::header::AUTHORIZATION,
            Secret(format!("Bearer {key}")),
        ));
    }
    for (name, source) in &c.headers {
        let header = reqwest::header::HeaderName::from_bytes(name.as_bytes())
            .map_err(|_| invalid(format!("`headers.{name}`: not a valid HTTP header name")))?;
        if header == reqwest::header::CONTENT_TYPE || header == reqwest::header::CONTENT_LENGTH {
            return Err(invalid(format!(
                "`headers.{name}` is set by the adapter and cannot be overridden"
            )));
        }
        if header == reqwest::header::AUTHORIZATION && c.api_key_env.is_some() {
            return Err(invalid(format!(
                "`headers.{name}` conflicts with `api_key_env` (which sends Authorization); keep one"
            )));
        }
        let value = match source {
            HeaderSource::Literal(v) => v.clone(),
            HeaderSource::Env { env } => env_value(env, &format!("headers.{name}"))?,
        };
        if reqwest::header::HeaderValue::from_str(&value).is_err() {
            // Never echo the value: it may be a secret.
            return Err(invalid(format!(
                "`headers.{name}`: the value is not a valid HTTP header value (control characters or non-ASCII)"
            )));
        }
        headers.push((header, Secret(value)));
    }
    Ok(Checked {
        roots,
        answer_regex,
        choice_regex,
        headers,
    })
}
