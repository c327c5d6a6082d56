//! RLE Lossless (PS3.5 Annex G) for 32-bit samples, which dicom-rs's codec refuses. A frame
//! is one fragment: a 64-byte header (segment count, 15 offsets) and one PackBits segment
//! per sample byte, most significant byte first, for each sample of the pixel in turn.

use super::PixelInfo;
use crate::decode::DecodeError;

/// The frame's samples, little endian, in the layout the Planar Configuration tag names.
pub(super) fn decode_frame(info: &PixelInfo<'_>) -> Result<Vec<u8>, DecodeError> {
    let el = info
        .obj
        .element(dicom_dictionary_std::tags::PIXEL_DATA)
        .map_err(|e| info.corrupt(format!("pixel data: {e}")))?;
    let Some(fragments) = el.value().fragments() else {
        return Err(info.corrupt(format!(
            "{} requires encapsulated pixel data",
            info.ts_label
        )));
    };
    let stream: Vec<u8> = if info.frames == 1 {
        fragments.iter().flatten().copied().collect()
    } else if let Some(f) = fragments.get(info.frame as usize) {
        f.clone()
    } else {
        return Err(info.corrupt(format!(
            "{} fragments for {} frames; RLE needs one fragment per frame",
            fragments.len(),
            info.frames
        )));
    };
    let bad = |d: String| info.corrupt(format!("RLE frame {}: {d}", info.frame));
    if stream.len() < 64 {
        return Err(bad("shorter than its 64-byte header".into()));
    }
    let word = |i: usize| u32::from_le_bytes(stream[i * 4..i * 4 + 4].try_into().unwrap());
    let segments = word(0) as usize;
    let bps = info.bits_allocated as usize / 8;
    let spp = info.samples_per_pixel as usize;
    if segments != bps * spp {
        return Err(bad(format!(
            "{segments} segments, expected {} ({spp} samples of {bps} bytes)",
            bps * spp
        )));
    }
    let n = info.pixels();
    let mut out = vec![0u8; n * spp * bps];
    for s in 0..segments {
        let start = word(1 + s) as usize;
        let end = if s + 1 < segments {
            word(2 + s) as usize
        } else {
            stream.len()
        };
        if start > end || end > stream.len() {
            return Err(bad(format!(
                "segment {s} offsets {start}..{end} out of range"
            )));
        }
        let bytes = packbits(&stream[start..end], n);
        if bytes.len() < n {
            return Err(bad(format!(
                "segment {s} decodes to {} bytes, expected {n}",
                bytes.len()
            )));
        }
        let (c, b) = (s / bps, bps - 1 - s % bps);
        for (i, &v) in bytes.iter().take(n).enumerate() {
            let sample = if info.planar { c * n + i } else { i * spp + c };
            out[sample * bps + b] = v;
        }
    }
    Ok(out)
}

/// PackBits: a header byte n ≥ 0 copies n + 1 literal bytes, −127..−1 repeats the next byte
/// 1 − n times, −128 is a no-op. Stops after `limit` bytes.
fn packbits(src: &[u8], limit: usize) -> Vec<u8> {
    let mut out = Vec::with_capacity(limit);
    let mut i = 0;
    while i < src.len() && out.len() < limit {
        let n = src[i] as i8;
        i += 1;
        if n >= 0 {
            let k = (n as usize + 1).min(src.len() - i);
            out.extend_from_slice(&src[i..i + k]);
            i += k;
        } else if n != -128 {
            if let Some(&v) = src.get(i) {
                out.extend(std::iter::repeat_n(v, (1 - n as isize) as usize));
            }
            i += 1;
        }
    }
    out
}
