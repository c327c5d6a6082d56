//! Known-answer checks of the probe's specificity verdicts (issue 13): a model whose evidence is
//! one fixed box must come out `specific` for that box and `not specific` elsewhere; a model
//! that ignores the image must come out `not specific` everywhere; a model that reads the mean
//! of both lung fields must not be called specific for its "lesion" — which the old
//! least-salient control placement did (reproduction of the unfair control).

use std::collections::BTreeMap;
use std::sync::Arc;

use async_trait::async_trait;
use clarity_adapters::{Adapter, AdapterError, AdapterIdentity, RunInput, Workload};
use clarity_core::Observation;
use clarity_engine::CohortCase;
use clarity_image::{Channels, Image};
use serde_json::Value;

use crate::util;

const W: usize = 64;
/// The box the region model reads, px: x 8..24, y 16..32 (inside the left lung).
const BOX: [usize; 4] = [8, 16, 24, 32];

/// A 64×64 chest-like image: soft tissue 0.6, two symmetric dark lungs 0.3 (mirror axis x = 32),
/// a little deterministic texture, and a bright disc (0.65) of radius `r` in the left lung.
fn chest(case: u64, r: f32) -> Image {
    let mut px = Vec::with_capacity(W * W);
    for y in 0..W {
        for x in 0..W {
            let (fx, fy) = (x as f32 + 0.5, y as f32 + 0.5);
            let lung = |cx: f32| ((fx - cx) / 10.0).powi(2) + ((fy - 33.0) / 23.0).powi(2) <= 1.0;
            let mut v = if lung(16.0) || lung(48.0) { 0.3 } else { 0.6 };
            let h = (x as u64 * 7919 + y as u64 * 104729 + case * 1299709) % 1000;
            v += (h as f32 / 1000.0 - 0.5) * 0.04;
            let (dx, dy) = (fx - (16.0 + (case % 3) as f32 - 1.0), fy - 24.0);
            if dx * dx + dy * dy <= r * r {
                v = 0.65;
            }
            px.push((v.clamp(0.0, 1.0) * 255.0).round() as u8);
        }
    }
    Image::from_u8(W as u32, W as u32, Channels::Gray, px).unwrap()
}

fn unit(input: &RunInput) -> Vec<f32> {
    input.image.to_gray8().0.to_unit_f32()
}

#[derive(Clone, Copy)]
enum Kind {
    /// "lesion" when a 5×5 mean inside BOX exceeds the mean of its 11×11 surround by 0.2.
    Region,
    /// Always "normal".
    Ignore,
    /// "lesion" when the mean over both lung ellipses is ≥ 0.305.
    LungMean,
}

struct Toy(Kind);

fn mean(v: &[f32], x0: usize, y0: usize, x1: usize, y1: usize) -> f64 {
    let mut s = 0.0;
    for y in y0..y1 {
        for x in x0..x1 {
            s += v[y * W + x] as f64;
        }
    }
    s / ((x1 - x0) * (y1 - y0)) as f64
}

#[async_trait]
impl Adapter for Toy {
    fn identity(&self) -> AdapterIdentity {
        let name = match self.0 {
            Kind::Region => "region",
            Kind::Ignore => "ignore",
            Kind::LungMean => "lung-mean",
        };
        AdapterIdentity {
            adapter: "test".into(),
            model: name.into(),
            version: "1".into(),
            settings: serde_json::json!({}),
        }
    }
    fn workload(&self) -> Workload {
        Workload::Cpu
    }
    async fn run(&self, input: RunInput) -> Result<Observation, AdapterError> {
        let v = unit(&input);
        let p: f64 = match self.0 {
            Kind::Ignore => 0.1,
            Kind::Region => {
                let [x0, y0, x1, y1] = BOX;
                let mut best = f64::MIN;
                for cy in y0 + 5..y1 - 5 {
                    for cx in x0 + 5..x1 - 5 {
                        let outer = mean(&v, cx - 5, cy - 5, cx + 6, cy + 6) * 121.0;
                        let inner = mean(&v, cx - 2, cy - 2, cx + 3, cy + 3) * 25.0;
                        best = best.max(inner / 25.0 - (outer - inner) / 96.0);
                    }
                }
                if best >= 0.2 { 0.9 } else { 0.1 }
            }
            Kind::LungMean => {
                let (mut s, mut n) = (0.0, 0usize);
                for y in 0..W {
                    for x in 0..W {
                        let (fx, fy) = (x as f32 + 0.5, y as f32 + 0.5);
                        let lung = |cx: f32| {
                            ((fx - cx) / 10.0).powi(2) + ((fy - 33.0) / 23.0).powi(2) <= 1.0
                        };
                        if lung(16.0) || lung(48.0) {
                            s += v[y * W + x] as f64;
                            n += 1;
                        }
                    }
                }
                if s / n as f64 >= 0.305 { 0.9 } else { 0.1 }
            }
        };
        let answer = if p >= 0.5 { "lesion" } else { "normal" };
        let mut o = Observation {
            answer: Some(answer.into()),
            confidence: Some(p.max(1.0 - p)),
            ..Default::default()
        };
        o.probabilities.insert("lesion".into(), p);
        o.probabilities.insert("normal".into(), 1.0 - p);
        // The lung-mean model claims the bright spot as its evidence (a CAM-like map).
        if let Kind::LungMean = self.0 {
            o.saliency = Some(clarity_core::Saliency {
                width: W as u32,
                height: W as u32,
                values: v.iter().map(|&g| (g - 0.62).max(0.0)).collect(),
            });
        }
        Ok(o)
    }
}

fn run(kind: Kind, probe: &str, r: f32) -> Value {
    let tmp = tempfile::tempdir().unwrap();
    let config = util::config(tmp.path(), probe);
    let cohort: Vec<CohortCase> = (0..8)
        .map(|i| CohortCase {
            id: format!("c{i}"),
            image: Arc::new(chest(i, r)),
            prompt: None,
            label: None,
            metadata: BTreeMap::new(),
            source: String::new(),
            decode: None,
        })
        .collect();
    let rt = tokio::runtime::Runtime::new().unwrap();
    let out = rt
        .block_on(clarity_probe::run_probe_with(
            &config,
            &cohort,
            Arc::new(Toy(kind)),
            None,
            config.probe.as_ref().unwrap(),
            tmp.path(),
            &util::opts(2),
        ))
        .unwrap();
    serde_json::from_str(&std::fs::read_to_string(&out.probe_json).unwrap()).unwrap()
}

fn verdicts(doc: &Value) -> Vec<(String, String)> {
    let spec = doc["cohort"]["all"]["specificity"].as_object().unwrap();
    spec.iter()
        .map(|(k, v)| {
            (
                k.clone(),
                v["flip"]["verdict"].as_str().unwrap().to_string(),
            )
        })
        .collect()
}

const FILLS: &str = r#"fills = ["constant", "mean", "blur", "noise", "inpaint"]"#;

#[test]
fn a_fixed_region_model_is_specific_for_its_region_only() {
    let at = |b: &str| run(Kind::Region, &format!("{FILLS}\nevidence_bbox = {b}"), 3.0);
    let own = at("[0.125, 0.25, 0.375, 0.5]");
    for (fill, v) in verdicts(&own) {
        assert_eq!(
            v, "specific",
            "{fill}: {}",
            own["cohort"]["all"]["specificity"]
        );
    }
    // Controls are matched: a mirrored one in the other lung, on similar tissue.
    let case = &own["cases"][0];
    assert_eq!(
        case["controls"][0]["kind"], "mirror",
        "{}",
        case["controls"]
    );
    for c in case["controls"].as_array().unwrap() {
        assert!(c["distance"].as_f64().unwrap() <= 0.1, "{c}");
    }
    // The same box mirrored into the other lung, and the lower left lung: not specific.
    for b in ["[0.625, 0.25, 0.875, 0.5]", "[0.125, 0.6, 0.375, 0.85]"] {
        let other = at(b);
        for (fill, v) in verdicts(&other) {
            assert_eq!(
                v, "not_specific",
                "{b} {fill}: {}",
                other["cohort"]["all"]["specificity"]
            );
        }
    }
}

#[test]
fn a_model_that_ignores_the_image_is_never_specific() {
    for b in ["[0.125, 0.25, 0.375, 0.5]", "[0.4, 0.1, 0.6, 0.3]"] {
        let doc = run(Kind::Ignore, &format!("{FILLS}\nevidence_bbox = {b}"), 3.0);
        for (fill, v) in verdicts(&doc) {
            assert_eq!(v, "not_specific", "{b} {fill}");
        }
        // Never a zero-width interval.
        let all = &doc["cohort"]["all"]["specificity"]["all_fills"]["flip"];
        assert!(
            all["hi"].as_f64().unwrap() > all["lo"].as_f64().unwrap(),
            "{all}"
        );
    }
}

/// Reproduction of issue 13: the least-salient control lands on bright soft tissue, so masking
/// the claimed lesion of a model that reads the mean of both lungs looks specific; masking the
/// same shape in the other lung (the mirrored control) flips the answer just as often.
#[test]
fn matched_controls_expose_a_lung_mean_model_that_least_salient_controls_call_specific() {
    let probe = |control: &str| {
        format!("fills = [\"constant\"]\nsaliency = \"model\"\ntop_k = 1\ncontrol = \"{control}\"")
    };
    let old = run(Kind::LungMean, &probe("least_salient"), 4.0);
    let c0 = &old["cases"][0];
    assert_eq!(c0["baseline"]["answer"], "lesion", "{c0}");
    assert_eq!(c0["controls"][0]["kind"], "least_salient");
    // The old control sits on bright tissue, the evidence in dark lung.
    assert!(
        c0["controls"][0]["mean"].as_f64().unwrap()
            > c0["control_match"]["ring_mean"].as_f64().unwrap() + 0.15,
        "{c0}"
    );
    assert_eq!(
        verdicts(&old)
            .iter()
            .find(|(f, _)| f == "constant")
            .unwrap()
            .1,
        "specific",
        "{}",
        old["cohort"]["all"]["specificity"]
    );
    let new = run(Kind::LungMean, &probe("matched"), 4.0);
    assert_eq!(
        verdicts(&new)
            .iter()
            .find(|(f, _)| f == "constant")
            .unwrap()
            .1,
        "not_specific",
        "{}",
        new["cohort"]["all"]["specificity"]
    );
}
