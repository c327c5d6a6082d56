//! Decodes files and dumps what the conformance test (`scripts/dicom_conformance.py`)
//! compares with pydicom: one JSON line per file on stdout (status, error kind and message,
//! size, channels, depth, decode record) and the samples as little-endian raw bytes in
//! `OUT_DIR/<n>.raw`.
//!
//! `cargo run --release -p clarity-image --example dicom_dump -- OUT_DIR FILE...`

use std::path::Path;

use clarity_image::{DecodeError, DecodeOptions, Samples, decode_file};

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let Some((out, files)) = args.split_first() else {
        eprintln!("usage: dicom_dump OUT_DIR FILE...");
        std::process::exit(2);
    };
    std::fs::create_dir_all(out).expect("create OUT_DIR");
    for (n, file) in files.iter().enumerate() {
        let line = match decode_file(Path::new(file), &DecodeOptions::default()) {
            Ok(d) => {
                let raw: Vec<u8> = match d.image.samples() {
                    Samples::U8(v) => v.clone(),
                    Samples::U16(v) => v.iter().flat_map(|s| s.to_le_bytes()).collect(),
                };
                let raw_path = Path::new(out).join(format!("{n}.raw"));
                std::fs::write(&raw_path, raw).expect("write raw samples");
                serde_json::json!({
                    "file": file,
                    "status": "ok",
                    "width": d.image.width(),
                    "height": d.image.height(),
                    "channels": d.image.channels().count(),
                    "bits": d.image.depth().bits(),
                    "raw": raw_path,
                    "record": d.record,
                })
            }
            Err(e) => {
                let kind = match &e {
                    DecodeError::Unsupported { .. } => "unsupported",
                    DecodeError::NotAnImage { .. } => "not_an_image",
                    DecodeError::Corrupt { .. } => "corrupt",
                    _ => "other",
                };
                serde_json::json!({"file": file, "status": "error", "kind": kind, "error": e.to_string()})
            }
        };
        println!("{line}");
    }
}
