use std::path::{Path, PathBuf};

use clarity_adapters::onnx::{OnnxAdapter, OnnxConfig, ResizeFilter};
use clarity_model::BuiltinModel;
use clarity_onnx_export::{ExportOptions, export_builtin};
use prost::Message;
use tract_onnx::pb;

/// The workspace root.
pub fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// The committed export.
pub fn committed_model() -> PathBuf {
    root().join(clarity_onnx_export::COMMITTED_PATH)
}

/// The config that matches the builtin model's own preprocessing.
pub fn builtin_config(model: impl Into<PathBuf>) -> OnnxConfig {
    let mut c = OnnxConfig::new(model);
    c.labels = clarity_phantom::class_names()
        .iter()
        .map(|s| s.to_string())
        .collect();
    c.resize = ResizeFilter::Area;
    c
}

pub fn build(c: &OnnxConfig, base: &Path) -> Result<OnnxAdapter, String> {
    OnnxAdapter::new(c, base).map_err(|e| e.to_string())
}

/// Writes the builtin model exported without its final Softmax (outputs are logits).
pub fn write_logits_model(dir: &Path) -> PathBuf {
    let path = dir.join("builtin-logits.onnx");
    let model = BuiltinModel::load_embedded().unwrap();
    fs_err::write(
        &path,
        export_builtin(&model, &ExportOptions { softmax: false }),
    )
    .unwrap();
    path
}

/// A one-node model `output = Relu(input)` with the given input type and shape.
pub fn write_relu_model(path: &Path, elem_type: pb::tensor_proto::DataType, dims: &[i64]) {
    use pb::tensor_shape_proto::{Dimension, dimension};
    let info = |name: &str| pb::ValueInfoProto {
        name: name.into(),
        r#type: Some(pb::TypeProto {
            denotation: String::new(),
            value: Some(pb::type_proto::Value::TensorType(pb::type_proto::Tensor {
                elem_type: elem_type as i32,
                shape: Some(pb::TensorShapeProto {
                    dim: dims
                        .iter()
                        .map(|&d| Dimension {
                            denotation: String::new(),
                            value: Some(dimension::Value::DimValue(d)),
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
            name: "relu".into(),
            node: vec![pb::NodeProto {
                name: "relu".into(),
                op_type: "Relu".into(),
                input: vec!["input".into()],
                output: vec!["output".into()],
                ..Default::default()
            }],
            input: vec![info("input")],
            output: vec![info("output")],
            ..Default::default()
        }),
        ..Default::default()
    };
    fs_err::write(path, model.encode_to_vec()).unwrap();
}
