use std::sync::Arc;

use clarity_adapters::Adapter;
use clarity_image::{Channels, Image};
use serde_json::json;

use crate::common::{Fake, adapter, config, entropy, gray, input, spawn};

#[tokio::test]
async fn recovers_answer_confidence_and_entropy_from_the_served_model() {
    let addr = spawn(clarity_serve_model::router(Arc::new(Fake))).await;
    let a = adapter(&config(addr));
    for value in [0u8, 100, 200, 255] {
        let image = gray(value);
        let p = Fake::p_bright(&image);
        let obs = a.run(input(image, 5)).await.unwrap();
        let (label, p_label) = if p >= 0.5 {
            ("bright", p)
        } else {
            ("dark", 1.0 - p)
        };
        assert_eq!(obs.answer.as_deref(), Some(label));
        assert_eq!(
            obs.justification.as_deref(),
            Some(format!("Mean brightness score {p:.3} (seed 5).").as_str())
        );
        let conf = obs.confidence.unwrap();
        assert!(
            (conf - p_label).abs() < 1e-12,
            "{value}: {conf} vs {p_label}"
        );
        let h = obs.entropy.unwrap();
        assert!((h - entropy(&[p, 1.0 - p])).abs() < 1e-12, "{value}: {h}");
        assert!((obs.probabilities["bright"] - p).abs() < 1e-12);
        assert_eq!(obs.probabilities["never"], 0.0);
        assert_eq!(obs.metadata["answer_extraction"], json!("first_line"));
        assert_eq!(obs.metadata["confidence_tokens"], json!(1));
        assert_eq!(
            obs.metadata["confidence_formula"],
            json!("exp(mean token logprob over the answer tokens)")
        );
        assert_eq!(
            obs.metadata["image_conversion"],
            json!({"from": "gray8", "to": "rgb8", "method": "rgb = (g, g, g)"})
        );
        assert_eq!(obs.metadata["image_sent"], json!("png rgb8 4x3"));
        assert_eq!(obs.metadata["system_fingerprint"], json!("fake-weights-1"));
    }
}

#[tokio::test]
async fn sixteen_bit_images_are_converted_and_recorded() {
    let addr = spawn(clarity_serve_model::router(Arc::new(Fake))).await;
    let a = adapter(&config(addr));
    let image = Image::from_u16(2, 2, Channels::Rgb, vec![65535; 12]).unwrap();
    let obs = a.run(input(image, 1)).await.unwrap();
    assert_eq!(obs.answer.as_deref(), Some("bright"));
    assert_eq!(
        obs.metadata["image_conversion"],
        json!({"from": "rgb16", "to": "rgb8", "method": "u8 = round(u16 * 255 / 65535)"})
    );
}

#[tokio::test]
async fn same_run_same_observation_and_choices_extraction() {
    let addr = spawn(clarity_serve_model::router(Arc::new(Fake))).await;
    let mut c = config(addr);
    c.choices = vec!["Dark".into(), "Bright".into()];
    let a = adapter(&c);
    let first = a.run(input(gray(250), 9)).await.unwrap();
    let second = a.run(input(gray(250), 9)).await.unwrap();
    assert_eq!(first, second);
    assert_eq!(
        first.answer.as_deref(),
        Some("Bright"),
        "reported as written in the config"
    );
    assert_eq!(first.metadata["answer_extraction"], json!("choices"));
}

#[tokio::test]
async fn without_logprobs_confidence_is_absent() {
    let addr = spawn(clarity_serve_model::router(Arc::new(Fake))).await;
    let mut c = config(addr);
    c.logprobs = false;
    let obs = adapter(&c).run(input(gray(0), 1)).await.unwrap();
    assert_eq!(obs.answer.as_deref(), Some("dark"));
    assert_eq!(obs.confidence, None);
    assert_eq!(obs.entropy, None);
    assert!(!obs.metadata.contains_key("logprobs"));
}

#[tokio::test]
async fn wrong_model_name_is_a_permanent_error_naming_it() {
    let addr = spawn(clarity_serve_model::router(Arc::new(Fake))).await;
    let mut c = config(addr);
    c.model = "gpt-9".into();
    let err = adapter(&c).run(input(gray(0), 1)).await.unwrap_err();
    assert!(!err.is_transient());
    let msg = err.to_string();
    assert!(msg.contains("HTTP 404 Not Found"), "{msg}");
    assert!(
        msg.ends_with(r#"HTTP 404 Not Found: model "gpt-9" is not served here; this server serves "fake-model""#),
        "{msg}"
    );
}
