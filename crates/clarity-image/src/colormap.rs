//! The one colour map of Clarity's pictures: viridis, for saliency overlays (`clarity-probe`)
//! and report thumbnails and plots (`clarity-report`).

/// matplotlib's viridis sampled at 11 evenly spaced points (`t` = 0, 0.1, …, 1), rounded to
/// 8 bits: `matplotlib.colormaps["viridis"](t)`.
pub const VIRIDIS_STOPS: [[u8; 3]; 11] = [
    [0x44, 0x01, 0x54],
    [0x48, 0x24, 0x75],
    [0x41, 0x44, 0x87],
    [0x35, 0x5f, 0x8d],
    [0x2a, 0x78, 0x8e],
    [0x21, 0x91, 0x8c],
    [0x22, 0xa8, 0x84],
    [0x44, 0xbf, 0x70],
    [0x7a, 0xd1, 0x51],
    [0xbd, 0xdf, 0x26],
    [0xfd, 0xe7, 0x25],
];

/// Viridis colour of `t` in `[0, 1]` (clamped; NaN and infinities give the colour of 0),
/// linearly interpolated between [`VIRIDIS_STOPS`], unrounded (`0.0..=255.0` per channel), for
/// blending.
pub fn viridis(t: f64) -> [f64; 3] {
    let t = if t.is_finite() {
        t.clamp(0.0, 1.0)
    } else {
        0.0
    };
    let pos = t * 10.0;
    let i = (pos.floor() as usize).min(9);
    let f = pos - i as f64;
    let (a, b) = (VIRIDIS_STOPS[i], VIRIDIS_STOPS[i + 1]);
    std::array::from_fn(|k| a[k] as f64 + (b[k] as f64 - a[k] as f64) * f)
}

/// [`viridis`] rounded to 8-bit sRGB.
pub fn viridis8(t: f64) -> [u8; 3] {
    viridis(t).map(|c| c.round() as u8)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn viridis_hits_its_stops_and_interpolates_between() {
        for (i, stop) in VIRIDIS_STOPS.iter().enumerate() {
            assert_eq!(viridis8(i as f64 / 10.0), *stop, "stop {i}");
        }
        assert_eq!(viridis8(-1.0), VIRIDIS_STOPS[0]);
        assert_eq!(viridis8(f64::NAN), VIRIDIS_STOPS[0]);
        assert_eq!(viridis8(f64::INFINITY), VIRIDIS_STOPS[0]);
        assert_eq!(viridis8(2.0), VIRIDIS_STOPS[10]);
        // Halfway between stops 0 and 1: (0x44 + 0x48) / 2 = 70, (1 + 0x24) / 2 = 18.5, …
        assert_eq!(viridis(0.05), [70.0, 18.5, 100.5]);
    }
}
