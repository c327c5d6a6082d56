//! A fixture that owns a temp dir, writes test images and runs the adapter.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use clarity_adapters::command::{CommandAdapter, CommandConfig};
use clarity_adapters::{Adapter, AdapterError, RunInput};
use clarity_core::Observation;
use clarity_image::{Channels, Image};
use clarity_perturb::{ParamValue, Step};
use serde_json::Value;

pub fn program() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_clarity-testmodel"))
}

pub struct Fixture {
    pub dir: tempfile::TempDir,
    runs: std::cell::Cell<u32>,
}

impl Fixture {
    pub fn new() -> Self {
        Self {
            dir: tempfile::tempdir().unwrap(),
            runs: std::cell::Cell::new(0),
        }
    }

    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    /// A config for the test program with `spec` and a generous timeout.
    pub fn config(&self, spec: Value) -> CommandConfig {
        let mut c = CommandConfig::new(program());
        c.spec = Some(spec);
        c.timeout_secs = 120.0;
        c
    }

    pub fn adapter(&self, config: &CommandConfig) -> CommandAdapter {
        CommandAdapter::new(config, self.path()).unwrap()
    }

    /// Writes an 8-bit grayscale PNG and returns its path.
    pub fn png(&self, name: &str, w: u32, h: u32, px: &[u8]) -> PathBuf {
        let path = self.path().join(name);
        image::GrayImage::from_raw(w, h, px.to_vec())
            .unwrap()
            .save(&path)
            .unwrap();
        path
    }

    /// A fresh, empty work dir and the input for one run.
    pub fn input(&self, image_path: &Path, seed: u64) -> RunInput {
        let n = self.runs.get() + 1;
        self.runs.set(n);
        let work_dir = self.path().join(format!("work-{n}"));
        std::fs::create_dir(&work_dir).unwrap();
        RunInput {
            key: format!("key-{n}"),
            case_id: "case-1".into(),
            image: Arc::new(Image::from_u8(1, 1, Channels::Gray, vec![0]).unwrap()),
            image_path: Some(image_path.to_path_buf()),
            prompt: Some("Is there a nodule?".into()),
            seed,
            perturbations: vec![Step {
                name: "gaussian_blur".into(),
                params: [("sigma".to_string(), ParamValue::Num(2.0))]
                    .into_iter()
                    .collect(),
            }],
            work_dir,
        }
    }

    pub fn run(
        &self,
        adapter: &CommandAdapter,
        input: RunInput,
    ) -> Result<Observation, AdapterError> {
        runtime().block_on(adapter.run(input))
    }
}

pub fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap()
}

/// A `w`×`h` checkerboard alternating `lo` and `hi` (8-bit).
pub fn checkerboard(w: u32, h: u32, lo: u8, hi: u8) -> Vec<u8> {
    (0..h)
        .flat_map(|y| (0..w).map(move |x| if (x + y) % 2 == 0 { lo } else { hi }))
        .collect()
}

/// One pass of a 3×3 box blur with clamped edges (rounded to nearest).
pub fn box_blur(w: u32, h: u32, px: &[u8]) -> Vec<u8> {
    let (w, h) = (w as i64, h as i64);
    let at = |x: i64, y: i64| u32::from(px[(y.clamp(0, h - 1) * w + x.clamp(0, w - 1)) as usize]);
    let mut out = Vec::with_capacity(px.len());
    for y in 0..h {
        for x in 0..w {
            let mut s = 0;
            for dy in -1..=1 {
                for dx in -1..=1 {
                    s += at(x + dx, y + dy);
                }
            }
            out.push(((s + 4) / 9) as u8);
        }
    }
    out
}

pub fn binary_entropy(p: f64) -> f64 {
    -p * p.ln() - (1.0 - p) * (1.0 - p).ln()
}

/// Whether a process is gone (absent, or a zombie nobody has reaped yet).
pub fn process_gone(pid: u32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Err(_) => true,
        // The state follows the parenthesised command name.
        Ok(stat) => stat
            .rsplit_once(')')
            .is_some_and(|(_, rest)| rest.trim_start().starts_with(['Z', 'X'])),
    }
}
