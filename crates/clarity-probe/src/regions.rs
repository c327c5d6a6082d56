//! Regions of a saliency map: thresholded connected components, a k×k grid, and the control
//! region placed for each evidence region.

use serde::Serialize;

use crate::saliency::SaliencyMap;

/// How a region was made.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum RegionKind {
    /// A connected component of the thresholded map.
    Component,
    /// A tile of the k×k grid.
    Grid,
    /// A control of an evidence region (same shape; see [`crate::controls`]).
    Control,
    /// The fixed evidence box of `evidence_bbox`.
    Box,
}

/// A set of pixels of the image.
#[derive(Debug, Clone, PartialEq)]
pub struct Region {
    /// `C1…` components (by mass), `G1…` grid tiles (row-major), `K1…` controls.
    pub id: String,
    pub kind: RegionKind,
    /// `[x0, y0, x1, y1]`, end-exclusive.
    pub bbox: [u32; 4],
    /// Pixel count.
    pub area: u64,
    /// Sum of the saliency values over the region's pixels.
    pub mass: f64,
    /// One flag per image pixel, row-major.
    pub mask: Vec<bool>,
    /// For a control: the id of its evidence region.
    pub control_of: Option<String>,
}

impl Region {
    pub(crate) fn from_mask(
        id: String,
        kind: RegionKind,
        map: &SaliencyMap,
        mask: Vec<bool>,
    ) -> Option<Region> {
        let w = map.width as usize;
        let (mut x0, mut y0, mut x1, mut y1) = (usize::MAX, usize::MAX, 0, 0);
        let (mut area, mut mass) = (0u64, 0f64);
        for (i, _) in mask.iter().enumerate().filter(|(_, m)| **m) {
            let (x, y) = (i % w, i / w);
            x0 = x0.min(x);
            y0 = y0.min(y);
            x1 = x1.max(x + 1);
            y1 = y1.max(y + 1);
            area += 1;
            mass += map.values[i] as f64;
        }
        (area > 0).then_some(Region {
            id,
            kind,
            bbox: [x0 as u32, y0 as u32, x1 as u32, y1 as u32],
            area,
            mass,
            mask,
            control_of: None,
        })
    }

    /// Whether pixel `(x, y)` is in the region.
    pub fn contains(&self, x: u32, y: u32, width: u32) -> bool {
        self.mask[y as usize * width as usize + x as usize]
    }
}

/// Connected components (8-connected) of the pixels whose saliency is at least `threshold ×
/// max`, the `top_k` with the largest saliency mass (ties: first pixel in raster order), named
/// `C1…` in that order. An all-zero map has none.
pub fn components(map: &SaliencyMap, threshold: f64, top_k: usize) -> Vec<Region> {
    let (w, h) = (map.width as usize, map.height as usize);
    let max = map.max();
    if max <= 0.0 {
        return Vec::new();
    }
    let t = (threshold as f32 * max).max(f32::MIN_POSITIVE);
    let on: Vec<bool> = map.values.iter().map(|&v| v >= t).collect();
    let mut label = vec![u32::MAX; w * h];
    // (mass, first pixel, pixels)
    let mut comps: Vec<(f64, usize, Vec<usize>)> = Vec::new();
    let mut stack = Vec::new();
    for start in 0..w * h {
        if !on[start] || label[start] != u32::MAX {
            continue;
        }
        let id = comps.len() as u32;
        label[start] = id;
        stack.push(start);
        let mut pixels = Vec::new();
        let mut mass = 0f64;
        while let Some(i) = stack.pop() {
            pixels.push(i);
            mass += map.values[i] as f64;
            let (x, y) = ((i % w) as isize, (i / w) as isize);
            for dy in -1..=1isize {
                for dx in -1..=1isize {
                    let (nx, ny) = (x + dx, y + dy);
                    if nx < 0 || ny < 0 || nx >= w as isize || ny >= h as isize {
                        continue;
                    }
                    let j = ny as usize * w + nx as usize;
                    if on[j] && label[j] == u32::MAX {
                        label[j] = id;
                        stack.push(j);
                    }
                }
            }
        }
        comps.push((mass, start, pixels));
    }
    comps.sort_by(|a, b| b.0.total_cmp(&a.0).then(a.1.cmp(&b.1)));
    comps
        .into_iter()
        .take(top_k)
        .enumerate()
        .filter_map(|(i, (_, _, pixels))| {
            let mut mask = vec![false; w * h];
            for p in pixels {
                mask[p] = true;
            }
            Region::from_mask(format!("C{}", i + 1), RegionKind::Component, map, mask)
        })
        .collect()
}

/// The `k × k` tiles of the image, row-major, named `G1…`; tile edges at `⌊i·size/k⌋`.
pub fn grid(map: &SaliencyMap, k: u32) -> Vec<Region> {
    let (w, h) = (map.width, map.height);
    let mut out = Vec::new();
    for r in 0..k {
        for c in 0..k {
            let (x0, x1) = (c * w / k, (c + 1) * w / k);
            let (y0, y1) = (r * h / k, (r + 1) * h / k);
            let mut mask = vec![false; w as usize * h as usize];
            for y in y0..y1 {
                for x in x0..x1 {
                    mask[(y * w + x) as usize] = true;
                }
            }
            if let Some(reg) =
                Region::from_mask(format!("G{}", r * k + c + 1), RegionKind::Grid, map, mask)
            {
                out.push(reg);
            }
        }
    }
    out
}

/// The `top_k` regions by saliency mass (ties: input order).
pub fn top_by_mass(regions: &[Region], top_k: usize) -> Vec<Region> {
    let mut idx: Vec<usize> = (0..regions.len()).collect();
    idx.sort_by(|&a, &b| regions[b].mass.total_cmp(&regions[a].mass).then(a.cmp(&b)));
    idx.into_iter()
        .take(top_k)
        .map(|i| regions[i].clone())
        .collect()
}

/// Which pixels count as tissue for control placement: gray intensity (in `[0, 1]`) at least
/// `min + 0.1 × (max − min)` of the image, so empty background (air, padding) is avoided.
pub fn tissue_mask(gray: &[f32]) -> Vec<bool> {
    let lo = gray.iter().copied().fold(f32::INFINITY, f32::min);
    let hi = gray.iter().copied().fold(f32::NEG_INFINITY, f32::max);
    let t = lo + 0.1 * (hi - lo);
    gray.iter().map(|&v| v >= t).collect()
}

/// Minimum fraction of a control's pixels that must be tissue.
pub const CONTROL_MIN_TISSUE: f64 = 0.9;

/// The control of `evidence`: its exact shape translated (bounding box on a lattice of step
/// `max(1, min(w, h) / 32)`) to where it overlaps no evidence pixel (`occupied`), lies at
/// least [`CONTROL_MIN_TISSUE`] on tissue, and covers the least saliency mass (ties: top-most,
/// then left-most). `None` when no placement qualifies.
pub fn place_control(
    map: &SaliencyMap,
    evidence: &Region,
    occupied: &[bool],
    tissue: &[bool],
    id: String,
) -> Option<Region> {
    let (w, h) = (map.width, map.height);
    let [bx0, by0, bx1, by1] = evidence.bbox;
    let (bw, bh) = (bx1 - bx0, by1 - by0);
    if bw > w || bh > h {
        return None;
    }
    // Offsets of the shape's pixels relative to its bbox corner.
    let mut rel: Vec<(u32, u32)> = Vec::with_capacity(evidence.area as usize);
    for y in by0..by1 {
        for x in bx0..bx1 {
            if evidence.contains(x, y, w) {
                rel.push((x - bx0, y - by0));
            }
        }
    }
    let step = (w.min(h) / 32).max(1);
    let need = (CONTROL_MIN_TISSUE * rel.len() as f64).ceil() as usize;
    let mut best: Option<(f64, u32, u32)> = None;
    for y in (0..=h - bh).step_by(step as usize) {
        'pos: for x in (0..=w - bw).step_by(step as usize) {
            let (mut mass, mut on_tissue) = (0f64, 0usize);
            for &(dx, dy) in &rel {
                let i = ((y + dy) * w + (x + dx)) as usize;
                if occupied[i] {
                    continue 'pos;
                }
                mass += map.values[i] as f64;
                on_tissue += tissue[i] as usize;
            }
            if on_tissue < need {
                continue;
            }
            if best.is_none_or(|(m, _, _)| mass < m) {
                best = Some((mass, x, y));
            }
        }
    }
    let (_, x, y) = best?;
    let mut mask = vec![false; w as usize * h as usize];
    for &(dx, dy) in &rel {
        mask[((y + dy) * w + (x + dx)) as usize] = true;
    }
    let mut r = Region::from_mask(id, RegionKind::Control, map, mask)?;
    r.control_of = Some(evidence.id.clone());
    Some(r)
}

/// Intersection over union of two end-exclusive boxes.
pub fn bbox_iou(a: [u32; 4], b: [u32; 4]) -> f64 {
    let ix = a[2].min(b[2]).saturating_sub(a[0].max(b[0])) as f64;
    let iy = a[3].min(b[3]).saturating_sub(a[1].max(b[1])) as f64;
    let inter = ix * iy;
    let area =
        |r: [u32; 4]| (r[2].saturating_sub(r[0]) as f64) * (r[3].saturating_sub(r[1]) as f64);
    let union = area(a) + area(b) - inter;
    if union > 0.0 { inter / union } else { 0.0 }
}
