//! The operating point: how much more evidence than for `normal` a lesion answer needs.
//!
//! A trained network's argmax treats a lesion and `normal` alike: a film where a lesion class
//! narrowly beats `normal` is answered as a lesion. Under degradation that the training never
//! showed, this is how a model invents lesions, and how a lesion whose evidence is mostly gone
//! comes out as the wrong lesion instead of "missed". The operating point is a margin `m`
//! (nats, ≥ 0) added to the `normal` logit after training, so a lesion class is answered only
//! if `logit_lesion − logit_normal > m`, i.e. `p_lesion > e^m · p_normal` (a prior shift
//! towards `normal`; the reported probabilities are those of the shifted logits, so label,
//! probabilities and sampling stay consistent). It is folded into the `fc2.bias` of the
//! written weights, so the weights hash — the model's identity — covers it, and the ONNX
//! export carries it.
//!
//! `m` is calibrated on training data, never on the held-out phantoms: cohort cases
//! `cases..cases + calibration_cases` of the training seed (patients the training never saw,
//! drawn like the training cases), with the training augmentation drawn from their own
//! stream. Criterion: the largest margin that turns at most a fraction `sensitivity_cost` of
//! the calibration lesion films the network answers correctly into `normal` — as much
//! caution as the calibration films say is nearly free.

use clarity_image::BitDepth;
use clarity_phantom::{class_names, cohort_spec, generate};
use serde::{Deserialize, Serialize};

use crate::augment::Augment;
use crate::net::{self, Params};
use crate::{ModelError, TrainConfig, preprocess};

/// How the margin on the `normal` logit is calibrated (see the module documentation).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct OperatingPoint {
    /// Calibration films: cohort cases `cases..cases + calibration_cases` of the training seed.
    pub calibration_cases: usize,
    /// Largest fraction of the correctly answered calibration lesion films that the margin may
    /// turn into `normal`.
    pub sensitivity_cost: f64,
    /// Whether the calibration films get the training augmentation (else: as rendered).
    pub augmented: bool,
}

/// One calibration film: its class and its logit gaps.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Gap {
    /// The true class index (0 = `normal`).
    pub label: usize,
    /// The argmax answer without a margin.
    pub answer: usize,
    /// `max over lesion classes of logit − logit_normal` (> 0: a lesion answer without a margin).
    pub lesion_over_normal: f64,
}

/// Logit gaps of `n` cohort films `first..first + n` (training seed, render sizes cycling as in
/// training), augmented with `augment` drawn from `(seed, "calibrate", case)`.
pub(crate) fn gaps(
    params: &Params,
    cfg: &TrainConfig,
    first: usize,
    n: usize,
    augment: Option<&Augment>,
) -> Result<Vec<Gap>, ModelError> {
    let names = class_names();
    (first..first + n)
        .map(|i| {
            let size = cfg.render_sizes[i % cfg.render_sizes.len()];
            let p = generate(&cohort_spec(i, size, BitDepth::Eight, cfg.data_seed))?;
            let label = names
                .iter()
                .position(|c| *c == p.truth.label)
                .expect("phantom labels are class names");
            let mut x = preprocess::resample(&p.image);
            if let Some(aug) = augment {
                let mut rng = crate::train::stream(cfg.seed, "calibrate", i as u64);
                if let Some(d) = aug.draw(&mut rng) {
                    Augment::apply(&d, &mut x, &mut rng);
                }
            }
            preprocess::standardise(&mut x);
            let l = net::forward(params, &x).logits;
            let mut answer = 0;
            for k in 1..l.len() {
                if l[k] > l[answer] {
                    answer = k;
                }
            }
            let best = l[1..].iter().fold(f32::NEG_INFINITY, |a, &b| a.max(b));
            Ok(Gap {
                label,
                answer,
                lesion_over_normal: f64::from(best) - f64::from(l[0]),
            })
        })
        .collect()
}

/// The margin of [`OperatingPoint`]: the largest `m ≥ 0` at which at most
/// `⌊sensitivity_cost · k⌋` of the `k` correctly answered lesion films have
/// `lesion_over_normal ≤ m` (those are the ones the margin turns into `normal`). Returned as
/// the midpoint between the last gap it may cover and the next, so that ties cannot move it.
pub fn margin(gaps: &[Gap], sensitivity_cost: f64) -> f64 {
    let mut correct: Vec<f64> = gaps
        .iter()
        .filter(|g| g.label != 0 && g.answer == g.label)
        .map(|g| g.lesion_over_normal)
        .collect();
    if correct.is_empty() {
        return 0.0;
    }
    correct.sort_by(f64::total_cmp);
    let budget = (sensitivity_cost * correct.len() as f64).floor() as usize;
    if budget >= correct.len() {
        return correct[correct.len() - 1].max(0.0);
    }
    // Covering `budget` films: m in [correct[budget − 1], correct[budget]).
    let upper = correct[budget];
    let lower = if budget == 0 {
        0.0
    } else {
        correct[budget - 1]
    };
    (0.5 * (lower + upper)).max(0.0)
}

/// Calibrates the operating point for trained `params` and folds the margin into the
/// `normal` bias. Returns the margin.
pub(crate) fn apply(
    params: &mut Params,
    cfg: &TrainConfig,
    op: &OperatingPoint,
) -> Result<f64, ModelError> {
    let aug = if op.augmented {
        cfg.augment.as_ref()
    } else {
        None
    };
    let g = gaps(params, cfg, cfg.cases, op.calibration_cases, aug)?;
    let m = margin(&g, op.sensitivity_cost);
    params.t[net::F2B][0] += m as f32;
    Ok(m)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn gap(label: usize, answer: usize, lesion_over_normal: f64) -> Gap {
        Gap {
            label,
            answer,
            lesion_over_normal,
        }
    }

    #[test]
    fn margin_gives_up_at_most_the_budget_of_correct_lesion_answers() {
        // 10 correct lesion answers with gaps 1..=10, one wrong lesion answer and normals:
        // only the correct lesion answers count.
        let mut g: Vec<Gap> = (1..=10).map(|v| gap(1, 1, f64::from(v))).collect();
        g.push(gap(2, 1, 0.1));
        g.push(gap(0, 0, -3.0));
        g.push(gap(0, 3, 5.0));
        // Budget 0: halfway between 0 and the smallest gap.
        assert_eq!(margin(&g, 0.0), 0.5);
        assert_eq!(margin(&g, 0.05), 0.5);
        // Budget 1 (10%): between the first and the second gap; 2 (25% → ⌊2.5⌋).
        assert_eq!(margin(&g, 0.1), 1.5);
        assert_eq!(margin(&g, 0.25), 2.5);
        // Everything may go: the largest gap.
        assert_eq!(margin(&g, 1.0), 10.0);
        // The margin turns exactly the budgeted films into `normal` (gap ≤ m).
        let m = margin(&g, 0.3);
        let lost = g
            .iter()
            .filter(|x| x.label != 0 && x.answer == x.label && x.lesion_over_normal <= m)
            .count();
        assert_eq!(lost, 3);
        // Never negative, and 0 with nothing to calibrate on.
        assert_eq!(margin(&[gap(1, 1, -1.0), gap(1, 1, -0.5)], 0.0), 0.0);
        assert_eq!(margin(&[gap(0, 0, -1.0)], 0.5), 0.0);
    }
}
