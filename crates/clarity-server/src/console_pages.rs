//! The console's pages, rendered on the server from the same data as the API. The curves and
//! heatmaps are the report's SVG scenes ([`clarity_report::doc::build`]).

use std::collections::BTreeSet;
use std::fmt::Write as _;

use axum::extract::rejection::{PathRejection, QueryRejection};
use axum::extract::{Path, Query, State};
use clarity_report::doc::{Block, est};
use serde::Deserialize;

use crate::api::{blocking, files_of, sweep_dir};
use crate::console::{PageError, PageResult, diff_html, esc, not_found, num, page, q};
use crate::paths::{discover_configs, discover_sweeps, encode_id};
use crate::sweeps::{RunFilter, summary};
use crate::{ApiError, AppState};

/// A query or path rejection as the console's error page (not axum's plain text).
fn param<T>(
    r: Result<T, impl axum::response::IntoResponse + std::fmt::Display>,
) -> Result<T, PageError> {
    r.map_err(|e| PageError(crate::error::rejection(e)))
}

fn str_of(v: &serde_json::Value) -> String {
    v.as_str().unwrap_or("").to_string()
}

/// `/`: every sweep under the root.
pub async fn index(State(state): State<AppState>) -> PageResult {
    let s = state.clone();
    let rows = blocking(move || {
        Ok(discover_sweeps(s.root())
            .iter()
            .map(|d| summary(&s.0.sweeps, s.root(), d, s.0.jobs.running_in(d)))
            .collect::<Vec<_>>())
    })
    .await?;
    let mut b = String::new();
    let _ = write!(
        b,
        r#"<h1>Sweeps</h1><p class="muted">{} sweep directories under <code>{}</code></p>"#,
        rows.len(),
        esc(&state.root().display().to_string())
    );
    b.push_str(r#"<table id="sweeps"><thead><tr><th>Sweep</th><th>Model</th><th class="num">Cases</th><th class="num">Runs ok / planned</th><th class="num">Failed</th><th>Status</th><th>Headline</th></tr></thead><tbody>"#);
    for r in &rows {
        let id = str_of(&r["id"]);
        let _ = write!(
            b,
            r#"<tr><td><a class="sweep" href="/sweeps/{}">{}</a><div class="muted small">{}</div></td><td>{}</td><td class="num">{}</td><td class="num">{} / {}</td><td class="num">{}</td><td><span class="status {}">{}</span></td><td class="small">{}</td></tr>"#,
            encode_id(&id),
            esc(&str_of(&r["name"])),
            esc(&id),
            esc(&str_of(&r["model"])),
            r["cohort"]["cases"]
                .as_u64()
                .map(|n| n.to_string())
                .unwrap_or_default(),
            r["runs"]["ok"]
                .as_u64()
                .map(|n| n.to_string())
                .unwrap_or_else(|| "–".into()),
            r["runs"]["planned"]
                .as_u64()
                .map(|n| n.to_string())
                .unwrap_or_else(|| "–".into()),
            r["runs"]["failed"]
                .as_u64()
                .map(|n| n.to_string())
                .unwrap_or_default(),
            esc(&str_of(&r["status"]).replace(' ', "-")),
            esc(&str_of(&r["status"])),
            esc(r["headline"][0]
                .as_str()
                .or(r["error"].as_str())
                .unwrap_or("")),
        );
    }
    b.push_str("</tbody></table>");
    if rows.is_empty() {
        b.push_str(r#"<p>No sweep directories yet: <a href="/launch">launch one</a> from a config under the root, or run <code>clarity run CONFIG</code>.</p>"#);
    }
    Ok(page("Sweeps", &b))
}

/// `/sweeps/{id}`: headline, curves, surfaces, cliffs and the ways into the runs.
pub async fn sweep(
    State(state): State<AppState>,
    id: Result<Path<String>, PathRejection>,
) -> PageResult {
    let Path(id) = param(id)?;
    let dir = sweep_dir(&state, &id)?;
    let s = state.clone();
    let body = blocking(move || {
        let running = s.0.jobs.running_in(&dir);
        let sum = summary(&s.0.sweeps, s.root(), &dir, running);
        let enc = encode_id(&id);
        let mut b = String::new();
        let _ = write!(
            b,
            r#"<h1 id="title">{}</h1><p class="muted">{} · {} · <span class="status">{}</span></p>"#,
            esc(&str_of(&sum["name"])),
            esc(&id),
            esc(&str_of(&sum["model"])),
            esc(&str_of(&sum["status"]))
        );
        b.push_str(r#"<div class="headline" id="headline"><ul>"#);
        for h in sum["headline"].as_array().into_iter().flatten() {
            let _ = write!(b, "<li>{}</li>", esc(h.as_str().unwrap_or("")));
        }
        if let Some(e) = sum["error"].as_str() {
            let _ = write!(b, r#"<li class="error">{}</li>"#, esc(e));
        }
        b.push_str("</ul></div>");
        let files = files_of(&dir);
        let _ = write!(
            b,
            r#"<p class="actions"><a class="button" id="all-runs" href="/sweeps/{enc}/runs">Browse runs</a> <a class="button" id="flipped-runs" href="/sweeps/{enc}/runs?flipped=true">Flipped runs</a>"#
        );
        for f in ["report.html", "report.pdf", "bundle.json", "metrics.json"] {
            if files.iter().any(|x| x == f) {
                let _ = write!(
                    b,
                    r#" <a href="/api/v1/sweeps/{enc}/files/{f}" download>{f}</a>"#
                );
            }
        }
        b.push_str("</p>");
        // Jobs on this sweep: resume it (run its config again) and probe it; both need the
        // config under the root that plans it (the server finds it when asked).
        let clarity = sum["kind"] == "clarity";
        let status = str_of(&sum["status"]);
        if clarity && !running && s.0.launcher.is_some() {
            b.push_str(r#"<p class="actions" id="sweep-jobs">"#);
            if status == "incomplete" || status == "not analysed" {
                let _ = write!(
                    b,
                    r#"<button type="button" class="job-start" id="resume" data-kind="resume" data-sweep="{}">Resume</button> "#,
                    esc(&id)
                );
            }
            let _ = write!(
                b,
                r#"<button type="button" class="job-start" id="run-probe" data-kind="probe" data-sweep="{}">Run probe</button> <span class="error" id="sweep-job-error"></span></p>"#,
                esc(&id)
            );
            if let Ok(t) = s.0.sweeps.runs(&dir) {
                b.push_str(&crate::console_probe::probe_form(&id, &t));
            }
        }
        if files.iter().any(|x| x == clarity_probe::PROBE_FILE) {
            let _ = write!(
                b,
                r#"<p><a class="button" id="probe-link" href="/sweeps/{enc}/probe">Counterfactual probe</a> <span class="muted">verdict per fill, overlays and the per-region table</span></p>"#
            );
        }
        // Flips per cell on each axis's line through the baseline: one click to "which cases
        // flipped under blur 2".
        if let Ok(t) = s.0.sweeps.runs(&dir) {
            b.push_str(r#"<section><h2>Flips along each axis</h2><p class="muted">Cells on the line through the baseline (other axes at identity). Click a count to see those runs.</p><table id="flips"><thead><tr><th>Axis</th><th>Value</th><th class="num">Runs</th><th class="num">Flipped</th><th class="num">Failed</th></tr></thead><tbody>"#);
            let base = &t.cells[t.baseline].coords;
            for (ai, axis) in t.axes.iter().enumerate() {
                for (vi, v) in axis.values.iter().enumerate() {
                    if *v == axis.identity {
                        continue;
                    }
                    let mut coords = base.clone();
                    coords[ai] = vi;
                    let Some(cell) = t.cells.iter().find(|c| c.coords == coords) else {
                        continue;
                    };
                    let rows: Vec<_> = t.rows.iter().filter(|r| r.cell == cell.index).collect();
                    let flipped = rows.iter().filter(|r| r.flipped == Some(true)).count();
                    let failed = rows.iter().filter(|r| r.status == "failed").count();
                    let _ = write!(
                        b,
                        r#"<tr><td>{}</td><td>{}</td><td class="num"><a href="/sweeps/{enc}/runs?cell={ci}">{}</a></td><td class="num"><a class="flips" data-axis="{}" data-value="{}" href="/sweeps/{enc}/runs?cell={ci}&amp;flipped=true">{flipped}</a></td><td class="num">{failed}</td></tr>"#,
                        esc(&axis.name),
                        esc(&v.label()),
                        rows.len(),
                        esc(&axis.name),
                        esc(&v.label()),
                        ci = cell.index,
                    );
                }
            }
            b.push_str("</tbody></table></section>");
        }
        if let Ok(d) = s.0.sweeps.report(&dir).as_ref() {
            let sections = clarity_report::doc::build(d);
            for sec in sections
                .iter()
                .filter(|s| s.id == "curves" || s.id == "surfaces")
            {
                let _ = write!(b, r#"<section id="{}"><h2>{}</h2>"#, sec.id, esc(&sec.title));
                for blk in &sec.blocks {
                    match blk {
                        Block::Figure { scene, caption } => {
                            let _ = write!(
                                b,
                                r#"<figure>{}<figcaption>{}</figcaption></figure>"#,
                                scene.to_svg(),
                                esc(caption)
                            );
                        }
                        Block::Note(t) | Block::Para(t) => {
                            let _ = write!(b, r#"<p class="muted">{}</p>"#, esc(t));
                        }
                        _ => {}
                    }
                }
                b.push_str("</section>");
            }
            b.push_str(r#"<section id="cliffs"><h2>Cliffs</h2><table><thead><tr><th>Axis</th><th>Metric</th><th class="num">Threshold</th><th>First below at</th><th>Metric there [95% CI]</th><th>Direction</th></tr></thead><tbody>"#);
            for c in &d.cliffs {
                let Some(axis) = d.axes.get(c.axis) else {
                    continue;
                };
                let at = c
                    .level
                    .and_then(|l| axis.values.get(l))
                    .map(|v| v.label())
                    .unwrap_or_else(|| "never".into());
                let with_ci = c
                    .level
                    .and_then(|l| {
                        d.curves
                            .iter()
                            .find(|cv| cv.axis == c.axis)
                            .and_then(|cv| cv.metrics.get(&c.metric))
                            .and_then(|v| v.get(l).cloned().flatten())
                    })
                    .map(|e| est(&e))
                    .unwrap_or_else(|| num(c.metric_value));
                let _ = write!(
                    b,
                    r#"<tr><td>{}</td><td>{}</td><td class="num">{}</td><td>{}</td><td>{}</td><td>{}</td></tr>"#,
                    esc(&axis.name),
                    esc(c.metric.label()),
                    num(Some(c.threshold)),
                    esc(&at),
                    esc(&with_ci),
                    esc(c.direction.as_deref().unwrap_or(""))
                );
            }
            b.push_str("</tbody></table></section>");
        }
        Ok(b)
    })
    .await?;
    Ok(page("Sweep", &body))
}

fn select(name: &str, options: &[(String, String)], selected: Option<&str>) -> String {
    let mut s = format!(r#"<select name="{name}" id="f-{name}"><option value="">any</option>"#);
    for (v, label) in options {
        let sel = if Some(v.as_str()) == selected {
            " selected"
        } else {
            ""
        };
        let _ = write!(
            s,
            r#"<option value="{}"{sel}>{}</option>"#,
            esc(v),
            esc(label)
        );
    }
    s.push_str("</select>");
    s
}

fn filter_query(f: &RunFilter, offset: usize) -> String {
    let mut parts = Vec::new();
    for (k, v) in [
        ("case", &f.case),
        ("cell", &f.cell),
        ("axis", &f.axis),
        ("answer", &f.answer),
        ("flipped", &f.flipped),
        ("failed", &f.failed),
        ("limit", &f.limit),
    ] {
        if let Some(v) = v.as_deref().filter(|v| !v.is_empty()) {
            parts.push(format!("{k}={}", q(v)));
        }
    }
    parts.push(format!("offset={offset}"));
    parts.join("&amp;")
}

/// `/sweeps/{id}/runs`: the case browser (filter form + table, paginated).
pub async fn runs(
    State(state): State<AppState>,
    id: Result<Path<String>, PathRejection>,
    filter: Result<Query<RunFilter>, QueryRejection>,
) -> PageResult {
    let (Path(id), Query(filter)) = (param(id)?, param(filter)?);
    let dir = sweep_dir(&state, &id)?;
    let s = state.clone();
    let body = blocking(move || {
        let t = s.0.sweeps.runs(&dir)?;
        let pg = filter.apply(&t)?;
        let enc = encode_id(&id);
        let mut b = String::new();
        let name = dir.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
        let _ = write!(
            b,
            r#"<p class="crumbs"><a href="/sweeps/{enc}">{}</a> › runs</p><h1>Runs</h1>"#,
            esc(&name)
        );
        let cases: BTreeSet<&str> = t.rows.iter().map(|r| r.case_id.as_str()).collect();
        let answers: BTreeSet<&str> = t.rows.iter().filter_map(|r| r.normalized.as_deref()).collect();
        let cells: Vec<(String, String)> = t
            .cells
            .iter()
            .map(|c| (c.index.to_string(), format!("{}: {}", c.index, crate::sweeps::cell_label(&t.axes, c))))
            .collect();
        let tf = |v: &str| (v.to_string(), v.to_string());
        let _ = write!(
            b,
            r#"<form method="get" id="filters" class="filters"><label>Case {}</label><label>Cell {}</label><label>Axis values <input type="text" name="axis" placeholder="axis=value,…" value="{}"></label><label>Answer {}</label><label>Flipped {}</label><label>Failed {}</label><button type="submit">Filter</button> <a href="/sweeps/{enc}/runs">clear</a></form>"#,
            select("case", &cases.iter().map(|c| tf(c)).collect::<Vec<_>>(), filter.case.as_deref()),
            select("cell", &cells, filter.cell.as_deref()),
            esc(filter.axis.as_deref().unwrap_or("")),
            select("answer", &answers.iter().map(|c| tf(c)).collect::<Vec<_>>(), filter.answer.as_deref()),
            select("flipped", &[tf("true"), tf("false")], filter.flipped.as_deref()),
            select("failed", &[tf("true"), tf("false")], filter.failed.as_deref()),
        );
        let _ = write!(
            b,
            r#"<p id="total" data-total="{}">{} runs match; showing {}–{}.</p>"#,
            pg.total,
            pg.total,
            if pg.runs.is_empty() { 0 } else { pg.offset + 1 },
            pg.offset + pg.runs.len()
        );
        b.push_str(r#"<table id="runs"><thead><tr><th>Case</th><th>Label</th><th>Cell</th><th class="num">Seed</th><th>Answer</th><th>Baseline answer</th><th>Flipped</th><th class="num">Confidence</th><th></th></tr></thead><tbody>"#);
        for r in &pg.runs {
            let href = format!(
                "/sweeps/{enc}/run?case={}&amp;cell={}&amp;seed={}",
                q(&r.case_id),
                r.cell,
                r.seed
            );
            let flipped = match r.flipped {
                Some(true) => r#"<span class="flip">flipped</span>"#,
                Some(false) => "same",
                None => "–",
            };
            let answer = if r.status == "failed" {
                format!(
                    r#"<span class="error">failed: {}</span>"#,
                    esc(r.error.as_deref().unwrap_or(""))
                )
            } else {
                esc(r.answer.as_deref().unwrap_or(""))
            };
            let _ = write!(
                b,
                r#"<tr class="run{}"><td><a class="open" href="{href}">{}</a></td><td>{}</td><td>{}</td><td class="num">{}</td><td class="answer">{answer}</td><td>{}</td><td>{flipped}</td><td class="num">{}</td><td><a href="{href}">open</a></td></tr>"#,
                if r.flipped == Some(true) { " flipped" } else { "" },
                esc(&r.case_id),
                esc(r.label.as_deref().unwrap_or("")),
                esc(&r.cell_label),
                r.seed,
                esc(r.baseline_answer.as_deref().unwrap_or("–")),
                num(r.confidence),
            );
        }
        b.push_str("</tbody></table><p class=\"pager\">");
        if pg.offset > 0 {
            let _ = write!(
                b,
                r#"<a href="/sweeps/{enc}/runs?{}">← previous</a> "#,
                filter_query(&filter, pg.offset.saturating_sub(pg.limit))
            );
        }
        if pg.offset + pg.runs.len() < pg.total {
            let _ = write!(
                b,
                r#"<a id="next" href="/sweeps/{enc}/runs?{}">next →</a>"#,
                filter_query(&filter, pg.offset + pg.limit)
            );
        }
        b.push_str("</p>");
        Ok(b)
    })
    .await?;
    Ok(page("Runs", &body))
}

#[derive(Debug, Deserialize)]
pub struct RunQuery {
    pub case: String,
    pub cell: usize,
    pub seed: u64,
    /// Display window (sample values) for both images; 16-bit sources default to the
    /// baseline's own range.
    #[serde(default)]
    pub lo: Option<u32>,
    #[serde(default)]
    pub hi: Option<u32>,
}

/// `/sweeps/{id}/run?case&cell&seed`: baseline and perturbed side by side.
pub async fn run(
    State(state): State<AppState>,
    id: Result<Path<String>, PathRejection>,
    rq: Result<Query<RunQuery>, QueryRejection>,
) -> PageResult {
    let (Path(id), Query(rq)) = (param(id)?, param(rq)?);
    let dir = sweep_dir(&state, &id)?;
    let s = state.clone();
    let body = blocking(move || {
        let t = s.0.sweeps.runs(&dir)?;
        let Some(pos) = t.find(&rq.case, rq.cell, rq.seed) else {
            return Err(ApiError::not_found(format!(
                "no run of case `{}` in cell {} with seed {}",
                rq.case, rq.cell, rq.seed
            )));
        };
        let r = &t.rows[pos];
        let base = t.find(&rq.case, t.baseline, rq.seed).map(|i| &t.rows[i]);
        let enc = encode_id(&id);
        let range = crate::sweeps::source_range(&s.0.sweeps, s.root(), &dir, &rq.case);
        let sixteen = range.is_some_and(|(d, _, _)| d == clarity_image::BitDepth::Sixteen);
        let window = match (rq.lo, rq.hi, range) {
            (Some(lo), Some(hi), _) => Some(crate::sweeps::Window::parse(&format!("{lo},{hi}"))?),
            (None, None, Some((_, lo, hi))) if sixteen => Some(crate::sweeps::Window { lo, hi }),
            (None, None, _) => None,
            _ => return Err(ApiError::bad_request("`lo` and `hi`: give both or neither")),
        };
        let win = window.map(|w| format!("&amp;window={},{}", w.lo, w.hi)).unwrap_or_default();
        let img = |which: &str, overlay: bool| {
            format!(
                "/api/v1/sweeps/{enc}/image?case={}&amp;cell={}&amp;seed={}&amp;which={which}{}",
                q(&rq.case),
                rq.cell,
                rq.seed,
                if overlay { "&amp;overlay=saliency".to_string() } else { win.clone() }
            )
        };
        let (jb, jp) = diff_html(
            base.and_then(|b| b.justification.as_deref()).unwrap_or(""),
            r.justification.as_deref().unwrap_or(""),
        );
        let mut b = String::new();
        let name = dir.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
        let _ = write!(
            b,
            r#"<p class="crumbs"><a href="/sweeps/{enc}">{}</a> › <a href="/sweeps/{enc}/runs?case={}">{}</a> › {}</p><h1>{} <span class="muted">· {} · seed {}</span>{}</h1>"#,
            esc(&name),
            q(&rq.case),
            esc(&rq.case),
            esc(&r.cell_label),
            esc(&rq.case),
            esc(&r.cell_label),
            rq.seed,
            match r.flipped {
                Some(true) => r#" <span class="flip" id="flipped">flipped</span>"#,
                _ => "",
            }
        );
        if let Some(l) = &r.label {
            let _ = write!(b, r#"<p>Ground truth: <b>{}</b></p>"#, esc(l));
        }
        if let (true, Some(w), Some((_, lo, hi))) = (sixteen, window, range) {
            let _ = write!(
                b,
                r#"<form method="get" id="window-form" class="filters"><input type="hidden" name="case" value="{}"><input type="hidden" name="cell" value="{}"><input type="hidden" name="seed" value="{}"><label>Window low <input type="number" name="lo" id="win-lo" min="0" max="65535" value="{}"></label><label>Window high <input type="number" name="hi" id="win-hi" min="0" max="65535" value="{}"></label><button type="submit" id="win-apply">Apply</button> <span class="muted small">16-bit source: baseline samples {lo}–{hi} of 0–65535; both images use this window.</span></form>"#,
                esc(&rq.case),
                rq.cell,
                rq.seed,
                w.lo,
                w.hi
            );
        }
        b.push_str(r#"<div class="pair" id="pair">"#);
        let side = |b: &mut String, title: &str, which: &str, row: Option<&crate::sweeps::RunRow>, just: &str| {
            let _ = write!(
                b,
                r#"<div class="side" id="side-{which}"><h2>{}</h2><img class="zoomable" id="img-{which}" src="{}" alt="{which} image">"#,
                esc(title),
                img(which, false)
            );
            if row.is_some_and(|r| r.has_saliency) {
                let _ = write!(
                    b,
                    r#"<img class="overlay zoomable" id="overlay-{which}" src="{}" alt="{which} image with saliency overlay">"#,
                    img(which, true)
                );
            }
            match row {
                Some(r) if r.status == "ok" => {
                    let _ = write!(
                        b,
                        r#"<p class="answer" id="answer-{which}">answer: <b>{}</b></p><p>confidence: {}</p><p class="just" id="just-{which}">{just}</p>"#,
                        esc(r.answer.as_deref().unwrap_or("")),
                        num(r.confidence)
                    );
                }
                Some(r) => {
                    let _ = write!(
                        b,
                        r#"<p class="error">failed: {}</p>"#,
                        esc(r.error.as_deref().unwrap_or(""))
                    );
                }
                None => b.push_str(r#"<p class="muted">no baseline run</p>"#),
            }
            b.push_str("</div>");
        };
        side(&mut b, "Baseline", "baseline", base, &jb);
        side(&mut b, &format!("Perturbed: {}", r.cell_label), "perturbed", Some(r), &jp);
        b.push_str("</div>");
        if r.has_saliency {
            b.push_str(r#"<p class="muted"><label><input type="checkbox" id="toggle-overlay" checked> saliency overlay</label> · click an image to zoom</p>"#);
        } else {
            b.push_str(r#"<p class="muted">Click an image to zoom. Words that differ between the two justifications are highlighted.</p>"#);
        }
        Ok(b)
    })
    .await?;
    Ok(page("Run", &body))
}

/// `/launch`: start a sweep from a config under the root.
pub async fn launch(State(state): State<AppState>) -> PageResult {
    let s = state.clone();
    let configs = blocking(move || Ok(discover_configs(s.root()))).await?;
    let mut b = String::from("<h1>Launch a sweep</h1>");
    if state.0.launcher.is_none() {
        b.push_str(r#"<p class="error">This server cannot start sweeps.</p>"#);
    }
    b.push_str(r#"<p class="muted">Runs the config exactly like <code>clarity run CONFIG</code> (same artifacts, cache, lock and resume). Its cohort and output must be under the served root.</p><form id="launch-form" class="filters"><label>Config <select name="config" id="config">"#);
    for c in &configs {
        let _ = write!(b, r#"<option value="{0}">{0}</option>"#, esc(c));
    }
    b.push_str(r#"</select></label><button type="submit" id="start">Start</button></form><p class="error" id="launch-error"></p><h2>Or paste a config</h2><p class="muted">Saved under the root at the path you give, then run from there. Every path in it (cohort, output, model) must be under the root; only the <code>builtin</code> and <code>onnx</code> adapters are accepted.</p><form id="post-form" class="post-form"><textarea name="toml" id="toml" rows="14" cols="80" spellcheck="false" placeholder="seeds = [0]&#10;output = &quot;out/my-sweep&quot;&#10;[cohort]&#10;kind = &quot;builtin&quot;&#10;…"></textarea><br><label>Save as <input type="text" name="save_as" id="save-as" placeholder="configs/my-sweep.toml"></label> <button type="submit" id="post-start">Save and start</button></form><p class="error" id="post-error"></p><noscript><p>Launching needs JavaScript (it posts JSON to <code>/api/v1/jobs</code>).</p></noscript><h2>Jobs</h2><table id="jobs"><thead><tr><th>Job</th><th>Config</th><th>Sweep</th><th>Status</th><th class="num">Done</th></tr></thead><tbody>"#);
    for j in state.0.jobs.all() {
        let _ = write!(
            b,
            r#"<tr><td><a href="/jobs/{0}">{0}</a></td><td>{7}: {1}</td><td><a href="/sweeps/{2}">{3}</a></td><td>{4}</td><td class="num">{5} / {6}</td></tr>"#,
            j.id,
            esc(&j.config),
            encode_id(&j.sweep),
            esc(&j.sweep),
            j.status,
            j.done,
            j.planned
                .map(|p| p.to_string())
                .unwrap_or_else(|| "?".into()),
            j.kind
        );
    }
    b.push_str("</tbody></table>");
    Ok(page("Launch", &b))
}

/// `/jobs/{job}`: live progress (server-sent events) and cancel.
pub async fn job(
    State(state): State<AppState>,
    id: Result<Path<String>, PathRejection>,
) -> PageResult {
    let Path(id) = param(id)?;
    let Some(job) = id.parse().ok().and_then(|n| state.0.jobs.get(n)) else {
        return Err(not_found(format!("no job `{id}`")));
    };
    let p = job.progress();
    let b = format!(
        r#"<h1>Job {id} <span class="muted">· <span id="kind">{kind}</span> · {config}</span></h1>
<div class="job" id="job" data-job="{id}" data-sweep="{sweep_enc}">
<progress id="bar" max="100" value="{pct}"></progress> <span id="percent">{pct}</span>%
<dl class="kv"><dt>Status</dt><dd id="status">{status}</dd><dt>Phase</dt><dd id="phase">{phase}</dd>
<dt>Runs</dt><dd><span id="done">{done}</span> / <span id="planned">{planned}</span>, <span id="failed">{failed}</span> failed</dd>
<dt>Rate</dt><dd><span id="rate">{rate}</span> runs/s, ETA <span id="eta">–</span> s</dd></dl>
<p><button id="cancel" type="button">Cancel</button> <a id="sweep-link" href="/sweeps/{sweep_enc}">{sweep}</a>{probe_link}</p>
<p class="error" id="job-error"></p></div>"#,
        config = esc(&p.config),
        kind = p.kind,
        probe_link = match p.kind {
            "probe" => format!(
                r#" <a id="probe-result" class="job-result" href="/sweeps/{}/probe"{}>counterfactual console</a>"#,
                encode_id(&p.sweep),
                if p.status == "finished" {
                    ""
                } else {
                    " hidden"
                }
            ),
            "report" => format!(
                r#" <a id="report-result" class="job-result" href="/api/v1/sweeps/{}/files/report.html"{}>report.html</a>"#,
                encode_id(&p.sweep),
                if p.status == "finished" {
                    ""
                } else {
                    " hidden"
                }
            ),
            _ => String::new(),
        },
        sweep_enc = encode_id(&p.sweep),
        sweep = esc(&p.sweep),
        pct = p.percent,
        status = p.status,
        phase = p.phase,
        done = p.done,
        planned = p
            .planned
            .map(|n| n.to_string())
            .unwrap_or_else(|| "?".into()),
        failed = p.failed,
        rate = p.rate,
    );
    Ok(page("Job", &b))
}

#[derive(Debug, Deserialize)]
pub struct CompareForm {
    pub a: Option<String>,
    pub b: Option<String>,
}

/// `/compare?a&b`: two sweeps side by side.
pub async fn compare(
    State(state): State<AppState>,
    f: Result<Query<CompareForm>, QueryRejection>,
) -> PageResult {
    let Query(f) = param(f)?;
    let s = state.clone();
    let ids: Vec<String> = blocking(move || {
        Ok(discover_sweeps(s.root())
            .iter()
            .map(|d| crate::paths::id_of(s.root(), d))
            .collect())
    })
    .await?;
    let opts: Vec<(String, String)> = ids.iter().map(|i| (i.clone(), i.clone())).collect();
    let a = f.a.filter(|x| !x.is_empty());
    let b_ = f.b.filter(|x| !x.is_empty());
    let mut b = format!(
        r#"<h1>Compare two sweeps</h1><form method="get" class="filters" id="compare-form"><label>A {}</label><label>B {}</label><button type="submit">Compare</button></form>"#,
        select("a", &opts, a.as_deref()),
        select("b", &opts, b_.as_deref())
    );
    if let (Some(a), Some(bb)) = (a, b_) {
        let (da, db) = (sweep_dir(&state, &a)?, sweep_dir(&state, &bb)?);
        let (an, bn) = (a.clone(), bb.clone());
        let c = blocking(move || crate::compare::compare(&da, &db, (&an, &bn))).await?;
        let sm = &c.summary;
        let _ = write!(
            b,
            r#"<p id="compare-summary">{} cells compared ({} only in A, {} only in B); {} of {} runs changed answer; ESI intervals disjoint in {} cells.</p>"#,
            sm.cells_compared,
            sm.cells_only_a,
            sm.cells_only_b,
            sm.answers_changed,
            sm.runs_compared,
            sm.esi_separated
        );
        let _ = write!(
            b,
            r#"<p>A: <a href="/sweeps/{}">{}</a> ({}) · B: <a href="/sweeps/{}">{}</a> ({})</p>"#,
            encode_id(&a),
            esc(&a),
            esc(&c.a.model),
            encode_id(&bb),
            esc(&bb),
            esc(&c.b.model)
        );
        let e = |m: &Option<crate::compare::Est>| {
            m.map(|e| match (e.lo, e.hi) {
                (Some(lo), Some(hi)) => format!(
                    "{} [{}, {}]",
                    num(Some(e.value)),
                    num(Some(lo)),
                    num(Some(hi))
                ),
                _ => num(Some(e.value)),
            })
            .unwrap_or_else(|| "–".into())
        };
        b.push_str(r#"<table id="compare-cells"><thead><tr><th>Cell</th><th>ESI A</th><th>ESI B</th><th class="num">ΔESI</th><th>Accuracy A</th><th>Accuracy B</th><th class="num">ΔAccuracy</th></tr></thead><tbody>"#);
        for cell in &c.cells {
            let _ = write!(
                b,
                r#"<tr{}><td>{}</td><td>{}</td><td>{}</td><td class="num">{}</td><td>{}</td><td>{}</td><td class="num">{}</td></tr>"#,
                if cell.esi.separated {
                    r#" class="separated""#
                } else {
                    ""
                },
                esc(&cell.cell),
                e(&cell.esi.a),
                e(&cell.esi.b),
                num(cell.esi.delta),
                e(&cell.accuracy.a),
                e(&cell.accuracy.b),
                num(cell.accuracy.delta)
            );
        }
        b.push_str("</tbody></table><h2>Runs whose answer changed</h2>");
        b.push_str(r#"<table id="compare-changed"><thead><tr><th>Case</th><th>Cell</th><th class="num">Seed</th><th>Answer A</th><th>Answer B</th></tr></thead><tbody>"#);
        for ch in c.changed.iter().take(500) {
            let _ = write!(
                b,
                r#"<tr><td>{}</td><td>{}</td><td class="num">{}</td><td>{}</td><td>{}</td></tr>"#,
                esc(&ch.case_id),
                esc(&ch.cell),
                ch.seed,
                esc(&ch.answer_a),
                esc(&ch.answer_b)
            );
        }
        b.push_str("</tbody></table>");
        if c.changed.len() > 500 {
            let _ = write!(
                b,
                r#"<p class="muted">First 500 of {}: the full list is in <code>GET /api/v1/compare</code> or <code>clarity compare</code>.</p>"#,
                c.changed.len()
            );
        }
    }
    Ok(page("Compare", &b))
}
