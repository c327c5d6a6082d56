use clarity_image::{DecodeError, DecodeOptions, Limits, decode_bytes, decode_file};
use image::{ExtendedColorType, ImageFormat};

use crate::util::{Dcm, encode_with_image, png_claiming, png_claiming_as};

fn err(bytes: &[u8], name: &str) -> String {
    decode_bytes(bytes, name, &DecodeOptions::default())
        .unwrap_err()
        .to_string()
}

#[test]
fn truncated_png_names_the_file() {
    let png = encode_with_image(
        ImageFormat::Png,
        &(0..=255).collect::<Vec<u8>>(),
        16,
        16,
        ExtendedColorType::L8,
    );
    let msg = err(&png[..png.len() / 2], "scans/cut.png");
    assert!(
        msg.starts_with("scans/cut.png: corrupt or truncated png file: "),
        "{msg}"
    );
    let msg = err(&png[..20], "short.png");
    assert_eq!(
        msg,
        "short.png: corrupt or truncated png file: missing or short IHDR header"
    );
}

#[test]
fn random_bytes_are_an_unknown_format() {
    let bytes: Vec<u8> = (0..200u32).map(|i| (i * 37 % 251) as u8).collect();
    assert_eq!(
        err(&bytes, "noise.png"),
        "noise.png: not a PNG, JPEG, TIFF or DICOM file (starts with bytes 00 25 4a 6f 94 b9 de 08)"
    );
}

#[test]
fn random_bytes_after_a_valid_magic_do_not_panic() {
    for (magic, fmt) in [
        (&b"\x89PNG\r\n\x1a\n"[..], "png"),
        (&[0xFF, 0xD8, 0xFF][..], "jpeg"),
        (&b"II*\0"[..], "tiff"),
    ] {
        let mut bytes = magic.to_vec();
        bytes.extend((0..300u32).map(|i| (i * 91 % 253) as u8));
        let msg = err(&bytes, "junk");
        assert!(
            msg.starts_with(&format!("junk: corrupt or truncated {fmt} file")),
            "{msg}"
        );
    }
    let mut dcm = vec![0u8; 128];
    dcm.extend_from_slice(b"DICM");
    dcm.extend((0..300u32).map(|i| (i * 91 % 253) as u8));
    let msg = err(&dcm, "junk.dcm");
    assert!(
        msg.starts_with("junk.dcm: corrupt or truncated dicom file"),
        "{msg}"
    );
}

#[test]
fn decompression_bomb_header_is_refused_before_decoding() {
    let png = png_claiming(100_000, 100_000);
    assert_eq!(
        err(&png, "bomb.png"),
        "bomb.png: image is 100000x100000, a side over the max_side limit of 65535; raise max_side if the file is trusted"
    );
    let png = png_claiming(20_000, 20_000);
    assert_eq!(
        err(&png, "big.png"),
        "big.png: image is 20000x20000 = 400000000 pixels, over the max_pixels limit of 100000000; raise max_pixels if the file is trusted"
    );
    // Raising the limit lets the header through, and the (tiny) data is then found short.
    let opts = DecodeOptions {
        limits: Limits {
            max_pixels: 1_000_000_000,
            ..Limits::default()
        },
        ..Default::default()
    };
    let e = decode_bytes(&png, "big.png", &opts).unwrap_err();
    assert!(!matches!(e, DecodeError::TooManyPixels { .. }), "{e}");
}

#[test]
fn decoded_bytes_are_limited_from_the_header_before_decoding() {
    // 10000 × 10000 is within max_pixels (100 000 000), but as 16-bit RGBA it decodes to
    // 800 000 000 bytes (it took 3.3 GB before the limit).
    let png = png_claiming_as(10_000, 10_000, 16, 6);
    assert_eq!(
        err(&png, "deep.png"),
        "deep.png: image is 10000x10000 rgba16, 800000000 bytes decoded, over the max_decoded_bytes limit of 536870912; raise max_decoded_bytes if the file is trusted"
    );
    // The same header as 8-bit grey (100 MB) passes the limit and the short data is found.
    let e = decode_bytes(
        &png_claiming_as(10_000, 10_000, 8, 0),
        "flat.png",
        &DecodeOptions::default(),
    )
    .unwrap_err();
    assert!(!matches!(e, DecodeError::TooManyBytes { .. }), "{e}");
    // A lower limit is honoured, and DICOM frames are checked too (4 × 4 × 2 bytes = 32).
    let opts = DecodeOptions {
        limits: Limits {
            max_decoded_bytes: 31,
            ..Limits::default()
        },
        ..Default::default()
    };
    let e = decode_bytes(&Dcm::ct(4, 4, vec![0; 16]).to_bytes(), "ct.dcm", &opts).unwrap_err();
    assert!(
        e.to_string()
            .contains("32 bytes decoded, over the max_decoded_bytes limit of 31"),
        "{e}"
    );
}

#[test]
fn dicom_over_the_pixel_limit() {
    let dcm = Dcm::ct(4, 4, vec![0; 16]).to_bytes();
    let opts = DecodeOptions {
        limits: Limits {
            max_pixels: 15,
            ..Limits::default()
        },
        ..Default::default()
    };
    let e = decode_bytes(&dcm, "ct.dcm", &opts).unwrap_err();
    assert_eq!(
        e.to_string(),
        "ct.dcm: image is 4x4 = 16 pixels, over the max_pixels limit of 15; raise max_pixels if the file is trusted"
    );
}

#[test]
fn truncated_dicom_is_an_error() {
    let dcm = Dcm::ct(4, 4, (0..16).collect()).to_bytes();
    for cut in [140, 200, dcm.len() - 10] {
        let msg = err(&dcm[..cut], "cut.dcm");
        eprintln!("{msg}");
        assert!(
            msg.starts_with("cut.dcm: corrupt or truncated dicom file: "),
            "{msg}"
        );
    }
}

#[test]
fn empty_and_oversized_files() {
    let dir = tempfile::tempdir().unwrap();
    let empty = dir.path().join("empty.png");
    std::fs::write(&empty, b"").unwrap();
    let msg = decode_file(&empty, &DecodeOptions::default())
        .unwrap_err()
        .to_string();
    assert_eq!(msg, format!("{}: file is empty", empty.display()));

    let big = dir.path().join("big.png");
    std::fs::write(&big, vec![0u8; 2000]).unwrap();
    let opts = DecodeOptions {
        limits: Limits {
            max_file_bytes: 1000,
            ..Limits::default()
        },
        ..Default::default()
    };
    let msg = decode_file(&big, &opts).unwrap_err().to_string();
    assert_eq!(
        msg,
        format!(
            "{}: file is 2000 bytes, over the max_file_bytes limit of 1000 bytes; raise max_file_bytes if the file is trusted",
            big.display()
        )
    );

    let missing = dir.path().join("nope.png");
    let msg = decode_file(&missing, &DecodeOptions::default())
        .unwrap_err()
        .to_string();
    assert!(
        msg.starts_with(&format!("{}: cannot read file: ", missing.display())),
        "{msg}"
    );
}

#[test]
fn jpeg_claiming_huge_dimensions_names_the_limit() {
    let mut jpg = encode_with_image(ImageFormat::Jpeg, &[0u8; 64], 8, 8, ExtendedColorType::L8);
    // SOF0: FF C0, length (2), precision (1), height (2), width (2).
    let sof = jpg.windows(2).position(|w| w == [0xFF, 0xC0]).unwrap();
    jpg[sof + 5..sof + 7].copy_from_slice(&60_000u16.to_be_bytes());
    jpg[sof + 7..sof + 9].copy_from_slice(&60_000u16.to_be_bytes());
    assert_eq!(
        err(&jpg, "huge.jpg"),
        "huge.jpg: image is 60000x60000 = 3600000000 pixels, over the max_pixels limit of 100000000; raise max_pixels if the file is trusted"
    );
}

#[test]
fn tiff_over_the_side_limit_names_the_limit() {
    let tif = encode_with_image(
        ImageFormat::Tiff,
        &[0u8; 300],
        30,
        10,
        ExtendedColorType::L8,
    );
    let opts = DecodeOptions {
        limits: Limits {
            max_side: 20,
            ..Limits::default()
        },
        ..Default::default()
    };
    assert_eq!(
        decode_bytes(&tif, "wide.tif", &opts)
            .unwrap_err()
            .to_string(),
        "wide.tif: image is 30x10, a side over the max_side limit of 20; raise max_side if the file is trusted"
    );
}

#[test]
fn truncated_jpeg_and_tiff() {
    let px: Vec<u8> = (0..64 * 64).map(|i| (i * 7 % 251) as u8).collect();
    let jpg = encode_with_image(ImageFormat::Jpeg, &px, 64, 64, ExtendedColorType::L8);
    assert_eq!(
        err(&jpg[..jpg.len() / 2], "cut.jpg"),
        "cut.jpg: corrupt or truncated jpeg file: no end-of-image marker (FF D9) after the last scan; the file is truncated"
    );
    // Trailing bytes after the end marker are tolerated.
    let mut padded = jpg.clone();
    padded.extend_from_slice(b"trailing");
    assert!(decode_bytes(&padded, "pad.jpg", &DecodeOptions::default()).is_ok());
    let tif = encode_with_image(ImageFormat::Tiff, &px, 64, 64, ExtendedColorType::L8);
    assert_eq!(
        err(&tif[..tif.len() / 2], "cut.tif"),
        "cut.tif: corrupt or truncated tiff file: failed to fill whole buffer"
    );
}
