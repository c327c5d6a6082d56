//! A mock server that behaves like vLLM: `GET /v1/models`, choices split into sub-word
//! tokens with conditional `top_logprobs`, `guided_choice`, 429 with `Retry-After`. Tests
//! the pre-flight check, per-choice probabilities, request options and rate limiting.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::Json;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use base64::Engine as _;
use clarity_adapters::openai::{Constrain, ImageFormat, OpenAiConfig};
use clarity_adapters::{Adapter, BuildError};
use clarity_image::{Channels, Image};
use serde_json::{Value, json};

use crate::common::{adapter, config, gray, input, spawn};

/// The model's answer distribution and how each choice is tokenised.
const CHOICES: [(&str, f64, &[&str]); 3] = [
    ("normal", 0.2, &["normal"]),
    ("nodule_left", 0.35, &["nod", "ule", "_left"]),
    ("nodule_right", 0.45, &["nod", "ule", "_right"]),
];

#[derive(Clone, Default)]
struct Vllm {
    /// 429s still to serve before answering.
    throttle: Arc<AtomicUsize>,
    /// Header the server requires on every route (`x-key`), when set.
    require_key: Option<String>,
    bodies: Arc<Mutex<Vec<Value>>>,
    headers: Arc<Mutex<Vec<HeaderMap>>>,
    completions: Arc<AtomicUsize>,
    model_lists: Arc<AtomicUsize>,
}

impl Vllm {
    fn authorised(&self, headers: &HeaderMap) -> bool {
        self.require_key.as_deref().is_none_or(|k| {
            headers
                .get("x-key")
                .is_some_and(|v| v.as_bytes() == k.as_bytes())
        })
    }
}

fn error(status: StatusCode, message: &str) -> Response {
    (
        status,
        Json(json!({"error": {"message": message, "type": "error", "code": status.as_u16()}})),
    )
        .into_response()
}

async fn models(State(s): State<Vllm>, headers: HeaderMap) -> Response {
    s.model_lists.fetch_add(1, Ordering::SeqCst);
    if !s.authorised(&headers) {
        return error(StatusCode::UNAUTHORIZED, "missing or wrong x-key");
    }
    Json(json!({"object": "list", "data": [
        {"id": "Qwen/Qwen2-VL-7B-Instruct", "object": "model", "owned_by": "vllm"},
        {"id": "other-model", "object": "model", "owned_by": "vllm"}]}))
    .into_response()
}

/// The (token, p(token | prefix)) alternatives after `prefix` among the choices.
fn next_tokens(prefix: &[&str]) -> Vec<(String, f64)> {
    let consistent: Vec<_> = CHOICES
        .iter()
        .filter(|(_, _, t)| t.len() > prefix.len() && t[..prefix.len()] == *prefix)
        .collect();
    let total: f64 = consistent.iter().map(|(_, p, _)| p).sum();
    let mut out: Vec<(String, f64)> = Vec::new();
    for (_, p, t) in consistent {
        let next = t[prefix.len()].to_string();
        match out.iter_mut().find(|(n, _)| *n == next) {
            Some(e) => e.1 += p / total,
            None => out.push((next, p / total)),
        }
    }
    out.sort_by(|a, b| b.1.total_cmp(&a.1));
    out
}

fn token(text: &str, p: f64, top: &[(String, f64)], k: usize) -> Value {
    let top: Vec<Value> = top
        .iter()
        .take(k)
        .map(|(t, p)| json!({"token": t, "logprob": p.ln(), "bytes": t.as_bytes()}))
        .collect();
    json!({"token": text, "logprob": p.ln(), "bytes": text.as_bytes(), "top_logprobs": top})
}

async fn completions(
    State(s): State<Vllm>,
    headers: HeaderMap,
    Json(body): Json<Value>,
) -> Response {
    s.completions.fetch_add(1, Ordering::SeqCst);
    s.bodies.lock().unwrap().push(body.clone());
    s.headers.lock().unwrap().push(headers.clone());
    if !s.authorised(&headers) {
        return error(StatusCode::UNAUTHORIZED, "missing or wrong x-key");
    }
    if s.throttle
        .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
        .is_ok()
    {
        let mut r = error(StatusCode::TOO_MANY_REQUESTS, "rate limited");
        r.headers_mut()
            .insert("retry-after", "0.02".parse().unwrap());
        return r;
    }
    if body["model"] != "Qwen/Qwen2-VL-7B-Instruct" {
        return error(StatusCode::NOT_FOUND, "The model does not exist.");
    }
    // The image must decode; vLLM would 400 otherwise.
    let url = body["messages"][0]["content"][1]["image_url"]["url"]
        .as_str()
        .unwrap_or_default();
    let Some((_, b64)) = url.split_once(";base64,") else {
        return error(StatusCode::BAD_REQUEST, "no image");
    };
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(b64)
        .unwrap();
    if image::load_from_memory(&bytes).is_err() {
        return error(StatusCode::BAD_REQUEST, "image does not decode");
    }
    // Greedy decoding through the choice trie.
    let mut prefix: Vec<&str> = Vec::new();
    let mut tokens = Vec::new();
    let k = body["top_logprobs"].as_u64().unwrap_or(0) as usize;
    loop {
        let next = next_tokens(&prefix);
        let Some((best, p)) = next.first().cloned() else {
            break;
        };
        tokens.push(token(&best, p, &next, k));
        let (_, _, t) = CHOICES
            .iter()
            .find(|(_, _, t)| t.len() > prefix.len() && t[prefix.len()] == best)
            .unwrap();
        prefix = t[..=prefix.len()].to_vec();
    }
    let mut text: String = prefix.concat();
    if body.get("guided_choice").is_none() {
        let newline = vec![("\n".to_string(), 0.9), (".".to_string(), 0.1)];
        tokens.push(token("\n", 0.9, &newline, k));
        tokens.push(token("Round opacity.", 1.0, &[], k));
        text.push_str("\nRound opacity.");
    }
    let logprobs = if body["logprobs"] == json!(true) {
        json!({"content": tokens})
    } else {
        Value::Null
    };
    Json(json!({
        "id": "chatcmpl-1", "object": "chat.completion", "created": 0,
        "model": body["model"],
        "choices": [{"index": 0, "message": {"role": "assistant", "content": text},
            "logprobs": logprobs, "finish_reason": "stop", "stop_reason": null}],
        "usage": {"prompt_tokens": 10, "completion_tokens": tokens.len(), "total_tokens": 10 + tokens.len()}
    }))
    .into_response()
}

async fn serve(state: Vllm) -> (std::net::SocketAddr, Vllm) {
    let router = axum::Router::new()
        .route("/v1/models", axum::routing::get(models))
        .route("/v1/chat/completions", axum::routing::post(completions))
        .with_state(state.clone());
    (spawn(router).await, state)
}

fn vllm_config(addr: std::net::SocketAddr) -> OpenAiConfig {
    let mut c = config(addr);
    c.model = "Qwen/Qwen2-VL-7B-Instruct".into();
    c.choices = CHOICES.iter().map(|(c, _, _)| c.to_string()).collect();
    c
}

fn close(a: f64, b: f64) -> bool {
    (a - b).abs() < 1e-12
}

#[tokio::test]
async fn left_right_uncertainty_is_visible_in_choice_probabilities() {
    let (addr, _) = serve(Vllm::default()).await;
    let a = adapter(&vllm_config(addr));
    a.preflight().await.unwrap();
    let obs = a.run(input(gray(9), 3)).await.unwrap();
    assert_eq!(obs.answer.as_deref(), Some("nodule_right"));
    assert_eq!(obs.justification.as_deref(), Some("Round opacity."));
    let p = &obs.probabilities;
    assert!(close(p["normal"], 0.2), "{p:?}");
    assert!(close(p["nodule_left"], 0.35), "{p:?}");
    assert!(close(p["nodule_right"], 0.45), "{p:?}");
    assert!(close(obs.confidence.unwrap(), 0.45));
    // Before: the first answer token "nod" had p = 0.8, hiding the left/right split.
    let mean = (0.8f64.ln() + 0.0 + (0.45f64 / 0.8).ln()) / 3.0;
    assert!(close(
        obs.metadata["answer_token_confidence"].as_f64().unwrap(),
        mean.exp()
    ));
    let h = -CHOICES.iter().map(|(_, p, _)| p * p.ln()).sum::<f64>();
    assert!(close(obs.entropy.unwrap(), h));
    // Same request, same bytes.
    let again = a.run(input(gray(9), 3)).await.unwrap();
    assert_eq!(
        serde_json::to_string(&obs).unwrap(),
        serde_json::to_string(&again).unwrap()
    );
}

#[tokio::test]
async fn guided_choice_extra_body_and_max_completion_tokens_are_sent() {
    let (addr, s) = serve(Vllm::default()).await;
    let mut c = vllm_config(addr);
    c.constrain = Some(Constrain::GuidedChoice);
    c.max_completion_tokens = Some(8);
    c.extra_body = serde_json::from_value(json!({
        "chat_template_kwargs": {"enable_thinking": false}, "top_k": 1
    }))
    .unwrap();
    let obs = adapter(&c).run(input(gray(9), 3)).await.unwrap();
    let body = s.bodies.lock().unwrap()[0].clone();
    assert_eq!(
        body["guided_choice"],
        json!(["normal", "nodule_left", "nodule_right"])
    );
    assert_eq!(
        body["chat_template_kwargs"],
        json!({"enable_thinking": false})
    );
    assert_eq!(body["top_k"], json!(1));
    assert_eq!(body["max_completion_tokens"], json!(8));
    assert!(body.get("max_tokens").is_none(), "{body}");
    // Constrained output is the bare choice; probabilities are the same.
    assert_eq!(obs.answer.as_deref(), Some("nodule_right"));
    assert_eq!(obs.justification, None);
    assert!(close(obs.probabilities["nodule_left"], 0.35));
}

#[tokio::test]
async fn rate_limit_429_with_retry_after_is_retried() {
    let state = Vllm {
        throttle: Arc::new(AtomicUsize::new(2)),
        ..Vllm::default()
    };
    let (addr, s) = serve(state).await;
    let obs = adapter(&vllm_config(addr))
        .run(input(gray(9), 3))
        .await
        .unwrap();
    assert_eq!(obs.answer.as_deref(), Some("nodule_right"));
    assert_eq!(s.completions.load(Ordering::SeqCst), 3);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn requests_per_minute_spaces_request_starts() {
    let (addr, s) = serve(Vllm::default()).await;
    let mut c = vllm_config(addr);
    c.requests_per_minute = Some(1200.0); // one start per 50 ms
    c.max_in_flight = 4;
    let a = Arc::new(adapter(&c));
    let start = Instant::now();
    let tasks: Vec<_> = (0..5)
        .map(|seed| {
            let a = a.clone();
            tokio::spawn(async move { a.run(input(gray(9), seed)).await })
        })
        .collect();
    let mut answers = Vec::new();
    for t in tasks {
        answers.push(serde_json::to_string(&t.await.unwrap().unwrap()).unwrap());
    }
    let elapsed = start.elapsed();
    assert_eq!(s.completions.load(Ordering::SeqCst), 5);
    assert!(elapsed >= Duration::from_millis(200), "{elapsed:?}");
    // Without the limit the same five runs do not wait.
    c.requests_per_minute = None;
    let b = adapter(&c);
    let start = Instant::now();
    for seed in 0..5 {
        let obs = b.run(input(gray(9), seed)).await.unwrap();
        assert_eq!(serde_json::to_string(&obs).unwrap(), answers[seed as usize]);
    }
    assert!(start.elapsed() < elapsed, "{:?}", start.elapsed());
}

#[tokio::test]
async fn image_is_downscaled_and_sent_as_jpeg() {
    let (addr, s) = serve(Vllm::default()).await;
    let mut c = vllm_config(addr);
    c.image_max_side = Some(16);
    c.image_format = Some(ImageFormat::Jpeg);
    c.jpeg_quality = Some(80);
    let pixels: Vec<u8> = (0..40 * 20).map(|i| (i % 251) as u8).collect();
    let image = Image::from_u8(40, 20, Channels::Gray, pixels).unwrap();
    let obs = adapter(&c).run(input(image, 1)).await.unwrap();
    assert_eq!(
        obs.metadata["image_sent"],
        json!("jpeg q80 rgb8 16x8 (downscaled from 40x20, triangle filter)")
    );
    let body = s.bodies.lock().unwrap()[0].clone();
    let url = body["messages"][0]["content"][1]["image_url"]["url"]
        .as_str()
        .unwrap()
        .to_string();
    let b64 = url.strip_prefix("data:image/jpeg;base64,").unwrap();
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(b64)
        .unwrap();
    assert_eq!(obs.metadata["image_bytes"], json!(bytes.len()));
    let decoded = image::load_from_memory(&bytes).unwrap();
    assert_eq!(
        image::guess_format(&bytes).unwrap(),
        image::ImageFormat::Jpeg
    );
    assert_eq!((decoded.width(), decoded.height()), (16, 8));
}

fn preflight_error(e: BuildError) -> String {
    assert!(matches!(e, BuildError::Unavailable { .. }), "{e:?}");
    e.to_string()
}

#[tokio::test]
async fn preflight_names_a_model_the_server_does_not_serve() {
    let (addr, s) = serve(Vllm::default()).await;
    let mut c = vllm_config(addr);
    c.model = "Qwen/Qwen2-VL-72B".into();
    let a = adapter(&c);
    let msg = preflight_error(a.preflight().await.unwrap_err());
    assert_eq!(
        msg,
        format!(
            "adapter openai: model \"Qwen/Qwen2-VL-72B\" is not served at http://{addr}: GET http://{addr}/v1/models lists \"Qwen/Qwen2-VL-7B-Instruct\", \"other-model\"; set `model` to one of them (set `preflight = false` in [adapter] to skip this check)"
        )
    );
    assert_eq!(s.completions.load(Ordering::SeqCst), 0);
}

#[tokio::test]
async fn preflight_fails_once_on_a_dead_endpoint() {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    let mut c = vllm_config(port);
    c.max_retries = 1;
    let a = adapter(&c);
    let msg = preflight_error(a.preflight().await.unwrap_err());
    assert!(
        msg.starts_with(&format!(
            "adapter openai: pre-flight check of model \"Qwen/Qwen2-VL-7B-Instruct\" at http://{port} failed: GET http://{port}/v1/models: "
        )),
        "{msg}"
    );
    assert!(
        msg.ends_with("(gave up after 2 attempts; is the server running and is `base_url` right? set `preflight = false` in [adapter] to skip this check)"),
        "{msg}"
    );
    // `preflight = false` skips it.
    c.preflight = false;
    adapter(&c).preflight().await.unwrap();
}

#[tokio::test]
async fn preflight_reports_http_errors_and_checks_every_endpoint_once() {
    let state = Vllm {
        require_key: Some("k".into()),
        ..Vllm::default()
    };
    let (addr, s) = serve(state).await;
    let msg = preflight_error(adapter(&vllm_config(addr)).preflight().await.unwrap_err());
    assert_eq!(
        msg,
        format!(
            "adapter openai: pre-flight check of model \"Qwen/Qwen2-VL-7B-Instruct\" at http://{addr} failed: GET http://{addr}/v1/models: HTTP 401 Unauthorized: missing or wrong x-key (set `preflight = false` in [adapter] to skip this check)"
        )
    );
    assert_eq!(
        s.model_lists.load(Ordering::SeqCst),
        1,
        "4xx is not retried"
    );

    // Two endpoints, both checked, and only once per adapter.
    let (b, sb) = serve(Vllm::default()).await;
    let (c2, sc) = serve(Vllm::default()).await;
    let mut c = vllm_config(b);
    c.base_urls = vec![format!("http://{c2}/v1")];
    let a = adapter(&c);
    a.preflight().await.unwrap();
    a.preflight().await.unwrap();
    assert_eq!(sb.model_lists.load(Ordering::SeqCst), 1);
    assert_eq!(sc.model_lists.load(Ordering::SeqCst), 1);
}

#[tokio::test]
async fn preflight_against_serve_model() {
    let addr = spawn(clarity_serve_model::router(Arc::new(crate::common::Fake))).await;
    adapter(&config(addr)).preflight().await.unwrap();
    let mut c = config(addr);
    c.model = "nope".into();
    let msg = preflight_error(adapter(&c).preflight().await.unwrap_err());
    assert!(msg.contains("lists \"fake-model\""), "{msg}");
}

#[tokio::test]
async fn headers_go_with_the_preflight_and_the_runs() {
    let state = Vllm {
        require_key: Some("k".into()),
        ..Vllm::default()
    };
    let (addr, s) = serve(state).await;
    let mut c = vllm_config(addr);
    c.headers.insert(
        "X-Key".into(),
        clarity_adapters::openai::HeaderSource::Literal("k".into()),
    );
    let a = adapter(&c);
    a.preflight().await.unwrap();
    a.run(input(gray(9), 3)).await.unwrap();
    assert_eq!(s.headers.lock().unwrap()[0]["x-key"], "k");
}
