//! The probe pipeline and `probe.json`.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use clarity_adapters::{Adapter, AdapterIdentity};
use clarity_analysis::{Normalizer, justification_drift};
use clarity_core::{Observation, RunRecord, SCHEMA_VERSION};
use clarity_engine::{
    CohortCase, CohortConfig, ExecOptions, FillName, Prepared, ProbeSettings, RegionMode,
    SaliencySource, SweepConfig, TOOL_VERSION, write_atomic,
};
use clarity_image::{BitDepth, Image};
use clarity_perturb::{Fill, RegionMask, derive_seed, mask_region, rng_from_seed};
use serde::Serialize;
use serde_json::json;
use sha2::Digest;

use crate::ProbeError;
use crate::regions::{self, Region, RegionKind};
use crate::runner::{Item, Runner, RunnerStats};
use crate::saliency::{self, SaliencyMap};
use crate::verdict::{self, Estimate, Verdict};

/// `probe.json`, at the top of the output directory.
pub const PROBE_FILE: &str = "probe.json";
/// Overlay PNGs, one per case.
pub const OVERLAY_DIR: &str = "overlays";
/// The probe's journal (`journal.jsonl`) lives here, apart from the sweep's.
pub const PROBE_DIR: &str = "probe";

/// What a probe produced.
#[derive(Debug, Clone, Serialize)]
pub struct ProbeOutcome {
    pub probe_json: PathBuf,
    pub overlays: Vec<String>,
    pub cases: usize,
    pub grounded: usize,
    pub not_grounded: usize,
    pub inconclusive: usize,
    pub headline: String,
    /// Not deterministic (depends on the cache and journal): for telemetry and the console.
    pub stats: RunnerStats,
}

/// Runs the probe of `settings` on a prepared sweep (its cohort, adapter and plan hash),
/// writing `probe.json` and `overlays/` into `dir`.
pub async fn run_probe(
    prepared: &Prepared,
    settings: &ProbeSettings,
    dir: &Path,
    opts: &ExecOptions,
) -> Result<ProbeOutcome, ProbeError> {
    run_probe_with(
        &prepared.config,
        &prepared.cohort,
        prepared.adapter.clone(),
        Some(&prepared.plan.plan_hash),
        settings,
        dir,
        opts,
    )
    .await
}

struct CaseWork<'a> {
    case: &'a CohortCase,
    truth: Option<[u32; 4]>,
    base: RunRecord,
    map: Option<SaliencyMap>,
    source: &'static str,
    coarse: Option<[u32; 2]>,
    occlusion: Option<OcclusionInfo>,
    evidence: Vec<Region>,
    /// Every probed region: components, grid tiles, controls (in that order).
    probed: Vec<Region>,
}

#[derive(Debug, Clone, Serialize)]
struct OcclusionInfo {
    window: u32,
    stride: u32,
    fill: &'static str,
    windows: usize,
    area: [u32; 4],
    failed_runs: usize,
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

fn fill_of(f: FillName, s: &ProbeSettings) -> Fill {
    match f {
        FillName::Constant => Fill::Constant(s.fill_value),
        FillName::Mean => Fill::Mean,
        FillName::Blur => Fill::Blur {
            sigma: s.blur_sigma,
        },
        FillName::Noise => Fill::Noise,
        FillName::Inpaint => Fill::Inpaint,
    }
}

fn masked(
    case: &CohortCase,
    mask: RegionMask,
    fill: Fill,
    seed: u64,
    stream: &str,
) -> Result<Image, ProbeError> {
    let mut rng = rng_from_seed(derive_seed(seed, &case.id, stream));
    mask_region(&case.image, &mask, fill, &mut rng)
        .map_err(|e| ProbeError::Internal(format!("masking {}: {e}", case.id)))
}

fn pixel_mask(r: &Region, w: u32, h: u32) -> RegionMask {
    RegionMask::Pixels {
        width: w,
        height: h,
        mask: r.mask.clone(),
    }
}

/// Ground-truth lesion boxes: regenerated for builtin phantoms, else a case's `bbox`
/// metadata (`[x0, y0, x1, y1]` pixels, end-exclusive) when present.
fn truth_boxes(config: &SweepConfig, cases: &[CohortCase]) -> Vec<Option<[u32; 4]>> {
    if let CohortConfig::Builtin {
        n,
        size,
        depth,
        seed,
    } = &config.cohort
    {
        let depth = if *depth == 16 {
            BitDepth::Sixteen
        } else {
            BitDepth::Eight
        };
        if let Ok(ph) = clarity_phantom::cohort(*n, *size, depth, *seed) {
            let by_id: BTreeMap<&str, Option<[u32; 4]>> =
                ph.iter().map(|p| (p.id.as_str(), p.truth.bbox)).collect();
            return cases
                .iter()
                .map(|c| by_id.get(c.id.as_str()).copied().flatten())
                .collect();
        }
    }
    cases
        .iter()
        .map(|c| {
            let a = c.metadata.get("bbox")?.as_array()?;
            let v: Vec<u32> = a
                .iter()
                .filter_map(|x| x.as_u64().and_then(|x| u32::try_from(x).ok()))
                .collect();
            (v.len() == 4 && v[2] > v[0] && v[3] > v[1]).then(|| [v[0], v[1], v[2], v[3]])
        })
        .collect()
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

/// [`run_probe`] on parts: the sweep config (cohort source, prompt, normalisation, limits), its
/// cohort and adapter, and the sweep's plan hash to record.
pub async fn run_probe_with(
    config: &SweepConfig,
    cohort: &[CohortCase],
    adapter: Arc<dyn Adapter>,
    plan_hash: Option<&str>,
    settings: &ProbeSettings,
    dir: &Path,
    opts: &ExecOptions,
) -> Result<ProbeOutcome, ProbeError> {
    settings.validate().map_err(|(k, m)| ProbeError::Settings {
        path: config.source.clone(),
        message: format!("{k}: {m}"),
    })?;
    let norm = Normalizer::new(&config.normalization)?;
    let seed = settings
        .seed
        .unwrap_or_else(|| config.seeds.first().copied().unwrap_or(0));
    let n = settings.max_cases.unwrap_or(cohort.len()).min(cohort.len());
    let cases = &cohort[..n];
    let truths = truth_boxes(config, cases);
    fs_err::create_dir_all(dir)?;
    let identity: AdapterIdentity = adapter.identity();
    let mut runner = Runner::new(config, adapter, seed, opts.clone(), dir.join(PROBE_DIR));

    // 1. Baselines.
    let base = runner
        .run(
            cases
                .iter()
                .map(|c| Item {
                    id: c.id.clone(),
                    image: c.image.clone(),
                    prompt: c.prompt.clone(),
                })
                .collect(),
        )
        .await?;
    let mut work: Vec<CaseWork<'_>> = cases
        .iter()
        .zip(truths)
        .zip(base)
        .map(|((case, truth), base)| CaseWork {
            case,
            truth,
            base,
            map: None,
            source: "none",
            coarse: None,
            occlusion: None,
            evidence: Vec::new(),
            probed: Vec::new(),
        })
        .collect();

    // 2. Saliency: the model's own, else occlusion (all cases batched together).
    let mut occ: Vec<(usize, Vec<[u32; 4]>)> = Vec::new();
    for (i, cw) in work.iter_mut().enumerate() {
        let Some(obs) = cw.base.observation() else {
            continue;
        };
        let (w, h) = (cw.case.image.width(), cw.case.image.height());
        match (&obs.saliency, settings.saliency) {
            (Some(s), SaliencySource::Auto | SaliencySource::Model) => {
                cw.map = Some(SaliencyMap::from_coarse(s, w, h));
                cw.source = "model";
                cw.coarse = Some([s.width, s.height]);
            }
            (None, SaliencySource::Model) => {}
            _ => {
                let window = if settings.window > 0 {
                    settings.window.min(w.min(h))
                } else {
                    (w.min(h) / 8).max(4).min(w.min(h))
                };
                let stride = if settings.stride > 0 {
                    settings.stride
                } else {
                    (window / 2).max(1)
                };
                let area = match settings.occlusion_bbox {
                    Some([x0, y0, x1, y1]) => [
                        (x0 * w as f64).floor() as u32,
                        (y0 * h as f64).floor() as u32,
                        ((x1 * w as f64).ceil() as u32).min(w),
                        ((y1 * h as f64).ceil() as u32).min(h),
                    ],
                    None => [0, 0, w, h],
                };
                let wins = saliency::occlusion_windows(w, h, window, stride, Some(area));
                cw.source = "occlusion";
                cw.occlusion = Some(OcclusionInfo {
                    window,
                    stride,
                    fill: settings.occlusion_fill.as_str(),
                    windows: wins.len(),
                    area,
                    failed_runs: 0,
                });
                occ.push((i, wins));
            }
        }
    }
    if !occ.is_empty() {
        let fill = fill_of(settings.occlusion_fill, settings);
        let mut items = Vec::new();
        for (i, wins) in &occ {
            let case = work[*i].case;
            for (j, win) in wins.iter().enumerate() {
                let img = masked(
                    case,
                    RegionMask::Rect {
                        x0: win[0],
                        y0: win[1],
                        x1: win[2],
                        y1: win[3],
                    },
                    fill,
                    seed,
                    &format!("probe/occlusion/{j}"),
                )?;
                items.push(Item {
                    id: format!("{}/occlusion/{j}", case.id),
                    image: Arc::new(img),
                    prompt: case.prompt.clone(),
                });
            }
        }
        let recs = runner.run(items).await?;
        let mut recs = recs.into_iter();
        for (i, wins) in &occ {
            let cw = &mut work[*i];
            let base = cw.base.observation().cloned().unwrap_or_default();
            let mine: Vec<RunRecord> = recs.by_ref().take(wins.len()).collect();
            let scores: Vec<f64> = mine
                .iter()
                .map(|r| saliency::sensitivity(&base, r.observation(), &norm))
                .collect();
            if let Some(info) = &mut cw.occlusion {
                info.failed_runs = mine.iter().filter(|r| r.observation().is_none()).count();
            }
            let (w, h) = (cw.case.image.width(), cw.case.image.height());
            cw.map = Some(saliency::occlusion_map(w, h, wins, &scores));
        }
    }

    // 3. Regions and controls.
    for cw in &mut work {
        let Some(map) = &cw.map else { continue };
        let comps = match settings.regions {
            RegionMode::Components | RegionMode::Both => {
                regions::components(map, settings.threshold, settings.top_k)
            }
            RegionMode::Grid => Vec::new(),
        };
        let tiles = match settings.regions {
            RegionMode::Grid | RegionMode::Both => regions::grid(map, settings.grid),
            RegionMode::Components => Vec::new(),
        };
        let evidence = match settings.regions {
            RegionMode::Grid => regions::top_by_mass(&tiles, settings.top_k)
                .into_iter()
                .filter(|r| r.mass > 0.0)
                .collect(),
            _ => comps.clone(),
        };
        let mut occupied = vec![false; map.values.len()];
        for r in &evidence {
            for (o, m) in occupied.iter_mut().zip(&r.mask) {
                *o |= *m;
            }
        }
        let gray = cw.case.image.to_gray8().0.to_unit_f32();
        let tissue = regions::tissue_mask(&gray);
        let controls: Vec<Region> = evidence
            .iter()
            .enumerate()
            .filter_map(|(i, ev)| {
                regions::place_control(map, ev, &occupied, &tissue, format!("K{}", i + 1))
            })
            .collect();
        cw.probed = comps.into_iter().chain(tiles).chain(controls).collect();
        cw.evidence = evidence;
    }

    // 4. Masked re-runs: every probed region × fill.
    let mut items = Vec::new();
    for cw in &work {
        let (w, h) = (cw.case.image.width(), cw.case.image.height());
        for r in &cw.probed {
            for &f in &settings.fills {
                let img = masked(
                    cw.case,
                    pixel_mask(r, w, h),
                    fill_of(f, settings),
                    seed,
                    &format!("probe/{}/{}", r.id, f.as_str()),
                )?;
                items.push(Item {
                    id: format!("{}/{}/{}", cw.case.id, r.id, f.as_str()),
                    image: Arc::new(img),
                    prompt: cw.case.prompt.clone(),
                });
            }
        }
    }
    let mut recs = runner.run(items).await?.into_iter();

    // 5. Results, verdicts, overlays.
    let overlay_dir = dir.join(OVERLAY_DIR);
    let mut case_views = Vec::new();
    let mut overlays = Vec::new();
    let mut used_names: Vec<String> = Vec::new();
    struct Row {
        verdict: Verdict,
        evidence: Option<f64>,
        control: Option<f64>,
        lesion: bool,
        pointing: Option<f64>,
        iou: Option<f64>,
        hit: Option<f64>,
        /// Per fill (settings order): evidence and control flipped, as 0/1.
        fills: Vec<(Option<f64>, Option<f64>)>,
    }
    let mut rows = Vec::new();
    for cw in &work {
        let base_obs = cw.base.observation();
        let base_answer = base_obs.and_then(|o| o.answer.clone()).unwrap_or_default();
        let base_norm = norm.normalize(&base_answer);
        let mut views: Vec<RegionView> = Vec::new();
        for r in &cw.probed {
            let mut runs = Vec::new();
            for &f in &settings.fills {
                let rec = recs
                    .next()
                    .ok_or_else(|| ProbeError::Internal("missing probe record".into()))?;
                let mut v = RunView {
                    fill: f.as_str(),
                    key: rec.key.clone(),
                    answer: None,
                    flipped: None,
                    delta_confidence: None,
                    delta_entropy: None,
                    delta_probability: None,
                    drift: None,
                    error: None,
                };
                match (rec.observation(), base_obs) {
                    (Some(o), Some(b)) => {
                        let a = o.answer.clone().unwrap_or_default();
                        v.flipped = Some(norm.normalize(&a) != base_norm);
                        v.answer = Some(a);
                        v.delta_confidence = o.confidence.zip(b.confidence).map(|(x, y)| x - y);
                        v.delta_entropy = o.entropy.zip(b.entropy).map(|(x, y)| x - y);
                        v.delta_probability = probability(o, &base_answer)
                            .zip(probability(b, &base_answer))
                            .map(|(x, y)| x - y);
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
                runs.push(v);
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
        // Rank non-control regions by effect: flip rate, then the drop in the baseline answer's
        // probability (else confidence), then id order.
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

        let top = cw.evidence.first();
        let control = top.and_then(|t| {
            views
                .iter()
                .find(|v| v.control_of.as_deref() == Some(t.id.as_str()))
        });
        let ev_rate = top.and_then(|t| views.iter().find(|v| v.id == t.id)?.flip_rate);
        let ctl_rate = control.and_then(|c| c.flip_rate);
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

        let localisation = match (cw.truth, &cw.map) {
            (Some(t), Some(map)) => {
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
        let flips = |id: Option<&str>| -> Vec<Option<f64>> {
            let runs = id.and_then(|id| views.iter().find(|v| v.id == id));
            settings
                .fills
                .iter()
                .map(|f| {
                    runs?
                        .runs
                        .iter()
                        .find(|r| r.fill == f.as_str())?
                        .flipped
                        .map(|b| b as u8 as f64)
                })
                .collect()
        };
        let fill_flips = flips(top.map(|t| t.id.as_str()))
            .into_iter()
            .zip(flips(control.map(|c| c.id.as_str())))
            .collect();
        rows.push(Row {
            fills: fill_flips,
            verdict,
            evidence: ev_rate,
            control: ctl_rate,
            lesion: cw.truth.is_some(),
            pointing: localisation.map(|l| l.0 as u8 as f64),
            iou: localisation.map(|l| l.1),
            hit: localisation.map(|l| l.2 as u8 as f64),
        });

        // Overlay.
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
            "control_region": control.map(|c| c.id.clone()),
            "evidence_flip_rate": ev_rate,
            "control_flip_rate": ctl_rate,
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
    }

    let iters = settings.bootstrap_iterations;
    let bseed = settings.bootstrap_seed;
    let subset = |name: &str, keep: &dyn Fn(&Row) -> bool| {
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
        let by_fill: serde_json::Map<String, serde_json::Value> = settings
            .fills
            .iter()
            .enumerate()
            .map(|(i, f)| {
                let e = est(
                    &format!("evidence/{}", f.as_str()),
                    rs.iter().filter_map(|r| r.fills[i].0).collect(),
                );
                let c = est(
                    &format!("control/{}", f.as_str()),
                    rs.iter().filter_map(|r| r.fills[i].1).collect(),
                );
                (
                    f.as_str().to_string(),
                    json!({ "evidence_flip_rate": e, "control_flip_rate": c }),
                )
            })
            .collect();
        v["by_fill"] = serde_json::Value::Object(by_fill);
        strip_nulls(&mut v);
        v
    };
    let all = subset("all", &|_| true);
    let lesion = subset("lesion", &|r: &Row| r.lesion);
    let counts = |v: Verdict| rows.iter().filter(|r| r.verdict == v).count();
    let (g, ng, inc) = (
        counts(Verdict::Grounded),
        counts(Verdict::NotGrounded),
        counts(Verdict::Inconclusive),
    );
    let headline = format!(
        "probe: {g} of {} cases grounded, {ng} not grounded, {inc} inconclusive",
        rows.len()
    );
    let doc = json!({
        "schema_version": SCHEMA_VERSION,
        "kind": "clarity_probe",
        "tool_version": TOOL_VERSION,
        "plan_hash": plan_hash,
        "adapter": identity,
        "seed": seed,
        "settings": settings,
        "rules": {
            "verdict": verdict::rule_text(settings.flip_fraction, settings.margin),
            "flip": "the masked run's answer, normalised as configured, differs from the baseline's",
            "ranking": "non-control regions by flip rate over fills, then by the mean drop in the baseline answer's probability (else confidence), then id",
            "control": format!("the evidence region's shape translated on a lattice of step max(1, min(w, h)/32) px to the position with the least saliency mass that overlaps no evidence region and lies at least {} on tissue", regions::CONTROL_MIN_TISSUE),
            "tissue": "pixels whose gray intensity is at least min + 0.1 x (max - min) of the image",
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
            "bootstrap": { "iterations": iters, "seed": bseed, "method": "percentile 95% interval, resampling cases" },
        },
    });
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
        headline,
        stats: runner.stats.clone(),
    })
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
