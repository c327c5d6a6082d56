//! How the builtin model degrades under Gaussian blur and Gaussian noise: the table of
//! docs/models.md ("Degradation at the quickstart's size").
//!
//! ```text
//! cargo run --release -p clarity-model --example degradation -- [N] [SIZE] [WEIGHTS]
//! ```
//! N held-out phantoms (default 500; [`HELDOUT_SEED`], classes balanced round-robin) at
//! SIZE×SIZE (default 256, the quickstart's size), perturbed with the same `clarity-perturb`
//! kernels a sweep uses (`gaussian_blur.sigma` in pixels, `gaussian_noise.sigma` as a fraction
//! of the range; run seed 0, the case id seeding the noise, as in a sweep). WEIGHTS is a
//! safetensors file (default: the embedded weights). Per level: accuracy with its Wilson 95%
//! interval, the most frequent answer and its share, the share of errors that are missed
//! lesions (a lesion case answered `normal`) with its interval, and mean confidence; then the
//! confusion matrices at the clean and the heaviest levels, and the bar of docs/models.md.

use clarity_image::{BitDepth, Image};
use clarity_model::{BuiltinModel, HELDOUT_SEED, PredictOptions};
use clarity_perturb::{ParamValue, Recipe, Step};

/// Wilson score interval (95%) for `k` successes out of `n`.
fn wilson(k: usize, n: usize) -> (f64, f64) {
    if n == 0 {
        return (0.0, 1.0);
    }
    let (k, n, z) = (k as f64, n as f64, 1.959_963_984_540_054);
    let p = k / n;
    let denom = 1.0 + z * z / n;
    let centre = (p + z * z / (2.0 * n)) / denom;
    let half = z * (p * (1.0 - p) / n + z * z / (4.0 * n * n)).sqrt() / denom;
    ((centre - half).max(0.0), (centre + half).min(1.0))
}

struct Level {
    axis: &'static str,
    value: f64,
    correct: usize,
    n: usize,
    top_class: String,
    top_count: usize,
    errors: usize,
    missed: usize,
    confidence: f64,
    confusion: Vec<Vec<usize>>,
}

fn main() {
    let mut args = std::env::args().skip(1);
    let n: usize = args
        .next()
        .map_or(500, |s| s.parse().expect("N: a whole number"));
    let size: u32 = args
        .next()
        .map_or(256, |s| s.parse().expect("SIZE: a whole number"));
    let model = match args.next() {
        Some(path) => {
            let bytes = std::fs::read(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
            BuiltinModel::from_safetensors(&bytes).unwrap_or_else(|e| panic!("{path}: {e}"))
        }
        None => BuiltinModel::load_embedded().expect("embedded weights"),
    };
    let cases = clarity_phantom::cohort(n, size, BitDepth::Eight, HELDOUT_SEED).expect("cohort");
    let names = clarity_phantom::class_names();
    let class = |label: &str| names.iter().position(|c| *c == label).expect("class");
    let opts = PredictOptions::default();
    let run = |axis: &'static str, value: f64| -> Level {
        let recipe = Recipe {
            steps: if axis == "none" {
                Vec::new()
            } else {
                vec![Step {
                    name: axis.to_string(),
                    params: [("sigma".to_string(), ParamValue::Num(value))].into(),
                }]
            },
        };
        let mut confusion = vec![vec![0usize; names.len()]; names.len()];
        let (mut correct, mut errors, mut missed, mut confidence) = (0, 0, 0, 0.0);
        for p in &cases {
            let img: Image = recipe.apply(&p.image, 0, &p.id).expect("perturb");
            let pred = model.predict(&img, &opts).expect("predict");
            confusion[class(&p.truth.label)][class(&pred.label)] += 1;
            confidence += pred.confidence;
            if pred.label == p.truth.label {
                correct += 1;
            } else {
                errors += 1;
                missed += usize::from(p.truth.present && pred.label == "normal");
            }
        }
        let answers: Vec<usize> = (0..names.len())
            .map(|a| confusion.iter().map(|row| row[a]).sum())
            .collect();
        let top = (0..names.len()).fold(0, |b, a| if answers[a] > answers[b] { a } else { b });
        Level {
            axis,
            value,
            correct,
            n: cases.len(),
            top_class: names[top].to_string(),
            top_count: answers[top],
            errors,
            missed,
            confidence: confidence / cases.len().max(1) as f64,
            confusion,
        }
    };
    let mut levels = vec![run("none", 0.0)];
    for sigma in [0.5, 1.0, 2.0, 4.0, 8.0] {
        levels.push(run("gaussian_blur", sigma));
    }
    for sigma in [0.05, 0.1, 0.2] {
        levels.push(run("gaussian_noise", sigma));
    }

    println!(
        "weights {}; {n} held-out phantoms at {size}x{size}\n",
        model.weights_hash()
    );
    println!(
        "| perturbation | σ | accuracy [95% CI] | most frequent answer (share) | errors that are missed lesions [95% CI] | mean confidence |"
    );
    println!("|---|---|---|---|---|---|");
    for l in &levels {
        let (lo, hi) = wilson(l.correct, l.n);
        let (mlo, mhi) = wilson(l.missed, l.errors);
        let missed = if l.errors == 0 {
            "– (no errors)".to_string()
        } else {
            format!(
                "{}/{} = {:.2} [{mlo:.2}, {mhi:.2}]",
                l.missed,
                l.errors,
                l.missed as f64 / l.errors as f64
            )
        };
        println!(
            "| {} | {} | {:.3} [{lo:.3}, {hi:.3}] | {} ({:.2}) | {missed} | {:.3} |",
            l.axis,
            if l.axis == "none" {
                "–".to_string()
            } else {
                l.value.to_string()
            },
            l.correct as f64 / l.n as f64,
            l.top_class,
            l.top_count as f64 / l.n as f64,
            l.confidence
        );
    }
    let confusion = |title: &str, l: &Level| {
        println!("\n{title} (rows = truth, columns = answer):\n");
        println!("| truth \\ answer | {} |", names.join(" | "));
        println!("|---{}|", "|---".repeat(names.len()));
        for (t, row) in l.confusion.iter().enumerate() {
            let cells: Vec<String> = row.iter().map(|c| c.to_string()).collect();
            println!("| {} | {} |", names[t], cells.join(" | "));
        }
    };
    confusion("Clean", &levels[0]);
    confusion("gaussian_blur σ 8", &levels[5]);
    confusion("gaussian_noise σ 0.2", &levels[8]);

    // The bar of docs/models.md.
    let mut fails = Vec::new();
    let clean = levels[0].correct as f64 / levels[0].n as f64;
    if clean < 0.95 {
        fails.push(format!("clean accuracy {clean:.3} < 0.95"));
    }
    // Along each axis, starting from clean: blur levels 1..=5, noise levels 6..=8.
    for axis in [vec![0, 1, 2, 3, 4, 5], vec![0, 6, 7, 8]] {
        for w in axis.windows(2) {
            let (a, b) = (&levels[w[0]], &levels[w[1]]);
            let (_, hi) = wilson(a.correct, a.n);
            let next = b.correct as f64 / b.n as f64;
            if next > hi {
                fails.push(format!(
                    "{} σ {}: accuracy {next:.3} rises above the previous level's interval (upper {hi:.3})",
                    b.axis, b.value
                ));
            }
        }
    }
    for l in &levels {
        let share = l.top_count as f64 / l.n as f64;
        if share > 0.6 {
            fails.push(format!(
                "{} σ {}: {} takes {share:.2} of the answers",
                l.axis, l.value, l.top_class
            ));
        }
    }
    for l in [&levels[5], &levels[8]] {
        if l.errors > 0 && 2 * l.missed <= l.errors {
            fails.push(format!(
                "{} σ {}: only {}/{} errors are missed lesions",
                l.axis, l.value, l.missed, l.errors
            ));
        }
    }
    if fails.is_empty() {
        println!("\nbar: PASS");
    } else {
        println!("\nbar: FAIL");
        for f in &fails {
            println!("- {f}");
        }
    }
}
