//! The known-answer models of the probe (issue 13), chosen with the spec key `mode`:
//!
//! - `region`: looks at **one fixed box** and nothing else. The box is `box = [x0, y0, x1,
//!   y1]` (fractions of the image, default `[0.125, 0.25, 0.375, 0.5]`), converted to pixels
//!   exactly as the probe converts `evidence_bbox` (`floor` of the start, `ceil` of the end).
//!   It answers `nodule` when the mean grey of the box's centre (the box shrunk by a quarter of
//!   its width and height on each side) exceeds the mean grey of the box's rim (the rest of the
//!   box) by at least `contrast_threshold` (default 0.15, intensities in `[0, 1]`), else
//!   `normal`; `P(nodule) = sigmoid(40 · (contrast − threshold))`. A bright spot inside the box
//!   is its only evidence, by construction: masking the box (any fill that flattens it) flips
//!   the answer, masking anything else cannot. The box in pixels is reported in
//!   `adapter_metadata.evidence_box_px`.
//! - `ignore_image`: never opens the image. The answer is a function of the case's prompt
//!   only (FNV-1a of the prompt text: odd → `nodule`, even → `normal`, confidence 0.9), so
//!   no mask anywhere can change it.

use serde_json::{Map, Value, json};

/// The default box of the `region` model: the upper half of a chest's left-hand lung field.
pub const DEFAULT_BOX: [f64; 4] = [0.125, 0.25, 0.375, 0.5];
pub const DEFAULT_CONTRAST: f64 = 0.15;

/// What a mode decided: `P(nodule)`, the justification and metadata for the trace.
pub struct Decision {
    pub p: f64,
    pub justification: String,
    pub metadata: Value,
}

/// The `box` spec key, checked.
pub fn spec_box(spec: &Map<String, Value>) -> Result<[f64; 4], String> {
    let Some(v) = spec.get("box") else {
        return Ok(DEFAULT_BOX);
    };
    let nums: Vec<f64> = v
        .as_array()
        .map(|a| a.iter().filter_map(Value::as_f64).collect())
        .unwrap_or_default();
    match nums[..] {
        [x0, y0, x1, y1] if nums.iter().all(|x| (0.0..=1.0).contains(x)) && x0 < x1 && y0 < y1 => {
            Ok([x0, y0, x1, y1])
        }
        _ => Err(format!(
            "spec `box` must be [x0, y0, x1, y1], fractions of the image in [0, 1] with x0 < x1 \
             and y0 < y1, got {v}"
        )),
    }
}

/// The box in pixels (end-exclusive), as the probe converts `evidence_bbox`.
pub fn box_px(b: [f64; 4], w: usize, h: usize) -> [usize; 4] {
    let (wf, hf) = (w as f64, h as f64);
    [
        ((b[0] * wf).floor() as usize).min(w.saturating_sub(1)),
        ((b[1] * hf).floor() as usize).min(h.saturating_sub(1)),
        ((b[2] * wf).ceil() as usize).min(w),
        ((b[3] * hf).ceil() as usize).min(h),
    ]
}

/// Mean grey of the box's centre minus mean grey of its rim (`px` row-major in `[0, 1]`).
/// Only pixels inside `[x0, y0, x1, y1]` are read.
pub fn centre_minus_rim(px: &[f32], w: usize, b: [usize; 4]) -> f64 {
    let [x0, y0, x1, y1] = b;
    let (dx, dy) = ((x1 - x0) / 4, (y1 - y0) / 4);
    let (cx0, cy0, cx1, cy1) = (x0 + dx, y0 + dy, x1 - dx, y1 - dy);
    let (mut c, mut nc, mut r, mut nr) = (0.0, 0usize, 0.0, 0usize);
    for y in y0..y1 {
        for x in x0..x1 {
            let v = f64::from(px[y * w + x]);
            if (cx0..cx1).contains(&x) && (cy0..cy1).contains(&y) {
                c += v;
                nc += 1;
            } else {
                r += v;
                nr += 1;
            }
        }
    }
    if nc == 0 || nr == 0 {
        return 0.0;
    }
    c / nc as f64 - r / nr as f64
}

/// The `region` model on an image of `w`×`h` intensities in `[0, 1]`.
pub fn region(
    spec: &Map<String, Value>,
    w: usize,
    h: usize,
    px: &[f32],
    threshold: f64,
) -> Result<Decision, String> {
    let b = box_px(spec_box(spec)?, w, h);
    if b[2] <= b[0] || b[3] <= b[1] {
        return Err(format!("spec `box` is empty on a {w}x{h} image"));
    }
    let contrast = centre_minus_rim(px, w, b);
    let p = 1.0 / (1.0 + (-40.0 * (contrast - threshold)).exp());
    let justification = format!(
        "box x {}..{}, y {}..{}: centre minus rim mean grey {:.4} {} the threshold {:.4} ({})",
        b[0],
        b[2],
        b[1],
        b[3],
        contrast,
        if contrast >= threshold {
            "reaches"
        } else {
            "is below"
        },
        threshold,
        if contrast >= threshold {
            "a bright focus in the box"
        } else {
            "no bright focus in the box"
        }
    );
    Ok(Decision {
        p,
        justification,
        metadata: json!({"mode": "region", "evidence_box_px": b,
                         "contrast": round6(contrast), "contrast_threshold": threshold,
                         "p_nodule": round6(p)}),
    })
}

/// The `ignore_image` model: the answer from the prompt alone.
pub fn ignore_image(spec: &Map<String, Value>) -> Decision {
    let prompt = spec.get("prompt").and_then(Value::as_str).unwrap_or("");
    let h = fnv1a(prompt.as_bytes());
    let p = if h % 2 == 1 { 0.9 } else { 0.1 };
    Decision {
        p,
        justification: format!(
            "the answer depends on the prompt only (FNV-1a {h:016x}); the image was not read"
        ),
        metadata: json!({"mode": "ignore_image", "prompt_hash": format!("{h:016x}")}),
    }
}

/// 64-bit FNV-1a: a fixed, dependency-free hash (std's hasher is not stable across releases).
pub fn fnv1a(bytes: &[u8]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for &b in bytes {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    h
}

fn round6(x: f64) -> f64 {
    (x * 1e6).round() / 1e6
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_bright_centre_reads_as_contrast_and_nothing_outside_the_box_is_read() {
        // 8×8, box 0..8 × 0..8: centre 2..6 bright 1.0, rim 0.
        let mut px = vec![0f32; 64];
        for y in 2..6 {
            for x in 2..6 {
                px[y * 8 + x] = 1.0;
            }
        }
        assert_eq!(centre_minus_rim(&px, 8, [0, 0, 8, 8]), 1.0);
        // A 16-wide image whose right half is anything: the box 0..8 reads the same.
        let mut wide = vec![0.7f32; 128];
        for y in 0..8 {
            wide[y * 16..y * 16 + 8].copy_from_slice(&px[y * 8..y * 8 + 8]);
        }
        assert_eq!(centre_minus_rim(&wide, 16, [0, 0, 8, 8]), 1.0);
    }

    #[test]
    fn box_is_checked_and_converted_like_the_probe() {
        let spec: Map<String, Value> =
            serde_json::from_str(r#"{"box": [0.125, 0.25, 0.375, 0.5]}"#).unwrap();
        assert_eq!(box_px(spec_box(&spec).unwrap(), 48, 48), [6, 12, 18, 24]);
        let bad: Map<String, Value> = serde_json::from_str(r#"{"box": [0.5, 0, 0.2, 1]}"#).unwrap();
        assert!(
            spec_box(&bad)
                .unwrap_err()
                .starts_with("spec `box` must be")
        );
        assert_eq!(fnv1a(b""), 0xcbf2_9ce4_8422_2325);
        assert_eq!(fnv1a(b"a"), 0xaf63_dc4c_8601_ec8c);
    }
}
