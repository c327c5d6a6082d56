//! Occlusion kernels: a rectangle/ellipse occluder and lead/wire-like line artefacts. A pixel is
//! covered when its centre `(x + 0.5, y + 0.5)` lies inside the shape. Square edges are
//! half-open (`[c − h, c + h)`, the usual top-left rasterisation rule), so a square whose edges
//! fall on pixel centres covers exactly its side in pixels rather than one fewer on each axis.

use clarity_image::Image;

use super::common::{Dims, Sample, choice, float, int, map_samples, meta, unit_f64};
use crate::params::{ParamSpec, ParamValue, Params, PerturbError, ResolvedParams};
use crate::{KernelRng, Perturbation};

/// Sets every pixel whose centre satisfies `inside(x, y)` to `value` (all channels).
fn paint<T: Sample>(v: &[T], d: Dims, value: T, inside: impl Fn(f64, f64) -> bool) -> Vec<T> {
    let mut out = v.to_vec();
    for (y, row) in out.chunks_exact_mut(d.row_len()).enumerate() {
        let py = y as f64 + 0.5;
        for (x, px) in row.chunks_exact_mut(d.c).enumerate() {
            if inside(x as f64 + 0.5, py) {
                px.fill(value);
            }
        }
    }
    out
}

/// A solid rectangle or ellipse.
pub struct Occluder;

static OCCLUDER_SHAPES: [&str; 2] = ["rect", "ellipse"];

static OCCLUDER_PARAMS: [ParamSpec; 5] = [
    choice(
        "shape",
        "rect (a square) or ellipse (a disc)",
        &OCCLUDER_SHAPES,
        "rect",
    ),
    float(
        "size",
        "side (rect) or diameter (ellipse) as a fraction of the shorter image side",
        "fraction of side",
        0.0,
        1.0,
        0.0,
        Some(0.0),
    ),
    float(
        "cx",
        "centre x as a fraction of the width",
        "fraction of width",
        0.0,
        1.0,
        0.5,
        None,
    ),
    float(
        "cy",
        "centre y as a fraction of the height",
        "fraction of height",
        0.0,
        1.0,
        0.5,
        None,
    ),
    float(
        "value",
        "fill intensity as a fraction of the sample range (0 black, 1 white)",
        "fraction of range",
        0.0,
        1.0,
        0.0,
        None,
    ),
];

fn level<T: Sample>(fraction: f64) -> T {
    T::from_i64((fraction * T::MAX as f64).round() as i64)
}

impl Perturbation for Occluder {
    meta!(
        "occluder",
        2,
        Occlusion,
        random = false,
        "paints a solid square or disc: implants, ECG electrodes, markers, jewellery, annotations burnt into the image",
        OCCLUDER_PARAMS
    );
    fn presets(&self) -> [Params; 5] {
        [0.05, 0.1, 0.15, 0.2, 0.3].map(|s| {
            Params::from([
                ("shape".to_string(), ParamValue::Text("rect".to_string())),
                ("size".to_string(), ParamValue::Num(s)),
                ("cx".to_string(), ParamValue::Num(0.5)),
                ("cy".to_string(), ParamValue::Num(0.5)),
                ("value".to_string(), ParamValue::Num(0.0)),
            ])
        })
    }
    fn apply(
        &self,
        image: &Image,
        params: &ResolvedParams,
        _rng: &mut KernelRng,
    ) -> Result<Image, PerturbError> {
        let d = Dims::of(image);
        let half = params.num("size") * d.w.min(d.h) as f64 / 2.0;
        let (cx, cy) = (params.num("cx") * d.w as f64, params.num("cy") * d.h as f64);
        let value = params.num("value");
        let ellipse = params.text("shape") == "ellipse";
        let inside = move |x: f64, y: f64| {
            let (u, v) = (x - cx, y - cy);
            if ellipse {
                u * u + v * v < half * half
            } else {
                -half <= u && u < half && -half <= v && v < half
            }
        };
        Ok(map_samples!(image, |s| paint(s, d, level(value), inside)))
    }
}

/// Straight lines across the image at random positions and angles.
pub struct LineArtifact;

static LINE_PARAMS: [ParamSpec; 3] = [
    int("count", "number of lines", "lines", 0, 50, 0, Some(0)),
    float("thickness", "line width", "px", 0.5, 50.0, 2.0, None),
    float(
        "intensity",
        "line intensity as a fraction of the sample range (radio-opaque wires are bright: 1)",
        "fraction of range",
        0.0,
        1.0,
        1.0,
        None,
    ),
];

impl Perturbation for LineArtifact {
    meta!(
        "line_artifact",
        1,
        Occlusion,
        random = true,
        "draws straight lines through random points at random angles: leads, wires, tubes and catheters over the anatomy",
        LINE_PARAMS
    );
    fn presets(&self) -> [Params; 5] {
        [1.0, 2.0, 3.0, 5.0, 8.0].map(|n| {
            Params::from([
                ("count".to_string(), ParamValue::Num(n)),
                ("thickness".to_string(), ParamValue::Num(2.0)),
                ("intensity".to_string(), ParamValue::Num(1.0)),
            ])
        })
    }
    fn apply(
        &self,
        image: &Image,
        params: &ResolvedParams,
        rng: &mut KernelRng,
    ) -> Result<Image, PerturbError> {
        let d = Dims::of(image);
        let half = params.num("thickness") / 2.0;
        // Each line: a point uniform in the image and a direction uniform in [0, π), drawn in
        // that order (x, y, angle) per line.
        let lines: Vec<(f64, f64, f64, f64)> = (0..params.num("count") as usize)
            .map(|_| {
                let px = unit_f64(rng) * d.w as f64;
                let py = unit_f64(rng) * d.h as f64;
                let (s, c) = (unit_f64(rng) * std::f64::consts::PI).sin_cos();
                (px, py, s, c)
            })
            .collect();
        let inside = |x: f64, y: f64| {
            lines
                .iter()
                .any(|&(px, py, s, c)| ((x - px) * s - (y - py) * c).abs() < half)
        };
        let value = params.num("intensity");
        Ok(map_samples!(image, |v| paint(v, d, level(value), inside)))
    }
}
