//! `report.pdf`: the same sections as the HTML, laid out on A4 pages with krilla. Figures are the
//! same [`Scene`](crate::scene::Scene)s drawn as PDF vector paths; text uses the bundled DejaVu Sans (embedded,
//! subset). Layout is a simple two-pass flow: blocks are placed into per-page operation lists
//! (so the page count is known for the footer), then every page is emitted. No dates, a fixed
//! document id: identical bytes for identical input.

use krilla::Document;
use krilla::color::rgb;
use krilla::geom::{PathBuilder, Point, Rect, Size, Transform};
use krilla::metadata::Metadata;
use krilla::num::NormalizedF32;
use krilla::page::PageSettings;
use krilla::paint::{Fill, FillRule, Stroke, StrokeDash};
use krilla::surface::Surface;
use krilla::text::{Font, TextDirection};
use skrifa::MetadataProvider as _;
use skrifa::instance::{LocationRef, Size as FontSize};

use crate::ReportError;
use crate::doc::{Block, Section, Side};
use crate::model::{ReportData, Thumb};
use crate::plots::f3;
use crate::scene::{Anchor, BLACK, GREY, LIGHT, Rgb, Shape, WHITE};

const PAGE_W: f64 = 595.28;
const PAGE_H: f64 = 841.89;
const MARGIN: f64 = 42.0;
const CONTENT_W: f64 = PAGE_W - 2.0 * MARGIN;
const BOTTOM: f64 = PAGE_H - MARGIN - 14.0;
const BODY: f64 = 9.0;
const SMALL: f64 = 7.5;
const MUTED: Rgb = Rgb(85, 85, 85);
const ACCENT: Rgb = Rgb(0x00, 0x72, 0xB2);

/// Measures text with the real font's advance widths (no kerning), so wrapping and alignment
/// match what is drawn.
/// Splits on spaces, keeping a bracketed group (`[0.667, 1.000]`) in one piece.
fn words(text: &str) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    let mut depth = 0i32;
    for w in text.split(' ') {
        match out.last_mut() {
            Some(last) if depth > 0 => {
                last.push(' ');
                last.push_str(w);
            }
            _ => out.push(w.to_string()),
        }
        depth += w.matches('[').count() as i32 - w.matches(']').count() as i32;
        depth = depth.max(0);
    }
    out
}

struct Measure {
    regular: skrifa::FontRef<'static>,
    bold: skrifa::FontRef<'static>,
}

impl Measure {
    fn new() -> Result<Self, ReportError> {
        let f = |b: &'static [u8]| {
            skrifa::FontRef::new(b).map_err(|e| ReportError::Pdf(format!("bundled font: {e}")))
        };
        Ok(Self {
            regular: f(dejavu::sans::regular())?,
            bold: f(dejavu::sans::bold())?,
        })
    }

    fn width(&self, text: &str, size: f64, bold: bool) -> f64 {
        let font = if bold { &self.bold } else { &self.regular };
        let cmap = font.charmap();
        let gm = font.glyph_metrics(FontSize::new(size as f32), LocationRef::default());
        text.chars()
            .map(|c| {
                cmap.map(c)
                    .and_then(|g| gm.advance_width(g))
                    .unwrap_or(size as f32 * 0.6) as f64
            })
            .sum()
    }

    /// Greedy word wrap; words longer than the width are broken by characters.
    fn wrap(&self, text: &str, size: f64, bold: bool, width: f64) -> Vec<String> {
        let mut lines = Vec::new();
        for para in text.split('\n') {
            let mut line = String::new();
            for word in words(para) {
                let word = word.as_str();
                let candidate = if line.is_empty() {
                    word.to_string()
                } else {
                    format!("{line} {word}")
                };
                if self.width(&candidate, size, bold) <= width {
                    line = candidate;
                    continue;
                }
                if !line.is_empty() {
                    lines.push(std::mem::take(&mut line));
                }
                // Break an over-long word.
                let mut piece = String::new();
                for c in word.chars() {
                    piece.push(c);
                    if self.width(&piece, size, bold) > width && piece.chars().count() > 1 {
                        let last = piece.pop().expect("non-empty");
                        lines.push(std::mem::take(&mut piece));
                        piece.push(last);
                    }
                }
                line = piece;
            }
            lines.push(line);
        }
        lines
    }

    /// Clips `text` with an ellipsis to fit `width`.
    fn fit(&self, text: &str, size: f64, bold: bool, width: f64) -> String {
        if self.width(text, size, bold) <= width {
            return text.to_string();
        }
        let mut chars: Vec<char> = text.chars().collect();
        while !chars.is_empty() {
            chars.pop();
            let t: String = chars.iter().collect::<String>() + "…";
            if self.width(&t, size, bold) <= width {
                return t;
            }
        }
        "…".into()
    }
}

enum Op {
    Shape(Shape),
    Image {
        x: f64,
        y: f64,
        w: f64,
        h: f64,
        thumb: Thumb,
    },
}

struct Layout<'m> {
    m: &'m Measure,
    pages: Vec<Vec<Op>>,
    y: f64,
}

impl<'m> Layout<'m> {
    fn new(m: &'m Measure) -> Self {
        Self {
            m,
            pages: vec![Vec::new()],
            y: MARGIN,
        }
    }

    fn ops(&mut self) -> &mut Vec<Op> {
        self.pages.last_mut().expect("one page")
    }

    fn new_page(&mut self) {
        self.pages.push(Vec::new());
        self.y = MARGIN;
    }

    /// Starts a new page unless `h` more points fit.
    fn ensure(&mut self, h: f64) {
        if self.y + h > BOTTOM && self.y > MARGIN {
            self.new_page();
        }
    }

    fn text(&mut self, x: f64, y: f64, text: &str, size: f64, color: Rgb, bold: bool) {
        self.ops().push(Op::Shape(Shape::Text {
            x,
            y,
            text: text.to_string(),
            size,
            anchor: Anchor::Start,
            color,
            bold,
            vertical: false,
        }));
    }

    fn rect(
        &mut self,
        x: f64,
        y: f64,
        w: f64,
        h: f64,
        fill: Option<Rgb>,
        stroke: Option<(Rgb, f64)>,
    ) {
        self.ops().push(Op::Shape(Shape::Rect {
            x,
            y,
            w,
            h,
            fill,
            stroke,
            opacity: 1.0,
        }));
    }

    fn lines(&mut self, x: f64, width: f64, text: &str, size: f64, color: Rgb, bold: bool) {
        let lh = size * 1.35;
        for line in self.m.wrap(text, size, bold, width) {
            self.ensure(lh);
            self.y += lh;
            self.text(x, self.y - size * 0.3, &line, size, color, bold);
        }
    }

    fn title(&mut self, d: &ReportData) {
        self.lines(MARGIN, CONTENT_W, &d.title, 16.0, BLACK, true);
        let sub = format!(
            "{} · plan {}",
            d.provenance.adapter_identity,
            d.provenance
                .plan_hash
                .get(..12)
                .unwrap_or(&d.provenance.plan_hash)
        );
        self.lines(MARGIN, CONTENT_W, &sub, BODY, MUTED, false);
        self.y += 4.0;
        self.rect(MARGIN, self.y, CONTENT_W, 2.0, Some(ACCENT), None);
        self.y += 6.0;
    }

    /// Height the start of a block needs on the page (so a heading is not left alone).
    fn lead_height(&self, b: Option<&Block>) -> f64 {
        match b {
            Some(Block::Figure { scene, .. }) => {
                scene.height * (CONTENT_W / scene.width).min(1.0) + 16.0
            }
            Some(Block::Case { .. }) => 200.0,
            // Short key/value blocks are kept whole (see `block`).
            Some(Block::KeyValues(kv)) => kv.len() as f64 * BODY * 1.35 * 1.6 + 10.0,
            _ => 60.0,
        }
    }

    fn section(&mut self, s: &Section) {
        let first = s.blocks.iter().find(|b| !matches!(b, Block::Note(_)));
        self.ensure(40.0 + self.lead_height(first));
        self.y += 10.0;
        self.lines(MARGIN, CONTENT_W, &s.title, 13.0, BLACK, true);
        self.y += 2.0;
        self.rect(MARGIN, self.y, CONTENT_W, 0.6, Some(GREY), None);
        self.y += 6.0;
        for b in &s.blocks {
            self.block(b);
        }
    }

    fn block(&mut self, b: &Block) {
        match b {
            Block::Para(t) => {
                self.lines(MARGIN, CONTENT_W, t, BODY, BLACK, false);
                self.y += 4.0;
            }
            Block::Note(t) => {
                self.lines(MARGIN, CONTENT_W, t, SMALL + 0.5, MUTED, false);
                self.y += 4.0;
            }
            Block::Headline(items) => {
                let size = BODY + 0.5;
                let lh = size * 1.35;
                let wrapped: Vec<Vec<String>> = items
                    .iter()
                    .map(|i| self.m.wrap(i, size, true, CONTENT_W - 30.0))
                    .collect();
                let h = wrapped
                    .iter()
                    .map(|w| w.len() as f64 * lh + 2.0)
                    .sum::<f64>()
                    + 12.0;
                self.ensure(h);
                let top = self.y;
                self.rect(MARGIN, top, CONTENT_W, h, Some(Rgb(243, 248, 252)), None);
                self.rect(MARGIN, top, 4.0, h, Some(ACCENT), None);
                self.y += 6.0;
                for lines in wrapped {
                    for (k, line) in lines.iter().enumerate() {
                        self.y += lh;
                        if k == 0 {
                            self.text(MARGIN + 12.0, self.y - size * 0.3, "•", size, BLACK, true);
                        }
                        self.text(MARGIN + 22.0, self.y - size * 0.3, line, size, BLACK, true);
                    }
                    self.y += 2.0;
                }
                self.y = top + h + 8.0;
            }
            Block::KeyValues(kv) => {
                let key_w = kv
                    .iter()
                    .map(|(k, _)| self.m.width(k, BODY, true))
                    .fold(0.0, f64::max)
                    .min(190.0)
                    + 12.0;
                let lh = BODY * 1.35;
                // Keep a short block on one page.
                let total: f64 = kv
                    .iter()
                    .map(|(k, v)| {
                        let n = self.m.wrap(v, BODY, false, CONTENT_W - key_w).len();
                        let nk = self.m.wrap(k, BODY, true, key_w - 12.0).len();
                        n.max(nk) as f64 * lh + 1.0
                    })
                    .sum();
                if total < (BOTTOM - MARGIN) / 3.0 {
                    self.ensure(total);
                }
                for (k, v) in kv {
                    let vl = self.m.wrap(v, BODY, false, CONTENT_W - key_w);
                    let kl = self.m.wrap(k, BODY, true, key_w - 12.0);
                    let n = vl.len().max(kl.len());
                    self.ensure(n as f64 * lh);
                    let top = self.y;
                    for (i, l) in kl.iter().enumerate() {
                        self.text(
                            MARGIN,
                            top + lh * (i + 1) as f64 - BODY * 0.3,
                            l,
                            BODY,
                            BLACK,
                            true,
                        );
                    }
                    for (i, l) in vl.iter().enumerate() {
                        self.text(
                            MARGIN + key_w,
                            top + lh * (i + 1) as f64 - BODY * 0.3,
                            l,
                            BODY,
                            BLACK,
                            false,
                        );
                    }
                    self.y = top + n as f64 * lh + 1.0;
                }
                self.y += 6.0;
            }
            Block::Table {
                caption,
                header,
                rows,
                numeric,
            } => self.table(caption, header, rows, numeric),
            Block::Figure { scene, caption } => {
                let s = (CONTENT_W / scene.width).min(1.0);
                let h = scene.height * s;
                self.ensure(h + 16.0);
                let (x0, y0) = (MARGIN, self.y);
                for shape in &scene.shapes {
                    let t = transform(shape, s, x0, y0);
                    self.ops().push(Op::Shape(t));
                }
                self.y += h + 2.0;
                self.lines(MARGIN, CONTENT_W, caption, SMALL + 0.5, MUTED, false);
                self.y += 8.0;
            }
            Block::Case {
                title,
                before,
                after,
            } => self.case(title, before, after),
        }
    }

    fn table(&mut self, caption: &str, header: &[String], rows: &[Vec<String>], numeric: &[bool]) {
        let size = SMALL;
        let pad = 6.0;
        let ncol = header.len();
        let mut widths: Vec<f64> = (0..ncol)
            .map(|c| {
                let hw = self.m.width(&header[c], size, true);
                rows.iter()
                    .filter_map(|r| r.get(c))
                    .map(|t| self.m.width(t, size, false))
                    .fold(hw, f64::max)
                    + pad * 2.0
            })
            .collect();
        let total: f64 = widths.iter().sum();
        if total > CONTENT_W {
            // Too wide: every column gets its longest word, the rest of the width is shared in
            // proportion to what each column would need to stay on one line.
            let mins: Vec<f64> = (0..ncol)
                .map(|c| {
                    let longest = |t: &str, bold: bool| {
                        words(t)
                            .iter()
                            .map(|w| self.m.width(w, size, bold))
                            .fold(0.0, f64::max)
                    };
                    rows.iter()
                        .filter_map(|r| r.get(c))
                        .map(|t| longest(t, false))
                        .fold(longest(&header[c], true), f64::max)
                        + pad * 2.0
                })
                .collect();
            let min_total: f64 = mins.iter().sum();
            if min_total >= CONTENT_W {
                widths = mins.iter().map(|w| w * CONTENT_W / min_total).collect();
            } else {
                let want: f64 = widths
                    .iter()
                    .zip(&mins)
                    .map(|(w, m)| (w - m).max(0.0))
                    .sum();
                let spare = CONTENT_W - min_total;
                widths = widths
                    .iter()
                    .zip(&mins)
                    .map(|(w, m)| m + (w - m).max(0.0) * spare / want.max(1e-9))
                    .collect();
            }
        }
        let rh = size * 1.6;
        self.ensure(rh * 3.0 + 12.0);
        self.lines(MARGIN, CONTENT_W, caption, SMALL + 0.5, MUTED, false);
        self.y += 2.0;
        // Cells wrap (up to 4 lines, then clipped): `0.889 [0.667, 1.000]` splits before the CI.
        let cell_lines = |l: &Layout, cells: &[String], bold: bool| -> Vec<Vec<String>> {
            widths
                .iter()
                .enumerate()
                .map(|(c, w)| {
                    let t = cells.get(c).map(String::as_str).unwrap_or("");
                    let inner = w - pad * 2.0;
                    let mut lines = l.m.wrap(t, size, bold, inner);
                    if lines.len() > 4 {
                        let rest = lines[3..].join(" ");
                        lines.truncate(3);
                        lines.push(l.m.fit(&rest, size, bold, inner));
                    }
                    lines
                })
                .collect()
        };
        let line_h = size * 1.25;
        let row_h = |lines: &[Vec<String>]| {
            rh + line_h * (lines.iter().map(Vec::len).max().unwrap_or(1).max(1) - 1) as f64
        };
        let draw_row = |l: &mut Layout, lines: &[Vec<String>], bold: bool| {
            let top = l.y;
            let h = row_h(lines);
            let tw: f64 = widths.iter().sum();
            if bold {
                l.rect(MARGIN, top, tw, h, Some(Rgb(244, 244, 244)), None);
            }
            let mut x = MARGIN;
            for (c, w) in widths.iter().enumerate() {
                for (k, t) in lines[c].iter().enumerate() {
                    let base = top + rh - size * 0.45 + line_h * k as f64;
                    if numeric.get(c) == Some(&true) {
                        let tw = l.m.width(t, size, bold);
                        l.text(x + w - pad - tw, base, t, size, BLACK, bold);
                    } else {
                        l.text(x + pad, base, t, size, BLACK, bold);
                    }
                }
                x += w;
            }
            l.rect(MARGIN, top + h - 0.4, tw, 0.4, Some(LIGHT), None);
            l.y += h;
        };
        let head = cell_lines(self, header, true);
        draw_row(self, &head, true);
        for r in rows {
            let lines = cell_lines(self, r, false);
            if self.y + row_h(&lines) > BOTTOM {
                self.new_page();
                draw_row(self, &head, true);
            }
            draw_row(self, &lines, false);
        }
        self.y += 10.0;
    }

    fn side_lines(&self, s: &Side, width: f64) -> Vec<(String, f64, bool, Rgb)> {
        let mut out = Vec::new();
        for l in self.m.wrap(&s.heading, SMALL + 0.5, true, width) {
            out.push((l, SMALL + 0.5, true, MUTED));
        }
        out.push((String::new(), -1.0, false, BLACK)); // the image slot
        for l in self
            .m
            .wrap(&format!("answer: {}", s.answer), BODY, true, width)
        {
            out.push((l, BODY, true, BLACK));
        }
        if let Some(c) = s.confidence {
            out.push((format!("confidence: {}", f3(c)), BODY, false, BLACK));
        }
        for l in self.m.wrap(&s.justification, BODY, false, width) {
            if !l.is_empty() {
                out.push((l, BODY, false, BLACK));
            }
        }
        out
    }

    fn case(&mut self, title: &str, before: &Side, after: &Side) {
        let col_w = (CONTENT_W - 24.0) / 2.0;
        let img_w = 120.0;
        let img_h = |s: &Side| {
            s.thumb
                .as_ref()
                .map(|t| img_w * t.height as f64 / t.width.max(1) as f64 + 6.0)
                .unwrap_or(0.0)
        };
        let col_h = |l: &Layout, s: &Side| {
            l.side_lines(s, col_w - 8.0)
                .iter()
                .map(|(_, size, _, _)| if *size < 0.0 { img_h(s) } else { size * 1.35 })
                .sum::<f64>()
        };
        let h = 28.0 + col_h(self, before).max(col_h(self, after)) + 8.0;
        self.ensure(h);
        let top = self.y;
        self.rect(MARGIN, top, CONTENT_W, h, None, Some((LIGHT, 0.8)));
        self.text(MARGIN + 8.0, top + 16.0, title, BODY + 1.0, BLACK, true);
        for (k, s) in [before, after].into_iter().enumerate() {
            let x = MARGIN + 8.0 + k as f64 * (col_w + 8.0);
            let mut y = top + 24.0;
            for (line, size, bold, color) in self.side_lines(s, col_w - 8.0) {
                if size < 0.0 {
                    if let Some(t) = &s.thumb {
                        let ih = img_h(s) - 6.0;
                        self.ops().push(Op::Image {
                            x,
                            y: y + 2.0,
                            w: img_w,
                            h: ih,
                            thumb: t.clone(),
                        });
                        y += ih + 6.0;
                    }
                    continue;
                }
                y += size * 1.35;
                self.text(x, y - size * 0.3, &line, size, color, bold);
            }
        }
        self.y = top + h + 10.0;
    }
}

/// Places a scene shape at `(dx, dy)` scaled by `s`.
fn transform(shape: &Shape, s: f64, dx: f64, dy: f64) -> Shape {
    let p = |x: f64, y: f64| (dx + x * s, dy + y * s);
    match shape.clone() {
        Shape::Rect {
            x,
            y,
            w,
            h,
            fill,
            stroke,
            opacity,
        } => {
            let (x, y) = p(x, y);
            Shape::Rect {
                x,
                y,
                w: w * s,
                h: h * s,
                fill,
                stroke: stroke.map(|(c, w)| (c, w * s)),
                opacity,
            }
        }
        Shape::Path {
            points,
            closed,
            fill,
            stroke,
            dashed,
            opacity,
        } => Shape::Path {
            points: points.into_iter().map(|(x, y)| p(x, y)).collect(),
            closed,
            fill,
            stroke: stroke.map(|(c, w)| (c, w * s)),
            dashed,
            opacity,
        },
        Shape::Circle { cx, cy, r, fill } => {
            let (cx, cy) = p(cx, cy);
            Shape::Circle {
                cx,
                cy,
                r: r * s,
                fill,
            }
        }
        Shape::Text {
            x,
            y,
            text,
            size,
            anchor,
            color,
            bold,
            vertical,
        } => {
            let (x, y) = p(x, y);
            Shape::Text {
                x,
                y,
                text,
                size: size * s,
                anchor,
                color,
                bold,
                vertical,
            }
        }
    }
}

fn fill(c: Rgb, opacity: f64) -> Fill {
    Fill {
        paint: rgb::Color::new(c.0, c.1, c.2).into(),
        opacity: NormalizedF32::new(opacity.clamp(0.0, 1.0) as f32).unwrap_or(NormalizedF32::ONE),
        rule: FillRule::NonZero,
    }
}

fn stroke(c: Rgb, width: f64, dashed: bool, opacity: f64) -> Stroke {
    Stroke {
        paint: rgb::Color::new(c.0, c.1, c.2).into(),
        width: width as f32,
        opacity: NormalizedF32::new(opacity.clamp(0.0, 1.0) as f32).unwrap_or(NormalizedF32::ONE),
        dash: dashed.then(|| StrokeDash {
            array: vec![
                5.0 * width.max(0.6) as f32 / 1.5,
                4.0 * width.max(0.6) as f32 / 1.5,
            ],
            offset: 0.0,
        }),
        ..Stroke::default()
    }
}

struct Fonts {
    regular: Font,
    bold: Font,
}

fn draw_shape(surface: &mut Surface, fonts: &Fonts, m: &Measure, shape: &Shape) {
    match shape {
        Shape::Rect {
            x,
            y,
            w,
            h,
            fill: f,
            stroke: st,
            opacity,
        } => {
            let Some(rect) =
                Rect::from_xywh(*x as f32, *y as f32, w.max(0.01) as f32, h.max(0.01) as f32)
            else {
                return;
            };
            let mut pb = PathBuilder::new();
            pb.push_rect(rect);
            let Some(path) = pb.finish() else { return };
            surface.set_fill(f.map(|c| fill(c, *opacity)));
            surface.set_stroke(st.map(|(c, w)| stroke(c, w, false, *opacity)));
            surface.draw_path(&path);
        }
        Shape::Path {
            points,
            closed,
            fill: f,
            stroke: st,
            dashed,
            opacity,
        } => {
            if points.len() < 2 {
                return;
            }
            let mut pb = PathBuilder::new();
            pb.move_to(points[0].0 as f32, points[0].1 as f32);
            for (x, y) in &points[1..] {
                pb.line_to(*x as f32, *y as f32);
            }
            if *closed {
                pb.close();
            }
            let Some(path) = pb.finish() else { return };
            surface.set_fill(f.map(|c| fill(c, *opacity)));
            surface.set_stroke(st.map(|(c, w)| stroke(c, w, *dashed, *opacity)));
            surface.draw_path(&path);
        }
        Shape::Circle { cx, cy, r, fill: f } => {
            // Four cubic Béziers (κ = 0.5523).
            let (cx, cy, r) = (*cx as f32, *cy as f32, *r as f32);
            let k = 0.552_284_8 * r;
            let mut pb = PathBuilder::new();
            pb.move_to(cx + r, cy);
            pb.cubic_to(cx + r, cy + k, cx + k, cy + r, cx, cy + r);
            pb.cubic_to(cx - k, cy + r, cx - r, cy + k, cx - r, cy);
            pb.cubic_to(cx - r, cy - k, cx - k, cy - r, cx, cy - r);
            pb.cubic_to(cx + k, cy - r, cx + r, cy - k, cx + r, cy);
            pb.close();
            let Some(path) = pb.finish() else { return };
            surface.set_fill(Some(fill(*f, 1.0)));
            surface.set_stroke(None);
            surface.draw_path(&path);
        }
        Shape::Text {
            x,
            y,
            text,
            size,
            anchor,
            color,
            bold,
            vertical,
        } => {
            if text.is_empty() {
                return;
            }
            let w = m.width(text, *size, *bold);
            let dx = match anchor {
                Anchor::Start => 0.0,
                Anchor::Middle => -w / 2.0,
                Anchor::End => -w,
            };
            surface.set_fill(Some(fill(*color, 1.0)));
            surface.set_stroke(None);
            let font = if *bold {
                fonts.bold.clone()
            } else {
                fonts.regular.clone()
            };
            if *vertical {
                surface.push_transform(&Transform::from_rotate_at(-90.0, *x as f32, *y as f32));
            }
            surface.draw_text(
                Point::from_xy((*x + dx) as f32, *y as f32),
                font,
                *size as f32,
                text,
                false,
                TextDirection::Auto,
            );
            if *vertical {
                surface.pop();
            }
        }
    }
}

/// Renders the PDF. Returns the bytes and the page count.
pub fn render(d: &ReportData, sections: &[Section]) -> Result<(Vec<u8>, usize), ReportError> {
    let m = Measure::new()?;
    let mut layout = Layout::new(&m);
    layout.title(d);
    for s in sections {
        layout.section(s);
    }
    let pages = layout.pages;
    let n = pages.len();

    let font = |b: &'static [u8]| {
        Font::new(b.into(), 0)
            .ok_or_else(|| ReportError::Pdf("cannot load the bundled font".into()))
    };
    let fonts = Fonts {
        regular: font(dejavu::sans::regular())?,
        bold: font(dejavu::sans::bold())?,
    };
    let mut document = Document::new();
    let id = if d.provenance.plan_hash.is_empty() {
        "clarity-report".to_string()
    } else {
        format!("clarity-report-{}", d.provenance.plan_hash)
    };
    document.set_metadata(
        Metadata::new()
            .title(d.title.clone())
            .creator("clarity-report".into())
            .producer(format!("clarity-report {}", env!("CARGO_PKG_VERSION")))
            .language("en".into())
            .document_id(id),
    );
    let size = PageSettings::from_wh(PAGE_W as f32, PAGE_H as f32)
        .ok_or_else(|| ReportError::Pdf("page size".into()))?;
    for (i, ops) in pages.into_iter().enumerate() {
        let mut page = document.start_page_with(size.clone());
        let mut surface = page.surface();
        surface.set_fill(Some(fill(WHITE, 1.0)));
        for op in &ops {
            match op {
                Op::Shape(s) => draw_shape(&mut surface, &fonts, &m, s),
                Op::Image { x, y, w, h, thumb } => {
                    let data: krilla::Data = thumb.bytes.clone().into();
                    let img = if thumb.mime == "image/png" {
                        krilla::image::Image::from_png(data, false)
                    } else {
                        krilla::image::Image::from_jpeg(data, false)
                    };
                    let img = img.map_err(|e| ReportError::Pdf(format!("thumbnail: {e}")))?;
                    let sz = Size::from_wh(*w as f32, *h as f32)
                        .ok_or_else(|| ReportError::Pdf("thumbnail size".into()))?;
                    surface.push_transform(&Transform::from_translate(*x as f32, *y as f32));
                    surface.draw_image(img, sz);
                    surface.pop();
                }
            }
        }
        let footer = format!("Clarity robustness report · page {} of {n}", i + 1);
        draw_shape(
            &mut surface,
            &fonts,
            &m,
            &Shape::Text {
                x: PAGE_W / 2.0,
                y: PAGE_H - MARGIN + 8.0,
                text: footer,
                size: SMALL,
                anchor: Anchor::Middle,
                color: MUTED,
                bold: false,
                vertical: false,
            },
        );
        surface.finish();
        page.finish();
    }
    let bytes = document
        .finish()
        .map_err(|e| ReportError::Pdf(format!("{e:?}")))?;
    Ok((bytes, n))
}
