//! Every registered kernel on the four benchmark inputs of issue 8: 224² RGB u8, 512² gray u8,
//! 512² RGB u8 and 1024² gray u16. The ten ops compared with the Python peers
//! (`bench/compare.sh`) use the matched parameters; every other kernel its middle severity preset
//! (level 3). Stochastic kernels re-seed their RNG on every call, as a sweep does per case.
//!
//! `cargo bench -p clarity-perturb` (about two minutes); filter with e.g.
//! `cargo bench -p clarity-perturb -- gaussian_blur/`.

use std::time::Duration;

use clarity_image::{Channels, Image};
use clarity_perturb::{ParamValue, Params, registry, rng_from_seed};
use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};

/// The matched parameters of the peer comparison, by kernel name.
fn matched(kernel: &str) -> Option<Params> {
    use ParamValue::{Num, Text};
    let pairs: Vec<(&str, ParamValue)> = match kernel {
        "gaussian_blur" => vec![("sigma", Num(2.0))],
        "gaussian_noise" => vec![("sigma", Num(0.1))],
        "brightness" => vec![("factor", Num(1.2))],
        "contrast" => vec![("factor", Num(0.8))],
        "gamma" => vec![("gamma", Num(0.7))],
        "downscale" => vec![("factor", Num(0.5)), ("filter", Text("bilinear".into()))],
        "jpeg" => vec![("quality", Num(50.0))],
        "rotation" => vec![("degrees", Num(10.0))],
        "motion_blur" => vec![("length", Num(9.0)), ("angle", Num(0.0))],
        "salt_pepper" => vec![("amount", Num(0.05))],
        _ => return None,
    };
    Some(pairs.into_iter().map(|(k, v)| (k.to_string(), v)).collect())
}

/// A smooth gradient with a few discs and ±2 % hash noise, so codecs see realistic content.
fn test_image(w: u32, h: u32, channels: Channels, wide: bool) -> Image {
    let nc = channels.count();
    let max = if wide { 65535.0 } else { 255.0 };
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
                out.push(((v + n).clamp(0.0, 1.0) * max).round());
            }
        }
    }
    if wide {
        Image::from_u16(w, h, channels, out.iter().map(|&v| v as u16).collect()).expect("size")
    } else {
        Image::from_u8(w, h, channels, out.iter().map(|&v| v as u8).collect()).expect("size")
    }
}

fn bench(c: &mut Criterion) {
    let inputs = [
        ("rgb224_u8", test_image(224, 224, Channels::Rgb, false)),
        ("gray512_u8", test_image(512, 512, Channels::Gray, false)),
        ("rgb512_u8", test_image(512, 512, Channels::Rgb, false)),
        ("gray1024_u16", test_image(1024, 1024, Channels::Gray, true)),
    ];
    for kernel in registry().iter() {
        let raw = matched(kernel.name()).unwrap_or_else(|| kernel.presets()[2].clone());
        let params = kernel.resolve(&raw).expect("bench parameters are valid");
        let mut g = c.benchmark_group(kernel.name());
        g.warm_up_time(Duration::from_millis(200))
            .measurement_time(Duration::from_millis(600))
            .sample_size(20);
        for (name, img) in &inputs {
            g.throughput(Throughput::Elements(img.pixel_count() as u64));
            g.bench_with_input(BenchmarkId::from_parameter(name), img, |b, img| {
                b.iter(|| {
                    let mut rng = rng_from_seed([7; 32]);
                    kernel.apply(img, &params, &mut rng).expect("kernel")
                })
            });
        }
        g.finish();
    }
}

criterion_group!(benches, bench);
criterion_main!(benches);
