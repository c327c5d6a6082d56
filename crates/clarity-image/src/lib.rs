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

mod model;

pub use model::{
    BitDepth, Channels, Conversion, Image, ImageError, PixelFormat, Samples, SamplesMut,
};
