use std::sync::Arc;

use axum::body::Body;
use axum::http::{Request, StatusCode};
use clarity_image::BitDepth;
use clarity_model::PredictOptions;
use clarity_serve_model::{BUILTIN_MODEL_NAME, BuiltinChatModel, ChatModel, router};
use http_body_util::BodyExt;
use serde_json::{Value, json};
use tower::ServiceExt;

use crate::fake::png_data_url_of;

#[tokio::test]
async fn serves_the_builtin_model_with_its_exact_distribution() {
    let model = Arc::new(BuiltinChatModel::load_embedded().unwrap());
    let cases = clarity_phantom::cohort(5, 64, BitDepth::Eight, 11).unwrap();
    for case in &cases {
        for (temperature, seed) in [(0.0, 0), (1.0, 3)] {
            let request = json!({
                "model": BUILTIN_MODEL_NAME,
                "messages": [{"role": "user", "content": [
                    {"type": "text", "text": "Is there a nodule? Where?"},
                    {"type": "image_url", "image_url": {"url": png_data_url_of(&case.image)}},
                ]}],
                "temperature": temperature, "seed": seed, "logprobs": true, "top_logprobs": 20,
            });
            let response = router(model.clone())
                .oneshot(
                    Request::post("/v1/chat/completions")
                        .body(Body::from(request.to_string()))
                        .unwrap(),
                )
                .await
                .unwrap();
            assert_eq!(response.status(), StatusCode::OK);
            let body: Value =
                serde_json::from_slice(&response.into_body().collect().await.unwrap().to_bytes())
                    .unwrap();
            let direct = model
                .model()
                .predict(
                    &case.image,
                    &PredictOptions {
                        temperature,
                        seed,
                        saliency: false,
                    },
                )
                .unwrap();
            let content = body["choices"][0]["message"]["content"].as_str().unwrap();
            assert_eq!(
                content,
                format!("{}\n{}", direct.label, direct.justification)
            );
            let first = &body["choices"][0]["logprobs"]["content"][0];
            assert_eq!(first["logprob"].as_f64().unwrap(), direct.confidence.ln());
            assert_eq!(
                first["top_logprobs"].as_array().unwrap().len(),
                direct.probabilities.len()
            );
            assert_eq!(
                body["system_fingerprint"].as_str().unwrap(),
                model.model().weights_hash()
            );
        }
    }
}

#[test]
fn chat_model_answer_is_the_prediction() {
    let model = BuiltinChatModel::load_embedded().unwrap();
    let case = &clarity_phantom::cohort(2, 64, BitDepth::Sixteen, 5).unwrap()[1];
    let answer = model.classify(&case.image, "ignored", 0.0, 0).unwrap();
    let p = model
        .model()
        .predict(&case.image, &PredictOptions::default())
        .unwrap();
    assert_eq!(answer.label, p.label);
    assert_eq!(answer.justification, p.justification);
    assert_eq!(answer.probabilities, p.probabilities);
    assert_eq!(model.name(), "clarity-builtin");
}

#[tokio::test]
async fn run_builtin_reports_an_address_in_use() {
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = taken.local_addr().unwrap();
    let err = clarity_serve_model::run_builtin(addr).await.unwrap_err();
    assert!(
        err.to_string()
            .starts_with(&format!("cannot listen on {addr}: ")),
        "{err}"
    );
}

#[tokio::test]
async fn serve_answers_over_a_real_socket() {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let model = Arc::new(BuiltinChatModel::load_embedded().unwrap());
    tokio::spawn(clarity_serve_model::serve(listener, model));
    // A bare HTTP/1.1 request: no client library needed for a health check.
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut stream = tokio::net::TcpStream::connect(addr).await.unwrap();
    stream
        .write_all(b"GET /v1/models HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n")
        .await
        .unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).await.unwrap();
    assert!(response.starts_with("HTTP/1.1 200 OK"), "{response}");
    assert!(response.contains(r#""id":"clarity-builtin""#), "{response}");
}
