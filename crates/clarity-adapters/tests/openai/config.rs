use std::path::Path;

use clarity_adapters::openai::{Constrain, HeaderSource, ImageFormat, OpenAiAdapter, OpenAiConfig};
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

#[test]
fn new_settings_parse_from_toml_with_clear_errors() {
    let toml = r#"
kind = "openai"
model = "m"
base_url = "http://127.0.0.1:8000"
choices = ["normal", "nodule_left", "nodule_right"]
constrain = "guided_choice"
max_completion_tokens = 16
requests_per_minute = 120
image_max_side = 512
image_format = "jpeg"
jpeg_quality = 85
preflight = false
headers = { "X-Tenant" = "radiology", "X-Key" = { env = "PATH" } }
[extra_body]
chat_template_kwargs = { enable_thinking = false }
top_k = 1
"#;
    let c: AdapterConfig = toml::from_str(toml).unwrap();
    let AdapterConfig::Openai(c) = &c else {
        panic!("{c:?}")
    };
    assert_eq!(c.image_format, Some(ImageFormat::Jpeg));
    assert_eq!(c.constrain, Some(Constrain::GuidedChoice));
    assert!(!c.preflight);
    assert_eq!(c.headers["X-Key"], HeaderSource::Env { env: "PATH".into() });
    assert_eq!(c.extra_body["top_k"], json!(1));

    let err = toml::from_str::<AdapterConfig>(
        "kind = \"openai\"\nmodel = \"m\"\nimage_format = \"webp\"\n",
    )
    .unwrap_err()
    .to_string();
    // (The engine's config loader points at the key holding the quoted value.)
    assert!(
        err.contains("unknown variant `webp`, expected `png` or `jpeg`"),
        "{err}"
    );
    let err = toml::from_str::<AdapterConfig>(
        "kind = \"openai\"\nmodel = \"m\"\nconstrain = \"logit_bias\"\n",
    )
    .unwrap_err()
    .to_string();
    assert!(err.contains("unknown variant `logit_bias`"), "{err}");
}

#[test]
fn invalid_new_settings_are_named() {
    assert_eq!(
        build_err(|c| c.requests_per_minute = Some(0.0)),
        "adapter openai: `requests_per_minute` must be in (0, 1000000], got 0"
    );
    assert_eq!(
        build_err(|c| c.image_max_side = Some(4)),
        "adapter openai: `image_max_side` must be at least 8 pixels, got 4"
    );
    assert_eq!(
        build_err(|c| c.jpeg_quality = Some(80)),
        "adapter openai: `jpeg_quality` needs `image_format = \"jpeg\"` (PNG is lossless)"
    );
    assert_eq!(
        build_err(|c| {
            c.image_format = Some(ImageFormat::Jpeg);
            c.jpeg_quality = Some(0);
        }),
        "adapter openai: `jpeg_quality` must be in [1, 100], got 0"
    );
    assert_eq!(
        build_err(|c| c.max_completion_tokens = Some(0)),
        "adapter openai: `max_completion_tokens` must be at least 1"
    );
    assert_eq!(
        build_err(|c| c.constrain = Some(Constrain::GuidedChoice)),
        "adapter openai: `constrain = \"guided_choice\"` needs `choices` (the answers to allow)"
    );
    assert_eq!(
        build_err(|c| {
            c.extra_body.insert("temperature".into(), json!(1));
        }),
        "adapter openai: `extra_body.temperature` would replace a field the adapter sets itself; use the adapter's own setting `temperature`"
    );
    assert_eq!(
        build_err(|c| {
            c.choices = vec!["a".into()];
            c.constrain = Some(Constrain::GuidedChoice);
            c.extra_body.insert("guided_choice".into(), json!(["b"]));
        }),
        "adapter openai: `extra_body.guided_choice` conflicts with `constrain = \"guided_choice\"` (which sends `choices`); keep one"
    );
    assert_eq!(
        build_err(|c| {
            c.headers.insert(
                "X-Key".into(),
                HeaderSource::Env {
                    env: "CLARITY_TEST_SURELY_UNSET_VAR".into(),
                },
            );
        }),
        "adapter openai: environment variable CLARITY_TEST_SURELY_UNSET_VAR (headers.X-Key) is not set"
    );
    assert_eq!(
        build_err(|c| {
            c.headers
                .insert("Bad Header".into(), HeaderSource::Literal("x".into()));
        }),
        "adapter openai: `headers.Bad Header`: not a valid HTTP header name"
    );
    assert_eq!(
        build_err(|c| {
            c.headers
                .insert("Content-Type".into(), HeaderSource::Literal("x".into()));
        }),
        "adapter openai: `headers.Content-Type` is set by the adapter and cannot be overridden"
    );
    assert_eq!(
        build_err(|c| {
            c.headers
                .insert("X-A".into(), HeaderSource::Literal("line\nbreak".into()));
        }),
        "adapter openai: `headers.X-A`: the value is not a valid HTTP header value (control characters or non-ASCII)"
    );
}

#[test]
fn identity_follows_what_changes_answers_only() {
    let base = OpenAiConfig::new("m", "http://127.0.0.1:1");
    let id = |edit: &dyn Fn(&mut OpenAiConfig)| {
        let mut c = base.clone();
        c.choices = vec!["a".into(), "b".into()];
        edit(&mut c);
        OpenAiAdapter::new(&c, Path::new(".")).unwrap().identity()
    };
    let plain = id(&|_| {});
    assert_eq!(plain.version, "openai-chat-v2");
    assert_eq!(plain.settings["image"], json!("png rgb8"));
    // Not in the identity: rate limits, the pre-flight switch, headers read from the env.
    for same in [
        id(&|c| c.requests_per_minute = Some(30.0)),
        id(&|c| c.preflight = false),
        id(&|c| {
            c.headers
                .insert("X-Key".into(), HeaderSource::Env { env: "PATH".into() });
        }),
    ] {
        assert_eq!(same, plain);
    }
    // In it: everything that can change the answer.
    let jpeg = id(&|c| {
        c.image_format = Some(ImageFormat::Jpeg);
        c.jpeg_quality = Some(70);
        c.image_max_side = Some(256);
    });
    assert_eq!(
        jpeg.settings["image"],
        json!("jpeg q70 rgb8, max side 256 (triangle)")
    );
    let changed = [
        jpeg,
        id(&|c| c.image_max_side = Some(256)),
        id(&|c| c.max_completion_tokens = Some(9)),
        id(&|c| c.constrain = Some(Constrain::GuidedChoice)),
        id(&|c| {
            c.extra_body.insert("top_k".into(), json!(1));
        }),
        id(&|c| {
            c.headers
                .insert("X-Variant".into(), HeaderSource::Literal("b".into()));
        }),
    ];
    for (i, other) in changed.iter().enumerate() {
        assert_ne!(*other, plain, "{i}");
        for later in &changed[i + 1..] {
            assert_ne!(other, later);
        }
    }
    let path = std::env::var("PATH").unwrap();
    let with_env = id(&|c| {
        c.headers
            .insert("X-Key".into(), HeaderSource::Env { env: "PATH".into() });
    });
    assert!(!serde_json::to_string(&with_env).unwrap().contains(&path));
}
