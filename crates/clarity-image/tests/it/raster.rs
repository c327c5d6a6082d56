use clarity_image::{
    Channels, DecodeOptions, Image, Samples, SourceFormat, decode_bytes, decode_file,
};
use image::{ExtendedColorType, ImageFormat};

use crate::util::{encode_with_image, u16_ne};

fn opts() -> DecodeOptions {
    DecodeOptions::default()
}

#[test]
fn png_gray8_and_rgb8_roundtrip() {
    let gray = [0u8, 50, 100, 150, 200, 255];
    let png = encode_with_image(ImageFormat::Png, &gray, 3, 2, ExtendedColorType::L8);
    let d = decode_bytes(&png, "g.png", &opts()).unwrap();
    assert_eq!(
        d.image,
        Image::from_u8(3, 2, Channels::Gray, gray.to_vec()).unwrap()
    );
    assert_eq!(d.record.format, SourceFormat::Png);
    assert_eq!(d.record.source_color, "gray");
    assert_eq!((d.record.source_channels, d.record.source_bits), (1, 8));
    assert!(d.record.conversions.is_empty());
    assert!(d.record.dicom.is_none());

    let rgb: Vec<u8> = (0..18).map(|i| i * 13).collect();
    let png = encode_with_image(ImageFormat::Png, &rgb, 3, 2, ExtendedColorType::Rgb8);
    let d = decode_bytes(&png, "c.png", &opts()).unwrap();
    assert_eq!(d.image, Image::from_u8(3, 2, Channels::Rgb, rgb).unwrap());
    assert_eq!(d.record.output.to_string(), "rgb8");
}

#[test]
fn png_16bit_keeps_full_precision() {
    let gray = [0u16, 1, 257, 4095, 40000, 65535];
    let png = encode_with_image(
        ImageFormat::Png,
        &u16_ne(&gray),
        2,
        3,
        ExtendedColorType::L16,
    );
    let d = decode_bytes(&png, "g16.png", &opts()).unwrap();
    assert_eq!(d.image.samples(), &Samples::U16(gray.to_vec()));
    assert_eq!((d.image.width(), d.image.height()), (2, 3));
    assert_eq!(d.record.source_bits, 16);
    assert_eq!(d.record.output.to_string(), "gray16");

    let rgb: Vec<u16> = (0..6).map(|i| i * 10_000 + 3).collect();
    let png = encode_with_image(
        ImageFormat::Png,
        &u16_ne(&rgb),
        2,
        1,
        ExtendedColorType::Rgb16,
    );
    let d = decode_bytes(&png, "c16.png", &opts()).unwrap();
    assert_eq!(d.image.samples(), &Samples::U16(rgb));
    assert_eq!(d.image.channels(), Channels::Rgb);
}

#[test]
fn alpha_is_dropped_and_recorded() {
    let rgba = [10u8, 20, 30, 0, 40, 50, 60, 255];
    let png = encode_with_image(ImageFormat::Png, &rgba, 2, 1, ExtendedColorType::Rgba8);
    let d = decode_bytes(&png, "a.png", &opts()).unwrap();
    assert_eq!(
        d.image.samples(),
        &Samples::U8(vec![10, 20, 30, 40, 50, 60])
    );
    assert_eq!(d.record.source_color, "rgba");
    assert_eq!(d.record.source_channels, 4);
    assert_eq!(
        d.record.conversions,
        ["alpha channel dropped, colour samples kept as stored (not composited)"]
    );

    let la16 = [1000u16, 0, 2000, 65535];
    let png = encode_with_image(
        ImageFormat::Png,
        &u16_ne(&la16),
        2,
        1,
        ExtendedColorType::La16,
    );
    let d = decode_bytes(&png, "la.png", &opts()).unwrap();
    assert_eq!(d.image.samples(), &Samples::U16(vec![1000, 2000]));
    assert_eq!(d.record.source_color, "gray_alpha");
}

#[test]
fn palette_and_low_bit_png_are_expanded_and_recorded() {
    // Palette: 2x1, indices 1 and 0.
    let mut out = Vec::new();
    {
        let mut enc = png::Encoder::new(&mut out, 2, 1);
        enc.set_color(png::ColorType::Indexed);
        enc.set_depth(png::BitDepth::Eight);
        enc.set_palette(vec![1u8, 2, 3, 200, 100, 50]);
        let mut w = enc.write_header().unwrap();
        w.write_image_data(&[1, 0]).unwrap();
    }
    let d = decode_bytes(&out, "p.png", &opts()).unwrap();
    assert_eq!(d.image.samples(), &Samples::U8(vec![200, 100, 50, 1, 2, 3]));
    assert_eq!(d.record.source_color, "palette");
    assert_eq!(
        d.record.conversions,
        ["palette (8-bit indices) expanded to rgb8"]
    );

    // 2-bit grayscale: values 0..3 scale by 85.
    let mut out = Vec::new();
    {
        let mut enc = png::Encoder::new(&mut out, 4, 1);
        enc.set_color(png::ColorType::Grayscale);
        enc.set_depth(png::BitDepth::Two);
        let mut w = enc.write_header().unwrap();
        w.write_image_data(&[0b00_01_10_11]).unwrap();
    }
    let d = decode_bytes(&out, "g2.png", &opts()).unwrap();
    assert_eq!(d.image.samples(), &Samples::U8(vec![0, 85, 170, 255]));
    assert_eq!(d.record.source_bits, 2);
    assert_eq!(
        d.record.conversions,
        ["gray2 expanded to 8-bit: v8 = v * 85"]
    );
}

#[test]
fn tiff_8_and_16_bit_gray_and_rgb() {
    let g8 = [3u8, 1, 4, 1, 5, 9];
    let t = encode_with_image(ImageFormat::Tiff, &g8, 3, 2, ExtendedColorType::L8);
    let d = decode_bytes(&t, "g8.tif", &opts()).unwrap();
    assert_eq!(
        d.image,
        Image::from_u8(3, 2, Channels::Gray, g8.to_vec()).unwrap()
    );
    assert_eq!(d.record.format, SourceFormat::Tiff);

    let g16 = [0u16, 12345, 65535, 7];
    let t = encode_with_image(
        ImageFormat::Tiff,
        &u16_ne(&g16),
        2,
        2,
        ExtendedColorType::L16,
    );
    let d = decode_bytes(&t, "g16.tif", &opts()).unwrap();
    assert_eq!(d.image.samples(), &Samples::U16(g16.to_vec()));
    assert_eq!(
        (d.record.source_color.as_str(), d.record.source_bits),
        ("gray", 16)
    );

    let rgb16: Vec<u16> = (0..12).map(|i| i * 5000).collect();
    let t = encode_with_image(
        ImageFormat::Tiff,
        &u16_ne(&rgb16),
        2,
        2,
        ExtendedColorType::Rgb16,
    );
    let d = decode_bytes(&t, "c16.tif", &opts()).unwrap();
    assert_eq!(d.image.samples(), &Samples::U16(rgb16));
    assert_eq!(d.record.output.to_string(), "rgb16");
}

#[test]
fn jpeg_gray_and_rgb_decode() {
    // Flat images survive JPEG exactly enough to check within a small tolerance.
    let g = vec![128u8; 16 * 16];
    let j = encode_with_image(ImageFormat::Jpeg, &g, 16, 16, ExtendedColorType::L8);
    let d = decode_bytes(&j, "g.jpg", &opts()).unwrap();
    assert_eq!(d.record.format, SourceFormat::Jpeg);
    assert_eq!(d.image.format().to_string(), "gray8");
    let Samples::U8(v) = d.image.samples() else {
        panic!()
    };
    assert!(v.iter().all(|&s| s.abs_diff(128) <= 1), "{v:?}");

    let rgb: Vec<u8> = [200u8, 30, 60].repeat(8 * 8);
    let j = encode_with_image(ImageFormat::Jpeg, &rgb, 8, 8, ExtendedColorType::Rgb8);
    let d = decode_bytes(&j, "c.jpg", &opts()).unwrap();
    assert_eq!(d.image.format().to_string(), "rgb8");
    assert_eq!(d.record.source_color, "rgb");
    let Samples::U8(v) = d.image.samples() else {
        panic!()
    };
    assert!(v[0].abs_diff(200) <= 3 && v[1].abs_diff(30) <= 3 && v[2].abs_diff(60) <= 3);
}

#[test]
fn same_pixels_as_png_and_tiff_hash_equal() {
    let g16: Vec<u16> = (0..20).map(|i| i * 3000 + 11).collect();
    let png = encode_with_image(
        ImageFormat::Png,
        &u16_ne(&g16),
        5,
        4,
        ExtendedColorType::L16,
    );
    let tif = encode_with_image(
        ImageFormat::Tiff,
        &u16_ne(&g16),
        5,
        4,
        ExtendedColorType::L16,
    );
    assert_ne!(png, tif);
    let a = decode_bytes(&png, "a.png", &opts()).unwrap().image;
    let b = decode_bytes(&tif, "a.tif", &opts()).unwrap().image;
    assert_eq!(a.content_hash(), b.content_hash());

    let rgb8: Vec<u8> = (0..60).map(|i| (i * 7) as u8).collect();
    let png = encode_with_image(ImageFormat::Png, &rgb8, 5, 4, ExtendedColorType::Rgb8);
    let tif = encode_with_image(ImageFormat::Tiff, &rgb8, 5, 4, ExtendedColorType::Rgb8);
    let a = decode_bytes(&png, "b.png", &opts()).unwrap().image;
    let b = decode_bytes(&tif, "b.tif", &opts()).unwrap().image;
    assert_eq!(a.content_hash(), b.content_hash());
    assert_eq!(a, Image::from_u8(5, 4, Channels::Rgb, rgb8).unwrap());
}

#[test]
fn decode_file_reads_from_disk_and_record_serialises() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("x.png");
    let png = encode_with_image(ImageFormat::Png, &[1, 2, 3, 4], 2, 2, ExtendedColorType::L8);
    std::fs::write(&path, &png).unwrap();
    let d = decode_file(&path, &opts()).unwrap();
    assert_eq!(d.image.samples(), &Samples::U8(vec![1, 2, 3, 4]));
    let json = serde_json::to_string(&d.record).unwrap();
    assert_eq!(
        json,
        r#"{"format":"png","width":2,"height":2,"source_color":"gray","source_channels":1,"source_bits":8,"output":{"channels":"gray","depth":"8"},"conversions":[],"dicom":null}"#
    );
    let back: clarity_image::DecodeRecord = serde_json::from_str(&json).unwrap();
    assert_eq!(back, d.record);
}

#[test]
fn reference_chest_xray_decodes_when_present() {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../../shared/reference/chest_xray_pa_cc0.png");
    if !path.exists() {
        println!("SKIPPED: reference image {} not present", path.display());
        return;
    }
    let d = decode_file(&path, &opts()).unwrap();
    assert_eq!(d.record.format, SourceFormat::Png);
    assert!(d.image.width() >= 64 && d.image.height() >= 64);
    // Decoding twice gives the same pixels; PNG re-encoding is lossless.
    let again = decode_file(&path, &opts()).unwrap();
    assert_eq!(d.image.content_hash(), again.image.content_hash());
    let png = clarity_image::encode_png(&d.image);
    let back = decode_bytes(&png, "re.png", &opts()).unwrap();
    assert_eq!(back.image, d.image);
}
