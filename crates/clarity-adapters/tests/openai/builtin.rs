//! The adapter against `clarity serve-model`'s real builtin model: the same answers,
//! confidence and entropy as calling `BuiltinModel::predict` directly.

use std::sync::Arc;

use clarity_adapters::Adapter;
use clarity_adapters::openai::OpenAiConfig;
use clarity_image::BitDepth;
use clarity_model::PredictOptions;
use clarity_serve_model::{BUILTIN_MODEL_NAME, BuiltinChatModel};
use serde_json::json;

use crate::common::{adapter, input, spawn};

#[tokio::test]
async fn same_answers_as_predict_directly() {
    let model = Arc::new(BuiltinChatModel::load_embedded().unwrap());
    let addr = spawn(clarity_serve_model::router(model.clone())).await;
    let cases = clarity_phantom::cohort(5, 64, BitDepth::Eight, 21).unwrap();
    for (temperature, seeds) in [(0.0, &[0u64][..]), (1.0, &[1, 2][..])] {
        let mut c = OpenAiConfig::new(BUILTIN_MODEL_NAME, format!("http://{addr}"));
        c.temperature = temperature;
        let a = adapter(&c);
        for case in &cases {
            for &seed in seeds {
                let obs = a.run(input(case.image.clone(), seed)).await.unwrap();
                let opts = PredictOptions {
                    temperature,
                    seed,
                    saliency: false,
                };
                let direct = model.model().predict(&case.image, &opts).unwrap();
                // The model behind HTTP sees the image the adapter sent: 8-bit RGB.
                let (rgb, _) = case.image.to_rgb8();
                let seen = model.model().predict(&rgb, &opts).unwrap();
                let at = format!("{} t={temperature} seed={seed}", case.id);
                assert_eq!(obs.answer.as_deref(), Some(direct.label.as_str()), "{at}");
                assert_eq!(
                    obs.justification.as_deref(),
                    Some(direct.justification.as_str()),
                    "{at}"
                );
                let conf = obs.confidence.unwrap();
                assert!(
                    (conf - seen.confidence).abs() < 1e-12,
                    "{at}: {conf} vs {}",
                    seen.confidence
                );
                // gray → RGB at the boundary moves the model's input by float rounding only.
                assert!((conf - direct.confidence).abs() < 1e-6, "{at}");
                let h = obs.entropy.unwrap();
                assert!(
                    (h - seen.entropy).abs() < 1e-12,
                    "{at}: {h} vs {}",
                    seen.entropy
                );
                for (class, p) in &seen.probabilities {
                    assert!(
                        (obs.probabilities[class] - p).abs() < 1e-12,
                        "{at}: {class}"
                    );
                }
                assert_eq!(
                    obs.metadata["system_fingerprint"],
                    json!(model.model().weights_hash())
                );
            }
        }
    }
}
