//! Image decoding (PNG, JPEG, TIFF, DICOM, sniffed from the content) through the same entry
//! point as cohort files, with small limits so that a header claiming a huge image must be
//! refused before anything is allocated for it (libFuzzer's -rss_limit_mb catches a miss).
#![no_main]

use clarity_image::{DecodeOptions, Limits, decode_bytes};
use libfuzzer_sys::fuzz_target;

const LIMITS: Limits = Limits {
    max_pixels: 1 << 20,
    max_file_bytes: 1 << 20,
    max_side: 2048,
    max_decoded_bytes: 1 << 24,
};

fuzz_target!(|data: &[u8]| {
    // The first byte picks the DICOM frame (most inputs have one frame; frame 1 exercises the
    // "no such frame" path of multi-frame objects).
    let (frame, bytes) = match data.split_first() {
        Some((f, rest)) => (u32::from(*f % 3), rest),
        None => (0, data),
    };
    let opts = DecodeOptions {
        limits: LIMITS,
        frame,
        ..DecodeOptions::default()
    };
    match decode_bytes(bytes, "fuzz-input", &opts) {
        Ok(decoded) => {
            let (w, h) = (decoded.image.width(), decoded.image.height());
            assert!(w > 0 && h > 0, "a decoded image has pixels");
            assert!(
                w <= LIMITS.max_side && h <= LIMITS.max_side,
                "{w}x{h} passed max_side"
            );
            assert!(
                u64::from(w) * u64::from(h) <= LIMITS.max_pixels,
                "{w}x{h} passed max_pixels"
            );
            let _ = format!("{:?}", decoded.record);
        }
        Err(e) => {
            let _ = e.to_string();
        }
    }
});
