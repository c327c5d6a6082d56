//! `examples/onnx.toml` builds and runs; identity covers the file bytes and the settings.

use std::sync::Arc;

use clarity_adapters::onnx::ResizeFilter;
use clarity_adapters::{Adapter, AdapterConfig, Workload};

use crate::common::{build, builtin_config, committed_model, root};

#[derive(serde::Deserialize)]
struct Sweep {
    adapter: AdapterConfig,
}

#[test]
fn shipped_example_builds_and_answers() {
    let path = root().join("examples/onnx.toml");
    let text = fs_err::read_to_string(&path).unwrap();
    // Only the adapter table matters here; the engine test validates the whole file.
    let value: toml::Table = toml::from_str(&text).unwrap();
    let sweep: Sweep = toml::Value::Table(value).try_into().unwrap();
    let AdapterConfig::Onnx(c) = &sweep.adapter else {
        panic!("examples/onnx.toml: adapter is not onnx");
    };
    assert_eq!(c.resize, ResizeFilter::Area);
    let adapter: Arc<dyn Adapter> = sweep.adapter.build(&root().join("examples")).unwrap();
    assert_eq!(adapter.workload(), Workload::Cpu);
    let id = adapter.identity();
    assert_eq!(id.adapter, "onnx");
    assert_eq!(id.model, "builtin.onnx");
    let bytes = fs_err::read(committed_model()).unwrap();
    assert_eq!(id.version, blake3::hash(&bytes).to_hex().to_string());
}

#[test]
fn identity_follows_bytes_and_settings_not_the_path() {
    let dir = tempfile::tempdir().unwrap();
    let copy = dir.path().join("builtin.onnx");
    fs_err::copy(committed_model(), &copy).unwrap();
    let base = std::path::Path::new(".");
    let a = build(&builtin_config(committed_model()), base)
        .unwrap()
        .identity();
    let b = build(&builtin_config(&copy), base).unwrap().identity();
    assert_eq!(a, b);
    let mut c = builtin_config(&copy);
    c.resize = ResizeFilter::Bilinear;
    let d = build(&c, base).unwrap().identity();
    assert_eq!(d.version, a.version);
    assert_ne!(d.settings, a.settings);
    assert_eq!(a.settings["input_size"], serde_json::json!([64, 64]));
    assert_eq!(a.settings["channels"], "gray");
    assert_eq!(a.settings["softmax"], "auto");
    // Other bytes (the same network without its Softmax), other version.
    let logits = crate::common::write_logits_model(dir.path());
    let e = build(&builtin_config(&logits), base).unwrap().identity();
    assert_ne!(e.version, a.version);
    assert_eq!(e.model, "builtin-logits.onnx");
}
