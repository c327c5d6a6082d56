//! The report's figures, drawn as [`Scene`]s: stability curves with CI bands and cliff markers,
//! 2-D heatmaps with a colour scale and the cliff contour, gradient bars.

use clarity_core::Axis;

use crate::model::{AxisCurves, Cliff, Estimate, Gradient, Metric, Slice};
use crate::scene::{Anchor, BLACK, GREY, LIGHT, Rgb, Scene, WHITE, okabe_ito, text_width, viridis};

/// Metrics drawn on the stability curves, with their colours. All live in `[0, 1]`.
pub const CURVE_METRICS: [(Metric, Rgb); 4] = [
    (Metric::Esi, okabe_ito::BLUE),
    (Metric::Accuracy, okabe_ito::GREEN),
    (Metric::Confidence, okabe_ito::ORANGE),
    (Metric::Drift, okabe_ito::VERMILLION),
];

const FONT: f64 = 11.0;
const SMALL: f64 = 10.0;

/// `name (unit)` for an axis title.
pub fn axis_title(axis: &Axis) -> String {
    if axis.unit.is_empty() {
        axis.name.clone()
    } else {
        format!("{} ({})", axis.name, axis.unit)
    }
}

/// Fixed three-decimal text for metric values.
pub fn f3(x: f64) -> String {
    let s = format!("{x:.3}");
    if s == "-0.000" { "0.000".into() } else { s }
}

/// Short text of a parameter value (4 significant digits, no trailing zeros).
pub fn short(x: f64) -> String {
    if x == 0.0 || !x.is_finite() {
        return clarity_core::json::format_num(x);
    }
    let decimals = (3 - x.abs().log10().floor() as i32).clamp(0, 9) as usize;
    let s = format!("{x:.decimals$}");
    let s = if s.contains('.') {
        s.trim_end_matches('0').trim_end_matches('.').to_string()
    } else {
        s
    };
    if s == "-0" { "0".into() } else { s }
}

/// Evenly spaced level positions across `[x0, x1]` (categorical: each level one step).
fn level_xs(n: usize, x0: f64, x1: f64) -> Vec<f64> {
    if n <= 1 {
        return vec![(x0 + x1) / 2.0; n];
    }
    let step = (x1 - x0) / (n - 1) as f64;
    (0..n).map(|i| x0 + step * i as f64).collect()
}

/// Every how many level labels to print so neighbours never overlap.
fn label_stride(labels: &[String], spacing: f64, size: f64) -> usize {
    let widest = labels
        .iter()
        .map(|l| text_width(l, size))
        .fold(0.0, f64::max);
    if spacing <= 0.0 {
        return 1;
    }
    ((widest + 6.0) / spacing).ceil().max(1.0) as usize
}

/// Shortens a label to at most `max` characters (with an ellipsis).
pub fn clip(s: &str, max: usize) -> String {
    if s.chars().count() <= max {
        s.to_string()
    } else {
        let mut t: String = s.chars().take(max.saturating_sub(1)).collect();
        t.push('…');
        t
    }
}

/// Draws the x level labels (thinned when crowded) and the axis title.
fn x_levels(scene: &mut Scene, axis: &Axis, xs: &[f64], y: f64) {
    let labels: Vec<String> = axis.values.iter().map(|v| clip(&v.label(), 12)).collect();
    let spacing = if xs.len() > 1 {
        xs[1] - xs[0]
    } else {
        f64::MAX
    };
    let stride = label_stride(&labels, spacing, SMALL);
    for (i, (x, l)) in xs.iter().zip(&labels).enumerate() {
        scene.line((*x, y), (*x, y + 4.0), GREY, 1.0, false);
        if i % stride == 0 {
            scene.text(*x, y + 16.0, l.clone(), SMALL, Anchor::Middle);
        }
    }
}

/// Where value `v` of a numeric axis sits on the chart's level positions `xs` (piecewise linear
/// between levels; `None` outside the axis or on a categorical axis).
fn x_of_value(axis: &Axis, xs: &[f64], v: f64) -> Option<f64> {
    let vals: Vec<f64> = axis
        .values
        .iter()
        .map(clarity_core::AxisValue::as_f64)
        .collect::<Option<_>>()?;
    for i in 0..vals.len().saturating_sub(1) {
        let (a, b) = (vals[i], vals[i + 1]);
        if (a <= v && v <= b) || (b <= v && v <= a) {
            let t = if b == a { 0.0 } else { (v - a) / (b - a) };
            return Some(xs[i] + t * (xs[i + 1] - xs[i]));
        }
    }
    (vals.len() == 1 && vals[0] == v).then(|| xs[0])
}

/// The pooled marginal's colour: a light blue, thin and dashed, clearly secondary.
pub const POOLED: Rgb = okabe_ito::SKY_BLUE;

/// Stability curves of one axis. The main curves are the axis's **line through the baseline**
/// (every other axis at its identity: where the cliffs are read), with 95% CI bands: ESI (solid,
/// circles), accuracy (dashed, hollow squares, drawn over ESI so it shows where they coincide),
/// confidence and drift. With several axes, the ESI **pooled** over the other axes (the
/// marginal) is drawn secondary: thin, light and labelled. The ESI threshold, the cliff level and
/// a refined cliff's supported interval (`refined`: `(lo, hi)` in parameter units) are marked.
pub fn stability_chart(
    axis: &Axis,
    curves: &AxisCurves,
    cliffs: &[&Cliff],
    threshold: f64,
    refined: Option<(f64, f64)>,
) -> Scene {
    let (w, h) = (640.0, 300.0);
    let (left, right, top, bottom) = (52.0, 20.0, 58.0, 52.0);
    let mut s = Scene::new(w, h, format!("Stability curves along {}", axis.name));
    let (px0, px1, py0, py1) = (left, w - right, top, h - bottom);
    let y_of = |v: f64| py1 - (v.clamp(0.0, 1.0)) * (py1 - py0);
    s.rect(
        px0,
        py0,
        px1 - px0,
        py1 - py0,
        Some(WHITE),
        Some((GREY, 1.0)),
    );
    for i in 0..=4 {
        let v = i as f64 * 0.25;
        let y = y_of(v);
        if i > 0 && i < 4 {
            s.line((px0, y), (px1, y), LIGHT, 1.0, false);
        }
        s.text(px0 - 6.0, y + 4.0, format!("{v:.2}"), SMALL, Anchor::End);
    }
    s.text_full(
        14.0,
        (py0 + py1) / 2.0,
        "value (0–1)",
        FONT,
        Anchor::Middle,
        BLACK,
        false,
        true,
    );
    let xs = level_xs(axis.values.len(), px0 + 24.0, px1 - 24.0);
    x_levels(&mut s, axis, &xs, py1);
    s.text(
        (px0 + px1) / 2.0,
        h - 10.0,
        axis_title(axis),
        FONT,
        Anchor::Middle,
    );

    // The refined cliff: a grey band over the interval the data support.
    if let Some((lo, hi)) = refined
        && let (Some(a), Some(b)) = (x_of_value(axis, &xs, lo), x_of_value(axis, &xs, hi))
    {
        let (a, b) = (a.min(b), a.max(b).max(a.min(b) + 2.0));
        s.shapes.push(crate::scene::Shape::Rect {
            x: a,
            y: py0,
            w: b - a,
            h: py1 - py0,
            fill: Some(GREY),
            stroke: None,
            opacity: 0.22,
        });
    }

    // Threshold line (labelled in the legend, so it never sits on a curve).
    let ty = y_of(threshold);
    s.line((px0, ty), (px1, ty), GREY, 1.0, true);

    // Main curves: the line through the baseline (the marginal when there is no line, i.e. a
    // one-axis sweep, where the two are the same).
    let main = if curves.line.is_empty() {
        &curves.metrics
    } else {
        &curves.line
    };
    let pooled = (!curves.line.is_empty())
        .then(|| curves.metrics.get(&Metric::Esi))
        .flatten()
        .filter(|p| Some(*p) != main.get(&Metric::Esi));
    if let Some(values) = pooled {
        for run in runs(values) {
            let pts: Vec<(f64, f64)> = run.iter().map(|&(i, e)| (xs[i], y_of(e.value))).collect();
            if pts.len() > 1 {
                s.shapes.push(crate::scene::Shape::Path {
                    points: pts.clone(),
                    closed: false,
                    fill: None,
                    stroke: Some((POOLED, 1.5)),
                    dashed: true,
                    opacity: 1.0,
                });
            }
            for (x, y) in pts {
                s.circle(x, y, 2.0, POOLED);
            }
        }
    }
    // Drift and confidence first, then ESI, then accuracy on top (dashed, hollow markers), so
    // where accuracy equals ESI both stay visible.
    for metric in [
        Metric::Drift,
        Metric::Confidence,
        Metric::Esi,
        Metric::Accuracy,
    ] {
        let Some(color) = CURVE_METRICS
            .iter()
            .find(|(m, _)| *m == metric)
            .map(|(_, c)| *c)
        else {
            continue;
        };
        let Some(values) = main.get(&metric) else {
            continue;
        };
        for run in runs(values) {
            let band: Vec<(f64, f64, f64)> = run
                .iter()
                .filter_map(|&(i, e)| Some((xs[i], e.lo?, e.hi?)))
                .collect();
            if metric != Metric::Accuracy {
                if band.len() == run.len() && band.len() > 1 {
                    let mut poly: Vec<(f64, f64)> =
                        band.iter().map(|&(x, _, hi)| (x, y_of(hi))).collect();
                    poly.extend(band.iter().rev().map(|&(x, lo, _)| (x, y_of(lo))));
                    s.polygon(poly, color, 0.18);
                } else {
                    for &(x, lo, hi) in &band {
                        s.line((x, y_of(lo)), (x, y_of(hi)), color, 1.5, false);
                    }
                }
            }
            let pts: Vec<(f64, f64)> = run.iter().map(|&(i, e)| (xs[i], y_of(e.value))).collect();
            if pts.len() > 1 {
                let width = if metric == Metric::Esi { 2.5 } else { 2.0 };
                s.shapes.push(crate::scene::Shape::Path {
                    points: pts.clone(),
                    closed: false,
                    fill: None,
                    stroke: Some((color, width)),
                    dashed: metric == Metric::Accuracy,
                    opacity: 1.0,
                });
            }
            for (x, y) in pts {
                if metric == Metric::Accuracy {
                    s.rect(x - 4.5, y - 4.5, 9.0, 9.0, None, Some((color, 1.8)));
                } else {
                    s.circle(x, y, 3.0, color);
                }
            }
        }
    }

    for c in cliffs {
        let Some(level) = c.level.filter(|l| *l < xs.len()) else {
            continue;
        };
        let x = xs[level];
        s.line((x, py0), (x, py1), BLACK, 1.5, true);
        let label = format!("cliff: {}", clip(&axis.values[level].label(), 12));
        let anchor = if x > (px0 + px1) / 2.0 {
            Anchor::End
        } else {
            Anchor::Start
        };
        let dx = if anchor == Anchor::End { -4.0 } else { 4.0 };
        // Above the plot area, clear of the curves.
        s.text_full(x + dx, py0 - 5.0, label, SMALL, anchor, BLACK, true, false);
    }

    // Legend in two rows across the top, laid out by measured widths.
    let mut x = px0;
    let row1 = 14.0;
    for (metric, color) in CURVE_METRICS {
        if !main.contains_key(&metric) {
            continue;
        }
        let acc = metric == Metric::Accuracy;
        s.line((x, row1 - 4.0), (x + 20.0, row1 - 4.0), color, 3.0, acc);
        if acc {
            s.rect(
                x + 6.0,
                row1 - 8.5,
                9.0,
                9.0,
                Some(WHITE),
                Some((color, 1.8)),
            );
        } else {
            s.circle(x + 10.0, row1 - 4.0, 3.0, color);
        }
        let label = metric.label();
        s.text(x + 24.0, row1, label, FONT, Anchor::Start);
        x += 24.0 + text_width(label, FONT) + 16.0;
    }
    let row2 = 32.0;
    let mut x = px0;
    s.line((x, row2 - 4.0), (x + 20.0, row2 - 4.0), GREY, 1.0, true);
    let t = format!("threshold {}", f3(threshold));
    s.text(x + 24.0, row2, t.clone(), FONT, Anchor::Start);
    x += 24.0 + text_width(&t, FONT) + 16.0;
    if pooled.is_some() {
        s.line((x, row2 - 4.0), (x + 20.0, row2 - 4.0), POOLED, 1.5, true);
        let t = "ESI pooled over the other axes";
        s.text(x + 24.0, row2, t, FONT, Anchor::Start);
        x += 24.0 + text_width(t, FONT) + 16.0;
    }
    if refined.is_some() {
        s.shapes.push(crate::scene::Shape::Rect {
            x,
            y: row2 - 9.0,
            w: 20.0,
            h: 10.0,
            fill: Some(GREY),
            stroke: None,
            opacity: 0.35,
        });
        s.text(
            x + 24.0,
            row2,
            "refined cliff (refine.json)",
            FONT,
            Anchor::Start,
        );
    }
    s
}

/// Splits a series into runs of consecutive defined points.
fn runs(values: &[Option<Estimate>]) -> Vec<Vec<(usize, Estimate)>> {
    let mut out = Vec::new();
    let mut cur = Vec::new();
    for (i, v) in values.iter().enumerate() {
        match v {
            Some(e) => cur.push((i, *e)),
            None => {
                if !cur.is_empty() {
                    out.push(std::mem::take(&mut cur));
                }
            }
        }
    }
    if !cur.is_empty() {
        out.push(cur);
    }
    out
}

/// A 2-D heatmap of a `[0, 1]` metric over two axes, viridis, with the threshold contour.
///
/// `threshold`: draw the contour separating values ≥ it from values below.
pub fn heatmap(x_axis: &Axis, y_axis: &Axis, slice: &Slice, threshold: Option<f64>) -> Scene {
    let nx = x_axis.values.len().max(1);
    let ny = y_axis.values.len().max(1);
    let cell_w = (480.0 / nx as f64).clamp(14.0, 80.0);
    // Tall enough that the rotated y-axis title fits beside the grid (it would otherwise run
    // off the top of the figure and into the caption below it).
    let y_title_w = text_width(&axis_title(y_axis), FONT);
    let cell_h = (300.0 / ny as f64)
        .clamp(12.0, 48.0)
        .max((y_title_w + 12.0) / ny as f64);
    let y_labels: Vec<String> = y_axis.values.iter().map(|v| clip(&v.label(), 12)).collect();
    let y_label_w = y_labels
        .iter()
        .map(|l| text_width(l, SMALL))
        .fold(0.0, f64::max);
    let left = 30.0 + y_label_w + 8.0;
    let top = 28.0;
    let (gw, gh) = (cell_w * nx as f64, cell_h * ny as f64);
    let bar_x = left + gw + 24.0;
    let w = bar_x + 14.0 + 44.0;
    let h = top + gh + 52.0;
    let mut s = Scene::new(
        w,
        h,
        format!(
            "{} over {} and {}",
            slice.metric.label(),
            x_axis.name,
            y_axis.name
        ),
    );
    s.text(left, 16.0, slice.metric.label(), FONT, Anchor::Start);
    let cx = |i: usize| left + cell_w * i as f64;
    // Row 0 (the first level) at the bottom.
    let cy = |j: usize| top + gh - cell_h * (j + 1) as f64;
    let value = |i: usize, j: usize| {
        slice
            .values
            .get(j)
            .and_then(|r| r.get(i))
            .copied()
            .flatten()
    };
    for j in 0..ny {
        for i in 0..nx {
            match value(i, j) {
                Some(v) => {
                    let c = viridis(v);
                    s.rect(cx(i), cy(j), cell_w, cell_h, Some(c), None);
                    if cell_w >= 34.0 && cell_h >= 14.0 {
                        let tc = if c.luminance() > 0.5 { BLACK } else { WHITE };
                        s.text_full(
                            cx(i) + cell_w / 2.0,
                            cy(j) + cell_h / 2.0 + 3.5,
                            format!("{v:.2}"),
                            10.0,
                            Anchor::Middle,
                            tc,
                            false,
                            false,
                        );
                    }
                }
                None => s.rect(cx(i), cy(j), cell_w, cell_h, Some(LIGHT), None),
            }
        }
    }
    s.rect(left, top, gw, gh, None, Some((GREY, 1.0)));
    // Contour: cell borders separating "≥ threshold" from "< threshold".
    let above = |i: usize, j: usize| threshold.and_then(|t| value(i, j).map(|v| v >= t));
    let mut segs = Vec::new();
    for j in 0..ny {
        for i in 0..nx {
            let a = above(i, j);
            if i + 1 < nx {
                let b = above(i + 1, j);
                if a.is_some() && b.is_some() && a != b {
                    segs.push(((cx(i + 1), cy(j)), (cx(i + 1), cy(j) + cell_h)));
                }
            }
            if j + 1 < ny {
                let b = above(i, j + 1);
                if a.is_some() && b.is_some() && a != b {
                    segs.push(((cx(i), cy(j)), (cx(i) + cell_w, cy(j))));
                }
            }
        }
    }
    for &(a, b) in &segs {
        s.line(a, b, WHITE, 4.0, false);
    }
    for &(a, b) in &segs {
        s.line(a, b, BLACK, 2.0, false);
    }
    // Axis labels.
    let xs: Vec<f64> = (0..nx).map(|i| cx(i) + cell_w / 2.0).collect();
    x_levels(&mut s, x_axis, &xs, top + gh);
    s.text(
        left + gw / 2.0,
        h - 10.0,
        axis_title(x_axis),
        FONT,
        Anchor::Middle,
    );
    let stride = ((SMALL + 2.0) / cell_h).ceil().max(1.0) as usize;
    for (j, l) in y_labels.iter().enumerate() {
        if j % stride == 0 {
            s.text(
                left - 6.0,
                cy(j) + cell_h / 2.0 + 3.5,
                l.clone(),
                SMALL,
                Anchor::End,
            );
        }
    }
    s.text_full(
        14.0,
        top + gh / 2.0,
        axis_title(y_axis),
        FONT,
        Anchor::Middle,
        BLACK,
        false,
        true,
    );
    // Colour scale.
    let steps = 20;
    for k in 0..steps {
        let t = k as f64 / steps as f64;
        let y = top + gh - gh * (k + 1) as f64 / steps as f64;
        s.rect(
            bar_x,
            y,
            14.0,
            gh / steps as f64 + 0.3,
            Some(viridis(t + 0.5 / steps as f64)),
            None,
        );
    }
    s.rect(bar_x, top, 14.0, gh, None, Some((GREY, 1.0)));
    for k in 0..=4 {
        let v = k as f64 * 0.25;
        let y = top + gh - gh * v;
        s.text(
            bar_x + 18.0,
            y + 3.5,
            format!("{v:.2}"),
            SMALL,
            Anchor::Start,
        );
    }
    s
}

/// "Nice" tick values covering `[lo, hi]`.
pub fn nice_ticks(lo: f64, hi: f64, target: usize) -> (Vec<f64>, f64) {
    let span = (hi - lo).abs().max(1e-9);
    let raw = span / target.max(1) as f64;
    let mag = 10f64.powf(raw.log10().floor());
    let step = [1.0, 2.0, 2.5, 5.0, 10.0]
        .iter()
        .map(|m| m * mag)
        .find(|s| *s >= raw)
        .unwrap_or(10.0 * mag);
    let start = (lo / step).floor() * step;
    let mut ticks = Vec::new();
    let mut k = 0;
    loop {
        let t = start + step * k as f64;
        if t > hi + step * 1e-6 + step {
            break;
        }
        ticks.push(if t.abs() < step * 1e-9 { 0.0 } else { t });
        if t >= hi - step * 1e-6 {
            break;
        }
        k += 1;
    }
    (ticks, step)
}

/// Tick text with as many decimals as the step needs.
pub fn tick_label(v: f64, step: f64) -> String {
    // Fewest decimals that represent every multiple of the step exactly.
    let decimals = (0..6)
        .find(|d| {
            let x = step * 10f64.powi(*d);
            (x - x.round()).abs() < 1e-6
        })
        .unwrap_or(6) as usize;
    let s = format!("{v:.decimals$}");
    if s.starts_with('-') && s[1..].chars().all(|c| c == '0' || c == '.') {
        s[1..].to_string()
    } else {
        s
    }
}

/// Bars of a metric's gradient per level step at each level of an axis.
pub fn gradient_chart(axis: &Axis, g: &Gradient) -> Scene {
    let (w, h) = (640.0, 240.0);
    let (right, top, bottom) = (20.0, 30.0, 52.0);
    let vals: Vec<f64> = g.per_step.iter().flatten().copied().collect();
    let lo = vals.iter().copied().fold(0.0, f64::min);
    let hi = vals.iter().copied().fold(0.0, f64::max);
    let (lo, hi) = if hi - lo < 1e-9 {
        (-0.1, 0.1)
    } else {
        (lo, hi)
    };
    let (ticks, step) = nice_ticks(lo, hi, 4);
    let (tlo, thi) = (ticks[0], *ticks.last().expect("ticks"));
    let tick_w = ticks
        .iter()
        .map(|t| text_width(&tick_label(*t, step), SMALL))
        .fold(0.0, f64::max);
    let left = 30.0 + tick_w + 8.0;
    let mut s = Scene::new(
        w,
        h,
        format!("Gradient of {} along {}", g.metric.label(), axis.name),
    );
    let (px0, px1, py0, py1) = (left, w - right, top, h - bottom);
    let y_of = |v: f64| py1 - (v - tlo) / (thi - tlo) * (py1 - py0);
    s.rect(
        px0,
        py0,
        px1 - px0,
        py1 - py0,
        Some(WHITE),
        Some((GREY, 1.0)),
    );
    for t in &ticks {
        let y = y_of(*t);
        s.line((px0, y), (px1, y), LIGHT, 1.0, false);
        s.text(px0 - 6.0, y + 4.0, tick_label(*t, step), SMALL, Anchor::End);
    }
    s.line((px0, y_of(0.0)), (px1, y_of(0.0)), BLACK, 1.0, false);
    s.text(
        px0,
        18.0,
        format!("d{}/d(level): change per level step", g.metric.label()),
        FONT,
        Anchor::Start,
    );
    // Legend: what each bar colour means (the same rule colours the bars below).
    let mut lx = px1;
    for (color, label) in [
        (okabe_ito::BLUE, "rises or holds"),
        (okabe_ito::VERMILLION, "falls moving away from the identity"),
    ] {
        lx -= text_width(label, SMALL);
        s.text(lx, 18.0, label, SMALL, Anchor::Start);
        lx -= 16.0;
        s.rect(lx, 9.0, 12.0, 10.0, Some(color), None);
        lx -= 14.0;
    }
    s.text_full(
        14.0,
        (py0 + py1) / 2.0,
        "per step",
        FONT,
        Anchor::Middle,
        BLACK,
        false,
        true,
    );
    let n = axis.values.len();
    let identity = axis.values.iter().position(|v| v == &axis.identity);
    let xs = level_xs(n, px0 + 28.0, px1 - 28.0);
    let bw = if n > 1 {
        ((xs[1] - xs[0]) * 0.6).min(40.0)
    } else {
        40.0
    };
    for (i, v) in g.per_step.iter().enumerate() {
        let (Some(v), Some(x)) = (v, xs.get(i)) else {
            continue;
        };
        if v.abs() < 1e-12 {
            continue;
        }
        let (y0, y1) = (y_of(0.0), y_of(*v));
        // Vermillion where the metric falls moving away from the identity level (either side).
        // At the identity level itself the difference looks towards the side the axis
        // continues on (larger values, unless the identity is the last level).
        let away = match identity {
            Some(id) if i > id => *v < 0.0,
            Some(id) if i < id => *v > 0.0,
            Some(id) if id + 1 == n && n > 1 => *v > 0.0,
            _ => *v < 0.0,
        };
        let color = if away {
            okabe_ito::VERMILLION
        } else {
            okabe_ito::BLUE
        };
        s.rect(
            x - bw / 2.0,
            y0.min(y1),
            bw,
            (y1 - y0).abs().max(0.5),
            Some(color),
            None,
        );
    }
    x_levels(&mut s, axis, &xs, py1);
    s.text(
        (px0 + px1) / 2.0,
        h - 10.0,
        axis_title(axis),
        FONT,
        Anchor::Middle,
    );
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ticks_cover_range() {
        let (t, step) = nice_ticks(-0.37, 0.05, 4);
        assert!(t[0] <= -0.37 && *t.last().unwrap() >= 0.05, "{t:?}");
        assert_eq!(step, 0.2);
        assert_eq!(t.len(), 4);
        assert_eq!(tick_label(-0.0, 0.1), "0.0");
        assert_eq!(tick_label(-0.2, 0.1), "-0.2");
    }

    #[test]
    fn clip_adds_ellipsis() {
        assert_eq!(clip("abcdef", 4), "abc…");
        assert_eq!(clip("abc", 4), "abc");
    }
}
