//! Helpers that write small test files with the `image` crate and dicom-rs.

use std::io::Cursor;

use dicom_core::{DataElement, PrimitiveValue, VR};
use dicom_dictionary_std::{tags, uids};
use dicom_object::{FileDicomObject, FileMetaTableBuilder, InMemDicomObject};
use image::{ExtendedColorType, ImageEncoder};

/// Encodes raw samples (native-endian for 16-bit) with the `image` crate.
pub fn encode_with_image(
    format: image::ImageFormat,
    bytes: &[u8],
    w: u32,
    h: u32,
    color: ExtendedColorType,
) -> Vec<u8> {
    let mut out = Vec::new();
    match format {
        image::ImageFormat::Png => image::codecs::png::PngEncoder::new(&mut out)
            .write_image(bytes, w, h, color)
            .unwrap(),
        image::ImageFormat::Tiff => image::codecs::tiff::TiffEncoder::new(Cursor::new(&mut out))
            .write_image(bytes, w, h, color)
            .unwrap(),
        image::ImageFormat::Jpeg => {
            image::codecs::jpeg::JpegEncoder::new_with_quality(&mut out, 95)
                .write_image(bytes, w, h, color)
                .unwrap()
        }
        other => panic!("unexpected format {other:?}"),
    }
    out
}

pub fn u16_ne(v: &[u16]) -> Vec<u8> {
    v.iter().flat_map(|s| s.to_ne_bytes()).collect()
}

/// A DICOM test object description.
pub struct Dcm {
    pub rows: u16,
    pub cols: u16,
    pub photometric: &'static str,
    pub bits_allocated: u16,
    pub bits_stored: u16,
    pub signed: bool,
    /// Samples as stored (bit patterns), little-endian u16 per sample.
    pub samples: Vec<u16>,
    pub rescale: Option<(&'static str, &'static str)>,
    pub window: Option<(&'static str, &'static str)>,
    pub voi_function: Option<&'static str>,
    pub frames: Option<u32>,
}

impl Dcm {
    pub fn ct(rows: u16, cols: u16, samples: Vec<u16>) -> Self {
        Dcm {
            rows,
            cols,
            photometric: "MONOCHROME2",
            bits_allocated: 16,
            bits_stored: 16,
            signed: true,
            samples,
            rescale: None,
            window: None,
            voi_function: None,
            frames: None,
        }
    }

    pub fn to_bytes(&self) -> Vec<u8> {
        file_bytes(&self.to_file(uids::EXPLICIT_VR_LITTLE_ENDIAN))
    }

    pub fn to_file(&self, transfer_syntax: &str) -> FileDicomObject<InMemDicomObject> {
        let mut obj = InMemDicomObject::new_empty();
        let put_str = |obj: &mut InMemDicomObject, tag, vr, v: &str| {
            obj.put(DataElement::new(tag, vr, PrimitiveValue::from(v)));
        };
        let put_us = |obj: &mut InMemDicomObject, tag, v: u16| {
            obj.put(DataElement::new(tag, VR::US, PrimitiveValue::from(v)));
        };
        put_str(
            &mut obj,
            tags::SOP_CLASS_UID,
            VR::UI,
            uids::CT_IMAGE_STORAGE,
        );
        put_str(&mut obj, tags::SOP_INSTANCE_UID, VR::UI, "1.2.3.4.5.6.7");
        put_str(&mut obj, tags::MODALITY, VR::CS, "CT");
        put_us(&mut obj, tags::SAMPLES_PER_PIXEL, 1);
        put_str(
            &mut obj,
            tags::PHOTOMETRIC_INTERPRETATION,
            VR::CS,
            self.photometric,
        );
        put_us(&mut obj, tags::ROWS, self.rows);
        put_us(&mut obj, tags::COLUMNS, self.cols);
        put_us(&mut obj, tags::BITS_ALLOCATED, self.bits_allocated);
        put_us(&mut obj, tags::BITS_STORED, self.bits_stored);
        put_us(&mut obj, tags::HIGH_BIT, self.bits_stored - 1);
        put_us(&mut obj, tags::PIXEL_REPRESENTATION, self.signed as u16);
        if let Some((slope, intercept)) = self.rescale {
            put_str(&mut obj, tags::RESCALE_SLOPE, VR::DS, slope);
            put_str(&mut obj, tags::RESCALE_INTERCEPT, VR::DS, intercept);
        }
        if let Some((center, width)) = self.window {
            put_str(&mut obj, tags::WINDOW_CENTER, VR::DS, center);
            put_str(&mut obj, tags::WINDOW_WIDTH, VR::DS, width);
        }
        if let Some(n) = self.frames {
            put_str(&mut obj, tags::NUMBER_OF_FRAMES, VR::IS, &n.to_string());
        }
        if let Some(f) = self.voi_function {
            put_str(&mut obj, tags::VOILUT_FUNCTION, VR::CS, f);
        }
        if self.bits_allocated == 8 {
            let bytes: Vec<u8> = self.samples.iter().map(|&s| s as u8).collect();
            obj.put(DataElement::new(
                tags::PIXEL_DATA,
                VR::OB,
                PrimitiveValue::from(bytes),
            ));
        } else {
            obj.put(DataElement::new(
                tags::PIXEL_DATA,
                VR::OW,
                PrimitiveValue::U16(self.samples.iter().copied().collect()),
            ));
        }
        obj.with_meta(FileMetaTableBuilder::new().transfer_syntax(transfer_syntax))
            .unwrap()
    }
}

pub fn file_bytes(file: &FileDicomObject<InMemDicomObject>) -> Vec<u8> {
    let mut out = Vec::new();
    file.write_all(&mut out).unwrap();
    out
}

/// CRC-32 (PNG polynomial) for hand-made PNG chunks; tests only.
pub fn crc32(bytes: &[u8]) -> u32 {
    let mut crc = 0xFFFF_FFFFu32;
    for &b in bytes {
        crc ^= b as u32;
        for _ in 0..8 {
            crc = if crc & 1 == 1 {
                (crc >> 1) ^ 0xEDB8_8320
            } else {
                crc >> 1
            };
        }
    }
    !crc
}

/// A real PNG whose IHDR (with a valid CRC) claims `w` x `h`.
pub fn png_claiming(w: u32, h: u32) -> Vec<u8> {
    png_claiming_as(w, h, 8, 0)
}

/// A 1×1 8-bit grey PNG whose IHDR claims `w`×`h` at `bit_depth` and `color_type` (6: RGBA),
/// with a valid CRC: the header passes, the data does not.
pub fn png_claiming_as(w: u32, h: u32, bit_depth: u8, color_type: u8) -> Vec<u8> {
    let mut png = encode_with_image(image::ImageFormat::Png, &[7], 1, 1, ExtendedColorType::L8);
    png[16..20].copy_from_slice(&w.to_be_bytes());
    png[20..24].copy_from_slice(&h.to_be_bytes());
    png[24] = bit_depth;
    png[25] = color_type;
    let crc = crc32(&png[12..29]);
    png[29..33].copy_from_slice(&crc.to_be_bytes());
    png
}
