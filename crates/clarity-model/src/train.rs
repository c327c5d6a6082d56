//! Deterministic training of the builtin model on the phantom cohort.
//!
//! Data: `cases` phantoms from [`clarity_phantom::cohort_spec`] with base seed `data_seed`
//! (classes round-robin), rendered at sizes cycling through `render_sizes` and preprocessed
//! exactly as at inference, after the optional [`Augment`] degradation (drawn afresh for every
//! example and epoch from the seed). Optimiser: Adam (β = 0.9, 0.999, ε = 1e-8) on mini-batches, the
//! learning rate dropping to a fifth for the last third of the epochs. Every epoch visits the
//! cases in a ChaCha8 permutation seeded from `(seed, epoch)`. One thread, fixed summation
//! order: the same config gives the same weight bits.

use std::collections::BTreeMap;

use clarity_image::BitDepth;
use clarity_phantom::{PhantomSpec, class_names, cohort_spec, generate};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};

use crate::augment::Augment;
use crate::net::{self, CLASSES, Params};
use crate::operating::{self, OperatingPoint};
use crate::{BuiltinModel, ModelError, preprocess, weights};

/// Base seed of the held-out phantoms used to measure accuracy (disjoint from training,
/// whose base seed is [`TrainConfig::data_seed`]).
pub const HELDOUT_SEED: u64 = 0x00c1_a417_4e1d_0007;

/// Everything that determines the trained weights.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TrainConfig {
    /// Seeds the weight initialisation and the per-epoch order.
    pub seed: u64,
    /// Base seed of the training cohort.
    pub data_seed: u64,
    /// Number of training phantoms.
    pub cases: usize,
    /// Phantom render sizes, cycled over the cases (the model resizes them to its input).
    pub render_sizes: Vec<u32>,
    pub epochs: usize,
    pub batch_size: usize,
    pub learning_rate: f32,
    /// Every `k`-th lesion case of the cohort is also shown without its lesion (the same
    /// patient, labelled `normal`); 0 = none. Raises the share of normal films towards a
    /// clinical case mix (k = 2: 3 of 7 examples are normal) and pairs lesion and no lesion on
    /// one anatomy.
    pub paired_normal_every: usize,
    /// Degradations applied to the training examples (fresh draws every epoch); `None` =
    /// train on the phantoms as rendered.
    pub augment: Option<Augment>,
    /// Stop after this many optimiser steps (short reproducibility runs); `None` = all epochs.
    pub max_steps: Option<usize>,
    /// The operating point calibrated after training and folded into the `normal` bias
    /// ([`OperatingPoint`]); `None` = plain argmax. Left out of the serialised config when
    /// `None`, so the recipes before it keep their weights hash.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub operating_point: Option<OperatingPoint>,
}

impl Default for TrainConfig {
    /// The recipe of the committed builtin weights.
    fn default() -> Self {
        Self {
            seed: 7,
            data_seed: 1,
            cases: 8000,
            render_sizes: vec![64, 128, 192, 256],
            epochs: 18,
            batch_size: 8,
            learning_rate: 0.001,
            paired_normal_every: 2,
            augment: Some(Augment {
                clean_fraction: 0.25,
                blur_max: 3.0,
                blur_power: 2,
                noise_max: 0.05,
                tone_max: 0.3,
            }),
            max_steps: None,
            operating_point: Some(OperatingPoint {
                calibration_cases: 1000,
                sensitivity_cost: 0.01,
                augmented: true,
            }),
        }
    }
}

/// Loss and accuracy of one epoch (accuracy counted on the fly, before each step's update).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EpochLog {
    pub epoch: usize,
    pub steps: usize,
    pub mean_loss: f64,
    pub train_accuracy: f64,
}

/// The result of [`train`].
#[derive(Debug, Clone)]
pub struct TrainedModel {
    pub(crate) params: Params,
    pub config: TrainConfig,
    pub log: Vec<EpochLog>,
    /// The calibrated margin on the `normal` logit (nats), when the config has an operating
    /// point.
    pub normal_margin: Option<f64>,
}

impl TrainedModel {
    /// The weights file (safetensors) with the architecture, classes and training config in
    /// its metadata. Byte-stable for a given config.
    pub fn to_safetensors(&self) -> Vec<u8> {
        let mut meta = BTreeMap::new();
        meta.insert("architecture".into(), weights::ARCHITECTURE.into());
        meta.insert("classes".into(), class_names().join(","));
        meta.insert(
            "input".into(),
            format!(
                "{n}x{n} gray f32: area resize, per-image standardisation",
                n = net::INPUT
            ),
        );
        meta.insert(
            "train_config".into(),
            serde_json::to_string(&self.config).expect("serialisable config"),
        );
        if let Some(m) = self.normal_margin {
            meta.insert("normal_margin".into(), format!("{m:.6}"));
        }
        weights::to_bytes(&self.params, &meta)
    }

    /// The trained network as a ready-to-use model.
    pub fn model(&self) -> BuiltinModel {
        BuiltinModel::from_safetensors(&self.to_safetensors())
            .expect("freshly written weights parse")
    }
}

/// One training example, resampled to the input size but not yet standardised.
struct Example {
    x: Vec<f32>,
    label: usize,
}

fn dataset(cfg: &TrainConfig) -> Result<Vec<Example>, ModelError> {
    let mut specs = Vec::new();
    let mut lesions = 0usize;
    for i in 0..cfg.cases {
        let size = cfg.render_sizes[i % cfg.render_sizes.len()];
        let spec = cohort_spec(i, size, BitDepth::Eight, cfg.data_seed);
        specs.push(spec);
        if spec.lesion.is_some() {
            lesions += 1;
            if cfg.paired_normal_every > 0 && lesions.is_multiple_of(cfg.paired_normal_every) {
                specs.push(PhantomSpec {
                    lesion: None,
                    ..spec
                });
            }
        }
    }
    specs
        .iter()
        .map(|spec| {
            let p = generate(spec)?;
            let label = class_names()
                .iter()
                .position(|c| *c == p.truth.label)
                .expect("phantom labels are class names");
            Ok(Example {
                x: preprocess::resample(&p.image),
                label,
            })
        })
        .collect()
}

fn check(cfg: &TrainConfig) -> Result<(), ModelError> {
    let bad = |what: &str| Err(ModelError::InvalidConfig(what.to_string()));
    if cfg.cases == 0 {
        return bad("cases must be at least 1");
    }
    if cfg.batch_size == 0 {
        return bad("batch_size must be at least 1");
    }
    if cfg.render_sizes.is_empty() {
        return bad("render_sizes must not be empty");
    }
    if !(cfg.learning_rate > 0.0 && cfg.learning_rate.is_finite()) {
        return bad("learning_rate must be a positive finite number");
    }
    if let Some(a) = &cfg.augment {
        let ok = |v: f32, max: f32| (0.0..=max).contains(&v);
        if !ok(a.clean_fraction, 1.0) {
            return bad("augment.clean_fraction must be in [0, 1]");
        }
        if !ok(a.blur_max, 8.0) {
            return bad("augment.blur_max must be in [0, 8] input pixels");
        }
        if !(1..=8).contains(&a.blur_power) {
            return bad("augment.blur_power must be in 1..=8");
        }
        if !ok(a.noise_max, 1.0) || !ok(a.tone_max, 1.0) {
            return bad("augment.noise_max and augment.tone_max must be in [0, 1]");
        }
    }
    if let Some(op) = &cfg.operating_point {
        if !(0.0..=1.0).contains(&op.sensitivity_cost) {
            return bad("operating_point.sensitivity_cost must be in [0, 1]");
        }
        if op.calibration_cases == 0 {
            return bad("operating_point.calibration_cases must be at least 1");
        }
    }
    Ok(())
}

/// Trains the builtin network from scratch. Deterministic in `cfg`.
pub fn train(cfg: &TrainConfig) -> Result<TrainedModel, ModelError> {
    check(cfg)?;
    let data = dataset(cfg)?;
    let mut params = Params::init(&mut stream(cfg.seed, "init", 0));
    let mut grads = Params::zeros();
    let mut m = Params::zeros();
    let mut v = Params::zeros();
    let (b1, b2, eps) = (0.9f32, 0.999f32, 1e-8f32);
    let (mut b1t, mut b2t) = (1.0f32, 1.0f32);
    let mut steps = 0usize;
    let mut log = Vec::new();
    for epoch in 0..cfg.epochs {
        let lr = if 3 * epoch >= 2 * cfg.epochs {
            cfg.learning_rate * 0.2
        } else {
            cfg.learning_rate
        };
        let order = permutation(data.len(), &mut stream(cfg.seed, "order", epoch as u64));
        let (mut loss_sum, mut correct, mut seen, mut epoch_steps) = (0.0f64, 0usize, 0usize, 0);
        let mut stop = false;
        for batch in order.chunks(cfg.batch_size) {
            if cfg.max_steps.is_some_and(|max| steps >= max) {
                stop = true;
                break;
            }
            grads.fill_zero();
            for &i in batch {
                let ex = &data[i];
                let mut x = ex.x.clone();
                if let Some(aug) = &cfg.augment {
                    let mut rng = stream(cfg.seed, "augment", (epoch as u64) << 32 | i as u64);
                    if let Some(d) = aug.draw(&mut rng) {
                        Augment::apply(&d, &mut x, &mut rng);
                    }
                }
                preprocess::standardise(&mut x);
                let f = net::forward(&params, &x);
                let probs = net::softmax(&f.logits, 1.0);
                loss_sum -= probs[ex.label].max(1e-12).ln();
                let top = argmax(&probs);
                correct += usize::from(top == ex.label);
                seen += 1;
                let mut dl = [0.0f32; CLASSES];
                for (k, d) in dl.iter_mut().enumerate() {
                    *d = probs[k] as f32 - f32::from(k == ex.label);
                }
                net::backward(&params, &f, &dl, &mut grads);
            }
            steps += 1;
            epoch_steps += 1;
            b1t *= b1;
            b2t *= b2;
            let scale = 1.0 / batch.len() as f32;
            for t in 0..params.t.len() {
                for (((w, g), mt), vt) in params.t[t]
                    .iter_mut()
                    .zip(&grads.t[t])
                    .zip(m.t[t].iter_mut())
                    .zip(v.t[t].iter_mut())
                {
                    let g = g * scale;
                    *mt = b1 * *mt + (1.0 - b1) * g;
                    *vt = b2 * *vt + (1.0 - b2) * g * g;
                    let mhat = *mt / (1.0 - b1t);
                    let vhat = *vt / (1.0 - b2t);
                    *w -= lr * mhat / (vhat.sqrt() + eps);
                }
            }
        }
        if seen > 0 {
            log.push(EpochLog {
                epoch,
                steps: epoch_steps,
                mean_loss: loss_sum / seen as f64,
                train_accuracy: correct as f64 / seen as f64,
            });
        }
        if stop {
            break;
        }
    }
    let normal_margin = match &cfg.operating_point {
        Some(op) => Some(operating::apply(&mut params, cfg, op)?),
        None => None,
    };
    Ok(TrainedModel {
        params,
        config: cfg.clone(),
        log,
        normal_margin,
    })
}

/// The last step of [`train`] on weights already trained: `model` must be the result of
/// `train` with `cfg` minus its operating point; the result is then what `train(cfg)` gives,
/// without repeating the training (its epoch log is empty). Without an operating point in
/// `cfg`, the weights are returned unchanged under `cfg`'s metadata.
pub fn calibrate(model: &BuiltinModel, cfg: &TrainConfig) -> Result<TrainedModel, ModelError> {
    check(cfg)?;
    let mut params = model.params.clone();
    let normal_margin = match &cfg.operating_point {
        Some(op) => Some(operating::apply(&mut params, cfg, op)?),
        None => None,
    };
    Ok(TrainedModel {
        params,
        config: cfg.clone(),
        log: Vec::new(),
        normal_margin,
    })
}

/// Logit gaps of `model` on cohort films `first..first + n` of `cfg`'s training seed, with
/// `cfg`'s augmentation when `augmented` (drawn as in calibration): what the operating point
/// is calibrated on.
pub fn calibration_gaps(
    model: &BuiltinModel,
    cfg: &TrainConfig,
    first: usize,
    n: usize,
    augmented: bool,
) -> Result<Vec<operating::Gap>, ModelError> {
    let aug = if augmented {
        cfg.augment.as_ref()
    } else {
        None
    };
    operating::gaps(&model.params, cfg, first, n, aug)
}

pub(crate) fn argmax(p: &[f64]) -> usize {
    let mut best = 0;
    for (i, &v) in p.iter().enumerate() {
        if v > p[best] {
            best = i;
        }
    }
    best
}

pub(crate) fn stream(seed: u64, name: &str, index: u64) -> ChaCha8Rng {
    let mut h = blake3::Hasher::new();
    h.update(b"clarity-model-train-v1\0");
    h.update(&seed.to_le_bytes());
    h.update(name.as_bytes());
    h.update(&[0]);
    h.update(&index.to_le_bytes());
    ChaCha8Rng::from_seed(*h.finalize().as_bytes())
}

/// Fisher–Yates with unbiased bounded draws (rejection sampling).
fn permutation(n: usize, rng: &mut ChaCha8Rng) -> Vec<usize> {
    let mut v: Vec<usize> = (0..n).collect();
    for i in (1..n).rev() {
        let bound = (i + 1) as u64;
        let zone = u64::MAX - u64::MAX % bound;
        let j = loop {
            let r = rng.next_u64();
            if r < zone {
                break (r % bound) as usize;
            }
        };
        v.swap(i, j);
    }
    v
}

/// Accuracy (fraction correct, argmax) on `n` held-out phantoms ([`HELDOUT_SEED`]) of side
/// `size`, classes round-robin.
pub fn heldout_accuracy(model: &BuiltinModel, n: usize, size: u32) -> Result<f64, ModelError> {
    let cases = clarity_phantom::cohort(n, size, BitDepth::Eight, HELDOUT_SEED)?;
    let mut correct = 0usize;
    for p in &cases {
        let pred = model.predict(&p.image, &crate::PredictOptions::default())?;
        correct += usize::from(pred.label == p.truth.label);
    }
    Ok(correct as f64 / n.max(1) as f64)
}
