//! The `openai` adapter: any OpenAI-compatible chat-completions server with image input
//! (vLLM, Ollama, llama.cpp server, TGI, hosted APIs, `clarity serve-model`), SPEC §4 item 3.
//!
//! One run is one `POST {base_url}/v1/chat/completions` with the prompt and the perturbed
//! image as a `data:image/png;base64,...` URL (8-bit RGB; the conversion from the image's
//! native format is recorded in the observation's metadata), the run seed as `seed`, and
//! `temperature`, `max_tokens`, `logprobs`/`top_logprobs` from the config.
//!
//! - **Answer**: the first of the configured `choices` found in the text (case-insensitive,
//!   whole word; reported as written in the config), else the first capture group of
//!   `answer_regex`, else the first non-empty line (trailing `.,;:!` trimmed). The
//!   justification is the text with the answer part removed.
//! - **Confidence** = `exp(mean logprob over the answer tokens)`: the tokens whose text
//!   overlaps the answer span. When the tokens do not spell out the text exactly (some
//!   servers), all tokens are used. The formula and token count go into metadata.
//! - **Entropy** = `-Σ p·ln p` over the `top_logprobs` of the first answer token, `p =
//!   exp(logprob)`, not renormalised (a lower bound when the distribution has more entries
//!   than `top_logprobs`). These `p` also fill `Observation::probabilities`.
//! - **Endpoints**: with several `base_urls` the endpoint is chosen by the run key
//!   (`blake3(key) mod n`, rotated by one per retry) so results never depend on scheduling.
//! - **Retries**: on 429, 5xx and connection errors, up to `max_retries` times, with
//!   exponential backoff whose jitter is derived from the run key (never a wall-clock RNG);
//!   a `Retry-After` header in seconds replaces the backoff (capped by `max_retry_after_s`).
//!   A request slower than `timeout_s` fails with [`AdapterError::Timeout`] (not retried here:
//!   the engine decides).
//! - **Identity**: adapter `openai`, the model name and the settings that change answers. Not
//!   the URLs nor the key: the same model behind another endpoint gives the same content keys.
//!   The API key is read from the environment variable named by `api_key_env` and is never
//!   written to identity, observations or errors.

use std::ops::Range;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use base64::Engine as _;
use clarity_core::Observation;
use clarity_image::Image;
use regex::Regex;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use tokio::sync::Semaphore;

use crate::{Adapter, AdapterError, AdapterIdentity, BuildError, RunInput, Workload};

/// Changes whenever the request format or extraction changes answers, so old cache entries
/// are not reused.
const PROTOCOL_VERSION: &str = "openai-chat-v1";
/// OpenAI's upper bound for `top_logprobs`.
const MAX_TOP_LOGPROBS: u8 = 20;
const SNIPPET_CHARS: usize = 200;
/// Upper bound for configured durations and a server's `Retry-After` (one day).
const MAX_SECONDS: f64 = 86_400.0;

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
    /// Ask for token logprobs (→ confidence and entropy).
    #[serde(default = "default_true")]
    pub logprobs: bool,
    /// Alternatives per token, 0–20 (→ entropy); used when `logprobs` is on.
    #[serde(default = "default_top_logprobs")]
    pub top_logprobs: u8,
    /// Answer choices to look for in the text.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub choices: Vec<String>,
    /// Regex whose first capture group (or whole match) is the answer.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub answer_regex: Option<String>,
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

fn default_max_tokens() -> u32 {
    256
}
fn default_true() -> bool {
    true
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

impl OpenAiConfig {
    /// A config with every setting at its default.
    pub fn new(model: impl Into<String>, base_url: impl Into<String>) -> Self {
        Self {
            model: model.into(),
            base_url: Some(base_url.into()),
            base_urls: Vec::new(),
            api_key_env: None,
            prompt: None,
            system_prompt: None,
            temperature: 0.0,
            max_tokens: default_max_tokens(),
            logprobs: true,
            top_logprobs: default_top_logprobs(),
            choices: Vec::new(),
            answer_regex: None,
            max_in_flight: default_max_in_flight(),
            timeout_s: default_timeout_s(),
            max_retries: default_max_retries(),
            backoff_base_ms: default_backoff_base_ms(),
            backoff_max_ms: default_backoff_max_ms(),
            max_retry_after_s: default_max_retry_after_s(),
        }
    }
}

/// The key, kept out of `Debug` output.
struct ApiKey(String);

impl std::fmt::Debug for ApiKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ApiKey(<redacted>)")
    }
}

/// The adapter; build it with [`OpenAiAdapter::new`].
#[derive(Debug)]
pub struct OpenAiAdapter {
    config: OpenAiConfig,
    /// Full `.../v1/chat/completions` URLs.
    endpoints: Vec<String>,
    api_key: Option<ApiKey>,
    client: reqwest::Client,
    answer_regex: Option<Regex>,
    choice_regex: Option<Regex>,
    in_flight: Arc<Semaphore>,
}

fn invalid(message: impl Into<String>) -> BuildError {
    BuildError::Invalid {
        adapter: "openai".into(),
        message: message.into(),
    }
}

impl OpenAiAdapter {
    /// Validates the config, reads the API key from the environment and builds the client.
    pub fn new(config: &OpenAiConfig, _base_dir: &Path) -> Result<Self, BuildError> {
        let c = config;
        if c.model.trim().is_empty() {
            return Err(invalid("`model` must not be empty"));
        }
        let urls: Vec<&String> = c.base_url.iter().chain(&c.base_urls).collect();
        if urls.is_empty() {
            return Err(invalid("set `base_url` or `base_urls`"));
        }
        let mut endpoints = Vec::new();
        for url in urls {
            if !(url.starts_with("http://") || url.starts_with("https://")) {
                return Err(invalid(format!(
                    "base URL {url:?} must start with http:// or https://"
                )));
            }
            let root = url.trim_end_matches('/');
            let root = root.strip_suffix("/v1").unwrap_or(root);
            endpoints.push(format!("{root}/v1/chat/completions"));
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
        if let Some(choice) = c.choices.iter().find(|s| s.trim().is_empty()) {
            return Err(invalid(format!(
                "`choices` entries must be non-empty, got {choice:?}"
            )));
        }
        let answer_regex = c
            .answer_regex
            .as_deref()
            .map(Regex::new)
            .transpose()
            .map_err(|e| invalid(format!("`answer_regex` does not compile: {e}")))?;
        let choice_regex = choice_regex(&c.choices)
            .map_err(|e| invalid(format!("`choices` do not form a valid pattern: {e}")))?;
        let api_key = match &c.api_key_env {
            None => None,
            Some(var) => match std::env::var(var) {
                Ok(key) if !key.trim().is_empty() => Some(ApiKey(key.trim().to_string())),
                Ok(_) => {
                    return Err(invalid(format!(
                        "environment variable {var} (api_key_env) is empty"
                    )));
                }
                Err(_) => {
                    return Err(invalid(format!(
                        "environment variable {var} (api_key_env) is not set"
                    )));
                }
            },
        };
        let client = reqwest::Client::builder()
            .timeout(Duration::from_secs_f64(c.timeout_s))
            .build()
            .map_err(|e| invalid(format!("cannot build the HTTP client: {e}")))?;
        Ok(Self {
            config: c.clone(),
            endpoints,
            api_key,
            client,
            answer_regex,
            choice_regex,
            in_flight: Arc::new(Semaphore::new(c.max_in_flight)),
        })
    }

    /// Index of the endpoint for this run key and attempt (0-based).
    fn endpoint(&self, key: &str, attempt: u32) -> &str {
        let n = self.endpoints.len() as u64;
        let i = (hash_u64(b"clarity-openai-endpoint\0", key, 0) + attempt as u64) % n;
        &self.endpoints[i as usize]
    }

    fn request_body(&self, prompt: &str, data_url: &str, seed: u64) -> Value {
        let c = &self.config;
        let mut messages = Vec::new();
        if let Some(system) = &c.system_prompt {
            messages.push(json!({"role": "system", "content": system}));
        }
        messages.push(json!({"role": "user", "content": [
            {"type": "text", "text": prompt},
            {"type": "image_url", "image_url": {"url": data_url}},
        ]}));
        let mut body = json!({
            "model": c.model,
            "messages": messages,
            "temperature": c.temperature,
            "max_tokens": c.max_tokens,
            "seed": seed,
        });
        if c.logprobs {
            body["logprobs"] = json!(true);
            if c.top_logprobs > 0 {
                body["top_logprobs"] = json!(c.top_logprobs);
            }
        }
        body
    }

    /// Sends one request, retrying transient failures; returns the success body.
    async fn post_with_retries(&self, key: &str, body: &[u8]) -> Result<String, AdapterError> {
        let attempts = self.config.max_retries + 1;
        let mut last_error = String::new();
        let mut retry_after = None;
        for attempt in 0..attempts {
            if attempt > 0 {
                tokio::time::sleep(retry_delay(key, attempt, retry_after, &self.config)).await;
            }
            let url = self.endpoint(key, attempt);
            match self.attempt(url, body).await? {
                Attempt::Done(text) => return Ok(text),
                Attempt::Retry {
                    error,
                    retry_after: after,
                } => {
                    last_error = error;
                    retry_after = after;
                }
            }
        }
        Err(AdapterError::Transient(format!(
            "{last_error} (gave up after {attempts} attempts)"
        )))
    }

    /// One HTTP exchange, holding an in-flight permit only while it lasts.
    async fn attempt(&self, url: &str, body: &[u8]) -> Result<Attempt, AdapterError> {
        let _permit = self
            .in_flight
            .acquire()
            .await
            .map_err(|_| AdapterError::Permanent("adapter is shutting down".into()))?;
        let timeout = || AdapterError::Timeout {
            what: format!("POST {url}"),
            secs: self.config.timeout_s,
        };
        let mut request = self
            .client
            .post(url)
            .header(reqwest::header::CONTENT_TYPE, "application/json")
            .body(body.to_vec());
        if let Some(ApiKey(k)) = &self.api_key {
            request = request.bearer_auth(k);
        }
        let response = match request.send().await {
            Ok(r) => r,
            Err(e) if e.is_timeout() => return Err(timeout()),
            Err(e) => {
                return Ok(Attempt::Retry {
                    error: format!("POST {url}: {}", error_chain(&e)),
                    retry_after: None,
                });
            }
        };
        let status = response.status();
        let retry_after = parse_retry_after(response.headers());
        let text = match response.text().await {
            Ok(t) => t,
            Err(e) if e.is_timeout() => return Err(timeout()),
            Err(e) => {
                return Ok(Attempt::Retry {
                    error: format!("POST {url}: reading the body: {}", error_chain(&e)),
                    retry_after: None,
                });
            }
        };
        if status.is_success() {
            return Ok(Attempt::Done(text));
        }
        let error = format!("POST {url}: HTTP {status}: {}", server_message(&text));
        if status.as_u16() == 429 || status.is_server_error() {
            Ok(Attempt::Retry { error, retry_after })
        } else {
            Err(AdapterError::Permanent(error))
        }
    }
}

enum Attempt {
    Done(String),
    Retry {
        error: String,
        retry_after: Option<Duration>,
    },
}

#[async_trait]
impl Adapter for OpenAiAdapter {
    fn identity(&self) -> AdapterIdentity {
        let c = &self.config;
        AdapterIdentity {
            adapter: "openai".into(),
            model: c.model.clone(),
            version: PROTOCOL_VERSION.into(),
            settings: json!({
                "temperature": c.temperature,
                "max_tokens": c.max_tokens,
                "prompt": c.prompt,
                "system_prompt": c.system_prompt,
                "logprobs": c.logprobs,
                "top_logprobs": if c.logprobs { c.top_logprobs } else { 0 },
                "choices": c.choices,
                "answer_regex": c.answer_regex,
                "image": "png rgb8",
            }),
        }
    }

    fn workload(&self) -> Workload {
        Workload::Io {
            max_in_flight: self.config.max_in_flight,
        }
    }

    async fn run(&self, input: RunInput) -> Result<Observation, AdapterError> {
        let prompt = input
            .prompt
            .clone()
            .or_else(|| self.config.prompt.clone())
            .ok_or_else(|| {
                AdapterError::Permanent(format!(
                    "case {}: no prompt (give the case a prompt or set `prompt` in [adapter])",
                    input.case_id
                ))
            })?;
        let image = input.image.clone();
        let (data_url, image_meta) = tokio::task::spawn_blocking(move || encode_image(&image))
            .await
            .map_err(|e| AdapterError::Permanent(format!("image encoding task failed: {e}")))??;
        let body = self.request_body(&prompt, &data_url, input.seed);
        let body = serde_json::to_vec(&body).expect("a serde_json::Value always serialises");
        let text = self.post_with_retries(&input.key, &body).await?;
        let mut observation = parse_completion(
            &text,
            &self.config.choices,
            self.choice_regex.as_ref(),
            self.answer_regex.as_ref(),
        )
        .map_err(|e| AdapterError::Permanent(format!("case {}: {e}", input.case_id)))?;
        if self.config.logprobs && !observation.metadata.contains_key("confidence_formula") {
            observation
                .metadata
                .insert("logprobs".into(), json!("requested but absent"));
        }
        observation.metadata.extend(image_meta);
        Ok(observation)
    }
}

/// PNG (8-bit RGB) as a data URL, plus the conversion record.
fn encode_image(image: &Image) -> Result<(String, Vec<(String, Value)>), AdapterError> {
    let (rgb, conversion) = image.to_rgb8();
    let clarity_image::Samples::U8(data) = rgb.samples() else {
        unreachable!("to_rgb8 returns 8-bit samples")
    };
    let mut png = Vec::new();
    image::ImageEncoder::write_image(
        image::codecs::png::PngEncoder::new(&mut png),
        data,
        rgb.width(),
        rgb.height(),
        image::ExtendedColorType::Rgb8,
    )
    .map_err(|e| AdapterError::Permanent(format!("cannot encode the image as PNG: {e}")))?;
    let url = format!(
        "data:image/png;base64,{}",
        base64::engine::general_purpose::STANDARD.encode(&png)
    );
    let conversion = match conversion {
        Some(c) => json!({"from": c.from.to_string(), "to": c.to.to_string(), "method": c.method}),
        None => json!("none (already rgb8)"),
    };
    Ok((
        url,
        vec![
            (
                "image_sent".into(),
                json!(format!("png rgb8 {}x{}", rgb.width(), rgb.height())),
            ),
            ("image_conversion".into(), conversion),
        ],
    ))
}

/// `(?i)` whole-word alternation of the choices, longest first so `nodule_right` wins over
/// `nodule` at the same position.
fn choice_regex(choices: &[String]) -> Result<Option<Regex>, regex::Error> {
    if choices.is_empty() {
        return Ok(None);
    }
    let mut sorted: Vec<&String> = choices.iter().collect();
    sorted.sort_by(|a, b| b.len().cmp(&a.len()).then_with(|| a.cmp(b)));
    let alternation: Vec<String> = sorted.iter().map(|c| regex::escape(c.trim())).collect();
    // The regex crate has no look-around: consume one boundary character instead.
    let boundary = r"[^\p{L}\p{N}_]";
    Regex::new(&format!(
        "(?i)(?:^|{boundary})({})(?:{boundary}|$)",
        alternation.join("|")
    ))
    .map(Some)
}

/// How the answer was found and where it sits in the text.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Extracted {
    pub answer: String,
    /// Byte range of the answer in the text (for selecting answer tokens).
    pub span: Range<usize>,
    pub justification: Option<String>,
    pub method: String,
}

pub(crate) fn extract(
    text: &str,
    choices: &[String],
    choice_regex: Option<&Regex>,
    answer_regex: Option<&Regex>,
) -> Extracted {
    let mut notes = Vec::new();
    if let Some(re) = choice_regex {
        if let Some(m) = re.captures(text).and_then(|c| c.get(1)) {
            let found = m.as_str();
            let answer = choices
                .iter()
                .find(|c| c.trim().to_lowercase() == found.to_lowercase())
                .map(|c| c.trim().to_string())
                .unwrap_or_else(|| found.to_string());
            return Extracted {
                answer,
                span: m.range(),
                justification: remove_span(text, m.range()),
                method: "choices".into(),
            };
        }
        notes.push("no choice found");
    }
    if let Some(re) = answer_regex {
        if let Some(caps) = re.captures(text) {
            let whole = caps.get(0).expect("group 0 always matches");
            let m = caps.get(1).unwrap_or(whole);
            return Extracted {
                answer: m.as_str().trim().to_string(),
                span: m.range(),
                justification: remove_span(text, whole.range()),
                method: "answer_regex".into(),
            };
        }
        notes.push("answer_regex did not match");
    }
    let method = if notes.is_empty() {
        "first_line".to_string()
    } else {
        format!("first_line ({})", notes.join(", "))
    };
    let mut offset = 0;
    for line in text.split_inclusive('\n') {
        let trimmed = line
            .trim()
            .trim_end_matches(['.', ',', ';', ':', '!'])
            .trim_end();
        if !trimmed.is_empty() {
            let start = offset + (line.len() - line.trim_start().len());
            let rest = text[offset + line.len()..].trim();
            return Extracted {
                answer: trimmed.to_string(),
                span: start..start + trimmed.len(),
                justification: (!rest.is_empty()).then(|| rest.to_string()),
                method,
            };
        }
        offset += line.len();
    }
    Extracted {
        answer: String::new(),
        span: 0..0,
        justification: None,
        method,
    }
}

/// The text with `range` cut out, the two sides joined by one space.
fn remove_span(text: &str, range: Range<usize>) -> Option<String> {
    let prefix = text[..range.start].trim();
    let suffix = text[range.end..].trim();
    let joined = if prefix.is_empty() {
        suffix
            .trim_start_matches(|c: char| c.is_whitespace() || ".,;:-)".contains(c))
            .to_string()
    } else if suffix.is_empty() {
        prefix.to_string()
    } else {
        format!("{prefix} {suffix}")
    };
    (!joined.is_empty()).then_some(joined)
}

#[derive(Debug, Deserialize)]
struct TokenLogprob {
    token: String,
    logprob: Option<f64>,
    #[serde(default)]
    top_logprobs: Option<Vec<TopLogprob>>,
}

#[derive(Debug, Deserialize)]
struct TopLogprob {
    token: String,
    logprob: Option<f64>,
}

/// Turns a chat-completion response body into an observation (answer, justification,
/// confidence, entropy, metadata). Errors name what is wrong with the response.
pub(crate) fn parse_completion(
    body: &str,
    choices: &[String],
    choice_regex: Option<&Regex>,
    answer_regex: Option<&Regex>,
) -> Result<Observation, String> {
    let value: Value = serde_json::from_str(body).map_err(|e| {
        format!(
            "malformed JSON in the response: {e}; body starts with {}",
            snippet(body)
        )
    })?;
    let choice = value
        .get("choices")
        .and_then(|c| c.get(0))
        .ok_or_else(|| format!("response has no choices[0]: {}", snippet(body)))?;
    let finish_reason = choice
        .get("finish_reason")
        .and_then(Value::as_str)
        .unwrap_or("unknown");
    let message = choice
        .get("message")
        .ok_or_else(|| format!("response choices[0] has no message: {}", snippet(body)))?;
    let text = match message.get("content") {
        Some(Value::String(s)) => s.clone(),
        Some(Value::Array(parts)) => parts
            .iter()
            .filter_map(|p| match p {
                Value::String(s) => Some(s.as_str()),
                _ => p.get("text").and_then(Value::as_str),
            })
            .collect(),
        None | Some(Value::Null) => {
            let refusal = message
                .get("refusal")
                .and_then(Value::as_str)
                .map(|r| format!("; refusal: {r:?}"))
                .unwrap_or_default();
            return Err(format!(
                "response choices[0].message.content is null (finish_reason {finish_reason:?}{refusal})"
            ));
        }
        Some(other) => {
            return Err(format!(
                "response choices[0].message.content must be a string or a list of parts, got {}",
                snippet(&other.to_string())
            ));
        }
    };
    let extracted = extract(&text, choices, choice_regex, answer_regex);
    let mut obs = Observation {
        answer: Some(extracted.answer.clone()),
        justification: extracted.justification.clone(),
        ..Observation::default()
    };
    obs.metadata
        .insert("answer_extraction".into(), json!(extracted.method));
    obs.metadata
        .insert("finish_reason".into(), json!(finish_reason));
    if let Some(fp) = value.get("system_fingerprint").and_then(Value::as_str) {
        // Which weights/backend answered; the content key cannot know it.
        obs.metadata.insert("system_fingerprint".into(), json!(fp));
    }

    let tokens: Option<Vec<TokenLogprob>> = choice
        .get("logprobs")
        .and_then(|l| l.get("content"))
        .filter(|c| !c.is_null())
        .and_then(|c| serde_json::from_value(c.clone()).ok());
    let Some(tokens) = tokens.filter(|t| !t.is_empty()) else {
        return Ok(obs);
    };
    if tokens
        .iter()
        .any(|t| t.logprob.is_none_or(|lp| !lp.is_finite()))
    {
        obs.metadata.insert(
            "logprobs".into(),
            json!("malformed (a token has no finite logprob)"),
        );
        return Ok(obs);
    }
    let selected = answer_tokens(&tokens, &text, &extracted.span);
    let (indices, scope) = match selected {
        Some(idx) => (idx, "the answer tokens"),
        None => ((0..tokens.len()).collect(), "all tokens"),
    };
    let mean = indices
        .iter()
        .map(|&i| tokens[i].logprob.expect("checked above"))
        .sum::<f64>()
        / indices.len() as f64;
    obs.confidence = Some(mean.exp().clamp(0.0, 1.0));
    obs.metadata.insert(
        "confidence_formula".into(),
        json!(format!("exp(mean token logprob over {scope})")),
    );
    obs.metadata
        .insert("confidence_tokens".into(), json!(indices.len()));

    let first = &tokens[indices[0]];
    let top: Vec<(&str, f64)> = first
        .top_logprobs
        .iter()
        .flatten()
        .filter_map(|t| {
            t.logprob
                .filter(|lp| lp.is_finite())
                .map(|lp| (t.token.as_str(), lp))
        })
        .collect();
    if !top.is_empty() {
        let entropy: f64 = top
            .iter()
            .map(|(_, lp)| {
                let p = lp.exp();
                if p > 0.0 { -p * lp } else { 0.0 }
            })
            .sum();
        obs.entropy = Some(entropy.max(0.0));
        obs.metadata.insert(
            "entropy_formula".into(),
            json!(format!(
                "-sum p ln p over the top_logprobs of the first {}, p = exp(logprob), not renormalised",
                if scope == "the answer tokens" { "answer token" } else { "token" }
            )),
        );
        obs.metadata
            .insert("entropy_top_k".into(), json!(top.len()));
        for (token, lp) in top {
            *obs.probabilities
                .entry(token.trim().to_string())
                .or_insert(0.0) += lp.exp();
        }
    }
    Ok(obs)
}

/// Indices of the tokens overlapping `span`, or `None` when the tokens do not spell out the
/// text exactly (then the caller uses all tokens).
fn answer_tokens(tokens: &[TokenLogprob], text: &str, span: &Range<usize>) -> Option<Vec<usize>> {
    let mut offset = 0;
    let mut selected = Vec::new();
    for (i, t) in tokens.iter().enumerate() {
        let end = offset + t.token.len();
        if text.get(offset..end) != Some(t.token.as_str()) {
            return None;
        }
        if offset < span.end && end > span.start {
            selected.push(i);
        }
        offset = end;
    }
    (offset == text.len() && !selected.is_empty()).then_some(selected)
}

/// Backoff before retry number `retry` (1-based): `min(max, base·2^(retry-1))` scaled by a
/// jitter factor in `[0.5, 1)` derived from the run key, or the server's `Retry-After`.
pub(crate) fn retry_delay(
    key: &str,
    retry: u32,
    retry_after: Option<Duration>,
    config: &OpenAiConfig,
) -> Duration {
    if let Some(d) = retry_after {
        return d.min(Duration::from_secs_f64(config.max_retry_after_s));
    }
    let exp = config
        .backoff_base_ms
        .saturating_mul(1u64 << (retry.saturating_sub(1)).min(32))
        .min(config.backoff_max_ms);
    let u = (hash_u64(b"clarity-openai-backoff\0", key, retry) >> 11) as f64 / (1u64 << 53) as f64;
    Duration::from_secs_f64(exp as f64 / 1000.0 * (0.5 + 0.5 * u))
}

fn hash_u64(domain: &[u8], key: &str, n: u32) -> u64 {
    let mut h = blake3::Hasher::new();
    h.update(domain);
    h.update(key.as_bytes());
    h.update(&n.to_le_bytes());
    let bytes = h.finalize();
    u64::from_le_bytes(bytes.as_bytes()[..8].try_into().expect("8 bytes"))
}

/// `Retry-After` in (possibly fractional) seconds; HTTP-date values are ignored (they would
/// need the wall clock) and the backoff applies instead.
fn parse_retry_after(headers: &reqwest::header::HeaderMap) -> Option<Duration> {
    let s = headers.get(reqwest::header::RETRY_AFTER)?.to_str().ok()?;
    let secs: f64 = s.trim().parse().ok()?;
    // `!(secs >= 0)` also rejects NaN; the cap keeps `Duration` from overflowing.
    (secs >= 0.0).then(|| Duration::from_secs_f64(secs.min(MAX_SECONDS)))
}

fn snippet(text: &str) -> String {
    let s: String = text.chars().take(SNIPPET_CHARS).collect();
    if s.len() < text.len() {
        format!("{s:?}…")
    } else {
        format!("{s:?}")
    }
}

/// The `error.message` of an OpenAI-style error body, else a quoted snippet of the body.
fn server_message(body: &str) -> String {
    serde_json::from_str::<Value>(body)
        .ok()
        .and_then(|v| {
            let e = v.get("error")?;
            e.get("message")
                .or(Some(e))
                .and_then(Value::as_str)
                .map(|m| m.chars().take(SNIPPET_CHARS).collect())
        })
        .unwrap_or_else(|| snippet(body))
}

fn error_chain(e: &dyn std::error::Error) -> String {
    let mut out = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        let msg = s.to_string();
        if !out.contains(&msg) {
            out.push_str(": ");
            out.push_str(&msg);
        }
        source = s.source();
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ex(text: &str, choices: &[&str], regex: Option<&str>) -> Extracted {
        let choices: Vec<String> = choices.iter().map(|s| s.to_string()).collect();
        let cre = choice_regex(&choices).unwrap();
        let are = regex.map(|r| Regex::new(r).unwrap());
        extract(text, &choices, cre.as_ref(), are.as_ref())
    }

    #[test]
    fn choices_take_the_first_whole_word_longest_first() {
        let e = ex(
            "I think NODULE_right. Not normal.",
            &["normal", "nodule", "nodule_right"],
            None,
        );
        assert_eq!(e.answer, "nodule_right");
        assert_eq!(e.span, 8..20);
        assert_eq!(e.justification.as_deref(), Some("I think . Not normal."));
        assert_eq!(e.method, "choices");
        // "abnormal" does not contain the word "normal".
        let e = ex("abnormal finding: nodule", &["normal", "nodule"], None);
        assert_eq!(e.answer, "nodule");
        assert_eq!(e.justification.as_deref(), Some("abnormal finding:"));
    }

    #[test]
    fn answer_first_then_justification() {
        let e = ex(
            "nodule_right\nRound opacity.",
            &["nodule_right", "normal"],
            None,
        );
        assert_eq!(e.answer, "nodule_right");
        assert_eq!(e.span, 0..12);
        assert_eq!(e.justification.as_deref(), Some("Round opacity."));
        let e = ex("Normal. Clear lungs.", &["normal"], None);
        assert_eq!(
            (e.answer.as_str(), e.justification.as_deref()),
            ("normal", Some("Clear lungs."))
        );
    }

    #[test]
    fn regex_and_first_line_fallbacks() {
        let e = ex(
            "Reasoning here.\nAnswer: B\n",
            &[],
            Some(r"Answer:\s*(\w+)"),
        );
        assert_eq!(e.answer, "B");
        assert_eq!(e.justification.as_deref(), Some("Reasoning here."));
        assert_eq!(e.method, "answer_regex");
        let e = ex("\n  Yes.  \nBecause.", &["no"], Some("Answer: (x)"));
        assert_eq!(e.answer, "Yes");
        assert_eq!(e.span, 3..6);
        assert_eq!(e.justification.as_deref(), Some("Because."));
        assert_eq!(
            e.method,
            "first_line (no choice found, answer_regex did not match)"
        );
        let e = ex("   ", &[], None);
        assert_eq!(e.answer, "");
        assert_eq!(e.justification, None);
    }

    #[test]
    fn confidence_is_exp_mean_over_answer_tokens() {
        let body = json!({"choices": [{"message": {"content": "Yes it is"}, "finish_reason": "stop",
            "logprobs": {"content": [
                {"token": "Yes", "logprob": -0.5, "top_logprobs": [
                    {"token": "Yes", "logprob": -0.5}, {"token": " No", "logprob": -1.5}]},
                {"token": " it", "logprob": -2.0, "top_logprobs": []},
                {"token": " is", "logprob": -3.0, "top_logprobs": []}]}}]});
        let obs = parse_completion(&body.to_string(), &[], None, None).unwrap();
        // First line "Yes it is" covers all three tokens.
        assert!((obs.confidence.unwrap() - (-5.5f64 / 3.0).exp()).abs() < 1e-12);
        let e = 0.5 * (-0.5f64).exp() + 1.5 * (-1.5f64).exp();
        assert!(
            (obs.entropy.unwrap() - e).abs() < 1e-12,
            "{:?}",
            obs.entropy
        );
        assert!((obs.probabilities["No"] - (-1.5f64).exp()).abs() < 1e-15);

        let choices = vec!["yes".to_string()];
        let cre = choice_regex(&choices).unwrap();
        let obs = parse_completion(&body.to_string(), &choices, cre.as_ref(), None).unwrap();
        assert!((obs.confidence.unwrap() - (-0.5f64).exp()).abs() < 1e-12);
        assert_eq!(obs.answer.as_deref(), Some("yes"));
        assert_eq!(obs.justification.as_deref(), Some("it is"));
        assert_eq!(obs.metadata["confidence_tokens"], json!(1));
    }

    #[test]
    fn tokens_not_spelling_the_text_use_all_tokens() {
        let body = json!({"choices": [{"message": {"content": "Yes"},
            "logprobs": {"content": [{"token": "Y", "logprob": -1.0}, {"token": "ES", "logprob": -3.0}]}}]});
        let obs = parse_completion(&body.to_string(), &[], None, None).unwrap();
        assert!((obs.confidence.unwrap() - (-2.0f64).exp()).abs() < 1e-12);
        assert_eq!(
            obs.metadata["confidence_formula"],
            json!("exp(mean token logprob over all tokens)")
        );
        assert_eq!(obs.entropy, None);
    }

    #[test]
    fn retry_delay_is_deterministic_and_bounded() {
        let mut c = OpenAiConfig::new("m", "http://x");
        c.backoff_base_ms = 100;
        c.backoff_max_ms = 350;
        for retry in 1..6 {
            let d = retry_delay("key", retry, None, &c);
            assert_eq!(d, retry_delay("key", retry, None, &c));
            let cap = (100u64 << (retry - 1)).min(350) as f64 / 1000.0;
            assert!(
                d.as_secs_f64() >= cap * 0.5 && d.as_secs_f64() < cap,
                "{retry}: {d:?}"
            );
        }
        assert_ne!(retry_delay("a", 1, None, &c), retry_delay("b", 1, None, &c));
        assert_eq!(
            retry_delay("a", 1, Some(Duration::from_secs(2)), &c),
            Duration::from_secs(2)
        );
        c.max_retry_after_s = 1.5;
        assert_eq!(
            retry_delay("a", 1, Some(Duration::from_secs(9)), &c),
            Duration::from_secs_f64(1.5)
        );
    }

    #[test]
    fn retry_after_parses_seconds_only() {
        let mut h = reqwest::header::HeaderMap::new();
        assert_eq!(parse_retry_after(&h), None);
        h.insert("retry-after", "3".parse().unwrap());
        assert_eq!(parse_retry_after(&h), Some(Duration::from_secs(3)));
        h.insert(
            "retry-after",
            "Wed, 21 Oct 2015 07:28:00 GMT".parse().unwrap(),
        );
        assert_eq!(parse_retry_after(&h), None);
    }

    proptest::proptest! {
        #[test]
        fn extraction_never_panics_and_spans_are_in_the_text(
            text in "\\PC{0,40}(\n\\PC{0,20}){0,3}",
            choices in proptest::collection::vec("[a-zé_]{1,6}", 0..3),
        ) {
            let cre = choice_regex(&choices).unwrap();
            let e = extract(&text, &choices, cre.as_ref(), None);
            proptest::prop_assert!(text.get(e.span.clone()).is_some());
            if e.method == "choices" {
                proptest::prop_assert!(choices.contains(&e.answer));
            } else {
                proptest::prop_assert_eq!(&text[e.span.clone()], e.answer.as_str());
            }
        }
    }
}
