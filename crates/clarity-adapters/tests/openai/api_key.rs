//! The API key comes from the environment variable named in the config and is never written
//! anywhere. The workspace forbids `unsafe` (so no `set_var`): the test re-runs this test
//! binary as a child process with the variable set.

use std::sync::atomic::Ordering;

use clarity_adapters::Adapter;
use clarity_adapters::openai::{HeaderSource, OpenAiAdapter};
use serde_json::{Value, json};

use crate::common::{config, gray, input};

const VAR: &str = "CLARITY_OPENAI_TEST_KEY";
const KEY: &str = "sk-test-4f1c9a-secret";
const HEADER_VAR: &str = "CLARITY_OPENAI_TEST_HEADER";
const HEADER_SECRET: &str = "hdr-77e1-secret";

#[test]
fn api_key_is_sent_and_never_recorded() {
    let out = std::process::Command::new(std::env::current_exe().unwrap())
        .args([
            "--exact",
            "api_key::child_with_key",
            "--nocapture",
            "--include-ignored",
        ])
        .env(VAR, KEY)
        .env(HEADER_VAR, HEADER_SECRET)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(stdout.contains("1 passed"), "{stdout}");
}

#[tokio::test]
#[ignore = "run by api_key_is_sent_and_never_recorded with the key in its environment"]
async fn child_with_key() {
    assert_eq!(std::env::var(VAR).unwrap(), KEY);
    let body = json!({"choices": [{"message": {"content": "yes"}, "finish_reason": "stop"}]});
    let (addr, script) = crate::faults::serve_script(vec![super::faults::ok_reply(body)]).await;
    let mut c = config(addr);
    c.api_key_env = Some(VAR.into());
    c.headers.insert(
        "X-Api-Key".into(),
        HeaderSource::Env {
            env: HEADER_VAR.into(),
        },
    );
    c.headers
        .insert("X-Tenant".into(), HeaderSource::Literal("radiology".into()));
    let adapter = OpenAiAdapter::new(&c, std::path::Path::new(".")).unwrap();
    let obs = adapter.run(input(gray(1), 1)).await.unwrap();
    assert_eq!(script.calls.load(Ordering::SeqCst), 1);
    let headers = script.last_headers.lock().unwrap().clone().unwrap();
    assert_eq!(headers["authorization"], format!("Bearer {KEY}").as_str());
    assert_eq!(headers["x-api-key"], HEADER_SECRET);
    assert_eq!(headers["x-tenant"], "radiology");
    let recorded = [
        serde_json::to_string(&adapter.identity()).unwrap(),
        serde_json::to_string(&obs).unwrap(),
        serde_json::to_string(&c).unwrap(),
        format!("{adapter:?}"),
    ];
    for text in recorded {
        assert!(!text.contains(KEY), "key leaked into {text}");
        assert!(!text.contains(HEADER_SECRET), "header leaked into {text}");
    }
    let _: Value = serde_json::to_value(&obs).unwrap();
}
