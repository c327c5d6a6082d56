//! The JPEG round-trip variants weighed for the `jpeg` kernel (issue 17), quality 50 on the
//! 512² gray and RGB inputs of `kernels.rs`: the `image` crate's encoder or `jpeg-encoder`
//! (AVX2, 4:2:0 box-averaged chroma as libjpeg), decoded through `image` or `zune-jpeg` directly
//! (version 2 of the kernel was `jpeg-encoder` + `zune-jpeg`); `roundtrip/kernel` is the `jpeg`
//! kernel as registered (version 3: libjpeg-turbo's arithmetic with no entropy coding between).
//!
//! `cargo bench -p clarity-perturb --bench jpeg_variants -- --warm-up-time 1 --measurement-time 3`

use criterion::{Criterion, criterion_group, criterion_main};
use zune_core::bytestream::ZCursor;
use zune_core::colorspace::ColorSpace;
use zune_core::options::DecoderOptions;

fn image_like(w: u32, h: u32, nc: usize) -> Vec<u8> {
    let mut out = Vec::with_capacity((w * h) as usize * nc);
    let mut state = 0x9e37_79b9_7f4a_7c15u64;
    for y in 0..h {
        for x in 0..w {
            let (fx, fy) = (x as f64 / w as f64, y as f64 / h as f64);
            for c in 0..nc {
                let mut v = 0.2 + 0.5 * fx * fy + 0.1 * (c as f64);
                for (cx, cy, r) in [(0.3, 0.3, 0.1), (0.7, 0.6, 0.15), (0.5, 0.8, 0.05)] {
                    if (fx - cx) * (fx - cx) + (fy - cy) * (fy - cy) < r * r {
                        v = 0.5 * v + 0.45;
                    }
                }
                state ^= state << 13;
                state ^= state >> 7;
                state ^= state << 17;
                let n = ((state >> 40) as f64 / (1u64 << 24) as f64 - 0.5) * 0.04;
                out.push(((v + n).clamp(0.0, 1.0) * 255.0).round() as u8);
            }
        }
    }
    out
}

fn enc_image(d: &[u8], w: u32, h: u32, nc: usize) -> Vec<u8> {
    use image::ImageEncoder;
    let color = if nc == 1 {
        image::ExtendedColorType::L8
    } else {
        image::ExtendedColorType::Rgb8
    };
    let mut buf = Vec::new();
    image::codecs::jpeg::JpegEncoder::new_with_quality(&mut buf, 50)
        .write_image(d, w, h, color)
        .unwrap();
    buf
}

fn enc_je(d: &[u8], w: u32, h: u32, nc: usize) -> Vec<u8> {
    let mut buf = Vec::new();
    let mut e = jpeg_encoder::Encoder::new(&mut buf, 50);
    e.set_sampling_factor(jpeg_encoder::SamplingFactor::F_2_2);
    e.set_chroma_subsampling_method(jpeg_encoder::ChromaSubsamplingMethod::Average);
    let ct = if nc == 1 {
        jpeg_encoder::ColorType::Luma
    } else {
        jpeg_encoder::ColorType::Rgb
    };
    e.encode(d, w as u16, h as u16, ct).unwrap();
    buf
}

fn dec_image(b: &[u8], nc: usize) -> Vec<u8> {
    let d = image::load_from_memory_with_format(b, image::ImageFormat::Jpeg).unwrap();
    if nc == 1 {
        d.into_luma8().into_raw()
    } else {
        d.into_rgb8().into_raw()
    }
}

fn dec_zune(b: &[u8], nc: usize) -> Vec<u8> {
    let cs = if nc == 1 {
        ColorSpace::Luma
    } else {
        ColorSpace::RGB
    };
    let opts = DecoderOptions::default()
        .jpeg_set_out_colorspace(cs)
        .set_strict_mode(false);
    zune_jpeg::JpegDecoder::new_with_options(ZCursor::new(b), opts)
        .decode()
        .unwrap()
}

fn bench(c: &mut Criterion) {
    for (name, nc) in [("gray512_u8", 1usize), ("rgb512_u8", 3)] {
        let img = image_like(512, 512, nc);
        let mut g = c.benchmark_group(format!("jpeg_q50/{name}"));
        g.sample_size(20);
        let a = enc_image(&img, 512, 512, nc);
        let b = enc_je(&img, 512, 512, nc);
        g.bench_function("encode/image", |x| x.iter(|| enc_image(&img, 512, 512, nc)));
        g.bench_function("encode/jpeg-encoder", |x| {
            x.iter(|| enc_je(&img, 512, 512, nc))
        });
        g.bench_function("decode_image_stream/image", |x| {
            x.iter(|| dec_image(&a, nc))
        });
        g.bench_function("decode_image_stream/zune", |x| x.iter(|| dec_zune(&a, nc)));
        g.bench_function("decode_je_stream/zune", |x| x.iter(|| dec_zune(&b, nc)));
        g.bench_function("roundtrip/image+image", |x| {
            x.iter(|| dec_image(&enc_image(&img, 512, 512, nc), nc))
        });
        g.bench_function("roundtrip/jpeg-encoder+zune", |x| {
            x.iter(|| dec_zune(&enc_je(&img, 512, 512, nc), nc))
        });
        let kernel = clarity_perturb::registry()
            .iter()
            .find(|k| k.name() == "jpeg")
            .expect("jpeg kernel");
        let params = kernel
            .resolve(
                &[(
                    "quality".to_string(),
                    clarity_perturb::ParamValue::Num(50.0),
                )]
                .into_iter()
                .collect(),
            )
            .expect("params");
        let ch = if nc == 1 {
            clarity_image::Channels::Gray
        } else {
            clarity_image::Channels::Rgb
        };
        let image = clarity_image::Image::from_u8(512, 512, ch, img.clone()).expect("size");
        g.bench_function("roundtrip/kernel", |x| {
            x.iter(|| {
                let mut rng = clarity_perturb::rng_from_seed([0; 32]);
                kernel.apply(&image, &params, &mut rng).expect("jpeg")
            })
        });
        g.finish();
    }
}

criterion_group!(benches, bench);
criterion_main!(benches);
