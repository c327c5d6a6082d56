//! `/sweeps/{id}/probe`: the counterfactual console over a sweep's `probe.json` (schema in
//! docs/probe.md). The verdict per fill (evidence vs matched-control flip rates, their paired
//! difference with its interval), a case picker, the case's overlay (the probe's own PNG:
//! heatmap with its outlines baked in) under an SVG layer of region and control outlines drawn
//! from the bboxes, with toggles and an opacity slider, and the per-region table.

use std::fmt::Write as _;

use axum::extract::rejection::{PathRejection, QueryRejection};
use axum::extract::{Path, Query, State};
use serde::Deserialize;
use serde_json::Value;

use crate::api::{blocking, sweep_dir};
use crate::console::{PageError, PageResult, esc, num, page, q};
use crate::paths::encode_id;
use crate::{ApiError, AppState};

#[derive(Debug, Deserialize)]
pub struct ProbeQuery {
    /// The case to show (default: the first).
    pub case: Option<String>,
}

fn f(v: &Value) -> Option<f64> {
    v.as_f64()
}

fn s(v: &Value) -> &str {
    v.as_str().unwrap_or("")
}

/// A verdict as a badge (the class is the verdict with `-` for spaces).
fn badge(v: &str) -> String {
    if v.is_empty() {
        return "–".into();
    }
    format!(
        r#"<span class="verdict {}">{}</span>"#,
        esc(&v.replace([' ', '_'], "-")),
        esc(&v.replace('_', " "))
    )
}

/// The verdict table of one group (`cohort.all` or `cohort.lesion`): one row per fill, then
/// the pooled `all_fills` row.
fn verdict_table(b: &mut String, group: &Value, fills: &[String]) {
    b.push_str(r#"<table id="probe-verdicts"><thead><tr><th>Fill</th><th class="num">Cases</th><th class="num">Flip rate, evidence</th><th class="num">Flip rate, matched controls</th><th>Paired difference [95% CI]</th><th>Verdict</th></tr></thead><tbody>"#);
    let spec = &group["specificity"];
    let rows = fills
        .iter()
        .map(|f| (f.as_str(), f.as_str()))
        .chain([("all_fills", "all fills (pooled per case)")]);
    for (key, label) in rows {
        let p = &spec[key]["flip"];
        if p.is_null() {
            continue;
        }
        let diff = match (f(&p["difference"]), f(&p["lo"]), f(&p["hi"])) {
            (Some(d), Some(lo), Some(hi)) => {
                format!("{} [{}, {}]", num(Some(d)), num(Some(lo)), num(Some(hi)))
            }
            (d, _, _) => num(d),
        };
        let _ = write!(
            b,
            r#"<tr data-fill="{}"><td>{}</td><td class="num">{}</td><td class="num">{}</td><td class="num">{}</td><td>{}</td><td>{}</td></tr>"#,
            esc(key),
            esc(label),
            p["n"].as_u64().unwrap_or(0),
            num(f(&p["evidence"])),
            num(f(&p["control"])),
            esc(&diff),
            badge(s(&p["verdict"]))
        );
    }
    b.push_str("</tbody></table>");
}

/// Mean of the values some runs have.
fn mean(xs: impl Iterator<Item = f64>) -> Option<f64> {
    let (n, sum) = xs.fold((0usize, 0.0), |(n, s), x| (n + 1, s + x));
    (n > 0).then(|| sum / n as f64)
}

/// The role of a region in its case: top evidence, evidence, a control (of which, how
/// placed), or another probed region.
fn role(case: &Value, r: &Value) -> String {
    let id = s(&r["id"]);
    if let Some(of) = r["control_of"].as_str() {
        let how = case["controls"]
            .as_array()
            .into_iter()
            .flatten()
            .find(|c| s(&c["id"]) == id)
            .map(|c| s(&c["kind"]).to_string())
            .unwrap_or_default();
        return if how.is_empty() {
            format!("control of {of}")
        } else {
            format!("control of {of} ({how})")
        };
    }
    if case["evidence_region"].as_str() == Some(id) {
        "evidence (top)".into()
    } else if r["evidence"].as_bool() == Some(true) {
        "evidence".into()
    } else {
        "probed".into()
    }
}

/// The outline layer: each region's bbox in image pixels (`viewBox` = the image), evidence
/// solid, controls dashed; the CSS classes let the page's toggles hide either kind.
fn outlines_svg(case: &Value, width: u32, height: u32) -> String {
    // Strokes keep their screen width whatever the image's size (`vector-effect`).
    // Labels a twentieth of the longer side high, whatever the image's size.
    let font = (width.max(height) / 20).max(1);
    let mut svg = format!(
        r#"<svg id="probe-outlines" class="probe-layer" viewBox="0 0 {width} {height}" preserveAspectRatio="none" font-size="{font}" xmlns="http://www.w3.org/2000/svg" aria-label="region outlines">"#
    );
    let top = case["evidence_region"].as_str();
    for r in case["regions"].as_array().into_iter().flatten() {
        let Some(bb) = r["bbox"].as_array() else {
            continue;
        };
        let v: Vec<u64> = bb.iter().filter_map(Value::as_u64).collect();
        let [x0, y0, x1, y1] = v[..] else {
            continue;
        };
        let control = r["control_of"].is_string();
        let evidence = r["evidence"].as_bool() == Some(true);
        if !control && !evidence {
            continue;
        }
        let id = s(&r["id"]);
        let class = if control {
            "outline control"
        } else if top == Some(id) {
            "outline evidence top"
        } else {
            "outline evidence"
        };
        let _ = write!(
            svg,
            r#"<g class="{class}" data-region="{}"><rect x="{x0}" y="{y0}" width="{}" height="{}" vector-effect="non-scaling-stroke"/><text x="{x0}" y="{y0}" dy="-0.3em">{}</text></g>"#,
            esc(id),
            x1.saturating_sub(x0).max(1),
            y1.saturating_sub(y0).max(1),
            esc(id)
        );
    }
    svg.push_str("</svg>");
    svg
}

/// What masking a region did to the answer: the answers it flipped to (with the fills), or
/// `unchanged`.
fn delta_answer(runs: &[&Value]) -> String {
    let mut to: Vec<(String, Vec<&str>)> = Vec::new();
    for x in runs.iter().filter(|x| x["flipped"].as_bool() == Some(true)) {
        let a = s(&x["answer"]).to_string();
        match to.iter_mut().find(|(b, _)| *b == a) {
            Some((_, fills)) => fills.push(s(&x["fill"])),
            None => to.push((a, vec![s(&x["fill"])])),
        }
    }
    if to.is_empty() {
        return "unchanged".into();
    }
    to.iter()
        .map(|(a, fills)| format!("→ {a} ({})", fills.join(", ")))
        .collect::<Vec<_>>()
        .join("; ")
}

/// A region's evidence-vs-control verdict: the per-case rule (`rules.verdict`) applied to this
/// region's flip rate against the case's control flip rate; controls are the comparison.
fn region_verdict(doc: &Value, case: &Value, r: &Value) -> (String, String) {
    if r["control_of"].is_string() {
        return ("control".into(), "a matched control: the comparison".into());
    }
    let ff = doc["settings"]["flip_fraction"].as_f64().unwrap_or(0.5);
    let margin = doc["settings"]["margin"].as_f64().unwrap_or(0.25);
    let (v, reason) = clarity_probe::verdict::decide(
        f(&r["flip_rate"]),
        f(&case["control_flip_rate"]),
        ff,
        margin,
    );
    let name = serde_json::to_value(v)
        .ok()
        .and_then(|v| v.as_str().map(str::to_string))
        .unwrap_or_default();
    (name, reason)
}

/// The per-region table of one case: Δanswer, Δconfidence, Δdrift and the evidence-vs-control
/// verdict per region.
fn region_table(b: &mut String, doc: &Value, case: &Value, fills: &[String]) {
    b.push_str(r#"<table id="probe-regions"><thead><tr><th>Region</th><th>Role</th><th>Bbox</th><th class="num">Area</th><th>Δanswer</th><th class="num">Flip rate</th><th class="num">Δconfidence</th><th class="num">Δprobability</th><th class="num">Δdrift</th><th>Evidence vs control</th></tr></thead><tbody>"#);
    for r in case["regions"].as_array().into_iter().flatten() {
        let runs: Vec<&Value> = r["runs"].as_array().into_iter().flatten().collect();
        let drift = mean(runs.iter().filter_map(|x| f(&x["drift"])));
        let failed = runs.iter().filter(|x| x["error"].is_string()).count();
        let bbox = r["bbox"]
            .as_array()
            .map(|a| {
                a.iter()
                    .map(|x| x.to_string())
                    .collect::<Vec<_>>()
                    .join(", ")
            })
            .unwrap_or_default();
        let class = if r["control_of"].is_string() {
            "control"
        } else if r["evidence"].as_bool() == Some(true) {
            "evidence"
        } else {
            "probed"
        };
        let mut answer = delta_answer(&runs);
        if failed > 0 {
            let _ = write!(answer, " ({failed} of {} failed)", fills.len());
        }
        let (verdict, reason) = region_verdict(doc, case, r);
        let _ = write!(
            b,
            r#"<tr class="region {class}" data-region="{id}"><td>{id}</td><td>{}</td><td class="small">[{}]</td><td class="num">{}</td><td class="small delta-answer">{}</td><td class="num">{}</td><td class="num">{}</td><td class="num">{}</td><td class="num">{}</td><td class="region-verdict" title="{}">{}</td></tr>"#,
            esc(&role(case, r)),
            esc(&bbox),
            r["area"].as_u64().unwrap_or(0),
            esc(&answer),
            num(f(&r["flip_rate"])),
            num(f(&r["mean_delta_confidence"])),
            num(f(&r["mean_delta_probability"])),
            num(drift),
            esc(&reason),
            badge(&verdict),
            id = esc(s(&r["id"])),
        );
    }
    b.push_str("</tbody></table>");
}

/// Options of the probe form's case select: every case of the sweep, in order, up to this many.
const FORM_CASES: usize = 2000;

/// The sweep page's form for a scoped probe: a case and a cell of the sweep, regions from the
/// saliency components or a k×k grid, top-k; it posts `{kind: "probe", sweep, case, cell,
/// regions, grid, top_k}` and opens the job's live progress.
pub fn probe_form(id: &str, t: &crate::sweeps::RunTable) -> String {
    let mut b = String::new();
    let _ = write!(
        b,
        r#"<section id="probe-scope"><h2>Probe one case</h2><p class="muted">Mask regions of one case's image in one cell and run it again: does the answer follow the evidence? The result replaces the sweep's probe.json and opens in the counterfactual console.</p><form id="probe-form" data-sweep="{}"><label>Case <select id="probe-case">"#,
        esc(id)
    );
    let mut seen = std::collections::BTreeSet::new();
    let mut n = 0usize;
    for r in &t.rows {
        if n >= FORM_CASES {
            break;
        }
        if seen.insert(r.case_id.as_str()) {
            n += 1;
            let _ = write!(b, r#"<option value="{0}">{0}</option>"#, esc(&r.case_id));
        }
    }
    b.push_str(r#"</select></label> <label>Cell <select id="probe-cell">"#);
    for c in &t.cells {
        let _ = write!(
            b,
            r#"<option value="{}"{}>{} · {}</option>"#,
            c.index,
            if c.index == t.baseline {
                " selected"
            } else {
                ""
            },
            c.index,
            esc(&crate::sweeps::cell_label(&t.axes, c))
        );
    }
    b.push_str(r#"</select></label> <fieldset class="inline"><legend>Regions</legend><label><input type="radio" name="probe-regions" value="saliency" checked> saliency components</label> <label><input type="radio" name="probe-regions" value="grid"> k×k grid</label></fieldset> <label>Grid k <input type="number" id="probe-grid" min="1" max="16" value="4"></label> <label>Top-k <input type="number" id="probe-topk" min="1" max="16" value="3"></label> <button type="submit" id="probe-launch">Run probe</button> <span class="error" id="probe-form-error"></span></form></section>"#);
    b
}

/// `/sweeps/{id}/probe?case=`: the counterfactual console.
pub async fn probe(
    State(state): State<AppState>,
    id: Result<Path<String>, PathRejection>,
    pq: Result<Query<ProbeQuery>, QueryRejection>,
) -> PageResult {
    let Path(id) = id.map_err(|e| PageError(crate::error::rejection(e)))?;
    let Query(pq) = pq.map_err(|e| PageError(crate::error::rejection(e)))?;
    let dir = sweep_dir(&state, &id)?;
    let st = state.clone();
    let body = blocking(move || {
        let path = dir.join(clarity_probe::PROBE_FILE);
        let text = std::fs::read_to_string(&path).map_err(|_| {
            ApiError::not_found(format!(
                "`{id}` has no probe.json: run the probe from the sweep's page (or `clarity probe CONFIG`)"
            ))
        })?;
        let doc: Value = serde_json::from_str(&text)
            .map_err(|e| ApiError::internal(format!("probe.json: invalid JSON: {e}")))?;
        let enc = encode_id(&id);
        let fills: Vec<String> = doc["settings"]["fills"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|x| x.as_str().map(str::to_string))
            .collect();
        let cases: Vec<&Value> = doc["cases"].as_array().into_iter().flatten().collect();
        let name = dir
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        let mut b = String::new();
        let _ = write!(
            b,
            r#"<p class="crumbs"><a href="/sweeps/{enc}">{}</a> › counterfactual probe</p><h1>Counterfactual probe</h1><p class="muted">Does the model rely on the evidence it claims? Each region is masked with each fill and run again; the evidence region's flips are compared with those of matched controls (same shape, same surrounding tissue). Rules and schema: docs/probe.md; the data: <a href="/api/v1/sweeps/{enc}/files/probe.json">probe.json</a>.</p>"#,
            esc(&name)
        );
        // The verdicts, on the group the probe headlines (cases with a known lesion when
        // there are any).
        let headline = doc["cohort"]["specificity_headline"]
            .as_str()
            .unwrap_or("all")
            .to_string();
        let group = &doc["cohort"][headline.as_str()];
        let _ = write!(
            b,
            r#"<h2>Verdict per fill</h2><p class="muted">On {} ({} cases): the paired difference evidence − controls over cases, with its adjusted 95% interval; specific when the interval is above 0.</p>"#,
            if headline == "lesion" {
                "the cases with a known lesion"
            } else {
                "all cases"
            },
            group["cases"].as_u64().unwrap_or(0)
        );
        verdict_table(&mut b, group, &fills);
        if let Some(sc) = doc.get("scope") {
            let _ = write!(
                b,
                r#"<p id="probe-scope-line">{}</p>"#,
                esc(&clarity_report::probe::scope_sentence(sc))
            );
        }
        if st.0.launcher.is_some() {
            let _ = write!(
                b,
                r#"<p class="actions"><button type="button" class="job-start" id="add-to-report" data-kind="report" data-sweep="{}">Add to report</button> <span class="muted">renders report.html and report.pdf again, with this probe's section</span> <span class="error" id="sweep-job-error"></span></p>"#,
                esc(&id)
            );
        }

        // The case picker.
        let selected = match pq.case.as_deref().filter(|c| !c.is_empty()) {
            Some(c) => cases
                .iter()
                .copied()
                .find(|x| s(&x["id"]) == c)
                .ok_or_else(|| ApiError::not_found(format!("`case`: no case `{c}` in probe.json")))?,
            None => match cases.first() {
                Some(c) => c,
                None => {
                    b.push_str(r#"<p class="muted">probe.json has no cases.</p>"#);
                    return Ok(b);
                }
            },
        };
        let case_id = s(&selected["id"]).to_string();
        b.push_str(r#"<h2>Cases</h2><table id="probe-cases"><thead><tr><th>Case</th><th>Label</th><th>Baseline answer</th><th class="num">Evidence flip rate</th><th class="num">Control flip rate</th><th>Verdict</th></tr></thead><tbody>"#);
        for c in &cases {
            let cid = s(&c["id"]);
            let _ = write!(
                b,
                r#"<tr class="case{}" data-case="{}"><td><a class="pick" href="/sweeps/{enc}/probe?case={}">{}</a></td><td>{}</td><td>{}</td><td class="num">{}</td><td class="num">{}</td><td>{}</td></tr>"#,
                if cid == case_id { " selected" } else { "" },
                esc(cid),
                q(cid),
                esc(cid),
                esc(s(&c["label"])),
                esc(s(&c["baseline"]["answer"])),
                num(f(&c["evidence_flip_rate"])),
                num(f(&c["control_flip_rate"])),
                badge(s(&c["verdict"]))
            );
        }
        b.push_str("</tbody></table>");

        // The selected case: its overlay under the outline layer, then its regions.
        let c = selected;
        let _ = write!(
            b,
            r#"<h2 id="case-title">{}</h2><p>Verdict: {} <span class="muted" id="case-reason">{}</span></p>"#,
            esc(&case_id),
            badge(s(&c["verdict"])),
            esc(s(&c["reason"]))
        );
        // The plain image (under the heatmap) needs the sweep's config and a baseline run;
        // the outline layer needs the image's size, from the same config.
        let prepared = st.0.sweeps.prepared(st.root(), &dir);
        let size = prepared.as_ref().as_ref().ok().and_then(|p| {
            p.cohort
                .iter()
                .find(|x| x.id == case_id)
                .map(|x| (x.image.width(), x.image.height()))
        });
        // A scoped probe ran on the case's image in its cell: that image is under the heatmap.
        let scoped_cell = doc["scope"]["cell"].as_u64().map(|c| c as usize);
        let plain = st.0.sweeps.runs(&dir).ok().and_then(|t| {
            let cell = scoped_cell.unwrap_or(t.baseline);
            let r = t
                .rows
                .iter()
                .find(|r| r.case_id == case_id && r.cell == cell)?;
            Some(format!(
                "/api/v1/sweeps/{enc}/image?case={}&amp;cell={}&amp;seed={}&amp;which={}",
                q(&case_id),
                r.cell,
                r.seed,
                if scoped_cell.is_some() { "perturbed" } else { "baseline" }
            ))
        });
        let overlay = c["overlay"]["file"].as_str();
        b.push_str(r#"<div class="probe-view"><div class="probe-stack" id="probe-stack">"#);
        if let Some(src) = &plain {
            let _ = write!(
                b,
                r#"<img id="probe-plain" class="probe-base" src="{src}" alt="the case's image">"#
            );
        }
        match overlay {
            Some(file) => {
                let _ = write!(
                    b,
                    r#"<img id="probe-heatmap" class="{}" src="/api/v1/sweeps/{enc}/files/{}" alt="saliency overlay with the probe's outlines">"#,
                    if plain.is_some() {
                        "probe-layer"
                    } else {
                        "probe-base"
                    },
                    q(file)
                );
            }
            None => b.push_str(r#"<p class="muted">No overlay for this case (no saliency map).</p>"#),
        }
        if let Some((w, h)) = size {
            b.push_str(&outlines_svg(c, w, h));
        }
        b.push_str(r#"</div><div class="probe-controls" id="probe-controls"><p><b>Layers</b></p>"#);
        if overlay.is_some() {
            b.push_str(r#"<label><input type="checkbox" id="t-heatmap" checked> heatmap</label><label>opacity <input type="range" id="t-opacity" min="0" max="100" value="100"> <span id="opacity-value">100</span>%</label>"#);
        }
        if size.is_some() {
            b.push_str(r#"<label><input type="checkbox" id="t-outlines" checked> region outlines</label><label><input type="checkbox" id="t-controls" checked> control regions</label><p class="muted small">Outlines are the regions' bounding boxes: evidence solid, controls dashed. The heatmap image carries the probe's own outlines (white) too.</p>"#);
        } else {
            b.push_str(r#"<p class="muted small">No config under the root plans this sweep, so the image size is unknown: the outlines shown are those drawn into the heatmap image.</p>"#);
        }
        b.push_str("</div></div>");
        let _ = write!(
            b,
            r#"<p>Baseline answer: <b id="baseline-answer">{}</b>, confidence {}. Flip rate over the fills: evidence {}, controls {} (mean over the controls).</p>"#,
            esc(s(&c["baseline"]["answer"])),
            num(f(&c["baseline"]["confidence"])),
            num(f(&c["evidence_flip_rate"])),
            num(f(&c["control_flip_rate"]))
        );
        b.push_str("<h3>Regions</h3>");
        region_table(&mut b, &doc, c, &fills);
        Ok(b)
    })
    .await?;
    Ok(page("Counterfactual probe", &body))
}
