use std::path::Path;

use clarity_adapters::openai::{OpenAiAdapter, OpenAiConfig};
use clarity_adapters::{Adapter, AdapterConfig, Workload};
use serde_json::json;

#[test]
fn parses_from_the_adapter_table_with_defaults() {
    let c: AdapterConfig = serde_json::from_value(json!({
        "kind": "openai", "model": "m", "base_url": "http://127.0.0.1:8089",
        "choices": ["normal", "nodule"], "max_in_flight": 8
    }))
    .unwrap();
    let AdapterConfig::Openai(c) = &c else {
        panic!("{c:?}")
    };
    assert_eq!(c.temperature, 0.0);
    assert_eq!(c.max_tokens, 256);
    assert!(c.logprobs);
    assert_eq!(c.top_logprobs, 20);
    let adapter = AdapterConfig::Openai(c.clone())
        .build(Path::new("."))
        .unwrap();
    assert_eq!(adapter.workload(), Workload::Io { max_in_flight: 8 });
}

#[test]
fn unknown_keys_are_rejected() {
    let err = serde_json::from_value::<AdapterConfig>(json!({
        "kind": "openai", "model": "m", "base_url": "http://x", "temprature": 1.0
    }))
    .unwrap_err();
    assert!(
        err.to_string().contains("unknown field `temprature`"),
        "{err}"
    );
}

fn build_err(edit: impl FnOnce(&mut OpenAiConfig)) -> String {
    let mut c = OpenAiConfig::new("m", "http://127.0.0.1:1");
    edit(&mut c);
    OpenAiAdapter::new(&c, Path::new("."))
        .unwrap_err()
        .to_string()
}

#[test]
fn invalid_settings_are_named() {
    assert_eq!(
        build_err(|c| c.base_url = None),
        "adapter openai: set `base_url` or `base_urls`"
    );
    assert_eq!(
        build_err(|c| c.base_url = Some("localhost:8089".into())),
        "adapter openai: base URL \"localhost:8089\" must start with http:// or https://"
    );
    assert_eq!(
        build_err(|c| c.temperature = 2.5),
        "adapter openai: `temperature` must be in [0, 2], got 2.5"
    );
    assert_eq!(
        build_err(|c| c.top_logprobs = 21),
        "adapter openai: `top_logprobs` must be in [0, 20], got 21"
    );
    assert_eq!(
        build_err(|c| c.max_in_flight = 0),
        "adapter openai: `max_in_flight` must be at least 1"
    );
    assert_eq!(
        build_err(|c| c.timeout_s = 0.0),
        "adapter openai: `timeout_s` must be in (0, 86400] seconds, got 0"
    );
    assert_eq!(
        build_err(|c| c.timeout_s = f64::INFINITY),
        "adapter openai: `timeout_s` must be in (0, 86400] seconds, got inf"
    );
    assert!(
        build_err(|c| c.answer_regex = Some("(".into()))
            .starts_with("adapter openai: `answer_regex` does not compile")
    );
    assert_eq!(
        build_err(|c| c.api_key_env = Some("CLARITY_TEST_SURELY_UNSET_VAR".into())),
        "adapter openai: environment variable CLARITY_TEST_SURELY_UNSET_VAR (api_key_env) is not set"
    );
}

#[test]
fn identity_has_settings_but_no_endpoint() {
    let mut a = OpenAiConfig::new("m", "http://127.0.0.1:1");
    a.choices = vec!["x".into()];
    let mut b = a.clone();
    b.base_url = None;
    b.base_urls = vec!["http://10.0.0.1:9".into(), "https://example.invalid".into()];
    b.max_in_flight = 32;
    let ia = OpenAiAdapter::new(&a, Path::new(".")).unwrap().identity();
    let ib = OpenAiAdapter::new(&b, Path::new(".")).unwrap().identity();
    assert_eq!(
        ia, ib,
        "endpoints and concurrency do not change the content key"
    );
    assert_eq!(ia.adapter, "openai");
    assert_eq!(ia.model, "m");
    assert_eq!(ia.settings["choices"], json!(["x"]));
    let mut c = a.clone();
    c.temperature = 0.7;
    assert_ne!(
        OpenAiAdapter::new(&c, Path::new(".")).unwrap().identity(),
        ia
    );
    assert!(!serde_json::to_string(&ia).unwrap().contains("127.0.0.1"));
}
