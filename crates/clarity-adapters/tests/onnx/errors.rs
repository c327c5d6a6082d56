//! Build-time checks: each misconfiguration is a clear error naming the file and the key.

use clarity_adapters::onnx::{ChannelMode, Layout, SoftmaxMode};
use tract_onnx::pb::tensor_proto::DataType;

use crate::common::{build, builtin_config, committed_model, write_logits_model, write_relu_model};

fn err(c: &clarity_adapters::onnx::OnnxConfig, base: &std::path::Path) -> String {
    let e = build(c, base).unwrap_err();
    eprintln!("{e}");
    e
}

#[test]
fn missing_model_file_names_the_path() {
    let dir = tempfile::tempdir().unwrap();
    let e = err(&builtin_config("nope/model.onnx"), dir.path());
    assert!(
        e.starts_with("adapter onnx: model: failed to open file `"),
        "{e}"
    );
    assert!(
        e.ends_with("nope/model.onnx`: No such file or directory (os error 2)"),
        "{e}"
    );
}

#[test]
fn unreadable_model_is_reported() {
    let dir = tempfile::tempdir().unwrap();
    fs_err::write(dir.path().join("junk.onnx"), b"not a protobuf \xff\xff").unwrap();
    let e = err(&builtin_config("junk.onnx"), dir.path());
    assert!(e.contains("junk.onnx`: not a readable ONNX model"), "{e}");
}

#[test]
fn labels_count_must_match_the_output() {
    let dir = tempfile::tempdir().unwrap();
    let base = dir.path();
    fs_err::write(base.join("labels.txt"), "normal\nnodule\nopacity\nother\n").unwrap();
    let mut c = builtin_config(committed_model());
    c.labels.clear();
    c.labels_file = Some("labels.txt".into());
    let e = err(&c, base);
    assert!(
        e.starts_with("adapter onnx: labels_file `") && e.contains("labels.txt` has 4 labels"),
        "{e}"
    );
    assert!(
        e.contains("but output `probabilities` of model `")
            && e.ends_with("builtin.onnx` has 5 values (shape [1, 5])"),
        "{e}"
    );
    let mut c = builtin_config(committed_model());
    c.labels.pop();
    let e = err(&c, base);
    assert!(
        e.starts_with("adapter onnx: labels has 4 labels but output `probabilities`"),
        "{e}"
    );
}

#[test]
fn labels_file_problems() {
    let dir = tempfile::tempdir().unwrap();
    let base = dir.path();
    let mut c = builtin_config(committed_model());
    c.labels.clear();
    let e = err(&c, base);
    assert!(
        e.contains("set `labels_file` (one label per line) or `labels`"),
        "{e}"
    );
    c.labels_file = Some("missing.txt".into());
    let e = err(&c, base);
    assert!(
        e.starts_with("adapter onnx: labels_file: ") && e.contains("missing.txt"),
        "{e}"
    );
    fs_err::write(base.join("gap.txt"), "a\n\nb\nc\nd\ne\n").unwrap();
    c.labels_file = Some("gap.txt".into());
    let e = err(&c, base);
    assert!(e.contains("gap.txt` line 2: empty label"), "{e}");
    // Windows line endings and a trailing blank line are fine.
    fs_err::write(base.join("crlf.txt"), "a\r\nb\r\nc\r\nd\r\ne\r\n\r\n").unwrap();
    c.labels_file = Some("crlf.txt".into());
    let a = build(&c, base).unwrap();
    assert_eq!(a.labels(), ["a", "b", "c", "d", "e"]);
    c.labels = vec!["x".into()];
    assert!(err(&c, base).contains("set `labels` or `labels_file`, not both"));
    let mut c = builtin_config(committed_model());
    c.labels[3] = "normal".into();
    let e = err(&c, base);
    assert!(
        e.contains("labels: `normal` is label 1 and label 4; labels must be unique"),
        "{e}"
    );
}

#[test]
fn input_rank_and_type_are_checked() {
    let dir = tempfile::tempdir().unwrap();
    let base = dir.path();
    write_relu_model(&base.join("rank2.onnx"), DataType::Float, &[1, 5]);
    let e = err(&builtin_config("rank2.onnx"), base);
    assert!(
        e.contains("rank2.onnx`: input `input` has rank 2 (shape [1, 5]); the onnx adapter feeds one image as a rank-4 tensor"),
        "{e}"
    );
    write_relu_model(&base.join("u8.onnx"), DataType::Uint8, &[1, 1, 4, 4]);
    let e = err(&builtin_config("u8.onnx"), base);
    assert!(
        e.contains("input `input` is U8; the onnx adapter feeds f32"),
        "{e}"
    );
}

#[test]
fn channels_and_size_must_agree_with_the_model() {
    let base = std::path::Path::new(".");
    let mut c = builtin_config(committed_model());
    c.channels = Some(ChannelMode::Rgb);
    let e = err(&c, base);
    assert!(
        e.contains("channels = \"rgb\" gives 3 channel(s) but input `input` has 1 at axis 1 (layout = \"nchw\", shape [N, 1, 64, 64])"),
        "{e}"
    );
    let mut c = builtin_config(committed_model());
    c.layout = Layout::Nhwc;
    let e = err(&c, base);
    assert!(
        e.contains("has 64 channels at axis 3 (layout = \"nhwc\""),
        "{e}"
    );
    let mut c = builtin_config(committed_model());
    c.input_size = Some([128, 128]);
    let e = err(&c, base);
    assert!(
        e.contains("input_size = [128, 128] but input `input` has shape [N, 1, 64, 64]"),
        "{e}"
    );
    c.input_size = Some([0, 64]);
    assert!(err(&c, base).contains("input_size must be [width, height] with both >= 1"));
    // Matching explicit settings are accepted and resolved.
    c.input_size = Some([64, 64]);
    c.channels = Some(ChannelMode::Gray);
    let a = build(&c, base).unwrap();
    assert_eq!(a.preprocessing().shape(), [1, 1, 64, 64]);
}

#[test]
fn mean_and_std_are_checked() {
    let base = std::path::Path::new(".");
    let mut c = builtin_config(committed_model());
    c.mean = vec![0.5, 0.5, 0.5];
    let e = err(&c, base);
    assert!(
        e.contains("mean must have 1 value with channels = \"gray\", got 3"),
        "{e}"
    );
    let mut c = builtin_config(committed_model());
    c.std = vec![0.0];
    assert!(err(&c, base).contains("std values must be > 0, got 0"));
}

#[test]
fn softmax_false_on_logits_fails_per_run() {
    let dir = tempfile::tempdir().unwrap();
    let path = write_logits_model(dir.path());
    let mut c = builtin_config(&path);
    c.softmax = SoftmaxMode::Never;
    let a = build(&c, dir.path()).unwrap();
    let case = &clarity_phantom::cohort(1, 64, clarity_image::BitDepth::Eight, 1).unwrap()[0];
    let e = a.predict(&case.image).unwrap_err().to_string();
    assert!(
        e.starts_with(
            "onnx builtin-logits.onnx: softmax = false (output = \"probabilities\") but the outputs are not probabilities"
        ) && e.contains("set output = \"logits\""),
        "{e}"
    );
}
