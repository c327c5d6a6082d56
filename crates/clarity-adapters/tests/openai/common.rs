use std::net::SocketAddr;
use std::sync::Arc;

use clarity_adapters::RunInput;
use clarity_adapters::openai::{OpenAiAdapter, OpenAiConfig};
use clarity_image::{Channels, Image};
use clarity_serve_model::{ChatAnswer, ChatModel};

/// Serves `router` on an ephemeral port; the server lives as long as the runtime.
pub async fn spawn(router: axum::Router) -> SocketAddr {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, router).await.unwrap() });
    addr
}

/// Fast settings for tests: short timeout and a few-millisecond backoff.
pub fn config(addr: SocketAddr) -> OpenAiConfig {
    let mut c = OpenAiConfig::new("fake-model", format!("http://{addr}"));
    c.timeout_s = 0.5;
    c.backoff_base_ms = 2;
    c.backoff_max_ms = 10;
    c.max_retries = 3;
    c
}

pub fn adapter(config: &OpenAiConfig) -> OpenAiAdapter {
    OpenAiAdapter::new(config, std::path::Path::new(".")).unwrap()
}

pub fn input(image: Image, seed: u64) -> RunInput {
    RunInput {
        key: format!("key-{seed}-{}", image.content_hash()),
        case_id: "case-1".into(),
        image: Arc::new(image),
        image_path: None,
        prompt: Some("Bright or dark?".into()),
        seed,
        perturbations: Vec::new(),
        work_dir: std::env::temp_dir(),
    }
}

pub fn gray(value: u8) -> Image {
    Image::from_u8(4, 3, Channels::Gray, vec![value; 12]).unwrap()
}

/// A tiny deterministic model: "bright" or "dark" by mean intensity, with a 3-class
/// distribution (one class at probability 0).
pub struct Fake;

impl Fake {
    pub fn p_bright(image: &Image) -> f64 {
        let v = image.to_unit_f32();
        let mean = v.iter().map(|&x| x as f64).sum::<f64>() / v.len() as f64;
        0.1 + 0.7 * mean
    }
}

impl ChatModel for Fake {
    fn name(&self) -> &str {
        "fake-model"
    }
    fn fingerprint(&self) -> Option<String> {
        Some("fake-weights-1".into())
    }
    fn classify(&self, image: &Image, _: &str, _: f64, seed: u64) -> Result<ChatAnswer, String> {
        let p = Self::p_bright(image);
        Ok(ChatAnswer {
            label: if p >= 0.5 { "bright" } else { "dark" }.into(),
            justification: format!("Mean brightness score {p:.3} (seed {seed})."),
            probabilities: vec![
                ("bright".into(), p),
                ("dark".into(), 1.0 - p),
                ("never".into(), 0.0),
            ],
        })
    }
}

pub fn entropy(ps: &[f64]) -> f64 {
    ps.iter().filter(|p| **p > 0.0).map(|p| -p * p.ln()).sum()
}
