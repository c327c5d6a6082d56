//! Accuracy of the builtin model on held-out phantoms under Gaussian blur and Gaussian noise.
//!
//! `cargo run --release -p clarity-model --example robustness -- [N] [SIZE]` prints a Markdown
//! table (the one in docs/models.md). The two perturbations are implemented here, simply, so
//! the measurement does not depend on the kernels crate: blur σ is in pixels of the SIZE×SIZE
//! image (separable, edge-clamped, radius ⌈3σ⌉); noise σ is a fraction of the 8-bit range,
//! drawn with Box–Muller from a ChaCha8 generator seeded per case.

use clarity_image::{BitDepth, Channels, Image, Samples};
use clarity_model::{BuiltinModel, HELDOUT_SEED, PredictOptions};
use rand::{Rng, SeedableRng};

fn gray(img: &Image) -> Vec<f32> {
    match img.samples() {
        Samples::U8(v) => v.iter().map(|&s| f32::from(s)).collect(),
        Samples::U16(_) => unreachable!("the cohort is 8-bit"),
    }
}

fn to_image(w: u32, px: &[f32]) -> Image {
    let data = px
        .iter()
        .map(|v| v.round().clamp(0.0, 255.0) as u8)
        .collect();
    Image::from_u8(w, w, Channels::Gray, data).expect("square image")
}

fn blur(img: &Image, sigma: f32) -> Image {
    if sigma == 0.0 {
        return img.clone();
    }
    let n = img.width() as usize;
    let r = (3.0 * sigma).ceil() as i64;
    let k: Vec<f32> = (-r..=r)
        .map(|i| (-(i * i) as f32 / (2.0 * sigma * sigma)).exp())
        .collect();
    let total: f32 = k.iter().sum();
    let k: Vec<f32> = k.iter().map(|v| v / total).collect();
    let src = gray(img);
    let mut tmp = vec![0.0; n * n];
    let clamp = |i: i64| i.clamp(0, n as i64 - 1) as usize;
    for y in 0..n {
        for x in 0..n {
            tmp[y * n + x] = (-r..=r)
                .map(|d| k[(d + r) as usize] * src[y * n + clamp(x as i64 + d)])
                .sum();
        }
    }
    let mut out = vec![0.0; n * n];
    for y in 0..n {
        for x in 0..n {
            out[y * n + x] = (-r..=r)
                .map(|d| k[(d + r) as usize] * tmp[clamp(y as i64 + d) * n + x])
                .sum();
        }
    }
    to_image(n as u32, &out)
}

fn noise(img: &Image, sigma: f32, seed: u64) -> Image {
    if sigma == 0.0 {
        return img.clone();
    }
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed);
    let mut unit = || ((rng.next_u32() >> 8) as f32 + 0.5) / 16_777_216.0;
    let px: Vec<f32> = gray(img)
        .iter()
        .map(|&v| {
            let z = (-2.0 * unit().ln()).sqrt() * (std::f32::consts::TAU * unit()).cos();
            v + z * sigma * 255.0
        })
        .collect();
    to_image(img.width(), &px)
}

fn main() {
    let mut args = std::env::args().skip(1);
    let n: usize = args.next().map_or(200, |s| s.parse().expect("N"));
    let size: u32 = args.next().map_or(256, |s| s.parse().expect("SIZE"));
    let model = BuiltinModel::load_embedded().expect("embedded weights");
    let cases = clarity_phantom::cohort(n, size, BitDepth::Eight, HELDOUT_SEED).expect("cohort");
    let opts = PredictOptions::default();
    let eval = |f: &dyn Fn(&Image, u64) -> Image| -> (f64, f64) {
        let mut correct = 0;
        let mut conf = 0.0;
        for (i, p) in cases.iter().enumerate() {
            let pred = model
                .predict(&f(&p.image, i as u64), &opts)
                .expect("predict");
            correct += usize::from(pred.label == p.truth.label);
            conf += pred.confidence;
        }
        (correct as f64 / n as f64, conf / n as f64)
    };
    println!(
        "weights {}; {n} held-out phantoms at {size}x{size}\n",
        model.weights_hash()
    );
    // Clean confusion matrix: rows = truth, columns = answer, class order.
    let names = clarity_phantom::class_names();
    let mut confusion = vec![vec![0usize; names.len()]; names.len()];
    for p in &cases {
        let pred = model.predict(&p.image, &opts).expect("predict");
        let t = names
            .iter()
            .position(|c| *c == p.truth.label)
            .expect("class");
        let a = names.iter().position(|c| *c == pred.label).expect("class");
        confusion[t][a] += 1;
    }
    println!("| truth \\ answer | {} |", names.join(" | "));
    println!("|---{}|", "|---".repeat(names.len()));
    for (t, row) in confusion.iter().enumerate() {
        let cells: Vec<String> = row.iter().map(|c| c.to_string()).collect();
        println!("| {} | {} |", names[t], cells.join(" | "));
    }
    println!();
    // Where the saliency peak falls on the clean lesion cases.
    let sal_opts = PredictOptions {
        saliency: true,
        ..opts
    };
    let (mut lesions, mut side, mut zone, mut in_box) = (0, 0, 0, 0);
    for p in cases.iter().filter(|p| p.truth.present) {
        let pred = model.predict(&p.image, &sal_opts).expect("predict");
        let sal = pred.saliency.expect("asked for saliency");
        let peak =
            (0..sal.values.len()).fold(0, |b, i| if sal.values[i] > sal.values[b] { i } else { b });
        let g = sal.width as usize;
        let (x, y) = (
            ((peak % g) as f32 + 0.5) / g as f32,
            ((peak / g) as f32 + 0.5) / g as f32,
        );
        let truth_zone = p.truth.zone.expect("lesion zone");
        let [x0, y0, x1, y1] = p
            .truth
            .bbox
            .expect("lesion bbox")
            .map(|c| c as f32 / size as f32);
        let cell = 1.0 / g as f32;
        lesions += 1;
        side += usize::from((x < 0.5) == truth_zone.is_right());
        zone += usize::from(clarity_phantom::Zone::from_point(x, y) == truth_zone);
        in_box += usize::from(x >= x0 - cell && x <= x1 + cell && y >= y0 - cell && y <= y1 + cell);
    }
    let frac = |k: usize| k as f64 / lesions.max(1) as f64;
    println!(
        "saliency peak on {lesions} lesion cases: correct side {:.3}, correct zone {:.3}, within one cell of the box {:.3}\n",
        frac(side),
        frac(zone),
        frac(in_box)
    );
    println!("| perturbation | level | accuracy | mean confidence |\n|---|---|---|---|");
    for sigma in [0.0f32, 1.0, 2.0, 4.0, 8.0] {
        let (acc, conf) = eval(&|img, _| blur(img, sigma));
        println!("| gaussian blur σ (px) | {sigma} | {acc:.3} | {conf:.3} |");
    }
    for sigma in [0.05f32, 0.1, 0.2, 0.4] {
        let (acc, conf) = eval(&|img, i| noise(img, sigma, i));
        println!("| gaussian noise σ (fraction of range) | {sigma} | {acc:.3} | {conf:.3} |");
    }
}
