use std::sync::Arc;

use axum::body::Body;
use axum::http::{Request, StatusCode};
use clarity_serve_model::{ServeOptions, router, router_with};
use http_body_util::BodyExt;
use serde_json::{Value, json};
use tower::ServiceExt;

use crate::fake::{Fake, gray_image, png_data_url};

async fn call(app: axum::Router, method: &str, uri: &str, body: Vec<u8>) -> (StatusCode, Value) {
    let request = Request::builder()
        .method(method)
        .uri(uri)
        .header("content-type", "application/json")
        .body(Body::from(body))
        .unwrap();
    let response = app.oneshot(request).await.unwrap();
    let status = response.status();
    assert_eq!(
        response.headers()["content-type"],
        "application/json",
        "every response is JSON"
    );
    let bytes = response.into_body().collect().await.unwrap().to_bytes();
    (status, serde_json::from_slice(&bytes).unwrap())
}

fn app() -> axum::Router {
    router(Arc::new(Fake))
}

fn request(value: u8) -> Value {
    json!({
        "model": "fake-model",
        "messages": [{"role": "user", "content": [
            {"type": "text", "text": "Bright or dark?"},
            {"type": "image_url", "image_url": {"url": png_data_url(4, 3, value)}},
        ]}],
        "temperature": 0.0,
        "seed": 7,
        "logprobs": true,
        "top_logprobs": 5,
    })
}

fn error_message(body: &Value) -> &str {
    body["error"]["message"].as_str().unwrap()
}

#[tokio::test]
async fn completion_carries_label_first_and_distribution_in_logprobs() {
    let (status, body) = call(
        app(),
        "POST",
        "/v1/chat/completions",
        request(255).to_string().into_bytes(),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let choice = &body["choices"][0];
    let content = choice["message"]["content"].as_str().unwrap();
    assert_eq!(
        content,
        "bright\nMean intensity 1.000 (15 prompt chars, t=0, seed=7)."
    );
    assert_eq!(choice["finish_reason"], "stop");
    let tokens = choice["logprobs"]["content"].as_array().unwrap();
    let concat: String = tokens
        .iter()
        .map(|t| t["token"].as_str().unwrap())
        .collect();
    assert_eq!(concat, content, "tokens cover the content exactly");
    assert_eq!(tokens[0]["token"], "bright");
    assert_eq!(tokens[0]["logprob"].as_f64().unwrap(), 0.8f64.ln());
    let top = tokens[0]["top_logprobs"].as_array().unwrap();
    let top: Vec<(&str, f64)> = top
        .iter()
        .map(|t| (t["token"].as_str().unwrap(), t["logprob"].as_f64().unwrap()))
        .collect();
    // 1 - 0.8 in floating point is not exactly 0.2; the server sends ln of what the model gave.
    assert_eq!(
        top,
        vec![
            ("bright", 0.8f64.ln()),
            ("dark", (1.0f64 - 0.8).ln()),
            ("never", -9999.0)
        ]
    );
    assert!(tokens[1..].iter().all(|t| t["logprob"] == 0.0));
    assert_eq!(body["model"], "fake-model");
    assert_eq!(body["created"], 0);
}

#[tokio::test]
async fn responses_are_deterministic_and_respect_max_tokens() {
    let body = request(0).to_string().into_bytes();
    let (_, a) = call(app(), "POST", "/v1/chat/completions", body.clone()).await;
    let (_, b) = call(app(), "POST", "/v1/chat/completions", body).await;
    assert_eq!(a, b);
    assert_eq!(a["choices"][0]["logprobs"]["content"][0]["token"], "dark");

    let mut req = request(0);
    req["max_tokens"] = json!(3);
    req["top_logprobs"] = json!(1);
    let (status, body) = call(
        app(),
        "POST",
        "/v1/chat/completions",
        req.to_string().into_bytes(),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["choices"][0]["message"]["content"], "dark\nMean");
    assert_eq!(body["choices"][0]["finish_reason"], "length");
    let top = body["choices"][0]["logprobs"]["content"][0]["top_logprobs"]
        .as_array()
        .unwrap();
    assert_eq!(top.len(), 1);
    assert_eq!(top[0]["token"], "dark");
}

#[tokio::test]
async fn logprobs_absent_unless_asked() {
    let mut req = request(0);
    req.as_object_mut().unwrap().remove("logprobs");
    req.as_object_mut().unwrap().remove("top_logprobs");
    let (status, body) = call(
        app(),
        "POST",
        "/v1/chat/completions",
        req.to_string().into_bytes(),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    assert!(body["choices"][0]["logprobs"].is_null());
}

#[tokio::test]
async fn content_as_plain_string_and_image_as_bare_url_string() {
    let req = json!({
        "model": "fake-model",
        "messages": [
            {"role": "system", "content": "ignored"},
            {"role": "user", "content": "Bright?"},
            {"role": "user", "content": [{"type": "image_url", "image_url": png_data_url(2, 2, 255)}]},
        ],
        "temperature": 0.5,
        "seed": 3,
    });
    let (status, body) = call(
        app(),
        "POST",
        "/v1/chat/completions",
        req.to_string().into_bytes(),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(
        body["choices"][0]["message"]["content"],
        "bright\nMean intensity 1.000 (7 prompt chars, t=0.5, seed=3)."
    );
}

#[tokio::test]
async fn bad_json_is_400_with_message() {
    let (status, body) = call(app(), "POST", "/v1/chat/completions", b"{not json".to_vec()).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(
        error_message(&body).starts_with("request body is not valid JSON"),
        "{body}"
    );
    assert_eq!(body["error"]["code"], "bad_request");
}

#[tokio::test]
async fn missing_image_is_400() {
    let req = json!({"model": "fake-model", "messages": [{"role": "user", "content": "hi"}]});
    let (status, body) = call(
        app(),
        "POST",
        "/v1/chat/completions",
        req.to_string().into_bytes(),
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(
        error_message(&body).starts_with("no image in the request"),
        "{body}"
    );
}

#[tokio::test]
async fn field_errors_name_the_field() {
    let cases: Vec<(Value, &str)> = vec![
        (
            json!({"temperature": "hot"}),
            "`temperature` must be a number",
        ),
        (
            json!({"temperature": 3.0}),
            "`temperature` must be in [0, 2]",
        ),
        (json!({"seed": -1}), "`seed` must be a non-negative integer"),
        (
            json!({"max_tokens": 0}),
            "`max_tokens` must be a positive integer",
        ),
        (
            json!({"top_logprobs": 21}),
            "`top_logprobs` must be an integer in [0, 20]",
        ),
        (
            json!({"logprobs": false, "top_logprobs": 2}),
            "`top_logprobs` requires `logprobs: true`",
        ),
        (json!({"stream": true}), "`stream: true` is not supported"),
        (json!({"n": 2}), "`n` must be 1"),
        (
            json!({"messages": []}),
            "`messages` must be a non-empty array",
        ),
    ];
    for (patch, expected) in cases {
        let mut req = request(0);
        for (k, v) in patch.as_object().unwrap() {
            req[k] = v.clone();
        }
        let (status, body) = call(
            app(),
            "POST",
            "/v1/chat/completions",
            req.to_string().into_bytes(),
        )
        .await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{patch}");
        assert!(
            error_message(&body).starts_with(expected),
            "{patch}: {body}"
        );
    }
}

#[tokio::test]
async fn image_errors_name_the_part() {
    let cases = [
        (
            "https://example.invalid/x.png",
            "messages[0].content[1].image_url: expected a data: URL",
        ),
        (
            "data:image/gif;base64,AAAA",
            "messages[0].content[1].image_url: unsupported media type \"image/gif\"",
        ),
        (
            "data:image/png;base64,@@@",
            "messages[0].content[1].image_url: invalid base64 payload",
        ),
        (
            "data:image/png;base64,AAAA",
            "messages[0].content[1].image_url: cannot decode image/png image",
        ),
        (
            "data:image/png,raw",
            "messages[0].content[1].image_url: data: URL must be base64-encoded",
        ),
    ];
    for (url, expected) in cases {
        let mut req = request(0);
        req["messages"][0]["content"][1]["image_url"]["url"] = json!(url);
        let (status, body) = call(
            app(),
            "POST",
            "/v1/chat/completions",
            req.to_string().into_bytes(),
        )
        .await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{url}");
        assert!(error_message(&body).starts_with(expected), "{url}: {body}");
    }
}

#[tokio::test]
async fn two_images_or_unknown_part_type_are_400() {
    let mut req = request(0);
    let part = req["messages"][0]["content"][1].clone();
    req["messages"][0]["content"]
        .as_array_mut()
        .unwrap()
        .push(part);
    let (status, body) = call(
        app(),
        "POST",
        "/v1/chat/completions",
        req.to_string().into_bytes(),
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(error_message(&body), "expected exactly one image, got 2");

    let mut req = request(0);
    req["messages"][0]["content"][0] = json!({"type": "audio"});
    let (_, body) = call(
        app(),
        "POST",
        "/v1/chat/completions",
        req.to_string().into_bytes(),
    )
    .await;
    assert!(
        error_message(&body).starts_with("messages[0].content[0].type \"audio\" is not supported")
    );
}

#[tokio::test]
async fn oversize_body_is_413() {
    let app = router_with(
        Arc::new(Fake),
        ServeOptions {
            max_body_bytes: 1000,
            ..ServeOptions::default()
        },
    );
    let (status, body) = call(app, "POST", "/v1/chat/completions", vec![b' '; 5000]).await;
    assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE);
    assert_eq!(
        error_message(&body),
        "request body too large: the limit is 1000 bytes"
    );
}

#[tokio::test]
async fn oversize_image_is_400() {
    let app = router_with(
        Arc::new(Fake),
        ServeOptions {
            max_image_side: 16,
            ..ServeOptions::default()
        },
    );
    let mut req = request(0);
    req["messages"][0]["content"][1]["image_url"]["url"] = json!(png_data_url(17, 2, 0));
    let (status, body) = call(
        app,
        "POST",
        "/v1/chat/completions",
        req.to_string().into_bytes(),
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(
        error_message(&body).contains("cannot decode image/png image"),
        "{body}"
    );
}

#[tokio::test]
async fn unknown_model_and_route_are_404_wrong_method_405() {
    let mut req = request(0);
    req["model"] = json!("gpt-9");
    let (status, body) = call(
        app(),
        "POST",
        "/v1/chat/completions",
        req.to_string().into_bytes(),
    )
    .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(
        error_message(&body),
        "model \"gpt-9\" is not served here; this server serves \"fake-model\""
    );
    let (status, body) = call(app(), "GET", "/v1/nothing", vec![]).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(error_message(&body), "no route for GET /v1/nothing");
    let (status, _) = call(app(), "GET", "/v1/chat/completions", vec![]).await;
    assert_eq!(status, StatusCode::METHOD_NOT_ALLOWED);
}

#[tokio::test]
async fn models_and_health() {
    let (status, body) = call(app(), "GET", "/v1/models", vec![]).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["data"][0]["id"], "fake-model");
    assert_eq!(body["data"].as_array().unwrap().len(), 1);
    let (status, body) = call(app(), "GET", "/health", vec![]).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["status"], "ok");
}

#[test]
fn fake_model_is_deterministic() {
    use clarity_serve_model::ChatModel;
    let a = Fake.classify(&gray_image(10), "p", 0.0, 1).unwrap();
    assert_eq!(a, Fake.classify(&gray_image(10), "p", 0.0, 1).unwrap());
    assert_eq!(a.label, "dark");
}

#[tokio::test]
async fn a_request_without_model_is_400() {
    let mut req = request(0);
    req.as_object_mut().unwrap().remove("model");
    let (status, body) = call(
        app(),
        "POST",
        "/v1/chat/completions",
        req.to_string().into_bytes(),
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(
        error_message(&body).starts_with("`model` is required"),
        "{body}"
    );
}

#[tokio::test]
async fn decoded_bytes_are_limited_from_the_header_before_decoding() {
    // 64 × 64 gray 8-bit = 4096 decoded bytes: within the side limit, above the byte limit.
    let app = router_with(
        Arc::new(Fake),
        ServeOptions {
            max_decoded_bytes: 4000,
            ..ServeOptions::default()
        },
    );
    let mut req = request(0);
    req["messages"][0]["content"][1]["image_url"]["url"] = json!(png_data_url(64, 64, 0));
    let (status, body) = call(
        app,
        "POST",
        "/v1/chat/completions",
        req.to_string().into_bytes(),
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(
        error_message(&body).contains("max_decoded_bytes 4000 bytes"),
        "{body}"
    );
}
