//! Clarity's image model.
//!
//! [`Image`] is the one in-memory image type used everywhere in Clarity: grayscale or RGB
//! ([`Channels`]), 8- or 16-bit samples ([`Samples`]), row-major, channels interleaved.
//! Grayscale stays grayscale and 16-bit stays 16-bit until an adapter needs its own format;
//! such conversions go through [`Image::to_rgb8`] / [`Image::to_gray8`], which return a
//! [`Conversion`] record so the change is written down with the run.
//!
//! [`Image::content_hash`] hashes the decoded pixels (not the file bytes), so the same picture
//! saved as PNG or TIFF gets the same content key.
//!
//! Decoding: [`decode_file`] / [`decode_bytes`] read PNG, JPEG, TIFF (8/16-bit, gray/RGB) and
//! single-frame DICOM into an [`Image`] plus a [`DecodeRecord`] saying what was done, under
//! [`Limits`] checked before any pixel buffer is allocated. Alpha channels are dropped (the
//! colour samples are kept as stored, not composited) and palettes expanded to RGB; both are
//! written in the record. DICOM goes stored value → modality units (rescale slope/intercept)
//! → VOI window ([`WindowChoice`]: the file's tags, a [`WindowPreset`] or explicit) → 16-bit
//! grey, MONOCHROME1 inverted; the record holds the formula. Encoding: [`encode_png`] /
//! [`write_png`] write lossless, byte-deterministic PNG. [`colormap`] holds the viridis map of
//! every overlay, thumbnail and plot.

pub mod colormap;
mod decode;
mod dicom;
mod encode;
mod model;

pub use decode::{
    DecodeError, DecodeOptions, DecodeRecord, Decoded, DicomRecord, Limits, SourceFormat,
    WindowChoice, WindowPreset, WindowRecord, WindowSource, decode_bytes, decode_file, sniff,
};
pub use encode::{encode_png, write_png};

pub use model::{
    BitDepth, Channels, Conversion, Image, ImageError, PixelFormat, Samples, SamplesMut,
};
