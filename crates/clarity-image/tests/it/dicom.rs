use clarity_image::{
    Channels, DecodeOptions, Samples, SourceFormat, WindowChoice, WindowPreset, WindowSource,
    decode_bytes, decode_file,
};

use crate::util::Dcm;

/// Stored values of a 3x2 signed CT image; with slope 2 and intercept -1024 they are
/// HU -1024, -224, 0, 40, 176, 976.
const STORED: [u16; 6] = [0, 400, 512, 532, 600, 1000];

fn ct() -> Dcm {
    let mut d = Dcm::ct(2, 3, STORED.to_vec());
    d.rescale = Some(("2", "-1024"));
    d.window = Some(("40", "400"));
    d
}

fn gray16(d: &clarity_image::Decoded) -> Vec<u16> {
    match d.image.samples() {
        Samples::U16(v) => v.clone(),
        other => panic!("expected 16-bit samples, got {other:?}"),
    }
}

#[test]
fn rescale_then_file_window_by_hand() {
    let d = decode_bytes(&ct().to_bytes(), "ct.dcm", &DecodeOptions::default()).unwrap();
    assert_eq!((d.image.width(), d.image.height()), (3, 2));
    assert_eq!(d.image.channels(), Channels::Gray);
    // Linear window c=40 w=400: c-0.5 = 39.5, w-1 = 399, so HU <= -160 → 0, HU > 239 → 65535,
    // HU 0 → (0-39.5)/399+0.5 = 0.40100 → 26280; HU 40 → 0.50125 → 32850; HU 176 → 55187.
    assert_eq!(gray16(&d), [0, 0, 26280, 32850, 55187, 65535]);
    let r = &d.record;
    assert_eq!(r.format, SourceFormat::Dicom);
    assert_eq!(r.source_color, "monochrome2");
    assert_eq!(r.source_bits, 16);
    let dc = r.dicom.as_ref().unwrap();
    assert_eq!((dc.rescale_slope, dc.rescale_intercept), (2.0, -1024.0));
    assert!(dc.signed);
    assert!(!dc.inverted);
    assert_eq!(dc.modality.as_deref(), Some("CT"));
    assert_eq!(dc.transfer_syntax, "1.2.840.10008.1.2.1");
    let w = dc.window.as_ref().unwrap();
    assert_eq!(w.source, WindowSource::FileVoi);
    assert_eq!((w.level, w.width), (40.0, 400.0));
    assert_eq!(w.function, "linear");
    assert_eq!(
        dc.formula,
        "m = stored * 2 + -1024; linear window (DICOM PS3.3 C.11.2.1.2.1) c = 40, w = 400: y = 0 if m <= c - 0.5 - (w - 1) / 2, y = 1 if m > c - 0.5 + (w - 1) / 2, else y = (m - (c - 0.5)) / (w - 1) + 0.5; out = round(65535 * y)"
    );
}

#[test]
fn monochrome1_is_inverted() {
    let mut dcm = ct();
    dcm.photometric = "MONOCHROME1";
    let d = decode_bytes(&dcm.to_bytes(), "m1.dcm", &DecodeOptions::default()).unwrap();
    assert_eq!(gray16(&d), [65535, 65535, 39255, 32685, 10348, 0]);
    let dc = d.record.dicom.unwrap();
    assert!(dc.inverted);
    assert!(dc.formula.ends_with("; out = 65535 - out (MONOCHROME1)"));
}

#[test]
fn preset_and_explicit_windows_override_the_file() {
    let opts = DecodeOptions {
        window: WindowChoice::Preset(WindowPreset::Lung),
        ..Default::default()
    };
    let d = decode_bytes(&ct().to_bytes(), "ct.dcm", &opts).unwrap();
    // Lung c=-600 w=1500: HU -1024 → ((-1024+600.5)/1499+0.5)*65535 = 14252.44 → 14252.
    assert_eq!(gray16(&d), [14252, 49228, 59021, 60770, 65535, 65535]);
    let w = d.record.dicom.unwrap().window.unwrap();
    assert_eq!(w.source, WindowSource::Preset);
    assert_eq!(w.preset, Some(WindowPreset::Lung));
    assert_eq!((w.level, w.width), (-600.0, 1500.0));

    let opts = DecodeOptions {
        window: WindowChoice::Explicit {
            level: 0.5,
            width: 2.0,
        },
        ..Default::default()
    };
    let d = decode_bytes(&ct().to_bytes(), "ct.dcm", &opts).unwrap();
    // c-0.5 = 0, w-1 = 1: HU <= -0.5 → 0, HU > 0.5 → 65535, HU 0 → 0.5 → 32768 (round half up).
    assert_eq!(gray16(&d), [0, 0, 32768, 65535, 65535, 65535]);
    assert_eq!(
        d.record.dicom.unwrap().window.unwrap().source,
        WindowSource::Explicit
    );
}

#[test]
fn no_voi_tags_uses_data_min_max() {
    let mut dcm = ct();
    dcm.window = None;
    let d = decode_bytes(&dcm.to_bytes(), "nowin.dcm", &DecodeOptions::default()).unwrap();
    // min HU -1024 → 0, max HU 976 → 65535; HU 0 → 1024/2000 → 33553.92 → 33554.
    let v = gray16(&d);
    assert_eq!(v[0], 0);
    assert_eq!(v[5], 65535);
    assert_eq!(v[2], 33554);
    let w = d.record.dicom.unwrap().window.unwrap();
    assert_eq!(w.source, WindowSource::DataMinMax);
    assert_eq!((w.level, w.width), (-23.5, 2001.0));
}

#[test]
fn signed_12_bit_values_are_sign_extended() {
    // 12 bits stored in 16 allocated; 0x0FFF is -1, 0x0800 is -2048; upper bits are junk.
    let mut dcm = Dcm::ct(1, 3, vec![0xF000 | 0x0FFF, 0x0800, 0x07FF]);
    dcm.bits_stored = 12;
    dcm.window = Some(("0", "4096"));
    let d = decode_bytes(&dcm.to_bytes(), "s12.dcm", &DecodeOptions::default()).unwrap();
    // c-0.5 = -0.5, w-1 = 4095: -1 → 65535 * (-0.5/4095 + 0.5) = 32759.498 → 32759,
    // -2048 <= -0.5 - 2047.5 → 0, 2047 → 65535 * (2047.5/4095 + 0.5) = 65535.
    assert_eq!(gray16(&d), [32759, 0, 65535]);
    assert_eq!(d.record.source_bits, 12);
}

#[test]
fn sigmoid_voi_function_from_file() {
    let mut dcm = Dcm::ct(1, 3, vec![(-100i16) as u16, 0, 100]);
    dcm.window = Some(("0", "200"));
    dcm.voi_function = Some("SIGMOID");
    let d = decode_bytes(&dcm.to_bytes(), "sig.dcm", &DecodeOptions::default()).unwrap();
    // y = 1/(1+exp(-4 x / 200)): x=-100 → 0.1192029 → 7812, x=0 → 0.5 → 32768, x=100 → 57723.
    assert_eq!(gray16(&d), [7812, 32768, 57723]);
    assert_eq!(d.record.dicom.unwrap().window.unwrap().function, "sigmoid");
}

#[test]
fn rgb_dicom_is_kept_as_rgb8() {
    let bytes = rgb_dicom();
    let d = decode_bytes(&bytes, "rgb.dcm", &DecodeOptions::default()).unwrap();
    assert_eq!(
        d.image.samples(),
        &Samples::U8(vec![10, 20, 30, 40, 50, 60])
    );
    assert_eq!(d.image.channels(), Channels::Rgb);
    assert!(d.record.dicom.unwrap().window.is_none());
}

fn rgb_dicom() -> Vec<u8> {
    use dicom_core::{DataElement, PrimitiveValue, VR};
    use dicom_dictionary_std::{tags, uids};
    use dicom_object::{FileMetaTableBuilder, InMemDicomObject};
    let mut obj = InMemDicomObject::new_empty();
    let s = |tag, vr, v: &str| DataElement::new(tag, vr, PrimitiveValue::from(v));
    let us = |tag, v: u16| DataElement::new(tag, VR::US, PrimitiveValue::from(v));
    obj.put(s(tags::SOP_CLASS_UID, VR::UI, "1.2.840.10008.5.1.4.1.1.7"));
    obj.put(s(tags::SOP_INSTANCE_UID, VR::UI, "1.2.3.9"));
    obj.put(us(tags::SAMPLES_PER_PIXEL, 3));
    obj.put(s(tags::PHOTOMETRIC_INTERPRETATION, VR::CS, "RGB"));
    obj.put(us(tags::PLANAR_CONFIGURATION, 0));
    obj.put(us(tags::ROWS, 1));
    obj.put(us(tags::COLUMNS, 2));
    obj.put(us(tags::BITS_ALLOCATED, 8));
    obj.put(us(tags::BITS_STORED, 8));
    obj.put(us(tags::HIGH_BIT, 7));
    obj.put(us(tags::PIXEL_REPRESENTATION, 0));
    obj.put(DataElement::new(
        tags::PIXEL_DATA,
        VR::OB,
        PrimitiveValue::from(vec![10u8, 20, 30, 40, 50, 60]),
    ));
    let file = obj
        .with_meta(FileMetaTableBuilder::new().transfer_syntax(uids::EXPLICIT_VR_LITTLE_ENDIAN))
        .unwrap();
    let mut out = Vec::new();
    file.write_all(&mut out).unwrap();
    out
}

#[test]
fn dicom_file_on_disk_and_record_is_deterministic() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("IM0001"); // extensionless, detected by the DICM magic
    std::fs::write(&path, ct().to_bytes()).unwrap();
    let a = decode_file(&path, &DecodeOptions::default()).unwrap();
    let b = decode_file(&path, &DecodeOptions::default()).unwrap();
    assert_eq!(a, b);
    assert_eq!(
        serde_json::to_string(&a.record).unwrap(),
        serde_json::to_string(&b.record).unwrap()
    );
}

#[test]
fn bad_explicit_window_is_an_error() {
    let opts = DecodeOptions {
        window: WindowChoice::Explicit {
            level: 0.0,
            width: 0.5,
        },
        ..Default::default()
    };
    let err = decode_bytes(&ct().to_bytes(), "ct.dcm", &opts).unwrap_err();
    assert_eq!(
        err.to_string(),
        "ct.dcm: explicit window level 0 width 0.5: level must be finite and width a finite number >= 1"
    );
}

#[test]
fn preset_names_parse() {
    assert_eq!(
        "soft-tissue".parse::<WindowPreset>().unwrap(),
        WindowPreset::SoftTissue
    );
    assert_eq!("LUNG".parse::<WindowPreset>().unwrap(), WindowPreset::Lung);
    let err = "lungs".parse::<WindowPreset>().unwrap_err();
    assert_eq!(
        err.to_string(),
        "unknown window preset 'lungs'; expected one of: lung, mediastinum, soft_tissue, bone, brain, liver, subdural, stroke"
    );
    let json = serde_json::to_string(&WindowChoice::Preset(WindowPreset::SoftTissue)).unwrap();
    assert_eq!(json, r#"{"preset":"soft_tissue"}"#);
}

/// 16x16 8-bit unsigned image made of four flat 8x8 blocks (20, 80, 160, 240).
fn blocks8() -> Dcm {
    let mut samples = Vec::new();
    for y in 0..16 {
        for x in 0..16 {
            samples.push(match (y / 8, x / 8) {
                (0, 0) => 20,
                (0, 1) => 80,
                (1, 0) => 160,
                _ => 240,
            });
        }
    }
    let mut d = Dcm::ct(16, 16, samples);
    d.bits_allocated = 8;
    d.bits_stored = 8;
    d.signed = false;
    // c = 128, w = 256: y = (x - 127.5) / 255 + 0.5 = x / 255, so out = x * 257 exactly.
    d.window = Some(("128", "256"));
    d
}

#[test]
fn eight_bit_window_maps_x_to_x_times_257() {
    let d = decode_bytes(&blocks8().to_bytes(), "b8.dcm", &DecodeOptions::default()).unwrap();
    let v = gray16(&d);
    assert_eq!(
        (v[0], v[8], v[16 * 8], v[255]),
        (20 * 257, 80 * 257, 160 * 257, 240 * 257)
    );
}

#[test]
fn jpeg_baseline_encapsulated_dicom_decodes_with_pure_rust_codec() {
    use dicom_pixeldata::Transcode;
    use dicom_transfer_syntax_registry::entries::JPEG_BASELINE;
    let mut file = blocks8().to_file(dicom_dictionary_std::uids::EXPLICIT_VR_LITTLE_ENDIAN);
    file.transcode(&JPEG_BASELINE.erased()).unwrap();
    let bytes = crate::util::file_bytes(&file);
    let d = decode_bytes(&bytes, "jpeg.dcm", &DecodeOptions::default()).unwrap();
    let dc = d.record.dicom.as_ref().unwrap();
    assert_eq!(dc.transfer_syntax, "1.2.840.10008.1.2.4.50");
    let v = gray16(&d);
    // Lossy, but flat 8x8 blocks survive within a grey level or two.
    for (i, want) in [(0, 20u16), (8, 80), (16 * 8, 160), (255, 240)] {
        assert!(
            v[i].abs_diff(want * 257) <= 2 * 257,
            "pixel {i}: {} vs {}",
            v[i],
            want * 257
        );
    }
}

#[test]
fn deflated_transfer_syntax_is_lossless() {
    let file = ct().to_file(dicom_dictionary_std::uids::DEFLATED_EXPLICIT_VR_LITTLE_ENDIAN);
    let bytes = crate::util::file_bytes(&file);
    let d = decode_bytes(&bytes, "deflated.dcm", &DecodeOptions::default()).unwrap();
    assert_eq!(gray16(&d), [0, 0, 26280, 32850, 55187, 65535]);
    assert_eq!(
        d.record.dicom.unwrap().transfer_syntax,
        "1.2.840.10008.1.2.1.99"
    );
}

#[test]
fn multi_frame_decodes_the_chosen_frame_and_records_it() {
    let mut dcm = Dcm::ct(1, 2, vec![1, 2, 3, 4]);
    dcm.frames = Some(2);
    dcm.window = Some(("2.5", "4"));
    let bytes = dcm.to_bytes();
    let first = decode_bytes(&bytes, "cine.dcm", &DecodeOptions::default()).unwrap();
    let opts = DecodeOptions {
        frame: 1,
        ..Default::default()
    };
    let second = decode_bytes(&bytes, "cine.dcm", &opts).unwrap();
    assert_ne!(gray16(&first), gray16(&second));
    let rec = second.record.dicom.unwrap();
    assert_eq!((rec.frame, rec.frames), (1, 2));
    assert_eq!(rec.transformations[0], "frame 1 of 2 decoded");
    let e = decode_bytes(
        &bytes,
        "cine.dcm",
        &DecodeOptions {
            frame: 2,
            ..Default::default()
        },
    )
    .unwrap_err();
    assert_eq!(
        e.to_string(),
        "cine.dcm: frame 2 asked for, the object has 2 frame(s) (0-based)"
    );
}

#[test]
fn an_unsupported_transfer_syntax_is_refused_by_name_and_uid() {
    use dicom_pixeldata::Transcode;
    use dicom_transfer_syntax_registry::entries::JPEG_BASELINE;
    let mut file = blocks8().to_file(dicom_dictionary_std::uids::EXPLICIT_VR_LITTLE_ENDIAN);
    file.transcode(&JPEG_BASELINE.erased()).unwrap();
    let mut bytes = crate::util::file_bytes(&file);
    // Relabel as JPEG-LS Lossless (same UID length): no pure-Rust decoder exists.
    let from = b"1.2.840.10008.1.2.4.50";
    let at = bytes.windows(from.len()).position(|w| w == from).unwrap();
    bytes[at..at + from.len()].copy_from_slice(b"1.2.840.10008.1.2.4.80");
    let e = decode_bytes(&bytes, "jls.dcm", &DecodeOptions::default()).unwrap_err();
    let msg = e.to_string();
    assert!(
        msg.starts_with("jls.dcm: unsupported dicom file: transfer syntax JPEG-LS Lossless Image Compression (1.2.840.10008.1.2.4.80) has no decoder in this build"),
        "{msg}"
    );
    assert!(!msg.contains("corrupt"), "{msg}");
}

/// Sets the 32-bit length of the first explicit-VR-LE element `tag` with a long header.
fn declare_length(bytes: &mut [u8], tag: (u16, u16), len: u32) {
    let mut needle = Vec::new();
    needle.extend_from_slice(&tag.0.to_le_bytes());
    needle.extend_from_slice(&tag.1.to_le_bytes());
    let at = bytes
        .windows(4)
        .position(|w| w == needle.as_slice())
        .expect("tag present");
    bytes[at + 8..at + 12].copy_from_slice(&len.to_le_bytes());
}

/// Found by the `image_decode` fuzz target: dicom-rs reserves and zero-fills a value from its
/// declared length before reading it, so a file of a few hundred bytes declaring a huge
/// element made decoding allocate that much (up to 4 GiB). The length is now checked against
/// the bytes that follow, before dicom-rs runs.
#[test]
fn a_declared_length_past_the_end_is_refused_before_allocating() {
    let mut bytes = ct().to_bytes();
    let n = bytes.len();
    // 64 MiB: small enough that the old behaviour (allocate, then fail) is harmless here.
    declare_length(&mut bytes, (0x7FE0, 0x0010), 64 << 20);
    let e = decode_bytes(&bytes, "bomb.dcm", &DecodeOptions::default())
        .unwrap_err()
        .to_string();
    assert!(
        e.starts_with("bomb.dcm: corrupt or truncated dicom file: element (7FE0,0010) at byte")
            && e.contains(&format!("declares a value of {} bytes", 64 << 20))
            && e.contains("bytes follow"),
        "{e} (file of {n} bytes)"
    );
}

/// The same inside a sequence item: nested elements are checked too.
#[test]
fn a_nested_declared_length_past_the_end_is_refused() {
    use dicom_core::value::DataSetSequence;
    use dicom_core::{DataElement, VR};
    use dicom_object::InMemDicomObject;
    let mut item = InMemDicomObject::new_empty();
    item.put(DataElement::new(
        dicom_core::Tag(0x0009, 0x1001),
        VR::OB,
        dicom_core::PrimitiveValue::from(vec![1u8, 2, 3, 4]),
    ));
    let mut file = ct().to_file(dicom_dictionary_std::uids::EXPLICIT_VR_LITTLE_ENDIAN);
    file.put(DataElement::new(
        dicom_core::Tag(0x0009, 0x1000),
        VR::SQ,
        DataSetSequence::from(vec![item]),
    ));
    let mut bytes = crate::util::file_bytes(&file);
    // Valid as written.
    decode_bytes(&bytes, "seq.dcm", &DecodeOptions::default()).unwrap();
    declare_length(&mut bytes, (0x0009, 0x1001), 32 << 20);
    let e = decode_bytes(&bytes, "seq.dcm", &DecodeOptions::default())
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("element (0009,1001)") && e.contains(&format!("{} bytes", 32 << 20)),
        "{e}"
    );
}

/// The second `image_decode` fuzz finding (`fuzz/regressions/image_decode-oom-dicom.bin`, its
/// first byte is the fuzz target's frame selector): the meta group's length (0002,0000)
/// disagrees with its elements, so dicom-rs, which reads the meta group by that length, starts
/// the data set 2 bytes off and read a 4 GB length there; the pre-check followed the group
/// number and never saw that length. It now reads the meta group the way dicom-rs does.
#[test]
fn a_meta_group_length_that_misaligns_the_data_set_is_refused_before_allocating() {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../fuzz/regressions/image_decode-oom-dicom.bin");
    let data = std::fs::read(&path).unwrap();
    let e = decode_bytes(&data[1..], "fuzz.dcm", &DecodeOptions::default())
        .unwrap_err()
        .to_string();
    assert!(
        e.starts_with("fuzz.dcm: corrupt or truncated dicom file: element (")
            && e.contains("bytes follow"),
        "{e}"
    );
}

/// Third `image_decode` fuzz finding (`fuzz/regressions/image_decode-oom-dicom-fffe.bin`): a
/// (FFFE,FFFF) tag, which dicom-rs reads as an ordinary element with a VR and a 3 GB length,
/// was skipped by the pre-check as if it were an item header.
#[test]
fn an_unknown_fffe_tag_is_checked_like_any_element() {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../fuzz/regressions/image_decode-oom-dicom-fffe.bin");
    let data = std::fs::read(&path).unwrap();
    let e = decode_bytes(&data[1..], "fuzz.dcm", &DecodeOptions::default())
        .unwrap_err()
        .to_string();
    assert!(
        e.starts_with("fuzz.dcm: corrupt or truncated dicom file: element (FFFE,FFFF)")
            && e.contains("bytes follow"),
        "{e}"
    );
}
