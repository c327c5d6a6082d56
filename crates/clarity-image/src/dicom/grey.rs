//! MONOCHROME1/2: stored values → modality values → VOI → 16-bit grey.
//!
//! The order and the table semantics follow DICOM PS3.3 C.11.1 (Modality LUT) and C.11.2
//! (VOI LUT), and pydicom's `apply_modality_lut` / `apply_voi_lut` (which the conformance
//! test compares against): a LUT Sequence, when present, takes precedence over Rescale
//! Slope/Intercept and over Window Center/Width respectively.

use dicom_core::Tag;
use dicom_dictionary_std::tags;
use dicom_object::InMemDicomObject;

use super::{Mapping, PixelInfo};
use crate::decode::{
    DecodeError, DecodeOptions, Decoded, WindowChoice, WindowRecord, WindowSource,
};
use crate::{Channels, Image};

pub(super) fn decode(
    info: &PixelInfo<'_>,
    data: &[u8],
    opts: &DecodeOptions,
) -> Result<Decoded, DecodeError> {
    let (w, h) = (info.columns, info.rows);
    let inverted = info.photometric == "MONOCHROME1";
    let stored = if info.bits_allocated == 1 {
        // Unpacked to one byte per pixel by the caller.
        data.iter().map(|&b| b as i64).collect()
    } else {
        stored_values(
            data,
            info.pixels(),
            info.bits_allocated,
            info.bits_stored,
            info.high_bit,
            info.signed,
        )
    };
    let mut steps: Vec<String> = info.frame_note().into_iter().collect();

    // Modality transformation.
    let modality_lut = lut_item(info, tags::MODALITY_LUT_SEQUENCE, "Modality LUT Sequence")?;
    let (slope, intercept) = if modality_lut.is_some() {
        (1.0, 0.0)
    } else {
        rescale(info)?
    };
    let modality: Vec<f64> = match &modality_lut {
        Some(lut) => {
            steps.push(format!("modality LUT sequence: {}", lut.describe()));
            stored.iter().map(|&s| lut.map(s) as f64).collect()
        }
        None => {
            if slope != 1.0 || intercept != 0.0 {
                steps.push(format!("rescale: m = stored * {slope} + {intercept}"));
            }
            stored
                .iter()
                .map(|&s| s as f64 * slope + intercept)
                .collect()
        }
    };

    // VOI transformation: a LUT Sequence from the file (only when the file's VOI is asked for).
    let voi_lut = match opts.window {
        WindowChoice::FromFile => lut_item(info, tags::VOILUT_SEQUENCE, "VOI LUT Sequence")?,
        _ => None,
    };
    let (out, window, formula_voi): (Vec<u16>, Option<WindowRecord>, String) = match &voi_lut {
        Some(lut) => {
            let max = ((1u64 << lut.bits) - 1) as f64;
            steps.push(format!(
                "VOI LUT sequence: {}; out = round(65535 * entry / {max})",
                lut.describe()
            ));
            let out = modality
                .iter()
                .map(|&m| {
                    let y = lut.map(m.round() as i64) as f64 / max;
                    (y * 65535.0).round().clamp(0.0, 65535.0) as u16
                })
                .collect();
            (out, None, format!("VOI LUT sequence ({})", lut.describe()))
        }
        None => {
            let (function, record) = choose_window(info, opts.window, &modality)?;
            steps.push(format!(
                "VOI window ({}): {}",
                source_name(record.source),
                window_formula(function, record.level, record.width)
            ));
            let out = modality
                .iter()
                .map(|&m| {
                    let y = apply_window(function, record.level, record.width, m);
                    (y * 65535.0).round().clamp(0.0, 65535.0) as u16
                })
                .collect();
            let f = window_formula(function, record.level, record.width);
            (out, Some(record), f)
        }
    };
    let out: Vec<u16> = if inverted {
        steps.push("MONOCHROME1: out = 65535 - out".into());
        out.into_iter().map(|v| 65535 - v).collect()
    } else {
        out
    };
    let image = Image::from_u16(w, h, Channels::Gray, out).expect("w*h samples for a gray image");
    let modality_text = match &modality_lut {
        Some(lut) => format!("m = modality LUT[stored] ({})", lut.describe()),
        None => format!("m = stored * {slope} + {intercept}"),
    };
    let formula = format!(
        "{modality_text}; {formula_voi}; out = round(65535 * y){}",
        if inverted {
            "; out = 65535 - out (MONOCHROME1)"
        } else {
            ""
        }
    );
    let mut conversions = vec![format!(
        "{}-bit {} stored values windowed to gray16",
        info.bits_stored,
        if info.signed { "signed" } else { "unsigned" }
    )];
    conversions.extend(info.frame_note());
    Ok(info.decoded(
        image,
        conversions,
        Mapping {
            rescale: (slope, intercept),
            window,
            inverted,
            formula,
            transformations: steps,
        },
    ))
}

fn source_name(s: WindowSource) -> &'static str {
    match s {
        WindowSource::FileVoi => "file Window Center/Width",
        WindowSource::Preset => "preset",
        WindowSource::Explicit => "explicit",
        WindowSource::DataMinMax => "data min..max, no VOI in the file",
    }
}

fn rescale(info: &PixelInfo<'_>) -> Result<(f64, f64), DecodeError> {
    let num = |tag: Tag, what: &str| -> Result<Option<f64>, DecodeError> {
        match info.obj.element_opt(tag).ok().flatten() {
            None => Ok(None),
            Some(e) if super::is_blank(e) => Ok(None),
            Some(e) => e
                .to_float64()
                .map(Some)
                .map_err(|e| info.corrupt(format!("bad {what} value: {e}"))),
        }
    };
    let slope = num(tags::RESCALE_SLOPE, "Rescale Slope (0028,1053)")?.unwrap_or(1.0);
    let intercept = num(tags::RESCALE_INTERCEPT, "Rescale Intercept (0028,1052)")?.unwrap_or(0.0);
    if !slope.is_finite() || !intercept.is_finite() || slope == 0.0 {
        return Err(info.corrupt(format!(
            "invalid Rescale Slope {slope} / Rescale Intercept {intercept}"
        )));
    }
    Ok((slope, intercept))
}

/// A lookup table from a Modality or VOI LUT Sequence item (PS3.3 C.11.1.1 / C.11.2.1.1).
pub(super) struct Lut {
    first: i64,
    bits: u32,
    data: Vec<u32>,
    explanation: Option<String>,
}

impl Lut {
    /// Values below the first mapped value take the first entry, above the last the last.
    pub fn map(&self, v: i64) -> u32 {
        let i = (v - self.first).clamp(0, self.data.len() as i64 - 1);
        self.data[i as usize]
    }
    fn describe(&self) -> String {
        let mut s = format!(
            "{} entries from {}, {} bits",
            self.data.len(),
            self.first,
            self.bits
        );
        if let Some(e) = &self.explanation {
            s.push_str(&format!(", \"{e}\""));
        }
        s
    }
}

/// The first item of a LUT sequence, or `None` when the sequence is absent or empty.
fn lut_item(info: &PixelInfo<'_>, seq: Tag, what: &str) -> Result<Option<Lut>, DecodeError> {
    let Some(e) = info.obj.element_opt(seq).ok().flatten() else {
        return Ok(None);
    };
    let Some(items) = e.items() else {
        return Ok(None);
    };
    let Some(item) = items.first() else {
        return Ok(None);
    };
    parse_lut(item, info.signed)
        .map(Some)
        .map_err(|detail| info.corrupt(format!("{what}: {detail}")))
}

pub(super) fn parse_lut(item: &InMemDicomObject, signed_pixels: bool) -> Result<Lut, String> {
    let desc = item
        .element(tags::LUT_DESCRIPTOR)
        .map_err(|_| "missing LUT Descriptor (0028,3002)".to_string())?;
    let d: Vec<i64> = desc
        .to_multi_int::<i64>()
        .map_err(|e| format!("bad LUT Descriptor: {e}"))?;
    if d.len() != 3 {
        return Err(format!("LUT Descriptor has {} values, expected 3", d.len()));
    }
    let entries = if d[0] == 0 { 65536 } else { d[0] as usize };
    // The first mapped value has the pixel representation's sign (US → read as 16 bits).
    let first = if signed_pixels && d[1] > 32767 {
        d[1] - 65536
    } else {
        d[1]
    };
    let bits = d[2];
    if !(1..=16).contains(&bits) {
        return Err(format!(
            "LUT Descriptor gives {bits} bits per entry; expected 1 to 16"
        ));
    }
    let raw = item
        .element(tags::LUT_DATA)
        .map_err(|_| "missing LUT Data (0028,3006)".to_string())?;
    let mut data: Vec<u32> = raw
        .to_multi_int::<u32>()
        .map_err(|e| format!("bad LUT Data: {e}"))?;
    if bits == 8 && data.len() * 2 == entries {
        // 8-bit entries packed two per 16-bit word.
        data = data
            .iter()
            .flat_map(|&w| [w & 0xFF, (w >> 8) & 0xFF])
            .collect();
    }
    if data.len() < entries || entries == 0 {
        return Err(format!(
            "LUT Data has {} entries, the descriptor declares {entries}",
            data.len()
        ));
    }
    data.truncate(entries);
    let explanation = item
        .element_opt(tags::LUT_EXPLANATION)
        .ok()
        .flatten()
        .and_then(|e| e.to_str().ok())
        .map(|s| s.trim_end_matches(['\0', ' ']).to_string())
        .filter(|s| !s.is_empty());
    Ok(Lut {
        first,
        bits: bits as u32,
        data,
        explanation,
    })
}

/// Stored values as signed integers: little-endian samples, `bits_stored` bits ending at
/// `high_bit`, sign-extended when the pixel representation is signed.
pub(super) fn stored_values(
    data: &[u8],
    n: usize,
    bits_allocated: u16,
    bits_stored: u16,
    high_bit: u16,
    signed: bool,
) -> Vec<i64> {
    let bytes = (bits_allocated / 8) as usize;
    let shift = (high_bit + 1 - bits_stored) as u32;
    let mask: u64 = if bits_stored >= 64 {
        u64::MAX
    } else {
        (1u64 << bits_stored) - 1
    };
    data.chunks_exact(bytes)
        .take(n)
        .map(|c| {
            let mut raw = 0u64;
            for (i, b) in c.iter().enumerate() {
                raw |= (*b as u64) << (8 * i);
            }
            let v = (raw >> shift) & mask;
            if signed && (v >> (bits_stored - 1)) & 1 == 1 {
                v as i64 - (1i64 << bits_stored)
            } else {
                v as i64
            }
        })
        .collect()
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum Function {
    Linear,
    LinearExact,
    Sigmoid,
}

impl Function {
    fn name(self) -> &'static str {
        match self {
            Function::Linear => "linear",
            Function::LinearExact => "linear_exact",
            Function::Sigmoid => "sigmoid",
        }
    }
}

fn first_float(info: &PixelInfo<'_>, tag: Tag) -> Option<f64> {
    let e = info.obj.element_opt(tag).ok().flatten()?;
    e.to_multi_float64().ok()?.first().copied()
}

fn choose_window(
    info: &PixelInfo<'_>,
    choice: WindowChoice,
    modality: &[f64],
) -> Result<(Function, WindowRecord), DecodeError> {
    let record = |function: Function, source, preset, level: f64, width: f64| WindowRecord {
        source,
        preset,
        level,
        width,
        function: function.name().to_string(),
    };
    match choice {
        WindowChoice::Preset(p) => {
            let (level, width) = p.level_width();
            Ok((
                Function::Linear,
                record(
                    Function::Linear,
                    WindowSource::Preset,
                    Some(p),
                    level,
                    width,
                ),
            ))
        }
        WindowChoice::Explicit { level, width } => {
            if !level.is_finite() || !width.is_finite() || width < 1.0 {
                return Err(DecodeError::BadWindow {
                    name: info.name.to_string(),
                    detail: format!(
                        "explicit window level {level} width {width}: level must be finite and width a finite number >= 1"
                    ),
                });
            }
            Ok((
                Function::Linear,
                record(Function::Linear, WindowSource::Explicit, None, level, width),
            ))
        }
        WindowChoice::FromFile => {
            let center = first_float(info, tags::WINDOW_CENTER);
            let width = first_float(info, tags::WINDOW_WIDTH);
            if let (Some(center), Some(width)) = (center, width) {
                let function = match info
                    .str_tag(tags::VOILUT_FUNCTION)
                    .map(|s| s.to_ascii_uppercase())
                    .as_deref()
                {
                    Some("LINEAR_EXACT") => Function::LinearExact,
                    Some("SIGMOID") => Function::Sigmoid,
                    _ => Function::Linear,
                };
                let width_ok = match function {
                    Function::Linear => width >= 1.0,
                    _ => width > 0.0,
                };
                if center.is_finite() && width.is_finite() && width_ok {
                    return Ok((
                        function,
                        record(function, WindowSource::FileVoi, None, center, width),
                    ));
                }
                return Err(info.corrupt(format!(
                    "invalid Window Center {center} / Window Width {width} (width must be >= 1, or > 0 for linear_exact and sigmoid)"
                )));
            }
            // No VOI tags: map the data's min..max exactly onto 0..65535 with the DICOM
            // linear formula (c - 0.5 = (min + max) / 2, w - 1 = max - min).
            let (min, max) = modality
                .iter()
                .fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), &m| {
                    (lo.min(m), hi.max(m))
                });
            let level = (min + max) / 2.0 + 0.5;
            let width = max - min + 1.0;
            Ok((
                Function::Linear,
                record(
                    Function::Linear,
                    WindowSource::DataMinMax,
                    None,
                    level,
                    width,
                ),
            ))
        }
    }
}

/// DICOM PS3.3 C.11.2.1.2 VOI LUT functions, output in `[0, 1]`.
fn apply_window(function: Function, c: f64, w: f64, x: f64) -> f64 {
    match function {
        Function::Linear => {
            let (c, w) = (c - 0.5, w - 1.0);
            if x <= c - w / 2.0 {
                0.0
            } else if x > c + w / 2.0 {
                1.0
            } else {
                (x - c) / w + 0.5
            }
        }
        Function::LinearExact => {
            if x <= c - w / 2.0 {
                0.0
            } else if x > c + w / 2.0 {
                1.0
            } else {
                (x - c) / w + 0.5
            }
        }
        Function::Sigmoid => 1.0 / (1.0 + (-4.0 * (x - c) / w).exp()),
    }
}

fn window_formula(function: Function, c: f64, w: f64) -> String {
    match function {
        Function::Linear => format!(
            "linear window (DICOM PS3.3 C.11.2.1.2.1) c = {c}, w = {w}: y = 0 if m <= c - 0.5 - (w - 1) / 2, y = 1 if m > c - 0.5 + (w - 1) / 2, else y = (m - (c - 0.5)) / (w - 1) + 0.5"
        ),
        Function::LinearExact => format!(
            "linear_exact window c = {c}, w = {w}: y = 0 if m <= c - w / 2, y = 1 if m > c + w / 2, else y = (m - c) / w + 0.5"
        ),
        Function::Sigmoid => {
            format!("sigmoid window c = {c}, w = {w}: y = 1 / (1 + exp(-4 (m - c) / w))")
        }
    }
}
