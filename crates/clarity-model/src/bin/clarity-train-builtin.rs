//! Trains the builtin model from scratch and writes its weights and their BLAKE3 hash.
//!
//! ```text
//! cargo run --release -p clarity-model --bin clarity-train-builtin -- \
//!     --out crates/clarity-model/weights/builtin.safetensors [--cases N] [--epochs N] [--eval N]
//!     [--operating-point COST[,CASES[,clean|augmented]] | --no-operating-point]
//! ```
//! Writes `OUT` and `OUT.blake3` (write-then-rename). Progress and accuracy go to stderr.

use std::path::PathBuf;
use std::process::ExitCode;

use clarity_model::{Augment, OperatingPoint, TrainConfig, heldout_accuracy, train};

fn main() -> ExitCode {
    match run() {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::from(2)
        }
    }
}

fn run() -> Result<(), String> {
    let mut out: Option<PathBuf> = None;
    let mut cfg = TrainConfig::default();
    let mut eval = 500usize;
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        let mut value = |name: &str| args.next().ok_or(format!("{name} needs a value"));
        let num = |name: &str, v: String| {
            v.parse::<usize>()
                .map_err(|_| format!("{name} expects a whole number, got {v:?}"))
        };
        match a.as_str() {
            "--out" => out = Some(PathBuf::from(value("--out")?)),
            "--cases" => cfg.cases = num("--cases", value("--cases")?)?,
            "--epochs" => cfg.epochs = num("--epochs", value("--epochs")?)?,
            "--eval" => eval = num("--eval", value("--eval")?)?,
            "--batch" => cfg.batch_size = num("--batch", value("--batch")?)?,
            "--sizes" => {
                let v = value("--sizes")?;
                cfg.render_sizes = v
                    .split(',')
                    .map(|s| num("--sizes", s.to_string()).map(|n| n as u32))
                    .collect::<Result<_, _>>()?;
            }
            "--paired-normals" => {
                cfg.paired_normal_every = num("--paired-normals", value("--paired-normals")?)?
            }
            "--no-augment" => cfg.augment = None,
            "--augment" => {
                // clean_fraction,blur_max,noise_max,tone_max[,blur_power]
                let v = value("--augment")?;
                let f: Vec<f32> = v
                    .split(',')
                    .map(|s| s.parse::<f32>())
                    .collect::<Result<_, _>>()
                    .map_err(|_| format!("--augment expects 4 numbers, got {v:?}"))?;
                let (clean_fraction, blur_max, noise_max, tone_max, power) = match f[..] {
                    [c, b, n, t] => (c, b, n, t, 1.0),
                    [c, b, n, t, p] => (c, b, n, t, p),
                    _ => {
                        return Err(format!(
                            "--augment expects CLEAN,BLUR,NOISE,TONE[,BLUR_POWER] (4 or 5 numbers), got {v:?}"
                        ));
                    }
                };
                if !(power >= 1.0 && power.fract() == 0.0 && power <= 8.0) {
                    return Err(format!(
                        "--augment: BLUR_POWER must be a whole number 1..=8, got {power}"
                    ));
                }
                let blur_power = power as u32;
                cfg.augment = Some(Augment {
                    clean_fraction,
                    blur_max,
                    blur_power,
                    noise_max,
                    tone_max,
                });
            }
            "--no-operating-point" => cfg.operating_point = None,
            "--operating-point" => {
                // COST[,CASES[,clean|augmented]]
                let v = value("--operating-point")?;
                let parts: Vec<&str> = v.split(',').collect();
                let bad = || {
                    format!(
                        "--operating-point expects COST[,CASES[,clean|augmented]] (COST in [0, 1]), got {v:?}"
                    )
                };
                let mut op = cfg.operating_point.clone().unwrap_or(OperatingPoint {
                    calibration_cases: 1000,
                    sensitivity_cost: 0.01,
                    augmented: true,
                });
                match parts[..] {
                    [c, ..] if parts.len() <= 3 => {
                        op.sensitivity_cost = c.parse().map_err(|_| bad())?;
                    }
                    _ => return Err(bad()),
                }
                if let Some(n) = parts.get(1) {
                    op.calibration_cases = n.parse().map_err(|_| bad())?;
                }
                match parts.get(2) {
                    None => {}
                    Some(&"clean") => op.augmented = false,
                    Some(&"augmented") => op.augmented = true,
                    Some(_) => return Err(bad()),
                }
                cfg.operating_point = Some(op);
            }
            "--lr" => {
                let v = value("--lr")?;
                cfg.learning_rate = v
                    .parse()
                    .map_err(|_| format!("--lr expects a number, got {v:?}"))?;
            }
            "-h" | "--help" => {
                println!(
                    "usage: clarity-train-builtin --out FILE.safetensors [--cases N] [--epochs N] [--batch N] [--lr X] [--sizes 128,256] [--paired-normals K] [--augment CLEAN,BLUR,NOISE,TONE[,BLUR_POWER] | --no-augment] [--operating-point COST[,CASES[,clean|augmented]] | --no-operating-point] [--eval N]"
                );
                return Ok(());
            }
            other => return Err(format!("unknown argument {other:?} (try --help)")),
        }
    }
    let out = out.ok_or("--out FILE.safetensors is required")?;
    eprintln!(
        "training: {}",
        serde_json::to_string(&cfg).map_err(|e| e.to_string())?
    );
    let started = std::time::Instant::now();
    let trained = train(&cfg).map_err(|e| e.to_string())?;
    for e in &trained.log {
        eprintln!(
            "epoch {}: steps {} loss {:.4} train accuracy {:.4}",
            e.epoch, e.steps, e.mean_loss, e.train_accuracy
        );
    }
    eprintln!("trained in {:.1} s", started.elapsed().as_secs_f64());
    if let Some(m) = trained.normal_margin {
        eprintln!("operating point: margin {m:.4} nats on the normal logit");
    }
    let bytes = trained.to_safetensors();
    let hash = blake3::hash(&bytes).to_hex().to_string();
    let model = trained.model();
    for size in [64, 128, 256] {
        let acc = heldout_accuracy(&model, eval, size).map_err(|e| e.to_string())?;
        eprintln!("held-out accuracy ({eval} phantoms, {size}x{size}): {acc:.4}");
    }
    write_atomic(&out, &bytes)?;
    let mut hash_path = out.clone().into_os_string();
    hash_path.push(".blake3");
    write_atomic(&PathBuf::from(hash_path), format!("{hash}\n").as_bytes())?;
    println!("{hash}  {}", out.display());
    Ok(())
}

fn write_atomic(path: &std::path::Path, bytes: &[u8]) -> Result<(), String> {
    let mut tmp = path.as_os_str().to_owned();
    tmp.push(".tmp");
    let tmp = PathBuf::from(tmp);
    fs_err::write(&tmp, bytes).map_err(|e| e.to_string())?;
    fs_err::rename(&tmp, path).map_err(|e| e.to_string())
}
