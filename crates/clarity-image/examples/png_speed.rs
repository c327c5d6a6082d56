//! Times `encode_png` against other fixed PNG settings on one image, so the choice of
//! settings in `encode.rs` can be re-checked: `cargo run --release -p clarity-image --example
//! png_speed [IMAGE]` (default: the shared reference chest radiograph). CPU time of one thread.

use std::io::Write;
use std::time::Instant;

use clarity_image::{DecodeOptions, Samples, decode_file, encode_png};
use image::codecs::png::{CompressionType, FilterType, PngEncoder};
use image::{ExtendedColorType, ImageEncoder};

fn main() {
    let path = std::env::args().nth(1).unwrap_or_else(|| {
        concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../../../shared/reference/chest_xray_pa_cc0.png"
        )
        .into()
    });
    let img = match decode_file(std::path::Path::new(&path), &DecodeOptions::default()) {
        Ok(d) => d.image,
        Err(e) => {
            eprintln!("{e}");
            std::process::exit(1);
        }
    };
    // Also a 16-bit grey version (g * 257), the shape DICOM input takes.
    let (g8, _) = img.to_gray8();
    let Samples::U8(g) = g8.samples() else {
        unreachable!()
    };
    let g16 = clarity_image::Image::from_u16(
        img.width(),
        img.height(),
        clarity_image::Channels::Gray,
        g.iter().map(|&v| v as u16 * 257).collect(),
    )
    .expect("same dimensions");
    for img in [img, g16] {
        run(&img);
    }
}

fn run(img: &clarity_image::Image) {
    let reps = 5;
    let t = Instant::now();
    let mut size = 0;
    for _ in 0..reps {
        size = encode_png(img).len();
    }
    let ms = t.elapsed().as_secs_f64() * 1000.0 / reps as f64;
    let mut out = std::io::stdout().lock();
    writeln!(out, "{} {}x{}", img.format(), img.width(), img.height()).unwrap();
    writeln!(out, "encode_png           {ms:8.1} ms {size:>10} bytes").unwrap();

    let (bytes, color): (Vec<u8>, _) = match img.samples() {
        Samples::U8(v) => (
            v.clone(),
            if img.channels().count() == 1 {
                ExtendedColorType::L8
            } else {
                ExtendedColorType::Rgb8
            },
        ),
        Samples::U16(v) => (
            v.iter().flat_map(|s| s.to_ne_bytes()).collect(),
            if img.channels().count() == 1 {
                ExtendedColorType::L16
            } else {
                ExtendedColorType::Rgb16
            },
        ),
    };
    for (label, c, f) in [
        ("fast/none", CompressionType::Fast, FilterType::NoFilter),
        ("fast/sub", CompressionType::Fast, FilterType::Sub),
        ("fast/up", CompressionType::Fast, FilterType::Up),
        ("fast/paeth", CompressionType::Fast, FilterType::Paeth),
        ("fast/adaptive", CompressionType::Fast, FilterType::Adaptive),
        (
            "default/adaptive",
            CompressionType::Default,
            FilterType::Adaptive,
        ),
    ] {
        let t = Instant::now();
        let mut size = 0;
        for _ in 0..reps {
            let mut buf = Vec::new();
            PngEncoder::new_with_quality(&mut buf, c, f)
                .write_image(&bytes, img.width(), img.height(), color)
                .unwrap();
            size = buf.len();
        }
        let ms = t.elapsed().as_secs_f64() * 1000.0 / reps as f64;
        writeln!(out, "{label:<20} {ms:8.1} ms {size:>10} bytes").unwrap();
    }
}
