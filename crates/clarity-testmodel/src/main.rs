//! `clarity-testmodel`: a small, real program that speaks the R2L artifact contract (SPEC §4
//! item 4), used to test the `command` adapter end to end.
//!
//! ```text
//! clarity-testmodel --config spec.json --output DIR --seed N [--adapter NAME]
//! ```
//!
//! It loads the PNG at the spec's `image_path`, measures the mean intensity and the sharpness
//! (mean absolute 4-neighbour Laplacian, intensities in [0, 1]) and answers `nodule` when the
//! image has sharp detail (`sharpness >= sharpness_threshold`) and is neither too dark nor too
//! bright, else `normal`: strong blur or extreme brightness flips the answer. The probability
//! of `nodule` is `sigmoid(4 ln(sharpness / threshold))` (scaled by 0.1 when the brightness
//! is out of range); confidence is the larger class probability and entropy the binary
//! entropy in nats. With `jitter = a` in the spec, the probability moves by up to ±a/2, drawn
//! deterministically from the seed.
//!
//! With `mode = "region"` or `mode = "ignore_image"` in the spec it is instead one of the
//! probe's known-answer models (see `modes.rs`): a model that reads only one fixed box, and a
//! model that answers from the prompt without reading the image.
//!
//! Test knobs (spec keys): `behaviour` = `ok` (default) | `fail` (exit 3) | `sleep` (sleeps
//! forever after starting a sleeping child; writes both pids to `pid_file`) | `garbage`
//! (trace line 2 is not JSON) | `no_manifest` | `chatty_fail` (floods stdout and stderr, then
//! exits 4); `count_file` (a line is appended per call).

use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::Parser;
use serde_json::{Map, Value, json};

mod modes;

#[derive(Debug, Parser)]
#[command(name = "clarity-testmodel", about = "R2L contract test program")]
struct Args {
    /// The run's spec.json.
    #[arg(long)]
    config: Option<PathBuf>,
    /// Directory to write manifest.json and trace_pack.jsonl into.
    #[arg(long)]
    output: Option<PathBuf>,
    #[arg(long)]
    seed: Option<u64>,
    /// Adapter name, recorded in the trace.
    #[arg(long)]
    adapter: Option<String>,
    /// Internal: sleep forever (the child started by `behaviour = "sleep"`).
    #[arg(long, hide = true)]
    sleep_forever: bool,
}

/// The CC0 reference radiograph (`shared/reference`) measures 0.033: sharp at this threshold,
/// below it after two 3×3 box blurs.
const DEFAULT_THRESHOLD: f64 = 0.02;
const DEFAULT_DARK_BELOW: f64 = 0.08;
const DEFAULT_BRIGHT_ABOVE: f64 = 0.92;

fn main() -> ExitCode {
    let args = Args::parse();
    if args.sleep_forever {
        sleep_forever();
    }
    match run(&args) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("clarity-testmodel: error: {e}");
            ExitCode::from(2)
        }
    }
}

fn sleep_forever() -> ! {
    loop {
        std::thread::sleep(std::time::Duration::from_secs(3600));
    }
}

fn run(args: &Args) -> Result<ExitCode, String> {
    let config = args.config.as_ref().ok_or("--config is required")?;
    let out = args.output.as_ref().ok_or("--output is required")?;
    let seed = args.seed.ok_or("--seed is required")?;
    let text = fs_err::read_to_string(config).map_err(|e| e.to_string())?;
    let spec: Map<String, Value> = serde_json::from_str(&text)
        .map_err(|e| format!("{}: invalid JSON: {e}", config.display()))?;

    if let Some(path) = spec.get("count_file").and_then(Value::as_str) {
        let mut f = fs_err::OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)
            .map_err(|e| e.to_string())?;
        writeln!(f, "seed={seed}").map_err(|e| e.to_string())?;
    }

    let behaviour = spec
        .get("behaviour")
        .and_then(Value::as_str)
        .unwrap_or("ok");
    match behaviour {
        "ok" | "garbage" | "no_manifest" => {}
        "fail" => {
            println!("loading model…");
            eprintln!("clarity-testmodel: failing as asked (behaviour = \"fail\")");
            return Ok(ExitCode::from(3));
        }
        "chatty_fail" => {
            // More than a pipe buffer on both streams: the caller must read while waiting.
            let mut err = std::io::stderr().lock();
            for i in 0..5000 {
                println!("progress line {i}");
                writeln!(err, "warning line {i}: something noisy").map_err(|e| e.to_string())?;
            }
            writeln!(err, "final words").map_err(|e| e.to_string())?;
            return Ok(ExitCode::from(4));
        }
        "sleep" => {
            let me = std::env::current_exe().map_err(|e| e.to_string())?;
            let child = std::process::Command::new(me)
                .arg("--sleep-forever")
                .spawn()
                .map_err(|e| format!("cannot start the sleeping child: {e}"))?;
            if let Some(path) = spec.get("pid_file").and_then(Value::as_str) {
                // Write then rename so a reader never sees half the pids.
                let tmp = format!("{path}.tmp");
                fs_err::write(&tmp, format!("{}\n{}\n", std::process::id(), child.id()))
                    .map_err(|e| e.to_string())?;
                fs_err::rename(&tmp, path).map_err(|e| e.to_string())?;
            }
            sleep_forever();
        }
        other => return Err(format!("unknown behaviour {other:?}")),
    }

    let number = |key: &str, default: f64| -> Result<f64, String> {
        match spec.get(key) {
            None => Ok(default),
            Some(v) => v
                .as_f64()
                .filter(|x| x.is_finite())
                .ok_or(format!("spec `{key}` must be a finite number, got {v}")),
        }
    };
    let mode = spec
        .get("mode")
        .and_then(Value::as_str)
        .unwrap_or("sharpness");
    let decision = match mode {
        // Never opens the image.
        "ignore_image" => modes::ignore_image(&spec),
        "sharpness" | "region" => {
            let image_path = spec
                .get("image_path")
                .and_then(Value::as_str)
                .ok_or("spec has no string `image_path`")?;
            let img = image::open(image_path)
                .map_err(|e| format!("{image_path}: {e}"))?
                .to_luma32f();
            let (w, h) = (img.width() as usize, img.height() as usize);
            if mode == "region" {
                let threshold = number("contrast_threshold", modes::DEFAULT_CONTRAST)?;
                modes::region(&spec, w, h, img.as_raw(), threshold)?
            } else {
                sharpness(&number, w, h, img.as_raw(), seed)?
            }
        }
        other => {
            return Err(format!(
                "unknown mode {other:?} (expected \"sharpness\", \"region\" or \"ignore_image\")"
            ));
        }
    };
    let p = decision.p;
    let answer = if p >= 0.5 { "nodule" } else { "normal" };
    let confidence = p.max(1.0 - p);
    let entropy = binary_entropy(p);
    let justification = decision.justification;
    let adapter_metadata = decision.metadata;

    fs_err::create_dir_all(out).map_err(|e| e.to_string())?;
    let trace_id = format!("trace-{seed}");
    let mut lines = vec![
        json!({"trace_id": trace_id, "step": 1, "event": "inference_start",
               "model_id": "clarity-testmodel", "adapter": args.adapter}),
        json!({"trace_id": trace_id, "step": 2, "event": "inference_complete",
               "output": answer, "justification": justification,
               "confidence_score": confidence,
               "rich_summary": {"confidence_score": confidence, "output_entropy": entropy},
               "adapter_metadata": adapter_metadata}),
        json!({"trace_id": trace_id, "step_id": "evaluate", "event": "evaluation_complete",
               "metrics": {"perturbations": spec.get("perturbations").map_or(0, |p| p.as_array().map_or(0, Vec::len))}}),
    ]
    .into_iter()
    .map(|v| v.to_string())
    .collect::<Vec<_>>();
    if behaviour == "garbage" {
        lines[1] = "{\"step\": 2, \"output\": \"nodule\"".to_string();
    }
    write_file(&out.join("trace_pack.jsonl"), &(lines.join("\n") + "\n"))?;

    if behaviour != "no_manifest" {
        let manifest = json!({
            "version": "1.0.0",
            "run_id": format!("testmodel-seed-{seed}"),
            // Fixed: the program is deterministic, so is its manifest.
            "timestamp": "1970-01-01T00:00:00Z",
            "r2l_version": "clarity-testmodel",
            "seed": seed,
            "model_id": "clarity-testmodel",
            "config": "spec.json",
            "status": "completed",
            "artifacts": ["manifest.json", "trace_pack.jsonl"],
        });
        let text = serde_json::to_string_pretty(&manifest).map_err(|e| e.to_string())?;
        write_file(&out.join("manifest.json"), &(text + "\n"))?;
    }
    println!("{answer}");
    Ok(ExitCode::SUCCESS)
}

/// The default model: answers `nodule` for sharp detail in a readable exposure.
fn sharpness(
    number: &dyn Fn(&str, f64) -> Result<f64, String>,
    w: usize,
    h: usize,
    px: &[f32],
    seed: u64,
) -> Result<modes::Decision, String> {
    let stats = Stats::measure(w, h, px);
    let threshold = number("sharpness_threshold", DEFAULT_THRESHOLD)?;
    if threshold <= 0.0 {
        return Err(format!(
            "spec `sharpness_threshold` must be > 0, got {threshold}"
        ));
    }
    let dark = number("dark_below", DEFAULT_DARK_BELOW)?;
    let bright = number("bright_above", DEFAULT_BRIGHT_ABOVE)?;
    let jitter = number("jitter", 0.0)?;

    let exposure_ok = stats.mean >= dark && stats.mean <= bright;
    let ratio = (stats.sharpness + 1e-12) / threshold;
    let mut p = 1.0 / (1.0 + (-4.0 * ratio.ln()).exp());
    if !exposure_ok {
        p *= 0.1;
    }
    if jitter > 0.0 {
        p = (p + jitter * (unit_from_seed(seed) - 0.5)).clamp(0.0, 1.0);
    }
    let justification = format!(
        "mean absolute Laplacian {:.4} {} the threshold {:.4} ({}); mean intensity {:.3} {}",
        stats.sharpness,
        if stats.sharpness >= threshold {
            "reaches"
        } else {
            "is below"
        },
        threshold,
        if stats.sharpness >= threshold {
            "sharp focal detail"
        } else {
            "no sharp focal detail"
        },
        stats.mean,
        if exposure_ok {
            "is in the readable range".to_string()
        } else {
            format!("is outside [{dark}, {bright}], too dark or bright to read")
        }
    );
    Ok(modes::Decision {
        p,
        justification,
        metadata: json!({"mean_intensity": round6(stats.mean),
                         "sharpness": round6(stats.sharpness),
                         "sharpness_threshold": threshold,
                         "p_nodule": round6(p)}),
    })
}

fn write_file(path: &Path, text: &str) -> Result<(), String> {
    fs_err::write(path, text).map_err(|e| e.to_string())
}

fn round6(x: f64) -> f64 {
    (x * 1e6).round() / 1e6
}

/// Image statistics on intensities in [0, 1].
#[derive(Debug, Clone, Copy, PartialEq)]
struct Stats {
    mean: f64,
    /// Mean |4·c − n − s − e − w| over interior pixels (0 when there are none).
    sharpness: f64,
}

impl Stats {
    fn measure(w: usize, h: usize, px: &[f32]) -> Self {
        let mean = px.iter().map(|&v| f64::from(v)).sum::<f64>() / px.len().max(1) as f64;
        let mut sum = 0.0;
        let mut count = 0usize;
        for y in 1..h.saturating_sub(1) {
            for x in 1..w.saturating_sub(1) {
                let at = |x: usize, y: usize| f64::from(px[y * w + x]);
                let lap =
                    4.0 * at(x, y) - at(x - 1, y) - at(x + 1, y) - at(x, y - 1) - at(x, y + 1);
                sum += lap.abs();
                count += 1;
            }
        }
        let sharpness = if count == 0 { 0.0 } else { sum / count as f64 };
        Self { mean, sharpness }
    }
}

fn binary_entropy(p: f64) -> f64 {
    let term = |q: f64| if q > 0.0 { -q * q.ln() } else { 0.0 };
    (term(p) + term(1.0 - p)).max(0.0)
}

/// A number in [0, 1) from the seed (splitmix64): the jitter needs no RNG crate.
fn unit_from_seed(seed: u64) -> f64 {
    let mut z = seed.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^= z >> 31;
    (z >> 11) as f64 / (1u64 << 53) as f64
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn laplacian_of_a_checkerboard_is_four() {
        let px: Vec<f32> = (0..16).map(|i| ((i % 4 + i / 4) % 2) as f32).collect();
        let s = Stats::measure(4, 4, &px);
        assert_eq!(s.sharpness, 4.0);
        assert_eq!(s.mean, 0.5);
        let flat = Stats::measure(3, 3, &[0.25; 9]);
        assert_eq!((flat.mean, flat.sharpness), (0.25, 0.0));
    }

    #[test]
    fn entropy_is_ln2_at_one_half() {
        assert!((binary_entropy(0.5) - std::f64::consts::LN_2).abs() < 1e-15);
        assert_eq!(binary_entropy(1.0), 0.0);
    }
}
