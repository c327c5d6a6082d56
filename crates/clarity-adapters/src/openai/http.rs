//! Transport: one request with retries, endpoint choice, the requests-per-minute limiter and
//! the pre-flight check (`GET /v1/models`).

use std::time::Duration;

use serde_json::Value;

use super::config::{MAX_SECONDS, OpenAiConfig, Secret};
use super::{OpenAiAdapter, SNIPPET_CHARS};
use crate::{AdapterError, BuildError};

pub(crate) enum Attempt {
    Done(String),
    Retry {
        error: String,
        retry_after: Option<Duration>,
    },
}

/// At most one request start per `60 / requests_per_minute` seconds (a token bucket of
/// capacity 1): each start reserves the next free slot. Only timing depends on it, never an
/// artifact.
#[derive(Debug)]
pub(crate) struct RateLimiter {
    interval: Duration,
    next: tokio::sync::Mutex<Option<tokio::time::Instant>>,
}

impl RateLimiter {
    pub(crate) fn new(requests_per_minute: f64) -> Self {
        Self {
            interval: Duration::from_secs_f64(60.0 / requests_per_minute),
            next: tokio::sync::Mutex::new(None),
        }
    }

    pub(crate) async fn wait(&self) {
        let slot = {
            let mut next = self.next.lock().await;
            let now = tokio::time::Instant::now();
            let slot = next.map_or(now, |n| n.max(now));
            *next = Some(slot + self.interval);
            slot
        };
        tokio::time::sleep_until(slot).await;
    }
}

fn unavailable(message: String) -> BuildError {
    BuildError::Unavailable {
        adapter: "openai".into(),
        message,
    }
}

impl OpenAiAdapter {
    /// Index of the endpoint for this run key and attempt (0-based).
    fn endpoint(&self, key: &str, attempt: u32) -> String {
        let n = self.roots.len() as u64;
        let i = (hash_u64(b"clarity-openai-endpoint\0", key, 0) + attempt as u64) % n;
        format!("{}/v1/chat/completions", self.roots[i as usize])
    }

    fn with_headers(&self, mut request: reqwest::RequestBuilder) -> reqwest::RequestBuilder {
        for (name, Secret(value)) in &self.headers {
            request = request.header(name, value);
        }
        request
    }

    /// Sends one request, retrying transient failures; returns the success body.
    pub(crate) async fn post_with_retries(
        &self,
        key: &str,
        body: &[u8],
    ) -> Result<String, AdapterError> {
        let attempts = self.config.max_retries + 1;
        let mut last_error = String::new();
        let mut retry_after = None;
        for attempt in 0..attempts {
            if attempt > 0 {
                tokio::time::sleep(retry_delay(key, attempt, retry_after, &self.config)).await;
            }
            let url = self.endpoint(key, attempt);
            match self.attempt(&url, body).await? {
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
        if let Some(limiter) = &self.limiter {
            limiter.wait().await;
        }
        let timeout = || AdapterError::Timeout {
            what: format!("POST {url}"),
            secs: self.config.timeout_s,
        };
        let request = self
            .client
            .post(url)
            .header(reqwest::header::CONTENT_TYPE, "application/json")
            .body(body.to_vec());
        let response = match self.with_headers(request).send().await {
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

    /// `GET {root}/v1/models` on every endpoint (with the same headers, retrying 429/5xx and
    /// connection errors as runs do) and checks that the model is listed.
    pub(crate) async fn check_endpoints(&self) -> Result<(), BuildError> {
        for root in &self.roots {
            self.check_endpoint(root).await?;
        }
        Ok(())
    }

    async fn check_endpoint(&self, root: &str) -> Result<(), BuildError> {
        let url = format!("{root}/v1/models");
        let model = &self.config.model;
        let hint = "set `preflight = false` in [adapter] to skip this check";
        let attempts = self.config.max_retries + 1;
        let mut retry_after = None;
        let mut last_error = String::new();
        let mut tried = 0;
        for attempt in 0..attempts {
            if attempt > 0 {
                tokio::time::sleep(retry_delay(&url, attempt, retry_after, &self.config)).await;
            }
            tried += 1;
            if let Some(limiter) = &self.limiter {
                limiter.wait().await;
            }
            let response = match self.with_headers(self.client.get(&url)).send().await {
                Ok(r) => r,
                Err(e) => {
                    last_error = format!("GET {url}: {}", error_chain(&e));
                    retry_after = None;
                    if e.is_timeout() {
                        break;
                    }
                    continue;
                }
            };
            let status = response.status();
            retry_after = parse_retry_after(response.headers());
            let text = response.text().await.unwrap_or_default();
            if status.as_u16() == 429 || status.is_server_error() {
                last_error = format!("GET {url}: HTTP {status}: {}", server_message(&text));
                continue;
            }
            if !status.is_success() {
                return Err(unavailable(format!(
                    "pre-flight check of model {model:?} at {root} failed: GET {url}: HTTP {status}: {} ({hint})",
                    server_message(&text)
                )));
            }
            let ids = model_ids(&text).ok_or_else(|| {
                unavailable(format!(
                    "pre-flight check of model {model:?} at {root} failed: GET {url} did not return a model list ({{\"data\": [{{\"id\": …}}]}}): {} ({hint})",
                    snippet(&text)
                ))
            })?;
            if ids.iter().any(|id| id == model) {
                return Ok(());
            }
            let listed = if ids.is_empty() {
                "no models".to_string()
            } else {
                let shown: Vec<String> = ids.iter().take(20).map(|id| format!("{id:?}")).collect();
                let more = ids.len().saturating_sub(20);
                format!(
                    "{}{}",
                    shown.join(", "),
                    if more > 0 {
                        format!(" and {more} more")
                    } else {
                        String::new()
                    }
                )
            };
            return Err(unavailable(format!(
                "model {model:?} is not served at {root}: GET {url} lists {listed}; set `model` to one of them ({hint})"
            )));
        }
        Err(unavailable(format!(
            "pre-flight check of model {model:?} at {root} failed: {last_error} (gave up after {tried} attempt{}; is the server running and is `base_url` right? {hint})",
            if tried == 1 { "" } else { "s" }
        )))
    }
}

/// The `id`s of an OpenAI model list (`{"data": [{"id": …}, …]}`).
fn model_ids(body: &str) -> Option<Vec<String>> {
    let value: Value = serde_json::from_str(body).ok()?;
    value
        .get("data")?
        .as_array()?
        .iter()
        .map(|m| m.get("id").and_then(Value::as_str).map(str::to_string))
        .collect()
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
pub(crate) fn parse_retry_after(headers: &reqwest::header::HeaderMap) -> Option<Duration> {
    let s = headers.get(reqwest::header::RETRY_AFTER)?.to_str().ok()?;
    let secs: f64 = s.trim().parse().ok()?;
    // `!(secs >= 0)` also rejects NaN; the cap keeps `Duration` from overflowing.
    (secs >= 0.0).then(|| Duration::from_secs_f64(secs.min(MAX_SECONDS)))
}

pub(crate) fn snippet(text: &str) -> String {
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
