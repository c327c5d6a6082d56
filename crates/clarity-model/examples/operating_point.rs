//! The operating point of the builtin model (docs/models.md, "Operating point"): logit gaps on
//! calibration films of the training seed, the margin each sensitivity cost gives, and
//! optionally the calibrated weights.
//!
//! ```text
//! cargo run --release -p clarity-model --example operating_point -- \
//!     [N] [clean|augmented] [WEIGHTS] [COST OUT.safetensors]
//! ```
//! N calibration films (default 1000: cohort cases 8000.. of the training seed, never trained
//! on), as rendered or with the training augmentation. WEIGHTS: weights trained without an
//! operating point (default: `TrainConfig::default()` minus its operating point must be what
//! trained them; `-` = the embedded weights). With COST and OUT, writes the weights calibrated
//! at that sensitivity cost (what `train` with that operating point writes).

use clarity_model::{
    BuiltinModel, OperatingPoint, TrainConfig, calibrate, calibration_gaps, margin,
};

fn main() {
    let mut args = std::env::args().skip(1);
    let n: usize = args.next().map_or(1000, |s| s.parse().expect("N"));
    let augmented = match args.next().as_deref() {
        None | Some("clean") => false,
        Some("augmented") => true,
        Some(other) => panic!("expected clean or augmented, got {other:?}"),
    };
    let model = match args.next().as_deref() {
        None | Some("-") => BuiltinModel::load_embedded().expect("embedded weights"),
        Some(path) => BuiltinModel::load(std::path::Path::new(path)).expect("weights"),
    };
    let mut cfg: TrainConfig = serde_json::from_str(
        model
            .metadata()
            .get("train_config")
            .expect("weights carry their train_config"),
    )
    .expect("train_config parses");
    cfg.operating_point = None;
    let gaps = calibration_gaps(&model, &cfg, cfg.cases, n, augmented).expect("gaps");
    let mut normal: Vec<f64> = gaps
        .iter()
        .filter(|g| g.label == 0)
        .map(|g| g.lesion_over_normal)
        .collect();
    let mut correct: Vec<f64> = gaps
        .iter()
        .filter(|g| g.label != 0 && g.answer == g.label)
        .map(|g| g.lesion_over_normal)
        .collect();
    normal.sort_by(f64::total_cmp);
    correct.sort_by(f64::total_cmp);
    let q = |v: &[f64], f: f64| v[((v.len() - 1) as f64 * f).round() as usize];
    let correct_share = correct.len() as f64 / gaps.iter().filter(|g| g.label != 0).count() as f64;
    println!(
        "{n} calibration films ({}), weights {}",
        if augmented { "augmented" } else { "clean" },
        model.weights_hash()
    );
    println!(
        "normal films: {} (answered as a lesion: {}); lesion-over-normal gap quantiles 0.5/0.9/0.99/max: {:.2} {:.2} {:.2} {:.2}",
        normal.len(),
        normal.iter().filter(|&&g| g > 0.0).count(),
        q(&normal, 0.5),
        q(&normal, 0.9),
        q(&normal, 0.99),
        normal[normal.len() - 1]
    );
    println!(
        "lesion films answered correctly: {} ({correct_share:.3}); gap quantiles min/0.005/0.01/0.02/0.05/0.5: {:.2} {:.2} {:.2} {:.2} {:.2} {:.2}",
        correct.len(),
        correct[0],
        q(&correct, 0.005),
        q(&correct, 0.01),
        q(&correct, 0.02),
        q(&correct, 0.05),
        q(&correct, 0.5)
    );
    for cost in [0.0, 0.0025, 0.005, 0.01, 0.02, 0.05] {
        println!("sensitivity cost {cost}: margin {:.3}", margin(&gaps, cost));
    }
    if let (Some(cost), Some(out)) = (args.next(), args.next()) {
        cfg.operating_point = Some(OperatingPoint {
            calibration_cases: n,
            sensitivity_cost: cost.parse().expect("COST"),
            augmented,
        });
        let t = calibrate(&model, &cfg).expect("calibrate");
        std::fs::write(&out, t.to_safetensors()).expect("write");
        println!(
            "wrote {out}: margin {:.4}, weights {}",
            t.normal_margin.unwrap_or(0.0),
            blake3::hash(&t.to_safetensors()).to_hex()
        );
    }
}
