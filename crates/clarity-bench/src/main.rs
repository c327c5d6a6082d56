//! `clarity-kernel-timer`: the Rust half of `bench/compare.sh`.
//!
//! - `clarity-kernel-timer images DIR` writes the benchmark inputs (structured synthetic images:
//!   smooth random field + discs/rectangles + 2 % noise, as in the peer table's method) as PNG, so
//!   the Python peers read exactly the same pixels.
//! - `clarity-kernel-timer time DIR [--quick]` times every compared op on those images with the peer
//!   method (3 warm-up calls, then 5 measurements of N calls each, N chosen so one measurement lasts
//!   ≥ 0.3 s; median and min–max per image) and prints one JSON object per line.
//!
//! Single-threaded by construction: kernels do not spawn threads.

use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{Context, Result, bail};
use clarity_image::{Channels, Image, Samples};
use clarity_perturb::{ParamValue, Params, registry, rng_from_seed};
use rand::{RngExt, SeedableRng};
use rand_chacha::ChaCha8Rng;

/// One compared operation: (row label, kernel, params).
type Op = (&'static str, &'static str, Vec<(&'static str, ParamValue)>);

/// The compared operations. Parameters match the peer table.
fn ops() -> Vec<Op> {
    use ParamValue::{Num, Text};
    vec![
        (
            "gaussian blur σ=2",
            "gaussian_blur",
            vec![("sigma", Num(2.0))],
        ),
        (
            "gaussian noise σ=0.1·range",
            "gaussian_noise",
            vec![("sigma", Num(0.1))],
        ),
        ("brightness ×1.2", "brightness", vec![("factor", Num(1.2))]),
        ("contrast ×0.8", "contrast", vec![("factor", Num(0.8))]),
        ("gamma 0.7", "gamma", vec![("gamma", Num(0.7))]),
        (
            "resize ½ then ×2 (bilinear)",
            "downscale",
            vec![("factor", Num(0.5)), ("filter", Text("bilinear".into()))],
        ),
        ("JPEG q=50 enc+dec", "jpeg", vec![("quality", Num(50.0))]),
        (
            "rotate 10° (bilinear)",
            "rotation",
            vec![("degrees", Num(10.0))],
        ),
        (
            "motion blur len 9",
            "motion_blur",
            vec![("length", Num(9.0))],
        ),
        (
            "salt & pepper 0.05",
            "salt_pepper",
            vec![("amount", Num(0.05))],
        ),
    ]
}

/// The benchmark inputs: (name, width, height, channels, 16-bit).
const INPUTS: [(&str, u32, u32, Channels, bool); 4] = [
    ("gray512_u8", 512, 512, Channels::Gray, false),
    ("rgb512_u8", 512, 512, Channels::Rgb, false),
    ("gray1024_u16", 1024, 1024, Channels::Gray, true),
    ("rgb224_u8", 224, 224, Channels::Rgb, false),
];

/// Smooth random field (bilinear upsampling of an 8×8 grid) + a few discs and rectangles + 2 %
/// Gaussian-ish noise, scaled to the dtype's range.
fn structured_image(w: u32, h: u32, channels: Channels, wide: bool, seed: u64) -> Image {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let nc = channels.count();
    let grid: Vec<f64> = (0..81 * nc).map(|_| rng.random::<f64>()).collect();
    let shapes: Vec<(f64, f64, f64, f64, bool)> = (0..12)
        .map(|_| {
            (
                rng.random::<f64>(),
                rng.random::<f64>(),
                0.03 + 0.12 * rng.random::<f64>(),
                rng.random::<f64>(),
                rng.random::<bool>(),
            )
        })
        .collect();
    let max = if wide { 65535.0 } else { 255.0 };
    let mut out = Vec::with_capacity((w * h) as usize * nc);
    for y in 0..h {
        for x in 0..w {
            let fx = x as f64 / w as f64;
            let fy = y as f64 / h as f64;
            let (gx, gy) = (fx * 8.0, fy * 8.0);
            let (ix, iy) = (gx.floor() as usize, gy.floor() as usize);
            let (tx, ty) = (gx - ix as f64, gy - iy as f64);
            for c in 0..nc {
                let g = |i: usize, j: usize| grid[(j * 9 + i) * nc + c];
                let mut v = g(ix, iy) * (1.0 - tx) * (1.0 - ty)
                    + g(ix + 1, iy) * tx * (1.0 - ty)
                    + g(ix, iy + 1) * (1.0 - tx) * ty
                    + g(ix + 1, iy + 1) * tx * ty;
                for &(cx, cy, r, val, disc) in &shapes {
                    let inside = if disc {
                        (fx - cx).powi(2) + (fy - cy).powi(2) < r * r
                    } else {
                        (fx - cx).abs() < r && (fy - cy).abs() < r * 0.6
                    };
                    if inside {
                        v = 0.5 * v + 0.5 * val;
                    }
                }
                // Sum of uniforms ≈ normal, σ ≈ 2 % of range.
                let n: f64 = (0..4).map(|_| rng.random::<f64>() - 0.5).sum::<f64>() * 0.0346;
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

fn save_png(img: &Image, path: &Path) -> Result<()> {
    let (w, h) = (img.width(), img.height());
    let dynimg = match (img.channels(), img.samples()) {
        (Channels::Gray, Samples::U8(v)) => image::DynamicImage::ImageLuma8(
            image::GrayImage::from_raw(w, h, v.clone()).expect("size"),
        ),
        (Channels::Rgb, Samples::U8(v)) => image::DynamicImage::ImageRgb8(
            image::RgbImage::from_raw(w, h, v.clone()).expect("size"),
        ),
        (Channels::Gray, Samples::U16(v)) => image::DynamicImage::ImageLuma16(
            image::ImageBuffer::from_raw(w, h, v.clone()).expect("size"),
        ),
        (Channels::Rgb, Samples::U16(v)) => image::DynamicImage::ImageRgb16(
            image::ImageBuffer::from_raw(w, h, v.clone()).expect("size"),
        ),
    };
    dynimg
        .save(path)
        .with_context(|| format!("writing {}", path.display()))
}

fn load_png(path: &Path) -> Result<Image> {
    let d = image::open(path).with_context(|| format!("reading {}", path.display()))?;
    let (w, h) = (d.width(), d.height());
    Ok(match d {
        image::DynamicImage::ImageLuma8(b) => Image::from_u8(w, h, Channels::Gray, b.into_raw())?,
        image::DynamicImage::ImageRgb8(b) => Image::from_u8(w, h, Channels::Rgb, b.into_raw())?,
        image::DynamicImage::ImageLuma16(b) => Image::from_u16(w, h, Channels::Gray, b.into_raw())?,
        image::DynamicImage::ImageRgb16(b) => Image::from_u16(w, h, Channels::Rgb, b.into_raw())?,
        other => bail!(
            "{}: unexpected pixel format {:?}",
            path.display(),
            other.color()
        ),
    })
}

fn time_op(mut f: impl FnMut(), min_secs: f64, reps: usize) -> (f64, f64, f64, usize) {
    for _ in 0..3 {
        f();
    }
    // Choose N so one measurement lasts at least `min_secs`.
    let t = Instant::now();
    f();
    let one = t.elapsed().as_secs_f64().max(1e-9);
    let n = ((min_secs / one).ceil() as usize).max(1);
    let mut per: Vec<f64> = (0..reps)
        .map(|_| {
            let t = Instant::now();
            for _ in 0..n {
                f();
            }
            t.elapsed().as_secs_f64() * 1e3 / n as f64
        })
        .collect();
    per.sort_by(f64::total_cmp);
    (per[per.len() / 2], per[0], per[per.len() - 1], n)
}

fn main() -> Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args.first().map(String::as_str) {
        Some("images") => {
            let dir = PathBuf::from(args.get(1).context("usage: images DIR")?);
            std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
            for (i, (name, w, h, ch, wide)) in INPUTS.iter().enumerate() {
                let img = structured_image(*w, *h, *ch, *wide, i as u64);
                save_png(&img, &dir.join(format!("{name}.png")))?;
            }
            Ok(())
        }
        Some("time") => {
            let dir = PathBuf::from(args.get(1).context("usage: time DIR [--quick]")?);
            let quick = args.iter().any(|a| a == "--quick");
            let (min_secs, reps) = if quick { (0.01, 3) } else { (0.3, 5) };
            let reg = registry();
            for (name, ..) in INPUTS {
                let img = load_png(&dir.join(format!("{name}.png")))?;
                for (label, kernel, params) in ops() {
                    let Some(k) = reg.get(kernel) else {
                        println!(
                            "{}",
                            serde_json::json!({"op": label, "input": name, "error": format!("kernel {kernel} missing")})
                        );
                        continue;
                    };
                    let raw: Params = params
                        .iter()
                        .map(|(p, v)| (p.to_string(), v.clone()))
                        .collect();
                    let resolved = match k.resolve(&raw) {
                        Ok(r) => r,
                        Err(e) => {
                            println!(
                                "{}",
                                serde_json::json!({"op": label, "input": name, "error": e.to_string()})
                            );
                            continue;
                        }
                    };
                    // Stochastic kernels re-seed every call (a fixed seed, as Clarity does per case).
                    let (median, min, max, n) = time_op(
                        || {
                            let mut rng = rng_from_seed([7; 32]);
                            let out = k.apply(&img, &resolved, &mut rng).expect("kernel");
                            std::hint::black_box(out);
                        },
                        min_secs,
                        reps,
                    );
                    println!(
                        "{}",
                        serde_json::json!({"op": label, "input": name, "lib": "Clarity", "median_ms": median, "min_ms": min, "max_ms": max, "n": n})
                    );
                }
            }
            Ok(())
        }
        _ => bail!("usage: clarity-kernel-timer images DIR | time DIR [--quick]"),
    }
}
