//! Model outputs → probabilities, answer, confidence and entropy.

use super::config::{OutputKind, SoftmaxMode};

/// Outputs in `[0, 1]` summing to 1 within this are taken as probabilities by `softmax = "auto"`.
const SUM_TOLERANCE: f64 = 1e-3;

/// What turned the raw outputs into probabilities.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Applied {
    Nothing,
    Softmax,
    Sigmoid,
}

/// Raw outputs → probabilities (a distribution for single-label kinds, one independent
/// probability per label for multi-label kinds) and what was applied.
pub fn score(outputs: &[f32], kind: OutputKind) -> Result<(Vec<f64>, Applied), String> {
    let mode = match kind {
        OutputKind::Auto => SoftmaxMode::Auto,
        OutputKind::Logits => SoftmaxMode::Always,
        OutputKind::Probabilities => SoftmaxMode::Never,
        OutputKind::Sigmoid | OutputKind::Multilabel => {
            check_finite(outputs)?;
            let values = outputs.iter().map(|&v| f64::from(v));
            if kind == OutputKind::Sigmoid {
                return Ok((
                    values.map(|x| 1.0 / (1.0 + (-x).exp())).collect(),
                    Applied::Sigmoid,
                ));
            }
            if let Some(i) = outputs.iter().position(|v| !(0.0..=1.0).contains(v)) {
                return Err(format!(
                    "output = \"multilabel\" but model output {i} is {} (not in [0, 1]): set \
                     output = \"sigmoid\" if the model outputs logits",
                    outputs[i]
                ));
            }
            return Ok((values.collect(), Applied::Nothing));
        }
    };
    let (p, applied) = to_probabilities(outputs, mode)?;
    Ok((
        p,
        if applied {
            Applied::Softmax
        } else {
            Applied::Nothing
        },
    ))
}

/// A run's answer, its confidence and the entropy of the model's output distribution.
#[derive(Debug, Clone, PartialEq)]
pub struct Decision {
    pub answer: String,
    pub confidence: f64,
    /// Nats. Multi-label: the sum of the labels' binary entropies (the entropy of the joint
    /// distribution of independent labels).
    pub entropy: f64,
}

/// Single-label: the first label of highest probability, confidence = that probability.
/// Multi-label: the labels whose probability is at least `threshold`, in output order, joined
/// with `+` (`none_label` when there are none); confidence = the probability of exactly that
/// set under independent labels, `Π p_in · Π (1 − p_out)`.
pub fn decide(
    probs: &[f64],
    labels: &[String],
    multilabel: bool,
    threshold: f64,
    none_label: &str,
) -> Decision {
    let h = |p: f64| if p > 0.0 { -p * p.ln() } else { 0.0 };
    if multilabel {
        let chosen: Vec<&str> = labels
            .iter()
            .zip(probs)
            .filter(|&(_, &p)| p >= threshold)
            .map(|(l, _)| l.as_str())
            .collect();
        let confidence = probs
            .iter()
            .map(|&p| if p >= threshold { p } else { 1.0 - p })
            .product();
        let entropy = probs.iter().map(|&p| h(p) + h(1.0 - p)).sum();
        let answer = if chosen.is_empty() {
            none_label.to_string()
        } else {
            chosen.join("+")
        };
        return Decision {
            answer,
            confidence,
            entropy,
        };
    }
    // First maximum, like the builtin model's argmax.
    let mut top = 0;
    for (i, &p) in probs.iter().enumerate() {
        if p > probs[top] {
            top = i;
        }
    }
    Decision {
        answer: labels[top].clone(),
        confidence: probs[top],
        entropy: probs.iter().map(|&p| h(p)).sum(),
    }
}

/// `output = "auto"`: what the guess was on `outputs` (the model's answer to a mid-grey image,
/// taken when the adapter is built), as a warning, or `None` when they are a distribution (no
/// guess needed).
pub fn auto_guess_warning(model: &str, outputs: &[f32]) -> Option<String> {
    if outputs.iter().any(|v| !v.is_finite()) {
        return None;
    }
    let sum: f64 = outputs.iter().map(|&v| f64::from(v)).sum();
    let in_unit = outputs.iter().all(|v| (0.0..=1.0).contains(v));
    if in_unit && (sum - 1.0).abs() <= SUM_TOLERANCE {
        return None;
    }
    Some(if in_unit {
        format!(
            "model `{model}`: output = \"auto\" treats the outputs as logits and applies softmax, \
             but on a mid-grey image they are all in [0, 1] and sum to {sum:.3}: they look like \
             per-label (sigmoid) probabilities of a multi-label model. Set output = \"multilabel\" \
             (or \"logits\" to keep softmax and silence this warning)"
        )
    } else {
        format!(
            "model `{model}`: output = \"auto\" treats the outputs as logits of mutually exclusive \
             classes (softmax). Set output = \"logits\" to confirm, or \"sigmoid\" for a \
             multi-label model"
        )
    })
}

fn check_finite(outputs: &[f32]) -> Result<(), String> {
    match outputs.iter().position(|v| !v.is_finite()) {
        Some(i) => Err(format!(
            "model output {i} is {} (not a finite number)",
            outputs[i]
        )),
        None => Ok(()),
    }
}

/// Model outputs → probabilities, and whether softmax was applied. Errors name the problem.
pub fn to_probabilities(outputs: &[f32], mode: SoftmaxMode) -> Result<(Vec<f64>, bool), String> {
    check_finite(outputs)?;
    let values: Vec<f64> = outputs.iter().map(|&v| f64::from(v)).collect();
    let sum: f64 = values.iter().sum();
    let is_distribution =
        values.iter().all(|v| (0.0..=1.0).contains(v)) && (sum - 1.0).abs() <= SUM_TOLERANCE;
    let apply = match mode {
        SoftmaxMode::Always => true,
        SoftmaxMode::Auto => !is_distribution,
        SoftmaxMode::Never if is_distribution => false,
        SoftmaxMode::Never => {
            return Err(format!(
                "softmax = false (output = \"probabilities\") but the outputs are not probabilities \
                 (values in [0, 1] summing to 1; these sum to {sum}): set output = \"logits\", \
                 \"multilabel\" or \"auto\""
            ));
        }
    };
    if apply {
        let max = values.iter().fold(f64::NEG_INFINITY, |m, &v| m.max(v));
        let e: Vec<f64> = values.iter().map(|v| (v - max).exp()).collect();
        let total: f64 = e.iter().sum();
        Ok((e.iter().map(|v| v / total).collect(), true))
    } else {
        // f32 outputs sum to 1 only within rounding: make them a distribution in f64.
        Ok((values.iter().map(|v| v / sum).collect(), false))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde::Deserialize;

    #[test]
    fn softmax_modes() {
        let logits = [2.0f32, 1.0, -1.0];
        let (p, applied) = to_probabilities(&logits, SoftmaxMode::Auto).unwrap();
        assert!(applied);
        assert!((p.iter().sum::<f64>() - 1.0).abs() < 1e-12);
        let e: Vec<f64> = [2.0f64, 1.0, -1.0].iter().map(|v| v.exp()).collect();
        let z: f64 = e.iter().sum();
        for (a, b) in p.iter().zip(&e) {
            assert!((a - b / z).abs() < 1e-12);
        }
        let probs = [0.25f32, 0.75, 0.0];
        let (p, applied) = to_probabilities(&probs, SoftmaxMode::Auto).unwrap();
        assert!(!applied);
        assert_eq!(p, [0.25, 0.75, 0.0]);
        // Forced softmax on values that look like probabilities.
        let (p, applied) = to_probabilities(&probs, SoftmaxMode::Always).unwrap();
        assert!(applied && p[1] < 0.75);
        assert!(
            to_probabilities(&logits, SoftmaxMode::Never)
                .unwrap_err()
                .starts_with(
                    "softmax = false (output = \"probabilities\") but the outputs are not"
                )
        );
        assert_eq!(
            to_probabilities(&[0.5, f32::NAN], SoftmaxMode::Auto).unwrap_err(),
            "model output 1 is NaN (not a finite number)"
        );
    }

    #[test]
    fn softmax_setting_parses_bool_or_auto() {
        #[derive(Deserialize)]
        struct T {
            softmax: SoftmaxMode,
        }
        let parse = |s: &str| toml::from_str::<T>(s).map(|t| t.softmax);
        assert_eq!(parse("softmax = true").unwrap(), SoftmaxMode::Always);
        assert_eq!(parse("softmax = false").unwrap(), SoftmaxMode::Never);
        assert_eq!(parse("softmax = \"auto\"").unwrap(), SoftmaxMode::Auto);
        let err = parse("softmax = \"yes\"").unwrap_err().to_string();
        assert!(err.contains("expected true, false or \"auto\""), "{err}");
        assert_eq!(
            serde_json::to_string(&[SoftmaxMode::Auto, SoftmaxMode::Always]).unwrap(),
            "[\"auto\",true]"
        );
    }

    #[test]
    fn multilabel_outputs_keep_their_meaning() {
        let labels: Vec<String> = ["effusion", "nodule", "opacity"].map(String::from).into();
        // A 3-output sigmoid model: independent probabilities that do not sum to 1.
        let raw = [0.9f32, 0.2, 0.7];
        let (p, applied) = score(&raw, OutputKind::Multilabel).unwrap();
        assert_eq!(applied, Applied::Nothing);
        assert_eq!(p, [0.9f32 as f64, 0.2f32 as f64, 0.7f32 as f64]);
        let d = decide(&p, &labels, true, 0.5, "none");
        assert_eq!(d.answer, "effusion+opacity");
        let expected = (0.9f32 as f64) * (1.0 - 0.2f32 as f64) * (0.7f32 as f64);
        assert!((d.confidence - expected).abs() < 1e-12, "{d:?}");
        // Nothing over the threshold: the none label, confidence = Π (1 − p).
        let d = decide(&[0.1, 0.2, 0.3], &labels, true, 0.5, "no_finding");
        assert_eq!(d.answer, "no_finding");
        assert!((d.confidence - 0.9 * 0.8 * 0.7).abs() < 1e-12);
        // Binary entropies add up: one certain label contributes nothing.
        let d = decide(&[1.0, 0.5, 0.0], &labels, true, 0.5, "none");
        assert!((d.entropy - 2f64.ln()).abs() < 1e-12, "{d:?}");
        // Sigmoid applies the logistic function per label, not a softmax across them.
        let (p, applied) = score(&[0.0, 2.0, -2.0], OutputKind::Sigmoid).unwrap();
        assert_eq!(applied, Applied::Sigmoid);
        assert!(
            (p[0] - 0.5).abs() < 1e-12 && (p[1] + p[2] - 1.0).abs() < 1e-12,
            "{p:?}"
        );
        // Out-of-range values are not probabilities.
        let err = score(&[1.5, 0.2], OutputKind::Multilabel).unwrap_err();
        assert!(
            err.contains("model output 0 is 1.5 (not in [0, 1])"),
            "{err}"
        );
    }

    #[test]
    fn auto_names_its_guess() {
        // A distribution needs no guess.
        assert_eq!(auto_guess_warning("m.onnx", &[0.25, 0.75]), None);
        // Sigmoid-looking outputs: the warning points at multilabel.
        let w = auto_guess_warning("m.onnx", &[0.9, 0.2, 0.7]).unwrap();
        assert!(
            w.contains("look like per-label (sigmoid) probabilities"),
            "{w}"
        );
        assert!(w.contains("output = \"multilabel\""), "{w}");
        // Logits: the warning says softmax is assumed.
        let w = auto_guess_warning("m.onnx", &[2.0, -1.0]).unwrap();
        assert!(w.contains("treats the outputs as logits"), "{w}");
    }

    #[test]
    fn output_kind_parses_with_the_softmax_alias() {
        #[derive(Deserialize)]
        struct T {
            output: OutputKind,
        }
        let parse = |s: &str| toml::from_str::<T>(s).map(|t| t.output);
        assert_eq!(parse("output = \"softmax\"").unwrap(), OutputKind::Logits);
        assert_eq!(parse("output = \"logits\"").unwrap(), OutputKind::Logits);
        assert_eq!(
            parse("output = \"multilabel\"").unwrap(),
            OutputKind::Multilabel
        );
        assert_eq!(parse("output = \"sigmoid\"").unwrap(), OutputKind::Sigmoid);
        assert!(parse("output = \"argmax\"").is_err());
    }
}
