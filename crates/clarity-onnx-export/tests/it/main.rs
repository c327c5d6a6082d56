//! The committed export is what the exporter writes today, and tract reads it.

use std::path::Path;

use clarity_model::BuiltinModel;
use clarity_onnx_export::{COMMITTED_PATH, ExportOptions, export_builtin};
use tract_onnx::prelude::*;

fn committed() -> Vec<u8> {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../..")
        .join(COMMITTED_PATH);
    fs_err::read(path).unwrap()
}

#[test]
fn reexport_reproduces_the_committed_bytes() {
    let model = BuiltinModel::load_embedded().unwrap();
    let bytes = export_builtin(&model, &ExportOptions::default());
    assert!(
        bytes == committed(),
        "{COMMITTED_PATH} is stale: regenerate it with \
         `cargo run -p clarity-onnx-export --bin clarity-export-onnx`"
    );
}

#[test]
fn tract_computes_the_builtin_logits() {
    let model = BuiltinModel::load_embedded().unwrap();
    let bytes = export_builtin(&model, &ExportOptions { softmax: false });
    let plan = tract_onnx::onnx()
        .model_for_read(&mut bytes.as_slice())
        .unwrap()
        .into_optimized()
        .unwrap()
        .into_runnable()
        .unwrap();
    // A synthetic gray ramp: the graph standardises it, like clarity_model::preprocess.
    let side = clarity_model::INPUT_SIZE;
    let pixels: Vec<u8> = (0..side * side).map(|i| ((i * 7) % 256) as u8).collect();
    let image = clarity_image_from(side, &pixels);
    let input = Tensor::from_shape(
        &[1, 1, side, side],
        &pixels
            .iter()
            .map(|&p| f32::from(p) / 255.0)
            .collect::<Vec<_>>(),
    )
    .unwrap();
    let out = plan.run(tvec!(input.into())).unwrap();
    let got: Vec<f32> = out[0]
        .to_plain_array_view::<f32>()
        .unwrap()
        .iter()
        .copied()
        .collect();
    let want = model.logits(&image);
    assert_eq!(got.len(), want.len());
    for (g, w) in got.iter().zip(&want) {
        assert!((g - w).abs() < 1e-3, "onnx {got:?} vs builtin {want:?}");
    }
}

fn clarity_image_from(side: usize, pixels: &[u8]) -> clarity_image::Image {
    clarity_image::Image::from_u8(
        side as u32,
        side as u32,
        clarity_image::Channels::Gray,
        pixels.to_vec(),
    )
    .unwrap()
}
