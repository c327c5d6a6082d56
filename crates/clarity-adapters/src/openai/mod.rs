//! The `openai` adapter: any OpenAI-compatible chat-completions server with image input
//! (vLLM, Ollama, llama.cpp server, TGI, hosted APIs, `clarity serve-model`), SPEC §4 item 3.
//!
//! One run is one `POST {base_url}/v1/chat/completions` with the prompt and the perturbed
//! image as a data URL (8-bit RGB, PNG by default or JPEG, optionally downscaled to
//! `image_max_side`; the conversion is recorded in the observation's metadata), the run seed
//! as `seed`, and `temperature`, `max_tokens` (or `max_completion_tokens`),
//! `logprobs`/`top_logprobs` from the config, `guided_choice` with `constrain =
//! "guided_choice"`, and the fields of `extra_body` merged in.
//!
//! - **Pre-flight** ([`Adapter::preflight`], called by the engine before the first run):
//!   `GET {base_url}/v1/models` on every endpoint with the run headers; the model must be
//!   listed. A dead endpoint, an HTTP error or a missing model fails the sweep in one error.
//! - **Answer**: the first of the configured `choices` found in the text (case-insensitive,
//!   whole word; reported as written in the config), else the first capture group of
//!   `answer_regex`, else the first non-empty line (trailing `.,;:!` trimmed). The
//!   justification is the text with the answer part removed.
//! - **Per-choice probabilities** (with `choices` and logprobs, see [`response`]): each
//!   choice is scored as a whole along the generated tokens and, where it departs from
//!   them, the `top_logprobs` alternatives that continue it; normalised over the choices.
//!   Confidence is then the answer's probability and entropy that of the choice
//!   distribution.
//! - Otherwise **confidence** = `exp(mean logprob over the answer tokens)` and **entropy**
//!   = `-Σ p·ln p` over the `top_logprobs` of the first answer token (not renormalised);
//!   these `p` fill `Observation::probabilities`.
//! - **Endpoints**: with several `base_urls` the endpoint is chosen by the run key
//!   (`blake3(key) mod n`, rotated by one per retry) so results never depend on scheduling.
//! - **Retries**: on 429, 5xx and connection errors, up to `max_retries` times, with
//!   exponential backoff whose jitter is derived from the run key (never a wall-clock RNG);
//!   a `Retry-After` header in seconds replaces the backoff (capped by `max_retry_after_s`).
//!   A request slower than `timeout_s` fails with [`AdapterError::Timeout`]. With
//!   `requests_per_minute`, request starts are spaced by `60 / rpm` seconds.
//! - **Identity**: adapter `openai`, the model name and the settings that change answers
//!   (including `extra_body`, `constrain`, literal `headers` and the image encoding). Not
//!   the URLs, rate limits nor secrets: the API key (`api_key_env`) and `headers` read from
//!   the environment are never written to identity, observations or errors.

mod config;
mod http;
mod image;
mod response;

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use clarity_core::Observation;
use regex::Regex;
use serde_json::{Value, json};
use tokio::sync::Semaphore;

pub use config::{Constrain, HeaderSource, ImageFormat, OpenAiConfig};

use crate::{Adapter, AdapterError, AdapterIdentity, BuildError, RunInput, Workload};
use config::Secret;
use image::{Encoding, encode_image};
use response::parse_completion;

/// Changes whenever the request format or extraction changes answers, so old cache entries
/// are not reused. v2: per-choice probabilities, image encoding options.
const PROTOCOL_VERSION: &str = "openai-chat-v2";
const SNIPPET_CHARS: usize = 200;

/// The adapter; build it with [`OpenAiAdapter::new`].
#[derive(Debug)]
pub struct OpenAiAdapter {
    config: OpenAiConfig,
    /// Server roots (no trailing `/v1`).
    roots: Vec<String>,
    /// Every header sent besides the content type (values redacted in `Debug`).
    headers: Vec<(reqwest::header::HeaderName, Secret)>,
    client: reqwest::Client,
    answer_regex: Option<Regex>,
    choice_regex: Option<Regex>,
    in_flight: Arc<Semaphore>,
    limiter: Option<http::RateLimiter>,
    encoding: Encoding,
    /// Set once the pre-flight check passed.
    checked: tokio::sync::OnceCell<()>,
}

impl OpenAiAdapter {
    /// Validates the config, reads the API key and env headers from the environment and
    /// builds the client. Makes no request (see [`Adapter::preflight`]).
    pub fn new(config: &OpenAiConfig, _base_dir: &Path) -> Result<Self, BuildError> {
        let checked = config::check(config)?;
        let client = reqwest::Client::builder()
            .timeout(Duration::from_secs_f64(config.timeout_s))
            .build()
            .map_err(|e| config::invalid(format!("cannot build the HTTP client: {e}")))?;
        Ok(Self {
            config: config.clone(),
            roots: checked.roots,
            headers: checked.headers,
            client,
            answer_regex: checked.answer_regex,
            choice_regex: checked.choice_regex,
            in_flight: Arc::new(Semaphore::new(config.max_in_flight)),
            limiter: config.requests_per_minute.map(http::RateLimiter::new),
            encoding: Encoding::from_config(config),
            checked: tokio::sync::OnceCell::new(),
        })
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
            "seed": seed,
        });
        match c.max_completion_tokens {
            Some(n) => body["max_completion_tokens"] = json!(n),
            None => body["max_tokens"] = json!(c.max_tokens),
        }
        if c.logprobs {
            body["logprobs"] = json!(true);
            if c.top_logprobs > 0 {
                body["top_logprobs"] = json!(c.top_logprobs);
            }
        }
        if c.constrain == Some(Constrain::GuidedChoice) {
            let choices: Vec<&str> = c.choices.iter().map(|s| s.trim()).collect();
            body["guided_choice"] = json!(choices);
        }
        for (k, v) in &c.extra_body {
            body[k.as_str()] = v.clone();
        }
        body
    }
}

#[async_trait]
impl Adapter for OpenAiAdapter {
    fn identity(&self) -> AdapterIdentity {
        let c = &self.config;
        let mut settings = json!({
            "temperature": c.temperature,
            "max_tokens": c.max_tokens,
            "prompt": c.prompt,
            "system_prompt": c.system_prompt,
            "logprobs": c.logprobs,
            "top_logprobs": if c.logprobs { c.top_logprobs } else { 0 },
            "choices": c.choices,
            "answer_regex": c.answer_regex,
            "image": self.encoding.describe(),
        });
        let extra = settings.as_object_mut().expect("an object");
        // Only when set, so the keys of sweeps that do not use them stay put.
        if let Some(n) = c.max_completion_tokens {
            extra.insert("max_completion_tokens".into(), json!(n));
        }
        if let Some(constrain) = c.constrain {
            extra.insert("constrain".into(), json!(constrain));
        }
        if !c.extra_body.is_empty() {
            extra.insert("extra_body".into(), Value::Object(c.extra_body.clone()));
        }
        let literal: BTreeMap<&String, &String> = c
            .headers
            .iter()
            .filter_map(|(k, v)| match v {
                HeaderSource::Literal(v) => Some((k, v)),
                HeaderSource::Env { .. } => None,
            })
            .collect();
        if !literal.is_empty() {
            extra.insert("headers".into(), json!(literal));
        }
        AdapterIdentity {
            adapter: "openai".into(),
            model: c.model.clone(),
            version: PROTOCOL_VERSION.into(),
            settings,
        }
    }

    fn workload(&self) -> Workload {
        Workload::Io {
            max_in_flight: self.config.max_in_flight,
        }
    }

    async fn preflight(&self) -> Result<(), BuildError> {
        if !self.config.preflight {
            return Ok(());
        }
        // Once per adapter: a probe or a refinement that executes again does not re-check.
        self.checked
            .get_or_try_init(|| self.check_endpoints())
            .await
            .map(|_| ())
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
        let encoding = self.encoding;
        let (data_url, image_meta) =
            tokio::task::spawn_blocking(move || encode_image(&image, encoding))
                .await
                .map_err(|e| {
                    AdapterError::Permanent(format!("image encoding task failed: {e}"))
                })??;
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

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use regex::Regex;
    use serde_json::json;

    use super::OpenAiConfig;
    use super::http::{parse_retry_after, retry_delay};
    use super::response::{Extracted, choice_regex, extract, parse_completion};

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
        // One choice: its normalised probability is 1; the token-level figure is kept.
        assert_eq!(obs.confidence, Some(1.0));
        assert_eq!(
            obs.metadata["answer_token_confidence"],
            json!((-0.5f64).exp())
        );
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
