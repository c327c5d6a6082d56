//! Writes the builtin model (embedded weights) as ONNX.
//!
//! ```text
//! cargo run -p clarity-onnx-export --bin clarity-export-onnx -- [--out models/builtin.onnx] [--logits]
//! ```
//! `--logits` leaves out the final Softmax (output `logits` instead of `probabilities`).
//! Writes to a temporary file next to `OUT`, then renames it.

use std::path::PathBuf;
use std::process::ExitCode;

use clarity_model::BuiltinModel;
use clarity_onnx_export::{COMMITTED_PATH, ExportOptions, export_builtin, output_name};

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
    let mut out = PathBuf::from(COMMITTED_PATH);
    let mut opts = ExportOptions::default();
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        match a.as_str() {
            "--out" => out = PathBuf::from(args.next().ok_or("--out needs a value")?),
            "--logits" => opts.softmax = false,
            "-h" | "--help" => {
                println!("usage: clarity-export-onnx [--out FILE.onnx] [--logits]");
                return Ok(());
            }
            other => return Err(format!("unknown argument {other:?} (try --help)")),
        }
    }
    let model = BuiltinModel::load_embedded().map_err(|e| e.to_string())?;
    let bytes = export_builtin(&model, &opts);
    let mut tmp = out.clone().into_os_string();
    tmp.push(".tmp");
    fs_err::write(&tmp, &bytes).map_err(|e| e.to_string())?;
    fs_err::rename(&tmp, &out).map_err(|e| e.to_string())?;
    eprintln!(
        "wrote {} ({} bytes, output `{}`, weights {})",
        out.display(),
        bytes.len(),
        output_name(&opts),
        model.weights_hash()
    );
    Ok(())
}
