//! `report.html`: one self-contained file (inline CSS, inline SVG, images as `data:` URLs, no
//! scripts, no network). Written as well-formed XHTML-compatible HTML so it parses as XML too.

use std::fmt::Write as _;

use base64::Engine as _;

use crate::doc::{Block, Section, Side};
use crate::model::ReportData;
use crate::plots::f3;

/// Escapes text for HTML/XML content and attributes.
pub fn esc(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            // Control characters are not allowed in XML; show them as U+FFFD.
            c if (c as u32) < 0x20 && c != '\n' && c != '\t' => out.push('\u{fffd}'),
            c => out.push(c),
        }
    }
    out
}

const CSS: &str = r#"
:root{--fg:#1a1a1a;--muted:#555;--line:#d0d0d0;--accent:#0072B2}
*{box-sizing:border-box}
body{margin:0;font-family:"DejaVu Sans",Verdana,Arial,sans-serif;color:var(--fg);background:#fff;line-height:1.45;font-size:15px}
header{padding:18px 28px;border-bottom:3px solid var(--accent)}
header h1{margin:0;font-size:24px}
header p{margin:4px 0 0;color:var(--muted)}
nav{padding:8px 28px;border-bottom:1px solid var(--line);font-size:14px}
nav a{margin-right:14px;color:var(--accent);text-decoration:none}
main{padding:0 28px 40px;max-width:1200px}
section{margin-top:26px}
h2{font-size:20px;border-bottom:1px solid var(--line);padding-bottom:4px}
.headline{background:#f3f8fc;border-left:5px solid var(--accent);padding:10px 16px;margin:10px 0 16px}
.headline li{margin:4px 0;font-weight:600}
.note{color:var(--muted);font-size:14px}
dl.kv{display:grid;grid-template-columns:max-content 1fr;gap:4px 18px;margin:8px 0}
dl.kv dt{font-weight:600}
dl.kv dd{margin:0;overflow-wrap:anywhere}
figure{margin:16px 0}
figcaption{color:var(--muted);font-size:13px}
svg{max-width:100%;height:auto}
table{border-collapse:collapse;margin:8px 0 18px;font-size:13px;min-width:30em}
caption{text-align:left;color:var(--muted);padding-bottom:4px}
th,td{border-bottom:1px solid var(--line);padding:3px 10px;text-align:left;vertical-align:top}
th{background:#f4f4f4}
th.num{text-align:right}
td.num{text-align:right;font-variant-numeric:tabular-nums;white-space:nowrap}
.case{border:1px solid var(--line);border-radius:6px;padding:10px 14px;margin:14px 0}
.case h3{margin:0 0 8px;font-size:16px}
.pair{display:grid;grid-template-columns:1fr 1fr;gap:16px}
.side img{display:block;width:192px;height:auto;image-rendering:pixelated;border:1px solid var(--line)}
.side .answer{font-weight:600}
.side h4{margin:0 0 6px;font-size:14px;color:var(--muted)}
@media print{nav{display:none}section{break-inside:auto}.case,figure{break-inside:avoid}}
"#;

fn data_url(t: &crate::model::Thumb) -> String {
    format!(
        "data:{};base64,{}",
        t.mime,
        base64::engine::general_purpose::STANDARD.encode(&t.bytes)
    )
}

fn side_html(s: &mut String, side: &Side) {
    let _ = write!(s, r#"<div class="side"><h4>{}</h4>"#, esc(&side.heading));
    if let Some(t) = &side.thumb {
        let alt = if side.has_saliency {
            "image with saliency overlay"
        } else {
            "image"
        };
        let _ = write!(
            s,
            r#"<img src="{}" width="{}" height="{}" alt="{alt}"/>"#,
            data_url(t),
            t.width,
            t.height
        );
    }
    let _ = write!(s, r#"<p class="answer">answer: {}</p>"#, esc(&side.answer));
    if let Some(c) = side.confidence {
        let _ = write!(s, "<p>confidence: {}</p>", f3(c));
    }
    if !side.justification.is_empty() {
        let _ = write!(s, "<p>{}</p>", esc(&side.justification));
    }
    s.push_str("</div>");
}

fn block_html(s: &mut String, b: &Block) {
    match b {
        Block::Para(t) => {
            let _ = write!(s, "<p>{}</p>", esc(t));
        }
        Block::Note(t) => {
            let _ = write!(s, r#"<p class="note">{}</p>"#, esc(t));
        }
        Block::Headline(items) => {
            s.push_str(r#"<div class="headline"><ul>"#);
            for i in items {
                let _ = write!(s, "<li>{}</li>", esc(i));
            }
            s.push_str("</ul></div>");
        }
        Block::KeyValues(kv) => {
            s.push_str(r#"<dl class="kv">"#);
            for (k, v) in kv {
                let _ = write!(s, "<dt>{}</dt><dd>{}</dd>", esc(k), esc(v));
            }
            s.push_str("</dl>");
        }
        Block::Table {
            caption,
            header,
            rows,
            numeric,
        } => {
            let _ = write!(s, "<table><caption>{}</caption><thead><tr>", esc(caption));
            for (i, h) in header.iter().enumerate() {
                if numeric.get(i).copied().unwrap_or(false) {
                    let _ = write!(s, r#"<th class="num">{}</th>"#, esc(h));
                } else {
                    let _ = write!(s, "<th>{}</th>", esc(h));
                }
            }
            s.push_str("</tr></thead><tbody>");
            for r in rows {
                s.push_str("<tr>");
                for (i, c) in r.iter().enumerate() {
                    if numeric.get(i).copied().unwrap_or(false) {
                        let _ = write!(s, r#"<td class="num">{}</td>"#, esc(c));
                    } else {
                        let _ = write!(s, "<td>{}</td>", esc(c));
                    }
                }
                s.push_str("</tr>");
            }
            s.push_str("</tbody></table>");
        }
        Block::Figure { scene, caption } => {
            let _ = write!(
                s,
                "<figure>{}<figcaption>{}</figcaption></figure>",
                scene.to_svg(),
                esc(caption)
            );
        }
        Block::Case {
            title,
            before,
            after,
        } => {
            let _ = write!(
                s,
                r#"<div class="case"><h3>{}</h3><div class="pair">"#,
                esc(title)
            );
            side_html(s, before);
            side_html(s, after);
            s.push_str("</div></div>");
        }
    }
}

/// Renders the whole document.
pub fn render(d: &ReportData, sections: &[Section]) -> String {
    let mut s = String::with_capacity(64 * 1024);
    s.push_str("<!DOCTYPE html>\n");
    s.push_str(
        r#"<html xmlns="http://www.w3.org/1999/xhtml" lang="en"><head><meta charset="utf-8"/>"#,
    );
    s.push_str(r#"<meta name="viewport" content="width=device-width, initial-scale=1"/>"#);
    s.push_str(r#"<meta name="generator" content="clarity-report"/>"#);
    let _ = write!(
        s,
        "<title>{}</title><style>{}</style></head><body>",
        esc(&d.title),
        CSS
    );
    let _ = write!(
        s,
        "<header><h1>{}</h1><p>{} · plan {}</p></header><nav>",
        esc(&d.title),
        esc(&d.provenance.adapter_identity),
        esc(short(&d.provenance.plan_hash))
    );
    for sec in sections {
        let _ = write!(s, "<a href=\"#{}\">{}</a>", sec.id, esc(&sec.title));
    }
    s.push_str("</nav><main>");
    for sec in sections {
        let _ = write!(
            s,
            "\n<section id=\"{}\"><h2>{}</h2>",
            sec.id,
            esc(&sec.title)
        );
        for b in &sec.blocks {
            block_html(&mut s, b);
        }
        s.push_str("</section>");
    }
    s.push_str("\n</main></body></html>\n");
    s
}

fn short(h: &str) -> &str {
    h.get(..12).unwrap_or(h)
}
