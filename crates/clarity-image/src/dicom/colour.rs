//! Colour DICOM: RGB kept as stored (8 or 16 bits; 32-bit samples reduced to 16), YBR_FULL
//! and YBR_FULL_422 converted to RGB with the standard's full-range formula (PS3.3
//! C.7.6.3.1.2), PALETTE COLOR through its lookup tables (PS3.3 C.7.6.3.1.5/6).

use dicom_core::Tag;
use dicom_dictionary_std::tags;

use super::{Mapping, PixelInfo, is_native};
use crate::decode::{DecodeError, Decoded};
use crate::{Channels, Image};

/// Interleaved RGB samples (`data` holds one frame as decoded; planar configuration 1 is
/// interleaved here for native and RLE data, where it describes the layout).
pub(super) fn rgb(
    info: &PixelInfo<'_>,
    data: &[u8],
    mut notes: Vec<String>,
) -> Result<Decoded, DecodeError> {
    let n = info.pixels();
    let bytes = info.bits_allocated.div_ceil(8) as usize;
    let planar = info.planar && (is_native(&info.ts_uid) || info.ts_uid == "1.2.840.10008.1.2.5");
    let sample = |i: usize, c: usize| -> u64 {
        let idx = if planar { c * n + i } else { i * 3 + c };
        let s = &data[idx * bytes..idx * bytes + bytes];
        s.iter()
            .enumerate()
            .fold(0u64, |acc, (k, b)| acc | (*b as u64) << (8 * k))
    };
    if planar {
        notes.insert(0, "planar configuration 1 interleaved to rgb".into());
    }
    let image = match info.bits_allocated {
        8 => {
            let mut out = vec![0u8; n * 3];
            for i in 0..n {
                for c in 0..3 {
                    out[i * 3 + c] = sample(i, c) as u8;
                }
            }
            Image::from_u8(info.columns, info.rows, Channels::Rgb, out)
        }
        16 | 32 => {
            let shift = if info.bits_allocated == 32 { 16 } else { 0 };
            if shift > 0 {
                notes.push("32-bit samples reduced to 16 bits (sample >> 16)".into());
            }
            let mut out = vec![0u16; n * 3];
            for i in 0..n {
                for c in 0..3 {
                    out[i * 3 + c] = (sample(i, c) >> shift) as u16;
                }
            }
            Image::from_u16(info.columns, info.rows, Channels::Rgb, out)
        }
        b => {
            return Err(info.unsupported(format!("{b}-bit colour samples")));
        }
    }
    .expect("w*h*3 samples for an rgb image");
    Ok(result(
        info,
        image,
        notes,
        "rgb samples kept as stored (no rescale, no window)",
    ))
}

/// YBR_FULL (8-bit, interleaved or planar) → RGB.
pub(super) fn ybr_full(info: &PixelInfo<'_>, data: &[u8]) -> Result<Decoded, DecodeError> {
    if info.bits_allocated != 8 {
        return Err(info.unsupported(format!(
            "{} with {} bits allocated (supported: 8)",
            info.photometric, info.bits_allocated
        )));
    }
    let n = info.pixels();
    let planar = info.planar && is_native(&info.ts_uid);
    let mut out = vec![0u8; n * 3];
    for i in 0..n {
        let at = |c: usize| {
            if planar {
                data[c * n + i]
            } else {
                data[i * 3 + c]
            }
        };
        let px = ybr_to_rgb(at(0), at(1), at(2));
        out[i * 3..i * 3 + 3].copy_from_slice(&px);
    }
    let image = Image::from_u8(info.columns, info.rows, Channels::Rgb, out)
        .expect("w*h*3 samples for an rgb image");
    let mut notes = Vec::new();
    if planar {
        notes.push("planar configuration 1 interleaved".into());
    }
    notes.push(YBR_FORMULA.into());
    Ok(result(info, image, notes, YBR_FORMULA))
}

/// Uncompressed YBR_FULL_422: each pair of pixels in a row is stored as Y0 Y1 Cb Cr (PS3.3
/// C.7.6.3.1.2); chroma is repeated for both pixels, then converted like YBR_FULL.
pub(super) fn ybr_full_422_native(
    info: &PixelInfo<'_>,
    data: &[u8],
) -> Result<Decoded, DecodeError> {
    if info.bits_allocated != 8 {
        return Err(info.unsupported(format!(
            "YBR_FULL_422 with {} bits allocated (supported: 8)",
            info.bits_allocated
        )));
    }
    let (w, h) = (info.columns as usize, info.rows as usize);
    let row_bytes = w.div_ceil(2) * 4;
    let frame_bytes = row_bytes * h;
    let start = frame_bytes * info.frame as usize;
    let Some(frame) = data.get(start..start + frame_bytes) else {
        return Err(info.corrupt(format!(
            "YBR_FULL_422 pixel data is {} bytes, frame {} needs bytes {start}..{}",
            data.len(),
            info.frame,
            start + frame_bytes
        )));
    };
    let mut out = vec![0u8; w * h * 3];
    for y in 0..h {
        for x in 0..w {
            let g = &frame[y * row_bytes + (x / 2) * 4..][..4];
            let px = ybr_to_rgb(g[x % 2], g[2], g[3]);
            out[(y * w + x) * 3..][..3].copy_from_slice(&px);
        }
    }
    let image = Image::from_u8(info.columns, info.rows, Channels::Rgb, out)
        .expect("w*h*3 samples for an rgb image");
    let notes = vec![
        "YBR_FULL_422 chroma upsampled (each Cb/Cr pair shared by two pixels)".into(),
        YBR_FORMULA.into(),
    ];
    Ok(result(info, image, notes, YBR_FORMULA))
}

const YBR_FORMULA: &str = "YBR_FULL→RGB (PS3.3 C.7.6.3.1.2, f32): R = Y + 1.402 (Cr-128), G = Y - 0.114·1.772/0.587 (Cb-128) - 0.299·1.402/0.587 (Cr-128), B = Y + 1.772 (Cb-128); floor(x + 0.5) clamped to 0..255";

/// Full-range YCbCr → RGB in f32, rounded half up, as pydicom's `convert_color_space`.
fn ybr_to_rgb(y: u8, cb: u8, cr: u8) -> [u8; 3] {
    let (y, cb, cr) = (y as f32, cb as f32 - 128.0, cr as f32 - 128.0);
    let g1 = -0.114f32 * 1.772 / 0.587;
    let g2 = -0.299f32 * 1.402 / 0.587;
    let r = y + 1.402f32 * cr;
    let g = y + g1 * cb + g2 * cr;
    let b = y + 1.772f32 * cb;
    [r, g, b].map(|v| (v + 0.5).floor().clamp(0.0, 255.0) as u8)
}

/// PALETTE COLOR: each stored index through the red, green and blue lookup tables.
pub(super) fn palette(info: &PixelInfo<'_>, data: &[u8]) -> Result<Decoded, DecodeError> {
    let segmented = [
        tags::SEGMENTED_RED_PALETTE_COLOR_LOOKUP_TABLE_DATA,
        tags::SEGMENTED_GREEN_PALETTE_COLOR_LOOKUP_TABLE_DATA,
        tags::SEGMENTED_BLUE_PALETTE_COLOR_LOOKUP_TABLE_DATA,
    ];
    if segmented
        .iter()
        .any(|t| info.obj.element_opt(*t).ok().flatten().is_some())
    {
        return Err(
            info.unsupported("PALETTE COLOR with segmented lookup tables is not supported".into())
        );
    }
    let channels = [
        (
            tags::RED_PALETTE_COLOR_LOOKUP_TABLE_DESCRIPTOR,
            tags::RED_PALETTE_COLOR_LOOKUP_TABLE_DATA,
            "red",
        ),
        (
            tags::GREEN_PALETTE_COLOR_LOOKUP_TABLE_DESCRIPTOR,
            tags::GREEN_PALETTE_COLOR_LOOKUP_TABLE_DATA,
            "green",
        ),
        (
            tags::BLUE_PALETTE_COLOR_LOOKUP_TABLE_DESCRIPTOR,
            tags::BLUE_PALETTE_COLOR_LOOKUP_TABLE_DATA,
            "blue",
        ),
    ];
    let mut luts = Vec::new();
    for (desc, lut, what) in channels {
        luts.push(palette_lut(info, desc, lut, what)?);
    }
    let bits = luts[0].2;
    if luts.iter().any(|l| l.2 != bits) {
        return Err(
            info.unsupported("PALETTE COLOR lookup tables with different entry sizes".into())
        );
    }
    let stored = super::grey::stored_values(
        data,
        info.pixels(),
        info.bits_allocated,
        info.bits_stored,
        info.high_bit,
        false,
    );
    let map = |l: &(i64, Vec<u32>, u32), s: i64| -> u32 {
        let i = (s - l.0).clamp(0, l.1.len() as i64 - 1);
        l.1[i as usize]
    };
    let n = info.pixels();
    let image = if bits == 8 {
        let mut out = vec![0u8; n * 3];
        for (i, &s) in stored.iter().enumerate() {
            for c in 0..3 {
                out[i * 3 + c] = map(&luts[c], s) as u8;
            }
        }
        Image::from_u8(info.columns, info.rows, Channels::Rgb, out)
    } else {
        let mut out = vec![0u16; n * 3];
        for (i, &s) in stored.iter().enumerate() {
            for c in 0..3 {
                out[i * 3 + c] = map(&luts[c], s) as u16;
            }
        }
        Image::from_u16(info.columns, info.rows, Channels::Rgb, out)
    }
    .expect("w*h*3 samples for an rgb image");
    let note = format!(
        "PALETTE COLOR: index → red/green/blue lookup tables ({} entries from {}, {bits}-bit entries)",
        luts[0].1.len(),
        luts[0].0
    );
    Ok(result(info, image, vec![note.clone()], &note))
}

/// `(first mapped index, entries, bits per entry)` of one palette channel.
fn palette_lut(
    info: &PixelInfo<'_>,
    desc_tag: Tag,
    data_tag: Tag,
    what: &str,
) -> Result<(i64, Vec<u32>, u32), DecodeError> {
    let bad = |d: String| info.corrupt(format!("{what} palette lookup table: {d}"));
    let desc: Vec<i64> = info
        .obj
        .element(desc_tag)
        .map_err(|_| bad("missing descriptor".into()))?
        .to_multi_int::<i64>()
        .map_err(|e| bad(format!("bad descriptor: {e}")))?;
    if desc.len() != 3 {
        return Err(bad(format!(
            "descriptor has {} values, expected 3",
            desc.len()
        )));
    }
    let entries = if desc[0] == 0 {
        65536
    } else {
        desc[0] as usize
    };
    let bits = desc[2];
    if bits != 8 && bits != 16 {
        return Err(bad(format!("{bits} bits per entry (expected 8 or 16)")));
    }
    let el = info
        .obj
        .element(data_tag)
        .map_err(|_| bad("missing data".into()))?;
    let raw = el.to_bytes().map_err(|e| bad(format!("bad data: {e}")))?;
    let data: Vec<u32> = if bits == 8 && raw.len() == entries {
        raw.iter().map(|&b| b as u32).collect()
    } else {
        raw.chunks_exact(2)
            .map(|c| u16::from_le_bytes([c[0], c[1]]) as u32)
            .map(|v| if bits == 8 { v & 0xFF } else { v })
            .collect()
    };
    if data.len() < entries {
        return Err(bad(format!(
            "{} entries, the descriptor declares {entries}",
            data.len()
        )));
    }
    Ok((desc[1], data[..entries].to_vec(), bits as u32))
}

fn result(info: &PixelInfo<'_>, image: Image, notes: Vec<String>, formula: &str) -> Decoded {
    let mut transformations: Vec<String> = info.frame_note().into_iter().collect();
    transformations.extend(notes.iter().cloned());
    let mut conversions = notes;
    conversions.extend(info.frame_note());
    info.decoded(
        image,
        conversions,
        Mapping {
            rescale: (1.0, 0.0),
            window: None,
            inverted: false,
            formula: formula.to_string(),
            transformations,
        },
    )
}
