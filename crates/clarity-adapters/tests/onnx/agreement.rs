//! The committed ONNX export run through the `onnx` adapter gives the builtin model's labels
//! and probabilities (within 1e-4) on clean and perturbed phantoms.

use std::sync::Arc;

use clarity_adapters::builtin::{BuiltinAdapter, BuiltinConfig};
use clarity_adapters::onnx::{OnnxAdapter, SoftmaxMode};
use clarity_adapters::{Adapter, RunInput};
use clarity_core::Observation;
use clarity_image::{BitDepth, Channels, Image};
use clarity_perturb::{ParamValue, Params, Recipe, Step};

use crate::common::{build, builtin_config, committed_model, write_logits_model};

const TOLERANCE: f64 = 1e-4;

fn step(name: &str, params: &[(&str, f64)]) -> Step {
    let params: Params = params
        .iter()
        .map(|&(k, v)| (k.to_string(), ParamValue::Num(v)))
        .collect();
    Step {
        name: name.into(),
        params,
    }
}

/// Clean, and every perturbation family the sweeps use, at a noticeable strength.
fn recipes() -> Vec<(&'static str, Recipe)> {
    let r = |steps: Vec<Step>| Recipe { steps };
    vec![
        ("clean", r(vec![])),
        ("blur", r(vec![step("gaussian_blur", &[("sigma", 2.0)])])),
        ("noise", r(vec![step("gaussian_noise", &[("sigma", 0.1)])])),
        ("contrast", r(vec![step("contrast", &[("factor", 0.5)])])),
        ("jpeg", r(vec![step("jpeg", &[("quality", 20.0)])])),
        (
            "blur+noise",
            r(vec![
                step("gaussian_blur", &[("sigma", 4.0)]),
                step("gaussian_noise", &[("sigma", 0.2)]),
            ]),
        ),
    ]
}

fn to_rgb(image: &Image) -> Image {
    image.to_rgb8().0
}

/// Runs both adapters and returns the largest |Δp| (labels must match).
async fn compare(onnx: &OnnxAdapter, images: &[(String, Image)]) -> f64 {
    let builtin = BuiltinAdapter::new(&BuiltinConfig {
        temperature: 0.0,
        saliency: false,
    })
    .unwrap();
    let mut worst: f64 = 0.0;
    for (at, image) in images {
        let input = RunInput {
            key: "k".into(),
            case_id: at.clone(),
            image: Arc::new(image.clone()),
            image_path: None,
            prompt: None,
            seed: 0,
            perturbations: vec![],
            work_dir: std::env::temp_dir(),
        };
        let a: Observation = onnx.run(input.clone()).await.unwrap();
        let b = builtin.run(input).await.unwrap();
        assert_eq!(a.answer, b.answer, "{at}");
        assert_eq!(a.probabilities.len(), b.probabilities.len(), "{at}");
        for (label, p) in &b.probabilities {
            let d = (a.probabilities[label] - p).abs();
            assert!(
                d < TOLERANCE,
                "{at} {label}: onnx {} vs builtin {p}",
                a.probabilities[label]
            );
            worst = worst.max(d);
        }
        let dc = (a.confidence.unwrap() - b.confidence.unwrap()).abs();
        let dh = (a.entropy.unwrap() - b.entropy.unwrap()).abs();
        assert!(
            dc < TOLERANCE && dh < 1e-3,
            "{at}: Δconfidence {dc}, Δentropy {dh}"
        );
    }
    worst
}

/// Phantoms of `size` (8- and 16-bit), each clean and perturbed.
fn phantom_images(n: usize, size: u32, seed: u64) -> Vec<(String, Image)> {
    let mut out = Vec::new();
    for depth in [BitDepth::Eight, BitDepth::Sixteen] {
        for case in clarity_phantom::cohort(n, size, depth, seed).unwrap() {
            for (name, recipe) in recipes() {
                let img = recipe.apply(&case.image, 7, &case.id).unwrap();
                out.push((format!("{} {depth:?} {name}", case.id), img));
            }
        }
    }
    out
}

#[tokio::test]
async fn committed_export_matches_builtin_at_64() {
    let onnx = build(
        &builtin_config(committed_model()),
        std::path::Path::new("."),
    )
    .unwrap();
    let images = phantom_images(10, 64, 11);
    let worst = compare(&onnx, &images).await;
    eprintln!(
        "onnx vs builtin, {} images at 64×64: max |Δp| = {worst:.3e}",
        images.len()
    );
    // The labels cover more than one class (the comparison is not vacuous).
    let answers: std::collections::BTreeSet<_> = {
        let mut s = std::collections::BTreeSet::new();
        for (_, img) in &images {
            s.insert(onnx.predict(img).unwrap().answer.unwrap());
        }
        s
    };
    assert!(answers.len() >= 3, "{answers:?}");
}

#[tokio::test]
async fn committed_export_matches_builtin_with_area_resize_and_rgb() {
    // 128 → 64 is a whole factor, where the box filter is the builtin's area average.
    let onnx = build(
        &builtin_config(committed_model()),
        std::path::Path::new("."),
    )
    .unwrap();
    let mut images = phantom_images(3, 128, 12);
    // RGB at the boundary: both convert with BT.601 luma.
    let rgb: Vec<_> = images
        .iter()
        .take(6)
        .map(|(at, img)| (format!("{at} rgb"), to_rgb(img)))
        .collect();
    images.extend(rgb);
    assert!(images.iter().any(|(_, i)| i.channels() == Channels::Rgb));
    let worst = compare(&onnx, &images).await;
    eprintln!(
        "onnx vs builtin, {} images at 128×128 (area resize, gray and RGB): max |Δp| = {worst:.3e}",
        images.len()
    );
}

#[tokio::test]
async fn logits_export_with_softmax_auto_and_forced_matches_builtin() {
    let dir = tempfile::tempdir().unwrap();
    let path = write_logits_model(dir.path());
    let images = phantom_images(3, 64, 13);
    for mode in [SoftmaxMode::Auto, SoftmaxMode::Always] {
        let mut c = builtin_config(&path);
        c.softmax = mode;
        let onnx = build(&c, dir.path()).unwrap();
        let worst = compare(&onnx, &images).await;
        let obs = onnx.predict(&images[0].1).unwrap();
        assert_eq!(obs.metadata["softmax_applied"], true);
        eprintln!("logits export, softmax {mode:?}: max |Δp| = {worst:.3e}");
    }
}
