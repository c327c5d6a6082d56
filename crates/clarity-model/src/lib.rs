//! Clarity's builtin reference model: a small convolutional network that answers "is there a
//! nodule or an opacity, and where?" on chest radiographs like those of `clarity-phantom`.
//!
//! - [`BuiltinModel`]: the network with its weights. [`BuiltinModel::load_embedded`] uses
//!   the weights compiled into the crate (`weights/builtin.safetensors`, BLAKE3 in
//!   `weights/builtin.safetensors.blake3`), so the product needs no files.
//! - [`BuiltinModel::predict`] → [`Prediction`]: label, class probabilities, confidence,
//!   entropy, a HiResCAM [`Saliency`] map (gradient × activation) and a one-sentence justification built from the
//!   saliency peak's lung zone. [`PredictOptions::temperature`] > 0 samples the label from the
//!   tempered softmax with a ChaCha8 generator seeded from [`PredictOptions::seed`].
//! - [`train`] with a [`TrainConfig`]: the reproducible training run behind the committed
//!   weights (binary `clarity-train-builtin`).
//! - [`preprocess`]: any [`Image`] → the network's `64×64` standardised gray input.
//!
//! Everything runs on one thread with a fixed order of float operations and no libm
//! transcendental in the network path, so predictions are bit-identical across runs and thread
//! counts (tested), and by construction across machines. See `docs/models.md`.

mod augment;
mod net;
mod operating;
mod preprocess;
mod train;
mod weights;

use std::collections::BTreeMap;

use clarity_core::Saliency;
use clarity_image::Image;
use clarity_phantom::{LesionKind, Zone, class_names};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

pub use augment::Augment;
pub use net::{CAM as SALIENCY_SIZE, INPUT as INPUT_SIZE};
pub use operating::{Gap, OperatingPoint, margin};
pub use preprocess::{STANDARDISE_EPSILON, preprocess};
pub use train::{
    EpochLog, HELDOUT_SEED, TrainConfig, TrainedModel, calibrate, calibration_gaps,
    heldout_accuracy, train,
};

/// The committed weights, compiled in.
const EMBEDDED: &[u8] = include_bytes!("../weights/builtin.safetensors");
/// BLAKE3 (hex) of [`EMBEDDED`], as committed next to it.
const EMBEDDED_HASH_FILE: &str = include_str!("../weights/builtin.safetensors.blake3");

/// The committed BLAKE3 (hex) of the embedded weights (`weights/builtin.safetensors.blake3`).
pub fn committed_weights_hash() -> &'static str {
    EMBEDDED_HASH_FILE.trim()
}

/// Errors of the builtin model.
#[derive(Debug, thiserror::Error)]
pub enum ModelError {
    #[error("invalid weights file: {0}")]
    Weights(String),
    #[error("temperature must be a finite number >= 0, got {0}")]
    InvalidTemperature(f64),
    #[error("invalid training config: {0}")]
    InvalidConfig(String),
    #[error(transparent)]
    Phantom(#[from] clarity_phantom::PhantomError),
    #[error(transparent)]
    Io(#[from] std::io::Error),
}

/// How to run one prediction.
#[derive(Debug, Clone, Copy, PartialEq, Default, serde::Serialize, serde::Deserialize)]
pub struct PredictOptions {
    /// 0 = deterministic argmax; > 0 = sample from `softmax(logits / temperature)`.
    pub temperature: f64,
    /// Seeds the sampling generator (unused at temperature 0).
    pub seed: u64,
    /// Whether to return the saliency map (the justification uses it either way).
    pub saliency: bool,
}

/// One answer of the model.
#[derive(Debug, Clone, PartialEq)]
pub struct Prediction {
    /// One of [`BuiltinModel::classes`].
    pub label: String,
    /// Every class with its probability, in class order. At temperature 0 these are
    /// `softmax(logits)`; at temperature `T > 0`, `softmax(logits / T)` (the distribution the
    /// label was drawn from).
    pub probabilities: Vec<(String, f64)>,
    /// The reported probability of `label` (the top probability at temperature 0).
    pub confidence: f64,
    /// Entropy of `probabilities`, in nats.
    pub entropy: f64,
    /// HiResCAM of `label` on the last convolution (16×16, values in `[0, 1]`), when asked.
    pub saliency: Option<Saliency>,
    /// One sentence from the evidence: finding and the lung zone of the saliency peak.
    pub justification: String,
}

/// The builtin network and its identity.
#[derive(Clone)]
pub struct BuiltinModel {
    params: net::Params,
    hash: String,
    classes: Vec<String>,
    metadata: BTreeMap<String, String>,
}

/// Shows the identity, not the 137k weights.
impl std::fmt::Debug for BuiltinModel {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BuiltinModel")
            .field("weights_hash", &self.hash)
            .field("classes", &self.classes)
            .finish_non_exhaustive()
    }
}

impl BuiltinModel {
    /// The weights compiled into this crate.
    pub fn load_embedded() -> Result<Self, ModelError> {
        Self::from_safetensors(EMBEDDED)
    }

    /// Reads a weights file (see `docs/models.md` for the format).
    pub fn load(path: &std::path::Path) -> Result<Self, ModelError> {
        Self::from_safetensors(&fs_err::read(path)?)
    }

    /// Parses weights in the safetensors format and checks them against the architecture.
    pub fn from_safetensors(bytes: &[u8]) -> Result<Self, ModelError> {
        let (params, metadata) = weights::from_bytes(bytes)?;
        let expected = class_names().join(",");
        match metadata.get("classes") {
            Some(c) if *c == expected => {}
            other => {
                return Err(ModelError::Weights(format!(
                    "classes are {other:?}, expected \"{expected}\""
                )));
            }
        }
        Ok(Self {
            params,
            hash: blake3::hash(bytes).to_hex().to_string(),
            classes: class_names().iter().map(|c| c.to_string()).collect(),
            metadata,
        })
    }

    /// BLAKE3 (hex) of the weights bytes.
    pub fn weights_hash(&self) -> &str {
        &self.hash
    }

    /// Class names in output order.
    pub fn classes(&self) -> &[String] {
        &self.classes
    }

    /// The weights file's metadata (architecture, classes, input, training config).
    pub fn metadata(&self) -> &BTreeMap<String, String> {
        &self.metadata
    }

    /// The parameters as named tensors in PyTorch naming and layout (`conv1.weight` is
    /// `O×I×3×3`, `fc1.weight` is `out×in`), in file order: what an exporter (ONNX) needs.
    pub fn tensors(&self) -> impl Iterator<Item = (&'static str, &'static [usize], &[f32])> + '_ {
        net::TENSORS
            .iter()
            .zip(&self.params.t)
            .map(|(&(name, shape), t)| (name, shape, t.as_slice()))
    }

    /// Raw logits for an image (class order).
    pub fn logits(&self, image: &Image) -> Vec<f32> {
        net::forward(&self.params, &preprocess(image))
            .logits
            .to_vec()
    }

    /// Classifies one image. Any size, gray or RGB, 8 or 16 bit.
    pub fn predict(&self, image: &Image, opts: &PredictOptions) -> Result<Prediction, ModelError> {
        let t = opts.temperature;
        if !(t.is_finite() && t >= 0.0) {
            return Err(ModelError::InvalidTemperature(t));
        }
        let f = net::forward(&self.params, &preprocess(image));
        let (probs, index) = if t == 0.0 {
            let p = net::softmax(&f.logits, 1.0);
            let i = train::argmax(&p);
            (p, i)
        } else {
            let p = net::softmax(&f.logits, t);
            let i = sample(&p, opts.seed);
            (p, i)
        };
        let entropy = probs
            .iter()
            .filter(|&&p| p > 0.0)
            .map(|&p| -p * p.ln())
            .sum::<f64>();
        let cam = net::saliency(&self.params, &f, index);
        let justification = justify(&self.classes[index], &cam);
        Ok(Prediction {
            label: self.classes[index].clone(),
            probabilities: self
                .classes
                .iter()
                .cloned()
                .zip(probs.iter().copied())
                .collect(),
            confidence: probs[index],
            entropy,
            saliency: opts.saliency.then_some(Saliency {
                width: net::CAM as u32,
                height: net::CAM as u32,
                values: cam,
            }),
            justification,
        })
    }
}

/// Draws a class from `probs` with a ChaCha8 generator seeded from `seed`.
fn sample(probs: &[f64], seed: u64) -> usize {
    let mut h = blake3::Hasher::new();
    h.update(b"clarity-model-sample-v1\0");
    h.update(&seed.to_le_bytes());
    let mut rng = ChaCha8Rng::from_seed(*h.finalize().as_bytes());
    // 53 random bits → uniform [0, 1).
    let u = (rng.next_u64() >> 11) as f64 * (1.0 / 9_007_199_254_740_992.0);
    let mut acc = 0.0;
    for (i, &p) in probs.iter().enumerate() {
        acc += p;
        if u < acc {
            return i;
        }
    }
    // Rounding left `u` above the total: the last class with any mass.
    probs.iter().rposition(|&p| p > 0.0).unwrap_or(0)
}

/// The sentence for `label` given its saliency map: the finding, the zone of the map's peak
/// and the peak's position (normalised image coordinates, x right, y down).
fn justify(label: &str, cam: &[f32]) -> String {
    let mut peak = 0;
    for (i, &v) in cam.iter().enumerate() {
        if v > cam[peak] {
            peak = i;
        }
    }
    if cam[peak] <= 0.0 {
        return match label {
            "normal" => "No nodule or opacity; no localised evidence.".to_string(),
            _ => format!("{} without localised evidence.", finding(label)),
        };
    }
    let n = net::CAM as f32;
    let x = ((peak % net::CAM) as f32 + 0.5) / n;
    let y = ((peak / net::CAM) as f32 + 0.5) / n;
    let zone = Zone::from_point(x, y);
    match label {
        "normal" => format!(
            "No nodule or opacity; lung fields clear (peak evidence at x={x:.2}, y={y:.2})."
        ),
        _ => format!(
            "{} in the {zone} (peak evidence at x={x:.2}, y={y:.2}).",
            finding(label)
        ),
    }
}

fn finding(label: &str) -> &'static str {
    if label.starts_with(LesionKind::Nodule.as_str()) {
        "Round nodule"
    } else {
        "Patchy opacity"
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sampling_follows_the_distribution() {
        let p = [0.1, 0.6, 0.3];
        let mut counts = [0usize; 3];
        for seed in 0..3000 {
            counts[sample(&p, seed)] += 1;
        }
        assert!((250..350).contains(&counts[0]), "{counts:?}");
        assert!((1700..1900).contains(&counts[1]), "{counts:?}");
        assert_eq!(sample(&p, 5), sample(&p, 5));
        assert_eq!(sample(&[0.0, 1.0, 0.0], 9), 1);
    }

    #[test]
    fn justification_names_the_peak_zone() {
        let mut cam = vec![0.0; net::CAM * net::CAM];
        // Cell (x=4, y=3) → x=0.28, y=0.22: patient's right upper zone.
        cam[3 * net::CAM + 4] = 1.0;
        assert_eq!(
            justify("nodule_right", &cam),
            "Round nodule in the right upper zone (peak evidence at x=0.28, y=0.22)."
        );
        cam[12 * net::CAM + 12] = 2.0;
        assert_eq!(
            justify("opacity_left", &cam),
            "Patchy opacity in the left lower zone (peak evidence at x=0.78, y=0.78)."
        );
        assert_eq!(
            justify("normal", &vec![0.0; net::CAM * net::CAM]),
            "No nodule or opacity; no localised evidence."
        );
    }
}
