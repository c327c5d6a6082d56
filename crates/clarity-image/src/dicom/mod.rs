//! DICOM decoding: one frame of a DICOM object → an [`Image`] plus a record of every
//! transformation applied, so that a reviewer can reproduce the pixels.
//!
//! dicom-rs parses the file and decodes encapsulated pixel data with pure-Rust codecs only
//! (JPEG baseline/extended/lossless, RLE, deflate, JPEG 2000 / HTJ2K through OpenJPEG's
//! Rust port); the value mapping is done here rather than through dicom-pixeldata's LUTs so
//! that every step is ours to record:
//!
//! - grey (MONOCHROME1/2): stored values → modality values (Modality LUT Sequence, or Rescale
//!   Slope/Intercept) → VOI (VOI LUT Sequence, or Window Center/Width with its VOI LUT
//!   Function, or a preset/explicit window, or the data's min..max) → 16-bit grey, MONOCHROME1
//!   inverted ([`grey`]);
//! - colour (RGB, YBR_FULL, YBR_FULL_422, YBR_RCT/ICT, PALETTE COLOR): samples kept as stored
//!   or converted to RGB with the standard's formulas ([`colour`]).
//!
//! Objects without pixel data (DICOMDIR, structured reports, RT plans, presentation states …)
//! are [`DecodeError::NotAnImage`], so that a folder walk can skip them by name.

mod colour;
mod grey;
mod jpeg;
mod lengths;
mod rle;

use std::io::Cursor;

use dicom_core::dictionary::UidDictionary;
use dicom_dictionary_std::{StandardSopClassDictionary, tags};
use dicom_object::{DefaultDicomObject, OpenFileOptions, file::ReadPreamble};
use dicom_pixeldata::PixelDecoder;
use dicom_transfer_syntax_registry::{TransferSyntaxIndex, TransferSyntaxRegistry};

use crate::Image;
use crate::decode::{
    DecodeError, DecodeOptions, DecodeRecord, Decoded, DicomRecord, SourceFormat, WindowRecord,
    check_decoded_bytes, check_dimensions,
};

/// `DICM` at offset 128 (standard Part 10 file) or at offset 0 (preamble stripped).
pub(crate) fn has_dicm_magic(bytes: &[u8]) -> bool {
    bytes.get(128..132) == Some(b"DICM") || bytes.starts_with(b"DICM")
}

/// The facts about one object's pixel module that every decoding path needs.
pub(crate) struct PixelInfo<'a> {
    pub name: &'a str,
    pub obj: &'a DefaultDicomObject,
    pub ts_uid: String,
    /// `Name (uid)` of the transfer syntax, for records and errors.
    pub ts_label: String,
    pub modality: Option<String>,
    pub photometric: String,
    pub samples_per_pixel: u16,
    pub bits_allocated: u16,
    pub bits_stored: u16,
    pub high_bit: u16,
    pub signed: bool,
    pub planar: bool,
    pub rows: u32,
    pub columns: u32,
    pub frames: u32,
    pub frame: u32,
}

impl PixelInfo<'_> {
    pub fn corrupt(&self, detail: String) -> DecodeError {
        DecodeError::Corrupt {
            name: self.name.to_string(),
            format: SourceFormat::Dicom,
            detail,
        }
    }
    pub fn unsupported(&self, detail: String) -> DecodeError {
        DecodeError::Unsupported {
            name: self.name.to_string(),
            format: SourceFormat::Dicom,
            detail,
        }
    }
    pub fn pixels(&self) -> usize {
        self.rows as usize * self.columns as usize
    }
    /// Transformations shared by every path: which frame was taken.
    pub fn frame_note(&self) -> Option<String> {
        (self.frames > 1).then(|| format!("frame {} of {} decoded", self.frame, self.frames))
    }
    pub fn str_tag(&self, tag: dicom_core::Tag) -> Option<String> {
        str_tag(self.obj, tag)
    }

    /// The decoded image with its record: the pixel module's facts from `self`, what the
    /// decoding path did from `mapping`.
    pub fn decoded(&self, image: Image, conversions: Vec<String>, mapping: Mapping) -> Decoded {
        let record = DecodeRecord {
            format: SourceFormat::Dicom,
            width: self.columns,
            height: self.rows,
            source_color: self.photometric.to_ascii_lowercase(),
            source_channels: self.samples_per_pixel.min(255) as u8,
            source_bits: self.bits_stored.min(255) as u8,
            output: image.format(),
            conversions,
            dicom: Some(DicomRecord {
                transfer_syntax: self.ts_uid.clone(),
                transfer_syntax_name: self.ts_label.clone(),
                photometric_interpretation: self.photometric.clone(),
                modality: self.modality.clone(),
                bits_allocated: self.bits_allocated,
                bits_stored: self.bits_stored,
                signed: self.signed,
                rescale_slope: mapping.rescale.0,
                rescale_intercept: mapping.rescale.1,
                window: mapping.window,
                inverted: mapping.inverted,
                formula: mapping.formula,
                frame: self.frame,
                frames: self.frames,
                transformations: mapping.transformations,
            }),
        };
        Decoded { image, record }
    }
}

/// What a decoding path did to the stored values, for the [`DicomRecord`].
pub(crate) struct Mapping {
    /// `(slope, intercept)`; `(1, 0)` when no rescale applies.
    pub rescale: (f64, f64),
    pub window: Option<WindowRecord>,
    pub inverted: bool,
    pub formula: String,
    pub transformations: Vec<String>,
}

/// An element with no value (or only padding), treated as absent.
pub(crate) fn is_blank(e: &dicom_object::mem::InMemElement) -> bool {
    e.to_str()
        .map_or(true, |s| s.trim_matches(['\0', ' ']).is_empty())
}

fn str_tag(obj: &DefaultDicomObject, tag: dicom_core::Tag) -> Option<String> {
    obj.element_opt(tag)
        .ok()
        .flatten()
        .and_then(|e| e.to_str().ok())
        .map(|s| s.trim_end_matches(['\0', ' ']).to_string())
        .filter(|s| !s.is_empty())
}

/// Transfer syntaxes whose pixel data is stored natively (not encapsulated).
fn is_native(uid: &str) -> bool {
    matches!(
        uid,
        "1.2.840.10008.1.2"
            | "1.2.840.10008.1.2.1"
            | "1.2.840.10008.1.2.1.99"
            | "1.2.840.10008.1.2.2"
    )
}

/// The JPEG (ISO 10918) transfer syntaxes: baseline, extended, lossless, lossless SV1.
pub(crate) fn is_jpeg(uid: &str) -> bool {
    matches!(
        uid,
        "1.2.840.10008.1.2.4.50"
            | "1.2.840.10008.1.2.4.51"
            | "1.2.840.10008.1.2.4.57"
            | "1.2.840.10008.1.2.4.70"
    )
}

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
    // Before dicom-rs, which allocates each value from its declared length.
    lengths::check_lengths(bytes).map_err(corrupt)?;
    let preamble = if bytes.get(128..132) == Some(b"DICM") {
        ReadPreamble::Always
    } else {
        ReadPreamble::Never
    };
    let obj = OpenFileOptions::new()
        .read_preamble(preamble)
        .from_reader(Cursor::new(bytes))
        .map_err(|e| corrupt(error_chain(&e)))?;

    // Non-image objects first, so that a DICOMDIR is not reported as "missing Rows".
    let has = |tag| obj.element_opt(tag).ok().flatten().is_some();
    if !has(tags::PIXEL_DATA) {
        if has(tags::FLOAT_PIXEL_DATA) || has(tags::DOUBLE_FLOAT_PIXEL_DATA) {
            return Err(DecodeError::Unsupported {
                name: name.to_string(),
                format: SourceFormat::Dicom,
                detail:
                    "floating-point pixel data (Float/Double Float Pixel Data) is not supported"
                        .into(),
            });
        }
        return Err(DecodeError::NotAnImage {
            name: name.to_string(),
            what: sop_class_label(&obj),
        });
    }

    let ts_uid = obj
        .meta()
        .transfer_syntax()
        .trim_end_matches(['\0', ' '])
        .to_string();
    let ts = TransferSyntaxRegistry.get(&ts_uid);
    let ts_label = match ts {
        Some(ts) => format!("{} ({ts_uid})", ts.name()),
        None => format!("unknown transfer syntax ({ts_uid})"),
    };
    let Some(ts) = ts else {
        return Err(DecodeError::Unsupported {
            name: name.to_string(),
            format: SourceFormat::Dicom,
            detail: format!("{ts_label} is not a transfer syntax this build knows"),
        });
    };
    if !is_native(&ts_uid) && !ts.can_decode_all() {
        return Err(DecodeError::Unsupported {
            name: name.to_string(),
            format: SourceFormat::Dicom,
            detail: format!(
                "transfer syntax {ts_label} has no decoder in this build; supported: {}",
                SUPPORTED_SYNTAXES
            ),
        });
    }

    let int_tag = |tag, what: &str| -> Result<u32, DecodeError> {
        obj.element(tag)
            .map_err(|_| corrupt(format!("missing {what} tag")))?
            .to_int::<u32>()
            .map_err(|e| corrupt(format!("bad {what} value: {e}")))
    };
    let opt_int = |tag, default: u32, what: &str| -> Result<u32, DecodeError> {
        match obj.element_opt(tag).ok().flatten() {
            None => Ok(default),
            Some(e) if is_blank(e) => Ok(default),
            Some(e) => e
                .to_int::<u32>()
                .map_err(|e| corrupt(format!("bad {what} value: {e}"))),
        }
    };
    let rows = int_tag(tags::ROWS, "Rows (0028,0010)")?;
    let columns = int_tag(tags::COLUMNS, "Columns (0028,0011)")?;
    check_dimensions(name, columns, rows, &opts.limits)?;
    let samples_per_pixel = opt_int(tags::SAMPLES_PER_PIXEL, 1, "Samples per Pixel (0028,0002)")?;
    let bits_allocated = int_tag(tags::BITS_ALLOCATED, "Bits Allocated (0028,0100)")?;
    let bits_stored = opt_int(tags::BITS_STORED, bits_allocated, "Bits Stored (0028,0101)")?;
    let high_bit = opt_int(
        tags::HIGH_BIT,
        bits_stored.saturating_sub(1),
        "High Bit (0028,0102)",
    )?;
    let signed = opt_int(
        tags::PIXEL_REPRESENTATION,
        0,
        "Pixel Representation (0028,0103)",
    )? == 1;
    let planar = opt_int(
        tags::PLANAR_CONFIGURATION,
        0,
        "Planar Configuration (0028,0006)",
    )? == 1;
    let frames = opt_int(tags::NUMBER_OF_FRAMES, 1, "Number of Frames (0028,0008)")?.max(1);
    let photometric = str_tag(&obj, tags::PHOTOMETRIC_INTERPRETATION)
        .ok_or_else(|| corrupt("missing Photometric Interpretation (0028,0004) tag".into()))?;
    let info = PixelInfo {
        name,
        obj: &obj,
        ts_label,
        modality: str_tag(&obj, tags::MODALITY),
        photometric: photometric.to_ascii_uppercase(),
        samples_per_pixel: samples_per_pixel.min(u16::MAX as u32) as u16,
        bits_allocated: bits_allocated.min(u16::MAX as u32) as u16,
        bits_stored: bits_stored.min(u16::MAX as u32) as u16,
        high_bit: high_bit.min(u16::MAX as u32) as u16,
        signed,
        planar,
        rows,
        columns,
        frames,
        frame: opts.frame,
        ts_uid,
    };
    if info.frame >= frames {
        return Err(DecodeError::BadFrame {
            name: name.to_string(),
            frame: info.frame,
            frames,
        });
    }
    let one_bit = info.bits_allocated == 1
        && info.bits_stored == 1
        && info.samples_per_pixel == 1
        && info.photometric.starts_with("MONOCHROME");
    if !(matches!(info.bits_allocated, 8 | 16 | 32) || one_bit)
        || info.bits_stored == 0
        || info.bits_stored > info.bits_allocated
        || info.high_bit >= info.bits_allocated
        || info.high_bit + 1 < info.bits_stored
    {
        return Err(info.unsupported(format!(
            "bits allocated {}, stored {}, high bit {} (supported: 8, 16 or 32 bits allocated with stored ≤ allocated, and 1-bit monochrome)",
            info.bits_allocated, info.bits_stored, info.high_bit
        )));
    }
    // A pixel module that claims more samples than the file can hold is refused before any
    // buffer proportional to it is allocated (the file size bounds native data).
    check_decoded_bytes(
        info.name,
        info.columns,
        info.rows,
        &format!(
            "{} sample(s) × {} bits",
            info.samples_per_pixel, info.bits_allocated
        ),
        u64::from(info.samples_per_pixel) * u64::from(info.bits_allocated.div_ceil(8)),
        &opts.limits,
    )?;

    match (info.photometric.as_str(), info.samples_per_pixel) {
        ("MONOCHROME1" | "MONOCHROME2", 1) => {
            let data = if info.bits_allocated == 1 {
                one_bit_frame(&info)?
            } else {
                frame_bytes(&info)?
            };
            grey::decode(&info, &data, opts)
        }
        ("PALETTE COLOR", 1) => {
            let data = frame_bytes(&info)?;
            colour::palette(&info, &data)
        }
        ("YBR_FULL_422", 3) if is_native(&info.ts_uid) => {
            let data = native_bytes(&info)?;
            colour::ybr_full_422_native(&info, &data)
        }
        ("RGB" | "YBR_FULL" | "YBR_FULL_422" | "YBR_RCT" | "YBR_ICT", 3) => {
            if info.photometric == "RGB"
                && is_jpeg(&info.ts_uid)
                && let Some(data) = jpeg::rgb_without_colour_transform(&info)?
            {
                return colour::rgb(&info, &data, vec![
                    "JPEG decoded without YCbCr→RGB transform (Photometric Interpretation RGB, no Adobe APP14 marker)".into(),
                ]);
            }
            let data = frame_bytes(&info)?;
            let mut notes = Vec::new();
            match info.photometric.as_str() {
                "YBR_FULL" | "YBR_FULL_422" if is_jpeg(&info.ts_uid) => notes.push(
                    "YCbCr→RGB by the JPEG decoder (ITU-T T.871), as the JPEG colour model prescribes"
                        .to_string(),
                ),
                "YBR_FULL" | "YBR_FULL_422" => return colour::ybr_full(&info, &data),
                "YBR_RCT" | "YBR_ICT" => notes.push(format!(
                    "{} decoded to RGB by the JPEG 2000 codec (inverse component transform)",
                    info.photometric
                )),
                _ => {}
            }
            colour::rgb(&info, &data, notes)
        }
        (pi, spp) => Err(info.unsupported(format!(
            "photometric interpretation {pi} with {spp} samples per pixel (supported: MONOCHROME1/MONOCHROME2 and PALETTE COLOR with 1 sample; RGB, YBR_FULL, YBR_FULL_422, YBR_RCT, YBR_ICT with 3)"
        ))),
    }
}

/// What this build decodes, for error messages.
pub(crate) const SUPPORTED_SYNTAXES: &str = "implicit/explicit VR little endian, explicit VR big endian, deflated, RLE lossless, JPEG baseline/extended (8-bit)/lossless, JPEG 2000 and HTJ2K";

/// The chosen frame's samples, decoded by dicom-pixeldata (native data comes back in
/// little-endian sample order, also for big endian files; planar configuration as stored).
fn frame_bytes(info: &PixelInfo<'_>) -> Result<Vec<u8>, DecodeError> {
    if info.ts_uid == RLE_LOSSLESS && info.bits_allocated == 32 {
        // dicom-rs's RLE codec stops at 16 bits; the format itself does not.
        return rle::decode_frame(info);
    }
    let px = info.obj.decode_pixel_data_frame(info.frame).map_err(|e| {
        let msg = error_chain(&e);
        if msg.contains("nsupported") || msg.contains("not supported") || msg.contains("no codec") {
            info.unsupported(format!(
                "cannot decode pixel data ({}): {msg}",
                info.ts_label
            ))
        } else {
            info.corrupt(format!(
                "cannot decode pixel data ({}): {msg}",
                info.ts_label
            ))
        }
    })?;
    let data = px
        .frame_data(0)
        .map_err(|e| info.corrupt(format!("frame {}: {}", info.frame, error_chain(&e))))?;
    let want = if info.bits_allocated == 1 {
        (info.pixels() * info.samples_per_pixel as usize).div_ceil(8)
    } else {
        info.pixels() * info.samples_per_pixel as usize * info.bits_allocated.div_ceil(8) as usize
    };
    if data.len() < want {
        return Err(info.corrupt(format!(
            "pixel data of frame {} is {} bytes, shorter than the {} bytes of {}x{}x{} samples of {} bits",
            info.frame,
            data.len(),
            want,
            info.columns,
            info.rows,
            info.samples_per_pixel,
            info.bits_allocated
        )));
    }
    let mut out = data[..want].to_vec();
    if info.ts_uid == EXPLICIT_VR_BIG_ENDIAN && info.bits_allocated == 32 {
        // Big endian pixel data is read as 16-bit words (OW) and each word put in native
        // order; a 32-bit sample's two words then come most significant first.
        for c in out.chunks_exact_mut(4) {
            c.swap(0, 2);
            c.swap(1, 3);
        }
    }
    Ok(out)
}

const RLE_LOSSLESS: &str = "1.2.840.10008.1.2.5";
const EXPLICIT_VR_BIG_ENDIAN: &str = "1.2.840.10008.1.2.2";

/// A 1-bit frame unpacked to one byte (0 or 1) per pixel. Bits are packed continuously
/// across frames, first pixel in the least significant bit (PS3.5 8.1.1).
fn one_bit_frame(info: &PixelInfo<'_>) -> Result<Vec<u8>, DecodeError> {
    if !is_native(&info.ts_uid) {
        return Err(info.unsupported(format!(
            "1-bit pixel data in {} (supported: native transfer syntaxes)",
            info.ts_label
        )));
    }
    let raw = native_bytes(info)?;
    let n = info.pixels();
    let start = info.frame as usize * n;
    if raw.len() * 8 < start + n {
        return Err(info.corrupt(format!(
            "1-bit pixel data is {} bytes, frame {} needs {} bits",
            raw.len(),
            info.frame,
            start + n
        )));
    }
    Ok((start..start + n)
        .map(|b| (raw[b / 8] >> (b % 8)) & 1)
        .collect())
}

/// The raw Pixel Data bytes of a native object (for layouts dicom-pixeldata does not size
/// correctly, such as subsampled YBR_FULL_422).
fn native_bytes(info: &PixelInfo<'_>) -> Result<Vec<u8>, DecodeError> {
    let e = info
        .obj
        .element(tags::PIXEL_DATA)
        .map_err(|e| info.corrupt(format!("pixel data: {}", error_chain(&e))))?;
    let bytes = e
        .to_bytes()
        .map_err(|e| info.corrupt(format!("pixel data: {}", error_chain(&e))))?;
    Ok(bytes.into_owned())
}

/// `Name (uid)` of the object's SOP class, for the non-image note.
fn sop_class_label(obj: &DefaultDicomObject) -> String {
    let uid = str_tag(obj, tags::SOP_CLASS_UID)
        .or_else(|| {
            let m = obj.meta().media_storage_sop_class_uid();
            let m = m.trim_end_matches(['\0', ' ']);
            (!m.is_empty()).then(|| m.to_string())
        })
        .unwrap_or_default();
    if uid.is_empty() {
        return "an object without SOP Class UID".into();
    }
    match StandardSopClassDictionary.by_uid(&uid) {
        Some(e) => format!("{} ({uid})", e.name),
        None => format!("SOP class {uid}"),
    }
}

pub(crate) fn error_chain(e: &dyn std::error::Error) -> String {
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
