//! `examples/command.toml` runs with nothing but the repository: its program is the POSIX
//! shell stand-in `examples/command-model.sh` (no build of another binary needed).

#![cfg(unix)]

use std::path::{Path, PathBuf};
use std::sync::Arc;

use clarity_adapters::{AdapterConfig, RunInput};
use clarity_image::{Channels, Image};

#[derive(serde::Deserialize)]
struct Sweep {
    adapter: AdapterConfig,
}

fn examples() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples")
}

fn run_input(image: Image, dir: &Path, name: &str) -> RunInput {
    let path = dir.join(format!("{name}.png"));
    clarity_image::write_png(&image, &path).unwrap();
    let work = dir.join(name);
    std::fs::create_dir_all(&work).unwrap();
    RunInput {
        key: name.into(),
        case_id: name.into(),
        image: Arc::new(image),
        image_path: Some(path),
        prompt: None,
        seed: 1,
        perturbations: Vec::new(),
        work_dir: work,
    }
}

#[tokio::test]
async fn shipped_command_example_runs_its_shell_model() {
    let text = std::fs::read_to_string(examples().join("command.toml")).unwrap();
    let value: toml::Table = toml::from_str(&text).unwrap();
    let sweep: Sweep = toml::Value::Table(value).try_into().unwrap();
    assert!(matches!(sweep.adapter, AdapterConfig::Command(_)));
    let adapter = sweep.adapter.build(&examples()).unwrap();
    assert!(adapter.needs_image_file());
    let dir = tempfile::tempdir().unwrap();
    // Detail everywhere (a pseudo-random texture) vs a flat image.
    let mut state = 0x2545_f491u32;
    let texture: Vec<u8> = (0..64 * 64)
        .map(|_| {
            state ^= state << 13;
            state ^= state >> 17;
            state ^= state << 5;
            (state >> 24) as u8
        })
        .collect();
    let sharp = Image::from_u8(64, 64, Channels::Gray, texture).unwrap();
    let flat = Image::from_u8(64, 64, Channels::Gray, vec![90; 64 * 64]).unwrap();
    let a = adapter
        .run(run_input(sharp, dir.path(), "sharp"))
        .await
        .unwrap();
    let b = adapter
        .run(run_input(flat, dir.path(), "flat"))
        .await
        .unwrap();
    assert_eq!(a.answer.as_deref(), Some("nodule"), "{a:?}");
    assert_eq!(b.answer.as_deref(), Some("normal"), "{b:?}");
    assert!(a.confidence.unwrap() > 0.9 && b.confidence.unwrap() > 0.9);
    assert!(
        a.justification
            .as_deref()
            .unwrap()
            .contains("bits per pixel"),
        "{a:?}"
    );
    assert_eq!(adapter.identity().model, "command-model.sh");
}
