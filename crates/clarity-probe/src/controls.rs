//! Control regions matched to an evidence region (SPEC §6): the same shape and area, the same
//! tissue and intensity distribution, so that masking a control differs from masking the
//! evidence only in *which* pixels the model loses, not in how much the fill changes the image.
//!
//! - **Mirrored**: the evidence region reflected about the body midline, found as the vertical
//!   axis about which the image is most symmetric ([`midline`]). In a chest radiograph that is
//!   the same place in the other lung.
//! - **Intensity-matched**: translations of the evidence shape (lattice step
//!   `max(1, min(w, h) / 32)` px) whose *tissue context* is closest to the evidence region's, on
//!   the evidence's side of the midline first, excluding the evidence, its neighbourhood
//!   (dilated by `gap = max(2, min(bw, bh) / 4)` px), every other evidence region and the
//!   controls already chosen.
//!
//! **What is matched.** The distance is the 1-Wasserstein distance between the gray
//! intensities of the candidate's ring (the shape dilated by `gap`, minus the shape) and the
//! evidence region's ring: the tissue the region sits in. The region's own pixels are *not*
//! matched, because they are what is under test — a bright nodule would pull an
//! own-intensity match onto bright mediastinum or bone, the very bias a fair control removes.
//! The distance between the region's own intensities (`content_distance`) is recorded beside
//! it, so a reviewer sees both. A control whose ring distance exceeds `control_max_distance` is
//! not a match and is not used (the mirrored one included: an evidence region on the heart
//! border mirrors into lung). Every choice is deterministic (ties: top-most, then left-most).

use serde::Serialize;

use crate::regions::{Region, RegionKind};
use crate::saliency::SaliencyMap;

/// The body midline: the vertical axis `x = axis` (in pixel-edge coordinates: pixel `x`
/// mirrors to `2·axis − 1 − x`) about which the image is most symmetric.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Midline {
    /// Axis position in px from the left edge (a multiple of 0.5).
    pub axis: f64,
    /// Mean absolute difference between mirrored pixels (intensities in `[0, 1]`).
    pub asymmetry: f64,
}

/// The axis among half-pixel positions in the central 30 % of the width (0.35 w … 0.65 w)
/// that minimises the mean |g(x, y) − g(2a − 1 − x, y)| over pixel pairs inside the image;
/// ties go to the axis nearest the image centre, then the left one.
pub fn midline(gray: &[f32], w: u32, h: u32) -> Midline {
    let (w, h) = (w as i64, h as i64);
    let lo = (0.7 * w as f64).floor() as i64; // 2 × 0.35 w, in half pixels
    let hi = (1.3 * w as f64).ceil() as i64;
    let mut best: Option<(f64, i64, i64)> = None; // (asymmetry, |c − w|, c)
    for c in lo.max(1)..=hi.min(2 * w - 1) {
        let (mut sum, mut n) = (0f64, 0u64);
        for y in 0..h {
            let row = &gray[(y * w) as usize..((y + 1) * w) as usize];
            for x in 0..w {
                let m = c - 1 - x;
                if m <= x || m >= w {
                    continue;
                }
                sum += (row[x as usize] - row[m as usize]).abs() as f64;
                n += 1;
            }
        }
        if n == 0 {
            continue;
        }
        let a = sum / n as f64;
        let key = (a, (c - w).abs(), c);
        if best.is_none_or(|b| key.0 < b.0 || (key.0 == b.0 && (key.1, key.2) < (b.1, b.2))) {
            best = Some(key);
        }
    }
    match best {
        Some((a, _, c)) => Midline {
            axis: c as f64 / 2.0,
            asymmetry: a,
        },
        None => Midline {
            axis: w as f64 / 2.0,
            asymmetry: 0.0,
        },
    }
}

/// How a control was chosen.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ControlKind {
    Mirror,
    Matched,
    LeastSalient,
}

/// The statistics a reviewer needs to check a control's match.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct MatchStats {
    pub kind: ControlKind,
    /// Mean and standard deviation of the control's gray intensities in `[0, 1]`.
    pub mean: f64,
    pub std: f64,
    /// 1-Wasserstein distance between the control's ring (its tissue context) and the
    /// evidence region's ring: what the match minimises.
    pub distance: f64,
    /// 1-Wasserstein distance between the control's and the evidence region's own pixels.
    pub content_distance: f64,
    /// `same` or `opposite` side of the midline as the evidence region's centroid.
    pub side: &'static str,
}

/// A chosen control and its statistics.
#[derive(Debug, Clone)]
pub struct Control {
    pub region: Region,
    pub stats: MatchStats,
}

/// What was tried for a case, for `probe.json`.
#[derive(Debug, Clone, Serialize)]
pub struct ControlReport {
    pub midline: Midline,
    /// Mean and standard deviation of the evidence region's intensities, and of its ring.
    pub evidence_mean: f64,
    pub evidence_std: f64,
    pub ring_mean: f64,
    pub ring_std: f64,
    /// Ring width and neighbourhood exclusion, px.
    pub gap: u32,
    /// Why the mirrored region was not used, when it was not.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub mirror_rejected: Option<String>,
    /// Candidate placements considered for the intensity-matched controls.
    pub candidates: usize,
    /// Candidates within `control_max_distance`.
    pub within_distance: usize,
}

/// Sorted intensities of the pixels at `offsets` shifted by `(x, y)`.
fn sorted_values(gray: &[f32], w: u32, rel: &[(u32, u32)], x: u32, y: u32) -> Vec<f32> {
    let mut v: Vec<f32> = rel
        .iter()
        .map(|&(dx, dy)| gray[((y + dy) * w + (x + dx)) as usize])
        .collect();
    v.sort_by(f32::total_cmp);
    v
}

fn mean_std(v: &[f32]) -> (f64, f64) {
    let n = v.len().max(1) as f64;
    let m = v.iter().map(|&x| x as f64).sum::<f64>() / n;
    let var = v.iter().map(|&x| (x as f64 - m).powi(2)).sum::<f64>() / n;
    (m, var.sqrt())
}

/// 1-Wasserstein distance of two sorted samples: the mean |quantile difference| at
/// `max(len)` evenly spaced probabilities (exact for equal sizes); 0 when either is empty.
pub fn wasserstein(a: &[f32], b: &[f32]) -> f64 {
    if a.is_empty() || b.is_empty() {
        return 0.0;
    }
    let m = a.len().max(b.len());
    let q = |v: &[f32], i: usize| v[(i * v.len()) / m] as f64;
    (0..m).map(|i| (q(a, i) - q(b, i)).abs()).sum::<f64>() / m as f64
}

/// Sorted intensities at `offsets` shifted by `(x, y)`, skipping pixels outside the image.
fn sorted_ring(gray: &[f32], w: u32, h: u32, ring: &[(i64, i64)], x: i64, y: i64) -> Vec<f32> {
    let mut v: Vec<f32> = ring
        .iter()
        .map(|&(dx, dy)| (x + dx, y + dy))
        .filter(|&(px, py)| px >= 0 && py >= 0 && px < w as i64 && py < h as i64)
        .map(|(px, py)| gray[(py * w as i64 + px) as usize])
        .collect();
    v.sort_by(f32::total_cmp);
    v
}

/// Square (Chebyshev) dilation of a mask by `r` px.
fn dilate(mask: &[bool], w: u32, h: u32, r: u32) -> Vec<bool> {
    let (w, h, r) = (w as usize, h as usize, r as usize);
    let mut horiz = vec![false; w * h];
    for y in 0..h {
        for x in 0..w {
            if mask[y * w + x] {
                for v in &mut horiz[y * w + x.saturating_sub(r)..=y * w + (x + r).min(w - 1)] {
                    *v = true;
                }
            }
        }
    }
    let mut out = vec![false; w * h];
    for y in 0..h {
        for x in 0..w {
            if horiz[y * w + x] {
                for yy in y.saturating_sub(r)..=(y + r).min(h - 1) {
                    out[yy * w + x] = true;
                }
            }
        }
    }
    out
}

fn centroid_x(r: &Region, w: u32) -> f64 {
    let (mut s, mut n) = (0f64, 0u64);
    for (i, _) in r.mask.iter().enumerate().filter(|(_, m)| **m) {
        s += (i as u32 % w) as f64 + 0.5;
        n += 1;
    }
    s / n.max(1) as f64
}

/// Settings of [`matched_controls`].
#[derive(Debug, Clone, Copy)]
pub struct MatchSettings {
    /// Intensity-matched controls wanted (besides the mirror).
    pub count: usize,
    pub mirror: bool,
    pub max_distance: f64,
}

/// The controls of `evidence` (ids `K1…`: the mirrored region first when it qualifies, then
/// the intensity-matched ones by increasing distance), and what was tried.
/// `occupied`: every evidence region's pixels; `gray`: intensities in `[0, 1]`, row-major.
pub fn matched_controls(
    map: &SaliencyMap,
    gray: &[f32],
    evidence: &Region,
    occupied: &[bool],
    s: MatchSettings,
) -> (Vec<Control>, ControlReport) {
    let (w, h) = (map.width, map.height);
    let mid = midline(gray, w, h);
    let [bx0, by0, bx1, by1] = evidence.bbox;
    let (bw, bh) = (bx1 - bx0, by1 - by0);
    let rel: Vec<(u32, u32)> = (by0..by1)
        .flat_map(|y| (bx0..bx1).map(move |x| (x, y)))
        .filter(|&(x, y)| evidence.contains(x, y, w))
        .map(|(x, y)| (x - bx0, y - by0))
        .collect();
    let ev_values = sorted_values(gray, w, &rel, bx0, by0);
    let (ev_mean, ev_std) = mean_std(&ev_values);
    let ev_side = centroid_x(evidence, w) < mid.axis;
    let gap = (bw.min(bh) / 4).max(2);
    let near = dilate(&evidence.mask, w, h, gap);
    // The ring, relative to the bbox corner.
    let ring: Vec<(i64, i64)> = near
        .iter()
        .zip(&evidence.mask)
        .enumerate()
        .filter(|(_, (n, e))| **n && !**e)
        .map(|(i, _)| {
            (
                (i as u32 % w) as i64 - bx0 as i64,
                (i as u32 / w) as i64 - by0 as i64,
            )
        })
        .collect();
    let ev_ring = sorted_ring(gray, w, h, &ring, bx0 as i64, by0 as i64);
    let (ring_mean, ring_std) = mean_std(&ev_ring);
    let mut excluded = near;
    for (e, o) in excluded.iter_mut().zip(occupied) {
        *e |= *o;
    }
    let mut out: Vec<Control> = Vec::new();
    let mut report = ControlReport {
        midline: mid,
        evidence_mean: ev_mean,
        evidence_std: ev_std,
        ring_mean,
        ring_std,
        gap,
        mirror_rejected: None,
        candidates: 0,
        within_distance: 0,
    };
    let make = |id: String, mask: Vec<bool>, stats: MatchStats| -> Option<Control> {
        let mut r = Region::from_mask(id, RegionKind::Control, map, mask)?;
        r.control_of = Some(evidence.id.clone());
        Some(Control { region: r, stats })
    };

    // The mirrored region.
    if s.mirror {
        let c = (2.0 * mid.axis).round() as i64;
        let mut mask = vec![false; (w * h) as usize];
        let mut values = Vec::with_capacity(rel.len());
        let mut why = None;
        for &(dx, dy) in &rel {
            let (x, y) = ((bx0 + dx) as i64, (by0 + dy) as i64);
            let m = c - 1 - x;
            if m < 0 || m >= w as i64 {
                why = Some("the mirrored region leaves the image".to_string());
                break;
            }
            let i = (y * w as i64 + m) as usize;
            if excluded[i] {
                why = Some(
                    "the mirrored region overlaps the evidence or its neighbourhood (the evidence crosses the midline)"
                        .to_string(),
                );
                break;
            }
            mask[i] = true;
            values.push(gray[i]);
        }
        if why.is_none() {
            values.sort_by(f32::total_cmp);
            // The mirrored ring: each ring pixel mirrored (outside the image: skipped).
            let mut ring_values: Vec<f32> = ring
                .iter()
                .map(|&(dx, dy)| (c - 1 - (bx0 as i64 + dx), by0 as i64 + dy))
                .filter(|&(px, py)| px >= 0 && py >= 0 && px < w as i64 && py < h as i64)
                .map(|(px, py)| gray[(py * w as i64 + px) as usize])
                .collect();
            ring_values.sort_by(f32::total_cmp);
            let d = wasserstein(&ev_ring, &ring_values);
            let content = wasserstein(&ev_values, &values);
            if d > s.max_distance {
                why = Some(format!(
                    "intensity distance {} exceeds control_max_distance {}",
                    clarity_core::json::format_num(d),
                    clarity_core::json::format_num(s.max_distance)
                ));
            } else {
                let (m, sd) = mean_std(&values);
                let stats = MatchStats {
                    kind: ControlKind::Mirror,
                    mean: m,
                    std: sd,
                    distance: d,
                    content_distance: content,
                    side: "opposite",
                };
                if let Some(ctl) = make("K1".into(), mask, stats) {
                    for (e, m) in excluded.iter_mut().zip(&ctl.region.mask) {
                        *e |= *m;
                    }
                    out.push(ctl);
                }
            }
        }
        report.mirror_rejected = why;
    }

    // Intensity-matched translations.
    if s.count > 0 && bw <= w && bh <= h {
        let step = (w.min(h) / 32).max(1) as usize;
        // (other side, distance, y, x)
        let mut cands: Vec<(bool, f64, u32, u32)> = Vec::new();
        let cx_rel = rel.iter().map(|&(dx, _)| dx as f64 + 0.5).sum::<f64>() / rel.len() as f64;
        for y in (0..=h - bh).step_by(step) {
            'pos: for x in (0..=w - bw).step_by(step) {
                for &(dx, dy) in &rel {
                    if excluded[((y + dy) * w + (x + dx)) as usize] {
                        continue 'pos;
                    }
                }
                report.candidates += 1;
                let v = sorted_ring(gray, w, h, &ring, x as i64, y as i64);
                let d = wasserstein(&ev_ring, &v);
                if d <= s.max_distance {
                    let side = (x as f64 + cx_rel) < mid.axis;
                    cands.push((side != ev_side, d, y, x));
                }
            }
        }
        report.within_distance = cands.len();
        cands.sort_by(|a, b| {
            a.0.cmp(&b.0)
                .then(a.1.total_cmp(&b.1))
                .then(a.2.cmp(&b.2))
                .then(a.3.cmp(&b.3))
        });
        let mut chosen = 0;
        for (other, d, y, x) in cands {
            if chosen == s.count {
                break;
            }
            if rel
                .iter()
                .any(|&(dx, dy)| excluded[((y + dy) * w + (x + dx)) as usize])
            {
                continue;
            }
            let mut mask = vec![false; (w * h) as usize];
            for &(dx, dy) in &rel {
                mask[((y + dy) * w + (x + dx)) as usize] = true;
            }
            let v = sorted_values(gray, w, &rel, x, y);
            let (m, sd) = mean_std(&v);
            let stats = MatchStats {
                kind: ControlKind::Matched,
                mean: m,
                std: sd,
                distance: d,
                content_distance: wasserstein(&ev_values, &v),
                side: if other { "opposite" } else { "same" },
            };
            if let Some(ctl) = make(format!("K{}", out.len() + 1), mask, stats) {
                for (e, m) in excluded.iter_mut().zip(&ctl.region.mask) {
                    *e |= *m;
                }
                out.push(ctl);
                chosen += 1;
            }
        }
    }
    (out, report)
}

/// The statistics of a control placed another way (e.g. least-salient), for the record.
pub fn stats_of(
    gray: &[f32],
    evidence: &Region,
    control: &Region,
    w: u32,
    mid: Midline,
    kind: ControlKind,
) -> MatchStats {
    let vals = |r: &Region| {
        let mut v: Vec<f32> = r
            .mask
            .iter()
            .zip(gray)
            .filter(|(m, _)| **m)
            .map(|(_, g)| *g)
            .collect();
        v.sort_by(f32::total_cmp);
        v
    };
    let h = (gray.len() / w.max(1) as usize) as u32;
    let gap = {
        let [x0, y0, x1, y1] = evidence.bbox;
        ((x1 - x0).min(y1 - y0) / 4).max(2)
    };
    let ring_of = |r: &Region| {
        let near = dilate(&r.mask, w, h, gap);
        let mut v: Vec<f32> = near
            .iter()
            .zip(&r.mask)
            .zip(gray)
            .filter(|((n, m), _)| **n && !**m)
            .map(|(_, g)| *g)
            .collect();
        v.sort_by(f32::total_cmp);
        v
    };
    let (e, c) = (vals(evidence), vals(control));
    let (m, sd) = mean_std(&c);
    let same = (centroid_x(evidence, w) < mid.axis) == (centroid_x(control, w) < mid.axis);
    MatchStats {
        kind,
        mean: m,
        std: sd,
        distance: wasserstein(&ring_of(evidence), &ring_of(control)),
        content_distance: wasserstein(&e, &c),
        side: if same { "same" } else { "opposite" },
    }
}

/// Mean and standard deviation of a region's intensities.
pub fn region_mean_std(gray: &[f32], r: &Region) -> (f64, f64) {
    let v: Vec<f32> = r
        .mask
        .iter()
        .zip(gray)
        .filter(|(m, _)| **m)
        .map(|(_, g)| *g)
        .collect();
    mean_std(&v)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn midline_of_a_shifted_symmetric_image() {
        // Symmetric about x = 11 (pixels 10 and 11 mirror each other) in a 20 px wide image.
        let (w, h) = (20u32, 6u32);
        let gray: Vec<f32> = (0..w * h)
            .map(|i| {
                let x = (i % w) as f32 + 0.5;
                ((x - 11.0).abs() / 11.0).min(1.0) * 0.8 + 0.1 * ((i / w) as f32 / 6.0)
            })
            .collect();
        let m = midline(&gray, w, h);
        assert_eq!(m.axis, 11.0);
        assert!(m.asymmetry < 1e-6, "{m:?}");
    }

    #[test]
    fn dilation_is_square() {
        let mut m = vec![false; 25];
        m[12] = true;
        let d = dilate(&m, 5, 5, 1);
        assert_eq!(d.iter().filter(|&&b| b).count(), 9);
        assert!(d[6] && d[18] && !d[0]);
    }

    #[test]
    fn wasserstein_of_shifted_samples() {
        assert!((wasserstein(&[0.1, 0.2, 0.3], &[0.2, 0.3, 0.4]) - 0.1).abs() < 1e-6);
        assert_eq!(wasserstein(&[0.5], &[0.5]), 0.0);
        // Unequal sizes: quantiles.
        assert!((wasserstein(&[0.0, 1.0], &[0.0, 0.0, 1.0, 1.0]) - 0.0).abs() < 1e-9);
        assert!((wasserstein(&[0.0], &[1.0, 1.0]) - 1.0).abs() < 1e-9);
    }
}
