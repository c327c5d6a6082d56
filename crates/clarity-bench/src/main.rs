//! `clarity-kernel-timer`: the Rust half of `bench/compare.sh`.
//!
//! - `clarity-kernel-timer images DIR` writes the benchmark inputs (structured synthetic images:
//!   smooth random field + discs/rectangles + 2 % noise, as in the peer table's method) as PNG, so
//!   the Python peers read exactly the same pixels.
//!   It also writes `strings.json`: two pairs of 300- and 3000-character texts for the
//!   Levenshtein row (ours: `clarity_analysis::justification_drift`; peer: rapidfuzz).
//! - `clarity-kernel-timer time DIR [--quick]` times every compared op on those images with the peer
//!   method (3 warm-up calls, then 5 measurements of N calls each, N chosen so one measurement lasts
//!   ≥ 0.3 s; median and min–max per image) and prints one JSON object per line.
//! - `clarity-kernel-timer serve DIR` answers one request per stdin line, so `bench/compare.py` can
//!   measure Clarity round-robin with the peers (measurement 1 of each library, then 2 of each, …):
//!   `calib OP INPUT SECS` (3 warm-up calls, then N so that N calls last ≥ SECS) → `{"n": N}`;
//!   `run OP INPUT N` → `{"ms": per-call ms}`; `save OP INPUT PATH` writes one output as PNG (the
//!   peers' outputs are checked against it). OP is a key of [`ops`] or `levenshtein`.
//!
//! Single-threaded by construction: kernels do not spawn threads.

use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{Context, Result, bail};
use clarity_image::{Channels, Image, Samples};
use clarity_perturb::{ParamValue, Params, registry, rng_from_seed};
use rand::{RngExt, SeedableRng};
use rand_chacha::ChaCha8Rng;

/// One compared operation: (key, row label, kernel, params).
type Op = (
    &'static str,
    &'static str,
    &'static str,
    Vec<(&'static str, ParamValue)>,
);

/// The compared operations. Parameters match the peer table.
fn ops() -> Vec<Op> {
    use ParamValue::{Num, Text};
    vec![
        (
            "blur",
            "gaussian blur σ=2",
            "gaussian_blur",
            vec![("sigma", Num(2.0))],
        ),
        (
            "noise",
            "gaussian noise σ=0.1·range",
            "gaussian_noise",
            vec![("sigma", Num(0.1))],
        ),
        (
            "brightness",
            "brightness ×1.2",
            "brightness",
            vec![("factor", Num(1.2))],
        ),
        (
            "contrast",
            "contrast ×0.8",
            "contrast",
            vec![("factor", Num(0.8))],
        ),
        ("gamma", "gamma 0.7", "gamma", vec![("gamma", Num(0.7))]),
        (
            "resize",
            "resize ½ then ×2 (bilinear)",
            "downscale",
            vec![("factor", Num(0.5)), ("filter", Text("bilinear".into()))],
        ),
        (
            "jpeg",
            "JPEG q=50 enc+dec",
            "jpeg",
            vec![("quality", Num(50.0))],
        ),
        (
            "rotate",
            "rotate 10° (bilinear)",
            "rotation",
            vec![("degrees", Num(10.0))],
        ),
        (
            "motion",
            "motion blur len 9",
            "motion_blur",
            vec![("length", Num(9.0))],
        ),
        (
            "snp",
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

/// Two texts of about `len` characters that differ by ~15 % edits (substitutions, insertions,
/// deletions), like a justification and its baseline.
fn text_pair(len: usize, seed: u64) -> (String, String) {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let words = [
        "opacity",
        "the",
        "left",
        "lower",
        "lobe",
        "consolidation",
        "no",
        "effusion",
        "is",
        "seen",
        "in",
        "right",
        "upper",
        "zone",
        "heart",
        "size",
        "normal",
        "with",
        "mild",
        "atelectasis",
        "and",
        "pneumothorax",
        "absent",
        "findings",
        "suggest",
        "infection",
    ];
    let mut a = String::new();
    while a.chars().count() < len {
        if !a.is_empty() {
            a.push(' ');
        }
        a.push_str(words[rng.random_range(0..words.len())]);
    }
    let a: String = a.chars().take(len).collect();
    let mut b = String::new();
    for ch in a.chars() {
        let r: f64 = rng.random();
        if r < 0.05 {
            b.push((b'a' + rng.random_range(0..26u8)) as char);
        } else if r < 0.10 {
            b.push(ch);
            b.push((b'a' + rng.random_range(0..26u8)) as char);
        } else if r >= 0.15 {
            b.push(ch);
        }
    }
    (a, b)
}

const TEXTS: [(&str, usize); 2] = [("lev300", 300), ("lev3000", 3000)];

fn time_op(mut f: impl FnMut(), min_secs: f64, reps: usize) -> (f64, f64, f64, usize) {
    let n = calibrate(&mut f, min_secs);
    let mut per: Vec<f64> = (0..reps).map(|_| measure(&mut f, n)).collect();
    per.sort_by(f64::total_cmp);
    (per[per.len() / 2], per[0], per[per.len() - 1], n)
}

/// 3 warm-up calls, then the N for which N calls last at least `min_secs`.
fn calibrate(f: &mut impl FnMut(), min_secs: f64) -> usize {
    for _ in 0..3 {
        f();
    }
    let t = Instant::now();
    f();
    let one = t.elapsed().as_secs_f64().max(1e-9);
    ((min_secs / one).ceil() as usize).max(1)
}

/// Milliseconds per call over `n` calls: wall-clock time, or with `CLARITY_TIMER_CPU=1` this
/// thread's CPU time (Linux `schedstat`; steadier for development on a loaded machine, never
/// used for the published table).
fn measure(f: &mut impl FnMut(), n: usize) -> f64 {
    let cpu = std::env::var_os("CLARITY_TIMER_CPU").is_some_and(|v| v == "1");
    let t = Instant::now();
    let c0 = if cpu { thread_cpu_ns() } else { 0 };
    for _ in 0..n {
        f();
    }
    if cpu {
        return (thread_cpu_ns() - c0) as f64 * 1e-6 / n as f64;
    }
    t.elapsed().as_secs_f64() * 1e3 / n as f64
}

/// This thread's time on a CPU in ns (`/proc/thread-self/schedstat`, first field).
fn thread_cpu_ns() -> u64 {
    std::fs::read_to_string("/proc/thread-self/schedstat")
        .ok()
        .and_then(|s| s.split_whitespace().next()?.parse().ok())
        .unwrap_or(0)
}

/// The loaded benchmark inputs and texts.
struct Bench {
    images: Vec<(&'static str, Image)>,
    texts: Vec<(&'static str, (String, String))>,
}

impl Bench {
    fn load(dir: &Path) -> Result<Bench> {
        let mut images = Vec::new();
        for (name, ..) in INPUTS {
            images.push((name, load_png(&dir.join(format!("{name}.png")))?));
        }
        let path = dir.join("strings.json");
        let raw = std::fs::read_to_string(&path)
            .with_context(|| format!("reading {}", path.display()))?;
        let map: std::collections::BTreeMap<String, (String, String)> =
            serde_json::from_str(&raw).with_context(|| format!("parsing {}", path.display()))?;
        let texts = TEXTS
            .iter()
            .map(|(name, _)| {
                let pair = map
                    .get(*name)
                    .cloned()
                    .context("strings.json misses a pair")?;
                Ok((*name, pair))
            })
            .collect::<Result<_>>()?;
        Ok(Bench { images, texts })
    }

    /// The call to time for `op` on `input`, with the kernel output (for `save`).
    fn call<'a>(&'a self, op: &str, input: &str) -> Result<Box<dyn FnMut() -> Option<Image> + 'a>> {
        if op == "levenshtein" {
            let (_, (a, b)) = self
                .texts
                .iter()
                .find(|(n, _)| *n == input)
                .with_context(|| format!("unknown text {input}"))?;
            return Ok(Box::new(move || {
                std::hint::black_box(clarity_analysis::justification_drift(a, b));
                None
            }));
        }
        let (_, img) = self
            .images
            .iter()
            .find(|(n, _)| *n == input)
            .with_context(|| format!("unknown input {input}"))?;
        let (.., kernel, params) = ops()
            .into_iter()
            .find(|(key, ..)| *key == op)
            .with_context(|| format!("unknown op {op}"))?;
        let k = registry()
            .get(kernel)
            .with_context(|| format!("kernel {kernel} missing"))?;
        let raw: Params = params
            .iter()
            .map(|(p, v)| (p.to_string(), v.clone()))
            .collect();
        let resolved = k.resolve(&raw)?;
        // Stochastic kernels re-seed every call (a fixed seed, as Clarity does per case).
        Ok(Box::new(move || {
            let mut rng = rng_from_seed([7; 32]);
            Some(k.apply(img, &resolved, &mut rng).expect("kernel"))
        }))
    }
}

/// The `serve` loop: one JSON answer per request line (see the crate docs).
fn serve(bench: &Bench) -> Result<()> {
    use std::io::{BufRead, Write};
    let stdin = std::io::stdin();
    let mut stdout = std::io::stdout().lock();
    for line in stdin.lock().lines() {
        let line = line?;
        let parts: Vec<&str> = line.split_whitespace().collect();
        let answer = match parts.as_slice() {
            ["calib", op, input, secs] => {
                let mut f = bench.call(op, input)?;
                let n = calibrate(&mut || drop(f()), secs.parse()?);
                serde_json::json!({ "n": n })
            }
            ["run", op, input, n] => {
                let mut f = bench.call(op, input)?;
                serde_json::json!({ "ms": measure(&mut || drop(f()), n.parse()?) })
            }
            ["save", op, input, path] => {
                let mut f = bench.call(op, input)?;
                if let Some(img) = f() {
                    save_png(&img, Path::new(path))?;
                }
                serde_json::json!({ "ok": true })
            }
            [] => continue,
            _ => bail!("bad request {line:?}"),
        };
        writeln!(stdout, "{answer}")?;
        stdout.flush()?;
    }
    Ok(())
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
            let texts: std::collections::BTreeMap<&str, (String, String)> = TEXTS
                .iter()
                .enumerate()
                .map(|(i, (name, len))| (*name, text_pair(*len, 100 + i as u64)))
                .collect();
            let path = dir.join("strings.json");
            std::fs::write(&path, serde_json::to_string(&texts)?)
                .with_context(|| format!("writing {}", path.display()))?;
            Ok(())
        }
        Some("time") => {
            let dir = PathBuf::from(args.get(1).context("usage: time DIR [--quick]")?);
            let quick = args.iter().any(|a| a == "--quick");
            let (min_secs, reps) = if quick { (0.01, 3) } else { (0.3, 5) };
            let bench = Bench::load(&dir)?;
            let rows = INPUTS
                .iter()
                .flat_map(|(input, ..)| ops().into_iter().map(move |(key, ..)| (key, *input)))
                .chain(TEXTS.iter().map(|(t, _)| ("levenshtein", *t)));
            let only = std::env::var("CLARITY_TIMER_ONLY").unwrap_or_default();
            for (op, input) in
                rows.filter(|(op, _)| only.is_empty() || only.split(',').any(|o| o == *op))
            {
                let mut f = bench.call(op, input)?;
                let (median, min, max, n) = time_op(|| drop(f()), min_secs, reps);
                println!(
                    "{}",
                    serde_json::json!({"op": op, "input": input, "lib": "Clarity", "median_ms": median, "min_ms": min, "max_ms": max, "n": n})
                );
            }
            Ok(())
        }
        Some("once") => {
            // Development aid for instruction counting (valgrind --tool=callgrind): calls
            // `OP` on `INPUT` `K` times, nothing else.
            let dir = PathBuf::from(args.get(1).context("usage: once DIR OP INPUT K")?);
            let (op, input) = (&args[2], &args[3]);
            let k: usize = args.get(4).map_or(Ok(1), |k| k.parse())?;
            let bench = Bench::load(&dir)?;
            let mut f = bench.call(op, input)?;
            for _ in 0..k {
                drop(f());
            }
            Ok(())
        }
        Some("serve") => {
            let dir = PathBuf::from(args.get(1).context("usage: serve DIR")?);
            serve(&Bench::load(&dir)?)
        }
        _ => bail!("usage: clarity-kernel-timer images DIR | time DIR [--quick] | serve DIR"),
    }
}
