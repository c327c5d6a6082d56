//! Saliency maps at image resolution: the adapter's own coarse map upsampled, or occlusion
//! sensitivity assembled from sliding-window scores.

use clarity_analysis::Normalizer;
use clarity_core::{Observation, Saliency};

/// A saliency map with one value in `[0, 1]` per image pixel, row-major.
#[derive(Debug, Clone, PartialEq)]
pub struct SaliencyMap {
    pub width: u32,
    pub height: u32,
    pub values: Vec<f32>,
}

impl SaliencyMap {
    /// Bilinear upsampling of a coarse map that covers the whole image (sample centres aligned
    /// with pixel centres, edges clamped), rescaled so the maximum is 1 (all-zero stays zero).
    /// Non-finite values count as 0.
    pub fn from_coarse(s: &Saliency, width: u32, height: u32) -> SaliencyMap {
        let (sw, sh) = (s.width as usize, s.height as usize);
        let n = width as usize * height as usize;
        if sw == 0 || sh == 0 || s.values.len() != sw * sh {
            return SaliencyMap {
                width,
                height,
                values: vec![0.0; n],
            };
        }
        let at = |x: usize, y: usize| {
            let v = s.values[y.min(sh - 1) * sw + x.min(sw - 1)] as f64;
            if v.is_finite() { v.max(0.0) } else { 0.0 }
        };
        let (w, h) = (width as f64, height as f64);
        let mut values = Vec::with_capacity(n);
        for py in 0..height {
            let fy = ((py as f64 + 0.5) / h * sh as f64 - 0.5).max(0.0);
            let y0 = fy.floor() as usize;
            let ay = fy - y0 as f64;
            for px in 0..width {
                let fx = ((px as f64 + 0.5) / w * sw as f64 - 0.5).max(0.0);
                let x0 = fx.floor() as usize;
                let ax = fx - x0 as f64;
                let v = at(x0, y0) * (1.0 - ax) * (1.0 - ay)
                    + at(x0 + 1, y0) * ax * (1.0 - ay)
                    + at(x0, y0 + 1) * (1.0 - ax) * ay
                    + at(x0 + 1, y0 + 1) * ax * ay;
                values.push(v as f32);
            }
        }
        let mut m = SaliencyMap {
            width,
            height,
            values,
        };
        m.normalise();
        m
    }

    /// Divides by the maximum (no-op for an all-zero map).
    pub fn normalise(&mut self) {
        let max = self.values.iter().copied().fold(0.0f32, f32::max);
        if max > 0.0 {
            for v in &mut self.values {
                *v = (*v / max).clamp(0.0, 1.0);
            }
        }
    }

    pub fn max(&self) -> f32 {
        self.values.iter().copied().fold(0.0f32, f32::max)
    }

    /// The first pixel (raster order) holding the maximum, or `None` for an all-zero map.
    pub fn peak(&self) -> Option<(u32, u32)> {
        let max = self.max();
        if max <= 0.0 {
            return None;
        }
        let i = self.values.iter().position(|&v| v == max)?;
        Some((
            (i % self.width as usize) as u32,
            (i / self.width as usize) as u32,
        ))
    }

    pub fn get(&self, x: u32, y: u32) -> f32 {
        self.values[y as usize * self.width as usize + x as usize]
    }
}

/// Occlusion window placement: `size × size` windows every `stride` pixels, the last one flush
/// with the far edge so every pixel of the area is covered; windows clipped to the image.
/// `area` (`[x0, y0, x1, y1]`, end-exclusive) restricts the windows to a box.
pub fn occlusion_windows(
    width: u32,
    height: u32,
    size: u32,
    stride: u32,
    area: Option<[u32; 4]>,
) -> Vec<[u32; 4]> {
    let [ax0, ay0, ax1, ay1] = area.unwrap_or([0, 0, width, height]);
    let (ax1, ay1) = (ax1.min(width), ay1.min(height));
    if ax1 <= ax0 || ay1 <= ay0 || size == 0 || stride == 0 {
        return Vec::new();
    }
    let starts = |lo: u32, hi: u32| -> Vec<u32> {
        let span = hi - lo;
        if span <= size {
            return vec![lo];
        }
        let mut v: Vec<u32> = (lo..=hi - size).step_by(stride as usize).collect();
        if *v.last().expect("non-empty") + size < hi {
            v.push(hi - size);
        }
        v
    };
    let xs = starts(ax0, ax1);
    let ys = starts(ay0, ay1);
    let mut out = Vec::with_capacity(xs.len() * ys.len());
    for &y in &ys {
        for &x in &xs {
            out.push([x, y, (x + size).min(width), (y + size).min(height)]);
        }
    }
    out
}

/// How much masking changed the model's support for its baseline answer, in `[0, 1]`:
/// the drop of the baseline answer's probability when the adapter reports class probabilities;
/// otherwise 1 when the normalised answer changed, else the drop in confidence (0 without one).
/// A failed masked run scores 0.
pub fn sensitivity(base: &Observation, masked: Option<&Observation>, norm: &Normalizer) -> f64 {
    let Some(masked) = masked else { return 0.0 };
    let answer = base.answer.as_deref().unwrap_or("");
    if let (Some(pb), false) = (
        base.probabilities.get(answer),
        masked.probabilities.is_empty(),
    ) {
        let pm = masked.probabilities.get(answer).copied().unwrap_or(0.0);
        return (pb - pm).clamp(0.0, 1.0);
    }
    let flipped = norm.normalize(answer) != norm.normalize(masked.answer.as_deref().unwrap_or(""));
    if flipped {
        return 1.0;
    }
    match (base.confidence, masked.confidence) {
        (Some(a), Some(b)) => (a - b).clamp(0.0, 1.0),
        _ => 0.0,
    }
}

/// The occlusion-sensitivity map: each pixel gets the mean score of the windows covering it
/// (0 where none does), then the map is rescaled so its maximum is 1.
pub fn occlusion_map(width: u32, height: u32, windows: &[[u32; 4]], scores: &[f64]) -> SaliencyMap {
    let (w, h) = (width as usize, height as usize);
    let mut sum = vec![0f64; w * h];
    let mut count = vec![0u32; w * h];
    for (win, &s) in windows.iter().zip(scores) {
        let s = if s.is_finite() { s.max(0.0) } else { 0.0 };
        for y in win[1] as usize..(win[3] as usize).min(h) {
            for x in win[0] as usize..(win[2] as usize).min(w) {
                sum[y * w + x] += s;
                count[y * w + x] += 1;
            }
        }
    }
    let values = sum
        .iter()
        .zip(&count)
        .map(|(&s, &c)| if c > 0 { (s / c as f64) as f32 } else { 0.0 })
        .collect();
    let mut m = SaliencyMap {
        width,
        height,
        values,
    };
    m.normalise();
    m
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn windows_cover_every_pixel_and_stay_inside() {
        let wins = occlusion_windows(10, 7, 4, 3, None);
        let mut covered = [false; 70];
        for w in &wins {
            assert!(w[2] <= 10 && w[3] <= 7);
            for y in w[1]..w[3] {
                for x in w[0]..w[2] {
                    covered[(y * 10 + x) as usize] = true;
                }
            }
        }
        assert!(covered.iter().all(|&c| c));
        // x starts 0, 3, 6 (6 + 4 = 10 flush); y starts 0, 3 (3 + 4 = 7 flush).
        assert_eq!(wins.len(), 6);
        let restricted = occlusion_windows(64, 64, 8, 8, Some([16, 16, 32, 32]));
        assert_eq!(restricted.len(), 4);
        assert!(restricted.iter().all(|w| w[0] >= 16 && w[2] <= 32));
    }

    #[test]
    fn coarse_map_upsamples_to_image_size() {
        let s = Saliency {
            width: 2,
            height: 2,
            values: vec![0.0, 0.5, 0.0, 0.0],
        };
        let m = SaliencyMap::from_coarse(&s, 8, 8);
        assert_eq!(m.values.len(), 64);
        assert_eq!(m.max(), 1.0);
        assert_eq!(m.peak(), Some((6, 0)));
        assert_eq!(m.get(0, 7), 0.0);
    }

    #[test]
    fn occlusion_map_averages_overlaps() {
        let wins = [[0, 0, 2, 2], [1, 0, 3, 2]];
        let m = occlusion_map(3, 2, &wins, &[1.0, 0.0]);
        assert_eq!(m.values, vec![1.0, 0.5, 0.0, 1.0, 0.5, 0.0]);
    }
}
