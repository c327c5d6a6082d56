//! Regressions from real PACS-style archives (issue: DICOM with a TIFF-looking preamble, RGB
//! JPEG without an Adobe marker, non-image objects, Modality/VOI LUT Sequences). Each test
//! failed before its fix.

use dicom_core::value::{DataSetSequence, PixelFragmentSequence, Value};
use dicom_core::{DataElement, PrimitiveValue, VR};
use dicom_dictionary_std::{tags, uids};
use dicom_object::{FileMetaTableBuilder, InMemDicomObject};

use clarity_image::{DecodeError, DecodeOptions, Samples, SourceFormat, decode_bytes, sniff};

use crate::util::{Dcm, file_bytes};

fn gray16(d: &clarity_image::Decoded) -> Vec<u16> {
    match d.image.samples() {
        Samples::U16(v) => v.clone(),
        other => panic!("expected 16-bit samples, got {other:?}"),
    }
}

fn ct() -> Dcm {
    let mut d = Dcm::ct(2, 3, vec![0, 400, 512, 532, 600, 1000]);
    d.rescale = Some(("2", "-1024"));
    d.window = Some(("40", "400"));
    d
}

#[test]
fn dicom_whose_preamble_looks_like_tiff_is_read_as_dicom() {
    let plain = ct().to_bytes();
    let mut dual = plain.clone();
    // Dual-format files put a TIFF header in the 128-byte preamble.
    dual[..8].copy_from_slice(b"II*\0\x08\0\0\0");
    assert_eq!(sniff(&dual), Some(SourceFormat::Dicom));
    let d = decode_bytes(&dual, "ct_dual.dcm", &DecodeOptions::default()).unwrap();
    let want = decode_bytes(&plain, "ct.dcm", &DecodeOptions::default()).unwrap();
    assert_eq!(d.record.format, SourceFormat::Dicom);
    assert_eq!(gray16(&d), gray16(&want));
    assert!(d.record.dicom.unwrap().window.is_some());
}

fn put_str(obj: &mut InMemDicomObject, tag: dicom_core::Tag, vr: VR, v: &str) {
    obj.put(DataElement::new(tag, vr, PrimitiveValue::from(v)));
}

fn put_us(obj: &mut InMemDicomObject, tag: dicom_core::Tag, v: u16) {
    obj.put(DataElement::new(tag, VR::US, PrimitiveValue::from(v)));
}

/// An RGB secondary capture in JPEG baseline whose stream carries R, G, B components and no
/// Adobe APP14 marker (the encoder is told the samples are already YCbCr, so it stores them
/// unchanged).
fn rgb_jpeg_without_adobe(rgb: &[u8], w: u16, h: u16) -> Vec<u8> {
    let mut jpeg = Vec::new();
    jpeg_encoder::Encoder::new(&mut jpeg, 100)
        .encode(rgb, w, h, jpeg_encoder::ColorType::Ycbcr)
        .unwrap();
    assert!(
        !jpeg.windows(5).any(|x| x == b"Adobe"),
        "fixture must have no Adobe marker"
    );
    if jpeg.len() % 2 == 1 {
        jpeg.push(0);
    }
    let mut obj = InMemDicomObject::new_empty();
    put_str(
        &mut obj,
        tags::SOP_CLASS_UID,
        VR::UI,
        uids::SECONDARY_CAPTURE_IMAGE_STORAGE,
    );
    put_str(&mut obj, tags::SOP_INSTANCE_UID, VR::UI, "1.2.3.10");
    put_us(&mut obj, tags::SAMPLES_PER_PIXEL, 3);
    put_str(&mut obj, tags::PHOTOMETRIC_INTERPRETATION, VR::CS, "RGB");
    put_us(&mut obj, tags::PLANAR_CONFIGURATION, 0);
    put_us(&mut obj, tags::ROWS, h);
    put_us(&mut obj, tags::COLUMNS, w);
    put_us(&mut obj, tags::BITS_ALLOCATED, 8);
    put_us(&mut obj, tags::BITS_STORED, 8);
    put_us(&mut obj, tags::HIGH_BIT, 7);
    put_us(&mut obj, tags::PIXEL_REPRESENTATION, 0);
    obj.put(DataElement::new(
        tags::PIXEL_DATA,
        VR::OB,
        Value::PixelSequence(PixelFragmentSequence::new(vec![], vec![jpeg])),
    ));
    file_bytes(
        &obj.with_meta(FileMetaTableBuilder::new().transfer_syntax(uids::JPEG_BASELINE8_BIT))
            .unwrap(),
    )
}

#[test]
fn rgb_jpeg_without_adobe_marker_keeps_its_colours() {
    let (w, h) = (16u16, 16u16);
    // Near-white with a red square: a YCbCr reading turns near-white into magenta/green.
    let mut rgb = vec![0u8; w as usize * h as usize * 3];
    for y in 0..h as usize {
        for x in 0..w as usize {
            let px = if (4..12).contains(&x) && (4..12).contains(&y) {
                [220, 30, 30]
            } else {
                [244, 244, 244]
            };
            rgb[(y * w as usize + x) * 3..][..3].copy_from_slice(&px);
        }
    }
    let bytes = rgb_jpeg_without_adobe(&rgb, w, h);
    let d = decode_bytes(&bytes, "sc.dcm", &DecodeOptions::default()).unwrap();
    let Samples::U8(out) = d.image.samples() else {
        panic!("expected 8-bit rgb")
    };
    let max = out
        .iter()
        .zip(&rgb)
        .map(|(a, b)| a.abs_diff(*b))
        .max()
        .unwrap();
    assert!(max <= 8, "max difference {max} from the stored RGB");
    assert!(
        d.record.conversions[0].contains("without YCbCr→RGB transform"),
        "{:?}",
        d.record.conversions
    );
}

fn dicomdir() -> Vec<u8> {
    let mut obj = InMemDicomObject::new_empty();
    put_str(&mut obj, tags::FILE_SET_ID, VR::CS, "EXPORT");
    obj.put(DataElement::new(
        tags::DIRECTORY_RECORD_SEQUENCE,
        VR::SQ,
        DataSetSequence::from(vec![]),
    ));
    file_bytes(
        &obj.with_meta(
            FileMetaTableBuilder::new()
                .transfer_syntax(uids::EXPLICIT_VR_LITTLE_ENDIAN)
                .media_storage_sop_class_uid(uids::MEDIA_STORAGE_DIRECTORY_STORAGE)
                .media_storage_sop_instance_uid("1.2.3.11"),
        )
        .unwrap(),
    )
}

#[test]
fn a_dicomdir_is_not_an_image_and_says_so() {
    let e = decode_bytes(&dicomdir(), "DICOMDIR", &DecodeOptions::default()).unwrap_err();
    assert!(matches!(e, DecodeError::NotAnImage { .. }), "{e}");
    assert_eq!(
        e.to_string(),
        "DICOMDIR: not an image: a DICOM object without pixel data (Media Storage Directory Storage (1.2.840.10008.1.3.10))"
    );
}

/// A LUT sequence item: descriptor (entries, first mapped value, bits) and data.
fn lut_item(first: u16, bits: u16, data: Vec<u16>) -> InMemDicomObject {
    let mut item = InMemDicomObject::new_empty();
    item.put(DataElement::new(
        tags::LUT_DESCRIPTOR,
        VR::US,
        PrimitiveValue::U16([data.len() as u16, first, bits].into_iter().collect()),
    ));
    item.put(DataElement::new(
        tags::LUT_DATA,
        VR::US,
        PrimitiveValue::U16(data.into_iter().collect()),
    ));
    item
}

fn with_sequence(dcm: &Dcm, seq: dicom_core::Tag, item: InMemDicomObject) -> Vec<u8> {
    let mut file = dcm.to_file(uids::EXPLICIT_VR_LITTLE_ENDIAN);
    file.put(DataElement::new(
        seq,
        VR::SQ,
        DataSetSequence::from(vec![item]),
    ));
    file_bytes(&file)
}

#[test]
fn an_inverting_modality_lut_sequence_is_applied() {
    // 12-bit unsigned stored values 0..=4095 through an inverting table 4095 - v.
    let mut dcm = Dcm::ct(1, 4, vec![0, 1000, 3000, 4095]);
    dcm.signed = false;
    dcm.bits_stored = 12;
    let table: Vec<u16> = (0..4096u16).map(|v| 4095 - v).collect();
    let bytes = with_sequence(&dcm, tags::MODALITY_LUT_SEQUENCE, lut_item(0, 12, table));
    let d = decode_bytes(&bytes, "cr.dcm", &DecodeOptions::default()).unwrap();
    // Modality values 4095, 3095, 1095, 0 → min..max window → brightest first.
    let v = gray16(&d);
    assert_eq!(v[0], 65535);
    assert_eq!(v[3], 0);
    assert!(v[1] > v[2]);
    let rec = d.record.dicom.unwrap();
    assert!(
        rec.transformations
            .iter()
            .any(|t| t.starts_with("modality LUT sequence: 4096 entries from 0, 12 bits")),
        "{:?}",
        rec.transformations
    );
}

#[test]
fn a_voi_lut_sequence_is_used_instead_of_data_min_max() {
    let mut dcm = Dcm::ct(1, 3, vec![0, 1, 2]);
    dcm.signed = false;
    dcm.bits_stored = 12;
    // A non-linear VOI table over stored values 0..=2 (8-bit output entries).
    let bytes = with_sequence(
        &dcm,
        tags::VOILUT_SEQUENCE,
        lut_item(0, 8, vec![0, 200, 255]),
    );
    let d = decode_bytes(&bytes, "dx.dcm", &DecodeOptions::default()).unwrap();
    assert_eq!(gray16(&d), [0, 200 * 257, 65535]);
    let rec = d.record.dicom.unwrap();
    assert!(rec.window.is_none());
    assert!(rec.formula.contains("VOI LUT sequence"), "{}", rec.formula);
}
