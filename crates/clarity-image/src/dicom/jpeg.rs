//! RGB in JPEG without an Adobe APP14 marker.
//!
//! A JPEG decoder that sees three components and no Adobe marker assumes JFIF, i.e. YCbCr,
//! and converts to RGB. DICOM says otherwise: Photometric Interpretation RGB means the
//! components *are* R, G, B (PS3.5 8.2.1), so they must be returned as stored. dicom-rs's
//! JPEG adapter does not pass the Photometric Interpretation to its decoder, so this path
//! decodes such frames itself with the same pure-Rust decoder (`jpeg-decoder`), with the
//! colour transform switched off. An Adobe marker, when present, is authoritative and the
//! usual path is taken.

use dicom_dictionary_std::tags;
use jpeg_decoder::{ColorTransform, Decoder};

use super::PixelInfo;
use crate::decode::DecodeError;

/// The chosen frame's RGB samples, or `None` when the stream carries an Adobe marker (then
/// the decoder's own colour handling is right).
pub(super) fn rgb_without_colour_transform(
    info: &PixelInfo<'_>,
) -> Result<Option<Vec<u8>>, DecodeError> {
    let el = info
        .obj
        .element(tags::PIXEL_DATA)
        .map_err(|e| info.corrupt(format!("pixel data: {e}")))?;
    let Some(fragments) = el.value().fragments() else {
        return Err(info.corrupt(format!(
            "{} requires encapsulated pixel data",
            info.ts_label
        )));
    };
    let stream: Vec<u8> = if info.frames == 1 {
        fragments.iter().flatten().copied().collect()
    } else if fragments.len() == info.frames as usize {
        fragments[info.frame as usize].clone()
    } else {
        // Frames spread over several fragments each: leave it to dicom-rs's splitter.
        return Ok(None);
    };
    if has_adobe_marker(&stream) {
        return Ok(None);
    }
    let mut decoder = Decoder::new(std::io::Cursor::new(&stream));
    // `ColorTransform::RGB` interleaves the three components as they are (no conversion);
    // `None` would leave each line component-planar in jpeg-decoder 0.3.
    decoder.set_color_transform(ColorTransform::RGB);
    let pixels = decoder.decode().map_err(|e| {
        info.corrupt(format!(
            "cannot decode pixel data ({}): JPEG decoding failure on frame {}: {e}",
            info.ts_label, info.frame
        ))
    })?;
    let meta = decoder
        .info()
        .ok_or_else(|| info.corrupt("JPEG stream without a frame header".into()))?;
    if meta.width as u32 != info.columns
        || meta.height as u32 != info.rows
        || meta.pixel_format != jpeg_decoder::PixelFormat::RGB24
    {
        return Err(info.corrupt(format!(
            "JPEG stream is {}x{} {:?}, the DICOM header says {}x{} with 3 samples of 8 bits",
            meta.width, meta.height, meta.pixel_format, info.columns, info.rows
        )));
    }
    Ok(Some(pixels))
}

/// An APP14 segment starting with `Adobe` before the first scan.
fn has_adobe_marker(stream: &[u8]) -> bool {
    let mut i = 2; // after SOI
    while i + 4 <= stream.len() {
        if stream[i] != 0xFF {
            return false;
        }
        let marker = stream[i + 1];
        if marker == 0xFF {
            i += 1;
            continue;
        }
        if marker == 0xDA || marker == 0xD9 {
            return false; // start of scan / end of image
        }
        let len = u16::from_be_bytes([stream[i + 2], stream[i + 3]]) as usize;
        if marker == 0xEE && stream.get(i + 4..i + 9) == Some(b"Adobe") {
            return true;
        }
        i += 2 + len;
    }
    false
}
