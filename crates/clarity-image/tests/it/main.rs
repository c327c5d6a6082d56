//! Integration tests for decoding, limits, DICOM windowing and PNG encoding.

mod dicom;
mod dicom_archive;
mod encode;
mod errors;
mod raster;
mod util;
