use clarity_image::{Channels, DecodeOptions, Image, decode_bytes, encode_png, write_png};
use proptest::prelude::*;

fn roundtrip(img: &Image) -> Image {
    decode_bytes(&encode_png(img), "enc.png", &DecodeOptions::default())
        .unwrap()
        .image
}

#[test]
fn encodes_all_four_formats_losslessly() {
    let g8 = Image::from_u8(3, 2, Channels::Gray, vec![0, 1, 2, 253, 254, 255]).unwrap();
    let rgb8 = Image::from_u8(2, 1, Channels::Rgb, vec![1, 2, 3, 4, 5, 6]).unwrap();
    let g16 = Image::from_u16(2, 2, Channels::Gray, vec![0, 256, 1, 65535]).unwrap();
    let rgb16 = Image::from_u16(1, 2, Channels::Rgb, vec![1, 2, 3, 65533, 65534, 65535]).unwrap();
    for img in [g8, rgb8, g16, rgb16] {
        assert_eq!(roundtrip(&img), img);
    }
}

/// A 64x48 image with structure in both directions (so every filter type matters).
fn pattern16() -> Image {
    let v = (0..48u32)
        .flat_map(|y| {
            (0..64u32).map(move |x| ((x * x * 37 + y * 911 + (x ^ y) * 131) % 65536) as u16)
        })
        .collect();
    Image::from_u16(64, 48, Channels::Gray, v).unwrap()
}

#[test]
fn bytes_are_deterministic_and_pinned() {
    let img = pattern16();
    let a = encode_png(&img);
    assert_eq!(a, encode_png(&img.clone()));
    let (rgb, _) = img.to_rgb8();
    // Pinned so a dependency update or a settings change that alters the bytes (and so the
    // cache keys of adapters fed PNG files) is noticed.
    assert_eq!(
        [
            blake3::hash(&a).to_hex().to_string(),
            blake3::hash(&encode_png(&rgb)).to_hex().to_string()
        ],
        [
            "bee8a385ce6a05126fb46d45f8f400283efe2cef9220fca6ce5e0cd3a93bb696",
            "a29be28fbff81c80307c772705072019f9081bee3c9a0480c95344034d0a4c46"
        ],
        "encode_png output changed"
    );
}

#[test]
fn write_png_replaces_atomically() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("out.png");
    std::fs::write(&path, b"old").unwrap();
    let img = Image::from_u8(1, 1, Channels::Gray, vec![42]).unwrap();
    write_png(&img, &path).unwrap();
    assert_eq!(std::fs::read(&path).unwrap(), encode_png(&img));
    let names: Vec<_> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(names.len(), 1, "temporary file left behind: {names:?}");
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(48))]
    #[test]
    fn png_roundtrip_any_image(w in 1u32..9, h in 1u32..9, rgb in any::<bool>(), wide in any::<bool>(), seed in any::<u64>()) {
        let ch = if rgb { Channels::Rgb } else { Channels::Gray };
        let n = (w * h) as usize * ch.count();
        let mut x = seed | 1;
        let mut next = || { x ^= x << 13; x ^= x >> 7; x ^= x << 17; x };
        let img = if wide {
            Image::from_u16(w, h, ch, (0..n).map(|_| next() as u16).collect()).unwrap()
        } else {
            Image::from_u8(w, h, ch, (0..n).map(|_| next() as u8).collect()).unwrap()
        };
        let back = roundtrip(&img);
        prop_assert_eq!(back.content_hash(), img.content_hash());
        prop_assert_eq!(back, img);
    }
}
