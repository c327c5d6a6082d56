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
//!
//! **Batches** (`batch = B > 1`): a second plan is compiled with a symbolic batch dimension,
//! and every model call goes through it with between 2 and `B` images (a lone image is padded
//! with a zero image: tract computes a single row on another path, which rounds differently).
//! Concurrent runs are gathered by [`Batcher`]: each run queues its image, then waits for one
//! of the compute slots (one per core); whoever gets a slot takes up to `B` queued images and
//! runs them as one call. Which images share a call, and how many, depends on timing, so an
//! image's result must not: building the adapter checks it on noise images
//! ([`Loaded::check_batch_invariance`]), and the tests check it on the builtin logits export at
//! every position, beside any neighbours and in calls of every size. `batch` is in the
//! identity (the one-image plan rounds differently), and `run_batch` uses the same path.

use std::collections::VecDeque;
use std::fmt::Write as _;
use std::path::Path;
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use clarity_core::Observation;
use clarity_image::Image;
use tract_onnx::prelude::*;
use tract_onnx::tract_hir::infer::Factoid;
use tract_onnx::tract_hir::internal::DimLike;

use crate::{Adapter, AdapterError, AdapterIdentity, BuildError, RunInput, Workload};

/// Changes whenever preprocessing or post-processing changes answers, so old cache entries
/// are not reused.
const PIPELINE_VERSION: &str = "onnx-classifier-v1";

/// The largest `batch`: beyond it memory grows with no speed left to gain on a CPU.
pub const MAX_BATCH: usize = 256;

mod config;
mod output;
mod preprocess;

pub use config::*;
pub use output::{Applied, Decision, auto_guess_warning, decide, score, to_probabilities};
pub use preprocess::{Preprocessing, preprocess};

type Plan = Arc<TypedRunnableModel>;

/// The adapter; build it with [`OnnxAdapter::new`]. Cheap to share: runs clone an `Arc`.
pub struct OnnxAdapter {
    inner: Arc<Loaded>,
    /// `batch > 1`: gathers concurrent runs into batches.
    batcher: Option<Arc<Batcher>>,
}

/// A loaded, checked model with its preprocessing.
struct Loaded {
    /// The plan for one image (`batch = 1`, and `output = "auto"`'s look at a grey image).
    plan: Plan,
    /// Images per call at most, and (when above 1) the plan for any number of images.
    batch: usize,
    batch_plan: Option<Plan>,
    pre: Preprocessing,
    labels: Vec<String>,
    output: OutputKind,
    threshold: f64,
    none_label: String,
    /// Said when the adapter was built (also logged): e.g. what `output = "auto"` guessed.
    warnings: Vec<String>,
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

        let output = match (c.output, c.softmax) {
            (Some(o), SoftmaxMode::Auto) => o,
            (None, m) => OutputKind::from(m),
            (Some(o), m) => {
                return Err(invalid(format!(
                    "set `output` or `softmax`, not both (output = \"{}\", softmax = {})",
                    o.as_str(),
                    serde_json::to_string(&m).expect("plain value")
                )));
            }
        };
        if output.is_multilabel() {
            if !(c.threshold > 0.0 && c.threshold <= 1.0) {
                return Err(invalid(format!(
                    "threshold must be in (0, 1], got {}",
                    c.threshold
                )));
            }
            if c.none_label.trim().is_empty() {
                return Err(invalid("none_label must not be empty"));
            }
            if labels.contains(&c.none_label) {
                return Err(invalid(format!(
                    "none_label `{}` is also a label; answers must say which",
                    c.none_label
                )));
            }
        }
        if c.batch == 0 || c.batch > MAX_BATCH {
            return Err(invalid(format!(
                "batch must be from 1 to {MAX_BATCH} (images per model call), got {}",
                c.batch
            )));
        }
        if !(0.0..=1.0).contains(&c.pad) {
            return Err(invalid(format!(
                "pad must be in [0, 1] (sample units before scale/mean/std), got {}",
                c.pad
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
        if c.batch > 1
            && let Some(n) = fixed_dim(&fact, 0)
            && n != c.batch
        {
            return Err(bad_model(format!(
                "batch = {} but input `{input_name}` has a fixed batch dimension of {n} (shape \
                 {shape}); batching needs a model exported with a symbolic batch (N) or with \
                 exactly {} images",
                c.batch, c.batch
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
            fit: c.fit,
            pad: c.pad as f32,
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
        let batch_plan = if c.batch > 1 {
            // One plan for every batch size: the batch dimension stays symbolic (`N`).
            let cannot = |e: TractError| {
                bad_model(format!(
                    "cannot run it on a batch of N images (batch = {}): {e:#}",
                    c.batch
                ))
            };
            let typed = tract_onnx::onnx()
                .model_for_read(&mut bytes.as_slice())
                .and_then(|m| {
                    let n = m.sym("N");
                    let shape = pre.batch_shape(1);
                    let dims: TVec<TDim> = std::iter::once(n.to_dim())
                        .chain(shape[1..].iter().map(|&d| d.to_dim()))
                        .collect();
                    m.with_input_fact(0, f32::fact(dims).into())
                })
                .and_then(|m| m.into_optimized())
                .map_err(cannot)?;
            // tract's Softmax rounds an image's row differently depending on where it sits in
            // the batch tensor (seen on the builtin export: last bits at position 3 of 4).
            if let Some(node) = typed
                .nodes()
                .iter()
                .find(|n| n.op.name().to_ascii_lowercase().contains("softmax"))
            {
                return Err(bad_model(format!(
                    "batch = {}: node `{}` ({}) rounds an image's output differently depending \
                     on the other images in its batch, so results would depend on which runs \
                     were gathered together. Use batch = 1, or export the model without its \
                     final Softmax and set output = \"logits\" (the adapter then applies \
                     softmax per image)",
                    c.batch,
                    node.name,
                    node.op.name()
                )));
            }
            Some(typed.into_runnable().map_err(cannot)?)
        } else {
            None
        };
        let file_name = c.model.file_name().map_or_else(
            || c.model.display().to_string(),
            |n| n.to_string_lossy().into(),
        );
        let mut warnings = Vec::new();
        if output == OutputKind::Auto {
            // One run on a mid-grey image shows what the outputs look like, so the guess that
            // `auto` makes is said once, before any run, instead of silently on every run.
            let grey =
                Tensor::from_shape(&pre.shape(), &vec![0.5f32; pre.shape().iter().product()])
                    .ok()
                    .and_then(|t| plan.run(tvec!(t.into())).ok())
                    .and_then(|o| {
                        o[0].to_plain_array_view::<f32>()
                            .ok()
                            .map(|v| v.iter().copied().collect::<Vec<_>>())
                    });
            if let Some(w) = grey.and_then(|v| auto_guess_warning(&file_name, &v)) {
                tracing::warn!("{w}");
                warnings.push(w);
            }
        }
        let batcher = (c.batch > 1).then(|| Arc::new(Batcher::new()));
        let loaded = Loaded {
            plan,
            batch: c.batch,
            batch_plan,
            pre,
            labels,
            output,
            threshold: c.threshold,
            none_label: c.none_label.clone(),
            warnings,
            file_name,
            hash: blake3::hash(&bytes).to_hex().to_string(),
            output_name,
        };
        if let Some(plan) = &loaded.batch_plan {
            loaded.check_batch_invariance(plan).map_err(bad_model)?;
        }
        Ok(Self {
            batcher,
            inner: Arc::new(loaded),
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

    /// The resolved output kind.
    pub fn output(&self) -> OutputKind {
        self.inner.output
    }

    /// Warnings said when the adapter was built (also logged with `tracing`).
    pub fn warnings(&self) -> &[String] {
        &self.inner.warnings
    }

    /// Images per model call (`batch`).
    pub fn batch(&self) -> usize {
        self.inner.batch
    }

    /// Runs the model synchronously on one image (through the batch plan when `batch > 1`, so
    /// the result is the one a sweep records).
    pub fn predict(&self, image: &Image) -> Result<Observation, AdapterError> {
        self.inner
            .predict_batch(&[image])
            .pop()
            .expect("one result per image")
    }

    /// Runs the model synchronously on several images, up to `batch` per call; results in order.
    pub fn predict_batch(&self, images: &[&Image]) -> Vec<Result<Observation, AdapterError>> {
        self.inner.predict_batch(images)
    }
}

impl Loaded {
    /// `images` in calls of at most `self.batch` (see the module docs).
    fn predict_batch(&self, images: &[&Image]) -> Vec<Result<Observation, AdapterError>> {
        let (b, plan) = match &self.batch_plan {
            Some(plan) => (self.batch, plan),
            None => (1, &self.plan),
        };
        let per_image: usize = self.pre.shape().iter().product();
        let n_labels = self.labels.len();
        let mut out = Vec::with_capacity(images.len());
        for chunk in images.chunks(b) {
            // Batching: a call of exactly the images there are, but never of one (tract takes
            // another path for a single row, which rounds differently): one image is padded
            // with a zero image.
            let b = if self.batch_plan.is_some() {
                chunk.len().max(2)
            } else {
                1
            };
            let mut data = vec![0f32; per_image * b];
            for (slot, image) in data.chunks_exact_mut(per_image).zip(chunk) {
                slot.copy_from_slice(&preprocess(image, &self.pre));
            }
            match self.call(plan, b, &data) {
                Ok(values) if values.len() == b * n_labels => {
                    for (image, row) in chunk.iter().zip(values.chunks_exact(n_labels)) {
                        out.push(self.observe(image, row));
                    }
                }
                Ok(values) => {
                    let e = AdapterError::Permanent(format!(
                        "onnx {}: output `{}` has {} values for {} labels × {b} image(s)",
                        self.file_name,
                        self.output_name,
                        values.len(),
                        n_labels
                    ));
                    out.extend(chunk.iter().map(|_| Err(e.clone())));
                }
                Err(e) => out.extend(chunk.iter().map(|_| Err(e.clone()))),
            }
        }
        out
    }

    /// Refuses a model whose output for an image depends on the other images of its call or on
    /// the call's size (tract's in-graph `Softmax` does, in the last bits): with it, results
    /// would depend on which runs happened to be gathered together. `B` deterministic noise
    /// images are run as one call, reversed, and in calls of 2, 3 and ⌈B/2⌉ images starting at
    /// other probes (each at other positions beside other neighbours); every row must be the
    /// same bits as in the first call.
    fn check_batch_invariance(&self, plan: &Plan) -> Result<(), String> {
        let b = self.batch;
        let per_image: usize = self.pre.shape().iter().product();
        let labels = self.labels.len();
        // A fixed LCG (no global RNG): inputs in [-1, 1), distinct per image.
        let mut state = 0x9E37_79B9_7F4A_7C15u64;
        let probes: Vec<Vec<f32>> = (0..b)
            .map(|_| {
                (0..per_image)
                    .map(|_| {
                        state = state
                            .wrapping_mul(6_364_136_223_846_793_005)
                            .wrapping_add(1_442_695_040_888_963_407);
                        ((state >> 40) as f32 / (1u64 << 24) as f32) * 2.0 - 1.0
                    })
                    .collect()
            })
            .collect();
        let run = |order: &[usize]| -> Result<Vec<Vec<u32>>, String> {
            let mut data = Vec::with_capacity(per_image * order.len());
            for &i in order {
                data.extend_from_slice(&probes[i]);
            }
            let values = self
                .call(plan, order.len(), &data)
                .map_err(|e| e.to_string())?;
            if values.len() != order.len() * labels {
                return Err(format!(
                    "output `{}` has {} values for {labels} labels × {} images",
                    self.output_name,
                    values.len(),
                    order.len()
                ));
            }
            Ok(values
                .chunks_exact(labels)
                .map(|row| row.iter().map(|x| x.to_bits()).collect())
                .collect())
        };
        let reference = run(&(0..b).collect::<Vec<_>>())?;
        let mut orders: Vec<Vec<usize>> = vec![(0..b).rev().collect()];
        for (k, n) in [2, 3, b.div_ceil(2)].into_iter().enumerate() {
            if n >= 2 && n < b {
                orders.push((0..n).map(|j| (j + 1 + k) % b).collect());
            }
        }
        for order in orders {
            let rows = run(&order)?;
            if order
                .iter()
                .zip(&rows)
                .any(|(&i, row)| *row != reference[i])
            {
                return Err(format!(
                    "with batch = {b} its output for an image depends on the other images in \
                     its call or on the call's size (a check with {b} noise images, calls of \
                     {} images), so results would depend on which runs were gathered \
                     together. Use batch = 1",
                    order.len()
                ));
            }
        }
        Ok(())
    }

    /// One model call on `n` preprocessed images; the first output's values, in order.
    fn call(&self, plan: &Plan, n: usize, data: &[f32]) -> Result<Vec<f32>, AdapterError> {
        let tensor = Tensor::from_shape(&self.pre.batch_shape(n), data)
            .map_err(|e| AdapterError::Permanent(format!("onnx: input tensor: {e:#}")))?;
        let outputs = plan
            .run(tvec!(tensor.into()))
            .map_err(|e| AdapterError::Permanent(format!("onnx {}: {e:#}", self.file_name)))?;
        Ok(outputs[0]
            .to_plain_array_view::<f32>()
            .map_err(|e| {
                AdapterError::Permanent(format!(
                    "onnx {}: output `{}`: {e:#}",
                    self.file_name, self.output_name
                ))
            })?
            .iter()
            .copied()
            .collect())
    }

    /// One image's observation from its row of output values (one per label).
    fn observe(&self, image: &Image, values: &[f32]) -> Result<Observation, AdapterError> {
        let (probs, applied) = score(values, self.output)
            .map_err(|e| AdapterError::Permanent(format!("onnx {}: {e}", self.file_name)))?;
        let multilabel = self.output.is_multilabel();
        let d = decide(
            &probs,
            &self.labels,
            multilabel,
            self.threshold,
            &self.none_label,
        );
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
            let _ = write!(input_note, " ({} resize", self.pre.resize.as_str());
            if self.pre.fit != Fit::Stretch {
                let _ = write!(input_note, ", {}", self.pre.fit.as_str());
            }
            input_note.push(')');
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
        let (key, was) = if multilabel {
            ("sigmoid_applied", applied == Applied::Sigmoid)
        } else {
            ("softmax_applied", applied == Applied::Softmax)
        };
        metadata.insert(key.to_string(), serde_json::Value::Bool(was));
        Ok(Observation {
            answer: Some(d.answer),
            justification: None,
            confidence: Some(d.confidence),
            entropy: Some(d.entropy),
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
        if s.output.is_multilabel() {
            settings["output"] = serde_json::json!(s.output.as_str());
            settings["threshold"] = serde_json::json!(s.threshold);
            settings["none_label"] = serde_json::json!(s.none_label);
        } else {
            // Single-label kinds keep the key they had before `output` existed, so a config
            // that says `output = "logits"` shares cache entries with `softmax = true`.
            let legacy = match s.output {
                OutputKind::Logits => SoftmaxMode::Always,
                OutputKind::Probabilities => SoftmaxMode::Never,
                _ => SoftmaxMode::Auto,
            };
            settings["softmax"] = serde_json::to_value(legacy).expect("plain value");
        }
        settings["labels"] = serde_json::json!(s.labels);
        // Only when batching, so `batch = 1` configs keep the keys they always had.
        if s.batch > 1 {
            settings["batch"] = serde_json::json!(s.batch);
        }
        settings["pipeline"] = serde_json::json!(PIPELINE_VERSION);
        AdapterIdentity {
            adapter: "onnx".into(),
            model: s.file_name.clone(),
            version: s.hash.clone(),
            settings,
        }
    }

    fn workload(&self) -> Workload {
        match &self.batcher {
            // Enough runs in flight to fill a batch on every compute slot while the previous
            // ones compute.
            Some(b) => Workload::Io {
                max_in_flight: 2 * b.slot_count * self.inner.batch,
            },
            None => Workload::Cpu,
        }
    }

    async fn run(&self, input: RunInput) -> Result<Observation, AdapterError> {
        let inner = Arc::clone(&self.inner);
        match &self.batcher {
            Some(batcher) => batcher.run(inner, input.image).await,
            None => tokio::task::spawn_blocking(move || inner.predict_batch(&[&input.image]))
                .await
                .map_err(|e| AdapterError::Permanent(format!("onnx model task failed: {e}")))?
                .pop()
                .expect("one result per image"),
        }
    }

    async fn run_batch(&self, inputs: Vec<RunInput>) -> Vec<Result<Observation, AdapterError>> {
        let n = inputs.len();
        let inner = Arc::clone(&self.inner);
        tokio::task::spawn_blocking(move || {
            let images: Vec<&Image> = inputs.iter().map(|i| &*i.image).collect();
            inner.predict_batch(&images)
        })
        .await
        .unwrap_or_else(|e| {
            let e = AdapterError::Permanent(format!("onnx model task failed: {e}"));
            vec![Err(e); n]
        })
    }
}

/// How long a slot holder waits for a batch to fill before running what it has.
const FILL_WAIT: std::time::Duration = std::time::Duration::from_millis(2);

/// Gathers concurrent runs into batches (`batch > 1`); see the module docs.
struct Batcher {
    queue: Mutex<VecDeque<Pending>>,
    /// Signalled whenever an image is queued.
    arrived: std::sync::Condvar,
    slots: Arc<tokio::sync::Semaphore>,
    slot_count: usize,
}

/// A queued image and where its result goes.
struct Pending {
    image: Arc<Image>,
    done: tokio::sync::oneshot::Sender<Result<Observation, AdapterError>>,
}

impl Batcher {
    fn new() -> Self {
        // One batch computing per core (tract runs a call on one thread).
        let slot_count = std::thread::available_parallelism().map_or(1, |n| n.get());
        Self {
            queue: Mutex::new(VecDeque::new()),
            arrived: std::sync::Condvar::new(),
            slots: Arc::new(tokio::sync::Semaphore::new(slot_count)),
            slot_count,
        }
    }

    /// Queues `image`, then takes a compute slot and runs whatever is queued (up to a batch).
    /// Every queued image is taken by the first slot holder after it was queued, at the
    /// latest by its own, so no image waits for a batch to fill.
    async fn run(
        self: &Arc<Self>,
        inner: Arc<Loaded>,
        image: Arc<Image>,
    ) -> Result<Observation, AdapterError> {
        let (done, result) = tokio::sync::oneshot::channel();
        self.queue
            .lock()
            .expect("batch queue lock")
            .push_back(Pending { image, done });
        self.arrived.notify_all();
        let failed = || {
            Err(AdapterError::Permanent(
                "onnx: the batch holding this image failed".into(),
            ))
        };
        let mut result = result;
        // Another slot holder may take this image first: then there is nothing left to do,
        // and this run must not hold a slot (or wait for a batch to fill) for nothing.
        let permit = tokio::select! {
            biased;
            r = &mut result => return r.unwrap_or_else(|_| failed()),
            p = Arc::clone(&self.slots).acquire_owned() => {
                p.map_err(|_| AdapterError::Permanent("onnx: batcher closed".into()))?
            }
        };
        let this = Arc::clone(self);
        let ran = tokio::task::spawn_blocking(move || {
            let _permit = permit;
            let taken: Vec<Pending> = {
                let q = this.queue.lock().expect("batch queue lock");
                // A batch that is not full waits a little for more images (they are usually
                // being perturbed right now), as inference servers' dynamic batching does.
                let (mut q, _) = this
                    .arrived
                    .wait_timeout_while(q, FILL_WAIT, |q| !q.is_empty() && q.len() < inner.batch)
                    .expect("batch queue lock");
                let n = q.len().min(inner.batch);
                q.drain(..n).collect()
            };
            if taken.is_empty() {
                return;
            }
            let images: Vec<&Image> = taken.iter().map(|p| &*p.image).collect();
            let results = inner.predict_batch(&images);
            for (p, r) in taken.into_iter().zip(results) {
                // The receiver is gone only when its run was cancelled.
                let _ = p.done.send(r);
            }
        })
        .await;
        if let Err(e) = ran {
            return Err(AdapterError::Permanent(format!(
                "onnx model task failed: {e}"
            )));
        }
        result.await.unwrap_or_else(|_| failed())
    }
}
