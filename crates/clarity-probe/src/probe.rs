//! The probe pipeline and `probe.json`.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use clarity_adapters::{Adapter, AdapterIdentity};
use clarity_analysis::Normalizer;
use clarity_core::RunRecord;
use clarity_engine::{
    CohortCase, CohortConfig, ControlMode, ExecOptions, FillName, Prepared, ProbeSettings,
    RegionMode, SaliencySource, SweepConfig,
};
use clarity_image::{BitDepth, Image};
use clarity_perturb::{Fill, RegionMask, derive_seed, mask_region, rng_from_seed};
use serde::Serialize;

use crate::ProbeError;
use crate::controls::{self, ControlKind, MatchSettings};
use crate::regions::{self, Region, RegionKind};
use crate::runner::{Item, Runner, RunnerStats};
use crate::saliency::{self, SaliencyMap};
use crate::summary::FillVerdict;

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
    /// Per fill (then `all_fills`): is masking the evidence's effect on the answer specific
    /// compared with the matched controls (on the lesion cases when there are any)?
    pub specificity: Vec<FillVerdict>,
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

pub(crate) struct CaseWork<'a> {
    pub(crate) case: &'a CohortCase,
    pub(crate) truth: Option<[u32; 4]>,
    pub(crate) base: RunRecord,
    pub(crate) map: Option<SaliencyMap>,
    pub(crate) source: &'static str,
    pub(crate) coarse: Option<[u32; 2]>,
    pub(crate) occlusion: Option<OcclusionInfo>,
    pub(crate) evidence: Vec<Region>,
    /// Every probed region: components, grid tiles, the evidence box, controls (in that order).
    pub(crate) probed: Vec<Region>,
    /// The top evidence region's controls (id, how they match).
    pub(crate) control_stats: Vec<(String, controls::MatchStats)>,
    pub(crate) control_report: Option<controls::ControlReport>,
}

#[derive(Debug, Clone, Serialize)]
pub(crate) struct OcclusionInfo {
    window: u32,
    stride: u32,
    fill: &'static str,
    windows: usize,
    area: [u32; 4],
    failed_runs: usize,
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
    run_probe_inner(
        config, cohort, adapter, plan_hash, settings, dir, opts, None,
    )
    .await
}

/// [`run_probe_with`], recording `scope` (a scoped probe's choices) in `probe.json`.
#[allow(clippy::too_many_arguments)]
pub(crate) async fn run_probe_inner(
    config: &SweepConfig,
    cohort: &[CohortCase],
    adapter: Arc<dyn Adapter>,
    plan_hash: Option<&str>,
    settings: &ProbeSettings,
    dir: &Path,
    opts: &ExecOptions,
    scope: Option<serde_json::Value>,
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
            control_stats: Vec::new(),
            control_report: None,
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
        let (w, h) = (cw.case.image.width(), cw.case.image.height());
        if let Some(b) = settings.evidence_bbox {
            // A fixed box is the claimed evidence: no saliency, a zero map for masses.
            let map = SaliencyMap {
                width: w,
                height: h,
                values: vec![0.0; (w * h) as usize],
            };
            let [x0, y0, x1, y1] = [
                (b[0] * w as f64).floor() as u32,
                (b[1] * h as f64).floor() as u32,
                ((b[2] * w as f64).ceil() as u32).min(w),
                ((b[3] * h as f64).ceil() as u32).min(h),
            ];
            let mask: Vec<bool> = (0..w * h)
                .map(|i| (x0..x1).contains(&(i % w)) && (y0..y1).contains(&(i / w)))
                .collect();
            cw.evidence = Region::from_mask("B1".into(), RegionKind::Box, &map, mask)
                .into_iter()
                .collect();
            cw.map = Some(map);
            cw.source = "evidence_bbox";
        }
        let Some(map) = &cw.map else { continue };
        let (comps, tiles) = if settings.evidence_bbox.is_some() {
            (Vec::new(), Vec::new())
        } else {
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
            cw.evidence = match settings.regions {
                RegionMode::Grid => regions::top_by_mass(&tiles, settings.top_k)
                    .into_iter()
                    .filter(|r| r.mass > 0.0)
                    .collect(),
                _ => comps.clone(),
            };
            (comps, tiles)
        };
        let mut occupied = vec![false; map.values.len()];
        for r in &cw.evidence {
            for (o, m) in occupied.iter_mut().zip(&r.mask) {
                *o |= *m;
            }
        }
        let gray = cw.case.image.to_gray8().0.to_unit_f32();
        // Controls of the top evidence region, the one the comparison is about.
        let mut controls = Vec::new();
        if let Some(top) = cw.evidence.first() {
            match settings.control {
                ControlMode::Matched => {
                    let (cs, report) = controls::matched_controls(
                        map,
                        &gray,
                        top,
                        &occupied,
                        MatchSettings {
                            count: settings.controls,
                            mirror: settings.mirror_control,
                            max_distance: settings.control_max_distance,
                        },
                    );
                    controls = cs;
                    cw.control_report = Some(report);
                }
                ControlMode::LeastSalient => {
                    // The report (midline, evidence and ring statistics) without choosing.
                    let (_, report) = controls::matched_controls(
                        map,
                        &gray,
                        top,
                        &occupied,
                        MatchSettings {
                            count: 0,
                            mirror: false,
                            max_distance: settings.control_max_distance,
                        },
                    );
                    let tissue = regions::tissue_mask(&gray);
                    if let Some(r) =
                        regions::place_control(map, top, &occupied, &tissue, "K1".into())
                    {
                        let stats = controls::stats_of(
                            &gray,
                            top,
                            &r,
                            w,
                            report.midline,
                            ControlKind::LeastSalient,
                        );
                        controls.push(controls::Control { region: r, stats });
                    }
                    cw.control_report = Some(report);
                }
            }
        }
        cw.control_stats = controls
            .iter()
            .map(|c| (c.region.id.clone(), c.stats.clone()))
            .collect();
        cw.probed = comps
            .into_iter()
            .chain(tiles)
            .chain(
                cw.evidence
                    .iter()
                    .filter(|r| r.kind == RegionKind::Box)
                    .cloned(),
            )
            .chain(controls.into_iter().map(|c| c.region))
            .collect();
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
    let recs = runner.run(items).await?;

    // 5. Results, verdicts, overlays, probe.json.
    crate::summary::finish(crate::summary::Finish {
        work: &work,
        recs,
        settings,
        norm: &norm,
        dir,
        identity,
        plan_hash,
        seed,
        stats: runner.stats.clone(),
        scope,
    })
}
