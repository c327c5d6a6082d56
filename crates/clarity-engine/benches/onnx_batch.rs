//! Batched ONNX inference (`[adapter] kind = "onnx"`, `batch = B`): the builtin model's logits
//! export (tract, one thread per call) on 64×64 phantoms.
//!
//! - `onnx_batch/predict_B`: 64 images through `OnnxAdapter::predict_batch`, B per call, one
//!   thread: what a call of B images costs per image.
//! - `onnx_batch/sweep_B`, `dense_sweep_B`: a whole sweep with each model (16 cases × 12 cells
//!   = 192 runs, jobs = 2, no cache): runs gathered by the adapter's batcher, perturbation,
//!   journal and artifacts included.
//! - `onnx_batch/dense_predict_B`: the same 64 images through a model whose cost is one large
//!   dense layer (Flatten → Gemm 4096×4096 → Relu → Gemm 4096×5, 64 MB of weights, written here
//!   with tract's protobuf types): one image at a time streams every weight from memory per
//!   image; a call of B images streams them once for B — the case batching is for.
//!
//! `cargo bench -p clarity-engine --bench onnx_batch`; numbers in docs/performance.md.

use std::path::Path;

use clarity_adapters::onnx::{OnnxAdapter, OnnxConfig, OutputKind, ResizeFilter};
use clarity_engine::{ExecOptions, parse_config, prepare, run_sweep};
use clarity_image::{BitDepth, Image};
use clarity_model::BuiltinModel;
use clarity_onnx_export::{ExportOptions, export_builtin};
use criterion::{BatchSize, Criterion, Throughput, criterion_group, criterion_main};
use prost::Message;
use tract_onnx::pb;

const LABELS: [&str; 5] = [
    "normal",
    "nodule_right",
    "nodule_left",
    "opacity_right",
    "opacity_left",
];

fn adapter(model: &Path, batch: usize) -> OnnxAdapter {
    let mut c = OnnxConfig::new(model);
    c.labels = LABELS.iter().map(|s| s.to_string()).collect();
    c.resize = ResizeFilter::Area;
    c.output = Some(OutputKind::Logits);
    c.batch = batch;
    OnnxAdapter::new(&c, Path::new(".")).unwrap()
}

/// Flatten → Gemm(4096×4096) → Relu → Gemm(4096×5): `logits` `N×5`, weights from a fixed LCG.
fn write_dense_model(path: &Path) {
    use pb::tensor_proto::DataType;
    use pb::tensor_shape_proto::{Dimension, dimension};
    let mut state = 0x2545_F491_4F6C_DD1Du64;
    let mut weights = |n: usize, scale: f32| -> Vec<u8> {
        (0..n)
            .flat_map(|_| {
                state = state
                    .wrapping_mul(6_364_136_223_846_793_005)
                    .wrapping_add(1_442_695_040_888_963_407);
                let u = (state >> 40) as f32 / (1u64 << 24) as f32;
                ((u * 2.0 - 1.0) * scale).to_le_bytes()
            })
            .collect()
    };
    let tensor = |name: &str, dims: &[i64], raw_data: Vec<u8>| pb::TensorProto {
        name: name.into(),
        dims: dims.to_vec(),
        data_type: DataType::Float as i32,
        raw_data,
        ..Default::default()
    };
    let hidden = 4096i64;
    let initializer = vec![
        tensor("w1", &[hidden, 4096], weights(4096 * 4096, 0.02)),
        tensor("b1", &[hidden], weights(4096, 0.1)),
        tensor("w2", &[5, hidden], weights(5 * 4096, 0.05)),
        tensor("b2", &[5], weights(5, 0.1)),
    ];
    let trans_b = pb::AttributeProto {
        name: "transB".into(),
        r#type: pb::attribute_proto::AttributeType::Int as i32,
        i: 1,
        ..Default::default()
    };
    let node = |op: &str, inputs: &[&str], output: &str, attribute: Vec<pb::AttributeProto>| {
        pb::NodeProto {
            name: output.into(),
            op_type: op.into(),
            input: inputs.iter().map(|s| s.to_string()).collect(),
            output: vec![output.into()],
            attribute,
            ..Default::default()
        }
    };
    let info = |name: &str, dims: &[Option<i64>]| pb::ValueInfoProto {
        name: name.into(),
        r#type: Some(pb::TypeProto {
            denotation: String::new(),
            value: Some(pb::type_proto::Value::TensorType(pb::type_proto::Tensor {
                elem_type: DataType::Float as i32,
                shape: Some(pb::TensorShapeProto {
                    dim: dims
                        .iter()
                        .map(|d| Dimension {
                            denotation: String::new(),
                            value: Some(match d {
                                Some(v) => dimension::Value::DimValue(*v),
                                None => dimension::Value::DimParam("N".into()),
                            }),
                        })
                        .collect(),
                }),
            })),
        }),
        doc_string: String::new(),
    };
    let model = pb::ModelProto {
        ir_version: 8,
        opset_import: vec![pb::OperatorSetIdProto {
            domain: String::new(),
            version: 13,
        }],
        graph: Some(pb::GraphProto {
            name: "dense".into(),
            node: vec![
                node("Flatten", &["input"], "flat", vec![]),
                node("Gemm", &["flat", "w1", "b1"], "h", vec![trans_b.clone()]),
                node("Relu", &["h"], "hr", vec![]),
                node("Gemm", &["hr", "w2", "b2"], "logits", vec![trans_b]),
            ],
            initializer,
            input: vec![info("input", &[None, Some(1), Some(64), Some(64)])],
            output: vec![info("logits", &[None, Some(5)])],
            ..Default::default()
        }),
        ..Default::default()
    };
    std::fs::write(path, model.encode_to_vec()).unwrap();
}

fn sweep_config(model: &str, batch: usize) -> String {
    format!(
        r#"
seeds = [0]
[cohort]
kind = "builtin"
n = 16
size = 64
[adapter]
kind = "onnx"
model = "{model}"
labels = {labels:?}
resize = "area"
output = "logits"
batch = {batch}
[axes]
"gaussian_noise.sigma" = [0.05, 0.1, 0.2]
"gaussian_blur.sigma" = [1, 4]
"#,
        labels = LABELS
    )
}

fn bench(c: &mut Criterion) {
    let dir = tempfile::tempdir().unwrap();
    let model_path = dir.path().join("logits.onnx");
    let model = BuiltinModel::load_embedded().unwrap();
    std::fs::write(
        &model_path,
        export_builtin(&model, &ExportOptions { softmax: false }),
    )
    .unwrap();
    let images: Vec<Image> = clarity_phantom::cohort(64, 64, BitDepth::Eight, 5)
        .unwrap()
        .into_iter()
        .map(|c| c.image)
        .collect();
    let refs: Vec<&Image> = images.iter().collect();

    let mut g = c.benchmark_group("onnx_batch");
    g.throughput(Throughput::Elements(images.len() as u64));
    g.sample_size(10);
    for b in [1usize, 4, 8, 16, 32] {
        let a = adapter(&model_path, b);
        g.bench_function(format!("predict_{b}"), |bench| {
            bench.iter(|| a.predict_batch(&refs))
        });
    }
    g.finish();

    let dense = dir.path().join("dense.onnx");
    write_dense_model(&dense);
    let mut g = c.benchmark_group("onnx_batch");
    g.throughput(Throughput::Elements(images.len() as u64));
    g.sample_size(10);
    for b in [1usize, 4, 8, 16] {
        let a = adapter(&dense, b);
        g.bench_function(format!("dense_predict_{b}"), |bench| {
            bench.iter(|| a.predict_batch(&refs))
        });
    }
    g.finish();

    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    let mut g = c.benchmark_group("onnx_batch");
    g.throughput(Throughput::Elements(16 * 12));
    g.sample_size(10);
    for (name, model, b) in [
        ("sweep_1", "logits.onnx", 1usize),
        ("sweep_8", "logits.onnx", 8),
        ("dense_sweep_1", "dense.onnx", 1),
        ("dense_sweep_8", "dense.onnx", 8),
    ] {
        let path = dir.path().join(format!("{name}.toml"));
        let text = sweep_config(model, b);
        std::fs::write(&path, &text).unwrap();
        let config = parse_config(&text, &path).unwrap();
        let prepared = prepare(config).unwrap();
        g.bench_function(name, |bench| {
            bench.iter_batched(
                || tempfile::tempdir().unwrap(),
                |tmp| {
                    let opts = ExecOptions {
                        jobs: 2,
                        ..Default::default()
                    };
                    let out = rt
                        .block_on(run_sweep(&prepared, &tmp.path().join("out"), &opts))
                        .unwrap();
                    assert_eq!(out.stats.executed, 16 * 12);
                    tmp
                },
                BatchSize::PerIteration,
            )
        });
    }
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
