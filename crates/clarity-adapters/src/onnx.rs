//! The `onnx` adapter: any ONNX image classifier, run in process by tract (pure Rust), SPEC §4
//! item 2.
//!
//! One run: the perturbed image → [`preprocess`] (samples to `[0, 1]`, channel conversion,
//! resize with fast_image_resize, optional `× 255`, `(x − mean) / std`, NCHW or NHWC) → the
//! model's first output, one value per label → probabilities (softmax applied when the
//! outputs are logits: config flag, or `auto`) → answer = the label of the top probability,
//! confidence = that probability, entropy = `−Σ p ln p` in nats. No justification, no
//! saliency (the probe falls back to occlusion).
//!
//! **Identity**: adapter `onnx`, model = the file name, version = BLAKE3 of the `.onnx`
//! bytes, settings = the resolved preprocessing, the softmax mode and the labels. The path
//! is not in it: the same file elsewhere gives the same content keys.
//!
//! Everything is checked when the adapter is built, before any run: the file exists and
//! parses, the input is one rank-4 `f32` tensor whose fixed dimensions agree with the
//! configured channels and size, the output has one value per label.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use async_trait::async_trait;
use clarity_core::Observation;
use clarity_image::{Channels, Image};
use fast_image_resize as fir;
use serde::{Deserialize, Serialize};
use tract_onnx::prelude::*;
use tract_onnx::tract_hir::infer::Factoid;
use tract_onnx::tract_hir::internal::DimLike;

use crate::{Adapter, AdapterError, AdapterIdentity, BuildError, RunInput, Workload};

/// Changes whenever preprocessing or post-processing changes answers, so old cache entries
/// are not reused.
const PIPELINE_VERSION: &str = "onnx-classifier-v1";
/// Outputs in `[0, 1]` summing to 1 within this are taken as probabilities by `softmax = "auto"`.
const SUM_TOLERANCE: f64 = 1e-3;

/// `[adapter] kind = "onnx"` settings.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OnnxConfig {
    /// The `.onnx` file, relative to the config file's directory.
    pub model: PathBuf,
    /// A text file with one label per line, in output order (relative to the config file).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub labels_file: Option<PathBuf>,
    /// The labels inline, in output order (instead of `labels_file`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub labels: Vec<String>,
    /// `[width, height]` the image is resized to; default: the model input's fixed size.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub input_size: Option<[u32; 2]>,
    /// `gray` or `rgb`; default: from the model input's channel dimension (1 or 3).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub channels: Option<ChannelMode>,
    #[serde(default)]
    pub layout: Layout,
    #[serde(default)]
    pub resize: ResizeFilter,
    #[serde(default)]
    pub scale: Scale,
    /// Subtracted after scaling: one value for every channel, or one per channel.
    #[serde(default = "default_mean")]
    pub mean: Vec<f64>,
    /// Divides after `mean`: one value, or one per channel; each finite and > 0.
    #[serde(default = "default_std")]
    pub std: Vec<f64>,
    /// `true`: outputs are logits, apply softmax; `false`: outputs are probabilities;
    /// `"auto"` (default): softmax unless the outputs already are a distribution.
    #[serde(default)]
    pub softmax: SoftmaxMode,
}

fn default_mean() -> Vec<f64> {
    vec![0.0]
}
fn default_std() -> Vec<f64> {
    vec![1.0]
}

impl OnnxConfig {
    /// A config with every optional setting at its default.
    pub fn new(model: impl Into<PathBuf>) -> Self {
        Self {
            model: model.into(),
            labels_file: None,
            labels: Vec::new(),
            input_size: None,
            channels: None,
            layout: Layout::default(),
            resize: ResizeFilter::default(),
            scale: Scale::default(),
            mean: default_mean(),
            std: default_std(),
            softmax: SoftmaxMode::default(),
        }
    }
}

/// Channels the model takes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ChannelMode {
    /// One channel; RGB images become BT.601 luma (`0.299 r + 0.587 g + 0.114 b`).
    Gray,
    /// Three channels; gray images are repeated into each.
    Rgb,
}

impl ChannelMode {
    pub fn count(self) -> usize {
        match self {
            ChannelMode::Gray => 1,
            ChannelMode::Rgb => 3,
        }
    }
    fn as_str(self) -> &'static str {
        match self {
            ChannelMode::Gray => "gray",
            ChannelMode::Rgb => "rgb",
        }
    }
}

/// Tensor layout of the model input.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Layout {
    /// `1×C×H×W` (PyTorch and most ONNX exports).
    #[default]
    Nchw,
    /// `1×H×W×C` (TensorFlow/Keras exports).
    Nhwc,
}

impl Layout {
    /// Axes of channels, height and width in the rank-4 input.
    fn axes(self) -> (usize, usize, usize) {
        match self {
            Layout::Nchw => (1, 2, 3),
            Layout::Nhwc => (3, 1, 2),
        }
    }
    fn as_str(self) -> &'static str {
        match self {
            Layout::Nchw => "nchw",
            Layout::Nhwc => "nhwc",
        }
    }
}

/// Resampling filter (fast_image_resize, the library behind the `downscale` perturbation).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ResizeFilter {
    /// Box filter: the mean of the covered pixels when shrinking by a whole factor.
    Area,
    /// Anti-aliased bilinear (like Pillow, or torchvision with `antialias=True`).
    #[default]
    Bilinear,
    /// Anti-aliased Catmull-Rom cubic.
    Bicubic,
    Nearest,
}

impl ResizeFilter {
    fn alg(self) -> fir::ResizeAlg {
        use fir::{FilterType, ResizeAlg};
        match self {
            ResizeFilter::Area => ResizeAlg::Convolution(FilterType::Box),
            ResizeFilter::Bilinear => ResizeAlg::Convolution(FilterType::Bilinear),
            ResizeFilter::Bicubic => ResizeAlg::Convolution(FilterType::CatmullRom),
            ResizeFilter::Nearest => ResizeAlg::Nearest,
        }
    }
    fn as_str(self) -> &'static str {
        match self {
            ResizeFilter::Area => "area",
            ResizeFilter::Bilinear => "bilinear",
            ResizeFilter::Bicubic => "bicubic",
            ResizeFilter::Nearest => "nearest",
        }
    }
}

/// Range of the values before `mean`/`std`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Scale {
    /// `[0, 1]`: sample / 255 (8-bit) or / 65535 (16-bit).
    #[default]
    Unit,
    /// `[0, 255]`: the unit value × 255 (also for 16-bit images).
    Byte,
}

impl Scale {
    fn as_str(self) -> &'static str {
        match self {
            Scale::Unit => "unit",
            Scale::Byte => "byte",
        }
    }
}

/// Whether to apply softmax to the model's outputs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum SoftmaxMode {
    /// Softmax unless every output is in `[0, 1]` and they sum to 1 (± 1e-3).
    #[default]
    Auto,
    /// The outputs are logits.
    Always,
    /// The outputs are probabilities (checked).
    Never,
}

impl Serialize for SoftmaxMode {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            SoftmaxMode::Auto => s.serialize_str("auto"),
            SoftmaxMode::Always => s.serialize_bool(true),
            SoftmaxMode::Never => s.serialize_bool(false),
        }
    }
}

impl<'de> Deserialize<'de> for SoftmaxMode {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl serde::de::Visitor<'_> for V {
            type Value = SoftmaxMode;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("true, false or \"auto\"")
            }
            fn visit_bool<E: serde::de::Error>(self, v: bool) -> Result<SoftmaxMode, E> {
                Ok(if v {
                    SoftmaxMode::Always
                } else {
                    SoftmaxMode::Never
                })
            }
            fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<SoftmaxMode, E> {
                match v {
                    "auto" => Ok(SoftmaxMode::Auto),
                    other => Err(E::invalid_value(serde::de::Unexpected::Str(other), &self)),
                }
            }
        }
        d.deserialize_any(V)
    }
}

/// The resolved preprocessing: image → model input tensor.
#[derive(Debug, Clone, PartialEq)]
pub struct Preprocessing {
    pub width: u32,
    pub height: u32,
    pub channels: ChannelMode,
    pub layout: Layout,
    pub resize: ResizeFilter,
    pub scale: Scale,
    /// One per channel.
    pub mean: Vec<f32>,
    /// One per channel, > 0.
    pub std: Vec<f32>,
}

impl Preprocessing {
    /// The input tensor's shape (batch of one).
    pub fn shape(&self) -> [usize; 4] {
        let (c, h, w) = (
            self.channels.count(),
            self.height as usize,
            self.width as usize,
        );
        match self.layout {
            Layout::Nchw => [1, c, h, w],
            Layout::Nhwc => [1, h, w, c],
        }
    }

    fn settings(&self) -> serde_json::Value {
        serde_json::json!({
            "input_size": [self.width, self.height],
            "channels": self.channels.as_str(),
            "layout": self.layout.as_str(),
            "resize": self.resize.as_str(),
            "scale": self.scale.as_str(),
            "mean": self.mean,
            "std": self.std,
        })
    }
}

/// The model input for `image`, in `p.layout` order (`p.shape()`).
///
/// Order: samples to `[0, 1]` → channel conversion → resize (skipped when the size already
/// matches) → `× 255` for [`Scale::Byte`] → `(x − mean[c]) / std[c]`.
pub fn preprocess(image: &Image, p: &Preprocessing) -> Vec<f32> {
    let unit = image.to_unit_f32();
    let c = p.channels.count();
    let converted: Vec<f32> = match (image.channels(), p.channels) {
        (Channels::Gray, ChannelMode::Gray) | (Channels::Rgb, ChannelMode::Rgb) => unit,
        (Channels::Rgb, ChannelMode::Gray) => unit
            .chunks_exact(3)
            .map(|px| 0.299 * px[0] + 0.587 * px[1] + 0.114 * px[2])
            .collect(),
        (Channels::Gray, ChannelMode::Rgb) => unit.iter().flat_map(|&g| [g, g, g]).collect(),
    };
    let from = (image.width(), image.height());
    let to = (p.width, p.height);
    let mut hwc = if from == to {
        converted
    } else {
        match p.channels {
            ChannelMode::Gray => {
                let px = converted.into_iter().map(fir::pixels::F32::new).collect();
                resize(px, from, to, p.resize.alg())
                    .into_iter()
                    .map(|q| q.0)
                    .collect()
            }
            ChannelMode::Rgb => {
                let px = converted
                    .chunks_exact(3)
                    .map(|q| fir::pixels::F32x3::new([q[0], q[1], q[2]]))
                    .collect();
                resize(px, from, to, p.resize.alg())
                    .into_iter()
                    .flat_map(|q| q.0)
                    .collect()
            }
        }
    };
    let factor = match p.scale {
        Scale::Unit => 1.0,
        Scale::Byte => 255.0,
    };
    for (i, v) in hwc.iter_mut().enumerate() {
        let ch = i % c;
        *v = (*v * factor - p.mean[ch]) / p.std[ch];
    }
    match p.layout {
        Layout::Nhwc => hwc,
        Layout::Nchw => {
            let plane = p.width as usize * p.height as usize;
            let mut out = vec![0.0; hwc.len()];
            for (i, v) in hwc.into_iter().enumerate() {
                out[(i % c) * plane + i / c] = v;
            }
            out
        }
    }
}

fn resize<P: fir::PixelTrait>(
    pixels: Vec<P>,
    (w, h): (u32, u32),
    (nw, nh): (u32, u32),
    alg: fir::ResizeAlg,
) -> Vec<P> {
    let src = fir::images::TypedImage::from_pixels(w, h, pixels).expect("buffer matches size");
    let mut dst = fir::images::TypedImage::<P>::new(nw, nh);
    fir::Resizer::new()
        .resize_typed(&src, &mut dst, &fir::ResizeOptions::new().resize_alg(alg))
        .expect("pixel types match");
    dst.pixels().to_vec()
}

/// Model outputs → probabilities, and whether softmax was applied. Errors name the problem.
pub fn to_probabilities(outputs: &[f32], mode: SoftmaxMode) -> Result<(Vec<f64>, bool), String> {
    if let Some(i) = outputs.iter().position(|v| !v.is_finite()) {
        return Err(format!(
            "model output {i} is {} (not a finite number)",
            outputs[i]
        ));
    }
    let values: Vec<f64> = outputs.iter().map(|&v| f64::from(v)).collect();
    let sum: f64 = values.iter().sum();
    let is_distribution =
        values.iter().all(|v| (0.0..=1.0).contains(v)) && (sum - 1.0).abs() <= SUM_TOLERANCE;
    let apply = match mode {
        SoftmaxMode::Always => true,
        SoftmaxMode::Auto => !is_distribution,
        SoftmaxMode::Never if is_distribution => false,
        SoftmaxMode::Never => {
            return Err(format!(
                "softmax = false but the outputs are not probabilities (values in [0, 1] \
                 summing to 1; these sum to {sum}): set softmax = true or \"auto\""
            ));
        }
    };
    if apply {
        let max = values.iter().fold(f64::NEG_INFINITY, |m, &v| m.max(v));
        let e: Vec<f64> = values.iter().map(|v| (v - max).exp()).collect();
        let total: f64 = e.iter().sum();
        Ok((e.iter().map(|v| v / total).collect(), true))
    } else {
        // f32 outputs sum to 1 only within rounding: make them a distribution in f64.
        Ok((values.iter().map(|v| v / sum).collect(), false))
    }
}

type Plan = Arc<TypedRunnableModel>;

/// The adapter; build it with [`OnnxAdapter::new`]. Cheap to share: runs clone an `Arc`.
pub struct OnnxAdapter {
    inner: Arc<Loaded>,
}

/// A loaded, checked model with its preprocessing.
struct Loaded {
    plan: Plan,
    pre: Preprocessing,
    labels: Vec<String>,
    softmax: SoftmaxMode,
    file_name: String,
    hash: String,
    output_name: String,
}

impl std::fmt::Debug for OnnxAdapter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let s = &self.inner;
        f.debug_struct("OnnxAdapter")
            .field("model", &s.file_name)
            .field("hash", &s.hash)
            .field("preprocessing", &s.pre)
            .field("labels", &s.labels.len())
            .finish_non_exhaustive()
    }
}

fn invalid(message: impl Into<String>) -> BuildError {
    BuildError::Invalid {
        adapter: "onnx".into(),
        message: message.into(),
    }
}

/// `[N, 1, 64, 64]`, with `?` for unknown dimensions (`[..]` for an unknown rank).
fn fmt_shape(fact: &InferenceFact) -> String {
    if fact.shape.is_open() {
        return "[..]".into();
    }
    let dims: Vec<String> = fact
        .shape
        .dims()
        .map(|d| d.concretize().map_or("?".into(), |d| d.to_string()))
        .collect();
    format!("[{}]", dims.join(", "))
}

/// The fixed value of dimension `axis`, if any.
fn fixed_dim(fact: &InferenceFact, axis: usize) -> Option<usize> {
    fact.shape
        .dim(axis)
        .and_then(|d| d.concretize())
        .and_then(|d| d.to_usize().ok())
}

/// Reads a labels file: one label per line, surrounding whitespace trimmed, a final empty
/// line allowed; empty lines in between are an error.
fn read_labels(path: &Path) -> Result<Vec<String>, BuildError> {
    let text = fs_err::read_to_string(path).map_err(|e| invalid(format!("labels_file: {e}")))?;
    let mut lines: Vec<&str> = text.lines().collect();
    while lines.last().is_some_and(|l| l.trim().is_empty()) {
        lines.pop();
    }
    let mut labels = Vec::with_capacity(lines.len());
    for (i, line) in lines.iter().enumerate() {
        let label = line.trim();
        if label.is_empty() {
            return Err(invalid(format!(
                "labels_file `{}` line {}: empty label",
                path.display(),
                i + 1
            )));
        }
        labels.push(label.to_string());
    }
    Ok(labels)
}

impl OnnxAdapter {
    /// Validates the config, loads the model and checks it against the preprocessing and the
    /// labels. Paths are resolved against `base_dir` (the config file's directory).
    pub fn new(config: &OnnxConfig, base_dir: &Path) -> Result<Self, BuildError> {
        let c = config;
        // Labels first: cheap, and independent of the model.
        let (labels, labels_key) = match (&c.labels_file, c.labels.is_empty()) {
            (Some(_), false) => {
                return Err(invalid("set `labels` or `labels_file`, not both"));
            }
            (None, true) => {
                return Err(invalid(
                    "set `labels_file` (one label per line) or `labels` (a list), in the model's output order",
                ));
            }
            (Some(f), true) => {
                let path = base_dir.join(f);
                let labels = read_labels(&path)?;
                (labels, format!("labels_file `{}`", path.display()))
            }
            (None, false) => (c.labels.clone(), "labels".to_string()),
        };
        if labels.is_empty() {
            return Err(invalid(format!("{labels_key}: no labels")));
        }
        for (i, l) in labels.iter().enumerate() {
            if l.trim().is_empty() {
                return Err(invalid(format!("{labels_key}: label {} is empty", i + 1)));
            }
            if let Some(j) = labels[..i].iter().position(|m| m == l) {
                return Err(invalid(format!(
                    "{labels_key}: `{l}` is label {} and label {}; labels must be unique \
                     (answers and probabilities are keyed by label)",
                    j + 1,
                    i + 1
                )));
            }
        }
        if c.input_size.is_some_and(|[w, h]| w == 0 || h == 0) {
            return Err(invalid(format!(
                "input_size must be [width, height] with both >= 1, got {:?}",
                c.input_size.unwrap_or_default()
            )));
        }

        let path = base_dir.join(&c.model);
        let bytes = fs_err::read(&path).map_err(|e| invalid(format!("model: {e}")))?;
        let bad_model = |what: String| invalid(format!("model `{}`: {what}", path.display()));
        let mut model = tract_onnx::onnx()
            .model_for_read(&mut bytes.as_slice())
            .map_err(|e| bad_model(format!("not a readable ONNX model: {e:#}")))?;

        let inputs = model
            .input_outlets()
            .map_err(|e| bad_model(e.to_string()))?;
        if inputs.len() != 1 {
            return Err(bad_model(format!(
                "has {} inputs; the onnx adapter feeds one image tensor",
                inputs.len()
            )));
        }
        let input_name = model.node(inputs[0].node).name.clone();
        let fact = model
            .input_fact(0)
            .map_err(|e| bad_model(e.to_string()))?
            .clone();
        let shape = fmt_shape(&fact);
        if let Some(dt) = fact.datum_type.concretize()
            && dt != f32::datum_type()
        {
            return Err(bad_model(format!(
                "input `{input_name}` is {dt:?}; the onnx adapter feeds f32"
            )));
        }
        if !fact.shape.is_open() && fact.shape.dims().count() != 4 {
            return Err(bad_model(format!(
                "input `{input_name}` has rank {} (shape {shape}); the onnx adapter feeds one \
                 image as a rank-4 tensor (layout = \"{}\")",
                fact.shape.dims().count(),
                c.layout.as_str()
            )));
        }
        let (c_axis, h_axis, w_axis) = c.layout.axes();
        let model_channels = fixed_dim(&fact, c_axis);
        let channels = match (c.channels, model_channels) {
            (Some(mode), Some(n)) if mode.count() != n => {
                return Err(bad_model(format!(
                    "channels = \"{}\" gives {} channel(s) but input `{input_name}` has {n} at \
                     axis {c_axis} (layout = \"{}\", shape {shape})",
                    mode.as_str(),
                    mode.count(),
                    c.layout.as_str()
                )));
            }
            (Some(mode), _) => mode,
            (None, Some(1)) => ChannelMode::Gray,
            (None, Some(3)) => ChannelMode::Rgb,
            (None, Some(n)) => {
                return Err(bad_model(format!(
                    "input `{input_name}` has {n} channels at axis {c_axis} (layout = \"{}\", \
                     shape {shape}); the onnx adapter feeds 1 (gray) or 3 (rgb)",
                    c.layout.as_str()
                )));
            }
            (None, None) => {
                return Err(bad_model(format!(
                    "input `{input_name}` has no fixed channel count (shape {shape}): set \
                     channels = \"gray\" or \"rgb\""
                )));
            }
        };
        let (model_h, model_w) = (fixed_dim(&fact, h_axis), fixed_dim(&fact, w_axis));
        let (width, height) = match (c.input_size, model_w, model_h) {
            (Some([w, h]), mw, mh)
                if mw.is_some_and(|m| m != w as usize) || mh.is_some_and(|m| m != h as usize) =>
            {
                return Err(bad_model(format!(
                    "input_size = [{w}, {h}] but input `{input_name}` has shape {shape} \
                     (layout = \"{}\": width at axis {w_axis}, height at axis {h_axis})",
                    c.layout.as_str()
                )));
            }
            (Some([w, h]), _, _) => (w, h),
            (None, Some(w), Some(h)) => (
                u32::try_from(w).map_err(|_| bad_model(format!("width {w} is too large")))?,
                u32::try_from(h).map_err(|_| bad_model(format!("height {h} is too large")))?,
            ),
            (None, _, _) => {
                return Err(bad_model(format!(
                    "input `{input_name}` has no fixed height and width (shape {shape}): set \
                     input_size = [width, height]"
                )));
            }
        };

        let per_channel = |key: &str, v: &[f64], positive: bool| -> Result<Vec<f32>, BuildError> {
            let n = channels.count();
            if v.len() != 1 && v.len() != n {
                let allowed = if n == 1 {
                    "1 value".to_string()
                } else {
                    format!("1 value or {n} (one per channel)")
                };
                return Err(invalid(format!(
                    "{key} must have {allowed} with channels = \"{}\", got {}",
                    channels.as_str(),
                    v.len()
                )));
            }
            if let Some(x) = v
                .iter()
                .find(|x| !x.is_finite() || (positive && **x <= 0.0))
            {
                let range = if positive { "> 0" } else { "finite" };
                return Err(invalid(format!("{key} values must be {range}, got {x}")));
            }
            Ok((0..n).map(|i| v[i % v.len()] as f32).collect())
        };
        let pre = Preprocessing {
            width,
            height,
            channels,
            layout: c.layout,
            resize: c.resize,
            scale: c.scale,
            mean: per_channel("mean", &c.mean, false)?,
            std: per_channel("std", &c.std, true)?,
        };

        model = model
            .with_input_fact(0, f32::fact(pre.shape()).into())
            .map_err(|e| bad_model(format!("{e:#}")))?;
        let typed = model.into_optimized().map_err(|e| {
            bad_model(format!(
                "cannot run it on an input of shape {:?} (layout = \"{}\"): {e:#}",
                pre.shape(),
                c.layout.as_str()
            ))
        })?;
        let out = typed
            .output_outlets()
            .map_err(|e| bad_model(e.to_string()))?[0];
        let output_name = typed
            .outlet_label(out)
            .unwrap_or(&typed.node(out.node).name)
            .to_string();
        let out_fact = typed
            .outlet_fact(out)
            .map_err(|e| bad_model(e.to_string()))?;
        if let Some(dims) = out_fact.shape.as_concrete() {
            let n: usize = dims.iter().product();
            if n != labels.len() {
                return Err(invalid(format!(
                    "{labels_key} has {} labels but output `{output_name}` of model `{}` has {n} \
                     values (shape {dims:?})",
                    labels.len(),
                    path.display()
                )));
            }
        }
        let plan = typed
            .into_runnable()
            .map_err(|e| bad_model(format!("{e:#}")))?;
        let file_name = c.model.file_name().map_or_else(
            || c.model.display().to_string(),
            |n| n.to_string_lossy().into(),
        );
        Ok(Self {
            inner: Arc::new(Loaded {
                plan,
                pre,
                labels,
                softmax: c.softmax,
                file_name,
                hash: blake3::hash(&bytes).to_hex().to_string(),
                output_name,
            }),
        })
    }

    /// The resolved preprocessing.
    pub fn preprocessing(&self) -> &Preprocessing {
        &self.inner.pre
    }

    /// Labels in output order.
    pub fn labels(&self) -> &[String] {
        &self.inner.labels
    }

    /// Runs the model synchronously on one image.
    pub fn predict(&self, image: &Image) -> Result<Observation, AdapterError> {
        self.inner.predict(image)
    }
}

impl Loaded {
    fn predict(&self, image: &Image) -> Result<Observation, AdapterError> {
        let data = preprocess(image, &self.pre);
        let tensor = Tensor::from_shape(&self.pre.shape(), &data)
            .map_err(|e| AdapterError::Permanent(format!("onnx: input tensor: {e:#}")))?;
        let outputs = self
            .plan
            .run(tvec!(tensor.into()))
            .map_err(|e| AdapterError::Permanent(format!("onnx {}: {e:#}", self.file_name)))?;
        let values: Vec<f32> = outputs[0]
            .to_plain_array_view::<f32>()
            .map_err(|e| {
                AdapterError::Permanent(format!(
                    "onnx {}: output `{}`: {e:#}",
                    self.file_name, self.output_name
                ))
            })?
            .iter()
            .copied()
            .collect();
        if values.len() != self.labels.len() {
            return Err(AdapterError::Permanent(format!(
                "onnx {}: output `{}` has {} values for {} labels",
                self.file_name,
                self.output_name,
                values.len(),
                self.labels.len()
            )));
        }
        let (probs, applied) = to_probabilities(&values, self.softmax)
            .map_err(|e| AdapterError::Permanent(format!("onnx {}: {e}", self.file_name)))?;
        // First maximum, like the builtin model's argmax.
        let mut top = 0;
        for (i, &p) in probs.iter().enumerate() {
            if p > probs[top] {
                top = i;
            }
        }
        let entropy = probs
            .iter()
            .filter(|&&p| p > 0.0)
            .map(|&p| -p * p.ln())
            .sum::<f64>();
        let mut input_note = format!(
            "{} {}×{} → {} f32 {}×{}",
            image.format(),
            image.width(),
            image.height(),
            self.pre.channels.as_str(),
            self.pre.width,
            self.pre.height
        );
        if (image.width(), image.height()) != (self.pre.width, self.pre.height) {
            let _ = write!(input_note, " ({} resize)", self.pre.resize.as_str());
        }
        let _ = write!(
            input_note,
            ", {} scale, mean {:?}, std {:?}, {}",
            self.pre.scale.as_str(),
            self.pre.mean,
            self.pre.std,
            self.pre.layout.as_str()
        );
        let mut metadata = std::collections::BTreeMap::new();
        metadata.insert("input".to_string(), serde_json::Value::String(input_note));
        metadata.insert(
            "softmax_applied".to_string(),
            serde_json::Value::Bool(applied),
        );
        Ok(Observation {
            answer: Some(self.labels[top].clone()),
            justification: None,
            confidence: Some(probs[top]),
            entropy: Some(entropy),
            probabilities: self.labels.iter().cloned().zip(probs).collect(),
            saliency: None,
            metadata,
        })
    }
}

#[async_trait]
impl Adapter for OnnxAdapter {
    fn identity(&self) -> AdapterIdentity {
        let s = &self.inner;
        let mut settings = s.pre.settings();
        settings["softmax"] = serde_json::to_value(s.softmax).expect("plain value");
        settings["labels"] = serde_json::json!(s.labels);
        settings["pipeline"] = serde_json::json!(PIPELINE_VERSION);
        AdapterIdentity {
            adapter: "onnx".into(),
            model: s.file_name.clone(),
            version: s.hash.clone(),
            settings,
        }
    }

    fn workload(&self) -> Workload {
        Workload::Cpu
    }

    async fn run(&self, input: RunInput) -> Result<Observation, AdapterError> {
        let inner = Arc::clone(&self.inner);
        tokio::task::spawn_blocking(move || inner.predict(&input.image))
            .await
            .map_err(|e| AdapterError::Permanent(format!("onnx model task failed: {e}")))?
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pre(w: u32, h: u32, channels: ChannelMode, layout: Layout) -> Preprocessing {
        let n = channels.count();
        Preprocessing {
            width: w,
            height: h,
            channels,
            layout,
            resize: ResizeFilter::Area,
            scale: Scale::Unit,
            mean: vec![0.0; n],
            std: vec![1.0; n],
        }
    }

    fn rgb_2x1() -> Image {
        // Two pixels: pure red, then white.
        Image::from_u8(2, 1, Channels::Rgb, vec![255, 0, 0, 255, 255, 255]).unwrap()
    }

    #[test]
    fn layouts_order_the_same_values() {
        let img = rgb_2x1();
        let nhwc = preprocess(&img, &pre(2, 1, ChannelMode::Rgb, Layout::Nhwc));
        assert_eq!(nhwc, [1.0, 0.0, 0.0, 1.0, 1.0, 1.0]);
        let nchw = preprocess(&img, &pre(2, 1, ChannelMode::Rgb, Layout::Nchw));
        // Planes: r r, g g, b b.
        assert_eq!(nchw, [1.0, 1.0, 0.0, 1.0, 0.0, 1.0]);
        assert_eq!(
            pre(2, 1, ChannelMode::Rgb, Layout::Nchw).shape(),
            [1, 3, 1, 2]
        );
        assert_eq!(
            pre(2, 1, ChannelMode::Rgb, Layout::Nhwc).shape(),
            [1, 1, 2, 3]
        );
    }

    #[test]
    fn channel_conversions() {
        let gray = preprocess(&rgb_2x1(), &pre(2, 1, ChannelMode::Gray, Layout::Nchw));
        assert!((gray[0] - 0.299).abs() < 1e-6, "{gray:?}");
        assert!((gray[1] - 1.0).abs() < 1e-6, "{gray:?}");
        let g = Image::from_u16(1, 1, Channels::Gray, vec![65535]).unwrap();
        let rgb = preprocess(&g, &pre(1, 1, ChannelMode::Rgb, Layout::Nhwc));
        assert_eq!(rgb, [1.0, 1.0, 1.0]);
    }

    #[test]
    fn scale_mean_and_std_per_channel() {
        let mut p = pre(2, 1, ChannelMode::Rgb, Layout::Nhwc);
        p.scale = Scale::Byte;
        p.mean = vec![100.0, 0.0, 55.0];
        p.std = vec![2.0, 1.0, 4.0];
        let v = preprocess(&rgb_2x1(), &p);
        assert_eq!(v, [77.5, 0.0, -13.75, 77.5, 255.0, 50.0]);
    }

    #[test]
    fn area_resize_averages_blocks_and_same_size_is_untouched() {
        // 4×2 → 2×1: each output is the mean of a 2×2 block.
        let img = Image::from_u8(
            4,
            2,
            Channels::Gray,
            vec![0, 50, 100, 150, 100, 150, 200, 250],
        )
        .unwrap();
        let v = preprocess(&img, &pre(2, 1, ChannelMode::Gray, Layout::Nchw));
        assert!((v[0] - 75.0 / 255.0).abs() < 1e-6, "{v:?}");
        assert!((v[1] - 175.0 / 255.0).abs() < 1e-6, "{v:?}");
        let same = preprocess(&img, &pre(4, 2, ChannelMode::Gray, Layout::Nchw));
        assert_eq!(same, img.to_unit_f32());
        // Every filter gives the target size, for gray and RGB.
        for resize in [
            ResizeFilter::Area,
            ResizeFilter::Bilinear,
            ResizeFilter::Bicubic,
            ResizeFilter::Nearest,
        ] {
            for channels in [ChannelMode::Gray, ChannelMode::Rgb] {
                let mut p = pre(3, 5, channels, Layout::Nchw);
                p.resize = resize;
                assert_eq!(preprocess(&img, &p).len(), 15 * channels.count());
            }
        }
    }

    #[test]
    fn softmax_modes() {
        let logits = [2.0f32, 1.0, -1.0];
        let (p, applied) = to_probabilities(&logits, SoftmaxMode::Auto).unwrap();
        assert!(applied);
        assert!((p.iter().sum::<f64>() - 1.0).abs() < 1e-12);
        let e: Vec<f64> = [2.0f64, 1.0, -1.0].iter().map(|v| v.exp()).collect();
        let z: f64 = e.iter().sum();
        for (a, b) in p.iter().zip(&e) {
            assert!((a - b / z).abs() < 1e-12);
        }
        let probs = [0.25f32, 0.75, 0.0];
        let (p, applied) = to_probabilities(&probs, SoftmaxMode::Auto).unwrap();
        assert!(!applied);
        assert_eq!(p, [0.25, 0.75, 0.0]);
        // Forced softmax on values that look like probabilities.
        let (p, applied) = to_probabilities(&probs, SoftmaxMode::Always).unwrap();
        assert!(applied && p[1] < 0.75);
        assert!(
            to_probabilities(&logits, SoftmaxMode::Never)
                .unwrap_err()
                .starts_with("softmax = false but the outputs are not probabilities")
        );
        assert_eq!(
            to_probabilities(&[0.5, f32::NAN], SoftmaxMode::Auto).unwrap_err(),
            "model output 1 is NaN (not a finite number)"
        );
    }

    #[test]
    fn softmax_setting_parses_bool_or_auto() {
        #[derive(Deserialize)]
        struct T {
            softmax: SoftmaxMode,
        }
        let parse = |s: &str| toml::from_str::<T>(s).map(|t| t.softmax);
        assert_eq!(parse("softmax = true").unwrap(), SoftmaxMode::Always);
        assert_eq!(parse("softmax = false").unwrap(), SoftmaxMode::Never);
        assert_eq!(parse("softmax = \"auto\"").unwrap(), SoftmaxMode::Auto);
        let err = parse("softmax = \"yes\"").unwrap_err().to_string();
        assert!(err.contains("expected true, false or \"auto\""), "{err}");
        assert_eq!(
            serde_json::to_string(&[SoftmaxMode::Auto, SoftmaxMode::Always]).unwrap(),
            "[\"auto\",true]"
        );
    }
}
