//! A tiny vector scene (rects, paths, text) drawn once by the plot code and written twice: as
//! inline SVG for the HTML and as krilla paths for the PDF. Hand-written rather than plotters so
//! both outputs share one layout, bytes are stable (our own number formatting) and no font
//! rasteriser or second SVG parser is needed.

use std::fmt::Write as _;

/// An sRGB colour.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rgb(pub u8, pub u8, pub u8);

impl Rgb {
    pub fn hex(self) -> String {
        format!("#{:02x}{:02x}{:02x}", self.0, self.1, self.2)
    }
    /// Relative luminance in `[0, 1]` (for picking black or white text on a fill).
    pub fn luminance(self) -> f64 {
        (0.2126 * self.0 as f64 + 0.7152 * self.1 as f64 + 0.0722 * self.2 as f64) / 255.0
    }
}

pub const BLACK: Rgb = Rgb(0, 0, 0);
pub const WHITE: Rgb = Rgb(255, 255, 255);
pub const GREY: Rgb = Rgb(120, 120, 120);
pub const LIGHT: Rgb = Rgb(225, 225, 225);

/// Okabe–Ito palette (colour-blind safe).
pub mod okabe_ito {
    use super::Rgb;
    pub const ORANGE: Rgb = Rgb(0xE6, 0x9F, 0x00);
    pub const SKY_BLUE: Rgb = Rgb(0x56, 0xB4, 0xE9);
    pub const GREEN: Rgb = Rgb(0x00, 0x9E, 0x73);
    pub const YELLOW: Rgb = Rgb(0xF0, 0xE4, 0x42);
    pub const BLUE: Rgb = Rgb(0x00, 0x72, 0xB2);
    pub const VERMILLION: Rgb = Rgb(0xD5, 0x5E, 0x00);
    pub const PURPLE: Rgb = Rgb(0xCC, 0x79, 0xA7);
}

/// Viridis colour of `t` in `[0, 1]` (clamped), rounded to 8 bits: the one map of
/// [`clarity_image::colormap`], shared with the probe's overlays.
pub fn viridis(t: f64) -> Rgb {
    let [r, g, b] = clarity_image::colormap::viridis8(t);
    Rgb(r, g, b)
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Anchor {
    Start,
    Middle,
    End,
}

/// One drawing primitive. Coordinates in scene units (1 unit = 1 CSS px = 1 PDF pt after
/// scaling), y down.
#[derive(Debug, Clone, PartialEq)]
pub enum Shape {
    Rect {
        x: f64,
        y: f64,
        w: f64,
        h: f64,
        fill: Option<Rgb>,
        stroke: Option<(Rgb, f64)>,
        opacity: f64,
    },
    /// A polyline or polygon.
    Path {
        points: Vec<(f64, f64)>,
        closed: bool,
        fill: Option<Rgb>,
        stroke: Option<(Rgb, f64)>,
        dashed: bool,
        opacity: f64,
    },
    Circle {
        cx: f64,
        cy: f64,
        r: f64,
        fill: Rgb,
    },
    Text {
        x: f64,
        y: f64,
        text: String,
        size: f64,
        anchor: Anchor,
        color: Rgb,
        bold: bool,
        /// Rotated −90° (reads bottom to top) around `(x, y)`.
        vertical: bool,
    },
}

/// A figure: a fixed-size canvas of shapes plus a text description for screen readers.
#[derive(Debug, Clone, PartialEq)]
pub struct Scene {
    pub width: f64,
    pub height: f64,
    pub title: String,
    pub shapes: Vec<Shape>,
}

impl Scene {
    pub fn new(width: f64, height: f64, title: impl Into<String>) -> Self {
        Self {
            width,
            height,
            title: title.into(),
            shapes: Vec::new(),
        }
    }

    pub fn rect(
        &mut self,
        x: f64,
        y: f64,
        w: f64,
        h: f64,
        fill: Option<Rgb>,
        stroke: Option<(Rgb, f64)>,
    ) {
        self.shapes.push(Shape::Rect {
            x,
            y,
            w,
            h,
            fill,
            stroke,
            opacity: 1.0,
        });
    }

    pub fn line(&mut self, a: (f64, f64), b: (f64, f64), color: Rgb, width: f64, dashed: bool) {
        self.shapes.push(Shape::Path {
            points: vec![a, b],
            closed: false,
            fill: None,
            stroke: Some((color, width)),
            dashed,
            opacity: 1.0,
        });
    }

    pub fn polyline(&mut self, points: Vec<(f64, f64)>, color: Rgb, width: f64) {
        self.shapes.push(Shape::Path {
            points,
            closed: false,
            fill: None,
            stroke: Some((color, width)),
            dashed: false,
            opacity: 1.0,
        });
    }

    pub fn polygon(&mut self, points: Vec<(f64, f64)>, fill: Rgb, opacity: f64) {
        self.shapes.push(Shape::Path {
            points,
            closed: true,
            fill: Some(fill),
            stroke: None,
            dashed: false,
            opacity,
        });
    }

    pub fn circle(&mut self, cx: f64, cy: f64, r: f64, fill: Rgb) {
        self.shapes.push(Shape::Circle { cx, cy, r, fill });
    }

    #[allow(clippy::too_many_arguments)]
    pub fn text_full(
        &mut self,
        x: f64,
        y: f64,
        text: impl Into<String>,
        size: f64,
        anchor: Anchor,
        color: Rgb,
        bold: bool,
        vertical: bool,
    ) {
        self.shapes.push(Shape::Text {
            x,
            y,
            text: text.into(),
            size,
            anchor,
            color,
            bold,
            vertical,
        });
    }

    pub fn text(&mut self, x: f64, y: f64, text: impl Into<String>, size: f64, anchor: Anchor) {
        self.text_full(x, y, text, size, anchor, BLACK, false, false);
    }

    /// Inline SVG (no XML declaration), deterministic.
    pub fn to_svg(&self) -> String {
        let mut s = String::new();
        let _ = write!(
            s,
            r#"<svg xmlns="http://www.w3.org/2000/svg" width="{w}" height="{h}" viewBox="0 0 {w} {h}" role="img" font-family="DejaVu Sans, Verdana, Arial, sans-serif"><title>{t}</title>"#,
            w = n(self.width),
            h = n(self.height),
            t = crate::html::esc(&self.title)
        );
        for shape in &self.shapes {
            match shape {
                Shape::Rect {
                    x,
                    y,
                    w,
                    h,
                    fill,
                    stroke,
                    opacity,
                } => {
                    let _ = write!(
                        s,
                        r#"<rect x="{}" y="{}" width="{}" height="{}"{}{}{}/>"#,
                        n(*x),
                        n(*y),
                        n(*w),
                        n(*h),
                        fill_attr(*fill),
                        stroke_attr(*stroke),
                        opacity_attr(*opacity)
                    );
                }
                Shape::Path {
                    points,
                    closed,
                    fill,
                    stroke,
                    dashed,
                    opacity,
                } => {
                    let pts: Vec<String> = points
                        .iter()
                        .map(|(x, y)| format!("{},{}", n(*x), n(*y)))
                        .collect();
                    let tag = if *closed { "polygon" } else { "polyline" };
                    let _ = write!(
                        s,
                        r#"<{tag} points="{}"{}{}{}{}/>"#,
                        pts.join(" "),
                        fill_attr(*fill),
                        stroke_attr(*stroke),
                        if *dashed {
                            r#" stroke-dasharray="5,4""#
                        } else {
                            ""
                        },
                        opacity_attr(*opacity)
                    );
                }
                Shape::Circle { cx, cy, r, fill } => {
                    let _ = write!(
                        s,
                        r#"<circle cx="{}" cy="{}" r="{}" fill="{}"/>"#,
                        n(*cx),
                        n(*cy),
                        n(*r),
                        fill.hex()
                    );
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
                    let anchor = match anchor {
                        Anchor::Start => "start",
                        Anchor::Middle => "middle",
                        Anchor::End => "end",
                    };
                    let _ = write!(
                        s,
                        r#"<text x="{}" y="{}" font-size="{}" text-anchor="{anchor}"{}{}{}>{}</text>"#,
                        n(*x),
                        n(*y),
                        n(*size),
                        if *color == BLACK {
                            String::new()
                        } else {
                            format!(r#" fill="{}""#, color.hex())
                        },
                        if *bold { r#" font-weight="bold""# } else { "" },
                        if *vertical {
                            format!(r#" transform="rotate(-90 {} {})""#, n(*x), n(*y))
                        } else {
                            String::new()
                        },
                        crate::html::esc(text)
                    );
                }
            }
        }
        s.push_str("</svg>");
        s
    }
}

fn fill_attr(fill: Option<Rgb>) -> String {
    match fill {
        Some(c) => format!(r#" fill="{}""#, c.hex()),
        None => r#" fill="none""#.to_string(),
    }
}

fn stroke_attr(stroke: Option<(Rgb, f64)>) -> String {
    match stroke {
        Some((c, w)) => format!(r#" stroke="{}" stroke-width="{}""#, c.hex(), n(w)),
        None => String::new(),
    }
}

fn opacity_attr(o: f64) -> String {
    if o >= 1.0 {
        String::new()
    } else {
        format!(r#" opacity="{}""#, n(o))
    }
}

/// Stable coordinate text: two decimals, trailing zeros trimmed, no `-0`.
pub fn n(x: f64) -> String {
    let r = (x * 100.0).round() / 100.0;
    let r = if r == 0.0 { 0.0 } else { r };
    let s = format!("{r:.2}");
    let s = s.trim_end_matches('0').trim_end_matches('.');
    s.to_string()
}

/// Approximate advance width of `text` at `size` in a DejaVu-Sans-like font: used to keep labels
/// apart. Deliberately generous (DejaVu Sans is wide) so real fonts never overlap.
pub fn text_width(text: &str, size: f64) -> f64 {
    let em: f64 = text
        .chars()
        .map(|c| match c {
            'i' | 'l' | 'j' | '.' | ',' | ':' | ';' | '|' | '!' | '\'' | ' ' => 0.34,
            'f' | 't' | 'r' | '(' | ')' | '[' | ']' | '-' => 0.45,
            'm' | 'w' | 'M' | 'W' | '%' | '@' => 0.92,
            c if c.is_ascii_uppercase() => 0.72,
            c if c.is_ascii_digit() => 0.64,
            _ => 0.62,
        })
        .sum();
    em * size
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn number_format_is_stable() {
        assert_eq!(n(1.0), "1");
        assert_eq!(n(1.234), "1.23");
        assert_eq!(n(-0.001), "0");
        assert_eq!(n(10.5), "10.5");
    }

    #[test]
    fn viridis_ends() {
        assert_eq!(viridis(0.0), Rgb(0x44, 0x01, 0x54));
        assert_eq!(viridis(1.0), Rgb(0xfd, 0xe7, 0x25));
        assert_eq!(viridis(f64::NAN), viridis(0.0));
    }
}
