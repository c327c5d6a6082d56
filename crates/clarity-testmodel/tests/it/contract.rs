//! The happy path: spec.json in, answer/confidence/entropy/justification out.

use serde_json::{Value, json};

use crate::common::{Fixture, binary_entropy, box_blur, checkerboard};

/// Mid-grey checkerboard 0.4/0.6: every interior Laplacian is |4·0.2| = 0.8. With the
/// threshold at 0.4, p(nodule) = sigmoid(4 ln 2) = 16/17.
fn sharp_spec() -> Value {
    json!({"sharpness_threshold": 0.4, "question_style": "yes-no"})
}

#[test]
fn answer_scores_and_justification_come_from_the_middle_record() {
    let fx = Fixture::new();
    let png = fx.png("sharp.png", 16, 16, &checkerboard(16, 16, 102, 153));
    let adapter = fx.adapter(&fx.config(sharp_spec()));
    let obs = fx.run(&adapter, fx.input(&png, 7)).unwrap();

    assert_eq!(obs.answer.as_deref(), Some("nodule"));
    let p = 16.0 / 17.0;
    let c = obs.confidence.unwrap();
    assert!((c - p).abs() < 1e-5, "confidence {c}");
    let h = obs.entropy.unwrap();
    assert!((h - binary_entropy(p)).abs() < 1e-5, "entropy {h}");
    assert_eq!(
        obs.justification.as_deref(),
        Some(
            "mean absolute Laplacian 0.8000 reaches the threshold 0.4000 (sharp focal detail); \
             mean intensity 0.500 is in the readable range"
        )
    );
    assert_eq!(obs.metadata["run_id"], json!("testmodel-seed-7"));
    let meta = &obs.metadata["adapter_metadata"];
    assert_eq!(meta["sharpness"], json!(0.8));
    assert_eq!(meta["mean_intensity"], json!(0.5));
}

#[test]
fn spec_json_carries_the_original_spec_and_the_run() {
    let fx = Fixture::new();
    let png = fx.png("sharp.png", 8, 8, &checkerboard(8, 8, 102, 153));
    let adapter = fx.adapter(&fx.config(sharp_spec()));
    let input = fx.input(&png, 42);
    let work = input.work_dir.clone();
    fx.run(&adapter, input).unwrap();
    let spec: Value =
        serde_json::from_str(&std::fs::read_to_string(work.join("spec.json")).unwrap()).unwrap();
    assert_eq!(
        spec,
        json!({
            "sharpness_threshold": 0.4,
            "question_style": "yes-no",
            "perturbations": [{"name": "gaussian_blur", "params": {"sigma": 2.0}}],
            "seed": 42,
            "image_path": png.to_str().unwrap(),
            "prompt": "Is there a nodule?",
            "question": "Is there a nodule?",
        })
    );
    // The program wrote into the fresh output dir the adapter gave it.
    assert!(work.join("output/manifest.json").is_file());
    assert!(work.join("output/trace_pack.jsonl").is_file());
}

#[test]
fn strong_blur_flips_the_answer() {
    let fx = Fixture::new();
    let sharp = checkerboard(16, 16, 102, 153);
    let blurred = box_blur(16, 16, &box_blur(16, 16, &sharp));
    let adapter = fx.adapter(&fx.config(sharp_spec()));
    let a = fx
        .run(&adapter, fx.input(&fx.png("a.png", 16, 16, &sharp), 1))
        .unwrap();
    let b = fx
        .run(&adapter, fx.input(&fx.png("b.png", 16, 16, &blurred), 1))
        .unwrap();
    assert_eq!(a.answer.as_deref(), Some("nodule"));
    assert_eq!(b.answer.as_deref(), Some("normal"));
    let j = b.justification.unwrap();
    assert!(j.contains("is below the threshold 0.4000"), "{j}");
}

#[test]
fn extreme_brightness_flips_the_answer() {
    let fx = Fixture::new();
    let adapter = fx.adapter(&fx.config(sharp_spec()));
    // Same contrast (Laplacian ≈ 0.6, p ≈ 0.85 before the exposure check), mean 0.5 vs 0.925.
    let mid = fx.png("mid.png", 8, 8, &checkerboard(8, 8, 108, 147));
    let bright = fx.png("bright.png", 8, 8, &checkerboard(8, 8, 217, 255));
    let a = fx.run(&adapter, fx.input(&mid, 1)).unwrap();
    let b = fx.run(&adapter, fx.input(&bright, 1)).unwrap();
    assert_eq!(a.answer.as_deref(), Some("nodule"));
    assert_eq!(b.answer.as_deref(), Some("normal"));
    let j = b.justification.unwrap();
    assert!(j.contains("too dark or bright to read"), "{j}");
}

#[test]
fn same_input_same_observation_and_one_call_per_run() {
    let fx = Fixture::new();
    let count = fx.path().join("calls.txt");
    let mut spec = sharp_spec();
    spec["count_file"] = json!(count.to_str().unwrap());
    spec["jitter"] = json!(0.2);
    let adapter = fx.adapter(&fx.config(spec));
    let png = fx.png("s.png", 8, 8, &checkerboard(8, 8, 102, 153));
    let a = fx.run(&adapter, fx.input(&png, 3)).unwrap();
    let b = fx.run(&adapter, fx.input(&png, 3)).unwrap();
    let c = fx.run(&adapter, fx.input(&png, 4)).unwrap();
    assert_eq!(a, b);
    // The jitter is drawn from the seed, so another seed moves the confidence.
    assert_ne!(a.confidence, c.confidence);
    assert_eq!(
        std::fs::read_to_string(&count).unwrap(),
        "seed=3\nseed=3\nseed=4\n"
    );
}

#[test]
fn real_radiograph_flips_under_blur_at_the_default_threshold() {
    let reference = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../../shared/reference/chest_xray_pa_cc0.png");
    if !reference.exists() {
        eprintln!(
            "skipping: reference radiograph not found at {}",
            reference.display()
        );
        return;
    }
    let fx = Fixture::new();
    let gray = image::open(&reference).unwrap().to_luma8();
    let (w, h) = gray.dimensions();
    let sharp = fx.png("sharp.png", w, h, gray.as_raw());
    let blurred = box_blur(w, h, &box_blur(w, h, gray.as_raw()));
    let blurred = fx.png("blurred.png", w, h, &blurred);
    let adapter = fx.adapter(&fx.config(json!({})));
    let a = fx.run(&adapter, fx.input(&sharp, 1)).unwrap();
    let b = fx.run(&adapter, fx.input(&blurred, 1)).unwrap();
    assert_eq!(a.answer.as_deref(), Some("nodule"), "{:?}", a.justification);
    assert_eq!(b.answer.as_deref(), Some("normal"), "{:?}", b.justification);
}

#[test]
fn sixteen_bit_images_are_read_at_full_depth() {
    let fx = Fixture::new();
    // 0.4/0.6 in 16 bits: the same statistic as the 8-bit checkerboard.
    let px: Vec<u16> = checkerboard(16, 16, 0, 1)
        .into_iter()
        .map(|b| if b == 0 { 26214 } else { 39321 })
        .collect();
    let path = fx.path().join("deep.png");
    image::ImageBuffer::<image::Luma<u16>, _>::from_raw(16, 16, px)
        .unwrap()
        .save(&path)
        .unwrap();
    let adapter = fx.adapter(&fx.config(sharp_spec()));
    let obs = fx.run(&adapter, fx.input(&path, 2)).unwrap();
    assert_eq!(obs.answer.as_deref(), Some("nodule"));
    assert_eq!(obs.metadata["adapter_metadata"]["sharpness"], json!(0.8));
}
