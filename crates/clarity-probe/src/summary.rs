//! Stage 5 of the probe: the masked runs' results per region, per-case verdicts and paired
//! evidence-vs-control differences, cohort estimates and specificity verdicts per fill,
//! overlays and `probe.json`.

use std::path::Path;

use clarity_adapters::AdapterIdentity;
use clarity_analysis::{Normalizer, justification_drift};
use clarity_core::{Observation, RunRecord};
use clarity_engine::{ProbeSettings, TOOL_VERSION, write_atomic};
use serde::Serialize;
use serde_json::json;
use sha2::Digest;

use crate::ProbeError;
use crate::probe::{CaseWork, OVERLAY_DIR, PROBE_FILE, ProbeOutcome};
use crate::regions::{self, Region, RegionKind};
use crate::runner::RunnerStats;
use crate::specificity::{self, Paired, Specificity};
use crate::verdict::{self, Estimate, Verdict};

/// The schema of `probe.json` (2: matched controls, paired differences, specificity verdicts).
pub const PROBE_SCHEMA_VERSION: u32 = 2;

pub(crate) struct Finish<'a> {
    pub work: &'a [CaseWork<'a>],
    /// The masked runs, in the order of `work[..].probed × settings.fills`.
    pub recs: Vec<RunRecord>,
    pub settings: &'a ProbeSettings,
    pub norm: &'a Normalizer,
    pub dir: &'a Path,
    pub identity: AdapterIdentity,
    pub plan_hash: Option<&'a str>,
    pub seed: u64,
    pub stats: RunnerStats,
    /// A scoped probe's choices (`scope` in probe.json; absent for a whole-cohort probe).
    pub scope: Option<serde_json::Value>,
}

/// One fill's specificity verdict, for the console and `--json`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct FillVerdict {
    pub fill: String,
    pub verdict: Specificity,
    /// Cases with both an evidence and a control run of this fill.
    pub cases: usize,
    /// Fraction of those cases whose answer flips when the evidence region is masked.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub evidence: Option<f64>,
    /// The same for the matched controls (each case: the mean over its controls).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub control: Option<f64>,
    /// Mean paired difference in flip rate and its interval.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub difference: Option<[f64; 3]>,
}

impl FillVerdict {
    /// A Markdown table of verdicts (one row per fill, `all_fills` last), as the console and
    /// docs/probe.md show it.
    pub fn table(rows: &[FillVerdict]) -> String {
        let f = |x: Option<f64>| x.map_or("–".to_string(), |x| format!("{x:.3}"));
        let mut out = String::from(
            "| fill | cases | flip rate, evidence | flip rate, matched controls | paired difference [95% CI] | verdict |\n|---|---|---|---|---|---|\n",
        );
        for r in rows {
            let diff = r.difference.map_or("–".to_string(), |[d, lo, hi]| {
                format!("{d:.3} [{lo:.3}, {hi:.3}]")
            });
            out.push_str(&format!(
                "| {} | {} | {} | {} | {} | {} |\n",
                if r.fill == "all_fills" {
                    "all fills (pooled per case)"
                } else {
                    r.fill.as_str()
                },
                r.cases,
                f(r.evidence),
                f(r.control),
                diff,
                r.verdict.as_str().replace('_', " "),
            ));
        }
        out
    }
}

#[derive(Debug, Clone, Serialize)]
struct RunView {
    fill: &'static str,
    key: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    answer: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    flipped: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    delta_confidence: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    delta_entropy: Option<f64>,
    /// Masked minus baseline probability of the baseline answer.
    #[serde(skip_serializing_if = "Option::is_none")]
    delta_probability: Option<f64>,
    /// Drop of the model's confidence in the baseline answer (see `rules.specificity`).
    #[serde(skip_serializing_if = "Option::is_none")]
    confidence_drop: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    drift: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    error: Option<String>,
}

#[derive(Debug, Clone, Serialize)]
struct RegionView {
    id: String,
    kind: RegionKind,
    bbox: [u32; 4],
    area: u64,
    mass: f64,
    evidence: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    control_of: Option<String>,
    /// Rank by effect among non-control regions (1 = largest).
    #[serde(skip_serializing_if = "Option::is_none")]
    rank: Option<usize>,
    #[serde(skip_serializing_if = "Option::is_none")]
    flip_rate: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    mean_delta_confidence: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    mean_delta_probability: Option<f64>,
    runs: Vec<RunView>,
}

fn probability(o: &Observation, answer: &str) -> Option<f64> {
    if o.probabilities.is_empty() {
        None
    } else {
        Some(o.probabilities.get(answer).copied().unwrap_or(0.0))
    }
}

fn mean(xs: impl Iterator<Item = f64>) -> Option<f64> {
    let (mut s, mut n) = (0.0, 0usize);
    for x in xs {
        s += x;
        n += 1;
    }
    (n > 0).then(|| s / n as f64)
}

/// A case's row for the cohort statistics.
struct Row {
    verdict: Verdict,
    evidence: Option<f64>,
    control: Option<f64>,
    lesion: bool,
    pointing: Option<f64>,
    iou: Option<f64>,
    hit: Option<f64>,
    /// Per fill (settings order): (evidence, mean over controls) of flip and confidence drop.
    flips: Vec<Option<(f64, f64)>>,
    drops: Vec<Option<(f64, f64)>>,
}

/// Each case's mean over fills of the pairs it has.
fn pooled(pairs: &[Option<(f64, f64)>]) -> Option<(f64, f64)> {
    let have: Vec<(f64, f64)> = pairs.iter().flatten().copied().collect();
    let n = have.len() as f64;
    (!have.is_empty()).then(|| {
        (
            have.iter().map(|p| p.0).sum::<f64>() / n,
            have.iter().map(|p| p.1).sum::<f64>() / n,
        )
    })
}

fn paired_json(p: Option<&Paired>, margin: f64) -> serde_json::Value {
    let v = specificity::verdict(p, margin);
    match p {
        Some(p) => json!({
            "n": p.n, "evidence": p.evidence, "control": p.control,
            "difference": p.difference, "lo": p.lo, "hi": p.hi, "verdict": v,
        }),
        None => json!({ "n": 0, "verdict": v }),
    }
}

fn run_view(
    rec: &RunRecord,
    fill: &'static str,
    base_obs: Option<&Observation>,
    base_answer: &str,
    base_norm: &str,
    norm: &Normalizer,
) -> RunView {
    let mut v = RunView {
        fill,
        key: rec.key.clone(),
        answer: None,
        flipped: None,
        delta_confidence: None,
        delta_entropy: None,
        delta_probability: None,
        confidence_drop: None,
        drift: None,
        error: None,
    };
    match (rec.observation(), base_obs) {
        (Some(o), Some(b)) => {
            let a = o.answer.clone().unwrap_or_default();
            let flipped = norm.normalize(&a) != base_norm;
            v.flipped = Some(flipped);
            v.answer = Some(a);
            v.delta_confidence = o.confidence.zip(b.confidence).map(|(x, y)| x - y);
            v.delta_entropy = o.entropy.zip(b.entropy).map(|(x, y)| x - y);
            v.delta_probability = probability(o, base_answer)
                .zip(probability(b, base_answer))
                .map(|(x, y)| x - y);
            v.confidence_drop = match v.delta_probability {
                Some(d) => Some(-d),
                None => b
                    .confidence
                    .zip(if flipped { Some(0.0) } else { o.confidence })
                    .map(|(x, y)| x - y),
            };
            v.drift = o
                .justification
                .as_deref()
                .zip(b.justification.as_deref())
                .map(|(x, y)| justification_drift(y, x));
        }
        (Some(o), None) => v.answer = o.answer.clone(),
        (None, _) => {
            if let clarity_core::Outcome::Failed { error, .. } = &rec.outcome {
                v.error = Some(error.clone());
            }
        }
    }
    v
}

pub(crate) fn finish(f: Finish<'_>) -> Result<ProbeOutcome, ProbeError> {
    let settings = f.settings;
    let dir = f.dir;
    let mut recs = f.recs.into_iter();
    let overlay_dir = dir.join(OVERLAY_DIR);
    let mut case_views = Vec::new();
    let mut overlays = Vec::new();
    let mut used_names: Vec<String> = Vec::new();
    let mut rows = Vec::new();
    for cw in f.work {
        let base_obs = cw.base.observation();
        let base_answer = base_obs.and_then(|o| o.answer.clone()).unwrap_or_default();
        let base_norm = f.norm.normalize(&base_answer);
        let mut views: Vec<RegionView> = Vec::new();
        for r in &cw.probed {
            let mut runs = Vec::new();
            for &fill in &settings.fills {
                let rec = recs
                    .next()
                    .ok_or_else(|| ProbeError::Internal("missing probe record".into()))?;
                runs.push(run_view(
                    &rec,
                    fill.as_str(),
                    base_obs,
                    &base_answer,
                    &base_norm,
                    f.norm,
                ));
            }
            let flip_rate = mean(
                runs.iter()
                    .filter_map(|v| v.flipped)
                    .map(|f| f as u8 as f64),
            );
            views.push(RegionView {
                id: r.id.clone(),
                kind: r.kind,
                bbox: r.bbox,
                area: r.area,
                mass: r.mass,
                evidence: cw.evidence.iter().any(|e| e.id == r.id),
                control_of: r.control_of.clone(),
                rank: None,
                flip_rate,
                mean_delta_confidence: mean(runs.iter().filter_map(|v| v.delta_confidence)),
                mean_delta_probability: mean(runs.iter().filter_map(|v| v.delta_probability)),
                runs,
            });
        }
        rank(&mut views);

        let top = cw.evidence.first();
        let top_view = top.and_then(|t| views.iter().find(|v| v.id == t.id));
        let ctl_views: Vec<&RegionView> = match top {
            Some(t) => views
                .iter()
                .filter(|v| v.control_of.as_deref() == Some(t.id.as_str()))
                .collect(),
            None => Vec::new(),
        };
        let ev_rate = top_view.and_then(|v| v.flip_rate);
        let ctl_rate = mean(ctl_views.iter().filter_map(|v| v.flip_rate));
        let (verdict, reason) = if cw.base.observation().is_none() {
            (Verdict::Inconclusive, "the baseline run failed".to_string())
        } else if cw.map.is_none() {
            (
                Verdict::Inconclusive,
                "no saliency map (the adapter gives none and saliency = \"model\")".to_string(),
            )
        } else if top.is_none() {
            (
                Verdict::Inconclusive,
                "the saliency map is empty: no evidence region".to_string(),
            )
        } else {
            verdict::decide(ev_rate, ctl_rate, settings.flip_fraction, settings.margin)
        };

        // Per fill: the evidence's effect and the mean effect over its controls.
        let per_fill = |get: &dyn Fn(&RunView) -> Option<f64>| -> Vec<Option<(f64, f64)>> {
            (0..settings.fills.len())
                .map(|i| {
                    let e = get(top_view?.runs.get(i)?)?;
                    let c = mean(ctl_views.iter().filter_map(|v| get(v.runs.get(i)?)))?;
                    Some((e, c))
                })
                .collect()
        };
        let flips = per_fill(&|r| r.flipped.map(|b| b as u8 as f64));
        let drops = per_fill(&|r| r.confidence_drop);

        let localisation = match (cw.truth, &cw.map) {
            (Some(t), Some(map)) if settings.evidence_bbox.is_none() => {
                let inside = |x: u32, y: u32| x >= t[0] && x < t[2] && y >= t[1] && y < t[3];
                let pointing = map.peak().is_some_and(|(x, y)| inside(x, y));
                let (iou, hit) = match top {
                    Some(r) => {
                        let w = map.width;
                        let hit = (t[1]..t[3].min(map.height))
                            .any(|y| (t[0]..t[2].min(w)).any(|x| r.contains(x, y, w)));
                        (regions::bbox_iou(r.bbox, t), hit)
                    }
                    None => (0.0, false),
                };
                Some((pointing, iou, hit))
            }
            _ => None,
        };

        let overlay = match &cw.map {
            Some(map) => {
                let shown: Vec<&Region> = cw
                    .probed
                    .iter()
                    .filter(|r| {
                        r.kind == RegionKind::Control || cw.evidence.iter().any(|e| e.id == r.id)
                    })
                    .collect();
                let png = crate::overlay::render_png(&cw.case.image, map, &shown);
                let mut name = sanitize(&cw.case.id);
                if used_names.contains(&name) {
                    name = format!("{name}-{}", used_names.len());
                }
                used_names.push(name.clone());
                let rel = format!("{OVERLAY_DIR}/{name}.png");
                fs_err::create_dir_all(&overlay_dir)?;
                write_atomic(&dir.join(&rel), &png)?;
                let sha = hex::encode(sha2::Sha256::digest(&png));
                overlays.push(rel.clone());
                Some(json!({ "file": rel, "sha256": sha }))
            }
            None => None,
        };

        let paired: serde_json::Map<String, serde_json::Value> = settings
            .fills
            .iter()
            .enumerate()
            .filter_map(|(i, fill)| {
                let (fe, fc) = flips[i]?;
                let mut v = json!({
                    "evidence_flip": fe, "control_flip": fc, "flip_difference": fe - fc,
                });
                if let Some((de, dc)) = drops[i] {
                    v["evidence_confidence_drop"] = json!(de);
                    v["control_confidence_drop"] = json!(dc);
                    v["confidence_drop_difference"] = json!(de - dc);
                }
                Some((fill.as_str().to_string(), v))
            })
            .collect();
        let controls: Vec<serde_json::Value> = cw
            .control_stats
            .iter()
            .map(|(id, s)| {
                let mass = views.iter().find(|v| &v.id == id).map(|v| v.mass);
                json!({ "id": id, "kind": s.kind, "mean": s.mean, "std": s.std,
                        "distance": s.distance, "side": s.side, "mass": mass })
            })
            .collect();
        let b = cw.base.observation();
        let mut case_json = json!({
            "id": cw.case.id,
            "baseline": {
                "key": cw.base.key,
                "answer": b.and_then(|o| o.answer.clone()),
                "normalized": b.map(|_| base_norm.clone()),
                "confidence": b.and_then(|o| o.confidence),
                "entropy": b.and_then(|o| o.entropy),
                "error": match &cw.base.outcome {
                    clarity_core::Outcome::Failed { error, .. } => Some(error.clone()),
                    _ => None,
                },
            },
            "saliency": {
                "source": cw.source,
                "coarse_size": cw.coarse,
                "peak": cw.map.as_ref().and_then(|m| m.peak()).map(|(x, y)| [x, y]),
                "occlusion": cw.occlusion,
            },
            "regions": views,
            "evidence_region": top.map(|r| r.id.clone()),
            "control_regions": cw.control_stats.iter().map(|(id, _)| id.clone()).collect::<Vec<_>>(),
            "controls": controls,
            "control_match": cw.control_report,
            "evidence_flip_rate": ev_rate,
            "control_flip_rate": ctl_rate,
            "paired": paired,
            "verdict": verdict,
            "reason": reason,
            "overlay": overlay,
        });
        let o = case_json.as_object_mut().expect("object");
        if let Some(l) = &cw.case.label {
            o.insert("label".into(), json!(l));
        }
        if let Some(t) = cw.truth {
            o.insert("truth_bbox".into(), json!(t));
        }
        if let Some((p, iou, hit)) = localisation {
            o.insert(
                "localisation".into(),
                json!({ "pointing_hit": p, "top_region_iou": iou, "top_region_hit": hit }),
            );
        }
        strip_nulls(&mut case_json);
        case_views.push(case_json);
        rows.push(Row {
            verdict,
            evidence: ev_rate,
            control: ctl_rate,
            lesion: cw.truth.is_some(),
            pointing: localisation.map(|l| l.0 as u8 as f64),
            iou: localisation.map(|l| l.1),
            hit: localisation.map(|l| l.2 as u8 as f64),
            flips,
            drops,
        });
    }

    let all = subset(&rows, settings, "all", &|_| true);
    let lesion = subset(&rows, settings, "lesion", &|r: &Row| r.lesion);
    let n_lesion = rows.iter().filter(|r| r.lesion).count();
    let (spec_of, spec_name) = if n_lesion > 0 {
        (&lesion, "lesion")
    } else {
        (&all, "all")
    };
    let specificity: Vec<FillVerdict> = settings
        .fills
        .iter()
        .map(|fill| fill.as_str())
        .chain(["all_fills"])
        .map(|name| {
            let v = &spec_of["specificity"][name]["flip"];
            let verdict = match v["verdict"].as_str() {
                Some("specific") => Specificity::Specific,
                Some("not_specific") => Specificity::NotSpecific,
                Some("inconclusive") => Specificity::Inconclusive,
                _ => Specificity::NotMeasured,
            };
            let difference = match (v["difference"].as_f64(), v["lo"].as_f64(), v["hi"].as_f64()) {
                (Some(d), Some(lo), Some(hi)) => Some([d, lo, hi]),
                _ => None,
            };
            FillVerdict {
                fill: name.to_string(),
                verdict,
                cases: v["n"].as_u64().unwrap_or(0) as usize,
                evidence: v["evidence"].as_f64(),
                control: v["control"].as_f64(),
                difference,
            }
        })
        .collect();
    let counts = |v: Verdict| rows.iter().filter(|r| r.verdict == v).count();
    let (g, ng, inc) = (
        counts(Verdict::Grounded),
        counts(Verdict::NotGrounded),
        counts(Verdict::Inconclusive),
    );
    let group = |s: Specificity| -> String {
        let names: Vec<&str> = specificity
            .iter()
            .filter(|v| v.verdict == s && v.fill != "all_fills")
            .map(|v| v.fill.as_str())
            .collect();
        if names.is_empty() {
            "none".into()
        } else {
            names.join(", ")
        }
    };
    let headline = format!(
        "probe: {g} of {} cases grounded, {ng} not grounded, {inc} inconclusive; evidence vs matched controls ({} {spec_name} cases), answer flips specific for: {}; not specific for: {}; inconclusive for: {}",
        rows.len(),
        if spec_name == "lesion" {
            n_lesion
        } else {
            rows.len()
        },
        group(Specificity::Specific),
        group(Specificity::NotSpecific),
        group(Specificity::Inconclusive),
    );
    let iters = settings.bootstrap_iterations;
    let doc = json!({
        "schema_version": PROBE_SCHEMA_VERSION,
        "kind": "clarity_probe",
        "tool_version": TOOL_VERSION,
        "plan_hash": f.plan_hash,
        "adapter": f.identity,
        "seed": f.seed,
        "settings": settings,
        "rules": {
            "verdict": verdict::rule_text(settings.flip_fraction, settings.margin),
            "specificity": specificity::rule_text(settings.specificity_margin),
            "flip": "the masked run's answer, normalised as configured, differs from the baseline's",
            "ranking": "non-control regions by flip rate over fills, then by the mean drop in the baseline answer's probability (else confidence), then id",
            "control": control_rule(settings),
            "midline": "the vertical axis (half-pixel steps within 0.35-0.65 of the width) minimising the mean absolute difference between mirrored gray pixels; ties nearest the image centre",
            "tissue": "least_salient controls only: pixels whose gray intensity is at least min + 0.1 x (max - min) of the image",
            "components": "8-connected components of pixels with saliency >= threshold x max, top_k by saliency mass",
            "model_saliency": "the adapter's map of the baseline run, bilinearly upsampled to the image (pixel centres aligned) and divided by its maximum",
            "occlusion": "windows of window x window px every stride px (the last flush with the far edge) masked with occlusion_fill; score = drop of the baseline answer's probability (else 1 if the answer flips, else the confidence drop), clamped to [0, 1]; each pixel = mean score of the windows covering it; divided by the maximum",
            "localisation": "pointing_hit: the saliency peak lies in the true lesion box; top_region_iou: IoU of the evidence region's bounding box with it; top_region_hit: the evidence region overlaps it",
            "overlay": crate::overlay::DESCRIPTION,
        },
        "cases": case_views,
        "cohort": {
            "all": all,
            "lesion": lesion,
            "specificity_headline": spec_name,
            "bootstrap": { "iterations": iters, "seed": settings.bootstrap_seed, "method": "percentile 95% interval, resampling cases (descriptive rates only; the specificity intervals are adjusted Wald intervals, see rules.specificity)" },
        },
    });
    let mut doc = doc;
    if let Some(scope) = f.scope {
        doc["scope"] = scope;
    }
    let text = clarity_core::json::to_canonical_string(&doc)?;
    let path = dir.join(PROBE_FILE);
    write_atomic(&path, text.as_bytes())?;
    Ok(ProbeOutcome {
        probe_json: path,
        overlays,
        cases: rows.len(),
        grounded: g,
        not_grounded: ng,
        inconclusive: inc,
        specificity,
        headline,
        stats: f.stats,
    })
}

fn control_rule(s: &ProbeSettings) -> String {
    match s.control {
        clarity_engine::ControlMode::Matched => format!(
            "controls of the top evidence region only, each with exactly its shape and area: {}up to {} intensity-matched translations (lattice step max(1, min(w, h)/32) px) ranked by the 1-Wasserstein distance between the gray intensities of their ring and the evidence region's ring (ring = the region dilated by gap = max(2, min(bbox w, h)/4) px, minus the region: the tissue the region sits in; the region's own pixels are what is under test and are not matched), on the evidence's side of the midline first, overlapping neither any evidence region, nor the top one dilated by gap, nor another control (ties: top-most, then left-most); a control (the mirrored one included) is used only when its ring distance is at most {}; each control's kind, mean, std, ring distance and side are recorded",
            if s.mirror_control {
                "the region mirrored about the body midline (see midline), then "
            } else {
                ""
            },
            s.controls,
            clarity_core::json::format_num(s.control_max_distance),
        ),
        clarity_engine::ControlMode::LeastSalient => format!(
            "least_salient (not matched; for comparison): the top evidence region's shape translated on a lattice of step max(1, min(w, h)/32) px to the position with the least saliency mass that overlaps no evidence region and lies at least {} on tissue",
            regions::CONTROL_MIN_TISSUE
        ),
    }
}

/// Ranks non-control regions by effect: flip rate, then the drop in the baseline answer's
/// probability (else confidence), then id order.
fn rank(views: &mut [RegionView]) {
    let mut order: Vec<usize> = (0..views.len())
        .filter(|&i| views[i].kind != RegionKind::Control)
        .collect();
    let effect = |v: &RegionView| {
        (
            v.flip_rate.unwrap_or(-1.0),
            -v.mean_delta_probability
                .or(v.mean_delta_confidence)
                .unwrap_or(0.0),
        )
    };
    order.sort_by(|&a, &b| {
        let (ea, eb) = (effect(&views[a]), effect(&views[b]));
        eb.0.total_cmp(&ea.0)
            .then(eb.1.total_cmp(&ea.1))
            .then(a.cmp(&b))
    });
    for (rank, i) in order.into_iter().enumerate() {
        views[i].rank = Some(rank + 1);
    }
}

/// Cohort statistics of the rows `keep` selects.
fn subset(
    rows: &[Row],
    settings: &ProbeSettings,
    name: &str,
    keep: &dyn Fn(&Row) -> bool,
) -> serde_json::Value {
    let (iters, bseed) = (settings.bootstrap_iterations, settings.bootstrap_seed);
    let rs: Vec<&Row> = rows.iter().filter(|r| keep(r)).collect();
    let count = |v: Verdict| rs.iter().filter(|r| r.verdict == v).count();
    let est = |what: &str, xs: Vec<f64>| -> Option<Estimate> {
        verdict::estimate(&xs, iters, bseed, &format!("{name}/{what}"))
    };
    let mut v = json!({
        "cases": rs.len(),
        "grounded": count(Verdict::Grounded),
        "not_grounded": count(Verdict::NotGrounded),
        "inconclusive": count(Verdict::Inconclusive),
        "fraction_grounded": est("grounded", rs.iter().map(|r| (r.verdict == Verdict::Grounded) as u8 as f64).collect()),
        "evidence_flip_rate": est("evidence", rs.iter().filter_map(|r| r.evidence).collect()),
        "control_flip_rate": est("control", rs.iter().filter_map(|r| r.control).collect()),
        "pointing_game": est("pointing", rs.iter().filter_map(|r| r.pointing).collect()),
        "top_region_iou": est("iou", rs.iter().filter_map(|r| r.iou).collect()),
        "top_region_hit": est("hit", rs.iter().filter_map(|r| r.hit).collect()),
    });
    let margin = settings.specificity_margin;
    let mut by_fill = serde_json::Map::new();
    let mut spec = serde_json::Map::new();
    for (i, f) in settings.fills.iter().enumerate() {
        let e = est(
            &format!("evidence/{}", f.as_str()),
            rs.iter().filter_map(|r| r.flips[i].map(|p| p.0)).collect(),
        );
        let c = est(
            &format!("control/{}", f.as_str()),
            rs.iter().filter_map(|r| r.flips[i].map(|p| p.1)).collect(),
        );
        by_fill.insert(
            f.as_str().to_string(),
            json!({ "evidence_flip_rate": e, "control_flip_rate": c }),
        );
        let flips: Vec<(f64, f64)> = rs.iter().filter_map(|r| r.flips[i]).collect();
        let drops: Vec<(f64, f64)> = rs.iter().filter_map(|r| r.drops[i]).collect();
        spec.insert(
            f.as_str().to_string(),
            json!({
                "flip": paired_json(specificity::paired(&flips).as_ref(), margin),
                "confidence_drop": paired_json(specificity::paired(&drops).as_ref(), margin),
            }),
        );
    }
    let flips: Vec<(f64, f64)> = rs.iter().filter_map(|r| pooled(&r.flips)).collect();
    let drops: Vec<(f64, f64)> = rs.iter().filter_map(|r| pooled(&r.drops)).collect();
    spec.insert(
        "all_fills".into(),
        json!({
            "flip": paired_json(specificity::paired(&flips).as_ref(), margin),
            "confidence_drop": paired_json(specificity::paired(&drops).as_ref(), margin),
        }),
    );
    v["by_fill"] = serde_json::Value::Object(by_fill);
    v["specificity"] = serde_json::Value::Object(spec);
    strip_nulls(&mut v);
    v
}

/// `None` fields serialise as `null` through `json!`: drop them so absent means absent.
fn strip_nulls(v: &mut serde_json::Value) {
    match v {
        serde_json::Value::Object(o) => {
            o.retain(|_, x| !x.is_null());
            o.values_mut().for_each(strip_nulls);
        }
        serde_json::Value::Array(a) => a.iter_mut().for_each(strip_nulls),
        _ => {}
    }
}

/// A file name from a case id: ASCII letters, digits, `.`, `_`, `-`; anything else → `_`.
fn sanitize(id: &str) -> String {
    let s: String = id
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '_' || c == '-' || c == '.' {
                c
            } else {
                '_'
            }
        })
        .collect();
    let s = s.trim_start_matches('.').to_string();
    if s.is_empty() { "case".into() } else { s }
}
