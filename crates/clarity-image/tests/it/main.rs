//! Integration tests for decoding, limits, DICOM windowing and PNG encoding.

mod dicom;
mod encode;
mod errors;
mod raster;
mod util;
