//! Shared helpers: configs, a toy adapter that only looks at one quadrant.

use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use async_trait::async_trait;
use clarity_adapters::{Adapter, AdapterError, AdapterIdentity, RunInput, Workload};
use clarity_core::Observation;
use clarity_engine::{ExecOptions, SweepConfig, parse_config};

/// A small builtin-model sweep config with a `[probe]` table.
pub fn config(dir: &Path, probe: &str) -> SweepConfig {
    let text = format!(
        r#"
cohort = {{ kind = "builtin", n = 5, size = 64, seed = 7 }}
adapter = {{ kind = "builtin" }}
seeds = [0]

[axes]
"gaussian_blur.sigma" = [1.0]

[probe]
{probe}
"#
    );
    parse_config(&text, &dir.join("sweep.toml")).expect("valid config")
}

pub fn opts(jobs: usize) -> ExecOptions {
    ExecOptions {
        jobs,
        ..Default::default()
    }
}

/// Answers `bright` when the mean of the top-left quadrant (in `[0, 1]`) is at least 0.5, with
/// `P(bright)` = that mean; the rest of the image is never read.
#[derive(Default)]
pub struct QuadrantAdapter {
    pub calls: AtomicUsize,
}

impl QuadrantAdapter {
    pub fn calls(&self) -> usize {
        self.calls.load(Ordering::SeqCst)
    }
}

#[async_trait]
impl Adapter for QuadrantAdapter {
    fn identity(&self) -> AdapterIdentity {
        AdapterIdentity {
            adapter: "test".into(),
            model: "quadrant".into(),
            version: "1".into(),
            settings: serde_json::json!({}),
        }
    }
    fn workload(&self) -> Workload {
        Workload::Cpu
    }
    async fn run(&self, input: RunInput) -> Result<Observation, AdapterError> {
        self.calls.fetch_add(1, Ordering::SeqCst);
        let img = &input.image;
        let (w, h) = (img.width() as usize, img.height() as usize);
        let unit = img.to_gray8().0.to_unit_f32();
        let mut s = 0f64;
        for y in 0..h / 2 {
            for x in 0..w / 2 {
                s += unit[y * w + x] as f64;
            }
        }
        let p = s / ((w / 2) * (h / 2)) as f64;
        let answer = if p >= 0.5 { "bright" } else { "dark" };
        let mut o = Observation {
            answer: Some(answer.into()),
            confidence: Some(p.max(1.0 - p)),
            ..Default::default()
        };
        o.probabilities.insert("bright".into(), p);
        o.probabilities.insert("dark".into(), 1.0 - p);
        Ok(o)
    }
}

pub fn quadrant() -> Arc<QuadrantAdapter> {
    Arc::new(QuadrantAdapter::default())
}

/// Every file under `dir` (relative path → bytes), sorted.
pub fn files(dir: &Path) -> Vec<(String, Bytes)> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                stack.push(p);
            } else {
                let rel = p.strip_prefix(dir).unwrap().display().to_string();
                out.push((rel, Bytes(std::fs::read(&p).unwrap())));
            }
        }
    }
    out.sort();
    out
}

/// File bytes that print as their length and BLAKE3 (and as text when they are UTF-8 JSON).
#[derive(PartialEq, Eq, PartialOrd, Ord)]
pub struct Bytes(pub Vec<u8>);

impl std::fmt::Debug for Bytes {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} bytes, blake3 {}",
            self.0.len(),
            blake3::hash(&self.0).to_hex()
        )
    }
}
