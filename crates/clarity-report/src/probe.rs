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

/// What the control is and why it is a fair comparison, in one sentence (per control mode).
pub fn control_sentence(doc: &Value) -> &'static str {
    match doc.pointer("/settings/control").and_then(Value::as_str) {
        Some("least_salient") => {
            "Controls are least-salient placements of the evidence region's shape (not matched to its tissue or intensity, kept for comparison only): a difference from them can reflect where the control was put rather than what the model relies on."
        }
        _ => {
            "Each case's evidence region is compared with matched controls of exactly its shape and area — the region mirrored about the body midline (the same place in the other lung) and translations in the same lung field whose surrounding tissue has the closest intensity distribution — so masking a control removes the same amount of the same kind of tissue, and only the location differs."
        }
    }
}

fn verdict_label(v: &str) -> &str {
    match v {
        "specific" => "specific",
        "not_specific" => "not specific",
        "inconclusive" => "inconclusive",
        _ => "not measured",
    }
}

/// The verdict table: per fill, evidence flip rate, matched-control flip rate, the paired
/// difference with its interval and the verdict; fills that are not specific are named, never
/// averaged away (the pooled row is shown beside them, last).
fn specificity_blocks(doc: &Value) -> Vec<Block> {
    let mut blocks = vec![Block::Note(control_sentence(doc).to_string())];
    let subset = doc
        .pointer("/cohort/specificity_headline")
        .and_then(Value::as_str)
        .unwrap_or("all");
    let Some(c) = doc.pointer(&format!("/cohort/{subset}")) else {
        return blocks;
    };
    let Some(spec) = c.get("specificity").and_then(Value::as_object) else {
        return blocks;
    };
    let mut fills: Vec<String> = doc
        .pointer("/settings/fills")
        .and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .filter_map(Value::as_str)
                .map(String::from)
                .collect()
        })
        .unwrap_or_default();
    fills.retain(|f| spec.contains_key(f));
    let mut rows = Vec::new();
    let mut groups: [(&str, Vec<String>); 4] = [
        ("specific", Vec::new()),
        ("not_specific", Vec::new()),
        ("inconclusive", Vec::new()),
        ("not_measured", Vec::new()),
    ];
    for name in fills.iter().map(String::as_str).chain(["all_fills"]) {
        let Some(v) = spec.get(name).and_then(|x| x.get("flip")) else {
            continue;
        };
        let verdict = v.get("verdict").and_then(Value::as_str).unwrap_or("");
        if name != "all_fills"
            && let Some((_, g)) = groups.iter_mut().find(|(k, _)| *k == verdict)
        {
            g.push(name.to_string());
        }
        let num = |k: &str| v.get(k).and_then(Value::as_f64);
        let diff = match (num("difference"), num("lo"), num("hi")) {
            (Some(d), Some(lo), Some(hi)) => format!("{} [{}, {}]", f3(d), f3(lo), f3(hi)),
            _ => "–".into(),
        };
        rows.push(vec![
            if name == "all_fills" {
                "all fills (pooled per case)".to_string()
            } else {
                name.to_string()
            },
            v.get("n")
                .map(|n| n.to_string())
                .unwrap_or_else(|| "0".into()),
            num("evidence").map(f3).unwrap_or_else(|| "–".into()),
            num("control").map(f3).unwrap_or_else(|| "–".into()),
            diff,
            verdict_label(verdict).to_string(),
        ]);
    }
    if rows.is_empty() {
        return blocks;
    }
    let who = if subset == "lesion" {
        "cases with a known lesion"
    } else {
        "all cases"
    };
    let mut lines = Vec::new();
    for (k, names) in &groups {
        if !names.is_empty() {
            let title = match *k {
                "specific" => "Specific",
                "not_specific" => "Not specific",
                "inconclusive" => "Inconclusive",
                _ => "Not measured",
            };
            lines.push(format!("{title} for: {}", names.join(", ")));
        }
    }
    blocks.push(Block::Headline(lines));
    blocks.push(Block::Table {
        caption: format!(
            "Is the evidence specific? Per fill, over the {who}: the fraction of cases whose answer flips when the evidence region is masked, the same for its matched controls (mean over a case's controls), and the paired difference (evidence minus controls, one value per case) with its 95% adjusted Wald interval"
        ),
        header: [
            "fill",
            "cases",
            "flip rate (evidence)",
            "flip rate (matched controls)",
            "paired difference [95% CI]",
            "verdict",
        ]
        .map(String::from)
        .to_vec(),
        rows,
        numeric: vec![false, true, true, true, true, false],
    });
    if let Some(rule) = doc.pointer("/rules/specificity").and_then(Value::as_str) {
        blocks.push(Block::Note(format!("Verdict rule. {rule}")));
    }
    blocks
}

/// One sentence on a scoped probe's choices (`scope` in probe.json).
pub fn scope_sentence(sc: &Value) -> String {
    let regions = match sc.get("regions").and_then(Value::as_str) {
        Some("grid") => {
            let k = sc.get("grid").map(|g| g.to_string()).unwrap_or_default();
            format!("a {k}×{k} grid")
        }
        _ => "saliency components".to_string(),
    };
    format!(
        "Scoped probe: case {} on its {} image in cell {} ({}), regions from {}, top {}.",
        text(sc, "case"),
        text(sc, "image"),
        sc.get("cell").map(|c| c.to_string()).unwrap_or_default(),
        text(sc, "cell_label"),
        regions,
        sc.get("top_k").map(|c| c.to_string()).unwrap_or_default(),
    )
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
    let mut blocks = Vec::new();
    if let Some(sc) = doc.get("scope") {
        // A scoped probe (started from the console or `clarity probe --case --cell`).
        blocks.push(Block::Para(scope_sentence(sc)));
    }
    blocks.extend(specificity_blocks(&doc));
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
                    c["cases"], c["grounded"], c["not_grounded"], c["inconclusive"]
                ),
            ),
            (
                "Fraction grounded [95% CI]".into(),
                est(&c["fraction_grounded"]),
            ),
            (
                "Flip rate masking evidence / matched controls (all fills)".into(),
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
    blocks.push(Block::Note(format!(
        "Per case: {}",
        doc.pointer("/rules/verdict")
            .and_then(Value::as_str)
            .unwrap_or("")
    )));
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
            "Per case ({} of {}): flip rates over fills (controls: mean over the case's matched controls)",
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
                    "Saliency ({}), evidence solid, controls dashed",
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

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    /// A schema-2 probe.json with two fills: one specific, one not (on the lesion cases).
    fn doc() -> Value {
        let flip = |e: f64, c: f64, d: f64, lo: f64, hi: f64, v: &str| {
            json!({"flip": {"n": 6, "evidence": e, "control": c, "difference": d,
                            "lo": lo, "hi": hi, "verdict": v}})
        };
        json!({
            "schema_version": 2,
            "settings": {"control": "matched", "fills": ["constant", "mean"]},
            "rules": {"verdict": "per-case rule", "specificity": "specificity rule"},
            "cases": [],
            "cohort": {
                "specificity_headline": "lesion",
                "all": {"cases": 8, "grounded": 6, "not_grounded": 2, "inconclusive": 0},
                "lesion": {
                    "cases": 6, "grounded": 6, "not_grounded": 0, "inconclusive": 0,
                    "specificity": {
                        "constant": flip(1.0, 0.0, 1.0, 0.5, 1.0, "specific"),
                        "mean": flip(0.5, 0.5, 0.0, -0.3, 0.3, "not_specific"),
                        "all_fills": flip(0.75, 0.25, 0.5, 0.1, 0.8, "specific"),
                    },
                },
            },
        })
    }

    #[test]
    fn verdict_table_names_each_fill_and_never_averages_a_not_specific_one_away() {
        let blocks = specificity_blocks(&doc());
        let Block::Note(control) = &blocks[0] else {
            panic!("{blocks:?}")
        };
        assert!(
            control.contains("mirrored about the body midline"),
            "{control}"
        );
        assert_eq!(
            blocks[1],
            Block::Headline(vec![
                "Specific for: constant".into(),
                "Not specific for: mean".into()
            ])
        );
        let Block::Table { header, rows, .. } = &blocks[2] else {
            panic!("{blocks:?}")
        };
        assert_eq!(header[4], "paired difference [95% CI]");
        assert_eq!(
            rows,
            &vec![
                vec![
                    "constant",
                    "6",
                    "1.000",
                    "0.000",
                    "1.000 [0.500, 1.000]",
                    "specific"
                ],
                vec![
                    "mean",
                    "6",
                    "0.500",
                    "0.500",
                    "0.000 [-0.300, 0.300]",
                    "not specific"
                ],
                vec![
                    "all fills (pooled per case)",
                    "6",
                    "0.750",
                    "0.250",
                    "0.500 [0.100, 0.800]",
                    "specific"
                ],
            ]
            .into_iter()
            .map(|r| r.into_iter().map(String::from).collect::<Vec<_>>())
            .collect::<Vec<_>>()
        );
        assert_eq!(
            blocks[3],
            Block::Note("Verdict rule. specificity rule".into())
        );
    }

    #[test]
    fn least_salient_controls_are_called_unmatched() {
        let mut d = doc();
        d["settings"]["control"] = json!("least_salient");
        let Block::Note(control) = &specificity_blocks(&d)[0] else {
            panic!()
        };
        assert!(control.contains("not matched"), "{control}");
    }

    #[test]
    fn section_reads_probe_json_from_the_directory() {
        let dir = tempfile::tempdir().unwrap();
        assert!(section(dir.path()).unwrap().is_none());
        std::fs::write(dir.path().join("probe.json"), doc().to_string()).unwrap();
        let s = section(dir.path()).unwrap().unwrap();
        assert_eq!(s.id, "probe");
        // Counts are integers, not "6.000".
        assert!(
            s.blocks.iter().any(|b| matches!(b, Block::KeyValues(kv)
                if kv[0] == ("Cases (cases with a known lesion)".into(),
                             "6: 6 grounded, 0 not grounded, 0 inconclusive".into()))),
            "{:?}",
            s.blocks
        );
        assert!(
            s.blocks
                .iter()
                .any(|b| matches!(b, Block::Table { caption, .. } if caption.starts_with("Is the evidence specific?")))
        );
    }
}
