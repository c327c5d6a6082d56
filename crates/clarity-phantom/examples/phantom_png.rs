//! Writes phantoms as PNG files: `cargo run -p clarity-phantom --example phantom_png -- OUT_DIR [SIZE]`.
//! Used to look at the generator's output and to make the README pictures: three named cases
//! per seed, and `phantom_montage.png`, the first 16 cases of the builtin cohort (base seed 0,
//! 128² each, classes round-robin) in a 4×4 grid.

use clarity_image::{BitDepth, Samples};
use clarity_phantom::{LesionKind, LesionSpec, PhantomSpec, Zone, generate};

fn main() {
    let mut args = std::env::args().skip(1);
    let out = std::path::PathBuf::from(args.next().expect("usage: phantom_png OUT_DIR [SIZE]"));
    let size: u32 = args.next().map_or(256, |s| s.parse().expect("size"));
    std::fs::create_dir_all(&out).expect("create output dir");
    let cases = [
        ("normal", None),
        (
            "nodule",
            Some(LesionSpec {
                kind: LesionKind::Nodule,
                zone: Zone::RightUpper,
                size: 0.08,
                contrast: 0.16,
            }),
        ),
        (
            "opacity",
            Some(LesionSpec {
                kind: LesionKind::Opacity,
                zone: Zone::LeftMiddle,
                size: 0.2,
                contrast: 0.16,
            }),
        ),
    ];
    // Rendering time of a 1024² phantom, best of 5 (informative only; run in release).
    let big = PhantomSpec {
        size: 1024,
        depth: BitDepth::Sixteen,
        seed: 0,
        lesion: cases[1].1,
    };
    let best = (0..5)
        .map(|_| {
            let started = std::time::Instant::now();
            generate(&big).expect("generate 1024");
            started.elapsed().as_secs_f64() * 1e3
        })
        .fold(f64::INFINITY, f64::min);
    eprintln!("1024x1024 16-bit phantom in {best:.1} ms (best of 5)");
    // CPU time (all threads) per phantom, from /proc (Linux): robust on a busy machine.
    if let Some(before) = cpu_ticks() {
        for _ in 0..10 {
            generate(&big).expect("generate 1024");
        }
        if let Some(after) = cpu_ticks() {
            eprintln!(
                "cpu time per 1024x1024 phantom: {:.1} ms",
                (after - before) as f64 * 10.0 / 10.0
            );
        }
    }
    montage(&out);
    for seed in 0..2u64 {
        for (name, lesion) in cases {
            let spec = PhantomSpec {
                size,
                depth: BitDepth::Eight,
                seed,
                lesion,
            };
            let p = generate(&spec).expect("generate");
            let Samples::U8(data) = p.image.samples() else {
                unreachable!()
            };
            let img = image::GrayImage::from_raw(size, size, data.clone()).expect("buffer");
            let path = out.join(format!("phantom_{name}_{seed}.png"));
            img.save(&path).expect("save png");
            println!("{} {:?}", path.display(), p.truth);
        }
    }
}

/// The first 16 builtin-cohort cases (base seed 0) at 128², 4×4 with 4-pixel black gutters.
fn montage(out: &std::path::Path) {
    let (tile, gap, cols) = (128u32, 4u32, 4u32);
    let side = cols * tile + (cols - 1) * gap;
    let mut img = image::GrayImage::new(side, side);
    let cases = clarity_phantom::cohort(16, tile, BitDepth::Eight, 0).expect("cohort");
    for (i, p) in cases.iter().enumerate() {
        let Samples::U8(data) = p.image.samples() else {
            unreachable!()
        };
        let (ox, oy) = (
            (i as u32 % cols) * (tile + gap),
            (i as u32 / cols) * (tile + gap),
        );
        for y in 0..tile {
            for x in 0..tile {
                let v = data[(y * tile + x) as usize];
                img.put_pixel(ox + x, oy + y, image::Luma([v]));
            }
        }
        println!("montage {i}: {} {:?}", p.id, p.truth);
    }
    let path = out.join("phantom_montage.png");
    img.save(&path).expect("save montage");
    println!("{}", path.display());
}

/// utime + stime of this process in clock ticks (1/100 s on Linux).
fn cpu_ticks() -> Option<u64> {
    let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
    let rest = &stat[stat.rfind(')')? + 2..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    Some(fields.get(11)?.parse::<u64>().ok()? + fields.get(12)?.parse::<u64>().ok()?)
}
