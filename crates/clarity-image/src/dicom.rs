//! Single-frame DICOM decoding: stored values → modality units (rescale slope/intercept) →
//! VOI window → 16-bit grey, MONOCHROME1 inverted. dicom-rs parses the file and decodes
//! encapsulated pixel data (pure-Rust JPEG, RLE and deflate codecs only: no C libraries, so
//! JPEG 2000 / JPEG-LS files are rejected with a clear error). The value mapping is done
//! here rather than through dicom-pixeldata's LUTs so that every step is ours to record.

use std::io::Cursor;

use dicom_dictionary_std::tags;
use dicom_object::{OpenFileOptions, file::ReadPreamble};
use dicom_pixeldata::{
    PhotometricInterpretation, PixelDecoder, PixelRepresentation, VoiLutFunction,
};

use crate::decode::{
    DecodeError, DecodeOptions, DecodeRecord, Decoded, DicomRecord, SourceFormat, WindowChoice,
    WindowRecord, WindowSource, check_dimensions,
};
use crate::{Channels, Image};

/// `DICM` at offset 128 (standard Part 10 file) or at offset 0 (preamble stripped).
pub(crate) fn has_dicm_magic(bytes: &[u8]) -> bool {
    bytes.get(128..132) == Some(b"DICM") || bytes.starts_with(b"DICM")
}

const EXPLICIT_VR_BIG_ENDIAN: &str = "1.2.840.10008.1.2.2";

pub(crate) fn decode_dicom(
    bytes: &[u8],
    name: &str,
    opts: &DecodeOptions,
) -> Result<Decoded, DecodeError> {
    let corrupt = |detail: String| DecodeError::Corrupt {
        name: name.to_string(),
        format: SourceFormat::Dicom,
        detail,
    };
    let unsupported = |detail: String| DecodeError::Unsupported {
        name: name.to_string(),
        format: SourceFormat::Dicom,
        detail,
    };
    let preamble = if bytes.get(128..132) == Some(b"DICM") {
        ReadPreamble::Always
    } else {
        ReadPreamble::Never
    };
    let obj = OpenFileOptions::new()
        .read_preamble(preamble)
        .from_reader(Cursor::new(bytes))
        .map_err(|e| corrupt(error_chain(&e)))?;

    let ts = obj
        .meta()
        .transfer_syntax()
        .trim_end_matches(['\0', ' '])
        .to_string();
    if ts == EXPLICIT_VR_BIG_ENDIAN {
        return Err(unsupported(format!(
            "transfer syntax {ts} (explicit VR big endian, retired) is not supported"
        )));
    }
    let int_tag = |tag, what: &str| -> Result<u32, DecodeError> {
        obj.element(tag)
            .map_err(|_| corrupt(format!("missing {what} tag")))?
            .to_int::<u32>()
            .map_err(|e| corrupt(format!("bad {what} value: {e}")))
    };
    let rows = int_tag(tags::ROWS, "Rows (0028,0010)")?;
    let columns = int_tag(tags::COLUMNS, "Columns (0028,0011)")?;
    check_dimensions(name, columns, rows, &opts.limits)?;
    let str_tag = |tag| -> Option<String> {
        obj.element_opt(tag)
            .ok()
            .flatten()
            .and_then(|e| e.to_str().ok())
            .map(|s| s.trim_end_matches(['\0', ' ']).to_string())
            .filter(|s| !s.is_empty())
    };
    let modality = str_tag(tags::MODALITY);
    if obj.element_opt(tags::PIXEL_DATA).ok().flatten().is_none() {
        return Err(corrupt("no Pixel Data (7FE0,0010) element".into()));
    }

    let px = obj.decode_pixel_data().map_err(|e| {
        let msg = error_chain(&e);
        if msg.contains("nsupported") || msg.contains("no codec") {
            unsupported(format!(
                "cannot decode pixel data (transfer syntax {ts}): {msg}; this build decodes uncompressed little endian, deflated, RLE lossless and JPEG baseline/extended/lossless"
            ))
        } else {
            corrupt(format!(
                "cannot decode pixel data (transfer syntax {ts}): {msg}"
            ))
        }
    })?;
    if px.number_of_frames() != 1 {
        return Err(unsupported(format!(
            "{} frames; only single-frame images are supported",
            px.number_of_frames()
        )));
    }
    let (w, h) = (px.columns(), px.rows());
    check_dimensions(name, w, h, &opts.limits)?;
    let spp = px.samples_per_pixel();
    let bits_allocated = px.bits_allocated();
    let bits_stored = px.bits_stored();
    let high_bit = px.high_bit();
    let signed = px.pixel_representation() == PixelRepresentation::Signed;
    let photometric = px.photometric_interpretation().clone();
    let data = px.frame_data(0).map_err(|e| {
        corrupt(format!(
            "pixel data shorter than {w}x{h}: {}",
            error_chain(&e)
        ))
    })?;
    let n = w as usize * h as usize;

    if !matches!(bits_allocated, 8 | 16 | 32)
        || bits_stored == 0
        || bits_stored > bits_allocated
        || high_bit >= bits_allocated
        || high_bit + 1 < bits_stored
    {
        return Err(unsupported(format!(
            "bits allocated {bits_allocated}, stored {bits_stored}, high bit {high_bit}"
        )));
    }

    match (&photometric, spp) {
        (PhotometricInterpretation::Rgb, 3) if bits_allocated == 8 => {
            if px.planar_configuration() != dicom_pixeldata::PlanarConfiguration::Standard {
                // Planar configuration 1: RRR…GGG…BBB…
                let mut out = vec![0u8; n * 3];
                for c in 0..3 {
                    for i in 0..n {
                        out[i * 3 + c] = data[c * n + i];
                    }
                }
                return rgb_result(out, w, h, ts, photometric, modality, bits_stored, true);
            }
            let out = data[..n * 3].to_vec();
            rgb_result(out, w, h, ts, photometric, modality, bits_stored, false)
        }
        (PhotometricInterpretation::Monochrome1 | PhotometricInterpretation::Monochrome2, 1) => {
            let inverted = photometric == PhotometricInterpretation::Monochrome1;
            let stored = stored_values(data, n, bits_allocated, bits_stored, high_bit, signed);
            let rescale = px
                .rescale()
                .map_err(|e| corrupt(format!("bad rescale tags: {}", error_chain(&e))))?[0];
            let (slope, intercept) = (rescale.slope, rescale.intercept);
            if !slope.is_finite() || !intercept.is_finite() || slope == 0.0 {
                return Err(corrupt(format!(
                    "invalid Rescale Slope {slope} / Rescale Intercept {intercept}"
                )));
            }
            let modality_of = |s: i64| s as f64 * slope + intercept;
            let window = choose_window(name, opts.window, &px, &stored, modality_of, &corrupt)?;
            let (function, level, width) = (window.0, window.1.level, window.1.width);
            let out: Vec<u16> = stored
                .iter()
                .map(|&s| {
                    let y = apply_window(function, level, width, modality_of(s));
                    let v = (y * 65535.0).round().clamp(0.0, 65535.0) as u16;
                    if inverted { 65535 - v } else { v }
                })
                .collect();
            let image =
                Image::from_u16(w, h, Channels::Gray, out).expect("w*h samples for a gray image");
            let formula = format!(
                "m = stored * {slope} + {intercept}; {}; out = round(65535 * y){}",
                window_formula(function, level, width),
                if inverted {
                    "; out = 65535 - out (MONOCHROME1)"
                } else {
                    ""
                }
            );
            let record = DecodeRecord {
                format: SourceFormat::Dicom,
                width: w,
                height: h,
                source_color: photometric.as_str().to_ascii_lowercase(),
                source_channels: 1,
                source_bits: bits_stored.min(255) as u8,
                output: image.format(),
                conversions: vec![format!(
                    "{}-bit {} stored values windowed to gray16",
                    bits_stored,
                    if signed { "signed" } else { "unsigned" }
                )],
                dicom: Some(DicomRecord {
                    transfer_syntax: ts,
                    photometric_interpretation: photometric.as_str().to_string(),
                    modality,
                    bits_allocated,
                    bits_stored,
                    signed,
                    rescale_slope: slope,
                    rescale_intercept: intercept,
                    window: Some(window.1),
                    inverted,
                    formula,
                }),
            };
            Ok(Decoded { image, record })
        }
        _ => Err(unsupported(format!(
            "photometric interpretation {} with {spp} samples per pixel and {bits_allocated} bits allocated (supported: MONOCHROME1/MONOCHROME2 with 1 sample, RGB 8-bit with 3)",
            photometric.as_str()
        ))),
    }
}

#[allow(clippy::too_many_arguments)]
fn rgb_result(
    out: Vec<u8>,
    w: u32,
    h: u32,
    ts: String,
    photometric: PhotometricInterpretation,
    modality: Option<String>,
    bits_stored: u16,
    planar: bool,
) -> Result<Decoded, DecodeError> {
    let image = Image::from_u8(w, h, Channels::Rgb, out).expect("w*h*3 samples for an rgb image");
    let mut conversions = Vec::new();
    if planar {
        conversions.push("planar configuration 1 interleaved to rgb".to_string());
    }
    let record = DecodeRecord {
        format: SourceFormat::Dicom,
        width: w,
        height: h,
        source_color: "rgb".into(),
        source_channels: 3,
        source_bits: bits_stored.min(255) as u8,
        output: image.format(),
        conversions,
        dicom: Some(DicomRecord {
            transfer_syntax: ts,
            photometric_interpretation: photometric.as_str().to_string(),
            modality,
            bits_allocated: 8,
            bits_stored,
            signed: false,
            rescale_slope: 1.0,
            rescale_intercept: 0.0,
            window: None,
            inverted: false,
            formula: "rgb samples kept as stored (no rescale, no window)".into(),
        }),
    };
    Ok(Decoded { image, record })
}

/// Stored values as signed integers: little-endian samples, `bits_stored` bits ending at
/// `high_bit`, sign-extended when the pixel representation is signed.
fn stored_values(
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

fn choose_window(
    name: &str,
    choice: WindowChoice,
    px: &dicom_pixeldata::DecodedPixelData<'_>,
    stored: &[i64],
    modality_of: impl Fn(i64) -> f64,
    corrupt: &dyn Fn(String) -> DecodeError,
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
                    name: name.to_string(),
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
            let window = px
                .window()
                .map_err(|e| corrupt(format!("bad window tags: {}", error_chain(&e))))?
                .and_then(|w| w.first().copied());
            if let Some(wl) = window {
                let function = match px
                    .voi_lut_function()
                    .ok()
                    .flatten()
                    .and_then(|f| f.first().copied())
                {
                    Some(VoiLutFunction::LinearExact) => Function::LinearExact,
                    Some(VoiLutFunction::Sigmoid) => Function::Sigmoid,
                    _ => Function::Linear,
                };
                let width_ok = match function {
                    Function::Linear => wl.width >= 1.0,
                    _ => wl.width > 0.0,
                };
                if wl.center.is_finite() && wl.width.is_finite() && width_ok {
                    return Ok((
                        function,
                        record(function, WindowSource::FileVoi, None, wl.center, wl.width),
                    ));
                }
                return Err(corrupt(format!(
                    "invalid Window Center {} / Window Width {} (width must be >= 1, or > 0 for linear_exact and sigmoid)",
                    wl.center, wl.width
                )));
            }
            // No VOI tags: map the data's min..max exactly onto 0..65535 with the DICOM
            // linear formula (c - 0.5 = (min + max) / 2, w - 1 = max - min).
            let (lo, hi) = stored
                .iter()
                .fold((i64::MAX, i64::MIN), |(lo, hi), &s| (lo.min(s), hi.max(s)));
            let (a, b) = (modality_of(lo), modality_of(hi));
            let (min, max) = if a <= b { (a, b) } else { (b, a) };
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

fn error_chain(e: &dyn std::error::Error) -> String {
    let mut msg = e.to_string();
    let mut cur = e.source();
    while let Some(s) = cur {
        let s_msg = s.to_string();
        if !msg.contains(&s_msg) {
            msg.push_str(": ");
            msg.push_str(&s_msg);
        }
        cur = s.source();
    }
    msg
}
