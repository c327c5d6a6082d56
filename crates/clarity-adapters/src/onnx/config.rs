//! `[adapter] kind = "onnx"` settings: the config struct and its small enums.

use std::path::PathBuf;

use fast_image_resize as fir;
use serde::{Deserialize, Serialize};

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
    /// What the outputs are: `"logits"` (alias `"softmax"`: mutually exclusive classes, softmax
    /// applied), `"probabilities"` (already a distribution), `"sigmoid"` (multi-label logits,
    /// a sigmoid per label), `"multilabel"` (per-label probabilities, used as they are) or
    /// `"auto"`. Replaces `softmax`; set one of the two.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub output: Option<OutputKind>,
    /// Multi-label outputs: a label is in the answer when its probability is at least this.
    #[serde(default = "default_threshold")]
    pub threshold: f64,
    /// Multi-label outputs: the answer when no label reaches `threshold`.
    #[serde(default = "default_none_label")]
    pub none_label: String,
    /// How an image whose aspect ratio differs from the input's is fitted: `"stretch"`
    /// (default), `"center_crop"` or `"letterbox"`.
    #[serde(default)]
    pub fit: Fit,
    /// `fit = "letterbox"`: the padding value, in `[0, 1]` sample units (before `scale`, `mean`
    /// and `std`).
    #[serde(default)]
    pub pad: f64,
    /// Images per model call at most (1 = one at a time). Above 1, concurrent runs are
    /// gathered into calls of 2 to `batch` images through one plan with a symbolic batch
    /// dimension; results must not depend on the gathering, which is checked when the adapter
    /// is built (see docs/adapters.md).
    #[serde(default = "default_batch", skip_serializing_if = "is_default_batch")]
    pub batch: usize,
}

fn default_batch() -> usize {
    1
}
fn is_default_batch(b: &usize) -> bool {
    *b == 1
}

fn default_threshold() -> f64 {
    0.5
}
fn default_none_label() -> String {
    "none".into()
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
            output: None,
            threshold: default_threshold(),
            none_label: default_none_label(),
            fit: Fit::default(),
            pad: 0.0,
            batch: default_batch(),
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
    pub(super) fn as_str(self) -> &'static str {
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
    pub(super) fn axes(self) -> (usize, usize, usize) {
        match self {
            Layout::Nchw => (1, 2, 3),
            Layout::Nhwc => (3, 1, 2),
        }
    }
    pub(super) fn as_str(self) -> &'static str {
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
    pub(super) fn alg(self) -> fir::ResizeAlg {
        use fir::{FilterType, ResizeAlg};
        match self {
            ResizeFilter::Area => ResizeAlg::Convolution(FilterType::Box),
            ResizeFilter::Bilinear => ResizeAlg::Convolution(FilterType::Bilinear),
            ResizeFilter::Bicubic => ResizeAlg::Convolution(FilterType::CatmullRom),
            ResizeFilter::Nearest => ResizeAlg::Nearest,
        }
    }
    pub(super) fn as_str(self) -> &'static str {
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
    pub(super) fn as_str(self) -> &'static str {
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

/// What the model's outputs are, and so how they become probabilities.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum OutputKind {
    /// Probabilities when the outputs are a distribution, else logits (softmax); a warning
    /// names the guess when the adapter is built.
    #[default]
    Auto,
    /// Logits of mutually exclusive classes: softmax.
    #[serde(alias = "softmax")]
    Logits,
    /// A distribution over mutually exclusive classes (checked).
    Probabilities,
    /// Multi-label logits: an independent sigmoid per label.
    Sigmoid,
    /// Multi-label probabilities (each in `[0, 1]`, checked), used as they are.
    Multilabel,
}

impl OutputKind {
    /// Independent labels (the answer is a set) rather than one class.
    pub fn is_multilabel(self) -> bool {
        matches!(self, OutputKind::Sigmoid | OutputKind::Multilabel)
    }
    pub(super) fn as_str(self) -> &'static str {
        match self {
            OutputKind::Auto => "auto",
            OutputKind::Logits => "logits",
            OutputKind::Probabilities => "probabilities",
            OutputKind::Sigmoid => "sigmoid",
            OutputKind::Multilabel => "multilabel",
        }
    }
}

impl From<SoftmaxMode> for OutputKind {
    fn from(m: SoftmaxMode) -> Self {
        match m {
            SoftmaxMode::Auto => OutputKind::Auto,
            SoftmaxMode::Always => OutputKind::Logits,
            SoftmaxMode::Never => OutputKind::Probabilities,
        }
    }
}

/// How an image is fitted to the model input when the aspect ratios differ.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Fit {
    /// Resize to the input size, changing the aspect ratio.
    #[default]
    Stretch,
    /// Crop the largest centred region with the input's aspect ratio, then resize.
    CenterCrop,
    /// Resize to fit inside the input, keeping the aspect ratio; pad the rest with `pad`.
    Letterbox,
}

impl Fit {
    pub(super) fn as_str(self) -> &'static str {
        match self {
            Fit::Stretch => "stretch",
            Fit::CenterCrop => "center_crop",
            Fit::Letterbox => "letterbox",
        }
    }
}
