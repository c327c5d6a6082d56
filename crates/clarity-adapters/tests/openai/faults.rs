//! Scripted servers that fail on purpose.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use clarity_adapters::{Adapter, AdapterError};
use serde_json::{Value, json};

use crate::common::{adapter, config, gray, input, spawn};

#[derive(Clone)]
pub(crate) struct Reply {
    status: u16,
    headers: Vec<(&'static str, String)>,
    body: String,
    delay_ms: u64,
}

fn reply(status: u16, body: impl Into<String>) -> Reply {
    Reply {
        status,
        headers: Vec::new(),
        body: body.into(),
        delay_ms: 0,
    }
}

pub(crate) fn ok_reply(body: Value) -> Reply {
    reply(200, body.to_string())
}

fn ok(message: Value, logprobs: Value) -> Reply {
    let body = json!({"choices": [{"index": 0, "message": message, "logprobs": logprobs,
        "finish_reason": "stop"}]});
    reply(200, body.to_string())
}

#[derive(Clone)]
pub(crate) struct Script {
    replies: Arc<Vec<Reply>>,
    pub(crate) calls: Arc<AtomicUsize>,
    pub(crate) last_headers: Arc<std::sync::Mutex<Option<HeaderMap>>>,
}

async fn scripted(State(s): State<Script>, headers: HeaderMap) -> Response {
    let i = s.calls.fetch_add(1, Ordering::SeqCst);
    *s.last_headers.lock().unwrap() = Some(headers);
    let r = s.replies[i.min(s.replies.len() - 1)].clone();
    if r.delay_ms > 0 {
        tokio::time::sleep(Duration::from_millis(r.delay_ms)).await;
    }
    let mut response = (StatusCode::from_u16(r.status).unwrap(), r.body).into_response();
    for (k, v) in r.headers {
        response.headers_mut().insert(k, v.parse().unwrap());
    }
    response
}

/// Serves the replies in order (the last one repeats); returns the address and the state.
pub(crate) async fn serve_script(replies: Vec<Reply>) -> (std::net::SocketAddr, Script) {
    let script = Script {
        replies: Arc::new(replies),
        calls: Arc::new(AtomicUsize::new(0)),
        last_headers: Arc::new(std::sync::Mutex::new(None)),
    };
    let router = axum::Router::new()
        .route("/v1/chat/completions", axum::routing::post(scripted))
        .with_state(script.clone());
    (spawn(router).await, script)
}

pub(crate) async fn run_script(
    replies: Vec<Reply>,
) -> (Result<clarity_core::Observation, AdapterError>, usize) {
    let (addr, script) = serve_script(replies).await;
    let result = adapter(&config(addr)).run(input(gray(7), 1)).await;
    (result, script.calls.load(Ordering::SeqCst))
}

fn answer() -> Reply {
    ok(
        json!({"role": "assistant", "content": "yes\nBecause."}),
        Value::Null,
    )
}

#[tokio::test]
async fn retries_500_twice_then_succeeds() {
    let (result, calls) = run_script(vec![reply(500, "boom"), reply(503, "busy"), answer()]).await;
    let obs = result.unwrap();
    assert_eq!(calls, 3);
    assert_eq!(obs.answer.as_deref(), Some("yes"));
    assert_eq!(obs.justification.as_deref(), Some("Because."));
}

#[tokio::test]
async fn honours_retry_after_on_429() {
    let mut r = reply(429, "slow down");
    r.headers.push(("retry-after", "0.05".into()));
    let (result, calls) = run_script(vec![r, answer()]).await;
    assert_eq!(result.unwrap().answer.as_deref(), Some("yes"));
    assert_eq!(calls, 2);
}

#[tokio::test]
async fn always_500_gives_up_naming_status_and_body() {
    let (result, calls) = run_script(vec![reply(500, "model crashed: out of memory")]).await;
    let err = result.unwrap_err();
    assert_eq!(calls, 4, "first attempt + max_retries = 3");
    assert!(err.is_transient());
    let msg = err.to_string();
    assert!(msg.contains("HTTP 500 Internal Server Error"), "{msg}");
    assert!(msg.contains("model crashed: out of memory"), "{msg}");
    assert!(msg.ends_with("(gave up after 4 attempts)"), "{msg}");
}

#[tokio::test]
async fn client_errors_are_not_retried() {
    let (result, calls) = run_script(vec![reply(400, "bad image"), answer()]).await;
    let err = result.unwrap_err();
    assert_eq!(calls, 1);
    assert!(matches!(err, AdapterError::Permanent(_)), "{err:?}");
    assert!(
        err.to_string()
            .contains("HTTP 400 Bad Request: \"bad image\""),
        "{err}"
    );
}

#[tokio::test]
async fn slow_response_times_out() {
    let mut slow = answer();
    slow.delay_ms = 3_000;
    let (addr, _script) = serve_script(vec![slow]).await;
    let mut c = config(addr);
    c.timeout_s = 0.2;
    let err = adapter(&c).run(input(gray(7), 1)).await.unwrap_err();
    assert!(
        matches!(err, AdapterError::Timeout { secs: 0.2, .. }),
        "{err:?}"
    );
    assert!(
        err.to_string()
            .ends_with("/v1/chat/completions: timed out after 0.2 s"),
        "{err}"
    );
}

#[tokio::test]
async fn connection_refused_is_retried_then_transient() {
    // Bind then drop a listener to get a port nobody listens on.
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap()
    };
    let err = adapter(&config(port))
        .run(input(gray(7), 1))
        .await
        .unwrap_err();
    assert!(err.is_transient());
    let msg = err.to_string();
    assert!(
        msg.contains(&format!("POST http://{port}/v1/chat/completions")),
        "{msg}"
    );
    assert!(msg.ends_with("(gave up after 4 attempts)"), "{msg}");
}

#[tokio::test]
async fn malformed_json_is_a_clear_error() {
    let (result, _) = run_script(vec![reply(200, "{\"choices\": [")]).await;
    let err = result.unwrap_err();
    assert!(matches!(err, AdapterError::Permanent(_)));
    let msg = err.to_string();
    assert!(
        msg.starts_with("case case-1: malformed JSON in the response"),
        "{msg}"
    );
    assert!(
        msg.contains(r#"body starts with "{\"choices\": [""#),
        "{msg}"
    );
}

#[tokio::test]
async fn null_content_is_a_clear_error() {
    let r = ok(
        json!({"role": "assistant", "content": null, "refusal": "cannot help"}),
        Value::Null,
    );
    let (result, _) = run_script(vec![r]).await;
    assert_eq!(
        result.unwrap_err().to_string(),
        "case case-1: response choices[0].message.content is null (finish_reason \"stop\"; refusal: \"cannot help\")"
    );
}

#[tokio::test]
async fn no_choices_is_a_clear_error() {
    let (result, _) = run_script(vec![reply(200, r#"{"choices": []}"#)]).await;
    assert_eq!(
        result.unwrap_err().to_string(),
        r#"case case-1: response has no choices[0]: "{\"choices\": []}""#
    );
}

#[tokio::test]
async fn content_as_a_list_of_parts() {
    let r = ok(
        json!({"role": "assistant", "content": [
            {"type": "text", "text": "no\n"}, {"type": "text", "text": "Clear lungs."}]}),
        Value::Null,
    );
    let (result, _) = run_script(vec![r]).await;
    let obs = result.unwrap();
    assert_eq!(obs.answer.as_deref(), Some("no"));
    assert_eq!(obs.justification.as_deref(), Some("Clear lungs."));
}

#[tokio::test]
async fn missing_logprobs_leave_confidence_absent() {
    let (result, _) = run_script(vec![answer()]).await;
    let obs = result.unwrap();
    assert_eq!(obs.confidence, None);
    assert_eq!(obs.entropy, None);
    assert!(obs.probabilities.is_empty());
    assert_eq!(obs.metadata["logprobs"], json!("requested but absent"));
}

#[tokio::test]
async fn multi_token_answer_uses_mean_over_its_tokens() {
    let tokens = json!({"content": [
        {"token": "nod", "logprob": -0.2, "top_logprobs": [
            {"token": "nod", "logprob": -0.2}, {"token": "normal", "logprob": -2.0}]},
        {"token": "ule", "logprob": -0.4, "top_logprobs": []},
        {"token": "\n", "logprob": -1.0, "top_logprobs": []},
        {"token": "Spot", "logprob": -3.0, "top_logprobs": []}]});
    let r = ok(
        json!({"role": "assistant", "content": "nodule\nSpot"}),
        tokens,
    );
    let (result, _) = run_script(vec![r]).await;
    let obs = result.unwrap();
    assert_eq!(obs.answer.as_deref(), Some("nodule"));
    let expected = (-0.3f64).exp();
    assert!((obs.confidence.unwrap() - expected).abs() < 1e-12);
    let h = 0.2 * (-0.2f64).exp() + 2.0 * (-2.0f64).exp();
    assert!((obs.entropy.unwrap() - h).abs() < 1e-12);
    assert_eq!(obs.metadata["entropy_top_k"], json!(2));
}

#[tokio::test]
async fn endpoints_are_chosen_by_run_key_and_rotated_on_retry() {
    let (a, sa) = serve_script(vec![answer()]).await;
    let (b, sb) = serve_script(vec![answer()]).await;
    let mut c = config(a);
    c.base_url = None;
    c.base_urls = vec![format!("http://{a}"), format!("http://{b}/v1/")];
    let adapter = crate::common::adapter(&c);
    for seed in 0..16 {
        adapter.run(input(gray(7), seed)).await.unwrap();
    }
    let (na, nb) = (
        sa.calls.load(Ordering::SeqCst),
        sb.calls.load(Ordering::SeqCst),
    );
    assert_eq!(na + nb, 16);
    assert!(na > 0 && nb > 0, "both endpoints used: {na} {nb}");
    // Same keys again: exactly the same split.
    for seed in 0..16 {
        adapter.run(input(gray(7), seed)).await.unwrap();
    }
    assert_eq!(sa.calls.load(Ordering::SeqCst), 2 * na);

    // A failing endpoint: the retry goes to the other one.
    let (bad, sbad) = serve_script(vec![reply(502, "down")]).await;
    let (good, sgood) = serve_script(vec![answer()]).await;
    c.base_urls = vec![format!("http://{bad}"), format!("http://{good}")];
    let adapter = crate::common::adapter(&c);
    for seed in 0..6 {
        adapter.run(input(gray(7), seed)).await.unwrap();
    }
    assert_eq!(sgood.calls.load(Ordering::SeqCst), 6);
    assert!(sbad.calls.load(Ordering::SeqCst) > 0);
}

#[derive(Clone, Default)]
struct Gauge {
    now: Arc<AtomicUsize>,
    max: Arc<AtomicUsize>,
}

async fn gauged(State(g): State<Gauge>) -> Response {
    let n = g.now.fetch_add(1, Ordering::SeqCst) + 1;
    g.max.fetch_max(n, Ordering::SeqCst);
    tokio::time::sleep(Duration::from_millis(30)).await;
    g.now.fetch_sub(1, Ordering::SeqCst);
    let body = json!({"choices": [{"message": {"content": "yes"}, "finish_reason": "stop"}]});
    (StatusCode::OK, body.to_string()).into_response()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn never_more_than_max_in_flight_requests() {
    let gauge = Gauge::default();
    let router = axum::Router::new()
        .route("/v1/chat/completions", axum::routing::post(gauged))
        .with_state(gauge.clone());
    let addr = spawn(router).await;
    let mut c = config(addr);
    c.max_in_flight = 2;
    let a = Arc::new(adapter(&c));
    let tasks: Vec<_> = (0..8)
        .map(|seed| {
            let a = a.clone();
            tokio::spawn(async move { a.run(input(gray(7), seed)).await })
        })
        .collect();
    for t in tasks {
        assert_eq!(t.await.unwrap().unwrap().answer.as_deref(), Some("yes"));
    }
    let max = gauge.max.load(Ordering::SeqCst);
    assert!((1..=2).contains(&max), "{max} requests in flight");
}
