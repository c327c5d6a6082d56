//! Image → model input: gray `f32` in `[0, 1]` (8-bit / 255, 16-bit / 65535, RGB through
//! BT.601 luma), area-averaged to `INPUT×INPUT` (each output pixel is the overlap-weighted
//! mean of the input pixels it covers; non-square images are stretched; upscaling repeats
//! pixels), then standardised per image to zero mean and unit variance. Written by hand so the
//! result is bit-stable (fixed summation order, no SIMD dispatch).

use clarity_image::{Channels, Image};

use crate::net::INPUT;

/// The model's input tensor for `image` (`INPUT×INPUT`, row-major).
pub fn preprocess(image: &Image) -> Vec<f32> {
    let mut out = resample(image);
    standardise(&mut out);
    out
}

/// The gray `[0, 1]` image area-resampled to `INPUT×INPUT`, before standardisation (training
/// augments here).
pub(crate) fn resample(image: &Image) -> Vec<f32> {
    let (w, h) = (image.width() as usize, image.height() as usize);
    let unit = image.to_unit_f32();
    let gray: Vec<f32> = match image.channels() {
        Channels::Gray => unit,
        Channels::Rgb => unit
            .chunks_exact(3)
            .map(|p| 0.299 * p[0] + 0.587 * p[1] + 0.114 * p[2])
            .collect(),
    };
    let wx = area_weights(w, INPUT);
    let wy = area_weights(h, INPUT);
    // Rows first: h × INPUT.
    let mut tmp = vec![0.0f32; h * INPUT];
    for y in 0..h {
        let row = &gray[y * w..(y + 1) * w];
        for (ox, taps) in wx.iter().enumerate() {
            tmp[y * INPUT + ox] = taps.iter().map(|&(i, k)| row[i] * k).sum();
        }
    }
    let mut out = vec![0.0f32; INPUT * INPUT];
    for (oy, taps) in wy.iter().enumerate() {
        for ox in 0..INPUT {
            out[oy * INPUT + ox] = taps.iter().map(|&(i, k)| tmp[i * INPUT + ox] * k).sum();
        }
    }
    out
}

/// For each output index, the source indices and weights (summing to 1) of an area resample.
fn area_weights(src: usize, dst: usize) -> Vec<Vec<(usize, f32)>> {
    let scale = src as f64 / dst as f64;
    (0..dst)
        .map(|o| {
            let (a, b) = (o as f64 * scale, (o + 1) as f64 * scale);
            let first = a.floor() as usize;
            let last = (b.ceil() as usize).min(src).max(first + 1);
            (first..last)
                .map(|i| {
                    let overlap = (b.min(i as f64 + 1.0) - a.max(i as f64)).max(0.0);
                    (i, (overlap / (b - a)) as f32)
                })
                .filter(|&(_, k)| k > 0.0)
                .collect()
        })
        .collect()
}

/// Added to the standard deviation before dividing, so a flat image gives zeros, not NaN.
pub const STANDARDISE_EPSILON: f64 = 1e-3;

/// Zero mean, unit variance (a flat image becomes all zeros).
pub(crate) fn standardise(x: &mut [f32]) {
    let n = x.len() as f64;
    let mean = x.iter().map(|&v| f64::from(v)).sum::<f64>() / n;
    let var = x
        .iter()
        .map(|&v| (f64::from(v) - mean).powi(2))
        .sum::<f64>()
        / n;
    let inv = 1.0 / (var.sqrt() + STANDARDISE_EPSILON);
    for v in x {
        *v = ((f64::from(*v) - mean) * inv) as f32;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn area_weights_average_blocks() {
        let w = area_weights(4, 2);
        assert_eq!(w, vec![vec![(0, 0.5), (1, 0.5)], vec![(2, 0.5), (3, 0.5)]]);
        let w = area_weights(3, 2);
        // Output 0 covers [0, 1.5): pixel 0 fully, pixel 1 half.
        assert_eq!(w[0].len(), 2);
        assert!((w[0][0].1 - 2.0 / 3.0).abs() < 1e-6);
        let up = area_weights(2, 4);
        assert_eq!(up[1], vec![(0, 1.0)]);
        assert_eq!(up[2], vec![(1, 1.0)]);
    }

    #[test]
    fn gray_rgb_and_depths_agree() {
        let g8 = Image::from_u8(
            128,
            128,
            Channels::Gray,
            (0..128 * 128).map(|i| (i % 251) as u8).collect(),
        )
        .unwrap();
        let rgb: Vec<u8> = match g8.samples() {
            clarity_image::Samples::U8(v) => v.iter().flat_map(|&s| [s, s, s]).collect(),
            _ => unreachable!(),
        };
        let c8 = Image::from_u8(128, 128, Channels::Rgb, rgb).unwrap();
        let a = preprocess(&g8);
        let b = preprocess(&c8);
        assert_eq!(a.len(), INPUT * INPUT);
        let diff = a
            .iter()
            .zip(&b)
            .map(|(x, y)| (x - y).abs())
            .fold(0.0, f32::max);
        assert!(diff < 1e-4, "{diff}");
        let mean: f32 = a.iter().sum::<f32>() / a.len() as f32;
        assert!(mean.abs() < 1e-4);
        let flat = Image::from_u16(70, 90, Channels::Gray, vec![1000; 70 * 90]).unwrap();
        assert!(preprocess(&flat).iter().all(|v| v.abs() < 1e-3));
    }
}
