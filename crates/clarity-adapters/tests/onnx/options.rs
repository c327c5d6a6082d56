//! The output-kind and fit options on real models: multi-label answers from sigmoid scores,
//! the auto guess warned about, letterbox/centre-crop changing what the model sees, and the
//! identity naming each non-default option (so the cache never mixes them).

use clarity_adapters::Adapter;
use clarity_adapters::onnx::{Fit, OutputKind};

use crate::common::{build, builtin_config, committed_model, write_logits_model};

fn case_image() -> clarity_image::Image {
    clarity_phantom::cohort(2, 64, clarity_image::BitDepth::Eight, 3).unwrap()[1]
        .image
        .clone()
}

#[test]
fn multilabel_answers_join_labels_over_threshold_or_say_none() {
    let dir = tempfile::tempdir().unwrap();
    let path = write_logits_model(dir.path());
    let mut c = builtin_config(&path);
    // `multilabel` takes per-label probabilities: logits are refused with the key to set.
    c.output = Some(OutputKind::Multilabel);
    let e = build(&c, dir.path())
        .unwrap()
        .predict(&case_image())
        .unwrap_err()
        .to_string();
    assert!(e.contains("set output = \"sigmoid\""), "{e}");
    c.output = Some(OutputKind::Sigmoid);
    let a = build(&c, dir.path()).unwrap();
    let o = a.predict(&case_image()).unwrap();
    let answer = o.answer.clone().unwrap();
    // Each probability is a sigmoid of one logit: in (0, 1), not a distribution.
    assert!(o.probabilities.values().all(|p| *p > 0.0 && *p < 1.0));
    let over: Vec<&String> = c
        .labels
        .iter()
        .filter(|l| o.probabilities[*l] >= 0.5)
        .collect();
    let expected = if over.is_empty() {
        "none".to_string()
    } else {
        over.iter()
            .map(|s| s.as_str())
            .collect::<Vec<_>>()
            .join("+")
    };
    assert_eq!(answer, expected);
    // Confidence is the probability of exactly this label set.
    let conf: f64 = c
        .labels
        .iter()
        .map(|l| {
            let p = o.probabilities[l];
            if p >= 0.5 { p } else { 1.0 - p }
        })
        .product();
    assert!((o.confidence.unwrap() - conf).abs() < 1e-12);

    // A threshold above every score answers the none label.
    c.threshold = 1.0;
    c.none_label = "no finding".into();
    let a = build(&c, dir.path()).unwrap();
    assert_eq!(
        a.predict(&case_image()).unwrap().answer.unwrap(),
        "no finding"
    );
    let id = a.identity();
    assert_eq!(id.settings["output"], "sigmoid");
    assert_eq!(id.settings["none_label"], "no finding");
}

#[test]
fn auto_warns_with_its_guess_and_explicit_kinds_do_not() {
    let dir = tempfile::tempdir().unwrap();
    let logits = write_logits_model(dir.path());
    let a = build(&builtin_config(&logits), dir.path()).unwrap();
    assert_eq!(a.warnings().len(), 1, "{:?}", a.warnings());
    assert!(a.warnings()[0].contains("logits"), "{:?}", a.warnings());

    let mut c = builtin_config(&logits);
    c.output = Some(OutputKind::Logits);
    let a = build(&c, dir.path()).unwrap();
    assert!(a.warnings().is_empty(), "{:?}", a.warnings());
    // `output = "logits"` and the older `softmax = true` are one identity (shared cache).
    let mut legacy = builtin_config(&logits);
    legacy.softmax = clarity_adapters::onnx::SoftmaxMode::Always;
    let b = build(&legacy, dir.path()).unwrap();
    assert_eq!(a.identity(), b.identity());
}

#[test]
fn fit_changes_what_a_wide_image_looks_like_and_the_identity() {
    let model = committed_model();
    let base = std::path::Path::new(".");
    let img = case_image();
    // Make the image twice as wide: stretch squashes it, crop and letterbox keep the aspect.
    let clarity_image::Samples::U8(src) = img.samples() else {
        panic!("8-bit cohort")
    };
    let (w, h) = (img.width() as usize, img.height() as usize);
    let data: Vec<u8> = (0..h * w * 2)
        .map(|i| src[(i / (2 * w)) * w + (i % (2 * w)) / 2])
        .collect();
    let wide = clarity_image::Image::from_u8(2 * w as u32, h as u32, img.channels(), data).unwrap();
    let mut answers = Vec::new();
    let mut ids = Vec::new();
    for (fit, pad) in [
        (Fit::Stretch, 0.0),
        (Fit::CenterCrop, 0.0),
        (Fit::Letterbox, 0.0),
        (Fit::Letterbox, 1.0),
    ] {
        let mut c = builtin_config(&model);
        c.fit = fit;
        c.pad = pad;
        let a = build(&c, base).unwrap();
        answers.push(a.predict(&wide).unwrap().probabilities);
        ids.push(a.identity());
    }
    // Stretch of a 2x-wide copy made by pixel doubling is (nearly) the original image.
    let orig = build(&builtin_config(&model), base)
        .unwrap()
        .predict(&img)
        .unwrap()
        .probabilities;
    for (k, p) in &orig {
        assert!(
            (p - answers[0][k]).abs() < 0.05,
            "{k}: {p} vs {}",
            answers[0][k]
        );
    }
    assert_ne!(
        answers[1], answers[0],
        "centre crop must see a different image"
    );
    assert_ne!(
        answers[2], answers[3],
        "letterbox pad value must reach the model"
    );
    // Every option is part of the identity; the default keeps the old identity.
    assert!(ids[0].settings.get("fit").is_none());
    for i in 1..ids.len() {
        for j in 0..i {
            assert_ne!(ids[i], ids[j], "{i} vs {j}");
        }
    }
}
