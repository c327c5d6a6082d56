//! The "Counterfactual probe" section, from `probe.json` and `overlays/*.png` when the sweep
//! directory has them (written by `clarity-probe`; shape in docs/probe.md).

use std::path::Path;

use serde_json::Value;

use crate::ReportError;
use crate::doc::{Block, Section, Side};
use crate::model::Thumb;
use crate::plots::f3;

/// Cases shown with their overlay.
pub const MAX_OVERLAYS: usize = 6;
/// Rows of the per-case table.
pub const MAX_ROWS: usize = 500;

fn est(v: &Value) -> String {
    let Some(x) = v.get("value").and_then(Value::as_f64) else {
        return "–".into();
    };
    match (
        v.get("lo").and_then(Value::as_f64),
        v.get("hi").and_then(Value::as_f64),
    ) {
        (Some(lo), Some(hi)) => format!("{} [{}, {}]", f3(x), f3(lo), f3(hi)),
        _ => f3(x),
    }
}

fn text(v: &Value, k: &str) -> String {
    match v.get(k) {
        Some(Value::String(s)) => s.clone(),
        Some(Value::Number(n)) => n.as_f64().map(f3).unwrap_or_default(),
        _ => "–".into(),
    }
}

/// PNG width and height from the IHDR chunk.
fn png_size(b: &[u8]) -> Option<(u32, u32)> {
    if b.len() < 24 || &b[1..4] != b"PNG" {
        return None;
    }
    let w = u32::from_be_bytes(b[16..20].try_into().ok()?);
    let h = u32::from_be_bytes(b[20..24].try_into().ok()?);
    Some((w, h))
}

/// The probe section, or `None` when `dir` has no `probe.json`.
pub fn section(dir: &Path) -> Result<Option<Section>, ReportError> {
    let path = dir.join("probe.json");
    if !path.exists() {
        return Ok(None);
    }
    let bytes = fs_err::read(&path)?;
    let doc: Value = serde_json::from_slice(&bytes).map_err(|source| ReportError::Json {
        path: path.clone(),
        source,
    })?;
    let cases = doc
        .get("cases")
        .and_then(Value::as_array)
        .ok_or_else(|| ReportError::Shape {
            path: path.clone(),
            key: "cases".into(),
            expected: "an array".into(),
        })?;
    let mut blocks = vec![Block::Note(format!(
        "Each evidence region of the saliency map, and a control region of the same shape placed in low-saliency tissue, is masked with each fill and the model re-run. {}",
        doc.pointer("/rules/verdict")
            .and_then(Value::as_str)
            .unwrap_or("")
    ))];
    for (key, title) in [
        ("all", "all cases"),
        ("lesion", "cases with a known lesion"),
    ] {
        let Some(c) = doc.pointer(&format!("/cohort/{key}")) else {
            continue;
        };
        if c.get("cases").and_then(Value::as_u64).unwrap_or(0) == 0 {
            continue;
        }
        let mut kv = vec![
            (
                format!("Cases ({title})"),
                format!(
                    "{}: {} grounded, {} not grounded, {} inconclusive",
                    text(c, "cases"),
                    c["grounded"],
                    c["not_grounded"],
                    c["inconclusive"]
                ),
            ),
            (
                "Fraction grounded [95% CI]".into(),
                est(&c["fraction_grounded"]),
            ),
            (
                "Flip rate masking evidence / control".into(),
                format!(
                    "{} / {}",
                    est(&c["evidence_flip_rate"]),
                    est(&c["control_flip_rate"])
                ),
            ),
        ];
        if c.get("pointing_game").is_some() {
            kv.push((
                "Pointing game / top-region IoU".into(),
                format!(
                    "{} / {}",
                    est(&c["pointing_game"]),
                    est(&c["top_region_iou"])
                ),
            ));
        }
        blocks.push(Block::KeyValues(kv));
    }
    let rows: Vec<Vec<String>> = cases
        .iter()
        .take(MAX_ROWS)
        .map(|c| {
            vec![
                text(c, "id"),
                c.pointer("/baseline/answer")
                    .and_then(Value::as_str)
                    .unwrap_or("–")
                    .to_string(),
                c.pointer("/saliency/source")
                    .and_then(Value::as_str)
                    .unwrap_or("–")
                    .to_string(),
                text(c, "evidence_region"),
                text(c, "evidence_flip_rate"),
                text(c, "control_flip_rate"),
                c.pointer("/localisation/top_region_iou")
                    .and_then(Value::as_f64)
                    .map(f3)
                    .unwrap_or_else(|| "–".into()),
                text(c, "verdict").replace('_', " "),
            ]
        })
        .collect();
    blocks.push(Block::Table {
        caption: format!(
            "Per case ({} of {}): flip rates over fills",
            rows.len(),
            cases.len()
        ),
        header: [
            "case",
            "answer",
            "saliency",
            "evidence",
            "flip (evidence)",
            "flip (control)",
            "IoU",
            "verdict",
        ]
        .map(String::from)
        .to_vec(),
        rows,
        numeric: vec![false, false, false, false, true, true, true, false],
    });
    for c in cases
        .iter()
        .filter(|c| c.pointer("/overlay/file").is_some())
        .take(MAX_OVERLAYS)
    {
        let file = c
            .pointer("/overlay/file")
            .and_then(Value::as_str)
            .unwrap_or("");
        let thumb = std::fs::read(dir.join(file)).ok().and_then(|b| {
            let (width, height) = png_size(&b)?;
            Some(Thumb {
                mime: "image/png",
                bytes: b,
                width,
                height,
            })
        });
        let ev = text(c, "evidence_region");
        let regions = c.get("regions").and_then(Value::as_array);
        let first_run = regions
            .and_then(|rs| {
                rs.iter()
                    .find(|r| r.get("id").and_then(Value::as_str) == Some(&ev))
            })
            .and_then(|r| r.pointer("/runs/0"));
        let base_conf = c.pointer("/baseline/confidence").and_then(Value::as_f64);
        blocks.push(Block::Case {
            title: text(c, "id"),
            before: Box::new(Side {
                heading: format!(
                    "Saliency ({}), evidence solid, control dashed",
                    c.pointer("/saliency/source")
                        .and_then(Value::as_str)
                        .unwrap_or("–")
                ),
                answer: c
                    .pointer("/baseline/answer")
                    .and_then(Value::as_str)
                    .unwrap_or("–")
                    .to_string(),
                justification: String::new(),
                confidence: base_conf,
                has_saliency: thumb.is_some(),
                thumb,
            }),
            after: Box::new(Side {
                heading: format!(
                    "{ev} masked ({})",
                    first_run
                        .and_then(|r| r.get("fill"))
                        .and_then(Value::as_str)
                        .unwrap_or("–")
                ),
                answer: first_run
                    .and_then(|r| r.get("answer"))
                    .and_then(Value::as_str)
                    .unwrap_or("–")
                    .to_string(),
                justification: format!(
                    "verdict: {} ({})",
                    text(c, "verdict").replace('_', " "),
                    text(c, "reason")
                ),
                confidence: base_conf
                    .zip(
                        first_run
                            .and_then(|r| r.get("delta_confidence"))
                            .and_then(Value::as_f64),
                    )
                    .map(|(b, d)| b + d),
                thumb: None,
                has_saliency: false,
            }),
        });
    }
    Ok(Some(Section {
        id: "probe",
        title: "Counterfactual probe".into(),
        blocks,
    }))
}
