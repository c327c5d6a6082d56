use std::path::Path;

use dicom_core::{DataElement, PrimitiveValue, VR};
use dicom_dictionary_std::{tags, uids};
use dicom_object::{FileMetaTableBuilder, InMemDicomObject};

pub fn write(path: &Path, bytes: &[u8]) {
    if let Some(p) = path.parent() {
        std::fs::create_dir_all(p).unwrap();
    }
    std::fs::write(path, bytes).unwrap();
}

pub fn png_gray8(path: &Path, w: u32, h: u32, v: &[u8]) {
    let img = image::GrayImage::from_raw(w, h, v.to_vec()).unwrap();
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    img.save_with_format(path, image::ImageFormat::Png).unwrap();
}

pub fn tiff_gray16(path: &Path, w: u32, h: u32, v: &[u16]) {
    let img = image::ImageBuffer::<image::Luma<u16>, _>::from_raw(w, h, v.to_vec()).unwrap();
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    img.save_with_format(path, image::ImageFormat::Tiff)
        .unwrap();
}

/// A 2x1 CT slice, signed 16-bit, slope 1, intercept -1000, window 0/100.
pub fn dicom_ct(path: &Path, stored: [i16; 2]) {
    let mut obj = InMemDicomObject::new_empty();
    let s = |tag, vr, v: &str| DataElement::new(tag, vr, PrimitiveValue::from(v));
    let us = |tag, v: u16| DataElement::new(tag, VR::US, PrimitiveValue::from(v));
    obj.put(s(tags::SOP_CLASS_UID, VR::UI, uids::CT_IMAGE_STORAGE));
    obj.put(s(tags::SOP_INSTANCE_UID, VR::UI, "1.2.3.4"));
    obj.put(us(tags::SAMPLES_PER_PIXEL, 1));
    obj.put(s(tags::PHOTOMETRIC_INTERPRETATION, VR::CS, "MONOCHROME2"));
    obj.put(us(tags::ROWS, 1));
    obj.put(us(tags::COLUMNS, 2));
    obj.put(us(tags::BITS_ALLOCATED, 16));
    obj.put(us(tags::BITS_STORED, 16));
    obj.put(us(tags::HIGH_BIT, 15));
    obj.put(us(tags::PIXEL_REPRESENTATION, 1));
    obj.put(s(tags::RESCALE_SLOPE, VR::DS, "1"));
    obj.put(s(tags::RESCALE_INTERCEPT, VR::DS, "-1000"));
    obj.put(s(tags::WINDOW_CENTER, VR::DS, "0"));
    obj.put(s(tags::WINDOW_WIDTH, VR::DS, "100"));
    obj.put(DataElement::new(
        tags::PIXEL_DATA,
        VR::OW,
        PrimitiveValue::U16(stored.iter().map(|&v| v as u16).collect()),
    ));
    let file = obj
        .with_meta(FileMetaTableBuilder::new().transfer_syntax(uids::EXPLICIT_VR_LITTLE_ENDIAN))
        .unwrap();
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    file.write_to_file(path).unwrap();
}

/// A DICOMDIR-like media directory object (no pixel data).
pub fn dicomdir(path: &Path) {
    let mut obj = InMemDicomObject::new_empty();
    obj.put(DataElement::new(
        tags::FILE_SET_ID,
        VR::CS,
        PrimitiveValue::from("EXPORT"),
    ));
    let file = obj
        .with_meta(
            FileMetaTableBuilder::new()
                .transfer_syntax(uids::EXPLICIT_VR_LITTLE_ENDIAN)
                .media_storage_sop_class_uid(uids::MEDIA_STORAGE_DIRECTORY_STORAGE)
                .media_storage_sop_instance_uid("1.2.3.99"),
        )
        .unwrap();
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    file.write_to_file(path).unwrap();
}
