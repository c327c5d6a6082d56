//! The sweep config: one TOML file (JSON when the name ends in `.json`) → a validated
//! [`SweepConfig`].
//!
//! Raw deserialisation types (`deny_unknown_fields`) are separate from the validated config.
//! Errors name the file, the dotted key path and, for TOML, the line and column (TOML spans are
//! recovered by walking the parsed document, see [`Spans`]).

use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};

use clarity_adapters::AdapterConfig;
use clarity_analysis::AnalysisSettings;
use clarity_core::{Axis, AxisValue, Normalization};
use clarity_perturb::{ParamKind, ParamSpec, ParamValue, Params, registry};
use serde::de::{self, MapAccess, SeqAccess, Visitor};
use serde::{Deserialize, Deserializer, Serialize};

use crate::EngineError;
use crate::probe_config::ProbeSettings;

/// Parameter name of a severity-level axis (`P.severity`: levels 0..=5).
pub const SEVERITY: &str = "severity";

/// `[cohort]`: where the cases come from.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum CohortConfig {
    /// Synthetic chest-radiograph phantoms from `clarity-phantom`.
    Builtin {
        #[serde(default = "default_n")]
        n: usize,
        #[serde(default = "default_size")]
        size: u32,
        #[serde(default = "default_depth")]
        depth: u8,
        #[serde(default)]
        seed: u64,
    },
    /// Every PNG/JPEG/TIFF/DICOM file below a folder (recursive; hidden entries skipped), in
    /// relative-path order; the case id is the relative path without its extension
    /// (`sub/a.png` → `sub/a`).
    Folder {
        path: PathBuf,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        window: Option<WindowSetting>,
    },
    /// A CSV (header `id,path[,prompt][,label][,…]`) or JSONL (keys `id`, `path`, …) manifest
    /// of cases; paths relative to the manifest's folder.
    Manifest {
        path: PathBuf,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        window: Option<WindowSetting>,
    },
}

/// `window` of a folder/manifest cohort: how DICOM modality values are windowed to grey levels
/// (PNG/JPEG/TIFF are kept as stored). `"file"` (the default: the file's VOI tags, else its
/// min..max), a preset name (`"lung"`, `"mediastinum"`, `"soft_tissue"`, `"bone"`, `"brain"`,
/// `"liver"`, `"subdural"`, `"stroke"`), or `{ level = -600, width = 1500 }` in modality units.
/// The window used is recorded per case in `plan.json`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum WindowSetting {
    Named(String),
    Explicit(ExplicitWindow),
}

/// `{ level = L, width = W }` in modality units (other keys are refused).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ExplicitWindow {
    pub level: f64,
    pub width: f64,
}

impl WindowSetting {
    /// The decoder's choice, or what is wrong.
    pub fn choice(&self) -> Result<clarity_image::WindowChoice, String> {
        use clarity_image::{WindowChoice, WindowPreset};
        match self {
            WindowSetting::Named(n) if n.trim().eq_ignore_ascii_case("file") => {
                Ok(WindowChoice::FromFile)
            }
            WindowSetting::Named(n) => WindowPreset::from_name(n)
                .map(WindowChoice::Preset)
                .ok_or_else(|| {
                    format!(
                        "unknown window `{n}`; allowed: file, {}, or {{ level = L, width = W }}",
                        WindowPreset::ALL.map(|p| p.name()).join(", ")
                    )
                }),
            WindowSetting::Explicit(ExplicitWindow { level, width }) => {
                if level.is_finite() && width.is_finite() && *width >= 1.0 {
                    Ok(WindowChoice::Explicit {
                        level: *level,
                        width: *width,
                    })
                } else {
                    Err(format!(
                        "window width must be a finite number >= 1 and level finite, got level {level}, width {width}"
                    ))
                }
            }
        }
    }
}

fn default_n() -> usize {
    8
}
fn default_size() -> u32 {
    64
}
fn default_depth() -> u8 {
    8
}

/// `[limits]`: resource limits on untrusted input.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Limits {
    /// Most runs (cases × cells × seeds) a sweep may plan.
    pub max_runs: u64,
    /// Most pixels of one decoded image (decompression bombs).
    pub max_pixels: u64,
    /// Largest image or manifest file read, in bytes.
    pub max_file_bytes: u64,
    /// Largest decoded image in bytes (width × height × channels × bytes per sample, from
    /// the header, before decoding).
    pub max_decoded_bytes: u64,
    /// Largest width or height of one decoded image.
    pub max_side: u32,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_runs: 1_000_000,
            max_pixels: 100_000_000,
            max_file_bytes: 512 << 20,
            max_decoded_bytes: 512 << 20,
            max_side: 65_535,
        }
    }
}

/// `[retry]`: how transient adapter failures are retried.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RetryPolicy {
    /// Total attempts per run (1 = no retry).
    pub attempts: u32,
    /// Delay before the first retry; doubled each time.
    pub backoff_ms: u64,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        Self {
            attempts: 3,
            backoff_ms: 200,
        }
    }
}

/// A validated sweep config. Serialises to the `config` object of `plan.json`: only what
/// determines results (no output dir, job count or limits, no absolute paths).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SweepConfig {
    pub cohort: CohortConfig,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub prompt: Option<String>,
    pub normalization: Normalization,
    pub adapter: AdapterConfig,
    /// Swept parameters, in declared order; numeric values sorted, identity included.
    pub axes: Vec<Axis>,
    /// Fixed parameters per perturbation (`[perturbations.NAME]`).
    pub perturbations: BTreeMap<String, Params>,
    /// Perturbations in the order they are applied.
    pub order: Vec<String>,
    pub seeds: Vec<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub analysis: Option<AnalysisSettings>,
    /// `[probe]`: counterfactual probe settings. Not part of the plan (it changes no sweep
    /// run); `probe.json` records them.
    #[serde(skip)]
    pub probe: Option<ProbeSettings>,
    #[serde(skip)]
    pub output: Option<PathBuf>,
    #[serde(skip)]
    pub jobs: Option<usize>,
    #[serde(skip)]
    pub limits: Limits,
    #[serde(skip)]
    pub retry: RetryPolicy,
    /// The config file's directory: relative paths resolve against it.
    #[serde(skip)]
    pub base_dir: PathBuf,
    /// The config file itself (for error messages).
    #[serde(skip)]
    pub source: PathBuf,
}

impl SweepConfig {
    /// Resolves a path from the config against the config file's directory.
    pub fn resolve_path(&self, p: &Path) -> PathBuf {
        if p.is_absolute() {
            p.to_path_buf()
        } else {
            self.base_dir.join(p)
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Raw types

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawConfig {
    cohort: CohortConfig,
    #[serde(default)]
    prompt: Option<String>,
    #[serde(default)]
    normalization: Option<Normalization>,
    adapter: AdapterConfig,
    #[serde(default)]
    axes: Option<RawAxes>,
    #[serde(default)]
    perturbations: BTreeMap<String, Params>,
    #[serde(default)]
    order: Option<Vec<String>>,
    #[serde(default)]
    seeds: Option<RawSeeds>,
    #[serde(default)]
    output: Option<PathBuf>,
    #[serde(default)]
    jobs: Option<usize>,
    #[serde(default)]
    analysis: Option<AnalysisSettings>,
    #[serde(default)]
    probe: Option<ProbeSettings>,
    #[serde(default)]
    limits: Limits,
    #[serde(default)]
    retry: RetryPolicy,
}

/// Axis values as written: a list, or the string `"severity"`.
#[derive(Debug, Clone)]
enum RawValues {
    List(Vec<ParamValue>),
    Preset(String),
}

impl<'de> Deserialize<'de> for RawValues {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = RawValues;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a list of values or the string \"severity\"")
            }
            fn visit_str<E: de::Error>(self, s: &str) -> Result<RawValues, E> {
                Ok(RawValues::Preset(s.to_string()))
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<RawValues, A::Error> {
                let mut out = Vec::new();
                while let Some(v) = seq.next_element::<ParamValue>()? {
                    out.push(v);
                }
                Ok(RawValues::List(out))
            }
        }
        d.deserialize_any(V)
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawAxisEntry {
    name: String,
    values: RawValues,
}

/// `[axes]` (a map, key → values) or `[[axes]]` (a list of `{name, values}`).
#[derive(Debug)]
enum RawAxes {
    Map(Vec<(String, RawValues)>),
    List(Vec<RawAxisEntry>),
}

impl<'de> Deserialize<'de> for RawAxes {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = RawAxes;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a table `perturbation.param = [values]` or an array of {name, values}")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<RawAxes, A::Error> {
                let mut out = Vec::new();
                while let Some((k, v)) = map.next_entry::<String, RawValues>()? {
                    out.push((k, v));
                }
                Ok(RawAxes::Map(out))
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<RawAxes, A::Error> {
                let mut out = Vec::new();
                while let Some(v) = seq.next_element::<RawAxisEntry>()? {
                    out.push(v);
                }
                Ok(RawAxes::List(out))
            }
        }
        d.deserialize_any(V)
    }
}

/// `seeds = [0, 1, 2]` or `seeds = 3` (meaning `[0, 1, 2]`).
#[derive(Debug)]
enum RawSeeds {
    Count(u64),
    List(Vec<u64>),
}

impl<'de> Deserialize<'de> for RawSeeds {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = RawSeeds;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a list of non-negative integers or a count")
            }
            fn visit_u64<E: de::Error>(self, n: u64) -> Result<RawSeeds, E> {
                Ok(RawSeeds::Count(n))
            }
            fn visit_i64<E: de::Error>(self, n: i64) -> Result<RawSeeds, E> {
                u64::try_from(n)
                    .map(RawSeeds::Count)
                    .map_err(|_| E::custom(format!("seed count must be >= 1, got {n}")))
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<RawSeeds, A::Error> {
                let mut out = Vec::new();
                while let Some(v) = seq.next_element::<u64>()? {
                    out.push(v);
                }
                Ok(RawSeeds::List(out))
            }
        }
        d.deserialize_any(V)
    }
}

// ---------------------------------------------------------------------------------------------
// Key paths and TOML spans

/// One step of a key path.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Seg {
    Key(String),
    Index(usize),
}

fn key(s: &str) -> Seg {
    Seg::Key(s.to_string())
}

pub(crate) fn display_path(path: &[Seg]) -> String {
    let mut s = String::new();
    for seg in path {
        match seg {
            Seg::Key(k) => {
                if !s.is_empty() {
                    s.push('.');
                }
                let bare = !k.is_empty()
                    && k.chars()
                        .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-');
                if bare {
                    s.push_str(k);
                } else {
                    s.push_str(&format!("{k:?}"));
                }
            }
            Seg::Index(i) => s.push_str(&format!("[{i}]")),
        }
    }
    s
}

/// Byte spans of a parsed TOML document, to turn key paths into line:column and back.
struct Spans<'a> {
    text: &'a str,
    doc: Option<toml::de::DeTable<'a>>,
}

type DeValue<'a> = toml::de::DeValue<'a>;
type Spanned<T> = toml::Spanned<T>;

impl<'a> Spans<'a> {
    fn line_col(&self, offset: usize) -> (usize, usize) {
        let offset = offset.min(self.text.len());
        let before = &self.text[..offset];
        let line = before.matches('\n').count() + 1;
        let col = before
            .rfind('\n')
            .map_or(before.chars().count(), |i| before[i + 1..].chars().count())
            + 1;
        (line, col)
    }

    /// The deepest key path whose key or value span contains `offset`.
    fn path_at(&self, offset: usize) -> Vec<Seg> {
        fn walk(t: &toml::de::DeTable<'_>, offset: usize, path: &mut Vec<Seg>) -> bool {
            for (k, v) in t.iter() {
                path.push(Seg::Key(k.get_ref().to_string()));
                if k.span().contains(&offset) {
                    return true;
                }
                if walk_value(v, offset, path) {
                    return true;
                }
                path.pop();
            }
            false
        }
        fn walk_value(v: &Spanned<DeValue<'_>>, offset: usize, path: &mut Vec<Seg>) -> bool {
            match v.get_ref() {
                DeValue::Table(t) if walk(t, offset, path) => return true,
                DeValue::Array(a) => {
                    for (i, item) in a.iter().enumerate() {
                        path.push(Seg::Index(i));
                        if walk_value(item, offset, path) {
                            return true;
                        }
                        if item.span().contains(&offset) {
                            return true;
                        }
                        path.pop();
                    }
                }
                _ => {}
            }
            v.span().contains(&offset)
        }
        let mut path = Vec::new();
        match &self.doc {
            Some(doc) if walk(doc, offset, &mut path) => path,
            _ => Vec::new(),
        }
    }

    /// The span of the last element of `path` (a value, or the key of a table).
    fn span_of(&self, path: &[Seg]) -> Option<std::ops::Range<usize>> {
        let doc = self.doc.as_ref()?;
        let mut table = doc;
        let mut value: Option<&Spanned<DeValue<'_>>> = None;
        let mut span = None;
        for seg in path {
            match seg {
                Seg::Key(k) => {
                    if let Some(v) = value {
                        match v.get_ref() {
                            DeValue::Table(t) => table = t,
                            _ => return span,
                        }
                    }
                    let (kk, vv) = table.iter().find(|(kk, _)| kk.get_ref() == k.as_str())?;
                    // A table is best shown by its key; a scalar by its value.
                    span = Some(match vv.get_ref() {
                        DeValue::Table(_) | DeValue::Array(_) => kk.span(),
                        _ => vv.span(),
                    });
                    value = Some(vv);
                }
                Seg::Index(i) => {
                    let arr = match value?.get_ref() {
                        DeValue::Array(a) => a,
                        _ => return span,
                    };
                    let item = arr.get(*i)?;
                    span = Some(item.span());
                    value = Some(item);
                }
            }
        }
        span
    }

    /// The span of the key (not the value) at `path`.
    fn key_span(&self, path: &[Seg]) -> Option<std::ops::Range<usize>> {
        let (last, parent) = path.split_last()?;
        let Seg::Key(name) = last else { return None };
        let mut table = self.doc.as_ref()?;
        for seg in parent {
            let Seg::Key(k) = seg else { return None };
            let (_, v) = table.iter().find(|(kk, _)| kk.get_ref() == k.as_str())?;
            match v.get_ref() {
                DeValue::Table(t) => table = t,
                _ => return None,
            }
        }
        let (k, _) = table.iter().find(|(kk, _)| kk.get_ref() == name.as_str())?;
        Some(k.span())
    }

    /// The one scalar child of the table at `path` whose source text `message` quotes (serde
    /// writes ``integer `-1` `` or `string "x"`), with its value's start offset.
    fn child_named_by(&self, path: &[Seg], message: &str) -> Option<(Vec<Seg>, usize)> {
        let mut table = self.doc.as_ref()?;
        for seg in path {
            let Seg::Key(k) = seg else { return None };
            let (_, v) = table.iter().find(|(kk, _)| kk.get_ref() == k.as_str())?;
            match v.get_ref() {
                DeValue::Table(t) => table = t,
                _ => return None,
            }
        }
        let mut found = table.iter().filter(|(_, v)| {
            if matches!(v.get_ref(), DeValue::Table(_) | DeValue::Array(_)) {
                return false;
            }
            let src = self.text.get(v.span()).unwrap_or("").trim();
            !src.is_empty()
                && (message.contains(&format!("`{src}`"))
                    || message.contains(&format!("string {src}")))
        });
        let (k, v) = found.next()?;
        if found.next().is_some() {
            return None;
        }
        let mut child = path.to_vec();
        child.push(Seg::Key(k.get_ref().to_string()));
        Some((child, v.span().start))
    }

    /// Document order of the keys of the top-level table `name`.
    fn key_order(&self, name: &str) -> Vec<String> {
        let Some(doc) = &self.doc else {
            return Vec::new();
        };
        let Some((_, v)) = doc.iter().find(|(k, _)| k.get_ref() == name) else {
            return Vec::new();
        };
        let DeValue::Table(t) = v.get_ref() else {
            return Vec::new();
        };
        let mut keys: Vec<_> = t
            .iter()
            .map(|(k, _)| (k.span().start, k.get_ref().to_string()))
            .collect();
        keys.sort();
        keys.into_iter().map(|(_, k)| k).collect()
    }
}

/// Builds config errors for one file.
pub(crate) struct Errs<'a> {
    path: &'a Path,
    spans: Option<Spans<'a>>,
}

impl Errs<'_> {
    pub(crate) fn at(&self, path: &[Seg], message: impl Into<String>) -> EngineError {
        let location = self.spans.as_ref().and_then(|s| {
            let span = s.span_of(path)?;
            Some(s.line_col(span.start))
        });
        EngineError::Config {
            path: self.path.to_path_buf(),
            location,
            key: display_path(path),
            message: message.into(),
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Loading

/// Reads and validates a sweep config file (TOML, or JSON when the name ends in `.json`).
pub fn load_config(path: &Path) -> Result<SweepConfig, EngineError> {
    let text = fs_err::read_to_string(path).map_err(|e| EngineError::Config {
        path: path.to_path_buf(),
        location: None,
        key: String::new(),
        message: format!("cannot read the config: {}", io_reason(&e)),
    })?;
    parse_config(&text, path)
}

fn io_reason(e: &std::io::Error) -> String {
    match e.kind() {
        std::io::ErrorKind::NotFound => "file not found".into(),
        _ => e.kind().to_string(),
    }
}

/// Validates config `text` read from `path` (the path decides the format and the base
/// directory for relative paths; nothing is read from it).
pub fn parse_config(text: &str, path: &Path) -> Result<SweepConfig, EngineError> {
    let is_json = path
        .extension()
        .is_some_and(|e| e.eq_ignore_ascii_case("json"));
    let (raw, errs) = if is_json {
        let raw: RawConfig = serde_json::from_str(text).map_err(|e| {
            let msg = e.to_string();
            let msg = match msg.rfind(" at line ") {
                Some(i) => msg[..i].to_string(),
                None => msg,
            };
            EngineError::Config {
                path: path.to_path_buf(),
                location: Some((e.line(), e.column())),
                key: String::new(),
                message: msg,
            }
        })?;
        (raw, Errs { path, spans: None })
    } else {
        let doc = toml::de::DeTable::parse(text);
        let spans = Spans {
            text,
            doc: doc.as_ref().ok().map(|d| d.get_ref().clone()),
        };
        let raw: RawConfig = toml::from_str(text).map_err(|e| {
            let (location, key) = match e.span() {
                Some(span) => {
                    let mut path = spans.path_at(span.start);
                    let mut start = span.start;
                    // Tagged tables (cohort, adapter) report the whole table: point at the
                    // unknown key itself when the message names it.
                    if let Some(name) = e
                        .message()
                        .strip_prefix("unknown field `")
                        .and_then(|m| m.split('`').next())
                    {
                        let mut child = path.clone();
                        child.push(Seg::Key(name.to_string()));
                        if let Some(s) = spans.key_span(&child) {
                            path = child;
                            start = s.start;
                        }
                    } else if let Some((child, s)) = spans.child_named_by(&path, e.message()) {
                        // A bad value inside a tagged table (`cohort.n = -1`): the message
                        // quotes the value; point at the one key that holds it.
                        path = child;
                        start = s;
                    }
                    (Some(spans.line_col(start)), display_path(&path))
                }
                None => (None, String::new()),
            };
            EngineError::Config {
                path: path.to_path_buf(),
                location,
                key,
                message: e.message().trim().to_string(),
            }
        })?;
        (
            raw,
            Errs {
                path,
                spans: Some(spans),
            },
        )
    };
    validate(raw, path, &errs)
}

fn validate(raw: RawConfig, path: &Path, errs: &Errs<'_>) -> Result<SweepConfig, EngineError> {
    let reg = registry();
    // Empty for a bare file name: joined paths then read `out`, not `./out`.
    let base_dir = path.parent().map(Path::to_path_buf).unwrap_or_default();

    // Cohort.
    if let CohortConfig::Builtin { n, size, depth, .. } = &raw.cohort {
        if *n == 0 {
            return Err(errs.at(
                &[key("cohort"), key("n")],
                "expected at least 1 case, got 0",
            ));
        }
        if !(clarity_phantom::MIN_SIZE..=clarity_phantom::MAX_SIZE).contains(size) {
            return Err(errs.at(
                &[key("cohort"), key("size")],
                format!(
                    "expected a side length in [{}, {}] pixels, got {size}",
                    clarity_phantom::MIN_SIZE,
                    clarity_phantom::MAX_SIZE
                ),
            ));
        }
        if *depth != 8 && *depth != 16 {
            return Err(errs.at(
                &[key("cohort"), key("depth")],
                format!("expected 8 or 16, got {depth}"),
            ));
        }
    }

    // Fixed perturbation parameters.
    for (name, params) in &raw.perturbations {
        let p = [key("perturbations"), key(name)];
        let Some(kernel) = reg.get(name) else {
            return Err(errs.at(
                &p,
                format!(
                    "unknown perturbation {name:?}; known perturbations: {}",
                    reg.names().join(", ")
                ),
            ));
        };
        for (param, value) in params {
            let Some(spec) = kernel.params().iter().find(|s| s.name == param) else {
                return Err(errs.at(
                    &[key("perturbations"), key(name), key(param)],
                    format!("unknown parameter; allowed: {}", allowed(kernel.params())),
                ));
            };
            check_value(spec, value)
                .map_err(|m| errs.at(&[key("perturbations"), key(name), key(param)], m))?;
        }
    }

    // Axes.
    let entries: Vec<(Vec<Seg>, String, RawValues)> = match raw.axes {
        None => Vec::new(),
        Some(RawAxes::List(list)) => list
            .into_iter()
            .enumerate()
            .map(|(i, e)| (vec![key("axes"), Seg::Index(i)], e.name, e.values))
            .collect(),
        Some(RawAxes::Map(mut map)) => {
            // TOML tables arrive sorted: restore the document order from the spans.
            if let Some(spans) = &errs.spans {
                let order = spans.key_order("axes");
                map.sort_by_key(|(k, _)| order.iter().position(|o| o == k));
            }
            map.into_iter()
                .map(|(k, v)| (vec![key("axes"), key(&k)], k, v))
                .collect()
        }
    };
    let mut axes: Vec<Axis> = Vec::new();
    let mut order: Vec<String> = Vec::new();
    for (kp, name, values) in entries {
        let (pert, param) = match name.split_once('.') {
            Some((a, b)) => (a.to_string(), b.to_string()),
            None => (name.clone(), SEVERITY.to_string()),
        };
        let Some(kernel) = reg.get(&pert) else {
            return Err(errs.at(
                &kp,
                format!(
                    "unknown perturbation {pert:?}; known perturbations: {}",
                    reg.names().join(", ")
                ),
            ));
        };
        let axis_name = format!("{pert}.{param}");
        if axes.iter().any(|a| a.name == axis_name) {
            return Err(errs.at(&kp, format!("axis {axis_name} is declared twice")));
        }
        let values_path = |i: Option<usize>| {
            let mut p = kp.clone();
            if matches!(kp.last(), Some(Seg::Index(_))) {
                p.push(key("values"));
            }
            if let Some(i) = i {
                p.push(Seg::Index(i));
            }
            p
        };
        let axis = if param == SEVERITY {
            if raw.perturbations.contains_key(&pert) {
                return Err(errs.at(
                    &kp,
                    format!(
                        "{pert} is swept by severity level, which sets all its parameters: remove [perturbations.{pert}]"
                    ),
                ));
            }
            if axes.iter().any(|a| a.perturbation == pert) {
                return Err(errs.at(
                    &kp,
                    format!("{pert} cannot have both a severity axis and a parameter axis"),
                ));
            }
            let levels: Vec<f64> = match values {
                RawValues::Preset(s) if s == SEVERITY => (0..=5).map(f64::from).collect(),
                RawValues::Preset(s) => {
                    return Err(errs.at(
                        &values_path(None),
                        format!("expected a list of levels or \"severity\", got {s:?}"),
                    ));
                }
                RawValues::List(list) => {
                    let mut out = Vec::new();
                    for (i, v) in list.iter().enumerate() {
                        match v {
                            ParamValue::Num(x) if x.fract() == 0.0 && (0.0..=5.0).contains(x) => {
                                out.push(*x)
                            }
                            other => {
                                return Err(errs.at(
                                    &values_path(Some(i)),
                                    format!("expected a severity level 0..=5, got {other}"),
                                ));
                            }
                        }
                    }
                    out
                }
            };
            numeric_axis(axis_name, &pert, SEVERITY, levels, 0.0, "level")
        } else {
            let Some(spec) = kernel.params().iter().find(|s| s.name == param) else {
                return Err(errs.at(
                    &kp,
                    format!(
                        "{pert} has no parameter {param:?}; allowed: {} (or {pert}.severity)",
                        allowed(kernel.params())
                    ),
                ));
            };
            if axes
                .iter()
                .any(|a| a.perturbation == pert && a.param == SEVERITY)
            {
                return Err(errs.at(
                    &kp,
                    format!("{pert} cannot have both a severity axis and a parameter axis"),
                ));
            }
            if raw
                .perturbations
                .get(&pert)
                .is_some_and(|p| p.contains_key(&param))
            {
                return Err(errs.at(
                    &kp,
                    format!("{axis_name} is both swept and fixed in [perturbations.{pert}]"),
                ));
            }
            let Some(identity) = spec.identity else {
                return Err(errs.at(
                    &kp,
                    format!(
                        "{axis_name} has no identity value, so the grid would have no baseline; sweep a parameter that has one and fix this one in [perturbations.{pert}]"
                    ),
                ));
            };
            let list = match values {
                RawValues::List(l) => l,
                RawValues::Preset(s) if s == SEVERITY => {
                    // The parameter's values in the five severity presets.
                    kernel
                        .presets()
                        .iter()
                        .map(|p| p.get(&param).cloned().unwrap_or(spec.default.to_value()))
                        .collect()
                }
                RawValues::Preset(s) => {
                    return Err(errs.at(
                        &values_path(None),
                        format!("expected a list of values or \"severity\", got {s:?}"),
                    ));
                }
            };
            if list.is_empty() {
                return Err(errs.at(&values_path(None), "expected at least one value"));
            }
            for (i, v) in list.iter().enumerate() {
                check_value(spec, v).map_err(|m| errs.at(&values_path(Some(i)), m))?;
            }
            match (spec.kind, identity.to_value()) {
                (ParamKind::Choice(_), ParamValue::Text(id)) => {
                    let mut values: Vec<AxisValue> = Vec::new();
                    let id = AxisValue::Level(id);
                    if !list.is_empty() {
                        values.push(id.clone());
                    }
                    for v in &list {
                        if let ParamValue::Text(s) = v {
                            let v = AxisValue::Level(s.clone());
                            if !values.contains(&v) {
                                values.push(v);
                            }
                        }
                    }
                    Axis {
                        name: axis_name,
                        perturbation: pert.clone(),
                        param: param.clone(),
                        values,
                        identity: id,
                        unit: spec.unit.to_string(),
                    }
                }
                (_, ParamValue::Num(id)) => {
                    let xs = list
                        .iter()
                        .filter_map(|v| match v {
                            ParamValue::Num(x) => Some(*x),
                            ParamValue::Text(_) => None,
                        })
                        .collect();
                    numeric_axis(axis_name, &pert, &param, xs, id, spec.unit)
                }
                _ => {
                    return Err(errs.at(
                        &kp,
                        "the parameter's identity does not match its kind (kernel bug)",
                    ));
                }
            }
        };
        if !order.contains(&pert) {
            order.push(pert.clone());
        }
        axes.push(axis);
    }
    for name in raw.perturbations.keys() {
        if !order.contains(name) {
            order.push(name.clone());
        }
    }
    if let Some(explicit) = raw.order {
        let mut a = explicit.clone();
        a.sort();
        let mut b = order.clone();
        b.sort();
        if a != b {
            return Err(errs.at(
                &[key("order")],
                format!(
                    "expected each swept or fixed perturbation exactly once: {}",
                    b.join(", ")
                ),
            ));
        }
        order = explicit;
    }

    // Seeds.
    let seeds = match raw.seeds {
        None => vec![0],
        Some(RawSeeds::Count(0)) => {
            return Err(errs.at(&[key("seeds")], "expected at least one seed, got 0"));
        }
        // Checked before the list is made: each seed is at least one run.
        Some(RawSeeds::Count(n)) if n > raw.limits.max_runs => {
            return Err(errs.at(
                &[key("seeds")],
                format!(
                    "{n} seeds is above the run limit limits.max_runs = {} (each seed is at least one run; raise `limits.max_runs` in the config)",
                    raw.limits.max_runs
                ),
            ));
        }
        Some(RawSeeds::Count(n)) => (0..n).collect(),
        Some(RawSeeds::List(list)) => {
            if list.is_empty() {
                return Err(errs.at(&[key("seeds")], "expected at least one seed"));
            }
            if list.len() as u64 > raw.limits.max_runs {
                return Err(errs.at(
                    &[key("seeds")],
                    format!(
                        "{} seeds is above the run limit limits.max_runs = {}",
                        list.len(),
                        raw.limits.max_runs
                    ),
                ));
            }
            let mut seen = std::collections::BTreeSet::new();
            for (i, s) in list.iter().enumerate() {
                if !seen.insert(*s) {
                    return Err(errs.at(
                        &[key("seeds"), Seg::Index(i)],
                        format!("seed {s} is listed twice"),
                    ));
                }
            }
            list
        }
    };
    if let Some(0) = raw.jobs {
        return Err(errs.at(&[key("jobs")], "expected at least 1"));
    }
    if raw.retry.attempts == 0 {
        return Err(errs.at(
            &[key("retry"), key("attempts")],
            "expected at least 1 attempt",
        ));
    }
    if let Some(a) = &raw.analysis {
        a.validate()
            .map_err(|m| errs.at(&[key("analysis")], m.to_string()))?;
    }
    if let Some(p) = &raw.probe {
        p.validate()
            .map_err(|(k, m)| errs.at(&[key("probe"), key(k)], m))?;
    }
    let normalization = raw.normalization.unwrap_or_default();
    if let Normalization::Regex { pattern } = &normalization {
        if pattern.is_empty() {
            return Err(errs.at(&[key("normalization"), key("pattern")], "expected a regex"));
        }
        // Checked here, not only by the analysis: a bad pattern must stop the sweep before it
        // runs, not after.
        if let Err(e) = regex::Regex::new(pattern) {
            let reason = e
                .to_string()
                .lines()
                .last()
                .unwrap_or("")
                .trim()
                .to_string();
            return Err(errs.at(
                &[key("normalization"), key("pattern")],
                format!("invalid regex `{pattern}`: {reason}"),
            ));
        }
    }
    if let Normalization::Choices { choices } = &normalization
        && choices.is_empty()
    {
        return Err(errs.at(
            &[key("normalization"), key("choices")],
            "expected at least one choice",
        ));
    }
    if raw
        .output
        .as_ref()
        .is_some_and(|o| o.as_os_str().is_empty())
    {
        return Err(errs.at(
            &[key("output")],
            "expected an output directory path, got an empty string",
        ));
    }
    Ok(SweepConfig {
        cohort: raw.cohort,
        prompt: raw.prompt,
        normalization,
        adapter: raw.adapter,
        axes,
        perturbations: raw.perturbations,
        order,
        seeds,
        analysis: raw.analysis,
        probe: raw.probe,
        output: raw.output,
        jobs: raw.jobs,
        limits: raw.limits,
        retry: raw.retry,
        base_dir,
        source: path.to_path_buf(),
    })
}

fn allowed(specs: &[ParamSpec]) -> String {
    specs.iter().map(|s| s.name).collect::<Vec<_>>().join(", ")
}

/// Checks one parameter value against its declaration.
fn check_value(spec: &ParamSpec, v: &ParamValue) -> Result<(), String> {
    let ok = match (spec.kind, v) {
        (ParamKind::Float { min, max }, ParamValue::Num(x)) => {
            x.is_finite() && *x >= min && *x <= max
        }
        (ParamKind::Int { min, max }, ParamValue::Num(x)) => {
            x.is_finite() && x.fract() == 0.0 && *x >= min as f64 && *x <= max as f64
        }
        (ParamKind::Choice(names), ParamValue::Text(s)) => names.contains(&s.as_str()),
        _ => false,
    };
    if ok {
        Ok(())
    } else {
        let expected = match spec.kind {
            ParamKind::Float { min, max } => format!("a number in [{min}, {max}]"),
            ParamKind::Int { min, max } => format!("an integer in [{min}, {max}]"),
            ParamKind::Choice(names) => format!("one of {}", names.join(", ")),
        };
        Err(format!("expected {expected}, got {v}"))
    }
}

/// A numeric axis: values sorted, deduplicated, identity added.
fn numeric_axis(
    name: String,
    pert: &str,
    param: &str,
    mut xs: Vec<f64>,
    identity: f64,
    unit: &str,
) -> Axis {
    xs.push(identity);
    xs.sort_by(f64::total_cmp);
    xs.dedup();
    Axis {
        name,
        perturbation: pert.to_string(),
        param: param.to_string(),
        values: xs.into_iter().map(AxisValue::Num).collect(),
        identity: AxisValue::Num(identity),
        unit: unit.to_string(),
    }
}
