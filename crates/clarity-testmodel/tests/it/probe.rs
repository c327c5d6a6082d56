//! Known-answer checks of the probe through the command adapter (issue 13): `clarity probe`
//! (the CLI's own code, in process) runs the real `clarity-testmodel` program as an external
//! model.
//!
//! - `mode = "region"` reads one fixed box only, so masking that box is the only thing that
//!   can change its answer: the probe must call the box `specific` for every fill, and a box
//!   anywhere else `not specific` for every fill.
//! - `mode = "ignore_image"` never reads the image: `not specific` for every fill, wherever
//!   the claimed evidence is.

use std::path::{Path, PathBuf};

use clap::Parser as _;
use serde_json::Value;

use crate::common::program;

/// Image side, px. The model's box is its default, `[0.125, 0.25, 0.375, 0.5]`: px 6..18 ×
/// 12..24, inside the left-hand lung field.
const W: u32 = 48;
const FILLS: [&str; 5] = ["constant", "mean", "blur", "noise", "inpaint"];
/// Six cases with a bright spot in the model's box, two without.
const LESIONS: [bool; 8] = [true, true, false, true, true, false, true, true];

/// A 48×48 chest-like image: soft tissue 0.6, two mirror-symmetric lung fields 0.3 (axis
/// x = 24), a little deterministic texture and, with `lesion`, a disc of radius 3 at 0.75
/// near (12, 18), moved by a pixel from case to case. Returns the 8-bit pixels and the
/// lesion's box.
fn chest(case: u32, lesion: bool) -> (Vec<u8>, Option<[u32; 4]>) {
    let (cx, cy) = (11.5 + (case % 3) as f32, 17.5 + (case % 2) as f32);
    let mut px = Vec::with_capacity((W * W) as usize);
    for y in 0..W {
        for x in 0..W {
            let (fx, fy) = (x as f32 + 0.5, y as f32 + 0.5);
            let lung = |lx: f32| ((fx - lx) / 8.0).powi(2) + ((fy - 25.0) / 17.0).powi(2) <= 1.0;
            let mut v = if lung(12.0) || lung(36.0) { 0.3 } else { 0.6 };
            let t = (x * 7919 + y * 104_729 + case * 1_299_709) % 1000;
            v += (t as f32 / 1000.0 - 0.5) * 0.04;
            if lesion && (fx - cx).powi(2) + (fy - cy).powi(2) <= 9.0 {
                v = 0.75;
            }
            px.push((v.clamp(0.0, 1.0) * 255.0).round() as u8);
        }
    }
    let bbox = lesion.then(|| {
        let (x, y) = (cx.floor() as u32, cy.floor() as u32);
        [x - 3, y - 3, x + 4, y + 4]
    });
    (px, bbox)
}

/// A temp dir with the cohort (PNGs and a JSONL manifest: per-case prompts, the lesion box
/// as `bbox` metadata) and a shared cache.
struct Bench {
    dir: tempfile::TempDir,
}

impl Bench {
    fn new() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let cohort = dir.path().join("cohort");
        std::fs::create_dir_all(&cohort).unwrap();
        let mut manifest = String::new();
        for (i, &lesion) in LESIONS.iter().enumerate() {
            let (px, bbox) = chest(i as u32, lesion);
            image::GrayImage::from_raw(W, W, px)
                .unwrap()
                .save(cohort.join(format!("c{i}.png")))
                .unwrap();
            let mut row = serde_json::json!({
                "id": format!("c{i}"), "path": format!("c{i}.png"),
                "prompt": format!("Case {i}: is there a nodule?"),
            });
            if let Some(b) = bbox {
                row["bbox"] = serde_json::json!(b);
            }
            manifest.push_str(&format!("{row}\n"));
        }
        std::fs::write(cohort.join("cases.jsonl"), manifest).unwrap();
        Self { dir }
    }

    fn path(&self) -> &Path {
        self.dir.path()
    }

    /// Runs `clarity probe` with the test model in `mode`, claiming `evidence_bbox`, and
    /// returns probe.json and the `--json` summary.
    fn probe(&self, name: &str, mode: &str, evidence_bbox: &str) -> (Value, Value) {
        let config = format!(
            r#"
seeds = [0]
output = "{name}"

[cohort]
kind = "manifest"
path = "cohort/cases.jsonl"

[adapter]
kind = "command"
program = "{program}"
max_in_flight = 4
timeout_secs = 60
spec = {{ mode = "{mode}" }}

[normalization]
mode = "exact"

[axes]
"gaussian_blur.sigma" = [1]

[probe]
evidence_bbox = {evidence_bbox}
bootstrap_iterations = 0
"#,
            program = program().display()
        );
        let cfg = self.path().join(format!("{name}.toml"));
        std::fs::write(&cfg, config).unwrap();
        let out = self.path().join(name);
        let cache = self.path().join("cache");
        let code = clarity_cli::run(
            clarity_cli::Cli::try_parse_from([
                "clarity".as_ref(),
                "--quiet".as_ref(),
                "probe".as_ref(),
                cfg.as_os_str(),
                "--jobs".as_ref(),
                "2".as_ref(),
                "--cache-dir".as_ref(),
                cache.as_os_str(),
            ])
            .unwrap(),
        );
        assert_eq!(code, 0, "clarity probe {name}");
        let read = |p: PathBuf| -> Value {
            serde_json::from_str(&std::fs::read_to_string(&p).unwrap()).unwrap()
        };
        let doc = read(out.join("probe.json"));
        let summary = doc["cohort"]["lesion"].clone();
        (doc, summary)
    }
}

/// Per fill (then `all_fills`): the flip verdict on the cases with a lesion.
fn verdicts(lesion: &Value) -> Vec<(String, String)> {
    FILLS
        .iter()
        .chain(&["all_fills"])
        .map(|f| {
            let v = &lesion["specificity"][*f]["flip"];
            (
                f.to_string(),
                v["verdict"].as_str().unwrap_or("absent").to_string(),
            )
        })
        .collect()
}

fn assert_all(lesion: &Value, want: &str, what: &str) {
    assert_eq!(lesion["cases"], 6, "{what}: {lesion}");
    for (fill, v) in verdicts(lesion) {
        assert_eq!(
            v, want,
            "{what}, fill {fill}: {}",
            lesion["specificity"][&fill]
        );
    }
}

const MODEL_BOX: &str = "[0.125, 0.25, 0.375, 0.5]";

#[test]
fn a_model_that_reads_one_box_is_specific_there_and_nowhere_else() {
    let b = Bench::new();
    let (doc, lesion) = b.probe("own", "region", MODEL_BOX);
    assert_all(&lesion, "specific", "the model's own box");
    // The baselines see the lesion exactly where there is one.
    for (case, &has) in doc["cases"].as_array().unwrap().iter().zip(&LESIONS) {
        let want = if has { "nodule" } else { "normal" };
        assert_eq!(case["baseline"]["answer"], want, "{}", case["id"]);
    }
    // Evidence flips on every fill, the matched controls never: the mirrored box in the
    // other lung first, then intensity-matched boxes, all on lung-like tissue.
    let all = &lesion["specificity"]["all_fills"]["flip"];
    assert_eq!(
        (all["evidence"].as_f64(), all["control"].as_f64()),
        (Some(1.0), Some(0.0))
    );
    let c0 = &doc["cases"][0];
    assert_eq!(c0["controls"][0]["kind"], "mirror", "{}", c0["controls"]);
    assert!(
        c0["controls"].as_array().unwrap().len() >= 2,
        "{}",
        c0["controls"]
    );
    for c in c0["controls"].as_array().unwrap() {
        assert!(c["distance"].as_f64().unwrap() <= 0.1, "{c}");
    }

    // The same shape in the other lung, and lower in the same lung: not specific.
    for (name, bbox) in [
        ("mirror", "[0.625, 0.25, 0.875, 0.5]"),
        ("lower", "[0.125, 0.55, 0.375, 0.8]"),
    ] {
        let (_, lesion) = b.probe(name, "region", bbox);
        assert_all(&lesion, "not_specific", name);
    }
}

#[test]
fn a_model_that_ignores_the_image_is_not_specific_for_any_fill() {
    let b = Bench::new();
    let (doc, lesion) = b.probe("ignore", "ignore_image", MODEL_BOX);
    assert_all(&lesion, "not_specific", "the image-ignoring model");
    // Its answers come from the prompt: both answers occur, and no mask changed one.
    let answers: std::collections::BTreeSet<&str> = doc["cases"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["baseline"]["answer"].as_str().unwrap())
        .collect();
    assert_eq!(answers.len(), 2, "{answers:?}");
    let all = &lesion["specificity"]["all_fills"]["flip"];
    assert_eq!(
        (all["evidence"].as_f64(), all["control"].as_f64()),
        (Some(0.0), Some(0.0))
    );
    // An interval, not a point, around the zero difference.
    assert!(
        all["lo"].as_f64().unwrap() < 0.0 && all["hi"].as_f64().unwrap() > 0.0,
        "{all}"
    );
}
