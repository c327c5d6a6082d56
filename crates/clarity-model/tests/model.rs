//! The builtin model: embedded weights, determinism, accuracy, sampling, saliency, errors.

use clarity_image::{BitDepth, Channels, Image, Samples};
use clarity_model::{
    BuiltinModel, HELDOUT_SEED, ModelError, OperatingPoint, PredictOptions, TrainConfig, calibrate,
    committed_weights_hash, train,
};
use clarity_phantom::{LesionKind, LesionSpec, PhantomSpec, Zone, class_names, cohort, generate};

fn model() -> BuiltinModel {
    BuiltinModel::load_embedded().expect("embedded weights load")
}

fn argmax() -> PredictOptions {
    PredictOptions {
        temperature: 0.0,
        seed: 0,
        saliency: true,
    }
}

#[test]
fn embedded_weights_match_the_committed_hash() {
    let m = model();
    assert_eq!(m.weights_hash(), committed_weights_hash());
    assert_eq!(m.weights_hash().len(), 64);
    assert_eq!(m.classes(), class_names());
    assert_eq!(
        m.metadata().get("architecture").map(String::as_str),
        Some("clarity-builtin-cnn-v1")
    );
}

/// At 256 px, the quickstart's size and the size of the bar in docs/models.md (500 phantoms:
/// 0.952 there; 0.936 at 64 px, where the film is the model's input with no averaging).
#[test]
fn heldout_accuracy_is_at_least_95_percent() {
    let m = model();
    let cases = cohort(60, 256, BitDepth::Eight, HELDOUT_SEED).unwrap();
    let wrong: Vec<String> = cases
        .iter()
        .filter_map(|p| {
            let pred = m.predict(&p.image, &PredictOptions::default()).unwrap();
            (pred.label != p.truth.label)
                .then(|| format!("{}: {} vs {}", p.id, pred.label, p.truth.label))
        })
        .collect();
    let acc = 1.0 - wrong.len() as f64 / cases.len() as f64;
    assert!(acc >= 0.95, "accuracy {acc}: {wrong:?}");
}

#[test]
fn inference_is_bit_identical_across_runs_and_threads() {
    let m = model();
    let img = generate(&PhantomSpec {
        size: 128,
        depth: BitDepth::Sixteen,
        seed: 99,
        lesion: Some(LesionSpec {
            kind: LesionKind::Nodule,
            zone: Zone::LeftUpper,
            size: 0.08,
            contrast: 0.18,
        }),
    })
    .unwrap()
    .image;
    let first = m.predict(&img, &argmax()).unwrap();
    assert_eq!(first, m.predict(&img, &argmax()).unwrap());
    let bits = |p: &clarity_model::Prediction| -> Vec<u64> {
        p.probabilities.iter().map(|(_, v)| v.to_bits()).collect()
    };
    let others: Vec<_> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..4)
            .map(|_| s.spawn(|| m.predict(&img, &argmax()).unwrap()))
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    for p in &others {
        assert_eq!(bits(p), bits(&first));
        assert_eq!(p, &first);
    }
}

#[test]
fn prediction_fields_are_consistent() {
    let m = model();
    let p = generate(&PhantomSpec {
        size: 256,
        depth: BitDepth::Eight,
        seed: 5,
        lesion: Some(LesionSpec {
            kind: LesionKind::Nodule,
            zone: Zone::RightUpper,
            size: 0.09,
            contrast: 0.2,
        }),
    })
    .unwrap();
    let pred = m.predict(&p.image, &argmax()).unwrap();
    assert_eq!(pred.label, "nodule_right");
    let names: Vec<&str> = pred.probabilities.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(names, class_names());
    let total: f64 = pred.probabilities.iter().map(|(_, v)| v).sum();
    assert!((total - 1.0).abs() < 1e-9);
    let top = pred
        .probabilities
        .iter()
        .map(|(_, v)| *v)
        .fold(0.0, f64::max);
    assert_eq!(pred.confidence, top);
    let h: f64 = pred
        .probabilities
        .iter()
        .map(|(_, v)| if *v > 0.0 { -v * v.ln() } else { 0.0 })
        .sum();
    assert!((pred.entropy - h).abs() < 1e-12);
    assert!(pred.entropy >= 0.0 && pred.entropy <= (5f64).ln() + 1e-12);
    let sal = pred.saliency.as_ref().unwrap();
    assert_eq!((sal.width, sal.height, sal.values.len()), (16, 16, 256));
    assert!(sal.values.iter().all(|v| (0.0..=1.0).contains(v)));
    assert!(sal.values.contains(&1.0));
    assert!(
        pred.justification.starts_with("Round nodule in the right"),
        "{}",
        pred.justification
    );
    let no_sal = m
        .predict(
            &p.image,
            &PredictOptions {
                saliency: false,
                ..argmax()
            },
        )
        .unwrap();
    assert!(no_sal.saliency.is_none());
    assert_eq!(no_sal.justification, pred.justification);
}

#[test]
fn saliency_peaks_on_the_lesion_side() {
    // The evidence should sit in the lung that carries the lesion.
    let m = model();
    let cases = cohort(20, 128, BitDepth::Eight, HELDOUT_SEED).unwrap();
    let mut hits = 0;
    let mut total = 0;
    for p in cases.iter().filter(|p| p.truth.present) {
        let pred = m.predict(&p.image, &argmax()).unwrap();
        let sal = pred.saliency.unwrap();
        let peak =
            (0..sal.values.len()).fold(0, |b, i| if sal.values[i] > sal.values[b] { i } else { b });
        let x = ((peak % 16) as f32 + 0.5) / 16.0;
        let right = p.truth.zone.unwrap().is_right();
        total += 1;
        hits += usize::from((x < 0.5) == right);
    }
    assert!(
        hits * 10 >= total * 8,
        "{hits}/{total} saliency peaks on the lesion side"
    );
}

#[test]
fn temperature_sampling_is_seeded_and_tempered() {
    let m = model();
    let img = cohort(3, 64, BitDepth::Eight, HELDOUT_SEED)
        .unwrap()
        .remove(1)
        .image;
    let hot = |seed| PredictOptions {
        temperature: 50.0,
        seed,
        saliency: false,
    };
    let a = m.predict(&img, &hot(1)).unwrap();
    assert_eq!(a, m.predict(&img, &hot(1)).unwrap());
    // At a high temperature the distribution is nearly uniform, so seeds disagree.
    let labels: std::collections::BTreeSet<String> = (0..40)
        .map(|s| m.predict(&img, &hot(s)).unwrap().label)
        .collect();
    assert!(labels.len() >= 3, "{labels:?}");
    assert!(a.entropy > m.predict(&img, &argmax()).unwrap().entropy);
    let p_label = a
        .probabilities
        .iter()
        .find(|(n, _)| *n == a.label)
        .unwrap()
        .1;
    assert_eq!(a.confidence, p_label);
    for bad in [-1.0, f64::NAN, f64::INFINITY] {
        let err = m
            .predict(
                &img,
                &PredictOptions {
                    temperature: bad,
                    ..hot(0)
                },
            )
            .unwrap_err();
        assert!(matches!(err, ModelError::InvalidTemperature(_)), "{err}");
    }
}

#[test]
fn accepts_any_format() {
    let m = model();
    let gray = cohort(2, 96, BitDepth::Eight, HELDOUT_SEED)
        .unwrap()
        .remove(1)
        .image;
    let Samples::U8(g) = gray.samples() else {
        panic!()
    };
    let rgb = Image::from_u8(
        96,
        96,
        Channels::Rgb,
        g.iter().flat_map(|&v| [v, v, v]).collect(),
    )
    .unwrap();
    let a = m.predict(&gray, &argmax()).unwrap();
    let b = m.predict(&rgb, &argmax()).unwrap();
    assert_eq!(a.label, b.label);
    let small = Image::from_u8(7, 5, Channels::Gray, vec![9; 35]).unwrap();
    assert!(m.predict(&small, &argmax()).is_ok());
}

#[test]
fn bad_weights_are_rejected_with_reasons() {
    let err = BuiltinModel::from_safetensors(b"abc").unwrap_err();
    assert!(
        err.to_string().contains("shorter than the 8-byte header"),
        "{err}"
    );
    let mut huge = 1_000_000u64.to_le_bytes().to_vec();
    huge.extend_from_slice(b"{}");
    let err = BuiltinModel::from_safetensors(&huge).unwrap_err();
    assert!(err.to_string().contains("runs past the end"), "{err}");
    let mut no_arch = 2u64.to_le_bytes().to_vec();
    no_arch.extend_from_slice(b"{}");
    let err = BuiltinModel::from_safetensors(&no_arch).unwrap_err();
    assert!(err.to_string().contains("architecture"), "{err}");
    // A truncated copy of the real file.
    let real = fs_err::read(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/weights/builtin.safetensors"
    ))
    .unwrap();
    let err = BuiltinModel::from_safetensors(&real[..real.len() - 4]).unwrap_err();
    assert!(err.to_string().contains("fc2.bias"), "{err}");
    let err = BuiltinModel::load(std::path::Path::new("/nonexistent/w.safetensors")).unwrap_err();
    assert!(
        err.to_string().contains("/nonexistent/w.safetensors"),
        "{err}"
    );
}

#[test]
fn short_training_is_bit_reproducible() {
    let cfg = TrainConfig {
        cases: 10,
        render_sizes: vec![64],
        epochs: 1,
        batch_size: 4,
        max_steps: Some(2),
        ..TrainConfig::default()
    };
    let a = train(&cfg).unwrap();
    let b = train(&cfg).unwrap();
    assert_eq!(a.to_safetensors(), b.to_safetensors());
    assert_eq!(a.log, b.log);
    assert_eq!(a.log[0].steps, 2);
    // The training moved the weights, and another seed gives other weights.
    let c = train(&TrainConfig {
        seed: 8,
        ..cfg.clone()
    })
    .unwrap();
    assert_ne!(a.to_safetensors(), c.to_safetensors());
    let untrained = train(&TrainConfig {
        max_steps: Some(0),
        ..cfg.clone()
    })
    .unwrap();
    assert_ne!(a.to_safetensors(), untrained.to_safetensors());
    // The written file round-trips.
    let m = a.model();
    assert_eq!(
        m.weights_hash(),
        blake3::hash(&a.to_safetensors()).to_hex().to_string()
    );
    let err = train(&TrainConfig {
        batch_size: 0,
        ..cfg.clone()
    })
    .unwrap_err();
    assert_eq!(
        err.to_string(),
        "invalid training config: batch_size must be at least 1"
    );
    let mut bad_shape = cfg;
    if let Some(a) = bad_shape.augment.as_mut() {
        a.blur_power = 0;
    }
    assert_eq!(
        train(&bad_shape).unwrap_err().to_string(),
        "invalid training config: augment.blur_power must be in 1..=8"
    );
}

/// The operating point is the last step of `train`: calibrating weights trained without it
/// gives the same bytes as training with it, the margin is recorded, and it only moves the
/// `normal` bias (so the committed weights could be made from the earlier network).
#[test]
fn operating_point_is_trains_last_step() {
    let op = OperatingPoint {
        calibration_cases: 15,
        sensitivity_cost: 0.5,
        augmented: true,
    };
    let plain = TrainConfig {
        cases: 10,
        render_sizes: vec![64],
        epochs: 1,
        batch_size: 4,
        max_steps: Some(3),
        operating_point: None,
        ..TrainConfig::default()
    };
    let with = TrainConfig {
        operating_point: Some(op.clone()),
        ..plain.clone()
    };
    let a = train(&plain).unwrap();
    let b = train(&with).unwrap();
    assert_eq!(a.normal_margin, None);
    let m = b.normal_margin.expect("a margin");
    assert!(m >= 0.0, "{m}");
    assert!(!a.model().metadata().contains_key("normal_margin"));
    assert_eq!(
        b.model().metadata().get("normal_margin"),
        Some(&format!("{m:.6}"))
    );
    let c = calibrate(&a.model(), &with).unwrap();
    assert_eq!(c.to_safetensors(), b.to_safetensors());
    assert_eq!(c.normal_margin, b.normal_margin);
    // Only the first entry of fc2.bias differs, by the margin.
    let (ma, mb) = (a.model(), b.model());
    for ((name, _, ta), (_, _, tb)) in ma.tensors().zip(mb.tensors()) {
        if name == "fc2.bias" {
            assert_eq!(tb[0], ta[0] + m as f32);
            assert_eq!(ta[1..], tb[1..]);
        } else {
            assert_eq!(ta, tb, "{name}");
        }
    }
    let err = train(&TrainConfig {
        operating_point: Some(OperatingPoint {
            sensitivity_cost: 1.5,
            ..op
        }),
        ..plain
    })
    .unwrap_err();
    assert_eq!(
        err.to_string(),
        "invalid training config: operating_point.sensitivity_cost must be in [0, 1]"
    );
}

/// The full recipe retrains the committed weights bit for bit. Minutes in a release build, so
/// not part of the default suite: `cargo test --release -p clarity-model --test model -- --ignored`.
#[test]
#[ignore = "full retrain: about 3 minutes of CPU in release; run with --ignored"]
fn full_retrain_reproduces_the_committed_weights() {
    let trained = train(&TrainConfig::default()).unwrap();
    let hash = blake3::hash(&trained.to_safetensors()).to_hex().to_string();
    let committed = include_str!("../weights/builtin.safetensors.blake3").trim();
    assert_eq!(hash, committed);
}
